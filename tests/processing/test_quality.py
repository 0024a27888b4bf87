"""Data-quality rules on hand-made series (stuck registers: test_flatlines.py)."""

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal

from processing.flatlines import flatline_mask
from processing.quality import (
    counter_resets,
    impossible_jumps,
    negative,
    outages,
    quality_scan,
    register_quantum,
    zero_runs,
)
from processing.quality_config import QualityConfig


def test_zeros_are_not_flatlines_but_zero_runs():
    x = np.zeros((1, 30))
    assert not flatline_mask(x).any()
    ev = zero_runs(x, min_steps=24)
    assert (ev.start[0], ev.end[0], ev.severity[0]) == (0, 30, 30.0)


def test_negative_outage_jump_reset():
    x = np.array([[1.0, -0.5, np.nan, np.nan, 50.0, 1.0]])
    assert_array_equal(negative(x).start, [1])
    out = outages(x)
    assert (out.start[0], out.end[0], out.severity[0]) == (2, 4, 2.0)
    jump = impossible_jumps(x, max_step=np.array([[10.0]]))
    assert (jump.start[0], jump.severity[0], jump.observed[0]) == (4, 5.0, 50.0)
    resets = counter_resets([[5.0, 6.0, 1.0, 2.0]])
    assert (resets.start[0], resets.expected[0], resets.observed[0]) == (2, 6.0, 1.0)


def test_outages_longer_than_the_links_own_losses():
    rng = np.random.default_rng(11)
    n = 8760
    x = np.ones((2, n))
    x[0, rng.random(n) < 0.1] = np.nan  # a lossy link: 10 % of readings lost
    x[1, rng.random(n) < 0.005] = np.nan  # a good one
    x[:, 4000:4008] = np.nan  # an 8-hour outage on both
    x[1, 6000:6003] = np.nan  # and a 3-hour one on the good link
    plain = outages(x, min_steps=3)
    assert (plain.meter_index == 0).sum() > 3  # chance runs of three lost readings
    ev = outages(x, min_steps=3, false_runs=0.1)
    lossy = ev.meter_index == 0
    assert_array_equal(ev.start[lossy], [4000])
    assert_array_equal(ev.start[~lossy], [4000, 6000])


def test_a_link_s_chance_gaps_are_judged_alike_in_a_year_or_in_eight_weeks():
    rng = np.random.default_rng(12)
    n = 8760
    x = np.ones((1, n))
    x[0, rng.random(n) < 0.03] = np.nan  # 3 % of readings lost
    x[0, 8000:8003] = np.nan  # three in a row: chance, at that rate
    x[0, 8200:8208] = np.nan  # eight: an outage
    year = outages(x, min_steps=3, false_runs=0.1)
    weeks = outages(x[:, n - 1344 :], min_steps=3, false_runs=0.1)
    # The service scans eight weeks every day: a budget of chance runs per window would
    # take the three lost readings for an outage there, and not in the year.
    assert [s for s in year.start.tolist() if s >= n - 1344] == [8200]
    assert (weeks.start + n - 1344).tolist() == [8200]


def test_frost_is_not_negative_consumption_for_a_thermometer():
    x = np.array([[2.0, 0.5, -1.5, -2.0, 0.3] * 10])
    assert len(quality_scan(x)["negative"]) == 10
    assert len(quality_scan(x, QualityConfig(check_negative=False))["negative"]) == 0


def test_scan_returns_every_rule():
    assert set(quality_scan(np.ones((2, 48)))) == {"negative", "outage", "zero_run", "flatline"}


def test_register_quantum():
    x = np.array([[0.0, 0.112, 0.224, 0.112, np.nan, 0.336], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])
    assert_allclose(register_quantum(x), [0.112, 0.0])


def test_idle_summer_gas_is_not_a_zero_run():
    x = np.zeros((1, 24 * 7 * 5))
    x[0, ::50] = 0.112
    assert len(quality_scan(x)["zero_run"]) == 0


def test_a_home_register_at_zero_for_hours_is_a_zero_run_a_boiler_off_for_hours_is_not():
    rng = np.random.default_rng(13)
    h = np.arange(24 * 7 * 8)
    home = np.round(0.3 + rng.gamma(2.0, 0.2, h.size), 3)  # never zero: fridge, standby
    home[24 * 7 * 5 + 3 : 24 * 7 * 5 + 8] = 0.0  # five hours at zero
    ev = quality_scan(home[np.newaxis, :])["zero_run"]
    assert [(int(s), int(e)) for s, e in zip(ev.start, ev.end)] == [(843, 848)]
    assert not len(quality_scan(home[np.newaxis, :], QualityConfig(zero_false_runs=0))["zero_run"])
    # A boiler off for a few hours on mild afternoons, at random: zero is one of its readings.
    boiler = np.round(rng.gamma(2.0, 0.5, h.size) / 0.112) * 0.112
    for d in rng.choice(7 * 8, 40, replace=False):
        boiler[24 * d + 12 : 24 * d + 12 + rng.integers(3, 9)] = 0.0
    boiler[24 * 7 * 5 + 13 : 24 * 7 * 5 + 18] = 0.0
    assert not len(quality_scan(boiler[np.newaxis, :])["zero_run"])


def test_weekend_shutdown_is_not_a_zero_run():
    rng = np.random.default_rng(12)
    hours = np.arange(24 * 7 * 8)  # step 0 is a Monday 00:00
    weekend = (hours % 168 >= 4 * 24 + 18) | (hours % 168 < 6)  # Friday 18:00 to Monday 06:00
    x = np.where(weekend, 0.0, rng.uniform(1.0, 3.0, hours.size))[np.newaxis, :]
    # Only the first weekend, which has no trailing weeks to compare with.
    assert_array_equal(quality_scan(x)["zero_run"].start, [4 * 24 + 18])
    broken = x.copy()
    broken[0, 168 * 6 + 48 : 168 * 6 + 78] = 0.0  # 30 h from a Wednesday 00:00
    ev = quality_scan(broken)["zero_run"]
    assert_array_equal(ev.start, [4 * 24 + 18, 168 * 6 + 48])


def test_a_closed_building_idle_on_a_mild_weekend_is_not_a_zero_run():
    """A school's gas: its weekends at a setback need heat in the cold weeks, none on the
    mild weekend of week 6, which the trailing weeks' hours call unusual. With its opening
    hours that weekend is idle; a stop across a Wednesday stays a fault."""
    rng = np.random.default_rng(14)
    hours = np.arange(24 * 7 * 8)  # step 0 is a Monday 00:00
    hod, dow = hours % 24, (hours // 24) % 7
    open_hours = (dow < 5) & (hod >= 7) & (hod < 19)
    x = np.where(open_hours, rng.uniform(8.0, 12.0, hours.size), rng.uniform(1.0, 2.0, hours.size))
    mild = slice(168 * 5 + 4 * 24 + 19, 168 * 6 + 6)  # Friday 19:00 to Monday 06:00
    x[mild] = 0.0
    stop = slice(168 * 6 + 2 * 24, 168 * 6 + 2 * 24 + 30)  # 30 h from a Wednesday 00:00
    x[stop] = 0.0
    x = x[np.newaxis, :]
    everything = quality_scan(x)["zero_run"]
    assert_array_equal(everything.start, [mild.start, stop.start])
    ev = quality_scan(x, open_hours=open_hours)["zero_run"]
    assert_array_equal(ev.start, [stop.start])
    off = QualityConfig(zero_open_share=0.0)
    assert len(quality_scan(x, off, open_hours=open_hours)["zero_run"]) == 2
