"""Feeder/transformer sensors every 10 minutes: voltage, frequency, load, PV, labelled events.

Rows are stacked by quantity: row ``q·F + f`` is quantity ``GRID_QUANTITIES[q]`` of feeder f.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

from simulators.anomalies import AnomalyLabels, place_events, ragged_steps

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

NOMINAL_VOLTAGE_V: Final = 230.0
NOMINAL_FREQUENCY_HZ: Final = 50.0
GRID_QUANTITIES: Final = ("grid_voltage", "grid_frequency", "grid_load", "pv")
GRID_UNITS: Final = ("V", "Hz", "pu", "W")
GRID_EVENT_KINDS: Final = ("voltage_sag", "voltage_swell", "frequency_excursion", "overload")
STEP_S: Final = 600


@dataclass(frozen=True, slots=True)
class GridSeries:
    """10-minute feeder series; value arrays have shape (F, T10).

    Attributes
    ----------
    ts : datetime64[s], (T10,)
        End of each 10-minute interval, UTC; values are means over the preceding 10 min.
    voltage_v : LV busbar voltage [V].
    frequency_hz : system frequency seen at the feeder [Hz].
    load_pu : net load (import positive) over transformer rating [pu].
    pv_w : PV injection on the feeder [W].
    rating_w : (F,) transformer rating [W] (unity power factor assumed).
    events : labels; ``meter`` is the stacked row (see module docstring).
    """

    ts: npt.NDArray[np.datetime64]
    voltage_v: FloatArray
    frequency_hz: FloatArray
    load_pu: FloatArray
    pv_w: FloatArray
    rating_w: FloatArray
    events: AnomalyLabels

    def stacked(self) -> FloatArray:
        """All rows in ``GRID_QUANTITIES`` order, shape (4·F, T10)."""
        return np.concatenate([self.voltage_v, self.frequency_hz, self.load_pu, self.pv_w])


def _upsample(hourly: FloatArray, factor: int) -> FloatArray:
    """Linear interpolation between hour centres onto sub-hour interval centres (last axis)."""
    t = hourly.shape[-1]
    x = (np.arange(t * factor) + 0.5) / factor - 0.5
    i0 = np.clip(np.floor(x).astype(np.int64), 0, t - 1)
    i1 = np.minimum(i0 + 1, t - 1)
    w = np.clip(x - i0, 0.0, 1.0)
    return np.asarray(hourly[..., i0] * (1.0 - w) + hourly[..., i1] * w)


def simulate_grid(
    *,
    ts: npt.ArrayLike,
    feeder_load_w: npt.ArrayLike,
    pv_kwp: npt.ArrayLike,
    ghi_w_m2: npt.ArrayLike,
    rng: np.random.Generator,
    events_per_year: float = 6.0,
) -> GridSeries:
    """Simulate feeder sensors from hourly feeder loads and irradiance.

    Parameters
    ----------
    ts : array_like of datetime64, (T,)
        Hour starts, UTC.
    feeder_load_w : array_like, (F, T)
        Consumption downstream of each transformer, mean over each hour [W].
    pv_kwp : array_like, (F,)
        Installed PV on each feeder [kWp].
    ghi_w_m2 : array_like, (T,)
        Global horizontal irradiance [W/m²].
    rng : numpy.random.Generator
    events_per_year : float
        Expected events of each kind per feeder and year [1/yr].

    Notes
    -----
    - Loads are interpolated to 10 min with 3 % noise; PV = kWp · GHI/1000 · 0.8
      (performance ratio) with ±15 % cloud flicker.
    - Transformer ratings put the natural peak of |net load| at 0.7–0.9 pu, so every
      overload (> 1.0 pu) is an injected, labelled one.
    - Voltage = 230·(1.025 − 0.06·net_pu) + N(0, 0.6 V): off-load tap +2.5 %, drop with
      load, rise with reverse (PV) flow; it stays within 230 V ±10 % except during events.
      Overloads lower the voltage consistently (the voltage rows change there too).
    - Frequency: one system-wide AR(1) (σ ≈ 15 mHz) plus 2 mHz sensor noise per feeder.
    - Events (one per feeder and day at most): sag to 0.40–0.88 pu or swell to 1.11–1.16 pu
      for 1–3 intervals, frequency excursion ±0.2–0.6 Hz for 1–3 intervals (system-wide,
      labelled on every feeder), overload to 1.05–1.4 pu for 3–12 intervals. ``magnitude``
      is the event's level: voltage [pu of 230 V], frequency deviation [Hz], load [pu].
    """
    t_h = np.asarray(ts, dtype="datetime64[s]")
    load_h = np.asarray(feeder_load_w, dtype=np.float64)
    if load_h.ndim != 2 or load_h.shape[1] != t_h.size:
        raise ValueError(f"feeder_load_w: expected shape (F, {t_h.size}), got {load_h.shape}")
    kwp = np.broadcast_to(np.asarray(pv_kwp, dtype=np.float64), (load_h.shape[0],))
    ghi = np.asarray(ghi_w_m2, dtype=np.float64)
    if ghi.shape != t_h.shape:
        raise ValueError(f"ghi_w_m2: expected shape {t_h.shape}, got {ghi.shape}")
    if events_per_year < 0:
        raise ValueError(f"events_per_year: must be ≥ 0, got {events_per_year}")
    factor = 3600 // STEP_S
    n_f = load_h.shape[0]
    steps = t_h.size * factor
    ts10 = t_h[0] + (np.arange(steps) + 1) * np.timedelta64(STEP_S, "s")

    load = _upsample(load_h, factor) * (1.0 + 0.03 * rng.standard_normal((n_f, steps)))
    flicker = np.clip(1.0 + 0.15 * rng.standard_normal((n_f, steps)), 0.3, 1.3)
    pv = kwp[:, None] * _upsample(ghi, factor)[None, :] * 0.8 * flicker
    net = load - pv
    # A feeder without buildings would have no rating at all; 1 W keeps its per-unit load finite.
    rating = np.maximum(np.abs(net).max(axis=1), 1.0) / rng.uniform(0.7, 0.9, n_f)
    load_pu = net / rating[:, None]

    # System frequency: AR(1) on 10-min means, identical on every feeder.
    phi = 0.7
    f_sys = lfilter([1.0], [1.0, -phi], rng.standard_normal(steps) * 0.015 * np.sqrt(1 - phi**2))

    row, kind, start, length, level = _draw_events(rng, n_f, steps, events_per_year)
    steps_i, ev = ragged_steps(start, length)

    over = kind[ev] == 3
    load_pu[row[ev][over], steps_i[over]] = level[ev][over]
    voltage = NOMINAL_VOLTAGE_V * (1.025 - 0.06 * load_pu) + 0.6 * rng.standard_normal((n_f, steps))
    vsel = kind[ev] <= 1
    voltage[row[ev][vsel], steps_i[vsel]] = NOMINAL_VOLTAGE_V * level[ev][vsel]
    fsel = kind[ev] == 2
    f_sys[steps_i[fsel]] = level[ev][fsel]
    frequency = NOMINAL_FREQUENCY_HZ + f_sys[None, :] + 0.002 * rng.standard_normal((n_f, steps))

    local = np.flatnonzero(kind != 2)
    system = np.flatnonzero(kind == 2)
    quantity_row = np.asarray([0, 0, 1, 2])[kind]
    meter = np.concatenate(
        [quantity_row[local] * n_f + row[local], n_f + np.tile(np.arange(n_f), system.size)]
    )
    sel = np.concatenate([local, np.repeat(system, n_f)])
    events = AnomalyLabels.build(
        meter=meter,
        kind=np.asarray(GRID_EVENT_KINDS)[kind[sel]],
        magnitude=level[sel],
        start_step=start[sel],
        stop_step=(start + length)[sel],
        ts=ts10,
    )
    return GridSeries(
        ts=ts10,
        voltage_v=voltage,
        frequency_hz=frequency,
        load_pu=load_pu,
        pv_w=pv,
        rating_w=rating,
        events=events,
    )


def _draw_events(
    rng: np.random.Generator, feeders: int, steps: int, events_per_year: float
) -> tuple[IntArray, IntArray, IntArray, IntArray, FloatArray]:
    """Rows (−1: system-wide), kind index, start, length and level of every grid event."""
    # Local events: at most one per (feeder, day); kinds sag, swell, overload.
    slot = 86400 // STEP_S
    local_kinds = np.asarray([0, 1, 3])
    prob = min(1.0, local_kinds.size * events_per_year / 365.0)
    row, slot_start, slot_len = place_events(rng, feeders, steps, slot_steps=slot, probability=prob)
    kind = local_kinds[rng.integers(0, local_kinds.size, row.size)]
    # System-wide frequency excursions: at most one per day, seen on every feeder.
    _, f_start, f_len = place_events(
        rng, 1, steps, slot_steps=slot, probability=min(1.0, events_per_year / 365.0)
    )
    row = np.concatenate([row, np.full(f_start.size, -1)])
    slot_start = np.concatenate([slot_start, f_start])
    slot_len = np.concatenate([slot_len, f_len])
    kind = np.concatenate([kind, np.full(f_start.size, 2)])
    lo = np.asarray([1, 1, 1, 3])[kind]
    hi = np.asarray([3, 3, 3, 12])[kind]
    length = np.minimum(rng.integers(lo, hi + 1), slot_len)
    start = slot_start + (rng.random(row.size) * (slot_len - length + 1)).astype(np.int64)
    level = np.select(
        [kind == 0, kind == 1, kind == 2],
        [
            rng.uniform(0.40, 0.88, row.size),
            rng.uniform(1.11, 1.16, row.size),
            np.where(rng.random(row.size) < 0.5, -1.0, 1.0) * rng.uniform(0.2, 0.6, row.size),
        ],
        default=rng.uniform(1.05, 1.4, row.size),
    )
    return (
        row.astype(np.int64),
        kind.astype(np.int64),
        start.astype(np.int64),
        length.astype(np.int64),
        np.asarray(level, dtype=np.float64),
    )
