"""Live publishing of a simulated city over MQTT v5, QoS 1, as the real devices would.

One connection carries every device. The simulated clock runs at ``seconds_per_hour`` of wall
time per simulated hour (3600 = real time, 0 = as fast as the broker acknowledges). At most
``window`` messages wait for their PUBACK: paho would otherwise queue a whole year in memory.
Fault modes for testers: offline bursts (a device goes silent, then publishes its backlog
with device timestamps), duplicates, and malformed payloads (each counted by kind).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final
from urllib.parse import urlsplit

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from simulators.city import City, MeterSeries
from simulators.devices import NO_CLOCK_FORMATS, DevicePlan, channel_values, device_ts, topic_of
from simulators.payloads import Message, encode
from wattwatch.errors import WattwatchError

MALFORMED_KINDS: Final = ("bad_json", "nan", "wrong_type", "oversize")
OVERSIZE_BYTES: Final = 70 * 1024  # above the ingestor's 64 KiB limit
_BLOCK_STEPS: Final = 24  # hourly steps whose values are computed at once
_NUMBER: Final = re.compile(rb"(?<=[:\[,])(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)")


class PublishError(WattwatchError):
    """The broker cannot be reached or stopped acknowledging."""


@dataclass(frozen=True, slots=True)
class Faults:
    """Fault modes; all off by default.

    Attributes
    ----------
    offline_devices : number of devices that go silent once, then publish their backlog.
    offline_hours : length of each silence [h].
    duplicate_rate : probability that a message is published twice [-] (formats with a
        device clock only).
    malformed_rate : probability, per device message, of one extra broken message [-].
    """

    offline_devices: int = 0
    offline_hours: int = 24
    duplicate_rate: float = 0.0
    malformed_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in ("duplicate_rate", "malformed_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}: must be between 0 and 1")
        if self.offline_devices < 0 or self.offline_hours < 1:
            raise ValueError("offline_devices ≥ 0 and offline_hours ≥ 1 are required")


@dataclass(slots=True)
class PublishStats:
    """What was sent; ``messages`` counts good messages (duplicates and broken ones apart)."""

    messages: int = 0
    readings: int = 0
    duplicates: int = 0
    backlog_messages: int = 0
    malformed: Counter[str] = field(default_factory=Counter)
    acknowledged: int = 0
    steps: int = 0
    elapsed_s: float = 0.0
    interrupted: bool = False

    @property
    def sent(self) -> int:
        return self.messages + self.duplicates + sum(self.malformed.values())

    def summary(self) -> str:
        rate = self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0
        broken = ", ".join(f"{k} {v}" for k, v in sorted(self.malformed.items())) or "none"
        return (
            f"{'interrupted: ' if self.interrupted else ''}{self.steps} simulated hours, "
            f"{self.messages} messages ({self.readings} readings, {self.backlog_messages} from "
            f"offline backlogs), {self.duplicates} duplicates, malformed: {broken}; "
            f"{self.acknowledged}/{self.sent} acknowledged in {self.elapsed_s:.1f} s "
            f"({rate:,.0f} messages/s)"
        )


class MqttPublisher:
    """One MQTT v5 connection publishing QoS 1 with at most ``window`` unacknowledged messages."""

    def __init__(
        self, url: str, *, client_id: str, window: int = 10_000, max_inflight: int = 100
    ) -> None:
        parts = urlsplit(url)
        self.window = window
        self._published = 0
        self._acked = 0
        self._cond = threading.Condition()
        self._connected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        if parts.username:
            self.client.username_pw_set(parts.username, parts.password)
        # paho scans its in-flight messages on every PUBACK (O(in-flight) per ack), so few in
        # flight on the wire and the rest of the window queued in paho is much faster than a
        # wide in-flight window; loopback latency needs no more than ~100 to stay busy.
        self.client.max_inflight_messages_set(max(1, min(max_inflight, window)))
        self.client.max_queued_messages_set(0)
        self.client.on_publish = self._on_publish
        self.client.on_connect = self._on_connect
        try:
            self.client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        except OSError as exc:
            raise PublishError(f"cannot connect to the broker at {parts.netloc}: {exc}") from None
        self.client.loop_start()
        if not self._connected.wait(10.0):
            self.client.loop_stop()
            raise PublishError(f"the broker at {parts.netloc} did not accept the connection")

    def _on_connect(self, _c: object, _u: object, _f: object, rc: object, _p: object) -> None:
        if not getattr(rc, "is_failure", False):
            self._connected.set()

    def _on_publish(self, _c: object, _u: object, _mid: int, _rc: object, _p: object) -> None:
        with self._cond:
            self._acked += 1
            self._cond.notify_all()

    @property
    def acknowledged(self) -> int:
        return self._acked

    @property
    def pending(self) -> int:
        return self._published - self._acked

    def publish(self, topic: str, payload: bytes) -> None:
        # Never hold our lock while calling paho: its thread holds paho's lock in on_publish.
        with self._cond:
            if not self._cond.wait_for(lambda: self.pending < self.window, 120.0):
                raise PublishError(f"{self.pending} messages unacknowledged for 120 s")
            self._published += 1
        self.client.publish(topic, payload, qos=1)

    def flush(self, timeout_s: float = 60.0) -> bool:
        """Wait for every PUBACK; False when some are still missing after ``timeout_s``."""
        with self._cond:
            return self._cond.wait_for(lambda: self.pending <= 0, timeout_s)

    def close(self, timeout_s: float = 60.0) -> bool:
        done = self.flush(timeout_s)
        self.client.disconnect()
        self.client.loop_stop()
        return done


def malformed(kind: str, fmt: str, good: bytes) -> bytes:
    """A broken variant of a good payload that the format's adapter must refuse."""
    if fmt in NO_CLOCK_FORMATS:  # bare numbers
        return {
            "bad_json": b"12..5",
            "nan": b"nan",
            "wrong_type": b"true",
            "oversize": b"1" * OVERSIZE_BYTES,
        }[kind]
    if kind == "bad_json":
        return good[: max(1, len(good) // 2)]
    if kind == "nan":
        return _NUMBER.sub(b"NaN", good)
    if kind == "wrong_type":
        return json.dumps(_booleans(json.loads(good))).encode()
    if kind == "oversize":
        return good + b" " * OVERSIZE_BYTES  # valid JSON, but too big to be a reading
    raise ValueError(f"kind: unknown {kind!r}; known: {', '.join(MALFORMED_KINDS)}")


def _booleans(data: object) -> object:
    """Every number and numeric text replaced by ``true`` (numbers of the wrong type)."""
    if isinstance(data, dict):
        return {k: _booleans(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_booleans(v) for v in data]
    if isinstance(data, bool):
        return data
    if isinstance(data, int | float) or (isinstance(data, str) and data[:1].isdigit()):
        return True
    return data


@dataclass(slots=True)
class _Series:
    series: MeterSeries
    devices: np.ndarray  # device indices of this series
    channels: list[list[tuple[int, str]]]  # per device: (row in block, channel name)
    channel_index: np.ndarray  # plan channel indices, block row order


def _series(plan: DevicePlan, city: City, name: str) -> _Series:
    series = city.meters if name == "meters" else city.grid
    devices = np.asarray([i for i, d in enumerate(plan.devices) if d.series == name], dtype=int)
    order: list[int] = []
    per_device: list[list[tuple[int, str]]] = []
    for d in devices:
        chans = []
        for c in plan.devices[d].channels:
            chans.append((len(order), plan.channels[c].channel))
            order.append(c)
        per_device.append(chans)
    return _Series(series, devices, per_device, np.asarray(order, dtype=np.int64))


class _Run:
    """State of one publishing run: counters, offline backlogs and the fault draws."""

    def __init__(
        self,
        plan: DevicePlan,
        publisher: MqttPublisher,
        faults: Faults,
        rng: np.random.Generator,
        offline: dict[int, tuple[int, int]],
    ) -> None:
        self.plan = plan
        self.publisher = publisher
        self.faults = faults
        self.rng = rng
        self.offline = offline
        self.backlog: dict[int, list[Message]] = {}
        self.stats = PublishStats()

    def send(self, fmt: str, topic: str, payload: bytes) -> None:
        self.publisher.publish(topic, payload)
        self.stats.messages += 1
        # A repeated clockless message would be a new reading (stamped on arrival), not a
        # duplicate: only formats with a device clock are repeated.
        rate = self.faults.duplicate_rate
        if rate and fmt not in NO_CLOCK_FORMATS and self.rng.random() < rate:
            self.publisher.publish(topic, payload)
            self.stats.duplicates += 1

    def emit(self, s: _Series, values: np.ndarray, ts: np.ndarray, col: int, hour: int) -> None:
        """Publish column ``col`` of a block: one step of every device of a series."""
        column = values[:, col].tolist()
        stamps = ts[:, col].astype(np.int64).tolist()
        broken = self.rng.random(len(s.devices)) < self.faults.malformed_rate
        for k, d in enumerate(s.devices.tolist()):
            device = self.plan.devices[d]
            vals = {name: column[r] for r, name in s.channels[k] if column[r] == column[r]}
            if not vals:  # every channel missing: the device sent nothing
                continue
            messages = encode(device.format, device.device_id, _utc(stamps[k]), vals)
            self.stats.readings += len(vals)
            window = self.offline.get(d)
            if window is not None and window[0] <= hour < window[1]:
                self.backlog.setdefault(d, []).extend(messages)
                continue
            for topic, payload in messages:
                self.send(device.format, topic, payload)
            if broken[k]:
                kind = MALFORMED_KINDS[int(self.rng.integers(len(MALFORMED_KINDS)))]
                bad = malformed(kind, device.format, messages[0][1])
                self.publisher.publish(topic_of(device), bad)
                self.stats.malformed[kind] += 1

    def release(self, hour: int) -> None:
        """Devices whose silence ends at ``hour`` publish their backlog, oldest first."""
        for d in [d for d, (_, end) in self.offline.items() if end == hour and d in self.backlog]:
            device = self.plan.devices[d]
            for topic, payload in self.backlog.pop(d):
                self.send(device.format, topic, payload)
                self.stats.backlog_messages += 1

    def release_all(self) -> None:
        """Devices still silent when the run ends come back now."""
        for d in list(self.backlog):
            self.offline[d] = (self.offline[d][0], -1)
        self.release(-1)


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def publish_city(
    city: City,
    plan: DevicePlan,
    publisher: MqttPublisher,
    *,
    seconds_per_hour: float = 0.0,
    faults: Faults | None = None,
    seed: int = 0,
    stop: threading.Event | None = None,
    on_step: Callable[[int, PublishStats], None] | None = None,
) -> PublishStats:
    """Publish every reading of ``city`` through ``publisher``, hour by simulated hour.

    Grid sensors publish every 10 minutes within each hour. A set ``stop`` ends the run after
    the current message; what was published is then flushed (PUBACKs awaited).
    """
    faults = faults or Faults()
    stop = stop or threading.Event()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xFA17]))
    hourly = _series(plan, city, "meters")
    grid = _series(plan, city, "grid")
    hours = city.meters.ts.size
    grid_end = np.searchsorted(city.grid.ts, city.meters.ts, side="right")
    run = _Run(plan, publisher, faults, rng, _offline_windows(plan, faults, hours, rng))
    stats = run.stats
    t0 = time.monotonic()
    try:
        for block_start in range(0, hours, _BLOCK_STEPS):
            block_stop = min(block_start + _BLOCK_STEPS, hours)
            h_vals = channel_values(
                plan, city.meters, hourly.channel_index, block_start, block_stop
            )
            h_ts = device_ts(plan, city.meters, hourly.devices, block_start, block_stop)
            g_lo = int(grid_end[block_start - 1]) if block_start else 0
            g_hi = int(grid_end[block_stop - 1])
            g_vals = channel_values(plan, city.grid, grid.channel_index, g_lo, g_hi)
            g_ts = device_ts(plan, city.grid, grid.devices, g_lo, g_hi)
            for hour in range(block_start, block_stop):
                if seconds_per_hour > 0:
                    delay = t0 + (hour + 1) * seconds_per_hour - time.monotonic()
                    if delay > 0 and stop.wait(delay):
                        break
                if stop.is_set():
                    break
                first = int(grid_end[hour - 1]) if hour else 0
                for g in range(first, int(grid_end[hour])):
                    run.emit(grid, g_vals, g_ts, g - g_lo, hour)
                run.emit(hourly, h_vals, h_ts, hour - block_start, hour)
                run.release(hour + 1)
                stats.steps += 1
                if on_step is not None:
                    stats.acknowledged = publisher.acknowledged
                    on_step(hour, stats)
            if stop.is_set():
                break
        # Devices still offline at the end come back now.
        if not stop.is_set():
            run.release_all()
    finally:
        stats.interrupted = stop.is_set()
        publisher.flush(60.0)
        stats.acknowledged = publisher.acknowledged
        stats.elapsed_s = time.monotonic() - t0
    return stats


def _offline_windows(
    plan: DevicePlan, faults: Faults, hours: int, rng: np.random.Generator
) -> dict[int, tuple[int, int]]:
    """Device → [first, end) silent hours; only devices with a clock (their backlog keeps
    its device timestamps)."""
    able = [i for i, d in enumerate(plan.devices) if d.format not in NO_CLOCK_FORMATS]
    n = min(faults.offline_devices, len(able))
    if n == 0:
        return {}
    chosen = rng.choice(np.asarray(able), size=n, replace=False)
    span = max(hours - faults.offline_hours, 1)
    starts = rng.integers(0, span, size=n)
    return {
        int(d): (int(s), int(s) + faults.offline_hours)
        for d, s in zip(chosen.tolist(), starts.tolist(), strict=True)
    }
