"""Weather normalisation and DPE estimate from metered heating energy, plus worst-decile ranking.

Degree-days, normal-year heating per m², primary energy and the DPE label via ``processing.dpe``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

import numpy as np
import numpy.typing as npt

from processing import dpe

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

LILLE_NORMAL_DJU: Final = 2500.0  # base 18 °C, climate zone H1a (design.md §4)
DJU_BASE_C: Final = 18.0
PASSOIRES: Final = frozenset({"F", "G"})


def degree_days(
    t_mean: npt.ArrayLike,
    *,
    base_c: float = DJU_BASE_C,
    t_min: npt.ArrayLike | None = None,
    t_max: npt.ArrayLike | None = None,
) -> FloatArray:
    """Heating degree-days per day ``max(base − T, 0)`` [K·d].

    Parameters
    ----------
    t_mean : array_like
        Daily mean outdoor temperature [°C]; ignored when ``t_min`` and ``t_max`` are given.
    base_c : float
        Base temperature [°C] (18 °C for French DJU).
    t_min, t_max : array_like, optional
        Daily minimum and maximum [°C]; Météo-France DJU use their mean as T.

    Returns
    -------
    ndarray
        Degree-days [K·d]; NaN where the temperature is NaN.
    """
    if (t_min is None) != (t_max is None):
        raise ValueError("t_min, t_max: give both or neither")
    if t_min is not None and t_max is not None:
        t = (np.asarray(t_min, dtype=np.float64) + np.asarray(t_max, dtype=np.float64)) / 2
    else:
        t = np.asarray(t_mean, dtype=np.float64)
    dd: FloatArray = np.maximum(base_c - t, 0.0)  # NaN propagates
    return dd


def normalise_heating(
    heating_kwh: npt.ArrayLike,
    dju_observed: npt.ArrayLike,
    *,
    dju_normal: float = LILLE_NORMAL_DJU,
) -> FloatArray:
    """Annual heating energy scaled to the site's normal year ``Q·DJU_normal/DJU_observed`` [kWh].

    Parameters
    ----------
    heating_kwh : array_like
        Heating energy over the period, baseload removed [kWh] (e.g. ``Q − 365·b`` from the
        change-point fit).
    dju_observed : array_like
        Degree-days of the same period at the same base [K·d].
    dju_normal : float
        Normal-year degree-days of the site [K·d] (Lille ≈ 2,500, base 18 °C).

    Returns
    -------
    ndarray
        [kWh/yr]; NaN where ``dju_observed`` is not positive.
    """
    q = np.asarray(heating_kwh, dtype=np.float64)
    dd = np.asarray(dju_observed, dtype=np.float64)
    if dju_normal <= 0:
        raise ValueError(f"dju_normal: must be > 0, got {dju_normal}")
    with np.errstate(invalid="ignore", divide="ignore"):
        out: FloatArray = np.where(dd > 0, q * dju_normal / dd, np.nan)
    return out


def per_m2(value: npt.ArrayLike, floor_area_m2: npt.ArrayLike) -> FloatArray:
    """Value per floor area [unit/m²]; NaN where the area is missing or not positive."""
    v = np.asarray(value, dtype=np.float64)
    area = np.asarray(floor_area_m2, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out: FloatArray = np.where(area > 0, v / area, np.nan)
    return out


@dataclass(slots=True, frozen=True)
class DpeEstimate:
    """DPE estimate from metered data ("DPE estimate from metered data", not a certified DPE).

    Attributes
    ----------
    primary_kwh_per_m2 : ndarray
        Annual primary energy [kWh_ep/m²/yr].
    co2_kg_per_m2 : ndarray
        Annual emissions [kgCO2e/m²/yr].
    energy_class, climate_class, label : ndarray of str
        Class from energy, from CO2, and the worse of the two ("" where unknown).
    passoire : ndarray of bool
        Label F or G ("passoire thermique").
    """

    primary_kwh_per_m2: FloatArray
    co2_kg_per_m2: FloatArray
    energy_class: npt.NDArray[np.str_]
    climate_class: npt.NDArray[np.str_]
    label: npt.NDArray[np.str_]
    passoire: BoolArray


def dpe_estimate(
    final_kwh_per_m2: npt.ArrayLike, carrier: npt.ArrayLike, *, on: date
) -> DpeEstimate:
    """DPE classes of buildings from normal-year final heating energy per m².

    Parameters
    ----------
    final_kwh_per_m2 : array_like, shape (buildings,)
        Weather-normalised annual final (delivered) energy per floor area [kWh_ef/m²/yr].
    carrier : str or array_like of str, shape (buildings,)
        Heating carrier of each building (see ``dpe.CARRIERS``).
    on : date
        Assessment date; fixes the electricity primary-energy factor (2.3, 1.9 from 2026).

    Returns
    -------
    DpeEstimate
    """
    final = np.atleast_1d(np.asarray(final_kwh_per_m2, dtype=np.float64))
    car = np.broadcast_to(np.asarray(carrier, dtype=str), final.shape)
    kinds, inverse = np.unique(car, return_inverse=True)
    # A handful of carriers: look each factor up once, then gather by building.
    pef = np.array([dpe.primary_energy_factor(str(k), on) for k in kinds])
    co2 = np.array([dpe.CO2_KG_PER_KWH[str(k)] for k in kinds])
    primary = final * pef[inverse.reshape(final.shape)]
    emissions = final * co2[inverse.reshape(final.shape)]
    letters = np.array([*dpe.CLASSES, ""])
    energy = letters[dpe.class_index(primary, dpe.ENERGY_BOUNDS_KWH_PER_M2)]
    climate = letters[dpe.class_index(emissions, dpe.CO2_BOUNDS_KG_PER_M2)]
    label = dpe.dpe_class(primary, emissions)
    passoire = np.isin(label, list(PASSOIRES))
    return DpeEstimate(primary, emissions, energy, climate, label, passoire)


def group_ids(*keys: npt.ArrayLike) -> IntArray:
    """One integer id per distinct combination of keys (e.g. municipality, era, use)."""
    if not keys:
        raise ValueError("keys: need at least one group key")
    ids = [np.unique(np.asarray(k), return_inverse=True)[1].reshape(-1) for k in keys]
    sizes = {i.size for i in ids}
    if len(sizes) != 1:
        raise ValueError(f"keys: all keys need the same length, got {sorted(sizes)}")
    combined = np.unique(np.stack(ids, axis=1), axis=0, return_inverse=True)[1]
    return np.asarray(combined, dtype=np.int64).reshape(-1)


@dataclass(slots=True, frozen=True)
class DecileRank:
    """Rank of each building within its group.

    Attributes
    ----------
    percentile : ndarray
        Position in the group's ascending order over its valid size [0–1); NaN if excluded.
    worst_decile : ndarray of bool
        Among the ``ceil(n/10)`` highest values of a group with at least ``min_group`` valid
        members.
    group_size : ndarray of int64
        Valid members of the building's group.
    """

    percentile: FloatArray
    worst_decile: BoolArray
    group_size: IntArray


def worst_decile(
    values: npt.ArrayLike, groups: npt.ArrayLike, *, min_group: int = 10
) -> DecileRank:
    """Flag the worst tenth (highest values, e.g. kWh/m²) within each group, without loops.

    Parameters
    ----------
    values : array_like, shape (buildings,)
        Higher is worse [any unit]; NaN values are excluded from ranks and sizes.
    groups : array_like of int, shape (buildings,)
        Group id, e.g. from :func:`group_ids`.
    min_group : int
        Groups smaller than this flag nobody (a decile of three buildings means nothing;
        10 is also the publication threshold for residential data).

    Returns
    -------
    DecileRank

    Notes
    -----
    One ``lexsort`` by (group, value) orders every group; a building's rank is its position
    minus its group's first position. Ties keep input order.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    g = np.asarray(groups).reshape(-1)
    if g.shape != v.shape:
        raise ValueError(f"groups: expected {v.size} entries, got {g.size}")
    valid = ~np.isnan(v)
    _, gid = np.unique(g, return_inverse=True)
    gid = gid.reshape(-1).astype(np.int64)
    size_per_group = np.bincount(gid[valid], minlength=int(gid.max(initial=-1)) + 1)
    # Invalid values sort after every valid one of their group and are never flagged.
    order = np.lexsort((np.where(valid, v, np.inf), gid))
    sorted_gid = gid[order]
    first = np.searchsorted(sorted_gid, sorted_gid, side="left")
    rank = np.empty(v.size, dtype=np.int64)
    rank[order] = np.arange(v.size) - first
    size = size_per_group[gid]
    n_worst = -(-size // 10)
    flagged = valid & (size >= min_group) & (rank >= size - n_worst)
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = np.where(valid & (size > 0), rank / size, np.nan)
    return DecileRank(percentile=pct, worst_decile=flagged, group_size=size.astype(np.int64))
