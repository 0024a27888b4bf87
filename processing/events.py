"""Anomaly events: boolean masks over (meters, steps) turned into runs with a readable reason.

Every detector in ``processing`` ends here, so runs, merging and severities are computed once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

Aggregate = Literal["peak", "sum", "mean"]
# Kinds whose ``start`` and ``end`` count days rather than steps.
DAY_KINDS: Final = frozenset({"level_shift", "drift"})

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(slots=True, frozen=True)
class Anomaly:
    """One anomaly on one meter, ready for an API or a dashboard.

    ``start`` and ``end`` are step indexes into the analysed matrix, ``end`` exclusive
    (``x[meter_index, start:end]`` is the anomalous stretch). ``severity`` is a positive
    magnitude whose unit depends on ``kind`` (robust z, CUSUM σ, steps of outage…);
    ``expected`` and ``observed`` are in the unit of the analysed series. ``status`` is
    ``"warning"`` for a level shift or drift seen on the meter's last days only, under the
    evidence of an alarm (``DetectorConfig.warning_h_share``), else ``"confirmed"``.
    """

    meter_index: int
    start: int
    end: int
    kind: str
    severity: float
    expected: float
    observed: float
    reason: str
    status: str = "confirmed"


class EventRow(NamedTuple):
    """One event's fields, handed to a reason function to write its sentence."""

    meter_index: int
    start: int
    end: int
    peak: int
    severity: float
    expected: float
    observed: float


ReasonFn = Callable[[EventRow], str]


def _default_reason(kind: str) -> ReasonFn:
    def reason(ev: EventRow) -> str:
        return (
            f"{kind.replace('_', ' ').capitalize()} over steps {ev.start}–{ev.end - 1} "
            f"(expected {ev.expected:.3g}, saw {ev.observed:.3g})"
        )

    return reason


@dataclass(slots=True, frozen=True)
class AnomalyEvents:
    """Events of one kind as parallel arrays (one entry per event), sorted by meter then start.

    Attributes
    ----------
    kind : str
        Machine-readable kind, e.g. ``"spike"``, ``"outage"``, ``"level_shift"``.
    meter_index, start, end : ndarray of int64
        Row of the meter, first step and one-past-last step of each event.
    peak : ndarray of int64
        Step of the largest ``|score|`` in each event (its first step without a score).
    severity : ndarray of float64
        Peak magnitude of the score over the event (or its length in steps without a score).
    expected, observed : ndarray of float64
        Expected and observed value, aggregated over the event as asked [series unit].
    """

    kind: str
    meter_index: IntArray
    start: IntArray
    end: IntArray
    peak: IntArray
    severity: FloatArray
    expected: FloatArray
    observed: FloatArray

    def __len__(self) -> int:
        return int(self.meter_index.size)

    @classmethod
    def empty(cls, kind: str) -> AnomalyEvents:
        """No events of ``kind``."""
        i = np.zeros(0, dtype=np.int64)
        f = np.zeros(0, dtype=np.float64)
        return cls(kind, i, i, i, i, f, f, f)

    def select(self, keep: npt.ArrayLike) -> AnomalyEvents:
        """Events where the boolean ``keep`` (one per event) is true."""
        k = np.asarray(keep, dtype=bool)
        return AnomalyEvents(
            self.kind,
            self.meter_index[k],
            self.start[k],
            self.end[k],
            self.peak[k],
            self.severity[k],
            self.expected[k],
            self.observed[k],
        )

    def to_anomalies(self, reason: ReasonFn | None = None) -> list[Anomaly]:
        """Python objects for the API, with a sentence built by ``reason`` for each event.

        ``reason(EventRow) -> str``. Events are sparse, so the loop here is over events,
        never over samples.
        """
        fn = reason if reason is not None else _default_reason(self.kind)
        out: list[Anomaly] = []
        for fields in zip(
            self.meter_index.tolist(),
            self.start.tolist(),
            self.end.tolist(),
            self.peak.tolist(),
            self.severity.tolist(),
            self.expected.tolist(),
            self.observed.tolist(),
            strict=True,
        ):
            ev = EventRow(*fields)
            out.append(
                Anomaly(
                    ev.meter_index,
                    ev.start,
                    ev.end,
                    self.kind,
                    ev.severity,
                    ev.expected,
                    ev.observed,
                    fn(ev),
                )
            )
        return out


def mask_runs(
    mask: npt.ArrayLike, *, max_gap: int = 0, min_steps: int = 1
) -> tuple[IntArray, IntArray, IntArray]:
    """Runs of ``True`` along the last axis of a (meters, steps) mask.

    Parameters
    ----------
    mask : array_like of bool, shape (meters, steps)
        Flagged steps.
    max_gap : int
        Runs separated by at most this many unflagged steps are merged into one [steps].
    min_steps : int
        Runs (after merging) shorter than this are dropped [steps].

    Returns
    -------
    rows, starts, ends : ndarray of int64
        Meter row, first step and one-past-last step of each run, sorted by row then start.
    """
    mk = np.asarray(mask, dtype=bool)
    if mk.ndim != 2:
        raise ValueError(f"mask: expected shape (meters, steps), got {mk.shape}")
    if max_gap < 0:
        raise ValueError(f"max_gap: must be >= 0, got {max_gap}")
    # Flagged steps are sparse: one pass to find them, then work on their indexes only.
    return _point_runs(np.flatnonzero(mk), mk.shape[1], max_gap=max_gap, min_steps=min_steps)


def _point_runs(
    flat: npt.NDArray[np.intp], n: int, *, max_gap: int = 0, min_steps: int = 1
) -> tuple[IntArray, IntArray, IntArray]:
    """:func:`mask_runs` of the mask whose flat indexes of ``True`` (ascending) are ``flat``,
    ``n`` steps per row."""
    # A run breaks where the next flagged index is not the next step or lies in another row.
    flat = flat.astype(np.int64)
    if flat.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty.copy()
    row_of = flat // n
    breaks = np.flatnonzero((np.diff(flat) != 1) | (np.diff(row_of) != 0)) + 1
    first = np.concatenate(([0], breaks))
    last = np.concatenate((breaks - 1, [flat.size - 1]))
    rows = row_of[first]
    starts = flat[first] - rows * n
    ends = flat[last] - rows * n + 1
    if max_gap > 0 and rows.size > 1:
        joined = (rows[1:] == rows[:-1]) & (starts[1:] - ends[:-1] <= max_gap)
        first = np.flatnonzero(np.concatenate(([True], ~joined)))
        last = np.concatenate((first[1:] - 1, [rows.size - 1]))
        rows, starts, ends = rows[first], starts[first], ends[last]
    if min_steps > 1:
        keep = ends - starts >= min_steps
        rows, starts, ends = rows[keep], starts[keep], ends[keep]
    return rows, starts, ends


def segment_index(starts: IntArray, ends: IntArray) -> tuple[IntArray, IntArray]:
    """Concatenated column indexes of all segments, and the offset of each segment in them."""
    lengths = ends - starts
    offsets = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    cols = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(offsets - starts, lengths)
    return cols, offsets


def event_steps(ev: AnomalyEvents, stop: IntArray | None = None) -> tuple[IntArray, IntArray]:
    """Every step of every event (up to ``stop``, default its end), flattened: the event's
    index and the step."""
    end = ev.end if stop is None else stop
    steps, _ = segment_index(ev.start, end)
    return np.repeat(np.arange(len(ev)), end - ev.start), steps


def flagged_count(ev: AnomalyEvents, event: IntArray, flags: BoolArray) -> FloatArray:
    """How many of each event's steps are flagged (``event``, ``flags`` per flattened step,
    from :func:`event_steps`)."""
    count = np.bincount(event, weights=flags.astype(np.float64), minlength=len(ev))
    return np.asarray(count, dtype=np.float64)


def flagged_share(ev: AnomalyEvents, event: IntArray, flags: BoolArray) -> FloatArray:
    """The share of each event's steps that are flagged (see :func:`flagged_count`)."""
    share: FloatArray = flagged_count(ev, event, flags) / np.maximum(ev.end - ev.start, 1)
    return share


def events_from_mask(
    mask: npt.ArrayLike,
    *,
    kind: str,
    score: npt.ArrayLike | None = None,
    expected: npt.ArrayLike | None = None,
    observed: npt.ArrayLike | None = None,
    aggregate: Aggregate = "peak",
    max_gap: int = 0,
    min_steps: int = 1,
) -> AnomalyEvents:
    """Events from a (meters, steps) mask, with severity and values gathered per event.

    Parameters
    ----------
    mask : array_like of bool, shape (meters, steps)
        Flagged steps.
    kind : str
        Kind written on every event.
    score : array_like, optional
        Broadcastable to ``mask``; severity is the largest ``|score|`` within each event
        (NaN ignored). Without it, severity is the event length [steps].
    expected, observed : array_like, optional
        Broadcastable to ``mask`` [series unit]; NaN where not given.
    aggregate : {"peak", "sum", "mean"}
        ``peak``: values at the step of largest ``|score|`` (first step without a score);
        ``sum`` / ``mean``: NaN-ignoring sum or mean over the event (merged gaps included).
    max_gap, min_steps : int
        See :func:`mask_runs`.

    Returns
    -------
    AnomalyEvents
    """
    mk = np.asarray(mask, dtype=bool)
    rows, starts, ends = mask_runs(mk, max_gap=max_gap, min_steps=min_steps)
    return _events_of_runs(
        rows, starts, ends, mk.shape, kind=kind, score=score, expected=expected,
        observed=observed, aggregate=aggregate,
    )  # fmt: skip


def _events_of_points(
    flat: npt.NDArray[np.intp],
    shape: tuple[int, int],
    *,
    kind: str,
    score: npt.ArrayLike | None = None,
    expected: npt.ArrayLike | None = None,
    observed: npt.ArrayLike | None = None,
    aggregate: Aggregate = "peak",
    max_gap: int = 0,
    min_steps: int = 1,
) -> AnomalyEvents:
    """:func:`events_from_mask` of the (meters, steps) mask of ``shape`` whose flat indexes of
    ``True`` (ascending) are ``flat``: for detectors that find their sparse steps a block of
    meters at a time, without a mask of the whole matrix."""
    rows, starts, ends = _point_runs(flat, shape[1], max_gap=max_gap, min_steps=min_steps)
    return _events_of_runs(
        rows, starts, ends, shape, kind=kind, score=score, expected=expected,
        observed=observed, aggregate=aggregate,
    )  # fmt: skip


def _events_of_runs(
    rows: IntArray,
    starts: IntArray,
    ends: IntArray,
    shape: tuple[int, ...],
    *,
    kind: str,
    score: npt.ArrayLike | None,
    expected: npt.ArrayLike | None,
    observed: npt.ArrayLike | None,
    aggregate: Aggregate,
) -> AnomalyEvents:
    """The events of :func:`events_from_mask` from its runs; ``shape`` is the mask's."""
    if rows.size == 0:
        return AnomalyEvents.empty(kind)
    lengths = ends - starts
    cols, offsets = segment_index(starts, ends)
    rows_rep = np.repeat(rows, lengths)

    if score is None:
        severity = lengths.astype(np.float64)
        peak_pos = offsets
    else:
        sc = np.broadcast_to(np.asarray(score, dtype=np.float64), shape)
        mag = np.abs(sc[rows_rep, cols])
        mag_filled = np.where(np.isnan(mag), -np.inf, mag)
        seg_max = np.maximum.reduceat(mag_filled, offsets)
        at_max = mag_filled == np.repeat(seg_max, lengths)
        pos = np.where(at_max, np.arange(cols.size), cols.size)
        peak_pos = np.minimum.reduceat(pos, offsets)
        severity = np.where(np.isfinite(seg_max), seg_max, np.nan)

    def gather(values: npt.ArrayLike | None) -> FloatArray:
        if values is None:
            return np.full(rows.size, np.nan)
        v = np.broadcast_to(np.asarray(values, dtype=np.float64), shape)
        if aggregate == "peak":
            return np.asarray(v[rows_rep[peak_pos], cols[peak_pos]], dtype=np.float64)
        seg = v[rows_rep, cols]
        ok = ~np.isnan(seg)
        total = np.add.reduceat(np.where(ok, seg, 0.0), offsets)
        count = np.add.reduceat(ok.astype(np.int64), offsets)
        if aggregate == "sum":
            return np.where(count > 0, total, np.nan)
        mean: FloatArray = np.divide(total, count, out=np.full(rows.size, np.nan), where=count > 0)
        return mean

    if aggregate not in ("peak", "sum", "mean"):
        raise ValueError(f"aggregate: expected 'peak', 'sum' or 'mean', got {aggregate!r}")
    return AnomalyEvents(
        kind,
        rows,
        starts,
        ends,
        cols[peak_pos],
        severity.astype(np.float64),
        gather(expected),
        gather(observed),
    )


def step_time(step: int, start: datetime, steps_per_hour: float = 1.0) -> datetime:
    """Local wall-clock time of a step, given the local time of step 0."""
    return start + timedelta(hours=step / steps_per_hour)


def describe_step(step: int, start: datetime, steps_per_hour: float = 1.0) -> str:
    """Human label of a step's hour of week, e.g. ``"Tuesday 03:00"``."""
    t = step_time(step, start, steps_per_hour)
    return f"{_WEEKDAYS[t.weekday()]} {t:%H:%M}"
