"""The days public holidays disturb, and those days read again."""

from datetime import date, timedelta

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal

from processing.baseline import baseline_scan
from processing.holiday_days import holiday_blind_days, reference_days, reread_disturbed_days

FIRST = date(2024, 11, 4)  # a Monday
CHRISTMAS = [date(2024, 12, 25), date(2025, 1, 1)]  # two Wednesdays


def _days(offsets: np.ndarray) -> list[date]:
    return [FIRST + timedelta(days=int(d)) if d >= 0 else None for d in offsets]


def test_a_holiday_is_read_against_the_sundays_before_it() -> None:
    day, refs = reference_days(FIRST, 70, CHRISTMAS, weeks=4)
    christmas = int(np.flatnonzero(np.asarray(_days(day)) == date(2024, 12, 25))[0])
    assert _days(refs[christmas]) == [date(2024, 12, d) for d in (22, 15, 8, 1)]


def test_a_weekday_after_holidays_is_read_against_its_weekdays_without_them() -> None:
    day, refs = reference_days(FIRST, 100, CHRISTMAS, weeks=4)
    by_day = dict(zip(_days(day), refs, strict=True))
    # 8 January: the Wednesdays before it, Christmas and New Year's Day left out.
    assert _days(by_day[date(2025, 1, 8)]) == [
        date(2024, 12, 18), date(2024, 12, 11), date(2024, 12, 4), date(2024, 11, 27),
    ]  # fmt: skip
    # Every day read again is a holiday or a Wednesday with two holidays among its four
    # Wednesdays before (29 January has one: the median keeps to the working days).
    wednesdays = {date(2025, 1, 1) + timedelta(weeks=w) for w in range(1, 4)}
    assert set(by_day) == {date(2024, 12, 25), date(2025, 1, 1)} | wednesdays
    assert (refs >= 0).all()


def test_a_sunday_holiday_stays_a_sunday_and_the_window_s_edge_is_no_reference() -> None:
    easter = date(2025, 4, 20)  # a Sunday
    day, _ = reference_days(easter - timedelta(days=6), 40, [easter], weeks=4)
    # Neither Easter, a Sunday as any, nor the Sundays after it, one holiday among four.
    assert day.size == 0
    day, refs = reference_days(FIRST, 70, [date(2024, 11, 11)], weeks=4)
    assert _days(day)[0] == date(2024, 11, 11)
    assert_array_equal(refs[0], [6, -1, -1, -1])  # 10 November; the others are before it


def test_the_holidays_blind_days_are_the_holidays_and_half_held_weekdays() -> None:
    may = [date(2025, 5, 1), date(2025, 5, 8), date(2025, 5, 29)]  # Thursdays
    first = date(2025, 4, 28)  # a Monday
    blind = holiday_blind_days(first, 42, may, weeks=4)
    thursdays = {first + timedelta(days=int(d)) for d in np.flatnonzero(blind)}
    # 15 and 22 May hold two holidays among their four Thursdays before; 5 June, 8 and 29.
    assert thursdays == set(may) | {date(2025, 5, d) for d in (15, 22)} | {date(2025, 6, 5)}


def _home_living_holidays_as_sundays(days: int, holidays: list[date]) -> np.ndarray:
    """One home's hourly use from ``FIRST``: a working day's morning and evening peaks, a
    Sunday's use all day long, a holiday lived as a Sunday; no noise."""
    hour = np.arange(24)
    working = np.where((hour >= 7) & (hour < 9) | (hour >= 18) & (hour < 23), 1.2, 0.3)
    sunday = np.where((hour >= 9) & (hour < 23), 0.8, 0.3)
    dates = [FIRST + timedelta(days=d) for d in range(days)]
    rows = [sunday if d.weekday() == 6 or d in holidays else working for d in dates]
    return np.concatenate(rows)[np.newaxis, :]


def test_a_home_s_disturbed_days_read_again_depart_by_nothing() -> None:
    days = 70
    x = _home_living_holidays_as_sundays(days, CHRISTMAS)
    scan = baseline_scan(x, weeks=4)
    residual, expected = scan.daily_residual.copy(), scan.daily_expected.copy()
    christmas, after = (date(2024, 12, 25) - FIRST).days, (date(2025, 1, 8) - FIRST).days
    # The baseline reads Christmas as a working day, and 8 January against a median
    # halfway to a Sunday: the test can fail.
    sunday, working = 14 * 0.8 + 10 * 0.3, 7 * 1.2 + 17 * 0.3
    assert_allclose(residual[0, christmas], sunday - working)
    assert_allclose(residual[0, after], (working - sunday) / 2)
    reread_disturbed_days(
        x, residual, expected, first=FIRST, holidays=CHRISTMAS, weeks=4, steps_per_hour=1
    )
    assert_allclose(residual[0, [christmas, after]], 0.0, atol=1e-12)
    assert_allclose(expected[0, christmas], sunday)
    assert_allclose(expected[0, after], working)
    undisturbed = np.ones(days, dtype=bool)
    undisturbed[reference_days(FIRST, days, CHRISTMAS, weeks=4)[0]] = False
    assert_array_equal(residual[0, undisturbed], scan.daily_residual[0, undisturbed])
