"""The one shape every device format is turned into before it reaches storage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, NamedTuple

# Normalised units. Energy is always kWh, active power W, apparent power VA (never W),
# so a reading's unit says what it is without looking at the device format.
UNITS: Final = frozenset({"kWh", "W", "VA", "var", "V", "A", "Hz", "degC", "m3", "pu", "W/m2", "%"})

# What a meter measures. Electricity energy and power share the quantity "electricity";
# the unit tells them apart.
QUANTITIES: Final = frozenset(
    {
        "electricity",
        "electricity_injected",
        "gas",
        "heat",
        "water",
        "indoor_temperature",
        "outdoor_temperature",
        "grid_voltage",
        "grid_frequency",
        "grid_load",
        "pv",
        "irradiance",
    }
)


@dataclass(slots=True, frozen=True)
class Reading:
    """One value of one device channel at one instant, as an adapter parsed it.

    The ingestor resolves ``(format, device_id, channel)`` to a meter. ``quantity`` and
    ``unit`` are ``None`` only for formats whose payload does not carry them (ESPHome
    state topics): the meter's registration supplies them.
    """

    device_id: str  # the device's own identifier in its format (ADCO, Shelly id, topic part…)
    channel: str  # which series of the device ("BASE", "em:0/total_act_energy", "power"…)
    ts: datetime  # timezone-aware, UTC; the device's timestamp when it sent one
    value: float  # finite, in ``unit``
    quantity: str | None
    unit: str | None
    cumulative: bool  # True for an index (kWh since installation), False for a sample

    @property
    def series(self) -> Series:
        return Series(self.device_id, self.channel, self.quantity, self.unit, self.cumulative)


EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US: Final = timedelta(microseconds=1)


class Series(NamedTuple):
    """What a run of readings measures: one device channel, and what the payload says of it."""

    device_id: str
    channel: str
    quantity: str | None
    unit: str | None
    cumulative: bool


class ReadingColumns(NamedTuple):
    """The readings of one message as columns, for packs of many readings: reading ``i`` is
    ``values[i]`` of ``series[series_index[i]]`` at ``ts_us[i]``.

    No Reading or datetime per reading: the ingestor validates and copies the columns whole.
    Holds what ``Reading`` promises (finite values, known units and quantities). A NamedTuple:
    one is built per message, for a fraction of a frozen dataclass's cost.
    """

    series: Sequence[Series]
    series_index: Sequence[int]
    ts_us: Sequence[int]  # [µs since 1970-01-01 UTC]
    values: Sequence[float]

    @classmethod
    def from_readings(cls, readings: Sequence[Reading]) -> ReadingColumns:
        """The columns of adapters that return readings."""
        series: list[Series] = []
        index_of: dict[Series, int] = {}
        series_index = []
        for r in readings:
            key = r.series
            i = index_of.get(key)
            if i is None:
                i = index_of[key] = len(series)
                series.append(key)
            series_index.append(i)
        ts_us = [(r.ts - EPOCH) // ONE_US for r in readings]
        return cls(series, series_index, ts_us, [r.value for r in readings])

    def readings(self) -> list[Reading]:
        """One Reading per row, in order."""
        return [
            Reading(s.device_id, s.channel, EPOCH + timedelta(microseconds=t), v, s.quantity,
                    s.unit, s.cumulative)
            for s, t, v in zip(
                (self.series[i] for i in self.series_index), self.ts_us, self.values, strict=True
            )
        ]  # fmt: skip
