"""Local hours, weekends, holidays and closed days."""

from datetime import date, datetime

from processing.local_time import closed_steps


def test_closed_steps_are_weekends_and_holidays():
    start = datetime(2024, 5, 1)  # a Wednesday and a public holiday
    closed = closed_steps(24 * 7 * 2, start, 2, [date(2024, 5, 1)])  # half-hour steps
    days = closed.reshape(7, 48)
    assert days.all(axis=1).tolist() == [True, False, False, True, True, False, False]
    assert not (days.any(axis=1) & ~days.all(axis=1)).any()
