"""Resolve readings to meters, a series at a time: a cache of the meters table, with optional
auto-registration."""

from __future__ import annotations

import time

import psycopg

from ingest.reading import Series
from storage.meters import Meter, load_meters, register_meter
from wattwatch.errors import PayloadError


class MeterRegistry:
    """Maps ``(format, device_id, channel)`` to meters.

    Unknown devices are registered on the fly when ``auto_register`` is set (engineers'
    buildings); otherwise their messages are refused (households must be enrolled first).
    """

    # A flood of messages from an unknown device must not turn into a flood of table reads.
    RELOAD_EVERY_S = 2.0
    MAX_REMEMBERED_MISSES = 10_000

    def __init__(self, *, auto_register: bool) -> None:
        self.auto_register = auto_register
        self._meters: dict[tuple[str, str, str], Meter] = {}
        self._loaded_at = float("-inf")
        self._missed: set[tuple[str, str, str]] = set()

    def reload(self, conn: psycopg.Connection) -> None:
        """Read every meter again (``conn`` in autocommit mode)."""
        self._meters = load_meters(conn)
        self._loaded_at = time.monotonic()

    def _may_reload(self, key: tuple[str, str, str]) -> bool:
        """Reload at once for a key not missed before (a device enrolled a moment ago), else at
        most every RELOAD_EVERY_S (a stranger sending again and again)."""
        if key not in self._missed and len(self._missed) < self.MAX_REMEMBERED_MISSES:
            self._missed.add(key)
            return True
        return time.monotonic() - self._loaded_at > self.RELOAD_EVERY_S

    def resolve(self, conn: psycopg.Connection, fmt: str, series: Series, topic: str = "") -> Meter:
        """The meter of a series of readings; raises PayloadError when it cannot have one.

        ``conn`` must be in autocommit mode: a registration commits at once, apart from the
        batch being assembled.
        """
        key = (fmt, series.device_id, series.channel)
        meter = self._meters.get(key)
        if meter is None and self._may_reload(key):
            # Another process (the API enrolling a household) may have added it since.
            self.reload(conn)
            meter = self._meters.get(key)
        if meter is None:
            meter = self._register(conn, fmt, series)
        if meter.household and not _names_device(topic, series.device_id):
            # A household's broker account may publish only on its own topics, but formats
            # that name the device in the payload (TIC's ADCO, SenML's bn) could still claim
            # another household's meter from there.
            raise PayloadError(
                f"{fmt} device {series.device_id!r} is a household's and topic {topic!r} is "
                "not its own"
            )
        if series.unit is not None and series.unit != meter.unit:
            raise PayloadError(
                f"unit {series.unit} for {fmt} device {series.device_id!r} channel "
                f"{series.channel!r}, which is registered in {meter.unit}"
            )
        return meter

    def _register(self, conn: psycopg.Connection, fmt: str, series: Series) -> Meter:
        if not self.auto_register:
            raise PayloadError(
                f"unknown {fmt} device {series.device_id!r} channel {series.channel!r}: "
                "enrol it first (auto-registration is off)"
            )
        if series.quantity is None or series.unit is None:
            raise PayloadError(
                f"unknown {fmt} device {series.device_id!r} channel {series.channel!r}: "
                "its payload does not say what it measures (quantity and unit), so it must be "
                "registered first"
            )
        with conn.transaction():
            meter = register_meter(
                conn,
                device_format=fmt,
                device_id=series.device_id,
                channel=series.channel,
                quantity=series.quantity,
                unit=series.unit,
                cumulative=series.cumulative,
            )
        self._meters[meter.key] = meter
        return meter


def _names_device(topic: str, device_id: str) -> bool:
    """True when the topic is the device id or has it as one of its levels."""
    return topic == device_id or device_id in topic.split("/")
