"""True hourly series → what meters report: final energy, indexes, quantisation, gaps, sensors.

All functions work on (meters, steps) arrays at once; a reading at step k is taken at the end
of step k.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt

from simulators.stock import heat_pump_cop

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

GAS_KWH_PER_M3: Final = 11.2  # conversion coefficient × higher heating value, Lille network
# Index resolution per metered quantity [kWh]: Linky 1 Wh, gas 0.01 m³, heat meter 0.1 kWh.
RESOLUTION_KWH: Final = {"electricity": 0.001, "gas": 0.01 * GAS_KWH_PER_M3, "heat": 0.1}
# Carriers whose heating is metered by a separate meter, and which quantity it reports.
_BLOCK_ROWS: Final = 2048
HEATING_METER_QUANTITY: Final = {
    "gas": "gas",
    "district_heat": "heat",
    "fuel_oil": "heat",
    "wood": "heat",
}


def heating_efficiency(
    carrier: npt.ArrayLike, efficiency: npt.ArrayLike, outdoor_temp_c: npt.ArrayLike
) -> FloatArray:
    """Heat delivered per unit of final energy, shape broadcast of (n, 1) and (T,) [-].

    Heat pumps: ``heat_pump_cop(Te, efficiency)``; other carriers: ``efficiency``.
    """
    c = np.asarray(carrier)
    eff = np.asarray(efficiency, dtype=np.float64)
    te = np.asarray(outdoor_temp_c, dtype=np.float64)
    hp = (c == "heat_pump")[:, None]
    return np.asarray(np.where(hp, heat_pump_cop(te[None, :], eff[:, None]), eff[:, None]))


def heating_final_energy_kwh(
    heat_w: npt.ArrayLike,
    *,
    carrier: npt.ArrayLike,
    efficiency: npt.ArrayLike,
    outdoor_temp_c: npt.ArrayLike,
    dt_s: float = 3600.0,
) -> Float32Array:
    """Final energy drawn for heating in each step, shape (n, T), float32 [kWh].

    Parameters
    ----------
    heat_w : array_like, (n, T)
        Heat delivered, mean over the step [W].
    carrier : array_like of str, (n,)
    efficiency : array_like, (n,)
        Seasonal efficiency, or the heat pump's COP at 0 °C [-].
    outdoor_temp_c : array_like, (T,)
        Sets the heat pump COP [°C].

    Notes
    -----
    District heat, fuel oil and wood are metered as delivered heat (heat meter on the
    substation or boiler output), so for the meter use ``heat_w`` directly; this function
    gives what the carrier itself delivers (fuel burnt, electricity drawn).
    """
    heat = np.asarray(heat_w, dtype=np.float32)
    c = np.asarray(carrier)
    eff = np.asarray(efficiency, dtype=np.float64)
    if np.any(eff <= 0):
        raise ValueError("efficiency: must be positive")
    out = heat * np.float32(dt_s / 3.6e6)
    hp = np.flatnonzero(c == "heat_pump")
    other = np.flatnonzero(c != "heat_pump")
    out[other] /= eff[other].astype(np.float32)[:, None]
    if hp.size:
        cop = heating_efficiency(c[hp], eff[hp], outdoor_temp_c).astype(np.float32)
        out[hp] /= cop
    return out


def missing_mask(
    shape: tuple[int, int],
    *,
    rng: np.random.Generator,
    rate_range: tuple[float, float] = (0.01, 0.05),
) -> tuple[npt.NDArray[np.bool_], FloatArray]:
    """Readings lost in transmission: (mask (M, T), per-meter rate (M,)).

    Each meter draws its loss rate uniformly in ``rate_range``; losses are independent.
    """
    lo, hi = rate_range
    if not 0.0 <= lo <= hi < 1.0:
        raise ValueError(f"rate_range: need 0 ≤ low ≤ high < 1, got {rate_range}")
    rates = rng.uniform(lo, hi, shape[0])
    # 16-bit uniforms from raw bytes: 4× less memory traffic than float draws, rate
    # resolution 1.5e-5.
    u = np.frombuffer(rng.bytes(2 * shape[0] * shape[1]), dtype=np.uint16).reshape(shape)
    mask = u < np.round(rates * 65536.0).astype(np.uint32)[:, None]
    return mask, rates


def reading_jitter(
    shape: tuple[int, int], *, rng: np.random.Generator, max_s: int = 30
) -> npt.NDArray[np.int8]:
    """Offset of each reading from its nominal time, uniform in [−max_s, max_s] [s], int8."""
    if not 0 <= max_s <= 127:
        raise ValueError(f"max_s: must lie in [0, 127] to fit int8, got {max_s}")
    raw = np.frombuffer(rng.bytes(shape[0] * shape[1]), dtype=np.uint8).reshape(shape)
    # Modulo bias is below 1 % for max_s ≤ 30; reading times need no better.
    out = (raw % np.uint8(2 * max_s + 1)).astype(np.int8)
    out -= np.int8(max_s)
    return out


def cumulative_index(
    energy_kwh: npt.ArrayLike,
    *,
    resolution_kwh: npt.ArrayLike,
    start_kwh: npt.ArrayLike = 0.0,
    reset_rows: npt.ArrayLike | None = None,
    reset_steps: npt.ArrayLike | None = None,
    jitter_s: npt.ArrayLike | None = None,
    dt_s: float = 3600.0,
    out: FloatArray | None = None,
) -> FloatArray:
    """Cumulative index read at the end of each step, quantised like a real register [kWh].

    Parameters
    ----------
    energy_kwh : array_like, (M, T)
        Energy through the meter in each step [kWh]; NaN counts as 0, negative is refused.
    resolution_kwh : array_like, (M,) or scalar
        Register resolution [kWh]; the index is truncated (floor), as registers are.
    start_kwh : array_like, (M,) or scalar
        Index before the first step [kWh].
    reset_rows, reset_steps : array_like of int, optional
        Counter resets: from step ``s`` on, meter ``r`` counts again from 0 (a reboot or
        rollover), so the reading at ``s`` is the energy of step ``s`` alone.
    jitter_s : array_like of int, (M, T), optional
        Offset of the actual reading time from the step end, |jitter| ≤ dt/2 [s] (int8 is
        always within range for steps ≥ 256 s); the index
        then includes the matching part of the next (positive) or excludes part of the
        current (negative) step, which keeps it monotonic.
    out : ndarray, (M, T), float64, optional
        Where to write the result (saves a copy of 10⁸ values at city scale).

    Returns
    -------
    ndarray, (M, T), float64
    """
    e = np.asarray(energy_kwh)
    if e.ndim != 2:
        raise ValueError(f"energy_kwh: expected shape (meters, steps), got {e.shape}")
    if np.any(e < 0):
        raise ValueError("energy_kwh: must be ≥ 0 (a meter register never runs backwards)")
    m, t = e.shape
    res = np.broadcast_to(np.asarray(resolution_kwh, dtype=np.float64), (m,))
    if np.any(res <= 0):
        raise ValueError("resolution_kwh: must be positive")
    start = np.broadcast_to(np.asarray(start_kwh, dtype=np.float64), (m,))
    idx = _float64_copy(e, out)  # one copy, then everything in place
    np.cumsum(idx, axis=1, out=idx)
    # NaN propagates through the running sum, so the last column tells which rows had any;
    # only those are redone (NaN counts as 0), sparing two passes over clean inputs.
    nan_rows = np.flatnonzero(np.isnan(idx[:, -1]))
    if nan_rows.size:
        redo = np.nan_to_num(np.asarray(e[nan_rows], dtype=np.float64), nan=0.0)
        idx[nan_rows] = np.cumsum(redo, axis=1)
    idx += start[:, None]

    if reset_rows is not None or reset_steps is not None:
        rr = np.asarray(reset_rows, dtype=np.int64).reshape(-1)
        rs = np.asarray(reset_steps, dtype=np.int64).reshape(-1)
        if rr.shape != rs.shape:
            raise ValueError("reset_steps: must pair one-to-one with reset_rows")
        if np.any((rr < 0) | (rr >= m) | (rs < 0) | (rs >= t)):
            raise ValueError("reset_steps: reset outside the (meters, steps) grid")
        _apply_resets(idx, start, rr, rs)
    if jitter_s is not None:
        j = np.asarray(jitter_s)
        if j.shape != (m, t) or not np.issubdtype(j.dtype, np.integer):
            raise ValueError(f"jitter_s: expected integers of shape ({m}, {t})")
        if j.dtype.itemsize > 1 and np.any(np.abs(j) > dt_s / 2):
            raise ValueError("jitter_s: must stay within half a step")
        _add_jitter(idx, e, j, dt_s)

    idx /= res[:, None]
    idx += 1e-6  # so k·res that rounding left a hair below k still reads k
    np.floor(idx, out=idx)
    idx *= res[:, None]
    return idx


def temperature_sensor(
    true_c: npt.ArrayLike,
    *,
    rng: np.random.Generator,
    resolution_c: float = 0.1,
    noise_sd_c: float = 0.1,
    bias_sd_c: float = 0.2,
) -> FloatArray:
    """Temperature sensor readings: true value + fixed bias + noise, rounded [°C].

    Parameters
    ----------
    true_c : array_like, (M, T)
        True temperature (the sensor reports the mean of the past step) [°C].
    resolution_c : float
        Display resolution [K].
    noise_sd_c, bias_sd_c : float
        Std of the per-reading noise and of the per-sensor calibration bias [K].
    """
    true = np.asarray(true_c, dtype=np.float64)
    if true.ndim != 2:
        raise ValueError(f"true_c: expected shape (sensors, steps), got {true.shape}")
    if resolution_c <= 0:
        raise ValueError(f"resolution_c: must be positive, got {resolution_c}")
    bias = np.asarray(rng.normal(0.0, bias_sd_c, true.shape[0]))[:, None]
    noisy = true + bias + noise_sd_c * rng.standard_normal(true.shape)
    return np.asarray(np.round(noisy / resolution_c) * resolution_c)


def _apply_resets(idx: FloatArray, start: FloatArray, rows_: IntArray, steps_: IntArray) -> None:
    """Restart the running sums of ``idx`` at 0 from each (row, step) reset, in place."""
    if rows_.size == 0:
        return
    t = idx.shape[1]
    # Only the meters that reset are touched; others keep their plain running sum.
    rows, local = np.unique(rows_, return_inverse=True)
    sub = idx[rows]
    before = np.where(steps_ > 0, sub[local, np.maximum(steps_ - 1, 0)], start[rows_])
    key = np.full(sub.shape, -1, dtype=np.int64)
    key[local, steps_] = np.arange(rows_.size)
    last = np.maximum.accumulate(np.where(key >= 0, np.arange(t)[None, :], -1), axis=1)
    governing = np.take_along_axis(key, np.maximum(last, 0), axis=1)
    idx[rows] = sub - np.where(last >= 0, before[np.maximum(governing, 0)], 0.0)


def _add_jitter(
    idx: FloatArray,
    energy: npt.NDArray[np.floating],
    jitter: npt.NDArray[np.integer],
    dt_s: float,
) -> None:
    """Shift each reading by its jitter: + part of the next step, or − part of the current."""
    inv_dt = np.float32(1.0 / dt_s)
    for r0 in range(0, idx.shape[0], _BLOCK_ROWS):  # row blocks bound temporaries' memory
        r1 = min(idx.shape[0], r0 + _BLOCK_ROWS)
        eb = np.nan_to_num(energy[r0:r1], nan=0.0).astype(np.float32)
        jb = jitter[r0:r1]
        nxt = np.empty_like(eb)
        nxt[:, :-1] = eb[:, 1:]
        nxt[:, -1] = eb[:, -1]
        np.copyto(eb, nxt, where=jb > 0)
        eb *= jb
        eb *= inv_dt
        idx[r0:r1] += eb


def _float64_copy(e: npt.NDArray[Any], out: FloatArray | None) -> FloatArray:
    """``e`` as float64, written into ``out`` when given."""
    if out is None:
        return e.astype(np.float64)
    if out.shape != e.shape or out.dtype != np.float64:
        raise ValueError(f"out: expected float64 of shape {e.shape}")
    out[...] = e
    return out
