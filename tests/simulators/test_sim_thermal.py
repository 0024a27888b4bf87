"""2R2C physics: steady state, free-float time constant, exact discretisation, energy balance."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.integrate import solve_ivp

from simulators.thermal import (
    continuous_matrices,
    discretise,
    discretise_expm,
    dominant_time_constant_h,
    heat_balance,
    rc_parameters,
    simulate_thermal,
    transpose_copy,
)


@pytest.fixture(scope="module")
def rc():
    rng = np.random.default_rng(5)
    n = 40
    return rc_parameters(
        rng.uniform(40.0, 600.0, n),
        rng.uniform(10.0, 150.0, n),
        vent_fraction=rng.uniform(0.15, 0.4, n),
        ri_fraction=rng.uniform(0.05, 0.15, n),
        ci_fraction=rng.uniform(0.03, 0.08, n),
    )


def _steady_envelope(rc, ti, te):
    gi, ge = 1 / rc.ri_k_per_w, 1 / rc.re_k_per_w
    return (gi * ti + ge * te) / (gi + ge)


def test_steady_state_power_is_hlc_times_delta_t(rc):
    hours = 24 * 30
    te = np.full(hours, -2.0)
    res = simulate_thermal(
        rc,
        outdoor_temp_c=te,
        gains_w=0.0,
        setpoint_c=20.0,
        heating_max_w=rc.hlc_w_per_k * 100,
        envelope_start_c=_steady_envelope(rc, 20.0, -2.0),
    )
    assert_allclose(res.heating_w[:, -1], rc.hlc_w_per_k * 22.0, rtol=0.01)
    assert_allclose(res.indoor_temp_c[:, -1], 20.0, rtol=1e-4)


def test_free_float_decays_with_tau(rc):
    hours = 400
    res = simulate_thermal(
        rc,
        outdoor_temp_c=np.zeros(hours),
        gains_w=0.0,
        setpoint_c=20.0,
        heating_max_w=0.0,
        indoor_start_c=20.0,
        envelope_start_c=_steady_envelope(rc, 20.0, 0.0),
    )
    assert_array_equal(res.heating_w, 0.0)
    tau = dominant_time_constant_h(rc)
    # Fit log(Ti − Te) on hours 10–(2τ), once the fast air mode (≤ 2 h) has died out.
    t = np.arange(hours) + 0.5
    fitted = np.empty(tau.size)
    for i in range(tau.size):  # one least-squares fit per building, in the test only
        window = (t > 10) & (t < 2 * tau[i])
        slope = np.polyfit(t[window], np.log(res.indoor_temp_c[i, window].astype(float)), 1)[0]
        fitted[i] = -1 / slope
    assert_allclose(fitted, tau, rtol=0.02)


def test_closed_form_equals_expm(rc):
    a, b = discretise(rc, 3600.0), discretise_expm(rc, 3600.0)
    for name in ("ad", "bd", "ad_mean", "bd_mean"):
        scale = np.abs(getattr(b, name)).max(axis=(1, 2), keepdims=True)
        assert_allclose(getattr(a, name) / scale, getattr(b, name) / scale, atol=1e-10)


def test_discretisation_matches_fine_ode_solution(rc):
    sub = rc_parameters(
        rc.hlc_w_per_k[:1],
        dominant_time_constant_h(rc)[:1],
        vent_fraction=rc.h_vent_w_per_k[:1] / rc.hlc_w_per_k[:1],
        ri_fraction=(rc.ri_k_per_w / (rc.ri_k_per_w + rc.re_k_per_w))[:1],
        ci_fraction=0.05,
    )
    hours = 48
    rng = np.random.default_rng(2)
    te = rng.uniform(-5, 10, hours)
    gains = rng.uniform(0, 2000, hours)
    setpoint = np.where(np.arange(hours) % 24 < 7, 16.0, 20.0)
    res = simulate_thermal(
        sub,
        outdoor_temp_c=te,
        gains_w=gains[None, :],
        setpoint_c=setpoint,
        heating_max_w=sub.hlc_w_per_k * 30,
    )
    a, bm = continuous_matrices(sub)
    u_air = gains + res.heating_w[0].astype(float)
    x = np.array([res.indoor_start_c[0], res.envelope_start_c[0]])
    for k in range(hours):  # the reference: an adaptive ODE solve, hour by hour
        u = np.array([te[k], u_air[k]])
        sol = solve_ivp(
            lambda _t, y, u=u: a[0] @ y + bm[0] @ u,
            (0, 3600),
            x,
            rtol=1e-10,
            atol=1e-10,
            dense_output=True,
        )
        mean_ti = sol.sol(np.linspace(0, 3600, 721))[0].mean()
        assert_allclose(res.indoor_temp_c[0, k], mean_ti, atol=2e-3)
        x = sol.y[:, -1]
    assert_allclose(res.indoor_end_c[0], x[0], atol=1e-6)


def test_energy_balance_closes_over_a_year(rc):
    hours = 8760
    rng = np.random.default_rng(9)
    te = 10 + 8 * np.sin(2 * np.pi * np.arange(hours) / 8760) + rng.normal(0, 3, hours)
    gains = rng.uniform(0, 800, (rc.hlc_w_per_k.size, hours)).astype(np.float32)
    hour = np.arange(hours) % 24
    setpoint = np.where((hour >= 7) & (hour < 22), 20.0, 17.0)
    res = simulate_thermal(
        rc, outdoor_temp_c=te, gains_w=gains, setpoint_c=setpoint, heating_max_w=rc.hlc_w_per_k * 30
    )
    bal = heat_balance(rc, res, outdoor_temp_c=te, gains_w=gains)
    heat_in = bal["heating_j"] + bal["gains_j"]
    assert_allclose(heat_in, bal["losses_j"] + bal["storage_j"], rtol=0.005)
    assert_allclose(heat_in, bal["losses_j"] + bal["storage_j"], rtol=1e-5)  # in fact exact
    assert np.all(res.heating_w >= 0)
    assert np.all(res.heating_w <= rc.hlc_w_per_k[:, None] * 30 * (1 + 1e-6))


def test_rejects_bad_parameters():
    with pytest.raises(ValueError, match="hlc_w_per_k"):
        rc_parameters([-1.0], [20.0])
    with pytest.raises(ValueError, match="ci_fraction"):
        rc_parameters([100.0], [20.0], ci_fraction=1.0)
    with pytest.raises(ValueError, match="vent_fraction"):
        rc_parameters([100.0], [20.0], vent_fraction=1.5)


def test_transpose_copy():
    a = np.arange(1300 * 700, dtype=np.float32).reshape(1300, 700)
    t = transpose_copy(a, tile=256)
    assert t.flags.c_contiguous
    assert_array_equal(t, a.T)
