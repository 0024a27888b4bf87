"""What a fleet of meters does together is not a fault of one building.

A building's fault strikes its own meters at its own time; the weather the model missed,
a school holiday or the heating season starting strike every building of a kind at once.
The level shifts compare each meter's day with the departure common to its kind that day
(:func:`remove_common_departure`), and events that start together on improbably many
meters of a kind are the fleet's, not reported as faults (:func:`common_cause`; night use
over a cold spell, begun a night apart: :func:`shared_nights`). Both are taken within
groups of meters that respond to the weather alike (:func:`heating_groups`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.stats import poisson

from processing.baseline import MAD_TO_SIGMA, nan_median, nan_median_mad
from processing.events import DAY_KINDS, Anomaly

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]
# Fewer meters of a kind than this: their median is one building's day, not a fleet's.
MIN_FLEET_METERS: Final = 10


def _relative(residual: FloatArray, expected: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        rel: FloatArray = np.divide(residual, expected)
    np.copyto(rel, np.nan, where=~(expected > 0))
    return rel


def _common_of_relative(rel: FloatArray) -> FloatArray:
    enough = np.count_nonzero(~np.isnan(rel), axis=0) >= MIN_FLEET_METERS
    out = np.full(rel.shape[1], np.nan)
    if enough.any():
        out[enough] = nan_median(np.ascontiguousarray(rel[:, enough].T))
    return out


def common_departure(residual: npt.ArrayLike, expected: npt.ArrayLike) -> FloatArray:
    """The relative departure from the expected use shared by the meters each day: the
    median of ``residual / expected``, shape (days,); NaN for a day with fewer than
    :data:`MIN_FLEET_METERS` meters expecting some use."""
    r = np.asarray(residual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    return _common_of_relative(_relative(r, e))


# Share of a meter's use that follows the cold from which it heats (see heating_groups).
HEATED_SHARE: Final = 0.2
# The heated meters of a kind that also has unheated ones (homes' electricity) are parted in
# this many groups by that share: an electrically heated home whose heating is 55 % of its
# use moves twice as far in a cold week as one at 30 %, and one median for both misses each
# (bench.accuracy, ninth session, seeds 300-303: level shifts +0 / +0.020 / +0.032 / +0,
# precision +0.014 / +0.002 / +0.006 / +0.011; two or four parts gained less; gas homes,
# all heated, parted alike lost 0.01-0.03 of precision). Each part holds at least
# ``HEATED_PART_METERS``: in the service's eight weeks fewer homes heat, and parts of ten
# cost seed 303's replay two level shifts (twenty: one).
HEATED_PARTS: Final = 3
HEATED_PART_METERS: Final = 2 * MIN_FLEET_METERS


def heating_groups(expected: npt.ArrayLike, degree_days: npt.ArrayLike) -> list[IntArray]:
    """Rows of the meters whose expected days follow the cold, a :data:`HEATED_SHARE` of
    their use or more (least-squares slope on ``degree_days`` × their mean over their mean),
    in up to :data:`HEATED_PARTS` groups by that share (each of at least
    :data:`HEATED_PART_METERS`), and last the rows of the others; all rows in one group when
    the heated or the others would be fewer than :data:`MIN_FLEET_METERS`.

    A warm week lowers the electricity of electrically heated homes and not that of homes
    heated by gas: one median for both misses each, and the heated homes' falls, starting
    together, hide a gas-heated home's own fall that day as a common cause. The departure
    and the common causes are taken within each group.
    """
    e = np.asarray(expected, dtype=np.float64)
    dd = np.asarray(degree_days, dtype=np.float64)
    ok = ~np.isnan(e) & ~np.isnan(dd)[np.newaxis, :]
    n = np.maximum(ok.sum(axis=1), 1)
    x = np.where(ok, dd[np.newaxis, :], 0.0)
    y = np.where(ok, e, 0.0)
    mx, my = x.sum(axis=1) / n, y.sum(axis=1) / n
    dx = np.where(ok, x - mx[:, np.newaxis], 0.0)
    sxy = (dx * (y - my[:, np.newaxis])).sum(axis=1)
    sxx = (dx * dx).sum(axis=1)
    slope = np.divide(sxy, sxx, out=np.zeros_like(sxy), where=sxx > 0)
    share = np.divide(slope * mx, my, out=np.zeros_like(my), where=my > 0)
    heated = share >= HEATED_SHARE
    if min(heated.sum(), (~heated).sum()) < MIN_FLEET_METERS:
        return [np.arange(e.shape[0])]  # a handful apart would make no fleet
    rows = np.flatnonzero(heated)
    parts = max(1, min(HEATED_PARTS, rows.size // HEATED_PART_METERS))
    by_share = rows[np.argsort(share[rows], kind="stable")]
    return [np.sort(part) for part in np.array_split(by_share, parts)] + [np.flatnonzero(~heated)]


# What part of a group does together beyond its median: in a dull September week the homes
# that heat at that time of year use 30–70 % more and the others nothing, the group's median
# 6 % (seed 302's electrically heated homes). One day pattern, each meter following it by its
# own loading (bench.accuracy, eighth session, seeds 300–303: level shifts +0.015 to +0.048,
# found within 2 days +0 to +0.019, precision +0.005 to +0.035; two patterns: precision
# +0.012–0.022 more, one shift fewer on two seeds, three fewer found early on one; three:
# up to four shifts fewer).
COMMON_PATTERNS: Final = 1
# A meter's departure is its own beyond this many of its σ (a fault), the fleet's within.
PATTERN_CLIP_SIGMA: Final = 3.0
_SUBSPACE_STEPS: Final = 12  # block power iterations: the leading patterns stand well apart
# A fleet's patterns show as well in a few hundred of its meters as in thousands; the scan
# runs this between its threaded passes, where every millisecond is the whole chunk's.
PATTERN_METERS: Final = 256


def remove_common_departure(
    residual: npt.ArrayLike, expected: npt.ArrayLike, *, patterns: int | None = None
) -> tuple[FloatArray, FloatArray]:
    """Daily residuals and expected use with each meter's share of the fleet's common
    departure moved from the one to the other.

    Each meter follows the fleet to its own degree: its loading ``β`` in [0, 1] is the
    least-squares slope of its relative residuals on the common departure (a home's gas
    follows a mild week closely, a gym's intermittent boiler hardly). ``expected ·
    (1 + β·c)`` is what the meter would have used had it done what its fleet did; the
    residual is what it did beyond that. Days without a fleet are left as they are. Then
    the ``patterns`` (default :data:`COMMON_PATTERNS`) leading day patterns of what is
    left go the same way, each meter by its own loadings (:func:`common_patterns`).
    """
    r = np.asarray(residual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    own = _relative(r, e)
    c = np.nan_to_num(_common_of_relative(own))
    # ``own`` is rewritten for each use below: this runs between the threaded passes of
    # the scan, and a fresh (meters, days) array costs as much in page faults as its use.
    gaps = np.isnan(own)
    np.copyto(own, 0.0, where=gaps)
    sxy = own @ c
    np.logical_not(gaps, out=own)
    sxx = own @ (c * c)
    beta = np.clip(np.divide(sxy, sxx, out=np.zeros_like(sxy), where=sxx > 0), 0.0, 1.0)
    shared = np.maximum(e, 0.0)
    np.multiply(np.multiply(beta[:, np.newaxis], c[np.newaxis, :], out=own), shared, out=shared)
    r, e = np.subtract(r, shared, out=own), np.add(e, shared, out=shared)
    k = COMMON_PATTERNS if patterns is None else patterns
    if k < 1 or r.shape[0] < MIN_FLEET_METERS:
        return r, e
    rel = _relative(r, e)
    days = common_patterns(rel, k)
    if not days.shape[0]:
        return r, e
    loadings = _pattern_loadings(rel, days)
    np.multiply(_dot(loadings, days), np.maximum(e, 0.0), out=rel)  # the shared part, rewritten
    return np.subtract(r, rel, out=r), np.add(e, rel, out=e)


def _dot(a: FloatArray, b: FloatArray) -> FloatArray:
    """``a @ b`` for a thin ``b`` in NumPy's own loop, leaving OpenBLAS's threads asleep:
    woken for a few milliseconds' work, they compete with the scan's own threads on a
    two-core machine (this step's cost in bench.processing's threaded scan was two to three
    times its own with them, about its own with ``OPENBLAS_NUM_THREADS=1``)."""
    out: FloatArray = np.einsum("ij,jk->ik", a, b)
    return out


def _orthonormal(a: FloatArray) -> FloatArray:
    """The columns of ``a`` made orthonormal, in order (Gram–Schmidt: a few columns)."""
    q = a.copy()
    for j in range(q.shape[1]):
        q[:, j] -= q[:, :j] @ (q[:, :j].T @ q[:, j]) if j else 0.0
        q[:, j] /= max(float(np.sqrt(np.einsum("d,d->", q[:, j], q[:, j]))), 1e-300)
    return q


def common_patterns(relative: npt.ArrayLike, k: int) -> FloatArray:
    """The ``k`` leading day patterns of a group's relative departures, shape (k, days),
    orthonormal.

    Each meter's departures are centred on their median, scaled by their robust σ and
    clipped at :data:`PATTERN_CLIP_SIGMA` (gaps 0; at most :data:`PATTERN_METERS` meters,
    evenly spread over the rows): every meter weighs alike, and one
    meter's fault, extreme for it, cannot become a pattern of its own; what many meters do
    by a σ or two can. The patterns are the leading right singular vectors of that matrix,
    by block power iteration (two thin products a step, no SVD of the whole chunk), kept
    when they stand above what noise alone would give: fewer than ``k``, or none.
    """
    rel = np.asarray(relative, dtype=np.float64)
    if rel.shape[0] > PATTERN_METERS:
        rel = rel[np.linspace(0, rel.shape[0] - 1, PATTERN_METERS).astype(np.intp)]
    center, mad = nan_median_mad(rel)
    sigma = MAD_TO_SIGMA * mad
    # In place on one fresh array: this runs on the whole chunk between the threaded passes.
    z = np.subtract(rel, center[:, np.newaxis])
    with np.errstate(invalid="ignore", divide="ignore"):
        np.divide(z, sigma[:, np.newaxis], out=z)
    read = np.isfinite(z)  # a row of σ 0 divides to NaN or ±inf: left out, as the gaps
    np.copyto(z, 0.0, where=~read)
    np.clip(z, -PATTERN_CLIP_SIGMA, PATTERN_CLIP_SIGMA, out=z)
    # A day read by fewer than a fleet has no pattern: a few meters' own days would make one.
    z[:, np.count_nonzero(read, axis=0) < MIN_FLEET_METERS] = 0.0
    days = rel.shape[1]
    k = min(k, days)
    # A fixed start: the same chunk gives the same patterns run after run.
    q = _orthonormal(np.random.default_rng(0).standard_normal((days, k)))
    for _ in range(_SUBSPACE_STEPS):
        q = _orthonormal(_dot(z.T, _dot(z, q)))
    # A pattern must carry more than independent noise of the same size would in its
    # leading direction, (√meters + √days)² times the entries' variance (Marchenko–Pastur):
    # after the median, a fleet that does nothing more together has none to take.
    zq = _dot(z, q)
    strength = np.einsum("mk,mk->k", zq, zq)
    m, n = z.shape
    noise_edge = float(np.einsum("md,md->", z, z)) / z.size * (np.sqrt(m) + np.sqrt(n)) ** 2
    q = q[:, strength > noise_edge]
    patterns: FloatArray = np.ascontiguousarray(q.T)
    return patterns


def _pattern_loadings(rel: FloatArray, patterns: FloatArray) -> FloatArray:
    """Each meter's least-squares loadings on ``patterns`` (k, days), shape (meters, k), from
    its own read days, fitted twice: the second time without the days more than
    :data:`PATTERN_CLIP_SIGMA` σ off the first fit (its faults must not set them)."""
    gaps = np.isnan(rel)
    y = np.where(gaps, 0.0, rel)
    weight = np.logical_not(gaps).astype(np.float64)  # 1 on the days a fit reads, else 0
    k = patterns.shape[0]
    pairs = (patterns[:, np.newaxis, :] * patterns[np.newaxis, :, :]).reshape(k * k, -1)
    ridge = 1e-9 * np.eye(k)
    loadings = np.zeros((rel.shape[0], k))
    for step in range(2):
        xtx = _dot(weight, pairs.T).reshape(-1, k, k) + ridge
        xty = _dot(y, patterns.T)
        if k == 1:  # the usual case, without a LAPACK call per meter
            loadings = xty / xtx[:, 0]
        else:
            loadings = np.asarray(np.linalg.solve(xtx, xty[..., np.newaxis])[..., 0])
        if step == 0:
            left = np.subtract(rel, _dot(loadings, patterns))  # NaN at the gaps
            # The scale of what is left from every fourth day: a robust σ needs no more.
            center, mad = nan_median_mad(left[:, ::4])
            np.subtract(left, center[:, np.newaxis], out=left)
            np.abs(left, out=left)
            with np.errstate(invalid="ignore"):
                far = left > (PATTERN_CLIP_SIGMA * MAD_TO_SIGMA * mad)[:, np.newaxis]
            np.copyto(weight, 0.0, where=far)
            np.copyto(y, 0.0, where=far)
    return loadings


# The common-cause test needs a rate, not a median: five meters of a kind can show it (a
# city's nine heat meters, four of them up on one cold Sunday; bench.accuracy, eleventh
# session, seeds 300–303: precision +0.008 / 0 / +0.002 / 0, no label lost).
COMMON_CAUSE_MIN_METERS: Final = 5
# A common cluster's sizes are the fleet's spread, not one size: a May heat wave warmed 43 of
# 49 rooms at once, most by 2 °C, a third by 5–6 °C, which stood out at twice the median.
# Twice the upper quartile (bench.accuracy, eleventh session, seeds 300–303: precision
# +0.004 / +0.009 / +0.007 / +0.006, no label lost; the 90th percentile lost a level
# shift on 303).
STAND_OUT_QUANTILE: Final = 0.75
# An hour-level event is the fleet's only with this many others of its group starting
# within its window: at a small group's rate, three spikes in a day look improbable, yet
# three homes' spikes on one Saturday afternoon, 5.8–17.5 σ, were each a fault (seed 325;
# bench.accuracy's year scans, twenty-ninth session: spikes +0.0000 / +0.0015 / +0.0005 /
# +0.0000 on seeds 300–315 / 316–331 / 332–347 / 348–363, precision −0.0001 to −0.0006,
# 40 of the 71 reports it adds right; at 4, spikes −0.0005 on 332–347 and precision to
# −0.0018; level shifts and drifts kept as they were: 15 reports more, 1 right).
HOUR_COMMON_MIN_OTHERS: Final = 3
# Kinds never dropped as common: a fleet-wide outage is the data path failing, which the
# ingest's health must show, not hide.
ALWAYS_REPORTED: Final = frozenset({"outage"})
# A level shift that a later day calls a drift is the same change.
_FAMILY: Final = {"drift": "level_shift"}


@dataclass(slots=True, frozen=True)
class CommonCauseConfig:
    """When coincident events of one kind of meter are the fleet's, not each building's.

    Attributes
    ----------
    alpha : float
        Chance below which a count of events starting at once is a common cause: the
        count of the kind's other events of the same direction starting within the
        window is compared with a Poisson law at the kind's own rate after the scan's
        warm-up (for level shifts and drifts, that of the starts outside the clusters a
        first test finds) [-] (0: off).
    window_hours, window_days : int
        Starts this close count as at once: hourly kinds [h], level shifts and drifts
        [days].
    stand_out : float
        An event of a common cluster is still reported when its relative size (``|observed
        − expected| / expected``), or its severity, is this many times the cluster's upper
        quartile of it (:data:`STAND_OUT_QUANTILE`): a building's fault on the day of a
        cold snap [-].
    min_meters : int
        Fewer meters of the kind than this: no test.
    """

    alpha: float = 1e-3
    window_hours: int = 12
    window_days: int = 1
    stand_out: float = 2.0
    min_meters: int = COMMON_CAUSE_MIN_METERS


def common_cause(
    found: Sequence[Anomaly],
    meters: int,
    steps: int,
    *,
    steps_per_hour: int = 1,
    config: CommonCauseConfig | None = None,
    warmup_steps: int = 0,
) -> BoolArray:
    """Which of the events of ``meters`` meters of one kind over ``steps`` steps started
    together with improbably many others (see :class:`CommonCauseConfig`).

    ``start`` of the ``DAY_KINDS`` counts days, of the others steps; no event can start in
    the first ``warmup_steps`` (the baseline's lags), which the rate leaves out. Level-shift
    warnings (``status``) are neither tested nor counted. Returns a mask over ``found``,
    True for the events with a common cause.
    """
    # Warnings take no part: raised on a meter's last two days at a fifth of h, they crowd
    # the window's end at a rate its alarms do not show, and every run of the service has
    # its end. Counted with the alarms, a home's 67 % fall among the warnings of a warm June
    # day was the fleet's (seed 300, meter 505). Whole-city cuts 48 h after each level shift
    # (bench.seeds --early, thirty-sixth session): found within 2 days 0.831 → 0.908 on
    # seed 300, 0.770 → 0.836 on 301, 0.863 → 0.882 on 302, 0.816 → 0.842 on 303.
    alarms = np.flatnonzero([a.status != "warning" for a in found])
    out = np.zeros(len(found), dtype=bool)
    out[alarms] = _common_among(
        [found[i] for i in alarms.tolist()], meters, steps,
        steps_per_hour=steps_per_hour, config=config, warmup_steps=warmup_steps,
    )  # fmt: skip
    return out


def _common_among(
    found: Sequence[Anomaly],
    meters: int,
    steps: int,
    *,
    steps_per_hour: int,
    config: CommonCauseConfig | None,
    warmup_steps: int,
) -> BoolArray:
    """:func:`common_cause` of events that all take part in the test."""
    cfg = config if config is not None else CommonCauseConfig()
    n = len(found)
    out = np.zeros(n, dtype=bool)
    if n == 0 or meters < cfg.min_meters or cfg.alpha <= 0:
        return out
    kind = np.asarray([_FAMILY.get(a.kind, a.kind) for a in found])
    expected = np.asarray([a.expected for a in found], dtype=np.float64)
    change = np.asarray([a.observed for a in found], dtype=np.float64) - expected
    day = 24 * steps_per_hour
    in_days = np.isin(kind, list(DAY_KINDS))
    start = np.asarray([a.start for a in found], dtype=np.int64) * np.where(in_days, day, 1)
    window = np.where(in_days, cfg.window_days * day, cfg.window_hours * steps_per_hour)
    # One group per kind and direction; a group's starts on an axis of their own, so one
    # sorted array and searchsorted count the others within each event's window.
    names, kind_code = np.unique(kind, return_inverse=True)
    group = kind_code * 3 + (np.sign(np.nan_to_num(change)).astype(np.int64) + 1)
    span = steps + 2 * int(window.max()) + 1
    pos = group * span + start
    order = np.argsort(pos, kind="stable")
    pos, w, g = pos[order], window[order], group[order]
    others = np.searchsorted(pos, pos + w, "right") - np.searchsorted(pos, pos - w, "left") - 1
    groups = int(g.max()) + 1
    # Starts per step, fleet-wide, after the warm-up in which none can start: counted over
    # the whole scan, the rate of a big fleet's spikes came out a quarter low and every busy
    # window looked improbable (5,000 meters, 8 weeks: 79 % of random spikes dropped).
    active = max(steps - warmup_steps, 1)
    rate = np.bincount(g, minlength=groups)[g] / active
    common = poisson.sf(others - 1, rate * (2 * w + 1)) < cfg.alpha
    # A level shift's own rate is that of the starts apart from the clusters: a day that
    # moved 29 gas homes at once inflated it, and five homes starting together on a cold
    # day looked like chance (seed 300's clean city). Not below half the rate of all, nor
    # for hour-level kinds: thousands of spikes a day, more at some hours than others, would
    # each time leave a lower rate that makes every window look improbable.
    alone = np.bincount(g[~common], minlength=groups)[g] / active  # never above ``rate``
    days_o = np.flatnonzero(in_days[order])  # only their test changes
    refit = np.maximum(alone[days_o], 0.5 * rate[days_o])
    common[days_o] = poisson.sf(others[days_o] - 1, refit * (2 * w[days_o] + 1)) < cfg.alpha
    common &= ~np.isin(names[g // 3], list(ALWAYS_REPORTED))
    common &= in_days[order] | (others >= HOUR_COMMON_MIN_OTHERS)
    # Clusters: runs of starts no further apart than the window, within a group.
    new = np.ones(n, dtype=bool)
    new[1:] = (np.diff(pos) > w[1:]) | (g[1:] != g[:-1])
    cluster = np.cumsum(new) - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        size = np.abs(change[order]) / np.abs(expected[order])
    # Use above an expected zero has no relative size: it cannot stand out (a closed
    # building's cold Sunday "above a zero usual level" was always kept; bench.accuracy,
    # eleventh session: precision +0.003 / +0.006 / +0.002 / 0, no label lost).
    size[~np.isfinite(size)] = np.nan
    # Or by its evidence: a home's gas 58 % up from 14 November read 36 % over its weather
    # model, under twice the four others starting within a day (13–19 %), but its CUSUM
    # peaked at 121 σ against their 9–26 (seed 303, meter 308). (bench.accuracy's year
    # scans, sixteenth session, seeds 300–315: 5 more level shifts and 3 other labels
    # found, mean precision −0.001; at 3 × the quartile 3 more and +0.000.)
    severity = np.asarray([a.severity for a in found], dtype=np.float64)[order]
    for measure in (size, severity):
        usual = _cluster_quantile(measure, cluster, STAND_OUT_QUANTILE)
        common &= ~(measure > cfg.stand_out * usual)
    out[order] = common
    return out


def _cluster_quantile(values: FloatArray, cluster: npt.NDArray[np.int64], q: float) -> FloatArray:
    """NaN-ignoring (lower) ``q`` quantile of ``values`` within each cluster, per element;
    ``cluster`` is non-decreasing. NaN for a cluster without a value."""
    valid = ~np.isnan(values)
    key = np.where(valid, values, np.inf)
    order = np.lexsort((key, cluster))  # by cluster, then value, NaN last
    counts = np.bincount(cluster, weights=valid.astype(np.float64)).astype(np.int64)
    first = np.searchsorted(cluster[order], np.arange(counts.size))
    pick = first + np.floor(q * np.maximum(counts - 1, 0)).astype(np.int64)
    quantile = np.where(counts > 0, values[order][np.minimum(pick, values.size - 1)], np.nan)
    return np.asarray(quantile[cluster], dtype=np.float64)


def shared_nights(
    found: Sequence[Anomaly],
    steps: int,
    *,
    steps_per_hour: int = 1,
    alpha: float = CommonCauseConfig().alpha,
    warmup_steps: int = 0,
) -> BoolArray:
    """Which night-use events share their first night with improbably many others' night
    use, whichever night those began; True for them, False for every other event.

    A cold spell of several nights moves one home from its first night, the next from its
    second, so their starts fall a day apart, in different windows of
    :func:`common_cause`. Here each event's first day is compared with the spans of all
    the others: an event of ``L`` steps overlaps a given day with a chance of about
    ``(L + day)`` in the steps after the warm-up, so the count of others overlapping it
    is Poisson with the sum of those chances as its mean, and a count below ``alpha``
    is the weather's. Another night of the same meter is counted as well: a meter's
    night events that touch are one event.
    """
    night = np.asarray([a.kind == "night_use" for a in found], dtype=bool)
    out = np.zeros(len(found), dtype=bool)
    if night.sum() < 2 or alpha <= 0:
        return out
    day = 24 * steps_per_hour
    start = np.asarray([a.start for a in found], dtype=np.int64)[night]
    end = np.asarray([a.end for a in found], dtype=np.int64)[night]
    # Others overlapping [start, start + day): begun before its day ends, not ended before
    # it begins (whatever ends by then began before).
    began = np.searchsorted(np.sort(start), start + day, "left")
    ended = np.searchsorted(np.sort(end), start, "right")
    others = began - ended - 1
    reach = (end - start + day).astype(np.float64)
    mean = (reach.sum() - reach) / max(steps - warmup_steps, 1)
    out[night] = poisson.sf(others - 1, mean) < alpha
    return out
