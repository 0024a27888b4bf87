"""The one table from device-format name to adapter, and each format's default MQTT subscription.

Adding a format = one module in this package + one line in ``ADAPTERS`` and ``DEFAULT_TOPICS``
(and in ``COLUMN_ADAPTERS`` when its messages carry many readings).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Protocol

from ingest.adapters import dsmr, esphome, linky_tic, own_json, senml, shelly, tasmota, zigbee2mqtt
from ingest.reading import Reading, ReadingColumns


class Adapter(Protocol):
    """A pure parser: one MQTT message to readings; raises only ``PayloadError`` on bad input."""

    def __call__(self, topic: str, payload: bytes, received_at: datetime) -> list[Reading]: ...


class ColumnAdapter(Protocol):
    """An adapter that returns its readings as columns (same readings, same errors)."""

    def __call__(self, topic: str, payload: bytes, received_at: datetime) -> ReadingColumns: ...


ADAPTERS: Final[dict[str, Adapter]] = {
    "own_json": own_json.parse,
    "senml": senml.parse,
    "shelly": shelly.parse,
    "tasmota": tasmota.parse,
    "linky_tic": linky_tic.parse,
    "zigbee2mqtt": zigbee2mqtt.parse,
    "esphome": esphome.parse,
    "dsmr": dsmr.parse,
}

# Formats whose packs hold many readings parse straight to columns (the ingestor's path); their
# ``ADAPTERS`` entry returns the same readings as ``Reading`` objects.
COLUMN_ADAPTERS: Final[dict[str, ColumnAdapter]] = {
    "senml": senml.parse_columns,
}

# Subscription filter per format, matching each tool's out-of-the-box topics:
# - shelly: Gen2/3 publish NotifyStatus on <device-id>/events/rpc by default (rpc_ntf on), with a
#   device timestamp; <prefix>/status/<component> needs status_ntf and has none ("+/status/+").
# - dsmr: the JSON telegram carries the meter's timestamp in one message; dsmr-reader's
#   default topic is dsmr/json, "+/json" also takes one reader per meter (<name>/json, the
#   name being the device id). Split topics ("dsmr/reading/+") also work but include
#   non-reading fields (timestamp, id).
# - esphome: the topic prefix defaults to the node name, one level.
# - zigbee2mqtt: "+" keeps out bridge/# and <name>/availability (friendly names with "/" need
#   "zigbee2mqtt/#" and then dead-letter the bridge messages).
# Filters can overlap (e.g. "+/sensor/+/state" and "wattwatch/#"): route a message to its adapter
# by MQTT v5 subscription identifier, not by matching the topic again.
DEFAULT_TOPICS: Final[dict[str, str]] = {
    "own_json": "wattwatch/#",
    "senml": "senml/#",
    "shelly": "+/events/rpc",
    "tasmota": "tele/+/SENSOR",
    "linky_tic": "teleinfo/+",
    "zigbee2mqtt": "zigbee2mqtt/+",
    "esphome": "+/sensor/+/state",
    "dsmr": "+/json",
}


def get_adapter(name: str) -> Adapter:
    """Return the adapter registered as ``name``; KeyError lists the known formats."""
    try:
        return ADAPTERS[name]
    except KeyError:
        known = ", ".join(sorted(ADAPTERS))
        raise KeyError(f"unknown device format {name!r}; known formats: {known}") from None


def column_adapter(name: str) -> ColumnAdapter:
    """The column parser of format ``name``: its own, else its readings turned into columns."""
    own = COLUMN_ADAPTERS.get(name)
    if own is not None:
        return own
    adapter = get_adapter(name)

    def parse_columns(topic: str, payload: bytes, received_at: datetime) -> ReadingColumns:
        return ReadingColumns.from_readings(adapter(topic, payload, received_at))

    return parse_columns
