"""Adapter for SenML packs in JSON (RFC 8428), the IETF format for sensor measurements.

Resolution follows RFC 8428 §4.6: base fields (bn, bt, bu, bv, bs) apply to their record and all
later records until redefined; name = bn + n; time = bt + t, where a resolved time below 2**28
(negative included) is relative to now (the arrival time), otherwise Unix time [s]; value = bv + v;
sum = bs + s. Records carrying only vs/vb/vd are skipped; a field ending in ``_`` is
"must understand" and refuses the pack.

Identity: with a base name and a name, ``device_id`` is bn without trailing ``:`` or ``/`` and
``channel`` is n (``urn:dev:ow:10e2073a01080063:`` + ``voltage``). Without both, ``device_id`` is
the MQTT topic and ``channel`` the full name.

Units: W, kW → W; Wh, kWh, J → kWh; V; A; Hz; Cel → degC; m3; %; VA; var; W/m2; no unit → None
(the registration supplies it). ``v`` readings of energy or volume (kWh, m3) are meter indexes,
so cumulative; other ``v`` readings are samples. ``s`` (sum) is cumulative: RFC 8428 gives it
the unit × seconds, so a sum of W is J (→ kWh); a sum of an energy or volume unit is read as
the index in that unit (what meters send). When a record has both v and s, the sum's channel
is ``<name>/sum`` so both fit in one (device, channel, ts) key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, overload

from ingest.adapters._common import (
    UNIT_ALIASES,
    epoch_to_utc,
    load_json,
    non_empty,
    normalise,
    reading,
    require_aware,
    shift,
    to_float,
)
from ingest.reading import Reading
from wattwatch.errors import PayloadError

_RELATIVE_LIMIT: Final = 2.0**28  # RFC 8428 §4.5.3: smaller times (negative too) are relative
_MAX_RECORDS: Final = 1000

# Normalised unit → quantity; None where SenML cannot tell (gas or water, indoor or outdoor).
_QUANTITY: Final[dict[str, str | None]] = {
    "W": "electricity",
    "kWh": "electricity",
    "VA": "electricity",
    "var": "electricity",
    "A": "electricity",
    "V": "grid_voltage",
    "Hz": "grid_frequency",
    "W/m2": "irradiance",
    "degC": None,
    "m3": None,
    "%": None,
}
_INDEX_UNITS: Final = frozenset({"kWh", "m3"})
# SenML units accepted (a subset of the SenML units registry plus RFC 8798 additions).
_SENML_UNITS: Final = frozenset(
    {"W", "kW", "Wh", "kWh", "J", "V", "A", "Hz", "Cel", "m3", "%", "VA", "var", "W/m2"}
)
_POWER_SECONDS_TO_KWH: Final = {"W": 1.0 / 3.6e6, "kW": 1.0 / 3.6e3}  # unit·s → kWh
_BASE_KEYS: Final = frozenset({"bn", "bu", "bt", "bv", "bs"})
_INF: Final = math.inf


def _value_unit(unit: str) -> tuple[float, str, str | None, bool]:
    factor, normalised = UNIT_ALIASES[unit]
    return factor, normalised, _QUANTITY[normalised], normalised in _INDEX_UNITS


# The fast path of a ``v`` reading: SenML unit → (factor, normalised unit, quantity, cumulative),
# resolved once; anything unusual takes the checked path (_value_reading) and its errors.
_VALUE_UNITS: Final = {unit: _value_unit(unit) for unit in _SENML_UNITS}


@dataclass(slots=True)
class _Base:
    """Base fields in effect: they carry over to later records until redefined (§4.1)."""

    bn: str = ""
    bu: str | None = None
    bt: float = 0.0
    bv: float = 0.0
    bs: float = 0.0


def parse(topic: str, payload: bytes, received_at: datetime) -> list[Reading]:
    """Parse a SenML JSON pack into readings; raise PayloadError on any defect."""
    received = require_aware(received_at)
    if not topic:
        raise PayloadError("empty topic")
    data = load_json(payload)
    records = [data] if isinstance(data, dict) else data
    if not isinstance(records, list):
        raise PayloadError(f"SenML pack must be a JSON array, got {type(data).__name__}")
    if len(records) > _MAX_RECORDS:
        raise PayloadError(f"SenML pack has too many records ({len(records)})")
    base = _Base()
    readings: list[Reading] = []
    times: dict[float, datetime] = {}  # absolute time → its datetime, shared within the pack
    for index, record in enumerate(records):
        readings.extend(
            _record(record, base, topic=topic, received=received, index=index, times=times)
        )
    return non_empty(readings, "SenML pack")


def _record(
    record: object,
    base: _Base,
    *,
    topic: str,
    received: datetime,
    index: int,
    times: dict[float, datetime] | None = None,
) -> list[Reading]:
    """Resolve one record against (and update) the base fields in effect."""
    where = f"record {index}"
    if not isinstance(record, dict):
        raise PayloadError(f"{where} must be a JSON object")
    for key in record:
        if key.endswith("_"):
            raise PayloadError(f"{where} has must-understand field {key[:20]!r}")
    if not _BASE_KEYS.isdisjoint(record):
        base.bn = _text(record, "bn", where, base.bn)
        base.bu = _text(record, "bu", where, base.bu)
        base.bt = _number(record, "bt", where, base.bt)
        base.bv = _number(record, "bv", where, base.bv)
        base.bs = _number(record, "bs", where, base.bs)
    n = _text(record, "n", where, "")
    unit = _text(record, "u", where, base.bu) or None
    has_v, has_s = "v" in record, "s" in record
    if not has_v and not has_s:
        return []  # vs/vb/vd or base-only records carry no number we store
    name = base.bn + n
    if not name:
        raise PayloadError(f"{where} has no name (neither bn nor n)")
    device = base.bn.rstrip(":/")
    if n and device:
        channel = n
    else:
        device, channel = topic, name
    ts = _time(base.bt + _number(record, "t", where, 0.0), received, where, times)
    readings: list[Reading] = []
    if has_v:
        raw = record["v"]
        v = raw if type(raw) is float and -_INF < raw < _INF else to_float(raw, f"{where}.v")
        value = _finite(base.bv + v, f"{where}.v")
        readings.append(_value_reading(device, channel, ts, value, unit=unit, where=where))
    if has_s:
        total = _finite(base.bs + to_float(record["s"], f"{where}.s"), f"{where}.s")
        sum_channel = f"{channel}/sum" if has_v else channel
        readings.append(_sum_reading(device, sum_channel, ts, total, unit=unit, where=where))
    return readings


def _time(
    t: float, received: datetime, where: str, times: dict[float, datetime] | None
) -> datetime:
    if t < _RELATIVE_LIMIT:
        return shift(received, t, f"{where} relative time")
    cached = times.get(t) if times is not None else None
    if cached is None:
        cached = epoch_to_utc(t, f"{where} time")
        if times is not None:
            times[t] = cached
    return cached


@overload
def _text(record: dict[str, object], key: str, where: str, default: str) -> str: ...
@overload
def _text(record: dict[str, object], key: str, where: str, default: None) -> str | None: ...
def _text(record: dict[str, object], key: str, where: str, default: str | None) -> str | None:
    if key not in record:
        return default
    value = record[key]
    if not isinstance(value, str):
        raise PayloadError(f"{where}.{key} must be a string")
    return value


def _number(record: dict[str, object], key: str, where: str, default: float) -> float:
    return to_float(record[key], f"{where}.{key}") if key in record else default


def _finite(value: float, what: str) -> float:
    if not math.isfinite(value):  # base + value can overflow even when both are finite
        raise PayloadError(f"{what} plus its base value is out of range")
    return value


def _value_reading(
    device: str, channel: str, ts: datetime, value: float, *, unit: str | None, where: str
) -> Reading:
    fast = _VALUE_UNITS.get(unit) if unit is not None else None
    if fast is not None and ts.tzinfo is UTC and device and channel:
        converted = value * fast[0]
        if -_INF < converted < _INF:  # else normalise() below refuses it
            # What reading() builds: the table holds only known units and quantities.
            return Reading(device, channel, ts, converted, fast[2], fast[1], fast[3])
    if unit is None:
        return reading(
            device_id=device,
            channel=channel,
            ts=ts,
            value=value,
            quantity=None,
            unit=None,
            cumulative=False,
        )
    _check_unit(unit, where)
    value, normalised = normalise(value, unit, f"{where}.u")
    return reading(
        device_id=device,
        channel=channel,
        ts=ts,
        value=value,
        quantity=_QUANTITY[normalised],
        unit=normalised,
        cumulative=normalised in _INDEX_UNITS,
    )


def _sum_reading(
    device: str, channel: str, ts: datetime, total: float, *, unit: str | None, where: str
) -> Reading:
    if unit is None:
        raise PayloadError(f"{where} has a sum without a unit")
    _check_unit(unit, where)
    if unit in _POWER_SECONDS_TO_KWH:
        value, normalised = total * _POWER_SECONDS_TO_KWH[unit], "kWh"
    else:
        value, normalised = normalise(total, unit, f"{where}.u")
        if normalised not in _INDEX_UNITS:
            raise PayloadError(f"{where} has a sum of {unit}, which is not an index")
    return reading(
        device_id=device,
        channel=channel,
        ts=ts,
        value=value,
        quantity=_QUANTITY[normalised],
        unit=normalised,
        cumulative=True,
    )


def _check_unit(unit: str, where: str) -> None:
    if unit not in _SENML_UNITS:
        raise PayloadError(f"{where} has an unsupported SenML unit {unit[:20]!r}")
