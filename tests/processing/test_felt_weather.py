"""The weather a building feels: candidates' degree-days, each meter's choice, short days."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from processing.felt_weather import (
    BALANCE_C,
    SUN_K_PER_W_M2,
    TIME_CONSTANTS_H,
    FeltWeather,
    FeltWeatherOnDemand,
)
from processing.weather_model import daily_features
from tests.fixtures.weather import heating_term

DAYS = 120


def _weather(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Hourly temperature [°C] and irradiance [W/m²] from winter into a sunny spring."""
    hours = np.arange(24 * DAYS)
    te = 2.0 + 12.0 * hours / hours.size + 3.0 * np.sin(2 * np.pi * (hours % 24 - 9) / 24)
    te += np.repeat(rng.normal(0.0, 2.5, DAYS), 24)
    sun = np.clip(np.sin(np.pi * ((hours % 24) - 6) / 12), 0.0, None)
    sun *= np.repeat(rng.uniform(20.0, 600.0, DAYS), 24)
    return te, sun


def _felt(te: np.ndarray, sun: np.ndarray, tau_h: float, k: float) -> np.ndarray:
    """The felt temperature written out step by step, as the physics reads."""
    raw = te + k * sun
    if tau_h == 0:
        return raw
    a = np.exp(-1.0 / tau_h)
    out = np.empty_like(raw)
    prev = raw[0]
    for i, v in enumerate(raw):
        prev = a * prev + (1.0 - a) * v
        out[i] = prev
    return out


def _index(tau_h: float, k: float, base_c: float) -> int:
    row = TIME_CONSTANTS_H.index(tau_h) * len(SUN_K_PER_W_M2) + SUN_K_PER_W_M2.index(k)
    return row * len(BALANCE_C) + BALANCE_C.index(base_c)


def _daily(hourly: np.ndarray) -> np.ndarray:
    return hourly.reshape(-1, 24).sum(axis=1) / 24.0


def test_degree_days_of_every_candidate_are_the_felt_temperature_under_its_base():
    te, sun = _weather(np.random.default_rng(1))
    felt = FeltWeather.of(te, sun, np.arange(0, te.size, 24))
    for tau_h, k, base in ((0.0, 0.0, 15.0), (6.0, 0.04, 12.0), (24.0, 0.12, 20.0)):
        want = _daily(np.maximum(base - _felt(te, sun, tau_h, k), 0.0))
        assert_allclose(felt.degree_days[_index(tau_h, k, base)], want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("tau_h", "k", "base"), [(6.0, 0.04, 15.0), (0.0, 0.0, 17.0)])
def test_a_home_is_given_the_mass_sun_and_balance_point_its_heating_follows(tau_h, k, base):
    rng = np.random.default_rng(2)
    te, sun = _weather(rng)
    dd = _daily(np.maximum(base - _felt(te, sun, tau_h, k), 0.0))
    use = 3.0 + 2.0 * dd + rng.normal(0.0, 0.05, DAYS)  # hot water, then 2 kWh per K·day
    felt = FeltWeather.of(te, sun, np.arange(0, te.size, 24))
    assert felt.choose(use[np.newaxis, :])[0] == _index(tau_h, k, base)


def test_days_skipped_cut_short_or_unread_do_not_choose():
    rng = np.random.default_rng(3)
    te, sun = _weather(rng)
    dd = _daily(np.maximum(15.0 - _felt(te, sun, 6.0, 0.04), 0.0))
    use = 3.0 + 2.0 * dd + rng.normal(0.0, 0.05, DAYS)
    spoiled = use.copy()
    skip = np.zeros(DAYS, dtype=bool)
    skip[10:40] = True
    spoiled[10:40] = 500.0  # closed days, whatever they read
    spoiled[-1] = 0.2  # the last day, read for two hours
    spoiled[50:55] = np.nan
    felt = FeltWeather.of(te, sun, np.arange(0, te.size, 24))
    until = np.asarray([te.size - 22])
    assert felt.choose(spoiled[np.newaxis, :], skip=skip, until=until)[0] == _index(6.0, 0.04, 15.0)
    assert felt.choose(spoiled[np.newaxis, :])[0] != _index(6.0, 0.04, 15.0)


def test_a_meter_whose_use_does_not_follow_the_cold_has_no_candidate():
    rng = np.random.default_rng(4)
    te, sun = _weather(rng)
    felt = FeltWeather.of(te, sun, np.arange(0, te.size, 24))
    warm_lover = 10.0 + 0.5 * _daily(te)  # more on warmer days: cooling, not heating
    steady = np.full(DAYS, 4.0)
    choice = felt.choose(np.stack([warm_lover, steady]))
    assert_array_equal(choice, [-1, -1])
    assert np.isnan(felt.meters_degree_days(choice, np.full(2, te.size))).all()


def test_a_meter_s_last_day_counts_its_hours_read_and_the_days_after_count_none():
    te, sun = _weather(np.random.default_rng(5))
    felt = FeltWeather.of(te, sun, np.arange(0, te.size, 24))
    pick = _index(9.0, 0.02, 16.0)
    hourly = np.maximum(16.0 - _felt(te, sun, 9.0, 0.02), 0.0)
    until = np.asarray([te.size, 24 * 30 + 7, 24 * 30])
    got = felt.meters_degree_days(np.full(3, pick), until)
    assert_allclose(got[0], _daily(hourly), rtol=1e-9)
    assert_allclose(got[1, :30], _daily(hourly)[:30], rtol=1e-9)
    assert_allclose(got[1, 30], hourly[24 * 30 : 24 * 30 + 7].sum() / 24.0, rtol=1e-9)
    assert_allclose(got[1:, 31:], 0.0)
    assert_allclose(got[2, :30], got[1, :30])
    assert_allclose(got[2, 30:], 0.0)


def test_a_gap_in_the_weather_is_read_across_not_as_a_mild_or_dark_hour():
    te, sun = _weather(np.random.default_rng(6))
    gappy_te, gappy_sun = te.copy(), sun.copy()
    gappy_te[100:103] = np.nan
    gappy_sun[200:203] = np.nan
    starts = np.arange(0, te.size, 24)
    filled_te, filled_sun = te.copy(), sun.copy()
    filled_te[100:103] = np.interp([100, 101, 102], [99, 103], te[[99, 103]])
    filled_sun[200:203] = np.interp([200, 201, 202], [199, 203], sun[[199, 203]])
    assert_allclose(
        FeltWeather.of(gappy_te, gappy_sun, starts).degree_days,
        FeltWeather.of(filled_te, filled_sun, starts).degree_days,
    )


def test_the_features_read_the_felt_degree_days_and_keep_the_air_s_where_none():
    te, sun = _weather(np.random.default_rng(7))
    starts = np.arange(0, te.size, 24)
    felt = FeltWeather.of(te, sun, starts)
    until = np.full(2, te.size)
    mine = felt.meters_degree_days(np.asarray([_index(6.0, 0.04, 15.0), -1]), until)
    plain = daily_features(heating_term(te, meters=2), starts, te.size, sun_w_m2=sun)
    f = daily_features(
        heating_term(te, meters=2), starts, te.size, sun_w_m2=sun, felt_degree_days=mine
    )
    assert_allclose(f[0, :, 1], mine[0])
    assert_allclose(f[0, 1:, 2], mine[0, :-1])
    assert_array_equal(f[0, :, 3] > 0, mine[0] > 0)  # every day has some sun
    assert_allclose(f[1], plain[1])  # no candidate: the outdoor air's degree-days
    with pytest.raises(ValueError, match="felt_degree_days"):
        daily_features(heating_term(te), starts, te.size, felt_degree_days=mine)


def test_the_felt_weather_on_demand_is_made_once_when_first_read():
    te, sun = _weather(np.random.default_rng(10))
    shared = FeltWeatherOnDemand(te, sun)
    first = shared.get()
    assert shared.get() is first
    assert_allclose(
        first.degree_days, FeltWeather.of(te, sun, np.arange(0, te.size, 24)).degree_days
    )


def test_bad_arguments_are_named():
    te, sun = _weather(np.random.default_rng(8))
    starts = np.arange(0, te.size, 24)
    with pytest.raises(ValueError, match="sun_w_m2"):
        FeltWeather.of(te, sun[:-1], starts)
    felt = FeltWeather.of(te, sun, starts)
    with pytest.raises(ValueError, match="observed"):
        felt.choose(np.zeros((1, DAYS - 1)))
    with pytest.raises(ValueError, match="until"):
        felt.meters_degree_days(np.zeros(2, dtype=np.int64), np.zeros(3, dtype=np.int64))
