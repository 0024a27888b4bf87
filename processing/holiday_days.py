"""The days public holidays disturb in the hour-of-week baseline's daily residuals, and
those days read again against references without the disturbance.

The hour-of-week baseline expects each day to be like the same weekday of the weeks
before it. A holiday is not (a home lives it as a Sunday, a building that closes is
closed), and it leaves the same weekday of the next weeks a reference with a Sunday among
its working days: after Christmas and New Year's Day on two Wednesdays, the median of the
four Wednesdays before 8 January falls halfway to a Sunday's use.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Final

import numpy as np
import numpy.typing as npt

from processing.baseline import nan_median

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

SUNDAY: Final = 6  # date.weekday()
# Weeks further back a day may look for reference weekdays that were no holidays.
EXTRA_REFERENCE_WEEKS: Final = 4


def holiday_blind_days(first: date, days: int, holidays: Sequence[date], weeks: int) -> BoolArray:
    """Days whose daily residual says nothing about the meter's level: public holidays (the
    hour-of-week baseline expects a working day) and days whose reference weeks hold at
    least half holidays on the same weekday (May's Thursdays in France: the median of the
    four previous Thursdays falls halfway to the closed-day level)."""
    holiday = np.zeros(days + 7 * weeks, dtype=bool)  # padded: index 7·weeks is day 0
    off = _offsets(first, holidays)
    off = off[(off >= -7 * weeks) & (off < days)]
    holiday[off + 7 * weeks] = True
    lagged = np.zeros(days, dtype=np.int64)  # holidays among each day's reference weekdays
    for j in range(1, weeks + 1):
        lagged += holiday[7 * (weeks - j) : 7 * (weeks - j) + days]
    return np.asarray(holiday[7 * weeks :] | (2 * lagged >= weeks), dtype=bool)


def reference_days(
    first: date, days: int, holidays: Sequence[date], weeks: int
) -> tuple[IntArray, IntArray]:
    """The days a holiday disturbs and the reference days each is read against instead.

    Returns ``(day, refs)``: the disturbed days (offsets from ``first``, within
    ``[0, days)``) and, shape (len(day), weeks), their references: for a holiday the
    ``weeks`` Sundays before it; for a day with a holiday among the same weekdays of its
    ``weeks`` weeks before, the latest ``weeks`` of those weekdays that were no holiday
    (up to ``EXTRA_REFERENCE_WEEKS`` further back). A reference before day 0 is −1.
    """
    off = set(_offsets(first, holidays).tolist())
    out_day: list[int] = []
    out_refs: list[list[int]] = []
    for d in range(days):
        if d in off:
            weekday = date.fromordinal(first.toordinal() + d).weekday()
            if weekday == SUNDAY:  # read as the Sunday it is
                continue
            last_sunday = d - weekday - 1
            refs = [last_sunday - 7 * j for j in range(weeks)]
        elif any(d - 7 * j in off for j in range(1, weeks + 1)):
            lags = range(1, weeks + EXTRA_REFERENCE_WEEKS + 1)
            refs = [d - 7 * j for j in lags if d - 7 * j not in off][:weeks]
        else:
            continue
        out_day.append(d)
        out_refs.append([r if r >= 0 else -1 for r in refs])
    if not out_day:
        return np.zeros(0, dtype=np.int64), np.zeros((0, weeks), dtype=np.int64)
    return np.asarray(out_day, dtype=np.int64), np.asarray(out_refs, dtype=np.int64)


def reread_disturbed_days(
    x: FloatArray,
    residual: FloatArray,
    expected: FloatArray,
    *,
    first: date,
    holidays: Sequence[date],
    weeks: int,
    steps_per_hour: int,
) -> None:
    """Moves each disturbed day's daily ``residual`` and ``expected`` (in place) by the
    difference between its reference days' hour medians and the baseline's (the same
    weekday of the ``weeks`` weeks before, see :func:`reference_days`), summed over the
    hours read that day; ``x`` (meters, steps) holds the readings from local midnight of
    ``first``. The heating term the baseline added stays: it is the day's weather."""
    day, refs = reference_days(first, residual.shape[1], holidays, weeks)
    per_day = 24 * steps_per_hour
    hours = np.arange(per_day)
    usual = 7 * np.arange(1, weeks + 1)
    # One disturbed day at a time (a few dozen a year): the readings gathered stay a
    # (meters, steps of a day, weeks) block, not a chunk's year over again.
    for d, ref in zip(day.tolist(), refs, strict=True):
        cols = d * per_day + hours
        cols = cols[cols < x.shape[1]]
        old = _hour_medians(x, d - usual, cols - d * per_day, per_day)
        new = _hour_medians(x, ref, cols - d * per_day, per_day)
        read = ~np.isnan(x[:, cols]) & ~np.isnan(old) & ~np.isnan(new)
        delta = np.where(read, new - old, 0.0).sum(axis=1)
        expected[:, d] += delta
        residual[:, d] -= delta


def _hour_medians(x: FloatArray, ref_days: IntArray, hours: IntArray, per_day: int) -> FloatArray:
    """Median over ``ref_days`` (−1 or beyond ``x``: none) of each meter's readings at each
    of ``hours`` of a day, shape (meters, hours)."""
    cols = ref_days[np.newaxis, :] * per_day + hours[:, np.newaxis]  # (hours, refs)
    valid = (ref_days[np.newaxis, :] >= 0) & (cols < x.shape[1])
    vals = np.where(valid, x[:, np.where(valid, cols, 0)], np.nan)  # (meters, hours, refs)
    return nan_median(vals.reshape(-1, ref_days.size)).reshape(vals.shape[:2])


def _offsets(first: date, holidays: Sequence[date]) -> IntArray:
    """Days from ``first`` to each of ``holidays``."""
    return np.asarray([d.toordinal() - first.toordinal() for d in holidays], dtype=np.int64)
