"""Adapter for Shelly Gen2/Gen3 devices (Plus/Pro/Mini, Pro 3EM, Pro EM) over MQTT.

Topics (``<prefix>`` defaults to the Shelly device id, e.g. ``shellyplus1pm-a8032ab12345``):

- ``<prefix>/events/rpc``: JSON-RPC notifications ``NotifyStatus`` (changed fields only) and
  ``NotifyFullStatus``; ``params.ts`` is Unix time [s] and ``params`` holds the components.
- ``<prefix>/status/<component>``: the component's full status (no timestamp: arrival time).

Components and fields read (others, e.g. ``sys``, ``wifi``, ``input:0``, are ignored):
``switch:N`` / ``pm1:N``: apower [W], voltage [V], current [A], freq [Hz], aenergy.total and
ret_aenergy.total [Wh → kWh, cumulative]; ``em:N``: total_act_power, a/b/c_act_power [W],
total_aprt_power, a/b/c_aprt_power [VA], a/b/c_voltage [V], total_current, n_current,
a/b/c_current [A], a/b/c_freq [Hz]; ``emdata:N``: total_act, total_act_ret,
a/b/c_total_act_energy, a/b/c_total_act_ret_energy [Wh → kWh, cumulative]; ``em1:N``:
act_power [W], aprt_power [VA], voltage, current, freq; ``em1data:N``: total_act_energy,
total_act_ret_energy [Wh → kWh, cumulative].

``device_id`` is the topic prefix; ``channel`` is ``<component>/<field>`` with nested fields
joined by ``.`` (``switch:0/aenergy.total``, ``emdata:0/total_act``). Negative active power
means export (Shelly's sign). Null fields (a phase in error) are skipped. Counters restart
from zero on some firmware updates; storage treats a drop as a reset.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final

from ingest.adapters._common import (
    as_object,
    epoch_to_utc,
    load_object,
    non_empty,
    reading,
    require_aware,
    to_float,
)
from ingest.reading import Reading
from wattwatch.errors import PayloadError

# field path → (factor to unit, unit, quantity, cumulative)
_Field = tuple[float, str, str, bool]
_POWER: Final[_Field] = (1.0, "W", "electricity", False)
_APPARENT: Final[_Field] = (1.0, "VA", "electricity", False)
_VOLTAGE: Final[_Field] = (1.0, "V", "grid_voltage", False)
_CURRENT: Final[_Field] = (1.0, "A", "electricity", False)
_FREQ: Final[_Field] = (1.0, "Hz", "grid_frequency", False)
_ENERGY: Final[_Field] = (1e-3, "kWh", "electricity", True)  # Shelly counts Wh
_RETURNED: Final[_Field] = (1e-3, "kWh", "electricity_injected", True)

_SWITCH: Final[dict[str, _Field]] = {
    "apower": _POWER,
    "voltage": _VOLTAGE,
    "current": _CURRENT,
    "freq": _FREQ,
    "aenergy.total": _ENERGY,
    "ret_aenergy.total": _RETURNED,
}
_EM: Final[dict[str, _Field]] = {
    "total_act_power": _POWER,
    "total_aprt_power": _APPARENT,
    "total_current": _CURRENT,
    "n_current": _CURRENT,
    **{f"{p}_act_power": _POWER for p in "abc"},
    **{f"{p}_aprt_power": _APPARENT for p in "abc"},
    **{f"{p}_voltage": _VOLTAGE for p in "abc"},
    **{f"{p}_current": _CURRENT for p in "abc"},
    **{f"{p}_freq": _FREQ for p in "abc"},
}
_EMDATA: Final[dict[str, _Field]] = {
    "total_act": _ENERGY,
    "total_act_ret": _RETURNED,
    **{f"{p}_total_act_energy": _ENERGY for p in "abc"},
    **{f"{p}_total_act_ret_energy": _RETURNED for p in "abc"},
}
_EM1: Final[dict[str, _Field]] = {
    "act_power": _POWER,
    "aprt_power": _APPARENT,
    "voltage": _VOLTAGE,
    "current": _CURRENT,
    "freq": _FREQ,
}
_EM1DATA: Final[dict[str, _Field]] = {
    "total_act_energy": _ENERGY,
    "total_act_ret_energy": _RETURNED,
}
FIELDS: Final[dict[str, dict[str, _Field]]] = {
    "switch": _SWITCH,
    "pm1": _SWITCH,
    "em": _EM,
    "emdata": _EMDATA,
    "em1": _EM1,
    "em1data": _EM1DATA,
}
_COMPONENT: Final = re.compile(r"(switch|pm1|em|emdata|em1|em1data)(?::([0-9]{1,3}))?")
_NOTIFY: Final = frozenset({"NotifyStatus", "NotifyFullStatus"})


def parse(topic: str, payload: bytes, received_at: datetime) -> list[Reading]:
    """Parse one Shelly Gen2/3 MQTT message into readings; raise PayloadError on any defect."""
    received = require_aware(received_at)
    if topic.endswith("/events/rpc"):
        prefix = topic.removesuffix("/events/rpc")
        _check_prefix(prefix, topic)
        message = load_object(payload)
        method = message.get("method")
        if not isinstance(method, str) or method not in _NOTIFY:
            raise PayloadError(f"RPC method {str(method)[:40]!r} carries no status readings")
        params = as_object(message.get("params"), "params")
        ts = epoch_to_utc(params["ts"], "params.ts") if "ts" in params else received
        readings: list[Reading] = []
        for key, status in params.items():
            if _COMPONENT.fullmatch(key):
                readings.extend(_component(prefix, key, status, ts))
        return non_empty(readings, f"{method} params")

    prefix, sep, component = topic.rpartition("/status/")
    if not sep or not _COMPONENT.fullmatch(component):
        raise PayloadError(
            f"topic {topic[:80]!r} is neither <prefix>/events/rpc nor a metering status topic"
        )
    _check_prefix(prefix, topic)
    status = load_object(payload)
    return non_empty(_component(prefix, component, status, received), f"{component} status")


def _check_prefix(prefix: str, topic: str) -> None:
    if not prefix or "//" in prefix or prefix.startswith("/"):
        raise PayloadError(f"topic {topic[:80]!r} has no usable device prefix")


def _component(device: str, key: str, status: object, ts: datetime) -> list[Reading]:
    kind = key.split(":", 1)[0]
    obj = as_object(status, key)
    readings: list[Reading] = []
    for path, (factor, unit, quantity, cumulative) in FIELDS[kind].items():
        raw = _lookup(obj, path, key)
        if raw is None:
            continue
        value = to_float(raw, f"{key}.{path}") * factor
        readings.append(
            reading(
                device_id=device,
                channel=f"{key}/{path}",
                ts=ts,
                value=value,
                quantity=quantity,
                unit=unit,
                cumulative=cumulative,
            )
        )
    return readings


def _lookup(obj: dict[str, object], path: str, key: str) -> object:
    """Follow a dotted path; a missing or null step means "not reported" (None)."""
    head, _, rest = path.partition(".")
    value = obj.get(head)
    if not rest or value is None:
        return value
    return _lookup(as_object(value, f"{key}.{head}"), rest, key)
