"""Change-point model: exact recovery, noise tolerance, sufficiency, bootstrap, slope change."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from processing.changepoint import (
    SLOPE_MAX_P,
    SufficiencyRules,
    bootstrap_hlc,
    fit_balance_point,
    fit_change_point,
    heat_pump_day_weight,
    moving_block_indices,
    slope_change,
)

DAYS = 365


def _weather(rng, days=DAYS):
    d = np.arange(days)
    return 11 + 8 * np.cos(2 * np.pi * (d - 15) / 365 + np.pi) + 2.5 * rng.standard_normal(days)


def _buildings(te, b, s, tb):
    return b[:, None] + s[:, None] * np.maximum(tb[:, None] - te, 0.0)


def test_exact_recovery_shared_and_per_building():
    rng = np.random.default_rng(0)
    te = _weather(rng)
    b = np.array([5.0, 20.0, 0.0, 12.0])
    s = np.array([3.0, 8.5, 1.2, 0.4])
    tb = np.array([15.0, 17.5, 12.0, 19.5])
    q = _buildings(te, b, s, tb)
    fit = fit_change_point(q, te)
    assert_array_equal(fit.status, "ok")
    assert_allclose(fit.baseload, b, atol=1e-8)
    assert_allclose(fit.slope, s, rtol=1e-10)
    assert_allclose(fit.balance_point, tb)
    assert_allclose(fit.r2, 1.0)
    assert_allclose(fit.hlc_w_per_k, s * 1000 / 24)
    per_building = fit_change_point(q, np.tile(te, (4, 1)))
    assert_allclose(per_building.slope, s, rtol=1e-10)
    assert_allclose(per_building.balance_point, tb)


def test_recovery_with_noise_and_gaps():
    rng = np.random.default_rng(1)
    m = 200
    te = np.stack([_weather(rng) for _ in range(m)])  # one weather series per building
    b = rng.uniform(5, 20, m)
    s = rng.uniform(2, 10, m)
    tb = rng.uniform(13, 18, m)
    q = _buildings(te, b, s, tb) + rng.normal(0, 2.0, (m, DAYS))
    q[rng.random(q.shape) < 0.05] = np.nan  # ~18 missing days
    fit = fit_change_point(q, te, efficiency=0.9)
    assert fit.qualified.all()
    assert_allclose(np.median(np.abs(fit.slope / s - 1)), 0, atol=0.03)
    assert np.abs(fit.balance_point - tb).max() < 1.5
    assert_allclose(fit.hlc_w_per_k, 0.9 * fit.slope * 1000 / 24)
    assert (fit.cv_rmse > 0).all()
    assert (np.abs(fit.nmbe) < 1e-9).all()


def test_negative_slope_is_clipped_to_zero():
    rng = np.random.default_rng(2)
    te = _weather(rng)
    q = (10 + 0.5 * te)[None, :]  # more use when warmer: no heating signature
    fit = fit_change_point(q, te)
    assert fit.slope[0] == 0.0
    assert_allclose(fit.baseload, q.mean())


def test_a_register_that_does_not_follow_the_weather_shows_no_heating_response():
    rng = np.random.default_rng(12)
    te = _weather(rng)
    heating = 6.0 + 0.8 * np.maximum(15.0 - te, 0.0) + rng.normal(0, 1.0, DAYS)  # HLC 33 W/K
    hot_water = 6.0 + rng.normal(0, 1.0, DAYS)  # a home that never heats
    q = np.stack([heating, hot_water, -heating, np.zeros(DAYS), np.full(DAYS, 7.0)])
    fit = fit_change_point(q, te)
    assert fit.qualified.all()  # its energy use is measured, whatever it is
    assert fit.slope_p_value[0] < 1e-9
    assert fit.slope[1] > 0.0 and fit.slope_p_value[1] > SLOPE_MAX_P  # noise that fits a slope
    assert_allclose(fit.slope_p_value[2:], 1.0)  # falling, or flat: no evidence at all
    assert fit.heating_response.tolist() == [True, False, False, False, False]
    # The grid search keeps the best of 41 balance points: its p-value is corrected for
    # them, or one register of noise in seven would pass for heating.
    noise = 6.0 + rng.normal(0, 1.0, (400, DAYS))
    assert fit_change_point(noise, te).heating_response.mean() < 0.02
    small = 6.0 + 0.12 * np.maximum(15.0 - te, 0.0) + rng.normal(0, 1.0, (400, DAYS))  # 5 W/K
    assert fit_change_point(small, te).heating_response.all()


def test_insufficient_data_gives_named_status_and_no_numbers():
    rng = np.random.default_rng(3)
    te = _weather(rng)
    q = _buildings(te, np.array([5.0, 5.0, 5.0]), np.array([3.0, 3.0, 3.0]), np.full(3, 16.0))
    q[1, :40] = np.nan  # 40 missing days > 37
    te_summer = te.copy()
    q[2] = 5.0
    fit = fit_change_point(q, np.stack([te, te, np.full(DAYS, 25.0)]))
    assert list(fit.status) == ["ok", "too_many_missing_days", "too_few_heating_days"]
    assert np.isnan(fit.slope[1:]).all()
    assert np.isnan(fit.hlc_w_per_k[1:]).all()
    (w,) = fit.warnings(1)
    assert w.qualified_name == "wattwatch.changepoint.too_many_missing_days"
    assert w.data["n_missing_days"] == 40
    assert fit.warnings(0) == []
    short = fit_change_point(q[:, :120], te_summer[:120])
    assert (short.status == "baseline_too_short").all()
    winter = fit_change_point(q[:1, :120], te[:120], rules=SufficiencyRules(min_days=90))
    assert winter.qualified.all()
    assert_allclose(winter.slope, 3.0)


def test_bootstrap_interval_covers_truth():
    rng = np.random.default_rng(4)
    m = 60
    te = _weather(rng)
    s = np.full(m, 6.0)
    q = _buildings(te, np.full(m, 10.0), s, np.full(m, 16.0)) + rng.normal(0, 3.0, (m, DAYS))
    fit = fit_change_point(q, te)
    ci = bootstrap_hlc(q, te, fit, n_boot=200, level=0.9)
    true_hlc = 6.0 * 1000 / 24
    assert (ci.low < ci.high).all()
    coverage = np.mean((ci.low <= true_hlc) & (true_hlc <= ci.high))
    assert coverage > 0.7
    assert np.median((ci.high - ci.low) / true_hlc) < 0.15


def test_moving_blocks_are_contiguous_weeks():
    idx = moving_block_indices(30, 5, block_days=7, seed=1)
    assert idx.shape == (5, 30)
    assert ((idx >= 0) & (idx < 30)).all()
    assert (np.diff(idx[:, :7], axis=1) == 1).all()
    with pytest.raises(ValueError, match="block_days"):
        moving_block_indices(5, 2, block_days=7)


def test_slope_change_after_retrofit():
    rng = np.random.default_rng(5)
    te1, te2 = _weather(rng), _weather(rng)
    s_after = np.array([6.0, 4.2])  # unchanged, and −30 %
    q1 = _buildings(te1, np.full(2, 8.0), np.full(2, 6.0), np.full(2, 16.0))
    q2 = _buildings(te2, np.full(2, 8.0), s_after, np.full(2, 16.0))
    q1 = q1 + rng.normal(0, 1.0, q1.shape)
    q2 = q2 + rng.normal(0, 1.0, q2.shape)
    res = slope_change(q1, te1, q2, te2)
    assert_allclose(res.relative_change, [0.0, -0.3], atol=0.03)
    assert res.p_value[0] > 0.01
    assert res.p_value[1] < 1e-6


def test_heat_pump_cop_weights_recover_hlc():
    rng = np.random.default_rng(5)
    te = _weather(rng)
    hlc = np.array([120.0, 250.0])
    cop = np.array([3.5, 4.0])  # seasonal COP, as registered
    weight = heat_pump_day_weight(te, cop)
    assert weight.shape == (2, DAYS)
    assert (weight[:, te < 0] > 1).all() and (weight[:, te > 12] < 1).all()
    heat = hlc[:, None] * 24 / 1000 * np.maximum(15.0 - te, 0.0)  # kWh of heat per day
    q = 6.0 + heat / cop[:, None] * weight + rng.normal(0, 0.2, (2, DAYS))  # electricity
    fit = fit_change_point(q, te, efficiency=cop, day_weight=weight)
    assert_allclose(fit.hlc_w_per_k, hlc, rtol=0.03)
    assert_allclose(fit.balance_point, 15.0, atol=0.5)
    naive = fit_change_point(q, te, efficiency=cop)
    assert (naive.hlc_w_per_k > 1.1 * hlc).all()  # cold days look like a steeper slope
    ci = bootstrap_hlc(q, te, fit, n_boot=50, efficiency=cop, day_weight=weight)
    assert ((ci.low <= hlc) & (hlc <= ci.high)).all()


def test_low_balance_point_is_not_pinned_to_the_grid_edge():
    rng = np.random.default_rng(6)
    te = _weather(rng)
    q = _buildings(te, np.array([10.0]), np.array([2.0]), np.array([6.0]))
    q += rng.normal(0, 0.1, q.shape)
    fit = fit_change_point(q, te)
    assert_allclose(fit.balance_point, 6.0, atol=0.5)
    assert_allclose(fit.slope, 2.0, rtol=0.05)


def test_balance_point_for_a_given_slope():
    rng = np.random.default_rng(18)
    te = rng.uniform(-5.0, 25.0, 365)
    tb = np.array([12.0, 15.5, 18.0])
    q = 4.0 + 2.5 * np.maximum(tb[:, None] - te[None, :], 0.0)
    found_tb, base = fit_balance_point(q, te, np.full(3, 2.5))
    assert_allclose(found_tb, tb)
    assert_allclose(base, 4.0, atol=1e-9)
    assert np.isnan(fit_balance_point(q, te, np.array([2.5, np.nan, 2.5]))[0][1])
