"""Adapter for ESPHome MQTT sensor states: ``<prefix>/sensor/<object_id>/state``, a bare number.

The payload carries no unit (it lives only in the device's YAML), so readings have
``unit=None`` and ``quantity=None`` and the meter's registration supplies both. ``device_id`` is
the topic prefix (the node name by default; it may contain ``/``) and ``channel`` the sensor's
object id. ``nan`` (sensor unavailable) is refused. No timestamp: arrival time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from ingest.adapters._common import (
    decode_text,
    parse_number_text,
    reading,
    require_aware,
    topic_parts,
)
from ingest.reading import Reading
from wattwatch.errors import PayloadError

_MAX_TEXT: Final = 64  # a number, not a document


def parse(topic: str, payload: bytes, received_at: datetime) -> list[Reading]:
    """Parse one ESPHome sensor state into a single reading; raise PayloadError on any defect."""
    received = require_aware(received_at)
    parts = topic_parts(topic)
    if len(parts) < 4 or parts[-1] != "state" or parts[-3] != "sensor":
        raise PayloadError(f"topic {topic[:80]!r} is not <prefix>/sensor/<name>/state")
    if len(payload) > _MAX_TEXT:
        raise PayloadError(f"sensor state is {len(payload)} bytes, expected a bare number")
    text = decode_text(payload).strip()
    if text.lower() == "nan":
        raise PayloadError("sensor reported nan (unavailable)")
    return [
        reading(
            device_id="/".join(parts[:-3]),
            channel=parts[-2],
            ts=received,
            value=parse_number_text(text, "sensor state"),
            quantity=None,
            unit=None,
            cumulative=False,
        )
    ]
