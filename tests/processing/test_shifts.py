"""CUSUM level shifts and drifts on synthetic daily residuals."""

import dataclasses
from datetime import date, datetime

import numpy as np
from numpy.testing import assert_allclose

from processing.baseline import baseline_scan
from processing.detector_config import DetectorConfig, config_for
from processing.shifts import _split_onset, cusum, level_shifts, spread_by_use
from tests.fixtures.series import daily_profile

START = datetime(2024, 1, 1)  # a Monday, local midnight


def test_cusum_finds_level_shift_with_onset():
    rng = np.random.default_rng(2)
    days = 240
    onset = 150
    daily = 100 + 5 * rng.standard_normal((8, days))
    daily[:, onset:] *= 1.3
    # Residual against the pre-shift level (a reference-period baseline).
    found = level_shifts(
        daily - 100, start=date(2024, 1, 1), daily_expected=np.full(daily.shape, 100.0)
    )
    ups = [a for a in found if a.kind == "level_shift" and a.observed > a.expected]
    assert {a.meter_index for a in ups} == set(range(8))
    for a in ups:
        assert abs(a.start - onset) <= 2
        assert "up by" in a.reason
        assert 25 < a.observed - a.expected < 35  # +30 kWh/day
    assert not [a for a in found if a.end <= onset - 5]


def test_cusum_on_hourly_baseline_residuals():
    rng = np.random.default_rng(3)
    x = daily_profile(30, 6, rng, noise=0.05)
    onset_day = 120
    x[:, onset_day * 24 :] *= 1.3
    scan = baseline_scan(x)
    found = level_shifts(
        scan.daily_residual, start=START.date(), daily_expected=scan.daily_expected
    )
    ups = [a for a in found if a.observed > a.expected]
    assert {a.meter_index for a in ups} == set(range(6))
    assert all(abs(a.start - onset_day) <= 2 for a in ups)


def test_drift_is_told_from_shift():
    days = np.arange(300)
    rng = np.random.default_rng(4)
    r = rng.standard_normal((1, 300)) + np.clip(days - 150, 0, None) * 0.08
    found = level_shifts(r, start=date(2024, 1, 1))
    assert found
    assert found[0].kind == "drift"


def test_cusum_never_negative():
    c = cusum(np.random.default_rng(5).standard_normal((3, 100)))
    assert (c.upper >= 0).all()
    assert (c.lower >= 0).all()


def test_local_scale_spares_a_free_floating_summer_not_a_winter_offset():
    rng = np.random.default_rng(13)
    # Daily residual of a room [K·h/day]: held by its thermostat for 150 days, then free
    # floating with ten times the day-to-day spread.
    r = np.concatenate([rng.normal(0.0, 2.0, 150), rng.normal(0.0, 20.0, 150)])[np.newaxis, :]
    r[0, 100:110] += 24.0  # a 1 K sensor offset for ten winter days
    alarms = dataclasses.replace(config_for("household"), warning_h_share=0.0)  # no warnings
    local = dataclasses.replace(alarms, cusum_local_days=28)
    settled = 150 + 28 + 14  # the local scale has seen only summer days from here
    for cfg, summer_alarms in ((alarms, True), (local, False)):
        found = level_shifts(r, start=date(2024, 10, 1), config=cfg)
        assert found[0].start == 100 and found[0].kind == "level_shift"
        assert any(a.start >= settled for a in found) == summer_alarms


def test_level_shift_floors_drop_small_or_short_shifts():
    rng = np.random.default_rng(6)
    daily = 100 + 5 * rng.standard_normal((2, 240))
    daily[0, 150:] *= 1.3  # lasting +30 %
    daily[1, 150:] *= 1.08  # lasting +8 %
    expected = np.full(daily.shape, 100.0)
    day0 = date(2024, 1, 1)
    # The default allowance, 10 % of the expected use (half of the 20 % worth an alarm),
    # is above a +8 % shift; in σ alone (5 % of the use a day) that shift is an alarm.
    found = level_shifts(daily - 100, start=day0, daily_expected=expected)
    assert {a.meter_index for a in found} == {0}
    any_size = DetectorConfig(cusum_k_share=0.0)
    found = level_shifts(daily - 100, start=day0, daily_expected=expected, config=any_size)
    assert {a.meter_index for a in found} == {0, 1}
    strict = DetectorConfig(cusum_k_share=0.0, shift_min_rel=0.2, shift_min_days=3)
    found = level_shifts(daily - 100, start=day0, daily_expected=expected, config=strict)
    assert {a.meter_index for a in found} == {0}


def test_level_shift_must_matter_beside_the_meters_mean_day():
    """A heating meter's winter days at 100, its summer days at 5: +60 % on summer days is
    3 a day, 0.06 of its mean day (≈ 53); +30 % in winter is 30, 0.57 of it."""
    rng = np.random.default_rng(61)
    expected = np.where(np.arange(240) < 120, 100.0, 5.0)[np.newaxis, :].repeat(2, axis=0)
    daily = expected * (1 + 0.02 * rng.standard_normal(expected.shape))
    daily[0, 180:190] *= 1.6  # summer
    daily[1, 60:70] *= 1.3  # winter
    day0 = date(2024, 1, 1)
    cfg = DetectorConfig(ended_shift_by_use=False)
    found = level_shifts(daily - expected, start=day0, daily_expected=expected, config=cfg)
    ups = {(a.meter_index, a.start) for a in found if "up by" in a.reason}
    assert ups == {(0, 180), (1, 60)}
    cfg = dataclasses.replace(cfg, shift_min_mean_share=0.2)
    found = level_shifts(daily - expected, start=day0, daily_expected=expected, config=cfg)
    assert {(a.meter_index, a.start) for a in found if "up by" in a.reason} == {(1, 60)}


def test_level_shift_floor_looks_at_the_onset_in_the_event_direction():
    rng = np.random.default_rng(16)
    daily = 100 + 3 * rng.standard_normal((1, 240))
    daily[0, 150:] *= 0.7  # lasting −30 %
    daily[0, 155:158] += 200.0  # a three-day surge soon after, inside the excursion
    expected = np.full(daily.shape, 100.0)
    strict = DetectorConfig(shift_min_rel=0.2, shift_min_days=3)
    found = level_shifts(daily - 100, start=date(2024, 1, 1), daily_expected=expected,
                         config=strict)  # fmt: skip
    downs = [a for a in found if "down by" in a.reason]
    assert [a.start for a in downs if 148 <= a.start <= 151]


def test_one_cusum_excursion_is_one_level_shift():
    rng = np.random.default_rng(7)
    r = rng.standard_normal((1, 200))
    r[0, 100:105] += 4.0
    r[0, 105:108] -= 4.0  # the CUSUM dips under h without coming back to zero
    r[0, 108:113] += 4.0
    upper = cusum(r).upper[0]
    assert ((upper[100:113] > 8) & (np.roll(upper, 1)[100:113] <= 8)).sum() >= 2
    assert (upper[100:113] > 0).all()
    found = level_shifts(r, start=date(2024, 1, 1))
    ups = [a for a in found if 95 <= a.start <= 110 and "up by" in a.reason]
    assert len(ups) == 1
    assert ups[0].end >= 113


def test_a_level_shift_ends_where_its_evidence_stops():
    rng = np.random.default_rng(21)
    r = rng.normal(0.0, 1.0, (1, 300))
    r[0, 100:110] += 5.0  # ten days up, then back to normal
    (shift,) = [a for a in level_shifts(r, start=date(2024, 1, 1)) if "up by" in a.reason]
    # The sum peaks at the last shifted day; draining at k = 0.5 a day it would stay
    # above h until about day 170.
    assert abs(shift.start - 100) <= 1
    assert abs(shift.end - 110) <= 1


def test_an_excursion_over_within_days_is_no_level_shift_unless_still_going():
    rng = np.random.default_rng(27)
    r = rng.normal(0.0, 1.0, (3, 300))
    r[:2, 100] += 12.0  # a day far above, then back: weather the model missed
    r[1, 150:156] += 5.0  # six days up: a change of level
    r[2, 298] += 10.0  # the last day but one up: may be the start of one...
    r[2, 299] = -12.0  # ...though a short last day reads low and clears the alarm
    day0 = date(2024, 1, 1)
    found = [a for a in level_shifts(r, start=day0) if "up by" in a.reason]
    assert sorted((a.meter_index, a.start) for a in found) == [(1, 150), (2, 298)]
    every = DetectorConfig(ended_shift_min_days=0)
    found = [a for a in level_shifts(r, start=day0, config=every) if "up by" in a.reason]
    assert {(a.meter_index, a.start) for a in found} >= {(0, 100), (1, 100), (2, 298)}


def test_the_spread_of_days_grows_with_their_expected_use():
    """Residuals of σ = 0.2 + 0.05 × expected (hot water's noise, then the heating's): the
    line through the two halves' σ at their median use finds it between them, rising."""
    rng = np.random.default_rng(41)
    expected = np.tile(np.linspace(2.0, 40.0, 730), (2, 1))
    expected[1] = 10.0  # a meter whose use does not change: one σ
    dev = rng.normal(0.0, 1.0, expected.shape) * (0.2 + 0.05 * expected)
    dev[0, ::50] = np.nan
    spread = spread_by_use(dev, expected)
    middle = (expected[0] >= 10.0) & (expected[0] <= 32.0)
    assert_allclose(spread[0, middle], 0.2 + 0.05 * expected[0, middle], rtol=0.15)
    assert (np.diff(spread[0]) >= 0).all()
    assert_allclose(spread[1], spread[1, 0])
    assert_allclose(spread[1, 0], 0.2 + 0.05 * 10.0, rtol=0.15)


def test_winter_days_read_against_their_own_spread_make_fewer_false_shifts():
    """Sixty heating meters from July to January: 3 kWh a day in summer, 30 in winter, their
    days off the model by 0.2 kWh plus 3 % of the use. Against the year's one σ, set by the
    summer, the winter's noise adds up to excursions; against the spread of days of like
    use far fewer (27 against 51; 64 when onsets were dated by the sum per √day, which
    made more of the noise's excursions last the four days an ended shift needs). Twenty
    of them have a week 40 % up: found either way."""
    rng = np.random.default_rng(1)
    days, meters = 200, 60
    season = 0.5 - 0.5 * np.cos(2 * np.pi * (np.arange(days) - 20) / 365)  # 0 in July
    expected = np.tile(3.0 + 27.0 * season, (meters, 1))
    r = rng.normal(0.0, 1.0, (meters, days)) * (0.2 + 0.03 * expected)
    faults, starts = np.arange(40, 60), rng.integers(120, 185, 20)
    for m, s in zip(faults, starts, strict=True):
        r[m, s : s + 7] += 0.4 * expected[m, s : s + 7]
    by_use = dataclasses.replace(
        config_for("household_gas"), cusum_k_share=0.0, warning_h_share=0.0
    )  # alarms alone: no allowance by use, so noise on the last days would warn
    plain = dataclasses.replace(by_use, ended_shift_by_use=False)
    counts = []
    for cfg in (by_use, plain):
        found = level_shifts(r, start=date(2024, 7, 1), daily_expected=expected, config=cfg)
        noise = sum(a.meter_index < 40 for a in found)
        hit = sum(
            any(a.meter_index == m and abs(a.start - s) <= 1 for a in found)
            for m, s in zip(faults, starts, strict=True)
        )
        counts.append((noise, hit))
    (noise_by_use, hit_by_use), (noise_plain, hit_plain) = counts
    assert noise_plain >= 40  # the year's σ: an excursion on most meters
    assert noise_by_use <= 0.6 * noise_plain
    assert hit_by_use == hit_plain >= 18


def test_a_shift_two_days_old_is_reported_before_it_reaches_h():
    """Two days at 2.7 σ (2.2 over the allowance) sum to 4.4 σ: under h = 5, over 0.75 h.
    On the data's last two days that is reported; the same two days in the middle of the
    data, then back, are not."""
    rng = np.random.default_rng(31)
    r = rng.normal(0.0, 1.0, (2, 120))
    r[:, 117] = r[1, 57] = -3.0  # each sum starts from zero
    sigma = cusum(r).sigma[0]
    r[0, 118:] = r[1, 58:60] = 2.7 * sigma
    day0 = date(2024, 1, 1)
    found = [(a.meter_index, a.start, a.status) for a in level_shifts(r, start=day0)]
    assert found == [(0, 118, "confirmed")]
    no_early = DetectorConfig(recent_h_share=1.0, warning_h_share=0.0)
    assert not level_shifts(r, start=day0, config=no_early)


def test_two_days_short_of_an_alarm_are_a_warning():
    """Two days at 1.5 σ (1.0 over the allowance) sum to 2 σ: under 0.75 h, over 0.2 h.
    On the data's last two days that is a warning, and says so; in the middle of the
    data it is nothing."""
    rng = np.random.default_rng(31)
    r = rng.normal(0.0, 1.0, (2, 120))
    r[0, 117] = r[1, 57] = -3.0
    r[1, 100:] = 0.0  # no evidence either way at the end: meter 1's sums drain to zero
    sigma = cusum(r).sigma[0]
    r[0, 118:] = r[1, 58:60] = 1.5 * sigma
    day0 = date(2024, 1, 1)
    warn = DetectorConfig(warning_h_share=0.2)
    found = level_shifts(r, start=day0, config=warn)
    late = [a for a in found if a.end > 100]
    assert [(a.meter_index, a.start, a.status) for a in late] == [(0, 118, "warning")]
    assert late[0].reason.endswith("level shift, a warning until more days confirm it")
    assert not [a for a in level_shifts(r, start=day0) if a.end > 100]  # off by default


def test_a_warning_after_its_excursion_s_peak_starts_before_it_ends():
    """A day at 4.5 σ lifts the sum to 4 (under h), six days at the centre drain it to 1,
    and the last day but one at 2.8 σ brings it to 3.4: over a fifth of h on the data's
    last two days, a warning. The excursion's peak is its first day, where the event
    ends; the step is sought up to it, not up to the warning (which began it after its
    end)."""
    rng = np.random.default_rng(32)
    r = rng.normal(0.0, 1.0, (1, 360))
    r[0, 320:351] = -1.0  # the upward sum drains to zero
    cs = cusum(r)
    sigma, centre = cs.sigma[0], cs.center[0]
    r[0, 351] = centre + 4.5 * sigma
    r[0, 352:358] = centre
    r[0, 358:] = centre + np.array([2.8, 0.5]) * sigma
    found = level_shifts(r, start=date(2024, 1, 1), config=DetectorConfig(warning_h_share=0.2))
    late = [(a.start, a.end, a.status) for a in found if a.end > 351]
    assert late == [(351, 352, "warning")]
    assert all(a.start < a.end for a in found)


def test_onset_is_the_step_not_the_first_day_above_the_allowance():
    rng = np.random.default_rng(25)
    r = rng.normal(0.0, 1.0, (1, 300))
    r[0, 80:100] += 0.8  # a model a little off for three weeks: the sum creeps up
    r[0, 100:110] += 6.0  # then the real step
    upper = cusum(r).upper[0]
    cfg = DetectorConfig(cusum_h=8.0)
    assert upper[:100].max() < cfg.cusum_h  # no alarm before the step...
    assert np.flatnonzero(upper[:100] == 0.0)[-1] < 80  # ...and the sum's last zero is early
    found = level_shifts(r, start=date(2024, 1, 1), config=cfg)
    (shift,) = [a for a in found if "up by" in a.reason]
    assert (shift.start, shift.end) == (100, 110)


def test_onset_is_the_step_after_a_run_a_little_over_the_model():
    """A fortnight at +0.8 σ, its first day at +2.8 σ, then a six-day step at +2.5 σ (as
    seed 300's meter 455: the model a little off as the heating stopped, then a +53 %
    shift). The sum per √day from each day to the first alarm put the onset within 2 days
    of the step in 4 draws of 20, days before it in the others; the split between two
    means, with two weeks before the excursion as the reference, in 18."""
    cfg = DetectorConfig(cusum_h=7.0)
    near = 0
    for seed in range(20):
        r = np.random.default_rng(seed).normal(0.0, 1.0, (1, 300))
        r[0, 86:100] += 0.8
        r[0, 86] += 2.0
        r[0, 100:106] += 2.5
        ups = level_shifts(r, start=date(2024, 1, 1), config=cfg)
        near += any(abs(a.start - 100) <= 2 for a in ups)
    assert near >= 14  # 18 of 20 (4 before)


def test_onset_split_needs_days_on_both_sides():
    z = np.array([[np.nan, np.nan, 3.0, 1.0, np.nan]])
    rows = np.array([0, 0])
    lo, hi = np.array([2, 3]), np.array([4, 5])
    # Days without a residual count on neither side: the only split with a day on each
    # side is day 3, in both segments, even where the mean after it is the lower.
    assert _split_onset(z, rows, lo, hi).tolist() == [3, 3]
    # No split with a day on both sides: the excursion's first day.
    assert _split_onset(z, rows[:1], np.array([2]), np.array([3])).tolist() == [2]


def test_a_second_shift_while_the_first_s_sum_drains_is_its_own_event() -> None:
    """A home 50 % down for 12 days, back for 20, then 30 % down for 8 (as seed 301's meter
    357): the lower sum has not drained to zero when the second change begins, and stays
    under the first's peak, so both were one excursion ending at that peak and the second
    was never reported. Restarted at the peak, the second is found with its own onset."""
    rng = np.random.default_rng(8)
    days = 200
    expected = np.full((1, days), 10.0)
    residual = 0.4 * rng.standard_normal((1, days))
    residual[0, 100:112] -= 5.0
    residual[0, 132:140] -= 3.0
    found = level_shifts(residual, start=START.date(), daily_expected=expected)
    downs = sorted((a.start, a.end) for a in found if a.observed < a.expected)
    assert len(downs) == 2
    (first_on, first_end), (second_on, second_end) = downs
    assert abs(first_on - 100) <= 1 and 111 <= first_end <= 113
    assert abs(second_on - 132) <= 1 and 138 <= second_end <= 141
    assert not [a for a in found if a.observed > a.expected]
    cs = cusum(residual, k_floor=0.1 * expected)
    assert cs.lower[0, 112:141].min() > 5.0  # one excursion of the plain sum


def test_a_floor_keeps_the_sigma_of_days_read_in_the_same_quanta():
    """Days read as 6.2 kWh each, then 9.3 for a week: the MAD is 0, and without a floor
    every day's z is infinite or NaN; at 5 % of the use, the week is 10 σ a day."""
    daily = np.full((1, 60), 6.2)
    daily[0, 40:47] = 9.3
    expected = np.full(daily.shape, 6.2)
    floored = cusum(daily - 6.2, sigma_floor=0.05 * expected)
    assert_allclose(floored.sigma, [0.0])
    assert_allclose(floored.z[0, 40:47], 10.0)
    assert_allclose(floored.z[0, :40], 0.0)
    bare = cusum(daily - 6.2)
    assert not np.isfinite(bare.z[0, 40:47]).any()
    found = level_shifts(daily - 6.2, start=date(2024, 6, 1), daily_expected=expected,
                         sigma_floor=0.05 * expected)  # fmt: skip
    assert [(a.kind, a.start) for a in found] == [("level_shift", 40)]


def test_a_second_shift_two_days_old_while_the_first_s_sum_drains_warns() -> None:
    """The same home 50 % down for 12 days, back for 20, then 2 σ down on the data's last
    two days: the lower sum, still draining from the first, rises by 3 σ, over a fifth of
    h but far under the 2 h a second look within an alarm needs elsewhere. On the last
    two days it warns with its own onset, as a sum rising from zero there would."""
    rng = np.random.default_rng(8)
    residual = 0.4 * rng.standard_normal((1, 134))
    residual[0, 100:112] -= 5.0
    sigma = cusum(residual).sigma[0]
    residual[0, 132:] = cusum(residual).center[0] - 2.0 * sigma
    warn = DetectorConfig(warning_h_share=0.2)
    found = level_shifts(residual, start=START.date(), config=warn)
    downs = sorted((a.start, a.status) for a in found if a.observed < a.expected)
    assert downs[0][0] in (99, 100, 101)
    assert downs[1:] == [(132, "warning")]
    assert cusum(residual).lower[0, 112:].min() > 100.0  # far from drained
