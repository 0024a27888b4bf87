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

from processing.baseline import nan_median_of_lags

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

SUNDAY: Final = 6  # date.weekday()
# Weeks further back a day may look for reference weekdays that were no holidays.
EXTRA_REFERENCE_WEEKS: Final = 4


def holiday_blind_days(first: date, days: int, holidays: Sequence[date], weeks: int) -> BoolArray:
    """The days :func:`reference_days` reads again, as a mask of ``days``: for a series that
    is not read again (a room's), they say nothing about its level."""
    blind = np.zeros(days, dtype=bool)
    blind[reference_days(first, days, holidays, weeks)[0]] = True
    return blind


def reference_days(
    first: date, days: int, holidays: Sequence[date], weeks: int
) -> tuple[IntArray, IntArray]:
    """The days a holiday disturbs and the reference days each is read against instead.

    Returns ``(day, refs)``: the disturbed days (offsets from ``first``, within
    ``[0, days)``) and, shape (len(day), weeks), their references: for a holiday the
    ``weeks`` Sundays before it; for a day whose same weekdays of the ``weeks`` weeks
    before are holidays for half or more, the latest ``weeks`` of those weekdays that were
    no holiday (up to ``EXTRA_REFERENCE_WEEKS`` further back). A reference before day 0,
    or one not found, is −1. (With fewer holidays the median of the weekdays keeps to the
    working days: of four values, the middle two are working days.)
    """
    off = {h.toordinal() - first.toordinal() for h in holidays}  # days from ``first``
    out_day: list[int] = []
    out_refs: list[list[int]] = []
    for d in range(days):
        if d in off:
            weekday = date.fromordinal(first.toordinal() + d).weekday()
            if weekday == SUNDAY:  # read as the Sunday it is
                continue
            last_sunday = d - weekday - 1
            refs = [last_sunday - 7 * j for j in range(weeks)]
        elif 2 * sum(d - 7 * j in off for j in range(1, weeks + 1)) >= weeks:
            lags = range(1, weeks + EXTRA_REFERENCE_WEEKS + 1)
            refs = [d - 7 * j for j in lags if d - 7 * j not in off][:weeks]
            refs += [-1] * (weeks - len(refs))
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
    usual = 7 * np.arange(1, weeks + 1)
    # One disturbed day at a time (about sixteen a year): the readings gathered stay a
    # (weeks, meters, steps of a day) block, not a chunk's year over again.
    for d, ref in zip(day.tolist(), refs, strict=True):
        lo, hi = d * per_day, min((d + 1) * per_day, x.shape[1])
        old = _hour_medians(x, d - usual, hi - lo, per_day)
        new = _hour_medians(x, ref, hi - lo, per_day)
        read = ~np.isnan(x[:, lo:hi]) & ~np.isnan(old) & ~np.isnan(new)
        delta = np.where(read, new - old, 0.0).sum(axis=1)
        expected[:, d] += delta
        residual[:, d] -= delta


def _hour_medians(x: FloatArray, ref_days: IntArray, steps: int, per_day: int) -> FloatArray:
    """Median over ``ref_days`` (−1 or beyond ``x``: none) of each meter's readings at each
    of the first ``steps`` steps of a day, shape (meters, steps)."""
    # A day's steps are a slice of each row: copied a reference at a time, not gathered.
    lags = np.full((ref_days.size, x.shape[0], steps), np.nan)
    for k, ref in enumerate(ref_days.tolist()):
        if ref >= 0:
            part = x[:, ref * per_day : ref * per_day + steps]
            lags[k, :, : part.shape[1]] = part
    return nan_median_of_lags(lags)
