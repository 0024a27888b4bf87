"""1R1C ARX model of indoor temperature, fitted per building by batched normal equations.

``Ti[k+1] = a·Ti[k] + (1 − a)·Te[k] + b·Φh[k] (+ c·I[k])`` gives HLC = (1 − a)/b and τ = −Δt/ln a.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(slots=True, frozen=True)
class ArxFit:
    """Per-building 1R1C parameters (NaN where the fit is not identifiable).

    Attributes
    ----------
    a : ndarray
        Temperature memory per step [-], in (0, 1) for a physical building.
    b : ndarray
        Heating gain [K per step per W].
    c : ndarray
        Solar gain [K per step per (W/m²)]; NaN without irradiance.
    hlc_w_per_k : ndarray
        Heat-loss coefficient ``(1 − a)/b`` [W/K].
    tau_h : ndarray
        Time constant ``−Δt/ln a`` [h].
    rmse_k : ndarray
        One-step-ahead prediction error [K].
    n_steps : ndarray of int64
        Transitions used.
    """

    a: FloatArray
    b: FloatArray
    c: FloatArray
    hlc_w_per_k: FloatArray
    tau_h: FloatArray
    rmse_k: FloatArray
    n_steps: npt.NDArray[np.int64]


def _matrix(x: npt.ArrayLike, name: str, shape: tuple[int, int] | None) -> FloatArray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[np.newaxis, :]
    bad_shape = shape is not None and (a.shape[1] != shape[1] or a.shape[0] not in (1, shape[0]))
    if a.ndim != 2 or bad_shape:
        want = "(buildings, steps)" if shape is None else f"({shape[1]},) or {shape}"
        raise ValueError(f"{name}: expected shape {want}, got {np.shape(x)}")
    return a


def fit_arx(
    ti: npt.ArrayLike,
    te: npt.ArrayLike,
    heating_w: npt.ArrayLike,
    *,
    solar_w_per_m2: npt.ArrayLike | None = None,
    step_h: float = 1.0,
    min_steps: int = 48,
) -> ArxFit:
    """Least-squares 1R1C ARX fit for every building at once.

    Parameters
    ----------
    ti : array_like, shape (buildings, steps)
        Indoor temperature [°C]; NaN when missing.
    te : array_like, shape (steps,) or (buildings, steps)
        Outdoor temperature [°C].
    heating_w : array_like, shape (buildings, steps)
        Mean heating power over each step [W].
    solar_w_per_m2 : array_like, optional, shape (steps,) or (buildings, steps)
        Global horizontal irradiance [W/m²].
    step_h : float
        Step length Δt [h].
    min_steps : int
        Fewest valid transitions for a fit.

    Returns
    -------
    ArxFit

    Notes
    -----
    With ``y = Ti[k+1] − Te[k]`` and ``u = Ti[k] − Te[k]`` the model is linear without
    intercept: ``y = a·u + b·Φh (+ c·I)``. The (buildings, p, p) normal equations are solved
    in one batched ``np.linalg.solve``; singular systems (no heating variation) give NaN.
    A transition is used only when Ti[k], Ti[k+1], Te[k], Φh[k] (and I[k]) are all valid.
    """
    t_in = _matrix(ti, "ti", None)
    m, n = t_in.shape
    t_out = np.broadcast_to(_matrix(te, "te", (m, n)), (m, n))
    phi = np.broadcast_to(_matrix(heating_w, "heating_w", (m, n)), (m, n))
    if step_h <= 0:
        raise ValueError(f"step_h: must be > 0, got {step_h}")
    features = [t_in[:, :-1] - t_out[:, :-1], phi[:, :-1]]
    if solar_w_per_m2 is not None:
        sol = np.broadcast_to(_matrix(solar_w_per_m2, "solar_w_per_m2", (m, n)), (m, n))
        features.append(sol[:, :-1])
    y = t_in[:, 1:] - t_out[:, :-1]
    valid = ~np.isnan(y)
    for f in features:
        valid &= ~np.isnan(f)
    u = [np.where(valid, f, 0.0) for f in features]
    yy = np.where(valid, y, 0.0)
    p = len(u)
    gram = np.empty((m, p, p))
    rhs = np.empty((m, p))
    for i in range(p):  # p <= 3: a handful of pairwise sums, each vectorised over buildings
        rhs[:, i] = np.einsum("mk,mk->m", u[i], yy)
        for j in range(i, p):
            gram[:, i, j] = gram[:, j, i] = np.einsum("mk,mk->m", u[i], u[j])
    count = valid.sum(axis=1).astype(np.int64)
    # Scale to unit diagonal so the batched solve is well conditioned (K against W).
    scale = np.sqrt(np.diagonal(gram, axis1=1, axis2=2)).copy()
    scale[scale == 0] = 1.0
    gram_s = gram / (scale[:, :, np.newaxis] * scale[:, np.newaxis, :])
    usable = (count >= min_steps) & (np.linalg.cond(gram_s) < 1e10)
    gram_s[~usable] = np.eye(p)
    theta = np.linalg.solve(gram_s, (rhs / scale)[:, :, np.newaxis])[:, :, 0] / scale
    theta[~usable] = np.nan
    resid = yy.copy()
    for i in range(p):
        resid -= theta[:, i : i + 1] * u[i]
    with np.errstate(invalid="ignore", divide="ignore"):
        rmse = np.sqrt(np.where(valid, resid * resid, 0.0).sum(axis=1) / count)
        a, b = theta[:, 0], theta[:, 1]
        hlc = (1.0 - a) / b
        tau = np.where((a > 0) & (a < 1), -step_h / np.log(a), np.nan)
    c = theta[:, 2] if p == 3 else np.full(m, np.nan)
    return ArxFit(a=a, b=b, c=c, hlc_w_per_k=hlc, tau_h=tau, rmse_k=rmse, n_steps=count)


def hlc_disagreement(
    hlc_arx: npt.ArrayLike, hlc_change_point: npt.ArrayLike, *, tolerance: float = 0.25
) -> BoolArray:
    """Buildings whose ARX and change-point HLC differ by more than ``tolerance`` [-].

    The difference is relative to the change-point HLC; NaN on either side is not flagged.
    """
    x = np.asarray(hlc_arx, dtype=np.float64)
    y = np.asarray(hlc_change_point, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        flagged: BoolArray = np.abs(x - y) > tolerance * np.abs(y)
    return flagged
