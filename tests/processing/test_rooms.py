"""Rooms: the weather's part in a room thermometer's level shifts."""

import dataclasses
from datetime import datetime

import numpy as np
from numpy.testing import assert_allclose

from processing.detector_config import TEMPERATURE_DETECTOR
from processing.detectors import anomaly_scan
from processing.events import Anomaly
from processing.rooms import INERTIA_DAYS, inertial_daily, weather_explained

START = datetime(2024, 1, 1)  # local midnight


def test_inertial_daily_is_an_exponential_filter_of_daily_means() -> None:
    hourly = np.repeat([10.0, 10.0, 20.0, 20.0, 20.0], 24)
    hourly[30] = np.nan  # a missing hour leaves the day's mean
    a = 1.0 / INERTIA_DAYS
    want = [10.0, 10.0, 10.0 + a * 10.0]
    want += [want[-1] + a * (20.0 - want[-1])]
    want += [want[-1] + a * (20.0 - want[-1])]
    assert_allclose(inertial_daily(hourly, 5), want)


def test_inertial_daily_carries_a_day_without_readings() -> None:
    hourly = np.repeat([np.nan, 4.0, np.nan, 4.0], 24)
    assert_allclose(inertial_daily(hourly, 4), 4.0)  # the first read day fills before it
    assert_allclose(inertial_daily(np.full(48, np.nan), 2), 0.0)


def _shift(room: int, start: int, end: int, expected: float, observed: float) -> Anomaly:
    return Anomaly(room, start, end, "level_shift", 10.0, expected, observed, "")


def test_a_warming_spring_is_explained_and_a_probe_offset_is_not() -> None:
    rng = np.random.default_rng(3)
    days = 90
    outdoor = np.concatenate((np.full(40, 6.0), np.linspace(6.0, 18.0, 50)))
    outdoor += rng.normal(0.0, 1.5, days)
    sun = rng.uniform(20.0, 250.0, days)
    free = 9.0 + outdoor + 0.01 * sun  # the room free-floats above its heating at 20 °C
    room = np.maximum(20.0, free) + rng.normal(0.0, 0.1, days)
    offset = room + 2.0 * (np.arange(days) >= 60)  # the same room, its probe 2 K high
    daily = np.vstack((room, offset))
    found = [
        _shift(0, 50, 90, float(room[22:50].mean()), float(room[50:].mean())),
        _shift(1, 60, 75, float(offset[32:60].mean()), float(offset[60:75].mean())),
        _shift(1, 5, 9, 20.0, 22.0),  # four days before its onset: not tested
    ]
    explained = weather_explained(found, daily, outdoor, sun, min_share=0.5)
    assert explained.tolist() == [True, False, False]
    # Without the sun the temperature alone still finds the season.
    assert weather_explained(found, daily, outdoor, None, min_share=0.5).tolist() == [
        True,
        False,
        False,
    ]
    assert not weather_explained(found, daily, outdoor, sun, min_share=0.0).any()


def _spring_rooms(seed: int, rooms: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rooms held at 20.5 °C through a cold February that free-float as the spring warms,
    over 120 days; hourly room temperatures [°C], outdoor temperature [°C] and sun [W/m²]."""
    rng = np.random.default_rng(seed)
    days = 120
    hours = np.arange(24 * days)
    day = hours // 24
    outdoor = np.where(day < 60, 3.0, 3.0 + 0.3 * (day - 60)) + 3.0 * np.sin(
        2 * np.pi * (hours % 24 - 9) / 24
    )
    sun = np.clip(400.0 * np.sin(np.pi * (hours % 24 - 6) / 12), 0.0, None)
    daily_out = inertial_daily(outdoor, days)[day]
    free = daily_out + 8.0 + rng.uniform(-1.0, 1.0, (rooms, 1))
    room = np.maximum(20.5, free) + rng.normal(0.0, 0.1, (rooms, hours.size))
    return np.round(room, 1), outdoor, sun


def test_the_spring_s_free_float_is_not_a_shift_but_an_offset_still_is() -> None:
    rooms, outdoor, sun = _spring_rooms(5)
    off = dataclasses.replace(TEMPERATURE_DETECTOR, weather_step_share=0.0)
    shifts = ("level_shift", "drift")
    seen = anomaly_scan(rooms, start=START, config=off)
    assert {a.meter_index for a in seen if a.kind in shifts} == set(range(6))
    found = anomaly_scan(
        rooms, start=START, outdoor_temp_c=outdoor, sun_w_m2=sun, config=TEMPERATURE_DETECTOR
    )
    assert not [a for a in found if a.kind in shifts]
    rooms[2, 24 * 40 : 24 * 50] += 2.0  # ten days 2 K high in the heating season
    found = anomaly_scan(
        rooms, start=START, outdoor_temp_c=outdoor, sun_w_m2=sun, config=TEMPERATURE_DETECTOR
    )
    assert [(a.meter_index, a.kind) for a in found if a.kind in shifts] == [(2, "level_shift")]
