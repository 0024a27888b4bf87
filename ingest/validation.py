"""Plausibility checks every parsed reading passes before storage, whatever its device format.

Adapters guarantee shape (finite value, aware timestamp, known unit); these checks reject values
no real meter produces, so a faulty device or a unit mix-up is dead-lettered, not stored.
``implausible`` applies the value and time checks of ``check_reading`` to whole columns.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Final

import numpy as np
import numpy.typing as npt

from ingest.reading import EPOCH, ONE_US, QUANTITIES, UNITS, Reading, Series
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

MAX_FUTURE: Final = timedelta(minutes=10)
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
    max_future: timedelta = MAX_FUTURE,
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

    check_series(reading)
    unit = reading.unit
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


def check_series(series: Series | Reading) -> None:
    """Raise PayloadError when a series names a unit or quantity wattwatch does not know."""
    unit = series.unit
    if unit is not None and unit not in UNITS:
        raise PayloadError(f"{_where(series)}: unknown unit {unit[:20]!r}")
    quantity = series.quantity
    if quantity is not None and quantity not in QUANTITIES:
        raise PayloadError(f"{_where(series)}: unknown quantity {quantity[:30]!r}")


def value_range(unit: str | None, cumulative: bool) -> tuple[float, float]:
    """The plausible [low, high] of a reading in ``unit`` (an index when ``cumulative``);
    unbounded without a unit."""
    if unit is None:
        return _UNBOUNDED[0], _UNBOUNDED[1]
    low, high, _ = _RANGES.get((unit, cumulative), _UNBOUNDED)
    return low, high


def to_us(ts: datetime) -> int:
    """An aware datetime in µs since 1970-01-01 UTC, the unit of reading columns."""
    return (ts - EPOCH) // ONE_US


EARLIEST_US: Final = to_us(EARLIEST_TS)


def implausible(
    value: npt.ArrayLike,
    ts_us: npt.ArrayLike,
    low: npt.ArrayLike,
    high: npt.ArrayLike,
    not_before_us: npt.ArrayLike,
    *,
    now: datetime,
    max_future: timedelta = MAX_FUTURE,
) -> npt.NDArray[np.bool_]:
    """Which readings ``check_reading`` refuses for their value or timestamp, for columns.

    Parameters
    ----------
    value : array_like of float, (n,)
        Reading values, in their unit.
    ts_us : array_like of int, (n,)
        Timestamps [µs since 1970-01-01 UTC].
    low, high : array_like of float, (n,)
        Each reading's plausible range, from ``value_range``.
    not_before_us : array_like of int, (n,)
        Each reading's earliest plausible timestamp [µs]: its meter's installation, else
        ``EARLIEST_US``.
    now, max_future
        As in ``check_reading``.

    Returns
    -------
    ndarray of bool, (n,)
        True where a reading would be refused (``check_reading`` then says why).
    """
    if now.tzinfo is not UTC:
        _require_aware(now, "now")
    v = np.asarray(value, dtype=np.float64)
    t = np.asarray(ts_us, dtype=np.int64)
    latest = to_us(now) + max_future // ONE_US
    ok = np.isfinite(v) & (np.asarray(low) <= v) & (v <= np.asarray(high))
    ok &= (t <= latest) & (t >= np.asarray(not_before_us, dtype=np.int64))
    return ~ok


def _where(reading: Series | Reading) -> str:
    return f"{reading.device_id[:60]}/{reading.channel[:60]}"


def _require_aware(value: datetime, name: str) -> None:
    # A naive clock here is a caller bug, not a bad payload: fail loudly, not dead-letter.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
