"""The processing run from the database to the result tables, on known synthetic readings."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import numpy as np
import psycopg
import pytest
from numpy.testing import assert_allclose

from processing.detector_config import config_for
from processing.events import Anomaly
from processing.pipeline import (
    RECHECK_AFTER,
    RECHECK_UNTIL,
    RETRACT_AFTER,
    PipelineConfig,
    _without_common_across_kinds,
    assess_buildings,
    by_kind,
    chunk_size,
    detector_kind,
    plausible_outdoor,
    run_anomalies,
    run_insulation,
    scan_meters,
    window_start,
)
from storage.matrices import BuildingDaily, MeterInfo
from storage.meters import create_building, create_municipality, register_meter
from storage.readings import write_readings
from storage.results import AnomalyRow, fetch_anomalies, fetch_assessments, write_anomalies
from storage.rollups import refresh_rollups
from tests.fixtures.weather import outdoor_temp_c

H = timedelta(hours=1)


def _register(conn: psycopg.Connection, name: str, quantity: str, building: int | None) -> int:
    temperature = quantity.endswith("temperature")
    return register_meter(
        conn, device_format="own_json", device_id=name, channel="", quantity=quantity,
        unit="degC" if temperature else "kWh", cumulative=not temperature, building_id=building,
    ).id  # fmt: skip


def _index_rows(meter: int, t0: datetime, use: np.ndarray, start: float = 100.0) -> list:
    """Index readings closing each hour of ``use`` (NaN hours: no reading)."""
    index = start + np.cumsum(np.nan_to_num(use))
    rows = [(meter, t0, start)]
    rows += [
        (meter, t0 + (k + 1) * H, float(index[k])) for k in range(use.size) if np.isfinite(use[k])
    ]
    return rows


# --- anomalies ------------------------------------------------------------------------------

A0 = datetime(2025, 1, 5, 23, tzinfo=UTC)  # local midnight, Monday 2025-01-06
WEEKS = 6
END1 = A0 + timedelta(weeks=WEEKS)


@pytest.fixture
def household(conn: psycopg.Connection) -> dict[str, object]:
    """Six weeks of a household's hourly electricity, a spike and an outage open at the end."""
    bid = create_building(conn, name="home", floor_area_m2=80)
    meter = _register(conn, "home-el", "electricity", bid)
    rng = np.random.default_rng(1)
    n = WEEKS * 168 + 6
    hour = np.arange(n) % 24
    use = (0.4 + 0.3 * np.sin(2 * np.pi * (hour - 8) / 24)) * rng.lognormal(0.0, 0.05, n)
    spike = WEEKS * 168 - 10  # 14:00 on the last day
    use[spike] += 5.0
    use[WEEKS * 168 - 3 : WEEKS * 168 + 2] = np.nan  # from 21:00, back at 02:00 next day
    return {"meter": meter, "use": use, "spike": spike}


def _load(conn: psycopg.Connection, meter: int, use: np.ndarray, upto: int) -> None:
    write_readings(conn, _index_rows(meter, A0, use[:upto]))
    refresh_rollups(conn)
    conn.commit()


def test_anomalies_are_written_once_and_an_open_outage_is_extended(
    conn: psycopg.Connection, household: dict[str, object]
) -> None:
    meter, use, spike = household["meter"], household["use"], household["spike"]
    assert isinstance(meter, int) and isinstance(use, np.ndarray) and isinstance(spike, int)
    _load(conn, meter, use, WEEKS * 168)
    run = run_anomalies(conn, end=END1, report_from=END1 - timedelta(days=1))
    first = fetch_anomalies(conn)
    by_kind = {(a.kind, a.start_ts): a for a in first}
    assert ("spike", A0 + spike * H) in by_kind
    outage = by_kind[("outage", A0 + (WEEKS * 168 - 3) * H)]
    assert outage.end_ts == END1 - H  # still open at the end of the window
    assert run.inserted == len(first) and run.extended == 0
    # The run's time is split into its parts: one chunk read and scanned.
    assert run.chunks == 1 and run.read_seconds > 0 and run.scan_seconds > 0
    assert run.read_seconds + run.scan_seconds <= run.seconds

    again = run_anomalies(conn, end=END1, report_from=END1 - timedelta(days=1))
    assert (again.inserted, again.extended) == (0, 0)
    assert fetch_anomalies(conn) == first

    _load(conn, meter, use, use.size)  # three hours later the meter is back
    end2 = END1 + 6 * H
    later = run_anomalies(conn, end=end2, report_from=end2 - timedelta(days=1))
    assert later.extended >= 1
    outages = [a for a in fetch_anomalies(conn) if a.kind == "outage"]
    assert len(outages) == 1
    assert (outages[0].start_ts, outages[0].end_ts) == (outage.start_ts, END1 + H)
    spikes = [a for a in fetch_anomalies(conn) if a.kind == "spike"]
    assert len(spikes) == 1


def test_workers_store_what_one_process_stores(conn: psycopg.Connection, db_url: str) -> None:
    """Four homes in two chunks, each with a spike on the last day and one with an open
    outage: loaded and scanned by two worker processes on connections of their own, the
    run computes the same events the one-process run stored, so it stores nothing new."""
    rng = np.random.default_rng(7)
    n = WEEKS * 168
    hour = np.arange(n) % 24
    meters = []
    for k in range(4):
        meter = _register(conn, f"home-{k}", "electricity", None)
        use = (0.4 + 0.3 * np.sin(2 * np.pi * (hour - 8) / 24)) * rng.lognormal(0.0, 0.05, n)
        use[n - 20 + 3 * k] += 5.0
        if k == 3:
            use[n - 4 :] = np.nan
        write_readings(conn, _index_rows(meter, A0, use))
        meters.append(meter)
    refresh_rollups(conn)
    conn.commit()
    report_from = END1 - timedelta(days=1)
    one = run_anomalies(conn, end=END1, report_from=report_from,
                        config=PipelineConfig(chunk_meters=2))  # fmt: skip
    stored = fetch_anomalies(conn)
    spikes = {(a.meter_id, a.start_ts) for a in stored if a.kind == "spike"}
    assert spikes == {(m, A0 + (n - 20 + 3 * k) * H) for k, m in enumerate(meters)}
    assert ("outage", meters[3]) in {(a.kind, a.meter_id) for a in stored}

    two = run_anomalies(conn, end=END1, report_from=report_from, conninfo=db_url,
                        config=PipelineConfig(chunk_meters=2, workers=2))  # fmt: skip
    assert (one.workers, two.workers) == (1, 2)
    assert two.chunks == one.chunks == 2
    assert two.events == one.events == len(stored)
    assert (two.inserted, two.extended) == (0, 0)
    assert fetch_anomalies(conn) == stored
    # Without the database's address the run stays in this process.
    again = run_anomalies(conn, end=END1, report_from=report_from,
                          config=PipelineConfig(chunk_meters=2, workers=2))  # fmt: skip
    assert again.workers == 1 and again.events == one.events


def test_a_run_withdraws_a_level_shift_warning_it_no_longer_sees(
    conn: psycopg.Connection, household: dict[str, object]
) -> None:
    """A warning stored by an earlier run on a steady home: this run finds no level shift
    near it and deletes it; one on a meter it does not scan, or before its window, is not
    its to judge."""
    meter, use = household["meter"], household["use"]
    assert isinstance(meter, int) and isinstance(use, np.ndarray)
    _load(conn, meter, use, WEEKS * 168)
    other = _register(conn, "other-el", "electricity", None)
    day = 24 * H
    warn = AnomalyRow(meter, "level_shift", END1 - 3 * day, END1 - day - H, 2.0, 10.0, 12.0,
                      "up", "warning")  # fmt: skip
    early = dataclasses.replace(warn, start_ts=END1 - 200 * day, end_ts=END1 - 199 * day)
    elsewhere = dataclasses.replace(warn, meter_id=other)
    write_anomalies(conn, [warn, early, elsewhere], step=H)
    conn.commit()
    run = run_anomalies(conn, end=END1, report_from=END1 - day, meter_ids=[meter])
    assert (run.warnings_withdrawn, run.warnings_confirmed) == (1, 0)
    left = [(a.meter_id, a.start_ts) for a in fetch_anomalies(conn) if a.kind == "level_shift"]
    assert sorted(left) == sorted([(meter, early.start_ts), (other, warn.start_ts)])


def test_a_run_retracts_a_short_confirmed_shift_it_no_longer_sees(
    conn: psycopg.Connection, household: dict[str, object]
) -> None:
    """Confirmed level shifts stored by earlier runs on a steady home: this run finds none
    of them. It deletes the two-day one (``RETRACT_SPAN``); the three-day one, and a
    two-day one within the first ``RETRACT_AFTER`` of its window (no reference there), it
    keeps."""
    meter, use = household["meter"], household["use"]
    assert isinstance(meter, int) and isinstance(use, np.ndarray)
    _load(conn, meter, use, WEEKS * 168)
    day = 24 * H
    short = AnomalyRow(meter, "level_shift", END1 - 10 * day, END1 - 8 * day - H, 8.0, 10.0,
                       12.0, "up")  # fmt: skip
    long = dataclasses.replace(short, start_ts=END1 - 20 * day, end_ts=END1 - 17 * day - H)
    early = dataclasses.replace(short, start_ts=END1 - 40 * day, end_ts=END1 - 38 * day - H)
    write_anomalies(conn, [short, long, early], step=H)
    conn.commit()
    report_from = END1 - day
    assert window_start(report_from, 8) + RETRACT_AFTER > early.start_ts
    run = run_anomalies(conn, end=END1, report_from=report_from, meter_ids=[meter])
    assert (run.retracted, run.warnings_withdrawn) == (1, 0)
    left = [a.start_ts for a in fetch_anomalies(conn) if a.kind == "level_shift"]
    assert sorted(left) == [early.start_ts, long.start_ts]


def test_a_run_retracts_a_recent_spike_it_no_longer_sees(
    conn: psycopg.Connection, household: dict[str, object]
) -> None:
    """Spikes stored by earlier runs on a home, three days before this run's end: the one
    its readings hold it finds again and keeps; the one they do not hold (what an earlier
    run saw is gone: the routine's next days raised the scale at that hour) it deletes.
    One a day before its end, too recent to judge (``RECHECK_AFTER``), it keeps."""
    meter, use = household["meter"], household["use"]
    assert isinstance(meter, int) and isinstance(use, np.ndarray)
    n = WEEKS * 168
    real = n - 3 * 24 + 5
    use = use.copy()
    use[real] += 5.0
    _load(conn, meter, use, n)
    row = AnomalyRow(meter, "spike", A0 + real * H, A0 + real * H, 9.0, 0.5, 5.5, "spike")
    faded = dataclasses.replace(row, start_ts=row.start_ts + 7 * H, end_ts=row.end_ts + 7 * H)
    recent = dataclasses.replace(row, start_ts=END1 - 20 * H, end_ts=END1 - 20 * H)
    write_anomalies(conn, [row, faded, recent], step=H)
    conn.commit()
    assert END1 - RECHECK_UNTIL <= row.start_ts < faded.start_ts <= END1 - RECHECK_AFTER
    run = run_anomalies(conn, end=END1, report_from=END1 - timedelta(days=1), meter_ids=[meter])
    assert run.retracted == 1
    spikes = {a.start_ts for a in fetch_anomalies(conn) if a.kind == "spike"}
    assert row.start_ts in spikes and recent.start_ts in spikes
    assert faded.start_ts not in spikes


def test_counter_reset_from_the_rollups_becomes_an_anomaly(conn: psycopg.Connection) -> None:
    meter = _register(conn, "gas-reset", "gas", None)
    use = np.full(WEEKS * 168, 1.0)
    rows = _index_rows(meter, A0, use, start=5000.0)
    reset_at = WEEKS * 168 - 5
    rows = [
        (m, t, v - 5000.0 - reset_at if i > reset_at else v) for i, (m, t, v) in enumerate(rows)
    ]
    write_readings(conn, rows)
    refresh_rollups(conn)
    conn.commit()
    run_anomalies(conn, end=END1, report_from=END1 - timedelta(days=1))
    resets = [a for a in fetch_anomalies(conn) if a.kind == "counter_reset"]
    assert [a.start_ts for a in resets] == [A0 + (reset_at + 1) * H]


def _instant_rows(meter: int, t0: datetime, values: np.ndarray) -> list:
    """One reading a hour, half past, of an instantaneous quantity."""
    return [(meter, t0 + k * H + 30 * timedelta(minutes=1), float(v)) for k, v in enumerate(values)]


def test_a_home_s_gas_level_shift_is_stored_against_the_weather_and_the_sun(
    conn: psycopg.Connection,
) -> None:
    # Ten weeks of a gas-heated home, sunny and dull weeks, its use 40 % up for the last
    # six days; the station reads the temperature and the sun.
    days, up = 70, 64
    rng = np.random.default_rng(5)
    hours = np.arange(days * 24)
    te = outdoor_temp_c(rng, days, mean=6.0, day_sd=2.5, period_days=0)
    weekly = np.repeat(np.where(rng.random(days // 7) < 0.4, 350.0, 60.0), 7)
    sun = np.clip(np.sin(np.pi * ((hours % 24) - 6) / 12), 0, None) * np.repeat(weekly, 24)
    daily_sun = np.repeat(sun.reshape(days, 24).mean(axis=1), 24)
    use = (0.15 + 0.12 * np.maximum(17.0 - te, 0.0) - 0.0025 * daily_sun) * rng.lognormal(
        0.0, 0.1, hours.size
    )
    use = np.maximum(use, 0.02)
    use[up * 24 :] *= 1.4
    home = create_building(conn, name="home", use="household", is_household=True)
    meter = _register(conn, "home-gas", "gas", home)
    station = _register(conn, "station-te", "outdoor_temperature", None)
    sky = register_meter(
        conn, device_format="own_json", device_id="station-sun", channel="",
        quantity="irradiance", unit="W/m2", cumulative=False, building_id=None,
    ).id  # fmt: skip
    write_readings(
        conn,
        _index_rows(meter, A0, use) + _instant_rows(station, A0, te) + _instant_rows(sky, A0, sun),
    )
    refresh_rollups(conn)
    conn.commit()
    end = A0 + days * 24 * H
    run_anomalies(conn, end=end, report_from=end - timedelta(days=3))
    shifts = [a for a in fetch_anomalies(conn) if a.kind in ("level_shift", "drift")]
    assert [(a.meter_id, a.start_ts) for a in shifts] == [(meter, A0 + up * 24 * H)]
    # The size is the mean over the event, and the trailing fit starts to learn the new
    # level as soon as its first days enter the window: less than the 40 %, clearly up.
    assert 1.15 < shifts[0].observed / shifts[0].expected < 1.45


# --- insulation -----------------------------------------------------------------------------

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
    station = _register(conn, "station", "outdoor_temperature", None)
    hours = DAYS * 24
    rows = [(station, t0 + k * H + 30 * timedelta(minutes=1), float(te_day[k // 24]))
            for k in range(hours)]  # fmt: skip
    ids = {}
    for name, (s, b, tb, eta, area) in TRUTH.items():
        bid = create_building(
            conn, name=name, municipality_id=muni, floor_area_m2=area, heating_carrier="gas",
            heating_efficiency=eta, year_built=1970,
        )  # fmt: skip
        meter = _register(conn, f"{name}-gas", "gas", bid)
        q_day = b + s * np.maximum(tb - te_day, 0.0) + rng.normal(0, 0.2, DAYS)
        rows += _index_rows(meter, t0, np.repeat(q_day / 24.0, 24))
        ids[name] = bid
    # A retrofit half-way: the heating slope drops by 40 % (insulation added).
    bid = create_building(
        conn, name="retrofit", municipality_id=muni, floor_area_m2=100.0, heating_carrier="gas",
        heating_efficiency=0.9, year_built=1970,
    )  # fmt: skip
    meter = _register(conn, "retrofit-gas", "gas", bid)
    slope = np.where(np.arange(DAYS) < DAYS // 2, 10.0, 6.0)
    q_day = 5.0 + slope * np.maximum(15.0 - te_day, 0.0) + rng.normal(0, 0.2, DAYS)
    rows += _index_rows(meter, t0, np.repeat(q_day / 24.0, 24))
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


def test_only_buildings_that_close_get_weekend_and_holiday_checks() -> None:
    kinds = {
        (q, u): detector_kind(q, u)
        for q in ("electricity", "gas", "heat")
        for u in ("household", "gym", "office", "school", "town_hall")
    }
    for (quantity, use), kind in kinds.items():
        cfg = config_for(kind)
        closes = use not in ("household", "gym")
        assert cfg.check_weekends == closes and cfg.check_holidays == closes, (quantity, use)
        assert cfg.check_nights
    assert detector_kind("indoor_temperature", "office") == "temperature"
    assert detector_kind("outdoor_temperature", "") == "outdoor_temperature"


def test_an_office_stuck_from_a_thursday_afternoon_through_the_weekend_is_a_flatline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An office reads ≈ 8 kWh an hour closed and 17 at work (08–18, weekdays). Its register
    stuck at 8 from a Thursday 14:00 to Sunday 09:00 held one working day's hours, Friday's:
    under the generic 18 busy hours it would pass for an early weekend."""
    rng = np.random.default_rng(11)
    hours = np.arange(24 * 7 * 8)  # from a Monday, local time
    day, hod = hours // 24, hours % 24
    work = (day % 7 < 5) & (hod >= 8) & (hod < 18)
    x = np.where(work, 17.0, 8.0) * (1 + 0.004 * rng.standard_normal(hours.size))
    stuck = 24 * (7 * 6 + 3) + 14  # Thursday 14:00, for 67 h
    x[stuck : stuck + 67] = 8.0 * (1 + 0.004 * rng.standard_normal(67))
    start = datetime(2024, 9, 2)  # a Monday

    def flats() -> list[tuple[int, int]]:
        found = scan_meters(x[np.newaxis, :], ["office"], local_start=start)
        return [(a.start, a.end) for a in found if a.kind == "flatline" and a.start > 24 * 28]

    assert len(flats()) == 1 and stuck <= flats()[0][0] < stuck + 24
    monkeypatch.setattr("processing.pipeline.QUALITY_BY_KIND", {})
    assert flats() == []


def test_a_homes_electricity_stuck_for_eight_hours_is_a_flatline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A home's electricity wanders by 30 % an hour; its register stuck for 8 h reads one
    rate (±0.4 % of reading-time jitter). Gas and heat flows hold for hours and need 10."""
    rng = np.random.default_rng(13)
    hours = np.arange(24 * 7 * 8)
    hod = hours % 24
    x = (0.4 + 0.6 * ((hod >= 7) & (hod < 23))) * (1 + 0.3 * rng.standard_normal(hours.size))
    x = np.abs(x)
    stuck = 24 * 7 * 6 + 10  # 10:00, for 8 h
    x[stuck : stuck + 8] = 0.9 * (1 + 0.004 * rng.standard_normal(8))
    start = datetime(2024, 9, 2)

    def flats() -> list[tuple[int, int]]:
        found = scan_meters(x[np.newaxis, :], ["household"], local_start=start)
        return [(a.start, a.end) for a in found if a.kind == "flatline"]

    assert flats() == [(stuck, stuck + 8)]
    monkeypatch.setattr("processing.pipeline.QUALITY_BY_KIND", {})
    assert flats() == []


def test_a_warm_fortnight_is_the_weather_outdoors_and_a_shift_indoors() -> None:
    rng = np.random.default_rng(12)
    days = 70
    h = np.arange(24 * days)
    # The same +4 K fortnight from day 45: outside it is weather, in a heated office's
    # thermometer, held at 20 °C for five weeks, it is a change to look at.
    warm = np.where((h >= 24 * 45) & (h < 24 * 59), 4.0, 0.0)
    outside = np.round(8.0 + 3.0 * np.sin(2 * np.pi * h / 24) + rng.normal(0, 0.3, h.size), 1)
    inside = np.round(20.0 + rng.normal(0, 0.15, h.size), 1)
    x = np.stack([outside + warm, inside + warm])
    kinds = [
        detector_kind("outdoor_temperature", ""),
        detector_kind("indoor_temperature", "office"),
    ]
    found = scan_meters(x, kinds, local_start=datetime(2024, 10, 7))
    shifts = {a.meter_index for a in found if a.kind in ("level_shift", "drift")}
    assert shifts == {1}


def test_a_cold_night_across_heating_kinds_is_the_weather_s() -> None:
    """Four gas homes, three heat-metered homes and three closing buildings up on one night:
    too few of each kind for that kind's test, the weather's as one fleet. The unheated
    homes' nights that evening, and the lone nights of a season away from it, stay faults."""
    kinds = np.asarray(["household_gas"] * 20 + ["household_heat"] * 20 + ["gas"] * 20
                       + ["household"] * 20)  # fmt: skip
    night = 24 * 40 + 23

    def event(meter: int, start: int) -> Anomaly:
        return Anomaly(meter, start, start + 30, "night_use", 5.0, 1.0, 2.0, "")

    cold = [event(m, night) for m in (0, 1, 2, 3, 20, 21, 22, 40, 41, 42)]
    unheated = [event(m, night) for m in (60, 61)]
    # A week apart, none over the cold night (its events hold the next night too).
    lone = [event(m, 24 * (23 + 7 * j) + 23) for j, m in enumerate(range(4, 64, 6))]
    found = cold + unheated + lone
    kept = _without_common_across_kinds(found, kinds, 24 * 120)
    assert kept == unheated + lone


def test_meters_of_a_kind_share_chunks() -> None:
    # Ids interleave homes' electricity and gas; chunks of three must not mix them.
    quantity = np.array(["electricity", "gas"] * 3)
    meters = MeterInfo(
        meter_id=np.arange(10, 16),
        building_id=np.arange(6),
        quantity=quantity,
        unit=np.full(6, "kWh"),
        cumulative=np.ones(6, dtype=bool),
        use=np.full(6, "household"),
    )
    grouped = by_kind(meters)
    assert grouped.meter_id.tolist() == [10, 12, 14, 11, 13, 15]
    kinds = [detector_kind(q, u) for q, u in zip(grouped.quantity, grouped.use, strict=True)]
    assert kinds[:3] == ["household"] * 3 and kinds[3:] == ["household_gas"] * 3


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


def test_chunks_are_sized_by_memory_unless_fixed():
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    five_weeks = t0 + timedelta(weeks=5)  # 840 h: 8 · 840 bytes per meter, 9,523 in 64 MB
    assert chunk_size(PipelineConfig(), meters=9000, start=t0, end=five_weeks) == 9000
    # Two chunks are needed, of equal size; three for 20,000.
    assert chunk_size(PipelineConfig(), meters=10_000, start=t0, end=five_weeks) == 5000
    assert chunk_size(PipelineConfig(), meters=20_000, start=t0, end=five_weeks) == 6667
    one_year = t0 + timedelta(days=365)  # 913 meters in 64 MB
    assert chunk_size(PipelineConfig(), meters=913, start=t0, end=one_year) == 913
    assert chunk_size(PipelineConfig(), meters=914, start=t0, end=one_year) == 457
    assert chunk_size(PipelineConfig(chunk_meters=500), meters=914, start=t0, end=one_year) == 500
    assert chunk_size(PipelineConfig(chunk_mb=1e-6), meters=914, start=t0, end=one_year) == 1
    assert chunk_size(PipelineConfig(), meters=0, start=t0, end=one_year) == 1
