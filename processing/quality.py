"""Data-quality rules over (meters, steps): negatives, outages, zero runs, jumps, resets, and
the scan that runs them with the stuck-register rules of :mod:`processing.flatlines`.

Each rule returns :class:`~processing.events.AnomalyEvents`; masks are available for the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from processing.baseline import DEFAULT_BLOCK_METERS, HOURS_PER_WEEK, as_matrix
from processing.chance_runs import chance_run_length
from processing.consumption import interval_consumption
from processing.events import (
    AnomalyEvents,
    _events_of_points,
    event_steps,
    events_from_mask,
    flagged_share,
)
from processing.flatlines import NearFlatBlocks, flat_events
from processing.quality_config import QualityConfig

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
# A zero run counts where the meter's median over its four-week block is above this many
# register quanta per step: an idle summer gas register with a few draws is not a fault.
ZERO_RUN_USUAL_QUANTA = 1.0


# Share of a meter's readings at zero below which zero is not one of its usual readings.
ZERO_RARE_SHARE = 0.01


def negative(x: npt.ArrayLike) -> AnomalyEvents:
    """Steps with negative consumption (a wrong sign or a misread reset)."""
    a = as_matrix(x, "x")
    with np.errstate(invalid="ignore"):
        mask = a < 0
    return events_from_mask(mask, kind="negative", observed=a, expected=0.0, aggregate="sum")


def outages(
    x: npt.ArrayLike, *, min_steps: int = 1, max_gap: int = 0, false_runs: float = 0.0
) -> AnomalyEvents:
    """Runs of missing values (NaN); severity is the run length [steps].

    With ``false_runs`` > 0 the shortest run reported also adapts to the meter's own
    transmission losses. A link that drops a share ``g`` of readings independently starts
    a gap at about ``g`` of the steps and, with ``p ≈ g``, leaves ``L`` or more in a row by
    chance about ``n·g·p^(L−1) ≈ n·g^L`` times in ``n`` steps; runs shorter than the ``L``
    that makes this ``false_runs`` are the link's usual losses, not an outage. ``g`` is
    counted from gap starts, so one long outage does not raise it.
    """
    a = as_matrix(x, "x")
    gaps = np.flatnonzero(np.isnan(a))
    return _outage_events(
        gaps, a.shape, min_steps=min_steps, max_gap=max_gap, false_runs=false_runs
    )


def _outage_events(
    gaps: npt.NDArray[np.intp],
    shape: tuple[int, int],
    *,
    min_steps: int,
    max_gap: int,
    false_runs: float,
) -> AnomalyEvents:
    """:func:`outages` from the flat indexes of the gaps (ascending) in a matrix of ``shape``."""
    ev = _events_of_points(gaps, shape, kind="outage", min_steps=min_steps, max_gap=max_gap)
    if false_runs <= 0 or not len(ev):
        return ev
    shortest = np.maximum(min_steps, chance_run_length(gaps, shape, false_runs))
    return ev.select(ev.end - ev.start >= shortest[ev.meter_index])


def _zero_run_events(
    zero: npt.NDArray[np.intp], shape: tuple[int, int], cfg: QualityConfig
) -> AnomalyEvents:
    """Runs of exact zeros (flat indexes ``zero``, ascending) of at least ``zero_steps``, or
    shorter down to ``zero_min_steps`` when the meter's own runs of zeros, started at a
    rate ``g`` per step, leave one that long by chance fewer than ``zero_false_runs`` times
    (see :func:`outages`)."""
    m, n = shape
    by_chance = cfg.zero_false_runs > 0
    shortest_any = min(cfg.zero_min_steps, cfg.zero_steps) if by_chance else cfg.zero_steps
    ev = _events_of_points(
        zero, shape, kind="zero_run", min_steps=shortest_any, max_gap=cfg.max_gap, observed=0.0
    )
    if not by_chance or not len(ev):
        return ev
    shortest = np.clip(
        chance_run_length(zero, shape, cfg.zero_false_runs), cfg.zero_min_steps, cfg.zero_steps
    )
    # Runs of zeros are far from independent where zero is a usual reading (a boiler off
    # on mild afternoons, for hours): only meters that hardly ever read zero get the rate.
    share = np.bincount(zero // n, minlength=m) / max(n, 1)
    shortest = np.where(share < ZERO_RARE_SHARE, shortest, cfg.zero_steps)
    return ev.select(ev.end - ev.start >= shortest[ev.meter_index])


def zero_runs(x: npt.ArrayLike, *, min_steps: int = 24, max_gap: int = 0) -> AnomalyEvents:
    """Runs of exact zeros of at least ``min_steps``; severity is the length [steps]."""
    a = as_matrix(x, "x")
    return events_from_mask(
        a == 0.0, kind="zero_run", min_steps=min_steps, max_gap=max_gap, observed=0.0
    )


def register_quantum(x: npt.ArrayLike, *, block_meters: int = DEFAULT_BLOCK_METERS) -> FloatArray:
    """Resolution of each meter's readings: the smallest non-zero step between values.

    Interval consumption of a register is a difference of quantised indexes, so its values
    (and their differences) are multiples of the register's resolution [unit of x].
    Returns shape (meters,); 0 for a meter whose values never change.
    """
    a = as_matrix(x, "x")
    m, n = a.shape
    q = np.full(m, np.inf)
    if n < 2:
        return np.zeros(m)
    rows = min(block_meters, m)
    d_buf = np.empty(rows * (n - 1))
    ok_buf = np.empty(rows * (n - 1), dtype=bool)
    for i in range(0, m, block_meters):
        j = min(i + block_meters, m)
        d = d_buf[: (j - i) * (n - 1)].reshape(j - i, n - 1)
        ok = ok_buf[: d.size].reshape(d.shape)
        np.subtract(a[i:j, 1:], a[i:j, :-1], out=d)
        np.abs(d, out=d)
        np.greater(d, 1e-9, out=ok)  # NaN and float noise out
        np.logical_not(ok, out=ok)
        np.copyto(d, np.inf, where=ok)
        d.min(axis=1, out=q[i:j])
    q = np.where(np.isfinite(q), q, 0.0)
    # Float noise of index differences: round to 1e-6 of the unit.
    return np.asarray(np.round(q, 6), dtype=np.float64)


def impossible_jumps(x: npt.ArrayLike, max_step: npt.ArrayLike) -> AnomalyEvents:
    """Steps whose value exceeds what the connection can physically deliver.

    Parameters
    ----------
    x : array_like, shape (meters, steps)
        Interval consumption [kWh per step] (or power [W]).
    max_step : array_like
        Largest possible value per step, broadcastable to ``x``: e.g. a per-meter column
        ``subscribed_kva[:, None] * step_h`` [same unit as ``x``].

    Returns
    -------
    AnomalyEvents
        Kind ``"impossible_jump"``; severity is the ratio of the value to ``max_step``.
    """
    a = as_matrix(x, "x")
    limit = np.asarray(max_step, dtype=np.float64)
    if np.any(limit <= 0):
        raise ValueError("max_step: must be > 0")
    with np.errstate(invalid="ignore"):
        ratio = np.abs(a) / limit
        mask = ratio > 1.0
    return events_from_mask(
        mask, kind="impossible_jump", score=ratio, expected=limit, observed=a, aggregate="peak"
    )


def counter_resets(index: npt.ArrayLike, *, jitter: float = 0.0) -> AnomalyEvents:
    """Counter resets in a cumulative index (see ``consumption.interval_consumption``)."""
    a = as_matrix(index, "index")
    _, reset = interval_consumption(a, jitter=jitter)
    previous = np.full(a.shape, np.nan)
    previous[:, 1:] = a[:, :-1]
    return events_from_mask(reset, kind="counter_reset", expected=previous, observed=a)


def _block_median(v: FloatArray, rows: IntArray, cols: IntArray, period: int) -> FloatArray:
    """Median of ``v[row]`` over the block of ``period`` steps holding ``col``, for each pair;
    gaps and the padding of a short last block count as 0 (sparse, and ``np.nanmedian`` is
    ~50× slower than a partition). Only the blocks asked for are read."""
    n = v.shape[1]
    blocks, inverse = np.unique(rows * n + (cols // period) * period, return_inverse=True)
    r, c0 = np.divmod(blocks, n)
    idx = c0[:, np.newaxis] + np.arange(period)[np.newaxis, :]
    inside = idx < n
    vals = np.where(inside, v[r[:, np.newaxis], np.minimum(idx, n - 1)], 0.0)
    med = np.median(np.nan_to_num(vals), axis=1)
    return np.asarray(med[inverse.reshape(-1)], dtype=np.float64)


def _usually_zero_share(a: FloatArray, ev: AnomalyEvents, weeks: int = 4) -> FloatArray:
    """Share of each event's steps at which the meter read zero in at least half of the
    ``weeks`` trailing weeks at the same hour of week (NaN lags ignored; 0 with none)."""
    event, steps = event_steps(ev)
    rows = ev.meter_index[event]
    lags = steps[:, np.newaxis] - HOURS_PER_WEEK * np.arange(1, weeks + 1)[np.newaxis, :]
    valid = lags >= 0
    vals = np.where(valid, a[rows[:, np.newaxis], np.maximum(lags, 0)], np.nan)
    known = ~np.isnan(vals)
    zero = (vals == 0.0).sum(axis=1)
    usual = (known.sum(axis=1) > 0) & (2 * zero >= known.sum(axis=1))
    return flagged_share(ev, event, usual)


@dataclass(slots=True, frozen=True)
class _Points:
    """Flat indexes (ascending) of the steps each rule flags, for :func:`_events_of_points`."""

    negative: npt.NDArray[np.intp]
    zero: npt.NDArray[np.intp]
    gap: npt.NDArray[np.intp]
    flat: npt.NDArray[np.intp]


def _flagged_points(
    a: FloatArray,
    q: npt.ArrayLike,
    cfg: QualityConfig,
    *,
    bridged: bool = False,
    block_meters: int = DEFAULT_BLOCK_METERS,
) -> _Points:
    """The negative, zero, missing and (unless ``flatline_exact``) near-flat steps of ``a``
    (see :class:`~processing.flatlines.NearFlatBlocks`, ``bridged`` as there), in one pass
    over blocks of meters.

    Each block is compared while it is in cache, into one reused mask, and only the
    flagged steps' indexes are kept: four masks of the whole matrix cost more in memory
    traffic and page faults than the comparisons.
    """
    m, n = a.shape
    qq = np.broadcast_to(np.asarray(q, dtype=np.float64).reshape(-1, 1), (m, 1))
    rows = min(block_meters, m)
    flat = None if cfg.flatline_exact else NearFlatBlocks(rows, n, cfg, bridged=bridged)
    mask_buf = np.empty(rows * n, dtype=bool)
    found: list[list[npt.NDArray[np.intp]]] = [[], [], [], []]
    for i in range(0, m, block_meters):
        j = min(i + block_meters, m)
        xb = a[i:j]
        mask = mask_buf[: (j - i) * n].reshape(j - i, n)
        if cfg.check_negative:
            with np.errstate(invalid="ignore"):
                np.less(xb, 0.0, out=mask)
            found[0].append(np.flatnonzero(mask) + i * n)
        np.equal(xb, 0.0, out=mask)
        found[1].append(np.flatnonzero(mask) + i * n)
        np.isnan(xb, out=mask)
        found[2].append(np.flatnonzero(mask) + i * n)
        if flat is not None:
            flat.mark(xb, qq[i:j], mask, gaps=found[2][-1] - i * n)
            found[3].append(np.flatnonzero(mask) + i * n)
    none = np.zeros(0, dtype=np.intp)
    return _Points(*(np.concatenate(f) if f else none for f in found))


def quality_scan(
    consumption: npt.ArrayLike,
    config: QualityConfig | None = None,
    *,
    quantum: npt.ArrayLike | None = None,
    closed: npt.ArrayLike | None = None,
    open_hours: npt.ArrayLike | None = None,
    bridged: bool = False,
) -> dict[str, AnomalyEvents]:
    """All rules that need only the consumption series, keyed by kind.

    ``quantum`` is the resolution per meter [unit] (default: :func:`register_quantum`).
    ``closed`` (shape (steps,), bool) marks the steps of days a building may be closed
    (weekends, public holidays) for ``flatline_busy_steps``; without it that rule is off.
    ``open_hours`` (shape (steps,), bool), for buildings that close, marks their opening
    hours for ``zero_open_share``; without it every zero run may be a fault.
    Zero runs are reported only where the meter usually consumes (its median over the
    four-week block is above ``ZERO_RUN_USUAL_QUANTA`` quanta): a gas register idle all
    summer is not a metering fault; nor are runs that mostly fall on hours of the week the
    meter usually reads zero at (``_usually_zero_share``).
    ``bridged``: the first reading after a gap carries the gap's energy (registers read
    through the rollups); a gap of up to ``flatline_merge_gap`` steps then takes its share
    of it in the flatline test.
    """
    cfg = config if config is not None else QualityConfig()
    a = as_matrix(consumption, "consumption")
    q = register_quantum(a) if quantum is None else np.asarray(quantum, dtype=np.float64)
    points = _flagged_points(a, q, cfg, bridged=bridged)
    flat_ev = flat_events(a, points.flat, q, cfg, closed=closed)
    zeros = _zero_run_events(points.zero, a.shape, cfg)
    if len(zeros):
        usual = _block_median(a, zeros.meter_index, zeros.start, 4 * HOURS_PER_WEEK)
        quanta = np.broadcast_to(q, (a.shape[0],))[zeros.meter_index]
        zeros = zeros.select(usual > ZERO_RUN_USUAL_QUANTA * quanta)
    if len(zeros):
        # An office heated only on weekdays reads zero every weekend: not a fault.
        zeros = zeros.select(_usually_zero_share(a, zeros) < 0.5)
    if len(zeros) and open_hours is not None and cfg.zero_open_share > 0:
        event, steps = event_steps(zeros)
        opened = np.asarray(open_hours, dtype=bool)[steps]
        zeros = zeros.select(flagged_share(zeros, event, opened) >= cfg.zero_open_share)
    negatives = AnomalyEvents.empty("negative")
    if cfg.check_negative:
        negatives = _events_of_points(
            points.negative, a.shape, kind="negative", observed=a, expected=0.0, aggregate="sum"
        )
    gaps = _outage_events(
        points.gap,
        a.shape,
        min_steps=cfg.outage_steps,
        max_gap=cfg.max_gap,
        false_runs=cfg.outage_false_runs,
    )
    return {
        "negative": negatives,
        "outage": gaps,
        "zero_run": zeros,
        "flatline": flat_ev,
    }
