"""Feeder sensors: 10-minute series within EN 50160 limits except inside labelled events."""

import numpy as np
import pytest

from simulators.grid import GRID_QUANTITIES, simulate_grid
from simulators.weather import simulate_weather


@pytest.fixture(scope="module")
def grid():
    w = simulate_weather(start="2024-01-01", days=120, rng=np.random.default_rng(0))
    rng = np.random.default_rng(1)
    hour = np.arange(w.ts.size) % 24
    load = (
        2e5
        * (1 + 0.5 * np.sin(2 * np.pi * (hour - 6) / 24))[None, :]
        * rng.uniform(0.5, 1.5, (6, 1))
    )
    return simulate_grid(
        ts=w.ts,
        feeder_load_w=load,
        pv_kwp=rng.uniform(50, 200, 6),
        ghi_w_m2=w.ghi_w_m2,
        rng=np.random.default_rng(2),
        events_per_year=20,
    )


def _inside(series, events, rows):
    mask = np.zeros(series.shape, dtype=bool)
    for r, s, e in zip(events.meter, events.start_step, events.stop_step, strict=True):
        if r in rows:
            mask[rows.index(r), s:e] = True
    return mask


def test_shapes_and_timestamps(grid):
    f = grid.voltage_v.shape[0]
    assert grid.stacked().shape == (len(GRID_QUANTITIES) * f, grid.ts.size)
    assert np.all(np.diff(grid.ts) == np.timedelta64(600, "s"))
    assert set(grid.events.kind) == {
        "voltage_sag",
        "voltage_swell",
        "frequency_excursion",
        "overload",
    }


def test_limits_hold_outside_events(grid):
    f = grid.voltage_v.shape[0]
    ev = grid.events
    v_in = _inside(grid.voltage_v, ev, list(range(f)))
    o_in = _inside(grid.load_pu, ev, list(range(2 * f, 3 * f)))
    f_in = _inside(grid.frequency_hz, ev, list(range(f, 2 * f)))
    v_out = grid.voltage_v[~v_in & ~o_in]
    assert np.all(np.abs(v_out - 230) < 23)
    assert np.all(np.abs(grid.frequency_hz[~f_in] - 50) < 0.1)
    assert np.all(grid.load_pu[~o_in] < 1.0)
    assert np.all(grid.load_pu[o_in] > 1.0)
    sags = ev.kind == "voltage_sag"
    assert np.all(ev.magnitude[sags] < 0.9)
    assert np.all(grid.pv_w >= 0)
