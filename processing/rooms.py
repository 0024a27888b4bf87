"""A room thermometer's level shift that the weather explains is no sensor fault.

A room held by its thermostat in winter reads its setpoint within tenths of a kelvin; from
spring it free-floats, warming with the outdoor air and the sun by kelvins a week, and it
cools again in autumn until the heating takes over. The level-shift CUSUM compares each
day with the trailing four weeks, so the season's turns read as shifts and drifts lasting
one to four months: 101 of the 152 false ones on room thermometers lasted four weeks or
more, rising from February to May and falling in August and September (year scans of
seeds 300–315 at the fifteenth session's last commit).

A sensor's offset is a step the weather does not explain. :func:`weather_explained` fits
each event's room by least squares on the outdoor temperature and the sun, both smoothed
by the building's inertia (:func:`inertial_daily`), and a step at the event's onset, over
the weeks before the onset and the event's own days: an offset is found in the step, the
season in the weather's terms. A probe's drift, a ramp, leaves most of its departure in
the step as well (a ramp for drifts instead kept more of the season: mean precision 0.800
against 0.802).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

from processing.baseline import fill_gaps
from processing.events import Anomaly
from processing.weather_model import event_least_squares

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# Time constant of a room's answer to the outdoor air and the sun [days]: a building's
# envelope and furniture hold a day or two of weather (1 and 3 days: within 0.003 of the
# precision of 2 on the year scans of seeds 300–315).
INERTIA_DAYS: Final = 2.0
# Days before an event's onset read with it: the level-shift baseline's own four weeks.
BEFORE_DAYS: Final = 28
# Fewer read days in the fit, or before the onset, and the event is not tested.
MIN_DAYS: Final = 10
MIN_DAYS_BEFORE: Final = 7


def inertial_daily(hourly: npt.ArrayLike, days: int, steps_per_hour: int = 1) -> FloatArray:
    """Daily means of ``hourly`` (shape (steps,)) over ``days`` days, its gaps filled as
    every weather series' are (:func:`~processing.baseline.fill_gaps`), smoothed by an
    exponential filter of :data:`INERTIA_DAYS` (fewer than two readings: zeros)."""
    per_day = 24 * steps_per_hour
    h = fill_gaps(np.asarray(hourly, dtype=np.float64)[: days * per_day])
    if h.size == 0 or np.isnan(h).any():
        return np.zeros(days)
    # A last day cut short (a window ending in the day) holds its last reading.
    h = np.pad(h, (0, days * per_day - h.size), mode="edge")
    daily = h.reshape(days, per_day).mean(axis=1)
    a = 1.0 / INERTIA_DAYS
    smoothed, _ = lfilter([a], [1.0, a - 1.0], daily, zi=[(1.0 - a) * daily[0]])
    return np.asarray(smoothed, dtype=np.float64)


def weather_explained(
    found: Sequence[Anomaly],
    daily_mean: npt.ArrayLike,
    outdoor_c: npt.ArrayLike,
    sun_w_m2: npt.ArrayLike | None,
    *,
    min_share: float,
    meter_offset: int = 0,
) -> BoolArray:
    """Which level shifts and drifts of ``found`` the weather explains.

    Parameters
    ----------
    found : sequence of Anomaly
        Events of the rooms of ``daily_mean``; ``start`` and ``end`` of level shifts and
        drifts count days. Other kinds are never explained.
    daily_mean : array_like, shape (meters, days)
        Each room's daily mean temperature [°C], NaN where not read.
    outdoor_c, sun_w_m2 : array_like, shape (days,)
        Daily outdoor temperature [°C] and global irradiance [W/m²], smoothed by the
        building's inertia (:func:`inertial_daily`); no sun: a fit on the temperature alone.
    min_share : float
        An event is explained when the fit's step at its onset, in the event's direction,
        is under this share of its departure (``observed − expected``) [-].
    meter_offset : int
        ``meter_index`` of ``daily_mean[0]``.

    Returns
    -------
    ndarray of bool, shape (len(found),)
        True for the events the weather explains; False for the others and for those with
        too few read days to test (:data:`MIN_DAYS`, :data:`MIN_DAYS_BEFORE`).
    """
    out = np.zeros(len(found), dtype=bool)
    pick = np.asarray(
        [i for i, an in enumerate(found) if an.kind in ("level_shift", "drift")], dtype=np.int64
    )
    if pick.size == 0 or min_share <= 0:
        return out
    y = np.asarray(daily_mean, dtype=np.float64)
    n_days = y.shape[1]
    weather = [np.asarray(outdoor_c, dtype=np.float64)]
    if sun_w_m2 is not None:
        weather.append(np.asarray(sun_w_m2, dtype=np.float64))
    row = np.asarray([found[i].meter_index - meter_offset for i in pick], dtype=np.int64)
    onset = np.asarray([found[i].start for i in pick], dtype=np.int64)
    end = np.asarray([found[i].end for i in pick], dtype=np.int64)
    width = BEFORE_DAYS + int((end - onset).max())
    cols = onset[:, np.newaxis] - BEFORE_DAYS + np.arange(width)
    inside = (cols >= 0) & (cols < np.minimum(end, n_days)[:, np.newaxis])
    cols = np.clip(cols, 0, n_days - 1)
    yv = y[row[:, np.newaxis], cols]
    weight = (inside & ~np.isnan(yv)).astype(np.float64)
    step = (cols >= onset[:, np.newaxis]).astype(np.float64)
    xv = np.stack([np.ones_like(step), *(w[cols] for w in weather), step], axis=2)
    beta = event_least_squares(xv * weight[..., np.newaxis], np.where(weight > 0, yv, 0.0))
    departure = np.asarray([found[i].observed - found[i].expected for i in pick])
    tested = (weight.sum(axis=1) >= MIN_DAYS) & (
        (weight * (1.0 - step)).sum(axis=1) >= MIN_DAYS_BEFORE
    )
    in_step = np.sign(departure) * beta[:, -1]
    out[pick] = tested & (in_step < min_share * np.abs(departure))
    return out
