"""Real-shaped MQTT messages per device format: the inverse of ``ingest.adapters``.

``encode(format, device_id, ts, values)`` returns ``[(topic, payload)]`` that the format's
adapter parses back to ``values`` (within the device's resolution). ``values`` keys are the
channel names the adapter produces and values are in the adapter's normalised units (kWh, W,
VA, V, A, Hz, degC, m3); each encoder converts to the device's own units and shape.

Accepted channels, device resolution and timestamp resolution per format:

- ``own_json``: ``OWN_JSON_CHANNELS`` keys (energy, power, voltage…); exact; ts exact.
- ``senml``: ``SENML_CHANNELS`` keys (power, energy, voltage…; energy sent as ``s`` in Wh);
  ts to 1 ms. ``device_id`` becomes the base name ``<device_id>:``.
- ``shelly``: ``<component>:<id>/<field>`` as in ``ingest.adapters.shelly.FIELDS``
  (``switch:0/apower``, ``switch:0/aenergy.total`` in kWh, sent in Wh); one NotifyStatus on
  ``<device_id>/events/rpc``; W, V to 0.1, A to 0.001, Wh to 0.001; ts to 10 ms.
- ``tasmota``: ``ingest.adapters.tasmota.FIELDS`` keys, or ``<key>/<n>`` (n from 1) for
  multi-channel arrays; Total to 0.001 kWh, W, VA, var, V and Hz to 1, A to 0.001; ``Time`` is
  Paris local time to 1 s (ambiguous in the repeated autumn hour).
- ``linky_tic``: historic labels (BASE, HCHC, HCHP, PAPP, IINST… — ``{"BASE": kWh, "PAPP": VA}``)
  or standard labels (EAST, EASF01, EAIT, SINSTS, URMS1, IRMS1…), never mixed; ``device_id`` is
  the 12-digit ADCO/ADSC; indexes as zero-padded Wh integers, VA, V, A as integers.
  Standard mode stamps DATE (1 s); historic mode has no clock (the arrival time is used).
- ``zigbee2mqtt``: ``ingest.adapters.zigbee2mqtt.FIELDS`` keys; kWh to 0.001, VA, W, V, A to 1;
  ``last_seen`` to 1 ms.
- ``esphome``: any object id (one topic level); 3 decimals; no clock (arrival time).
- ``dsmr``: ``ingest.adapters.dsmr.FIELDS`` keys; one ``<device_id>/json`` telegram; kWh, kW and
  m3 to 0.001, V to 0.1, A to 1; ts to 1 s.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Final
from zoneinfo import ZoneInfo

from ingest.adapters import dsmr, linky_tic, shelly, tasmota, zigbee2mqtt

Message = tuple[str, bytes]
Encoder = Callable[[str, datetime, Mapping[str, float]], list[Message]]

PARIS: Final = ZoneInfo("Europe/Paris")

# own_json channel → (unit, quantity, cumulative)
OWN_JSON_CHANNELS: Final[dict[str, tuple[str, str, bool]]] = {
    "energy": ("kWh", "electricity", True),
    "energy_injected": ("kWh", "electricity_injected", True),
    "power": ("W", "electricity", False),
    "apparent_power": ("VA", "electricity", False),
    "voltage": ("V", "grid_voltage", False),
    "current": ("A", "electricity", False),
    "frequency": ("Hz", "grid_frequency", False),
    "gas": ("m3", "gas", True),
    "water": ("m3", "water", True),
    "heat": ("kWh", "heat", True),
    "pv_power": ("W", "pv", False),
    "indoor_temperature": ("degC", "indoor_temperature", False),
    "outdoor_temperature": ("degC", "outdoor_temperature", False),
    "irradiance": ("W/m2", "irradiance", False),
    "grid_load": ("pu", "grid_load", False),
}

# SenML record name → (SenML unit, field, factor from the normalised unit)
SENML_CHANNELS: Final[dict[str, tuple[str, str, float]]] = {
    "power": ("W", "v", 1.0),
    "energy": ("Wh", "s", 1e3),
    "energy_injected": ("Wh", "s", 1e3),
    "voltage": ("V", "v", 1.0),
    "current": ("A", "v", 1.0),
    "frequency": ("Hz", "v", 1.0),
    "temperature": ("Cel", "v", 1.0),
    "gas": ("m3", "v", 1.0),
}

# Decimals a device prints per device unit (Shelly firmware, zero-padded TIC integers…).
_SHELLY_DECIMALS: Final = {"W": 1, "VA": 1, "V": 1, "A": 3, "Hz": 2, "kWh": 3}  # kWh sent as Wh
_TASMOTA_DECIMALS: Final = {"kWh": 3, "W": 0, "VA": 0, "var": 0, "V": 0, "A": 3, "Hz": 0}
_Z2M_DECIMALS: Final = {"kWh": 3, "VA": 0, "W": 0, "V": 0, "A": 0, "Hz": 2}
# TIC label → digits of its zero-padded field
_TIC_WIDTH: Final = {"VA": 5, "V": 3, "A": 3, "kWh": 9}


def encode(format: str, device_id: str, ts: datetime, values: Mapping[str, float]) -> list[Message]:
    """Return the ``(topic, payload)`` messages a real device of ``format`` would publish.

    Raises ValueError for a naive ``ts``, no values, a non-finite value or a channel the
    format does not have; KeyError for an unknown format.
    """
    try:
        encoder = ENCODERS[format]
    except KeyError:
        known = ", ".join(sorted(ENCODERS))
        raise KeyError(f"no encoder for format {format!r}; known formats: {known}") from None
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError("ts must be timezone-aware")
    if not values:
        raise ValueError("values is empty: a message needs at least one channel")
    if not device_id:
        raise ValueError("device_id is empty")
    for name, value in values.items():
        if not math.isfinite(value):
            raise ValueError(f"value of {name!r} is not finite")
    return encoder(device_id, ts.astimezone(UTC), values)


def _json(data: object) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def _iso_z(ts: datetime, *, ms: bool = False) -> str:
    text = ts.strftime("%Y-%m-%dT%H:%M:%S")
    if ms:
        text += f".{ts.microsecond // 1000:03d}"
    return text + "Z"


def _unknown(fmt: str, name: str, known: Mapping[str, object]) -> ValueError:
    return ValueError(f"{fmt} has no channel {name!r}; known: {', '.join(sorted(known))}")


def _own_json(device_id: str, ts: datetime, values: Mapping[str, float]) -> list[Message]:
    readings = []
    for name, value in values.items():
        if name not in OWN_JSON_CHANNELS:
            raise _unknown("own_json", name, OWN_JSON_CHANNELS)
        unit, quantity, cumulative = OWN_JSON_CHANNELS[name]
        readings.append(
            {
                "channel": name,
                "value": value,
                "unit": unit,
                "quantity": quantity,
                "cumulative": cumulative,
            }
        )
    message = {"device": device_id, "ts": ts.isoformat(), "readings": readings}
    return [(f"wattwatch/{device_id}", _json(message))]


def _senml(device_id: str, ts: datetime, values: Mapping[str, float]) -> list[Message]:
    records: list[dict[str, object]] = []
    for name, value in values.items():
        if name not in SENML_CHANNELS:
            raise _unknown("senml", name, SENML_CHANNELS)
        unit, field, factor = SENML_CHANNELS[name]
        records.append({"n": name, "u": unit, field: value * factor})
    records[0] = {"bn": f"{device_id}:", "bt": round(ts.timestamp(), 3), **records[0]}
    return [(f"senml/{device_id}", _json(records))]


def _shelly(device_id: str, ts: datetime, values: Mapping[str, float]) -> list[Message]:
    components: dict[str, dict[str, object]] = {}
    for name, value in values.items():
        key, _, path = name.partition("/")
        kind, _, index = key.partition(":")
        spec = shelly.FIELDS.get(kind, {}).get(path)
        if spec is None or not index.isdigit():
            raise ValueError(f"shelly has no channel {name!r} (expected e.g. switch:0/apower)")
        factor, unit, _, _ = spec
        node = components.setdefault(key, {"id": int(index)})
        *parents, leaf = path.split(".")
        for parent in parents:
            child = node.setdefault(parent, {})
            assert isinstance(child, dict)
            node = child
        node[leaf] = round(value / factor, _SHELLY_DECIMALS[unit])
    message = {
        "src": device_id,
        "dst": f"{device_id}/events",
        "method": "NotifyStatus",
        "params": {"ts": round(ts.timestamp(), 2), **components},
    }
    return [(f"{device_id}/events/rpc", _json(message))]


def _tasmota(device_id: str, ts: datetime, values: Mapping[str, float]) -> list[Message]:
    energy: dict[str, object] = {}
    arrays: dict[str, dict[int, float]] = {}
    for name, value in values.items():
        key, _, index = name.partition("/")
        if key not in tasmota.FIELDS or (index and not index.isdigit()):
            raise _unknown("tasmota", name, tasmota.FIELDS)
        rounded = _round(value, _TASMOTA_DECIMALS[tasmota.FIELDS[key][0]])
        if index:
            arrays.setdefault(key, {})[int(index)] = rounded
        else:
            energy[key] = rounded
    for key, items in arrays.items():
        if key in energy or sorted(items) != list(range(1, len(items) + 1)):
            raise ValueError(f"tasmota {key} channels must be numbered 1..n without a scalar")
        energy[key] = [items[i] for i in sorted(items)]
    if "Total" in energy:
        energy = {"TotalStartTime": "2023-01-01T00:00:00", **energy}
    local = ts.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M:%S")
    return [(f"tele/{device_id}/SENSOR", _json({"Time": local, "ENERGY": energy}))]


def _linky_tic(device_id: str, ts: datetime, values: Mapping[str, float]) -> list[Message]:
    if not (device_id.isdigit() and len(device_id) == 12):
        raise ValueError("linky_tic device_id must be the 12-digit ADCO/ADSC")
    if set(values) <= set(linky_tic.HISTORIC):
        frame: dict[str, object] = {"ADCO": _tic_field(device_id)}
        frame["OPTARIF"] = _tic_field("BASE" if "BASE" in values else "HC..")
    elif set(values) <= set(linky_tic.STANDARD):
        dst = "summer" if ts.astimezone(PARIS).dst() else "winter"
        frame = {
            "ADSC": _tic_field(device_id),
            "DATE": {
                "raw": "",
                "value": "",
                "timestamp": {"date": _iso_z(ts, ms=True), "dst": dst},
            },
        }
    else:
        raise ValueError("linky_tic values must all be historic labels or all standard labels")
    for label, value in values.items():
        factor, unit, _, _ = linky_tic.LABELS[label]
        number = round(value / factor)
        if number < 0:
            raise ValueError(f"TIC field {label} cannot be negative")
        frame[label] = _tic_field(f"{number:0{_TIC_WIDTH[unit]}d}")
    return [(f"teleinfo/{device_id}", _json(frame))]


def _tic_field(raw: str) -> dict[str, object]:
    # teleinfo2mqtt keeps the raw text and a sanitised value (a number when it is one).
    return {"raw": raw, "value": int(raw) if raw.isdigit() else raw.rstrip(".")}


def _zigbee2mqtt(device_id: str, ts: datetime, values: Mapping[str, float]) -> list[Message]:
    state: dict[str, object] = {}
    for name, value in values.items():
        if name not in zigbee2mqtt.FIELDS:
            raise _unknown("zigbee2mqtt", name, zigbee2mqtt.FIELDS)
        state[name] = _round(value, _Z2M_DECIMALS[zigbee2mqtt.FIELDS[name][0]])
    state |= {"linkquality": 120, "last_seen": _iso_z(ts, ms=True)}
    return [(f"zigbee2mqtt/{device_id}", _json(state))]


def _esphome(device_id: str, ts: datetime, values: Mapping[str, float]) -> list[Message]:
    del ts  # ESPHome states carry no time
    messages = []
    for name, value in values.items():
        if not name or any(c in name for c in "/+#"):
            raise ValueError(f"esphome object id must be one topic level, got {name!r}")
        messages.append((f"{device_id}/sensor/{name}/state", f"{value:.3f}".encode()))
    return messages


def _dsmr(device_id: str, ts: datetime, values: Mapping[str, float]) -> list[Message]:
    telegram: dict[str, object] = {"id": int(ts.timestamp()), "timestamp": _iso_z(ts)}
    for name, value in values.items():
        if name not in dsmr.FIELDS:
            raise _unknown("dsmr", name, dsmr.FIELDS)
        factor, unit, _, _ = dsmr.FIELDS[name]
        decimals = {"V": 1, "A": 0}.get(unit, 3)
        telegram[name] = _round(value / factor, decimals)
    if "extra_device_delivered" in values:
        telegram["extra_device_timestamp"] = _iso_z(ts)
    return [(f"{device_id}/json", _json(telegram))]


def _round(value: float, decimals: int) -> float | int:
    return round(value) if decimals == 0 else round(value, decimals)


ENCODERS: Final[dict[str, Encoder]] = {
    "own_json": _own_json,
    "senml": _senml,
    "shelly": _shelly,
    "tasmota": _tasmota,
    "linky_tic": _linky_tic,
    "zigbee2mqtt": _zigbee2mqtt,
    "esphome": _esphome,
    "dsmr": _dsmr,
}
