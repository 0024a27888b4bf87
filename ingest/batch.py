"""Turn a list of MQTT messages into rows to store: readings, dead letters, grid anomalies.

Pure of the broker; talks to the database only to resolve meters. A message is all-or-nothing:
if any of its readings is refused, the whole message becomes one dead letter. Readings travel
as columns (meter, µs timestamp, value): one COPY writes them, and their plausibility is checked
a batch at a time with numpy rather than reading by reading.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import psycopg

from ingest.grid_rules import GRID_QUANTITIES, check_grid_reading
from ingest.mqtt import Message
from ingest.reading import EPOCH, Reading, ReadingColumns, Series
from ingest.registry import MeterRegistry
from ingest.routing import Router
from ingest.validation import (
    EARLIEST_US,
    MAX_PAYLOAD_BYTES,
    check_reading,
    check_series,
    implausible,
    to_us,
    value_range,
)
from storage.anomalies import PointAnomaly
from storage.dead_letters import DeadLetter
from storage.meters import Meter
from wattwatch.errors import PayloadError

log = logging.getLogger("wattwatch.ingest")


@dataclass(slots=True)
class PreparedBatch:
    """What one batch will write in one transaction."""

    meter_ids: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    ts_us: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))  # [µs]
    values: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(0, np.float64))
    dead_letters: list[DeadLetter] = field(default_factory=list)
    anomalies: list[PointAnomaly] = field(default_factory=list)
    formats: Counter[str] = field(default_factory=Counter)
    dead_reasons: Counter[str] = field(default_factory=Counter)


# A resolved series: its meter and what its readings must satisfy (low, high, not before [µs]).
_Target = tuple[Series, Meter, float, float, int]


@dataclass(slots=True)
class _Chunk:
    """Messages parsed and resolved so far, their readings not yet checked for plausibility."""

    now: datetime
    ts_us: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    row_target: list[int] = field(default_factory=list)  # per reading: index in targets
    targets: list[_Target] = field(default_factory=list)
    # Per message with readings: (position in the chunk, first row, format).
    accepted: list[tuple[int, int, str]] = field(default_factory=list)
    dead: list[tuple[int, DeadLetter, str]] = field(default_factory=list)  # position, letter, why
    size: int = 0  # messages added


class BatchPreparer:
    """Routes, parses, resolves and validates messages."""

    def __init__(self, router: Router, registry: MeterRegistry) -> None:
        self.router = router
        self.registry = registry

    def prepare(self, messages: Sequence[Message], conn: psycopg.Connection) -> PreparedBatch:
        """``conn``: autocommit connection for meter look-ups and registrations."""
        chunk = _Chunk(datetime.now(UTC))
        for message in messages:
            self._add(chunk, message, conn)
        return self._finish(chunk, messages)

    def prepare_split(
        self, messages: Sequence[Message], conn: psycopg.Connection, max_rows: int
    ) -> Iterator[tuple[Sequence[Message], PreparedBatch]]:
        """Prepare ``messages`` as consecutive batches of about ``max_rows`` readings each
        (a message is never split), yielding each as soon as it is ready so that it can be
        committed while the next one is parsed. Together they cover ``messages`` in order."""
        start = 0
        chunk = _Chunk(datetime.now(UTC))
        for i, message in enumerate(messages):
            self._add(chunk, message, conn)
            if len(chunk.values) >= max_rows:
                yield messages[start : i + 1], self._finish(chunk, messages[start : i + 1])
                start, chunk = i + 1, _Chunk(datetime.now(UTC))
        if start < len(messages):
            yield messages[start:], self._finish(chunk, messages[start:])

    def _add(self, chunk: _Chunk, message: Message, conn: psycopg.Connection) -> None:
        position = chunk.size
        chunk.size += 1
        try:
            fmt, columns, targets = self._one(message, conn)
        except _RefusedError as exc:
            chunk.dead.append((position, _letter(message, exc.format, str(exc)), exc.category))
            return
        except (psycopg.Error, OSError):
            raise  # database trouble: the whole batch is retried
        except Exception as exc:
            log.exception("adapter bug on topic %s", message.topic)
            reason = f"internal error ({type(exc).__name__}: {exc})"
            chunk.dead.append((position, _letter(message, None, reason), "adapter_bug"))
            return
        chunk.accepted.append((position, len(chunk.values), fmt))
        first = len(chunk.targets)
        chunk.targets.extend(targets)
        rows = len(columns.values)
        if len(targets) == 1:  # one device channel: the common case, no per-reading lookups
            chunk.row_target.extend([first] * rows)
        else:
            chunk.row_target.extend([first + i for i in columns.series_index])
        chunk.ts_us.extend(columns.ts_us)
        chunk.values.extend(columns.values)

    def _one(
        self, message: Message, conn: psycopg.Connection
    ) -> tuple[str, ReadingColumns, list[_Target]]:
        if len(message.payload) > MAX_PAYLOAD_BYTES:
            size = len(message.payload)
            raise _RefusedError("oversize", f"payload of {size} bytes exceeds {MAX_PAYLOAD_BYTES}")
        route = self.router.route(message.topic, message.identifiers)
        if route is None:
            raise _RefusedError("unknown_topic", "no device format is configured for this topic")
        try:
            columns = route.columns(message.topic, message.payload, message.received_at)
        except PayloadError as exc:
            raise _RefusedError("malformed", str(exc), route.format) from None
        targets = []
        for series in columns.series:
            try:
                meter = self.registry.resolve(conn, route.format, series, message.topic)
            except PayloadError as exc:
                kind = (
                    "unit_mismatch" if str(exc).startswith("unit ")
                    else "foreign_topic" if "not its own" in str(exc)
                    else "unknown_device"
                )  # fmt: skip
                raise _RefusedError(kind, str(exc), route.format) from None
            try:
                check_series(series)
            except PayloadError as exc:
                raise _RefusedError("invalid_value", str(exc), route.format) from None
            low, high = value_range(series.unit, series.cumulative)
            floor = to_us(meter.installed_at) if meter.installed_at is not None else EARLIEST_US
            targets.append((series, meter, low, high, floor))
        return route.format, columns, targets

    def _finish(self, chunk: _Chunk, messages: Sequence[Message]) -> PreparedBatch:
        """Check the chunk's readings for plausibility, refuse the messages of those that are
        not, and find the grid events of the others."""
        target = np.array(chunk.row_target, dtype=np.intp)
        meter_of_target = np.array([t[1].id for t in chunk.targets], dtype=np.int64)
        batch = PreparedBatch(
            meter_ids=meter_of_target[target],
            ts_us=np.array(chunk.ts_us, dtype=np.int64),
            values=np.array(chunk.values, dtype=np.float64),
        )
        accepted = chunk.accepted
        if len(target):
            bounds = np.array([t[2:4] for t in chunk.targets], dtype=np.float64)
            floors = np.array([t[4] for t in chunk.targets], dtype=np.int64)
            bad = implausible(
                batch.values, batch.ts_us, bounds[target, 0], bounds[target, 1], floors[target],
                now=chunk.now,
            )  # fmt: skip
            if bad.any():
                accepted, keep = self._refuse(chunk, messages, batch, target, bad)
                batch.meter_ids = batch.meter_ids[keep]
                batch.ts_us = batch.ts_us[keep]
                batch.values = batch.values[keep]
                target = target[keep]
            batch.anomalies = _grid_events(chunk.targets, target, batch)
        for _, _, fmt in accepted:
            batch.formats[fmt] += 1
        for _, letter, category in sorted(chunk.dead, key=lambda dead: dead[0]):
            batch.dead_letters.append(letter)
            batch.dead_reasons[category] += 1
        return batch

    @staticmethod
    def _refuse(
        chunk: _Chunk,
        messages: Sequence[Message],
        batch: PreparedBatch,
        target: npt.NDArray[np.intp],
        bad: npt.NDArray[np.bool_],
    ) -> tuple[list[tuple[int, int, str]], npt.NDArray[np.bool_]]:
        """Dead-letter each message with an implausible reading, saying why its first one is;
        returns the messages still accepted and which readings to keep."""
        starts = np.array([first for _, first, _ in chunk.accepted], dtype=np.intp)
        bad_rows = np.flatnonzero(bad)
        owners, first_bad = np.unique(
            np.searchsorted(starts, bad_rows, side="right") - 1, return_index=True
        )
        for owner, row in zip(owners.tolist(), bad_rows[first_bad].tolist(), strict=True):
            position, _, fmt = chunk.accepted[owner]
            series, meter, *_ = chunk.targets[target[row]]
            reading = Reading(
                series.device_id, series.channel,
                EPOCH + timedelta(microseconds=int(batch.ts_us[row])),
                float(batch.values[row]), series.quantity, series.unit, series.cumulative,
            )  # fmt: skip
            try:
                check_reading(reading, now=chunk.now, not_before=meter.installed_at)
                reason = "implausible value or timestamp"  # not reached: the same checks
            except PayloadError as exc:
                reason = str(exc)
            chunk.dead.append((position, _letter(messages[position], fmt, reason), "invalid_value"))
        refused = set(owners.tolist())
        owner_of_row = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(bad))))
        keep = ~np.isin(owner_of_row, owners)
        return [a for i, a in enumerate(chunk.accepted) if i not in refused], keep


def _grid_events(
    targets: Sequence[_Target], target: npt.NDArray[np.intp], batch: PreparedBatch
) -> list[PointAnomaly]:
    """The grid rules' events, in reading order (only grid meters' readings are looked at)."""
    grid = np.array([t[1].quantity in GRID_QUANTITIES for t in targets], dtype=bool)
    anomalies = []
    for row in np.flatnonzero(grid[target]).tolist():
        meter = targets[target[row]][1]
        ts = EPOCH + timedelta(microseconds=int(batch.ts_us[row]))
        value = float(batch.values[row])
        event = check_grid_reading(meter.id, meter.quantity, meter.unit, ts, value)
        if event is not None:
            anomalies.append(
                PointAnomaly(event.meter_id, event.ts, event.kind, event.severity, event.limit,
                             event.observed, event.reason)
            )  # fmt: skip
    return anomalies


def _letter(message: Message, fmt: str | None, reason: str) -> DeadLetter:
    return DeadLetter(message.received_at, message.topic, message.payload, reason, fmt)


class _RefusedError(PayloadError):
    """A PayloadError with the metric category of the stage that refused the message."""

    def __init__(self, category: str, reason: str, fmt: str | None = None) -> None:
        super().__init__(reason)
        self.category = category
        self.format = fmt
