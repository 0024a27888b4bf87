"""Building stock: parameter ranges, era ordering, 2R2C consistency, schedules, seeding."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from processing.dpe import CARRIERS
from simulators.stock import USES, draw_stock, heat_pump_cop, setpoint_schedule
from simulators.thermal import dominant_time_constant_h


@pytest.fixture(scope="module")
def stock():
    return draw_stock(4000, rng=np.random.default_rng(11), municipalities=95)


def test_ranges(stock):
    assert len(stock) == 4000
    assert np.all((stock.hlc_w_per_m2k >= 0.5) & (stock.hlc_w_per_m2k <= 4.0))
    assert np.all((stock.tau_h >= 10) & (stock.tau_h <= 150))
    assert np.all((stock.setpoint_c >= 19) & (stock.setpoint_c <= 21))
    assert set(stock.carrier) <= set(CARRIERS)
    assert set(stock.use) <= set(USES)
    assert np.all((stock.municipality >= 0) & (stock.municipality < 95))
    assert np.all(np.abs(stock.lat_deg - 50.63) < 0.5)
    gas = stock.carrier == "gas"
    assert np.all((stock.efficiency[gas] >= 0.85) & (stock.efficiency[gas] <= 0.95))
    assert_array_equal(stock.efficiency[stock.carrier == "electricity"], 1.0)
    assert np.all(stock.heating_max_w > stock.hlc_w_per_k * 28)  # ≥ 1.3 × (19 + 9) K
    assert np.any(stock.setback_k == 0)
    assert np.any(stock.setback_k > 0)


def test_older_buildings_are_leakier(stock):
    old = np.median(stock.hlc_w_per_m2k[stock.year_built < 1948])
    new = np.median(stock.hlc_w_per_m2k[stock.year_built >= 2013])
    assert old > 2.5 * new


def test_rc_parameters_reproduce_hlc_and_tau(stock):
    assert_allclose(stock.rc.hlc_w_per_k, stock.hlc_w_per_k, rtol=1e-12)
    assert_allclose(dominant_time_constant_h(stock.rc), stock.tau_h, rtol=1e-9)


def test_seeded():
    a = draw_stock(50, rng=np.random.default_rng(1))
    b = draw_stock(50, rng=np.random.default_rng(1))
    c = draw_stock(50, rng=np.random.default_rng(2))
    for name, col in a.as_columns().items():
        assert_array_equal(col, b.as_columns()[name])
    assert not np.array_equal(a.hlc_w_per_k, c.hlc_w_per_k)


def test_heat_pump_cop():
    assert_allclose(heat_pump_cop([-10.0, 0.0, 10.0], 3.2), [2.4, 3.2, 4.0])
    assert heat_pump_cop(-40.0) == 1.5
    assert heat_pump_cop(60.0) == 6.0


def test_setpoint_schedule(stock):
    hour = np.array([3, 12, 12])
    weekday = np.array([2, 2, 6])  # Wednesday night, Wednesday noon, Sunday noon
    sp = setpoint_schedule(stock, hour, weekday)
    assert sp.shape == (len(stock), 3)
    low = stock.setpoint_c - stock.setback_k
    school = np.flatnonzero(stock.use == "school")
    assert_allclose(sp[school], np.stack([low, stock.setpoint_c, low], 1)[school], rtol=1e-6)
    home = np.flatnonzero(stock.use == "household")
    assert_allclose(sp[home, 0], low[home], rtol=1e-6)
    assert_allclose(sp[home, 2], stock.setpoint_c[home], rtol=1e-6)


def test_subset(stock):
    sub = stock.subset([0, 5])
    assert len(sub) == 2
    assert sub.hlc_w_per_k[1] == stock.hlc_w_per_k[5]
