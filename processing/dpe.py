"""French DPE (2021 method) classes from annual energy per m², as a metered-data estimate.

The label is the worse of the energy class (primary energy) and the climate class
(greenhouse-gas emissions). Thresholds and primary-energy factors: design.md §4.
"""

from __future__ import annotations

from datetime import date
from typing import Final

import numpy as np
import numpy.typing as npt

CLASSES: Final = ("A", "B", "C", "D", "E", "F", "G")

# Upper bounds of classes A..F; above the last bound is G.
ENERGY_BOUNDS_KWH_PER_M2: Final = (70.0, 110.0, 180.0, 250.0, 330.0, 420.0)
CO2_BOUNDS_KG_PER_M2: Final = (6.0, 11.0, 30.0, 50.0, 70.0, 100.0)

# Heating carriers known to the project, with the efficiency typical of each (seasonal,
# final energy in → heat out). Heat pumps use a COP that depends on outdoor temperature.
CARRIERS: Final = ("gas", "electricity", "heat_pump", "district_heat", "fuel_oil", "wood")

# Emission factors for heating, kgCO2e per kWh of final energy (DPE 2021 method, arrêté
# du 31 mars 2021, annexe; district heat uses a typical network's figure).
CO2_KG_PER_KWH: Final = {
    "gas": 0.227,
    "electricity": 0.079,
    "heat_pump": 0.079,
    "district_heat": 0.170,
    "fuel_oil": 0.324,
    "wood": 0.030,
}

_ELECTRIC: Final = frozenset({"electricity", "heat_pump"})
_ELECTRICITY_FACTOR_CHANGE: Final = date(2026, 1, 1)


def primary_energy_factor(carrier: str, on: date) -> float:
    """Primary-energy factor of a heating carrier on a date [kWh_ep / kWh_ef].

    Electricity is 2.3 until 2025-12-31 and 1.9 from 2026-01-01; every other carrier is 1.0.
    """
    if carrier not in CO2_KG_PER_KWH:
        raise ValueError(
            f"carrier: unknown heating carrier {carrier!r}; known: {', '.join(CARRIERS)}"
        )
    if carrier in _ELECTRIC:
        return 1.9 if on >= _ELECTRICITY_FACTOR_CHANGE else 2.3
    return 1.0


def class_index(values: npt.ArrayLike, bounds: tuple[float, ...]) -> npt.NDArray[np.int64]:
    """Index into ``CLASSES`` of each value for the given upper bounds (NaN → -1)."""
    v = np.asarray(values, dtype=np.float64)
    idx = np.searchsorted(np.asarray(bounds), v, side="left").astype(np.int64)
    idx[np.isnan(v)] = -1
    return idx


def dpe_class(
    primary_kwh_per_m2: npt.ArrayLike, co2_kg_per_m2: npt.ArrayLike
) -> npt.NDArray[np.str_]:
    """DPE class of each building: the worse of the energy class and the climate class.

    Parameters
    ----------
    primary_kwh_per_m2 : array_like
        Annual primary energy per floor area [kWh_ep/m²/yr].
    co2_kg_per_m2 : array_like
        Annual emissions per floor area [kgCO2e/m²/yr].

    Returns
    -------
    ndarray of str
        "A".."G", or "" where an input is NaN.
    """
    energy = class_index(primary_kwh_per_m2, ENERGY_BOUNDS_KWH_PER_M2)
    climate = class_index(co2_kg_per_m2, CO2_BOUNDS_KG_PER_M2)
    worst = np.maximum(energy, climate)
    worst[(energy < 0) | (climate < 0)] = -1
    letters = np.array([*CLASSES, ""])
    return letters[worst]  # -1 picks the trailing "" on purpose


def label_from_final_energy(
    final_kwh_per_m2: npt.ArrayLike, carrier: str, on: date
) -> npt.NDArray[np.str_]:
    """DPE class from annual final (delivered) heating energy per m² of one carrier."""
    final = np.asarray(final_kwh_per_m2, dtype=np.float64)
    return dpe_class(final * primary_energy_factor(carrier, on), final * CO2_KG_PER_KWH[carrier])
