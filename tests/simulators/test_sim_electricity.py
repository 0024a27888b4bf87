"""Electricity profiles, occupancy, hot-water demand and the log-normal noise."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from simulators.electricity import (
    hot_water_heat_w,
    lognormal_noise,
    presence,
    simulate_electricity,
    use_index,
)
from simulators.weather import hourly_timestamps, paris_local_time

TS = hourly_timestamps("2024-01-01", 24 * 364)
HOUR, WEEKDAY = paris_local_time(TS)
DOY = np.arange(TS.size) / 24.0


def test_profiles_by_use_and_weekday():
    use = np.array(["household", "office", "school", "gym"])
    base = np.array([200.0, 3000.0, 4000.0, 2000.0])
    peak = np.array([900.0, 12000.0, 20000.0, 9000.0])
    p = simulate_electricity(
        use=use,
        base_load_w=base,
        peak_load_w=peak,
        local_hour=HOUR,
        weekday=WEEKDAY,
        day_of_year=DOY,
        rng=np.random.default_rng(0),
        noise_sd=0.0,
    )
    assert p.shape == (4, TS.size)
    assert p.dtype == np.float32
    assert np.all(p >= base[:, None] * (1 - 1e-6))
    weekend = WEEKDAY >= 5
    noon = HOUR == 12
    office = p[1]
    assert office[noon & ~weekend].mean() > 3 * office[noon & weekend].mean()
    home = p[0]
    assert home[HOUR == 19].mean() > 2 * home[HOUR == 3].mean()


def test_noise_has_mean_one_and_requested_sigma():
    noise = lognormal_noise((3, 200_000), sigma=[0.0, 0.1, 0.35], rng=np.random.default_rng(1))
    assert_allclose(noise.mean(axis=1), 1.0, rtol=3e-3)
    assert_allclose(np.log(noise).std(axis=1), [0.0, 0.1, 0.35], atol=3e-3)


def test_hot_water_annual_total():
    use = np.array(["household", "gym", "school"])
    annual = np.array([2000.0, 30000.0, 5000.0])
    w = hot_water_heat_w(use=use, dhw_kwh_per_yr=annual, local_hour=HOUR, weekday=WEEKDAY)
    assert_allclose(w.sum(axis=1) / 1000.0 * 365 / 364, annual, rtol=0.01)


def test_presence_and_unknown_use():
    p = presence(np.array(["school"]), HOUR, WEEKDAY)
    assert p.max() == 1.0
    assert p[0, WEEKDAY >= 5].max() == 0.0
    with pytest.raises(ValueError, match="use"):
        use_index(["spaceship"])
