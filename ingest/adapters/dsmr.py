"""Adapter for dsmr-reader (Dutch/Belgian P1 smart meters) MQTT output.

Two shapes (``<prefix>`` is ``dsmr`` by default and becomes ``device_id``):

- ``<prefix>/json``: one JSON object per telegram, ``{"id": 1, "timestamp":
  "2024-01-05T11:00:00Z", "electricity_delivered_1": 1234.567, …, "extra_device_timestamp":
  "…", "extra_device_delivered": 2345.678}``; numbers may also be numeric text, null is skipped.
- ``<prefix>/reading/<field>``: one bare number per topic, no timestamp (arrival time).

Fields (``channel`` is the field name): electricity_delivered_1/2 [kWh, cumulative],
electricity_returned_1/2 [kWh, cumulative, injected], electricity_currently_delivered and
phase_currently_delivered_l1..3 [kW → W], electricity_currently_returned and
phase_currently_returned_l1..3 [kW → W, injected], phase_voltage_l1..3 [V],
phase_power_current_l1..3 [A], extra_device_delivered [m3, cumulative; gas on Dutch meters],
stamped with extra_device_timestamp, since the gas meter reports hourly on its own clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from ingest.adapters._common import (
    decode_text,
    load_object,
    non_empty,
    parse_iso,
    parse_number_text,
    reading,
    require_aware,
    to_float,
    topic_parts,
)
from ingest.reading import Reading
from wattwatch.errors import PayloadError

# field → (factor to unit, unit, quantity, cumulative)
_Field = tuple[float, str, str, bool]
FIELDS: Final[dict[str, _Field]] = {
    "electricity_delivered_1": (1.0, "kWh", "electricity", True),
    "electricity_delivered_2": (1.0, "kWh", "electricity", True),
    "electricity_returned_1": (1.0, "kWh", "electricity_injected", True),
    "electricity_returned_2": (1.0, "kWh", "electricity_injected", True),
    "electricity_currently_delivered": (1e3, "W", "electricity", False),
    "electricity_currently_returned": (1e3, "W", "electricity_injected", False),
    **{f"phase_currently_delivered_l{i}": (1e3, "W", "electricity", False) for i in (1, 2, 3)},
    **{
        f"phase_currently_returned_l{i}": (1e3, "W", "electricity_injected", False)
        for i in (1, 2, 3)
    },
    **{f"phase_voltage_l{i}": (1.0, "V", "grid_voltage", False) for i in (1, 2, 3)},
    **{f"phase_power_current_l{i}": (1.0, "A", "electricity", False) for i in (1, 2, 3)},
    "extra_device_delivered": (1.0, "m3", "gas", True),
}
_GAS: Final = "extra_device_delivered"
_MAX_TEXT: Final = 64


def parse(topic: str, payload: bytes, received_at: datetime) -> list[Reading]:
    """Parse one dsmr-reader message into readings; raise PayloadError on any defect."""
    received = require_aware(received_at)
    parts = topic_parts(topic)
    if len(parts) >= 2 and parts[-1] == "json":
        return _telegram("/".join(parts[:-1]), payload, received)
    if len(parts) >= 3 and parts[-2] == "reading":
        return [_split("/".join(parts[:-2]), parts[-1], payload, received)]
    raise PayloadError(
        f"topic {topic[:80]!r} is neither <prefix>/json nor <prefix>/reading/<field>"
    )


def _telegram(device: str, payload: bytes, received: datetime) -> list[Reading]:
    message = load_object(payload)
    stamp = message.get("timestamp")
    ts = received if stamp is None else parse_iso(stamp, "timestamp")
    gas_stamp = message.get("extra_device_timestamp")
    gas_ts = ts if gas_stamp is None else parse_iso(gas_stamp, "extra_device_timestamp")
    readings: list[Reading] = []
    for name, (factor, unit, quantity, cumulative) in FIELDS.items():
        raw = message.get(name)
        if raw is None:
            continue
        readings.append(
            reading(
                device_id=device,
                channel=name,
                ts=gas_ts if name == _GAS else ts,
                value=to_float(raw, name, allow_text=True) * factor,
                quantity=quantity,
                unit=unit,
                cumulative=cumulative,
            )
        )
    return non_empty(readings, "dsmr-reader JSON telegram")


def _split(device: str, name: str, payload: bytes, received: datetime) -> Reading:
    spec = FIELDS.get(name)
    if spec is None:
        raise PayloadError(f"dsmr-reader field {name[:60]!r} is not a reading we store")
    if len(payload) > _MAX_TEXT:
        raise PayloadError(f"{name} is {len(payload)} bytes, expected a bare number")
    factor, unit, quantity, cumulative = spec
    return reading(
        device_id=device,
        channel=name,
        ts=received,
        value=parse_number_text(decode_text(payload), name) * factor,
        quantity=quantity,
        unit=unit,
        cumulative=cumulative,
    )
