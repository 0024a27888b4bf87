"""Adapter for Tasmota energy-monitoring plugs and meters: ``tele/<topic>/SENSOR`` telemetry.

Payload: ``{"Time": "2024-01-05T12:00:00", "ENERGY": {"TotalStartTime": …, "Total": kWh,
"Yesterday": kWh, "Today": kWh, "Power": W or [W, W], "ApparentPower": VA,
"ReactivePower": var, "Factor": …, "Voltage": V, "Current": A}}``.

``Time`` is the device's LOCAL time without offset (Tasmota's default); we read it in
Europe/Paris, where our fleet is (in the repeated autumn hour the first, summer-time instant
is assumed: the device gives us nothing to tell them apart). An explicit offset wins.

Channels (``device_id`` is the ``<topic>`` level, ``tasmota_1A2B3C`` by default): Total
[kWh, cumulative since TotalStartTime], ExportActive [kWh, cumulative, injected],
Power [W], ApparentPower [VA], ReactivePower [var], Voltage [V], Current [A], Frequency [Hz].
Multi-channel devices send arrays: element i becomes ``<name>/<i+1>`` (``Power/1``,
``Power/2``), numbered like Tasmota's POWER1, POWER2 relays. Today, Yesterday and Factor are
derived or unitless and not stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from ingest.adapters._common import (
    PARIS,
    as_object,
    load_object,
    non_empty,
    parse_iso,
    reading,
    require_aware,
    to_float,
    topic_parts,
)
from ingest.reading import Reading
from wattwatch.errors import PayloadError

# ENERGY key → (unit, quantity, cumulative); Tasmota already reports kWh, W, VA.
FIELDS: Final[dict[str, tuple[str, str, bool]]] = {
    "Total": ("kWh", "electricity", True),
    "ExportActive": ("kWh", "electricity_injected", True),
    "Power": ("W", "electricity", False),
    "ApparentPower": ("VA", "electricity", False),
    "ReactivePower": ("var", "electricity", False),
    "Voltage": ("V", "grid_voltage", False),
    "Current": ("A", "electricity", False),
    "Frequency": ("Hz", "grid_frequency", False),
}
_MAX_CHANNELS: Final = 32


def parse(topic: str, payload: bytes, received_at: datetime) -> list[Reading]:
    """Parse a Tasmota ``SENSOR`` message into readings; raise PayloadError on any defect."""
    received = require_aware(received_at)
    device = _device(topic)
    message = load_object(payload)
    ts = parse_iso(message["Time"], "Time", naive_zone=PARIS) if "Time" in message else received
    if "ENERGY" not in message:
        raise PayloadError("no ENERGY object in Tasmota SENSOR message")
    energy = as_object(message["ENERGY"], "ENERGY")
    readings: list[Reading] = []
    for name, (unit, quantity, cumulative) in FIELDS.items():
        raw = energy.get(name)
        if raw is None:
            continue
        if isinstance(raw, list):
            if len(raw) > _MAX_CHANNELS:
                raise PayloadError(f"ENERGY.{name} has too many channels ({len(raw)})")
            pairs = [(f"{name}/{i + 1}", item) for i, item in enumerate(raw)]
        else:
            pairs = [(name, raw)]
        for channel, item in pairs:
            readings.append(
                reading(
                    device_id=device,
                    channel=channel,
                    ts=ts,
                    value=to_float(item, f"ENERGY.{channel}"),
                    quantity=quantity,
                    unit=unit,
                    cumulative=cumulative,
                )
            )
    return non_empty(readings, "ENERGY")


def _device(topic: str) -> str:
    """``tele/<topic>/SENSOR`` → ``<topic>``; a custom FullTopic keeps its other levels."""
    parts = topic_parts(topic)
    if len(parts) < 2 or parts[-1] != "SENSOR":
        raise PayloadError(f"topic {topic[:80]!r} is not a Tasmota .../SENSOR topic")
    levels = parts[:-1]
    if levels[0] == "tele" and len(levels) > 1:
        levels = levels[1:]
    return "/".join(levels)
