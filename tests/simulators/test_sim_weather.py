"""Weather: climate normals, degree-days, irradiance, local time, CSV loading, seeding."""

from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from simulators.weather import (
    NORMAL_HDD_BASE18,
    WeatherFileError,
    load_weather_csv,
    normal_heating_degree_days,
    occupancy_weekday,
    paris_local_time,
    simulate_weather,
)
from wattwatch.climate import MONTHLY_NORMAL_C


def test_normal_hdd_is_lille_like_and_broadcasts():
    assert 2400 < NORMAL_HDD_BASE18 < 2750
    hdd = normal_heating_degree_days(np.array([[10.0, 15.0], [18.0, 20.0]]))
    assert hdd.shape == (2, 2)
    assert np.all(np.diff(hdd.ravel()) > 0)  # more degree-days for a higher base
    assert_allclose(hdd[1, 0], NORMAL_HDD_BASE18)


def test_simulated_climate_matches_normals_over_ten_years():
    w = simulate_weather(start="2010-01-01", days=3650, rng=np.random.default_rng(3))
    assert w.ts.dtype == np.dtype("datetime64[s]")
    assert np.all(np.diff(w.ts) == np.timedelta64(3600, "s"))
    months = w.ts.astype("datetime64[M]").astype(np.int64) % 12
    monthly = np.array([w.temp_c[months == m].mean() for m in range(12)])
    assert_allclose(monthly, MONTHLY_NORMAL_C, atol=1.2)
    yearly_hdd = w.heating_degree_days() / 10.0
    assert_allclose(yearly_hdd, NORMAL_HDD_BASE18, rtol=0.05)


def test_irradiance_is_zero_at_night_and_plausible_per_year():
    w = simulate_weather(start="2023-01-01", days=365, rng=np.random.default_rng(1))
    assert np.all(w.ghi_w_m2 >= 0)
    hour, _ = paris_local_time(w.ts)
    assert np.all(w.ghi_w_m2[(hour >= 23) | (hour <= 3)] == 0)
    assert 900 < w.ghi_w_m2.sum() / 1000 < 1300  # kWh/m²/yr, Lille ~1,050
    summer = w.ghi_w_m2[4000:5000].max()
    assert 600 < summer < 1000


def test_same_seed_same_weather_and_different_seed_differs():
    a = simulate_weather(start="2024-01-01", days=30, rng=np.random.default_rng(7))
    b = simulate_weather(start="2024-01-01", days=30, rng=np.random.default_rng(7))
    c = simulate_weather(start="2024-01-01", days=30, rng=np.random.default_rng(8))
    assert_array_equal(a.temp_c, b.temp_c)
    assert_array_equal(a.ghi_w_m2, b.ghi_w_m2)
    assert not np.array_equal(a.temp_c, c.temp_c)


def test_paris_local_time_follows_dst():
    ts = np.array(
        [
            "2024-03-31T00:59",
            "2024-03-31T01:00",
            "2024-10-27T00:59",
            "2024-10-27T01:00",
            "2024-01-01T00:00",
        ],
        dtype="datetime64[s]",
    )
    hour, weekday = paris_local_time(ts)
    assert_array_equal(hour, [1, 3, 2, 2, 1])
    assert_array_equal(weekday, [6, 6, 6, 6, 0])


def test_public_holidays_are_closed_days_for_occupancy():
    # 2024-05-08 (Wednesday) and 2024-12-25 (Wednesday) are public holidays; 05-07 is not.
    ts = np.array(
        ["2024-05-07T10:00", "2024-05-07T22:30", "2024-05-08T10:00", "2024-12-25T10:00"],
        dtype="datetime64[s]",
    )
    assert_array_equal(paris_local_time(ts)[1], [1, 2, 2, 2])  # 22:30 UTC is 00:30 local
    assert_array_equal(occupancy_weekday(ts), [1, 6, 6, 6])


def test_start_must_be_on_the_hour():
    with pytest.raises(ValueError, match="start"):
        simulate_weather(start="2024-01-01T00:30", days=1, rng=np.random.default_rng(0))


def test_load_weather_csv(tmp_path: Path):
    path = tmp_path / "w.csv"
    path.write_text(
        "ts,temp_c,ghi_w_m2\n2024-01-01T00:00:00Z,3.5,0\n2024-01-01T02:00:00+01:00,,12.5\n",
        encoding="utf-8",
    )
    w = load_weather_csv(path)
    assert_array_equal(w.ts, np.array(["2024-01-01T00:00", "2024-01-01T01:00"], "datetime64[s]"))
    assert w.temp_c[0] == 3.5
    assert np.isnan(w.temp_c[1])
    assert_array_equal(w.ghi_w_m2, [0.0, 12.5])


def test_load_weather_csv_errors_name_the_problem(tmp_path: Path):
    bad_col = tmp_path / "a.csv"
    bad_col.write_text("ts,temp\n2024-01-01T00:00,1\n", encoding="utf-8")
    with pytest.raises(WeatherFileError, match="ghi_w_m2"):
        load_weather_csv(bad_col)
    bad_num = tmp_path / "b.csv"
    bad_num.write_text("ts,temp_c,ghi_w_m2\n2024-01-01T00:00,warm,0\n", encoding="utf-8")
    with pytest.raises(WeatherFileError, match="temp_c"):
        load_weather_csv(bad_num)
