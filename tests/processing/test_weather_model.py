"""Daily weather model of heating meters: regressors, trailing fits and the prior."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from processing import weather_model
from processing.baseline import HeatingTerm
from processing.weather_model import (
    base_day_reference,
    daily_features,
    daily_use,
    global_response,
    no_heating_days,
    reading_until,
    trailing_weather_fit,
)
from tests.fixtures.weather import heating_term


def _weather(days: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Hourly temperature [°C] and irradiance [W/m²] of ``days`` winter-ish days."""
    hours = np.arange(24 * days)
    te = 6.0 + 4.0 * np.sin(2 * np.pi * hours / (24 * 11)) + np.repeat(rng.normal(0, 2, days), 24)
    sun = np.clip(np.sin(np.pi * ((hours % 24) - 6) / 12), 0, None)
    sun *= np.repeat(rng.uniform(50, 400, days), 24)
    return te, sun


def test_features_are_day_sums_with_yesterday_sun_on_heating_days_and_the_onset():
    te = np.r_[np.full(24, 10.0), np.full(24, 17.0), np.full(12, 4.0)]  # last day half long
    sun = np.full(te.size, 100.0)
    f = daily_features(
        heating_term(te), np.arange(0, te.size, 24), te.size, sun_w_m2=sun, onset=True
    )
    assert f.shape == (1, 3, weather_model.FEATURES)
    assert_allclose(f[0, :, 0], [1.0, 1.0, 0.5])  # share of a day
    assert_allclose(f[0, :, 1], [6.0, 0.0, 6.0])  # K·day: 12 h at 12 K is 6 K·day
    assert_allclose(f[0, :, 2], [6.0, 6.0, 0.0])  # yesterday's (the first day's own)
    assert_allclose(f[0, :, 3], [2.4, 0.0, 1.2])  # kWh/m², only where there is heating
    assert_allclose(f[0, :, 4], [2.0, 1.0, 1.0])  # the onset: within 16–18 °C, the next base


def test_the_onset_is_the_band_up_to_the_next_base_and_none_at_the_top():
    te = np.full(24, 5.0)
    bases = np.asarray([12.0, 14.0, 16.0])
    term = HeatingTerm(
        slope=np.ones(3),
        base_index=np.asarray([0, 1, 2]),
        bases_c=bases,
        degree_hours=np.maximum(bases[:, np.newaxis] - te[np.newaxis, :], 0.0),
        anomaly=np.zeros((3, 24)),
    )
    f = daily_features(term, np.asarray([0]), 24, onset=True)
    assert_allclose(f[:, 0, 1], [7.0, 9.0, 11.0])
    assert_allclose(f[:, 0, 4], [2.0, 2.0, 0.0])


def test_a_home_that_starts_heating_over_a_few_degrees_is_fitted_through_its_onset():
    # Use bends at the onset: a slope from 18 °C down, twice as steep from 16 °C. Four weeks
    # around 16–19 °C, then four cold ones: one degree-day column extrapolates them wrong.
    rng = np.random.default_rng(7)
    daily_te = np.r_[
        rng.uniform(15.0, 19.0, 28), rng.uniform(14.0, 17.0, 4), rng.uniform(3.0, 9.0, 28)
    ]
    te = np.repeat(daily_te, 24)
    f = daily_features(heating_term(te), np.arange(0, te.size, 24), te.size, onset=True)
    y = 3.0 + 0.6 * (f[0, :, 1] + f[0, :, 4]) + 0.6 * f[0, :, 1]
    expected = trailing_weather_fit(y[np.newaxis, :], f, prior_days=0.0)
    assert_allclose(expected[0, 32:], y[32:], rtol=1e-3)
    one_base = f.copy()
    one_base[:, :, 4] = 0.0
    without = trailing_weather_fit(y[np.newaxis, :], one_base, prior_days=0.0)
    assert np.nanmax(np.abs(without[0, 32:] / y[32:] - 1.0)) > 0.1


def test_only_a_long_series_fits_the_onset_and_weighs_its_response_more():
    rng = np.random.default_rng(9)
    for days, long in (
        (weather_model.LONG_SERIES_DAYS - 1, False),
        (weather_model.LONG_SERIES_DAYS, True),
    ):
        te = np.repeat(rng.uniform(5.0, 20.0, days), 24)
        f = daily_features(heating_term(te), np.arange(0, te.size, 24), te.size)
        assert (f[0, :, 4] != 0).any() == long
        y = 2.0 + 1.5 * f[0, :, 1] + 0.5 * f[0, :, 4] + rng.normal(0, 0.3, days)
        prior = weather_model.LONG_PRIOR_DAYS if long else weather_model.DEFAULT_PRIOR_DAYS
        assert_allclose(
            trailing_weather_fit(y[np.newaxis], f),
            trailing_weather_fit(y[np.newaxis], f, prior_days=prior),
        )


def test_a_missing_irradiance_reading_is_not_a_dark_hour():
    te = np.full(48, 6.0)
    sun = np.full(48, 200.0)
    gappy = sun.copy()
    gappy[30:33] = np.nan
    starts = np.arange(0, 48, 24)
    full = daily_features(heating_term(te), starts, 48, sun_w_m2=sun)
    assert_allclose(daily_features(heating_term(te), starts, 48, sun_w_m2=gappy), full)


def test_closed_days_add_the_day_after_them():
    te = np.full(24 * 4, 6.0)
    closed = np.asarray([False, True, True, False])
    f = daily_features(heating_term(te), np.arange(0, te.size, 24), te.size, closed=closed)
    assert f.shape == (1, 4, weather_model.FEATURES + 1)
    assert_allclose(f[0, :, weather_model.FEATURES], [0, 0, 1, 1])  # the day after a closed one


def test_daily_use_takes_a_register_s_readings_as_they_are_and_a_late_meter_s_half_day():
    x = np.ones((3, 24 * 3 + 6))
    x[:, 30:33] = np.nan  # three readings lost on day 1...
    x[0, 33] = 4.0  # ...carried by the next one on the register
    x[1, 60:] = np.nan  # meter 1 stopped reading at noon on day 2
    x[2, 48 + 6 : 48 + 20] = np.nan  # meter 2 lost most of day 2
    starts = np.arange(0, x.shape[1], 24)
    until = reading_until(x)
    assert until.tolist() == [78, 60, 78]
    # Day 3 is six hours so far: too few to tell a day's use from the hour it is.
    assert_allclose(daily_use(x, starts, bridged_gaps=True, until=until)[0], [24, 24, 24, np.nan])
    scaled = daily_use(x, starts, bridged_gaps=False, until=until)
    assert_allclose(scaled[0], [24, 24 * 24 / 21, 24, np.nan])  # valid steps scaled to the day
    assert_allclose(scaled[1], [24, 24, 12, np.nan])  # its day 2 so far: 12 h, half a day
    assert_allclose(scaled[2], [24, 24, np.nan, np.nan])  # fewer than half of day 2 read
    # The features of meter 1's day 2 stop at its last reading too, the day before's
    # degree-days counting for as much of a day.
    te = np.full(x.shape[1], 6.0)
    f = daily_features(heating_term(te, meters=3), starts, x.shape[1], until=until)
    assert_allclose(f[1, 2, :3], [0.5, 5.0, 5.0])  # half a day, 12 h at 10 K; half of 10
    assert_allclose(f[0, 2, :3], [1.0, 10.0, 10.0])
    assert_allclose(f[1, 3, :3], [0.0, 0.0, 0.0])


def test_trailing_fit_recovers_a_noise_free_home_exactly():
    rng = np.random.default_rng(1)
    days = 90
    te, sun = _weather(days, rng)
    f = daily_features(heating_term(te, meters=2), np.arange(0, te.size, 24), te.size, sun_w_m2=sun)
    coef = np.asarray([[3.0, 1.2, 0.4, -1.5, 0.3], [8.0, 2.0, 0.0, -0.5, 0.0]])  # per meter
    y = np.einsum("mdp,mp->md", f, coef)
    expected = trailing_weather_fit(y, f, window_days=28, prior_days=0.0)
    assert np.isnan(expected[:, :28]).all()  # no whole window behind them
    assert_allclose(expected[:, 28:], y[:, 28:], rtol=1e-4)  # the ridge, 1e-6 of each column


def test_windows_short_of_readings_and_skipped_days_expect_nothing():
    rng = np.random.default_rng(6)
    days = 100
    te, sun = _weather(days, rng)
    f = daily_features(heating_term(te), np.arange(0, te.size, 24), te.size, sun_w_m2=sun)
    y = np.einsum("mdp,p->md", f, [4.0, 1.5, 0.3, -1.0, 0.0])
    y[0, 40:50] = np.nan  # an outage of ten days
    closed = np.arange(days) % 7 >= 5
    expected = trailing_weather_fit(y, f, skip=closed)
    read = ~np.isnan(expected[0])
    assert not read[closed].any()
    # A window holds 20 open days and needs 15 read: from day 50 it holds the outage's six
    # open days, until day 71 five.
    assert not read[50:71].any()
    assert read[~closed & (np.arange(days) >= 71)].all()
    assert read[~closed & (np.arange(days) >= 28) & (np.arange(days) < 50)].all()
    known = read & ~np.isnan(y[0])
    assert_allclose(expected[0, known], y[0, known], rtol=1e-4)


def test_a_shift_shows_whole_on_its_first_day_and_gaps_are_left_out():
    rng = np.random.default_rng(2)
    days = 70
    te, sun = _weather(days, rng)
    f = daily_features(heating_term(te), np.arange(0, te.size, 24), te.size, sun_w_m2=sun)
    y = np.einsum("mdp,p->md", f, [4.0, 1.5, 0.3, -1.0, 0.0]) + rng.normal(0, 0.05, (1, days))
    y[0, 40:44] = np.nan
    y[0, 50:] *= 1.3
    res = y - trailing_weather_fit(y, f)
    assert abs(res[0, 30]) < 0.3
    assert res[0, 50] == pytest.approx(0.3 * y[0, 50] / 1.3, rel=0.1)


def test_prior_carries_the_heating_slope_into_a_window_without_heating():
    rng = np.random.default_rng(3)
    days = 120
    te, sun = _weather(days, rng)
    te[24 * 60 : 24 * 95] = 19.0  # five mild weeks, then the cold comes back
    f = daily_features(heating_term(te), np.arange(0, te.size, 24), te.size, sun_w_m2=sun)
    y = np.einsum("mdp,p->md", f, [2.0, 1.5, 0.3, -1.0, 0.0]) + rng.normal(0, 0.02, (1, days))
    cold_day = 95
    alone = trailing_weather_fit(y, f, prior_days=0.0)[0, cold_day]
    with_prior = trailing_weather_fit(y, f, prior_days=3.0)[0, cold_day]
    assert abs(alone - y[0, cold_day]) > 5.0  # a mild window knows no slope
    assert with_prior == pytest.approx(y[0, cold_day], rel=0.05)
    assert_allclose(global_response(y, f)[0], [1.5, 0.3, -1.0, 0.0], atol=0.05)


def test_a_shift_that_came_with_a_sunny_spell_does_not_teach_the_response():
    rng = np.random.default_rng(5)
    days = 90
    te, sun = _weather(days, rng)
    sun[24 * 80 :] *= 4.0  # the last ten days sunny
    f = daily_features(heating_term(te), np.arange(0, te.size, 24), te.size, sun_w_m2=sun)
    y = np.einsum("mdp,p->md", f, [2.0, 1.5, 0.3, -1.0, 0.0]) + rng.normal(0, 0.02, (1, days))
    y[0, 80:] += 6.0  # and the use up with them
    assert_allclose(global_response(y, f)[0], [1.5, 0.3, -1.0, 0.0], atol=0.05)
    res = y - trailing_weather_fit(y, f)
    assert res[0, 82] > 4.0


def test_a_mild_sunny_day_expects_the_hot_water_not_less():
    rng = np.random.default_rng(7)
    days = 60
    te, sun = _weather(days, rng)
    te[24 * 59 :] = 15.5  # the last day mild (0.5 K under the balance point) and sunny
    sun[24 * 59 :] = 3.0 * np.clip(np.sin(np.pi * (np.arange(24) - 6) / 12), 0, None) * 400
    # With the onset: every day before the last is cold, so a window cannot split it from
    # the intercept, and the prior must hold it to the series' (none).
    f = daily_features(
        heating_term(te), np.arange(0, te.size, 24), te.size, sun_w_m2=sun, onset=True
    )
    heating = np.maximum(np.einsum("mdp,p->md", f[:, :, 1:], [1.5, 0.3, -1.0, 0.0]), 0.0)
    y = 2.0 + heating + rng.normal(0, 0.02, (1, days))
    expected = trailing_weather_fit(y, f)[0, -1]
    assert np.einsum("p,p->", f[0, -1, 1:], [1.5, 0.3, -1.0, 0.0]) < -2.0  # the line says < 0
    assert expected == pytest.approx(2.0 + heating[0, -1], abs=0.3)


def test_a_day_not_over_leaves_the_fits_of_the_days_before_as_at_midnight():
    # The response and its weight read whole days: the run at 6 pm expects every day
    # before its own what the run at midnight did.
    rng = np.random.default_rng(8)
    days = 70
    te, sun = _weather(days + 1, rng)
    te, sun = te[: 24 * days + 18], sun[: 24 * days + 18]
    te[24 * days :] -= 8.0  # a cold evening so far
    f = daily_features(heating_term(te), np.arange(0, te.size, 24), te.size, sun_w_m2=sun)
    y = np.einsum("mdp,p->md", f, [2.0, 1.5, 0.3, -1.0, 0.0]) + rng.normal(0, 0.3, (1, days + 1))
    assert f[0, -1, 0] == pytest.approx(0.75)
    midnight = trailing_weather_fit(y[:, :days], f[:, :days])
    evening = trailing_weather_fit(y, f)
    assert_allclose(evening[:, :days], midnight, rtol=1e-12)


def test_blocks_of_meters_give_the_same_fit(monkeypatch):
    rng = np.random.default_rng(4)
    te, sun = _weather(60, rng)
    f = daily_features(heating_term(te, meters=5), np.arange(0, te.size, 24), te.size, sun_w_m2=sun)
    y = np.einsum("mdp,p->md", f, [2.0, 1.0, 0.2, -0.5, 0.3]) * rng.lognormal(0, 0.1, (5, 60))
    whole = trailing_weather_fit(y, f)
    monkeypatch.setattr(weather_model, "BLOCK_METERS", 2)
    assert_allclose(trailing_weather_fit(y, f), whole, rtol=1e-12)


def test_bad_arguments_are_named():
    f = np.zeros((2, 10, weather_model.FEATURES))
    with pytest.raises(ValueError, match="features"):
        trailing_weather_fit(np.zeros((2, 9)), f)
    with pytest.raises(ValueError, match="window_days"):
        trailing_weather_fit(np.zeros((2, 10)), f, window_days=1)
    with pytest.raises(ValueError, match="prior_days"):
        trailing_weather_fit(np.zeros((2, 10)), f, prior_days=-1.0)
    te = np.zeros(48)
    with pytest.raises(ValueError, match="sun_w_m2"):
        daily_features(heating_term(te), np.arange(0, 48, 24), 48, sun_w_m2=np.zeros(47))
    with pytest.raises(ValueError, match="closed"):
        daily_features(heating_term(te), np.arange(0, 48, 24), 48, closed=np.zeros(3, dtype=bool))


def test_days_without_heating_have_no_degree_days_up_to_the_onset_band_nor_the_day_before():
    # Daily means 20, 17, 20, 20, 14, 20 °C; the meter's base 16 °C, the band's top 18 °C.
    te = np.repeat([20.0, 17.0, 20.0, 20.0, 14.0, 20.0], 24)
    days = no_heating_days(heating_term(te), np.arange(0, te.size, 24), te.size)
    # Day 1 heats in the band; day 2 follows no heating at the base itself; day 4 heats
    # and day 5 follows it. The first day counts itself as the day before.
    assert days.tolist() == [[True, False, True, True, False, False]]


def test_a_day_without_heating_is_expected_at_the_median_of_such_days_before_it():
    y = np.asarray([[10.0, 12.0, 11.0, 50.0, 13.0, 30.0, 20.0, np.nan, 14.0]])
    base = np.asarray([[True, True, True, False, True, True, True, True, True]])
    ref = base_day_reference(y, base, window_days=5, min_days=3)
    # Day 4 reads days 0–3: three base days, median 11; day 3 is no base day (its 50 is
    # heating); day 8 reads days 3–7: 13, 30 and 20, day 7 not read.
    expected = [np.nan, np.nan, np.nan, np.nan, 11.0, 11.5, 12.5, np.nan, 20.0]
    assert_allclose(ref[0], expected)
    assert_allclose(base_day_reference(y, base, window_days=5, min_days=4)[0, 4:7],
                    [np.nan, 11.5, 12.5])  # fmt: skip
    assert np.isnan(base_day_reference(y, np.zeros_like(base), window_days=5)).all()
