"""The anomaly run from the database to the anomalies table, on known synthetic readings."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from processing.detector_config import (
    BUILT_IN_CONFIGS,
    DETECTOR_CONFIGS,
    config_for,
    tuned_configs,
    tuned_quality,
)
from processing.events import Anomaly
from processing.pipeline import (
    RECHECK_AFTER,
    RECHECK_UNTIL,
    RETRACT_AFTER,
    PipelineConfig,
    _without_common_across_kinds,
    by_kind,
    chunk_size,
    detector_kind,
    run_anomalies,
    scan_meters,
    trial_scan,
    window_start,
)
from storage.matrices import MeterInfo
from storage.meters import create_building, register_meter
from storage.readings import write_readings
from storage.results import AnomalyRow, fetch_anomalies, write_anomalies
from storage.rollups import refresh_rollups
from tests.fixtures.meter_readings import H, index_rows, register_meter_for_test
from tests.fixtures.weather import outdoor_temp_c

# --- anomalies ------------------------------------------------------------------------------

A0 = datetime(2025, 1, 5, 23, tzinfo=UTC)  # local midnight, Monday 2025-01-06
WEEKS = 6
END1 = A0 + timedelta(weeks=WEEKS)


@pytest.fixture
def household(conn: psycopg.Connection) -> dict[str, object]:
    """Six weeks of a household's hourly electricity, a spike and an outage open at the end."""
    bid = create_building(conn, name="home", floor_area_m2=80)
    meter = register_meter_for_test(conn, "home-el", "electricity", bid)
    rng = np.random.default_rng(1)
    n = WEEKS * 168 + 6
    hour = np.arange(n) % 24
    use = (0.4 + 0.3 * np.sin(2 * np.pi * (hour - 8) / 24)) * rng.lognormal(0.0, 0.05, n)
    spike = WEEKS * 168 - 10  # 14:00 on the last day
    use[spike] += 5.0
    use[WEEKS * 168 - 3 : WEEKS * 168 + 2] = np.nan  # from 21:00, back at 02:00 next day
    return {"meter": meter, "use": use, "spike": spike}


def _load(conn: psycopg.Connection, meter: int, use: np.ndarray, upto: int) -> None:
    write_readings(conn, index_rows(meter, A0, use[:upto]))
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


def _four_homes(conn: psycopg.Connection) -> list[int]:
    """Four homes, each with a spike on the last day (meter k at hour n − 20 + 3k), the
    last with an open outage."""
    rng = np.random.default_rng(7)
    n = WEEKS * 168
    hour = np.arange(n) % 24
    meters = []
    for k in range(4):
        meter = register_meter_for_test(conn, f"home-{k}", "electricity", None)
        use = (0.4 + 0.3 * np.sin(2 * np.pi * (hour - 8) / 24)) * rng.lognormal(0.0, 0.05, n)
        use[n - 20 + 3 * k] += 5.0
        if k == 3:
            use[n - 4 :] = np.nan
        write_readings(conn, index_rows(meter, A0, use))
        meters.append(meter)
    refresh_rollups(conn)
    conn.commit()
    return meters


def test_workers_store_what_one_process_stores(conn: psycopg.Connection, db_url: str) -> None:
    """Four homes in two chunks: loaded and scanned by two worker processes on connections
    of their own, the run computes the same events the one-process run stored, so it
    stores nothing new."""
    meters = _four_homes(conn)
    n = WEEKS * 168
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


def test_an_operator_s_thresholds_reach_every_worker(conn: psycopg.Connection, db_url: str) -> None:
    """Homes' spike thresholds raised out of reach (WATTWATCH_PROCESSING_DETECTORS) and
    their outages made six hours long (WATTWATCH_PROCESSING_QUALITY): the four spikes and
    the four-hour outage the built-in ones find are not reported, by this process or by
    workers."""
    meters = _four_homes(conn)
    unreachable = {"z_threshold": 1e9, "z_single": 1e9, "large_z": 0.0, "run_step_z": 0.0}
    report_from = END1 - timedelta(days=1)
    for workers in (1, 2):
        cfg = PipelineConfig(
            chunk_meters=2, workers=workers,
            detectors=tuned_configs({"household": unreachable}),
            quality_by_kind=tuned_quality({"household": {"outage_steps": 6}}),
        )  # fmt: skip
        run = run_anomalies(conn, end=END1, report_from=report_from, config=cfg, conninfo=db_url)
        assert run.workers == workers
        assert not [a for a in fetch_anomalies(conn) if a.kind in ("spike", "outage")]
    run_anomalies(conn, end=END1, report_from=report_from, config=PipelineConfig(chunk_meters=2))
    stored = fetch_anomalies(conn)
    assert len([a for a in stored if a.kind == "spike"]) == 4
    assert ("outage", meters[3]) in {(a.kind, a.meter_id) for a in stored}


def test_a_trial_scan_passes_every_built_in_kind_and_names_the_kind_that_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trial_scan(dict(BUILT_IN_CONFIGS), {kind: {} for kind in BUILT_IN_CONFIGS})

    def broken(*_args: object, **_kwargs: object) -> list[Anomaly]:
        raise ZeroDivisionError("integer division or modulo by zero")

    monkeypatch.setattr("processing.pipeline.scan_meters", broken)
    with pytest.raises(ValueError, match=r"^school: a test scan fails with these thresholds "
                       r"\(integer division or modulo by zero\)$"):  # fmt: skip
        trial_scan(tuned_configs({"school": {"z_single": 8}}))


def test_an_operator_s_data_quality_thresholds_apply_to_their_kind() -> None:
    rng = np.random.default_rng(3)
    n = WEEKS * 168
    hour = np.arange(n) % 24
    use = (0.4 + 0.3 * np.sin(2 * np.pi * (hour - 8) / 24)) * rng.lognormal(0.0, 0.05, (3, n))
    use[0, n - 30 : n - 26] = np.nan  # four hours without a reading
    start = datetime(2025, 1, 6)

    def outages(tuned: dict) -> list[int]:
        found = scan_meters(use, ["household"] * 3, local_start=start,
                            quality_by_kind=tuned_quality(tuned))  # fmt: skip
        return [a.meter_index for a in found if a.kind == "outage"]

    assert outages({}) == [0]  # three hours make an outage (QualityConfig.outage_steps)
    assert outages({"office": {"outage_steps": 6}}) == [0]  # another kind's
    assert outages({"household": {"outage_steps": 6}}) == []


def test_a_run_withdraws_a_level_shift_warning_it_no_longer_sees(
    conn: psycopg.Connection, household: dict[str, object]
) -> None:
    """A warning stored by an earlier run on a steady home: this run finds no level shift
    near it and deletes it; one on a meter it does not scan, or before its window, is not
    its to judge."""
    meter, use = household["meter"], household["use"]
    assert isinstance(meter, int) and isinstance(use, np.ndarray)
    _load(conn, meter, use, WEEKS * 168)
    other = register_meter_for_test(conn, "other-el", "electricity", None)
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
    meter = register_meter_for_test(conn, "gas-reset", "gas", None)
    use = np.full(WEEKS * 168, 1.0)
    rows = index_rows(meter, A0, use, start=5000.0)
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
    meter = register_meter_for_test(conn, "home-gas", "gas", home)
    station = register_meter_for_test(conn, "station-te", "outdoor_temperature", None)
    sky = register_meter(
        conn, device_format="own_json", device_id="station-sun", channel="",
        quantity="irradiance", unit="W/m2", cumulative=False, building_id=None,
    ).id  # fmt: skip
    write_readings(
        conn,
        index_rows(meter, A0, use) + _instant_rows(station, A0, te) + _instant_rows(sky, A0, sun),
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
    kept = _without_common_across_kinds(found, kinds, 24 * 120, {})
    assert kept == unheated + lone


def test_meters_that_read_nothing_or_nonsense_scan_quietly_and_alone() -> None:
    """No kind's scan warns or fails on a meter that read nothing in the window, a stuck
    or sparse one, or absurd values (the suite turns every warning into an error); an
    infinite reading is a gap."""
    rng = np.random.default_rng(5)
    hours = np.arange(8 * 168)
    usual = 1.0 + 0.5 * np.sin(2 * np.pi * (hours % 24) / 24)
    healthy = usual * (1.0 + 0.1 * rng.standard_normal((5, hours.size)))
    odd = np.vstack([
        np.full(hours.size, np.nan),  # offline for the whole window
        np.zeros(hours.size),
        np.full(hours.size, 5.0),
        np.where(hours % 7 == 0, usual, np.nan),  # one reading in seven
        np.where(hours == 500, 3.0, np.nan),  # a single reading
        np.where(hours == 900, 1e12, usual),
        -usual,
        usual * 1e9,
    ])  # fmt: skip
    with_inf = np.where(hours == 700, np.inf, usual)
    weather = {
        "outdoor_temp_c": 8.0 + 4.0 * np.sin(2 * np.pi * hours / 24),
        "sun_w_m2": np.maximum(0.0, 300.0 * np.sin(2 * np.pi * (hours % 24 - 6) / 24)),
    }
    start = datetime(2025, 1, 6)
    for kind in [*DETECTOR_CONFIGS, "temperature", "outdoor_temperature"]:
        x = np.vstack([healthy, odd, with_inf])
        found = scan_meters(x, [kind] * len(x), local_start=start, **weather)
        assert all(np.isfinite(a.severity) and 0 <= a.meter_index < len(x) for a in found)
        gap = np.where(np.isinf(x), np.nan, x)
        as_gaps = scan_meters(gap, [kind] * len(x), local_start=start, **weather)
        assert repr(found) == repr(as_gaps), kind  # repr: NaN fields equal


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
