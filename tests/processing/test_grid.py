"""EN 50160: limits are exact and inclusive; weekly and yearly shares."""

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal

from processing.grid import (
    frequency_compliance,
    ten_minute_means,
    transformer_overload,
    voltage_compliance,
)


def test_frequency_boundaries_are_exact():
    f = np.array([[49.5, 50.5, 47.0, 52.0, 49.49999, 50.50001, 46.99999, 52.00001, np.nan]])
    res = frequency_compliance(f)
    assert_allclose(res.share_normal, [2 / 8])
    assert_array_equal(res.violations.start, [6])
    assert_array_equal(res.violations.end, [8])
    assert_allclose(res.violations.severity, [3.00001])


def test_frequency_yearly_share():
    f = np.full((2, 52_560), 50.0)
    f[0, :262] = 49.4  # 0.4985 % outside the ±1 % band: compliant
    f[1, :263] = 49.4  # 0.5004 %: not compliant
    res = frequency_compliance(f)
    assert_array_equal(res.compliant, [True, False])
    assert len(res.violations) == 0


def test_voltage_boundaries_and_weekly_share():
    week = 1008
    u = np.full((1, 2 * week), 230.0)
    u[0, :50] = 207.0  # on the limit: inside
    u[0, 50:100] = 253.0  # on the limit: inside
    u[0, week : week + 51] = 206.9  # 51/1008 = 5.06 % outside ±10 %
    res = voltage_compliance(u)
    assert_allclose(res.weekly_share, [[1.0, 1 - 51 / week]])
    assert_array_equal(res.weekly_compliant, [[True, False]])
    assert len(res.violations) == 0
    u[0, 10] = 195.5  # always-limit, inclusive
    u[0, 11] = 195.4
    u[0, 12] = 253.1
    res = voltage_compliance(u)
    assert_array_equal(res.violations.start, [11])
    assert_array_equal(res.violations.end, [13])
    assert_array_equal(res.weekly_compliant, [[False, False]])


def test_transformer_overload_strictly_above_one():
    s = np.array([[0.9, 1.0, 1.05, 1.2, 1.0, 0.5]])
    ev = transformer_overload(s)
    assert_array_equal(ev.start, [2])
    assert_array_equal(ev.end, [4])
    assert_allclose(ev.observed, [1.2])


def test_ten_minute_means():
    x = np.array([[230.0, 232.0, np.nan, np.nan]])
    assert_allclose(ten_minute_means(x, steps_per_10min=2), [[231.0, np.nan]])
