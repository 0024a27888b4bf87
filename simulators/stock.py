"""A seeded synthetic building stock near Lille: geometry, envelope, heating system, schedules.

Every attribute is an array of shape (n,), one entry per building.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final

import numpy as np
import numpy.typing as npt

from processing.dpe import CARRIERS
from simulators.thermal import RCParameters, rc_parameters
from simulators.weather import DESIGN_TEMPERATURE_C, LILLE_LAT_DEG, LILLE_LON_DEG

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

USES: Final = ("household", "school", "office", "gym", "town_hall", "library")
_USE_SHARE: Final = (0.90, 0.04, 0.025, 0.012, 0.012, 0.011)
# Median floor area [m²] and lognormal sigma per use.
_AREA: Final = (
    (85.0, 0.35),
    (2500.0, 0.5),
    (1200.0, 0.6),
    (1500.0, 0.4),
    (1500.0, 0.5),
    (800.0, 0.5),
)
# Construction eras: first year, last year, share, median HLC per floor area [W/(m²·K)].
_ERAS: Final = (
    (1850, 1947, 0.28, 3.0),
    (1948, 1974, 0.30, 2.5),
    (1975, 1989, 0.16, 1.7),
    (1990, 2005, 0.14, 1.25),
    (2006, 2012, 0.06, 0.9),
    (2013, 2024, 0.06, 0.6),
)
_CARRIER_SHARE_HOUSEHOLD: Final = (0.55, 0.20, 0.08, 0.07, 0.06, 0.04)
_CARRIER_SHARE_PUBLIC: Final = (0.60, 0.05, 0.10, 0.20, 0.05, 0.00)
# Occupied hours [local h, start inclusive, end exclusive] and whether weekends are set back.
_COMFORT: Final = {
    "school": (7, 17, True),
    "office": (7, 19, True),
    "gym": (7, 22, False),
    "town_hall": (8, 18, True),
    "library": (9, 19, True),
}
HEAT_PUMP_COP_SLOPE_PER_K: Final = 0.08
HEAT_PUMP_COP_RANGE: Final = (1.5, 6.0)


@dataclass(frozen=True, slots=True)
class BuildingStock:
    """Buildings and their true physical parameters; each field has shape (n,).

    Attributes (units in the names): municipality (0 … N−1), use (one of ``USES``),
    lat_deg/lon_deg, floor_area_m2, year_built, hlc_w_per_m2k, hlc_w_per_k, tau_h (dominant
    time constant), the 2R2C parameters (ri_k_per_w, re_k_per_w, h_vent_w_per_k, ci_j_per_k,
    ce_j_per_k), solar_aperture_m2 (effective area: GHI × aperture = solar gain), occupant
    gains during occupancy occupant_gain_w_per_m2, electricity base_load_w and peak_load_w,
    carrier (one of ``processing.dpe.CARRIERS``), efficiency (seasonal, final → heat; for
    heat pumps the COP at 0 °C), boiler_age_y, heating_max_w, dhw_kwh_per_yr (heat),
    setpoint_c (comfort), setback_k (0 = none), comfort_start_h/comfort_end_h (local hours),
    weekend_setback, occupants (persons living in a home; 0 for public buildings).
    """

    municipality: IntArray
    use: npt.NDArray[np.str_]
    lat_deg: FloatArray
    lon_deg: FloatArray
    floor_area_m2: FloatArray
    year_built: IntArray
    hlc_w_per_m2k: FloatArray
    hlc_w_per_k: FloatArray
    tau_h: FloatArray
    ri_k_per_w: FloatArray
    re_k_per_w: FloatArray
    h_vent_w_per_k: FloatArray
    ci_j_per_k: FloatArray
    ce_j_per_k: FloatArray
    solar_aperture_m2: FloatArray
    occupant_gain_w_per_m2: FloatArray
    base_load_w: FloatArray
    peak_load_w: FloatArray
    carrier: npt.NDArray[np.str_]
    efficiency: FloatArray
    boiler_age_y: FloatArray
    heating_max_w: FloatArray
    dhw_kwh_per_yr: FloatArray
    setpoint_c: FloatArray
    setback_k: FloatArray
    comfort_start_h: IntArray
    comfort_end_h: IntArray
    weekend_setback: npt.NDArray[np.bool_]
    occupants: IntArray

    def __len__(self) -> int:
        return int(self.hlc_w_per_k.shape[0])

    @property
    def rc(self) -> RCParameters:
        """The 2R2C parameters of every building."""
        return RCParameters(
            ri_k_per_w=self.ri_k_per_w,
            re_k_per_w=self.re_k_per_w,
            h_vent_w_per_k=self.h_vent_w_per_k,
            ci_j_per_k=self.ci_j_per_k,
            ce_j_per_k=self.ce_j_per_k,
        )

    def subset(self, index: npt.ArrayLike) -> BuildingStock:
        """The buildings selected by an integer or boolean index."""
        idx = np.asarray(index)
        return BuildingStock(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    def as_columns(self) -> dict[str, np.ndarray]:
        """Field name → array, in declaration order (for tables and files)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def heat_pump_cop(outdoor_temp_c: npt.ArrayLike, cop_at_0c: npt.ArrayLike = 3.2) -> FloatArray:
    """Coefficient of performance of an air-source heat pump [-].

    ``COP = cop_at_0c + 0.08·Te``, clipped to [1.5, 6]; broadcasts.
    """
    te = np.asarray(outdoor_temp_c, dtype=np.float64)
    c0 = np.asarray(cop_at_0c, dtype=np.float64)
    return np.clip(c0 + HEAT_PUMP_COP_SLOPE_PER_K * te, *HEAT_PUMP_COP_RANGE)


def _choice(rng: np.random.Generator, n: int, shares: npt.ArrayLike) -> IntArray:
    p = np.asarray(shares, dtype=np.float64)
    return np.asarray(rng.choice(p.size, size=n, p=p / p.sum()), dtype=np.int64)


def draw_stock(n: int, *, rng: np.random.Generator, municipalities: int = 95) -> BuildingStock:
    """Draw ``n`` buildings spread over ``municipalities`` municipalities around Lille.

    Parameters
    ----------
    n : int
        Number of buildings.
    rng : numpy.random.Generator
        Source of randomness.
    municipalities : int
        Number of municipalities (Lille métropole: 95).

    Returns
    -------
    BuildingStock

    Notes
    -----
    - HLC per floor area follows the construction era (older = leakier, 0.5–4 W/(m²·K));
      30 % of pre-1990 buildings are renovated (×0.5–0.8); large public buildings are more
      compact (×0.7).
    - τ is lognormal around 30·(1.5/HLC_m²)^0.6 h (×1.5 for heavy public buildings), clipped
      to 10–150 h; the 2R2C split puts 15–40 % of HLC in ventilation, Ri = 5–15 % of the
      envelope resistance and Ci = 3–8 % of τ·HLC.
    - Gas boilers: 0.95 − 0.004·age (0–25 y); fuel oil 0.80–0.90, wood 0.70–0.85; direct
      electric and district heat 1.0 (district heat is metered as delivered heat); heat pumps
      store their COP at 0 °C (2.9–3.5), see ``heat_pump_cop``.
    - Heating power is sized to HLC·(setpoint − design temperature −9 °C)·(1.3–2.0).
    - Households keep comfort 6–7 h → 22–23 h every day, 25 % without setback, others 1–4 K;
      public buildings follow opening hours, setback 3–6 K (10 % none).
    """
    if n < 1:
        raise ValueError(f"n: must be at least 1, got {n}")
    if municipalities < 1:
        raise ValueError(f"municipalities: must be at least 1, got {municipalities}")

    use_idx = _choice(rng, n, _USE_SHARE)
    use = np.asarray(USES)[use_idx]
    household = use_idx == 0

    muni = rng.integers(0, municipalities, n)
    muni_lat = LILLE_LAT_DEG + rng.normal(0.0, 0.06, municipalities)
    muni_lon = LILLE_LON_DEG + rng.normal(0.0, 0.09, municipalities)
    lat = muni_lat[muni] + rng.normal(0.0, 0.008, n)
    lon = muni_lon[muni] + rng.normal(0.0, 0.012, n)

    area_med = np.asarray([a for a, _ in _AREA])[use_idx]
    area_sd = np.asarray([s for _, s in _AREA])[use_idx]
    area = np.clip(area_med * np.exp(area_sd * rng.standard_normal(n)), 25.0, 20000.0)

    era = _choice(rng, n, [e[2] for e in _ERAS])
    first = np.asarray([e[0] for e in _ERAS])[era]
    last = np.asarray([e[1] for e in _ERAS])[era]
    year = rng.integers(first, last + 1)
    hlc_m2 = np.asarray([e[3] for e in _ERAS])[era] * np.exp(0.2 * rng.standard_normal(n))
    renovated = (year < 1990) & (rng.random(n) < 0.3)
    hlc_m2 = np.where(renovated, hlc_m2 * rng.uniform(0.5, 0.8, n), hlc_m2)
    hlc_m2 = np.clip(np.where(household, hlc_m2, 0.7 * hlc_m2), 0.5, 4.0)
    hlc = hlc_m2 * area

    tau_med = 30.0 * (1.5 / hlc_m2) ** 0.6 * np.where(household, 1.0, 1.5)
    tau = np.clip(tau_med * np.exp(0.3 * rng.standard_normal(n)), 10.0, 150.0)
    rc = rc_parameters(
        hlc,
        tau,
        vent_fraction=rng.uniform(0.15, 0.40, n),
        ri_fraction=rng.uniform(0.05, 0.15, n),
        ci_fraction=rng.uniform(0.03, 0.08, n),
    )

    aperture = area * rng.uniform(0.02, 0.05, n)
    occ_lo = np.asarray([1.2, 4.0, 2.0, 3.0, 2.0, 2.0])[use_idx]
    occ_hi = np.asarray([2.5, 7.0, 4.0, 6.0, 4.0, 4.0])[use_idx]
    occupant_gain = rng.uniform(occ_lo, occ_hi)
    base_load = np.where(household, rng.uniform(100.0, 350.0, n), area * rng.uniform(1.5, 4.0, n))
    peak_load = np.where(
        household, base_load + rng.uniform(300.0, 900.0, n), area * rng.uniform(5.0, 12.0, n)
    )

    carrier_idx = np.where(
        household,
        _choice(rng, n, _CARRIER_SHARE_HOUSEHOLD),
        _choice(rng, n, _CARRIER_SHARE_PUBLIC),
    )
    carrier = np.asarray(CARRIERS)[carrier_idx]
    age = rng.uniform(0.0, 25.0, n)
    efficiency = np.select(
        [carrier == "gas", carrier == "fuel_oil", carrier == "wood", carrier == "heat_pump"],
        [
            0.95 - 0.004 * age,
            rng.uniform(0.80, 0.90, n),
            rng.uniform(0.70, 0.85, n),
            rng.uniform(2.9, 3.5, n),
        ],
        default=1.0,
    )

    setpoint = np.round(rng.uniform(19.0, 21.0, n) * 2.0) / 2.0
    heating_max = hlc * (setpoint - DESIGN_TEMPERATURE_C) * rng.uniform(1.3, 2.0, n)
    persons = rng.integers(1, 6, n)
    dhw_per_m2 = np.asarray([0.0, 2.0, 1.5, 15.0, 1.5, 1.0])[use_idx]
    dhw = np.where(household, persons * rng.uniform(500.0, 800.0, n), dhw_per_m2 * area)

    setback = np.where(
        household,
        np.where(rng.random(n) < 0.25, 0.0, rng.uniform(1.0, 4.0, n)),
        np.where(rng.random(n) < 0.10, 0.0, rng.uniform(3.0, 6.0, n)),
    )
    start = np.where(household, rng.integers(6, 8, n), 0)
    end = np.where(household, rng.integers(22, 24, n), 24)
    weekend = np.zeros(n, dtype=bool)
    for name, (s, e, wk) in _COMFORT.items():  # a handful of uses, not samples
        mask = use == name
        start[mask], end[mask], weekend[mask] = s, e, wk

    return BuildingStock(
        municipality=np.asarray(muni, dtype=np.int64),
        use=use,
        lat_deg=lat,
        lon_deg=lon,
        floor_area_m2=area,
        year_built=np.asarray(year, dtype=np.int64),
        hlc_w_per_m2k=hlc_m2,
        hlc_w_per_k=rc.hlc_w_per_k,
        tau_h=tau,
        ri_k_per_w=rc.ri_k_per_w,
        re_k_per_w=rc.re_k_per_w,
        h_vent_w_per_k=rc.h_vent_w_per_k,
        ci_j_per_k=rc.ci_j_per_k,
        ce_j_per_k=rc.ce_j_per_k,
        solar_aperture_m2=aperture,
        occupant_gain_w_per_m2=occupant_gain,
        base_load_w=base_load,
        peak_load_w=peak_load,
        carrier=carrier,
        efficiency=np.asarray(efficiency, dtype=np.float64),
        boiler_age_y=np.where(carrier == "gas", age, np.nan),
        heating_max_w=heating_max,
        dhw_kwh_per_yr=dhw,
        setpoint_c=setpoint,
        setback_k=setback,
        comfort_start_h=np.asarray(start, dtype=np.int64),
        comfort_end_h=np.asarray(end, dtype=np.int64),
        weekend_setback=weekend,
        occupants=np.where(household, persons, 0).astype(np.int64),
    )


def setpoint_schedule(
    stock: BuildingStock, local_hour: npt.ArrayLike, weekday: npt.ArrayLike
) -> npt.NDArray[np.float32]:
    """Hourly setpoint of every building, shape (n, T), float32 [°C], time-major memory.

    Comfort setpoint inside [comfort_start_h, comfort_end_h) local time (on weekdays only
    where ``weekend_setback``), setpoint − setback_k otherwise.
    """
    h = np.asarray(local_hour, dtype=np.int64)[:, None]
    wd = np.asarray(weekday, dtype=np.int64)[:, None]
    comfort = (h >= stock.comfort_start_h[None, :]) & (h < stock.comfort_end_h[None, :])
    comfort &= ~(stock.weekend_setback[None, :] & (wd >= 5))
    low = (stock.setpoint_c - stock.setback_k).astype(np.float32)[None, :]
    return np.where(comfort, stock.setpoint_c.astype(np.float32)[None, :], low).T
