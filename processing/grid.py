"""EN 50160 supply-quality checks on 10-minute means: frequency, LV voltage, transformer load.

Per-sample "always" limits become events; the statistical limits become compliance fractions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from processing.events import AnomalyEvents, events_from_mask

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

NOMINAL_FREQUENCY_HZ: Final = 50.0
NOMINAL_VOLTAGE_V: Final = 230.0
STEPS_PER_WEEK_10MIN: Final = 7 * 24 * 6

# Limits in percent of nominal, so nominal·(100 + p)/100 is exact (49.5, 50.5, 195.5, 253 …).
FREQ_NORMAL_PCT: Final = (-1, 1)  # 99.5 % of a year
FREQ_ALWAYS_PCT: Final = (-6, 4)  # 100 % of the time
VOLTAGE_NORMAL_PCT: Final = (-10, 10)  # 95 % of each week
VOLTAGE_ALWAYS_PCT: Final = (-15, 10)  # 100 % of the time
FREQ_NORMAL_SHARE: Final = 0.995
VOLTAGE_NORMAL_SHARE: Final = 0.95


def _limits(nominal: float, pct: tuple[int, int]) -> tuple[float, float]:
    return nominal * (100 + pct[0]) / 100, nominal * (100 + pct[1]) / 100


def _as_matrix(x: npt.ArrayLike, name: str) -> FloatArray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[np.newaxis, :]
    if a.ndim != 2:
        raise ValueError(f"{name}: expected shape (points, steps), got {a.shape}")
    return a


def ten_minute_means(x: npt.ArrayLike, *, steps_per_10min: int) -> FloatArray:
    """Mean of each 10-minute interval, ignoring NaN (NaN for an interval with no sample).

    ``x`` has shape (points, steps) with steps a multiple of ``steps_per_10min`` and step 0
    starting an interval. EN 50160 evaluates 10-minute mean r.m.s. values.
    """
    a = _as_matrix(x, "x")
    if steps_per_10min < 1 or a.shape[1] % steps_per_10min:
        raise ValueError(
            f"steps_per_10min: {a.shape[1]} steps is not a multiple of {steps_per_10min}"
        )
    b = a.reshape(a.shape[0], -1, steps_per_10min)
    ok = ~np.isnan(b)
    count = ok.sum(axis=2)
    total = np.where(ok, b, 0.0).sum(axis=2)
    mean: FloatArray = np.divide(total, count, out=np.full(total.shape, np.nan), where=count > 0)
    return mean


def _inside(a: FloatArray, lo: float, hi: float) -> BoolArray:
    with np.errstate(invalid="ignore"):
        return (a >= lo) & (a <= hi)


def _share_inside(a: FloatArray, lo: float, hi: float, axis: int = -1) -> FloatArray:
    """Fraction of valid values within [lo, hi] along ``axis`` (limits inclusive)."""
    valid = ~np.isnan(a)
    count = valid.sum(axis=axis)
    share: FloatArray = np.divide(
        _inside(a, lo, hi).sum(axis=axis),
        count,
        out=np.full(count.shape, np.nan),
        where=count > 0,
    )
    return share


@dataclass(slots=True, frozen=True)
class FrequencyCompliance:
    """Frequency verdict per measuring point.

    Attributes
    ----------
    share_normal : ndarray, shape (points,)
        Fraction of valid 10-min means within 49.5–50.5 Hz [0–1].
    compliant : ndarray of bool, shape (points,)
        ``share_normal >= 0.995`` and no value outside 47–52 Hz.
    violations : AnomalyEvents
        Runs of 10-min means outside 47–52 Hz (kind ``"frequency_out_of_limits"``).
    """

    share_normal: FloatArray
    compliant: BoolArray
    violations: AnomalyEvents


def frequency_compliance(
    frequency_10min: npt.ArrayLike, *, nominal_hz: float = NOMINAL_FREQUENCY_HZ
) -> FrequencyCompliance:
    """EN 50160 power-frequency check over a period (normally one year) of 10-minute means.

    Parameters
    ----------
    frequency_10min : array_like, shape (points, steps)
        10-minute mean frequency [Hz] of synchronously connected systems; NaN when missing.
    nominal_hz : float
        Nominal frequency [Hz].

    Returns
    -------
    FrequencyCompliance

    Notes
    -----
    Limits are inclusive: 49.5 Hz and 50.5 Hz are within the ±1 % band.
    """
    f = _as_matrix(frequency_10min, "frequency_10min")
    lo, hi = _limits(nominal_hz, FREQ_NORMAL_PCT)
    a_lo, a_hi = _limits(nominal_hz, FREQ_ALWAYS_PCT)
    share = _share_inside(f, lo, hi)
    outside = ~_inside(f, a_lo, a_hi) & ~np.isnan(f)
    deviation = np.abs(f - nominal_hz)
    events = events_from_mask(
        outside,
        kind="frequency_out_of_limits",
        score=deviation,
        expected=nominal_hz,
        observed=f,
    )
    compliant = (share >= FREQ_NORMAL_SHARE) & ~outside.any(axis=1)
    return FrequencyCompliance(share, compliant, events)


@dataclass(slots=True, frozen=True)
class VoltageCompliance:
    """LV supply-voltage verdict per measuring point and week.

    Attributes
    ----------
    weekly_share : ndarray, shape (points, weeks)
        Fraction of each week's valid 10-min means within 207–253 V [0–1].
    weekly_compliant : ndarray of bool, shape (points, weeks)
        ``weekly_share >= 0.95`` and no value outside 195.5–253 V during that week.
    violations : AnomalyEvents
        Runs of 10-min means outside 195.5–253 V (kind ``"voltage_out_of_limits"``).
    """

    weekly_share: FloatArray
    weekly_compliant: BoolArray
    violations: AnomalyEvents


def voltage_compliance(
    voltage_10min: npt.ArrayLike,
    *,
    nominal_v: float = NOMINAL_VOLTAGE_V,
    steps_per_week: int = STEPS_PER_WEEK_10MIN,
) -> VoltageCompliance:
    """EN 50160 LV supply-voltage check per week of 10-minute mean r.m.s. voltages.

    Parameters
    ----------
    voltage_10min : array_like, shape (points, steps)
        10-minute mean r.m.s. voltage [V]; step 0 starts a week; a trailing partial week is
        assessed on what it has.
    nominal_v : float
        Nominal voltage [V].
    steps_per_week : int
        10-minute means per week (1,008).

    Returns
    -------
    VoltageCompliance
    """
    u = _as_matrix(voltage_10min, "voltage_10min")
    lo, hi = _limits(nominal_v, VOLTAGE_NORMAL_PCT)
    a_lo, a_hi = _limits(nominal_v, VOLTAGE_ALWAYS_PCT)
    week_starts = np.arange(0, u.shape[1], steps_per_week)
    valid = ~np.isnan(u)
    inside = _inside(u, lo, hi)
    outside_always = ~_inside(u, a_lo, a_hi) & valid
    count = np.add.reduceat(valid, week_starts, axis=1, dtype=np.float64)
    n_in = np.add.reduceat(inside, week_starts, axis=1, dtype=np.float64)
    n_out = np.add.reduceat(outside_always, week_starts, axis=1, dtype=np.int64)
    share: FloatArray = np.divide(n_in, count, out=np.full(count.shape, np.nan), where=count > 0)
    compliant = (share >= VOLTAGE_NORMAL_SHARE) & (n_out == 0)
    events = events_from_mask(
        outside_always,
        kind="voltage_out_of_limits",
        score=np.abs(u - nominal_v),
        expected=nominal_v,
        observed=u,
    )
    return VoltageCompliance(share, compliant, events)


def transformer_overload(
    load_pu: npt.ArrayLike, *, limit_pu: float = 1.0, max_gap: int = 0
) -> AnomalyEvents:
    """Runs where a transformer's load exceeds its rating.

    Parameters
    ----------
    load_pu : array_like, shape (transformers, steps)
        Apparent power over rated power [pu]; NaN when missing.
    limit_pu : float
        Overload threshold [pu]; exactly 1.0 pu is not an overload.
    max_gap : int
        Merge overload runs separated by at most this many steps [steps].

    Returns
    -------
    AnomalyEvents
        Kind ``"transformer_overload"``; severity and observed are the peak load [pu].
    """
    s = _as_matrix(load_pu, "load_pu")
    with np.errstate(invalid="ignore"):
        over = s > limit_pu
    return events_from_mask(
        over,
        kind="transformer_overload",
        score=s,
        expected=limit_pu,
        observed=s,
        max_gap=max_gap,
    )
