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


def check_reading(
    reading: Reading,
    *,
    now: datetime,
    max_future: timedelta = timedelta(minutes=10),
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
    _require_aware(now, "now")
    if not_before is not None:
        _require_aware(not_before, "not_before")
    where = f"{reading.device_id[:60]}/{reading.channel[:60]}"

    if reading.unit is not None and reading.unit not in UNITS:
        raise PayloadError(f"{where}: unknown unit {reading.unit[:20]!r}")
    if reading.quantity is not None and reading.quantity not in QUANTITIES:
        raise PayloadError(f"{where}: unknown quantity {reading.quantity[:30]!r}")

    value = reading.value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PayloadError(f"{where}: value {value!r} is not a finite number")
    if reading.unit is not None:
        table = INDEX_RANGES if reading.cumulative and reading.unit in INDEX_RANGES else None
        low, high = (table or SAMPLE_RANGES).get(reading.unit, (-math.inf, math.inf))
        if not low <= value <= high:
            kind = "index" if table else "value"
            raise PayloadError(
                f"{where}: {kind} {value:g} {reading.unit} outside plausible range "
                f"[{low:g}, {high:g}]"
            )

    ts = reading.ts
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise PayloadError(f"{where}: timestamp has no timezone")
    if ts > now + max_future:
        raise PayloadError(
            f"{where}: timestamp {ts.isoformat()} is more than {max_future} ahead of "
            f"{now.isoformat()}"
        )
    floor = not_before if not_before is not None else EARLIEST_TS
    if ts < floor:
        what = "meter installation" if not_before is not None else "any plausible clock"
        raise PayloadError(f"{where}: timestamp {ts.isoformat()} is before {what} ({floor})")


def _require_aware(value: datetime, name: str) -> None:
    # A naive clock here is a caller bug, not a bad payload: fail loudly, not dead-letter.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
