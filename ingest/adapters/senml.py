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

Packs carry up to a thousand records, so ``parse_columns`` (the ingestor's path) builds columns
with no object or datetime per record; ``parse`` gives the same readings as ``Reading`` objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Final, overload

from ingest.adapters._common import (
    UNIT_ALIASES,
    load_json,
    normalise,
    require_aware,
    to_float,
)
from ingest.reading import EPOCH, ONE_US, Reading, ReadingColumns, Series
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
# Every RFC 8428 label; a record with others is checked for must-understand ones.
_LABELS: Final = frozenset(
    {"bn", "bt", "bu", "bv", "bs", "bver", "n", "u", "v", "vs", "vb", "vd", "s", "t", "ut"}
)
_INF: Final = math.inf
_INT_FAST: Final = 2**63  # ints below this in magnitude convert to float without a check
# The datetime range in µs since the Unix epoch: times outside are refused.
_MIN_US: Final = (datetime.min.replace(tzinfo=EPOCH.tzinfo) - EPOCH) // ONE_US
_MAX_US: Final = (datetime.max.replace(tzinfo=EPOCH.tzinfo) - EPOCH) // ONE_US


def _value_unit(unit: str) -> tuple[float, str, str | None, bool]:
    factor, normalised = UNIT_ALIASES[unit]
    return factor, normalised, _QUANTITY[normalised], normalised in _INDEX_UNITS


# A ``v`` reading's SenML unit → (factor, normalised unit, quantity, cumulative), resolved once.
_VALUE_UNITS: Final = {unit: _value_unit(unit) for unit in _SENML_UNITS}


def parse(topic: str, payload: bytes, received_at: datetime) -> list[Reading]:
    """Parse a SenML JSON pack into readings; raise PayloadError on any defect."""
    return parse_columns(topic, payload, received_at).readings()


def parse_columns(topic: str, payload: bytes, received_at: datetime) -> ReadingColumns:
    """``parse`` as columns, one row per reading in record order."""
    received_us = (require_aware(received_at) - EPOCH) // ONE_US  # base of relative times
    if not topic:
        raise PayloadError("empty topic")
    data = load_json(payload)
    records = [data] if isinstance(data, dict) else data
    if not isinstance(records, list):
        raise PayloadError(f"SenML pack must be a JSON array, got {type(data).__name__}")
    if len(records) > _MAX_RECORDS:
        raise PayloadError(f"SenML pack has too many records ({len(records)})")
    base = _Base()
    columns = _Columns()
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise PayloadError(f"record {index} must be a JSON object")
        if not record.keys() <= _LABELS:
            _check_must_understand(record, index)
        if not _BASE_KEYS.isdisjoint(record):
            base.update(record, index)
        n, unit = _name_and_unit(record, index, base.bu)
        has_v, has_s = "v" in record, "s" in record
        if not has_v and not has_s:
            continue  # vs/vb/vd or base-only records carry no number we store
        device, channel = _identity(base, n, topic, index)
        t = base.bt + (_number(record["t"], index, "t") if "t" in record else 0.0)
        us = _relative_us(received_us, t, index) if t < _RELATIVE_LIMIT else _absolute_us(t, index)
        if has_v:
            value = base.bv + _number(record["v"], index, "v")
            columns.add_value(device, channel, unit, us, value, index=index)
        if has_s:
            total, normalised = _sum(record, index, unit, base.bs)
            columns.add_sum(device, f"{channel}/sum" if has_v else channel, normalised, us, total)
    if not columns.values:
        raise PayloadError("no readings found in SenML pack")
    return ReadingColumns(columns.series, columns.series_index, columns.ts_us, columns.values)


@dataclass(slots=True)
class _Base:
    """Base fields in effect: they carry over to later records until redefined (§4.1)."""

    bn: str = ""
    bu: str | None = None
    bt: float = 0.0
    bv: float = 0.0
    bs: float = 0.0
    device: str = ""  # bn without its trailing separator

    def update(self, record: dict[str, object], index: int) -> None:
        where = f"record {index}"
        self.bn = _text(record, "bn", where, self.bn)
        self.bu = _text(record, "bu", where, self.bu)
        self.bt = _number(record["bt"], index, "bt") if "bt" in record else self.bt
        self.bv = _number(record["bv"], index, "bv") if "bv" in record else self.bv
        self.bs = _number(record["bs"], index, "bs") if "bs" in record else self.bs
        self.device = self.bn.rstrip(":/")


class _Columns:
    """The columns of a pack being read; each distinct series is described once."""

    __slots__ = ("_sums", "_values", "series", "series_index", "ts_us", "values")

    def __init__(self) -> None:
        self.series: list[Series] = []
        self.series_index: list[int] = []
        self.ts_us: list[int] = []
        self.values: list[float] = []
        self._values: dict[tuple[str, str, str | None], tuple[int, float]] = {}  # → i, factor
        self._sums: dict[tuple[str, str, str], int] = {}

    def add_value(
        self, device: str, channel: str, unit: str | None, us: int, value: float, *, index: int
    ) -> None:
        """A ``v`` reading: ``value`` (with its base value) in SenML ``unit``."""
        if not -_INF < value < _INF:  # base + value can overflow even when both are finite
            raise PayloadError(f"record {index}.v plus its base value is out of range")
        key = (device, channel, unit)
        known = self._values.get(key)
        if known is None:
            known = self._values[key] = (len(self.series), _value_factor(unit, index))
            self.series.append(_value_series(device, channel, unit))
        i, factor = known
        if factor != 1.0:
            value *= factor
            if not -_INF < value < _INF:
                normalised = self.series[i].unit
                raise PayloadError(
                    f"record {index}.u is out of range after conversion to {normalised}"
                )
        self.series_index.append(i)
        self.ts_us.append(us)
        self.values.append(value)

    def add_sum(self, device: str, channel: str, normalised: str, us: int, total: float) -> None:
        """An ``s`` reading: an index in ``normalised`` units."""
        key = (device, channel, normalised)
        i = self._sums.get(key)
        if i is None:
            i = self._sums[key] = len(self.series)
            self.series.append(Series(device, channel, _QUANTITY[normalised], normalised, True))
        self.series_index.append(i)
        self.ts_us.append(us)
        self.values.append(total)


def _name_and_unit(record: dict[str, object], index: int, bu: str | None) -> tuple[str, str | None]:
    n = record.get("n", "")
    if not isinstance(n, str):
        raise PayloadError(f"record {index}.n must be a string")
    if "u" not in record:
        return n, bu or None
    unit = record["u"]
    if not isinstance(unit, str):
        raise PayloadError(f"record {index}.u must be a string")
    return n, unit or None


def _identity(base: _Base, n: str, topic: str, index: int) -> tuple[str, str]:
    """(device_id, channel): bn and n when both are there, else the topic and the name."""
    if n and base.device:
        return base.device, n
    if not base.bn + n:
        raise PayloadError(f"record {index} has no name (neither bn nor n)")
    return topic, base.bn + n


def _check_must_understand(record: dict[str, object], index: int) -> None:
    for key in record:
        if key.endswith("_"):
            raise PayloadError(f"record {index} has must-understand field {key[:20]!r}")


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


def _number(raw: object, index: int, key: str) -> float:
    """A finite JSON number as float; the common float and int cases without a call."""
    if type(raw) is float:
        if -_INF < raw < _INF:
            return raw
    elif type(raw) is int and -_INT_FAST < raw < _INT_FAST:
        return float(raw)
    return to_float(raw, f"record {index}.{key}")


def _seconds_us(seconds: float) -> int:
    """``seconds`` in µs, rounded half-even, exactly as ``datetime.fromtimestamp`` and
    ``timedelta(seconds=...)`` round them: whole seconds, then the fraction."""
    whole = int(seconds)
    if whole == seconds:
        return whole * 1_000_000
    fraction, whole_float = math.modf(seconds)
    return int(whole_float) * 1_000_000 + round(fraction * 1e6)


def _absolute_us(t: float, index: int) -> int:
    if t == _INF:
        raise PayloadError(f"record {index} time is not finite")
    us = _seconds_us(t)
    if us > _MAX_US:
        raise PayloadError(f"record {index} time is out of range: {t!r}")
    return us


def _relative_us(received_us: int, t: float, index: int) -> int:
    try:
        us = received_us + _seconds_us(t)
    except (OverflowError, ValueError):  # -inf: base time plus time overflowed
        us = _MIN_US - 1
    if not _MIN_US <= us <= _MAX_US:
        raise PayloadError(f"record {index} relative time is out of range")
    return us


def _value_factor(unit: str | None, index: int) -> float:
    """The factor from a ``v`` reading's SenML unit to its normalised unit."""
    if unit is None:
        return 1.0
    known = _VALUE_UNITS.get(unit)
    if known is None:
        raise PayloadError(f"record {index} has an unsupported SenML unit {unit[:20]!r}")
    return known[0]


def _value_series(device: str, channel: str, unit: str | None) -> Series:
    """The series of ``v`` readings in a SenML unit (known or None)."""
    if unit is None:
        return Series(device, channel, None, None, False)
    _, normalised, quantity, cumulative = _VALUE_UNITS[unit]
    return Series(device, channel, quantity, normalised, cumulative)


def _sum(record: dict[str, object], index: int, unit: str | None, bs: float) -> tuple[float, str]:
    """The value and normalised unit of an ``s`` reading (an index)."""
    where = f"record {index}"
    total = bs + to_float(record["s"], f"{where}.s")
    if not math.isfinite(total):
        raise PayloadError(f"{where}.s plus its base value is out of range")
    if unit is None:
        raise PayloadError(f"{where} has a sum without a unit")
    if unit not in _SENML_UNITS:
        raise PayloadError(f"{where} has an unsupported SenML unit {unit[:20]!r}")
    if unit in _POWER_SECONDS_TO_KWH:
        return total * _POWER_SECONDS_TO_KWH[unit], "kWh"
    value, normalised = normalise(total, unit, f"{where}.u")
    if normalised not in _INDEX_UNITS:
        raise PayloadError(f"{where} has a sum of {unit}, which is not an index")
    return value, normalised
