"""EN 50160 supply-voltage limits (design.md §4), shared by ingest's real-time rules and
processing's compliance statistics."""

from typing import Final

NOMINAL_VOLTAGE_V: Final = 230.0
NOMINAL_FREQUENCY_HZ: Final = 50.0

# Always-limits: any 10-minute mean (frequency: any 10-second mean) outside is an event.
VOLTAGE_ALWAYS_V: Final = (NOMINAL_VOLTAGE_V * 0.85, NOMINAL_VOLTAGE_V * 1.10)  # 195.5–253
FREQUENCY_ALWAYS_HZ: Final = (NOMINAL_FREQUENCY_HZ * 0.94, NOMINAL_FREQUENCY_HZ * 1.04)  # 47–52
# Statistical limits: 95 % of a week's 10-minute voltage means, 99.5 % of a year's frequency.
VOLTAGE_WEEKLY_V: Final = (NOMINAL_VOLTAGE_V * 0.90, NOMINAL_VOLTAGE_V * 1.10)  # 207–253
FREQUENCY_YEARLY_HZ: Final = (NOMINAL_FREQUENCY_HZ * 0.99, NOMINAL_FREQUENCY_HZ * 1.01)  # 49.5–50.5
VOLTAGE_WEEKLY_SHARE: Final = 0.95
FREQUENCY_YEARLY_SHARE: Final = 0.995
# Transformer or feeder load above its rating [per unit].
OVERLOAD_PU: Final = 1.0
