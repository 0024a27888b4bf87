"""Plausibility checks shared by all formats: ranges per unit, clocks, unknown units."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.adapters.registry import ADAPTERS
from ingest.reading import UNITS, Reading
from ingest.validation import (
    EARLIEST_TS,
    EARLIEST_US,
    MAX_PAYLOAD_BYTES,
    check_reading,
    implausible,
    to_us,
    value_range,
)
from wattwatch.errors import PayloadError

NOW = datetime(2024, 1, 5, 11, 0, 30, tzinfo=UTC)
CASES = Path(__file__).parent / "adapters" / "cases"


def make(
    value: float, unit: str | None = "W", *, cumulative: bool = False, **kw: object
) -> Reading:
    fields: dict[str, object] = {
        "device_id": "dev",
        "channel": "ch",
        "ts": NOW - timedelta(seconds=5),
        "value": value,
        "quantity": "electricity",
        "unit": unit,
        "cumulative": cumulative,
    }
    fields.update(kw)
    return Reading(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "reading",
    [
        make(530.0),
        make(-4200.0),  # export
        make(10e6),  # the 10 MW bound is inclusive
        make(1234.5, "kWh", cumulative=True),
        make(0.0, "kWh", cumulative=True),
        make(-2.5, "kWh"),  # an interval energy may be negative (net export)
        make(950.0, "VA"),
        make(231.4, "V", quantity="grid_voltage"),
        make(50.02, "Hz", quantity="grid_frequency"),
        make(-12.5, "degC", quantity="outdoor_temperature"),
        make(3456.789, "m3", cumulative=True, quantity="gas"),
        make(1e300, None, quantity=None),  # no unit: the registration's unit is checked later
    ],
    ids=repr,
)
def test_plausible_readings_pass(reading: Reading) -> None:
    check_reading(reading, now=NOW)


@pytest.mark.parametrize(
    ("reading", "reason"),
    [
        (make(10.5e6), "outside plausible range"),
        (make(-11e6), "outside plausible range"),
        (make(1200.0, "V"), "outside plausible range"),
        (make(-1.0, "V"), "outside plausible range"),
        (make(30.0, "Hz"), "outside plausible range"),
        (make(71.0, "Hz"), "outside plausible range"),
        (make(-0.001, "kWh", cumulative=True), "index"),
        (make(2e9, "kWh", cumulative=True), "index"),
        (make(-70.0, "degC"), "outside plausible range"),
        (make(150.0, "degC"), "outside plausible range"),
        (make(20_000.0, "A"), "outside plausible range"),
        (make(130.0, "%"), "outside plausible range"),
        (make(1.0, "BTU"), "unknown unit"),
        (make(1.0, quantity="vibes"), "unknown quantity"),
        (make(math.nan), "not a finite number"),
        (make(math.inf, None), "not a finite number"),
    ],
    ids=lambda x: x if isinstance(x, str) else f"{x.value}{x.unit}",
)
def test_implausible_values_are_refused(reading: Reading, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        check_reading(reading, now=NOW)


def test_future_timestamps_beyond_drift_are_refused() -> None:
    check_reading(make(1.0, ts=NOW + timedelta(minutes=9)), now=NOW)
    with pytest.raises(PayloadError, match="ahead of"):
        check_reading(make(1.0, ts=NOW + timedelta(minutes=11)), now=NOW)
    check_reading(make(1.0, ts=NOW + timedelta(minutes=11)), now=NOW, max_future=timedelta(hours=1))


def test_timestamps_before_the_meter_existed_are_refused() -> None:
    installed = datetime(2023, 6, 1, tzinfo=UTC)
    check_reading(make(1.0, ts=installed), now=NOW, not_before=installed)
    with pytest.raises(PayloadError, match="meter installation"):
        check_reading(make(1.0, ts=installed - timedelta(seconds=1)), now=NOW, not_before=installed)


def test_unset_device_clock_is_refused_without_not_before() -> None:
    with pytest.raises(PayloadError, match="plausible clock"):
        check_reading(make(1.0, ts=datetime(1970, 1, 1, 0, 2, tzinfo=UTC)), now=NOW)
    check_reading(make(1.0, ts=EARLIEST_TS), now=NOW)


def test_naive_clocks_are_caller_bugs() -> None:
    with pytest.raises(ValueError, match="now"):
        check_reading(make(1.0), now=NOW.replace(tzinfo=None))
    with pytest.raises(ValueError, match="not_before"):
        check_reading(make(1.0), now=NOW, not_before=datetime(2020, 1, 1))
    with pytest.raises(PayloadError, match="no timezone"):
        check_reading(make(1.0, ts=datetime(2024, 1, 5)), now=NOW)


def test_max_payload_is_64_kib() -> None:
    assert MAX_PAYLOAD_BYTES == 64 * 1024


def test_every_valid_adapter_case_is_plausible() -> None:
    """The real-shaped case folders double as a check that the bounds are not too tight."""
    count = 0
    for case in sorted(CASES.glob("*/*")):
        expected = json.loads((case / "expected.json").read_text())
        if isinstance(expected, dict):
            continue
        topic = (case / "topic.txt").read_text().strip()
        (payload,) = [p for p in case.iterdir() if p.name.startswith("payload.")]
        for reading in ADAPTERS[case.parent.name](topic, payload.read_bytes(), NOW):
            check_reading(reading, now=datetime(2025, 1, 1, tzinfo=UTC))
            count += 1
    assert count > 100


@settings(max_examples=2000, deadline=None, database=None)
@given(
    unit=st.sampled_from([None, *sorted(UNITS)]),
    cumulative=st.booleans(),
    value=st.floats() | st.sampled_from([-10e6, 10e6, 1e9, 0.0, 40.0, 70.0, 100.0]),
    offset_us=st.integers(-(10**17), 10**12) | st.sampled_from([0, 600_000_000, 600_000_001]),
    installed=st.none() | st.datetimes(min_value=datetime(2000, 1, 1), timezones=st.just(UTC)),
)
def test_columns_are_refused_exactly_when_check_reading_refuses(
    unit: str | None, cumulative: bool, value: float, offset_us: int, installed: datetime | None
) -> None:
    ts_us = to_us(NOW) + offset_us
    try:
        ts = NOW + timedelta(microseconds=offset_us)
    except OverflowError:
        return  # no datetime to compare with
    reading = make(value, unit, cumulative=cumulative, ts=ts, quantity=None)
    try:
        check_reading(reading, now=NOW, not_before=installed)
        refused = False
    except PayloadError:
        refused = True
    low, high = value_range(unit, cumulative)
    floor = to_us(installed) if installed is not None else EARLIEST_US
    assert implausible([value], [ts_us], [low], [high], [floor], now=NOW).tolist() == [refused]
