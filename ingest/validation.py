"""Plausibility checks every parsed reading passes before storage, whatever its device format.

Adapters guarantee shape (finite value, aware timestamp, known unit); these checks reject values
no real meter produces, so a faulty device or a unit mix-up is dead-lettered, not stored.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Final

from ingest.reading import QUANTITIES, UNITS, Reading
from wattwatch.errors import PayloadError

MAX_PAYLOAD_BYTES: Final = 64 * 1024  # [bytes]; the ingestor checks before parsing

# Before this no meter of ours existed; a device clock at 1970 or 2000 was never set (NTP).
EARLIEST_TS: Final = datetime(2001, 1, 1, tzinfo=UTC)

# Plausible range per normalised unit, [low, high] inclusive. Wide on purpose: a building's
# transformer, not a household, bounds them; values outside are a fault or a unit mix-up.
SAMPLE_RANGES: Final[dict[str, tuple[float, float]]] = {
    "W": (-10e6, 10e6),  # ±10 MW (negative: export)
    "VA": (-10e6, 10e6),  # ±10 MVA (injected apparent power may be signed)
    "var": (-10e6, 10e6),
    "V": (0.0, 1000.0),  # low-voltage networks
    "A": (-10_000.0, 10_000.0),
    "Hz": (40.0, 70.0),
    "degC": (-60.0, 100.0),
    "pu": (-10.0, 10.0),
    "W/m2": (-50.0, 2000.0),  # pyranometers read slightly negative at night
    "%": (0.0, 100.0),
    "kWh": (-1e9, 1e9),  # an interval energy (not an index)
    "m3": (-1e9, 1e9),
}
INDEX_RANGES: Final[dict[str, tuple[float, float]]] = {
    "kWh": (0.0, 1e9),  # an index never goes below zero
    "m3": (0.0, 1e9),
}

_MAX_FUTURE: Final = timedelta(minutes=10)
# (unit, cumulative) → (low, high, is the index range): both tables above, looked up once.
_RANGES: Final[dict[tuple[str, bool], tuple[float, float, bool]]] = {
    (unit, cumulative): (
        (*INDEX_RANGES[unit], True)
        if cumulative and unit in INDEX_RANGES
        else (*SAMPLE_RANGES.get(unit, (-math.inf, math.inf)), False)
    )
    for unit in UNITS
    for cumulative in (False, True)
}
_UNBOUNDED: Final = (-math.inf, math.inf, False)


def check_reading(
    reading: Reading,
    *,
    now: datetime,
    max_future: timedelta = _MAX_FUTURE,
    not_before: datetime | None = None,
) -> None:
    """Raise PayloadError when ``reading`` is implausible; return None when it may be stored.

    Parameters
    ----------
    reading
        A reading as an adapter produced it.
    now
        The ingestor's clock (timezone-aware). Timestamps later than ``now + max_future`` are
        refused: device clocks drift, but not by hours.
    max_future
        Tolerated clock drift ahead of ``now``.
    not_before
        When the meter was installed (timezone-aware), if known; earlier readings are refused.
        Without it, readings before ``EARLIEST_TS`` are refused (unset device clock).
    """
    # Runs once per reading: the common case (UTC, known unit, finite float) is tested first
    # and messages are only built on refusal.
    if now.tzinfo is not UTC:
        _require_aware(now, "now")
    if not_before is not None and not_before.tzinfo is not UTC:
        _require_aware(not_before, "not_before")

    unit = reading.unit
    if unit is not None and unit not in UNITS:
        raise PayloadError(f"{_where(reading)}: unknown unit {unit[:20]!r}")
    quantity = reading.quantity
    if quantity is not None and quantity not in QUANTITIES:
        raise PayloadError(f"{_where(reading)}: unknown quantity {quantity[:30]!r}")

    value = reading.value
    if (
        type(value) is not float and (isinstance(value, bool) or not isinstance(value, int))
    ) or not math.isfinite(value):
        raise PayloadError(f"{_where(reading)}: value {value!r} is not a finite number")
    if unit is not None:
        low, high, is_index = _RANGES.get((unit, reading.cumulative), _UNBOUNDED)
        if not low <= value <= high:
            kind = "index" if is_index else "value"
            raise PayloadError(
                f"{_where(reading)}: {kind} {value:g} {unit} outside plausible range "
                f"[{low:g}, {high:g}]"
            )

    ts = reading.ts
    if ts.tzinfo is not UTC and (ts.tzinfo is None or ts.utcoffset() is None):
        raise PayloadError(f"{_where(reading)}: timestamp has no timezone")
    if ts > now + max_future:
        raise PayloadError(
            f"{_where(reading)}: timestamp {ts.isoformat()} is more than {max_future} ahead of "
            f"{now.isoformat()}"
        )
    floor = not_before if not_before is not None else EARLIEST_TS
    if ts < floor:
        what = "meter installation" if not_before is not None else "any plausible clock"
        raise PayloadError(
            f"{_where(reading)}: timestamp {ts.isoformat()} is before {what} ({floor})"
        )


def _where(reading: Reading) -> str:
    return f"{reading.device_id[:60]}/{reading.channel[:60]}"


def _require_aware(value: datetime, name: str) -> None:
    # A naive clock here is a caller bug, not a bad payload: fail loudly, not dead-letter.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
