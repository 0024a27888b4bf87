"""Spikes and drops: steps far above or below the hour-of-week baseline, by robust z."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from datetime import date, datetime
from typing import Final

import numpy as np
import numpy.typing as npt

from processing.baseline import (
    HOURS_PER_WEEK,
    HeatingTerm,
    as_matrix,
    median_at,
)
from processing.detector_config import DetectorConfig
from processing.events import (
    Anomaly,
    AnomalyEvents,
    EventRow,
    ReasonFn,
    _events_of_points,
    describe_step,
    event_steps,
    segment_index,
)
from processing.local_time import weekend_and_holiday
from processing.shifts import SegmentMeans

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def spikes_and_drops(
    x: npt.ArrayLike,
    z: npt.ArrayLike,
    *,
    start: datetime,
    steps_per_hour: int = 1,
    weeks: int = 4,
    config: DetectorConfig | None = None,
    meter_offset: int = 0,
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
    meter_offset : int
        Added to every anomaly's ``meter_index``: the row of ``x[0]`` in a larger matrix
        scanned in slices.

    Returns
    -------
    list of Anomaly
        Kinds ``"spike"`` and ``"drop"``; severity is the peak |z|.
    """
    cfg = config if config is not None else DetectorConfig()
    a = as_matrix(x, "x")
    zz = as_matrix(z, "z")
    if zz.shape != a.shape:
        raise ValueError(f"z: expected shape {a.shape}, got {zz.shape}")
    out: list[Anomaly] = []
    large = cfg.large_z > 0
    least = min(cfg.z_threshold, cfg.large_z) if large else cfg.z_threshold
    # The larger step of a pair is at least z_single/√2: those are read with the others,
    # and so are the steps of runs (``run_step_z``), in the same pass.
    up = min(least, cfg.z_single / math.sqrt(2.0))
    above, below = _beyond(zz, min(up, cfg.run_step_z) if cfg.run_step_z > 0 else up, least)
    run_points = above
    above, pairs = _with_pairs(zz, above, least, cfg.z_single)
    reason = _spike_reason(start, steps_per_hour, cfg.unit, level=cfg.reads_level)
    spikes = AnomalyEvents.empty("spike")
    mean = _mean_use(a) if large or cfg.run_step_z > 0 else np.zeros(0)
    for kind, points in (("spike", above), ("drop", below)):
        ev = _events_of_points(
            points, zz.shape, kind=kind, score=zz, observed=a, max_gap=cfg.max_gap
        )
        # One step over the persistent threshold is an ordinary peak; it must clear the
        # single-step threshold, several steps in a row need only the lower one.
        large_here = large and kind == "spike"
        # Pairs are spikes only: drops keep their thresholds.
        paired = _holds(ev, pairs, zz.shape[1]) if kind == "spike" else np.zeros(len(ev), bool)
        keep = _clears_z(ev, cfg) | paired | (large_here & (ev.severity > cfg.large_z))
        ev, paired = ev.select(keep), paired[keep]
        if not len(ev):
            continue
        expected = median_at(a, ev.meter_index, ev.peak, weeks=weeks, steps_per_hour=steps_per_hour)
        ev = dataclasses.replace(ev, expected=expected)
        if large_here:
            keep = _clears_z(ev, cfg) | paired
            rest = ~keep
            rows, peak = ev.meter_index[rest], ev.peak[rest]
            excess = a[rows, peak] - ev.expected[rest]
            keep[rest] = excess >= cfg.large_multiple * mean[rows]
            ev = ev.select(keep)
        if kind == "spike" and cfg.bridged_gaps:
            bridged = _bridged_peak(a, ev, cfg, weeks=weeks, steps_per_hour=steps_per_hour)
            ev = ev.select(~bridged)
        if kind == "spike":
            spikes = ev
        out.extend(
            dataclasses.replace(ev, meter_index=ev.meter_index + meter_offset).to_anomalies(reason)
        )
    if cfg.run_step_z > 0:
        runs = _large_runs(
            a, zz, run_points, spikes, cfg, mean=mean, weeks=weeks, steps_per_hour=steps_per_hour
        )
        runs = dataclasses.replace(runs, meter_index=runs.meter_index + meter_offset)
        out.extend(runs.to_anomalies(reason))
    return out


def _large_runs(
    a: FloatArray,
    z: FloatArray,
    points: npt.NDArray[np.intp],
    taken: AnomalyEvents,
    cfg: DetectorConfig,
    *,
    mean: FloatArray,
    weeks: int,
    steps_per_hour: int,
) -> AnomalyEvents:
    """Spikes of two steps or more in a row among ``points`` (flat indexes, ascending, of
    every step above ``run_step_z`` σ and maybe others): each step above its expected use by
    ``run_multiple`` × the meter's ``mean`` use per step, their z together (Σz/√k) above
    ``z_threshold``; none right after a gap (what it carries is the gap's), none that
    shares a step with an event of ``taken``."""
    n = a.shape[1]
    points = points[np.take(z, points) > cfg.run_step_z]
    ev = _events_of_points(points, z.shape, kind="spike", score=z, observed=a, min_steps=2)
    # The cheap tests first: most runs of a few steps at 3 σ are no spike together.
    event, steps = event_steps(ev)
    joint = np.bincount(event, weights=z[ev.meter_index[event], steps], minlength=len(ev))
    after_gap = (ev.start > 0) & np.isnan(a[ev.meter_index, np.maximum(ev.start - 1, 0)])
    ev = ev.select((joint / np.sqrt(ev.end - ev.start) > cfg.z_threshold) & ~after_gap)
    event, steps = event_steps(ev)
    rows = ev.meter_index[event]
    usual = median_at(a, rows, steps, weeks=weeks, steps_per_hour=steps_per_hour)
    # NaN without history: not above it.
    short = ~(a[rows, steps] - usual >= cfg.run_multiple * mean[rows])
    t_event, t_steps = event_steps(taken)
    held = np.isin(rows * n + steps, taken.meter_index[t_event] * n + t_steps)
    ev = ev.select(np.bincount(event, weights=short | held, minlength=len(ev)) == 0)
    expected = median_at(a, ev.meter_index, ev.peak, weeks=weeks, steps_per_hour=steps_per_hour)
    return dataclasses.replace(ev, expected=expected)


# Two steps in a row are a spike when their z together clear the single step's threshold:
# (z₁ + z₂)/√2 ≥ ``z_single``, Stouffer's sum of two. A step at ``z_single`` is a spike
# alone, so the smaller of a pair that needs the other is at least (√2 − 1) ``z_single``,
# the floor of both steps. A closing building's gas burning two night hours at 5.9 σ had
# cleared neither the single step's 8 σ nor two steps' 6 σ (bench.accuracy's year scans,
# seeds 300–315, twenty-first session: spikes 0.9499 → 0.9521, 8 seeds at 0.95 against 7;
# 22 spikes more, 15 of them right; precision 0.8083 → 0.8081. On seeds 316–331, not used
# to choose it: spikes 0.9401 → 0.9428, precision 0.8068 → 0.8063).
PAIR_FLOOR: Final = math.sqrt(2.0) - 1.0


def _with_pairs(
    z: FloatArray, above: npt.NDArray[np.intp], threshold: float, z_single: float
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Flat indexes (ascending) of the events' steps: those of ``above`` (every step above
    ``z_single``/√2, the larger of any pair) above ``threshold``, and both steps of every
    pair (see :data:`PAIR_FLOOR`); and each pair's first step."""
    n = z.shape[1]
    col = above % n
    # A pair starts at a step of ``above`` or at the step before one, within one meter.
    first = np.concatenate((above[col != n - 1], above[col != 0] - 1))
    one, two = np.take(z, first), np.take(z, first + 1)
    floor = PAIR_FLOOR * z_single
    pair = (one > floor) & (two > floor) & (one + two >= math.sqrt(2.0) * z_single)
    first = np.unique(first[pair])
    steps = above[np.take(z, above) > threshold]
    if first.size:
        steps = np.union1d(steps, np.concatenate((first, first + 1)))
    return steps, first


def _holds(ev: AnomalyEvents, flat: npt.NDArray[np.intp], n: int) -> BoolArray:
    """Which events hold one of the steps ``flat`` (flat indexes of a (meters, ``n``)
    matrix; each one in some event)."""
    held = np.zeros(len(ev), dtype=bool)
    if flat.size:
        starts = ev.meter_index * n + ev.start
        held[np.searchsorted(starts, flat, side="right") - 1] = True
    return held


def _clears_z(ev: AnomalyEvents, cfg: DetectorConfig) -> BoolArray:
    """Events of two steps or more above ``z_threshold``, or of any length above
    ``z_single``."""
    several = (ev.end - ev.start >= 2) & (ev.severity > cfg.z_threshold)
    return np.asarray(several | (ev.severity > cfg.z_single), dtype=bool)


def _mean_use(a: FloatArray, block_meters: int = 64) -> FloatArray:
    """Mean |use| per step of each row of ``a`` (NaN left out; 0 for a row of NaN), a block
    of meters at a time into one reused buffer: whole-matrix temporaries of a chunk cost
    more in page faults than the arithmetic."""
    m, n = a.shape
    out = np.zeros(m)
    buf = np.empty((min(block_meters, m), n))
    for i in range(0, m, block_meters):
        block = a[i : i + block_meters]
        part = buf[: len(block)]
        np.abs(block, out=part)
        gaps = np.isnan(part)
        np.copyto(part, 0.0, where=gaps)
        out[i : i + len(block)] = part.sum(axis=1) / np.maximum(n - gaps.sum(axis=1), 1)
    return out


def _beyond(
    z: FloatArray, up: float, down: float, block_meters: int = 64
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Flat indexes (ascending) of ``z > up`` and of ``z < −down``, a block of meters at a
    time: each block is read once for both, into one reused mask, without two masks of the
    whole matrix."""
    m, n = z.shape
    mask = np.empty((min(block_meters, m), n), dtype=bool)
    above, below = [], []
    for i in range(0, m, block_meters):
        zb = z[i : i + block_meters]
        part = mask[: len(zb)]
        above.append(np.flatnonzero(np.greater(zb, up, out=part)) + i * n)
        below.append(np.flatnonzero(np.less(zb, -down, out=part)) + i * n)
    none = np.zeros(0, dtype=np.intp)
    return (np.concatenate(above), np.concatenate(below)) if above else (none, none)


# Longest gap before a peak that is checked for bridging [steps]: outages of two or three
# days are common, and the reading after one carries all of it (a week covers them).
BRIDGE_LOOKBACK: Final = 168


def _bridged_peak(
    a: FloatArray, ev: AnomalyEvents, cfg: DetectorConfig, *, weeks: int, steps_per_hour: int
) -> BoolArray:
    """Spike events whose peak is the first reading after a gap of ``k`` steps and no longer
    clears the thresholds once the ``k`` missing steps' expected use is taken off it.

    A register's reading after a gap carries the energy of the whole gap (the rollups and
    :func:`~processing.consumption.interval_consumption` bridge it), so a lost reading
    makes the next one look twice as large; what exceeds the expected use of the peak and
    of each missing step (their own hour-of-week medians: a gap over the morning peak
    carries the morning's use) is still unexplained. The event's own z gives its scale:
    ``scale = (x − expected)/z``.
    """
    rows, peak = ev.meter_index, ev.peak
    # Only a peak right after a missing step can carry a gap: the week looked back over is
    # gathered for those alone (a few in a hundred).
    after_gap = np.flatnonzero((peak > 0) & np.isnan(a[rows, np.maximum(peak - 1, 0)]))
    back = peak[after_gap, np.newaxis] - np.arange(1, BRIDGE_LOOKBACK + 1)[np.newaxis, :]
    before = np.where(back >= 0, a[rows[after_gap, np.newaxis], np.maximum(back, 0)], 0.0)
    gap = np.zeros(len(ev), dtype=np.int64)
    gap[after_gap] = np.cumprod(np.isnan(before), axis=1).sum(axis=1)  # NaN steps before it
    event = np.repeat(np.arange(len(ev)), gap)
    step, _ = segment_index(peak - gap, peak)  # the missing steps of each event
    missing = median_at(a, rows[event], step, weeks=weeks, steps_per_hour=steps_per_hour)
    # A missing step without history is taken at the peak's expectation.
    missing = np.where(np.isnan(missing), ev.expected[event], missing)
    carried = np.bincount(event, weights=missing, minlength=len(ev))
    x = a[rows, peak]
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = (x - ev.expected) / ev.severity
        shared = (x - ev.expected - carried) / scale
    single = ev.end - ev.start < 2
    need = np.where(single, cfg.z_single, cfg.z_threshold)
    return np.asarray((gap > 0) & ~(shared > need), dtype=bool)


def _spike_reason(start: datetime, steps_per_hour: int, unit: str, *, level: bool) -> ReasonFn:
    # Naive wall-clock times repeat every week: each hour of week is written once per call
    # (formatting a datetime took half of the reason's time, thousands of spikes per chunk).
    week = HOURS_PER_WEEK * steps_per_hour
    labels: dict[int, str] = {}

    def reason(ev: EventRow) -> str:
        slot = ev.peak % week
        when = labels.get(slot)
        if when is None:
            when = labels[slot] = describe_step(slot, start, steps_per_hour)
        vals = f"expected {ev.expected:.3g} {unit}, saw {ev.observed:.3g} {unit}"
        if level and math.isfinite(ev.expected):
            off = ev.observed - ev.expected
            side = "above" if off > 0 else "below"
            return f"Reading {abs(off):.3g} {unit} {side} the usual for {when} ({vals})"
        if ev.expected > 0 and math.isfinite(ev.expected):
            ratio = ev.observed / ev.expected
            size = f"{ratio:.1f}× the usual" if ratio >= 1 else f"{ratio:.0%} of the usual"
            return f"Consumption {size} for {when} ({vals})"
        return f"Consumption unusual for {when} ({vals}, robust z {ev.severity:.1f})"

    return reason


def without_holiday_drops(
    found: list[Anomaly], start: datetime, steps_per_hour: int, holidays: Sequence[date]
) -> list[Anomaly]:
    """``found`` (``start`` local midnight) without the drops that begin on a public
    holiday: the hour-of-week baseline expects a working day there, and a building that
    closes is closed. (All 37 false drops of schools and offices on the year scans of seeds
    300–315 fell on 15 August, Whit Monday or Christmas, sixteenth session.)"""
    if not holidays:
        return found
    day = np.asarray([an.start // (24 * steps_per_hour) for an in found], dtype=np.int64)
    _, holiday = weekend_and_holiday(day, start.date(), holidays)
    return [
        an for an, h in zip(found, holiday.tolist(), strict=True) if not (h and an.kind == "drop")
    ]


# A closing building's heating starts after a weekend or a holiday with a boost that grows
# with the cold it was left to (and, under optimum-start control, earlier): the first cold
# Monday of the season reads as a spike against four milder Mondays. Its window: from
# ``RESTART_EARLY_HOURS`` before the open day's first open hour to ``RESTART_HOURS`` after
# it [h].
RESTART_EARLY_HOURS: Final = 3
RESTART_HOURS: Final = 4


def without_restart_boosts(
    found: list[Anomaly],
    *,
    heating: HeatingTerm,
    closed_day: BoolArray,
    day_hours: tuple[int, int],
    steps_per_hour: int,
    meter_offset: int = 0,
) -> list[Anomaly]:
    """``found`` without the spikes that are a closing building's heating restart.

    A spike is a restart when it starts within the restart window of an open day after a
    closed day (``closed_day``, one per day of the scan; see :data:`RESTART_HOURS`), and its
    excess over the expected use is at most what the building missed while closed: its
    degree-hour slope (``heating.slope``) times the degree-hours from the end of the last
    open day's open hours (``day_hours[1]``) to the spike. A burn at 2 am on a Monday, or
    a restart far larger than the cold explains, is still a spike. (Year scans, twenty-third
    session: of the false spikes of closing gas and heat meters, 117 of 269 were on Monday
    mornings between 6 and 11, against 9 right ones. This drops 29 / 36 / 52 spikes on
    seeds 300–315 / 316–331 / 332–347, mean precision +0.0018 / +0.0024 / +0.0032, no
    label lost; the window from midnight lost 4 night burns.)
    """
    spikes = [i for i, an in enumerate(found) if an.kind == "spike"]
    if not spikes:
        return found
    per_day = 24 * steps_per_hour
    ev = [found[i] for i in spikes]
    rows = np.asarray([an.meter_index for an in ev], dtype=np.int64) - meter_offset
    at = np.asarray([an.start for an in ev], dtype=np.int64)
    day, step = np.divmod(at, per_day)
    open_at = day_hours[0] * steps_per_hour
    window = (step >= open_at - RESTART_EARLY_HOURS * steps_per_hour) & (
        step < open_at + RESTART_HOURS * steps_per_hour
    )
    after_closed = (day >= 1) & ~closed_day[day] & closed_day[np.maximum(day - 1, 0)]
    candidate = np.flatnonzero(window & after_closed)
    if candidate.size == 0:
        return found
    # The last open day before each candidate's day (−1: none in the data).
    days = np.arange(closed_day.size)
    last_open = np.maximum.accumulate(np.where(closed_day, -1, days))
    before = last_open[day[candidate] - 1]
    since = np.maximum((before + 1) * per_day - (24 - day_hours[1]) * steps_per_hour, 0)
    # Degree-hours of each meter's own base over [since, start).
    dh = SegmentMeans(heating.degree_hours).sums(
        heating.base_index[rows[candidate]], since, at[candidate]
    )
    missed = heating.slope[rows[candidate]] * dh
    expected = np.asarray([ev[i].expected for i in candidate.tolist()], dtype=np.float64)
    observed = np.asarray([ev[i].observed for i in candidate.tolist()], dtype=np.float64)
    excess = observed - np.nan_to_num(expected)
    drop = {spikes[i] for i in candidate[excess <= missed].tolist()}
    return [an for i, an in enumerate(found) if i not in drop]
