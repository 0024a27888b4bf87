"""One processing run over a window: anomalies per chunk of meters, insulation per building.

Pure array steps (``scan_meters``, ``assess_buildings``) are separate from the database
wrappers (``run_anomalies``, ``run_insulation``), so the accuracy bench runs the same code
on simulated arrays.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import psycopg

from processing import arx, changepoint, normalise
from processing.baseline import BLANK_WEEKS, HOURS_PER_WEEK
from processing.detector_config import (
    DETECTOR_CONFIGS,
    OUTDOOR_TEMPERATURE_DETECTOR,
    TEMPERATURE_DETECTOR,
    DetectorConfig,
    config_for,
)
from processing.detectors import anomaly_scan
from processing.events import DAY_KINDS, Anomaly
from processing.fleet import CommonCauseConfig, common_cause, shared_nights
from processing.quality_config import QualityConfig
from processing.workers import ChunkResult, ChunkScan, DatabaseRows, run_chunks
from storage.matrices import (
    HOUR,
    BuildingDaily,
    MeterInfo,
    iter_matrices,
    load_building_daily,
    load_counter_resets,
    load_matrix,
    load_meter_info,
    meter_chunks,
)
from storage.results import (
    AnomalyRow,
    Assessment,
    settle_warnings,
    write_anomalies,
    write_assessments,
)
from wattwatch.climate import normal_daily_temp_c
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
SENSOR_CONFIGS: Final = {
    "temperature": TEMPERATURE_DETECTOR,
    "outdoor_temperature": OUTDOOR_TEMPERATURE_DETECTOR,
}
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
# Conventional hot water of electrically heated buildings [kWh/m²/yr]: their electricity
# baseload mixes it with appliances, so it cannot be read off the change-point fit.
DHW_KWH_PER_M2_YR: Final = {"household": 20.0, "gym": 15.0}
DHW_DEFAULT_KWH_PER_M2_YR: Final = 2.0
# A home that declared its occupants: the DPE method's (3CL 2021) draw of 56 L a day at 40 °C
# per person, heated from 10.5 °C mains water (northern France's yearly mean) [kWh/yr].
DHW_KWH_PER_PERSON_YR: Final = 1.163 * 56.0 * (40.0 - 10.5) * 365.0 / 1000.0
DEFAULT_EFFICIENCY: Final = {"gas": 0.9, "heat": 1.0, "electricity": 1.0}
CARRIER_OF_METER: Final = {"gas": "gas", "heat": "district_heat", "electricity": "electricity"}
ERA_BOUNDS: Final = (1948, 1975, 1990, 2005, 2013)  # French thermal-regulation eras

Progress = Callable[[str, int, int], None]


def _no_progress(_stage: str, _done: int, _total: int) -> None:
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


# --- anomalies ------------------------------------------------------------------------------


def detector_kind(quantity: str, use: str) -> str:
    """Key of ``DETECTOR_CONFIGS`` (of ``SENSOR_CONFIGS`` for temperature sensors) for a
    meter."""
    if quantity in SENSOR_KINDS:
        return SENSOR_KINDS[quantity]
    if quantity in ("gas", "heat"):
        return f"household_{quantity}" if use in _OPEN_DAILY else quantity
    if use in DETECTOR_CONFIGS:
        return use
    return "office" if use in _OFFICE_LIKE else "household"


def _config(kind: str) -> DetectorConfig:
    return SENSOR_CONFIGS[kind] if kind in SENSOR_CONFIGS else config_for(kind)


def _quality(kind: str, quality: QualityConfig | None) -> QualityConfig:
    """The data-quality thresholds of a kind: ``quality`` (default ``QualityConfig()``) with
    the kind's own (``QUALITY_BY_KIND``) and, for temperature sensors, exact repeats."""
    q = quality if quality is not None else QualityConfig()
    if kind in QUALITY_BY_KIND:
        q = replace(q, **QUALITY_BY_KIND[kind])
    if kind in SENSOR_CONFIGS:
        q = replace(
            q,
            flatline_exact=TEMPERATURE_QUALITY.flatline_exact,
            check_negative=TEMPERATURE_QUALITY.check_negative,
        )
    return q


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

    French public holidays of the window's years are checked on every energy meter.

    Returns
    -------
    list of Anomaly
        ``meter_index`` is the row in ``values``; level shifts and drifts count days.
    """
    x = np.asarray(values, dtype=np.float64)
    k = np.asarray(kinds)
    if k.shape != (x.shape[0],):
        raise ValueError(f"kinds: expected {x.shape[0]} entries, got {k.shape}")
    out: list[Anomaly] = []
    last = local_start + timedelta(hours=x.shape[1])
    holidays = french_holidays(range(local_start.year, last.year + 1))
    for kind in np.unique(k).tolist():
        rows = np.flatnonzero(k == kind)
        found = anomaly_scan(
            x[rows], start=local_start, weeks=weeks, config=_config(kind),
            quality=_quality(kind, quality),
            holidays=holidays, outdoor_temp_c=outdoor_temp_c, sun_w_m2=sun_w_m2,
            threads=threads,
        )  # fmt: skip
        out.extend(replace(a, meter_index=int(rows[a.meter_index])) for a in found)
    return _without_common_across_kinds(out, k, x.shape[1])


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
    found: list[Anomaly], kinds: npt.NDArray[np.str_], steps: int
) -> list[Anomaly]:
    """``found`` without the events of weather-following meters (kinds whose config has a
    ``daily_weather_model``) that :func:`~processing.fleet.common_cause` or
    :func:`~processing.fleet.shared_nights` calls common when those meters are taken as
    one fleet; steps are hourly."""
    weather = [kd for kd in np.unique(kinds).tolist() if _config(kd).daily_weather_model]
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


def _finite(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


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
                       _finite(a.expected), _finite(a.observed), a.reason, a.status)
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
    progress: Progress = _no_progress,
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
        "outdoor_temp_c": _outdoor_mean(conn, start=start, end=end, meter_id=cfg.outdoor_meter_id),
        "sun_w_m2": _irradiance_mean(conn, start=start, end=end), "threads": cfg.threads,
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


def _outdoor_mean(
    conn: psycopg.Connection, *, start: datetime, end: datetime, meter_id: int | None
) -> FloatArray | None:
    """Hourly outdoor temperature over the window, mean of the stations [°C]; None if none."""
    outdoor = load_meter_info(
        conn, meter_ids=None if meter_id is None else [meter_id], quantities=["outdoor_temperature"]
    )
    if len(outdoor) == 0:
        return None
    return _mean_of_meters(load_matrix(conn, outdoor, start=start, end=end).values)


def _irradiance_mean(
    conn: psycopg.Connection, *, start: datetime, end: datetime
) -> FloatArray | None:
    """Hourly global horizontal irradiance over the window, mean of the city's irradiance
    meters [W/m²]; None if it has none."""
    sun = load_meter_info(conn, quantities=["irradiance"])
    if len(sun) == 0:
        return None
    return _mean_of_meters(load_matrix(conn, sun, start=start, end=end).values)


def _reset_rows(
    conn: psycopg.Connection, chunk: MeterInfo, *, start: datetime, end: datetime
) -> list[AnomalyRow]:
    cum = chunk.meter_id[chunk.cumulative]
    if cum.size == 0:
        return []
    resets = load_counter_resets(conn, cum.tolist(), start=start, end=end)
    return [
        AnomalyRow(int(m), "counter_reset", ts, ts, 1.0, _finite(before), _finite(after),
                   f"Counter reset at {ts.astimezone(LOCAL_TZ):%Y-%m-%d %H:%M}: index went from "
                   f"{before:.6g} to {after:.6g} (meter replaced or restarted)")
        for m, ts, before, after in zip(
            resets.meter_id.tolist(), resets.ts, resets.value_before.tolist(),
            resets.value_after.tolist(), strict=True,
        )
    ]  # fmt: skip


# --- insulation -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArxInputs:
    """Hourly series of the buildings with an indoor sensor, aligned on the same hours.

    Attributes
    ----------
    rows : ndarray of int64, shape (k,)
        Row of each building in the :class:`~storage.matrices.BuildingDaily` assessed.
    ti_c : ndarray, shape (k, hours)
        Indoor temperature [°C].
    te_c : ndarray, shape (hours,) or (k, hours)
        Outdoor temperature [°C].
    heating_kwh : ndarray, shape (k, hours)
        Energy read by the building's heating meter in each hour, register units (fuel or
        electricity drawn, or heat for a heat meter) [kWh].
    solar_w_per_m2 : ndarray, optional, shape (hours,) or (k, hours)
        Global horizontal irradiance [W/m²]; without it the balance has no solar term and
        overstates HLC (sunny days need less heat at the same indoor − outdoor).
    """

    rows: IntArray
    ti_c: FloatArray
    te_c: FloatArray
    heating_kwh: FloatArray
    solar_w_per_m2: FloatArray | None = None


def _heat_delivered_w(
    inputs: ArxInputs, *, eta: FloatArray, baseload_kwh_d: FloatArray, heat_pump: BoolArray
) -> FloatArray:
    """Heat delivered by the heating system per hour [W] from the register's energy.

    The change-point baseload (hot water, and appliances on an electricity meter) is taken
    off first: it is not space heating, and a heat pump does not multiply it. Heat pumps use
    the COP at each hour's outdoor temperature (:func:`changepoint.heat_pump_day_weight`).
    """
    rows = inputs.rows
    base = np.nan_to_num(baseload_kwh_d[rows])[:, np.newaxis] / 24.0
    heat = (inputs.heating_kwh - base) * (1000.0 * eta[rows])[:, np.newaxis]
    hp = np.flatnonzero(heat_pump[rows])
    if hp.size:
        te = np.broadcast_to(inputs.te_c, inputs.ti_c.shape)[hp]
        heat[hp] /= changepoint.heat_pump_day_weight(te, eta[rows][hp])
    return np.asarray(heat, dtype=np.float64)


def _heat_pump_weights(
    heat_pump: BoolArray, te: FloatArray, cop: FloatArray, shape: tuple[int, int]
) -> FloatArray | None:
    """Day weights of the change-point fit: COP(Te) for heat pumps, 1 for the rest."""
    if not heat_pump.any():
        return None
    weight = np.ones(shape)
    te_hp = np.broadcast_to(te, shape)[heat_pump]
    weight[heat_pump] = changepoint.heat_pump_day_weight(te_hp, cop[heat_pump])
    return weight


def _indoor_sensor_hlc(
    inputs: ArxInputs | None,
    m: int,
    *,
    cfg: PipelineConfig,
    eta: FloatArray,
    baseload_kwh_d: FloatArray,
    heat_pump: BoolArray,
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.str_]]:
    """HLC [W/K] from the daily energy balance, τ [h] from the hourly ARX, and a status."""
    arx_hlc = np.full(m, np.nan)
    arx_tau = np.full(m, np.nan)
    arx_status = np.full(m, "", dtype="<U64")
    if inputs is None or not inputs.rows.size:
        return arx_hlc, arx_tau, arx_status
    rows = inputs.rows
    heat_w = _heat_delivered_w(inputs, eta=eta, baseload_kwh_d=baseload_kwh_d, heat_pump=heat_pump)
    hourly = arx.fit_arx(inputs.ti_c, inputs.te_c, heat_w, step_h=1.0, min_steps=cfg.arx_min_steps)
    balance = arx.fit_daily_balance(
        inputs.ti_c,
        inputs.te_c,
        heat_w,
        solar_w_per_m2=inputs.solar_w_per_m2,
        max_outdoor_c=cfg.balance_max_outdoor_c,
        min_days=cfg.balance_min_days,
    )
    ok = np.isfinite(balance.hlc_w_per_k) & (balance.hlc_w_per_k > 0)
    tau_ok = ok & np.isfinite(hourly.tau_h) & (hourly.hlc_w_per_k > 0)
    arx_hlc[rows] = np.where(ok, balance.hlc_w_per_k, np.nan)
    arx_tau[rows] = np.where(tau_ok, hourly.tau_h, np.nan)
    arx_status[rows] = np.where(
        ok,
        "ok",
        np.where(
            balance.n_days < cfg.balance_min_days,
            f"fewer than {cfg.balance_min_days} heating days with indoor, outdoor and heating data",
            "energy balance not physical (no heating variation or HLC <= 0)",
        ),
    )
    return arx_hlc, arx_tau, arx_status


@dataclass(frozen=True, slots=True)
class InsulationResult:
    """Per-building results of :func:`assess_buildings`; arrays of shape (buildings,).

    Attributes
    ----------
    fit : ChangePointFit
    interval : HlcInterval
    efficiency : ndarray — η used for HLC (heat meter 1, boiler efficiency, COP) [-].
    heating_kwh_per_year : ndarray — weather-normalised heating, final energy [kWh/yr].
    final_kwh_per_m2 : ndarray — heating + hot water, final energy [kWh/m²/yr].
    dpe : DpeEstimate
    worst_decile : ndarray of bool
    slope_change : SlopeChange — second half of the period against the first.
    arx_hlc_w_per_k, arx_tau_h : ndarray — NaN without an indoor sensor or a usable fit.
    arx_status : ndarray of str — "" (no sensor), "ok" or a reason.
    methods_disagree : ndarray of bool
    """

    fit: changepoint.ChangePointFit
    interval: changepoint.HlcInterval
    efficiency: FloatArray
    heating_kwh_per_year: FloatArray
    final_kwh_per_m2: FloatArray
    dpe: normalise.DpeEstimate
    worst_decile: BoolArray
    slope_change: changepoint.SlopeChange
    arx_hlc_w_per_k: FloatArray
    arx_tau_h: FloatArray
    arx_status: npt.NDArray[np.str_]
    methods_disagree: BoolArray


def _era(year_built: IntArray) -> IntArray:
    return np.where(year_built < 0, -1, np.searchsorted(ERA_BOUNDS, year_built)).astype(np.int64)


def _shared_te(te: FloatArray) -> FloatArray:
    """One row when every building sees the same temperature (the fast fit path)."""
    if te.shape[0] > 1 and np.array_equal(te, np.broadcast_to(te[:1], te.shape), equal_nan=True):
        return te[:1]
    return te


# A daily mean this far from the site's normal for the date is a faulty station, not weather:
# Lille's coldest days (February 2012, −8 °C) and hottest (July 2019, 30 °C) stay within 12 K.
OUTDOOR_PLAUSIBLE_K: Final = 15.0


def plausible_outdoor(te: FloatArray, first_day: date) -> FloatArray:
    """Daily outdoor temperatures with NaN where they stray more than ``OUTDOOR_PLAUSIBLE_K``
    from the climate normal of the date (``wattwatch.climate``).

    Every building's heat-loss fit shares the station's series: three days of a probe
    reading 0 °C in August would read as cold days without heating for all of them.
    """
    dates = np.datetime64(first_day, "D") + np.arange(te.shape[-1])
    doy = (dates - dates.astype("datetime64[Y]")).astype(np.float64) + 0.5  # mid-day
    normal = normal_daily_temp_c(doy)
    with np.errstate(invalid="ignore"):
        wrong = np.abs(te - normal) > OUTDOOR_PLAUSIBLE_K
    return np.where(wrong, np.nan, te)


DIM_MIN_HEATING_DAYS: Final = 30  # heating days among the dim ones for their own slope


def _dim_day_fit(
    q: FloatArray,
    te: FloatArray,
    solar: FloatArray | None,
    fit: changepoint.ChangePointFit,
    *,
    cfg: PipelineConfig,
    efficiency: FloatArray,
    day_weight: FloatArray | None,
) -> tuple[changepoint.ChangePointFit, FloatArray]:
    """The fit whose slope gives each building's HLC, and the energy it was fitted on.

    Sunny days are also the mild ones: over every day, solar gains make heating look
    steeper against the outdoor temperature, and the slope over-estimates HLC (a median
    +8–10 % on the simulated city, more for buildings heated into spring). On the days with
    at most ``cfg.dim_day_w_per_m2`` of mean irradiance the sun's share of the heat balance
    is small; buildings with ``DIM_MIN_HEATING_DAYS`` heating days among them take that
    fit's slope, HLC and balance point (for the interval), the others keep ``fit``'s.
    """
    if solar is None or cfg.dim_day_w_per_m2 <= 0:
        return fit, q
    with np.errstate(invalid="ignore"):
        dim = np.asarray(solar, dtype=np.float64).reshape(-1) <= cfg.dim_day_w_per_m2
    q_dim = np.where(dim[np.newaxis, :], q, np.nan)
    relaxed = changepoint.SufficiencyRules(
        min_days=cfg.insulation_min_days,
        max_missing_days=q.shape[1],  # the bright days are left out on purpose
        min_heating_days=DIM_MIN_HEATING_DAYS,
    )
    dim_fit = changepoint.fit_change_point(
        q_dim, te, efficiency=efficiency, rules=relaxed, day_weight=day_weight
    )
    use = fit.qualified & dim_fit.qualified
    pick = use[:, np.newaxis]
    return (
        replace(
            fit,
            slope=np.where(use, dim_fit.slope, fit.slope),
            hlc_w_per_k=np.where(use, dim_fit.hlc_w_per_k, fit.hlc_w_per_k),
            balance_point=np.where(use, dim_fit.balance_point, fit.balance_point),
        ),
        np.where(pick, q_dim, q),
    )


def assess_buildings(
    daily: BuildingDaily,
    *,
    on: date,
    config: PipelineConfig | None = None,
    arx_inputs: ArxInputs | None = None,
) -> InsulationResult:
    """Change-point fit, interval, normalisation, DPE estimate and ranking of every building.

    Parameters
    ----------
    daily : BuildingDaily
        Daily heating energy [kWh/d] and outdoor temperature [°C].
    on : date
        Assessment date (electricity's primary-energy factor).
    arx_inputs : ArxInputs, optional
        Hourly series of the buildings with an indoor sensor.

    Notes
    -----
    Normal-year heating is ``s·HDD(Tb)`` scaled by ``normal_hdd / HDD₁₈`` of the period's
    weather (the municipality's normal degree-days are at base 18 °C). Hot water is the
    change-point baseload for heat and gas registers, a conventional figure for electric
    heating: per occupant where the home declared them, else per m². Heat meters read
    delivered heat, so final energy divides by η.
    Heat pumps of a known carrier use a COP that follows the outdoor temperature.

    With an indoor sensor, HLC also comes from a daily energy balance on heating days
    (:func:`arx.fit_daily_balance`); τ still comes from the hourly 1R1C ARX.
    """
    cfg = config if config is not None else PipelineConfig()
    q, te = daily.heating_kwh, _shared_te(plausible_outdoor(daily.outdoor_temp_c, daily.first_day))
    quantity = daily.heating_quantity
    default_eta = np.asarray([DEFAULT_EFFICIENCY.get(str(k), 1.0) for k in quantity])
    eta = np.where(np.isfinite(daily.heating_efficiency), daily.heating_efficiency, default_eta)
    is_heat = quantity == "heat"
    eta_hlc = np.where(is_heat, 1.0, eta)
    heat_pump = (daily.heating_carrier == "heat_pump") & (quantity == "electricity")
    day_weight = _heat_pump_weights(heat_pump, te, eta_hlc, q.shape)
    rules = changepoint.SufficiencyRules(
        min_days=cfg.insulation_min_days,
        max_missing_days=cfg.max_missing_days,
        min_heating_days=cfg.min_heating_days,
    )
    fit = changepoint.fit_change_point(
        q, te, efficiency=eta_hlc, rules=rules, day_weight=day_weight
    )
    hlc_fit, q_hlc = _dim_day_fit(
        q, te, daily.solar_w_per_m2, fit, cfg=cfg, efficiency=eta_hlc, day_weight=day_weight
    )
    interval = changepoint.bootstrap_hlc(
        q_hlc,
        te,
        hlc_fit,
        n_boot=cfg.n_boot,
        block_days=min(7, max(1, daily.days)),
        efficiency=eta_hlc,
        day_weight=day_weight,
    )

    te_full = np.broadcast_to(te, q.shape)
    valid = ~np.isnan(q) & ~np.isnan(te_full)
    tb = np.nan_to_num(fit.balance_point)[:, np.newaxis]
    hdd_tb_days = np.where(valid, np.maximum(tb - te_full, 0.0), 0.0)
    if day_weight is not None:
        # A heat pump's register energy per degree-day varies; days without a temperature
        # have no weight and no degree-days.
        hdd_tb_days *= np.where(valid, day_weight, 0.0)
    hdd_tb = hdd_tb_days.sum(axis=1)
    hdd_18 = np.where(valid, normalise.degree_days(te_full), 0.0).sum(axis=1)
    metered_heating = fit.slope * hdd_tb  # register energy for heating over the valid days
    normal = np.where(np.isfinite(daily.normal_hdd), daily.normal_hdd, normalise.LILLE_NORMAL_DJU)
    with np.errstate(invalid="ignore", divide="ignore"):
        heating_normal = np.where(
            hdd_18 > 0, metered_heating * normal / np.where(hdd_18 > 0, hdd_18, 1.0), np.nan
        )
        heating_final = np.where(is_heat, heating_normal / eta, heating_normal)
        dhw_metered = 365.0 * fit.baseload
        conventional = (
            np.asarray(
                [DHW_KWH_PER_M2_YR.get(str(u), DHW_DEFAULT_KWH_PER_M2_YR) for u in daily.use]
            )
            * daily.floor_area_m2
        )
        if daily.occupants is not None:
            # Hot water follows the people in a home, not its floor area.
            per_person = daily.occupants * DHW_KWH_PER_PERSON_YR
            conventional = np.where(daily.occupants > 0, per_person, conventional)
        dhw_final = np.where(
            quantity == "electricity",
            conventional,
            np.where(is_heat, dhw_metered / eta, dhw_metered),
        )
    final_per_m2 = normalise.per_m2(heating_final + dhw_final, daily.floor_area_m2)
    carrier = np.where(
        daily.heating_carrier != "",
        daily.heating_carrier,
        [CARRIER_OF_METER.get(str(k), "electricity") for k in quantity],
    )
    dpe = normalise.dpe_estimate(final_per_m2, carrier, on=on)
    groups = normalise.group_ids(daily.municipality_id, _era(daily.year_built), daily.use)
    decile = normalise.worst_decile(
        np.where(fit.qualified, final_per_m2, np.nan), groups
    ).worst_decile

    half = daily.days // 2
    slope = changepoint.slope_change(
        q[:, :half], te[:, :half], q[:, half:], te[:, half:],
        balance_point=np.where(fit.qualified, fit.balance_point, 15.0),
    )  # fmt: skip

    arx_hlc, arx_tau, arx_status = _indoor_sensor_hlc(
        arx_inputs,
        len(daily),
        cfg=cfg,
        eta=eta_hlc,
        baseload_kwh_d=fit.baseload,
        heat_pump=heat_pump,
    )
    # Reported: the dim days' slope and HLC, with the balance point and baseload that fit
    # every day at that slope (the heating with the year's average sun). The normal-year
    # need above keeps the free fit of every day, which matches the year's total heating.
    tb_all, b_all = changepoint.fit_balance_point(
        q, te, hlc_fit.slope, min_heating_days=cfg.min_heating_days, day_weight=day_weight
    )
    refit = np.isfinite(tb_all)
    fit = replace(
        fit,
        slope=hlc_fit.slope,
        hlc_w_per_k=hlc_fit.hlc_w_per_k,
        balance_point=np.where(refit, tb_all, fit.balance_point),
        baseload=np.where(refit, b_all, fit.baseload),
    )
    disagree = arx.hlc_disagreement(arx_hlc, fit.hlc_w_per_k, tolerance=cfg.disagree_tolerance)
    return InsulationResult(
        fit=fit,
        interval=interval,
        efficiency=eta_hlc,
        heating_kwh_per_year=heating_final,
        final_kwh_per_m2=final_per_m2,
        dpe=dpe,
        worst_decile=decile,
        slope_change=slope,
        arx_hlc_w_per_k=arx_hlc,
        arx_tau_h=arx_tau,
        arx_status=arx_status,
        methods_disagree=disagree,
    )


_REASONS: Final = {
    changepoint.TOO_SHORT: "period of {n} days is shorter than the {min} days required",
    changepoint.TOO_MANY_MISSING: "{missing} days missing; at most {max_missing} allowed",
    changepoint.TOO_FEW_HEATING: "only {heating} heating days; at least {min_heating} needed",
}


def assessment_rows(
    daily: BuildingDaily,
    result: InsulationResult,
    *,
    period_start: date,
    period_end: date,
    config: PipelineConfig | None = None,
) -> list[Assessment]:
    """Rows for ``insulation_assessments``: one change-point row per building, one ARX row
    per building with an indoor sensor."""
    cfg = config if config is not None else PipelineConfig()
    fit, dpe = result.fit, result.dpe
    out: list[Assessment] = []
    f = _finite

    def text(v: npt.NDArray[np.str_], i: int) -> str | None:
        return str(v[i]) or None

    for i, bid in enumerate(daily.building_id.tolist()):
        status = str(fit.status[i])
        base = Assessment(bid, period_start, period_end, "changepoint", "ok")
        if daily.heating_meter_id[i] < 0:
            out.append(
                Assessment(bid, period_start, period_end, "changepoint", "insufficient_data",
                           "no heating register (heat, gas or electricity meter) found")
            )  # fmt: skip
        elif status != changepoint.OK:
            reason = _REASONS[status].format(
                n=daily.days, min=cfg.insulation_min_days, missing=int(fit.n_missing_days[i]),
                max_missing=cfg.max_missing_days, heating=int(fit.n_heating_days[i]),
                min_heating=cfg.min_heating_days,
            )  # fmt: skip
            out.append(
                Assessment(bid, period_start, period_end, "changepoint", "insufficient_data",
                           reason, n_days=int(fit.n_days[i]))
            )  # fmt: skip
        else:
            hlc = f(fit.hlc_w_per_k[i])
            area = daily.floor_area_m2[i]
            out.append(
                Assessment(
                    base.building_id,
                    period_start,
                    period_end,
                    "changepoint",
                    "ok",
                    None,
                    hlc_w_per_k=hlc,
                    hlc_low_w_per_k=f(result.interval.low[i]),
                    hlc_high_w_per_k=f(result.interval.high[i]),
                    hlc_w_per_m2k=f(fit.hlc_w_per_k[i] / area) if area > 0 else None,
                    balance_temp_c=f(fit.balance_point[i]),
                    base_kwh_per_day=f(fit.baseload[i]),
                    slope_kwh_per_day_k=f(fit.slope[i]),
                    r2=f(fit.r2[i]),
                    cv_rmse=f(fit.cv_rmse[i]),
                    nmbe=f(fit.nmbe[i]),
                    n_days=int(fit.n_days[i]),
                    heating_kwh_per_year=f(result.heating_kwh_per_year[i]),
                    primary_kwh_per_m2=f(dpe.primary_kwh_per_m2[i]),
                    co2_kg_per_m2=f(dpe.co2_kg_per_m2[i]),
                    energy_class=text(dpe.energy_class, i),
                    climate_class=text(dpe.climate_class, i),
                    label=text(dpe.label, i),
                    is_passoire=bool(dpe.passoire[i]) if dpe.label[i] else None,
                    worst_decile=bool(result.worst_decile[i]),
                    methods_disagree=bool(result.methods_disagree[i]),
                    slope_change_rel=f(result.slope_change.relative_change[i]),
                    slope_change_p=f(result.slope_change.p_value[i]),
                )
            )
        arx_status = str(result.arx_status[i])
        if arx_status == "ok":
            out.append(
                Assessment(
                    bid,
                    period_start,
                    period_end,
                    "arx",
                    "ok",
                    hlc_w_per_k=f(result.arx_hlc_w_per_k[i]),
                    tau_h=f(result.arx_tau_h[i]),
                    methods_disagree=bool(result.methods_disagree[i]),
                )
            )
        elif arx_status:
            out.append(
                Assessment(bid, period_start, period_end, "arx", "insufficient_data", arx_status)
            )
    return out


@dataclass(slots=True)
class InsulationRunSummary:
    """What an insulation run did."""

    buildings: int = 0
    qualified: int = 0
    arx: int = 0
    passoires: int = 0
    worst_decile: int = 0
    slope_changes: int = 0
    rows: int = 0
    labels: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def _mean_of_meters(values: FloatArray) -> FloatArray:
    """NaN-ignoring mean over the meters of each hour (NaN where none reads)."""
    ok = ~np.isnan(values)
    n = ok.sum(axis=0)
    mean: FloatArray = np.divide(
        np.where(ok, values, 0.0).sum(axis=0), n, out=np.full(values.shape[1], np.nan), where=n > 0
    )
    return mean


def _arx_inputs(
    conn: psycopg.Connection, daily: BuildingDaily, *, first_day: date, stop_day: date,
    outdoor_meter_id: int | None,
) -> ArxInputs | None:  # fmt: skip
    """Hourly indoor and outdoor temperature, heating register energy (and irradiance when a
    sensor reports it) of the buildings with an indoor sensor."""
    indoor = load_meter_info(conn, quantities=["indoor_temperature"])
    pos = {b: i for i, b in enumerate(daily.building_id.tolist())}
    keep = np.asarray(
        [b in pos and daily.heating_meter_id[pos[b]] >= 0 for b in indoor.building_id.tolist()],
        dtype=bool,
    )
    indoor = indoor.select(keep)
    if len(indoor) == 0:
        return None
    # One sensor per building (the lowest id).
    _, first = np.unique(indoor.building_id, return_index=True)
    indoor = indoor.select(np.sort(first))
    rows = np.asarray([pos[b] for b in indoor.building_id.tolist()], dtype=np.int64)
    start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=LOCAL_TZ)
    end = datetime(stop_day.year, stop_day.month, stop_day.day, tzinfo=LOCAL_TZ)
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    ti = load_matrix(conn, indoor, start=start, end=end).values
    heat_meters = load_meter_info(conn, meter_ids=daily.heating_meter_id[rows].tolist())
    order = {m: i for i, m in enumerate(heat_meters.meter_id.tolist())}
    heat = load_matrix(conn, heat_meters, start=start, end=end).values
    heat = heat[[order[m] for m in daily.heating_meter_id[rows].tolist()]]
    outdoor = load_meter_info(
        conn,
        meter_ids=None if outdoor_meter_id is None else [outdoor_meter_id],
        quantities=["outdoor_temperature"],
    )
    te = _mean_of_meters(load_matrix(conn, outdoor, start=start, end=end).values)
    solar = _irradiance_mean(conn, start=start, end=end)
    return ArxInputs(rows=rows, ti_c=ti, te_c=te, heating_kwh=heat, solar_w_per_m2=solar)


def run_insulation(
    conn: psycopg.Connection,
    *,
    first_day: date,
    stop_day: date,
    config: PipelineConfig | None = None,
    building_ids: Sequence[int] | None = None,
    progress: Progress = _no_progress,
) -> InsulationRunSummary:
    """Assess every building over ``[first_day, stop_day)`` and upsert the assessments.

    The stored period is ``[first_day, stop_day − 1 day]`` (inclusive dates).
    """
    cfg = config if config is not None else PipelineConfig()
    t0 = time.perf_counter()
    progress("insulation", 0, 3)
    daily = load_building_daily(
        conn, first_day=first_day, stop_day=stop_day, building_ids=building_ids,
        outdoor_meter_id=cfg.outdoor_meter_id,
    )  # fmt: skip
    progress("insulation", 1, 3)
    arx_in = _arx_inputs(
        conn, daily, first_day=first_day, stop_day=stop_day,
        outdoor_meter_id=cfg.outdoor_meter_id,
    )  # fmt: skip
    result = assess_buildings(daily, on=stop_day - timedelta(days=1), config=cfg, arx_inputs=arx_in)
    progress("insulation", 2, 3)
    rows = assessment_rows(
        daily, result, period_start=first_day, period_end=stop_day - timedelta(days=1), config=cfg
    )
    written = write_assessments(conn, rows)
    conn.commit()
    progress("insulation", 3, 3)
    ok = result.fit.qualified
    labels = result.dpe.label[ok]
    letters, counts = np.unique(labels[labels != ""], return_counts=True)
    return InsulationRunSummary(
        buildings=len(daily),
        qualified=int(ok.sum()),
        arx=int((result.arx_status == "ok").sum()),
        passoires=int((result.dpe.passoire & ok).sum()),
        worst_decile=int(result.worst_decile.sum()),
        slope_changes=int((ok & (result.slope_change.p_value < 0.01)).sum()),
        rows=written,
        labels={str(k): int(c) for k, c in zip(letters, counts, strict=True)},
        seconds=time.perf_counter() - t0,
    )
