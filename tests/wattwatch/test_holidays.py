from datetime import date

from wattwatch.holidays import french_holidays


def test_french_holidays():
    h = set(french_holidays([2024, 2025]))
    assert date(2024, 4, 1) in h  # Easter Monday 2024
    assert date(2025, 5, 29) in h  # Ascension 2025
    assert date(2025, 6, 9) in h  # Whit Monday 2025
    assert date(2024, 7, 14) in h
    assert len(h) == 22
