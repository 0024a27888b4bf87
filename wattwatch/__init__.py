"""wattwatch: event-driven energy monitoring for a city and its citizens."""

__version__ = "0.1.0"
