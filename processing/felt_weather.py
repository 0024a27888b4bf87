"""The weather a building's heating answers: the outdoor temperature raised by the sun and
smoothed by the building's mass, and its degree-days under the building's balance temperature.
Each heating meter's time constant, sun factor and balance temperature are chosen on its days.

The daily weather model (:mod:`processing.weather_model`) reads a heating meter's days
against these degree-days. Degree-days of the outdoor air alone, with the sun as a separate
linear term, miss what a building does with the sun: a sunny spring afternoon warms the
mass, and the heating stays off through the night and the next morning; a home with large
windows needs no heating in a sunny April week at 8 °C and some in a grey December one at
the same temperature. With the sun and the mass inside the ``max(·, 0)``, the daily
residual of the homes' gas and heat meters of bench.accuracy's clean cities (seeds 300 and
301) is 19–26 % smaller from November to February and 28–47 % smaller from March to
October (docs/benchmarks.md, thirty-fourth session).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

from processing.baseline import fill_gaps

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# The candidates, every combination of the three (6 × 7 × 19 = 798). Time constant of the
# mass the heating sees [h] (0: the air temperature of the hour itself); the simulated
# buildings' dominant ones are 10–150 h, but the heating answers the faster air and inner
# walls first: seed 300's 156 homes on gas choose 3–24 h, 98 of them 6 h.
TIME_CONSTANTS_H: Final = (0.0, 3.0, 6.0, 9.0, 12.0, 24.0)
# Warming of the building per W/m² of global horizontal irradiance [K per W/m²]: its
# solar aperture over its heat-loss coefficient (a home with 6 m² of aperture and 85 W/K
# reads 0.07).
SUN_K_PER_W_M2: Final = (0.0, 0.01, 0.02, 0.04, 0.06, 0.08, 0.12)
BALANCE_C: Final = tuple(float(b) for b in range(4, 23))  # [°C]


@dataclass(frozen=True, slots=True)
class FeltWeather:
    """Every candidate's felt temperature and degree-days over a series of steps.

    Attributes
    ----------
    felt_c : ndarray, shape (time constants × sun factors, steps)
        Outdoor temperature plus the sun's warming, smoothed by each time constant [°C].
    degree_days : ndarray, shape (candidates, days)
        ``max(balance − felt, 0)`` summed over each whole day, per day [K·day]; candidate
        ``i`` reads felt row ``i // len(BALANCE_C)`` under ``BALANCE_C[i % len(BALANCE_C)]``.
    day_starts : ndarray of int, shape (days,)
        First step of each day.
    steps_per_hour : int
    """

    felt_c: FloatArray
    degree_days: FloatArray
    day_starts: IntArray
    steps_per_hour: int

    @classmethod
    def of(
        cls,
        outdoor_temp_c: npt.ArrayLike,
        sun_w_m2: npt.ArrayLike,
        day_starts: npt.ArrayLike,
        *,
        steps_per_hour: int = 1,
    ) -> FeltWeather:
        """The candidates over hourly (or finer) weather series of the same length, their
        gaps filled linearly (:func:`~processing.baseline.fill_gaps`)."""
        te = fill_gaps(outdoor_temp_c)
        sun = np.nan_to_num(fill_gaps(sun_w_m2))
        if te.shape != sun.shape:
            raise ValueError(f"sun_w_m2: expected shape {te.shape}, got {sun.shape}")
        if np.isnan(te).any():  # under two readings: nothing to feel
            te = np.zeros_like(te)
        starts = np.asarray(day_starts, dtype=np.int64)
        felt = np.empty((len(TIME_CONSTANTS_H) * len(SUN_K_PER_W_M2), te.size))
        row = 0
        for tau_h in TIME_CONSTANTS_H:
            for k in SUN_K_PER_W_M2:
                raw = te + k * sun
                if tau_h > 0 and raw.size:
                    a = float(np.exp(-1.0 / (tau_h * steps_per_hour)))
                    raw, _ = lfilter([1.0 - a], [1.0, -a], raw, zi=[a * raw[0]])
                felt[row] = raw
                row += 1
        bases = np.asarray(BALANCE_C)
        per_day = 24 * steps_per_hour
        dd = np.empty((felt.shape[0] * bases.size, starts.size))
        ends = np.append(starts[1:], te.size)
        for i, series in enumerate(felt):  # 42 rows, each one pass over the steps
            cum = np.zeros((bases.size, te.size + 1))
            np.cumsum(
                np.maximum(bases[:, np.newaxis] - series[np.newaxis, :], 0.0), 1, out=cum[:, 1:]
            )
            dd[i * bases.size : (i + 1) * bases.size] = (cum[:, ends] - cum[:, starts]) / per_day
        return cls(felt, dd, starts, steps_per_hour)

    def _ends(self) -> IntArray:
        """One past the last step of each day."""
        return np.append(self.day_starts[1:], self.felt_c.shape[1])

    def choose(
        self,
        observed: npt.ArrayLike,
        *,
        skip: npt.ArrayLike | None = None,
        until: npt.ArrayLike | None = None,
    ) -> IntArray:
        """Each meter's candidate: the one whose degree-days explain its daily use best as
        ``use = c + H·dd`` with ``H > 0`` (least squares over its days read whole and not
        skipped); −1 for a meter that no candidate explains with ``H > 0``.

        The series' last days choose too, though a run judges them: leaving the last week
        out made the service's replay of bench.accuracy's seed 300 find fewer level shifts
        within 2 days (0.892 → 0.831) and less precisely (0.648 → 0.623); the latest
        weather tells the most of a season's turn.

        Parameters
        ----------
        observed : array_like, shape (meters, days)
            Daily use [unit/day]; NaN where unknown.
        skip : array_like of bool, shape (days,), optional
            Days left out (a closing building's closed days).
        until : array_like of int, shape (meters,), optional
            One past each meter's last reading: a day it cuts short is left out.
        """
        y = np.asarray(observed, dtype=np.float64)
        days = self.degree_days.shape[1]
        if y.ndim != 2 or y.shape[1] != days:
            raise ValueError(f"observed: expected shape (meters, {days}), got {y.shape}")
        ok = np.isfinite(y)
        if skip is not None:
            ok &= ~np.asarray(skip, dtype=bool)[np.newaxis, :]
        if until is not None:
            ok &= self._ends()[np.newaxis, :] <= np.asarray(until)[:, np.newaxis]
        w = ok.astype(np.float64)
        y = np.where(ok, y, 0.0)
        dd = self.degree_days
        n = w.sum(axis=1, keepdims=True)
        # The normal equations of every (meter, candidate) pair from four matrix products.
        s_d, s_dd = w @ dd.T, w @ (dd * dd).T
        s_y, s_dy = y.sum(axis=1, keepdims=True), y @ dd.T
        det = n * s_dd - s_d * s_d
        solvable = det > 1e-9 * np.maximum(n * s_dd, 1.0)  # a candidate with dd ≠ constant
        slope = np.divide(n * s_dy - s_d * s_y, det, out=np.zeros_like(det), where=solvable)
        intercept = (s_y - slope * s_d) / np.maximum(n, 1.0)
        # The sum of squared residuals less Σy², which every candidate of a meter shares.
        sse = np.where(solvable & (slope > 0), -(intercept * s_y + slope * s_dy), np.inf)
        best = np.argmin(sse, axis=1)
        found = np.isfinite(sse[np.arange(y.shape[0]), best])
        return np.where(found, best, -1).astype(np.int64)

    def meters_degree_days(self, choice: npt.ArrayLike, until: npt.ArrayLike) -> FloatArray:
        """Degree-days of each meter's candidate (``choice``; NaN for −1, none chosen), each
        day summed up to the meter's last reading (``until``, one past its last step),
        shape (meters, days) [K·day]."""
        pick = np.asarray(choice, dtype=np.int64)
        stop = np.asarray(until, dtype=np.int64)
        if stop.shape != pick.shape:
            raise ValueError(f"until: expected shape {pick.shape}, got {stop.shape}")
        starts, per_day = self.day_starts, 24 * self.steps_per_hour
        out = self.degree_days[np.maximum(pick, 0)]
        # Days after the last reading count nothing; the day it falls in, its hours so far.
        out[starts[np.newaxis, :] >= stop[:, np.newaxis]] = 0.0
        last = np.searchsorted(starts, stop - 1, side="right") - 1
        short = np.flatnonzero((stop > 0) & (last >= 0) & (stop < self._ends()[last]))
        if short.size:
            day = last[short]
            steps = starts[day][:, np.newaxis] + np.arange(per_day)[np.newaxis, :]
            felt = self.felt_c[
                (pick[short] // len(BALANCE_C))[:, np.newaxis],
                np.minimum(steps, self.felt_c.shape[1] - 1),
            ]
            base = np.asarray(BALANCE_C)[pick[short] % len(BALANCE_C)][:, np.newaxis]
            read = steps < stop[short, np.newaxis]
            out[short, day] = (
                np.where(read, np.maximum(base - felt, 0.0), 0.0).sum(axis=1) / per_day
            )
        out[pick < 0] = np.nan
        return out


class FeltWeatherOnDemand:
    """The :class:`FeltWeather` of one weather series, made when it is first read: a scan
    whose meters have no daily weather model never pays for it, and the scans of a
    chunk's kinds (and their threads) share one. Two threads that read it first at once
    make it twice, the same."""

    def __init__(
        self, outdoor_temp_c: npt.ArrayLike, sun_w_m2: npt.ArrayLike, *, steps_per_hour: int = 1
    ) -> None:
        self._te = np.asarray(outdoor_temp_c, dtype=np.float64)
        self._sun = np.asarray(sun_w_m2, dtype=np.float64)
        self._per_hour = steps_per_hour
        self._felt: FeltWeather | None = None

    def get(self) -> FeltWeather:
        """The felt weather, over days from step 0 (local midnight)."""
        if self._felt is None:
            starts = np.arange(0, self._te.size, 24 * self._per_hour)
            self._felt = FeltWeather.of(self._te, self._sun, starts, steps_per_hour=self._per_hour)
        return self._felt
