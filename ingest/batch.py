"""Turn a list of MQTT messages into rows to store: readings, dead letters, grid anomalies.

Pure of the broker; talks to the database only to resolve meters. A message is all-or-nothing:
if any of its readings is refused, the whole message becomes one dead letter.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg

from ingest.grid_rules import check_grid_reading
from ingest.mqtt import Message
from ingest.registry import MeterRegistry
from ingest.routing import Router
from ingest.validation import MAX_PAYLOAD_BYTES, check_reading
from storage.anomalies import PointAnomaly
from storage.dead_letters import DeadLetter
from wattwatch.errors import PayloadError

log = logging.getLogger("wattwatch.ingest")


@dataclass(slots=True)
class PreparedBatch:
    """What one batch will write in one transaction."""

    rows: list[tuple[int, datetime, float]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    anomalies: list[PointAnomaly] = field(default_factory=list)
    formats: Counter[str] = field(default_factory=Counter)
    dead_reasons: Counter[str] = field(default_factory=Counter)


class BatchPreparer:
    """Routes, parses, resolves and validates messages."""

    def __init__(self, router: Router, registry: MeterRegistry) -> None:
        self.router = router
        self.registry = registry

    def prepare(self, messages: Sequence[Message], conn: psycopg.Connection) -> PreparedBatch:
        """``conn``: autocommit connection for meter look-ups and registrations."""
        batch = PreparedBatch()
        now = datetime.now(UTC)
        for message in messages:
            self._add(batch, message, conn, now)
        return batch

    def prepare_split(
        self, messages: Sequence[Message], conn: psycopg.Connection, max_rows: int
    ) -> Iterator[tuple[Sequence[Message], PreparedBatch]]:
        """Prepare ``messages`` as consecutive batches of about ``max_rows`` readings each
        (a message is never split), yielding each as soon as it is ready so that it can be
        committed while the next one is parsed. Together they cover ``messages`` in order."""
        start = 0
        batch = PreparedBatch()
        now = datetime.now(UTC)
        for i, message in enumerate(messages):
            self._add(batch, message, conn, now)
            if len(batch.rows) >= max_rows:
                yield messages[start : i + 1], batch
                start, batch, now = i + 1, PreparedBatch(), datetime.now(UTC)
        if start < len(messages):
            yield messages[start:], batch

    def _add(
        self, batch: PreparedBatch, message: Message, conn: psycopg.Connection, now: datetime
    ) -> None:
        try:
            fmt, rows, anomalies = self._one(message, conn, now)
        except _RefusedError as exc:
            self._dead(batch, message, exc.format, exc.category, str(exc))
            return
        except (psycopg.Error, OSError):
            raise  # database trouble: the whole batch is retried
        except Exception as exc:
            log.exception("adapter bug on topic %s", message.topic)
            reason = f"internal error ({type(exc).__name__}: {exc})"
            self._dead(batch, message, None, "adapter_bug", reason)
            return
        batch.formats[fmt] += 1
        batch.rows.extend(rows)
        if anomalies:
            batch.anomalies.extend(anomalies)

    def _one(
        self, message: Message, conn: psycopg.Connection, now: datetime
    ) -> tuple[str, list[tuple[int, datetime, float]], list[PointAnomaly]]:
        if len(message.payload) > MAX_PAYLOAD_BYTES:
            size = len(message.payload)
            raise _RefusedError("oversize", f"payload of {size} bytes exceeds {MAX_PAYLOAD_BYTES}")
        route = self.router.route(message.topic, message.identifiers)
        if route is None:
            raise _RefusedError("unknown_topic", "no device format is configured for this topic")
        try:
            readings = route.adapter(message.topic, message.payload, message.received_at)
        except PayloadError as exc:
            raise _RefusedError("malformed", str(exc), route.format) from None
        rows = []
        anomalies = []
        for reading in readings:
            try:
                meter = self.registry.resolve(conn, route.format, reading, message.topic)
            except PayloadError as exc:
                kind = (
                    "unit_mismatch" if str(exc).startswith("unit ")
                    else "foreign_topic" if "not its own" in str(exc)
                    else "unknown_device"
                )  # fmt: skip
                raise _RefusedError(kind, str(exc), route.format) from None
            try:
                check_reading(reading, now=now, not_before=meter.installed_at)
            except PayloadError as exc:
                raise _RefusedError("invalid_value", str(exc), route.format) from None
            rows.append((meter.id, reading.ts, reading.value))
            event = check_grid_reading(
                meter.id, meter.quantity, meter.unit, reading.ts, reading.value
            )
            if event is not None:
                anomalies.append(
                    PointAnomaly(event.meter_id, event.ts, event.kind, event.severity,
                                 event.limit, event.observed, event.reason)
                )  # fmt: skip
        return route.format, rows, anomalies

    @staticmethod
    def _dead(
        batch: PreparedBatch, message: Message, fmt: str | None, category: str, reason: str
    ) -> None:
        batch.dead_letters.append(
            DeadLetter(message.received_at, message.topic, message.payload, reason, fmt)
        )
        batch.dead_reasons[category] += 1


class _RefusedError(PayloadError):
    """A PayloadError with the metric category of the stage that refused the message."""

    def __init__(self, category: str, reason: str, fmt: str | None = None) -> None:
        super().__init__(reason)
        self.category = category
        self.format = fmt
