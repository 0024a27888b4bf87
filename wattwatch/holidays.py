"""French public holidays (metropolitan), shared by the simulator's occupancy calendar and
processing's holiday checks."""

from collections.abc import Iterable
from datetime import date, timedelta


def french_holidays(years: Iterable[int]) -> list[date]:
    """French public holidays (metropolitan) of the given years, sorted.

    Fixed: 1 Jan, 1 May, 8 May, 14 Jul, 15 Aug, 1 Nov, 11 Nov, 25 Dec; movable from Easter
    Sunday (anonymous Gregorian algorithm): Easter Monday (+1), Ascension (+39), Whit
    Monday (+50).
    """
    out: list[date] = []
    for y in years:
        a, b, c = y % 19, y // 100, y % 100
        d, e = divmod(b, 4)
        f = (b + 8) // 25
        g = (b - f + 1) // 3
        h = (19 * a + b - d - g + 15) % 30
        i, k = divmod(c, 4)
        l_ = (32 + 2 * e + 2 * i - h - k) % 7
        mm = (a + 11 * h + 22 * l_) // 451
        month, day = divmod(h + l_ - 7 * mm + 114, 31)
        easter = date(y, month, day + 1)
        fixed = [(1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25)]
        out += [date(y, mo, dd) for mo, dd in fixed]
        out += [easter + timedelta(days=k_) for k_ in (1, 39, 50)]
    return sorted(out)
