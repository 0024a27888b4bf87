"""simulate_city end to end: tables, reproducibility, counters, gaps, ground truth."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from simulators.city import QUANTITIES, UNITS, simulate_city

ARGS = {
    "buildings": 120,
    "start": "2023-01-01",
    "days": 365,
    "anomaly_rate": 2.0,
    "grid_feeders": 3,
}


@pytest.fixture(scope="module")
def city():
    return simulate_city(seed=42, **ARGS)


def test_shapes_and_tables(city):
    n, t = 120, 365 * 24
    assert city.heating_w.shape == city.indoor_temp_c.shape == city.electricity_w.shape == (n, t)
    m = city.meters
    assert m.values.shape == (len(m), t)
    assert m.jitter_s is not None
    assert set(m.quantity) | set(city.grid.quantity) <= set(QUANTITIES)
    assert set(m.unit) | set(city.grid.unit) <= set(UNITS)
    assert len(set(m.meter_id)) == len(m)
    assert_array_equal(m.cumulative, m.unit == "kWh")
    assert city.grid.values.shape == (12, t * 6)
    assert np.all(m.ts - city.weather.ts == np.timedelta64(3600, "s"))


def test_same_seed_identical_different_seed_differs(city):
    again = simulate_city(seed=42, **ARGS)
    for name in ("heating_w", "indoor_temp_c", "electricity_w"):
        assert_array_equal(getattr(again, name), getattr(city, name))
    assert_array_equal(again.meters.values, city.meters.values)
    assert_array_equal(again.grid.values, city.grid.values)
    assert_array_equal(again.anomalies.start, city.anomalies.start)
    assert_array_equal(again.truth.hlc_w_per_k, city.truth.hlc_w_per_k)
    other = simulate_city(seed=43, **ARGS)
    assert not np.array_equal(other.heating_w, city.heating_w)
    assert not np.array_equal(other.meters.values, city.meters.values)


def test_indexes_monotonic_except_at_labelled_resets(city):
    m = city.meters
    rows = np.flatnonzero(m.cumulative)
    vals = m.values[rows]
    # Compare each reading with the previous valid one (forward fill over NaN gaps).
    pos = np.where(np.isnan(vals), -1, np.arange(vals.shape[1]))
    last_valid = np.maximum.accumulate(pos, axis=1)
    prev_pos = np.concatenate([np.full((rows.size, 1), -1), last_valid[:, :-1]], axis=1)
    prev = np.where(prev_pos >= 0, np.take_along_axis(vals, np.maximum(prev_pos, 0), 1), -np.inf)
    drop = vals < prev  # NaN compares False
    resets = city.anomalies.select(city.anomalies.kind == "counter_reset")
    expected = np.zeros_like(drop)
    local = np.searchsorted(rows, resets.meter)
    expected[local, resets.start_step] = True
    # A reset inside a gap shows at the first reading after it.
    nxt = np.minimum.accumulate(
        np.where(np.isnan(vals), vals.shape[1], np.arange(vals.shape[1]))[:, ::-1], axis=1
    )[:, ::-1]
    expected[local, np.minimum(nxt[local, resets.start_step], vals.shape[1] - 1)] = True
    assert resets.meter.size > 0
    assert not np.any(drop & ~expected)  # every drop is a labelled reset


def test_missing_readings_between_one_and_five_percent(city):
    lab = city.anomalies
    dropped = np.zeros(city.meters.values.shape, dtype=bool)
    for r, s, e in zip(
        lab.meter[lab.kind == "dropout"],
        lab.start_step[lab.kind == "dropout"],
        lab.stop_step[lab.kind == "dropout"],
        strict=True,
    ):
        dropped[r, s:e] = True
    missing = np.isnan(city.meters.values) & ~dropped
    assert 0.01 <= missing.mean() <= 0.05


def test_truth_is_consistent(city):
    tr, st = city.truth, city.stock
    assert_allclose(tr.balance_temp_c, tr.setpoint_mean_c - tr.gains_mean_w / st.hlc_w_per_k)
    assert np.all(tr.annual_heating_need_kwh > 0)
    assert set(tr.dpe_class) <= set("ABCDEFG")
    ratio = np.median(tr.heating_normalised_kwh / tr.annual_heating_need_kwh)
    assert 0.9 < ratio < 1.3
    assert_allclose(tr.heating_simulated_kwh, city.heating_w.sum(axis=1) / 1000, rtol=1e-5)


def test_gas_register_counts_heat_over_efficiency(city):
    m = city.meters
    gas = np.flatnonzero(m.quantity == "gas")
    hit = set(city.anomalies.meter.tolist())
    clean_rows = [r for r in gas if r not in hit]
    assert clean_rows
    r = clean_rows[0]
    b = m.building[r]
    vals = m.values[r]
    first, last = np.flatnonzero(~np.isnan(vals))[[0, -1]]
    metered = vals[last] - vals[first]
    st = city.stock
    heat_kwh = city.heating_w[b, first + 1 : last + 1].sum() / 1000
    dhw_share = st.dhw_kwh_per_yr[b] * (last - first) / 8760
    assert_allclose(metered, (heat_kwh + dhw_share) / st.efficiency[b], rtol=0.02)


def test_stuck_sensors_repeat_exactly_and_stuck_registers_are_busy(city):
    m, lab = city.meters, city.anomalies
    flat = np.flatnonzero(lab.kind == "flatline")
    assert flat.size > 0
    for i in flat.tolist():
        row, first, stop = int(lab.meter[i]), int(lab.start_step[i]), int(lab.stop_step[i])
        if m.cumulative[row]:
            use = np.diff(m.values[row])
            level = np.nanmean(use[use >= 0])  # resets read as negative steps
            assert lab.magnitude[i] >= 0.5 * level * 0.8  # at least half its mean use
        else:
            seen = m.values[row, first:stop]
            seen = seen[~np.isnan(seen)]
            assert np.all(seen == seen[0])  # no fresh noise over a stuck reading
