"""Strict decoding helpers shared by the adapters: every bad input becomes a PayloadError.

Adapters call only these to touch untrusted bytes, so the "raise nothing but PayloadError"
promise is kept in one place.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Final
from zoneinfo import ZoneInfo

from ingest.reading import QUANTITIES, UNITS, Reading
from wattwatch.errors import PayloadError

PARIS: Final = ZoneInfo("Europe/Paris")

# A plain ASCII decimal number as devices print it; float() alone would also accept "1_000",
# "nan", "infinity" and non-ASCII digits such as "١٢٣".
_NUMBER: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

# Unit spellings devices use → (factor to the normalised unit, normalised unit).
# Energy always kWh, active power W, temperature degC (see ingest.reading.UNITS).
UNIT_ALIASES: Final[dict[str, tuple[float, str]]] = {
    "Wh": (1e-3, "kWh"),
    "kWh": (1.0, "kWh"),
    "MWh": (1e3, "kWh"),
    "J": (1.0 / 3.6e6, "kWh"),
    "kJ": (1.0 / 3.6e3, "kWh"),
    "W": (1.0, "W"),
    "kW": (1e3, "W"),
    "MW": (1e6, "W"),
    "VA": (1.0, "VA"),
    "kVA": (1e3, "VA"),
    "var": (1.0, "var"),
    "kvar": (1e3, "var"),
    "V": (1.0, "V"),
    "A": (1.0, "A"),
    "Hz": (1.0, "Hz"),
    "Cel": (1.0, "degC"),
    "degC": (1.0, "degC"),
    "m3": (1.0, "m3"),
    "%": (1.0, "%"),
    "pu": (1.0, "pu"),
    "W/m2": (1.0, "W/m2"),
}


def decode_text(payload: bytes) -> str:
    """Return the payload as text, or raise PayloadError when it is not UTF-8."""
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError("payload is not valid UTF-8") from None


def _reject_constant(name: str) -> object:
    # json.loads accepts NaN/Infinity by default; no device format allows them.
    raise PayloadError(f"payload has a non-finite number ({name})")


# One decoder for every message: json.loads with parse_constant builds a new one per call.
_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)
_JSON_SPACE: Final = " \t\n\r"


def load_json(payload: bytes) -> object:
    """Parse the payload as strict JSON (no NaN/Infinity), translating every failure."""
    text = decode_text(payload)
    try:
        if text and text[0] not in _JSON_SPACE:
            # What decode() does, without its two whitespace scans when there is none.
            value, end = _DECODER.raw_decode(text)
            if end == len(text) or not text[end:].strip(_JSON_SPACE):  # a trailing newline
                return value
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise PayloadError(f"payload is not JSON: {exc.msg} at char {exc.pos}") from None
    except RecursionError:
        raise PayloadError("payload JSON is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise PayloadError(f"payload is not usable JSON: {exc}") from None


def load_object(payload: bytes) -> dict[str, object]:
    """Parse the payload as a JSON object (dict); anything else is a PayloadError."""
    data = load_json(payload)
    if not isinstance(data, dict):
        raise PayloadError(f"payload must be a JSON object, got {type(data).__name__}")
    return data


def as_object(value: object, what: str) -> dict[str, object]:
    """Return ``value`` if it is a JSON object, else raise PayloadError naming ``what``."""
    if not isinstance(value, dict):
        raise PayloadError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def to_float(value: object, what: str, *, allow_text: bool = False) -> float:
    """Return a finite float from a JSON number (or numeric text when ``allow_text``).

    Booleans are rejected even though ``bool`` is an ``int``: ``true`` is never a reading.
    """
    if isinstance(value, bool):
        raise PayloadError(f"{what} is a boolean, expected a number")
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            raise PayloadError(f"{what} is too large") from None
    elif allow_text and isinstance(value, str):
        number = parse_number_text(value, what)
    else:
        raise PayloadError(f"{what} must be a number, got {type(value).__name__}")
    if not math.isfinite(number):
        raise PayloadError(f"{what} is not finite")
    return number


def parse_number_text(text: str, what: str) -> float:
    """Parse a bare decimal number such as ``"230.4"`` or ``"012345678"`` into a finite float."""
    stripped = text.strip()
    if not _NUMBER.fullmatch(stripped):
        shown = stripped[:40]
        raise PayloadError(f"{what} is not a number: {shown!r}")
    try:
        number = float(stripped)
    except (ValueError, OverflowError):
        raise PayloadError(f"{what} is not a number: {stripped[:40]!r}") from None
    if not math.isfinite(number):
        raise PayloadError(f"{what} is out of range")
    return number


def epoch_to_utc(seconds: object, what: str) -> datetime:
    """Convert Unix time [s] (JSON number) to an aware UTC datetime."""
    value = to_float(seconds, what)
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise PayloadError(f"{what} is out of range: {value!r}") from None


def shift(base: datetime, seconds: float, what: str) -> datetime:
    """Return ``base + seconds``, translating out-of-range results to PayloadError."""
    try:
        return base + timedelta(seconds=seconds)
    except (OverflowError, ValueError):
        raise PayloadError(f"{what} is out of range") from None


def parse_iso(value: object, what: str, *, naive_zone: ZoneInfo | None = None) -> datetime:
    """Parse an ISO 8601 timestamp into aware UTC.

    A timestamp without offset is read in ``naive_zone`` (Tasmota sends local time); when
    ``naive_zone`` is None an offset is required, since guessing UTC silently shifts data.
    """
    if not isinstance(value, str):
        raise PayloadError(f"{what} must be an ISO 8601 string, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise PayloadError(f"{what} is not an ISO 8601 timestamp: {value[:40]!r}") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        if naive_zone is None:
            raise PayloadError(f"{what} has no UTC offset: {value[:40]!r}")
        parsed = parsed.replace(tzinfo=naive_zone)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        raise PayloadError(f"{what} is out of range: {value[:40]!r}") from None


def fixed_offset(hours: int) -> timezone:
    """A fixed UTC offset of ``hours`` (Linky horodates carry only a season letter)."""
    return timezone(timedelta(hours=hours))


def normalise(value: float, unit: str, what: str) -> tuple[float, str]:
    """Convert ``value`` in a device unit to the project's normalised unit (Wh→kWh, kW→W…)."""
    try:
        factor, normalised = UNIT_ALIASES[unit]
    except KeyError:
        raise PayloadError(f"{what} has an unsupported unit {unit[:20]!r}") from None
    converted = value * factor
    if not math.isfinite(converted):
        raise PayloadError(f"{what} is out of range after conversion to {normalised}")
    return converted, normalised


def topic_parts(topic: str) -> list[str]:
    """Split an MQTT topic into levels, refusing empty topics and empty levels."""
    if not topic:
        raise PayloadError("empty topic")
    parts = topic.split("/")
    if any(part == "" for part in parts):
        raise PayloadError(f"topic has an empty level: {topic[:80]!r}")
    return parts


def reading(
    *,
    device_id: str,
    channel: str,
    ts: datetime,
    value: float,
    quantity: str | None,
    unit: str | None,
    cumulative: bool,
) -> Reading:
    """Build a Reading after the checks every adapter owes (finite value, known unit, UTC ts)."""
    if not device_id:
        raise PayloadError("empty device id")
    if not channel:
        raise PayloadError(f"empty channel name for device {device_id[:60]!r}")
    if not math.isfinite(value):
        raise PayloadError(f"{channel[:60]} is not finite")
    if unit is not None and unit not in UNITS:
        raise PayloadError(f"{channel[:60]} has an unknown unit {unit[:20]!r}")
    if quantity is not None and quantity not in QUANTITIES:
        raise PayloadError(f"{channel[:60]} has an unknown quantity {quantity[:30]!r}")
    return Reading(
        device_id=device_id,
        channel=channel,
        ts=ts.astimezone(UTC),
        value=value,
        quantity=quantity,
        unit=unit,
        cumulative=cumulative,
    )


def require_aware(received_at: datetime) -> datetime:
    """Return ``received_at`` in UTC; a naive value is a caller bug (ValueError), not bad data."""
    if received_at.tzinfo is UTC:
        return received_at
    if received_at.tzinfo is None or received_at.utcoffset() is None:
        raise ValueError("received_at must be timezone-aware")
    return received_at.astimezone(UTC)


def non_empty(readings: list[Reading], what: str) -> list[Reading]:
    """Return ``readings`` or raise PayloadError: a message without a reading is dead-lettered."""
    if not readings:
        raise PayloadError(f"no readings found in {what}")
    return readings
