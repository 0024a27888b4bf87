"""Consumption anomaly detectors: spikes/drops from robust z, schedule misuse, CUSUM level shifts.

Each detector returns :class:`~processing.events.Anomaly` objects with a sentence a person can read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

import numpy as np
import numpy.typing as npt

from processing.baseline import baseline_scan, median_at, nan_median_mad
from processing.events import (
    Anomaly,
    AnomalyEvents,
    EventRow,
    ReasonFn,
    describe_step,
    events_from_mask,
    mask_runs,
    step_time,
)
from processing.quality import QualityConfig, quality_scan

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(slots=True, frozen=True)
class DetectorConfig:
    """Thresholds of the consumption detectors for one kind of meter.

    Attributes
    ----------
    z_threshold : float
        |robust z| above which a step is a spike (or a drop) [-].
    max_gap : int
        Flagged steps separated by at most this many steps form one event [steps].
    night_hours : tuple of int
        Local night window ``(start, end)`` [h]; 23–05 wraps midnight.
    schedule_ratio : float
        A night/weekend/holiday window is flagged when its mean exceeds
        ``schedule_ratio × typical night level + schedule_margin`` [-].
    schedule_margin : float
        Absolute margin above the typical night level [unit per step].
    check_nights, check_weekends, check_holidays : bool
        Which schedule windows apply to this kind of meter (offices and schools close at
        weekends; homes do not).
    reference_weeks : int
        Length of the periods over which the typical night level is taken [weeks].
    cusum_k : float
        CUSUM allowance, half the shift to detect [σ of daily residuals].
    cusum_h : float
        CUSUM decision threshold [σ].
    drift_ratio : float
        A CUSUM event whose first-third mean residual is below ``drift_ratio`` × its
        last-third mean is called a drift rather than a level shift [-].
    unit : str
        Unit of the analysed series, written in reasons.
    """

    z_threshold: float = 5.0
    max_gap: int = 1
    night_hours: tuple[int, int] = (23, 5)
    schedule_ratio: float = 1.5
    schedule_margin: float = 0.0
    check_nights: bool = True
    check_weekends: bool = False
    check_holidays: bool = False
    reference_weeks: int = 4
    cusum_k: float = 0.5
    cusum_h: float = 5.0
    drift_ratio: float = 0.5
    unit: str = "kWh"


DETECTOR_CONFIGS: Final = {
    "household": DetectorConfig(),
    "office": DetectorConfig(check_weekends=True, check_holidays=True, schedule_ratio=1.3),
    "school": DetectorConfig(check_weekends=True, check_holidays=True, schedule_ratio=1.3),
    # Heat and gas meters respond to the weather: allow larger swings before a spike.
    "heat": DetectorConfig(z_threshold=6.0, schedule_ratio=2.0),
    "gas": DetectorConfig(z_threshold=6.0, schedule_ratio=2.0),
}


def config_for(kind: str) -> DetectorConfig:
    """Detector thresholds of a meter kind (see ``DETECTOR_CONFIGS``)."""
    try:
        return DETECTOR_CONFIGS[kind]
    except KeyError:
        known = ", ".join(sorted(DETECTOR_CONFIGS))
        raise ValueError(f"kind: unknown meter kind {kind!r}; known: {known}") from None


def _as_matrix(x: npt.ArrayLike, name: str) -> FloatArray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[np.newaxis, :]
    if a.ndim != 2:
        raise ValueError(f"{name}: expected shape (meters, steps), got {a.shape}")
    return a


# --- spikes and drops ---------------------------------------------------------------------


def spikes_and_drops(
    x: npt.ArrayLike,
    z: npt.ArrayLike,
    *,
    start: datetime,
    steps_per_hour: int = 1,
    weeks: int = 4,
    config: DetectorConfig | None = None,
) -> list[Anomaly]:
    """Steps far above (spike) or below (drop) the hour-of-week baseline.

    Parameters
    ----------
    x : array_like, shape (meters, steps)
        Consumption per step [``config.unit``].
    z : array_like, shape (meters, steps)
        Robust z from :func:`~processing.baseline.baseline_scan` [-].
    start : datetime
        Local wall-clock time of step 0, for the reasons.
    steps_per_hour, weeks : int
        As used for ``z``; the expected value at each event's peak is recomputed from them.
    config : DetectorConfig, optional

    Returns
    -------
    list of Anomaly
        Kinds ``"spike"`` and ``"drop"``; severity is the peak |z|.
    """
    cfg = config if config is not None else DetectorConfig()
    a = _as_matrix(x, "x")
    zz = _as_matrix(z, "z")
    if zz.shape != a.shape:
        raise ValueError(f"z: expected shape {a.shape}, got {zz.shape}")
    out: list[Anomaly] = []
    for kind, mask in (("spike", zz > cfg.z_threshold), ("drop", zz < -cfg.z_threshold)):
        ev = events_from_mask(mask, kind=kind, score=zz, observed=a, max_gap=cfg.max_gap)
        if not len(ev):
            continue
        expected = median_at(a, ev.meter_index, ev.peak, weeks=weeks, steps_per_hour=steps_per_hour)
        ev = dataclasses.replace(ev, expected=expected)
        out.extend(ev.to_anomalies(_spike_reason(start, steps_per_hour, cfg.unit)))
    return out


def _spike_reason(start: datetime, steps_per_hour: int, unit: str) -> ReasonFn:
    def reason(ev: EventRow) -> str:
        when = describe_step(ev.peak, start, steps_per_hour)
        vals = f"expected {ev.expected:.3g} {unit}, saw {ev.observed:.3g} {unit}"
        if ev.expected > 0 and np.isfinite(ev.expected):
            ratio = ev.observed / ev.expected
            size = f"{ratio:.1f}× the usual" if ratio >= 1 else f"{ratio:.0%} of the usual"
            return f"Consumption {size} for {when} ({vals})"
        return f"Consumption unusual for {when} ({vals}, robust z {ev.severity:.1f})"

    return reason


# --- schedule: nights, weekends, holidays --------------------------------------------------


def _step_calendar(
    n: int, start: datetime, steps_per_hour: int
) -> tuple[npt.NDArray[np.float64], IntArray]:
    """Local hour of day [h] and day index since ``start``'s date of every step."""
    hours = start.hour + start.minute / 60 + np.arange(n) / steps_per_hour
    day = np.floor_divide(hours, 24).astype(np.int64)
    return hours - 24 * day, day


def _window_means(
    x: FloatArray, starts: IntArray, ends: IntArray, block_meters: int = 256
) -> FloatArray:
    """NaN-ignoring mean of each meter over contiguous step windows; NaN if < half valid."""
    m, n = x.shape
    cuts = np.unique(np.concatenate((starts, ends, [0])))
    cuts = cuts[cuts < n]
    pick = np.searchsorted(cuts, starts)
    length = (ends - starts).astype(np.float64)
    out = np.empty((m, starts.size))
    for i in range(0, m, block_meters):
        xb = x[i : i + block_meters]
        ok = ~np.isnan(xb)
        total = np.add.reduceat(np.where(ok, xb, 0.0), cuts, axis=1)[:, pick]
        count = np.add.reduceat(ok, cuts, axis=1, dtype=np.float64)[:, pick]
        out[i : i + block_meters] = np.divide(
            total, count, out=np.full(total.shape, np.nan), where=count >= 0.5 * length
        )
    return out


def _typical_night_level(
    night_mean: FloatArray, night_period: IntArray, n_periods: int
) -> FloatArray:
    """Median night mean of each meter in each reference period, shape (meters, periods).

    Periods with fewer than two valid nights fall back to the median over all nights.
    """
    m, n = night_mean.shape
    first = np.searchsorted(night_period, np.arange(n_periods))
    pos = np.arange(n) - first[night_period]
    width = int(pos.max(initial=0)) + 1
    grouped = np.full((m, n_periods, width), np.nan)
    grouped[:, night_period, pos] = night_mean
    typical = nan_median_mad(grouped)[0]
    overall = nan_median_mad(night_mean)[0]
    return np.where(np.isnan(typical), overall[:, np.newaxis], typical)


def schedule_anomalies(
    x: npt.ArrayLike,
    *,
    start: datetime,
    steps_per_hour: int = 1,
    holidays: Sequence[date] = (),
    config: DetectorConfig | None = None,
) -> list[Anomaly]:
    """Nights, weekends and holidays whose mean use exceeds the meter's own typical night level.

    Parameters
    ----------
    x : array_like, shape (meters, steps)
        Consumption per step [``config.unit``], aligned on local wall-clock time.
    start : datetime
        Local time of step 0 (naive).
    steps_per_hour : int
        Samples per hour.
    holidays : sequence of date
        Public or site holidays (whole local days).
    config : DetectorConfig, optional
        Which windows apply, and the ratio and margin.

    Returns
    -------
    list of Anomaly
        Kinds ``"night_use"``, ``"weekend_use"``, ``"holiday_use"``; severity is the window
        mean over the typical night level [-]; expected/observed are mean rates [unit/h].

    Notes
    -----
    The typical night level is the median of the meter's night means over the surrounding
    ``config.reference_weeks`` weeks (fixed calendar periods from ``start``), so heating or
    baseload left on for a minority of nights stands out against the meter itself, and the
    seasonal rise of night use in winter is not flagged every night.
    """
    cfg = config if config is not None else DetectorConfig()
    a = _as_matrix(x, "x")
    n = a.shape[1]
    hour, day = _step_calendar(n, start, steps_per_hour)
    night_from, night_to = cfg.night_hours
    if night_from > night_to:
        is_night = (hour >= night_from) | (hour < night_to)
    else:
        is_night = (hour >= night_from) & (hour < night_to)
    n_starts, n_ends = mask_runs(is_night[np.newaxis, :])[1:]
    if n_starts.size == 0:
        return []
    night_mean = _window_means(a, n_starts, n_ends)
    period_days = 7 * cfg.reference_weeks
    n_periods = int(day[-1]) // period_days + 1
    typical = _typical_night_level(night_mean, day[n_starts] // period_days, n_periods)
    threshold = cfg.schedule_ratio * typical + cfg.schedule_margin

    windows: list[tuple[str, IntArray, IntArray, FloatArray]] = []
    if cfg.check_nights:
        windows.append(("night_use", n_starts, n_ends, night_mean))
    weekday = (start.weekday() + day) % 7
    if cfg.check_weekends:
        s, e = mask_runs((weekday >= 5)[np.newaxis, :])[1:]
        windows.append(("weekend_use", s, e, _window_means(a, s, e)))
    if cfg.check_holidays and holidays:
        ordinal = start.date().toordinal() + day
        hol = np.isin(ordinal, np.array([d.toordinal() for d in holidays]))
        s, e = mask_runs(hol[np.newaxis, :])[1:]
        windows.append(("holiday_use", s, e, _window_means(a, s, e)))

    out: list[Anomaly] = []
    rate = float(steps_per_hour)
    for kind, w_start, w_end, mean in windows:
        period = np.minimum(day[w_start] // period_days, n_periods - 1)
        ref = typical[:, period]
        with np.errstate(invalid="ignore", divide="ignore"):
            flagged = (mean > threshold[:, period]) & (ref >= 0)
            ratio = mean / ref
        rows, cols = np.nonzero(flagged)
        label = kind.split("_")[0].capitalize()
        for m_i, w, r, obs, exp in zip(
            rows.tolist(),
            cols.tolist(),
            ratio[rows, cols].tolist(),
            mean[rows, cols].tolist(),
            ref[rows, cols].tolist(),
            strict=True,
        ):
            s_step, e_step = int(w_start[w]), int(w_end[w])
            t0 = step_time(s_step, start, steps_per_hour)
            size = (
                f"{r:.1f}× the usual night level" if np.isfinite(r) else "above a zero night level"
            )
            text = (
                f"{label} from {t0:%a %Y-%m-%d %H:%M}: "
                f"{obs * rate:.3g} {cfg.unit}/h on average, {size} "
                f"({exp * rate:.3g} {cfg.unit}/h) — heating or baseload left on?"
            )
            out.append(Anomaly(m_i, s_step, e_step, kind, r, exp * rate, obs * rate, text))
    return out


# --- CUSUM on daily residuals --------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class Cusum:
    """Two-sided CUSUM statistics over days.

    Attributes
    ----------
    upper, lower : ndarray, shape (meters, days)
        Upward and downward cumulative sums [σ]; never negative.
    sigma : ndarray, shape (meters,)
        Robust σ of the daily residuals used to standardise them [residual unit].
    center : ndarray, shape (meters,)
        Median daily residual removed first [residual unit].
    """

    upper: FloatArray
    lower: FloatArray
    sigma: FloatArray
    center: FloatArray


def cusum(daily_residual: npt.ArrayLike, *, k: float = 0.5) -> Cusum:
    """Two-sided tabular CUSUM of standardised daily residuals, with no loop over days.

    Parameters
    ----------
    daily_residual : array_like, shape (meters, days)
        Observed minus expected per day [unit·day]; NaN days add no evidence.
    k : float
        Allowance [σ].

    Returns
    -------
    Cusum

    Notes
    -----
    ``S_t = max(0, S_{t−1} + y_t − k)`` equals ``C_t − min(0, min_{j≤t} C_j)`` with
    ``C = cumsum(y − k)`` (Lindley), so the recursion is a cumulative sum and a running
    minimum. Residuals are centred on their median and scaled by 1.4826·MAD, both robust to
    a shift affecting fewer than half of the days.
    """
    r = _as_matrix(daily_residual, "daily_residual")
    center, mad = nan_median_mad(r)
    sigma = 1.4826 * mad
    with np.errstate(invalid="ignore", divide="ignore"):
        y = (r - center[:, np.newaxis]) / sigma[:, np.newaxis]
    y[~np.isfinite(y)] = np.nan

    def one_side(v: FloatArray) -> FloatArray:
        inc = np.where(np.isnan(v), 0.0, v - k)
        c = np.cumsum(inc, axis=1)
        run_min = np.minimum.accumulate(np.minimum(c, 0.0), axis=1)
        return np.asarray(c - run_min, dtype=np.float64)

    return Cusum(upper=one_side(y), lower=one_side(-y), sigma=sigma, center=center)


class _SegmentMeans:
    """NaN-ignoring means of ``a[row, lo:hi]`` for many segments at once, via cumulative sums."""

    def __init__(self, a: FloatArray) -> None:
        ok = ~np.isnan(a)
        zero = np.zeros((a.shape[0], 1))
        self.total = np.concatenate((zero, np.cumsum(np.where(ok, a, 0.0), axis=1)), axis=1)
        self.count = np.concatenate((zero, np.cumsum(ok, axis=1, dtype=np.float64)), axis=1)

    def __call__(self, rows: IntArray, lo: IntArray, hi: IntArray) -> FloatArray:
        n = self.count[rows, hi] - self.count[rows, lo]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean: FloatArray = np.where(
                n > 0, (self.total[rows, hi] - self.total[rows, lo]) / n, np.nan
            )
        return mean


def level_shifts(
    daily_residual: npt.ArrayLike,
    *,
    start: date,
    daily_expected: npt.ArrayLike | None = None,
    config: DetectorConfig | None = None,
) -> list[Anomaly]:
    """Level shifts and drifts in daily residuals, with the onset of each.

    Parameters
    ----------
    daily_residual : array_like, shape (meters, days)
        Observed minus expected per day [unit/day], e.g. ``BaselineScan.daily_residual``.
    start : date
        Local date of day 0.
    daily_expected : array_like, optional, shape (meters, days)
        Expected daily use [unit/day], to state the change in percent.
    config : DetectorConfig, optional
        ``cusum_k``, ``cusum_h``, ``drift_ratio`` and ``unit``.

    Returns
    -------
    list of Anomaly
        Kinds ``"level_shift"`` or ``"drift"``; ``start`` is the estimated onset day (the day
        after the CUSUM last left zero before the alarm), ``end`` the day after the alarm
        cleared; severity is the peak CUSUM [σ]; expected/observed are mean daily values
        over the event [unit/day].
    """
    cfg = config if config is not None else DetectorConfig()
    r = _as_matrix(daily_residual, "daily_residual")
    exp_daily = (
        np.zeros_like(r) if daily_expected is None else _as_matrix(daily_expected, "daily_expected")
    )
    cs = cusum(r, k=cfg.cusum_k)
    days = np.arange(r.shape[1])
    out: list[Anomaly] = []
    seg_mean = _SegmentMeans(r)
    seg_exp = _SegmentMeans(exp_daily)
    for direction, stat in (("up", cs.upper), ("down", cs.lower)):
        ev = events_from_mask(stat > cfg.cusum_h, kind="level_shift", score=stat)
        if not len(ev):
            continue
        last_zero = np.where(stat == 0.0, days, -1)
        np.maximum.accumulate(last_zero, axis=1, out=last_zero)
        rows, end = ev.meter_index, ev.end
        onset = last_zero[rows, ev.start] + 1
        # Size against the weeks before the onset: the robust centre of the whole series is
        # pulled towards the new level when the shift covers many days.
        ref = seg_mean(rows, np.maximum(onset - 28, 0), onset)
        ref = np.where(np.isnan(ref), cs.center[rows], ref)
        shift = np.nan_to_num(seg_mean(rows, onset, end) - ref)
        third = np.maximum((end - onset) // 3, 1)
        first = seg_mean(rows, onset, onset + third) - ref
        last = seg_mean(rows, end - third, end) - ref
        sign = 1.0 if direction == "up" else -1.0
        drift = sign * first < cfg.drift_ratio * sign * last
        exp = seg_exp(rows, onset, end)
        obs = exp + shift
        for m_i, on, e, sev, ex, ob, sh, is_drift in zip(
            rows.tolist(),
            onset.tolist(),
            end.tolist(),
            ev.severity.tolist(),
            exp.tolist(),
            obs.tolist(),
            shift.tolist(),
            drift.tolist(),
            strict=True,
        ):
            when = start + timedelta(days=on)
            pct = f" ({sh / ex:+.0%})" if ex > 0 else ""
            text = (
                f"Daily consumption {direction} by {abs(sh):.3g} {cfg.unit}/day{pct} "
                f"since {when:%Y-%m-%d} (expected {ex:.3g}, saw {ob:.3g} {cfg.unit}/day); "
                f"{'gradual drift' if is_drift else 'level shift'}"
            )
            kind = "drift" if is_drift else "level_shift"
            out.append(Anomaly(m_i, on, e, kind, sev, ex, ob, text))
    return out


# --- full scan -----------------------------------------------------------------------------


def anomaly_scan(
    x: npt.ArrayLike,
    *,
    start: datetime,
    steps_per_hour: int = 1,
    weeks: int = 4,
    holidays: Sequence[date] = (),
    config: DetectorConfig | None = None,
    quality: QualityConfig | None = None,
    z_out: FloatArray | None = None,
) -> list[Anomaly]:
    """Every consumption detector over one chunk of meters: quality, spikes, schedule, CUSUM.

    ``start`` must be local midnight so days of the baseline scan are calendar days.
    ``z_out`` is an optional reusable (meters, steps) float64 buffer.
    """
    cfg = config if config is not None else DetectorConfig()
    a = _as_matrix(x, "x")
    if (start.hour, start.minute) != (0, 0):
        raise ValueError(f"start: must be local midnight for daily residuals, got {start}")
    found: list[Anomaly] = []
    for ev in quality_scan(a, quality).values():
        found.extend(_quality_reasons(ev, start, steps_per_hour, cfg.unit))
    scan = baseline_scan(a, weeks=weeks, steps_per_hour=steps_per_hour, out=z_out)
    found.extend(
        spikes_and_drops(
            a, scan.z, start=start, steps_per_hour=steps_per_hour, weeks=weeks, config=cfg
        )
    )
    found.extend(
        schedule_anomalies(
            a, start=start, steps_per_hour=steps_per_hour, holidays=holidays, config=cfg
        )
    )
    found.extend(
        level_shifts(
            scan.daily_residual,
            start=start.date(),
            daily_expected=scan.daily_expected,
            config=cfg,
        )
    )
    return found


_QUALITY_TEXT: Final = {
    "negative": "Negative consumption",
    "outage": "No data",
    "zero_run": "Zero consumption",
    "flatline": "Identical readings (stuck sensor?)",
}


def _quality_reasons(
    ev: AnomalyEvents, start: datetime, steps_per_hour: int, unit: str
) -> list[Anomaly]:
    head = _QUALITY_TEXT.get(ev.kind, ev.kind)

    def reason(ev: EventRow) -> str:
        t0 = step_time(ev.start, start, steps_per_hour)
        hours = (ev.end - ev.start) / steps_per_hour
        value = f", value {ev.observed:.3g} {unit}" if np.isfinite(ev.observed) else ""
        return f"{head} for {hours:g} h from {t0:%Y-%m-%d %H:%M}{value}"

    return ev.to_anomalies(reason)
