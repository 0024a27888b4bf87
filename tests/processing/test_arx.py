"""1R1C ARX recovers a, b (and HLC, τ) from simulated data."""

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal

from processing.arx import fit_arx, fit_daily_balance, hlc_disagreement


def _simulate(rng, m, n, a, b, c=0.0, noise=0.0):
    k = np.arange(n)
    te = 5 + 4 * np.sin(2 * np.pi * k / 24) + rng.normal(0, 1, n)
    sol = np.clip(600 * np.sin(2 * np.pi * (k % 24 - 6) / 24), 0, None)
    phi = rng.uniform(0, 5000, (m, n))
    ti = np.empty((m, n))
    ti[:, 0] = 19.0
    for t in range(n - 1):  # the simulator, not the method under test
        ti[:, t + 1] = a * ti[:, t] + (1 - a) * te[t] + b * phi[:, t] + c * sol[t]
    ti += rng.normal(0, noise, ti.shape)
    return ti, te, phi, sol


def test_exact_recovery():
    rng = np.random.default_rng(0)
    a = np.array([0.95, 0.98, 0.9])
    hlc = np.array([150.0, 80.0, 300.0])  # W/K
    b = (1 - a) / hlc
    ti, te, phi, sol = _simulate(rng, 3, 24 * 30, a, b, c=0.0005)
    fit = fit_arx(ti, te, phi, solar_w_per_m2=sol)
    assert_allclose(fit.a, a, rtol=1e-8)
    assert_allclose(fit.b, b, rtol=1e-8)
    assert_allclose(fit.c, 0.0005, rtol=1e-6)
    assert_allclose(fit.hlc_w_per_k, hlc, rtol=1e-6)
    assert_allclose(fit.tau_h, -1 / np.log(a), rtol=1e-6)


def test_recovery_with_noise_and_gaps():
    rng = np.random.default_rng(1)
    a = np.full(20, 0.96)
    hlc = np.full(20, 120.0)
    ti, te, phi, _ = _simulate(rng, 20, 24 * 60, a, (1 - a) / hlc, noise=0.02)
    ti[:, 100:130] = np.nan
    fit = fit_arx(ti, np.tile(te, (20, 1)), phi)
    assert_allclose(np.median(fit.a), 0.96, rtol=0.01)
    assert_allclose(np.median(fit.hlc_w_per_k), 120.0, rtol=0.1)
    assert (fit.n_steps < 24 * 60 - 1).all()


def test_unidentifiable_gives_nan():
    ti = np.full((1, 100), 20.0)
    fit = fit_arx(ti, np.full(100, 5.0), np.zeros((1, 100)))
    assert np.isnan(fit.hlc_w_per_k).all()


def test_disagreement_flag():
    flags = hlc_disagreement([100.0, 130.0, 74.0, np.nan], [100.0, 100.0, 100.0, 100.0])
    assert_array_equal(flags, [False, True, True, False])


def _daily_balance_city(rng, m=4, days=120):
    """Hourly series whose daily means obey Φ = HLC·(Ti − Te) − G − c·I exactly."""
    hours = np.arange(days * 24)
    te_day = 4 + 6 * np.sin(2 * np.pi * np.arange(days) / 60) + rng.normal(0, 2, days)
    sol_day = np.clip(rng.gamma(2.0, 40.0, days), 0, 400)
    te = np.repeat(te_day, 24) + 3 * np.sin(2 * np.pi * (hours % 24 - 9) / 24)
    shape = np.clip(np.sin(np.pi * (hours % 24 - 6) / 12), 0, None)
    sol = np.repeat(sol_day, 24) * shape / shape.reshape(days, 24).mean(axis=1).repeat(24)
    hlc = rng.uniform(80, 400, m)
    gains = rng.uniform(200, 800, m)
    aperture = rng.uniform(1, 6, m)
    ti_day = 20 + rng.normal(0, 0.3, (m, days))
    ti = np.repeat(ti_day, 24, axis=1) + rng.normal(0, 0.1, (m, days * 24))
    ti_mean = ti.reshape(m, days, 24).mean(axis=2)
    phi_day = hlc[:, None] * (ti_mean - te_day) - gains[:, None] - aperture[:, None] * sol_day
    # Heating follows a day profile; the daily mean is what the balance sees.
    prof = 1 + 0.5 * np.sin(2 * np.pi * (hours % 24 - 3) / 24)
    phi = np.repeat(phi_day, 24, axis=1) * prof / prof[:24].mean()
    return ti, te, phi, sol, hlc, gains, aperture


def test_daily_balance_recovers_hlc_gains_and_solar():
    rng = np.random.default_rng(3)
    ti, te, phi, sol, hlc, gains, aperture = _daily_balance_city(rng)
    fit = fit_daily_balance(ti, te, phi, solar_w_per_m2=sol, max_outdoor_c=30.0, iterations=0)
    assert_allclose(fit.hlc_w_per_k, hlc, rtol=1e-8)
    assert_allclose(fit.gains_w, gains, rtol=1e-6)
    assert_allclose(fit.solar_w_per_w_m2, aperture, rtol=1e-6)
    assert_array_equal(fit.n_days, 120)


def test_daily_balance_ignores_days_of_a_faulty_sensor():
    rng = np.random.default_rng(4)
    ti, te, phi, sol, hlc, _, _ = _daily_balance_city(rng, days=150)
    ti[:, 30 * 24 : 38 * 24] += 4.0  # offset sensor for a week
    ti[:, 60 * 24 : 62 * 24] = 35.0  # stuck high
    robust = fit_daily_balance(ti, te, phi, solar_w_per_m2=sol, max_outdoor_c=30.0)
    assert_allclose(robust.hlc_w_per_k, hlc, rtol=0.02)
    plain = fit_daily_balance(ti, te, phi, solar_w_per_m2=sol, max_outdoor_c=30.0, iterations=0)
    assert np.abs(plain.hlc_w_per_k / hlc - 1).max() > 0.05


def test_daily_balance_needs_heating_days():
    rng = np.random.default_rng(5)
    ti, te, phi, sol, *_ = _daily_balance_city(rng, m=1, days=60)
    fit = fit_daily_balance(ti, te, phi, solar_w_per_m2=sol, max_outdoor_c=-50.0)
    assert np.isnan(fit.hlc_w_per_k).all()
    assert_array_equal(fit.n_days, 0)
