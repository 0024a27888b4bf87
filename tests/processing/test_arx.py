"""1R1C ARX recovers a, b (and HLC, τ) from simulated data."""

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal

from processing.arx import fit_arx, hlc_disagreement


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
