"""Fleet: what the meters of a kind do together is no building's fault."""

from dataclasses import replace
from datetime import date, datetime

import numpy as np
from numpy.testing import assert_allclose

from processing.detector_config import config_for
from processing.detectors import anomaly_scan
from processing.events import Anomaly
from processing.fleet import (
    COMMON_CAUSE_MIN_METERS,
    MIN_FLEET_METERS,
    CommonCauseConfig,
    common_cause,
    common_departure,
    common_patterns,
    heating_groups,
    remove_common_departure,
    shared_nights,
)
from processing.shifts import level_shifts
from tests.fixtures.weather import outdoor_temp_c

DAY0 = date(2024, 10, 1)


def _fleet(meters: int = 40, days: int = 120, seed: int = 0):
    rng = np.random.default_rng(seed)
    expected = rng.uniform(20.0, 60.0, (meters, 1)) * np.ones((1, days))
    residual = expected * rng.normal(0.0, 0.04, (meters, days))
    return residual, expected


def test_common_departure_is_the_median_share_and_needs_a_fleet():
    residual, expected = _fleet()
    residual[:, 50:57] -= 0.15 * expected[:, 50:57]  # a mild week: everyone 15 % below
    c = common_departure(residual, expected)
    assert_allclose(c[50:57], -0.15, atol=0.02)
    assert np.abs(c[:50]).max() < 0.03
    few = common_departure(residual[: MIN_FLEET_METERS - 1], expected[: MIN_FLEET_METERS - 1])
    assert np.isnan(few).all()


def test_a_fleet_wide_week_is_not_a_shift_but_one_building_s_is():
    residual, expected = _fleet()
    residual[:, 50:60] -= 0.3 * expected[:, 50:60]  # every home 30 % down for ten days...
    residual[7, 80:90] -= 0.3 * expected[7, 80:90]  # ...and one home alone, later
    before = level_shifts(residual, start=DAY0, daily_expected=expected)
    assert len({a.meter_index for a in before if 48 <= a.start <= 52}) > 30
    r, e = remove_common_departure(residual, expected)
    after = level_shifts(r, start=DAY0, daily_expected=e)
    assert [(a.meter_index, a.start) for a in after] == [(7, 80)]
    # The expected use now carries the fleet's week: the home's own drop is told in full.
    assert_allclose(after[0].observed / after[0].expected, 0.7, atol=0.05)


def test_a_meter_that_does_not_follow_its_fleet_keeps_its_residuals():
    residual, expected = _fleet(seed=1)
    rng = np.random.default_rng(2)
    common = 0.1 * np.sin(np.arange(residual.shape[1]) / 5.0)
    residual[1:] += common * expected[1:]  # every meter but the first follows the weather
    residual[0] = expected[0] * rng.normal(0.0, 0.1, residual.shape[1])
    r, e = remove_common_departure(residual, expected)
    assert_allclose(r[0], residual[0], rtol=0.0, atol=0.2 * np.abs(residual[0]).mean())
    assert np.abs(r[1:] / e[1:]).mean() < 0.5 * np.abs(residual[1:] / expected[1:]).mean()


def _dull_days(days: int, seed: int) -> np.ndarray:
    """A day series that a third of a fleet follows: dull spells, by day [-]."""
    rng = np.random.default_rng(seed)
    dull = np.convolve(rng.standard_normal(days + 4), np.ones(5) / 5.0, mode="valid")
    return np.asarray(0.15 * dull / dull.std())


def test_what_a_third_of_a_fleet_does_together_is_no_shift_but_one_meter_s_own_is():
    residual, expected = _fleet(meters=60, days=200, seed=3)
    dull = _dull_days(200, seed=4)
    follows = np.linspace(1.0, 3.0, 20)[:, np.newaxis]  # more or less, each its own way
    residual[:20] += follows * dull * expected[:20]
    residual[25, 150:160] += 0.3 * expected[25, 150:160]  # one meter's own change
    assert np.abs(common_departure(residual, expected)).max() < 0.1  # the median: hardly
    before = level_shifts(residual, start=DAY0, daily_expected=expected)
    assert len({a.meter_index for a in before if a.meter_index < 20}) > 10
    # Without the pattern the third's departures stay; with it only the own change does.
    median_only = remove_common_departure(residual, expected, patterns=0)
    left = level_shifts(median_only[0], start=DAY0, daily_expected=median_only[1])
    assert len({a.meter_index for a in left if a.meter_index < 20}) > 10
    r, e = remove_common_departure(residual, expected)
    after = level_shifts(r, start=DAY0, daily_expected=e)
    assert [(a.meter_index, a.start) for a in after] == [(25, 150)]


def test_common_patterns_find_what_many_do_and_not_one_meter_s_fault():
    residual, expected = _fleet(meters=60, days=200, seed=5)
    rel = residual / expected
    dull = _dull_days(200, seed=6)
    rel[:30] += np.linspace(0.5, 1.5, 30)[:, np.newaxis] * dull
    rel[40, 100:110] += 0.5  # one meter's fault: ten days at 12 σ
    (pattern,) = common_patterns(rel, 1)
    assert abs(np.corrcoef(pattern, dull)[0, 1]) > 0.95
    # Independent noise and the same fault: no pattern stands above the noise.
    quiet = residual / expected
    quiet[40, 100:110] += 0.5
    assert common_patterns(quiet, 2).shape == (0, 200)
    # Days read by fewer than a fleet have none: a few meters' own days are not the fleet's.
    sparse = rel.copy()
    sparse[MIN_FLEET_METERS - 1 :, 150:] = np.nan
    (pattern,) = common_patterns(sparse, 1)
    assert_allclose(pattern[150:], 0.0)


def test_heating_groups_part_the_meters_that_follow_the_cold():
    rng = np.random.default_rng(4)
    dd = rng.uniform(0.0, 12.0, 90)  # degree-days
    share = np.repeat([0.0, 0.05, 0.1, 0.3, 0.5, 0.8], 5)[:, np.newaxis]
    base = rng.uniform(5.0, 10.0, share.shape)
    # Use whose share ``share`` follows the cold on average.
    expected = base * (1 - share + share * dd[np.newaxis, :] / dd.mean())
    expected[2, ::7] = np.nan
    heated, other = heating_groups(expected, dd)
    assert heated.tolist() == list(range(15, 30)) and other.tolist() == list(range(15))
    # Fewer than a fleet on either side: one group.
    (every,) = heating_groups(expected[10:], dd)
    assert every.tolist() == list(range(20))


def test_heated_meters_of_a_mixed_kind_are_parted_by_their_heating_share():
    """Sixty heated meters beside unheated ones: three groups of twenty by the share of
    their use that follows the cold, whatever their order; then the unheated. Thirty
    heated: one group (parts of fifteen would be too few for a median)."""
    rng = np.random.default_rng(5)
    dd = rng.uniform(0.0, 12.0, 120)
    share = np.concatenate([np.zeros(12), rng.permutation(np.linspace(0.25, 0.85, 60))])
    expected = 8.0 * (1 - share[:, np.newaxis] + share[:, np.newaxis] * dd / dd.mean())
    low, mid, high, other = heating_groups(expected, dd)
    assert other.tolist() == list(range(12))
    for part, (lo, hi) in zip((low, mid, high), ((0.25, 0.45), (0.45, 0.65), (0.65, 0.86))):
        assert part.size == 20
        assert np.all((share[part] >= lo) & (share[part] < hi))
    heated, other = heating_groups(expected[:42], dd)
    assert heated.tolist() == list(range(12, 42)) and other.tolist() == list(range(12))


def _heated_and_plain_homes(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """14 electrically heated homes and 12 others over 84 days: hourly use [kWh] and the
    outdoor temperature [°C]."""
    rng = np.random.default_rng(seed)
    days = 84
    h = np.arange(24 * days)
    te = outdoor_temp_c(rng, days, mean=9.0, day_sd=1.5, swing=5.0, period_days=20)
    profile = 0.3 + 0.3 * np.sin(2 * np.pi * (h % 24 - 8) / 24).clip(0)
    heated = (profile + 0.1 * np.maximum(18 - te, 0))[np.newaxis, :]
    heated = heated * rng.lognormal(0, 0.1, (14, h.size))
    plain = profile[np.newaxis, :] * rng.lognormal(0, 0.1, (12, h.size))
    return np.vstack([heated, plain]), te


def test_a_departure_of_the_heated_homes_is_not_taken_for_the_others():
    x, te = _heated_and_plain_homes()
    x[:14, 24 * 60 :] *= 0.7  # every electrically heated home, as the model misses it
    x[14, 24 * 60 : 24 * 68] *= 0.6  # one other home's own fall, the same day
    found = anomaly_scan(x, start=datetime(2024, 1, 1), outdoor_temp_c=te,
                         config=config_for("household"))  # fmt: skip
    shifts = [(a.meter_index, a.start, a.end) for a in found if a.kind == "level_shift"]
    assert shifts == [(14, 60, 68)]


def test_hour_level_events_at_once_on_both_groups_are_common():
    x, te = _heated_and_plain_homes(seed=1)
    t = 24 * 70 + 3
    x[[0, 1], t] += 6.0  # two heated homes and two others at the same hour: within its
    x[[14, 15], t] += 3.0  # group each pair is chance, over the kind it is not
    x[20, 24 * 75 + 3] += 3.0  # one home alone, later
    found = anomaly_scan(x, start=datetime(2024, 1, 1), outdoor_temp_c=te,
                         config=config_for("household"))  # fmt: skip
    spikes = [(a.meter_index, a.start) for a in found if a.kind == "spike"]
    assert (20, 24 * 75 + 3) in spikes
    # At most the one that stands out of the cluster (twice its median size) is reported.
    assert len([s for s in spikes if s[1] == t]) <= 1


def test_threads_see_the_whole_fleet():
    rng = np.random.default_rng(3)
    hours = np.arange(24 * 7 * 12)
    x = (1.0 + 0.5 * np.sin(2 * np.pi * (hours % 24) / 24)) * rng.lognormal(0, 0.05, (120, 1))
    x = x * (1 + 0.05 * rng.standard_normal(x.shape))
    x[:, 24 * 60 : 24 * 66] *= 0.7  # a fleet-wide week, e.g. a school holiday
    x[9, 24 * 70 : 24 * 80] *= 1.4  # one meter's own shift
    start = datetime(2024, 1, 1)
    one = anomaly_scan(x, start=start)
    two = anomaly_scan(x, start=start, threads=2)
    assert sorted(map(repr, one)) == sorted(map(repr, two))
    shifts = {(a.meter_index, a.start) for a in one if a.kind in ("level_shift", "drift")}
    assert (9, 70) in shifts
    assert not [s for s in shifts if 58 <= s[1] <= 62]


def _event(meter: int, start: int, kind: str = "spike", size: float = 1.0) -> Anomaly:
    return Anomaly(meter, start, start + 1, kind, 9.0, 10.0, 10.0 * (1.0 + size), "")


def test_events_that_start_together_on_many_meters_are_the_fleet_s():
    rng = np.random.default_rng(5)
    steps = 24 * 90
    starts = rng.integers(0, steps, 50)
    starts = np.where(np.abs(starts - 1000) < 24, starts + 48, starts)  # none on that morning
    lone = [_event(m, int(s)) for m, s in zip(range(50), starts, strict=True)]
    cold_morning = [_event(m, 1000 + m % 3) for m in range(50, 80)]  # 30 meters within 3 h
    found = lone + cold_morning
    common = common_cause(found, meters=200, steps=steps)
    assert common[50:].all()
    assert not common[:50].any()


def test_three_spikes_at_once_are_three_faults_four_of_like_size_are_the_fleet_s():
    """In a quiet group three spikes within hours are improbable by the Poisson law, yet no
    cause the fleet shares: three homes' spikes one Saturday were each a fault (seed 325)."""
    steps = 24 * 300
    lone = [_event(m, 24 * (10 + 29 * m)) for m in range(10)]  # one every four weeks
    three = [_event(20 + m, 24 * 200 + 4 * m) for m in range(3)]  # within 8 hours
    assert not common_cause(lone + three, meters=40, steps=steps).any()
    four = [_event(20 + m, 24 * 200 + 3 * m) for m in range(4)]
    common = common_cause(lone + four, meters=40, steps=steps)
    assert common[10:].all()
    assert not common[:10].any()
    # Level shifts keep the Poisson law alone: in a quieter group, three on a day are common,
    # as three spikes there would be without the rule.
    days = [Anomaly(a.meter_index, a.start // 24, a.start // 24 + 5, "level_shift", 9.0, 10.0,
                    11.0, "") for a in lone[:2] + three]  # fmt: skip
    assert common_cause(days, meters=40, steps=steps).tolist() == [False, False, True, True, True]
    assert not common_cause(lone[:2] + three, meters=40, steps=steps).any()


def test_a_fault_that_stands_out_of_its_cluster_is_still_reported():
    steps = 24 * 90
    found = [_event(m, 24 * 40, "level_shift", size=-0.2) for m in range(20)]
    found += [_event(20 + d, d * 24, "level_shift", size=-0.2) for d in range(0, 90, 9)]
    found.append(_event(99, 24 * 40, "level_shift", size=-0.7))  # the same day, far bigger
    found = [Anomaly(a.meter_index, a.start // 24, a.start // 24 + 5, a.kind, a.severity,
                     a.expected, a.observed, a.reason) for a in found]  # fmt: skip
    common = common_cause(found, meters=200, steps=steps)
    assert common[:20].all()
    assert not common[20:].any()
    blind = CommonCauseConfig(stand_out=np.inf)  # no size test: it goes with its cluster
    assert common_cause(found, meters=200, steps=steps, config=blind)[-1]


def test_a_fault_that_stands_out_by_its_evidence_is_still_reported():
    """Five homes up by 15–35 % on the same cold day: four with CUSUM peaks of 9–26 σ, one
    (seed 303's meter 308, a real fault) at 121 σ. No size stands out twice the quartile;
    the peak does."""
    steps = 24 * 365

    def shift(meter: int, size: float, severity: float) -> Anomaly:
        return Anomaly(meter, 136, 146, "level_shift", severity, 10.0, 10.0 * (1 + size), "")

    cold_day = [shift(m, 0.15 + 0.01 * m, s) for m, s in enumerate((9.0, 11.0, 20.0, 26.0))]
    own = [Anomaly(10 + j, d, d + 5, "level_shift", 15.0, 10.0, 12.0, "")
           for j, d in enumerate(range(20, 120, 20))]  # fmt: skip
    found = [*cold_day, shift(4, 0.35, 121.0), *own]
    common = common_cause(found, meters=40, steps=steps)
    assert common[:4].all()
    assert not common[4:].any()
    found[4] = shift(4, 0.35, 30.0)  # as sure as the others: it goes with its cluster
    assert common_cause(found, meters=40, steps=steps)[4]


def test_a_fleet_that_moves_by_two_amounts_at_once_is_common_and_a_fault_still_stands_out():
    """A heat wave: 30 rooms 2 °C warmer, 12 rooms 5.5 °C warmer (unshaded), one room with
    a failed radiator valve 17 °C up. Twice the median would report the twelve."""
    steps = 24 * 365

    def shift(meter: int, day: int, size: float) -> Anomaly:
        return Anomaly(meter, day, day + 5, "level_shift", 9.0, 21.0, 21.0 * (1 + size), "")

    wave = [shift(m, 300, 0.1) for m in range(30)] + [shift(m, 300, 0.27) for m in range(30, 42)]
    own = [shift(50 + j, d, 0.2) for j, d in enumerate(range(20, 280, 26))]
    found = [*wave, shift(42, 300, 0.8), *own]
    common = common_cause(found, meters=60, steps=steps)
    assert common[:42].all()
    assert not common[42:].any()


def test_use_above_an_expected_zero_does_not_stand_out_of_its_cluster():
    """A cold Sunday: twelve closed buildings heat at their setback, one of them where its
    weekends usually read zero. Its relative size is infinite, not a fault's."""
    steps = 24 * 90
    sunday = [Anomaly(m, 1000, 1012, "weekend_use", 9.0, 1.0, 3.0, "") for m in range(12)]
    sunday.append(Anomaly(12, 1000, 1012, "weekend_use", 9.0, 0.0, 3.0, ""))
    lone = [Anomaly(20 + k, 168 * k + 7, 168 * k + 19, "weekend_use", 9.0, 1.0, 3.0, "")
            for k in range(1, 12) if abs(168 * k - 1000) > 48]  # fmt: skip
    common = common_cause(sunday + lone, meters=40, steps=steps)
    assert common[:13].all()
    assert not common[13:].any()


def test_a_small_fleet_s_events_at_once_are_tested_too():
    """Six heat meters: four up on one cold morning, four others spread over three months."""
    steps = 24 * 90
    found = [_event(m, 1000 + m) for m in range(4)]
    found += [_event(m, 300 + 400 * k) for k, m in enumerate(range(2, 6))]
    common = common_cause(found, meters=6, steps=steps)
    assert common[:4].all()
    assert not common[4:].any()


def test_a_big_cluster_does_not_make_a_small_one_look_like_chance():
    """A year of level shifts: 30 homes' own, one a fortnight or so; 60 homes moved by one
    cold snap; five by another cold day. At the rate of all 95 starts, five on one day
    happen by chance one window in 460; at the rate of the 30 that are no cluster's, one
    in 35,000: the five are the fleet's as well."""
    steps = 24 * 365
    own = [d for d in range(4, 363, 11) if min(abs(d - 100), abs(d - 200)) > 2][:30]
    days = [*own, *[200] * 60, *[100] * 5]
    found = [Anomaly(m, d, d + 5, "level_shift", 9.0, 10.0, 8.0, "") for m, d in enumerate(days)]
    common = common_cause(found, meters=300, steps=steps)
    assert not common[:30].any()
    assert common[30:90].all()
    assert common[90:].all()


def test_a_big_fleet_s_random_spikes_after_a_blank_fortnight_are_not_common():
    """3,000 spikes of 5,000 meters at random over the last six of eight weeks (the first
    two are the baseline's lags): counted over all eight weeks the rate came out a quarter
    low and 22 % of them read as common (84 % with the clusters' rate refitted)."""
    rng = np.random.default_rng(7)
    steps = 24 * 56
    starts = rng.integers(steps // 4, steps, 3000)
    meters = rng.integers(0, 5000, 3000)
    found = [_event(int(m), int(t)) for m, t in zip(meters, starts, strict=True)]
    assert not common_cause(found, meters=5000, steps=steps, warmup_steps=steps // 4).any()


def test_warnings_of_the_last_days_are_neither_tested_nor_counted():
    """Six homes' warnings on the window's last days (raised at a fifth of h) and a home's
    fall confirmed the same day, as alike as they come: counted together they are seven
    starts on a day where the window's alarms start one every six days, and the fall went
    with them (seed 300, meter 505, a run in June)."""
    steps = 24 * 56

    def shift(meter: int, day: int, status: str = "confirmed") -> Anomaly:
        return Anomaly(meter, day, day + 2, "level_shift", 9.0, 10.0, 8.5, "", status)

    own = [shift(m, d) for m, d in enumerate(range(4, 50, 6))]
    last_days = [shift(20 + m, 54, "warning") for m in range(6)]
    found = [*own, *last_days, shift(30, 54)]
    assert not common_cause(found, meters=60, steps=steps).any()
    alarms = [replace(a, status="confirmed") for a in found]
    common = common_cause(alarms, meters=60, steps=steps)
    assert common[len(own) :].all()
    assert not common[: len(own)].any()


def test_outages_and_small_fleets_are_never_common():
    found = [_event(m, 500, "outage") for m in range(40)] + [_event(m, 900) for m in range(40)]
    assert not common_cause(found, meters=200, steps=2000)[:40].any()
    assert common_cause(found, meters=200, steps=2000)[40:].all()
    assert not common_cause(found, meters=COMMON_CAUSE_MIN_METERS - 1, steps=2000).any()
    off = CommonCauseConfig(alpha=0.0)
    assert not common_cause(found, meters=200, steps=2000, config=off).any()


def _nights(meter: int, first_night: int, nights: int) -> Anomaly:
    """Night use from 23:00 of day ``first_night`` through ``nights`` nights (to 05:00)."""
    start = 24 * first_night + 23
    return Anomaly(meter, start, start + 6 + 24 * (nights - 1) + 1, "night_use", 5.0, 1.0, 2.5, "")


def test_night_use_over_a_cold_spell_is_shared_whichever_night_each_home_began():
    rng = np.random.default_rng(8)
    steps = 24 * 7 * 8
    # Twelve homes over a three-night spell from day 30, four beginning on each night.
    spell = [_nights(m, 30 + m % 3, 3 - m % 3) for m in range(12)]
    # Twenty others, each a night or two of its own, away from the spell.
    days = rng.choice(np.r_[1:26, 36:55], 20, replace=False)
    lone = [_nights(12 + k, int(d), 1 + k % 2) for k, d in enumerate(days)]
    found = spell + lone
    # Four starts a night are no improbable cluster to the start windows ...
    assert not common_cause(found, meters=100, steps=steps).any()
    # ... but the spell's nights over the first night of a home that began on its second or
    # third are. Those that began on its first night see only each other there: kept.
    shared = shared_nights(found, steps)
    later = np.arange(12) % 3 != 0
    assert shared[:12][later].all()
    assert not shared[:12][~later].any()
    assert not shared[12:].any()
    # Other kinds are never taken for shared nights.
    spikes = [Anomaly(a.meter_index, a.start, a.end, "spike", 9.0, 1.0, 9.0, "") for a in found]
    assert not shared_nights(spikes, steps).any()
