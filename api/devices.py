"""Per device format: the meter a household registers, its broker topics, and how to connect it.

Every topic a household may publish to starts with a device id of its own (``hh<id>-<format>-
<random>``, or the Linky meter number for TIC bridges), so two households' grants never
overlap and no grant reaches another format's namespace (``wattwatch/#``, ``tele/#``…).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Final, Literal

from storage.households import NewMeter
from wattwatch.stack.dynsec import TopicGrant

DeviceFormat = Literal[
    "shelly", "tasmota", "esphome", "zigbee2mqtt", "linky_tic", "senml", "own_json"
]
HOUSEHOLD_FORMATS: Final[tuple[str, ...]] = (
    "shelly",
    "tasmota",
    "esphome",
    "zigbee2mqtt",
    "linky_tic",
    "senml",
    "own_json",
)
# dsmr-reader publishes every meter on the one topic dsmr/json: it cannot be isolated per
# household, so households use own_json or senml through a gateway instead.

ADCO_RE: Final = re.compile(r"^[0-9]{12}$")

# (channel, quantity, unit, cumulative) of the main energy index of each format.
_MAIN_CHANNEL: Final[dict[str, tuple[str, str, str, bool]]] = {
    "shelly": ("switch:0/aenergy.total", "electricity", "kWh", True),
    "tasmota": ("Total", "electricity", "kWh", True),
    "esphome": ("energy", "electricity", "kWh", True),
    "zigbee2mqtt": ("current_summ_delivered", "electricity", "kWh", True),
    "linky_tic": ("BASE", "electricity", "kWh", True),
    "senml": ("energy", "electricity", "kWh", True),
    "own_json": ("energy", "electricity", "kWh", True),
}


def new_device_id(household_id: int, device_format: str) -> str:
    """A device id in the brokers' safe alphabet, unique to this household and format."""
    short = {"zigbee2mqtt": "z2m", "linky_tic": "tic", "own_json": "json"}.get(
        device_format, device_format
    )
    return f"hh{household_id}-{short}-{secrets.token_hex(3)}"


def plan_meter(
    household_id: int, device_format: str, *, linky_id: str | None, channel: str | None
) -> NewMeter:
    """The meter to register. ``linky_id``: the TIC meter number (ADCO/ADSC, 12 digits),
    which the bridge puts in the topic and the payload; other formats get a generated id."""
    main, quantity, unit, cumulative = _MAIN_CHANNEL[device_format]
    if device_format == "linky_tic":
        assert linky_id is not None
        device_id = linky_id
        device_id_in_registry = linky_id
    else:
        device_id = new_device_id(household_id, device_format)
        device_id_in_registry = f"senml/{device_id}" if device_format == "senml" else device_id
    return NewMeter(
        device_format=device_format,
        device_id=device_id_in_registry,
        channel=channel or main,
        quantity=quantity,
        unit=unit,
        cumulative=cumulative,
        name=f"{device_format} {device_id}",
    )


def bare_device_id(meter: NewMeter) -> str:
    return meter.device_id.removeprefix("senml/")


def grant_for(meter: NewMeter) -> TopicGrant:
    """The topics a household's broker account may publish (and subscribe) to for a meter."""
    d = bare_device_id(meter)
    match meter.device_format:
        case "shelly" | "esphome":
            return TopicGrant(publish=(f"{d}/#",), subscribe=(f"{d}/#",))
        case "tasmota":
            return TopicGrant(
                publish=(f"tele/{d}/#", f"stat/{d}/#"),
                subscribe=(f"cmnd/{d}/#", f"tele/{d}/#", f"stat/{d}/#"),
            )
        case "zigbee2mqtt":
            return TopicGrant(publish=(f"zigbee2mqtt/{d}",), subscribe=(f"zigbee2mqtt/{d}",))
        case "linky_tic":
            return TopicGrant(publish=(f"teleinfo/{d}",), subscribe=(f"teleinfo/{d}",))
        case "senml":
            return TopicGrant(publish=(f"senml/{d}",), subscribe=(f"senml/{d}",))
        case _:
            return TopicGrant(
                publish=(f"wattwatch/{d}", f"wattwatch/{d}/#"),
                subscribe=(f"wattwatch/{d}", f"wattwatch/{d}/#"),
            )


def merge_grants(grants: list[TopicGrant]) -> TopicGrant:
    pub: list[str] = []
    sub: list[str] = []
    for g in grants:
        pub += [t for t in g.publish if t not in pub]
        sub += [t for t in g.subscribe if t not in sub]
    return TopicGrant(publish=tuple(pub), subscribe=tuple(sub))


def topic_prefixes(meter: NewMeter) -> list[str]:
    """Prefixes of every topic the meter's device publishes on (to erase its dead letters)."""
    return [t.removesuffix("#") for t in grant_for(meter).publish]


@dataclass(frozen=True, slots=True)
class Instructions:
    """What to type into the device's MQTT settings, and one example message."""

    host: str
    port: int
    username: str | None
    client_id: str | None
    topic: str
    steps: list[str]
    example_payload: str


def instructions(meter: NewMeter, *, host: str, port: int, username: str | None) -> Instructions:
    d = bare_device_id(meter)
    server = f"{host}:{port}"
    login = (
        f"user {username}, the password given at enrolment, client id {username}"
        if username
        else "no user (the broker accepts anonymous devices)"
    )
    match meter.device_format:
        case "shelly":
            topic = f"{d}/events/rpc"
            steps = [
                "Shelly web UI → Settings → MQTT: enable, server " + server + f", {login}",
                f"MQTT prefix: {d}; enable 'RPC status notifications over MQTT'",
            ]
            example = (
                '{"method": "NotifyStatus", "params": {"ts": 1736920800, '
                '"switch:0": {"aenergy": {"total": 123456.7}}}}'
            )
        case "tasmota":
            topic = f"tele/{d}/SENSOR"
            steps = [
                f"Tasmota console: MqttHost {host}; MqttPort {port}",
                f"MqttUser {username or ''}; MqttPassword <password>; MqttClient {username or d}",
                f"Topic {d}; FullTopic %prefix%/%topic%/; TelePeriod 60",
            ]
            example = '{"Time": "2025-01-15T06:00:00", "ENERGY": {"Total": 1234.567}}'
        case "esphome":
            topic = f"{d}/sensor/{meter.channel}/state"
            steps = [
                f"esphome YAML: mqtt: {{broker: {host}, port: {port}, username: "
                f"{username or ''}, password: <password>, client_id: {username or d}, "
                f"topic_prefix: {d}}}",
                f"name the total-energy sensor '{meter.channel}' (kWh, total_increasing)",
            ]
            example = "1234.567"
        case "zigbee2mqtt":
            topic = f"zigbee2mqtt/{d}"
            steps = [
                f"Zigbee2MQTT configuration.yaml: mqtt: {{server: mqtt://{server}, user: "
                f"{username or ''}, password: <password>, client_id: {username or d}, "
                "base_topic: zigbee2mqtt}",
                f"rename the ZLinky device to friendly name '{d}'",
            ]
            example = '{"current_summ_delivered": 1234.567, "apparent_power": 540}'
        case "linky_tic":
            topic = f"teleinfo/{d}"
            steps = [
                f"teleinfo2mqtt: MQTT_URL=mqtt://{server} MQTT_USER={username or ''} "
                f"MQTT_PASSWORD=<password> MQTT_CLIENT_ID={username or d} "
                "MQTT_BASE_TOPIC=teleinfo",
                f"the meter number (ADCO/ADSC) must be {d}",
            ]
            example = (
                f'{{"ADCO": {{"raw": "{d}", "value": {int(d)}}}, '
                '"BASE": {"raw": "006130419", "value": 6130419}}'
            )
        case "senml":
            topic = f"senml/{d}"
            steps = [
                f"publish SenML JSON packs to {topic} on {server} ({login})",
                f"records without a base name: 'n' is the channel ('{meter.channel}')",
            ]
            example = f'[{{"n": "{meter.channel}", "u": "kWh", "s": 1234.567, "t": 1736920800}}]'
        case _:
            topic = f"wattwatch/{d}"
            steps = [f"publish wattwatch JSON to {topic} on {server} with QoS 1 ({login})"]
            example = (
                '{"ts": "2025-01-15T06:00:00+01:00", "readings": [{"channel": "'
                + meter.channel
                + '", "value": 1234.5, "unit": "kWh", "quantity": "electricity", '
                '"cumulative": true}]}'
            )
    return Instructions(
        host=host,
        port=port,
        username=username,
        client_id=username,
        topic=topic,
        steps=steps,
        example_payload=example,
    )
