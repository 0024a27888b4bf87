"""Whole-building electricity (appliances, lighting, base load), occupancy and hot-water profiles.

Profiles are per use and local hour, weekday vs weekend; outputs have shape (n, T), float32.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from simulators.stock import USES

Float32Array = npt.NDArray[np.float32]

# 24 local hours, 0..1, per use: (weekday, weekend). Appliances and lighting.
_H = np.arange(24)


def _occupied(
    start: int, end: int, level: float = 1.0, off: float = 0.0
) -> npt.NDArray[np.float64]:
    return np.where((start <= _H) & (end > _H), level, off).astype(np.float64)


_HOUSEHOLD_WEEKDAY: Final = np.array(
    [
        0.08,
        0.06,
        0.05,
        0.05,
        0.05,
        0.08,
        0.30,
        0.60,
        0.45,
        0.25,
        0.20,
        0.22,
        0.30,
        0.25,
        0.20,
        0.22,
        0.30,
        0.55,
        0.85,
        1.0,
        0.95,
        0.80,
        0.50,
        0.20,
    ]
)
_HOUSEHOLD_WEEKEND: Final = np.array(
    [
        0.12,
        0.08,
        0.06,
        0.05,
        0.05,
        0.05,
        0.10,
        0.25,
        0.45,
        0.55,
        0.50,
        0.55,
        0.65,
        0.55,
        0.45,
        0.45,
        0.50,
        0.65,
        0.90,
        1.0,
        0.95,
        0.80,
        0.55,
        0.25,
    ]
)
_APPLIANCE: Final = np.stack(
    [
        np.stack([_HOUSEHOLD_WEEKDAY, _HOUSEHOLD_WEEKEND]),
        np.stack([_occupied(7, 17, 1.0, 0.02), np.full(24, 0.02)]),  # school
        np.stack([_occupied(7, 19, 1.0, 0.05), np.full(24, 0.05)]),  # office
        np.stack([_occupied(7, 22, 0.9, 0.05), _occupied(8, 20, 0.8, 0.05)]),  # gym
        np.stack([_occupied(8, 18, 1.0, 0.05), np.full(24, 0.05)]),  # town hall
        np.stack([_occupied(9, 19, 1.0, 0.05), _occupied(9, 18, 0.8, 0.05)]),  # library
    ]
)
_PRESENCE: Final = np.stack(
    [
        np.stack(
            [
                np.where((_H >= 8) & (_H < 17), 0.4, 1.0),
                np.where((_H >= 10) & (_H < 17), 0.7, 1.0),
            ]
        ),
        np.stack([_occupied(8, 16), np.zeros(24)]),
        np.stack([_occupied(8, 18, 0.8), np.zeros(24)]),
        np.stack([_occupied(7, 22, 0.6), _occupied(8, 20, 0.6)]),
        np.stack([_occupied(8, 18, 0.7), np.zeros(24)]),
        np.stack([_occupied(9, 19, 0.6), _occupied(9, 18, 0.6)]),
    ]
)
# Domestic hot water draw shape (weekday/weekend alike), normalised to a mean of 1.
_DHW_HOUSEHOLD: Final = np.array(
    [
        0.1,
        0.05,
        0.05,
        0.05,
        0.1,
        0.3,
        1.8,
        3.0,
        2.0,
        1.0,
        0.6,
        0.6,
        0.9,
        0.7,
        0.5,
        0.5,
        0.6,
        0.9,
        1.6,
        2.2,
        1.9,
        1.4,
        0.8,
        0.3,
    ]
)


def lognormal_noise(
    shape: tuple[int, int], *, sigma: npt.ArrayLike, rng: np.random.Generator
) -> Float32Array:
    """Multiplicative noise exp(σ·Z − σ²/2), mean 1, shape (n, T), float32 [-], time-major.

    ``sigma`` (n,) is the log-scale standard deviation of each row; Z is standard normal,
    drawn in float32 and transformed in place (10⁸ values at city scale).
    """
    sd = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (shape[0],))
    if np.any(sd < 0):
        raise ValueError("sigma: must be ≥ 0")
    sd32 = sd.astype(np.float32)[:, None]
    noise = rng.standard_normal(shape[::-1], dtype=np.float32).T  # time-major memory
    noise *= sd32
    noise -= np.float32(0.5) * sd32 * sd32
    np.exp(noise, out=noise)
    return noise


def use_index(use: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Position in ``USES`` of each use name; an unknown name raises, naming it."""
    names, inverse = np.unique(np.asarray(use), return_inverse=True)
    unknown = [str(u) for u in names if u not in USES]
    if unknown:
        raise ValueError(f"use: unknown use {unknown[0]!r}; known: {', '.join(USES)}")
    codes = np.asarray([USES.index(str(u)) for u in names], dtype=np.int64)
    return codes[inverse.reshape(-1)]


def _table(
    profiles: npt.NDArray[np.float64], local_hour: npt.ArrayLike, weekday: npt.ArrayLike
) -> Float32Array:
    """(uses, T) series from (uses, 2, 24) profiles and local hour/weekday arrays of length T."""
    h = np.asarray(local_hour, dtype=np.int64)
    weekend = (np.asarray(weekday, dtype=np.int64) >= 5).astype(np.int64)
    return profiles[:, weekend, h].astype(np.float32)


def presence(use: npt.ArrayLike, local_hour: npt.ArrayLike, weekday: npt.ArrayLike) -> Float32Array:
    """Share of peak occupancy present, shape (n, T), time-major memory [0–1]."""
    return _table(_PRESENCE, local_hour, weekday).T[:, use_index(use)].T


def simulate_electricity(
    *,
    use: npt.ArrayLike,
    base_load_w: npt.ArrayLike,
    peak_load_w: npt.ArrayLike,
    local_hour: npt.ArrayLike,
    weekday: npt.ArrayLike,
    day_of_year: npt.ArrayLike,
    rng: np.random.Generator,
    noise_sd: npt.ArrayLike | None = None,
) -> Float32Array:
    """Hourly non-heating electricity of each building, shape (n, T), float32 [W].

    The array is a transposed view of time-major memory (Fortran order): one hour of all
    buildings is contiguous, which is what the thermal time loop reads.

    Parameters
    ----------
    use : array_like of str, (n,)
        Building use, one of ``USES``.
    base_load_w, peak_load_w : array_like, (n,)
        Always-on load and the load at the profile's peak hour [W].
    local_hour, weekday : array_like of int, (T,)
        Europe/Paris hour (0–23) and weekday (0 = Monday) of each step.
    day_of_year : array_like, (T,)
        Day of year of each step [day]; sets the lighting season.
    rng : numpy.random.Generator
    noise_sd : array_like, optional, (n,)
        Log-normal sigma of hourly noise on the variable part; default 0.35 for households,
        0.08 otherwise.

    Notes
    -----
    ``P = base + (peak − base)·profile(use, weekend, hour)·season·ε``, season = 1 + 0.15
    cos(2π(doy − 15)/365) (more lighting in winter), ε log-normal with mean 1, independent
    per hour and building.
    """
    idx = use_index(use)
    base = np.asarray(base_load_w, dtype=np.float64)
    peak = np.asarray(peak_load_w, dtype=np.float64)
    if np.any(base < 0) or np.any(peak < base):
        raise ValueError("peak_load_w: must be ≥ base_load_w ≥ 0")
    sd = (
        np.where(idx == 0, 0.35, 0.08)
        if noise_sd is None
        else np.broadcast_to(np.asarray(noise_sd, dtype=np.float64), idx.shape)
    )
    doy = np.asarray(day_of_year, dtype=np.float64)
    season = (1.0 + 0.15 * np.cos(2.0 * np.pi * (doy - 15.0) / 365.0)).astype(np.float32)
    table = _table(_APPLIANCE, local_hour, weekday) * season
    out = table.T[:, idx]  # (T, n): time-major, one contiguous row per hour
    out *= lognormal_noise(out.shape[::-1], sigma=sd, rng=rng).T
    out *= (peak - base).astype(np.float32)[None, :]
    out += base.astype(np.float32)[None, :]
    return out.T


def hot_water_heat_w(
    *,
    use: npt.ArrayLike,
    dhw_kwh_per_yr: npt.ArrayLike,
    local_hour: npt.ArrayLike,
    weekday: npt.ArrayLike,
) -> Float32Array:
    """Hourly domestic hot-water heat demand, shape (n, T), float32 [W].

    Households follow a morning/evening draw shape; other uses draw during their occupied
    hours (appliance profile). Each shape is normalised so the annual total is
    ``dhw_kwh_per_yr``.
    """
    idx = use_index(use)
    annual = np.asarray(dhw_kwh_per_yr, dtype=np.float64)
    shapes = _APPLIANCE.copy()
    shapes[0] = np.stack([_DHW_HOUSEHOLD, _DHW_HOUSEHOLD])
    shapes[1:] = np.maximum(shapes[1:] - 0.05, 0.0)
    # Normalise over a standard week (5 weekdays, 2 weekend days).
    weekly_mean = (5.0 * shapes[:, 0].mean(axis=1) + 2.0 * shapes[:, 1].mean(axis=1)) / 7.0
    shapes = shapes / weekly_mean[:, None, None]
    table = _table(shapes, local_hour, weekday)
    mean_w = (annual * 1000.0 / 8760.0).astype(np.float32)
    return table[idx] * mean_w[:, None]
