"""`wattwatch ingest`: the loop that commits batches and only then acknowledges them.

At-least-once delivery from the broker plus an idempotent insert gives exactly-once rows:
a message is acknowledged after its readings (or its dead letter) are committed, and a
redelivered message finds its rows already there.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
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
from storage.bulk import write_batch
from storage.database import connect, is_transient
from storage.dead_letters import write_dead_letters
from storage.operations import record_ingest_batch
from wattwatch.errors import StackError, TransientStorageError
from wattwatch.logs import setup_logging
from wattwatch.settings import Settings
from wattwatch.stack.stack import Stack

log = logging.getLogger("wattwatch.ingest")

BACKOFF_MAX_S = 10.0
# A batch is cut at this many readings too (besides ingest_batch_size messages), so packs of
# many readings commit in several transactions that overlap with parsing the next one.
MAX_BATCH_READINGS = 20_000
# ... and take() returns early once this much payload is buffered (some 20k-40k readings of
# SenML packs) rather than waiting for ingest_batch_size messages or the flush interval.
MAX_BATCH_BYTES = 1_000_000
SWITCH_INTERVAL_S = 0.0005  # sys.setswitchinterval of the ingest process (default 0.005)


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


_Job = tuple[Sequence[Message], PreparedBatch]


class _Writer:
    """One thread that commits prepared batches one at a time, in the order handed over, and
    acknowledges each only after its own commit (``commit`` does both).

    The batch loop hands over a batch while the previous one commits (a single slot), so
    parsing overlaps with PostgreSQL. When a commit raises, that batch and the one waiting in
    the slot are dropped unacknowledged, and no later batch is taken until ``reset``: the
    batch loop must first reconnect, so the broker redelivers them all.
    """

    def __init__(self, commit: Callable[[Sequence[Message], PreparedBatch], None]) -> None:
        self._commit = commit
        self._cond = threading.Condition()
        self._slot: _Job | None = None
        self._busy = False
        self._closed = False
        self.failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="wattwatch-writer", daemon=True)
        self._thread.start()

    def submit(self, messages: Sequence[Message], batch: PreparedBatch) -> bool:
        """Queue a batch behind the one committing; False (not queued) after a failed commit."""
        with self._cond:
            while self._slot is not None and self.failure is None:
                self._cond.wait()
            if self.failure is not None:
                return False
            self._slot = (messages, batch)
            self._cond.notify_all()
            return True

    def drain(self) -> BaseException | None:
        """Wait until nothing is queued or committing; return the failure, if a commit failed."""
        with self._cond:
            while self._slot is not None or self._busy:
                self._cond.wait()
            return self.failure

    def reset(self) -> None:
        """Accept batches again (after the batch loop reconnected)."""
        with self._cond:
            self.failure = None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._slot is None and not self._closed:
                    self._cond.wait()
                if self._slot is None:
                    return
                job, self._slot, self._busy = self._slot, None, True
                self._cond.notify_all()  # the slot is free for the next batch
            try:
                self._commit(*job)
            except BaseException as exc:  # noqa: BLE001 - handed to the batch loop
                with self._cond:
                    self.failure = exc
                    self._slot = None  # the batch after it is not committed either
                    self._busy = False
                    self._cond.notify_all()
                continue
            with self._cond:
                self._busy = False
                self._cond.notify_all()


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
        self._writer: _Writer | None = None

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
    def _commit(self, messages: Sequence[Message], batch: PreparedBatch) -> None:
        """Write one prepared batch in one transaction (writer thread)."""
        assert self._write is not None
        assert self._lookup is not None
        started = time.monotonic()
        with self._write.transaction():
            staged, inserted = write_batch(
                self._write, batch.meter_ids, batch.ts_us.view("datetime64[us]"), batch.values
            )
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

    def _commit_and_ack(self, messages: Sequence[Message], batch: PreparedBatch) -> None:
        """Writer thread: commit, and only then acknowledge (batches come in arrival order)."""
        self._commit(messages, batch)
        self.consumer.ack(messages)
        self._write_status()

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
        self._writer = _Writer(self._commit_and_ack)
        try:
            while not self.stop.is_set():
                if self._writer.failure is not None:
                    self._recover(self._writer.failure)
                    continue
                messages = self.consumer.take(
                    self.settings.ingest_batch_size,
                    self.settings.ingest_flush_interval_s,
                    self.stop,
                    max_bytes=MAX_BATCH_BYTES,
                )
                self.metrics.buffered.set(self.consumer.buffered)
                if messages:
                    self._handle(messages)
            failure = self._writer.drain()
            if failure is not None:  # nothing of it was acknowledged: redelivered next start
                self._check_transient(failure)
        finally:
            self._writer.close()
        self._write_status()
        self.consumer.close()
        self._close_database()

    def _handle(self, messages: list[Message]) -> None:
        """Prepare ``messages`` in batches of at most MAX_BATCH_READINGS readings and hand
        each to the writer, which commits it while the next one is prepared."""
        assert self._writer is not None
        assert self._lookup is not None
        try:
            for chunk, batch in self.preparer.prepare_split(
                messages, self._lookup, MAX_BATCH_READINGS
            ):
                if not self._writer.submit(chunk, batch):
                    return  # a commit failed: the loop reconnects; all of these come again
        except (psycopg.Error, TransientStorageError, OSError) as exc:
            # A meter look-up failed: let the batches already handed over finish, then treat
            # it like a failed commit (nothing from here on is acknowledged).
            failure = self._writer.drain()
            self._recover(failure if failure is not None else exc)

    def _check_transient(self, exc: BaseException) -> None:
        if isinstance(exc, TransientStorageError):
            return
        if isinstance(exc, psycopg.Error | OSError) and is_transient(exc):
            return
        raise exc

    def _recover(self, exc: BaseException) -> None:
        """After a failed commit (writer idle, nothing acknowledged since): drop the broker
        connection (it resends withheld messages only on a new one), wait for the database,
        reconnect."""
        assert self._writer is not None
        self._writer.drain()
        self._check_transient(exc)
        self.metrics.db_failures.inc()
        self.totals.database_failures += 1
        log.warning("commit failed (%s); reconnecting to redeliver unacknowledged messages", exc)
        self.consumer.drop_connection()
        self._wait_for_database()
        self._connect_broker()
        self._writer.reset()

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
    status_file = stack.ingest_status_file()
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
    # The writer waits for the interpreter lock after each database round trip while the batch
    # loop parses: at the default 5 ms a commit of a few round trips stalls for tens of ms.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    # Start-up's long-lived objects (modules, settings) leave the collector's generations, so
    # the collections that paho's per-message allocations trigger stop walking them each time.
    gc.freeze()
    ingestor.run()
