"""Insulation assessment of every building at once: heat loss, label and flags.

The pure array step (``assess_buildings``) is separate from the database wrapper
(``run_insulation``), so the accuracy bench runs the same code on simulated arrays.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Final

import numpy as np
import numpy.typing as npt
import psycopg

from processing import arx, changepoint, normalise
from processing.pipeline import LOCAL_TZ, PipelineConfig, Progress, no_progress
from storage.matrices import (
    BuildingDaily,
    load_building_daily,
    load_hourly_mean,
    load_matrix,
    load_meter_info,
)
from storage.results import Assessment, finite_or_none, write_assessments
from wattwatch.climate import normal_daily_temp_c

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# Conventional hot water of electrically heated buildings [kWh/m²/yr]: their electricity
# baseload mixes it with appliances, so it cannot be read off the change-point fit.
DHW_KWH_PER_M2_YR: Final = {"household": 20.0, "gym": 15.0}
DHW_DEFAULT_KWH_PER_M2_YR: Final = 2.0
# A home that declared its occupants: the DPE method's (3CL 2021) draw of 56 L a day at 40 °C
# per person, heated from 10.5 °C mains water (northern France's yearly mean) [kWh/yr].
DHW_KWH_PER_PERSON_YR: Final = 1.163 * 56.0 * (40.0 - 10.5) * 365.0 / 1000.0
DEFAULT_EFFICIENCY: Final = {"gas": 0.9, "heat": 1.0, "electricity": 1.0}
CARRIER_OF_METER: Final = {"gas": "gas", "heat": "district_heat", "electricity": "electricity"}
ERA_BOUNDS: Final = (1948, 1975, 1990, 2005, 2013)  # French thermal-regulation eras


@dataclass(frozen=True, slots=True)
class ArxInputs:
    """Hourly series of the buildings with an indoor sensor, aligned on the same hours.

    Attributes
    ----------
    rows : ndarray of int64, shape (k,)
        Row of each building in the :class:`~storage.matrices.BuildingDaily` assessed.
    ti_c : ndarray, shape (k, hours)
        Indoor temperature [°C].
    te_c : ndarray, shape (hours,) or (k, hours)
        Outdoor temperature [°C].
    heating_kwh : ndarray, shape (k, hours)
        Energy read by the building's heating meter in each hour, register units (fuel or
        electricity drawn, or heat for a heat meter) [kWh].
    solar_w_per_m2 : ndarray, optional, shape (hours,) or (k, hours)
        Global horizontal irradiance [W/m²]; without it the balance has no solar term and
        overstates HLC (sunny days need less heat at the same indoor − outdoor).
    """

    rows: IntArray
    ti_c: FloatArray
    te_c: FloatArray
    heating_kwh: FloatArray
    solar_w_per_m2: FloatArray | None = None


def _heat_delivered_w(
    inputs: ArxInputs, *, eta: FloatArray, baseload_kwh_d: FloatArray, heat_pump: BoolArray
) -> FloatArray:
    """Heat delivered by the heating system per hour [W] from the register's energy.

    The change-point baseload (hot water, and appliances on an electricity meter) is taken
    off first: it is not space heating, and a heat pump does not multiply it. Heat pumps use
    the COP at each hour's outdoor temperature (:func:`changepoint.heat_pump_day_weight`).
    """
    rows = inputs.rows
    base = np.nan_to_num(baseload_kwh_d[rows])[:, np.newaxis] / 24.0
    heat = (inputs.heating_kwh - base) * (1000.0 * eta[rows])[:, np.newaxis]
    hp = np.flatnonzero(heat_pump[rows])
    if hp.size:
        te = np.broadcast_to(inputs.te_c, inputs.ti_c.shape)[hp]
        heat[hp] /= changepoint.heat_pump_day_weight(te, eta[rows][hp])
    return np.asarray(heat, dtype=np.float64)


def _heat_pump_weights(
    heat_pump: BoolArray, te: FloatArray, cop: FloatArray, shape: tuple[int, int]
) -> FloatArray | None:
    """Day weights of the change-point fit: COP(Te) for heat pumps, 1 for the rest."""
    if not heat_pump.any():
        return None
    weight = np.ones(shape)
    te_hp = np.broadcast_to(te, shape)[heat_pump]
    weight[heat_pump] = changepoint.heat_pump_day_weight(te_hp, cop[heat_pump])
    return weight


def _indoor_sensor_hlc(
    inputs: ArxInputs | None,
    m: int,
    *,
    cfg: PipelineConfig,
    eta: FloatArray,
    baseload_kwh_d: FloatArray,
    heat_pump: BoolArray,
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.str_]]:
    """HLC [W/K] from the daily energy balance, τ [h] from the hourly ARX, and a status."""
    arx_hlc = np.full(m, np.nan)
    arx_tau = np.full(m, np.nan)
    arx_status = np.full(m, "", dtype="<U64")
    if inputs is None or not inputs.rows.size:
        return arx_hlc, arx_tau, arx_status
    rows = inputs.rows
    heat_w = _heat_delivered_w(inputs, eta=eta, baseload_kwh_d=baseload_kwh_d, heat_pump=heat_pump)
    hourly = arx.fit_arx(inputs.ti_c, inputs.te_c, heat_w, step_h=1.0, min_steps=cfg.arx_min_steps)
    balance = arx.fit_daily_balance(
        inputs.ti_c,
        inputs.te_c,
        heat_w,
        solar_w_per_m2=inputs.solar_w_per_m2,
        max_outdoor_c=cfg.balance_max_outdoor_c,
        min_days=cfg.balance_min_days,
    )
    ok = np.isfinite(balance.hlc_w_per_k) & (balance.hlc_w_per_k > 0)
    tau_ok = ok & np.isfinite(hourly.tau_h) & (hourly.hlc_w_per_k > 0)
    arx_hlc[rows] = np.where(ok, balance.hlc_w_per_k, np.nan)
    arx_tau[rows] = np.where(tau_ok, hourly.tau_h, np.nan)
    arx_status[rows] = np.where(
        ok,
        "ok",
        np.where(
            balance.n_days < cfg.balance_min_days,
            f"fewer than {cfg.balance_min_days} heating days with indoor, outdoor and heating data",
            "energy balance not physical (no heating variation or HLC <= 0)",
        ),
    )
    return arx_hlc, arx_tau, arx_status


@dataclass(frozen=True, slots=True)
class InsulationResult:
    """Per-building results of :func:`assess_buildings`; arrays of shape (buildings,).

    Attributes
    ----------
    fit : ChangePointFit
        HLC, balance point (and ``interval``) NaN where the register shows no heating
        response (``fit.heating_response``); the label stands.
    interval : HlcInterval
    efficiency : ndarray — η used for HLC (heat meter 1, boiler efficiency, COP) [-].
    heating_kwh_per_year : ndarray — weather-normalised heating, final energy [kWh/yr].
    final_kwh_per_m2 : ndarray — heating + hot water, final energy [kWh/m²/yr].
    dpe : DpeEstimate
    worst_decile : ndarray of bool
    slope_change : SlopeChange — second half of the period against the first.
    arx_hlc_w_per_k, arx_tau_h : ndarray — NaN without an indoor sensor or a usable fit.
    arx_status : ndarray of str — "" (no sensor), "ok" or a reason.
    methods_disagree : ndarray of bool
    """

    fit: changepoint.ChangePointFit
    interval: changepoint.HlcInterval
    efficiency: FloatArray
    heating_kwh_per_year: FloatArray
    final_kwh_per_m2: FloatArray
    dpe: normalise.DpeEstimate
    worst_decile: BoolArray
    slope_change: changepoint.SlopeChange
    arx_hlc_w_per_k: FloatArray
    arx_tau_h: FloatArray
    arx_status: npt.NDArray[np.str_]
    methods_disagree: BoolArray


def _era(year_built: IntArray) -> IntArray:
    return np.where(year_built < 0, -1, np.searchsorted(ERA_BOUNDS, year_built)).astype(np.int64)


def _shared_te(te: FloatArray) -> FloatArray:
    """One row when every building sees the same temperature (the fast fit path)."""
    if te.shape[0] > 1 and np.array_equal(te, np.broadcast_to(te[:1], te.shape), equal_nan=True):
        return te[:1]
    return te


# A daily mean this far from the site's normal for the date is a faulty station, not weather:
# Lille's coldest days (February 2012, −8 °C) and hottest (July 2019, 30 °C) stay within 12 K.
OUTDOOR_PLAUSIBLE_K: Final = 15.0


def plausible_outdoor(te: FloatArray, first_day: date) -> FloatArray:
    """Daily outdoor temperatures with NaN where they stray more than ``OUTDOOR_PLAUSIBLE_K``
    from the climate normal of the date (``wattwatch.climate``).

    Every building's heat-loss fit shares the station's series: three days of a probe
    reading 0 °C in August would read as cold days without heating for all of them.
    """
    dates = np.datetime64(first_day, "D") + np.arange(te.shape[-1])
    doy = (dates - dates.astype("datetime64[Y]")).astype(np.float64) + 0.5  # mid-day
    normal = normal_daily_temp_c(doy)
    with np.errstate(invalid="ignore"):
        wrong = np.abs(te - normal) > OUTDOOR_PLAUSIBLE_K
    return np.where(wrong, np.nan, te)


DIM_MIN_HEATING_DAYS: Final = 30  # heating days among the dim ones for their own slope


def _dim_day_fit(
    q: FloatArray,
    te: FloatArray,
    solar: FloatArray | None,
    fit: changepoint.ChangePointFit,
    *,
    cfg: PipelineConfig,
    efficiency: FloatArray,
    day_weight: FloatArray | None,
) -> tuple[changepoint.ChangePointFit, FloatArray]:
    """The fit whose slope gives each building's HLC, and the energy it was fitted on.

    Sunny days are also the mild ones: over every day, solar gains make heating look
    steeper against the outdoor temperature, and the slope over-estimates HLC (a median
    +8–10 % on the simulated city, more for buildings heated into spring). On the days with
    at most ``cfg.dim_day_w_per_m2`` of mean irradiance the sun's share of the heat balance
    is small; buildings with ``DIM_MIN_HEATING_DAYS`` heating days among them take that
    fit's slope, HLC and balance point (for the interval), the others keep ``fit``'s.
    """
    if solar is None or cfg.dim_day_w_per_m2 <= 0:
        return fit, q
    with np.errstate(invalid="ignore"):
        dim = np.asarray(solar, dtype=np.float64).reshape(-1) <= cfg.dim_day_w_per_m2
    q_dim = np.where(dim[np.newaxis, :], q, np.nan)
    relaxed = changepoint.SufficiencyRules(
        min_days=cfg.insulation_min_days,
        max_missing_days=q.shape[1],  # the bright days are left out on purpose
        min_heating_days=DIM_MIN_HEATING_DAYS,
    )
    dim_fit = changepoint.fit_change_point(
        q_dim, te, efficiency=efficiency, rules=relaxed, day_weight=day_weight
    )
    use = fit.qualified & dim_fit.qualified
    pick = use[:, np.newaxis]
    return (
        replace(
            fit,
            slope=np.where(use, dim_fit.slope, fit.slope),
            hlc_w_per_k=np.where(use, dim_fit.hlc_w_per_k, fit.hlc_w_per_k),
            balance_point=np.where(use, dim_fit.balance_point, fit.balance_point),
        ),
        np.where(pick, q_dim, q),
    )


def assess_buildings(
    daily: BuildingDaily,
    *,
    on: date,
    config: PipelineConfig | None = None,
    arx_inputs: ArxInputs | None = None,
) -> InsulationResult:
    """Change-point fit, interval, normalisation, DPE estimate and ranking of every building.

    Parameters
    ----------
    daily : BuildingDaily
        Daily heating energy [kWh/d] and outdoor temperature [°C].
    on : date
        Assessment date (electricity's primary-energy factor).
    arx_inputs : ArxInputs, optional
        Hourly series of the buildings with an indoor sensor.

    Notes
    -----
    Normal-year heating is ``s·HDD(Tb)`` scaled by ``normal_hdd / HDD₁₈`` of the period's
    weather (the municipality's normal degree-days are at base 18 °C). Hot water is the
    change-point baseload for heat and gas registers, a conventional figure for electric
    heating: per occupant where the home declared them, else per m². Heat meters read
    delivered heat, so final energy divides by η.
    Heat pumps of a known carrier use a COP that follows the outdoor temperature.

    With an indoor sensor, HLC also comes from a daily energy balance on heating days
    (:func:`arx.fit_daily_balance`); τ still comes from the hourly 1R1C ARX.
    """
    cfg = config if config is not None else PipelineConfig()
    q, te = daily.heating_kwh, _shared_te(plausible_outdoor(daily.outdoor_temp_c, daily.first_day))
    quantity = daily.heating_quantity
    default_eta = np.asarray([DEFAULT_EFFICIENCY.get(str(k), 1.0) for k in quantity])
    eta = np.where(np.isfinite(daily.heating_efficiency), daily.heating_efficiency, default_eta)
    is_heat = quantity == "heat"
    eta_hlc = np.where(is_heat, 1.0, eta)
    heat_pump = (daily.heating_carrier == "heat_pump") & (quantity == "electricity")
    day_weight = _heat_pump_weights(heat_pump, te, eta_hlc, q.shape)
    rules = changepoint.SufficiencyRules(
        min_days=cfg.insulation_min_days,
        max_missing_days=cfg.max_missing_days,
        min_heating_days=cfg.min_heating_days,
    )
    fit = changepoint.fit_change_point(
        q, te, efficiency=eta_hlc, rules=rules, day_weight=day_weight
    )
    hlc_fit, q_hlc = _dim_day_fit(
        q, te, daily.solar_w_per_m2, fit, cfg=cfg, efficiency=eta_hlc, day_weight=day_weight
    )
    interval = changepoint.bootstrap_hlc(
        q_hlc,
        te,
        hlc_fit,
        n_boot=cfg.n_boot,
        block_days=min(7, max(1, daily.days)),
        efficiency=eta_hlc,
        day_weight=day_weight,
    )

    te_full = np.broadcast_to(te, q.shape)
    valid = ~np.isnan(q) & ~np.isnan(te_full)
    tb = np.nan_to_num(fit.balance_point)[:, np.newaxis]
    hdd_tb_days = np.where(valid, np.maximum(tb - te_full, 0.0), 0.0)
    if day_weight is not None:
        # A heat pump's register energy per degree-day varies; days without a temperature
        # have no weight and no degree-days.
        hdd_tb_days *= np.where(valid, day_weight, 0.0)
    hdd_tb = hdd_tb_days.sum(axis=1)
    hdd_18 = np.where(valid, normalise.degree_days(te_full), 0.0).sum(axis=1)
    metered_heating = fit.slope * hdd_tb  # register energy for heating over the valid days
    normal = np.where(np.isfinite(daily.normal_hdd), daily.normal_hdd, normalise.LILLE_NORMAL_DJU)
    with np.errstate(invalid="ignore", divide="ignore"):
        heating_normal = np.where(
            hdd_18 > 0, metered_heating * normal / np.where(hdd_18 > 0, hdd_18, 1.0), np.nan
        )
        heating_final = np.where(is_heat, heating_normal / eta, heating_normal)
        dhw_metered = 365.0 * fit.baseload
        conventional = (
            np.asarray(
                [DHW_KWH_PER_M2_YR.get(str(u), DHW_DEFAULT_KWH_PER_M2_YR) for u in daily.use]
            )
            * daily.floor_area_m2
        )
        if daily.occupants is not None:
            # Hot water follows the people in a home, not its floor area.
            per_person = daily.occupants * DHW_KWH_PER_PERSON_YR
            conventional = np.where(daily.occupants > 0, per_person, conventional)
        dhw_final = np.where(
            quantity == "electricity",
            conventional,
            np.where(is_heat, dhw_metered / eta, dhw_metered),
        )
    final_per_m2 = normalise.per_m2(heating_final + dhw_final, daily.floor_area_m2)
    carrier = np.where(
        daily.heating_carrier != "",
        daily.heating_carrier,
        [CARRIER_OF_METER.get(str(k), "electricity") for k in quantity],
    )
    dpe = normalise.dpe_estimate(final_per_m2, carrier, on=on)
    groups = normalise.group_ids(daily.municipality_id, _era(daily.year_built), daily.use)
    decile = normalise.worst_decile(
        np.where(fit.qualified, final_per_m2, np.nan), groups
    ).worst_decile

    half = daily.days // 2
    slope = changepoint.slope_change(
        q[:, :half], te[:, :half], q[:, half:], te[:, half:],
        balance_point=np.where(fit.qualified, fit.balance_point, 15.0),
    )  # fmt: skip

    arx_hlc, arx_tau, arx_status = _indoor_sensor_hlc(
        arx_inputs,
        len(daily),
        cfg=cfg,
        eta=eta_hlc,
        baseload_kwh_d=fit.baseload,
        heat_pump=heat_pump,
    )
    # Reported: the dim days' slope and HLC, with the balance point and baseload that fit
    # every day at that slope (the heating with the year's average sun). The normal-year
    # need above keeps the free fit of every day, which matches the year's total heating.
    tb_all, b_all = changepoint.fit_balance_point(
        q, te, hlc_fit.slope, min_heating_days=cfg.min_heating_days, day_weight=day_weight
    )
    refit = np.isfinite(tb_all)
    # A register that does not follow the weather holds no heat loss to read: its label
    # stands, from the energy it does use; its HLC, balance point and interval are unknown.
    blind = fit.qualified & ~fit.heating_response
    fit = replace(
        fit,
        slope=hlc_fit.slope,
        hlc_w_per_k=np.where(blind, np.nan, hlc_fit.hlc_w_per_k),
        balance_point=np.where(blind, np.nan, np.where(refit, tb_all, fit.balance_point)),
        baseload=np.where(refit, b_all, fit.baseload),
    )
    interval = replace(
        interval,
        low=np.where(blind, np.nan, interval.low),
        high=np.where(blind, np.nan, interval.high),
    )
    disagree = arx.hlc_disagreement(arx_hlc, fit.hlc_w_per_k, tolerance=cfg.disagree_tolerance)
    return InsulationResult(
        fit=fit,
        interval=interval,
        efficiency=eta_hlc,
        heating_kwh_per_year=heating_final,
        final_kwh_per_m2=final_per_m2,
        dpe=dpe,
        worst_decile=decile,
        slope_change=slope,
        arx_hlc_w_per_k=arx_hlc,
        arx_tau_h=arx_tau,
        arx_status=arx_status,
        methods_disagree=disagree,
    )


NO_HEATING_RESPONSE: Final = (
    "no heat-loss estimate: the heating register's energy does not rise as it gets colder"
    " (a building that hardly heats, or a meter that is not its heating's)"
)
_REASONS: Final = {
    changepoint.TOO_SHORT: "period of {n} days is shorter than the {min} days required",
    changepoint.TOO_MANY_MISSING: "{missing} days missing; at most {max_missing} allowed",
    changepoint.TOO_FEW_HEATING: "only {heating} heating days; at least {min_heating} needed",
}


def assessment_rows(
    daily: BuildingDaily,
    result: InsulationResult,
    *,
    period_start: date,
    period_end: date,
    config: PipelineConfig | None = None,
) -> list[Assessment]:
    """Rows for ``insulation_assessments``: one change-point row per building, one ARX row
    per building with an indoor sensor."""
    cfg = config if config is not None else PipelineConfig()
    fit, dpe = result.fit, result.dpe
    out: list[Assessment] = []
    f = finite_or_none

    def text(v: npt.NDArray[np.str_], i: int) -> str | None:
        return str(v[i]) or None

    for i, bid in enumerate(daily.building_id.tolist()):
        status = str(fit.status[i])
        base = Assessment(bid, period_start, period_end, "changepoint", "ok")
        if daily.heating_meter_id[i] < 0:
            out.append(
                Assessment(bid, period_start, period_end, "changepoint", "insufficient_data",
                           "no heating register (heat, gas or electricity meter) found")
            )  # fmt: skip
        elif status != changepoint.OK:
            reason = _REASONS[status].format(
                n=daily.days, min=cfg.insulation_min_days, missing=int(fit.n_missing_days[i]),
                max_missing=cfg.max_missing_days, heating=int(fit.n_heating_days[i]),
                min_heating=cfg.min_heating_days,
            )  # fmt: skip
            out.append(
                Assessment(bid, period_start, period_end, "changepoint", "insufficient_data",
                           reason, n_days=int(fit.n_days[i]))
            )  # fmt: skip
        else:
            hlc = f(fit.hlc_w_per_k[i])
            area = daily.floor_area_m2[i]
            out.append(
                Assessment(
                    base.building_id,
                    period_start,
                    period_end,
                    "changepoint",
                    "ok",
                    None if fit.heating_response[i] else NO_HEATING_RESPONSE,
                    hlc_w_per_k=hlc,
                    hlc_low_w_per_k=f(result.interval.low[i]),
                    hlc_high_w_per_k=f(result.interval.high[i]),
                    hlc_w_per_m2k=f(fit.hlc_w_per_k[i] / area) if area > 0 else None,
                    balance_temp_c=f(fit.balance_point[i]),
                    base_kwh_per_day=f(fit.baseload[i]),
                    slope_kwh_per_day_k=f(fit.slope[i]),
                    r2=f(fit.r2[i]),
                    cv_rmse=f(fit.cv_rmse[i]),
                    nmbe=f(fit.nmbe[i]),
                    n_days=int(fit.n_days[i]),
                    heating_kwh_per_year=f(result.heating_kwh_per_year[i]),
                    primary_kwh_per_m2=f(dpe.primary_kwh_per_m2[i]),
                    co2_kg_per_m2=f(dpe.co2_kg_per_m2[i]),
                    energy_class=text(dpe.energy_class, i),
                    climate_class=text(dpe.climate_class, i),
                    label=text(dpe.label, i),
                    is_passoire=bool(dpe.passoire[i]) if dpe.label[i] else None,
                    worst_decile=bool(result.worst_decile[i]),
                    methods_disagree=bool(result.methods_disagree[i]),
                    slope_change_rel=f(result.slope_change.relative_change[i]),
                    slope_change_p=f(result.slope_change.p_value[i]),
                )
            )
        arx_status = str(result.arx_status[i])
        if arx_status == "ok":
            out.append(
                Assessment(
                    bid,
                    period_start,
                    period_end,
                    "arx",
                    "ok",
                    hlc_w_per_k=f(result.arx_hlc_w_per_k[i]),
                    tau_h=f(result.arx_tau_h[i]),
                    methods_disagree=bool(result.methods_disagree[i]),
                )
            )
        elif arx_status:
            out.append(
                Assessment(bid, period_start, period_end, "arx", "insufficient_data", arx_status)
            )
    return out


@dataclass(slots=True)
class InsulationRunSummary:
    """What an insulation run did."""

    buildings: int = 0
    qualified: int = 0
    arx: int = 0
    passoires: int = 0
    worst_decile: int = 0
    slope_changes: int = 0
    rows: int = 0
    labels: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def _arx_inputs(
    conn: psycopg.Connection, daily: BuildingDaily, *, first_day: date, stop_day: date,
    outdoor_meter_id: int | None,
) -> ArxInputs | None:  # fmt: skip
    """Hourly indoor and outdoor temperature, heating register energy (and irradiance when a
    sensor reports it) of the buildings with an indoor sensor."""
    indoor = load_meter_info(conn, quantities=["indoor_temperature"])
    pos = {b: i for i, b in enumerate(daily.building_id.tolist())}
    keep = np.asarray(
        [b in pos and daily.heating_meter_id[pos[b]] >= 0 for b in indoor.building_id.tolist()],
        dtype=bool,
    )
    indoor = indoor.select(keep)
    if len(indoor) == 0:
        return None
    # One sensor per building (the lowest id).
    _, first = np.unique(indoor.building_id, return_index=True)
    indoor = indoor.select(np.sort(first))
    rows = np.asarray([pos[b] for b in indoor.building_id.tolist()], dtype=np.int64)
    start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=LOCAL_TZ)
    end = datetime(stop_day.year, stop_day.month, stop_day.day, tzinfo=LOCAL_TZ)
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    ti = load_matrix(conn, indoor, start=start, end=end).values
    heat_meters = load_meter_info(conn, meter_ids=daily.heating_meter_id[rows].tolist())
    order = {m: i for i, m in enumerate(heat_meters.meter_id.tolist())}
    heat = load_matrix(conn, heat_meters, start=start, end=end).values
    heat = heat[[order[m] for m in daily.heating_meter_id[rows].tolist()]]
    te = load_hourly_mean(
        conn, "outdoor_temperature", start=start, end=end, meter_id=outdoor_meter_id
    )
    if te is None:
        te = np.full(ti.shape[1], np.nan)
    solar = load_hourly_mean(conn, "irradiance", start=start, end=end)
    return ArxInputs(rows=rows, ti_c=ti, te_c=te, heating_kwh=heat, solar_w_per_m2=solar)


def run_insulation(
    conn: psycopg.Connection,
    *,
    first_day: date,
    stop_day: date,
    config: PipelineConfig | None = None,
    building_ids: Sequence[int] | None = None,
    progress: Progress = no_progress,
) -> InsulationRunSummary:
    """Assess every building over ``[first_day, stop_day)`` and upsert the assessments.

    The stored period is ``[first_day, stop_day − 1 day]`` (inclusive dates).
    """
    cfg = config if config is not None else PipelineConfig()
    t0 = time.perf_counter()
    progress("insulation", 0, 3)
    daily = load_building_daily(
        conn, first_day=first_day, stop_day=stop_day, building_ids=building_ids,
        outdoor_meter_id=cfg.outdoor_meter_id,
    )  # fmt: skip
    progress("insulation", 1, 3)
    arx_in = _arx_inputs(
        conn, daily, first_day=first_day, stop_day=stop_day,
        outdoor_meter_id=cfg.outdoor_meter_id,
    )  # fmt: skip
    result = assess_buildings(daily, on=stop_day - timedelta(days=1), config=cfg, arx_inputs=arx_in)
    progress("insulation", 2, 3)
    rows = assessment_rows(
        daily, result, period_start=first_day, period_end=stop_day - timedelta(days=1), config=cfg
    )
    written = write_assessments(conn, rows)
    conn.commit()
    progress("insulation", 3, 3)
    ok = result.fit.qualified
    labels = result.dpe.label[ok]
    letters, counts = np.unique(labels[labels != ""], return_counts=True)
    return InsulationRunSummary(
        buildings=len(daily),
        qualified=int(ok.sum()),
        arx=int((result.arx_status == "ok").sum()),
        passoires=int((result.dpe.passoire & ok).sum()),
        worst_decile=int(result.worst_decile.sum()),
        slope_changes=int((ok & (result.slope_change.p_value < 0.01)).sum()),
        rows=written,
        labels={str(k): int(c) for k, c in zip(letters, counts, strict=True)},
        seconds=time.perf_counter() - t0,
    )
