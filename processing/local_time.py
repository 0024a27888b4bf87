"""Local time of steps and days: hour of day, weekday, weekends, public holidays, closed days."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def step_calendar(
    n: int, start: datetime, steps_per_hour: int
) -> tuple[npt.NDArray[np.float64], IntArray]:
    """Local hour of day [h] and day index since ``start``'s date of every step."""
    hours = start.hour + start.minute / 60 + np.arange(n) / steps_per_hour
    day = np.floor_divide(hours, 24).astype(np.int64)
    return hours - 24 * day, day


def weekend_and_holiday(
    day: IntArray, first: date, holidays: Sequence[date]
) -> tuple[BoolArray, BoolArray]:
    """Whether each day (its index since ``first``, e.g. from :func:`step_calendar`) is
    a Saturday or Sunday, and whether it is a public holiday."""
    weekend = (first.weekday() + day) % 7 >= 5
    off = [(d - first).days for d in holidays]
    return np.asarray(weekend, dtype=bool), np.asarray(np.isin(day, off), dtype=bool)


def closed_steps(
    n: int, start: datetime, steps_per_hour: int, holidays: Sequence[date]
) -> BoolArray:
    """Steps of Saturdays, Sundays and public holidays (local days from ``start``)."""
    _, day = step_calendar(n, start, steps_per_hour)
    weekend, holiday = weekend_and_holiday(day, start.date(), holidays)
    return weekend | holiday


def hour_mask(hour: FloatArray, window: tuple[int, int]) -> BoolArray:
    lo, hi = window
    if lo > hi:
        return np.asarray((hour >= lo) | (hour < hi))
    return np.asarray((hour >= lo) & (hour < hi))
