"""Round trip: what the simulator publishes, the adapters read back (values and timestamps)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from ingest.adapters.registry import ADAPTERS
from ingest.reading import Reading
from simulators.payloads import ENCODERS, encode

TS = datetime(2024, 1, 5, 11, 0, 0, 123456, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")

# Values at the device's own resolution, so the round trip is exact up to float noise.
VALUES: dict[str, dict[str, float]] = {
    "own_json": {"energy": 1234.5678, "power": 530.25, "indoor_temperature": 19.5, "gas": 3.2},
    "senml": {"energy": 123.456, "power": 530.0, "voltage": 231.4, "temperature": 21.5},
    "shelly": {
        "switch:0/apower": 8.9,
        "switch:0/aenergy.total": 6.532123,
        "switch:0/voltage": 231.2,
        "em:0/total_act_power": 715.5,
        "emdata:0/total_act": 3.77735,
        "emdata:0/total_act_ret": 0.25,
    },
    "tasmota": {"Total": 123.456, "Power/1": 120.0, "Power/2": 0.0, "Voltage": 231.0},
    "linky_tic": {"BASE": 6130.419, "PAPP": 530.0, "IINST": 2.0},
    "zigbee2mqtt": {
        "current_summ_delivered": 6130.419,
        "apparent_power": 530.0,
        "rms_voltage": 231,
    },
    "esphome": {"power": 530.4, "energy_total": 1234.567},
    "dsmr": {
        "electricity_delivered_1": 1234.567,
        "electricity_currently_delivered": 530.0,
        "phase_voltage_l1": 231.4,
        "extra_device_delivered": 3456.789,
    },
}
# Timestamp resolution of each format; None: the format has no clock (arrival time is used).
TS_RESOLUTION: dict[str, timedelta | None] = {
    "own_json": timedelta(0),
    "senml": timedelta(milliseconds=1),
    "shelly": timedelta(milliseconds=10),
    "tasmota": timedelta(seconds=1),
    "linky_tic": None,  # historic mode; standard mode is tested below
    "zigbee2mqtt": timedelta(milliseconds=1),
    "esphome": None,
    "dsmr": timedelta(seconds=1),
}
DEVICE = {"linky_tic": "021528603314"}


def round_trip(fmt: str, ts: datetime, values: Mapping[str, float]) -> list[Reading]:
    device = DEVICE.get(fmt, "sim-42")
    readings: list[Reading] = []
    for topic, payload in encode(fmt, device, ts, values):
        # No-clock formats read the arrival time: deliver "at" ts.
        readings.extend(ADAPTERS[fmt](topic, payload, ts))
    assert {r.device_id for r in readings} == {device}
    return readings


def assert_round_trip(
    fmt: str, ts: datetime, values: Mapping[str, float], resolution: timedelta | None
) -> None:
    readings = round_trip(fmt, ts, values)
    by_channel = {r.channel: r for r in readings}
    assert sorted(by_channel) == sorted(values)
    names = sorted(values)
    assert_allclose([by_channel[n].value for n in names], [values[n] for n in names], rtol=1e-9)
    tolerance = resolution if resolution is not None else timedelta(0)
    for reading in readings:
        assert abs(reading.ts - ts) <= tolerance, (reading.channel, reading.ts)


def test_every_adapter_has_an_encoder() -> None:
    assert sorted(ENCODERS) == sorted(ADAPTERS) == sorted(VALUES)


@pytest.mark.parametrize("fmt", sorted(VALUES))
def test_round_trip(fmt: str) -> None:
    assert_round_trip(fmt, TS, VALUES[fmt], TS_RESOLUTION[fmt])


def test_linky_standard_mode_round_trip_with_meter_clock() -> None:
    values = {"EAST": 12345.678, "EASF01": 4000.0, "EAIT": 12.345, "SINSTS": 950.0, "URMS1": 232}
    readings = round_trip("linky_tic", TS, values)
    assert_allclose(sorted(r.value for r in readings), sorted(values.values()), rtol=1e-9)
    (topic, payload), *_ = encode("linky_tic", "812345678901", TS, values)
    frame = json.loads(payload)
    assert topic == "teleinfo/812345678901"
    assert frame["EAST"] == {"raw": "012345678", "value": 12345678}  # Wh, zero-padded
    # The meter clock wins over the arrival time.
    late = ADAPTERS["linky_tic"](topic, payload, TS + timedelta(minutes=3))
    assert all(abs(r.ts - TS) < timedelta(seconds=1) for r in late)


def test_encoders_round_to_device_resolution() -> None:
    (_, payload), *_ = encode("tasmota", "plug", TS, {"Power": 530.4, "Total": 1.23456})
    energy = json.loads(payload)["ENERGY"]
    assert energy["Power"] == 530
    assert energy["Total"] == 1.235
    assert json.loads(payload)["Time"] == "2024-01-05T12:00:00"  # Paris local, no offset
    (_, payload), *_ = encode("linky_tic", "021528603314", TS, {"BASE": 6130.4194})
    assert json.loads(payload)["BASE"]["raw"] == "006130419"


def test_shelly_real_shape() -> None:
    (topic, payload), *_ = encode("shelly", "shellypro3em-c8f09e8812ab", TS, VALUES["shelly"])
    message = json.loads(payload)
    assert topic == "shellypro3em-c8f09e8812ab/events/rpc"
    assert message["method"] == "NotifyStatus"
    assert message["params"]["switch:0"] == {
        "id": 0,
        "apower": 8.9,
        "aenergy": {"total": 6532.123},  # Wh on the wire
        "voltage": 231.2,
    }


@pytest.mark.parametrize(
    ("fmt", "values", "error"),
    [
        ("tasmota", {"Watts": 3.0}, ValueError),
        ("shelly", {"switch:x/apower": 3.0}, ValueError),
        ("linky_tic", {"BASE": 1.0, "EAST": 1.0}, ValueError),  # modes never mix
        ("linky_tic", {"BASE": -1.0}, ValueError),
        ("own_json", {"power": float("nan")}, ValueError),
        ("own_json", {}, ValueError),
        ("esphome", {"a/b": 1.0}, ValueError),
        ("modbus", {"power": 1.0}, KeyError),
    ],
)
def test_encode_refuses_what_no_device_sends(
    fmt: str, values: dict[str, float], error: type[Exception]
) -> None:
    device = DEVICE.get(fmt, "sim-42")
    with pytest.raises(error):
        encode(fmt, device, TS, values)


def test_encode_needs_an_aware_timestamp() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        encode("own_json", "sim-42", TS.replace(tzinfo=None), {"power": 1.0})


@pytest.mark.parametrize("fmt", sorted(VALUES))
@settings(max_examples=150, deadline=None, database=None)
@given(
    ts=st.datetimes(
        min_value=datetime(2015, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
    )
)
def test_round_trip_any_time(fmt: str, ts: datetime) -> None:
    if fmt == "tasmota":
        # Paris local time without offset cannot tell the two instants of the repeated
        # autumn hour apart; the adapter assumes the first (summer-time) one.
        whole = ts.replace(microsecond=0)
        local = whole.astimezone(PARIS).replace(tzinfo=None)
        assume(local.replace(tzinfo=PARIS, fold=0).astimezone(UTC) == whole)
    assert_round_trip(fmt, ts, VALUES[fmt], TS_RESOLUTION[fmt])
