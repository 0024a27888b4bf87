"""Data-quality rules over (meters, steps): negatives, outages, zero runs, flatlines, jumps, resets.

Each rule returns :class:`~processing.events.AnomalyEvents`; masks are available for the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from processing.consumption import interval_consumption
from processing.events import AnomalyEvents, events_from_mask, mask_runs

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def _as_matrix(x: npt.ArrayLike, name: str) -> FloatArray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[np.newaxis, :]
    if a.ndim != 2:
        raise ValueError(f"{name}: expected shape (meters, steps), got {a.shape}")
    return a


@dataclass(slots=True, frozen=True)
class QualityConfig:
    """Thresholds of the data-quality rules, in steps of the analysed series.

    Attributes
    ----------
    outage_steps : int
        Shortest NaN run reported as an outage [steps]; shorter gaps are common and are
        bridged by the consumers of the data.
    zero_steps : int
        Shortest run of exact zeros reported [steps] (24 h at hourly steps).
    flatline_steps : int
        Shortest run of identical non-zero values reported as a stuck sensor [steps]
        (6 h at hourly steps).
    max_gap : int
        Runs separated by at most this many steps are merged [steps].
    """

    outage_steps: int = 3
    zero_steps: int = 24
    flatline_steps: int = 6
    max_gap: int = 0


def negative(x: npt.ArrayLike) -> AnomalyEvents:
    """Steps with negative consumption (a wrong sign or a misread reset)."""
    a = _as_matrix(x, "x")
    with np.errstate(invalid="ignore"):
        mask = a < 0
    return events_from_mask(mask, kind="negative", observed=a, expected=0.0, aggregate="sum")


def outages(x: npt.ArrayLike, *, min_steps: int = 1, max_gap: int = 0) -> AnomalyEvents:
    """Runs of missing values (NaN); severity is the run length [steps]."""
    a = _as_matrix(x, "x")
    return events_from_mask(np.isnan(a), kind="outage", min_steps=min_steps, max_gap=max_gap)


def zero_runs(x: npt.ArrayLike, *, min_steps: int = 24, max_gap: int = 0) -> AnomalyEvents:
    """Runs of exact zeros of at least ``min_steps``; severity is the length [steps]."""
    a = _as_matrix(x, "x")
    return events_from_mask(
        a == 0.0, kind="zero_run", min_steps=min_steps, max_gap=max_gap, observed=0.0
    )


def flatline_mask(x: npt.ArrayLike, *, min_steps: int = 6, ignore_zero: bool = True) -> BoolArray:
    """Steps belonging to a run of at least ``min_steps`` identical values (stuck sensor).

    Parameters
    ----------
    x : array_like, shape (meters, steps)
        Series [any unit]; NaN never equals anything, so gaps break runs.
    min_steps : int
        Shortest run of identical values flagged [steps]; must be >= 2.
    ignore_zero : bool
        Zero runs are reported by :func:`zero_runs`; skip them here by default.

    Returns
    -------
    ndarray of bool, shape (meters, steps)
    """
    a = _as_matrix(x, "x")
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
    a = _as_matrix(x, "x")
    mask = flatline_mask(a, min_steps=min_steps, ignore_zero=ignore_zero)
    return events_from_mask(mask, kind="flatline", observed=a, aggregate="peak")


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
    a = _as_matrix(x, "x")
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
    a = _as_matrix(index, "index")
    _, reset = interval_consumption(a, jitter=jitter)
    previous = np.full(a.shape, np.nan)
    previous[:, 1:] = a[:, :-1]
    return events_from_mask(reset, kind="counter_reset", expected=previous, observed=a)


def quality_scan(
    consumption: npt.ArrayLike, config: QualityConfig | None = None
) -> dict[str, AnomalyEvents]:
    """All rules that need only the consumption series, keyed by kind."""
    cfg = config if config is not None else QualityConfig()
    a = _as_matrix(consumption, "consumption")
    return {
        "negative": negative(a),
        "outage": outages(a, min_steps=cfg.outage_steps, max_gap=cfg.max_gap),
        "zero_run": zero_runs(a, min_steps=cfg.zero_steps, max_gap=cfg.max_gap),
        "flatline": flatlines(a, min_steps=cfg.flatline_steps),
    }
