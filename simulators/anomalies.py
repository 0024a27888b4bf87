"""Labelled anomalies injected into meter series shaped (meters, steps), with a chosen mix and rate.

Events never overlap on one meter, so each label window holds exactly one injected change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Final

import numpy as np
import numpy.typing as npt

from simulators.weather import paris_local_time

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

KINDS: Final = (
    "spike",
    "dropout",
    "flatline",
    "level_shift",
    "drift",
    "heating_at_night",
    "heating_on_holiday",
    "baseload_increase",
    "efficiency_loss",
    "sensor_offset",
    "counter_reset",
)
DEFAULT_MIX: Final = {
    "spike": 3.0,
    "dropout": 2.0,
    "flatline": 1.0,
    "level_shift": 1.5,
    "drift": 1.0,
    "heating_at_night": 1.0,
    "heating_on_holiday": 1.0,
    "baseload_increase": 1.0,
    "efficiency_loss": 1.0,
    "sensor_offset": 1.0,
    "counter_reset": 1.0,
}
# Duration range of each kind [h]; every event fits in one slot of SLOT_HOURS.
DURATION_H: Final = {
    "spike": (1, 3),
    "dropout": (2, 72),
    "flatline": (6, 120),
    "level_shift": (120, 336),
    "drift": (168, 336),
    "heating_at_night": (72, 336),
    "heating_on_holiday": (48, 48),
    "baseload_increase": (120, 336),
    "efficiency_loss": (168, 336),
    "sensor_offset": (72, 336),
    "counter_reset": (1, 1),
}
SLOT_HOURS: Final = 336
_ENERGY_KINDS: Final = frozenset(
    {"spike", "dropout", "flatline", "level_shift", "drift", "baseload_increase", "counter_reset"}
)
_HEATING_KINDS: Final = frozenset({"heating_at_night", "heating_on_holiday", "efficiency_loss"})
_TEMPERATURE_KINDS: Final = frozenset({"spike", "dropout", "flatline", "drift", "sensor_offset"})


@dataclass(frozen=True, slots=True)
class AnomalyLabels:
    """Labelled events, one per row; arrays of shape (k,).

    Attributes
    ----------
    meter : row of the meter in the series it was injected into.
    start, end : datetime64[s] timestamps of the first and last affected step (inclusive).
    kind : one of ``KINDS`` (grid events: ``simulators.grid.GRID_EVENT_KINDS``).
    magnitude : size of the change; meaning per kind (see ``inject_anomalies``).
    start_step, stop_step : half-open step range [start_step, stop_step) of the window.
    """

    meter: IntArray
    start: npt.NDArray[np.datetime64]
    end: npt.NDArray[np.datetime64]
    kind: npt.NDArray[np.str_]
    magnitude: FloatArray
    start_step: IntArray
    stop_step: IntArray

    def __len__(self) -> int:
        return int(self.meter.shape[0])

    @classmethod
    def build(
        cls,
        *,
        meter: npt.ArrayLike,
        kind: npt.ArrayLike,
        magnitude: npt.ArrayLike,
        start_step: npt.ArrayLike,
        stop_step: npt.ArrayLike,
        ts: npt.ArrayLike,
    ) -> AnomalyLabels:
        """Labels from step ranges on the time axis ``ts``; rows sorted by (meter, start)."""
        t = np.asarray(ts, dtype="datetime64[s]")
        m = np.asarray(meter, dtype=np.int64).reshape(-1)
        s = np.asarray(start_step, dtype=np.int64).reshape(-1)
        e = np.asarray(stop_step, dtype=np.int64).reshape(-1)
        order = np.lexsort((s, m))
        return cls(
            meter=m[order],
            start=t[s[order]],
            end=t[e[order] - 1],
            kind=np.asarray(kind, dtype="<U20").reshape(-1)[order],
            magnitude=np.asarray(magnitude, dtype=np.float64).reshape(-1)[order],
            start_step=s[order],
            stop_step=e[order],
        )

    def select(self, mask: npt.ArrayLike) -> AnomalyLabels:
        """The rows selected by a boolean or integer index."""
        idx = np.asarray(mask)
        return AnomalyLabels(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


def ragged_steps(starts: npt.ArrayLike, lengths: npt.ArrayLike) -> tuple[IntArray, IntArray]:
    """Flattened ``range(start, start + length)`` of every event, and each element's event.

    Returns ``(steps, event)``, both of length ``sum(lengths)``; no Python loop.
    """
    s = np.asarray(starts, dtype=np.int64)
    n = np.asarray(lengths, dtype=np.int64)
    event = np.repeat(np.arange(s.size), n)
    first = np.cumsum(n) - n
    steps = np.arange(int(n.sum()), dtype=np.int64) - first[event] + s[event]
    return steps, event


def place_events(
    rng: np.random.Generator, rows: int, steps: int, *, slot_steps: int, probability: float
) -> tuple[IntArray, IntArray, IntArray]:
    """At most one event per (row, slot): rows, slot start steps and slot lengths of events.

    Each row's slots tile the time axis from a phase of its own, drawn uniformly; the first
    and last may be shorter. Each (row, slot) holds an event with ``probability``, scaled
    down for a shorter slot so the rate per step is the same everywhere (at full
    probability a one-day last slot crammed a fortnight's events into the series' last
    day). With one phase for every row, the slots of a whole fleet began on the same day,
    and an event nearly as long as its slot starts near the slot's start: over seeds
    300–307 of bench.accuracy, 54–67 % of level shifts, drifts, efficiency losses and
    baseload increases began within a slot's first 48 h (14 % at random), five homes' level
    shifts on the same day, which reads as a cause common to the fleet.
    """
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"probability: must lie in [0, 1], got {probability}")
    phase = rng.integers(0, slot_steps, rows)
    n_slots = -(-(steps + slot_steps - 1) // slot_steps)
    edges = np.arange(n_slots + 1)[np.newaxis, :] * slot_steps - phase[:, np.newaxis]
    edges = np.clip(edges, 0, steps)  # (rows, n_slots + 1)
    length = np.diff(edges, axis=1)
    hit = rng.random((rows, n_slots)) < probability * length / slot_steps
    row, slot = np.nonzero(hit)
    return row.astype(np.int64), edges[row, slot].astype(np.int64), length[row, slot]


def default_eligibility(
    *,
    temperature: npt.ArrayLike,
    heating: npt.ArrayLike,
    cumulative: npt.ArrayLike,
    closes: npt.ArrayLike = True,
) -> BoolArray:
    """Which kinds may hit each meter, shape (meters, len(KINDS)).

    Temperature sensors: spike, dropout, flatline, drift, sensor_offset. Energy meters: the
    generic kinds and baseload_increase; heating ones also the schedule and efficiency
    kinds, heating_on_holiday only where the building ``closes`` at weekends (a home or a
    gym heated on Sunday is in use, not left on); counter_reset only for cumulative meters.
    """
    temp = np.asarray(temperature, dtype=bool)
    heat = np.asarray(heating, dtype=bool) & ~temp
    cum = np.asarray(cumulative, dtype=bool) & ~temp
    shut = np.broadcast_to(np.asarray(closes, dtype=bool), temp.shape)
    cols = []
    for kind in KINDS:
        if kind == "counter_reset":
            cols.append(cum)
        elif kind == "heating_on_holiday":
            cols.append(heat & shut)
        elif kind in _HEATING_KINDS:
            cols.append(heat)
        else:
            cols.append(np.where(temp, kind in _TEMPERATURE_KINDS, kind in _ENERGY_KINDS))
    return np.stack(cols, axis=1)


def _next_saturday_midnight(local_hour: IntArray, weekday: IntArray) -> IntArray:
    """For every step, the first step at or after it that is Saturday 00:00 local (or T)."""
    t = local_hour.size
    hit = np.where((weekday == 5) & (local_hour == 0), np.arange(t), t)
    return np.minimum.accumulate(hit[::-1])[::-1]


def inject_anomalies(
    values: npt.ArrayLike,
    ts: npt.ArrayLike,
    *,
    rng: np.random.Generator,
    rate_per_year: float,
    mix: Mapping[str, float] | None = None,
    eligible: npt.ArrayLike | None = None,
    temperature: npt.ArrayLike | None = None,
    outdoor_temp_c: npt.ArrayLike | None = None,
) -> tuple[npt.NDArray[np.floating], AnomalyLabels]:
    """Inject labelled anomalies into meter series; returns (new series, labels).

    Parameters
    ----------
    values : array_like, (M, T)
        Clean series: energy per step [kWh] for energy meters, [°C] for temperature
        sensors. float32 stays float32 (memory), any other type becomes float64.
    ts : array_like of datetime64, (T,)
        Timestamp of each step (regular).
    rng : numpy.random.Generator
    rate_per_year : float
        Expected anomalies per meter and year (≤ 1 per 14-day slot) [1/yr].
    mix : mapping kind → weight, optional
        Relative frequency of each kind (``DEFAULT_MIX``); absent kinds get weight 0.
    eligible : array_like of bool, (M, len(KINDS)), optional
        Kinds allowed per meter (``default_eligibility``); default: energy kinds except the
        heating ones, or temperature kinds where ``temperature``.
    temperature : array_like of bool, (M,), optional
        Meters that are temperature sensors: magnitudes are then absolute [K].
    outdoor_temp_c : array_like, (T,), optional
        Outdoor temperature; efficiency_loss then applies only when it is below 15 °C.

    Returns
    -------
    series : ndarray, (M, T)
    labels : AnomalyLabels

    Notes
    -----
    ``level`` is each meter's mean |value|. Magnitudes by kind: spike — added amount in
    units of level (3–10; temperature: ±5–15 K), 1–3 steps; dropout — NaN run
    (magnitude NaN) or zero run (0); flatline — the stuck value [unit] (energy meters:
    at least half the level); level_shift — relative, x·(1 + m), |m| 0.2–0.6; drift —
    additive ramp reaching m·level at the end (0.2–0.5; temperature ±1–4 K);
    heating_at_night — m·level added 00–06 local (0.3–1); heating_on_holiday — m·level
    added 07–19 local over a Saturday–Sunday (0.5–1.5); baseload_increase — m·level added
    every step (0.2–0.6); efficiency_loss — relative, x·(1 + m), m 0.1–0.3, on heating
    hours; sensor_offset — ±1–3 K; counter_reset — one step, the series itself is
    unchanged (``meters.cumulative_index`` applies it).
    """
    raw = np.asarray(values)
    dtype = raw.dtype if raw.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    out = np.array(raw, dtype=dtype, copy=True)
    if out.ndim != 2:
        raise ValueError(f"values: expected shape (meters, steps), got {out.shape}")
    n_meters, steps = out.shape
    t = np.asarray(ts, dtype="datetime64[s]")
    if t.shape != (steps,):
        raise ValueError(f"ts: expected shape ({steps},), got {t.shape}")
    if rate_per_year < 0:
        raise ValueError(f"rate_per_year: must be ≥ 0, got {rate_per_year}")
    weights = _mix_weights(mix)
    is_temp = (
        np.zeros(n_meters, dtype=bool)
        if temperature is None
        else np.broadcast_to(np.asarray(temperature, dtype=bool), (n_meters,))
    )
    allowed = (
        default_eligibility(temperature=is_temp, heating=False, cumulative=False)
        if eligible is None
        else np.asarray(eligible, dtype=bool)
    )
    if allowed.shape != (n_meters, len(KINDS)):
        raise ValueError(
            f"eligible: expected shape ({n_meters}, {len(KINDS)}), got {allowed.shape}"
        )
    hour, weekday = paris_local_time(t)
    step_h = float((t[1] - t[0]).astype(np.int64)) / 3600.0 if steps > 1 else 1.0
    row, kind_idx, start, length = _draw_events(
        rng,
        allowed * weights,
        steps,
        step_h=step_h,
        rate_per_year=rate_per_year,
        hour=hour,
        weekday=weekday,
    )
    magnitude = _draw_magnitudes(rng, kind_idx, is_temp[row])
    heating_hours = (
        np.ones(steps, dtype=bool)
        if outdoor_temp_c is None
        else np.asarray(outdoor_temp_c, dtype=np.float64) < 15.0
    )
    _apply(
        out,
        row=row,
        kind_idx=kind_idx,
        start=start,
        length=length,
        magnitude=magnitude,
        level=_levels(out, row, is_temp),
        is_temp=is_temp,
        hour=hour,
        heating_hours=heating_hours,
    )

    labels = AnomalyLabels.build(
        meter=row,
        kind=np.asarray(KINDS)[kind_idx],
        magnitude=magnitude,
        start_step=start,
        stop_step=start + length,
        ts=t,
    )
    return out, labels


def _mix_weights(mix: Mapping[str, float] | None) -> FloatArray:
    weights_map = dict(DEFAULT_MIX if mix is None else mix)
    unknown = set(weights_map) - set(KINDS)
    if unknown:
        raise ValueError(f"mix: unknown kind(s) {', '.join(sorted(unknown))}")
    weights = np.asarray([float(weights_map.get(k, 0.0)) for k in KINDS])
    if np.any(weights < 0):
        raise ValueError("mix: weights must be ≥ 0")
    return weights


def _draw_events(
    rng: np.random.Generator,
    weights: FloatArray,
    steps: int,
    *,
    step_h: float,
    rate_per_year: float,
    hour: IntArray,
    weekday: IntArray,
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """Rows, kind indices, starts and lengths of non-overlapping events (one per slot)."""
    slot = max(1, round(SLOT_HOURS / step_h))
    prob = min(1.0, rate_per_year * slot * step_h / 8760.0)
    row, slot_start, slot_len = place_events(
        rng, weights.shape[0], steps, slot_steps=slot, probability=prob
    )
    w = weights[row]
    total = w.sum(axis=1)
    keep = total > 0
    row, slot_start, slot_len, w, total = (
        row[keep],
        slot_start[keep],
        slot_len[keep],
        w[keep],
        total[keep],
    )
    u = rng.random(row.size) * total
    kind_idx = np.minimum((np.cumsum(w, axis=1) <= u[:, None]).sum(axis=1), len(KINDS) - 1)

    lo = np.asarray([DURATION_H[k][0] for k in KINDS])[kind_idx] / step_h
    hi = np.asarray([DURATION_H[k][1] for k in KINDS])[kind_idx] / step_h
    length = np.minimum(np.maximum(1, np.round(rng.uniform(lo, hi))).astype(np.int64), slot_len)
    start = slot_start + (rng.random(row.size) * (slot_len - length + 1)).astype(np.int64)
    holiday = kind_idx == KINDS.index("heating_on_holiday")
    if np.any(holiday):
        sat = _next_saturday_midnight(hour, weekday)[slot_start[holiday]]
        start[holiday] = sat
        length[holiday] = np.minimum(length[holiday], slot_start[holiday] + slot_len[holiday] - sat)
    ok = length > 0
    return row[ok], kind_idx[ok].astype(np.int64), start[ok], length[ok]


def _draw_magnitudes(
    rng: np.random.Generator, kind_idx: IntArray, temp_row: BoolArray
) -> FloatArray:
    """Magnitude of each event; meaning per kind in ``inject_anomalies``."""
    k = kind_idx.size
    sign = np.where(rng.random(k) < 0.5, -1.0, 1.0)
    draws = {
        "spike": np.where(temp_row, sign * rng.uniform(5.0, 15.0, k), rng.uniform(3.0, 10.0, k)),
        "level_shift": sign * rng.uniform(0.2, 0.6, k),
        "drift": np.where(temp_row, sign * rng.uniform(1.0, 4.0, k), rng.uniform(0.2, 0.5, k)),
        "heating_at_night": rng.uniform(0.3, 1.0, k),
        "heating_on_holiday": rng.uniform(0.5, 1.5, k),
        "baseload_increase": rng.uniform(0.2, 0.6, k),
        "efficiency_loss": rng.uniform(0.1, 0.3, k),
        "sensor_offset": sign * rng.uniform(1.0, 3.0, k),
        "dropout": np.where(rng.random(k) < 0.6, np.nan, 0.0),
    }
    magnitude = np.zeros(k)
    for name, draw in draws.items():
        sel = kind_idx == KINDS.index(name)
        magnitude[sel] = draw[sel]
    return magnitude


def _levels(out: npt.NDArray[np.floating], row: IntArray, is_temp: BoolArray) -> FloatArray:
    """Mean |value| of each energy meter that gets an event (1 for the others)."""
    level = np.ones(out.shape[0])
    hit_rows = np.unique(row[~is_temp[row]])
    if hit_rows.size:
        block = np.abs(out[hit_rows])
        finite = np.isfinite(block)
        count = finite.sum(axis=1)
        total_abs = np.where(finite, block, 0.0).sum(axis=1, dtype=np.float64)
        level[hit_rows] = np.where(count > 0, total_abs / np.maximum(count, 1), 1.0)
    return level


def _night(hour: IntArray) -> BoolArray:
    return np.asarray(hour < 6)


def _daytime(hour: IntArray) -> BoolArray:
    return np.asarray((hour >= 7) & (hour < 19))


def _always(hour: IntArray) -> BoolArray:
    return np.ones(hour.size, dtype=bool)


def _apply(
    out: npt.NDArray[np.floating],
    *,
    row: IntArray,
    kind_idx: IntArray,
    start: IntArray,
    length: IntArray,
    magnitude: FloatArray,
    level: FloatArray,
    is_temp: BoolArray,
    hour: IntArray,
    heating_hours: BoolArray,
) -> None:
    """Apply every event in place, one vectorised update per kind; flatline fills magnitude."""
    steps = out.shape[1]
    dtype = out.dtype
    flat = out.reshape(-1)  # a view: out is contiguous
    ops = {"heating_at_night": _night, "heating_on_holiday": _daytime, "baseload_increase": _always}
    for name in KINDS:
        sel = np.flatnonzero(kind_idx == KINDS.index(name))
        if sel.size == 0 or name == "counter_reset":
            continue
        steps_i, ev = ragged_steps(start[sel], length[sel])
        ev = sel[ev]
        pos = row[ev] * steps + steps_i
        m = magnitude[ev]
        scaled = np.where(is_temp[row[ev]], m, m * level[row[ev]])
        if name == "spike":
            flat[pos] += scaled.astype(dtype)
        elif name == "dropout":
            flat[pos] = m.astype(dtype)
        elif name == "flatline":
            stuck = flat[row[sel] * steps + start[sel]]
            # A register that stops at idle reads as a zero run (dropout 0), not a
            # flatline: an energy meter sticks at no less than half its mean use.
            busy = np.where(is_temp[row[sel]], stuck, np.maximum(stuck, 0.5 * level[row[sel]]))
            stuck = busy.astype(dtype)
            magnitude[sel] = stuck
            flat[pos] = stuck[np.searchsorted(sel, ev)]
        elif name == "level_shift":
            flat[pos] *= (1.0 + m).astype(dtype)
        elif name == "efficiency_loss":
            flat[pos] *= np.where(heating_hours[steps_i], 1.0 + m, 1.0).astype(dtype)
        elif name == "drift":
            frac = (steps_i - start[ev] + 1) / length[ev]
            flat[pos] += (frac * scaled).astype(dtype)
        elif name in ops:
            flat[pos] += np.where(ops[name](hour[steps_i]), scaled, 0.0).astype(dtype)
        elif name == "sensor_offset":
            flat[pos] += m.astype(dtype)
