"""Cumulative indexes to interval consumption (counter resets handled); power to hourly means."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def _as_matrix(x: npt.ArrayLike, name: str) -> FloatArray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[np.newaxis, :]
    if a.ndim != 2:
        raise ValueError(f"{name}: expected shape (meters, steps), got {a.shape}")
    return a


def interval_consumption(
    index: npt.ArrayLike, *, jitter: float = 0.0, bridge_gaps: bool = False
) -> tuple[FloatArray, BoolArray]:
    """Consumption per step from a cumulative index, treating every drop as a counter reset.

    Parameters
    ----------
    index : array_like, shape (meters, steps) or (steps,)
        Cumulative index [energy unit, e.g. Wh or kWh]; NaN where no reading.
    jitter : float
        Drops no larger than this are read as sensor jitter: zero consumption, no reset
        [index unit]. Default 0: every drop is a reset.
    bridge_gaps : bool
        If true, the first reading after a gap is compared with the last valid reading, so the
        energy used during the gap lands on that step; if false (default) that step is NaN.

    Returns
    -------
    consumption : ndarray, shape (meters, steps)
        Energy used between step ``t-1`` and step ``t`` [index unit]; NaN at step 0 and where
        either reading is missing. Never negative.
    reset : ndarray of bool, shape (meters, steps)
        True where a counter reset was detected.

    Notes
    -----
    Home Assistant ``total_increasing`` semantics: after a reset the counter restarted from
    zero, so the interval consumption is the value read after the reset (the energy used
    between the last reading and the reset is unknown and lost). Home Assistant tolerates
    drops below 10 % as jitter; here the tolerance is an explicit absolute ``jitter``.
    """
    x = _as_matrix(index, "index")
    if jitter < 0:
        raise ValueError(f"jitter: must be >= 0, got {jitter}")
    m, n = x.shape
    previous = np.full((m, n), np.nan)
    if bridge_gaps:
        valid = ~np.isnan(x)
        # Column of the last valid reading at or before each step (forward fill by index).
        last = np.where(valid, np.arange(n), -1)
        np.maximum.accumulate(last, axis=1, out=last)
        prev_col = np.empty_like(last)
        prev_col[:, 0] = -1
        prev_col[:, 1:] = last[:, :-1]
        rows = np.broadcast_to(np.arange(m)[:, np.newaxis], (m, n))
        has_prev = prev_col >= 0
        previous[has_prev] = x[rows[has_prev], prev_col[has_prev]]
    else:
        previous[:, 1:] = x[:, :-1]
    delta = x - previous
    with np.errstate(invalid="ignore"):
        drop = delta < -jitter
        small_drop = (delta < 0) & ~drop
    consumption = np.where(drop, x, delta)
    consumption[small_drop] = 0.0
    # A reset to a negative value (corrupt index) must still not give negative energy.
    np.maximum(consumption, 0.0, out=consumption, where=~np.isnan(consumption))
    return consumption, drop


def hourly_mean_power(
    power: npt.ArrayLike, *, steps_per_hour: int, min_valid: float = 0.5
) -> FloatArray:
    """Mean instantaneous power over each clock hour.

    Parameters
    ----------
    power : array_like, shape (meters, steps) or (steps,)
        Instantaneous power samples at a regular step [W]; NaN where missing. The first step
        must start an hour.
    steps_per_hour : int
        Samples per hour (e.g. 60 for one-minute readings); ``steps`` must be a multiple.
    min_valid : float
        Fraction of valid samples an hour needs for a mean; otherwise NaN [0–1].

    Returns
    -------
    ndarray, shape (meters, steps // steps_per_hour)
        Mean power per hour [W], which is also the energy per hour [Wh].
    """
    p = _as_matrix(power, "power")
    if steps_per_hour < 1:
        raise ValueError(f"steps_per_hour: must be >= 1, got {steps_per_hour}")
    m, n = p.shape
    if n % steps_per_hour:
        raise ValueError(
            f"power: {n} steps is not a whole number of hours at steps_per_hour={steps_per_hour}"
        )
    if not 0.0 < min_valid <= 1.0:
        raise ValueError(f"min_valid: must be in (0, 1], got {min_valid}")
    blocks = p.reshape(m, n // steps_per_hour, steps_per_hour)
    valid = ~np.isnan(blocks)
    count = valid.sum(axis=2)
    total = np.where(valid, blocks, 0.0).sum(axis=2)
    enough = count >= max(1, int(np.ceil(min_valid * steps_per_hour)))
    mean: FloatArray = np.divide(total, count, out=np.full(total.shape, np.nan), where=enough)
    return mean
