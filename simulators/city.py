"""One entry point, ``simulate_city``: weather, stock, physics, meters, grid, anomalies, truth.

Arrays only; publishing to MQTT and database backfill are done elsewhere from these arrays.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from processing.dpe import CARRIERS, label_from_final_energy
from simulators.anomalies import KINDS, AnomalyLabels, default_eligibility, inject_anomalies
from simulators.electricity import hot_water_heat_w, presence, simulate_electricity
from simulators.grid import GRID_QUANTITIES, GRID_UNITS, STEP_S, simulate_grid
from simulators.meters import (
    HEATING_METER_QUANTITY,
    RESOLUTION_KWH,
    cumulative_index,
    heating_final_energy_kwh,
    missing_mask,
    reading_jitter,
    temperature_sensor,
)
from simulators.stock import BuildingStock, draw_stock, heat_pump_cop, setpoint_schedule
from simulators.thermal import simulate_thermal, transpose_copy
from simulators.weather import (
    Weather,
    normal_heating_degree_days,
    occupancy_weekday,
    paris_local_time,
    simulate_weather,
)
from wattwatch.climate import normal_daily_temp_c

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

QUANTITIES: Final = (
    "heat",
    "gas",
    "electricity",
    "indoor_temperature",
    "outdoor_temperature",
    "grid_voltage",
    "grid_frequency",
    "grid_load",
    "pv",
    "irradiance",
)
UNITS: Final = ("kWh", "W", "degC", "V", "Hz", "pu", "W/m2")
HEATING_SEASON_MONTHS: Final = (10, 11, 12, 1, 2, 3, 4)
_ELECTRIC: Final = ("electricity", "heat_pump")
_PV_KWP_PER_BUILDING: Final = 0.45  # 15 % of buildings with 3 kWp, on average


@dataclass(frozen=True, slots=True)
class MeterSeries:
    """Meter table and its readings; table arrays have shape (M,), readings (M, T).

    Attributes
    ----------
    meter_id : stable name, e.g. ``b000042-gas`` or ``f003-grid_voltage``.
    building : building index, −1 for none (weather station, feeder sensors).
    feeder : feeder index, −1 for none.
    quantity : one of ``QUANTITIES``.
    unit : one of ``UNITS``.
    cumulative : True for cumulative indexes (energy registers, kWh).
    ts : datetime64[s], (T,) — nominal reading time, the end of the interval measured.
    values : float64, (M, T) — readings; NaN where missing.
    jitter_s : int8, (M, T) or None — actual reading time − ``ts`` [s].
    """

    meter_id: npt.NDArray[np.str_]
    building: IntArray
    feeder: IntArray
    quantity: npt.NDArray[np.str_]
    unit: npt.NDArray[np.str_]
    cumulative: npt.NDArray[np.bool_]
    ts: npt.NDArray[np.datetime64]
    values: FloatArray
    jitter_s: npt.NDArray[np.int8] | None = None

    def __len__(self) -> int:
        return int(self.meter_id.shape[0])

    def rows(self, quantity: str) -> IntArray:
        """Row indices of the meters of one quantity."""
        return np.flatnonzero(self.quantity == quantity)


@dataclass(frozen=True, slots=True)
class BuildingTruth:
    """Ground truth per building; arrays of shape (n,).

    Attributes
    ----------
    hlc_w_per_k : heat-loss coefficient [W/K].
    tau_h : dominant time constant [h].
    setpoint_mean_c : time-mean setpoint over the run [°C].
    gains_mean_w : mean internal + solar gains over the heating-season hours of the run [W].
    balance_temp_c : Tb = setpoint_mean_c − gains_mean_w / hlc_w_per_k [°C], the outdoor
        temperature below which heating is needed.
    annual_heating_need_kwh : HLC · normal HDD(base Tb) · 24 / 1000, heat delivered in a
        normal year of the site's climate [kWh/yr].
    heating_simulated_kwh : heat actually delivered during the run [kWh].
    heating_normalised_kwh : heating_simulated_kwh · normal HDD(Tb) / HDD(Tb) of the run's
        weather: the simulated heat scaled to a normal year [kWh/yr]. It is above the
        analytical need mainly because a setback saves less than the mean setpoint implies
        and sunny-hour gains are partly wasted (no cooling); meaningful for runs of a year.
    seasonal_efficiency : final → heat over the heating season (heat pumps: COP at the
        normal heating-season mean temperature) [-].
    meter_efficiency : η to turn the building's heating meter into heat (gas: boiler
        efficiency; heat meters: 1; electricity: 1 or the seasonal COP) [-].
    final_energy_kwh_per_m2 : heating + hot water final energy per floor area [kWh/m²/yr].
    dpe_class : DPE class implied ("A".."G"), via ``processing.dpe``.
    """

    hlc_w_per_k: FloatArray
    tau_h: FloatArray
    setpoint_mean_c: FloatArray
    gains_mean_w: FloatArray
    balance_temp_c: FloatArray
    annual_heating_need_kwh: FloatArray
    heating_simulated_kwh: FloatArray
    heating_normalised_kwh: FloatArray
    seasonal_efficiency: FloatArray
    meter_efficiency: FloatArray
    final_energy_kwh_per_m2: FloatArray
    dpe_class: npt.NDArray[np.str_]


@dataclass(frozen=True, slots=True)
class City:
    """Everything one simulation run produces.

    Attributes
    ----------
    settings : the arguments of the run (seed, sizes, start …), JSON-ready.
    weather : hourly weather; ``weather.ts`` are hour starts.
    stock : the buildings (n).
    feeder : (n,) feeder of each building.
    heating_w : (n, T) float32, true heat delivered [W].
    indoor_temp_c : (n, T) float32, true indoor air temperature, hourly mean [°C].
    electricity_w : (n, T) float32, true whole-building electricity incl. electric heating
        and hot water [W].
    meters : hourly meters (electricity, gas, heat, indoor and outdoor temperature).
    anomalies : labels of anomalies injected into ``meters`` (``meter`` = row).
    grid : 10-minute feeder sensors.
    grid_events : labels of grid events (``meter`` = row of ``grid``).
    truth : ground truth per building.
    """

    settings: dict[str, object]
    weather: Weather
    stock: BuildingStock
    feeder: IntArray
    heating_w: Float32Array
    indoor_temp_c: Float32Array
    electricity_w: Float32Array
    meters: MeterSeries
    anomalies: AnomalyLabels
    grid: MeterSeries
    grid_events: AnomalyLabels
    truth: BuildingTruth
    timings_s: dict[str, float] = field(default_factory=dict)


def _start_date(start: object) -> dt.date:
    return dt.date.fromisoformat(str(np.asarray(start, dtype="datetime64[D]")))


def seasonal_efficiency(carrier: npt.ArrayLike, efficiency: npt.ArrayLike) -> FloatArray:
    """Seasonal final → heat efficiency per building [-].

    Heat pumps: COP at the climate-normal mean outdoor temperature of October–April.
    """
    c = np.asarray(carrier)
    eff = np.asarray(efficiency, dtype=np.float64)
    doy = np.arange(365) + 0.5
    month = (np.datetime64("2001-01-01") + doy.astype(np.int64)).astype("datetime64[M]")
    month_no = month.astype(np.int64) % 12 + 1
    season = np.isin(month_no, HEATING_SEASON_MONTHS)
    te_season = float(normal_daily_temp_c(doy)[season].mean())
    return np.asarray(np.where(c == "heat_pump", heat_pump_cop(te_season, eff), eff))


def building_truth(
    stock: BuildingStock,
    *,
    setpoint_mean_c: npt.ArrayLike,
    gains_mean_w: npt.ArrayLike,
    heating_simulated_kwh: npt.ArrayLike,
    daily_mean_temp_c: npt.ArrayLike,
    on: dt.date,
) -> BuildingTruth:
    """Ground truth from the stock, mean setpoint and mean heating-season gains.

    Notes
    -----
    Hot water is produced by the heating carrier for fuel and district heat, by an electric
    water heater (efficiency 1) in electrically heated buildings. The DPE uses heating + hot
    water final energy only (no cooling, lighting or auxiliaries).
    """
    sp = np.asarray(setpoint_mean_c, dtype=np.float64)
    gains = np.asarray(gains_mean_w, dtype=np.float64)
    hlc = stock.hlc_w_per_k
    tb = sp - gains / hlc
    normal_hdd = normal_heating_degree_days(tb)
    need = hlc * normal_hdd * 24.0 / 1000.0
    daily = np.asarray(daily_mean_temp_c, dtype=np.float64)
    run_hdd = np.maximum(tb[:, None] - daily[None, :], 0.0).sum(axis=1)
    simulated = np.asarray(heating_simulated_kwh, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        normalised = np.where(run_hdd > 0, simulated * normal_hdd / run_hdd, np.nan)
    season_eff = seasonal_efficiency(stock.carrier, stock.efficiency)
    electric = np.isin(stock.carrier, _ELECTRIC)
    dhw_eff = np.where(electric, 1.0, stock.efficiency)
    final = (need / season_eff + stock.dhw_kwh_per_yr / dhw_eff) / stock.floor_area_m2
    label = np.full(len(stock), "", dtype="<U1")
    for carrier in CARRIERS:  # six carriers, each labelled in one vectorised call
        mask = stock.carrier == carrier
        if np.any(mask):
            label[mask] = label_from_final_energy(final[mask], carrier, on)
    metered_as_heat = np.isin(
        stock.carrier, [k for k, q in HEATING_METER_QUANTITY.items() if q == "heat"]
    )
    return BuildingTruth(
        hlc_w_per_k=hlc.copy(),
        tau_h=stock.tau_h.copy(),
        setpoint_mean_c=sp,
        gains_mean_w=gains,
        balance_temp_c=tb,
        annual_heating_need_kwh=np.asarray(need),
        heating_simulated_kwh=simulated,
        heating_normalised_kwh=np.asarray(normalised),
        seasonal_efficiency=season_eff,
        meter_efficiency=np.where(metered_as_heat, 1.0, season_eff),
        final_energy_kwh_per_m2=np.asarray(final),
        dpe_class=label,
    )


def simulate_city(
    *,
    buildings: int,
    start: object,
    days: int,
    seed: int,
    anomaly_rate: float = 1.0,
    grid_feeders: int = 10,
    municipalities: int = 95,
    indoor_sensor_share: float = 0.2,
    anomaly_mix: Mapping[str, float] | None = None,
) -> City:
    """Simulate a city's buildings, meters and feeders for ``days`` days, hourly.

    Parameters
    ----------
    buildings : int
        Number of buildings.
    start : str or datetime or datetime64
        First hour, UTC, on the hour.
    days : int
        Length [day].
    seed : int
        Seed of every random draw; the same arguments give identical arrays.
    anomaly_rate : float
        Expected anomalies per meter and year in the hourly meters [1/yr].
    grid_feeders : int
        Number of feeders (transformers); buildings are spread over them at random.
    municipalities : int
        Number of municipalities.
    indoor_sensor_share : float
        Share of buildings with an indoor temperature sensor.
    anomaly_mix : mapping kind → weight, optional
        Relative frequency of each anomaly kind (``simulators.anomalies.DEFAULT_MIX``).

    Returns
    -------
    City

    Notes
    -----
    Meters: every building has a whole-building electricity register (1 Wh); gas-heated
    buildings a gas register (0.01 m³ ≈ 0.112 kWh); district heat, fuel oil and wood a heat
    meter on delivered heat (0.1 kWh); electric and heat-pump heating shows in the
    electricity register. One weather station reports outdoor temperature. A NaN dropout is
    a communication gap (the register keeps counting); a zero dropout is a metering outage.
    Independent transmission losses of 1–5 % per meter come on top of injected anomalies.
    Internal gains = occupants (per use and hour) + 80 % of non-heating electricity; solar
    gains = aperture × GHI.
    """
    _check_arguments(
        buildings=buildings,
        grid_feeders=grid_feeders,
        indoor_sensor_share=indoor_sensor_share,
        anomaly_mix=anomaly_mix,
    )
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now

    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(8)]
    rng_weather, rng_stock, rng_elec, rng_anom, rng_meter, rng_grid, rng_sensor, _ = streams

    weather = simulate_weather(start=start, days=days, rng=rng_weather)
    stock = draw_stock(buildings, rng=rng_stock, municipalities=municipalities)
    n, steps = buildings, weather.ts.size
    hour, _ = paris_local_time(weather.ts)
    weekday = occupancy_weekday(weather.ts)  # public holidays are closed days
    lap("weather_stock")

    appliances, gains = _appliances_and_gains(
        stock, weather, hour=hour, weekday=weekday, rng=rng_elec
    )
    setpoint = setpoint_schedule(stock, hour, weekday)
    lap("electricity_gains")

    thermal = simulate_thermal(
        stock.rc,
        outdoor_temp_c=weather.temp_c,
        gains_w=gains,
        setpoint_c=setpoint,
        heating_max_w=stock.heating_max_w,
    )
    lap("thermal")

    truth = _run_truth(stock, weather, gains=gains, setpoint=setpoint, heating_w=thermal.heating_w)
    del gains, setpoint
    lap("truth")

    electricity_w = transpose_copy(appliances.T)  # building-major from here on
    del appliances
    el_idx, fuel_idx, fuel_quantity, fuel_kwh = _final_energy(
        stock,
        thermal.heating_w,
        electricity_w,
        hour=hour,
        weekday=weekday,
        outdoor_temp_c=weather.temp_c,
    )
    lap("final_energy")

    sensor_idx = np.flatnonzero(rng_sensor.random(n) < indoor_sensor_share)
    clean = np.empty((n + fuel_idx.size + sensor_idx.size + 1, steps), dtype=np.float32)
    np.multiply(electricity_w, np.float32(1e-3), out=clean[:n])
    clean[n : n + fuel_idx.size] = fuel_kwh
    del fuel_kwh
    clean[n + fuel_idx.size : -1] = thermal.indoor_temp_c[sensor_idx]
    clean[-1] = weather.temp_c
    building, quantity, is_temp, heating_meter = _hourly_table(
        n, el_idx=el_idx, fuel_idx=fuel_idx, fuel_quantity=fuel_quantity, sensor_idx=sensor_idx
    )
    ts_end = np.asarray(weather.ts + np.timedelta64(3600, "s"), dtype="datetime64[s]")
    dirty, labels = inject_anomalies(
        clean,
        ts_end,
        rng=rng_anom,
        rate_per_year=anomaly_rate,
        mix=anomaly_mix,
        eligible=default_eligibility(
            temperature=is_temp,
            heating=heating_meter,
            cumulative=~is_temp,
            closes=(building >= 0) & stock.weekend_setback[np.maximum(building, 0)],
        ),
        temperature=is_temp,
        outdoor_temp_c=weather.temp_c,
    )
    lap("anomalies")
    values, jitter = _observe(
        clean,
        dirty,
        labels,
        quantity=quantity,
        m_energy=n + fuel_idx.size,
        rng_meter=rng_meter,
        rng_sensor=rng_sensor,
        irradiance=np.asarray(weather.ghi_w_m2, dtype=np.float64),
    )
    del clean, dirty
    meter_id = _ids("b", building, 6, quantity)
    meter_id[-1] = "station-outdoor_temperature"
    unit = np.where(is_temp, "degC", "kWh").astype("<U8")
    # The station also reports global horizontal irradiance (last row, no anomalies): the
    # indoor-sensor heat-loss fit needs its solar term in production as in the benchmark.
    meters = MeterSeries(
        meter_id=np.append(meter_id, "station-irradiance").astype(meter_id.dtype),
        building=np.append(building, -1),
        feeder=np.full(building.size + 1, -1, dtype=np.int64),
        quantity=np.append(quantity, "irradiance").astype(quantity.dtype),
        unit=np.append(unit, "W/m2").astype(unit.dtype),
        cumulative=np.append(~is_temp, False),
        ts=ts_end,
        values=values,
        jitter_s=jitter,
    )
    lap("meters")

    feeder, grid, grid_events = _grid(electricity_w, weather, feeders=grid_feeders, rng=rng_grid)
    lap("grid")

    settings: dict[str, object] = {
        "buildings": buildings,
        "start": str(weather.ts[0]),
        "days": days,
        "seed": seed,
        "anomaly_rate": anomaly_rate,
        "grid_feeders": grid_feeders,
        "municipalities": municipalities,
        "indoor_sensor_share": indoor_sensor_share,
        "anomaly_mix": dict(anomaly_mix) if anomaly_mix is not None else None,
        "grid_step_s": STEP_S,
    }
    return City(
        settings=settings,
        weather=weather,
        stock=stock,
        feeder=feeder,
        heating_w=thermal.heating_w,
        indoor_temp_c=thermal.indoor_temp_c,
        electricity_w=electricity_w,
        meters=meters,
        anomalies=labels,
        grid=grid,
        grid_events=grid_events,
        truth=truth,
        timings_s=timings,
    )


def _ids(
    prefix: str, index: IntArray, width: int, quantity: npt.NDArray[np.str_]
) -> npt.NDArray[np.str_]:
    """Meter ids such as ``b000042-gas``."""
    head = np.char.add(prefix, np.char.zfill(index.astype("<U12"), width))
    return np.asarray(np.char.add(np.char.add(head, "-"), quantity), dtype="<U40")


def _observe(
    clean: Float32Array,
    dirty: npt.NDArray[np.floating],
    labels: AnomalyLabels,
    *,
    quantity: npt.NDArray[np.str_],
    m_energy: int,
    rng_meter: np.random.Generator,
    rng_sensor: np.random.Generator,
    irradiance: FloatArray,
) -> tuple[FloatArray, npt.NDArray[np.int8]]:
    """Readings of all hourly meters: energy rows (first ``m_energy``) become quantised
    registers with resets and jitter, temperature rows sensor readings; then transmission
    losses. The station's ``irradiance`` [W/m²] is appended as the last row, in whole watts
    (allocated here: a copy of the whole matrix afterwards would double its memory)."""
    m, t = clean.shape
    values = np.empty((m + 1, t), dtype=np.float64)
    np.round(irradiance, out=values[m])
    jitter = np.zeros((m + 1, t), dtype=np.int8)
    jitter[:m] = reading_jitter(clean.shape, rng=rng_meter)
    energy_dirty = dirty[:m_energy]
    gap = np.isnan(energy_dirty)
    np.copyto(energy_dirty, clean[:m_energy], where=gap)  # a gap: the register counts on
    resolution = np.asarray([RESOLUTION_KWH[q] for q in quantity[:m_energy]])
    start_index = rng_meter.uniform(0.0, 50_000.0, m_energy)
    resets = labels.select((labels.kind == "counter_reset") & (labels.meter < m_energy))
    cumulative_index(
        energy_dirty,
        resolution_kwh=resolution,
        start_kwh=start_index,
        reset_rows=resets.meter,
        reset_steps=resets.start_step,
        jitter_s=jitter[:m_energy],
        out=values[:m_energy],
    )
    np.copyto(values[:m_energy], np.nan, where=gap)
    del gap
    values[m_energy:m] = temperature_sensor(dirty[m_energy:], rng=rng_sensor)
    # A stuck sensor repeats its last reading exactly: no fresh noise over a flatline.
    stuck = labels.select((labels.kind == "flatline") & (labels.meter >= m_energy))
    for row, first, stop in zip(stuck.meter, stuck.start_step, stuck.stop_step, strict=True):
        values[row, first:stop] = values[row, first]
    lost, _ = missing_mask((m, t), rng=rng_meter)
    np.copyto(values[:m], np.nan, where=lost)
    return values, jitter


def _grid(
    electricity_w: Float32Array, weather: Weather, *, feeders: int, rng: np.random.Generator
) -> tuple[IntArray, MeterSeries, AnomalyLabels]:
    """Feeder of each building, the feeder sensors and their event labels."""
    n = electricity_w.shape[0]
    feeder = np.asarray(rng.integers(0, feeders, n), dtype=np.int64)
    onehot = np.zeros((feeders, n), dtype=np.float32)
    onehot[feeder, np.arange(n)] = 1.0
    kwp = onehot.sum(axis=1) * _PV_KWP_PER_BUILDING * rng.uniform(0.5, 1.5, feeders)
    series = simulate_grid(
        ts=weather.ts,
        feeder_load_w=onehot @ electricity_w,
        pv_kwp=kwp,
        ghi_w_m2=weather.ghi_w_m2,
        rng=rng,
    )
    q_idx = np.repeat(np.arange(len(GRID_QUANTITIES)), feeders)
    g_feeder = np.tile(np.arange(feeders), len(GRID_QUANTITIES)).astype(np.int64)
    g_quantity = np.asarray(GRID_QUANTITIES)[q_idx].astype("<U20")
    grid = MeterSeries(
        meter_id=_ids("f", g_feeder, 3, g_quantity),
        building=np.full(g_feeder.size, -1, dtype=np.int64),
        feeder=g_feeder,
        quantity=g_quantity,
        unit=np.asarray(GRID_UNITS)[q_idx].astype("<U8"),
        cumulative=np.zeros(g_feeder.size, dtype=bool),
        ts=series.ts,
        values=series.stacked(),
    )
    return feeder, grid, series.events


def _final_energy(
    stock: BuildingStock,
    heating_w: Float32Array,
    electricity_w: Float32Array,
    *,
    hour: IntArray,
    weekday: IntArray,
    outdoor_temp_c: FloatArray,
) -> tuple[IntArray, IntArray, npt.NDArray[np.str_], Float32Array]:
    """Add electric heating and hot water to ``electricity_w`` (in place); return the
    electric buildings, the fuel/heat-metered buildings, their meter quantity and their
    hourly metered energy [kWh].

    Hot water rides on the heating carrier; electrically heated buildings have an electric
    water heater (see ``building_truth``).
    """
    dhw = hot_water_heat_w(
        use=stock.use, dhw_kwh_per_yr=stock.dhw_kwh_per_yr, local_hour=hour, weekday=weekday
    )
    electric = np.isin(stock.carrier, _ELECTRIC)
    el_idx = np.flatnonzero(electric)
    if el_idx.size:
        heat_el_kwh = heating_final_energy_kwh(
            heating_w[el_idx],
            carrier=stock.carrier[el_idx],
            efficiency=stock.efficiency[el_idx],
            outdoor_temp_c=outdoor_temp_c,
        )
        electricity_w[el_idx] += heat_el_kwh * np.float32(1000.0) + dhw[el_idx]
    fuel_idx = np.flatnonzero(~electric)
    fuel_quantity = np.asarray(
        [HEATING_METER_QUANTITY[c] for c in stock.carrier[fuel_idx]], dtype="<U20"
    )
    fuel_kwh = heating_w[fuel_idx] + dhw[fuel_idx]
    fuel_kwh *= np.float32(1e-3)
    gas_rows = np.flatnonzero(fuel_quantity == "gas")
    fuel_kwh[gas_rows] /= stock.efficiency[fuel_idx[gas_rows]].astype(np.float32)[:, None]
    return el_idx, fuel_idx, fuel_quantity, fuel_kwh


def _hourly_table(
    n: int,
    *,
    el_idx: IntArray,
    fuel_idx: IntArray,
    fuel_quantity: npt.NDArray[np.str_],
    sensor_idx: IntArray,
) -> tuple[IntArray, npt.NDArray[np.str_], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Building, quantity, temperature flag and heating flag of each hourly meter row.

    Row order: electricity of every building, fuel/heat meters, indoor sensors, station
    (the station's irradiance row is appended after these, see ``_observe``).
    """
    building = np.concatenate([np.arange(n), fuel_idx, sensor_idx, [-1]]).astype(np.int64)
    quantity = np.concatenate(
        [
            np.full(n, "electricity"),
            fuel_quantity,
            np.full(sensor_idx.size, "indoor_temperature"),
            ["outdoor_temperature"],
        ]
    ).astype("<U20")
    m_energy = n + fuel_idx.size
    is_temp = np.arange(building.size) >= m_energy
    heating_meter = np.zeros(building.size, dtype=bool)
    heating_meter[el_idx] = True
    heating_meter[n:m_energy] = True
    return building, quantity, is_temp, heating_meter


def _appliances_and_gains(
    stock: BuildingStock,
    weather: Weather,
    *,
    hour: IntArray,
    weekday: IntArray,
    rng: np.random.Generator,
) -> tuple[Float32Array, Float32Array]:
    """Non-heating electricity and free gains (occupants + 80 % of it + solar) [W].

    Both are (n, T) views of time-major memory, the layout the thermal loop reads.
    """
    doy = (weather.ts - weather.ts.astype("datetime64[Y]")).astype(np.int64) / 86400.0
    appliances = simulate_electricity(
        use=stock.use,
        base_load_w=stock.base_load_w,
        peak_load_w=stock.peak_load_w,
        local_hour=hour,
        weekday=weekday,
        day_of_year=doy,
        rng=rng,
    )
    gains = presence(stock.use, hour, weekday)
    gains *= (stock.occupant_gain_w_per_m2 * stock.floor_area_m2).astype(np.float32)[:, None]
    gains += np.float32(0.8) * appliances
    gains += (
        weather.ghi_w_m2.astype(np.float32)[:, None]
        * stock.solar_aperture_m2.astype(np.float32)[None, :]
    ).T
    return appliances, gains


def _check_arguments(
    *,
    buildings: int,
    grid_feeders: int,
    indoor_sensor_share: float,
    anomaly_mix: Mapping[str, float] | None,
) -> None:
    if buildings < 1:
        raise ValueError(f"buildings: must be at least 1, got {buildings}")
    if grid_feeders < 1:
        raise ValueError(f"grid_feeders: must be at least 1, got {grid_feeders}")
    if not 0.0 <= indoor_sensor_share <= 1.0:
        raise ValueError(f"indoor_sensor_share: must lie in [0, 1], got {indoor_sensor_share}")
    if anomaly_mix is not None and set(anomaly_mix) - set(KINDS):
        raise ValueError(f"anomaly_mix: unknown kind(s) {sorted(set(anomaly_mix) - set(KINDS))}")


def _run_truth(
    stock: BuildingStock,
    weather: Weather,
    *,
    gains: Float32Array,
    setpoint: Float32Array,
    heating_w: Float32Array,
) -> BuildingTruth:
    """Ground truth with gains averaged over the heating-season hours of the run."""
    month = (weather.ts.astype("datetime64[M]").astype(np.int64) % 12) + 1
    season = np.isin(month, HEATING_SEASON_MONTHS)
    if not season.any():  # a summer-only run: average over all hours
        season[:] = True
    weights = season.astype(np.float32) / np.float32(season.sum())
    return building_truth(
        stock,
        setpoint_mean_c=setpoint.mean(axis=1, dtype=np.float64),
        gains_mean_w=(gains @ weights).astype(np.float64),
        heating_simulated_kwh=heating_w.sum(axis=1, dtype=np.float64) / 1000.0,
        daily_mean_temp_c=weather.daily_mean_temp_c(),
        on=_start_date(weather.ts[0]),
    )
