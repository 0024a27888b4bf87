"""Meter observations: final energy, cumulative indexes, resets, jitter, gaps, sensors."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from simulators.meters import (
    RESOLUTION_KWH,
    cumulative_index,
    heating_final_energy_kwh,
    missing_mask,
    reading_jitter,
    temperature_sensor,
)
from simulators.stock import heat_pump_cop


def test_final_energy_by_carrier():
    heat = np.full((3, 4), 2000.0)
    te = np.array([-5.0, 0.0, 5.0, 10.0])
    out = heating_final_energy_kwh(
        heat,
        carrier=np.array(["gas", "heat_pump", "electricity"]),
        efficiency=np.array([0.9, 3.2, 1.0]),
        outdoor_temp_c=te,
    )
    assert_allclose(out[0], 2.0 / 0.9, rtol=1e-6)
    assert_allclose(out[1], 2.0 / heat_pump_cop(te, 3.2), rtol=1e-6)
    assert_allclose(out[2], 2.0, rtol=1e-6)


def _energy(rng, meters=20, steps=2000):
    e = rng.gamma(2.0, 0.4, (meters, steps)).astype(np.float32)
    e[:, 100:150] = 0.0  # a stretch without consumption
    return e


def test_index_is_quantised_monotonic_and_tracks_the_sum():
    rng = np.random.default_rng(0)
    e = _energy(rng)
    res = np.full(e.shape[0], RESOLUTION_KWH["gas"])
    idx = cumulative_index(
        e, resolution_kwh=res, start_kwh=1000.0, jitter_s=reading_jitter(e.shape, rng=rng)
    )
    assert np.all(np.diff(idx, axis=1) >= 0)
    units = idx / res[:, None]
    assert_allclose(units, np.round(units), atol=1e-6)
    truth = 1000.0 + np.cumsum(e.astype(float), axis=1)
    assert np.all(np.abs(idx - truth) <= res[:, None] + 30 / 3600 * 5)


def test_counter_reset_restarts_at_zero():
    rng = np.random.default_rng(1)
    e = _energy(rng, meters=3, steps=500)
    idx = cumulative_index(
        e, resolution_kwh=0.001, start_kwh=5000.0, reset_rows=[0, 0, 2], reset_steps=[100, 300, 0]
    )
    assert_allclose(idx[0, 100], np.floor(e[0, 100] / 0.001 + 1e-6) * 0.001, atol=1e-6)
    assert_allclose(idx[0, 299], e[0, 100:300].astype(float).sum(), atol=2e-3)
    drops = np.argwhere(np.diff(idx, axis=1) < 0)
    assert_array_equal(drops, [[0, 99], [0, 299]])
    assert idx[2, 0] < 5  # reset at the very first step
    assert np.all(np.diff(idx[1]) >= 0)


def test_negative_energy_is_refused():
    with pytest.raises(ValueError, match="energy_kwh"):
        cumulative_index(-np.ones((1, 3)), resolution_kwh=0.001)


def test_missing_rate_between_one_and_five_percent():
    mask, rates = missing_mask((400, 8760), rng=np.random.default_rng(2))
    assert np.all((rates >= 0.01) & (rates <= 0.05))
    assert_allclose(mask.mean(axis=1), rates, atol=0.01)  # binomial noise, 4 sigma
    assert 0.01 <= mask.mean() <= 0.05


def test_temperature_sensor_resolution_and_noise():
    true = np.full((50, 2000), 20.03)
    obs = temperature_sensor(true, rng=np.random.default_rng(3), bias_sd_c=0.0)
    assert_allclose(obs * 10, np.round(obs * 10), atol=1e-9)
    assert_allclose(obs.mean(), 20.03, atol=0.01)
    assert 0.08 < (obs - true).std() < 0.13


def test_jitter_within_bounds():
    j = reading_jitter((100, 1000), rng=np.random.default_rng(4), max_s=30)
    assert j.dtype == np.int8
    assert j.min() == -30
    assert j.max() == 30


def test_nan_energy_counts_as_zero():
    e = np.array([[1.0, np.nan, 2.0], [1.0, 1.0, 1.0]])
    idx = cumulative_index(e, resolution_kwh=0.001)
    assert_allclose(idx, [[1.0, 1.0, 3.0], [1.0, 2.0, 3.0]])
