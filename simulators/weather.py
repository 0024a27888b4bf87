"""Hourly outdoor weather for a Lille-like climate: air temperature, global horizontal irradiance.

Synthetic series (seeded) or a real one read from CSV, plus the site's normal heating degree-days.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter
from scipy.special import ndtr

from wattwatch.climate import normal_daily_temp_c
from wattwatch.errors import WattwatchError
from wattwatch.holidays import french_holidays

FloatArray = npt.NDArray[np.float64]
TimeArray = npt.NDArray[np.datetime64]

LILLE_LAT_DEG: Final = 50.63
LILLE_LON_DEG: Final = 3.06

DAILY_ANOMALY_SD_K: Final = 3.0  # stationary std of the day-to-day anomaly [K]
DAILY_ANOMALY_AR1: Final = 0.75  # lag-1 autocorrelation of daily anomalies [-]
COLD_SPELLS_PER_YEAR: Final = 1.2
DEGREE_DAY_BASE_C: Final = 18.0
DESIGN_TEMPERATURE_C: Final = -9.0  # heating design outdoor temperature, zone H1a [°C]

_HOUR: Final = np.timedelta64(3600, "s")


class WeatherFileError(WattwatchError, ValueError):
    """A weather CSV is missing a column or holds a value that is not a number or timestamp."""


@dataclass(frozen=True, slots=True)
class Weather:
    """Hourly weather at one site; every array has shape (hours,).

    Attributes
    ----------
    ts : ndarray of datetime64[s]
        Start of each hour, UTC.
    temp_c : ndarray
        Outdoor air temperature, mean over the hour [°C].
    ghi_w_m2 : ndarray
        Global horizontal irradiance, mean over the hour [W/m²].
    """

    ts: TimeArray
    temp_c: FloatArray
    ghi_w_m2: FloatArray

    def daily_mean_temp_c(self) -> FloatArray:
        """Mean temperature of each complete 24-hour block from the first hour [°C]."""
        days = self.temp_c.size // 24
        return np.asarray(self.temp_c[: days * 24].reshape(days, 24).mean(axis=1), np.float64)

    def heating_degree_days(self, base_c: float = DEGREE_DAY_BASE_C) -> float:
        """Heating degree-days of the series, from daily means [K·day]."""
        return float(np.maximum(base_c - self.daily_mean_temp_c(), 0.0).sum())


def as_utc_seconds(value: object, name: str = "start") -> np.datetime64:
    """Coerce a str, datetime or datetime64 to a UTC ``datetime64[s]``; naive means UTC."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{name}: not an ISO 8601 timestamp: {value!r}") from None
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        text = value.isoformat()
    elif isinstance(value, dt.date):
        text = value.isoformat()
    elif isinstance(value, np.datetime64):
        text = str(value.astype("datetime64[s]"))
    else:
        raise TypeError(f"{name}: expected str, datetime or datetime64, got {type(value).__name__}")
    return np.datetime64(text, "s")


def hourly_timestamps(start: object, hours: int) -> TimeArray:
    """UTC start of each of ``hours`` hours from ``start`` (which must be on the hour)."""
    t0 = as_utc_seconds(start)
    if t0.astype(np.int64) % 3600:
        raise ValueError(f"start: must fall on the hour, got {t0}")
    if hours < 1:
        raise ValueError(f"hours: must be at least 1, got {hours}")
    return np.asarray(t0 + np.arange(hours) * _HOUR, dtype="datetime64[s]")


def _paris_local_seconds(ts: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Europe/Paris wall-clock seconds since 1970-01-01 of UTC timestamps.

    EU rule: UTC+2 from the last Sunday of March 01:00 UTC to the last Sunday of October
    01:00 UTC, UTC+1 otherwise. Computed in closed form, no tz database needed.
    """
    t = np.asarray(ts, dtype="datetime64[s]")
    years = t.astype("datetime64[Y]")

    def last_sunday_1am(month: int) -> TimeArray:
        last_day = ((years.astype("datetime64[M]") + month).astype("datetime64[D]")) - 1
        weekday = (last_day.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday (3)
        sunday = last_day - ((weekday - 6) % 7)
        return np.asarray(sunday.astype("datetime64[s]") + _HOUR, dtype="datetime64[s]")

    summer = (t >= last_sunday_1am(3)) & (t < last_sunday_1am(10))
    local = t + np.where(summer, 2, 1) * _HOUR
    return np.asarray(local.astype(np.int64), dtype=np.int64)


def paris_local_time(ts: npt.ArrayLike) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Hour of day (0–23) and weekday (0 = Monday) in Europe/Paris of UTC timestamps."""
    secs = _paris_local_seconds(ts)
    hour = (secs // 3600) % 24
    weekday = (secs // 86400 + 3) % 7
    return hour, weekday


def occupancy_weekday(ts: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Weekday (0 = Monday) in Europe/Paris for occupancy schedules: French public holidays
    count as Sundays, as offices and schools are closed and heated as at weekends."""
    days = _paris_local_seconds(ts) // 86400
    weekday = (days + 3) % 7
    if days.size == 0:
        return weekday
    years = range(int(days.min()) // 365 + 1969, int(days.max()) // 365 + 1971)
    holidays = np.asarray(french_holidays(years), dtype="datetime64[D]").astype(np.int64)
    return np.where(np.isin(days, holidays), 6, weekday)


def _day_of_year(ts: TimeArray) -> FloatArray:
    """Fractional day of year from 0 at 1 January 00:00 UTC [day]."""
    since_year = ts - ts.astype("datetime64[Y]").astype("datetime64[s]")
    return np.asarray(since_year.astype(np.int64) / 86400.0, dtype=np.float64)


def normal_heating_degree_days(
    base_c: npt.ArrayLike = DEGREE_DAY_BASE_C, *, daily_sd_k: float = DAILY_ANOMALY_SD_K
) -> FloatArray:
    """Expected annual heating degree-days of the site's climate for a base temperature [K·day/yr].

    Parameters
    ----------
    base_c : array_like
        Base temperature(s) [°C]; broadcasts (e.g. one balance temperature per building).
    daily_sd_k : float
        Standard deviation of daily mean temperature around the normal [K].

    Returns
    -------
    ndarray
        Sum over 365 days of E[(base − T_day)⁺] with T_day ~ N(normal, daily_sd_k²); about
        2,600 for base 18 °C (Lille, zone H1a, ~2,500 DJU).

    Notes
    -----
    Closed form of a Gaussian partial expectation: (b − μ)Φ(z) + σφ(z), z = (b − μ)/σ.
    Cold spells of the synthetic generator are not included (they add ≈ 1 %).
    """
    base = np.asarray(base_c, dtype=np.float64)
    if daily_sd_k <= 0:
        raise ValueError(f"daily_sd_k: must be positive, got {daily_sd_k}")
    mu = normal_daily_temp_c(np.arange(365) + 0.5)
    z = (base[..., None] - mu) / daily_sd_k
    pdf = np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)
    return np.asarray(((base[..., None] - mu) * ndtr(z) + daily_sd_k * pdf).sum(axis=-1))


NORMAL_HDD_BASE18: Final = float(normal_heating_degree_days(DEGREE_DAY_BASE_C))


def solar_cos_zenith(ts: npt.ArrayLike, lat_deg: float, lon_deg: float) -> FloatArray:
    """Cosine of the solar zenith angle at the middle of each hour starting at ``ts`` [-].

    Notes
    -----
    Cooper's declination and the hour angle from UTC plus longitude; the equation of time
    (±16 min) is ignored.
    """
    t = np.asarray(
        np.asarray(ts, dtype="datetime64[s]") + np.timedelta64(1800, "s"), dtype="datetime64[s]"
    )
    doy = _day_of_year(t)
    decl = np.deg2rad(23.44) * np.sin(2.0 * np.pi * (284.0 + doy) / 365.0)
    solar_hour = (doy % 1.0) * 24.0 + lon_deg / 15.0
    hour_angle = np.deg2rad(15.0 * (solar_hour - 12.0))
    lat = np.deg2rad(lat_deg)
    return np.asarray(
        np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(hour_angle),
        dtype=np.float64,
    )


def clear_sky_ghi(ts: npt.ArrayLike, lat_deg: float, lon_deg: float) -> FloatArray:
    """Clear-sky global horizontal irradiance, Haurwitz model [W/m²]."""
    cz = np.clip(solar_cos_zenith(ts, lat_deg, lon_deg), 0.0, None)
    with np.errstate(divide="ignore"):
        ghi = 1098.0 * cz * np.exp(-0.057 / np.where(cz > 0, cz, np.inf))
    return np.asarray(np.where(cz > 0.0, ghi, 0.0), dtype=np.float64)


def simulate_weather(
    *,
    start: object,
    days: int,
    rng: np.random.Generator,
    lat_deg: float = LILLE_LAT_DEG,
    lon_deg: float = LILLE_LON_DEG,
    cold_spells_per_year: float = COLD_SPELLS_PER_YEAR,
) -> Weather:
    """Synthetic hourly weather for ``days`` days from ``start`` (UTC, on the hour).

    Parameters
    ----------
    start : str or datetime or datetime64
        First hour, UTC.
    days : int
        Length [day].
    rng : numpy.random.Generator
        Source of randomness; the same generator state gives the same weather.
    lat_deg, lon_deg : float
        Site [°].
    cold_spells_per_year : float
        Mean number of winter cold spells per year (Poisson) [1/yr].

    Notes
    -----
    Daily mean = monthly normal (interpolated) + AR(1) anomaly (σ 3 K, φ 0.75) + cold
    spells (raised-cosine dips of 4–9 K over 3–10 days, centred December–February).
    Daily cloudiness c ∈ [0, 1] is an AR(1) latent Gaussian through Φ, cloudier in winter;
    GHI = clear-sky × (1 − 0.75 c^3.4) (Kasten–Czeplak). The diurnal cycle peaks at 14:30
    solar time, with an amplitude larger in summer and on clear days. Hourly values are the
    daily means interpolated linearly between day centres plus the diurnal term.
    """
    if days < 1:
        raise ValueError(f"days: must be at least 1, got {days}")
    if cold_spells_per_year < 0:
        raise ValueError(f"cold_spells_per_year: must be ≥ 0, got {cold_spells_per_year}")
    hours = days * 24
    ts = hourly_timestamps(start, hours)
    doy_h = _day_of_year(ts)
    day_starts = ts[::24]
    doy_d = _day_of_year(day_starts) + 0.5

    phi = DAILY_ANOMALY_AR1
    innov_sd = DAILY_ANOMALY_SD_K * np.sqrt(1.0 - phi * phi)
    eps = rng.standard_normal(days) * innov_sd
    zi = np.array([phi * rng.standard_normal() * DAILY_ANOMALY_SD_K])
    anomaly = lfilter([1.0], [1.0, -phi], eps, zi=zi)[0]

    n_spells = int(rng.poisson(cold_spells_per_year * days / 365.0))
    if n_spells:
        # Centres drawn in the winter months of the simulated span (a spell may fall outside).
        winter_days = np.flatnonzero((doy_d < 59.0) | (doy_d > 334.0))
        centre = (
            rng.choice(winter_days, n_spells)
            if winter_days.size
            else rng.integers(0, days, n_spells)
        )
        half = rng.uniform(1.5, 5.0, n_spells)
        depth = rng.uniform(4.0, 9.0, n_spells)
        x = (np.arange(days)[None, :] - centre[:, None]) / half[:, None]
        dip = np.where(np.abs(x) < 1.0, 0.5 * (1.0 + np.cos(np.pi * x)), 0.0)
        anomaly = anomaly - (depth[:, None] * dip).sum(axis=0)

    daily_mean = normal_daily_temp_c(doy_d) + anomaly
    summer = 0.5 * (1.0 - np.cos(2.0 * np.pi * (doy_d - 15.0) / 365.0))  # 0 Jan … 1 Jul

    cloud_latent = lfilter([1.0], [1.0, -0.5], rng.standard_normal(days) * np.sqrt(0.75))
    cloud = np.clip(ndtr(cloud_latent + 0.9 - 0.6 * summer) ** 0.6, 0.0, 1.0)

    t_hours = np.arange(hours, dtype=np.float64)
    day_centres = np.arange(days) * 24.0 + 11.5
    mean_h = np.interp(t_hours, day_centres, daily_mean)
    amp_h = np.repeat((1.5 + 3.0 * summer) * (1.3 - 0.8 * cloud), 24)
    solar_hour = (doy_h % 1.0) * 24.0 + 0.5 + lon_deg / 15.0
    temp = mean_h + amp_h * np.cos(2.0 * np.pi * (solar_hour - 14.5) / 24.0)

    ghi = clear_sky_ghi(ts, lat_deg, lon_deg) * np.repeat(1.0 - 0.75 * cloud**3.4, 24)
    return Weather(ts=ts, temp_c=np.asarray(temp, np.float64), ghi_w_m2=np.asarray(ghi, np.float64))


def load_weather_csv(path: str | Path) -> Weather:
    """Read a real hourly weather series from CSV with columns ``ts, temp_c, ghi_w_m2``.

    ``ts`` is ISO 8601; a UTC offset (or ``Z``) is honoured, a naive time is taken as UTC.
    Empty cells become NaN. Rows are returned in file order.
    """
    p = Path(path)
    with p.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"ts", "temp_c", "ghi_w_m2"} - set(reader.fieldnames or ())
        if missing:
            raise WeatherFileError(f"{p}: missing column(s) {', '.join(sorted(missing))}")
        rows = list(reader)
    ts = np.empty(len(rows), dtype="datetime64[s]")
    temp = np.empty(len(rows))
    ghi = np.empty(len(rows))
    for i, row in enumerate(rows):  # file parsing, not numeric work
        line = i + 2
        try:
            ts[i] = as_utc_seconds(row["ts"].strip().replace("Z", "+00:00"), "ts")
        except ValueError:
            raise WeatherFileError(f"{p}:{line}: ts: not a timestamp: {row['ts']!r}") from None
        for name, out in (("temp_c", temp), ("ghi_w_m2", ghi)):
            cell = row[name].strip()
            try:
                out[i] = float(cell) if cell else np.nan
            except ValueError:
                raise WeatherFileError(f"{p}:{line}: {name}: not a number: {cell!r}") from None
    return Weather(ts=ts, temp_c=temp, ghi_w_m2=ghi)
