"""Adapter for Zigbee2MQTT device state messages, for the ZLinky_TIC (Linky over Zigbee) and
other metering devices: topic ``zigbee2mqtt/<friendly_name>``, payload the device state object.

Fields read (Zigbee2MQTT already scales them): current_summ_delivered,
current_tier1..10_summ_delivered [kWh, cumulative], current_summ_received [kWh, cumulative,
injected], apparent_power, apparent_power_ph_b/_c [VA — not W], active_power,
active_power_ph_b/_c [W], rms_voltage(_ph_b/_c) [V], rms_current(_ph_b/_c) [A],
ac_frequency [Hz]. Other fields (linkquality, tariff, meter_serial_number…) are ignored and null
values skipped. ``device_id`` is the friendly name (it may contain ``/``); ``channel`` the field.
Time: ``last_seen`` when the bridge adds it (ISO 8601 or epoch [ms]), else arrival time.
``bridge/...`` topics and ``/availability``, ``/set``, ``/get`` sub-topics are refused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from ingest.adapters._common import (
    epoch_to_utc,
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

ROOT: Final = "zigbee2mqtt"
_KWH: Final = ("kWh", "electricity", True)
_PHASES: Final = ("", "_ph_b", "_ph_c")
# field → (unit, quantity, cumulative)
FIELDS: Final[dict[str, tuple[str, str, bool]]] = {
    "current_summ_delivered": _KWH,
    **{f"current_tier{i}_summ_delivered": _KWH for i in range(1, 11)},
    "current_summ_received": ("kWh", "electricity_injected", True),
    **{f"apparent_power{p}": ("VA", "electricity", False) for p in _PHASES},
    **{f"active_power{p}": ("W", "electricity", False) for p in _PHASES},
    **{f"rms_voltage{p}": ("V", "grid_voltage", False) for p in _PHASES},
    **{f"rms_current{p}": ("A", "electricity", False) for p in _PHASES},
    "ac_frequency": ("Hz", "grid_frequency", False),
}
_NOT_STATE: Final = frozenset({"availability", "set", "get"})


def parse(topic: str, payload: bytes, received_at: datetime) -> list[Reading]:
    """Parse one Zigbee2MQTT device state into readings; raise PayloadError on any defect."""
    received = require_aware(received_at)
    parts = topic_parts(topic)
    if len(parts) < 2 or parts[0] != ROOT or parts[1] == "bridge" or parts[-1] in _NOT_STATE:
        raise PayloadError(f"topic {topic[:80]!r} is not a zigbee2mqtt/<device> state topic")
    device = "/".join(parts[1:])
    state = load_object(payload)
    ts = _last_seen(state.get("last_seen")) or received
    readings: list[Reading] = []
    for name, (unit, quantity, cumulative) in FIELDS.items():
        raw = state.get(name)
        if raw is None:
            continue
        readings.append(
            reading(
                device_id=device,
                channel=name,
                ts=ts,
                value=to_float(raw, name),
                quantity=quantity,
                unit=unit,
                cumulative=cumulative,
            )
        )
    return non_empty(readings, "zigbee2mqtt state")


def _last_seen(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        return parse_iso(value, "last_seen")
    return epoch_to_utc(to_float(value, "last_seen") / 1000.0, "last_seen")  # epoch is in ms
