"""Data-quality rules over (meters, steps): negatives, outages, zero runs, flatlines, jumps, resets.

Each rule returns :class:`~processing.events.AnomalyEvents`; masks are available for the caller.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from processing.baseline import HOURS_PER_WEEK, median_at, nan_median
from processing.consumption import interval_consumption
from processing.events import (
    AnomalyEvents,
    _events_of_points,
    _point_runs,
    events_from_mask,
    mask_runs,
    segment_index,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
# A zero run counts where the meter's median over its four-week block is above this many
# register quanta per step: an idle summer gas register with a few draws is not a fault.
ZERO_RUN_USUAL_QUANTA = 1.0
# Share of a meter's readings at zero below which zero is not one of its usual readings.
ZERO_RARE_SHARE = 0.01
# Meters per block of the matrix-wide rules: a block's buffers stay in cache and are reused.
DEFAULT_BLOCK_METERS = 25
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
    outage_false_runs : float
        Chance runs of the meter's own transmission losses accepted per meter and
        :data:`FALSE_RUN_SPAN` steps (a year of hours): a lossy link needs a longer gap
        before it is an outage (see :func:`outages`) [-]. At 0.1 a city's meters made a
        three-hour "outage" of chance losses every ten meter-years, 10–20 false a seed in
        bench.accuracy; at 0.03 (eleventh session, seeds 300–303) precision +0.010 /
        +0.006 / +0.004 / +0.004, every outage label still found (0.01: one lost on 301).
    zero_steps : int
        Run of exact zeros always long enough to report [steps] (24 h at hourly steps).
    zero_min_steps, zero_false_runs : int, float
        A shorter run, down to ``zero_min_steps``, is reported when the meter's own zero
        runs make one that long unlikely: at most ``zero_false_runs`` such runs by chance
        a year (as ``outage_false_runs``; 0: ``zero_steps`` only). A home's
        register never reads zero for hours (the fridge, the standby), a gas register
        idles at zero a few hours most nights.
    zero_open_share : float
        With the hours a building that closes is open (``quality_scan(open_hours=...)``),
        a zero run must hold at least this share of its steps in them [-]: a school's gas
        on a mild weekend, Friday evening to Monday morning, is the building idle, not a
        register stopped (bench.accuracy, eleventh session, seeds 300–303: 3–21 false zero
        runs a seed gone, precision +0.005 / +0.011 / +0.002 / +0.007, every zero-run
        label still found; the same at 0.25, a label lost on 300–302 at 0.5).
    flatline_steps : int
        Shortest run of (near-)constant non-zero values reported as a stuck sensor [steps]
        (6 h at hourly steps).
    flatline_rel_tol : float
        Spread allowed within a flat window, relative to its level [-]: reading-time jitter
        of ±30 s makes a constant hourly flow read ±0.8 % per step.
    flatline_quanta : float
        Spread allowed within a flat window in register quanta (rounding) [-].
    flatline_contrast : float
        A flat window counts only when the meter's typical spread over the same length,
        in the surrounding four weeks, is this many times the allowed spread [-]: a gas
        register idling in summer or a thermostat-held room is flat by nature.
    flatline_day_steps : int
        A second, longer window, tested alike against the meter's own windows of that
        length (0: off) [steps]. A summer gas home reads 3–4 quanta an hour for hours on end
        as a stuck register does, so its 6-step windows are flat by nature; over a day its
        hot-water draws spread it out, and a stuck one stays flat.
    flatline_merge_gap : int
        Flat runs separated by at most this many steps (a gap and the bridged reading
        after it) form one event [steps].
    flatline_event_steps : int
        Shortest merged flat event reported [steps] (0: ``flatline_steps``). Gas and heat
        registers in steady flow read flat for 6–10 h most days; a stuck one stays flat.
    flatline_index_tol : float
        A flat event must hold ``flatline_event_steps`` steps in a row (``flatline_steps``
        when that is 0) over which the register's index, the running sum of the use, stays
        on a straight line within this share of a step's use plus ``flatline_quanta`` quanta
        (0: off) [-]. A stuck sensor feeds the register one rate, so only rounding and the
        reading times (±30 s in an hour: 1/60 of an hour's use from one reading to the next)
        move the index off its line; steady real use within ``flatline_rel_tol`` an hour
        wanders off it. A gap's catch-up reading puts the index back on the line, so the
        test spans gaps (bench.accuracy, twelfth session, seeds 300–303: precision +0.029 /
        +0.028 / +0.025 / +0.026, false flat events 54 → 14 on 300, every flatline label
        still found).
    flatline_min_quanta : float
        A flat window's level must be at least this many register quanta: a register
        idling at one quantum per step, or at one and two by turns, reads "flat" by
        rounding alone [-]. (3 until the seventh session; with the day-long windows and the
        idle level no longer spared, 1.5 found 0.03–0.08 more stuck registers of summer gas
        homes at the same precision and false alarms: bench.accuracy.)
    flatline_day_min_quanta : float
        The same for the day-long windows (``flatline_day_steps``) [-]: a day of a home's
        own use is never within a quantum an hour; a flow stuck at half a quantum to one
        and a half is, all day. Year scans of seeds 300–315 (twentieth session): 2 more
        flatlines found, precision −0.0001, none more on the clean twins (0.25: 2 more false
        on the seeds, none more found).
    flatline_habit_days, flatline_habit_need : int
        A flat event is the meter's routine, not a fault, when its first hours were as flat
        at the same level on at least ``flatline_habit_need`` of the ``flatline_habit_days``
        previous days (0: off) [days].
    flatline_peer_share, flatline_peer_need : float, int
        A flat episode is the meter's way when at least ``flatline_peer_need`` other flat
        episodes of the meter in the window, at the same level and at least
        ``flatline_peer_share`` as long, look just like it (0: off) [-]: a home's boiler
        holding a setback on mild nights is flat for 10–15 h at the same few kWh night after
        night, a stuck register once.
    flatline_busy_steps, flatline_busy_ratio : int, float
        A flat event with at least ``flatline_busy_steps`` steps on open days (not
        ``closed``, see :func:`quality_scan`) at which the meter usually reads
        ``flatline_busy_ratio`` × its flat level or more (their hour-of-week median over
        the four weeks before, above the flat tolerance) is a stuck register, whatever
        the peer and habit rules say (0: off) [steps], [-]. A school stuck at its Sunday
        level through Monday and Tuesday looks like one more weekend to them (bench.accuracy,
        tenth session, seeds 300–303: flatlines +0.018 / +0.028 / 0 / +0.018, precision
        unchanged; with closed days counted, bridge days and weekends after a colder
        month read as busy: precision 0 to −0.005).
    flatline_exact : bool
        Sensors that report the value itself (temperatures) repeat it exactly when stuck:
        use :func:`repeat_runs` instead of the near-flat test.
    flatline_false_runs : float
        With ``flatline_exact``: chance runs accepted per meter and :data:`FALSE_RUN_SPAN`
        steps [-].
    flatline_spread_gaps : bool
        On a register whose first reading after a gap carries the gap's energy
        (``quality_scan(bridged=True)``), a gap of up to ``flatline_merge_gap`` steps
        inside a flat run takes, with the reading after it, that reading's share of their
        steps (:func:`_spread_catch_up`). Else a stuck flow's lost reading breaks its run
        with a double step, and a meter losing 3 % of its readings has a gap in half its
        day-long windows (``flatline_day_steps``). Year scans of seeds 300–315 (twentieth
        session): flatlines 0.938 → 0.953 (20 labels found, 2 lost), mean precision
        −0.001, 13 more flatlines on the 16 clean twins (292); schedule −0.003, one label,
        a night use ``fleet.shared_nights`` now calls the fleet's (night uses within a
        stuck register are the flatline's, and the chance of a cluster it weighs came down
        with them). Off for offices' and schools' electricity
        (``pipeline.QUALITY_BY_KIND``): their nights and weekends idle flat by nature, and
        pieces joined over a lost reading no longer match the meter's other idle runs
        (``flatline_peer_share``); precision −0.006 with them.
    check_negative : bool
        Report negative values; off for temperatures, which have no natural zero (an
        outdoor sensor reads below zero every frost).
    max_gap : int
        Runs separated by at most this many steps are merged [steps].
    """

    outage_steps: int = 3
    outage_false_runs: float = 0.03
    zero_steps: int = 24
    zero_min_steps: int = 3
    zero_false_runs: float = 0.1
    zero_open_share: float = 0.1
    flatline_steps: int = 6
    flatline_rel_tol: float = 0.04
    flatline_quanta: float = 1.0
    flatline_contrast: float = 3.0
    flatline_day_steps: int = 24
    flatline_merge_gap: int = 2
    flatline_event_steps: int = 10
    flatline_index_tol: float = 1.0 / 60.0
    flatline_min_quanta: float = 1.5
    flatline_day_min_quanta: float = 0.5
    flatline_habit_days: int = 14
    flatline_habit_need: int = 3
    flatline_peer_share: float = 0.7
    flatline_peer_need: int = 3
    flatline_busy_steps: int = 18
    flatline_busy_ratio: float = 2.0
    flatline_exact: bool = False
    flatline_false_runs: float = 0.02
    flatline_spread_gaps: bool = True
    check_negative: bool = True
    max_gap: int = 0


def negative(x: npt.ArrayLike) -> AnomalyEvents:
    """Steps with negative consumption (a wrong sign or a misread reset)."""
    a = _as_matrix(x, "x")
    with np.errstate(invalid="ignore"):
        mask = a < 0
    return events_from_mask(mask, kind="negative", observed=a, expected=0.0, aggregate="sum")


# The chance runs a rule accepts are counted per this many steps (a year of hourly readings),
# however long the scanned window: the service scans eight weeks every day, and a budget per
# window let it report six times as many chance outages over a year as one scan of the year
# (bench.accuracy's service replay, eighth session: 114 false outages against 21, seed 300).
FALSE_RUN_SPAN: Final = 8760


def _unlikely_run(rate: FloatArray, false_runs: float) -> FloatArray:
    """Shortest ``L`` whose chance runs, ``n·rate^L`` in ``n`` steps of independent events of
    probability ``rate``, number at most ``false_runs`` per :data:`FALSE_RUN_SPAN` steps."""
    return np.asarray(np.ceil(np.log(false_runs / FALSE_RUN_SPAN) / np.log(rate)), dtype=np.float64)


def _chance_run_length(
    points: npt.NDArray[np.intp], shape: tuple[int, int], false_runs: float
) -> FloatArray:
    """Per meter, the shortest run of the flagged steps ``points`` (flat indexes, ascending)
    that its own runs, started at a rate ``g`` per step (counted from run starts, so one long
    run does not raise it), leave by chance at most ``false_runs`` times (see
    :func:`outages`)."""
    m, n = shape
    starts = np.bincount(_point_runs(points, n)[0], minlength=m)
    g = np.clip(starts / max(n, 1), 1e-6, 0.5)
    return _unlikely_run(g, false_runs)


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
    a = _as_matrix(x, "x")
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
    shortest = np.maximum(min_steps, _chance_run_length(gaps, shape, false_runs))
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
        _chance_run_length(zero, shape, cfg.zero_false_runs), cfg.zero_min_steps, cfg.zero_steps
    )
    # Runs of zeros are far from independent where zero is a usual reading (a boiler off
    # on mild afternoons, for hours): only meters that hardly ever read zero get the rate.
    share = np.bincount(zero // n, minlength=m) / max(n, 1)
    shortest = np.where(share < ZERO_RARE_SHARE, shortest, cfg.zero_steps)
    return ev.select(ev.end - ev.start >= shortest[ev.meter_index])


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


# Equal neighbour pairs of a run counted towards a sensor's chance of repeating itself once
# more: a stuck sensor's own run of days would otherwise teach it that long runs are common.
RUN_CENSOR_PAIRS: Final = 12


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
    counted up to :data:`RUN_CENSOR_PAIRS` pairs: a run would make itself likely);
    ``L`` identical values then start by chance about ``n·g·r^(L−2)`` times in ``n``
    steps, and the shortest run reported is the ``L`` (at least ``min_steps``) that makes
    this ``false_runs`` per :data:`FALSE_RUN_SPAN` steps [-]. A room held by its
    thermostat, once it repeats, repeats for hours: its share of equal neighbours over
    all steps made runs of 7–12 h look impossible by chance (bench.accuracy, twelfth
    session, seeds 300–303: 7–14 false thermometer flatlines a seed → 2–4). Gaps of at
    most ``max_gap`` steps between equal readings do not end a run. Severity is the run
    length [steps].
    """
    a = _as_matrix(x, "x")
    if min_steps < 2:
        raise ValueError(f"min_steps: must be >= 2, got {min_steps}")
    if max_gap > 0:
        a = _bridged_repeats(a, max_gap)
    n = a.shape[1]
    same = a[:, 1:] == a[:, :-1]
    rows, starts, ends = mask_runs(same)
    pairs = ends - starts  # equal neighbour pairs; k of them are k+1 identical values
    more = np.minimum(pairs - 1, RUN_CENSOR_PAIRS).astype(np.float64)
    ended = (pairs - 1 < RUN_CENSOR_PAIRS).astype(np.float64)
    meters = a.shape[0]
    count = np.bincount(rows, minlength=meters)[rows] - 1.0
    more_others = np.bincount(rows, weights=more, minlength=meters)[rows] - more
    ended_others = np.bincount(rows, weights=ended, minlength=meters)[rows] - ended
    r = np.clip(more_others / np.maximum(more_others + ended_others, 1.0), 1e-3, 0.99)
    g = np.clip(count / max(n, 1), 1e-9, 1.0)
    # Runs start at g per step: ``false_runs / g`` runs go on ``continued`` steps.
    continued = _unlikely_run(r, false_runs / g)
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


def register_quantum(x: npt.ArrayLike, *, block_meters: int = DEFAULT_BLOCK_METERS) -> FloatArray:
    """Resolution of each meter's readings: the smallest non-zero step between values.

    Interval consumption of a register is a difference of quantised indexes, so its values
    (and their differences) are multiples of the register's resolution [unit of x].
    Returns shape (meters,); 0 for a meter whose values never change.
    """
    a = _as_matrix(x, "x")
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
    over the ``weeks`` trailing weeks (as :func:`hour_of_week_baseline`, NaN with fewer than
    2 valid lags), else the NaN-ignoring mean over the ``period``-step block of the start.

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
        min_level_quanta=min_level_quanta,
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
    return r_idx[keep].astype(np.int64), c_idx[keep].astype(np.int64), near_rows


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
) -> BoolArray:
    """Steps in a window of ``min_steps`` whose spread stays within rounding and jitter.

    Parameters
    ----------
    x : array_like, shape (meters, steps)
        Consumption per step [unit] (or a sensor reading).
    min_steps : int
        Window length [steps].
    quantum : array_like, shape (meters,) or scalar
        Register or display resolution [unit], e.g. from :func:`register_quantum`.
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
    a = _as_matrix(x, "x")
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
        )
    return mask


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


def _event_steps(ev: AnomalyEvents, stop: IntArray | None = None) -> tuple[IntArray, IntArray]:
    """Every step of every event (up to ``stop``, default its end), flattened: the event's
    index and the step."""
    end = ev.end if stop is None else stop
    steps, _ = segment_index(ev.start, end)
    return np.repeat(np.arange(len(ev)), end - ev.start), steps


def _flagged_count(ev: AnomalyEvents, event: IntArray, flags: BoolArray) -> FloatArray:
    """How many of each event's steps are flagged (``event``, ``flags`` per flattened step,
    from :func:`_event_steps`)."""
    count = np.bincount(event, weights=flags.astype(np.float64), minlength=len(ev))
    return np.asarray(count, dtype=np.float64)


def _flagged_share(ev: AnomalyEvents, event: IntArray, flags: BoolArray) -> FloatArray:
    """The share of each event's steps that are flagged (see :func:`_flagged_count`)."""
    share: FloatArray = _flagged_count(ev, event, flags) / np.maximum(ev.end - ev.start, 1)
    return share


def _usually_zero_share(a: FloatArray, ev: AnomalyEvents, weeks: int = 4) -> FloatArray:
    """Share of each event's steps at which the meter read zero in at least half of the
    ``weeks`` trailing weeks at the same hour of week (NaN lags ignored; 0 with none)."""
    event, steps = _event_steps(ev)
    rows = ev.meter_index[event]
    lags = steps[:, np.newaxis] - HOURS_PER_WEEK * np.arange(1, weeks + 1)[np.newaxis, :]
    valid = lags >= 0
    vals = np.where(valid, a[rows[:, np.newaxis], np.maximum(lags, 0)], np.nan)
    known = ~np.isnan(vals)
    zero = (vals == 0.0).sum(axis=1)
    usual = (known.sum(axis=1) > 0) & (2 * zero >= known.sum(axis=1))
    return _flagged_share(ev, event, usual)


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
    event, steps = _event_steps(ev)
    rows = ev.meter_index[event]
    usual = median_at(a, rows, steps)  # NaN without history: never busy
    level = ev.observed[event]
    tol = _flat_tolerance(q, rows, level, cfg, meters=a.shape[0])
    busy = (usual >= cfg.flatline_busy_ratio * level + tol) & ~closed[steps]
    return np.asarray(_flagged_count(ev, event, busy) >= cfg.flatline_busy_steps, dtype=bool)


# Flat runs this close are pieces of one episode (a value crossing the tolerance and back).
SAME_EPISODE_STEPS = 6
# Two flat episodes are at the same level within this many times the flat tolerance.
PEER_LEVEL_TOLERANCES = 2.0


def _recurring_flat(
    ev: AnomalyEvents, q: npt.ArrayLike, cfg: QualityConfig, *, meters: int
) -> BoolArray:
    """Flat events of meters with ``flatline_peer_need`` other flat episodes as long (by
    ``flatline_peer_share``) at the same level: the meter's own way, not a stuck register.
    Every flat run of the window counts, before the shortest are dropped; pairs are formed
    within each meter only (events are sorted by meter)."""
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
    return np.asarray(peers >= cfg.flatline_peer_need, dtype=bool)


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
    event, starts = _event_steps(ev, last)
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
    (see :func:`near_flat_mask`; with ``bridged``, of its short gaps spread by
    :func:`_spread_catch_up`), in one pass over blocks of meters.

    Each block is compared while it is in cache, into one reused mask, and only the
    flagged steps' indexes are kept: four masks of the whole matrix cost more in memory
    traffic and page faults than the comparisons.
    """
    m, n = a.shape
    near_flat = not cfg.flatline_exact
    if near_flat and cfg.flatline_steps < 2:
        raise ValueError(f"min_steps: must be >= 2, got {cfg.flatline_steps}")
    qq = np.broadcast_to(np.asarray(q, dtype=np.float64).reshape(-1, 1), (m, 1))
    rows = min(block_meters, m)
    work = _FlatWorkspace(rows, n)
    mask_buf = np.empty(rows * n, dtype=bool)
    # Reused as the mask is: a new block-sized array each block costs its page faults.
    spread_buf = np.empty(rows * n) if bridged and near_flat else None
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
        if near_flat:
            if spread_buf is not None:  # bridged
                xb = _spread_catch_up(
                    xb, cfg.flatline_merge_gap, cfg.flatline_quanta * qq[i:j],
                    cfg.flatline_rel_tol, gaps=found[2][-1] - i * n,
                    out=spread_buf[: (j - i) * n].reshape(j - i, n),
                )  # fmt: skip
            _near_flat_block(
                xb,
                qq[i:j],
                mask,
                work,
                min_steps=cfg.flatline_steps,
                rel_tol=cfg.flatline_rel_tol,
                quanta=cfg.flatline_quanta,
                contrast=cfg.flatline_contrast,
                period=4 * HOURS_PER_WEEK,
                min_level_quanta=cfg.flatline_min_quanta,
                day_min_level_quanta=cfg.flatline_day_min_quanta,
                day_steps=cfg.flatline_day_steps,
            )
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
    a = _as_matrix(consumption, "consumption")
    q = register_quantum(a) if quantum is None else np.asarray(quantum, dtype=np.float64)
    points = _flagged_points(a, q, cfg, bridged=bridged and cfg.flatline_spread_gaps)
    if cfg.flatline_exact:
        flat_ev = repeat_runs(
            a,
            min_steps=cfg.flatline_steps,
            false_runs=cfg.flatline_false_runs,
            max_gap=cfg.flatline_merge_gap,
        )
    else:
        flat_ev = _events_of_points(
            points.flat,
            a.shape,
            kind="flatline",
            observed=a,
            aggregate="peak",
            max_gap=cfg.flatline_merge_gap,
        )
        busy = np.zeros(len(flat_ev), dtype=bool)
        if closed is not None and cfg.flatline_busy_steps > 0 and len(flat_ev):
            busy = _busy_flat(a, flat_ev, q, cfg, np.asarray(closed, dtype=bool))
        if cfg.flatline_peer_need > 0 and len(flat_ev):
            keep = busy | ~_recurring_flat(flat_ev, q, cfg, meters=a.shape[0])
            flat_ev, busy = flat_ev.select(keep), busy[keep]
        if cfg.flatline_event_steps > 0 and len(flat_ev):
            keep = flat_ev.end - flat_ev.start >= cfg.flatline_event_steps
            flat_ev, busy = flat_ev.select(keep), busy[keep]
        if len(flat_ev) and cfg.flatline_index_tol > 0:
            keep = _straight_index(a, flat_ev, q, cfg)
            flat_ev, busy = flat_ev.select(keep), busy[keep]
        if len(flat_ev) and cfg.flatline_habit_need > 0:
            flat_ev = flat_ev.select(busy | ~_habitually_flat(a, flat_ev, q, cfg))
    zeros = _zero_run_events(points.zero, a.shape, cfg)
    if len(zeros):
        usual = _block_median(a, zeros.meter_index, zeros.start, 4 * HOURS_PER_WEEK)
        quanta = np.broadcast_to(q, (a.shape[0],))[zeros.meter_index]
        zeros = zeros.select(usual > ZERO_RUN_USUAL_QUANTA * quanta)
    if len(zeros):
        # An office heated only on weekdays reads zero every weekend: not a fault.
        zeros = zeros.select(_usually_zero_share(a, zeros) < 0.5)
    if len(zeros) and open_hours is not None and cfg.zero_open_share > 0:
        event, steps = _event_steps(zeros)
        opened = np.asarray(open_hours, dtype=bool)[steps]
        zeros = zeros.select(_flagged_share(zeros, event, opened) >= cfg.zero_open_share)
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
