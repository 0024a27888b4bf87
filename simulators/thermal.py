"""2R2C building thermal model, discretised exactly for a fixed step, run for all buildings at once.

Nodes: indoor air (Ci) and envelope mass (Ce); Ri air↔envelope, Re envelope↔outside, plus a
direct air↔outside ventilation/infiltration conductance H_vent, so HLC = 1/(Ri + Re) + H_vent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.linalg import expm

FloatArray = npt.NDArray[np.float64]
_IJ = ((0, 0), (0, 1), (1, 0), (1, 1))
Float32Array = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class RCParameters:
    """2R2C parameters of n buildings; every array has shape (n,).

    Attributes
    ----------
    ri_k_per_w : Resistance indoor air ↔ envelope node [K/W].
    re_k_per_w : Resistance envelope node ↔ outdoor air [K/W].
    h_vent_w_per_k : Ventilation and infiltration conductance, air ↔ outdoor [W/K].
    ci_j_per_k : Heat capacity of the air node (air, furniture, light partitions) [J/K].
    ce_j_per_k : Heat capacity of the envelope node [J/K].
    """

    ri_k_per_w: FloatArray
    re_k_per_w: FloatArray
    h_vent_w_per_k: FloatArray
    ci_j_per_k: FloatArray
    ce_j_per_k: FloatArray

    @property
    def hlc_w_per_k(self) -> FloatArray:
        """Heat-loss coefficient, the steady-state loss per kelvin indoor − outdoor [W/K]."""
        return np.asarray(1.0 / (self.ri_k_per_w + self.re_k_per_w) + self.h_vent_w_per_k)


def _positive(name: str, value: npt.ArrayLike) -> FloatArray:
    arr = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name}: must be finite and positive")
    return arr


def rc_parameters(
    hlc_w_per_k: npt.ArrayLike,
    tau_h: npt.ArrayLike,
    *,
    vent_fraction: npt.ArrayLike = 0.25,
    ri_fraction: npt.ArrayLike = 0.1,
    ci_fraction: npt.ArrayLike = 0.05,
) -> RCParameters:
    """2R2C parameters with a given heat-loss coefficient and dominant time constant.

    Parameters
    ----------
    hlc_w_per_k : array_like
        Heat-loss coefficient [W/K].
    tau_h : array_like
        Dominant (slow) time constant of the free-floating building [h].
    vent_fraction : array_like
        Share of HLC through ventilation and infiltration, in (0, 1) [-].
    ri_fraction : array_like
        Ri / (Ri + Re), in (0, 1) [-].
    ci_fraction : array_like
        Ci / (τ · HLC), the air node's share of the "capacity" [-]; small (≤ 0.2).

    Returns
    -------
    RCParameters

    Notes
    -----
    With conductances gi = 1/Ri, ge = 1/Re, hv = H_vent and s = 1/τ, the slow eigenvalue of
    the free-floating system equals −s exactly when
    Ce = (gi + ge − gi² / (gi + hv − s·Ci)) / s, which is how Ce is chosen.
    """
    hlc = _positive("hlc_w_per_k", hlc_w_per_k)
    tau_s = _positive("tau_h", tau_h) * 3600.0
    fv = np.asarray(vent_fraction, dtype=np.float64)
    fr = np.asarray(ri_fraction, dtype=np.float64)
    fc = np.asarray(ci_fraction, dtype=np.float64)
    for name, frac in (("vent_fraction", fv), ("ri_fraction", fr), ("ci_fraction", fc)):
        if np.any((frac <= 0) | (frac >= 1)):
            raise ValueError(f"{name}: must lie strictly between 0 and 1")
    hv = fv * hlc
    h_env = (1.0 - fv) * hlc
    ri = fr / h_env
    re = (1.0 - fr) / h_env
    ci = fc * tau_s * hlc
    s = 1.0 / tau_s
    gi, ge = 1.0 / ri, 1.0 / re
    denom = gi + hv - s * ci
    ce = (gi + ge - gi * gi / denom) / s
    if np.any(denom <= 0) or np.any(ce <= 0):
        raise ValueError("ci_fraction: too large for the requested tau_h (no positive Ce)")
    rc = RCParameters(
        ri_k_per_w=np.asarray(ri),
        re_k_per_w=np.asarray(re),
        h_vent_w_per_k=np.asarray(hv),
        ci_j_per_k=np.asarray(ci),
        ce_j_per_k=np.asarray(ce),
    )
    lam_slow, lam_fast = eigenvalues(rc)
    if np.any(lam_fast >= lam_slow):
        raise ValueError("ci_fraction: too large, the air node would be the slow mode")
    return rc


def continuous_matrices(rc: RCParameters) -> tuple[FloatArray, FloatArray]:
    """State matrices of dx/dt = A x + B u, x = [Ti, Tm], u = [Te, Φ_air].

    Returns
    -------
    A : ndarray, shape (n, 2, 2) [1/s]
    B : ndarray, shape (n, 2, 2); column 0 per K of Te [1/s], column 1 per W into air [K/J]
    """
    gi = 1.0 / rc.ri_k_per_w
    ge = 1.0 / rc.re_k_per_w
    hv = rc.h_vent_w_per_k
    ci, ce = rc.ci_j_per_k, rc.ce_j_per_k
    n = gi.shape[0]
    a = np.empty((n, 2, 2))
    a[:, 0, 0] = -(gi + hv) / ci
    a[:, 0, 1] = gi / ci
    a[:, 1, 0] = gi / ce
    a[:, 1, 1] = -(gi + ge) / ce
    b = np.zeros((n, 2, 2))
    b[:, 0, 0] = hv / ci
    b[:, 0, 1] = 1.0 / ci
    b[:, 1, 0] = ge / ce
    return a, b


def eigenvalues(rc: RCParameters) -> tuple[FloatArray, FloatArray]:
    """Slow and fast eigenvalues of the free-floating system (both negative) [1/s]."""
    a, _ = continuous_matrices(rc)
    tr = a[:, 0, 0] + a[:, 1, 1]
    det = a[:, 0, 0] * a[:, 1, 1] - a[:, 0, 1] * a[:, 1, 0]
    root = np.sqrt(np.maximum(tr * tr - 4.0 * det, 0.0))
    return (tr + root) / 2.0, (tr - root) / 2.0


def dominant_time_constant_h(rc: RCParameters) -> FloatArray:
    """Dominant time constant τ = −1/λ_slow of the free-floating building [h]."""
    return np.asarray(-1.0 / eigenvalues(rc)[0] / 3600.0)


@dataclass(frozen=True, slots=True)
class DiscreteModel:
    """Exact zero-order-hold discretisation for one step; arrays have leading shape (n,).

    ``x[k+1] = ad @ x[k] + bd @ u[k]`` and the mean of x over step k is
    ``ad_mean @ x[k] + bd_mean @ u[k]``, with u = [Te, Φ_air] held over the step.
    """

    ad: FloatArray
    bd: FloatArray
    ad_mean: FloatArray
    bd_mean: FloatArray
    dt_s: float


def discretise(rc: RCParameters, dt_s: float = 3600.0) -> DiscreteModel:
    """Discretise the 2R2C model exactly (zero-order hold), in closed form for all buildings.

    Notes
    -----
    Ad = e^{A·dt} by Sylvester's formula for a 2×2 matrix with distinct real eigenvalues
    (A is similar to a symmetric negative-definite matrix, so they are real and negative);
    Φ1 = ∫₀^dt e^{As} ds = A⁻¹(Ad − I), Bd = Φ1·B; the step means use
    ∫₀^dt Φ1(s) ds = A⁻¹(Φ1 − dt·I). ``discretise_expm`` computes the same with
    ``scipy.linalg.expm`` and serves as the reference in the tests.
    """
    if not dt_s > 0:
        raise ValueError(f"dt_s: must be positive, got {dt_s}")
    a, b = continuous_matrices(rc)
    lam1, lam2 = eigenvalues(rc)
    eye = np.eye(2)[None, :, :]
    gap = (lam1 - lam2)[:, None, None]
    e1 = np.exp(lam1 * dt_s)[:, None, None]
    e2 = np.exp(lam2 * dt_s)[:, None, None]
    ad = ((a - lam2[:, None, None] * eye) * e1 - (a - lam1[:, None, None] * eye) * e2) / gap
    phi1 = np.linalg.solve(a, ad - eye)
    phi2 = np.linalg.solve(a, phi1 - dt_s * eye)
    return DiscreteModel(
        ad=ad,
        bd=phi1 @ b,
        ad_mean=np.asarray(phi1 / dt_s, dtype=np.float64),
        bd_mean=np.asarray((phi2 @ b) / dt_s, dtype=np.float64),
        dt_s=float(dt_s),
    )


def discretise_expm(rc: RCParameters, dt_s: float = 3600.0) -> DiscreteModel:
    """Reference discretisation with ``scipy.linalg.expm`` of an augmented system.

    Notes
    -----
    expm of [[A, B, 0], [0, 0, 0], [I, 0, 0]]·dt gives at once the state transition (Ad, Bd)
    and the integral of the state over the step, hence exact step means (inputs held
    constant over the step). scipy loops over the stacked (n, 6, 6) matrices internally,
    which is slow for 10⁴ buildings; ``discretise`` is the vectorised equivalent.
    """
    if not dt_s > 0:
        raise ValueError(f"dt_s: must be positive, got {dt_s}")
    a, b = continuous_matrices(rc)
    n = a.shape[0]
    m = np.zeros((n, 6, 6))
    m[:, 0:2, 0:2] = a
    m[:, 0:2, 2:4] = b
    m[:, 4, 0] = 1.0
    m[:, 5, 1] = 1.0
    e = expm(m * dt_s)
    return DiscreteModel(
        ad=e[:, 0:2, 0:2].copy(),
        bd=e[:, 0:2, 2:4].copy(),
        ad_mean=e[:, 4:6, 0:2] / dt_s,
        bd_mean=e[:, 4:6, 2:4] / dt_s,
        dt_s=float(dt_s),
    )


def transpose_copy(a: npt.NDArray[Any], tile: int = 512) -> npt.NDArray[Any]:
    """C-contiguous copy of ``a.T`` for a 2-D array, tile by tile.

    numpy's plain transposing copy walks one side with a large stride and is ~8× slower on
    arrays of 10⁴ × 8760; square tiles keep both sides in cache.
    """
    src = np.asarray(a)
    if src.ndim != 2:
        raise ValueError(f"a: expected a 2-D array, got shape {src.shape}")
    rows, cols = src.shape
    out = np.empty((cols, rows), dtype=src.dtype)
    for j in range(0, cols, tile):  # O(size / tile²) iterations, each a vectorised block copy
        for i in range(0, rows, tile):
            out[j : j + tile, i : i + tile] = src[i : i + tile, j : j + tile].T
    return out


@dataclass(frozen=True, slots=True)
class ThermalResult:
    """Simulated hourly series of n buildings over T steps.

    Attributes
    ----------
    heating_w : ndarray, (n, T), float32
        Heating power delivered to the air node, constant over each step [W].
    indoor_temp_c : ndarray, (n, T), float32
        Indoor air temperature, mean over each step [°C].
    envelope_temp_c : ndarray, (n, T), float32
        Envelope node temperature, mean over each step [°C].
    indoor_start_c, envelope_start_c : ndarray, (n,)
        Node temperatures at the start of the first step [°C].
    indoor_end_c, envelope_end_c : ndarray, (n,)
        Node temperatures at the end of the last step [°C].
    """

    heating_w: Float32Array
    indoor_temp_c: Float32Array
    envelope_temp_c: Float32Array
    indoor_start_c: FloatArray
    envelope_start_c: FloatArray
    indoor_end_c: FloatArray
    envelope_end_c: FloatArray


def _time_major(name: str, value: npt.ArrayLike, n: int, steps: int) -> npt.NDArray[np.floating]:
    """``value`` as a (steps, n) array whose rows are contiguous or broadcast.

    Inputs are given as (n, T), (T,), (n, 1) or scalars; a full (n, T) array is transposed
    once (tiled) so that each time step reads one contiguous row.
    """
    arr = np.asarray(value)
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if arr.ndim == 1 and arr.shape[0] == steps and steps != n:
        return np.broadcast_to(arr[:, None], (steps, n))
    if arr.shape == (n, steps):
        if arr.T.flags.c_contiguous:
            return arr.T
        return transpose_copy(arr)
    try:
        return np.broadcast_to(arr, (n, steps)).T
    except ValueError:
        raise ValueError(
            f"{name}: shape {arr.shape} does not broadcast to (n, T) = ({n}, {steps})"
        ) from None


def simulate_thermal(
    rc: RCParameters,
    *,
    outdoor_temp_c: npt.ArrayLike,
    gains_w: npt.ArrayLike,
    setpoint_c: npt.ArrayLike,
    heating_max_w: npt.ArrayLike,
    dt_s: float = 3600.0,
    indoor_start_c: npt.ArrayLike | None = None,
    envelope_start_c: npt.ArrayLike | None = None,
) -> ThermalResult:
    """Run the 2R2C model with an ideal heating controller for all buildings at once.

    Parameters
    ----------
    rc : RCParameters
        Parameters of n buildings.
    outdoor_temp_c : array_like, (T,) or (n, T)
        Outdoor air temperature, mean over each step [°C].
    gains_w : array_like, broadcastable to (n, T)
        Free gains into the air node (internal + solar), mean over each step [W].
    setpoint_c : array_like, broadcastable to (n, T)
        Indoor setpoint to reach by the end of each step [°C].
    heating_max_w : array_like, (n,)
        Installed heating power [W].
    dt_s : float
        Step [s].
    indoor_start_c, envelope_start_c : array_like, optional
        Initial node temperatures [°C]; default: the first setpoint for both.

    Returns
    -------
    ThermalResult

    Notes
    -----
    The controller is an ideal (dead-beat) thermostat with saturation: each step it applies
    the constant power that brings the air node exactly to the setpoint at the end of the
    step, clipped to [0, heating_max_w]. With steady inputs this gives exactly HLC·ΔT; after
    a setback the building free-floats (power 0) and the morning recovery saturates. No
    cooling. The loop runs over steps only; each step is a handful of numpy operations over
    all buildings, in float64; outputs are stored as float32 to halve memory.
    """
    n = rc.ri_k_per_w.shape[0]
    te_arr = np.asarray(outdoor_temp_c, dtype=np.float64)
    steps = te_arr.shape[-1] if te_arr.ndim else 0
    if steps < 1:
        raise ValueError("outdoor_temp_c: needs a time axis with at least one step")
    te = _time_major("outdoor_temp_c", te_arr, n, steps)
    gains = _time_major("gains_w", gains_w, n, steps)
    setpoint = _time_major("setpoint_c", setpoint_c, n, steps)
    pmax = np.broadcast_to(np.asarray(heating_max_w, dtype=np.float64), (n,))
    if np.any(pmax < 0):
        raise ValueError("heating_max_w: must be ≥ 0")

    d = discretise(rc, dt_s)
    # Contiguous per-coefficient vectors: strided views of (n, 2, 2) slow every step down.
    a00, a01, a10, a11 = (np.ascontiguousarray(d.ad[:, i, j]) for i, j in _IJ)
    b0t, b0p, b1t, b1p = (np.ascontiguousarray(d.bd[:, i, j]) for i, j in _IJ)
    c00, c01, c10, c11 = (np.ascontiguousarray(d.ad_mean[:, i, j]) for i, j in _IJ)
    e0t, e0p, e1t, e1p = (np.ascontiguousarray(d.bd_mean[:, i, j]) for i, j in _IJ)
    inv_b0p = 1.0 / b0p

    ti = np.array(
        setpoint[0] if indoor_start_c is None else np.asarray(indoor_start_c, np.float64),
        dtype=np.float64,
    ) * np.ones(n)
    tm = np.array(
        ti if envelope_start_c is None else np.asarray(envelope_start_c, np.float64),
        dtype=np.float64,
    ) * np.ones(n)
    ti0, tm0 = ti.copy(), tm.copy()

    heat = np.empty((steps, n), dtype=np.float32)
    ti_mean = np.empty((steps, n), dtype=np.float32)
    tm_mean = np.empty((steps, n), dtype=np.float32)
    zeros = np.zeros(n)
    te_scalar = te_arr.ndim == 1  # one outdoor series: a scalar per step is cheaper
    for k in range(steps):  # time stepping; every line is one op over all buildings
        te_k = te_arr[k] if te_scalar else te[k]
        g_k = gains[k].astype(np.float64)  # mixed float32/64 operands would cast 3 times
        free_i = a00 * ti + a01 * tm + b0t * te_k + b0p * g_k
        free_m = a10 * ti + a11 * tm + b1t * te_k + b1p * g_k
        p = np.clip((setpoint[k] - free_i) * inv_b0p, zeros, pmax)
        q = g_k + p
        ti_mean[k] = c00 * ti + c01 * tm + e0t * te_k + e0p * q
        tm_mean[k] = c10 * ti + c11 * tm + e1t * te_k + e1p * q
        heat[k] = p
        ti = free_i + b0p * p
        tm = free_m + b1p * p
    return ThermalResult(
        heating_w=transpose_copy(heat),
        indoor_temp_c=transpose_copy(ti_mean),
        envelope_temp_c=transpose_copy(tm_mean),
        indoor_start_c=ti0,
        envelope_start_c=tm0,
        indoor_end_c=ti,
        envelope_end_c=tm,
    )


def heat_balance(
    rc: RCParameters,
    result: ThermalResult,
    *,
    outdoor_temp_c: npt.ArrayLike,
    gains_w: npt.ArrayLike,
    dt_s: float = 3600.0,
) -> dict[str, FloatArray]:
    """Energy terms of a run per building [J]: heating, gains, losses and storage change.

    Losses use the exact step means of the node temperatures (linear in the states), so
    ``heating + gains − losses − storage`` is zero up to rounding of the float32 outputs.
    """
    te = np.asarray(outdoor_temp_c, dtype=np.float64)
    ti = result.indoor_temp_c.astype(np.float64)
    tm = result.envelope_temp_c.astype(np.float64)
    g = np.broadcast_to(np.asarray(gains_w, dtype=np.float64), ti.shape)
    loss_w = rc.h_vent_w_per_k[:, None] * (ti - te) + (tm - te) / rc.re_k_per_w[:, None]
    storage = rc.ci_j_per_k * (result.indoor_end_c - result.indoor_start_c) + rc.ce_j_per_k * (
        result.envelope_end_c - result.envelope_start_c
    )
    return {
        "heating_j": result.heating_w.astype(np.float64).sum(axis=1) * dt_s,
        "gains_j": g.sum(axis=1) * dt_s,
        "losses_j": loss_w.sum(axis=1) * dt_s,
        "storage_j": np.asarray(storage),
    }
