"""`wattwatch process`: the scheduled job that keeps rollups fresh and applies retention.

Anomaly detection and insulation assessment join this loop as they land.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

from storage.database import connect, is_transient, timescale_info
from storage.rollups import apply_retention, refresh_rollups
from wattwatch.errors import TransientStorageError
from wattwatch.logs import setup_logging
from wattwatch.settings import Settings
from wattwatch.stack.stack import Stack

log = logging.getLogger("wattwatch.processing")


def run_once(settings: Settings, report: Callable[[str], None]) -> None:
    """Refresh the rollups of every hour written since the last run, then apply retention."""
    with connect(Stack(settings).database_url()) as conn:
        run = refresh_rollups(conn)
        report(
            f"rollups: {run.hours_claimed} dirty hour(s) in {run.ranges} range(s) → "
            f"{run.hourly_rows} hourly and {run.daily_rows} daily row(s)"
        )
        dropped = apply_retention(conn, timescale_info(conn), days=settings.retention_days)
        conn.commit()
        report(f"retention: {dropped} chunk(s) older than {settings.retention_days} days dropped")


def run_service(settings: Settings) -> None:
    """Run ``run_once`` every ``processing_interval_min`` until SIGTERM/SIGINT."""
    setup_logging(settings.log_level)
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping after the current run", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    interval_s = settings.processing_interval_min * 60
    log.info("processing service started, every %.1f min", settings.processing_interval_min)
    while not stop.is_set():
        try:
            run_once(settings, log.info)
        except TransientStorageError as exc:
            log.warning("database unavailable, next try in %.0f s: %s", interval_s, exc)
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning("database error, next try in %.0f s: %s", interval_s, exc)
        stop.wait(interval_s)
