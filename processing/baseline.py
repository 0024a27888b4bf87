"""Robust hour-of-week baseline: median and MAD of the same hour over the trailing weeks, robust z.

The hot path works in blocks of meters with reused buffers; see Notes of :func:`baseline_scan`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MAD_TO_SIGMA = 1.4826  # σ of a normal distribution per unit of MAD
HOURS_PER_WEEK = 168
# The hour-of-week median needs two weeks of lags: no step before has an expectation.
BLANK_WEEKS = 2

# Blocks of ~25 meters keep every temporary of an 8,760-step year in cache-sized buffers that
# are allocated once; allocating matrix-sized temporaries instead costs ~6× in page faults.
DEFAULT_BLOCK_METERS = 25


def as_matrix(x: npt.ArrayLike, name: str) -> FloatArray:
    """``x`` as a float64 (meters, steps) matrix; one row for a 1-D series. ``name`` is the
    argument named in the error."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[np.newaxis, :]
    if a.ndim != 2:
        raise ValueError(f"{name}: expected shape (meters, steps), got {a.shape}")
    return a


def _check(weeks: int, steps_per_hour: int, block_meters: int) -> int:
    if weeks < 2:
        raise ValueError(f"weeks: need at least 2 trailing weeks, got {weeks}")
    if steps_per_hour < 1:
        raise ValueError(f"steps_per_hour: must be >= 1, got {steps_per_hour}")
    if block_meters < 1:
        raise ValueError(f"block_meters: must be >= 1, got {block_meters}")
    return HOURS_PER_WEEK * steps_per_hour


def nan_median_mad(values: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Median and MAD along the last axis, ignoring NaN; NaN where fewer than 2 values are valid.

    The general (any number of weeks) path: one sort along a short last axis; rows of at
    least ``MAD_SELECT_MIN`` values take the MAD from the sorted values
    (:func:`_mad_of_sorted`) rather than sorting the deviations too.
    """
    v = np.asarray(values, dtype=np.float64)
    med, lo, hi, few, srt = _nan_median_parts(v)
    if v.ndim == 2 and v.shape[1] >= MAD_SELECT_MIN:
        mad = _mad_of_sorted(srt, med, lo, hi, few)
    else:
        dev = np.subtract(v, med)
        np.abs(dev, out=dev)
        dev.sort(axis=-1)
        mad = 0.5 * (np.take_along_axis(dev, lo, -1) + np.take_along_axis(dev, hi, -1))
    med = med[..., 0]
    mad = mad[..., 0]
    med[few] = np.nan
    mad[few] = np.nan
    return med, mad


def nan_median(values: npt.ArrayLike) -> FloatArray:
    """The median of :func:`nan_median_mad` alone, without the second sort the MAD needs."""
    med, _, _, few, _ = _nan_median_parts(np.asarray(values, dtype=np.float64))
    med = med[..., 0]
    med[few] = np.nan
    return med


def split_medians(values: npt.ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per row of ``values`` (rows, n), ignoring NaN: the median, the median of the values
    at or below it and that of the values above it, from one sort (NaN where fewer than
    2 values are there)."""
    v = as_matrix(values, "values")
    count = v.shape[1] - np.isnan(v).sum(axis=1)
    srt = np.sort(v, axis=1)  # NaN sorts last
    zero = np.zeros_like(count)
    med = _run_median(srt, zero, count)
    below = np.sum(srt <= med[:, np.newaxis], axis=1)  # NaN compares False
    return med, _run_median(srt, zero, below), _run_median(srt, below, count - below)


def _run_median(srt: FloatArray, first: IntArray, count: IntArray) -> FloatArray:
    """Median of ``srt[r, first[r] : first[r] + count[r]]`` of each sorted row ``r``; NaN
    where ``count`` < 2, as :func:`nan_median`."""
    last = srt.shape[1] - 1
    lo = np.clip(first + (count - 1) // 2, 0, last)[:, np.newaxis]
    hi = np.clip(first + count // 2, 0, last)[:, np.newaxis]
    med: FloatArray = 0.5 * (np.take_along_axis(srt, lo, 1) + np.take_along_axis(srt, hi, 1))[:, 0]
    med[count < 2] = np.nan
    return med


def _nan_median_parts(
    v: FloatArray,
) -> tuple[FloatArray, IntArray, IntArray, npt.NDArray[np.bool_], FloatArray]:
    """Median along the last axis (kept as a length-1 axis, NaN not yet set), the positions
    of the two middle values among the valid ones, where fewer than 2 are valid, and the
    sorted values (NaN last)."""
    k = v.shape[-1]
    count = k - np.isnan(v).sum(axis=-1)
    lo = np.clip((count - 1) // 2, 0, k - 1)[..., np.newaxis]
    hi = np.clip(count // 2, 0, k - 1)[..., np.newaxis]
    srt = np.sort(v, axis=-1)  # NaN sorts last
    med = 0.5 * (np.take_along_axis(srt, lo, -1) + np.take_along_axis(srt, hi, -1))
    return med, lo, hi, count < 2, srt


MAD_SELECT_MIN = 32  # shorter rows sort their deviations: a few calls beat the search


def _mad_of_sorted(
    srt: FloatArray, med: FloatArray, lo: IntArray, hi: IntArray, few: npt.NDArray[np.bool_]
) -> FloatArray:
    """The MAD of :func:`nan_median_mad` for 2-D ``srt`` (each row sorted, NaN last), shape
    (rows, 1), without sorting the deviations: a search over the rows at once.

    Walking down from the lower middle value ``lo`` and up from the next, the deviations
    ``|s − med|`` of a sorted row grow: the row's sorted deviations merge these two sorted
    runs, and the ``lo``-th (and ``hi``-th) smallest of two sorted runs is found by a
    binary search on how many come from the first, a dozen steps for a year of days. The
    deviations are computed as nan_median_mad computes them, so the same values are taken.
    Rows with an infinite value, where ``inf − inf`` enters the deviations, sort them.
    """
    rows, k = srt.shape
    lo1, hi1, m = lo[:, 0], hi[:, 0], med[:, 0]
    flat = srt.reshape(-1)
    base = np.arange(rows) * k

    def dev(at: IntArray) -> FloatArray:
        return np.asarray(np.abs(flat[base + np.clip(at, 0, k - 1)] - m), dtype=np.float64)

    # Run A: s[lo], s[lo − 1], … (lo + 1 values); run B: s[lo + 1], … (hi values: the count
    # of valid values is lo + hi + 1). The lo-th smallest deviation is the largest of the
    # first lo + 1 of the merged runs: ``take`` of them from A, the rest from B.
    size_b = hi1
    low = np.where(hi1 == lo1, 1, 0)  # at least lo + 1 − hi from A
    high = lo1 + 1
    while True:
        active = low < high
        if not active.any():
            break
        mid = (low + high) // 2
        from_b = lo1 + 1 - mid  # values from B when ``mid`` come from A
        # Take more from A while its next value is below B's last taken one.
        more = active & (mid <= lo1) & (from_b >= 1) & (dev(lo1 - mid) < dev(lo1 + from_b))
        low = np.where(more, mid + 1, low)
        high = np.where(active & ~more, mid, high)
    take = low
    from_b = lo1 + 1 - take
    inf = np.inf
    last_a = np.where(take >= 1, dev(lo1 - take + 1), -inf)
    last_b = np.where(from_b >= 1, dev(lo1 + from_b), -inf)
    kth = np.maximum(last_a, last_b)
    next_a = np.where(take <= lo1, dev(lo1 - take), inf)
    next_b = np.where(from_b < size_b, dev(lo1 + 1 + from_b), inf)
    after = np.where(hi1 > lo1, np.minimum(next_a, next_b), kth)
    mad = 0.5 * (kth + after)
    # Infinite values: the deviations are not ordered as above (inf − inf is NaN).
    top = flat[base + np.clip(lo1 + hi1, 0, k - 1)]
    odd = np.flatnonzero(~few & ~(np.isfinite(flat[base]) & np.isfinite(top)))
    if odd.size:
        dev_odd = np.abs(srt[odd] - med[odd])
        dev_odd.sort(axis=-1)
        mad[odd] = (
            0.5
            * (np.take_along_axis(dev_odd, lo[odd], -1) + np.take_along_axis(dev_odd, hi[odd], -1))[
                :, 0
            ]
        )
    return np.asarray(mad[:, np.newaxis], dtype=np.float64)


class _Workspace:
    """Buffers of one block, allocated once per call and reused for every block."""

    def __init__(self, rows: int, steps: int) -> None:
        self.size = rows * steps
        self.bufs = [np.empty(self.size) for _ in range(6)]
        self.flags = np.empty(self.size, dtype=bool)

    def views(self, rows: int, steps: int) -> list[FloatArray]:
        # Contiguous (rows, steps) views so the ufuncs stream through memory.
        return [b[: rows * steps].reshape(rows, steps) for b in self.bufs]

    def mask(self, rows: int, steps: int) -> npt.NDArray[np.bool_]:
        """A contiguous boolean (rows, steps) view."""
        return self.flags[: rows * steps].reshape(rows, steps)


def _closed_form(
    lags: list[FloatArray], med: FloatArray, mad: FloatArray, ws: list[FloatArray]
) -> None:
    """Median and MAD of 2, 3 or 4 equally shaped arrays (NaN propagates), written in place.

    Sorting network for four values a, b, c, d: with lo/hi the min/max of each pair,
    p = max(lo1, lo2) and q = min(hi1, hi2) are the two middle values, so the median is
    (p + q)/2. The sorted absolute deviations are h, h, min(med − min, max − med), … with
    h = |p − q|/2, so the MAD is (h + min(med − min, max − med))/2.
    """
    t1, t2, t3, t4, t5, t6 = ws
    if len(lags) == 4:
        a, b, c, d = lags
        np.minimum(a, b, out=t1)
        np.maximum(a, b, out=t2)
        np.minimum(c, d, out=t3)
        np.maximum(c, d, out=t4)
        # p and q overwrite the first pair in place; t5, t6 are free.
        _median_mad_of_pairs((t1, t2), (t3, t4), med, mad, [t5, t1, t6, t2, t3])
    elif len(lags) == 3:
        a, b, c = lags
        np.minimum(a, b, out=t1)
        np.maximum(a, b, out=t2)
        np.minimum(t1, c, out=t5)  # smallest
        np.maximum(t2, c, out=t6)  # largest
        np.minimum(t2, c, out=t2)
        np.maximum(t1, t2, out=med)
        # Deviations of three sorted values from the middle one: 0, med − min, max − med.
        np.subtract(med, t5, out=t4)
        np.subtract(t6, med, out=t5)
        np.minimum(t4, t5, out=mad)
    else:
        a, b = lags
        np.add(a, b, out=med)
        med *= 0.5
        np.subtract(a, b, out=mad)
        np.abs(mad, out=mad)
        mad *= 0.5


def _median_mad_of_pairs(
    first: tuple[FloatArray, FloatArray],
    second: tuple[FloatArray, FloatArray],
    med: FloatArray,
    mad: FloatArray,
    out: list[FloatArray],
) -> None:
    """The four-value branch of :func:`_closed_form` from the (min, max) of each pair.

    ``out`` holds buffers for the smallest, p, the largest, q and p − q, filled in the
    order largest, q, smallest, p: each may reuse the memory of a pair already spent (q
    the first max, p the first min or the second max, p − q a min), the largest ``mad``
    and q ``med``: the fewer buffers a block touches, the more of it stays in cache.
    """
    (lo1, hi1), (lo2, hi2) = first, second
    smallest, p, largest, q, diff = out
    np.maximum(hi1, hi2, out=largest)
    np.minimum(hi1, hi2, out=q)
    np.minimum(lo1, lo2, out=smallest)
    np.maximum(lo1, lo2, out=p)
    np.subtract(p, q, out=diff)
    np.add(p, q, out=med)
    med *= 0.5
    np.abs(diff, out=diff)  # 2h
    np.subtract(med, smallest, out=smallest)
    np.subtract(largest, med, out=largest)
    np.minimum(smallest, largest, out=smallest)
    diff *= 0.5
    np.add(diff, smallest, out=mad)
    mad *= 0.5


def _block_median_mad(
    xb: FloatArray,
    *,
    weeks: int,
    week_steps: int,
    med: FloatArray,
    mad: FloatArray,
    work: _Workspace,
) -> None:
    """Trailing same-hour median and MAD of one block of meters into ``med`` and ``mad``."""
    rows, n = xb.shape
    w = week_steps
    # Segment w (the w-th week of the series) has min(w, weeks) lags; the last one runs to
    # the end. A handful of segments, each vectorised over meters and steps.
    bounds = [*range(0, min(n, weeks * w + 1), w), n]
    for seg, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        n_lags = min(seg, weeks)
        m_out = med[:, lo:hi]
        d_out = mad[:, lo:hi]
        if n_lags < 2:
            m_out.fill(np.nan)
            d_out.fill(np.nan)
            continue
        lags = [xb[:, lo - k * w : hi - k * w] for k in range(1, n_lags + 1)]
        if n_lags == 4:
            # Lags 3 and 4 are lags 1 and 2 two weeks earlier: one (min, max) pass over the
            # pairs of neighbouring weeks serves both, with the operands in the same order.
            span = hi - lo + 2 * w
            pmin, pmax = work.views(rows, span)[:2]
            np.minimum(xb[:, lo - 3 * w : hi - w], xb[:, lo - 4 * w : hi - 2 * w], out=pmin)
            np.maximum(xb[:, lo - 3 * w : hi - w], xb[:, lo - 4 * w : hi - 2 * w], out=pmax)
            first = (pmin[:, 2 * w :], pmax[:, 2 * w :])
            second = (pmin[:, : hi - lo], pmax[:, : hi - lo])
            smallest = work.views(rows, hi - lo)[2]
            out = [smallest, pmax[:, : hi - lo], d_out, m_out, pmin[:, : hi - lo]]
            _median_mad_of_pairs(first, second, m_out, d_out, out)
        elif n_lags < 4:
            _closed_form(lags, m_out, d_out, work.views(rows, hi - lo))
        else:
            m_out[:], d_out[:] = nan_median_mad(np.stack(lags, axis=-1))
    _redo_gaps(xb, weeks=weeks, week_steps=w, med=med, mad=mad, work=work)


def _redo_gaps(
    xb: FloatArray,
    *,
    weeks: int,
    week_steps: int,
    med: FloatArray,
    mad: FloatArray,
    work: _Workspace,
) -> None:
    """Median and MAD, NaN-aware, at the points where the closed form gave NaN.

    The closed form propagates NaN and gaps are sparse: the points are gathered over the
    whole block in one call, absent lags (before the series starts) given as NaN, which
    :func:`nan_median_mad` ignores as it does the gaps. np.flatnonzero of a flat mask is
    ~15× faster than np.nonzero of a 2-D one.
    """
    rows, n = xb.shape
    lo = min(2 * week_steps, n)
    nan_at = np.isnan(med[:, lo:], out=work.mask(rows, n - lo))
    r_idx, c_idx = np.divmod(np.flatnonzero(nan_at), n - lo)
    if r_idx.size == 0:
        return
    c_idx += lo
    # One row per lag: the sorting network below works on whole rows.
    lag_cols = c_idx[np.newaxis, :] - week_steps * np.arange(1, weeks + 1)[:, np.newaxis]
    vals = np.where(lag_cols >= 0, xb[r_idx[np.newaxis, :], np.maximum(lag_cols, 0)], np.nan)
    if weeks <= 4:
        med[r_idx, c_idx], mad[r_idx, c_idx] = _nan_median_mad_of_lags(vals)
    else:
        med[r_idx, c_idx], mad[r_idx, c_idx] = nan_median_mad(vals.T)


def _nan_median_mad_of_lags(vals: FloatArray) -> tuple[FloatArray, FloatArray]:
    """:func:`nan_median_mad` along the first axis of ``vals``, shape (lags, points) with 2
    to 4 lags, by a sorting network over whole rows.

    A few calls over all the points instead of a sort per point: the sort of thousands of
    four-value rows took longer than the closed form of the whole block, with the GIL held.
    Gaps sort last as +inf, so the values taken are those :func:`nan_median_mad` takes, with
    the same arithmetic (which of −0 and +0 sorts first is defined by neither). Points with
    an infinite value, where ``inf − inf`` enters the deviations, go through
    :func:`nan_median_mad` itself.
    """
    odd = np.isinf(vals).any(axis=0)
    if odd.any():
        med, mad = np.empty(vals.shape[1]), np.empty(vals.shape[1])
        med[odd], mad[odd] = nan_median_mad(vals[:, odd].T)
        med[~odd], mad[~odd] = _nan_median_mad_of_lags(vals[:, ~odd])
        return med, mad
    vals, gaps, count = _four_lags(vals)
    med = _middle_of_four(np.where(gaps, np.inf, vals), count)
    dev = np.abs(vals - med)
    np.copyto(dev, np.inf, where=gaps)
    mad = _middle_of_four(dev, count)
    few = count < 2
    med[few] = np.nan
    mad[few] = np.nan
    return med, mad


def nan_median_of_lags(vals: npt.ArrayLike) -> FloatArray:
    """:func:`nan_median` along the first axis of ``vals``, shape (lags, ...): by the
    sorting network of :func:`_nan_median_mad_of_lags` for 2 to 4 lags without an infinite
    value (a sort per point of four values costs more than the network over all of them),
    else by a sort."""
    v = np.asarray(vals, dtype=np.float64)
    if not 2 <= v.shape[0] <= 4 or np.isinf(v).any():
        return nan_median(np.moveaxis(v, 0, -1))
    v, gaps, count = _four_lags(v)
    med = _middle_of_four(np.where(gaps, np.inf, v), count)
    med[count < 2] = np.nan
    return med


def _four_lags(vals: FloatArray) -> tuple[FloatArray, npt.NDArray[np.bool_], IntArray]:
    """``vals`` (2 to 4 lags, ...) padded with gaps to four lags, its gaps, and the count
    of values each point has (absent lags count as gaps, as in :func:`nan_median_mad`)."""
    lags = vals.shape[0]
    gaps = np.isnan(vals)
    count = lags - gaps.sum(axis=0)
    if lags < 4:
        pad = np.full((4 - lags, *vals.shape[1:]), np.nan)
        vals, gaps = np.concatenate((vals, pad)), np.concatenate((gaps, np.isnan(pad)))
    return vals, gaps, count


def _middle_of_four(srt: FloatArray, count: IntArray) -> FloatArray:
    """The median of :func:`nan_median_mad`'s positions (lo, hi), (0, 1) of 2 values, (1, 1)
    of 3, (1, 2) of 4, from ``srt`` (4, ...) with its gaps at +inf, sorted here in place."""
    _sort_four(srt)
    two, four = count == 2, count == 4
    med: FloatArray = 0.5 * (np.where(two, srt[0], srt[1]) + np.where(four, srt[2], srt[1]))
    return med


def _sort_four(v: FloatArray) -> None:
    """Sort each column of ``v``, shape (4, points), in place (no NaN): the optimal network
    of five compare-exchanges, (0, 1) with (2, 3), then (0, 2) with (1, 3), then (1, 2)."""
    for first, second in ((v[0::2], v[1::2]), (v[0:2], v[2:4]), (v[1:2], v[2:3])):
        low = np.minimum(first, second)
        np.maximum(first, second, out=second)
        first[...] = low


def _blocks(m: int, block_meters: int) -> range:
    return range(0, m, block_meters)


def hour_of_week_baseline(
    x: npt.ArrayLike,
    *,
    weeks: int = 4,
    steps_per_hour: int = 1,
    block_meters: int = DEFAULT_BLOCK_METERS,
) -> tuple[FloatArray, FloatArray]:
    """Median and MAD of the same hour-of-week over the ``weeks`` trailing weeks, for every step.

    Parameters
    ----------
    x : array_like, shape (meters, steps) or (steps,)
        Regular series starting at any hour [any unit]; NaN for gaps.
    weeks : int
        Trailing weeks K used; the current week is excluded (lags of 1..K weeks).
    steps_per_hour : int
        Samples per hour (1 for hourly data).
    block_meters : int
        Meters processed together (memory/speed trade-off, not a modelling choice).

    Returns
    -------
    median, mad : ndarray, shape (meters, steps)
        [unit of x]; NaN where fewer than 2 of the K lags are valid (e.g. the first 2 weeks).

    Notes
    -----
    K <= 4 uses a closed-form sorting network (exactly equal to ``np.nanmedian`` of the lags);
    larger K sorts the stacked lags. Steps are taken as wall-clock hours: align the matrix on
    local time if the DST shift of one hour matters to the caller.
    """
    a = as_matrix(x, "x")
    week_steps = _check(weeks, steps_per_hour, block_meters)
    m, n = a.shape
    med = np.empty((m, n))
    mad = np.empty((m, n))
    work = _Workspace(min(block_meters, m), n)
    for i in _blocks(m, block_meters):
        j = min(i + block_meters, m)
        _block_median_mad(
            a[i:j], weeks=weeks, week_steps=week_steps, med=med[i:j], mad=mad[i:j], work=work
        )
    return med, mad


def robust_z(
    x: npt.ArrayLike,
    median: npt.ArrayLike,
    mad: npt.ArrayLike,
    *,
    floor: float = 0.01,
    rel_floor: float = 0.05,
    meter_floor: float = 1.0,
) -> FloatArray:
    """Robust z-score ``(x − median) / (1.4826·MAD' + floor + rel_floor·|median|)``.

    ``MAD' = max(MAD, meter_floor · mean MAD of the meter)`` (mean over the last axis).

    Parameters
    ----------
    x, median, mad : array_like, broadcastable
        Value, baseline median and MAD [same unit].
    floor : float
        Absolute floor of the scale [unit of x]; keeps z finite on constant series.
    rel_floor : float
        Floor proportional to the median [-].
    meter_floor : float
        Floor of the MAD as a fraction of the meter's mean MAD [-]: the MAD of four values is
        near zero by chance often enough to make |z| > 5 common on clean data without it
        (lognormal σ = 0.25 noise: 1.6 % of steps at 0, 0.7 % at 0.5, 0.08 % at 1). At the
        default 1 the scale is never below the meter's typical spread.

    Returns
    -------
    ndarray
        Robust z [-]; NaN where an input is NaN.
    """
    xv = np.asarray(x, dtype=np.float64)
    med = np.asarray(median, dtype=np.float64)
    d = np.asarray(mad, dtype=np.float64)
    if floor < 0 or rel_floor < 0 or meter_floor < 0:
        raise ValueError("floor, rel_floor, meter_floor: must be >= 0")
    d = np.maximum(d, meter_floor * _row_mean(d))
    scale = MAD_TO_SIGMA * d + floor + rel_floor * np.abs(med)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray((xv - med) / scale, dtype=np.float64)


def _row_mean(a: FloatArray) -> FloatArray:
    """NaN-ignoring mean over the last axis, kept as a column (0 for an all-NaN row)."""
    return _row_mean_into(a, np.empty(a.shape), np.empty(a.shape, dtype=bool))


def _row_mean_into(a: FloatArray, tmp: FloatArray, gaps: npt.NDArray[np.bool_]) -> FloatArray:
    """:func:`_row_mean` with caller's buffers of ``a``'s shape (overwritten)."""
    np.isnan(a, out=gaps)
    np.copyto(tmp, a)
    np.copyto(tmp, 0.0, where=gaps)  # the same sum, in the same order, as before
    total = tmp.sum(axis=-1, keepdims=True)
    count = a.shape[-1] - _count_along_last(gaps)
    mean: FloatArray = np.divide(total, count, out=np.zeros(total.shape), where=count > 0)
    return mean


def _count_along_last(mask: npt.NDArray[np.bool_]) -> IntArray:
    """``np.count_nonzero(mask, axis=-1, keepdims=True)``, summed in 16-bit counters when
    they cannot overflow: 4× as fast (the vectorised byte sums) and one call, where
    ``count_nonzero`` along an axis converts the mask first."""
    wide = mask.shape[-1] >= 2**16
    counts = mask.sum(axis=-1, dtype=np.int64 if wide else np.uint16, keepdims=True)
    return np.asarray(counts, dtype=np.int64)


@dataclass(slots=True, frozen=True)
class BaselineScan:
    """What the anomaly scan keeps of the baseline, small except for ``z``.

    Attributes
    ----------
    z : ndarray, shape (meters, steps)
        Robust z of every step [-].
    daily_residual : ndarray, shape (meters, days)
        Daily sum of ``x − expected`` [unit of x · day], scaled up from the valid steps of the
        day; NaN for days with fewer than half of their steps valid.
    daily_expected : ndarray, shape (meters, days)
        Daily sum of the expected value, scaled the same way [unit of x · day].
    heating : HeatingTerm or None
        The degree-hour term in the expectation (fitted by the scan when it was given an
        outdoor temperature).
    """

    z: FloatArray
    daily_residual: FloatArray
    daily_expected: FloatArray
    heating: HeatingTerm | None = None


# Balance temperatures tried per meter [°C]: a well-insulated building or one with large
# internal gains starts heating well below 16 °C, a leaky one above it.
HEATING_BASES_C = (8.0, 10.0, 12.0, 14.0, 16.0, 18.0)


@dataclass(slots=True, frozen=True)
class HeatingTerm:
    """Degree-hour term of heating meters: ``expected = median + slope·(dh − median dh)``,
    with ``dh = max(base − Te, 0)`` at each meter's own balance temperature.

    Attributes
    ----------
    slope : ndarray, shape (meters,)
        [unit per K·h]; 0 for meters whose use does not follow the cold.
    base_index : ndarray of int, shape (meters,)
        Row of ``degree_hours`` and ``anomaly`` used by each meter.
    bases_c : ndarray, shape (bases,)
        Balance temperature of each row [°C].
    degree_hours : ndarray, shape (bases, steps)
        Heating degree-hours per step at each base [K·h].
    anomaly : ndarray, shape (bases, steps)
        ``degree_hours`` minus its own hour-of-week median (0 where that is undefined).
    """

    slope: FloatArray
    base_index: IntArray
    bases_c: FloatArray
    degree_hours: FloatArray
    anomaly: FloatArray

    def anomaly_of(self, i: int, j: int) -> FloatArray:
        """``slope·(dh − median dh)`` of meters ``i:j``, shape (j − i, steps)."""
        term = self.slope[i:j, np.newaxis] * self.anomaly[self.base_index[i:j]]
        return np.asarray(term, dtype=np.float64)


def fill_gaps(series: npt.ArrayLike) -> FloatArray:
    """A weather series, shape (steps,), with its gaps filled linearly (left as they are
    with fewer than two readings): a missing reading is not a mild or a dark hour."""
    v = np.asarray(series, dtype=np.float64).reshape(-1)
    ok = ~np.isnan(v)
    if ok.sum() >= 2 and not ok.all():
        idx = np.arange(v.size)
        v = np.interp(idx, idx[ok], v[ok])
    return v


def heating_degree_hours(
    outdoor_temp_c: npt.ArrayLike,
    bases_c: npt.ArrayLike = HEATING_BASES_C,
    *,
    steps_per_hour: int = 1,
) -> FloatArray:
    """``max(base − Te, 0)/steps_per_hour`` for every base, shape (bases, steps) [K·h].

    Gaps in the temperature are filled linearly first: a missing reading is not a mild hour.
    """
    te = fill_gaps(outdoor_temp_c)
    bases = np.asarray(bases_c, dtype=np.float64).reshape(-1, 1)
    dh = np.maximum(bases - te[np.newaxis, :], 0.0) / steps_per_hour
    return np.asarray(np.nan_to_num(dh), dtype=np.float64)


def fit_heating_term(
    x: npt.ArrayLike,
    outdoor_temp_c: npt.ArrayLike,
    *,
    bases_c: npt.ArrayLike = HEATING_BASES_C,
    weeks: int = 4,
    steps_per_hour: int = 1,
    block_meters: int = DEFAULT_BLOCK_METERS,
) -> HeatingTerm:
    """Per-meter balance temperature and slope of the baseline's degree-hour term.

    Parameters
    ----------
    x : array_like, shape (meters, steps)
        Consumption of heating meters [unit per step].
    outdoor_temp_c : array_like, shape (steps,)
        Outdoor temperature [°C].
    bases_c : array_like
        Balance temperatures tried [°C].

    Returns
    -------
    HeatingTerm

    Notes
    -----
    The residual against the hour-of-week median is regressed through the origin on the
    same-hour anomaly of degree-hours at every base; each meter keeps the base whose positive
    slope explains the most of it (``sxy²/sxx``). One fixed base both under-predicts a
    well-insulated building's cold snaps and drives its expected use below the hot-water
    floor on mild days: those were most false level shifts of gas meters.
    """
    term = baseline_scan(
        x,
        weeks=weeks,
        steps_per_hour=steps_per_hour,
        block_meters=block_meters,
        outdoor_temp_c=outdoor_temp_c,
        heating_bases_c=bases_c,
    ).heating
    assert term is not None
    return term


def _unfitted_term(
    outdoor_temp_c: npt.ArrayLike,
    bases_c: npt.ArrayLike,
    *,
    meters: int,
    steps: int,
    weeks: int,
    steps_per_hour: int,
) -> HeatingTerm:
    """The degree-hour tables of a heating term, slopes 0 until :func:`_fit_term_rows`."""
    dh = heating_degree_hours(outdoor_temp_c, bases_c, steps_per_hour=steps_per_hour)
    if dh.shape[1] != steps:
        raise ValueError(f"outdoor_temp_c: expected shape ({steps},), got ({dh.shape[1]},)")
    med_dh, _ = hour_of_week_baseline(dh, weeks=weeks, steps_per_hour=steps_per_hour)
    return HeatingTerm(
        slope=np.zeros(meters),
        base_index=np.zeros(meters, dtype=np.int64),
        bases_c=np.asarray(bases_c, dtype=np.float64).reshape(-1),
        degree_hours=dh,
        anomaly=np.nan_to_num(dh - med_dh),
    )


def _fit_term_rows(term: HeatingTerm, i: int, j: int, resid: FloatArray, steps: int) -> None:
    """Fit the slope and base of meters ``i:j`` from their residual against the hour-of-week
    median (NaN at gaps) over the first ``steps`` steps, in place (see
    :func:`fit_heating_term`)."""
    resid, anomaly = resid[:, :steps], term.anomaly[:, :steps]
    ok = ~np.isnan(resid)
    np.copyto(resid, 0.0, where=~ok)
    sxy = resid @ anomaly.T
    sxx = ok.astype(np.float64) @ (anomaly * anomaly).T
    slope = np.maximum(np.divide(sxy, sxx, out=np.zeros_like(sxy), where=sxx > 0), 0.0)
    best = np.argmax(slope * sxy, axis=1)  # the base explaining the most of the residual
    term.slope[i:j] = slope[np.arange(j - i), best]
    term.base_index[i:j] = best


def baseline_scan(
    x: npt.ArrayLike,
    *,
    weeks: int = 4,
    steps_per_hour: int = 1,
    floor: float = 0.01,
    rel_floor: float = 0.05,
    meter_floor: float = 1.0,
    heating: HeatingTerm | None = None,
    quantum: npt.ArrayLike | None = None,
    tail_quantile: float = 0.0,
    tail_divisor: float = 2.0,
    hour_tail_divisor: float = 0.0,
    block_meters: int = DEFAULT_BLOCK_METERS,
    out: FloatArray | None = None,
    bridged_gaps: bool = False,
    outdoor_temp_c: npt.ArrayLike | None = None,
    heating_bases_c: npt.ArrayLike = HEATING_BASES_C,
) -> BaselineScan:
    """Robust z of every step and daily residuals, without materialising median or MAD.

    Parameters
    ----------
    x : array_like, shape (meters, steps)
        Regular series [unit per step]; NaN for gaps. Step 0 starts a local day.
    weeks, steps_per_hour, block_meters
        See :func:`hour_of_week_baseline`.
    floor, rel_floor, meter_floor : float
        See :func:`robust_z`.
    heating : HeatingTerm, optional
        From :func:`fit_heating_term`: adds each meter's degree-hour term to the median.
    outdoor_temp_c : array_like, optional, shape (steps,)
        Instead of ``heating``: fit each meter's term (bases ``heating_bases_c``) in the
        same pass, from the medians the scan computes anyway; returned in the result.
    quantum : array_like, optional, shape (meters,)
        Resolution of each meter [unit]: the scale is never below it, so a register that
        reads 0 or 0.112 kWh all summer does not make one quantum look extreme.
    tail_quantile, tail_divisor : float
        With ``tail_quantile`` > 0, the scale is also at least the ``tail_quantile`` of
        |x − expected| over each four-week block of the meter, divided by
        ``tail_divisor``: a household's appliance peaks or a school's term starts are
        ordinary for that meter, and a spike must stand out against them.
    hour_tail_divisor : float
        With > 0 (and a tail), the scale of each hour of the day is also at least the
        second largest of the four 7-day maxima of |x − expected| at that hour in the
        block (days 1, 5, 9…, days 2, 6, 10…), divided by ``hour_tail_divisor``: a
        home's evening cooking or a boiler's morning start is ordinary at its own hour,
        not at 3 am. One event touches one of the four maxima, so it does not raise its
        own floor.
    bridged_gaps : bool
        The series comes from registers whose first reading after a gap carries the gap's
        energy (as the rollups bridge it): a day's observed use is then the plain sum of its
        readings, not their mean scaled up to the whole day.
    out : ndarray, optional, shape (meters, steps)
        Buffer for ``z`` (float64, C-contiguous), e.g. reused across chunks.

    Returns
    -------
    BaselineScan

    Notes
    -----
    Measured on the project machine (10 k × 8,760): ``np.median`` over stacked lags 11.8 s,
    a closed-form median of four on whole matrices 4.4 s, the same in blocks of ~25 meters
    with reused buffers 0.66 s. Large temporaries page-fault on every call; the work itself
    is cheap. This function keeps the block loop and writes only ``z`` at full size.
    The MAD is not temperature-adjusted: the spread stays that of the raw same-hour values,
    which is conservative on cold days.
    """
    a = as_matrix(x, "x")
    week_steps = _check(weeks, steps_per_hour, block_meters)
    m, n = a.shape
    steps_per_day = 24 * steps_per_hour
    if heating is not None and heating.slope.shape != (m,):
        raise ValueError(f"heating: expected a term of {m} meters, got {heating.slope.shape[0]}")
    fit_here = heating is None and outdoor_temp_c is not None
    if fit_here:
        assert outdoor_temp_c is not None
        heating = _unfitted_term(
            outdoor_temp_c, heating_bases_c, meters=m, steps=n, weeks=weeks,
            steps_per_hour=steps_per_hour,
        )  # fmt: skip
    if out is None:
        z = np.empty((m, n))
    else:
        if out.shape != (m, n) or out.dtype != np.float64:
            raise ValueError(f"out: expected float64 of shape ({m}, {n})")
        z = out
    q_arr = None if quantum is None else np.asarray(quantum, dtype=np.float64).reshape(-1)
    if q_arr is not None and q_arr.shape != (m,):
        raise ValueError(f"quantum: expected shape ({m},), got {q_arr.shape}")
    if not 0.0 <= tail_quantile < 1.0 or tail_divisor <= 0 or hour_tail_divisor < 0:
        raise ValueError(
            "tail_quantile: must lie in [0, 1); tail_divisor: must be > 0; "
            "hour_tail_divisor: must be >= 0"
        )
    day_starts = np.arange(0, n, steps_per_day)
    steps_in_day = np.diff(np.append(day_starts, n)).astype(np.float64)
    days = _DaySums(
        m,
        day_starts,
        steps_in_day,
        blank_steps=BLANK_WEEKS * week_steps,
        bridged_gaps=bridged_gaps,
    )

    tail = _TailFloor(tail_quantile, tail_divisor, hour_tail_divisor, steps_per_day=steps_per_day)
    # The heating term is fitted on whole days: a service run at 6 pm would otherwise fit
    # it on its day so far as well, and read every day of its window a little differently
    # from the run at midnight (bench.accuracy --service-every 6).
    whole_steps = n - n % steps_per_day if n >= steps_per_day else n
    rows = min(block_meters, m)
    work = _Workspace(rows, n)
    bufs = _Workspace(rows, n)  # med, scale, tmp for the z step
    gap_buf = np.empty(rows * n, dtype=bool)
    for i in _blocks(m, block_meters):
        j = min(i + block_meters, m)
        med, scale, tmp = bufs.views(j - i, n)[:3]
        _block_median_mad(a[i:j], weeks=weeks, week_steps=week_steps, med=med, mad=scale, work=work)
        if heating is not None:
            if fit_here:
                np.subtract(a[i:j], med, out=tmp)
                _fit_term_rows(heating, i, j, tmp, whole_steps)
            med += heating.anomaly_of(i, j)  # expected = median + β·(dh − median dh)
            # A mild spell cannot take use below zero (gas for hot water stays).
            np.maximum(med, 0.0, out=med)
        _z_block(
            a[i:j],
            expected=med,
            scale=scale,
            tmp=tmp,
            gap=gap_buf[: (j - i) * n].reshape(j - i, n),
            z=z[i:j],
            floor=floor,
            rel_floor=rel_floor,
            meter_floor=meter_floor,
            days=days,
            row0=i,
            quantum=None if q_arr is None else q_arr[i:j, np.newaxis],
            tail=tail,
        )
    daily_residual, daily_expected = days.result()
    return BaselineScan(
        z=z, daily_residual=daily_residual, daily_expected=daily_expected, heating=heating
    )


def _z_block(
    xb: FloatArray,
    *,
    expected: FloatArray,
    scale: FloatArray,
    tmp: FloatArray,
    gap: npt.NDArray[np.bool_],
    z: FloatArray,
    floor: float,
    rel_floor: float,
    meter_floor: float,
    days: _DaySums,
    row0: int,
    quantum: FloatArray | None = None,
    tail: _TailFloor | None = None,
) -> None:
    """Robust z of one block (rows ``row0`` on) into ``z`` (``scale`` holds the MAD on
    entry); its daily sums into ``days``."""
    # scale = max(1.4826·max(MAD, meter_floor·mean MAD), quantum, tail/divisor)
    #         + floor + rel_floor·|expected|
    # Scaling by 1.4826 > 0 commutes with max exactly (rounding is monotone), so every
    # per-meter floor is folded into one column and applied with the tail in one pass.
    # (Which zero of ±0 a tie keeps cannot matter: a positive floor is added after.)
    col = (meter_floor * _row_mean_into(scale, tmp, gap)) * MAD_TO_SIGMA
    if quantum is not None:
        col = np.maximum(col, quantum)
    scale *= MAD_TO_SIGMA
    np.subtract(xb, expected, out=z)
    if tail is not None and tail.quantile > 0:
        # ``tmp`` is free here: it holds the float32 copy the selection works on.
        floor_of = tail.floors(z, col, scratch=tmp)  # (rows, blocks, steps of a day)
        # ``tmp`` is free again: the floor of each step written out, then one contiguous
        # maximum; against a broadcast operand of stride 0 NumPy's maximum takes a scalar
        # loop, twice as slow as the copy and the maximum together.
        rows, n = scale.shape
        block, per_day = tail.block, tail.steps_per_day
        whole = n // block
        by_day = np.reshape(
            tmp[:, : whole * block], (rows, whole, block // per_day, per_day), copy=False
        )
        by_day[...] = floor_of[:, :whole, np.newaxis, :]
        if n > whole * block:
            last = np.broadcast_to(
                floor_of[:, whole, np.newaxis, :], (rows, block // per_day, per_day)
            )
            tmp[:, whole * block :] = last.reshape(rows, block)[:, : n - whole * block]
        np.maximum(scale, tmp, out=scale)
    else:
        tmp[...] = col  # as above: no stride-0 operand for the maximum
        np.maximum(scale, tmp, out=scale)
    np.abs(expected, out=tmp)
    tmp *= rel_floor
    tmp += floor
    scale += tmp
    # Daily sums over the steps where both x and the expectation exist (z is NaN wherever
    # either is missing), before z is scaled.
    days.add(row0, z, expected, xb)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(z, scale, out=z)


class _DaySums:
    """Sums per day of a scan's residuals ``x − expected`` and expected use, a block of
    meters at a time, finished for all meters at once by :meth:`result`.

    Days without a gap are summed by ``reduceat`` on the block; the days whose sum comes
    out NaN are gathered while their block is at hand, and summed again after the last
    block with their gaps as 0, by the same ``reduceat`` over the same steps (so the same
    rounding) as a sum over a zero-filled copy. A few hundred such days per block were
    thirty small NumPy calls per block, each handing the GIL to the other scan thread and
    waiting to get it back. Days within the first ``blank_steps`` steps, where the
    expectation is NaN in every row, are set to what that gives, sums and counts of 0,
    without gathering them.
    """

    def __init__(
        self,
        meters: int,
        day_starts: IntArray,
        steps_in_day: FloatArray,
        *,
        blank_steps: int,
        bridged_gaps: bool,
    ) -> None:
        self.day_starts, self.steps_in_day = day_starts, steps_in_day
        self.bridged_gaps = bridged_gaps
        self.res = np.empty((meters, day_starts.size))
        self.exp = np.empty((meters, day_starts.size))
        self.blank = int(np.count_nonzero(day_starts + steps_in_day <= blank_steps))
        # Gathered gap days, by length of day (only the last day may be shorter): rows,
        # days, their residuals and expected use.
        self.gaps: dict[int, list[tuple[IntArray, IntArray, FloatArray, FloatArray]]] = {}
        self.late: list[tuple[int, int, float]] = []  # row, day, expected use (bridged)

    def add(self, row0: int, z: FloatArray, expected: FloatArray, xb: FloatArray) -> None:
        """Sum the block of rows ``row0`` on: ``z`` holds ``x − expected``, ``xb`` is ``x``."""
        starts, n_days, steps_in_day = self.day_starts, self.day_starts.size, self.steps_in_day
        res = np.add.reduceat(z, starts, axis=1, out=self.res[row0 : row0 + len(z)])
        np.add.reduceat(expected, starts, axis=1, out=self.exp[row0 : row0 + len(z)])
        if n_days > self.blank:
            nan_days = np.flatnonzero(np.isnan(res[:, self.blank :]))
            rows, days = np.divmod(nan_days, n_days - self.blank)
            days += self.blank
            # Only the last day may be shorter: each length of day is gathered on its own.
            last = days == n_days - 1
            for length, pick in ((int(steps_in_day[0]), ~last), (int(steps_in_day[-1]), last)):
                if not pick.any():
                    continue
                r, d = rows[pick], days[pick]
                cols = starts[d][:, np.newaxis] + np.arange(length)
                gathered = (
                    r + row0,
                    d,
                    z[r[:, np.newaxis], cols],
                    expected[r[:, np.newaxis], cols],
                )
                self.gaps.setdefault(length, []).append(gathered)
        if not self.bridged_gaps:
            return
        for r in np.flatnonzero(np.isnan(xb[:, -1])).tolist():
            # Steps after the last reading are not a gap yet (a late meter, a run before
            # the hour's data came in): no reading has carried their energy, so that day
            # expects only the steps up to it.
            seen = np.flatnonzero(~np.isnan(xb[r]))
            if seen.size == 0:
                continue
            d = int(np.searchsorted(starts, seen[-1], side="right")) - 1
            part = expected[r, starts[d] : seen[-1] + 1]
            known = np.count_nonzero(~np.isnan(part))
            if known:
                self.late.append((row0 + r, d, float(np.nansum(part) * part.size / known)))

    def result(self) -> tuple[FloatArray, FloatArray]:
        """Daily residual and expected use, (meters, days) each (see :class:`BaselineScan`).

        Computed in the arrays of the sums where it can: (meters, days) temporaries cost
        more in page faults than the arithmetic on them.
        """
        res, exp, steps_in_day = self.res, self.exp, self.steps_in_day
        bridged = self.bridged_gaps
        count = np.repeat(steps_in_day[np.newaxis, :], res.shape[0], axis=0)
        # Sums and counts over the steps where the expectation alone exists (bridged).
        exp_all, count_e = (exp.copy(), count.copy()) if bridged else (exp, count)
        for sums in (res, exp, count, exp_all, count_e):
            sums[:, : self.blank] = 0.0
        for parts in self.gaps.values():
            r, d, seg_z, seg_e = (np.concatenate(column) for column in zip(*parts, strict=True))
            if bridged:
                e_gaps = np.isnan(seg_e)
                exp_all[r, d] = np.where(e_gaps, 0.0, seg_e).sum(axis=1)
                count_e[r, d] -= e_gaps.sum(axis=1)
            gaps = np.isnan(seg_z)
            seg_z[gaps] = 0.0
            seg_e[gaps] = 0.0
            first = np.zeros(1, dtype=np.int64)
            res[r, d] = np.add.reduceat(seg_z, first, axis=1)[:, 0]
            exp[r, d] = np.add.reduceat(seg_e, first, axis=1)[:, 0]
            count[r, d] -= gaps.sum(axis=1)
        enough = count >= 0.5 * steps_in_day
        if bridged:
            # The readings after a gap carry its energy: the day's use is their plain sum,
            # against the expectation of every step of the day.
            enough &= count_e >= 0.5 * steps_in_day
            day_exp = np.multiply(exp_all, _scale_up(steps_in_day, count_e, enough), out=exp_all)
            for r_late, d_late, value in self.late:
                day_exp[r_late, d_late] = value
            residual = np.subtract(np.add(res, exp, out=res), day_exp, out=res)
            np.copyto(residual, np.nan, where=~enough)
            np.copyto(day_exp, np.nan, where=~enough)
            return residual, day_exp
        factor = _scale_up(steps_in_day, count, enough)
        for sums in (res, exp):
            np.multiply(sums, factor, out=sums)
            np.copyto(sums, np.nan, where=~enough)
        return res, exp


def _scale_up(
    steps_in_day: FloatArray, count: FloatArray, enough: npt.NDArray[np.bool_]
) -> FloatArray:
    """``steps_in_day / count`` where ``enough``, else 0, written into ``count``."""
    np.divide(steps_in_day, count, out=count, where=enough)
    np.copyto(count, 0.0, where=~enough)
    return count


# The tail floor's block: four weeks of hourly steps (a season's habits, recent enough).
TAIL_BLOCK_STEPS = 4 * HOURS_PER_WEEK
# Its values are selected in strided groups of seven: in a block of 28 days, a group holds
# one step of the day on every fourth day (group j: days j // spd, +4, +8…).
TAIL_GROUP = 7


class _TailFloor:
    """The scale's floors from a meter's own residual tail, per block of four weeks: the
    ``quantile`` of |x − expected| over the block / ``divisor`` and, with
    ``hour_divisor`` > 0, per step of the day (see :func:`baseline_scan`)."""

    def __init__(
        self, quantile: float, divisor: float, hour_divisor: float, *, steps_per_day: int
    ) -> None:
        self.quantile, self.divisor, self.hour_divisor = quantile, divisor, hour_divisor
        self.steps_per_day = steps_per_day
        self.block = TAIL_BLOCK_STEPS * (steps_per_day // 24)

    def floors(self, resid: FloatArray, col: FloatArray, scratch: FloatArray) -> FloatArray:
        """Floor of each block and step of the day, (rows, blocks, steps of a day): at
        least ``col`` (a column of per-meter floors)."""
        pooled, by_step = _block_tail_values(
            resid, self.quantile, self.block, scratch=scratch, steps_per_day=self.steps_per_day
        )
        pooled /= self.divisor
        np.maximum(pooled, col, out=pooled)
        if self.hour_divisor <= 0:
            return np.repeat(pooled[:, :, np.newaxis], self.steps_per_day, axis=2)
        by_step /= self.hour_divisor
        return np.maximum(by_step, pooled[:, :, np.newaxis], out=by_step)


def _block_tail(resid: FloatArray, q: float, block: int = TAIL_BLOCK_STEPS) -> FloatArray:
    """``q``-quantile of |resid| over consecutive blocks of steps, broadcast back per step.

    NaN counts as 0 (gaps are sparse), which only lowers the quantile. A short last block
    takes the quantile of the series' last ``block`` steps that end a day.
    """
    n = resid.shape[1]
    return np.repeat(_block_tail_values(resid, q, block)[0], block, axis=1)[:, :n]


def _block_tail_values(
    resid: FloatArray,
    q: float,
    block: int,
    scratch: FloatArray | None = None,
    steps_per_day: int = 24,
) -> tuple[FloatArray, FloatArray]:
    """:func:`_block_tail` once per block, shape (rows, blocks); and, per block and step
    of the day, the second largest of the four strided groups' maxima (rows, blocks,
    ``steps_per_day``; a block of 28 days). ``scratch`` (contiguous, overwritten) spares
    the float32 copy's allocation when it is large enough."""
    m, n = resid.shape
    blocks = -(-n // block)
    size = m * blocks * block
    # float32 is plenty for a noise floor and halves the selection's work.
    if scratch is not None and 2 * scratch.size >= size and scratch.flags.c_contiguous:
        padded = scratch.reshape(-1).view(np.float32)[:size].reshape(m, blocks * block)
    else:
        padded = np.empty((m, blocks * block), dtype=np.float32)
    np.abs(resid, out=padded[:, :n], casting="same_kind")
    if n % block and n > block:
        # A short last block takes the tail of the last full block's length, ending on a
        # day's last step (so each step of the day keeps its hour): zeros padding a day
        # would put its quantile at 0 (the most recent day, the one a service reports,
        # without a floor).
        last = (blocks - 1) * block
        end = n - (n % steps_per_day)
        padded[:, last:] = padded[:, end - block : end].copy()
    else:
        padded[:, n:] = 0.0  # a series shorter than a block: its zeros lower the quantile
    # NaN → 0, against a row of zeros: with a scalar operand fmax takes a loop 4× as slow.
    np.fmax(padded, np.zeros((1, padded.shape[1]), dtype=np.float32), out=padded)
    k = min(block - 1, int(q * block))
    by_block = padded.reshape(m, blocks, block)
    top = block - k  # the k-th smallest is the top-th largest
    group_max = _group_maxima(by_block, TAIL_GROUP)
    if 4 * top * TAIL_GROUP <= block:
        kth = _top_from_groups(by_block, top, TAIL_GROUP, group_max)
    else:
        by_block.partition(k, axis=2)
        kth = by_block[:, :, k]
    # An infinite |resid| counts as the largest float32; mapping it after the selection
    # is the same, as the order does not change (a minimum: ``np.nan_to_num`` costs more in
    # Python than the selection on so few values, with the GIL held).
    top_f32 = np.float32(np.finfo(np.float32).max)
    pooled = np.asarray(np.minimum(kth, top_f32), dtype=np.float64)
    by_step = _second_of_four(group_max.reshape(m, blocks, 4, steps_per_day))
    return pooled, np.asarray(np.minimum(by_step, top_f32), dtype=np.float64)


def _group_maxima(v: npt.NDArray[np.float32], size: int) -> npt.NDArray[np.float32]:
    """Maximum of each group of ``size`` strided values along the last axis of ``v``:
    group j holds ``v[..., j + g·i]`` for i < ``size``, g = width / ``size``."""
    g = v.shape[2] // size
    group_max = np.maximum(v[:, :, :g], v[:, :, g : 2 * g])
    for j in range(2, size):
        np.maximum(group_max, v[:, :, j * g : (j + 1) * g], out=group_max)
    return group_max


def _second_of_four(v: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Second largest along axis 2 of length 4, by a comparison network (no sort)."""
    hi_a, lo_a = np.maximum(v[:, :, 0], v[:, :, 1]), np.minimum(v[:, :, 0], v[:, :, 1])
    hi_b, lo_b = np.maximum(v[:, :, 2], v[:, :, 3]), np.minimum(v[:, :, 2], v[:, :, 3])
    # The largest is max(hi_a, hi_b); the second is the other pair's top or a low.
    return np.maximum(np.minimum(hi_a, hi_b), np.maximum(lo_a, lo_b))


def _top_from_groups(
    v: npt.NDArray[np.float32], top: int, size: int, group_max: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """``top``-th largest along the last axis of ``v`` (no NaN), 3-4× faster than a partition
    of the whole axis when ``top`` is small; ``group_max`` from :func:`_group_maxima`.

    The axis is cut into groups of ``size`` strided values. At most ``top`` groups hold a
    value of the ``top`` largest; if one of them is not among the ``top`` groups of largest
    maximum, those ``top`` maxima are themselves ``top`` values at least as large. Either
    way the ``top`` largest of the selected groups' values is the answer, exactly.
    """
    m, blocks, width = v.shape
    g = width // size
    best = np.argpartition(group_max, g - top, axis=2)[:, :, g - top :]
    start = np.arange(m * blocks).reshape(m, blocks, 1) * width + best
    idx = start[:, :, :, np.newaxis] + g * np.arange(size)
    cand = v.reshape(-1)[idx.reshape(m, blocks, top * size)]
    cand.partition(top * size - top, axis=2)
    kth: npt.NDArray[np.float32] = cand[:, :, top * size - top]
    return kth


def median_at(
    x: npt.ArrayLike,
    rows: npt.ArrayLike,
    cols: npt.ArrayLike,
    *,
    weeks: int = 4,
    steps_per_hour: int = 1,
) -> FloatArray:
    """Hour-of-week median at a few (row, step) points, e.g. the peaks of detected events.

    Same definition as :func:`hour_of_week_baseline`, computed only where asked [unit of x].
    """
    a = as_matrix(x, "x")
    week_steps = _check(weeks, steps_per_hour, 1)
    r = np.asarray(rows, dtype=np.int64)
    c = np.asarray(cols, dtype=np.int64)
    lags = c[:, np.newaxis] - week_steps * np.arange(1, weeks + 1)
    valid = lags >= 0
    vals = np.where(valid, a[r[:, np.newaxis], np.where(valid, lags, 0)], np.nan)
    return nan_median(vals)
