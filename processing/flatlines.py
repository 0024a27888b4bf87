"""Stuck registers and sensors: a register's windows flat within its rounding, a sensor's
exact repeats, and the rules that tell a stuck run from a meter's own flat habits
(:func:`flat_events`). The near-flat test itself runs in :func:`processing.quality.quality_scan`'s
one pass over blocks of meters."""

from __future__ import annotations

import warnings
from typing import Final

import numpy as np
import numpy.typing as npt

from processing.baseline import (
    DEFAULT_BLOCK_METERS,
    HOURS_PER_WEEK,
    as_matrix,
    median_at,
    nan_median,
)
from processing.chance_runs import FALSE_RUN_SPAN, unlikely_run
from processing.events import (
    AnomalyEvents,
    _events_of_points,
    _point_runs,
    event_steps,
    events_from_mask,
    flagged_count,
    mask_runs,
    segment_index,
)
from processing.quality_config import QualityConfig

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def flatline_mask(x: npt.ArrayLike, *, min_steps: int = 6, ignore_zero: bool = True) -> BoolArray:
    """Steps belonging to a run of at least ``min_steps`` identical values (stuck sensor).

    Parameters
    ----------
    x : array_like, shape (meters, steps)
        Series [any unit]; NaN never equals anything, so gaps break runs.
    min_steps : int
        Shortest run of identical values flagged [steps]; must be >= 2.
    ignore_zero : bool
        Zero runs are reported by :func:`~processing.quality.zero_runs`; skip them here by default.

    Returns
    -------
    ndarray of bool, shape (meters, steps)
    """
    a = as_matrix(x, "x")
    if min_steps < 2:
        raise ValueError(f"min_steps: must be >= 2, got {min_steps}")
    same = a[:, 1:] == a[:, :-1]
    if ignore_zero:
        same &= a[:, 1:] != 0.0
    # A run of k equal neighbours pairs means k+1 identical values.
    rows, starts, ends = mask_runs(same, min_steps=min_steps - 1)
    edges = np.zeros((a.shape[0], a.shape[1] + 1), dtype=np.int8)
    # Adjacent runs (a a a b b b) share an edge column, so accumulate rather than assign.
    np.add.at(edges, (rows, starts), 1)
    np.add.at(edges, (rows, ends + 1), -1)
    mask: BoolArray = np.cumsum(edges, axis=1, dtype=np.int8)[:, :-1] > 0
    return mask


def flatlines(x: npt.ArrayLike, *, min_steps: int = 6, ignore_zero: bool = True) -> AnomalyEvents:
    """Stuck-sensor runs (see :func:`flatline_mask`); severity is the length [steps]."""
    a = as_matrix(x, "x")
    mask = flatline_mask(a, min_steps=min_steps, ignore_zero=ignore_zero)
    return events_from_mask(mask, kind="flatline", observed=a, aggregate="peak")


# Equal neighbour pairs of a run counted towards a sensor's chance of repeating itself once
# more: a stuck sensor's own run of days would otherwise teach it that long runs are common.
RUN_CENSOR_PAIRS: Final = 12
# A sensor's chance runs are counted within this many steps either side of a run (four weeks
# of hours): a room held by its thermostat in winter rarely repeats a reading for long, the
# same room drifting slowly in summer often does, and the year's mix hid a winter stuck run
# of 10–20 h. bench.seeds, twenty-seventh session, the four seed sets: flatlines +0.0009 /
# +0.0012 / +0.0027 / +0.0039, precision +0.0008 / +0.0010 / +0.0015 / +0.0017; two weeks
# found the same, with 3–13 more false flatlines a set.
RUN_RATE_STEPS: Final = 28 * 24


def _bridged_repeats(a: FloatArray, max_gap: int) -> FloatArray:
    """``a`` with its gaps of at most ``max_gap`` steps filled where the readings either
    side are equal: a stuck sensor's lost reading does not end its run."""
    m, n = a.shape
    ok = ~np.isnan(a)
    step = np.arange(n)[np.newaxis, :]
    before = np.maximum.accumulate(np.where(ok, step, -1), axis=1)
    after = np.minimum.accumulate(np.where(ok, step, n)[:, ::-1], axis=1)[:, ::-1]
    rows = np.arange(m)[:, np.newaxis]
    left = a[rows, np.maximum(before, 0)]
    right = a[rows, np.minimum(after, n - 1)]
    fill = ~ok & (before >= 0) & (after < n) & (after - before - 1 <= max_gap) & (left == right)
    return np.where(fill, left, a)


def _spread_catch_up(
    a: FloatArray,
    max_gap: int,
    tol: npt.ArrayLike,
    rel_tol: float,
    *,
    gaps: npt.NDArray[np.intp] | None = None,
    out: FloatArray | None = None,
) -> FloatArray:
    """``a`` with each gap of at most ``max_gap`` steps, and the reading after it, replaced
    by that reading's share of their steps where the readings either side are within
    ``tol`` (per row, or one for all) plus ``rel_tol`` of it: on a register whose first
    reading after a gap carries the gap's energy, a stuck flow's lost reading would
    otherwise break its flat run with a double step. A gap at a change of level is left as
    it is. ``gaps``: the flat indexes of ``a``'s NaNs, ascending, if known. ``a`` itself is
    returned when nothing is spread, else ``out`` (a buffer of ``a``'s size, default a
    new one) with the result; gaps are sparse, so only they are read."""
    m, n = a.shape
    flat = np.flatnonzero(np.isnan(a)) if gaps is None else gaps
    rows, starts, ends = _point_runs(flat, n)
    # A gap with a reading either side and one after the reading that carries it.
    inner = (starts > 0) & (ends - starts <= max_gap) & (ends + 1 < n)
    rows, starts, ends = rows[inner], starts[inner], ends[inner]
    share = a[rows, ends] / (ends - starts + 1)
    band = np.broadcast_to(np.asarray(tol, dtype=np.float64).reshape(-1), (m,))[rows]
    band = band + rel_tol * np.abs(share)
    with np.errstate(invalid="ignore"):
        same = (np.abs(a[rows, starts - 1] - share) <= band) & (
            np.abs(a[rows, ends + 1] - share) <= band
        )
    if not same.any():
        return a
    rows, starts, ends, share = rows[same], starts[same], ends[same], share[same]
    cols, _ = segment_index(starts, ends + 1)
    if out is None:
        out = np.empty_like(a)
    np.copyto(out, a)
    out[np.repeat(rows, ends + 1 - starts), cols] = np.repeat(share, ends + 1 - starts)
    return out


def repeat_runs(
    x: npt.ArrayLike, *, min_steps: int = 6, false_runs: float = 0.02, max_gap: int = 2
) -> AnomalyEvents:
    """Runs of exactly repeated readings long enough to be a stuck sensor, per meter.

    A sensor read to 0.1 K repeats its last value now and then by chance; a stuck one
    repeats it for hours. Chance runs of equal neighbours start at a rate ``g`` per step
    and go on with probability ``r`` per step, both from the meter's other runs (each
    counted up to :data:`RUN_CENSOR_PAIRS` pairs: a run would make itself likely), those
    within :data:`RUN_RATE_STEPS` steps of the run; ``L`` identical values then start by
    chance about ``n·g·r^(L−2)`` times in ``n`` steps, and the shortest run reported is
    the ``L`` (at least ``min_steps``) that makes this ``false_runs`` per
    :data:`~processing.chance_runs.FALSE_RUN_SPAN` steps [-]. A room held by its
    thermostat, once it repeats, repeats for hours: its share of equal neighbours over all
    steps made runs of 7–12 h look impossible by chance (bench.accuracy, twelfth session,
    seeds 300–303: 7–14 false thermometer flatlines a seed → 2–4). Gaps of at most
    ``max_gap`` steps between equal readings do not end a run. Severity is the run
    length [steps].
    """
    a = as_matrix(x, "x")
    if min_steps < 2:
        raise ValueError(f"min_steps: must be >= 2, got {min_steps}")
    if max_gap > 0:
        a = _bridged_repeats(a, max_gap)
    n = a.shape[1]
    same = a[:, 1:] == a[:, :-1]
    rows, starts, ends = mask_runs(same)  # by row, then start
    pairs = ends - starts  # equal neighbour pairs; k of them are k+1 identical values
    more = np.minimum(pairs - 1, RUN_CENSOR_PAIRS).astype(np.float64)
    ended = (pairs - 1 < RUN_CENSOR_PAIRS).astype(np.float64)
    # The other runs starting within RUN_RATE_STEPS of each run, on its row's own axis.
    w = RUN_RATE_STEPS
    pos = rows * (n + 2 * w + 1) + starts
    lo = np.searchsorted(pos, pos - w, "left")
    hi = np.searchsorted(pos, pos + (ends - starts) + w, "right")
    sum_more = np.concatenate([[0.0], np.cumsum(more)])
    sum_ended = np.concatenate([[0.0], np.cumsum(ended)])
    count = (hi - lo - 1).astype(np.float64)
    more_others = sum_more[hi] - sum_more[lo] - more
    ended_others = sum_ended[hi] - sum_ended[lo] - ended
    r = np.clip(more_others / np.maximum(more_others + ended_others, 1.0), 1e-3, 0.99)
    span = np.minimum(ends + w, n) - np.maximum(starts - w, 0)
    g = np.clip(count / np.maximum(span, 1), 1e-9, 1.0)
    # Runs start at g per step: ``false_runs / g`` runs go on ``continued`` steps.
    continued = unlikely_run(r, false_runs / g)
    keep = pairs + 1 >= np.maximum(min_steps, 2 + np.maximum(continued, 0.0))
    rows, starts, stop = rows[keep], starts[keep], ends[keep] + 1
    observed = a[rows, starts] if rows.size else np.zeros(0)
    return AnomalyEvents(
        kind="flatline",
        meter_index=rows,
        start=starts,
        end=stop,
        peak=starts.copy(),
        severity=(stop - starts).astype(np.float64),
        expected=np.full(rows.size, np.nan),
        observed=observed.astype(np.float64),
    )


def _running_extreme(
    a: FloatArray, width: int, fn: np.ufunc, out: FloatArray, tmp: FloatArray, *, span: int = 1
) -> None:
    """``fn`` (np.maximum or np.minimum) over each window of ``width`` steps starting at
    every step, into ``out[:, : n − width + 1]`` (NaN if any NaN; the tail is left as is).
    ``a`` holds the extremes over ``span ≤ width`` steps starting at each step (1: values).

    Doubling: extremes over span, 2·span, 4·span … steps until two overlapping windows
    of the largest cover ``width`` — O(log width) contiguous passes, no window copies.
    """
    n = a.shape[1]
    k = n - width + 1
    cur = a
    while 2 * span < width:
        # ``tmp`` holds extremes over ``2·span`` steps starting at every step that has them.
        fn(cur[:, : n - 2 * span + 1], cur[:, span : n - span + 1], out=tmp[:, : n - 2 * span + 1])
        cur = tmp
        span *= 2
    fn(cur[:, :k], cur[:, width - span : width - span + k], out=out[:, :k])


class _FlatWorkspace:
    """Buffers of one block of meters, allocated once per call and reused for every block:
    matrix-sized temporaries cost more in page faults than the arithmetic on them."""

    def __init__(self, rows: int, steps: int) -> None:
        self.f = [np.empty(rows * steps) for _ in range(6)]
        self.b = [np.empty(rows * steps, dtype=bool) for _ in range(2)]

    def views(self, rows: int, steps: int) -> tuple[list[FloatArray], list[BoolArray]]:
        size = rows * steps
        return (
            [b[:size].reshape(rows, steps) for b in self.f],
            [b[:size].reshape(rows, steps) for b in self.b],
        )


def _typical_spread(
    spread: FloatArray, rows: IntArray, cols: IntArray, *, period: int, weeks: int = 4
) -> FloatArray:
    """The meter's usual spread at the given window starts: median of the same hour of week
    over the ``weeks`` trailing weeks (as :func:`~processing.baseline.hour_of_week_baseline`,
    NaN with fewer than 2 valid lags), else the NaN-ignoring mean over the ``period``-step
    block of the start.

    Only candidate windows need it, and they are sparse: gathering their lags is far cheaper
    than a baseline of the whole spread matrix.
    """
    n = spread.shape[1]
    lag = HOURS_PER_WEEK * np.arange(1, weeks + 1)
    lag_cols = cols[:, np.newaxis] - lag[np.newaxis, :]
    n_lags = np.minimum(cols // HOURS_PER_WEEK, weeks)[:, np.newaxis]
    valid = np.arange(1, weeks + 1)[np.newaxis, :] <= n_lags
    vals = np.where(valid, spread[rows[:, np.newaxis], np.maximum(lag_cols, 0)], np.nan)
    typical = nan_median(vals) if rows.size else np.zeros(0)
    missing = np.isnan(typical)
    if missing.any():
        starts = np.arange(0, n, period)
        ok = ~np.isnan(spread)
        total = np.add.reduceat(np.where(ok, spread, 0.0), starts, axis=1)
        count = np.add.reduceat(ok, starts, axis=1, dtype=np.float64)
        mean = np.divide(total, count, out=np.full(total.shape, np.nan), where=count > 0)
        typical[missing] = mean[rows[missing], cols[missing] // period]
    return typical


def _usual_level(
    a: FloatArray, rows: IntArray, cols: IntArray, width: int, *, weeks: int = 4
) -> FloatArray:
    """The meter's usual mean over the window of ``width`` steps from each start: median of
    the same hour of week over the ``weeks`` trailing weeks (NaN without any read)."""
    lag = HOURS_PER_WEEK * np.arange(1, weeks + 1)
    at = cols[:, np.newaxis, np.newaxis] - lag[np.newaxis, :, np.newaxis]
    at = at + np.arange(width)[np.newaxis, np.newaxis, :]
    vals = np.where(at >= 0, a[rows[:, np.newaxis, np.newaxis], np.maximum(at, 0)], np.nan)
    read = (~np.isnan(vals)).sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(read > 0, np.nansum(vals, axis=2) / read, np.nan)
    return nan_median(mean) if rows.size else np.zeros(0)


def _near_flat_block(
    a: FloatArray,
    q: FloatArray,
    out: BoolArray,
    work: _FlatWorkspace,
    *,
    min_steps: int,
    rel_tol: float,
    quanta: float,
    contrast: float,
    period: int,
    min_level_quanta: float = 0.0,
    day_steps: int = 0,
    day_min_level_quanta: float | None = None,
    idle_ratio: float = 0.0,
) -> None:
    """:func:`near_flat_mask` of one block of meters, written into ``out``."""
    out.fill(False)
    rows, n = a.shape
    if n < min_steps:
        return
    (high, low, bound, tmp, day_high, day_low), (cand, _) = work.views(rows, n)
    _running_extreme(a, min_steps, np.maximum, high, tmp)
    _running_extreme(a, min_steps, np.minimum, low, tmp)
    day = min_steps <= day_steps <= n
    # A day-long window within the tolerance has every short window in it within
    # 1/(1 − rel_tol) of theirs: only rows with such a short window can hold one.
    near = 1.0 / (1.0 - rel_tol) if day and rel_tol < 1.0 else 0.0
    first_rows, first_cols, near_rows = _flat_window_starts(
        a, q, width=min_steps, high=high, low=low, bound=bound, cand=cand, near=near,
        rel_tol=rel_tol, quanta=quanta, contrast=contrast, period=period,
        min_level_quanta=min_level_quanta, idle_ratio=idle_ratio,
    )  # fmt: skip
    # Each flagged window start covers the window's steps.
    for j in range(min_steps):
        out[first_rows, first_cols + j] = True
    if not day or near_rows.size == 0:
        return
    sub = a[near_rows]
    (high, low, bound, tmp, day_high, day_low), (cand, _) = work.views(near_rows.size, n)
    _running_extreme(sub, min_steps, np.maximum, high, tmp)
    _running_extreme(sub, min_steps, np.minimum, low, tmp)
    # The day's extremes from the short windows' (two passes instead of five).
    _running_extreme(high, day_steps, np.maximum, day_high, tmp, span=min_steps)
    _running_extreme(low, day_steps, np.minimum, day_low, tmp, span=min_steps)
    sub_rows, first_cols, _ = _flat_window_starts(
        sub, q[near_rows], width=day_steps, high=day_high, low=day_low, bound=bound, cand=cand,
        rel_tol=rel_tol, quanta=quanta, contrast=contrast, period=period,
        min_level_quanta=min_level_quanta if day_min_level_quanta is None else day_min_level_quanta,
        idle_ratio=idle_ratio,
    )  # fmt: skip
    for j in range(day_steps):
        out[near_rows[sub_rows], first_cols + j] = True


def _flat_window_starts(
    a: FloatArray,
    q: FloatArray,
    *,
    width: int,
    high: FloatArray,
    low: FloatArray,
    bound: FloatArray,
    cand: BoolArray,
    rel_tol: float,
    quanta: float,
    contrast: float,
    period: int,
    min_level_quanta: float,
    near: float = 0.0,
    idle_ratio: float = 0.0,
) -> tuple[IntArray, IntArray, IntArray]:
    """Rows and first steps of the flat windows of ``width`` steps of one block, given each
    window's extremes ``high`` and ``low`` (``low`` becomes the spread; ``bound`` and
    ``cand`` are scratch); and, with ``near`` > 0, the rows with a window within
    ``near`` × its allowed spread (every row when ``a`` has negative values)."""
    n = a.shape[1]
    none = np.zeros(0, dtype=np.int64)
    k = n - width + 1
    spread = low
    # max(high, −low) bounds |window mean|, so a window whose spread exceeds the allowed
    # spread at that bound is not flat: only the few others need the mean itself.
    # Consumption is rarely negative: without a negative value the bound is ``high``.
    nonneg = bool(np.fmin.reduce(a, axis=None) >= 0.0)  # fmin skips gaps
    b = high[:, :k] if nonneg else bound[:, :k]
    if not nonneg:
        np.negative(spread[:, :k], out=b)
        np.maximum(b, high[:, :k], out=b)
    np.subtract(high[:, :k], spread[:, :k], out=spread[:, :k])
    spread[:, k:] = np.nan
    qq = quanta * q
    # A relative margin far above the rounding of the mean keeps every flat window in.
    np.multiply(b, max(rel_tol, 0.0) * (1 + 1e-9), out=b)
    np.add(b, qq + np.abs(qq) * 1e-9, out=b)
    if near > 1.0:
        np.multiply(b, near, out=b)
    with np.errstate(invalid="ignore"):
        np.less_equal(spread[:, :k], b, out=cand[:, :k])
    cand[:, k:] = False
    r_idx, c_idx = np.divmod(np.flatnonzero(cand), n)
    every = np.arange(a.shape[0], dtype=np.int64) if near > 0 and not nonneg else none
    if r_idx.size == 0:
        return none, none, every
    # Window mean and allowed spread of those windows, with the operations, and so the
    # rounding, of a whole-matrix pass: summed in order, then divided.
    wm = a[r_idx, c_idx]
    for j in range(1, width):  # loop over the window width, not over samples
        wm = wm + a[r_idx, c_idx + j]
    wm = wm / width
    tol = np.abs(wm) * rel_tol + qq[r_idx, 0]
    near_rows = every
    with np.errstate(invalid="ignore"):
        if near > 0 and nonneg:
            near_rows = np.unique(r_idx[spread[r_idx, c_idx] <= tol * near * (1 + 1e-9)])
        flat = (spread[r_idx, c_idx] <= tol) & (wm != 0.0)
    r_idx, c_idx, level, tol = r_idx[flat], c_idx[flat], wm[flat], tol[flat]
    if r_idx.size == 0:
        return none, none, near_rows
    # What is flat by nature, a closed building idle or a boiler at full load on cold
    # nights, is told by the contrast below and the habit and peer rules. (Until the
    # twentieth session a window at 0.9 of the meter's 99.5th percentile was spared as a
    # boiler at capacity: a register stuck near its own peak for days lifted that
    # percentile to its level. Year scans of seeds 300–315 without it: flatlines +0.006,
    # one more false, one more on the clean twins; the idle level was spared alike until
    # the seventh.)
    keep = np.abs(level) >= min_level_quanta * q[r_idx, 0]
    r_idx, c_idx, tol, level = r_idx[keep], c_idx[keep], tol[keep], level[keep]
    # Typical spread of the same window start in the trailing weeks: offices idle flat at
    # night and boilers run flat out on cold nights; neither is stuck.
    typical = _typical_spread(spread, r_idx, c_idx, period=period)
    with np.errstate(invalid="ignore"):
        keep = typical > contrast * tol
    # Unless the meter usually idles then and reads well above its idle level: a closing
    # building's register stuck at an evening's use, through the night it is usually off
    # (bench.accuracy, twelfth session, seeds 300–303: flatlines +0.038 / 0 / 0 / +0.018,
    # precision within 0.001; at any level far from the usual one, +13–31 false flats).
    rest = np.flatnonzero(~keep)
    usual = _usual_level(a, r_idx[rest], c_idx[rest], width)
    # A register rounds its index, not each step: a window's mean is within quanta / width
    # of the truth, where one step may be a quantum off (a home's summer gas stuck at three
    # quanta an hour, 8 kWh a day against its usual 2: 0.24 above, under 3 quanta).
    mean_tol = np.abs(level[rest]) * rel_tol + qq[r_idx[rest], 0] / width
    with np.errstate(invalid="ignore"):
        keep[rest] = (np.abs(usual) <= tol[rest]) & (level[rest] - usual > contrast * mean_tol)
        if idle_ratio > 0:
            # Or it idles flat then at a level of its own, and reads ``idle_ratio`` × that:
            # a school's register stuck at the day's use through a night at its standby.
            above = level[rest] >= idle_ratio * usual + contrast * mean_tol
            keep[rest] |= (usual > qq[r_idx[rest], 0]) & above
    return r_idx[keep].astype(np.int64), c_idx[keep].astype(np.int64), near_rows


class NearFlatBlocks:
    """The near-flat test of :class:`QualityConfig` (see :func:`near_flat_mask`), one block
    of up to ``rows`` meters at a time, for a pass over the blocks that takes other masks
    of them too (:func:`processing.quality.quality_scan`). ``bridged``: the registers'
    first reading after a gap carries it, and short gaps are spread first (with
    ``flatline_spread_gaps``, see :func:`_spread_catch_up`). The buffers are allocated once
    and reused for every block: a new block-sized array each block costs its page faults.
    """

    def __init__(self, rows: int, steps: int, cfg: QualityConfig, *, bridged: bool) -> None:
        if cfg.flatline_steps < 2:
            raise ValueError(f"flatline_steps: must be >= 2, got {cfg.flatline_steps}")
        self.cfg = cfg
        self.work = _FlatWorkspace(rows, steps)
        spread = bridged and cfg.flatline_spread_gaps
        self.spread_buf = np.empty(rows * steps) if spread else None

    def mark(
        self, xb: FloatArray, q: FloatArray, out: BoolArray, gaps: npt.NDArray[np.intp]
    ) -> None:
        """The near-flat steps of block ``xb`` (``q``: its quanta, a column) into ``out``;
        ``gaps``: the flat indexes of the block's NaNs, ascending."""
        cfg = self.cfg
        if self.spread_buf is not None:
            xb = _spread_catch_up(
                xb, cfg.flatline_merge_gap, cfg.flatline_quanta * q, cfg.flatline_rel_tol,
                gaps=gaps, out=self.spread_buf[: xb.size].reshape(xb.shape),
            )  # fmt: skip
        _near_flat_block(
            xb,
            q,
            out,
            self.work,
            min_steps=cfg.flatline_steps,
            rel_tol=cfg.flatline_rel_tol,
            quanta=cfg.flatline_quanta,
            contrast=cfg.flatline_contrast,
            period=4 * HOURS_PER_WEEK,
            min_level_quanta=cfg.flatline_min_quanta,
            day_min_level_quanta=cfg.flatline_day_min_quanta,
            day_steps=cfg.flatline_day_steps,
            idle_ratio=cfg.flatline_idle_ratio,
        )


def near_flat_mask(
    x: npt.ArrayLike,
    *,
    min_steps: int = 6,
    quantum: npt.ArrayLike = 0.0,
    rel_tol: float = 0.04,
    quanta: float = 1.0,
    contrast: float = 6.0,
    period: int = 4 * 168,
    block_meters: int = DEFAULT_BLOCK_METERS,
    min_level_quanta: float = 0.0,
    day_steps: int = 0,
    day_min_level_quanta: float | None = None,
    idle_ratio: float = 0.0,
) -> BoolArray:
    """Steps in a window of ``min_steps`` whose spread stays within rounding and jitter.

    Parameters
    ----------
    x : array_like, shape (meters, steps)
        Consumption per step [unit] (or a sensor reading).
    min_steps : int
        Window length [steps].
    quantum : array_like, shape (meters,) or scalar
        Register or display resolution [unit], e.g. from
        :func:`~processing.quality.register_quantum`.
    rel_tol, quanta : float
        Allowed spread: ``quanta·quantum + rel_tol·|window mean|`` [unit].
    contrast : float
        The meter's median spread over ``min_steps`` at the same hour of week in the four
        trailing weeks (else its mean spread in the same ``period``) must exceed
        ``contrast`` × the allowed spread, or flatness is normal for it then.
    period : int
        Length of the blocks of the fallback typical spread [steps].
    block_meters : int
        Meters processed together (memory/speed trade-off, not a modelling choice).
    min_level_quanta : float
        Windows whose mean is below this many quanta are never flat (rounding) [-].
    day_steps : int
        With > 0, windows of this many steps are tested alike as well, against the
        meter's own windows of that length (see ``QualityConfig.flatline_day_steps``).
    day_min_level_quanta : float, optional
        ``min_level_quanta`` of those windows (default: the same).
    idle_ratio : float
        With > 0, a window that fails the contrast (the meter is as flat as usual then) is
        still flat when its mean is at least ``idle_ratio`` × the meter's usual mean of the
        same window (median over the four trailing weeks) plus ``contrast`` × its rounding
        (see ``QualityConfig.flatline_idle_ratio``).

    Returns
    -------
    ndarray of bool, shape (meters, steps)

    Notes
    -----
    A stuck value does not read as identical values once it passes through a register:
    rounding to the quantum and reading-time jitter add a spread of a quantum or two and
    about 2 % of the flow. Exact equality (:func:`flatline_mask`) misses those; a spread
    test alone fires on meters that are flat by nature, hence the contrast with the
    meter's own typical spread.

    Meters are processed in blocks with buffers reused from block to block, and the typical
    spread is gathered only at the (sparse) windows that pass the other tests: peak memory
    is the boolean result plus a few block-sized buffers.
    """
    a = as_matrix(x, "x")
    m, n = a.shape
    if min_steps < 2:
        raise ValueError(f"min_steps: must be >= 2, got {min_steps}")
    if block_meters < 1:
        raise ValueError(f"block_meters: must be >= 1, got {block_meters}")
    q = np.broadcast_to(np.asarray(quantum, dtype=np.float64).reshape(-1, 1), (m, 1))
    mask = np.zeros((m, n), dtype=bool)
    work = _FlatWorkspace(min(block_meters, m), n)
    for i in range(0, m, block_meters):
        j = min(i + block_meters, m)
        _near_flat_block(
            a[i:j],
            q[i:j],
            mask[i:j],
            work,
            min_steps=min_steps,
            rel_tol=rel_tol,
            quanta=quanta,
            contrast=contrast,
            period=period,
            min_level_quanta=min_level_quanta,
            day_steps=day_steps,
            day_min_level_quanta=day_min_level_quanta,
            idle_ratio=idle_ratio,
        )
    return mask


HABIT_PROBE_STEPS = 12  # leading steps of a flat event compared with the previous days


def _flat_tolerance(
    q: npt.ArrayLike, rows: IntArray, level: FloatArray, cfg: QualityConfig, *, meters: int
) -> FloatArray:
    """Spread allowed around ``level`` on each row's meter: ``flatline_quanta`` quanta and
    ``flatline_rel_tol`` of the level (``q``: quantum per meter, or one for all)."""
    qq = np.broadcast_to(np.asarray(q, dtype=np.float64).reshape(-1), (meters,))[rows]
    tol: FloatArray = cfg.flatline_quanta * qq + cfg.flatline_rel_tol * np.abs(level)
    return tol


def _habitually_flat(
    a: FloatArray, ev: AnomalyEvents, q: npt.ArrayLike, cfg: QualityConfig
) -> npt.NDArray[np.bool_]:
    """Flat events whose first hours were just as flat, at the same level (within the flat
    tolerance), on at least ``flatline_habit_need`` of the ``flatline_habit_days`` previous
    days: a boiler's constant hot-water draw every morning is its routine, not a stuck
    register. Same hours of previous days rather than weeks, as a routine is daily."""
    m, n = a.shape
    k = HABIT_PROBE_STEPS
    start = ev.start
    length = np.minimum(ev.end - start, k)
    rows = ev.meter_index
    offs = np.arange(k)
    cols = start[:, None] + offs[None, :]
    inside = offs[None, :] < length[:, None]
    now = np.where(inside, a[rows[:, None], np.minimum(cols, n - 1)], np.nan)
    level = np.nanmean(now, axis=1)
    tol = _flat_tolerance(q, rows, level, cfg, meters=m)
    hits = np.zeros(rows.size)
    for d in range(1, cfg.flatline_habit_days + 1):  # a loop over days, not samples
        c = cols - 24 * d  # hourly series, as the pipeline loads them
        ok = inside & (c >= 0)
        prev = np.where(ok, a[rows[:, None], np.maximum(c, 0)], np.nan)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            spread = np.nanmax(prev, axis=1) - np.nanmin(prev, axis=1)
            same = (spread <= tol) & (np.abs(np.nanmean(prev, axis=1) - level) <= tol)
        hits += same & (ok.sum(axis=1) >= length // 2)
    return np.asarray(hits >= cfg.flatline_habit_need, dtype=bool)


def _busy_flat(
    a: FloatArray, ev: AnomalyEvents, q: npt.ArrayLike, cfg: QualityConfig, closed: BoolArray
) -> BoolArray:
    """Flat events holding ``flatline_busy_steps`` steps or more of open days at which the
    meter usually reads ``flatline_busy_ratio`` × the flat level (plus the flat tolerance)
    or more: hours it is normally busy (see :class:`QualityConfig`)."""
    event, steps = event_steps(ev)
    rows = ev.meter_index[event]
    usual = median_at(a, rows, steps)  # NaN without history: never busy
    level = ev.observed[event]
    tol = _flat_tolerance(q, rows, level, cfg, meters=a.shape[0])
    busy = (usual >= cfg.flatline_busy_ratio * level + tol) & ~closed[steps]
    return np.asarray(flagged_count(ev, event, busy) >= cfg.flatline_busy_steps, dtype=bool)


# Flat runs this close are pieces of one episode (a value crossing the tolerance and back).
SAME_EPISODE_STEPS = 6


# Two flat episodes are at the same level within this many times the flat tolerance.
PEER_LEVEL_TOLERANCES = 2.0
# A habit is a rate: ``flatline_peer_need`` alike episodes per ``FALSE_RUN_SPAN`` steps (a
# year), as the chance runs are counted, and never fewer than this in a shorter window.
# With three in any window, the service's eight weeks held a closed office's or school's
# flat weekend at its standby for a stuck register when they held fewer than three like
# it; a scan of the whole year before did not (five traced on seed 300's clean city).
# bench.accuracy's service replay, thirtieth session, seeds 300–303: false flatlines on
# the clean cities 51 / 68 / 41 / 47 → 30 / 35 / 29 / 29, precision +0.009 to +0.015, no
# label lost; with a floor of one (300 and 301), 16 and 21, but two stuck registers of
# seed 300 and a schedule label of 301 lost. A year's scan needs three, as before.
PEER_NEED_FLOOR: Final = 2


def peers_needed(need: int, steps: int) -> int:
    """Alike episodes that make a habit in a window of ``steps`` steps: ``need`` per
    ``FALSE_RUN_SPAN`` steps, at least :data:`PEER_NEED_FLOOR` and at most ``need``."""
    scaled = -(-need * steps // FALSE_RUN_SPAN)  # ceil
    return min(need, max(PEER_NEED_FLOOR, scaled))


def _recurring_flat(
    ev: AnomalyEvents, q: npt.ArrayLike, cfg: QualityConfig, *, meters: int, steps: int
) -> BoolArray:
    """Flat events of meters with :func:`peers_needed` other flat episodes as long (by
    ``flatline_peer_share``) at the same level among the window's ``steps``: the meter's
    own way, not a stuck register. Every flat run of the window counts, before the shortest
    are dropped; pairs are formed within each meter only (events are sorted by meter)."""
    m = ev.meter_index
    level = ev.observed
    tol = _flat_tolerance(q, m, level, cfg, meters=meters)
    # Each event against every event of its meter.
    first = np.searchsorted(m, m, "left")
    last = np.searchsorted(m, m, "right")
    other, _ = segment_index(first, last)
    this = np.repeat(np.arange(m.size), last - first)
    length = ev.end - ev.start
    apart = (ev.start[other] > ev.end[this] + SAME_EPISODE_STEPS) | (
        ev.end[other] + SAME_EPISODE_STEPS < ev.start[this]
    )
    alike = (length[other] >= cfg.flatline_peer_share * length[this]) & (
        np.abs(level[other] - level[this]) <= PEER_LEVEL_TOLERANCES * tol[this]
    )
    peers = np.bincount(this, weights=(apart & alike).astype(np.float64), minlength=m.size)
    return np.asarray(peers >= peers_needed(cfg.flatline_peer_need, steps), dtype=bool)


STRAIGHT_INDEX_STARTS: Final = HOURS_PER_WEEK  # window starts tested per flat event


def _straight_index(
    a: FloatArray, ev: AnomalyEvents, q: npt.ArrayLike, cfg: QualityConfig
) -> BoolArray:
    """Flat events with a window of ``flatline_event_steps`` steps (``flatline_steps`` when 0)
    over which the index stays on its least-squares line within ``flatline_index_tol`` of
    the line's slope plus ``flatline_quanta`` quanta (see :class:`QualityConfig`).

    The index is known at the end of each read step and at the window's start unless the
    step before was lost; a window needs more than half its points known. Only windows
    starting in an event's first :data:`STRAIGHT_INDEX_STARTS` steps are tested."""
    m = a.shape[0]
    w = cfg.flatline_event_steps or cfg.flatline_steps
    # A week of window starts tells a stuck run: a register stuck for a year would
    # otherwise cost (its steps × w) values.
    last = np.clip(ev.end - w + 1, ev.start, ev.start + STRAIGHT_INDEX_STARTS)
    event, starts = event_steps(ev, last)
    rows = ev.meter_index[event]
    vals = a[rows[:, np.newaxis], starts[:, np.newaxis] + np.arange(w)[np.newaxis, :]]
    before = a[rows, np.maximum(starts - 1, 0)]
    known = np.concatenate(
        [~np.isnan(before)[:, np.newaxis] | (starts == 0)[:, np.newaxis], ~np.isnan(vals)], axis=1
    )
    index = np.zeros(known.shape)
    np.cumsum(np.nan_to_num(vals), axis=1, out=index[:, 1:])
    # Least-squares line through the known points of each window.
    p = np.arange(w + 1, dtype=np.float64)[np.newaxis, :]
    k = known.astype(np.float64)
    count, sum_p, sum_pp = k.sum(axis=1), (k * p).sum(axis=1), (k * p * p).sum(axis=1)
    sum_y, sum_py = (k * index).sum(axis=1), (k * p * index).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (count * sum_py - sum_p * sum_y) / (count * sum_pp - sum_p**2)
        off = index - (sum_y - slope * sum_p)[:, np.newaxis] / count[:, np.newaxis]
    off -= slope[:, np.newaxis] * p
    spread = np.where(known, off, -np.inf).max(axis=1) - np.where(known, off, np.inf).min(axis=1)
    qq = np.broadcast_to(np.asarray(q, dtype=np.float64).reshape(-1), (m,))[rows]
    band = cfg.flatline_index_tol * np.abs(slope) + cfg.flatline_quanta * qq
    straight = (2 * count > w + 1) & (spread <= band)
    return np.bincount(event[straight], minlength=len(ev)) > 0


def flat_events(
    a: FloatArray,
    flat: npt.NDArray[np.intp],
    q: npt.ArrayLike,
    cfg: QualityConfig,
    *,
    closed: npt.ArrayLike | None = None,
) -> AnomalyEvents:
    """The stuck runs of ``a`` (meters, steps): its exact repeats with ``flatline_exact``,
    else its near-flat steps ``flat`` (flat indexes, ascending) as events, less those the
    rules tell for the meter's own way. ``q``: the register's quantum per meter;
    ``closed`` (shape (steps,), bool) as in :func:`processing.quality.quality_scan`."""
    if cfg.flatline_exact:
        return repeat_runs(
            a,
            min_steps=cfg.flatline_steps,
            false_runs=cfg.flatline_false_runs,
            max_gap=cfg.flatline_merge_gap,
        )
    flat_ev = _events_of_points(
        flat, a.shape, kind="flatline", observed=a, aggregate="peak", max_gap=cfg.flatline_merge_gap
    )
    busy = np.zeros(len(flat_ev), dtype=bool)
    if closed is not None and cfg.flatline_busy_steps > 0 and len(flat_ev):
        busy = _busy_flat(a, flat_ev, q, cfg, np.asarray(closed, dtype=bool))
    if cfg.flatline_peer_need > 0 and len(flat_ev):
        keep = busy | ~_recurring_flat(flat_ev, q, cfg, meters=a.shape[0], steps=a.shape[1])
        flat_ev, busy = flat_ev.select(keep), busy[keep]
    if cfg.flatline_event_steps > 0 and len(flat_ev):
        keep = flat_ev.end - flat_ev.start >= cfg.flatline_event_steps
        flat_ev, busy = flat_ev.select(keep), busy[keep]
    if len(flat_ev) and cfg.flatline_index_tol > 0:
        keep = _straight_index(a, flat_ev, q, cfg)
        flat_ev, busy = flat_ev.select(keep), busy[keep]
    if len(flat_ev) and cfg.flatline_habit_need > 0:
        flat_ev = flat_ev.select(busy | ~_habitually_flat(a, flat_ev, q, cfg))
    return flat_ev
