"""The insulation run from the database to the assessments, and its array step on known
buildings."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import numpy as np
import psycopg
import pytest
from numpy.testing import assert_allclose

from processing.insulation import (
    assess_buildings,
    assessment_rows,
    plausible_outdoor,
    run_insulation,
)
from processing.pipeline import PipelineConfig
from storage.matrices import BuildingDaily
from storage.meters import create_building, create_municipality
from storage.readings import write_readings
from storage.results import fetch_assessments
from storage.rollups import refresh_rollups
from tests.fixtures.meter_readings import H, index_rows, register_meter_for_test

D0 = date(2024, 11, 4)  # after the October DST change: local days are UTC+1
DAYS = 70
TRUTH = {  # slope [kWh/(K·d)], baseload [kWh/d], balance point [°C], efficiency, area [m²]
    "old": (12.0, 6.0, 16.0, 0.85, 90.0),
    "new": (3.0, 4.0, 14.0, 0.95, 120.0),
    "mid": (6.0, 5.0, 15.0, 0.90, 100.0),
}


@pytest.fixture
def town(conn: psycopg.Connection) -> dict[str, int]:
    """Gas-heated buildings following Q = b + s·(Tb − Te)⁺ day by day, one weather station."""
    muni = create_municipality(conn, "Roubaix", normal_hdd=2500)
    rng = np.random.default_rng(7)
    te_day = 10.0 + 8.0 * np.sin(np.arange(DAYS) / 9.0) + rng.normal(0, 2.0, DAYS)
    t0 = datetime(D0.year, D0.month, D0.day, tzinfo=UTC) - H  # local midnight
    station = register_meter_for_test(conn, "station", "outdoor_temperature", None)
    hours = DAYS * 24
    rows = [(station, t0 + k * H + 30 * timedelta(minutes=1), float(te_day[k // 24]))
            for k in range(hours)]  # fmt: skip
    ids = {}
    for name, (s, b, tb, eta, area) in TRUTH.items():
        bid = create_building(
            conn, name=name, municipality_id=muni, floor_area_m2=area, heating_carrier="gas",
            heating_efficiency=eta, year_built=1970,
        )  # fmt: skip
        meter = register_meter_for_test(conn, f"{name}-gas", "gas", bid)
        q_day = b + s * np.maximum(tb - te_day, 0.0) + rng.normal(0, 0.2, DAYS)
        rows += index_rows(meter, t0, np.repeat(q_day / 24.0, 24))
        ids[name] = bid
    # A retrofit half-way: the heating slope drops by 40 % (insulation added).
    bid = create_building(
        conn, name="retrofit", municipality_id=muni, floor_area_m2=100.0, heating_carrier="gas",
        heating_efficiency=0.9, year_built=1970,
    )  # fmt: skip
    meter = register_meter_for_test(conn, "retrofit-gas", "gas", bid)
    slope = np.where(np.arange(DAYS) < DAYS // 2, 10.0, 6.0)
    q_day = 5.0 + slope * np.maximum(15.0 - te_day, 0.0) + rng.normal(0, 0.2, DAYS)
    rows += index_rows(meter, t0, np.repeat(q_day / 24.0, 24))
    ids["retrofit"] = bid
    nothing = create_building(conn, name="empty", municipality_id=muni)
    ids["empty"] = nothing
    write_readings(conn, rows)
    refresh_rollups(conn)
    conn.commit()
    return ids


def test_insulation_recovers_hlc_and_writes_assessments_idempotently(
    conn: psycopg.Connection, town: dict[str, int]
) -> None:
    config = PipelineConfig(insulation_min_days=DAYS, n_boot=50)
    stop = D0 + timedelta(days=DAYS)
    summary = run_insulation(conn, first_day=D0, stop_day=stop, config=config)
    assert (summary.buildings, summary.qualified) == (5, 4)
    assert summary.slope_changes == 1
    rows = {a.building_id: a for a in fetch_assessments(conn)}
    for name, (s, b, tb, eta, area) in TRUTH.items():
        a = rows[town[name]]
        assert a.status == "ok" and a.method == "changepoint"
        hlc = eta * s * 1000.0 / 24.0
        assert a.hlc_w_per_k is not None and a.hlc_low_w_per_k is not None
        assert_allclose(a.hlc_w_per_k, hlc, rtol=0.03)
        assert_allclose(a.balance_temp_c, tb, atol=0.5)
        assert_allclose(a.base_kwh_per_day, b, rtol=0.1)
        assert a.hlc_low_w_per_k <= a.hlc_w_per_k <= (a.hlc_high_w_per_k or 0.0)
        assert a.label in tuple("ABCDEFG") and a.period_end == stop - timedelta(days=1)
        assert a.slope_change_rel is not None and abs(a.slope_change_rel) < 0.1
    retrofit = rows[town["retrofit"]]
    assert retrofit.slope_change_rel is not None and retrofit.slope_change_p is not None
    assert_allclose(retrofit.slope_change_rel, -0.4, atol=0.05)
    assert retrofit.slope_change_p < 1e-6
    assert rows[town["empty"]].status == "insufficient_data"
    assert "no heating register" in (rows[town["empty"]].status_reason or "")
    assert rows[town["old"]].label >= rows[town["new"]].label  # type: ignore[operator]

    before = fetch_assessments(conn)
    run_insulation(conn, first_day=D0, stop_day=stop, config=config)
    assert fetch_assessments(conn) == before

    short = run_insulation(conn, first_day=D0, stop_day=stop, config=PipelineConfig())
    assert short.qualified == 0
    reasons = {a.status_reason for a in fetch_assessments(conn) if a.status != "ok"}
    assert any("shorter than the 365 days" in (r or "") for r in reasons)


def test_a_station_reading_far_from_the_climate_is_left_out() -> None:
    te = np.array([[19.0, 0.2, -0.1, 20.5]])  # 14-17 August: a probe reading 0 °C
    assert np.isnan(plausible_outdoor(te, date(2025, 8, 14))).tolist() == [
        [False, True, True, False]
    ]
    cold = np.array([[-8.0, -6.5]])  # February 2012's cold spell in Lille is weather
    assert not np.isnan(plausible_outdoor(cold, date(2025, 2, 7))).any()


def _one_home(
    q: np.ndarray, te: np.ndarray, *, meter: str, carrier: str, efficiency: float
) -> BuildingDaily:
    """A year of daily heating energy and outdoor temperature of one 100 m² home from July."""
    one = np.ones(1)
    return BuildingDaily(
        first_day=date(2024, 7, 1), building_id=np.array([1]), heating_meter_id=np.array([7]),
        heating_quantity=np.array([meter]), heating_kwh=q[np.newaxis, :],
        outdoor_temp_c=te[np.newaxis, :], floor_area_m2=100.0 * one,
        heating_efficiency=efficiency * one, normal_hdd=np.full(1, np.nan),
        year_built=np.array([1975]), municipality_id=np.array([0]),
        use=np.array(["household"]), heating_carrier=np.array([carrier]),
    )  # fmt: skip


def test_a_heat_pump_keeps_its_label_when_the_station_misses_days() -> None:
    rng = np.random.default_rng(16)
    days = 365
    te = 11.0 + 7.0 * np.cos(2 * np.pi * (np.arange(days) - 15) / 365) + rng.normal(0, 2, days)
    te = te[::-1].copy()  # from July: summer first
    need = 120.0 / 1000 * 24 * np.maximum(15.0 - te, 0.0)  # HLC 120 W/K, balance 15 °C [kWh/d]
    q = 4.0 + need / 3.0 + rng.normal(0, 0.2, days)  # electricity of a COP-3 heat pump
    te[100:103] = np.nan  # the station missed three days
    daily = _one_home(q, te, meter="electricity", carrier="heat_pump", efficiency=3.0)
    res = assess_buildings(daily, on=date(2025, 6, 30), config=PipelineConfig(n_boot=10))
    assert res.fit.qualified[0]
    assert np.isfinite(res.final_kwh_per_m2[0]) and res.dpe.label[0] in "ABCDEFG"


def test_electric_hot_water_follows_the_declared_occupants() -> None:
    rng = np.random.default_rng(18)
    days = 365
    te = 11.0 - 7.0 * np.cos(2 * np.pi * (np.arange(days) - 200) / 365) + rng.normal(0, 2, days)
    q = 9.0 + 100.0 * 24 / 1000 * np.maximum(15.0 - te, 0.0)  # HLC 100 W/K, balance 15 °C
    cfg, on = PipelineConfig(n_boot=10), date(2025, 6, 30)
    electric = _one_home(q, te, meter="electricity", carrier="electricity", efficiency=1.0)
    per_m2 = assess_buildings(electric, on=on, config=cfg).final_kwh_per_m2[0]
    declared = dataclasses.replace(electric, occupants=np.array([4.0]))
    per_person = assess_buildings(declared, on=on, config=cfg).final_kwh_per_m2[0]
    # 100 m²: 20 kWh/m² conventional; four persons at 56 L/d of 40 °C water from 10.5 °C.
    four = 4 * 1.163 * 56 * 29.5 * 365 / 1000
    assert_allclose(per_person - per_m2, (four - 2000.0) / 100.0, rtol=1e-9)
    # A gas meter sees its own hot water in the baseload: occupants change nothing.
    gas = _one_home(q, te, meter="gas", carrier="gas", efficiency=0.9)
    metered = assess_buildings(gas, on=on, config=cfg).final_kwh_per_m2[0]
    gas = dataclasses.replace(gas, occupants=np.array([4.0]))
    assert assess_buildings(gas, on=on, config=cfg).final_kwh_per_m2[0] == metered


def test_a_home_that_never_heats_keeps_its_label_and_has_no_heat_loss() -> None:
    rng = np.random.default_rng(19)
    days = 365
    te = 11.0 - 7.0 * np.cos(2 * np.pi * (np.arange(days) - 200) / 365) + rng.normal(0, 2, days)
    q = 5.4 + rng.normal(0, 0.5, days)  # its gas boiler heats the water only: 2,000 kWh/yr
    daily = _one_home(q, te, meter="gas", carrier="gas", efficiency=0.9)
    res = assess_buildings(daily, on=date(2025, 6, 30), config=PipelineConfig(n_boot=10))
    assert res.fit.qualified[0] and not res.fit.heating_response[0]
    assert np.isnan([res.fit.hlc_w_per_k[0], res.fit.balance_point[0], res.interval.low[0]]).all()
    assert res.dpe.label[0] == "A"  # 20 kWh/m² of gas, 4.5 kg CO2/m²
    (row,) = assessment_rows(
        daily, res, period_start=date(2024, 7, 1), period_end=date(2025, 6, 30)
    )
    assert (row.status, row.label, row.hlc_w_per_k, row.balance_temp_c) == ("ok", "A", None, None)
    assert row.status_reason is not None and "does not rise as it gets colder" in row.status_reason


def test_buildings_that_read_nothing_or_nonsense_are_assessed_quietly() -> None:
    """No warning (the suite turns them into errors) and no failure on registers that read
    nothing, zero, a constant, negative or absurd values, nor on a station that read
    nothing, an infinite value, or a sun that read nothing."""
    rng = np.random.default_rng(20)
    days = 365
    te = 11.0 - 7.0 * np.cos(2 * np.pi * (np.arange(days) - 200) / 365) + rng.normal(0, 2, days)
    good = 5.0 + 4.0 * np.maximum(15.0 - te, 0.0) + rng.normal(0, 0.3, days)
    rows = np.stack([
        good, np.full(days, np.nan), np.zeros(days), np.full(days, 7.0), -good, good * 1e9,
        np.where(np.arange(days) % 30 == 0, good, np.nan),
    ])  # fmt: skip
    home = _one_home(good, te, meter="gas", carrier="gas", efficiency=0.9)
    n = len(rows)

    def city(te_c: np.ndarray, sun: np.ndarray | None = None) -> BuildingDaily:
        return dataclasses.replace(
            home, building_id=np.arange(n), heating_meter_id=np.arange(n), heating_kwh=rows,
            outdoor_temp_c=np.broadcast_to(te_c, (n, days)).copy(),
            **{k: np.repeat(getattr(home, k), n) for k in (
                "heating_quantity", "floor_area_m2", "heating_efficiency", "normal_hdd",
                "year_built", "municipality_id", "use", "heating_carrier",
            )},
            solar_w_per_m2=sun,
        )  # fmt: skip

    cfg, on = PipelineConfig(n_boot=10), date(2025, 6, 30)
    for te_c, sun in (
        (te, None),
        (np.full(days, np.nan), None),
        (np.where(np.arange(days) == 5, np.inf, te), None),
        (te, np.full(days, np.nan)),
    ):
        res = assess_buildings(city(te_c, sun), on=on, config=cfg)
        rows_out = assessment_rows(city(te_c, sun), res, period_start=date(2024, 7, 1),
                                   period_end=on)  # fmt: skip
        assert len(rows_out) == n
    assert res.fit.heating_response.tolist() == [True] + [False] * 4 + [True, False]


def test_hlc_comes_from_the_dim_days_when_the_city_measures_the_sun() -> None:
    rng = np.random.default_rng(17)
    days = 365
    # From July: coldest in mid-January (day 200), brightest in mid-July (day 10).
    te = 11.0 - 7.0 * np.cos(2 * np.pi * (np.arange(days) - 200) / 365) + rng.normal(0, 2, days)
    # Summer days are bright, winter ones dim; clouds come and go. The sun saves heating.
    season = 130.0 + 110.0 * np.cos(2 * np.pi * (np.arange(days) - 10) / 365)
    sun = season * rng.uniform(0.15, 1.0, days)  # daily mean irradiance [W/m²]
    hlc, tb = 150.0, 16.0  # [W/K], [°C]
    heat = np.maximum(hlc * 24 / 1000 * (tb - te) - 0.06 * sun, 0.0) * (te < tb)
    q = 5.0 + heat / 0.9 + rng.normal(0, 0.3, days)  # a gas boiler, η 0.9
    daily = _one_home(q, te, meter="gas", carrier="gas", efficiency=0.9)
    cfg = PipelineConfig(n_boot=20, dim_day_w_per_m2=40.0)
    every_day = assess_buildings(daily, on=date(2025, 6, 30), config=cfg).fit.hlc_w_per_k[0]
    daily = dataclasses.replace(daily, solar_w_per_m2=sun)
    dim = assess_buildings(daily, on=date(2025, 6, 30), config=cfg)
    assert every_day > 1.05 * hlc  # the sun steepens heating against Te
    assert abs(dim.fit.hlc_w_per_k[0] - hlc) < 0.5 * (every_day - hlc)
    assert dim.interval.low[0] <= dim.fit.hlc_w_per_k[0] <= dim.interval.high[0]
