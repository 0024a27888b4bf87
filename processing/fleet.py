"""What a fleet of meters does together is not a fault of one building.

A building's fault strikes its own meters at its own time; the weather the model missed,
a school holiday or the heating season starting strike every building of a kind at once.
The level shifts compare each meter's day with the departure common to its kind that day.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from processing.baseline import nan_median

FloatArray = npt.NDArray[np.float64]
# Fewer meters of a kind than this: their median is one building's day, not a fleet's.
MIN_FLEET_METERS: Final = 10


def _relative(residual: FloatArray, expected: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        rel: FloatArray = np.where(expected > 0, residual / expected, np.nan)
    return rel


def _common_of_relative(rel: FloatArray) -> FloatArray:
    enough = np.count_nonzero(~np.isnan(rel), axis=0) >= MIN_FLEET_METERS
    out = np.full(rel.shape[1], np.nan)
    if enough.any():
        out[enough] = nan_median(np.ascontiguousarray(rel[:, enough].T))
    return out


def common_departure(residual: npt.ArrayLike, expected: npt.ArrayLike) -> FloatArray:
    """The relative departure from the expected use shared by the meters each day: the
    median of ``residual / expected``, shape (days,); NaN for a day with fewer than
    :data:`MIN_FLEET_METERS` meters expecting some use."""
    r = np.asarray(residual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    return _common_of_relative(_relative(r, e))


def remove_common_departure(
    residual: npt.ArrayLike, expected: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Daily residuals and expected use with each meter's share of the fleet's common
    departure moved from the one to the other.

    Each meter follows the fleet to its own degree: its loading ``β`` in [0, 1] is the
    least-squares slope of its relative residuals on the common departure (a home's gas
    follows a mild week closely, a gym's intermittent boiler hardly). ``expected ·
    (1 + β·c)`` is what the meter would have used had it done what its fleet did; the
    residual is what it did beyond that. Days without a fleet are left as they are.
    """
    r = np.asarray(residual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    own = _relative(r, e)
    c = np.nan_to_num(_common_of_relative(own))
    seen = ~np.isnan(own)
    sxy = np.where(seen, own, 0.0) @ c
    sxx = seen.astype(np.float64) @ (c * c)
    beta = np.clip(np.divide(sxy, sxx, out=np.zeros_like(sxy), where=sxx > 0), 0.0, 1.0)
    shared = beta[:, np.newaxis] * c[np.newaxis, :] * np.maximum(e, 0.0)
    return r - shared, e + shared
