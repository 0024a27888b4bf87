"""Which device carries each simulated meter: format, device id, channels, units and values.

One plan serves registration, live publishing and direct backfill, so the three agree on every
``(device_format, device_id, channel)`` key and on every stored value.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from simulators.city import City, MeterSeries
from simulators.meters import GAS_KWH_PER_M3
from simulators.payloads import ENCODERS

FloatArray = npt.NDArray[np.float64]

# One channel of a device: (channel, unit, quantity, cumulative, factor, derived_power).
# ``factor`` turns the simulated value into the registered unit; ``derived_power`` channels are
# the mean power over the step, from the index difference, as a meter's live power field
# (W or VA; the simulation has unit power factor).
Spec = tuple[str, str, str, bool, float, bool]
_M3: Final = 1.0 / GAS_KWH_PER_M3  # gas meters count m³, as Gazpar and P1 gas meters do


def _el(energy: str, power: str, power_unit: str = "W") -> tuple[Spec, ...]:
    return (
        (energy, "kWh", "electricity", True, 1.0, False),
        (power, power_unit, "electricity", False, 1.0, True),
    )


def _one(channel: str, unit: str, quantity: str, cumulative: bool, factor: float = 1.0) -> Spec:
    return (channel, unit, quantity, cumulative, factor, False)


# format → simulated quantity → channels. A format missing for a quantity cannot carry it.
FORMAT_CHANNELS: Final[dict[str, dict[str, tuple[Spec, ...]]]] = {
    "own_json": {
        "electricity": _el("energy", "power"),
        "gas": (_one("gas", "m3", "gas", True, _M3),),
        "heat": (_one("heat", "kWh", "heat", True),),
        "indoor_temperature": (_one("indoor_temperature", "degC", "indoor_temperature", False),),
        "outdoor_temperature": (_one("outdoor_temperature", "degC", "outdoor_temperature", False),),
        "grid_voltage": (_one("voltage", "V", "grid_voltage", False),),
        "grid_frequency": (_one("frequency", "Hz", "grid_frequency", False),),
        "grid_load": (_one("grid_load", "pu", "grid_load", False),),
        "pv": (_one("pv_power", "W", "pv", False),),
        "irradiance": (_one("irradiance", "W/m2", "irradiance", False),),
    },
    "senml": {
        "electricity": _el("energy", "power"),
        "gas": (_one("gas", "m3", "gas", True, _M3),),
        "indoor_temperature": (_one("temperature", "degC", "indoor_temperature", False),),
        "outdoor_temperature": (_one("temperature", "degC", "outdoor_temperature", False),),
        "grid_voltage": (_one("voltage", "V", "grid_voltage", False),),
        "grid_frequency": (_one("frequency", "Hz", "grid_frequency", False),),
    },
    # A Shelly Pro 3EM on the main board: one NotifyStatus with em:0 and emdata:0.
    "shelly": {"electricity": _el("emdata:0/total_act", "em:0/total_act_power")},
    "tasmota": {"electricity": _el("Total", "Power")},
    # Standard TIC mode (EAST + SINSTS): it carries the meter's DATE; historic mode
    # (BASE + PAPP) has no clock, so an accelerated run could not be stamped.
    "linky_tic": {"electricity": _el("EAST", "SINSTS", "VA")},
    "zigbee2mqtt": {"electricity": _el("current_summ_delivered", "apparent_power", "VA")},
    "esphome": {
        "electricity": _el("energy", "power"),
        "gas": (_one("gas", "m3", "gas", True, _M3),),
        "heat": (_one("heat", "kWh", "heat", True),),
        "indoor_temperature": (_one("indoor_temperature", "degC", "indoor_temperature", False),),
    },
    "dsmr": {
        "electricity": _el("electricity_delivered_1", "electricity_currently_delivered"),
        "gas": (_one("extra_device_delivered", "m3", "gas", True, _M3),),
    },
}
# Formats whose payload has no clock: the ingestor stamps arrival time, so their rows match
# the simulated time only in real time.
NO_CLOCK_FORMATS: Final = frozenset({"esphome"})
DEFAULT_MIX: Final[dict[str, float]] = {
    "own_json": 0.3,
    "linky_tic": 0.25,
    "shelly": 0.15,
    "tasmota": 0.1,
    "zigbee2mqtt": 0.1,
    "senml": 0.1,
}
FALLBACK_FORMAT: Final = "own_json"


@dataclass(frozen=True, slots=True)
class Channel:
    """One registered meter: where its values come from and how they are converted."""

    device: int  # index in ``DevicePlan.devices``
    channel: str
    quantity: str
    unit: str
    cumulative: bool
    series: str  # "meters" (hourly) or "grid" (10-minute)
    row: int  # row in that series
    factor: float
    derived_power: bool


@dataclass(frozen=True, slots=True)
class Device:
    """One simulated device: every channel it publishes goes in the same message(s)."""

    format: str
    device_id: str
    series: str
    clock_row: int  # row whose reading jitter stamps the device's messages
    building: int  # building index, −1 for none
    channels: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class DevicePlan:
    """Devices and channels of a city; ``channels[i]`` is meter ``i`` of the registration."""

    prefix: str
    devices: tuple[Device, ...]
    channels: tuple[Channel, ...]

    def series_channels(self, series: str) -> npt.NDArray[np.int64]:
        return np.asarray(
            [i for i, c in enumerate(self.channels) if c.series == series], dtype=np.int64
        )

    def primary_channel(self, series: str) -> dict[int, int]:
        """Row of ``series`` → its non-derived channel (where its anomalies are labelled)."""
        return {
            c.row: i
            for i, c in enumerate(self.channels)
            if c.series == series and not c.derived_power
        }


def parse_mix(text: str | Mapping[str, float] | None) -> dict[str, float]:
    """``"shelly=0.3,linky_tic=0.3,own_json=0.4"`` (or JSON-like mapping) → weights.

    A bare list ``"shelly,own_json"`` gives equal weights.
    """
    if text is None or text == "":
        return dict(DEFAULT_MIX)
    if isinstance(text, Mapping):
        items = dict(text)
    else:
        items = {}
        for part in text.replace(":", "=").split(","):
            name, _, weight = part.strip().partition("=")
            if name:
                items[name.strip().strip("\"'{} ")] = float(weight.strip("}") or 1.0)
    unknown = sorted(set(items) - set(FORMAT_CHANNELS))
    if unknown:
        raise ValueError(
            f"formats: unknown {', '.join(unknown)}; known: {', '.join(sorted(FORMAT_CHANNELS))}"
        )
    if any(w < 0 for w in items.values()) or sum(items.values()) <= 0:
        raise ValueError("formats: weights must be non-negative with a positive sum")
    return {k: float(v) for k, v in items.items() if v > 0}


def _device_id(fmt: str, group: str, prefix: str, building: int) -> str:
    name = f"{prefix}-{group}"
    if fmt == "linky_tic":  # the 12-digit ADSC; two digits tell runs apart
        return f"{zlib.crc32(prefix.encode()) % 100:02d}{building:010d}"
    return {
        "shelly": f"shellypro3em-{name}",
        "tasmota": f"tasmota_{name}",
        "zigbee2mqtt": f"zlinky-{name}",
        "esphome": f"esp-{name}",
        "dsmr": f"dsmr-{name}",
    }.get(fmt, name)


def plan_devices(
    city: City, mix: Mapping[str, float] | None = None, *, seed: int, prefix: str = ""
) -> DevicePlan:
    """Draw a device format for each meter from ``mix`` and group a building's meters.

    Each meter draws among the formats of ``mix`` that can carry its quantity (weights
    renormalised); a meter no format of the mix can carry falls back to ``own_json``. Meters
    of one building (or feeder) drawing the same format share one device and its messages.
    """
    weights = parse_mix(mix)
    prefix = prefix or f"sim{seed}"
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))
    groups: dict[tuple[str, str, int], list[tuple[str, int, str]]] = {}
    for series_name, series in (("meters", city.meters), ("grid", city.grid)):
        draws = rng.random(len(series))
        for row in range(len(series)):
            quantity = str(series.quantity[row])
            fmt = _draw(weights, quantity, float(draws[row]))
            group, building = _group(series, series_name, row)
            groups.setdefault((fmt, group, building), []).append((series_name, row, quantity))
    devices: list[Device] = []
    channels: list[Channel] = []
    for (fmt, group, building), members in groups.items():
        d = len(devices)
        ids = []
        for series_name, row, quantity in members:
            for name, unit, q, cumulative, factor, derived in FORMAT_CHANNELS[fmt][quantity]:
                ids.append(len(channels))
                channels.append(
                    Channel(d, name, q, unit, cumulative, series_name, row, factor, derived)
                )
        devices.append(
            Device(
                format=fmt,
                device_id=_device_id(fmt, group, prefix, max(building, 0)),
                series=members[0][0],
                clock_row=members[0][1],
                building=building,
                channels=tuple(ids),
            )
        )
    return DevicePlan(prefix=prefix, devices=tuple(devices), channels=tuple(channels))


def _draw(weights: Mapping[str, float], quantity: str, u: float) -> str:
    able = [(f, w) for f, w in weights.items() if quantity in FORMAT_CHANNELS[f]]
    if not able:
        return FALLBACK_FORMAT
    cum = np.cumsum([w for _, w in able])
    return able[int(np.searchsorted(cum / cum[-1], u, side="right").clip(0, len(able) - 1))][0]


def _group(series: MeterSeries, series_name: str, row: int) -> tuple[str, int]:
    building = int(series.building[row])
    if building >= 0:
        return f"b{building:06d}", building
    feeder = int(series.feeder[row])
    if series_name == "grid" or feeder >= 0:
        return f"f{feeder:03d}", -1
    return str(series.meter_id[row]).split("-")[0], -1


def channel_values(
    plan: DevicePlan, series: MeterSeries, channels: npt.ArrayLike, start: int, stop: int
) -> FloatArray:
    """Values of ``channels`` over steps ``[start, stop)`` in their registered units, (C, t).

    NaN where the meter has no reading (and for derived power, where either index is missing
    or the index dropped: a counter reset is no negative power).
    """
    idx = np.asarray(channels, dtype=np.int64)
    rows = np.asarray([plan.channels[i].row for i in idx], dtype=np.int64)
    factor = np.asarray([plan.channels[i].factor for i in idx])
    derived = np.asarray([plan.channels[i].derived_power for i in idx], dtype=bool)
    lo = max(start - 1, 0)
    src = series.values[rows, lo:stop]
    out = src[:, start - lo :] * factor[:, None]
    if derived.any():
        d = src[derived]
        step_h = _step_hours(series)
        power = np.full((d.shape[0], stop - start), np.nan)
        diff = np.diff(d, axis=1) * (1000.0 / step_h)
        power[:, stop - start - diff.shape[1] :] = diff
        with np.errstate(invalid="ignore"):
            power[power < 0] = np.nan
        out[derived] = power
    return np.asarray(out, dtype=np.float64)


def device_ts(
    plan: DevicePlan, series: MeterSeries, devices: npt.ArrayLike, start: int, stop: int
) -> npt.NDArray[np.datetime64]:
    """Message timestamps of ``devices`` over steps ``[start, stop)``, (D, t) datetime64[s].

    The nominal step end plus the reading jitter of the device's clock row.
    """
    idx = np.asarray(devices, dtype=np.int64)
    base = np.broadcast_to(series.ts[start:stop], (idx.size, stop - start))
    if series.jitter_s is None:
        return np.array(base, dtype="datetime64[s]")
    rows = np.asarray([plan.devices[i].clock_row for i in idx], dtype=np.int64)
    jitter = series.jitter_s[rows, start:stop].astype("timedelta64[s]")
    return np.asarray(base + jitter, dtype="datetime64[s]")


def _step_hours(series: MeterSeries) -> float:
    if series.ts.size < 2:
        return 1.0
    return float((series.ts[1] - series.ts[0]) / np.timedelta64(1, "s")) / 3600.0


def topic_of(device: Device) -> str:
    """The first topic a device publishes on (malformed messages go there too)."""
    return {
        "own_json": f"wattwatch/{device.device_id}",
        "senml": f"senml/{device.device_id}",
        "shelly": f"{device.device_id}/events/rpc",
        "tasmota": f"tele/{device.device_id}/SENSOR",
        "linky_tic": f"teleinfo/{device.device_id}",
        "zigbee2mqtt": f"zigbee2mqtt/{device.device_id}",
        "esphome": f"{device.device_id}/sensor/energy/state",
        "dsmr": f"{device.device_id}/json",
    }[device.format]


assert set(FORMAT_CHANNELS) == set(ENCODERS)  # a new encoder needs a channel table here
