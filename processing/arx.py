"""1R1C ARX model of indoor temperature, fitted per building by batched normal equations.

``Ti[k+1] = a·Ti[k] + (1 − a)·Te[k] + b·Φh[k] (+ c·I[k])`` gives HLC = (1 − a)/b and τ = −Δt/ln a.
"""

from __future__ import annotations

import warnings
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


@dataclass(slots=True, frozen=True)
class BalanceFit:
    """Per-building daily energy balance (NaN where not identifiable).

    Attributes
    ----------
    hlc_w_per_k : ndarray
        Heat-loss coefficient [W/K]: heat delivered per kelvin of indoor − outdoor.
    gains_w : ndarray
        Free gains (internal, plus hot-water losses left in the heating input) at zero
        irradiance [W].
    solar_w_per_w_m2 : ndarray
        Heat saved per W/m² of daily mean irradiance [W/(W/m²)]; NaN without irradiance.
    n_days : ndarray of int64
        Heating days used (before robust down-weighting).
    """

    hlc_w_per_k: FloatArray
    gains_w: FloatArray
    solar_w_per_w_m2: FloatArray
    n_days: npt.NDArray[np.int64]


def _daily_means(v: FloatArray, steps_per_day: int, min_valid: int) -> FloatArray:
    """Mean over each whole day of steps; NaN for days with fewer than ``min_valid`` values."""
    m, n = v.shape
    days = n // steps_per_day
    d = v[:, : days * steps_per_day].reshape(m, days, steps_per_day)
    ok = ~np.isnan(d)
    count = ok.sum(axis=2)
    total = np.where(ok, d, 0.0).sum(axis=2)
    mean: FloatArray = np.divide(
        total, count, out=np.full(total.shape, np.nan), where=count >= min_valid
    )
    return mean


def fit_daily_balance(
    ti: npt.ArrayLike,
    te: npt.ArrayLike,
    heating_w: npt.ArrayLike,
    *,
    solar_w_per_m2: npt.ArrayLike | None = None,
    steps_per_day: int = 24,
    max_outdoor_c: npt.ArrayLike = 12.0,
    min_days: int = 20,
    robust_c: float = 4.685,
    iterations: int = 10,
) -> BalanceFit:
    """Daily energy balance ``Φh = HLC·(Ti − Te) − G − c·I`` on heating days, every building.

    Parameters
    ----------
    ti : array_like, shape (buildings, steps)
        Indoor temperature [°C]; NaN when missing.
    te : array_like, shape (steps,) or (buildings, steps)
        Outdoor temperature [°C].
    heating_w : array_like, shape (buildings, steps)
        Heat delivered by the heating system, mean over each step [W].
    solar_w_per_m2 : array_like, optional, shape (steps,) or (buildings, steps)
        Global horizontal irradiance [W/m²].
    steps_per_day : int
        Steps per day; step 0 starts a day.
    max_outdoor_c : array_like
        Only days with a daily mean outdoor temperature below this are used, scalar or per
        building [°C] (e.g. the change-point balance point): on milder days the heating is
        off part of the time and the balance is not linear.
    min_days : int
        Fewest usable heating days for a fit.
    robust_c : float
        Tukey bisquare tuning constant, in robust σ of the residuals [-].
    iterations : int
        Reweighting iterations (0: ordinary least squares).

    Returns
    -------
    BalanceFit

    Notes
    -----
    An hourly 1R1C fit of a building with a light air node and a heavy envelope mostly sees
    the fast air node and underestimates HLC (by 20–40 % on the simulated city). Daily
    means average the fast dynamics out; the envelope's storage left over is uncorrelated
    noise over a season. Internal gains enter as the intercept and solar gains through the
    irradiance. Days where a sensor is stuck, drifting or offset, or the heat input carries
    an unusual draw, are outliers of the balance: iteratively reweighted least squares with
    Tukey's bisquare gives them no weight. The (buildings, p, p) normal equations of every
    iteration are solved in one batched call.
    """
    t_in = _matrix(ti, "ti", None)
    m, n = t_in.shape
    if steps_per_day < 1 or n < steps_per_day:
        raise ValueError(f"steps_per_day: need 1 <= steps_per_day <= {n}, got {steps_per_day}")
    min_valid = max(1, (5 * steps_per_day) // 6)
    t_out = _matrix(te, "te", (m, n))
    phi = _matrix(heating_w, "heating_w", (m, n))
    ti_d = _daily_means(t_in, steps_per_day, min_valid)
    te_d = np.broadcast_to(_daily_means(t_out, steps_per_day, min_valid), ti_d.shape)
    phi_d = _daily_means(np.broadcast_to(phi, (m, n)), steps_per_day, min_valid)
    cold = np.broadcast_to(np.asarray(max_outdoor_c, dtype=np.float64).reshape(-1, 1), (m, 1))
    features = [ti_d - te_d, np.ones_like(ti_d)]
    if solar_w_per_m2 is not None:
        sol = _matrix(solar_w_per_m2, "solar_w_per_m2", (m, n))
        features.append(np.broadcast_to(_daily_means(sol, steps_per_day, min_valid), ti_d.shape))
    with np.errstate(invalid="ignore"):
        valid = ~np.isnan(phi_d) & (te_d < cold)
    for f in features:
        valid &= ~np.isnan(f)
    x = np.stack([np.where(valid, f, 0.0) for f in features], axis=-1)  # (m, days, p)
    y = np.where(valid, phi_d, 0.0)
    p = x.shape[-1]
    count = valid.sum(axis=1).astype(np.int64)
    usable = count >= min_days
    weight = valid.astype(np.float64)
    theta = np.full((m, p), np.nan)
    for it in range(iterations + 1):
        xw = x * weight[:, :, np.newaxis]
        gram = np.einsum("mdi,mdj->mij", xw, x)
        rhs = np.einsum("mdi,md->mi", xw, y)
        scale = np.sqrt(np.diagonal(gram, axis1=1, axis2=2)).copy()
        scale[scale == 0] = 1.0
        gram_s = gram / (scale[:, :, np.newaxis] * scale[:, np.newaxis, :])
        ok = usable & (np.linalg.cond(gram_s) < 1e10)
        gram_s[~ok] = np.eye(p)
        theta = np.linalg.solve(gram_s, (rhs / scale)[:, :, np.newaxis])[:, :, 0] / scale
        theta[~ok] = np.nan
        if it == iterations:
            break
        resid = np.where(valid, y - np.einsum("mdi,mi->md", x, np.nan_to_num(theta)), np.nan)
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows of unusable buildings
            med = np.nanmedian(resid, axis=1, keepdims=True)
            sigma = 1.4826 * np.nanmedian(np.abs(resid - med), axis=1, keepdims=True)
            u = resid / (robust_c * np.where(sigma > 0, sigma, np.inf))
        weight = np.where(valid & (np.abs(u) < 1.0), (1.0 - u * u) ** 2, 0.0)
    solar = -theta[:, 2] if p == 3 else np.full(m, np.nan)
    return BalanceFit(
        hlc_w_per_k=theta[:, 0], gains_w=-theta[:, 1], solar_w_per_w_m2=solar, n_days=count
    )
