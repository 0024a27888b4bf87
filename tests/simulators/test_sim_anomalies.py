"""Anomaly injection: labels line up with changes, rate and mix, schedule kinds, seeding."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from simulators.anomalies import (
    KINDS,
    default_eligibility,
    inject_anomalies,
    place_events,
    ragged_steps,
)
from simulators.weather import hourly_timestamps, paris_local_time

STEPS = 24 * 365
TS = hourly_timestamps("2024-01-01", STEPS)


def _clean(meters=300, temp_meters=60, seed=0):
    rng = np.random.default_rng(seed)
    energy = rng.gamma(4.0, 0.5, (meters, STEPS)).astype(np.float32) + np.float32(0.1)
    temp = (20 + rng.normal(0, 0.5, (temp_meters, STEPS))).astype(np.float32)
    values = np.concatenate([energy, temp])
    is_temp = np.arange(values.shape[0]) >= meters
    eligible = default_eligibility(temperature=is_temp, heating=~is_temp, cumulative=~is_temp)
    return values, is_temp, eligible


@pytest.fixture(scope="module")
def injected():
    values, is_temp, eligible = _clean()
    out, labels = inject_anomalies(
        values,
        TS,
        rng=np.random.default_rng(1),
        rate_per_year=3.0,
        eligible=eligible,
        temperature=is_temp,
        outdoor_temp_c=np.full(STEPS, 5.0),
    )
    return values, out, labels, is_temp


def test_ragged_steps():
    steps, event = ragged_steps([5, 0, 10], [2, 0, 3])
    assert_array_equal(steps, [5, 6, 10, 11, 12])
    assert_array_equal(event, [0, 0, 2, 2, 2])


def test_series_differs_from_clean_only_inside_label_windows(injected):
    clean, out, labels, _ = injected
    changed = ~((out == clean) | (np.isnan(out) & np.isnan(clean)))
    inside = np.zeros_like(changed)
    rows = labels.meter
    for r, s, e in zip(rows, labels.start_step, labels.stop_step, strict=True):  # label check
        inside[r, s:e] = True
    assert not np.any(changed & ~inside)
    for i in np.flatnonzero(labels.kind != "counter_reset"):
        r, s, e = labels.meter[i], labels.start_step[i], labels.stop_step[i]
        assert changed[r, s:e].any(), (labels.kind[i], s, e)
    assert_array_equal(labels.start, TS[labels.start_step])
    assert_array_equal(labels.end, TS[labels.stop_step - 1])


def test_windows_never_overlap_on_a_meter(injected):
    _, _, labels, _ = injected
    same = labels.meter[1:] == labels.meter[:-1]
    assert np.all(labels.start_step[1:][same] >= labels.stop_step[:-1][same])


def test_rate_mix_and_eligibility(injected):
    clean, _, labels, is_temp = injected
    expected = 3.0 * clean.shape[0] * 365 / 365
    assert 0.85 * expected < len(labels) < 1.15 * expected
    assert set(labels.kind) == set(KINDS)
    temp_kinds = set(labels.kind[is_temp[labels.meter]])
    assert temp_kinds <= {"spike", "dropout", "flatline", "drift", "sensor_offset"}
    shift = labels.kind == "level_shift"
    assert np.all(np.abs(labels.magnitude[shift]) >= 0.2)


def test_heating_on_holiday_only_where_the_building_closes():
    is_temp = np.array([False, False, False, True])
    closes = np.array([True, False, True, True])
    heating = np.array([True, True, False, False])
    ok = default_eligibility(
        temperature=is_temp, heating=heating, cumulative=~is_temp, closes=closes
    )
    holiday = ok[:, KINDS.index("heating_on_holiday")]
    night = ok[:, KINDS.index("heating_at_night")]
    assert_array_equal(holiday, [True, False, False, False])  # a home heated on Sunday is in use
    assert_array_equal(night, [True, True, False, False])


def test_schedule_kinds_hit_the_right_hours(injected):
    clean, out, labels, _ = injected
    hour, weekday = paris_local_time(TS)
    for kind, allowed in (
        ("heating_at_night", hour < 6),
        ("heating_on_holiday", (hour >= 7) & (hour < 19)),
    ):
        for i in np.flatnonzero(labels.kind == kind):
            r, s, e = labels.meter[i], labels.start_step[i], labels.stop_step[i]
            diff = out[r, s:e] != clean[r, s:e]
            assert diff.any()
            assert not np.any(diff & ~allowed[s:e])
    holiday = labels.start_step[labels.kind == "heating_on_holiday"]
    assert np.all((weekday[holiday] == 5) & (hour[holiday] == 0))


def test_mix_restricts_kinds_and_seed_reproduces():
    values, _, eligible = _clean(meters=50, temp_meters=0)
    kwargs = {"rate_per_year": 5.0, "mix": {"spike": 1.0, "flatline": 1.0}, "eligible": eligible}
    a, la = inject_anomalies(values, TS, rng=np.random.default_rng(3), **kwargs)
    b, lb = inject_anomalies(values, TS, rng=np.random.default_rng(3), **kwargs)
    c, _ = inject_anomalies(values, TS, rng=np.random.default_rng(4), **kwargs)
    assert set(la.kind) == {"spike", "flatline"}
    assert_array_equal(a, b)
    assert_array_equal(la.start, lb.start)
    assert not np.array_equal(a, c)


def test_unknown_kind_is_refused():
    values, _, _ = _clean(meters=2, temp_meters=0)
    with pytest.raises(ValueError, match="mix"):
        inject_anomalies(
            values, TS, rng=np.random.default_rng(0), rate_per_year=1.0, mix={"meteor": 1.0}
        )


def test_events_are_spread_evenly_in_time_and_a_short_slot_gets_its_share():
    # Each row's slots begin at a phase of its own: events per step alike over the series,
    # in its short first and last slots too, and no day of the fleet's when they all begin.
    rng = np.random.default_rng(4)
    steps = 10 * 336 + 24
    row, start, length = place_events(rng, 20_000, steps, slot_steps=336, probability=0.5)
    assert (length >= 1).all() and (start + length <= steps).all()
    # Slot starts fall on every day of the fortnight alike, not on one day of it.
    by_day = np.bincount((start[start > 0] % 336) // 24, minlength=14)
    assert by_day.min() > 0.9 * by_day.mean()
    # Events in proportion to the steps a slot holds: 0.5 per 336 steps of each row.
    assert row.size == pytest.approx(20_000 * 0.5 * steps / 336, rel=0.02)
    order = np.lexsort((start, row))
    same_row = row[order][1:] == row[order][:-1]
    assert (start[order][1:][same_row] >= (start + length)[order][:-1][same_row]).all()
