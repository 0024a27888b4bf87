"""Adapter for French Linky/CBE meters' TIC (télé-information client) as teleinfo2mqtt publishes it.

Topic ``teleinfo/<ADCO or ADSC>``; payload a JSON object of TIC labels, each either
``{"raw": "006130419", "value": 6130419}`` (teleinfo2mqtt) or a zero-padded string
``"006130419"`` (Tasmota's TIC build; its ``{"Time": local, "TIC": {...}}`` wrapper too).

Historic mode: BASE, HCHC, HCHP, EJPHN, EJPHPM, BBRH{C,P}J{B,W,R} [Wh → kWh, cumulative];
PAPP [VA, apparent power — NOT active power W]; IINST, IINST1..3 [A].
Standard mode: EAST, EASF01..10, EASD01..04 [Wh → kWh, cumulative], EAIT [injected, Wh → kWh,
cumulative]; SINSTS, SINSTS1..3 [VA], SINSTI [VA, injected]; URMS1..3 [V]; IRMS1..3 [A].
Other labels (OPTARIF, PTEC, ISOUSC, IMAX, MOTDETAT, SMAXSN…) are contract data, not readings.

``device_id`` is ADCO/ADSC (the ``raw`` text, keeping leading zeros), else the topic's last
level. ``channel`` is the TIC label. Time: standard mode's DATE (teleinfo2mqtt's
``timestamp.date`` in UTC, or a raw horodate ``E240705120000`` where E = summer UTC+2,
H = winter UTC+1); historic mode has no clock, so Tasmota's Time (Paris local) or else the
arrival time is used.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final

from ingest.adapters._common import (
    PARIS,
    as_object,
    fixed_offset,
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

# label → (factor to unit, unit, quantity, cumulative)
_Label = tuple[float, str, str, bool]
_WH: Final[_Label] = (1e-3, "kWh", "electricity", True)
_WH_INJECTED: Final[_Label] = (1e-3, "kWh", "electricity_injected", True)
_VA: Final[_Label] = (1.0, "VA", "electricity", False)
_VA_INJECTED: Final[_Label] = (1.0, "VA", "electricity_injected", False)
_AMPERE: Final[_Label] = (1.0, "A", "electricity", False)
_VOLT: Final[_Label] = (1.0, "V", "grid_voltage", False)

# Contract indexes: base, off-peak/peak hours, EJP, Tempo (blue/white/red days).
_HISTORIC_INDEXES: Final = (
    "BASE",
    "HCHC",
    "HCHP",
    "EJPHN",
    "EJPHPM",
    "BBRHCJB",
    "BBRHPJB",
    "BBRHCJW",
    "BBRHPJW",
    "BBRHCJR",
    "BBRHPJR",
)
HISTORIC: Final[dict[str, _Label]] = {
    **dict.fromkeys(_HISTORIC_INDEXES, _WH),
    "PAPP": _VA,
    "IINST": _AMPERE,
    "IINST1": _AMPERE,
    "IINST2": _AMPERE,
    "IINST3": _AMPERE,
}
STANDARD: Final[dict[str, _Label]] = {
    "EAST": _WH,
    **{f"EASF{i:02d}": _WH for i in range(1, 11)},
    **{f"EASD{i:02d}": _WH for i in range(1, 5)},
    "EAIT": _WH_INJECTED,
    "SINSTS": _VA,
    **{f"SINSTS{i}": _VA for i in range(1, 4)},
    "SINSTI": _VA_INJECTED,
    **{f"URMS{i}": _VOLT for i in range(1, 4)},
    **{f"IRMS{i}": _AMPERE for i in range(1, 4)},
}
LABELS: Final[dict[str, _Label]] = {**HISTORIC, **STANDARD}
_HORODATE: Final = re.compile(r"([EeHh ])" + r"([0-9]{2})" * 6)


def parse(topic: str, payload: bytes, received_at: datetime) -> list[Reading]:
    """Parse one TIC frame (as JSON) into readings; raise PayloadError on any defect."""
    received = require_aware(received_at)
    parts = topic_parts(topic)
    frame = load_object(payload)
    if "TIC" in frame:  # Tasmota: {"Time": local time, "TIC": {labels}}
        if "Time" in frame:
            received = parse_iso(frame["Time"], "Time", naive_zone=PARIS)
        frame = as_object(frame["TIC"], "TIC")
    device = _device(frame) or parts[-1]
    ts = _frame_time(frame.get("DATE")) or received
    readings: list[Reading] = []
    for label, field in frame.items():
        spec = LABELS.get(label)
        if spec is None:
            continue
        factor, unit, quantity, cumulative = spec
        readings.append(
            reading(
                device_id=device,
                channel=label,
                ts=ts,
                value=_number(field, label) * factor,
                quantity=quantity,
                unit=unit,
                cumulative=cumulative,
            )
        )
    return non_empty(readings, "TIC frame")


def _number(field: object, label: str) -> float:
    """A TIC value: ``{"raw", "value"}``, zero-padded text, or a JSON number."""
    if isinstance(field, dict):
        value = field.get("value")
        if isinstance(value, int | float) and not isinstance(value, bool):
            return to_float(value, label)
        raw = field.get("raw")
        if isinstance(raw, str):
            return parse_number_text(raw, label)
        raise PayloadError(f"{label} has neither a numeric value nor a raw text")
    if isinstance(field, str):
        return parse_number_text(field, label)
    return to_float(field, label)


def _device(frame: dict[str, object]) -> str | None:
    for label in ("ADCO", "ADSC"):
        if label not in frame:
            continue
        field = frame[label]
        raw = field.get("raw", field.get("value")) if isinstance(field, dict) else field
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            raise PayloadError(f"{label} must be the meter's serial number")
        text = str(raw).strip()
        if not (text.isascii() and text.isalnum()):
            raise PayloadError(f"{label} is not a meter serial number: {text[:20]!r}")
        return text
    return None


def _frame_time(field: object) -> datetime | None:
    """The meter clock from standard mode's DATE label, or None when absent."""
    if field is None:
        return None
    if isinstance(field, dict):
        stamp = field.get("timestamp")
        if isinstance(stamp, dict) and "date" in stamp:
            return parse_iso(stamp["date"], "DATE.timestamp.date")
        raw = field.get("raw")
        field = raw if isinstance(raw, str) and raw.strip() else None
        if field is None:
            return None
    if not isinstance(field, str):
        raise PayloadError("DATE must be a horodate text or a teleinfo2mqtt timestamp")
    match = _HORODATE.fullmatch(field.strip())
    if match is None:
        raise PayloadError(f"DATE is not a TIC horodate: {field[:20]!r}")
    season, yy, mo, dd, hh, mi, ss = match.groups()
    zone = {"E": fixed_offset(2), "H": fixed_offset(1)}.get(season.upper(), PARIS)
    try:
        local = datetime(2000 + int(yy), int(mo), int(dd), int(hh), int(mi), int(ss), tzinfo=zone)
    except ValueError:
        raise PayloadError(f"DATE is not a valid date: {field[:20]!r}") from None
    return parse_iso(local.isoformat(), "DATE")
