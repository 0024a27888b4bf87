"""Adapter for wattwatch's own JSON format, for devices and gateways we program ourselves.

Two shapes, both UTF-8 JSON:

1. Device message on ``wattwatch/<device_id>``::

       {"device": "flat-12",                      # optional; must equal the topic's id
        "ts": "2024-01-05T12:00:00+01:00",         # ISO 8601 with offset, or Unix time [s];
                                                   # optional, default: arrival time
        "readings": [
          {"channel": "energy", "value": 1234.5, "unit": "kWh",
           "quantity": "electricity", "cumulative": true},
          {"channel": "power", "value": 530, "unit": "W", "ts": 1704452400}
        ]}

   On any other topic the payload must carry ``device``.

2. One channel on ``wattwatch/<device_id>/<channel>`` (the channel may contain ``/``): the
   payload is a bare JSON number (no unit, no quantity, not cumulative — the meter's
   registration supplies them) or one reading object without ``channel``.

``unit`` is one of ``ingest.reading.UNITS`` or a convertible spelling (Wh, kW, J, Cel…,
converted to kWh, W, degC); ``quantity`` is one of ``QUANTITIES``; both may be null.
``cumulative`` (default false) marks an index. A payload ``device`` that differs from the
topic's is refused: broker ACLs grant a device its own topic, so the topic is the identity.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from ingest.adapters._common import (
    as_object,
    epoch_to_utc,
    load_json,
    non_empty,
    normalise,
    parse_iso,
    reading,
    require_aware,
    to_float,
    topic_parts,
)
from ingest.reading import Reading
from wattwatch.errors import PayloadError

ROOT: Final = "wattwatch"
_MAX_READINGS: Final = 1000  # one message is one device's instant, not a bulk upload


def parse(topic: str, payload: bytes, received_at: datetime) -> list[Reading]:
    """Parse one wattwatch JSON message into readings; raise PayloadError on any defect."""
    received = require_aware(received_at)
    parts = topic_parts(topic)
    topic_device = parts[1] if len(parts) >= 2 and parts[0] == ROOT else None
    data = load_json(payload)

    if topic_device is not None and len(parts) >= 3:
        return [_one(data, topic_device, "/".join(parts[2:]), received, "payload")]

    message = as_object(data, "payload")
    device = message.get("device", topic_device)
    if not isinstance(device, str) or not device:
        raise PayloadError("payload needs a non-empty string 'device' (or topic wattwatch/<id>)")
    if topic_device is not None and device != topic_device:
        raise PayloadError(
            f"payload device {device[:60]!r} differs from topic device {topic_device[:60]!r}"
        )
    ts = _timestamp(message["ts"], "ts") if "ts" in message else received
    items = message.get("readings")
    if not isinstance(items, list):
        raise PayloadError("payload needs a 'readings' list")
    if len(items) > _MAX_READINGS:
        raise PayloadError(f"too many readings in one message ({len(items)} > {_MAX_READINGS})")
    readings: list[Reading] = []
    for index, item in enumerate(items):
        where = f"readings[{index}]"
        obj = as_object(item, where)
        name = obj.get("channel")
        if not isinstance(name, str) or not name:
            raise PayloadError(f"{where} needs a non-empty string 'channel'")
        readings.append(_one(obj, device, name, ts, where))
    return non_empty(readings, "payload")


def _timestamp(value: object, what: str) -> datetime:
    if isinstance(value, str):
        return parse_iso(value, what)
    return epoch_to_utc(value, what)


def _one(data: object, device: str, channel: str, default_ts: datetime, where: str) -> Reading:
    """One reading from a bare number or a reading object."""
    if not isinstance(data, dict):
        value = to_float(data, f"{where} value")
        return reading(
            device_id=device,
            channel=channel,
            ts=default_ts,
            value=value,
            quantity=None,
            unit=None,
            cumulative=False,
        )
    value = to_float(data.get("value"), f"{where}.value")
    unit = data.get("unit")
    quantity = data.get("quantity")
    cumulative = data.get("cumulative", False)
    if unit is not None:
        if not isinstance(unit, str):
            raise PayloadError(f"{where}.unit must be a string or null")
        value, unit = normalise(value, unit, f"{where}.unit")
    if quantity is not None and not isinstance(quantity, str):
        raise PayloadError(f"{where}.quantity must be a string or null")
    if not isinstance(cumulative, bool):
        raise PayloadError(f"{where}.cumulative must be true or false")
    ts = _timestamp(data["ts"], f"{where}.ts") if "ts" in data else default_ts
    return reading(
        device_id=device,
        channel=channel,
        ts=ts,
        value=value,
        quantity=quantity,
        unit=unit,
        cumulative=cumulative,
    )
