"""Detectors: spikes, schedule misuse and CUSUM level shifts on synthetic series."""

from datetime import date, datetime, timedelta

import numpy as np
import pytest

from processing.baseline import baseline_scan
from processing.detectors import (
    DetectorConfig,
    anomaly_scan,
    config_for,
    cusum,
    level_shifts,
    schedule_anomalies,
    spikes_and_drops,
)

START = datetime(2024, 1, 1)  # a Monday, local midnight
W = 168


def _profile(n_weeks, meters, rng, noise=0.1):
    hours = np.arange(W * n_weeks)
    daily = 1.0 + 0.5 * np.sin(2 * np.pi * (hours % 24) / 24)
    return daily[None, :] * (1 + noise * rng.standard_normal((meters, hours.size)))


def test_spike_of_eight_sigma_is_found_with_reason():
    rng = np.random.default_rng(0)
    x = _profile(10, 30, rng)
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
    x = _profile(12, 50, rng)
    z = baseline_scan(x).z
    found = spikes_and_drops(x, z, start=START)
    assert len(found) <= 0.0005 * x.size  # ≤ 0.05 % of steps


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
    x = _profile(30, 6, rng, noise=0.05)
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


def test_schedule_night_weekend_holiday():
    n_days = 28
    hours = np.arange(24 * n_days)
    hod = hours % 24
    dow = (hours // 24) % 7
    office = np.where((hod >= 8) & (hod < 18) & (dow < 5), 10.0, 1.0)
    x = np.tile(office, (3, 1))
    bad_night = 10  # night starting 23:00 on day 10
    x[1, bad_night * 24 + 23 : bad_night * 24 + 29] = 4.0
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
    assert "4.0× the usual night level" in night.reason
    assert (START + timedelta(hours=night.start)).hour == 23


def test_config_for_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        config_for("spaceship")
    assert DetectorConfig().z_threshold == 5.0


def test_full_scan_runs():
    rng = np.random.default_rng(6)
    x = _profile(8, 5, rng)
    x[0, 500:510] = np.nan
    found = anomaly_scan(x, start=START)
    assert any(a.kind == "outage" and a.meter_index == 0 for a in found)
    assert all(a.reason for a in found)
