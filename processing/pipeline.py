"""One anomaly run over a window, chunk of meters by chunk, and the knobs of every run.

The pure array step (``scan_meters``) is separate from the database wrapper
(``run_anomalies``), so the accuracy bench runs the same code on simulated arrays. The
insulation run is ``processing.insulation``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import psycopg

from processing.baseline import BLANK_WEEKS, HOURS_PER_WEEK
from processing.detector_config import DETECTOR_CONFIGS, DetectorConfig, config_for
from processing.detectors import anomaly_scan
from processing.events import DAY_KINDS, Anomaly
from processing.felt_weather import FeltWeatherOnDemand
from processing.fleet import CommonCauseConfig, common_cause, shared_nights
from processing.quality_config import QualityConfig
from processing.workers import ChunkResult, ChunkScan, DatabaseRows, run_chunks
from storage.matrices import (
    HOUR,
    MeterInfo,
    iter_matrices,
    load_counter_resets,
    load_hourly_mean,
    load_meter_info,
    meter_chunks,
)
from storage.results import (
    AnomalyRow,
    finite_or_none,
    settle_warnings,
    write_anomalies,
)
from wattwatch.holidays import french_holidays

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

LOCAL_TZ: Final = ZoneInfo("Europe/Paris")
# Meters the consumption detectors read; temperature sensors use the quality rules and
# spikes only (a schedule means nothing for them).
ENERGY_QUANTITIES: Final = ("electricity", "gas", "heat", "water")
# Detector kind and thresholds of each sensor quantity: outdoor ones follow the weather.
SENSOR_KINDS: Final = {
    "indoor_temperature": "temperature",
    "outdoor_temperature": "outdoor_temperature",
}
TEMPERATURE_QUANTITIES: Final = tuple(SENSOR_KINDS)
# A stuck sensor repeats its reading exactly (see ``flatlines.repeat_runs``); below zero is
# only weather.
TEMPERATURE_QUALITY: Final = QualityConfig(flatline_exact=True, check_negative=False)
# The electricity of a building that closes follows its opening hours, not the weather: one
# working day's hours stuck under two thirds of its usual use there is a stuck register
# (``flatline_busy_steps``, ``flatline_busy_ratio``; 18 steps at 2 × for every kind). Its
# day is about twice its night, and a register stuck from a Thursday afternoon through a
# weekend held one working day. On the year scans of seeds 300–315 (fourteenth session):
# 13 more flatlines found, mean precision −0.001; for closing gas and heat meters, whose
# days follow the weather, 8 steps cost 0.02–0.04 precision. The other way round, a
# register stuck at twice its standby or more through hours it stands by flat is stuck
# too (``flatline_idle_ratio``): a school read 32.7 kWh an hour from 17:00 to 06:00, its
# nights 9.6. Year scans of the three seed sets (twenty-fifth session): flatlines 0 / 0 /
# +0.0028, schedule +0.0020 / 0 / 0, precision +0.0001 / −0.0001 / 0; at 3 ×, flatlines
# +0.0014 on 332–347 only; at 1.5 ×, flatlines +0.0014 / 0 / +0.0028, precision +0.0003 /
# 0 / −0.0001, but a night's standby raised by half, flat, is a night use more often
# than a stuck register.
# A home's electricity is no steady flow: a flat event of 8 hours is a stuck register
# there (``flatline_event_steps``; 10 for registers whose flow holds for hours, gas and
# heat). Year scans of seeds 300–315 (seventeenth session): 9 more flatlines found for 9
# more false ones, precision −0.0004; 7 hours 13 more for 50, 6 hours 17 for 646.
_BUSY_FLAT: Final = {
    "flatline_busy_steps": 8,
    "flatline_busy_ratio": 1.5,
    "flatline_idle_ratio": 2.0,
    "flatline_spread_gaps": False,  # idle flat by nature (see QualityConfig)
}
QUALITY_BY_KIND: Final[dict[str, dict[str, Any]]] = {  # QualityConfig fields
    "office": _BUSY_FLAT,
    "school": _BUSY_FLAT,
    "household": {"flatline_event_steps": 8},
}
# Public buildings without their own thresholds close at weekends like offices; a gym is
# open every day, like a home.
_OFFICE_LIKE: Final = frozenset({"town_hall", "library"})
_OPEN_DAILY: Final = frozenset({"household", "gym"})

Progress = Callable[[str, int, int], None]


def no_progress(_stage: str, _done: int, _total: int) -> None:
    return None


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """Knobs of one processing run.

    Attributes
    ----------
    context_weeks : int
        History loaded before the reported period [weeks]: the hour-of-week baseline's
        ``baseline_weeks``, then as many for the CUSUM's centre and scale (with one week of
        residuals its median and MAD are a few days' noise).
    baseline_weeks : int
        Trailing weeks of the hour-of-week baseline [weeks].
    chunk_meters : int
        Meters loaded and scanned together; 0 = as many as fit in ``chunk_mb``.
    chunk_mb : float
        Size of one chunk's matrix when ``chunk_meters`` is 0 [MB]. Each chunk's load
        reads every rollup page of the window (the rollup is stored in time order), so
        few large chunks load much faster than many small ones.
    quality : QualityConfig
    insulation_min_days : int
        Days a change-point baseline needs (CalTRACK: 365; a heating-season study lowers it).
    max_missing_days, min_heating_days : int
        Other sufficiency rules [days].
    n_boot : int
        Bootstrap replicates of the HLC interval.
    arx_min_steps : int
        Hourly transitions an ARX fit needs [steps].
    balance_min_days : int
        Heating days the daily energy balance (the indoor-sensor HLC) needs [days].
    balance_max_outdoor_c : float
        Days of the energy balance: daily mean outdoor temperature below this [°C].
    disagree_tolerance : float
        ARX and change-point HLC differing by more than this are flagged [-].
    dim_day_w_per_m2 : float
        HLC (slope) from the days whose mean irradiance is at most this [W/m²] when the city
        has an irradiance meter; 0 fits it on every day (see ``_dim_day_fit``).
    outdoor_meter_id : int, optional
        Outdoor-temperature meter for every building (else per municipality, see storage).
    threads : int
        Slices of each chunk's meters scanned at once (see ``anomaly_scan``).
    detectors : mapping of str to DetectorConfig
        Thresholds of the kinds an operator tuned (``WATTWATCH_PROCESSING_DETECTORS``,
        ``detector_config.tuned_configs``); the others keep their built-in ones.
    quality_by_kind : mapping of str to mapping
        Data-quality fields an operator set per kind (``WATTWATCH_PROCESSING_QUALITY``,
        ``detector_config.tuned_quality``), applied over ``quality`` and the kind's own.
    workers : int
        Chunks loaded and scanned at once, each in a process of its own with its own
        database connection (see ``processing.workers``); the events are the same.
    """

    context_weeks: int = 8
    baseline_weeks: int = 4
    chunk_meters: int = 0
    chunk_mb: float = 64.0
    quality: QualityConfig = field(default_factory=QualityConfig)
    insulation_min_days: int = 365
    max_missing_days: int = 37
    min_heating_days: int = 10
    n_boot: int = 200
    arx_min_steps: int = 7 * 24
    balance_min_days: int = 20
    balance_max_outdoor_c: float = 12.0
    disagree_tolerance: float = 0.25
    dim_day_w_per_m2: float = 90.0
    outdoor_meter_id: int | None = None
    threads: int = 1
    workers: int = 1
    detectors: Mapping[str, DetectorConfig] = field(default_factory=dict)
    quality_by_kind: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


# --- anomalies ------------------------------------------------------------------------------


def detector_kind(quantity: str, use: str) -> str:
    """Key of ``detector_config.BUILT_IN_CONFIGS`` for a meter."""
    if quantity in SENSOR_KINDS:
        return SENSOR_KINDS[quantity]
    if quantity in ("gas", "heat"):
        return f"household_{quantity}" if use in _OPEN_DAILY else quantity
    if use in DETECTOR_CONFIGS:
        return use
    return "office" if use in _OFFICE_LIKE else "household"


def _config(kind: str, detectors: Mapping[str, DetectorConfig]) -> DetectorConfig:
    """The thresholds of a kind: the operator's (``detectors``), else the built-in ones."""
    return detectors[kind] if kind in detectors else config_for(kind)


def quality_for(
    kind: str,
    quality: QualityConfig | None = None,
    tuned: Mapping[str, Mapping[str, Any]] | None = None,
) -> QualityConfig:
    """The data-quality thresholds of a kind: ``quality`` (default ``QualityConfig()``) with
    the kind's own (``QUALITY_BY_KIND``), for temperature sensors exact repeats, and last
    the operator's (``tuned``, see ``detector_config.tuned_quality``)."""
    q = quality if quality is not None else QualityConfig()
    if kind in QUALITY_BY_KIND:
        q = replace(q, **QUALITY_BY_KIND[kind])
    if kind in SENSOR_KINDS.values():
        q = replace(
            q,
            flatline_exact=TEMPERATURE_QUALITY.flatline_exact,
            check_negative=TEMPERATURE_QUALITY.check_negative,
        )
    return replace(q, **(tuned or {}).get(kind, {}))


def scan_meters(
    values: npt.ArrayLike,
    kinds: Sequence[str],
    *,
    local_start: datetime,
    weeks: int = 4,
    quality: QualityConfig | None = None,
    outdoor_temp_c: npt.ArrayLike | None = None,
    sun_w_m2: npt.ArrayLike | None = None,
    threads: int = 1,
    detectors: Mapping[str, DetectorConfig] | None = None,
    quality_by_kind: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Anomaly]:
    """Run the anomaly scan on a chunk, one vectorised call per detector kind.

    Parameters
    ----------
    values : array_like, shape (meters, steps)
        Hourly consumption (or mean) per meter; step 0 is local midnight ``local_start``.
    kinds : sequence of str, one per meter
        From :func:`detector_kind`.
    outdoor_temp_c : array_like, optional, shape (steps,)
        Hourly outdoor temperature [°C]: heating meters get a degree-hour term.
    sun_w_m2 : array_like, optional, shape (steps,)
        Hourly global horizontal irradiance [W/m²]: the sun in homes' heating days.
    threads : int
        Slices of meters scanned at once (see ``anomaly_scan``); same result.
    detectors : mapping of str to DetectorConfig, optional
        Thresholds of the kinds an operator tuned (``detector_config.tuned_configs``);
        the other kinds keep their built-in ones.
    quality_by_kind : mapping of str to mapping, optional
        Data-quality fields an operator set per kind (``detector_config.tuned_quality``).

    French public holidays of the window's years are checked on every energy meter.

    Returns
    -------
    list of Anomaly
        ``meter_index`` is the row in ``values``; level shifts and drifts count days.
    """
    x = np.asarray(values, dtype=np.float64)
    k = np.asarray(kinds)
    tuned = detectors if detectors is not None else {}
    if k.shape != (x.shape[0],):
        raise ValueError(f"kinds: expected {x.shape[0]} entries, got {k.shape}")
    out: list[Anomaly] = []
    last = local_start + timedelta(hours=x.shape[1])
    holidays = french_holidays(range(local_start.year, last.year + 1))
    felt = None  # the heating kinds' felt weather, made once for all of them
    if outdoor_temp_c is not None and sun_w_m2 is not None:
        felt = FeltWeatherOnDemand(outdoor_temp_c, sun_w_m2)
    for kind in np.unique(k).tolist():
        rows = np.flatnonzero(k == kind)
        found = anomaly_scan(
            x[rows], start=local_start, weeks=weeks, config=_config(kind, tuned),
            quality=quality_for(kind, quality, quality_by_kind),
            holidays=holidays, outdoor_temp_c=outdoor_temp_c, sun_w_m2=sun_w_m2,
            threads=threads, felt_weather=felt,
        )  # fmt: skip
        out.extend(replace(a, meter_index=int(rows[a.meter_index])) for a in found)
    return _without_common_across_kinds(out, k, x.shape[1], tuned)


def trial_scan(
    detectors: Mapping[str, DetectorConfig] | None = None,
    quality_by_kind: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """Scan six weeks of a small synthetic chunk with each tuned kind's thresholds, so that
    thresholds a run cannot work with (zero reference weeks, a quantile of 1…) are refused
    when the settings load, not found by every run of the service.

    Raises
    ------
    ValueError
        Naming the kind, with the scan's own error.
    """
    rng = np.random.default_rng(0)
    hours = np.arange(6 * HOURS_PER_WEEK)
    day = 1.0 + 0.5 * np.sin(2 * np.pi * (hours % 24 - 8) / 24)
    x = day * (1.0 + 0.1 * rng.standard_normal((6, hours.size)))
    x[1, -30] += 8.0  # a spike
    x[2, -200:-180] = np.nan  # an outage
    x[3, -300:-260] = x[3, -300]  # a stuck register
    x[4, -240:] *= 1.5  # a level shift
    x[5] = np.nan  # a meter that read nothing
    te = 8.0 + 5.0 * np.sin(2 * np.pi * (hours % 24 - 14) / 24)
    sun = np.maximum(0.0, 400.0 * np.sin(2 * np.pi * (hours % 24 - 6) / 24))
    for kind in sorted(set(detectors or {}) | set(quality_by_kind or {})):
        try:
            scan_meters(
                x, [kind] * len(x), local_start=datetime(2025, 1, 6), outdoor_temp_c=te,
                sun_w_m2=sun, detectors=detectors, quality_by_kind=quality_by_kind,
            )  # fmt: skip
        except (ValueError, ArithmeticError, IndexError) as exc:
            raise ValueError(f"{kind}: a test scan fails with these thresholds ({exc})") from None


# Events of the meters whose days follow the weather, whatever their kind, that start
# together improbably often are the weather's: a cold night or the heating season's end
# moves gas homes, heat-metered homes and closing buildings alike, a handful of each, each
# handful too few for its own kind's test. A second look at events that passed that test,
# so at a tenth of its chance (bench.accuracy, eleventh session, seeds 300–303: precision
# +0.012 / +0.013 / +0.006 / +0.010, no label lost; at the same chance +0.041 / +0.020 /
# +0.016 / +0.023 but level shifts −2 labels on 300 and −1 on 303, homes that started or
# stopped heating at the season's turn with a fault).
CROSS_KIND_COMMON_CAUSE: Final = replace(CommonCauseConfig(), alpha=CommonCauseConfig().alpha / 10)


def _without_common_across_kinds(
    found: list[Anomaly],
    kinds: npt.NDArray[np.str_],
    steps: int,
    detectors: Mapping[str, DetectorConfig],
) -> list[Anomaly]:
    """``found`` without the events of weather-following meters (kinds whose config has a
    ``daily_weather_model``) that :func:`~processing.fleet.common_cause` or
    :func:`~processing.fleet.shared_nights` calls common when those meters are taken as
    one fleet; steps are hourly."""
    weather = [kd for kd in np.unique(kinds).tolist() if _config(kd, detectors).daily_weather_model]
    of_weather = np.isin(kinds, weather)
    pick = [i for i, a in enumerate(found) if of_weather[a.meter_index]]
    if not pick:
        return found
    picked = [found[i] for i in pick]
    common = common_cause(
        picked, int(of_weather.sum()), steps, config=CROSS_KIND_COMMON_CAUSE,
        warmup_steps=BLANK_WEEKS * HOURS_PER_WEEK,
    )  # fmt: skip
    # Night use over a cold spell, begun a night apart (tested at the per-kind chance:
    # bench.accuracy, twelfth session, seeds 300–303: precision +0.007 / +0.003 / +0.007 /
    # 0, no label lost; at ten times that chance +0.007 / +0.008 / +0.017 / +0.001, a
    # schedule label lost on 303).
    common |= shared_nights(picked, steps, warmup_steps=BLANK_WEEKS * HOURS_PER_WEEK)
    drop = {i for i, shared in zip(pick, common.tolist(), strict=True) if shared}
    return [a for i, a in enumerate(found) if i not in drop]


def to_rows(
    found: Sequence[Anomaly],
    meter_ids: npt.ArrayLike,
    *,
    start: datetime,
    step: timedelta = HOUR,
) -> list[AnomalyRow]:
    """Events with timestamps.

    ``end_ts`` is the start of the event's last step (last day for level shifts).
    """
    ids = np.asarray(meter_ids, dtype=np.int64)
    out: list[AnomalyRow] = []
    for a in found:
        unit = 24 * step if a.kind in DAY_KINDS else step
        start_ts = start + a.start * unit
        end_ts = start + a.end * unit - step
        out.append(
            AnomalyRow(int(ids[a.meter_index]), a.kind, start_ts, max(end_ts, start_ts),
                       float(a.severity) if np.isfinite(a.severity) else 0.0,
                       finite_or_none(a.expected), finite_or_none(a.observed), a.reason, a.status)
        )  # fmt: skip
    return out


@dataclass(slots=True)
class AnomalyRunSummary:
    """What an anomaly run did. Of its ``seconds``, ``read_seconds`` went to loading the
    matrices and ``scan_seconds`` to the detectors; the rest is writing the events (and
    the meter list, the weather and the counter resets read beside them). With more than
    one of ``workers`` (processes that loaded and scanned chunks; 1: this one), reading and
    scanning are the workers' seconds added up, which run at the same time."""

    meters: int = 0
    chunks: int = 0
    events: int = 0
    inserted: int = 0
    extended: int = 0
    warnings_withdrawn: int = 0
    warnings_confirmed: int = 0
    retracted: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    read_seconds: float = 0.0
    scan_seconds: float = 0.0
    workers: int = 1


# A confirmed level shift or drift of at most RETRACT_SPAN that a later run no longer
# finds, reading it with the days after, is deleted as a withdrawn warning is: a mild
# spell that the weather model read late looks like a shift for a day or two, and while
# it is the last days of the window it is kept (so that a real one is reported as it
# begins). A run judges only the shifts starting RETRACT_AFTER into its window: over its
# first four weeks the baseline and the weather model have no reference of their own, and
# three more days let a later run date an onset differently. (bench.accuracy's service
# replay, twenty-eighth session, seeds 300 and 301: false level shifts on the clean
# cities 353 → 202 and 315 → 185, precision 0.504 → 0.551 and 0.506 → 0.550, the same
# level shifts found; at three days 151 and 149, but 2 and 1 of 65 and 61 found lost.)
RETRACT_SPAN: Final = timedelta(days=2)
RETRACT_AFTER: Final = timedelta(days=31)
# A spike or drop that a run ending RECHECK_AFTER to RECHECK_UNTIL after its start no
# longer finds, nor any event of its meter touching it, is deleted too: the first morning
# of a new routine (a home back from holiday, a Saturday lie-in given up) is a spike
# against the weeks before it, and the routine's next days raise the scale at that hour
# until it is not. Not sooner than two days: one more day can hide a spike that the next
# brings back. (bench.accuracy's service replay, thirty-first session, seeds 300–305:
# false spikes and drops on the clean cities 162 / 131 / 163 / 150 / 130 / 153 → 47 / 54
# / 56 / 70 / 43 / 47, precision +0.044 to +0.065; of the true ones, a spike lost on 301
# and on 302 (of 135 and 146 of ≥ 5 σ) and a drop that found a dropout on 304.)
RECHECKED_KINDS: Final = ("spike", "drop")
RECHECK_AFTER: Final = timedelta(days=2)
RECHECK_UNTIL: Final = timedelta(days=4)


def window_start(report_from: datetime, context_weeks: int) -> datetime:
    """Local (Europe/Paris) midnight at least ``context_weeks`` before ``report_from``, in UTC."""
    local = (report_from - timedelta(weeks=context_weeks)).astimezone(LOCAL_TZ)
    midnight = datetime(local.year, local.month, local.day, tzinfo=LOCAL_TZ)
    return midnight.astimezone(UTC)


def run_anomalies(
    conn: psycopg.Connection,
    *,
    end: datetime,
    report_from: datetime,
    config: PipelineConfig | None = None,
    meter_ids: Sequence[int] | None = None,
    progress: Progress = no_progress,
    conninfo: str | None = None,
) -> AnomalyRunSummary:
    """Scan ``[report_from − context, end)`` and store events ending after ``report_from``.

    Steps are UTC hours from a local midnight; the detectors label them with local wall-clock
    time from that midnight, so after a DST change inside the window the labels are one hour
    off (the hour-of-week baseline compares like with like except around the change).
    Counter resets come from the rollups' ``meter_events``. With ``config.workers`` > 1 and
    the database's ``conninfo``, that many worker processes load and scan the chunks, each
    on a connection of its own; ``conn`` writes every chunk's events, as they come in order.
    """
    cfg = config if config is not None else PipelineConfig()
    t0 = time.perf_counter()
    end = end.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    start = window_start(report_from, cfg.context_weeks)
    local_start = start.astimezone(LOCAL_TZ).replace(tzinfo=None)
    meters = load_meter_info(
        conn, meter_ids=meter_ids, quantities=ENERGY_QUANTITIES + TEMPERATURE_QUANTITIES
    )
    meters = by_kind(meters)
    summary = AnomalyRunSummary(meters=len(meters))
    scan_kwargs: dict[str, Any] = {
        "local_start": local_start, "weeks": cfg.baseline_weeks, "quality": cfg.quality,
        "outdoor_temp_c": load_hourly_mean(
            conn, "outdoor_temperature", start=start, end=end, meter_id=cfg.outdoor_meter_id
        ),
        "sun_w_m2": load_hourly_mean(conn, "irradiance", start=start, end=end),
        "threads": cfg.threads,
        "detectors": cfg.detectors,
        "quality_by_kind": cfg.quality_by_kind,
    }  # fmt: skip
    # Never within the window's first RETRACT_AFTER: no reference of its own there.
    recheck_starts = (max(end - RECHECK_UNTIL, start + RETRACT_AFTER), end - RECHECK_AFTER)
    done = 0
    progress("anomalies", 0, len(meters))
    size = chunk_size(cfg, meters=len(meters), start=start, end=end)
    if cfg.workers > 1 and conninfo is not None and len(meters) > size:
        chunks = meter_chunks(meters, size)
        summary.workers = min(cfg.workers, len(chunks))
        scanned = _scanned_in_workers(
            conninfo, chunks, start=start, end=end, workers=cfg.workers, scan_kwargs=scan_kwargs
        )
    else:
        scanned = _scanned_here(conn, meters, start=start, end=end, size=size, **scan_kwargs)
    for chunk, result in scanned:
        summary.read_seconds += result.read_seconds
        summary.scan_seconds += result.scan_seconds
        # Every event of the window, reported or not, judges the warnings and recent events.
        held = to_rows(result.found, chunk.meter_id, start=start)
        rows = [r for r in held if r.end_ts >= report_from]  # those the run reports
        rows += _reset_rows(conn, chunk, start=max(start, report_from), end=end)
        written = write_anomalies(conn, rows, step=HOUR)
        settled = settle_warnings(
            conn, held, meter_ids=chunk.meter_id.tolist(),
            since=start, step=HOUR, retract_from=start + RETRACT_AFTER, retract_span=RETRACT_SPAN,
            recheck_kinds=RECHECKED_KINDS, recheck_starts=recheck_starts,
        )  # fmt: skip
        conn.commit()
        summary.warnings_withdrawn += settled.withdrawn
        summary.warnings_confirmed += settled.confirmed
        summary.retracted += settled.retracted
        summary.chunks += 1
        summary.events += len(rows)
        summary.inserted += written.inserted
        summary.extended += written.extended
        for r in rows:
            summary.by_kind[r.kind] = summary.by_kind.get(r.kind, 0) + 1
        done += len(chunk)
        progress("anomalies", done, len(meters))
    summary.seconds = time.perf_counter() - t0
    return summary


def _scan_chunk(values: FloatArray, meters: MeterInfo, **scan_kwargs: Any) -> list[Anomaly]:
    """``scan_meters`` of one chunk's matrix, its meters' kinds read off ``meters``."""
    kinds = [detector_kind(q, u) for q, u in zip(meters.quantity, meters.use, strict=True)]
    return scan_meters(values, kinds, **scan_kwargs)


def _scanned_here(
    conn: psycopg.Connection,
    meters: MeterInfo,
    *,
    start: datetime,
    end: datetime,
    size: int,
    **scan_kwargs: Any,
) -> Iterator[tuple[MeterInfo, ChunkResult]]:
    """Each chunk loaded on ``conn`` and scanned in this process, one after the other."""
    chunks = iter_matrices(conn, meters, start=start, end=end, chunk_meters=size)
    read_from = time.perf_counter()
    for chunk, matrix in chunks:
        scan_from = time.perf_counter()
        found = _scan_chunk(matrix.values, chunk, **scan_kwargs)
        yield chunk, ChunkResult(found, scan_from - read_from, time.perf_counter() - scan_from)
        read_from = time.perf_counter()


def _scanned_in_workers(
    conninfo: str,
    chunks: list[MeterInfo],
    *,
    start: datetime,
    end: datetime,
    workers: int,
    scan_kwargs: dict[str, Any],
) -> Iterator[tuple[MeterInfo, ChunkResult]]:
    """Each chunk loaded and scanned by one of ``workers`` processes; read and scan time
    are the workers' own, so with more than one they add up to more than the wall time."""
    jobs = [
        ChunkScan(
            DatabaseRows(conninfo, chunk, start, end), _scan_chunk,
            {"meters": chunk, **scan_kwargs, "threads": max(1, scan_kwargs["threads"] // workers)},
        )
        for chunk in chunks
    ]  # fmt: skip
    yield from zip(chunks, run_chunks(jobs, workers), strict=True)


def by_kind(meters: MeterInfo) -> MeterInfo:
    """The meters grouped by detector kind (by id within a kind), so that a kind's meters
    share chunks: level shifts and the common-cause test compare each meter with the
    others of its kind scanned with it (``processing.fleet``)."""
    kind = [detector_kind(q, u) for q, u in zip(meters.quantity, meters.use, strict=True)]
    return meters.select(np.lexsort((meters.meter_id, np.asarray(kind))))


def chunk_size(cfg: PipelineConfig, *, meters: int, start: datetime, end: datetime) -> int:
    """Meters per chunk: ``cfg.chunk_meters``, or ``meters`` cut into as few chunks of equal
    size as keep each one's hourly float64 rows of the window within ``cfg.chunk_mb``.

    Equal, not full chunks then a remainder: the workers get the same work (at 10,000
    meters and 8 weeks, two of 5,000, not 5,830 and 4,170), and no last chunk of a few
    meters has its fleet tests compare those few."""
    if cfg.chunk_meters > 0:
        return cfg.chunk_meters
    hours = max(1, int((end - start) / HOUR))
    most = max(1, int(cfg.chunk_mb * 1e6) // (8 * hours))
    count = math.ceil(meters / most)  # as few chunks as fit
    return max(1, math.ceil(meters / max(count, 1)))


def _reset_rows(
    conn: psycopg.Connection, chunk: MeterInfo, *, start: datetime, end: datetime
) -> list[AnomalyRow]:
    cum = chunk.meter_id[chunk.cumulative]
    if cum.size == 0:
        return []
    resets = load_counter_resets(conn, cum.tolist(), start=start, end=end)
    num = finite_or_none
    return [
        AnomalyRow(int(m), "counter_reset", ts, ts, 1.0, num(before), num(after),
                   f"Counter reset at {ts.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M}: index went from "
                   f"{before:.6g} to {after:.6g} (meter replaced or restarted)")
        for m, ts, before, after in zip(
            resets.meter_id.tolist(), resets.ts, resets.value_before.tolist(),
            resets.value_after.tolist(), strict=True,
        )
    ]  # fmt: skip
