"""Three-parameter heating change-point model Q = b + s·(Tb − Te)⁺ for all buildings at once.

Grid search over the balance point with closed-form least squares, CalTRACK-style data
sufficiency, heat-loss coefficient, moving-block bootstrap interval and a slope-change test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import special

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# Down to 0 °C: well-insulated homes and offices with large internal gains balance well below
# 10 °C, and a grid stopping there pins them to its edge with a slope too low.
DEFAULT_TB_GRID: Final = np.arange(0.0, 20.0 + 1e-9, 0.5)
N_PARAMS: Final = 3  # b, s and Tb, as ASHRAE Guideline 14 counts them
HOURS_PER_DAY: Final = 24.0

OK: Final = "ok"
TOO_SHORT: Final = "baseline_too_short"
TOO_MANY_MISSING: Final = "too_many_missing_days"
TOO_FEW_HEATING: Final = "too_few_heating_days"
# CalTRACK keeps a heating term only when its slope is significant (p < 0.1). A register whose
# energy does not rise as it gets colder (a home that hardly heats, a meter that is not the
# heating's) fits s ≈ 0: its energy use is measured, its heat loss is not.
SLOPE_MAX_P: Final = 0.1
_QUALIFIED_PREFIX: Final = "wattwatch.changepoint."
# Air-source heat pumps: COP rises ≈ 0.08 per kelvin of outdoor temperature around its
# heating-season value, within [1.5, 6] (the simulator's model, close to EN 14825 ratings
# of common air-to-water units at a 35 °C flow).
HEAT_PUMP_COP_SLOPE_PER_K: Final = 0.08
HEAT_PUMP_COP_RANGE: Final = (1.5, 6.0)
# Mean of Lille-Lesquin's October–April monthly normals, where a seasonal COP is rated [°C].
LILLE_HEATING_SEASON_MEAN_C: Final = 7.2


@dataclass(slots=True, frozen=True)
class DataWarning:
    """Structured warning an API or dashboard can show (eemeter style)."""

    qualified_name: str
    description: str
    data: dict[str, float | int | str] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class SufficiencyRules:
    """Data-sufficiency rules applied before a building gets numbers (CalTRACK defaults).

    Attributes
    ----------
    min_days : int
        Length of the baseline period (array width) [days]; 365 ideally. A winter-only
        analysis lowers it explicitly.
    max_missing_days : int
        Most days without both energy and temperature [days].
    min_heating_days : int
        Fewest valid days with non-zero degree-days at the chosen balance point [days].
    """

    min_days: int = 365
    max_missing_days: int = 37
    min_heating_days: int = 10


@dataclass(slots=True, frozen=True)
class ChangePointFit:
    """Per-building results; numbers are NaN where ``status`` is not ``"ok"``.

    Attributes
    ----------
    status : ndarray of str, shape (buildings,)
        ``"ok"`` or the name of the failed sufficiency rule.
    baseload : ndarray
        ``b`` [kWh/d].
    slope : ndarray
        ``s`` [kWh/(K·d)].
    balance_point : ndarray
        ``Tb`` [°C].
    r2, cv_rmse, nmbe : ndarray
        Fit quality (ASHRAE Guideline 14, fractions, n − 3 degrees of freedom) [-]. In-sample
        NMBE of least squares with an intercept is 0 up to rounding.
    n_days : ndarray of int64
        Valid days used [days].
    n_missing_days, n_heating_days : ndarray of int64
        Days missing, and valid days with non-zero degree-days at the chosen (or best
        available) balance point [days].
    hlc_w_per_k : ndarray
        Heat-loss coefficient ``η·s·1000/24`` [W/K].
    slope_p_value : ndarray
        Two-sided p-value of the slope (t test with n − 3 degrees of freedom), times the
        number of balance points tried, at most 1 (1 for a flat register) [-]; see
        :attr:`heating_response`.
    """

    status: npt.NDArray[np.str_]
    baseload: FloatArray
    slope: FloatArray
    balance_point: FloatArray
    r2: FloatArray
    cv_rmse: FloatArray
    nmbe: FloatArray
    n_days: IntArray
    n_missing_days: IntArray
    n_heating_days: IntArray
    hlc_w_per_k: FloatArray
    slope_p_value: FloatArray

    @property
    def qualified(self) -> BoolArray:
        """Buildings that passed every sufficiency rule."""
        ok: BoolArray = self.status == OK
        return ok

    @property
    def heating_response(self) -> BoolArray:
        """Qualified buildings whose energy rises as it gets colder (slope p < ``SLOPE_MAX_P``):
        the others' HLC and balance point cannot be read off their register."""
        with np.errstate(invalid="ignore"):
            heats: BoolArray = self.qualified & (self.slope_p_value < SLOPE_MAX_P)
        return heats

    def warnings(self, building: int, rules: SufficiencyRules | None = None) -> list[DataWarning]:
        """Structured warnings of one building (empty when it qualified)."""
        r = rules if rules is not None else SufficiencyRules()
        status = str(self.status[building])
        data: dict[str, float | int | str] = {
            "n_days": int(self.n_days[building]),
            "n_missing_days": int(self.n_missing_days[building]),
            "n_heating_days": int(self.n_heating_days[building]),
        }
        text = {
            TOO_SHORT: f"Baseline shorter than the {r.min_days} days required.",
            TOO_MANY_MISSING: (
                f"{data['n_missing_days']} days missing; at most {r.max_missing_days} allowed."
            ),
            TOO_FEW_HEATING: (
                f"Only {data['n_heating_days']} days with non-zero heating degree-days at any "
                f"candidate balance point; at least {r.min_heating_days} needed."
            ),
        }
        if status == OK:
            return []
        return [DataWarning(_QUALIFIED_PREFIX + status, text[status], data)]


def heat_pump_day_weight(
    te: npt.ArrayLike,
    seasonal_cop: npt.ArrayLike,
    *,
    season_mean_c: float = LILLE_HEATING_SEASON_MEAN_C,
    slope_per_k: float = HEAT_PUMP_COP_SLOPE_PER_K,
) -> FloatArray:
    """Electricity per unit of heat relative to the seasonal COP, ``COP_season / COP(Te)`` [-].

    Parameters
    ----------
    te : array_like, shape (days,) or (buildings, days)
        Outdoor temperature of each day (or step) [°C].
    seasonal_cop : array_like, shape (buildings,)
        Seasonal COP of each heat pump, as registered [-].
    season_mean_c : float
        Mean outdoor temperature of the heating season the COP is rated at [°C].
    slope_per_k : float
        Change of COP per kelvin of outdoor temperature [1/K].

    Returns
    -------
    ndarray, shape (buildings, days)
        Above 1 on days colder than the season's mean, below 1 on milder ones.

    Notes
    -----
    ``COP(Te) = COP_season + slope·(Te − season_mean)`` clipped to ``HEAT_PUMP_COP_RANGE``.
    With a constant η, a heat pump's electricity is not linear in degree-days: cold days
    cost more per kelvin, and a constant-η fit overstates the slope and so the HLC.
    """
    t = np.asarray(te, dtype=np.float64)
    cop = np.asarray(seasonal_cop, dtype=np.float64).reshape(-1, 1)
    if np.any(cop <= 0):
        raise ValueError("seasonal_cop: must be > 0")
    at_te = np.clip(cop + slope_per_k * (t - season_mean_c), *HEAT_PUMP_COP_RANGE)
    return np.asarray(cop / at_te, dtype=np.float64)


def _inputs(
    q: npt.ArrayLike, te: npt.ArrayLike, q_name: str = "q", te_name: str = "te"
) -> tuple[FloatArray, FloatArray, bool]:
    qq = np.asarray(q, dtype=np.float64)
    if qq.ndim == 1:
        qq = qq[np.newaxis, :]
    if qq.ndim != 2:
        raise ValueError(f"{q_name}: expected shape (buildings, days), got {qq.shape}")
    tt = np.asarray(te, dtype=np.float64)
    if tt.ndim == 1:
        tt = tt[np.newaxis, :]
    if tt.ndim != 2 or tt.shape[1] != qq.shape[1] or tt.shape[0] not in (1, qq.shape[0]):
        raise ValueError(
            f"{te_name}: expected shape ({qq.shape[1]},) or {qq.shape}, got {np.shape(te)}"
        )
    return qq, tt, tt.shape[0] == 1


def _weighted_rows(
    day_weight: npt.ArrayLike | None, shape: tuple[int, int]
) -> tuple[IntArray, FloatArray] | None:
    """Rows whose day weights are not all 1, and those weights (NaN counts as 1)."""
    if day_weight is None:
        return None
    dw = np.asarray(day_weight, dtype=np.float64)
    if dw.ndim == 1:
        dw = dw[np.newaxis, :]
    if dw.ndim != 2 or dw.shape[1] != shape[1] or dw.shape[0] not in (1, shape[0]):
        raise ValueError(f"day_weight: expected shape {shape}, got {np.shape(day_weight)}")
    dw = np.where(np.isnan(dw), 1.0, np.broadcast_to(dw, shape))
    if np.any(dw <= 0):
        raise ValueError("day_weight: must be > 0")
    rows = np.flatnonzero(np.any(dw != 1.0, axis=1))
    return (rows, dw[rows]) if rows.size else None


def _reweight_rows(
    weighted: tuple[IntArray, FloatArray] | None,
    sums: tuple[FloatArray, FloatArray, FloatArray, FloatArray],
    *,
    w: FloatArray,
    yc: FloatArray,
    te: FloatArray,
    grid: FloatArray,
) -> None:
    """Redo the grid sums of the day-weighted rows (per-building path), in place."""
    if weighted is None:
        return
    rows, dw = weighted
    t_w = np.broadcast_to(te, w.shape)[rows]
    new = _grid_sums(w[rows] * dw, yc[rows], t_w, False, grid, count_w=w[rows])
    for old, fresh in zip(sums, new, strict=True):
        old[rows] = fresh


def _centred(
    qq: FloatArray, tt: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Validity weights of the days, their count, the mean energy and the centred energy
    (0 on invalid days), per building."""
    valid = ~np.isnan(qq) & ~np.isnan(tt)
    w = valid.astype(np.float64)
    n = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ybar = np.where(valid, qq, 0.0).sum(axis=1) / n
    yc = np.where(valid, qq - ybar[:, np.newaxis], 0.0)
    return w, n, ybar, yc


def _grid_sums(
    w: FloatArray,
    yc: FloatArray,
    te: FloatArray,
    shared: bool,
    grid: FloatArray,
    *,
    count_w: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Σx, Σx², Σx·yc and the count of heating days per (building, candidate).

    ``x = (Tb − Te)⁺·w``: ``w`` is the validity of each day (0/1), times a day weight if
    any; heating days are counted where ``count_w`` (default ``w``) is non-zero.
    """
    if shared:
        # One temperature series: every sum is a (buildings × days) @ (days × candidates).
        x = np.maximum(grid[:, np.newaxis] - np.nan_to_num(te[0])[np.newaxis, :], 0.0)
        return w @ x.T, w @ (x * x).T, yc @ x.T, w @ (x > 0).T.astype(np.float64)
    m, g = w.shape[0], grid.size
    sx, sxx, sxy, nh = (np.empty((m, g)) for _ in range(4))
    te0 = np.nan_to_num(te)
    cw = w if count_w is None else count_w
    for k, tb in enumerate(grid):  # a handful of candidates, each vectorised over buildings
        x = np.maximum(tb - te0, 0.0)
        nh[:, k] = np.count_nonzero(x * cw, axis=1)
        x *= w
        sx[:, k] = x.sum(axis=1)
        sxy[:, k] = np.einsum("ij,ij->i", x, yc)
        sxx[:, k] = np.einsum("ij,ij->i", x, x)
    return sx, sxx, sxy, nh


def fit_change_point(
    q: npt.ArrayLike,
    te: npt.ArrayLike,
    *,
    tb_grid: npt.ArrayLike = DEFAULT_TB_GRID,
    efficiency: npt.ArrayLike = 1.0,
    rules: SufficiencyRules | None = None,
    day_weight: npt.ArrayLike | None = None,
) -> ChangePointFit:
    """Fit ``Q = b + s·(Tb − Te)⁺·w`` (s ≥ 0) to every building by grid search over ``Tb``.

    Parameters
    ----------
    q : array_like, shape (buildings, days)
        Daily heating (or total) energy [kWh/d]; NaN for missing days.
    te : array_like, shape (days,) or (buildings, days)
        Daily mean outdoor temperature [°C], shared (fast path) or one per building.
    tb_grid : array_like
        Candidate balance points [°C] (default 0–20 °C every 0.5 K).
    efficiency : array_like
        η per building or scalar: boiler efficiency, heat-pump COP, 1 for a heat meter [-].
    rules : SufficiencyRules, optional
    day_weight : array_like, optional, shape (buildings, days)
        Register energy per unit of heat on each day relative to ``efficiency`` [-], e.g.
        :func:`heat_pump_day_weight` (a heat pump draws more per kWh of heat on cold days);
        1 (the default) for a constant efficiency. Rows that are all 1 take the fast path.

    Returns
    -------
    ChangePointFit

    Notes
    -----
    For each candidate the least-squares ``s`` is ``Σ x·yc / (Σx² − (Σx)²/n)`` on centred
    energy ``yc``; a negative slope is replaced by the constrained optimum ``s = 0`` (mean
    model), whose SSE is ``Σyc²``. The candidate with the least SSE wins (ties: the lowest
    ``Tb``). Candidates with fewer than ``rules.min_heating_days`` heating days are not eligible.
    """
    r = rules if rules is not None else SufficiencyRules()
    qq, tt, shared = _inputs(q, te)
    grid = np.asarray(tb_grid, dtype=np.float64).reshape(-1)
    if grid.size == 0:
        raise ValueError("tb_grid: needs at least one candidate balance point")
    m, d = qq.shape
    w, n, ybar, yc = _centred(qq, tt)
    syy = np.einsum("ij,ij->i", yc, yc)

    sx, sxx, sxy, n_heat = _grid_sums(w, yc, tt, shared, grid)
    _reweight_rows(
        _weighted_rows(day_weight, qq.shape), (sx, sxx, sxy, n_heat), w=w, yc=yc, te=tt, grid=grid
    )
    nn = n[:, np.newaxis]
    with np.errstate(invalid="ignore", divide="ignore"):
        vxx = sxx - sx * sx / nn
        slope = np.where(vxx > 1e-12 * np.maximum(sxx, 1.0), sxy / vxx, 0.0)
    slope = np.maximum(np.nan_to_num(slope), 0.0)
    sse = np.maximum(syy[:, np.newaxis] - slope * sxy, 0.0)
    eligible = n_heat >= r.min_heating_days
    sse = np.where(eligible, sse, np.inf)
    best = np.argmin(sse, axis=1)
    rows = np.arange(m)
    s = slope[rows, best]
    with np.errstate(invalid="ignore", divide="ignore"):
        b = ybar - s * sx[rows, best] / n
    sse_best = sse[rows, best]
    heating_days = np.where(
        eligible.any(axis=1), n_heat[rows, best], n_heat.max(axis=1, initial=0)
    ).astype(np.int64)

    status = np.full(m, OK, dtype="<U32")
    n_missing = (d - n).astype(np.int64)
    status[~eligible.any(axis=1)] = TOO_FEW_HEATING
    status[n_missing > r.max_missing_days] = TOO_MANY_MISSING
    if d < r.min_days:
        status[:] = TOO_SHORT
    ok = status == OK

    dof = n - N_PARAMS
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = 1.0 - sse_best / syy
        cv = np.sqrt(sse_best / dof) / ybar
        bias = -n * (b - ybar) - s * sx[rows, best]  # Σ(y − ŷ) on centred data
        nmbe = bias / (dof * ybar)
        se = np.sqrt(sse_best / dof / vxx[rows, best])  # the slope's standard error
        t = np.where(s > 0, s / se, 0.0)  # a flat register (s = se = 0): no evidence
    # Bonferroni over the balance points tried: the grid search keeps the one that fits best,
    # and on a register of noise alone the best of 41 passes p < 0.1 one time in seven.
    p_slope = np.minimum(2.0 * special.stdtr(np.maximum(dof, 1), -np.abs(t)) * grid.size, 1.0)
    eta = np.broadcast_to(np.asarray(efficiency, dtype=np.float64), (m,))
    hlc = eta * s * 1000.0 / HOURS_PER_DAY

    def masked(v: FloatArray) -> FloatArray:
        return np.where(ok, v, np.nan)

    return ChangePointFit(
        status=status,
        baseload=masked(b),
        slope=masked(s),
        balance_point=masked(grid[best]),
        r2=masked(r2),
        cv_rmse=masked(cv),
        nmbe=masked(nmbe),
        n_days=n.astype(np.int64),
        n_missing_days=n_missing,
        n_heating_days=heating_days,
        hlc_w_per_k=masked(hlc),
        slope_p_value=masked(p_slope),
    )


def fit_balance_point(
    q: npt.ArrayLike,
    te: npt.ArrayLike,
    slope: npt.ArrayLike,
    *,
    tb_grid: npt.ArrayLike = DEFAULT_TB_GRID,
    min_heating_days: int = 10,
    day_weight: npt.ArrayLike | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Balance point and baseload of ``Q = b + s·(Tb − Te)⁺`` with the slope ``s`` given.

    For a slope estimated elsewhere (e.g. on dim days): per candidate ``Tb`` the
    least-squares baseload is the mean residual and the SSE is
    ``Σyc² − 2s·Σx·yc + s²·(Σx² − (Σx)²/n)``, from the same sums as
    :func:`fit_change_point`. Returns ``(balance_point, baseload)``, shape (buildings,);
    NaN where the slope is NaN or no candidate has ``min_heating_days``.
    """
    qq, tt, shared = _inputs(q, te)
    grid = np.asarray(tb_grid, dtype=np.float64).reshape(-1)
    s = np.asarray(slope, dtype=np.float64).reshape(-1, 1)
    w, n, ybar, yc = _centred(qq, tt)
    sx, sxx, sxy, n_heat = _grid_sums(w, yc, tt, shared, grid)
    _reweight_rows(
        _weighted_rows(day_weight, qq.shape), (sx, sxx, sxy, n_heat), w=w, yc=yc, te=tt, grid=grid
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        crit = s * s * (sxx - sx * sx / n[:, np.newaxis]) - 2.0 * s * sxy
    crit = np.where((n_heat >= min_heating_days) & np.isfinite(crit), crit, np.inf)
    best = np.argmin(crit, axis=1)
    rows = np.arange(qq.shape[0])
    found = np.isfinite(crit[rows, best])
    with np.errstate(invalid="ignore", divide="ignore"):
        b = ybar - s[:, 0] * sx[rows, best] / n
    return np.where(found, grid[best], np.nan), np.where(found, b, np.nan)


def moving_block_indices(
    n_days: int, n_boot: int, *, block_days: int = 7, seed: int | None = 0
) -> IntArray:
    """Day indexes of ``n_boot`` moving-block bootstrap replicates, shape (n_boot, n_days).

    Blocks of ``block_days`` consecutive days start at any day; enough blocks are drawn to
    cover ``n_days`` and the concatenation is truncated. One index array serves every building.
    """
    if n_days < block_days:
        raise ValueError(f"block_days: {block_days} exceeds the {n_days} days available")
    rng = np.random.default_rng(seed)
    n_blocks = -(-n_days // block_days)
    starts = rng.integers(0, n_days - block_days + 1, size=(n_boot, n_blocks))
    idx = starts[:, :, np.newaxis] + np.arange(block_days)
    return idx.reshape(n_boot, -1)[:, :n_days].astype(np.int64)


@dataclass(slots=True, frozen=True)
class HlcInterval:
    """Bootstrap interval of the heat-loss coefficient [W/K] (NaN where not qualified)."""

    low: FloatArray
    high: FloatArray
    level: float


def bootstrap_hlc(
    q: npt.ArrayLike,
    te: npt.ArrayLike,
    fit: ChangePointFit,
    *,
    n_boot: int = 200,
    block_days: int = 7,
    level: float = 0.9,
    efficiency: npt.ArrayLike = 1.0,
    seed: int | None = 0,
    day_weight: npt.ArrayLike | None = None,
) -> HlcInterval:
    """Moving-block bootstrap interval of HLC, all buildings at once.

    Parameters
    ----------
    q, te : array_like
        As given to :func:`fit_change_point`.
    fit : ChangePointFit
        Supplies each building's balance point, held fixed in the replicates.
    n_boot : int
        Replicates.
    block_days : int
        Block length [days]; a week keeps weekday/weekend structure and weather spells.
    level : float
        Two-sided coverage of the percentile interval [0–1].
    efficiency : array_like
        η as in the fit [-].
    seed : int, optional
        Seed of the resampling (reproducible by default).
    day_weight : array_like, optional
        As given to :func:`fit_change_point`.

    Returns
    -------
    HlcInterval

    Notes
    -----
    Resampling with replacement is a weighting of days by their multiplicity, so every
    least-squares sum of every replicate is one ``(buildings × days) @ (days × n_boot)``
    product. The balance point is held at its estimate (conditional interval): the grid
    search per replicate would multiply the cost by the grid size for a small widening.
    """
    qq, tt, _ = _inputs(q, te)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level: must be in (0, 1), got {level}")
    m, d = qq.shape
    idx = moving_block_indices(d, n_boot, block_days=block_days, seed=seed)
    counts = np.zeros((n_boot, d))
    np.add.at(counts, (np.repeat(np.arange(n_boot), d), idx.ravel()), 1.0)
    valid = ~np.isnan(qq) & ~np.isnan(tt)
    w = valid.astype(np.float64)
    tb = np.nan_to_num(fit.balance_point)[:, np.newaxis]
    x = np.where(valid, np.maximum(tb - np.nan_to_num(tt), 0.0), 0.0)
    weighted = _weighted_rows(day_weight, qq.shape)
    if weighted is not None:
        x[weighted[0]] *= weighted[1]
    y = np.where(valid, qq, 0.0)
    ct = counts.T
    sw, sx, sy = w @ ct, x @ ct, y @ ct
    sxx, sxy = (x * x) @ ct, (x * y) @ ct
    with np.errstate(invalid="ignore", divide="ignore"):
        s = (sw * sxy - sx * sy) / (sw * sxx - sx * sx)
    s = np.maximum(s, 0.0)  # NaN (degenerate replicate) stays NaN and is ignored below
    eta = np.broadcast_to(np.asarray(efficiency, dtype=np.float64), (m,))[:, np.newaxis]
    hlc = eta * s * 1000.0 / HOURS_PER_DAY
    tail = (1.0 - level) / 2.0
    # Sorting puts NaN last; percentiles over the finite replicates of each building.
    srt = np.sort(hlc, axis=1)
    finite = np.isfinite(srt).sum(axis=1)
    lo_i = np.clip(np.floor(tail * (finite - 1)).astype(np.int64), 0, n_boot - 1)
    hi_i = np.clip(np.ceil((1.0 - tail) * (finite - 1)).astype(np.int64), 0, n_boot - 1)
    rows = np.arange(m)
    usable = fit.qualified & (finite >= 2)
    low = np.where(usable, srt[rows, lo_i], np.nan)
    high = np.where(usable, srt[rows, hi_i], np.nan)
    return HlcInterval(low=low, high=high, level=level)


@dataclass(slots=True, frozen=True)
class SlopeChange:
    """Change of heating slope between two periods at a common balance point.

    Attributes
    ----------
    slope_before, slope_after : ndarray
        [kWh/(K·d)].
    change : ndarray
        ``slope_after − slope_before`` [kWh/(K·d)].
    relative_change : ndarray
        ``change / slope_before`` [-] (−0.3: 30 % less heat loss, e.g. after a retrofit).
    z : ndarray
        ``change`` over its standard error [-].
    p_value : ndarray
        Two-sided p-value of "no change" under a normal approximation [-].
    """

    slope_before: FloatArray
    slope_after: FloatArray
    change: FloatArray
    relative_change: FloatArray
    z: FloatArray
    p_value: FloatArray


def _fixed_tb_ols(q: FloatArray, te: FloatArray, tb: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Slope and its standard error of ``Q = b + s·(tb − Te)⁺`` per building at fixed ``tb``."""
    valid = ~np.isnan(q) & ~np.isnan(te)
    n = valid.sum(axis=1).astype(np.float64)
    x = np.where(valid, np.maximum(tb[:, np.newaxis] - np.nan_to_num(te), 0.0), 0.0)
    y = np.where(valid, q, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        xm = x.sum(axis=1) / n
        ym = y.sum(axis=1) / n
        xc = np.where(valid, x - xm[:, np.newaxis], 0.0)
        yc = np.where(valid, y - ym[:, np.newaxis], 0.0)
        vxx = np.einsum("ij,ij->i", xc, xc)
        s = np.einsum("ij,ij->i", xc, yc) / vxx
        sse = np.einsum("ij,ij->i", yc, yc) - s * s * vxx
        se = np.sqrt(np.maximum(sse, 0.0) / (n - 2) / vxx)
    return s, se


def slope_change(
    q_before: npt.ArrayLike,
    te_before: npt.ArrayLike,
    q_after: npt.ArrayLike,
    te_after: npt.ArrayLike,
    *,
    balance_point: npt.ArrayLike | None = None,
    tb_grid: npt.ArrayLike = DEFAULT_TB_GRID,
) -> SlopeChange:
    """Test whether the heating slope changed between two periods (retrofit or degradation).

    Parameters
    ----------
    q_before, q_after : array_like, shape (buildings, days_before / days_after)
        Daily heating energy [kWh/d].
    te_before, te_after : array_like, shape (days,) or (buildings, days)
        Daily mean outdoor temperature [°C].
    balance_point : array_like, optional, shape (buildings,)
        Common ``Tb`` [°C]; by default the best grid point of both periods pooled.
    tb_grid : array_like
        Candidates for the pooled fit [°C].

    Returns
    -------
    SlopeChange

    Notes
    -----
    Both periods are fitted by OLS at the same ``Tb`` so the slopes are comparable; the
    periods are independent, so ``se(Δs) = √(se₁² + se₂²)``. Serial correlation of daily
    residuals makes the p-value optimistic; treat it as a ranking, not a proof.
    """
    qb, tb_, _ = _inputs(q_before, te_before, "q_before", "te_before")
    qa, ta, _ = _inputs(q_after, te_after, "q_after", "te_after")
    if qa.shape[0] != qb.shape[0]:
        raise ValueError(f"q_after: expected {qb.shape[0]} buildings, got {qa.shape[0]}")
    m = qb.shape[0]
    if balance_point is None:
        pooled = fit_change_point(
            np.concatenate((qb, qa), axis=1),
            np.concatenate((np.broadcast_to(tb_, qb.shape), np.broadcast_to(ta, qa.shape)), axis=1),
            tb_grid=tb_grid,
            rules=SufficiencyRules(min_days=0, max_missing_days=10**9, min_heating_days=3),
        )
        tb = pooled.balance_point
    else:
        tb = np.broadcast_to(np.asarray(balance_point, dtype=np.float64), (m,))
    s1, se1 = _fixed_tb_ols(qb, np.broadcast_to(tb_, qb.shape), tb)
    s2, se2 = _fixed_tb_ols(qa, np.broadcast_to(ta, qa.shape), tb)
    change = s2 - s1
    with np.errstate(invalid="ignore", divide="ignore"):
        z = change / np.sqrt(se1**2 + se2**2)
        rel = change / s1
    p = special.erfc(np.abs(z) / np.sqrt(2.0))
    return SlopeChange(s1, s2, change, rel, z, np.asarray(p, dtype=np.float64))
