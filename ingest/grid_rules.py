"""Real-time grid rules: a grid reading outside the EN 50160 always-limits is an anomaly now,
without waiting for the batch processor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from wattwatch import en50160

# The quantities check_grid_reading looks at; readings of other meters never raise an event.
GRID_QUANTITIES: Final = frozenset({"grid_voltage", "grid_frequency", "grid_load"})


@dataclass(frozen=True, slots=True)
class GridEvent:
    """One reading that broke a limit."""

    meter_id: int
    ts: datetime
    kind: str
    observed: float
    limit: float
    severity: float  # how far past the limit, relative to it
    reason: str


def check_grid_reading(
    meter_id: int, quantity: str, unit: str, ts: datetime, value: float
) -> GridEvent | None:
    """The event a grid reading raises, or None when it is within limits."""
    if quantity == "grid_voltage" and unit == "V":
        low, high = en50160.VOLTAGE_ALWAYS_V
        name, shown = "voltage", f"{value:.1f} V"
    elif quantity == "grid_frequency" and unit == "Hz":
        low, high = en50160.FREQUENCY_ALWAYS_HZ
        name, shown = "frequency", f"{value:.3f} Hz"
    elif quantity == "grid_load" and unit == "pu":
        low, high = float("-inf"), en50160.OVERLOAD_PU
        name, shown = "load", f"{value:.2f} pu"
    else:
        return None
    if value < low:
        return GridEvent(
            meter_id, ts, f"{name}_low", value, low, (low - value) / low,
            f"{name.capitalize()} {shown} below the EN 50160 limit of {low:g}",
        )  # fmt: skip
    if value > high and name == "load":
        return GridEvent(
            meter_id, ts, "overload", value, high, (value - high) / high,
            f"Load {shown} above the rating of the transformer or feeder ({high:g} pu)",
        )  # fmt: skip
    if value > high:
        return GridEvent(
            meter_id, ts, f"{name}_high", value, high, (value - high) / high,
            f"{name.capitalize()} {shown} above the EN 50160 limit of {high:g}",
        )  # fmt: skip
    return None
