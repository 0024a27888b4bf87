"""The one shape every device format is turned into before it reaches storage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

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
