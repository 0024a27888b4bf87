"""Schedule misuse (night, weekend and holiday use) on synthetic series."""

import dataclasses
from datetime import date, datetime, timedelta

import numpy as np
from numpy.testing import assert_allclose

from processing.baseline import fit_heating_term
from processing.detector_config import DetectorConfig, config_for
from processing.events import AnomalyEvents
from processing.schedule import (
    _run_means,
    _sun_term,
    _weather_corrected_excess,
    _window_means,
    closed_day_programmes,
    schedule_anomalies,
)

START = datetime(2024, 1, 1)  # a Monday, local midnight
W = 168


def test_schedule_night_weekend_holiday():
    n_days = 28
    hours = np.arange(24 * n_days)
    hod = hours % 24
    dow = (hours // 24) % 7
    office = np.where((hod >= 8) & (hod < 18) & (dow < 5), 10.0, 1.0)
    x = np.tile(office, (3, 1))
    bad_night = 10  # nights starting 23:00 on days 10 and 11 (one night alone is noise)
    x[1, bad_night * 24 + 23 : bad_night * 24 + 29] = 4.0
    x[1, bad_night * 24 + 47 : bad_night * 24 + 53] = 4.0
    x[2, 5 * 24 + 8 : 5 * 24 + 18] = 10.0  # Saturday 6 January used like a weekday
    holiday = date(2024, 1, 17)  # a Wednesday
    cfg = config_for("office")
    found = schedule_anomalies(x, start=START, holidays=[holiday], config=cfg)
    kinds = {(a.meter_index, a.kind) for a in found}
    assert (1, "night_use") in kinds
    assert (2, "weekend_use") in kinds
    assert {(m, "holiday_use") for m in range(3)} <= kinds  # normal weekday on a holiday
    assert (0, "night_use") not in kinds
    assert (0, "weekend_use") not in kinds
    night = next(a for a in found if a.meter_index == 1 and a.kind == "night_use")
    assert night.start == bad_night * 24 + 23
    assert "4.0× the usual level" in night.reason
    assert night.end == bad_night * 24 + 53
    assert (START + timedelta(hours=night.start)).hour == 23


def _closed_building(weeks: int, rng: np.random.Generator) -> np.ndarray:
    """Weekdays 8-18 at 10, else 1 (START is a Monday), with 5 % noise."""
    hours = np.arange(24 * 7 * weeks)
    hod, dow = hours % 24, (hours // 24) % 7
    x = np.where((hod >= 8) & (hod < 18) & (dow < 5), 10.0, 1.0)
    return np.asarray(x * rng.lognormal(0.0, 0.05, hours.size))


def test_sundays_used_every_other_week_are_a_routine_and_a_one_off_weekend_a_fault():
    rng = np.random.default_rng(12)
    weeks = 16
    x = np.stack([_closed_building(weeks, rng) for _ in range(3)])
    # Meter 0 is used every other Sunday 07-19 (a club) from the fifth week; a Sunday in
    # two is under the median of its period's closed days, so each reads as a fault.
    sundays = [24 * (7 * w + 6) for w in range(4, weeks, 2)]
    for s in sundays:
        x[0, s + 7 : s + 19] *= 3.0
    one_off = 24 * (7 * 12 + 6)
    x[1, one_off + 7 : one_off + 19] *= 3.0  # meter 1 once
    cfg = config_for("office")
    found = schedule_anomalies(x, start=START, config=cfg)
    weekend = [a for a in found if a.kind == "weekend_use"]
    assert [(a.meter_index, a.start) for a in weekend] == [(1, one_off + 7)]
    # Without the rule, meter 0's Sundays are reported one by one.
    every = dataclasses.replace(cfg, closed_routine_events=0)
    found = schedule_anomalies(x, start=START, config=every)
    mine = {a.start for a in found if a.kind == "weekend_use" and a.meter_index == 0}
    assert len(mine) >= 4
    assert mine <= {s + 7 for s in sundays}


def test_a_sunday_at_a_fraction_of_the_open_days_use_is_the_setback_held():
    """Open days at 10 an hour from 8 to 18, 8.5 over the daytime hours 7–19; closed ones
    at 1. A Sunday at 1.9 (0.22 of the open daytime) is the building held at its setback
    under a share of 0.25; one at 8 is heating left on. Without the share both are
    weekend use."""
    rng = np.random.default_rng(3)
    weeks = 10
    x = np.stack([_closed_building(weeks, rng) for _ in range(2)])
    sunday = 24 * (7 * 7 + 6)
    x[0, sunday + 7 : sunday + 19] = 1.9
    x[1, sunday + 7 : sunday + 19] = 8.0
    cfg = config_for("office")

    def weekend_use(share: float) -> list[tuple[int, int]]:
        found = schedule_anomalies(
            x, start=START, config=dataclasses.replace(cfg, closed_setback_share=share)
        )
        return sorted((a.meter_index, a.start) for a in found if a.kind == "weekend_use")

    assert weekend_use(0.0) == [(0, sunday + 7), (1, sunday + 7)]
    assert weekend_use(0.25) == [(1, sunday + 7)]
    assert config_for("gas").closed_setback_share == 0.25


def test_a_closing_boiler_used_on_two_sundays_six_weeks_apart_is_a_routine():
    """Closing gas and heat meters: one other used closed day within six weeks makes a
    routine (their weekend use on cold weekends); other kinds need two within eight."""
    rng = np.random.default_rng(13)
    weeks = 16
    x = np.stack([_closed_building(weeks, rng) for _ in range(3)])
    pair = [24 * (7 * w + 6) for w in (6, 11)]  # Sundays five weeks apart
    for s in pair:
        x[0, s + 7 : s + 19] *= 3.0
    one_off = 24 * (7 * 13 + 6)
    x[1, one_off + 7 : one_off + 19] *= 3.0

    def sundays(kind: str) -> list[tuple[int, int]]:
        found = schedule_anomalies(x, start=START, config=config_for(kind))
        return sorted((a.meter_index, a.start) for a in found if a.kind == "weekend_use")

    assert sundays("gas") == sundays("heat") == [(1, one_off + 7)]
    assert sundays("office") == sorted([(0, pair[0] + 7), (0, pair[1] + 7), (1, one_off + 7)])


def test_single_night_is_not_an_event():
    hours = np.arange(24 * 28)
    x = np.tile(np.where((hours % 24 >= 8) & (hours % 24 < 18), 10.0, 1.0), (1, 1))
    x[0, 10 * 24 + 23 : 10 * 24 + 29] = 4.0
    found = schedule_anomalies(x, start=START, config=config_for("household"))
    assert not [a for a in found if a.kind == "night_use"]


def test_cold_nights_are_explained_by_degree_hours():
    rng = np.random.default_rng(7)
    n_days = 56
    hours = np.arange(24 * n_days)
    te = 8.0 + 2.0 * np.sin(2 * np.pi * hours / (24 * 9)) + rng.normal(0, 0.5, hours.size)
    te[40 * 24 : 43 * 24] = -12.0  # a three-day cold snap
    dh = np.maximum(16.0 - te, 0.0)
    x = (0.3 + 0.1 * dh + rng.normal(0, 0.02, hours.size))[np.newaxis, :]
    plain = schedule_anomalies(x, start=START, config=config_for("gas"))
    assert [a for a in plain if a.kind == "night_use"]  # without the weather: cold nights
    term = fit_heating_term(x, te)
    with_dh = schedule_anomalies(x, start=START, heating=term, config=config_for("gas"))
    assert not [a for a in with_dh if a.kind == "night_use"]


def test_weather_correction_never_expects_negative_use():
    # Closed-day heating that starts only below some cold: a line through the cold windows
    # extrapolates below zero on the mild ones, where an idle 0 is no excess.
    rng = np.random.default_rng(3)
    dh = np.linspace(0.0, 12.0, 40) + rng.normal(0.0, 0.3, 40)
    mean = np.maximum(0.0, 2.0 * (dh - 5.0))[np.newaxis, :]
    bases = np.stack([np.maximum(dh - 2.0, 0.0), dh])
    excess, expected, _ = _weather_corrected_excess(mean, bases, np.zeros(40, dtype=np.int64), 1)
    assert expected.min() == 0.0
    assert_allclose(excess, mean - expected)
    assert excess[mean == 0.0].max() == 0.0  # an idle window is never above its expectation


def test_nights_after_closed_days_are_compared_with_each_other():
    rng = np.random.default_rng(10)
    hours = np.arange(24 * 7 * 10)  # START is a Monday
    hod, day = hours % 24, hours // 24
    closed = (day % 7) >= 5
    night = (hod >= 23) | (hod < 5)
    # Weekday 8-18 busy; after a closed day the building sits at its setback all night.
    x = np.where((hod >= 8) & (hod < 18) & ~closed, 10.0, 1.0)
    night_after_closed = night & np.where(hod >= 23, closed, np.roll(closed, 24))
    x = np.where(night_after_closed, 2.0, x) * rng.lognormal(0.0, 0.05, hours.size)
    start = 24 * 7 * 6 + 2 * 24  # heating left on five weekday nights from a Wednesday
    left_on = night & (hours >= start - 1) & (hours < start + 4 * 24 + 5)
    x = np.where(left_on, 6.0, x)[np.newaxis, :]
    found = schedule_anomalies(x, start=START, config=config_for("office"))
    assert [(a.kind, a.start) for a in found if a.kind == "night_use"] == [("night_use", start - 1)]


def test_window_mean_of_a_register_keeps_the_gaps_energy():
    x = np.ones((1, 12))
    x[0, 3] = np.nan
    x[0, 4] = 2.0  # the reading after the gap covers two hours
    starts, ends = np.array([0, 6]), np.array([6, 12])
    assert_allclose(_window_means(x, starts, ends, bridged=True), [[1.0, 1.0]])
    assert_allclose(_window_means(x, starts, ends), [[6.0 / 5.0, 1.0]])


def test_run_means_round_as_numpy_mean_of_each_run():
    rng = np.random.default_rng(5)
    v = rng.lognormal(0.0, 2.0, (40, 60)) * rng.choice([-1.0, 1.0], (40, 60))
    rows = rng.integers(0, 40, 300)
    first = rng.integers(0, 40, 300)
    stop = first + rng.integers(1, 20, 300)  # runs both shorter and longer than 8
    got = _run_means(v, rows, first, stop)
    want = [np.mean(v[r, f:e]) for r, f, e in zip(rows, first, stop, strict=True)]
    assert got.tolist() == want


def test_small_steady_night_excess_needs_a_share_of_mean_use():
    n_days = 28
    hours = np.arange(24 * n_days)
    hod = hours % 24
    x = np.where((hod >= 8) & (hod < 18), 10.0, 1.0)[np.newaxis, :].copy()
    x[0, 10 * 24 + 23 : 12 * 24 + 5] += 0.3  # +0.3 kWh/h over two nights, ~7 % of mean use
    x[0, (hod >= 23) | (hod < 5)] += 0.001 * np.sin(hours[(hod >= 23) | (hod < 5)])
    loose = DetectorConfig(schedule_min_share=0.0, check_weekends=False, check_holidays=False)
    strict = dataclasses.replace(loose, schedule_min_share=0.2)
    assert any(a.kind == "night_use" for a in schedule_anomalies(x, start=START, config=loose))
    assert not schedule_anomalies(x, start=START, config=strict)


def test_nights_after_dull_days_are_expected_higher_and_faults_do_not_set_the_slope():
    rng = np.random.default_rng(11)
    n = 200
    dh = rng.uniform(2.0, 10.0, n)
    sun = rng.uniform(20.0, 300.0, n)  # the day's mean irradiance [W/m²]
    mean = 1.0 + 0.5 * dh - 0.004 * sun + rng.normal(0.0, 0.05, n)
    left_on = np.argsort(sun)[:8]  # heating left on, on eight of the dullest days
    mean[left_on] += 3.0
    period = np.zeros(n, dtype=np.int64)
    resid = (mean - np.median(mean) - 0.5 * (dh - np.median(dh)))[np.newaxis, :]
    term = _sun_term(resid, sun, period, 1)
    ds = sun - np.median(sun)
    assert_allclose(term[0] / ds, -0.004, rtol=0.1)  # the faults left out of the slope
    excess, _, sigma = _weather_corrected_excess(
        mean[np.newaxis, :], dh[np.newaxis, :], period, 1, sun=sun
    )
    z = excess[0] / sigma[0]
    assert np.all(z[left_on] > 6.0)
    assert np.sum(z > 4.0) == left_on.size
    plain, _, plain_sigma = _weather_corrected_excess(
        mean[np.newaxis, :], dh[np.newaxis, :], period, 1
    )
    # Without the sun the dull days' spread is noise: the same faults stand out far less.
    assert np.min(plain[0, left_on] / plain_sigma[0, left_on]) < 0.5 * np.min(z[left_on])


def test_a_flat_run_through_one_closed_day_s_opening_hours_is_its_programme():
    x = np.zeros((1, 2 * W))
    sat, sun, fri = 5 * 24, 6 * 24, 4 * 24
    holiday = W + 24  # Tuesday of the second week
    x[0, sat + 9 : sat + 13] = 2.0  # the closed days' usual level: 0 (median)
    runs = [
        (sat + 7, sat + 19),  # the opening hours (day_hours 7–19)
        (sun + 6, sun + 18),  # from the preheat hour
        (holiday + 7, holiday + 19),  # a public holiday
        (sat + 2, sat + 14),  # from 2 am: a stuck register
        (fri + 7, fri + 19),  # an open day
        (sat + 12, sun + 12),  # over two days
    ]
    start, end = (np.array(v) for v in zip(*runs, strict=True))
    zeros = np.zeros(len(runs))
    flat = AnomalyEvents(
        "flatline", np.zeros(len(runs), dtype=np.int64), start, end, start,
        (end - start).astype(np.float64), zeros, zeros + 1.5,
    )  # fmt: skip
    kept, uses = closed_day_programmes(
        flat, x, start=START, steps_per_hour=1, config=config_for("gas"),
        holidays=[(START + timedelta(days=8)).date()], meter_offset=3,
    )  # fmt: skip
    assert [(u.kind, u.start, u.end, u.meter_index) for u in uses] == [
        ("weekend_use", sat + 7, sat + 19, 3),
        ("weekend_use", sun + 6, sun + 18, 3),
        ("holiday_use", holiday + 7, holiday + 19, 3),
    ]
    assert_allclose([(u.severity, u.expected, u.observed) for u in uses], [(12, 0, 1.5)] * 3)
    assert kept.start.tolist() == [sat + 2, fri + 7, sat + 12]
