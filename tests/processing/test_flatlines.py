"""Stuck registers and sensors on hand-made series: near-flat windows, exact repeats and
the rules that tell a meter's own flat habits."""

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from numpy.testing import assert_allclose, assert_array_equal

from processing.flatlines import (
    RUN_RATE_STEPS,
    _running_extreme,
    _spread_catch_up,
    flatline_mask,
    flatlines,
    near_flat_mask,
    peers_needed,
    repeat_runs,
)
from processing.quality import quality_scan, register_quantum
from processing.quality_config import QualityConfig


def test_flatline_needs_n_identical_values():
    x = np.array([[1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 4.0]])
    mask = flatline_mask(x, min_steps=6)
    assert_array_equal(np.flatnonzero(mask[0]), [1, 2, 3, 4, 5, 6])
    # Two adjacent flat runs both qualify at N=5.
    assert_array_equal(np.flatnonzero(flatline_mask(x, min_steps=5)[0]), np.arange(1, 12))
    ev = flatlines(x, min_steps=6)
    assert (ev.start[0], ev.end[0], ev.observed[0]) == (1, 7, 2.0)
    with pytest.raises(ValueError, match="min_steps"):
        flatline_mask(x, min_steps=1)


def test_a_daily_flat_routine_is_not_a_stuck_register():
    rng = np.random.default_rng(15)
    hours = np.arange(24 * 7 * 8)
    x = np.round(rng.gamma(2.0, 1.5, hours.size), 2)[np.newaxis, :]  # a busy, varied meter
    hot_water = (hours % 24 >= 7) & (hours % 24 < 17)
    x[0, hot_water] = 2.46  # ... but a constant draw 07-17 every day
    stuck = slice(24 * 40 + 18, 24 * 40 + 48)
    x[0, stuck] = 4.0  # stuck for 30 h from 18:00 on day 40
    # The habit rule alone (the peer rule would take the daily draws for the meter's way too).
    ev = quality_scan(x, QualityConfig(flatline_habit_need=3, flatline_peer_need=0))["flatline"]
    routine = QualityConfig(flatline_habit_need=0, flatline_peer_need=0)
    assert (quality_scan(x, routine)["flatline"].start >= 24 * 3).sum() > 3
    assert [s for s in ev.start if s >= 24 * 3] == [24 * 40 + 18]


def test_flat_nights_at_one_level_are_the_meter_s_way_a_stuck_day_is_not():
    rng = np.random.default_rng(16)
    hours = np.arange(24 * 7 * 8)
    x = np.round(rng.gamma(2.0, 1.5, hours.size), 2)[np.newaxis, :]  # a busy, varied meter
    nights = [24 * d + 20 for d in (5, 20, 35, 50)]  # mild nights, a fortnight apart
    for s in nights:
        x[0, s : s + 12] = 2.46  # the boiler holding the setback: 12 h at the same flow
    stuck = 24 * 42 + 9
    x[0, stuck : stuck + 30] = 2.46  # the register stuck for 30 h, at that flow too
    off = QualityConfig(flatline_peer_need=0)
    assert sorted(quality_scan(x, off)["flatline"].start.tolist()) == sorted([*nights, stuck])
    assert quality_scan(x)["flatline"].start.tolist() == [stuck]
    elsewhere = x.copy()
    elsewhere[0, nights[1] : nights[1] + 12] = 3.9  # one night at another level
    kept = quality_scan(elsewhere, QualityConfig(flatline_peer_need=3))["flatline"].start
    assert sorted(kept.tolist()) == sorted([nights[1], stuck])  # three alike: not enough


def test_alike_flat_episodes_that_make_a_habit_are_counted_per_year():
    """Three nights at one flow a fortnight apart: in a year's scan each has two alike, one
    short of the three a year asks, so all three are reported; the service's eight weeks
    holding them ask two, so none is."""
    assert [peers_needed(3, n) for n in (1344, 5840, 5841, 8760, 2 * 8760)] == [2, 2, 3, 3, 3]
    assert peers_needed(1, 1344) == 1
    rng = np.random.default_rng(17)
    x = np.round(rng.gamma(2.0, 1.5, 8760), 2)[np.newaxis, :]  # a busy, varied meter
    nights = [24 * d + 20 for d in (300, 315, 330)]
    for s in nights:
        x[0, s : s + 12] = 2.46  # the boiler holding the setback: 12 h at the same flow
    year = quality_scan(x)["flatline"].start
    first = 24 * 290
    weeks = quality_scan(x[:, first : first + 24 * 56])["flatline"].start + first
    # A random hour next to a night may fall within its flat tolerance and join it.
    assert all(np.abs(year - s).min() <= 2 for s in nights)
    assert not any((np.abs(weeks - s) <= 12).any() for s in nights)


def test_a_school_stuck_at_its_weekend_level_through_school_days_is_a_flatline():
    """A school reads ≈ 8 kWh an hour closed (nights, weekends) and 20 at lessons. Its
    register stuck at 8 from Sunday 09:00 to Wednesday 09:00 looks like one more weekend
    to the peer rule; its Monday and Tuesday hours, usually busy, tell it apart. Two
    closed days after a weekend (a holiday and its bridge) are no fault."""
    rng = np.random.default_rng(4)
    hours = np.arange(24 * 7 * 10)  # from a Monday
    day, hod = hours // 24, hours % 24
    lessons = (day % 7 < 5) & (hod >= 8) & (hod < 18)
    x = np.where(lessons, 20.0, 8.0) * (1 + 0.004 * rng.standard_normal(hours.size))
    x = x[np.newaxis, :]
    holiday = 7 * 6  # a Monday and the Tuesday after it, closed
    x[0, 24 * holiday : 24 * holiday + 48] = 8.0 * (1 + 0.004 * rng.standard_normal(48))
    stuck = 24 * (7 * 8 + 6) + 9  # Sunday 09:00, for 72 h
    x[0, stuck : stuck + 72] = 8.0 * (1 + 0.004 * rng.standard_normal(72))
    weekends = day % 7 >= 5
    closed = weekends | (day == holiday) | (day == holiday + 1)
    found = quality_scan(x, closed=closed)["flatline"]
    late = [(s, e) for s, e in zip(found.start, found.end, strict=True) if s > 24 * 28]
    assert late == [(stuck, stuck + 72)]
    unknown = quality_scan(x, closed=weekends)["flatline"].start  # the holidays not given
    first, second = sorted(s for s in unknown.tolist() if s > 24 * 28)
    assert 24 * (holiday - 2) <= first < 24 * holiday and second == stuck  # from the weekend
    assert not (quality_scan(x)["flatline"].start > 24 * 28).any()  # no calendar: off


def test_a_school_stuck_at_its_lessons_use_through_a_night_at_standby_is_a_flatline():
    """A school like the one above, its register stuck at the lessons' 20 kWh an hour from Wednesday
    18:00 to Thursday 08:00, through a night it reads 8 at standby, flat as usual then:
    with ``flatline_idle_ratio`` 2 it is stuck (20 ≥ 2 × 8 plus the rounding); a night at
    12, raised half as much again, is not; without the rule neither is found."""
    rng = np.random.default_rng(5)
    hours = np.arange(24 * 7 * 10)  # from a Monday
    day, hod = hours // 24, hours % 24
    lessons = (day % 7 < 5) & (hod >= 8) & (hod < 18)
    # Lessons vary by 8 %, the standby by 0.4 %: no day-long window is flat.
    x = np.where(lessons, 20.0 * (1 + 0.08 * rng.standard_normal(hours.size)), 8.0)
    x = np.round(x * (1 + 0.004 * rng.standard_normal(hours.size)), 3)[np.newaxis, :]
    stuck = 24 * (7 * 8 + 2) + 18  # Wednesday 18:00, for 14 h
    x[0, stuck : stuck + 14] = np.round(20.0 * (1 + 0.001 * rng.standard_normal(14)), 3)
    raised = 24 * (7 * 6 + 1) + 18  # a Tuesday night at 12, two weeks before
    x[0, raised : raised + 14] = np.round(12.0 * (1 + 0.001 * rng.standard_normal(14)), 3)
    closed = day % 7 >= 5
    found = quality_scan(x, QualityConfig(flatline_idle_ratio=2.0), closed=closed)["flatline"]
    late = [(s, e) for s, e in zip(found.start, found.end, strict=True) if s > 24 * 28]
    assert late == [(stuck, stuck + 14)]
    off = quality_scan(x, QualityConfig(), closed=closed)["flatline"]
    assert not (off.start > 24 * 28).any()


def test_near_flat_register_is_found_despite_rounding_and_jitter():
    rng = np.random.default_rng(0)
    hours = np.arange(24 * 7 * 6)
    flow = 0.5 + 0.4 * np.sin(2 * np.pi * hours / 24) + rng.gamma(2.0, 0.1, hours.size)
    x = np.round(flow, 3)[np.newaxis, :]
    stuck = slice(24 * 7 * 5 + 3, 24 * 7 * 5 + 15)
    x[0, stuck] = np.round(0.8 * (1 + rng.uniform(-0.008, 0.008, 12)), 3)
    mask = near_flat_mask(x, min_steps=6, quantum=0.001)
    assert mask[0, stuck].all()
    assert mask[0].sum() <= 14
    assert not flatline_mask(x).any()  # exact equality misses it


def _stuck_registers(rng, meters=9, hours=24 * 7 * 7):
    h = np.arange(hours)
    flow = 0.5 + 0.4 * np.sin(2 * np.pi * h / 24) + rng.gamma(2.0, 0.1, (meters, hours))
    x = np.round(flow, 3)
    for i in range(meters):
        s = rng.integers(24 * 7 * 4, hours - 40)
        x[i, s : s + rng.integers(6, 30)] = np.round(0.8 * (1 + rng.uniform(-0.008, 0.008)), 3)
        x[i, rng.integers(0, hours, 4)] = np.nan
    return x


def test_running_extreme_matches_window_reduction():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(3, 50))
    a[1, 7] = np.nan
    for width in range(2, 10):
        k = a.shape[1] - width + 1
        windows = sliding_window_view(a, width, axis=1)
        for fn, ref in ((np.maximum, windows.max(axis=2)), (np.minimum, windows.min(axis=2))):
            out, tmp = np.empty_like(a), np.empty_like(a)
            _running_extreme(a, width, fn, out, tmp)
            assert_array_equal(out[:, :k], ref)
            # From the extremes over shorter windows, as the day-long windows are built.
            for span in range(2, width + 1):
                short = np.full_like(a, -7.0)  # the tail beyond the short windows is junk
                _running_extreme(a, span, fn, short, tmp)
                _running_extreme(short, width, fn, out, tmp, span=span)
                assert_array_equal(out[:, :k], ref)


def test_blocks_of_meters_do_not_change_results():
    x = _stuck_registers(np.random.default_rng(3))
    q = register_quantum(x)
    assert_array_equal(q, register_quantum(x, block_meters=2))
    assert_allclose(q, 0.001)
    whole = near_flat_mask(x, quantum=q, block_meters=len(x))
    assert whole.any()
    for block in (1, 4):
        assert_array_equal(near_flat_mask(x, quantum=q, block_meters=block), whole)


def _steady_day_flow(rng: np.random.Generator, weeks: int = 6) -> np.ndarray:
    """Register with a daily cycle; every weekday 12:00-18:00 it reads 2.0 ± rounding."""
    h = np.arange(24 * 7 * weeks)
    x = np.round(1.0 + 0.8 * np.sin(2 * np.pi * h / 24) + rng.gamma(2.0, 0.1, h.size), 3)
    return x[np.newaxis, :]


def test_a_register_stuck_at_its_own_peak_for_days_is_found():
    rng = np.random.default_rng(4)
    x = _steady_day_flow(rng)
    level = float(np.quantile(x, 0.99))  # above all but its top hour or two a week
    stuck = slice(24 * 7 * 5 + 3, 24 * 7 * 5 + 63)  # 60 h: more than its top 0.5 % of hours
    x[0, stuck] = np.round(level * (1 + rng.uniform(-0.005, 0.005, 60)), 3)
    ev = quality_scan(x)["flatline"]
    assert len(ev) == 1
    assert ev.start[0] == stuck.start and ev.end[0] >= stuck.stop - 1


def test_short_flat_stretch_is_not_a_flatline_event_but_a_long_one_is():
    rng = np.random.default_rng(4)
    x = _steady_day_flow(rng)
    s = 24 * 7 * 5 + 12
    short = x.copy()
    short[0, s : s + 7] = 2.0
    long_ = x.copy()
    long_[0, s : s + 30] = 2.0
    assert len(quality_scan(short)["flatline"]) == 0
    assert len(quality_scan(short, QualityConfig(flatline_event_steps=0))["flatline"]) == 1
    ev = quality_scan(long_)["flatline"]
    assert len(ev) == 1
    assert ev.start[0] <= s and ev.end[0] >= s + 30


def test_flat_runs_across_a_bridged_gap_form_one_event():
    rng = np.random.default_rng(5)
    x = _steady_day_flow(rng)
    s = 24 * 7 * 5 + 2
    x[0, s : s + 30] = 2.0
    x[0, s + 12] = np.nan
    x[0, s + 13] = 4.0  # the bridged reading carries the missing hour
    ev = quality_scan(x)["flatline"]
    assert len(ev) == 1
    assert len(quality_scan(x, QualityConfig(flatline_merge_gap=0))["flatline"]) == 2


def test_repeat_runs_length_adapts_to_how_often_the_sensor_repeats_by_chance():
    rng = np.random.default_rng(3)
    n = 24 * 7 * 8
    # Two rooms read to 0.1 K: one noisy (rarely repeats), one steady (often repeats).
    noisy = np.round(20 + rng.normal(0, 0.3, n), 1)
    steady = np.round(20 + rng.normal(0, 0.04, n), 1)
    x = np.stack([noisy, steady])
    x[0, 500:508] = x[0, 500]  # 8 h stuck
    x[1, 500:560] = 20.37  # 60 h stuck, a value it never reads otherwise
    ev = repeat_runs(x, min_steps=6, false_runs=0.02)
    got = {(int(r), int(s), int(e)) for r, s, e in zip(ev.meter_index, ev.start, ev.end)}
    assert (0, 500, 508) in got or any(r == 0 and s <= 500 and e >= 508 for r, s, e in got)
    assert (1, 500, 560) in got
    # The steady room repeats itself half the time: its chance runs of 6–10 are not flagged.
    assert all(e - s >= 12 for r, s, e in got if r == 1)
    assert_array_equal(ev.severity, ev.end - ev.start)


def test_flat_window_of_one_or_two_quanta_is_rounding_not_a_stuck_register():
    rng = np.random.default_rng(5)
    n = 24 * 7 * 6
    hours = np.arange(n)
    # Off part of every day (idle level 0), so low flat windows are not at the idle level.
    flow = np.maximum(0.0, 1.0 + 2.5 * np.sin(2 * np.pi * hours / 24)) + rng.gamma(2.0, 0.3, n)
    flow[flow < 0.3] = 0.0
    x = (np.round(flow / 0.112) * 0.112)[np.newaxis, :]
    x[0, 900:930] = np.where(np.arange(30) % 3, 0.112, 0.224)  # idling at 1–2 quanta
    x[0, 700:730] = 2.24  # stuck at 20 quanta
    mask = near_flat_mask(x, min_steps=6, quantum=0.112, min_level_quanta=3.0)
    assert mask[0, 700:730].all()
    assert not mask[0, 900:930].any()
    loose = near_flat_mask(x, min_steps=6, quantum=0.112, min_level_quanta=0.0)
    assert loose[0, 900:930].any()  # the floor is what spares the idling register


def test_home_register_stuck_at_its_baseload_is_found():
    rng = np.random.default_rng(7)
    h = np.arange(24 * 7 * 6)
    # Nights at the baseload (fridge, standby) with its ups and downs, days above it.
    day = (h % 24 >= 7) & (h % 24 < 23)
    x = np.round(0.32 + rng.gamma(2.0, 0.04, h.size) + day * rng.gamma(2.0, 0.3, h.size), 3)
    x = x[np.newaxis, :]
    stuck = slice(24 * 7 * 5 + 1, 24 * 7 * 5 + 61)  # stuck at its lowest 2 %
    x[0, stuck] = np.round(np.quantile(x, 0.02) * (1 + rng.uniform(-0.008, 0.008, 60)), 3)
    ev = quality_scan(x)["flatline"]
    assert len(ev) == 1
    assert ev.start[0] <= stuck.start + 1 and ev.end[0] >= stuck.stop - 1


def _summer_gas_home(seed: int) -> tuple[np.ndarray, float]:
    """Seven weeks of a gas home in summer: a few quanta an hour, flat-ish for hours, hot
    water at 7 and 19; and its register's quantum [kWh]."""
    rng = np.random.default_rng(seed)
    q = 0.112
    hour = np.arange(24 * 7 * 7) % 24
    quanta = rng.integers(2, 5, hour.size) * (hour >= 6) + 10 * (hour == 7) + 8 * (hour == 19)
    return (quanta * q)[np.newaxis, :], q


def test_register_stuck_at_a_summer_gas_level_is_found_by_the_day_long_window():
    x, q = _summer_gas_home(6)
    stuck = slice(24 * 7 * 6 + 2, 24 * 7 * 6 + 42)  # 40 h at 3.5 quanta, read as 3s and 4s
    x[0, stuck] = np.where(np.arange(40) % 2, 3 * q, 4 * q)
    short = near_flat_mask(x, min_steps=6, quantum=q, min_level_quanta=3.0)
    day = near_flat_mask(x, min_steps=6, quantum=q, min_level_quanta=3.0, day_steps=24)
    assert not short[0, stuck].all()  # its 6-hour windows are as flat as the home's own
    assert day[0, stuck].all()
    assert not day[0, : stuck.start].any()  # and no day of its own is flat
    ev = quality_scan(x)["flatline"]
    assert len(ev) == 1
    # The next hour may read 3 or 4 quanta by chance and extend it by one.
    assert ev.start[0] == stuck.start and stuck.stop <= ev.end[0] <= stuck.stop + 1
    # Stuck lower, at two quanta: found, unless two quanta count as rounding.
    x[0, stuck] = 2 * q
    assert len(quality_scan(x)["flatline"]) == 1
    rounding = QualityConfig(flatline_min_quanta=3.0, flatline_day_min_quanta=3.0)
    assert len(quality_scan(x, rounding)["flatline"]) == 0


def test_a_summer_gas_home_stuck_a_few_quanta_above_its_usual_hours_is_found():
    rng = np.random.default_rng(31)
    q = 0.112
    h = np.arange(24 * 7 * 6)
    hour = h % 24
    # Hot water a quantum at a time in waking hours, nothing at night: about 1 kWh a day.
    quanta = rng.integers(0, 2, h.size) * (hour >= 6) + rng.integers(0, 3, h.size) * (hour == 7)
    clean = (quanta * q)[np.newaxis, :]
    x = clean.copy()
    # Stuck for 100 h at 3 quanta an hour (a 2 now and then): 8 kWh a day. Its steps are
    # no further from the usual than a few quanta, but its day's mean is, and a mean is
    # rounded once by the register, not at every step.
    stuck = slice(24 * 7 * 5 + 15, 24 * 7 * 5 + 115)
    x[0, stuck] = np.where(np.arange(100) % 5 == 3, 2 * q, 3 * q)
    ev = quality_scan(x)["flatline"]
    assert len(ev) == 1
    assert stuck.start <= ev.start[0] <= stuck.start + 3 and ev.end[0] >= stuck.stop - 1
    assert len(quality_scan(clean)["flatline"]) == 0


def test_a_flow_stuck_near_a_quantum_an_hour_is_found_by_its_days_not_its_hours():
    rng = np.random.default_rng(32)
    q = 0.112
    h = np.arange(24 * 7 * 6)
    hour = h % 24
    # A gas home in summer: idle at night, hot water mornings and evenings, a quantum or
    # two an hour in between: about 4 kWh a day.
    awake = (hour >= 6) & (hour < 23)
    draws = rng.integers(3, 7, h.size) * ((hour == 7) | (hour == 19))
    quanta = np.where(awake, rng.integers(1, 3, h.size), 0) + draws
    x = (quanta * q)[np.newaxis, :]
    stuck = slice(24 * 7 * 5 + 2, 24 * 7 * 5 + 74)  # three days at 1.2 quanta an hour
    x[0, stuck] = np.where(np.arange(72) % 5 == 4, 2 * q, q)
    ev = quality_scan(x)["flatline"]
    assert len(ev) == 1
    assert stuck.start - 2 <= ev.start[0] <= stuck.start + 3 and ev.end[0] >= stuck.stop - 1
    # An hour at one quantum or two is rounding: the six-hour windows alone do not tell it.
    assert len(quality_scan(x, QualityConfig(flatline_day_min_quanta=1.5))["flatline"]) == 0


def test_a_gap_carried_by_the_next_reading_is_spread_only_inside_a_flat_run():
    nan = np.nan
    x = np.array([[1.0, 1.0, nan, 2.0, 1.0, 0.0, nan, nan, 6.0, 2.0, 5.0, nan, 9.0, 5.0]])
    got = _spread_catch_up(x, 2, np.array([[0.1]]), 0.0)
    # Spread inside the run at 1. Left where the reading before the gap is not the share:
    # 0 against 2 (a change of level), 5 against 4.5.
    want = [[1.0, 1.0, 1.0, 1.0, 1.0, 0.0, nan, nan, 6.0, 2.0, 5.0, nan, 9.0, 5.0]]
    assert_array_equal(got, want)
    assert_array_equal(_spread_catch_up(x, 0, np.array([[0.1]]), 0.0), x)
    # Whatever it spreads, each row's energy is kept and its readings elsewhere untouched.
    rng = np.random.default_rng(33)
    flows = np.repeat(rng.integers(1, 4, (50, 40)), 5, axis=1).astype(np.float64)
    lost = rng.random(flows.shape) < 0.15
    read = np.where(lost, np.nan, flows)
    for r, c in zip(*np.nonzero(lost), strict=True):  # the next reading carries the gap
        after = c + 1 + np.argmax(~lost[r, c + 1 :]) if (~lost[r, c + 1 :]).any() else None
        if after is not None:
            read[r, after] += flows[r, c]
    got = _spread_catch_up(read, 2, np.full(50, 0.01), 0.0)
    assert_allclose(np.nansum(got, axis=1), np.nansum(read, axis=1))
    assert np.isnan(got).sum() < np.isnan(read).sum()
    r, c = np.nonzero(~np.isclose(got, read, equal_nan=True) & ~np.isnan(read))
    assert c.size and np.isnan(read[r, c - 1]).all()  # only readings that carry a gap


def test_a_stuck_flow_s_lost_readings_do_not_break_its_day_long_window():
    x, q = _summer_gas_home(6)
    stuck = slice(24 * 7 * 6 + 2, 24 * 7 * 6 + 32)  # 30 h, found by its day-long windows
    x[0, stuck] = np.where(np.arange(30) % 2, 3 * q, 4 * q)
    for lost in (9, 19):  # each lost hour's energy comes with the next reading
        x[0, stuck.start + lost] = np.nan
        x[0, stuck.start + lost + 1] = 7 * q
    ev = quality_scan(x, bridged=True)["flatline"]
    assert len(ev) == 1
    assert ev.start[0] == stuck.start and ev.end[0] >= stuck.stop
    # Read as gaps, the lost hours leave no day-long window: found half a day late.
    late = quality_scan(x)["flatline"]
    assert len(late) == 1 and late.start[0] >= stuck.start + 10
    assert_array_equal(
        quality_scan(x, QualityConfig(flatline_spread_gaps=False), bridged=True)["flatline"].start,
        late.start,
    )


def test_quality_scan_uses_exact_repeats_for_sensors():
    rng = np.random.default_rng(9)
    x = np.round(20 + rng.normal(0, 0.3, (1, 24 * 7 * 6)), 1)
    x[0, 300:340] = 21.0
    found = quality_scan(x, QualityConfig(flatline_exact=True))["flatline"]
    assert [(int(s), int(e)) for s, e in zip(found.start, found.end)] == [(300, 340)]


def _hourly_register(use: np.ndarray, q: float, jitter_s: np.ndarray) -> np.ndarray:
    """Interval use of a register read ``jitter_s`` off each hour's end, floored to ``q``."""
    index = np.cumsum(use, axis=1)
    late = jitter_s / 3600.0
    index += late * np.concatenate([use[:, 1:], use[:, -1:]], axis=1)
    read = np.floor(index / q + 1e-9) * q
    return np.diff(read, axis=1, prepend=0.0)


def test_a_stuck_register_keeps_its_index_on_a_line_steady_real_use_does_not():
    rng = np.random.default_rng(14)
    meters, h = 40, np.arange(24 * 7 * 6)
    use = 40.0 + 25.0 * np.sin(2 * np.pi * h / 24) + rng.gamma(2.0, 2.0, (meters, h.size))
    slot = slice(24 * 7 * 5 + 12, 24 * 7 * 5 + 32)  # 20 h
    use[:20, slot] = 50.0  # a stuck sensor: one rate
    # A building in steady flow: within 2.5 % of 50 kWh each hour, but every hour its own.
    use[20:, slot] = 50.0 * (1.0 + np.clip(rng.normal(0.0, 0.012, (20, 20)), -0.025, 0.025))
    x = _hourly_register(use, 0.1, rng.integers(-30, 31, use.shape))
    x[::3, slot.start + 10] += x[::3, slot.start + 9]  # a lost reading; the next catches up
    x[::3, slot.start + 9] = np.nan
    flat = quality_scan(x, QualityConfig(flatline_index_tol=0.0))["flatline"]
    assert np.isin(np.arange(20), flat.meter_index).all()
    near_flat = np.isin(np.arange(20, meters), flat.meter_index).sum()
    assert near_flat >= 15  # most of the steady ones read as near flat
    ev = quality_scan(x)["flatline"]
    stuck = ev.select(ev.meter_index < 20)
    assert_array_equal(stuck.meter_index, np.arange(20))
    assert (stuck.start <= slot.start + 1).all() and (stuck.end >= slot.stop - 1).all()
    # Chance holds a steady hour-to-hour wander on a line now and then, but rarely.
    assert np.sum(ev.meter_index >= 20) <= near_flat // 4


def test_a_sensor_s_chance_runs_are_counted_near_the_run_not_over_the_year():
    rng = np.random.default_rng(5)
    n = 24 * 7 * 6
    t = np.arange(n)
    # Six summer weeks drifting slowly (runs of 12–18 equal readings by nature), then six
    # winter weeks held by the thermostat (about one reading in five repeats the last).
    summer = np.round(22 + 0.6 * np.sin(2 * np.pi * t / 120) + rng.normal(0, 0.02, n), 1)
    winter = np.round(20 + rng.normal(0, 0.15, n), 1)
    x = np.concatenate([summer, winter])
    same = x[1:] == x[:-1]
    assert same[:n].mean() > 0.7 and same[n:].mean() < 0.25
    # 10 h stuck in winter, the summer's runs out of reach of its count.
    stuck = n + RUN_RATE_STEPS + 24
    x[stuck : stuck + 10] = x[stuck]
    ev = repeat_runs(x[np.newaxis, :], min_steps=6, false_runs=0.02)
    # Found; and the summer's runs, longer than it, are not.
    assert list(zip(ev.start.tolist(), ev.end.tolist())) == [(stuck, stuck + 10)]
    # Counted over the whole series, the summer's runs made 10 h look likely by chance.
    runs = np.split(same, np.flatnonzero(np.diff(same)) + 1)
    pairs = np.array([min(r.size - 1, 12) for r in runs if r[0]], dtype=float)
    ended = np.array([r.size - 1 < 12 for r in runs if r[0]], dtype=float)
    r_year = pairs.sum() / (pairs.sum() + ended.sum())
    g_year = pairs.size / x.size
    shortest = 2 + np.ceil(np.log(0.02 / 8760 / g_year) / np.log(r_year))
    assert shortest > 10


def test_a_room_held_by_its_thermostat_repeats_for_hours_by_chance_a_stuck_sensor_longer():
    rng = np.random.default_rng(21)
    n = 24 * 7 * 8
    # A room wandering about 20 °C, read to 0.1 K; every day or two its thermostat holds it
    # at one reading for 2–11 h.
    wander = np.zeros(n)
    for i, e in enumerate(rng.normal(0.0, 0.25, n)[1:], start=1):
        wander[i] = 0.8 * wander[i - 1] + e
    x = np.round(20 + wander, 1)
    start = int(rng.integers(20, 60))
    while start < n - 24:
        x[start : start + int(rng.integers(2, 12))] = x[start]
        start += int(rng.integers(20, 60))
    x[900:930] = 23.4  # stuck for 30 h
    x[915] = np.nan  # with one reading lost
    ev = repeat_runs(x[np.newaxis, :], min_steps=6, false_runs=0.02)
    assert list(zip(ev.start.tolist(), ev.end.tolist())) == [(900, 930)]
    # Against the share of equal neighbours over all hours, held hours looked stuck.
    same = x[1:] == x[:-1]
    shortest = 1 + np.ceil(np.log(0.02 / 8760) / np.log(same.mean()))
    runs = np.split(same, np.flatnonzero(np.diff(same)) + 1)
    held = [run.size + 1 for run in runs if run[0] and run.size + 1 < 15]
    assert sum(k >= shortest for k in held) >= 3


def test_a_register_stuck_at_an_evening_s_use_through_the_night_it_usually_idles_is_found():
    rng = np.random.default_rng(23)
    h = np.arange(24 * 7 * 6)
    weekday, hour = (h // 24) % 7 < 5, h % 24
    open_hours = weekday & (hour >= 7) & (hour < 19)
    # Two offices heated in working hours: one off at night, one held at 13 kWh/h at night
    # by a steady load, flat by nature.
    use = np.where(open_hours, rng.gamma(20.0, 1.0, (2, h.size)), 0.0)
    use[1] = np.where(open_hours, use[1], 13.0)
    x = np.round(use, 3)
    stuck = slice(24 * 7 * 5 + 24 * 2 + 19, 24 * 7 * 5 + 24 * 3 + 13)  # Wednesday 19:00, 18 h
    x[:, stuck] = 13.0
    ev = quality_scan(x)["flatline"]
    assert_array_equal(ev.meter_index, [0])  # the steady night's level is the other's idle
    assert ev.start[0] == stuck.start and ev.end[0] >= stuck.stop - 1


def test_a_register_stuck_for_over_a_week_is_one_event_found_by_its_first_week():
    rng = np.random.default_rng(4)
    x = _steady_day_flow(rng, weeks=9)
    s = 24 * 7 * 7 + 5
    x[0, s : s + 220] = 2.0  # over nine days, more window starts than are tested
    ev = quality_scan(x)["flatline"]
    assert len(ev) == 1
    assert ev.start[0] <= s + 1 and ev.end[0] >= s + 219
