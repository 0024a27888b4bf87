"""Spikes and drops against the hour-of-week baseline, on synthetic series."""

import dataclasses
from datetime import datetime

import numpy as np
from numpy.testing import assert_allclose

from processing.baseline import HeatingTerm, baseline_scan
from processing.detector_config import DetectorConfig, config_for
from processing.events import Anomaly
from processing.spikes import _mean_use, spikes_and_drops, without_restart_boosts
from tests.fixtures.series import daily_profile

START = datetime(2024, 1, 1)  # a Monday, local midnight
W = 168


def test_spike_of_eight_sigma_is_found_with_reason():
    rng = np.random.default_rng(0)
    x = daily_profile(10, 30, rng)
    t = W * 9 + 27  # Tuesday 03:00
    x[4, t] = x[4, t - W] * (1 + 8 * 0.1) + 0.5
    z = baseline_scan(x).z
    found = spikes_and_drops(x, z, start=START)
    spikes = [a for a in found if a.kind == "spike"]
    assert any(a.meter_index == 4 and a.start <= t < a.end for a in spikes)
    hit = next(a for a in spikes if a.meter_index == 4 and a.start <= t < a.end)
    assert "the usual for Tuesday 03:00" in hit.reason
    assert "kWh" in hit.reason


def test_clean_series_gives_few_alarms():
    rng = np.random.default_rng(1)
    x = daily_profile(12, 50, rng)
    z = baseline_scan(x).z
    found = spikes_and_drops(x, z, start=START)
    assert len(found) <= 0.0005 * x.size  # ≤ 0.05 % of steps


def test_reading_after_a_gap_carries_the_gap_not_a_spike():
    rng = np.random.default_rng(14)
    x = daily_profile(10, 2, rng, noise=0.02)
    t = W * 9 + 27
    for row in (0, 1):
        x[row, t - 2 : t] = np.nan  # two readings lost...
        x[row, t] = 3 * x[row, t - 3]  # ...the next one covers three hours
    x[1, t] += 3.0  # and on meter 1 something ran during the gap
    z = baseline_scan(x).z
    found = [a for a in spikes_and_drops(x, z, start=START) if a.kind == "spike"]
    assert [(a.meter_index, a.start) for a in found] == [(1, t)]
    plain = dataclasses.replace(config_for("household"), bridged_gaps=False)
    assert (
        len([a for a in spikes_and_drops(x, z, start=START, config=plain) if a.kind == "spike"])
        == 2
    )


def test_reading_after_a_two_day_outage_carries_the_outage_not_a_spike():
    rng = np.random.default_rng(15)
    x = daily_profile(10, 1, rng, noise=0.02)
    t = W * 9 + 70
    x[0, t] = x[0, t - 60 : t + 1].sum()  # the first reading after it covers 61 hours
    x[0, t - 60 : t] = np.nan  # sixty readings lost: an outage, reported as one
    z = baseline_scan(x).z
    assert not [a for a in spikes_and_drops(x, z, start=START) if a.kind == "spike"]


def test_a_gap_over_the_morning_peak_carries_the_peak_not_a_spike():
    rng = np.random.default_rng(20)
    hours = np.arange(W * 10)
    morning = np.where(hours % 24 == 7, 6.0, 1.0)  # a 6 kWh hour at 07:00, 1 kWh otherwise
    x = morning[None, :] * (1 + 0.02 * rng.standard_normal((2, hours.size)))
    t = W * 9 + 24 * 2 + 9  # 09:00: the readings of 07:00 and 08:00 were lost
    x[:, t - 2 : t] = np.nan
    x[:, t] = 6.0 + 1.0 + 1.0  # the 09:00 reading carries 07:00, 08:00 and its own hour
    x[1, t] += 4.0  # on meter 1 something else ran meanwhile
    z = baseline_scan(x).z
    found = [a for a in spikes_and_drops(x, z, start=START) if a.kind == "spike"]
    assert [(a.meter_index, a.start) for a in found] == [(1, t)]


def test_one_step_peak_needs_single_step_threshold():
    rng = np.random.default_rng(8)
    x = daily_profile(20, 1, rng)
    z = np.zeros_like(x)
    z[0, 1000] = 6.0  # above z_threshold, below z_single: an ordinary peak
    z[0, 2000] = 9.0  # above z_single
    z[0, 3000:3002] = 6.0  # two steps in a row
    found = spikes_and_drops(x, z, start=START)
    assert sorted(a.start for a in found) == [2000, 3000]


def test_two_steps_in_a_row_clear_the_single_step_threshold_together():
    rng = np.random.default_rng(8)
    x = daily_profile(20, 2, rng)
    z = np.zeros_like(x)
    z[0, 500:502] = 5.9  # a closing building's gas, two night hours: (5.9 + 5.9)/√2 ≥ 8
    z[0, 1000:1002] = (7.5, 3.9)  # 8.06: the smaller above (√2 − 1) × 8
    z[0, 1500:1502] = 5.5  # 7.78: not together
    z[0, 2000:2002] = (7.9, 3.2)  # 7.85, and 3.2 is under the pairs' floor
    z[0, 2500], z[0, 2502] = 5.9, 5.9  # not in a row
    z[0, 3000:3002] = -5.9  # drops keep their thresholds
    z[0, -1], z[1, 0] = 5.9, 5.9  # the last step of one meter and the first of the next
    cfg = config_for("gas")
    assert (cfg.z_threshold, cfg.z_single) == (6.0, 8.0)
    found = spikes_and_drops(x, z, start=START, config=cfg)
    assert sorted((a.meter_index, a.start, a.end, a.kind) for a in found) == [
        (0, 500, 502, "spike"),
        (0, 1000, 1002, "spike"),
    ]


def test_a_large_excess_clears_a_lower_z():
    rng = np.random.default_rng(8)
    x = daily_profile(20, 1, rng)  # mean use ≈ 1 per step
    z = np.zeros_like(x)
    for t in (1000, 1500, 2000, 2500):
        z[0, t] = 6.0  # above z_threshold and large_z, below z_single
    x[0, 1000] += 4.0  # more than 3 × the mean above the expected use
    x[0, 1500] += 1.0  # an ordinary peak
    z[0, 2000] = 3.5  # large, but below large_z
    x[0, 2000] += 4.0
    x[0, 2500] -= 0.9  # drops keep their thresholds
    z[0, 2500] = -6.0
    cfg = DetectorConfig(large_z=4.0)
    assert [a.start for a in spikes_and_drops(x, z, start=START, config=cfg)] == [1000]
    assert not spikes_and_drops(x, z, start=START)


def test_a_home_s_single_hour_needs_9_sigma_or_four_times_its_mean_hour():
    """A home's electricity: an oven's hour at 8 σ, three times the expected, is its
    habit; the same hour at 9.5 σ, or at 5 σ with 4.5 × the mean hour over the expected,
    is reported. Two hours in a row keep ``z_threshold``."""
    rng = np.random.default_rng(8)
    x = daily_profile(20, 1, rng)
    mean_hour = float(x[0].mean())
    z = np.zeros_like(x)
    z[0, [1000, 1500, 2000]] = [8.0, 9.5, 5.0]
    x[0, 1000] *= 3.0
    x[0, 2000] += 4.5 * mean_hour
    z[0, 3000:3002] = 6.0
    home = config_for("household")
    found = spikes_and_drops(x, z, start=START, config=home)
    assert [a.start for a in found] == [1500, 2000, 3000]
    # At 7 σ (the other meters' threshold) the oven's hour is a spike.
    seven = dataclasses.replace(home, z_single=7.0)
    found = spikes_and_drops(x, z, start=START, config=seven)
    assert [a.start for a in found] == [1000, 1500, 2000, 3000]
    # A home's heating meter as well: the oven's hour at 8.5 σ is not reported (it was
    # over the 8 σ before the fifteenth session), at 9.5 σ it is.
    z[0, 1000] = 8.5
    found = [
        a.start for a in spikes_and_drops(x, z, start=START, config=config_for("household_gas"))
    ]
    assert 1000 not in found and 1500 in found


def test_a_gas_homes_spike_at_its_reheat_hour_is_found_by_its_size():
    """A boiler's morning reheat (4 kWh ± 1 at 6–9 h over 0.5 kWh at rest) sets the
    scale at those hours: six times the mean use added for an hour there is 3–7 σ, under
    the home's 8 σ for one step. Its size, 2.5 times the mean use over the expected,
    finds the 14 above 4 σ (normal noise at these hours makes a few such peaks on other
    seeds)."""
    rng = np.random.default_rng(4)
    hours = np.arange(W * 8)
    x = 0.5 * (1 + 0.05 * rng.standard_normal((20, hours.size)))
    morning = np.flatnonzero((hours % 24 >= 6) & (hours % 24 < 9))
    x[:, morning] += 4.0 * (1 + 0.25 * rng.standard_normal((20, morning.size)))
    t = W * 6 + 2 * 24 + 7  # a Wednesday, 07:00
    x[:, t] += 6.0 * x.mean(axis=1)
    cfg = config_for("household_gas")
    z = baseline_scan(
        x, tail_quantile=cfg.tail_quantile, tail_divisor=cfg.tail_divisor,
        hour_tail_divisor=cfg.hour_tail_divisor,
    ).z  # fmt: skip

    def spikes(c: DetectorConfig) -> list[Anomaly]:
        return [a for a in spikes_and_drops(x, z, start=START, config=c) if a.kind == "spike"]

    found = spikes(cfg)
    assert len({a.meter_index for a in found}) == 14
    assert all(a.start <= t < a.end for a in found)
    assert not spikes(dataclasses.replace(cfg, large_z=0.0))


def test_a_spike_at_a_quiet_hour_stands_out_against_that_hour_not_the_evening_meals():
    """Homes cook at 19:00, 0–3 kWh a day: ordinary at that hour, and they set the scale
    only there. Two hours of +1.5 kWh at 3 am stand out; under the whole tail over 2 (the
    floor before the hourly one) they did not, and the meals were spikes."""
    rng = np.random.default_rng(0)
    hours = np.arange(W * 8)
    x = 0.3 * (1 + 0.05 * rng.standard_normal((20, hours.size)))
    evening = np.flatnonzero(hours % 24 == 19)
    x[:, evening] += rng.uniform(0.0, 3.0, (20, evening.size))
    t = W * 6 + 2 * 24 + 3  # Wednesday 03:00–05:00
    x[:, t : t + 2] += 1.5

    def spikes(cfg: DetectorConfig) -> list[Anomaly]:
        z = baseline_scan(
            x, tail_quantile=cfg.tail_quantile, tail_divisor=cfg.tail_divisor,
            hour_tail_divisor=cfg.hour_tail_divisor,
        ).z  # fmt: skip
        return [a for a in spikes_and_drops(x, z, start=START, config=cfg) if a.kind == "spike"]

    now = spikes(DetectorConfig())
    # 17 of 20 by their steps alone, one more by the pair's combined z (see PAIR_FLOOR).
    assert len({a.meter_index for a in now if a.start <= t < a.end}) == 18
    assert all(a.start <= t < a.end for a in now)
    before = spikes(DetectorConfig(tail_divisor=2.0, hour_tail_divisor=0.0))
    assert not any(a.start <= t < a.end for a in before)
    assert {a.start % 24 for a in before} == {19}


def test_a_restart_after_a_cold_weekend_is_not_a_spike_but_a_night_burn_is():
    """A closing building (open 7–19, Monday to Friday) at 2 kWh per K·h over 10 K all
    weekend: from Friday 19:00 to Monday 06:00 it missed 59 h × 10 K × 2 = 1,180 kWh, so a
    Monday 06:00 restart of +490 kWh is the cold's; the same at 02:00, one of +5,000 kWh at
    08:00, or one on a Tuesday morning is a spike, and a drop is left alone."""
    days = 21
    n = 24 * days
    closed_day = np.isin(np.arange(days) % 7, [5, 6])  # START is a Monday
    heating = HeatingTerm(
        slope=np.array([2.0]), base_index=np.array([0]), bases_c=np.array([16.0]),
        degree_hours=np.full((1, n), 10.0), anomaly=np.zeros((1, n)),
    )  # fmt: skip
    monday = 14 * 24

    def event(at: int, observed: float, kind: str = "spike") -> Anomaly:
        return Anomaly(5, at, at + 1, kind, 9.0, 10.0, observed, "")

    restart = event(monday + 6, 500.0)
    kept = [
        event(monday + 2, 500.0),
        event(monday + 8, 5010.0),
        event(monday + 24 + 7, 500.0),
        event(monday + 7, 0.0, "drop"),
    ]
    out = without_restart_boosts(
        [restart, *kept], heating=heating, closed_day=closed_day,
        day_hours=(7, 19), steps_per_hour=1, meter_offset=5,
    )  # fmt: skip
    assert out == kept
    # Just over what the weekend's cold explains: a spike.
    over = event(monday + 6, 10.0 + 1180.0 + 1.0)
    assert without_restart_boosts(
        [over], heating=heating, closed_day=closed_day,
        day_hours=(7, 19), steps_per_hour=1, meter_offset=5,
    ) == [over]  # fmt: skip


def test_hours_in_a_row_each_under_the_thresholds_are_a_spike_together():
    rng = np.random.default_rng(27)
    x = 0.5 + 0.05 * rng.standard_normal((4, W * 6))
    z = np.zeros_like(x)
    t = W * 5 + 20  # Saturday 20:00
    step_z = np.array([3.5, 3.8, 3.4])  # Σz/√3 = 6.2: over z_threshold (5), no step alone
    for row in range(4):
        x[row, t : t + 3] += 1.6  # 3.2 × the mean hour above the usual, each hour
        z[row, t : t + 3] = step_z
    x[1, t : t + 3] -= 0.6  # 2 × the mean hour: under run_multiple (2.5)
    x[2, t - 1] = np.nan  # right after a lost reading, which it may carry
    z[3, t + 1] = 2.9  # a step under run_step_z (3) splits the run
    cfg = config_for("household")
    assert (cfg.z_threshold, cfg.run_step_z, cfg.run_multiple) == (5.0, 3.0, 2.5)
    found = [a for a in spikes_and_drops(x, z, start=START, config=cfg) if a.kind == "spike"]
    assert [(a.meter_index, a.start, a.end) for a in found] == [(0, t, t + 3)]
    assert found[0].observed > 2.0 and abs(found[0].expected - 0.5) < 0.1
    off = dataclasses.replace(cfg, run_step_z=0.0)
    assert [a for a in spikes_and_drops(x, z, start=START, config=off) if a.kind == "spike"] == []


def test_mean_use_per_meter_leaves_gaps_out_block_by_block():
    rng = np.random.default_rng(28)
    a = rng.normal(0.0, 1.0, (150, 300))  # three blocks of 64 meters, the last short
    a[rng.random(a.shape) < 0.1] = np.nan
    a[3] = np.nan
    got = _mean_use(a, block_meters=64)
    read = np.arange(150) != 3
    assert_allclose(got[read], np.nanmean(np.abs(a[read]), axis=1))
    assert got[3] == 0.0
