"""`wattwatch ingest`: the loop that commits batches and only then acknowledges them.

At-least-once delivery from the broker plus an idempotent insert gives exactly-once rows:
a message is acknowledged after its readings (or its dead letter) are committed, and a
redelivered message finds its rows already there.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import psycopg
from prometheus_client import start_http_server

from ingest.batch import BatchPreparer, PreparedBatch
from ingest.metrics import IngestMetrics
from ingest.mqtt import BrokerError, Message, MqttConsumer
from ingest.registry import MeterRegistry
from ingest.routing import Router
from storage.anomalies import record_point_anomalies
from storage.database import connect, is_transient
from storage.dead_letters import write_dead_letters
from storage.operations import record_ingest_batch
from storage.readings import write_readings
from wattwatch.errors import StackError, TransientStorageError
from wattwatch.logs import setup_logging
from wattwatch.settings import Settings
from wattwatch.stack.stack import Stack

log = logging.getLogger("wattwatch.ingest")

BACKOFF_MAX_S = 10.0


@dataclass(slots=True)
class Totals:
    """Running totals, written to the status file for `wattwatch status`."""

    messages: int = 0
    redelivered: int = 0  # messages the broker sent again (DUP flag) after a crash or outage
    readings_written: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    batches: int = 0
    database_failures: int = 0
    last_commit_unix: float | None = None


class Ingestor:
    """Owns the broker consumer and two database connections (writes; meter look-ups)."""

    def __init__(
        self, settings: Settings, *, database_url: str, mqtt_url: str, status_file: Path | None
    ) -> None:
        self.settings = settings
        self.database_url = database_url
        self.router = Router(settings.ingest_topics)
        self.registry = MeterRegistry(auto_register=settings.ingest_auto_register)
        self.preparer = BatchPreparer(self.router, self.registry)
        self.metrics = IngestMetrics()
        self.totals = Totals()
        self.status_file = status_file
        self.stop = threading.Event()
        self.consumer = MqttConsumer(
            url=mqtt_url,
            client_id=settings.ingest_client_id,
            share_group=settings.ingest_share_group,
            routes=self.router.routes,
            # Twice the batch: the next batch arrives while this one commits.
            receive_maximum=2 * settings.ingest_batch_size,
            session_expiry_s=settings.ingest_session_expiry_s,
        )
        self._write: psycopg.Connection | None = None
        self._lookup: psycopg.Connection | None = None

    # --- database -----------------------------------------------------------------------------
    def _open_database(self) -> None:
        self._close_database()
        self._write = connect(self.database_url, application_name="wattwatch-ingest")
        self._lookup = connect(
            self.database_url, autocommit=True, application_name="wattwatch-ingest-registry"
        )
        self.registry.reload(self._lookup)

    def _close_database(self) -> None:
        for conn in (self._write, self._lookup):
            if conn is not None:
                with contextlib.suppress(psycopg.Error):
                    conn.close()
        self._write = self._lookup = None

    def _wait_for_database(self) -> None:
        delay = 0.2
        while not self.stop.is_set():
            try:
                self._open_database()
                return
            except (TransientStorageError, psycopg.OperationalError) as exc:
                log.warning("database unavailable, retrying in %.1f s: %s", delay, exc)
                self.stop.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)

    # --- one batch ----------------------------------------------------------------------------
    def _commit(self, messages: list[Message]) -> PreparedBatch:
        assert self._write is not None
        assert self._lookup is not None
        batch = self.preparer.prepare(messages, self._lookup)
        started = time.monotonic()
        with self._write.transaction():
            staged, inserted = write_readings(self._write, batch.rows)
            if batch.dead_letters:
                write_dead_letters(self._write, batch.dead_letters)
            if batch.anomalies:
                record_point_anomalies(self._write, batch.anomalies, source="ingest")
        committed = time.monotonic()
        lag_s = committed - min(m.received_monotonic for m in messages)
        record_ingest_batch(
            self._lookup,
            at=datetime.now(UTC),
            ingestor=self.settings.ingest_client_id,
            messages=len(messages),
            readings_written=inserted,
            dead_letters=len(batch.dead_letters),
            commit_ms=(committed - started) * 1000,
            lag_s=lag_s,
        )
        self.metrics.commit_seconds.observe(committed - started)
        self.metrics.batch_size.observe(len(messages))
        for message in messages:
            self.metrics.lag_seconds.observe(committed - message.received_monotonic)
        self.metrics.readings_written.inc(inserted)
        self.metrics.duplicates.inc(staged - inserted)
        self.metrics.redelivered.inc(sum(m.redelivered for m in messages))
        self.metrics.grid_events.inc(len(batch.anomalies))
        for fmt, n in batch.formats.items():
            self.metrics.messages.labels(fmt).inc(n)
        for reason, n in batch.dead_reasons.items():
            self.metrics.dead_letters.labels(reason).inc(n)
        t = self.totals
        t.messages += len(messages)
        t.redelivered += sum(m.redelivered for m in messages)
        t.readings_written += inserted
        t.duplicates += staged - inserted
        t.dead_letters += len(batch.dead_letters)
        t.batches += 1
        t.last_commit_unix = time.time()
        return batch

    def _write_status(self) -> None:
        """Rewrite the status file (after each commit: a few small writes a second at most)."""
        if self.status_file is None:
            return
        tmp = self.status_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self.totals)))
        tmp.replace(self.status_file)

    # --- the loop -----------------------------------------------------------------------------
    def run(self) -> None:
        """Consume until ``stop`` is set. Survives database and broker outages."""
        self._wait_for_database()
        self._connect_broker()
        self._write_status()
        while not self.stop.is_set():
            messages = self.consumer.take(
                self.settings.ingest_batch_size, self.settings.ingest_flush_interval_s, self.stop
            )
            self.metrics.buffered.set(self.consumer.buffered)
            if messages:
                self._handle(messages)
        self._write_status()
        self.consumer.close()
        self._close_database()

    def _handle(self, messages: list[Message]) -> None:
        try:
            self._commit(messages)
        except (psycopg.Error, TransientStorageError, OSError) as exc:
            if not isinstance(exc, TransientStorageError) and not is_transient(exc):
                raise
            # Nothing of this batch is acknowledged. The broker resends withheld messages only
            # on a new connection, so drop it, wait for the database, and come back.
            self.metrics.db_failures.inc()
            self.totals.database_failures += 1
            log.warning(
                "commit failed (%s); reconnecting to redeliver %d messages", exc, len(messages)
            )
            self.consumer.drop_connection()
            self._wait_for_database()
            self._connect_broker()
            return
        self.consumer.ack(messages)
        self._write_status()

    def _connect_broker(self) -> None:
        delay = 0.2
        while not self.stop.is_set():
            try:
                self.consumer.connect()
                log.info("consuming %s", ", ".join(r.topic_filter for r in self.router.routes))
                return
            except BrokerError as exc:
                log.warning("broker unavailable, retrying in %.1f s: %s", delay, exc)
                self.stop.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)


def run_ingest(settings: Settings) -> None:
    """Run the ingestor until SIGTERM or SIGINT."""
    setup_logging(settings.log_level)
    stack = Stack(settings)
    status_file = stack.services.run_dir / "ingest.status.json"
    status_file.parent.mkdir(parents=True, exist_ok=True)
    ingestor = Ingestor(
        settings,
        database_url=stack.database_url(),
        mqtt_url=stack.mqtt_url(),
        status_file=status_file,
    )

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: finishing the current batch", signum)
        ingestor.stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if settings.ingest_metrics_port:
        try:
            start_http_server(
                settings.ingest_metrics_port, addr="127.0.0.1", registry=ingestor.metrics.registry
            )
        except OSError as exc:
            raise StackError(
                f"WATTWATCH_INGEST_METRICS_PORT: cannot serve metrics on "
                f"{settings.ingest_metrics_port}: {exc.strerror or exc}"
            ) from None
    ingestor.run()
