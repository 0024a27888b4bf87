"""`wattwatch process`: the scheduled job — rollups and retention, anomalies, insulation.

Every run refreshes the rollups first (the analytics read them), then scans the trailing
window for anomalies; insulation assessments are recomputed once a (local) day.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from types import FrameType
from typing import Final

from processing.detector_config import tuned_configs, tuned_quality
from processing.insulation import run_insulation
from processing.pipeline import (
    LOCAL_TZ,
    AnomalyRunSummary,
    PipelineConfig,
    Progress,
    no_progress,
    run_anomalies,
    trial_scan,
)
from storage.database import connect, is_transient, timescale_info
from storage.rollups import apply_retention, refresh_rollups
from wattwatch.errors import ConfigError, TransientStorageError
from wattwatch.logs import setup_logging
from wattwatch.settings import Settings
from wattwatch.stack.stack import Stack

log = logging.getLogger("wattwatch.processing")

STAGES: Final = ("rollups", "anomalies", "insulation")
Summary = dict[str, dict[str, object]]


def pipeline_config(settings: Settings) -> PipelineConfig:
    """The pipeline knobs that settings control."""
    return PipelineConfig(
        context_weeks=settings.processing_context_weeks,
        chunk_meters=settings.processing_chunk_meters,
        chunk_mb=settings.processing_chunk_mb,
        insulation_min_days=min(365, settings.processing_insulation_days),
        outdoor_meter_id=settings.processing_outdoor_meter_id,
        threads=settings.processing_threads or (os.cpu_count() or 1),
        workers=settings.processing_workers or (os.cpu_count() or 1),
        detectors=tuned_configs(settings.processing_detectors),
        quality_by_kind=tuned_quality(settings.processing_quality),
    )


def check_thresholds(settings: Settings) -> None:
    """Scan a small synthetic chunk with the operator's thresholds once, before the runs
    (``pipeline.trial_scan``), so that values no named rule refuses but a scan cannot work
    with stop the start with one line, not every run.

    Raises
    ------
    ConfigError
        ``WATTWATCH_PROCESSING_DETECTORS: <kind>: …`` or the same for ``…_QUALITY``.
    """
    cfg = pipeline_config(settings)
    try:
        trial_scan(detectors=cfg.detectors)
    except ValueError as exc:
        raise ConfigError(f"WATTWATCH_PROCESSING_DETECTORS: {exc}") from None
    try:
        trial_scan(quality_by_kind=cfg.quality_by_kind)
    except ValueError as exc:
        raise ConfigError(f"WATTWATCH_PROCESSING_QUALITY: {exc}") from None


def _time_split(run: AnomalyRunSummary) -> str:
    """Where an anomaly run's time went, for its report line."""
    parts = f"{run.read_seconds:.1f} reading, {run.scan_seconds:.1f} scanning"
    return f": {parts}" if run.workers == 1 else f"; {run.workers} workers' seconds: {parts}"


def _local_day(ts: datetime) -> date:
    return ts.astimezone(LOCAL_TZ).date()


def run_once(
    settings: Settings,
    report: Callable[[str], None],
    *,
    only: Sequence[str] = STAGES,
    since: datetime | None = None,
    until: datetime | None = None,
    progress: Progress = no_progress,
) -> Summary:
    """Run the chosen stages once; returns a summary per stage.

    Parameters
    ----------
    only : sequence of {"rollups", "anomalies", "insulation"}
    since, until : datetime, optional
        Anomalies: events ending in ``[since, until)`` are stored (default: the trailing
        ``processing_report_hours`` up to the last full hour). Insulation: the days
        ``[since, until)`` (default: ``processing_insulation_days`` up to yesterday).
    """
    unknown = set(only) - set(STAGES)
    if unknown:
        raise ValueError(f"only: unknown stage(s) {sorted(unknown)}; known: {', '.join(STAGES)}")
    cfg = pipeline_config(settings)
    now = datetime.now(UTC)
    end = (until or now).astimezone(UTC)
    out: Summary = {}
    database_url = Stack(settings).database_url()
    with connect(database_url) as conn:
        if "rollups" in only:
            progress("rollups", 0, 1)
            run = refresh_rollups(conn)
            report(
                f"rollups: {run.hours_claimed} dirty hour(s) in {run.ranges} range(s) → "
                f"{run.hourly_rows} hourly and {run.daily_rows} daily row(s)"
            )
            dropped = apply_retention(conn, timescale_info(conn), days=settings.retention_days)
            conn.commit()
            report(
                f"retention: {dropped} chunk(s) older than {settings.retention_days} days dropped"
            )
            out["rollups"] = {**asdict(run), "chunks_dropped": dropped}
            progress("rollups", 1, 1)
        if "anomalies" in only:
            report_from = since or end - timedelta(hours=settings.processing_report_hours)
            a = run_anomalies(
                conn, end=end, report_from=report_from.astimezone(UTC), config=cfg,
                progress=progress, conninfo=database_url,
            )  # fmt: skip
            report(
                f"anomalies: {a.meters} meter(s) in {a.chunks} chunk(s), {a.events} event(s): "
                f"{a.inserted} new, {a.extended} extended; level-shift warnings: "
                f"{a.warnings_confirmed} confirmed, {a.warnings_withdrawn} withdrawn; "
                f"{a.retracted} event(s) retracted "
                f"({a.seconds:.1f} s{_time_split(a)})"
            )
            out["anomalies"] = asdict(a)
        if "insulation" in only:
            stop_day = _local_day(end) if until is not None else _local_day(now)
            first_day = (
                _local_day(since)
                if since is not None
                else stop_day - timedelta(days=settings.processing_insulation_days)
            )
            ins = run_insulation(
                conn, first_day=first_day, stop_day=stop_day, config=cfg, progress=progress
            )
            report(
                f"insulation {first_day}..{stop_day - timedelta(days=1)}: {ins.buildings} "
                f"building(s), {ins.qualified} assessed, {ins.passoires} passoire(s), "
                f"{ins.arx} ARX fit(s) ({ins.seconds:.1f} s)"
            )
            out["insulation"] = asdict(ins)
    return out


def run_service(settings: Settings) -> None:
    """Run rollups and anomalies every ``processing_interval_min``, insulation once a day,
    until SIGTERM/SIGINT."""
    setup_logging(settings.log_level)
    check_thresholds(settings)
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping after the current run", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    interval_s = settings.processing_interval_min * 60
    log.info("processing service started, every %.1f min", settings.processing_interval_min)
    insulation_done: date | None = None
    while not stop.is_set():
        today = _local_day(datetime.now(UTC))
        stages = ["rollups", "anomalies"]
        if insulation_done != today:
            stages.append("insulation")
        try:
            run_once(settings, log.info, only=stages)
            if "insulation" in stages:
                insulation_done = today
        except TransientStorageError as exc:
            log.warning("database unavailable, next try in %.0f s: %s", interval_s, exc)
        except BrokenProcessPool as exc:
            # A worker was killed (out of memory?): the next run starts new ones.
            log.warning("a worker process died, next try in %.0f s: %s", interval_s, exc)
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning("database error, next try in %.0f s: %s", interval_s, exc)
        stop.wait(interval_s)
