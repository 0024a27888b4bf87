"""Level shifts and drifts: a two-sided CUSUM on daily residuals, with each change's onset."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

import numpy as np
import numpy.typing as npt

from processing.baseline import (
    MAD_TO_SIGMA,
    as_matrix,
    nan_median,
    nan_median_mad,
    split_medians,
)
from processing.detector_config import DetectorConfig
from processing.events import (
    Anomaly,
    events_from_mask,
    segment_index,
)
from processing.weather_model import reading_until

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


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
    z : ndarray, shape (meters, days)
        The standardised residuals the sums add up [σ]; NaN where a day has none.
    """

    upper: FloatArray
    lower: FloatArray
    sigma: FloatArray
    center: FloatArray
    z: FloatArray


LOCAL_SCALE_LAG_DAYS: Final = 14  # a shift of up to two weeks does not widen its own scale


def _lagged_scale(dev: FloatArray, days: int, lag: int) -> FloatArray:
    """σ of each day from the mean |deviation| of the ``days`` days ending ``lag`` days
    before it (1.2533·mean |x| is σ for a normal x); 0 where fewer than half are valid."""
    seg = SegmentMeans(np.abs(dev))
    n = dev.shape[1]
    hi = np.clip(np.arange(n) - lag, 0, n)
    lo = np.clip(hi - days, 0, n)
    t, c = seg.total[:, hi] - seg.total[:, lo], seg.count[:, hi] - seg.count[:, lo]
    scale: FloatArray = 1.2533 * np.divide(t, c, out=np.zeros_like(t), where=c >= days / 2)
    return scale


def _alarm_days(stat: FloatArray, cfg: DetectorConfig, days_read: IntArray) -> BoolArray:
    """Days a CUSUM ``stat`` is in alarm or warns: above ``cusum_h``, or above the least of
    ``recent_h_share`` and ``warning_h_share`` of it on each meter's last two days read
    (an event that never passes ``recent_h_share`` is a warning, see :func:`_status`)."""
    day = np.arange(stat.shape[1])[np.newaxis, :]
    recent = (day >= (days_read - 2)[:, np.newaxis]) & (day < days_read[:, np.newaxis])
    early = (stat > _least_recent_share(cfg) * cfg.cusum_h) & recent
    return np.asarray((stat > cfg.cusum_h) | early, dtype=bool)


def _least_recent_share(cfg: DetectorConfig) -> float:
    """The share of ``cusum_h`` a sum must pass on a meter's last two days read to be
    reported, as an alarm or a warning."""
    return min(cfg.recent_h_share, cfg.warning_h_share or cfg.recent_h_share)


def _status(severity: float, cfg: DetectorConfig) -> str:
    """``"warning"`` for an event whose peak CUSUM (``severity``) stayed at or under
    ``recent_h_share`` of ``cusum_h``: only the last two days' lower threshold raised it."""
    return "warning" if severity <= cfg.recent_h_share * cfg.cusum_h else "confirmed"


def spread_by_use(deviation: npt.ArrayLike, expected: npt.ArrayLike) -> FloatArray:
    """Robust σ of each day's residual as a line in its expected use, shape (meters, days).

    Each meter's days are split at its median expected use (days without a residual left
    out); the line passes through each half's σ (1.4826 × the median |deviation|) at the
    half's median expected use, rising or flat (a slope below zero is taken as zero).
    ``deviation`` is the residual less its centre. NaN where a meter has too few days.
    """
    dev = as_matrix(deviation, "deviation")
    e = np.where(np.isnan(dev), np.nan, as_matrix(expected, "expected"))
    middle, e_low, e_high = split_medians(e)
    half = e > middle[:, np.newaxis]
    s_high = MAD_TO_SIGMA * nan_median(np.where(half, np.abs(dev), np.nan))
    s_low = MAD_TO_SIGMA * nan_median(np.where(half | np.isnan(e), np.nan, np.abs(dev)))
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.maximum(np.nan_to_num((s_high - s_low) / (e_high - e_low)), 0.0)
    spread: FloatArray = s_low[:, np.newaxis] + slope[:, np.newaxis] * (
        np.asarray(expected, dtype=np.float64) - e_low[:, np.newaxis]
    )
    return spread


def cusum(
    daily_residual: npt.ArrayLike,
    *,
    k: float = 0.5,
    local_days: int = 0,
    k_floor: npt.ArrayLike | None = None,
    expected: npt.ArrayLike | None = None,
    sigma_floor: npt.ArrayLike | None = None,
) -> Cusum:
    """Two-sided tabular CUSUM of standardised daily residuals, with no loop over days.

    Parameters
    ----------
    daily_residual : array_like, shape (meters, days)
        Observed minus expected per day [unit·day]; NaN days add no evidence.
    k : float
        Allowance [σ].
    local_days : int
        With > 0, each day's σ is at least that of the ``local_days`` days ending
        ``LOCAL_SCALE_LAG_DAYS`` before it: a room free-floating in summer swings by kelvins
        from day to day, one held by its thermostat in winter by tenths.
    k_floor : array_like, optional, shape (meters, days)
        Smallest allowance of each day in residual units (e.g. a share of the expected
        use); the day's allowance is the larger of this and ``k`` σ.
    expected : array_like, optional, shape (meters, days)
        Expected use of each day: its σ is at least the spread of days of like expected
        use (:func:`spread_by_use`).
    sigma_floor : array_like, optional, shape (meters, days)
        Smallest σ of each day in residual units: a meter that reads the same whole quanta
        day after day has a MAD of 0.

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
    r = as_matrix(daily_residual, "daily_residual")
    center, mad = nan_median_mad(r)
    sigma = 1.4826 * mad
    dev = r - center[:, np.newaxis]
    scale = np.broadcast_to(sigma[:, np.newaxis], r.shape)
    if local_days > 0:
        scale = np.maximum(scale, _lagged_scale(dev, local_days, LOCAL_SCALE_LAG_DAYS))
    if expected is not None:
        scale = np.fmax(scale, spread_by_use(dev, as_matrix(expected, "expected")))
    if sigma_floor is not None:
        scale = np.fmax(scale, np.abs(as_matrix(sigma_floor, "sigma_floor")))
    # Each step writes into an array of the step before where it can: a fresh (meters, days)
    # array costs about as much in page faults as the arithmetic on it.
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.divide(dev, scale, out=dev)
    np.copyto(y, np.nan, where=~np.isfinite(y))
    allowance: float | FloatArray = k
    if k_floor is not None:
        floor = np.abs(np.asarray(k_floor, dtype=np.float64))
        with np.errstate(invalid="ignore", divide="ignore"):
            np.divide(floor, scale, out=floor)
        allowance = np.maximum(k, np.nan_to_num(floor, copy=False, posinf=0.0), out=floor)

    def one_side(v: FloatArray, c: FloatArray) -> FloatArray:
        """The sums of ``v`` (``c`` may be ``v`` itself, overwritten)."""
        gaps = np.isnan(v)
        np.subtract(v, allowance, out=c)
        np.copyto(c, 0.0, where=gaps)
        np.cumsum(c, axis=1, out=c)
        run_min = np.minimum(c, 0.0)
        np.minimum.accumulate(run_min, axis=1, out=run_min)
        return np.subtract(c, run_min, out=run_min)

    upper = one_side(y, np.empty_like(y))
    lower = one_side(np.negative(y), np.empty_like(y))
    return Cusum(upper=upper, lower=lower, sigma=sigma, center=center, z=y)


class SegmentMeans:
    """NaN-ignoring means (and sums, :meth:`sums`) of ``a[row, lo:hi]`` for many segments at
    once, via cumulative sums."""

    def __init__(self, a: FloatArray) -> None:
        gaps = np.isnan(a)
        m, n = a.shape
        # Summed in place behind a column of zeros: no copies of the matrix to concatenate.
        self.total = np.zeros((m, n + 1))
        total = self.total[:, 1:]
        np.copyto(total, a)
        np.copyto(total, 0.0, where=gaps)
        np.cumsum(total, axis=1, out=total)
        self.count = np.zeros((m, n + 1))
        count = self.count[:, 1:]
        np.logical_not(gaps, out=count)
        np.cumsum(count, axis=1, out=count)

    def sums(self, rows: IntArray, lo: IntArray, hi: IntArray) -> FloatArray:
        """The sums of the segments, NaN counting as 0."""
        return np.asarray(self.total[rows, hi] - self.total[rows, lo], dtype=np.float64)

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
    meter_offset: int = 0,
    sigma_floor: npt.ArrayLike | None = None,
) -> list[Anomaly]:
    """Level shifts and drifts in daily residuals, with the onset of each.

    Parameters
    ----------
    daily_residual : array_like, shape (meters, days)
        Observed minus expected per day [unit/day], e.g. ``BaselineScan.daily_residual``.
    start : date
        Local date of day 0.
    daily_expected : array_like, optional, shape (meters, days)
        Expected daily use [unit/day], to state the change in percent and to floor the
        allowance (``cusum_k_share``).
    config : DetectorConfig, optional
        ``cusum_k``, ``cusum_k_share``, ``cusum_h``, ``drift_ratio`` and ``unit``.
    meter_offset : int
        Added to every anomaly's ``meter_index``: the row of ``daily_residual[0]`` in a
        larger matrix scanned in slices.
    sigma_floor : array_like, optional, shape (meters, days)
        Smallest σ of each day (see :func:`cusum`).

    Returns
    -------
    list of Anomaly
        Kinds ``"level_shift"`` or ``"drift"``; ``start`` is the estimated onset day (the
        step that best splits the excursion, see :func:`_split_onset`), ``end`` the day
        after the excursion's peak; severity is the peak CUSUM [σ]; expected/observed are
        mean daily values over the event [unit/day].
    """
    cfg = config if config is not None else DetectorConfig()
    r = as_matrix(daily_residual, "daily_residual")
    exp_daily = (
        np.zeros_like(r) if daily_expected is None else as_matrix(daily_expected, "daily_expected")
    )
    k_floor = None
    if daily_expected is not None and cfg.cusum_k_share > 0:
        k_floor = cfg.cusum_k_share * exp_daily
    cs = cusum(
        r, k=cfg.cusum_k, local_days=cfg.cusum_local_days, k_floor=k_floor,
        sigma_floor=sigma_floor,
    )  # fmt: skip
    by_use = (
        _sums_by_use(r, exp_daily, k_floor, cs, cfg)
        if cfg.ended_shift_by_use and daily_expected is not None
        else None
    )
    out: list[Anomaly] = []
    seg_mean = SegmentMeans(r)
    seg_exp = SegmentMeans(exp_daily)
    # The meter's mean expected day, for ``shift_min_mean_share``.
    mean_day = (
        mean_daily(exp_daily)
        if cfg.shift_min_mean_share > 0 and daily_expected is not None
        else None
    )
    dates: dict[int, str] = {}  # onset day → its date written out, once per day
    days_read = reading_until(r)  # one past each meter's last day with a residual
    for direction, stat in (("up", cs.upper), ("down", cs.lower)):
        ev = events_from_mask(_alarm_days(stat, cfg, days_read), kind="level_shift", score=stat)
        if not len(ev):
            continue
        rows, end = ev.meter_index, ev.end
        onset = _last_zero(stat, rows, ev.start) + 1
        # One CUSUM excursion that dips under h and rises again is one change: its alarms
        # share the onset (events are sorted by meter, then start).
        head = np.flatnonzero(np.diff(rows * (r.shape[1] + 1) + onset, prepend=-1) != 0)
        severity = np.maximum.reduceat(ev.severity, head)
        alarm = ev.start[head]
        rows, onset, alarm_end = rows[head], onset[head], np.maximum.reduceat(end, head)
        # The event ends at the excursion's peak: past it the days add no evidence (the
        # shift ended, or the trailing baseline has learnt the new level), and the sum
        # draining at k a day would stretch it over weeks, on a heating meter months.
        end = _last_argmax(stat, rows, onset, alarm_end) + 1
        # A second change within the alarm of a first, as the sum drained.
        rows, onset, alarm, alarm_end, end, severity = _with_rearmed(
            stat,
            (rows, onset, alarm, alarm_end, end, severity),
            REARM_H_SHARE * cfg.cusum_h,
            days_read=days_read,
            recent_h=_least_recent_share(cfg) * cfg.cusum_h,
            alarm_h=cfg.cusum_h,
        )
        # The sum leaves zero at the first day above the allowance, often well before a
        # step when the model ran a little off: the onset is refitted as a step.
        onset = _refitted_onset(
            cs.z if direction == "up" else -cs.z, rows, onset, alarm=alarm, end=end, cfg=cfg
        )
        wide = None if by_use is None else by_use[0 if direction == "up" else 1]
        keep = _kept_excursions(
            wide, rows=rows, onset=onset, end=end, alarm_end=alarm_end, days_read=days_read,
            cfg=cfg,
        )  # fmt: skip
        rows, onset, end, severity = rows[keep], onset[keep], end[keep], severity[keep]
        # Size against the weeks before the onset: the robust centre of the whole series is
        # pulled towards the new level when the shift covers many days. A change found as
        # an earlier one's sum drained reads the days since that one's peak only.
        ref = seg_mean(rows, _reference_start(rows, onset, end, r.shape[1]), onset)
        ref = np.where(np.isnan(ref), cs.center[rows], ref)
        shift = np.nan_to_num(seg_mean(rows, onset, end) - ref)
        third = np.maximum((end - onset) // 3, 1)
        first = seg_mean(rows, onset, onset + third) - ref
        last = seg_mean(rows, end - third, end) - ref
        sign = 1.0 if direction == "up" else -1.0
        drift = sign * first < cfg.drift_ratio * sign * last
        exp = seg_exp(rows, onset, end)
        obs = exp + shift
        keep = _large_enough(
            cfg, r, exp_daily, mean_day, sign=sign, rows=rows, onset=onset, end=end, shift=shift
        )
        if not keep.all():
            rows, onset, end, severity = rows[keep], onset[keep], end[keep], severity[keep]
            exp, obs, shift, drift = exp[keep], obs[keep], shift[keep], drift[keep]
        for m_i, on, e, sev, ex, ob, sh, is_drift in zip(
            rows.tolist(),
            onset.tolist(),
            end.tolist(),
            severity.tolist(),
            exp.tolist(),
            obs.tolist(),
            shift.tolist(),
            drift.tolist(),
            strict=True,
        ):
            when = dates.get(on)
            if when is None:
                when = dates[on] = f"{start + timedelta(days=on):%Y-%m-%d}"
            status = _status(sev, cfg)
            text = _shift_reason(
                cfg, direction, when, shift=sh, expected=ex, observed=ob, is_drift=is_drift,
                status=status,
            )  # fmt: skip
            out.append(
                Anomaly(m_i + meter_offset, on, e, "drift" if is_drift else "level_shift", sev,
                        ex, ob, text, status)
            )  # fmt: skip
    return out


def _large_enough(
    cfg: DetectorConfig,
    residual: FloatArray,
    expected: FloatArray,
    mean_day: FloatArray | None,
    *,
    sign: float,
    rows: IntArray,
    onset: IntArray,
    end: IntArray,
    shift: FloatArray,
) -> BoolArray:
    """Which level shifts (rows, onset, end, mean daily ``shift``; ``sign`` their
    direction) pass the size floors: ``shift_min_rel`` over ``shift_min_days`` and
    ``shift_min_mean_share`` of the meter's ``mean_day`` (None: off)."""
    keep = np.ones(rows.size, dtype=bool)
    if cfg.shift_min_rel > 0 and cfg.shift_min_days > 0:
        sustained = _sustained_change(
            sign * residual, expected, rows, onset, end, days=cfg.shift_min_days
        )
        keep &= sustained >= cfg.shift_min_rel
    if mean_day is not None:
        keep &= np.abs(shift) >= cfg.shift_min_mean_share * mean_day[rows]
    return keep


def _sums_by_use(
    r: FloatArray, expected: FloatArray, k_floor: FloatArray | None, cs: Cusum, cfg: DetectorConfig
) -> tuple[FloatArray, FloatArray]:
    """Upper and lower CUSUM of ``r`` against the spread of days of like expected use (see
    ``ended_shift_by_use``), as ``cs`` was summed otherwise. Only the meters whose ``cs``
    passes ``cfg.cusum_h`` somewhere can have an excursion that is over, the only kind
    this tests: they alone are summed again (every step is per meter), the others read 0.
    """
    rows = np.flatnonzero(((cs.upper > cfg.cusum_h) | (cs.lower > cfg.cusum_h)).any(axis=1))
    upper, lower = np.zeros_like(r), np.zeros_like(r)
    if rows.size:
        sub = cusum(
            r[rows], k=cfg.cusum_k, local_days=cfg.cusum_local_days,
            k_floor=None if k_floor is None else k_floor[rows], expected=expected[rows],
        )  # fmt: skip
        upper[rows], lower[rows] = sub.upper, sub.lower
    return upper, lower


def _kept_excursions(
    by_use: FloatArray | None,
    *,
    rows: IntArray,
    onset: IntArray,
    end: IntArray,
    alarm_end: IntArray,
    days_read: IntArray,
    cfg: DetectorConfig,
) -> BoolArray:
    """Which CUSUM excursions (rows, onset, end at the peak, end of the alarm) are level
    changes. One whose alarm still holds on the meter's last day or the day before (a
    short last day can dip under h) may be the start of one and is kept. One over must
    have lasted ``cfg.ended_shift_min_days`` (days the weather model missed make
    excursions of one or two) and, with ``by_use`` (the CUSUM against the spread of days
    of like expected use, see ``ended_shift_by_use``), pass ``cfg.cusum_h`` on it too."""
    ongoing = alarm_end >= days_read[rows] - 1
    keep = np.ones(rows.size, dtype=bool)
    if cfg.ended_shift_min_days > 0:
        keep &= end - onset >= cfg.ended_shift_min_days
    if by_use is not None:
        stop = np.maximum(alarm_end, onset + 1)
        cols, offsets = segment_index(onset, stop)
        at = np.nan_to_num(by_use[np.repeat(rows, stop - onset), cols])
        keep &= np.maximum.reduceat(at, offsets) > cfg.cusum_h
    return np.asarray(ongoing | keep, dtype=bool)


def _shift_reason(
    cfg: DetectorConfig,
    direction: str,
    when: str,
    *,
    shift: float,
    expected: float,
    observed: float,
    is_drift: bool,
    status: str,
) -> str:
    change = "gradual drift" if is_drift else "level shift"
    if status == "warning":
        change += ", a warning until more days confirm it"
    if cfg.reads_level:
        return (
            f"Daily mean {direction} by {abs(shift):.2g} {cfg.unit} since {when} "
            f"(expected {expected:.3g}, saw {observed:.3g} {cfg.unit}); {change}"
        )
    pct = f" ({shift / expected:+.0%})" if expected > 0 else ""
    return (
        f"Daily consumption {direction} by {abs(shift):.3g} {cfg.unit}/day{pct} "
        f"since {when} (expected {expected:.3g}, saw {observed:.3g} {cfg.unit}/day); {change}"
    )


def _reference_start(rows: IntArray, onset: IntArray, end: IntArray, days: int) -> IntArray:
    """First day each excursion (of one direction) is sized against: four weeks before
    its ``onset``, or the latest ``end`` of one of the same row by then if later."""
    keys = np.sort(rows * (days + 1) + end)
    at = np.searchsorted(keys, rows * (days + 1) + onset, side="right") - 1
    prior = keys[np.maximum(at, 0)] if keys.size else np.zeros_like(at)
    since = np.where((at >= 0) & (prior // (days + 1) == rows), prior % (days + 1), 0)
    return np.asarray(np.maximum(np.maximum(onset - 28, 0), since), dtype=np.int64)


def _last_zero(stat: FloatArray, rows: IntArray, cols: IntArray) -> IntArray:
    """Column of the last zero of ``stat[row, : col + 1]`` for each pair, −1 if none: a
    search among the zeros' flat indexes rather than a running maximum over the matrix."""
    n = stat.shape[1]
    zeros = np.flatnonzero(stat == 0.0)
    at = np.searchsorted(zeros, rows * n + cols, side="right") - 1
    flat = zeros[np.maximum(at, 0)] if zeros.size else np.zeros_like(at)
    found = (at >= 0) & (flat // n == rows)
    last: IntArray = np.where(found, flat - rows * n, -1)
    return last


ONSET_SLACK_DAYS: Final = 3  # a CUSUM onset lands within a few days of the real step


# An excursion's sum drains at the allowance a day once its change is over, so a second
# change on the meter within weeks rose from that sum, not from zero, and was one alarm
# with the first, which ends at its peak: the second was never reported (seed 301, meter
# 357: −28 % on days 290–302, −50 % on days 320–328). Restarted at the peak, the sum is
# its rise from the lowest point since. A second look within an alarm needs twice h
# (bench.accuracy's year scans, sixteenth session, seeds 300–315: 6 more level shifts
# found at 1, 1.5 or 2 × h; mean precision −0.005 / −0.002 / −0.001).
# After an alarm, a rise on the last two days read is reported at the lower threshold of
# those days: a home's new change while an old sum drained was otherwise one excursion with
# the old, its onset weeks before (bench.seeds --early, thirty-fifth session: found within
# 2 days +0.004 to +0.013 on the four sets of 16 cities, with the sizing of such a change
# against the days since the earlier peak; precision −0.001 to +0.001).
REARM_H_SHARE: Final = 2.0


def _with_rearmed(
    stat: FloatArray,
    excursions: tuple[IntArray, IntArray, IntArray, IntArray, IntArray, FloatArray],
    h: float,
    *,
    days_read: IntArray,
    recent_h: float,
    alarm_h: float,
) -> tuple[IntArray, IntArray, IntArray, IntArray, IntArray, FloatArray]:
    """``excursions`` of the CUSUM ``stat`` (rows, onset, first alarm day, alarm end, end
    after the peak, severity) and after them the excursions that start again after a peak
    within the alarm: the sum restarted at the peak is the sum less its running minimum
    since the peak; where that passes ``h``, a change began the day after the lowest
    point. Such an excursion ends after its own peak; its severity is that peak.

    After an alarm (a peak over ``alarm_h``) a rise on the meter's last two days read
    (``days_read`` is one past the last) needs only ``recent_h``, as a sum rising from zero
    there does (see :func:`_alarm_days`). Under ``alarm_h`` the excursion is reported as
    one, its onset refitted to the step."""
    rows, _, _, alarm_end, end, severity = excursions
    lo = end - 1  # the peak
    pick = np.flatnonzero(alarm_end - lo >= 2)
    if pick.size == 0:
        return excursions
    n, lo, r = alarm_end[pick] - lo[pick], lo[pick], rows[pick]
    offs = np.arange(int(n.max()))[np.newaxis, :]
    cols = np.minimum(lo[:, np.newaxis] + offs, stat.shape[1] - 1)
    s = np.where(offs < n[:, np.newaxis], stat[r[:, np.newaxis], cols], np.inf)
    low = np.minimum.accumulate(s, axis=1)
    rise = np.where(np.isfinite(s), s - low, 0.0)
    last_two = lo[:, np.newaxis] + offs >= (days_read[r] - 2)[:, np.newaxis]
    last_two &= (severity[pick] > alarm_h)[:, np.newaxis]
    over = rise > np.where(last_two, min(h, recent_h), h)
    again = over.any(axis=1)
    if not again.any():
        return excursions
    s, low, rise, n, lo, r = s[again], low[again], rise[again], n[again], lo[again], r[again]
    over = over[again]
    first = np.argmax(over, axis=1)[:, np.newaxis]
    trough = _last_true((offs <= first) & (s == np.take_along_axis(low, first, axis=1)))
    later = np.where(offs < first, -np.inf, rise)
    top = later.max(axis=1)
    peak = _last_true(later == top[:, np.newaxis])
    more = (r, lo + trough + 1, lo + first[:, 0], lo + n, lo + peak + 1)
    rows, onset, alarm, alarm_end, end = (
        np.concatenate((a, b)) for a, b in zip(excursions[:5], more, strict=True)
    )
    return rows, onset, alarm, alarm_end, end, np.concatenate((excursions[5], top))


def _last_true(mask: BoolArray) -> IntArray:
    """Column of the last True of each row of ``mask`` (every row holds one)."""
    return np.asarray(mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1), dtype=np.int64)


def _last_argmax(a: FloatArray, rows: IntArray, lo: IntArray, hi: IntArray) -> IntArray:
    """Column of the last maximum of ``a[row, lo:hi]`` for each segment (none empty)."""
    cols, offsets = segment_index(lo, hi)
    v = a[np.repeat(rows, hi - lo), cols]
    top = np.repeat(np.maximum.reduceat(v, offsets), hi - lo)
    at: IntArray = np.maximum.reduceat(np.where(v == top, cols, -1), offsets)
    return at


def _refitted_onset(
    z: FloatArray,
    rows: IntArray,
    onset: IntArray,
    *,
    alarm: IntArray,
    end: IntArray,
    cfg: DetectorConfig,
) -> IntArray:
    """The step each excursion (rows, the day after the sum's last zero, first alarm day,
    end after the peak) begins with, from its standardised residuals ``z`` in its
    direction. A level series (a room) keeps the sum per √day up to the first alarm: a
    spring's free float is a ramp, whose start that finds and whose weather test
    (``weather_step_share``) was chosen with it; the best split would date it later,
    where its weather fit reads a step. A warning of the last two days may come after its
    excursion's peak (a sum under h then, over the warning's share now): the step is
    sought up to the peak."""
    if cfg.reads_level:
        return _step_onset(z, rows, onset, np.minimum(alarm + 1, end))
    return _split_onset(z, rows, onset, end)


def _step_onset(z: FloatArray, rows: IntArray, lo: IntArray, hi: IntArray) -> IntArray:
    """First day of the suffix of ``z[row, lo:hi]`` (standardised residuals up to the
    alarm, in the shift's direction) with the largest ``sum / sqrt(days)``: the step that
    best explains the excursion, where the CUSUM's last zero is biased early by any run of
    small positive residuals before it."""
    n = hi - lo
    cols, offsets = segment_index(lo, hi)
    v = np.nan_to_num(z[np.repeat(rows, n), cols])
    run = np.cumsum(v)
    suffix = np.repeat(run[offsets + n - 1], n) - (run - v)  # sum from each day to the end
    score = suffix / np.sqrt(np.repeat(hi, n) - cols)
    top = np.repeat(np.maximum.reduceat(score, offsets), n)
    big = np.iinfo(np.int64).max
    at: IntArray = np.minimum.reduceat(np.where(score == top, cols, big), offsets)
    return at


# Days before the excursion whose mean the step is measured from (see _split_onset).
ONSET_REFERENCE_DAYS: Final = 14


def _split_onset(z: FloatArray, rows: IntArray, lo: IntArray, hi: IntArray) -> IntArray:
    """The day ``t`` in ``[lo, hi)`` that best splits each row's standardised residuals
    ``z[row, lo - ONSET_REFERENCE_DAYS : hi]`` (in the shift's direction; the reference
    days before ``lo`` floored at zero) into a mean before and a higher mean from ``t`` on:
    the largest ``(after − before) · sqrt(n_before · n_after / n)``, the likelihood-ratio
    estimate of a step between two unknown means; ``lo`` where no split has days on both
    sides.

    The CUSUM's last zero is biased early by any run of small positive residuals before
    a step; so was the sum from each day to the first alarm per √day (the estimate with a
    known mean of zero before, :func:`_step_onset`); taken up to the peak, that sum was
    also biased late by one large day there. Year scans, seeds 300–315 / 316–331 /
    332–347 (twenty-sixth session): level shifts found 0.8925 / 0.8923 / 0.8809 → 0.9019
    / 0.8979 / 0.8896, precision 0.8257 / 0.8214 / 0.8057 → 0.8341 / 0.8284 / 0.8141.
    Without the floor: 0.8981 / 0.8953 / 0.8841 and 0.8294 / 0.8255 / 0.8082. With it, 7
    days of reference: 0.8975 / 0.8963 / 0.8905 and 0.8338 / 0.8286 / 0.8162; 28 days:
    0.8975 / 0.8989 / 0.8887 and 0.8335 / 0.8278 / 0.8119. The sum per √day taken up to the
    peak rather than the first alarm, for every meter: level shifts 0.8960 / 0.8936 /
    0.8871."""
    # Sums over the segments' own days rather than SegmentMeans, whose cumulative sums of
    # the whole matrix, twice a direction, made level_shifts a third slower (a 1,000-meter
    # chunk: 0.060–0.078 s → 0.084–0.105 s, five runs each by turns).
    first = np.maximum(lo - ONSET_REFERENCE_DAYS, 0)
    n = hi - first
    cols, offsets = segment_index(first, hi)
    v = z[np.repeat(rows, n), cols]
    valid = np.isfinite(v)
    v = np.where(valid, v, 0.0)
    # The reference days were in control (the sum at zero): a day below the model counts
    # as none, or the model running low before the excursion would make its first days
    # look like a step.
    v = np.where(cols < np.repeat(lo, n), np.maximum(v, 0.0), v)
    count = valid.astype(np.float64)
    run_sum, run_count = np.cumsum(v), np.cumsum(count)
    # Sums and counts of the days before each day within its segment, and of the segment.
    base_sum = np.repeat(run_sum[offsets] - v[offsets], n)
    base_count = np.repeat(run_count[offsets] - count[offsets], n)
    before_sum, before_n = run_sum - v - base_sum, run_count - count - base_count
    total_sum = np.repeat(run_sum[offsets + n - 1], n) - base_sum
    total_n = np.repeat(run_count[offsets + n - 1], n) - base_count
    after_sum, after_n = total_sum - before_sum, total_n - before_n
    ok = (cols >= np.repeat(lo, n)) & (before_n > 0) & (after_n > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = (after_sum / after_n - before_sum / before_n) * np.sqrt(before_n * after_n / total_n)
    score = np.where(ok, gain, -np.inf)
    top = np.repeat(np.maximum.reduceat(score, offsets), n)
    none = np.iinfo(np.int64).max
    at = np.minimum.reduceat(np.where(ok & (score == top), cols, none), offsets)
    return np.where(at == none, lo, at)


def _sustained_change(
    r: FloatArray,
    expected: FloatArray,
    rows: IntArray,
    onset: IntArray,
    end: IntArray,
    *,
    days: int,
) -> FloatArray:
    """Largest, over the windows of ``days`` days starting in ``[onset, end)`` and at most
    ``ONSET_SLACK_DAYS`` after the onset, of the window's residual relative to its expected
    use [-]; NaN when none is valid.

    Pass the residual times the event's sign (+1 up, −1 down). It is against the
    trailing-weeks (temperature-corrected) baseline, which absorbs a lasting shift within
    two or three weeks: the evidence is in the first days.
    """
    res_mean, exp_mean = SegmentMeans(r), SegmentMeans(expected)
    n = r.shape[1]
    out = np.full(rows.size, np.nan)
    for i, (m_i, lo, hi) in enumerate(
        zip(rows.tolist(), onset.tolist(), end.tolist(), strict=True)
    ):
        # Only windows starting near the onset: within a long excursion of a noisy meter
        # some window always deviates; a real step shows right where the sum left zero.
        first = np.arange(lo, max(min(hi, lo + ONSET_SLACK_DAYS + 1, n - days + 1), lo + 1))
        first = first[first + days <= n]
        if first.size == 0:
            continue
        row = np.full(first.size, m_i, dtype=np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = res_mean(row, first, first + days) / np.abs(exp_mean(row, first, first + days))
        rel = rel[np.isfinite(rel)]
        if rel.size:
            out[i] = rel.max()
    return out


def mean_daily(daily: FloatArray) -> FloatArray:
    """NaN-ignoring mean over the days of each meter (NaN for a meter without one)."""
    ok = ~np.isnan(daily)
    count = ok.sum(axis=1)
    total = np.where(ok, daily, 0.0).sum(axis=1)
    mean: FloatArray = np.divide(total, count, out=np.full(total.shape, np.nan), where=count > 0)
    return mean
