"""Idempotent result writes: anomalies extended not repeated, assessments upserted."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from storage.meters import create_building, register_meter
from storage.results import (
    AnomalyRow,
    Assessment,
    fetch_anomalies,
    fetch_assessments,
    settle_warnings,
    write_anomalies,
    write_assessments,
)

T0 = datetime(2025, 1, 6, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.fixture
def meter_id(conn: psycopg.Connection) -> int:
    return register_meter(
        conn, device_format="own_json", device_id="m1", channel="", quantity="electricity",
        unit="kWh", cumulative=True,
    ).id  # fmt: skip


def _event(meter_id: int, start: int, end: int, kind: str = "outage", sev: float = 3.0):
    return AnomalyRow(
        meter_id, kind, T0 + start * H, T0 + end * H, sev, None, None, f"{kind} {start}-{end}"
    )


def test_same_window_twice_gives_the_same_rows(conn: psycopg.Connection, meter_id: int) -> None:
    events = [_event(meter_id, 0, 2), _event(meter_id, 10, 10, "spike", 7.0)]
    first = write_anomalies(conn, events, step=H)
    conn.commit()
    before = fetch_anomalies(conn)
    second = write_anomalies(conn, events, step=H)
    conn.commit()
    assert (first.inserted, first.extended) == (2, 0)
    assert (second.inserted, second.extended) == (0, 0)
    assert fetch_anomalies(conn) == before


def test_ongoing_event_is_extended_by_the_next_run(conn: psycopg.Connection, meter_id: int) -> None:
    write_anomalies(conn, [_event(meter_id, 20, 23)], step=H)  # still open at the run's end
    # Next run: the window moved; the event continues (adjacent, or re-seen overlapping).
    result = write_anomalies(conn, [_event(meter_id, 24, 30)], step=H)
    assert (result.inserted, result.extended) == (0, 1)
    result = write_anomalies(conn, [_event(meter_id, 22, 35, sev=9.0)], step=H)
    assert (result.inserted, result.extended) == (0, 1)
    rows = fetch_anomalies(conn)
    assert len(rows) == 1
    assert (rows[0].start_ts, rows[0].end_ts, rows[0].severity) == (T0 + 20 * H, T0 + 35 * H, 9.0)
    assert rows[0].reason == "outage 22-35"
    # Two steps apart is a new event; another kind never extends this one.
    result = write_anomalies(
        conn, [_event(meter_id, 37, 38), _event(meter_id, 30, 31, "flatline")], step=H
    )
    assert (result.inserted, result.extended) == (2, 0)
    assert len(fetch_anomalies(conn)) == 3


def test_a_level_shift_a_later_run_calls_a_drift_is_one_event(
    conn: psycopg.Connection, meter_id: int
) -> None:
    write_anomalies(conn, [_event(meter_id, 0, 48, "level_shift")], step=H)
    result = write_anomalies(conn, [_event(meter_id, 0, 72, "drift", sev=12.0)], step=H)
    assert (result.inserted, result.extended) == (0, 1)
    rows = fetch_anomalies(conn)
    assert [(r.kind, r.end_ts, r.severity) for r in rows] == [("level_shift", T0 + 72 * H, 12.0)]
    assert rows[0].reason == "level_shift 0-48"  # the sentence goes with the stored kind
    # A spike at the same time is another event.
    assert write_anomalies(conn, [_event(meter_id, 30, 30, "spike")], step=H).inserted == 1


def test_a_warning_is_confirmed_when_the_shift_adds_up_and_withdrawn_when_it_fades(
    conn: psycopg.Connection, meter_id: int
) -> None:
    day = 24
    warn = dataclasses.replace(_event(meter_id, 10 * day, 12 * day - 1, "level_shift"),
                               status="warning")  # fmt: skip
    write_anomalies(conn, [warn], step=H)
    assert [r.status for r in fetch_anomalies(conn)] == ["warning"]
    # The next run still sees it as a warning: it stays, longer.
    later = dataclasses.replace(warn, end_ts=T0 + (13 * day - 1) * H)
    write_anomalies(conn, [later], step=H)
    settled = settle_warnings(conn, [later], meter_ids=[meter_id], since=T0, step=H)
    assert (settled.withdrawn, settled.confirmed) == (0, 0)
    assert [(r.status, r.end_ts) for r in fetch_anomalies(conn)] == [("warning", later.end_ts)]
    # A confirmed shift extending it confirms it; a warning never unconfirms it.
    confirmed = dataclasses.replace(later, end_ts=T0 + (14 * day - 1) * H, status="confirmed")
    assert write_anomalies(conn, [confirmed], step=H).extended == 1
    write_anomalies(conn, [warn], step=H)
    assert [r.status for r in fetch_anomalies(conn)] == ["confirmed"]
    # A second warning that a run no longer sees is withdrawn; one ending before the run's
    # window, or on another meter, is not the run's to judge.
    other = register_meter(
        conn, device_format="own_json", device_id="m2", channel="", quantity="electricity",
        unit="kWh", cumulative=True,
    ).id  # fmt: skip
    faded = dataclasses.replace(warn, start_ts=T0 + 30 * day * H, end_ts=T0 + 31 * day * H)
    old = dataclasses.replace(warn, start_ts=T0, end_ts=T0 + day * H)
    elsewhere = dataclasses.replace(faded, meter_id=other)
    write_anomalies(conn, [faded, old, elsewhere], step=H)
    settled = settle_warnings(
        conn, [confirmed], meter_ids=[meter_id], since=T0 + 2 * day * H, step=H
    )
    assert (settled.withdrawn, settled.confirmed) == (1, 0)
    assert [(r.meter_id, r.start_ts, r.status) for r in fetch_anomalies(conn)] == [
        (meter_id, old.start_ts, "warning"),
        (meter_id, confirmed.start_ts, "confirmed"),
        (other, faded.start_ts, "warning"),
    ]
    # A warning a confirmed shift touches is confirmed, though the run does not report it.
    settled = settle_warnings(
        conn, [dataclasses.replace(elsewhere, status="confirmed")], meter_ids=[other],
        since=T0, step=H,
    )  # fmt: skip
    assert (settled.withdrawn, settled.confirmed) == (0, 1)


def test_a_short_confirmed_shift_a_later_run_no_longer_finds_is_retracted(
    conn: psycopg.Connection, meter_id: int
) -> None:
    day = 24

    def shift(first: int, days: int) -> AnomalyRow:
        return _event(meter_id, first * day, (first + days) * day, "level_shift")

    short, long, early, seen = shift(40, 2), shift(50, 5), shift(20, 2), shift(60, 3)
    noted = shift(70, 1)
    write_anomalies(conn, [short, long, early, seen, noted], step=H)
    conn.execute("UPDATE anomalies SET acknowledged_at = now() WHERE start_ts = %s",
                 (noted.start_ts,))  # fmt: skip
    settled = settle_warnings(
        conn, [dataclasses.replace(seen, start_ts=seen.start_ts + day * H, status="warning")],
        meter_ids=[meter_id], since=T0, step=H, retract_from=T0 + 30 * day * H,
        retract_span=timedelta(days=3),
    )  # fmt: skip
    # Two days read again with the days after: gone. Five days, or two before the part of
    # the window the run can judge, or three that it still finds (as a warning), or one
    # day that a person acknowledged: kept.
    assert (settled.withdrawn, settled.confirmed, settled.retracted) == (0, 0, 1)
    assert [r.start_ts for r in fetch_anomalies(conn)] == [
        early.start_ts,
        long.start_ts,
        seen.start_ts,
        noted.start_ts,
    ]
    # Without ``retract_from`` no confirmed shift is judged.
    write_anomalies(conn, [short], step=H)
    assert settle_warnings(conn, [], meter_ids=[meter_id], since=T0, step=H).retracted == 0
    assert len(fetch_anomalies(conn)) == 5


def test_a_recent_spike_no_event_of_a_later_run_touches_is_retracted(
    conn: psycopg.Connection, meter_id: int
) -> None:
    day = 24
    span = (T0 + 40 * day * H, T0 + 42 * day * H)  # the starts a run rechecks

    def at(first_day: float, kind: str = "spike") -> AnomalyRow:
        first = int(first_day * day)
        return _event(meter_id, first, first + 1, kind)

    faded, inside, early, late, noted = at(40), at(41), at(39), at(42.5), at(41.5)
    night = at(40.5, "night_use")
    warned = dataclasses.replace(at(45, "level_shift"), status="warning")
    write_anomalies(conn, [faded, inside, early, late, noted, night, warned], step=H)
    conn.execute("UPDATE anomalies SET acknowledged_at = now() WHERE start_ts = %s",
                 (noted.start_ts,))  # fmt: skip
    # The run reads the second spike as part of a longer event of another kind (a level
    # shift's days cover it; a warning counts too), and finds a spike on the warning's day.
    covering = dataclasses.replace(
        _event(meter_id, 41 * day - 5, 41 * day + 20, "level_shift"), status="warning"
    )
    settled = settle_warnings(
        conn, [covering, at(45)], meter_ids=[meter_id], since=T0, step=H,
        recheck_kinds=("spike", "drop"), recheck_starts=span,
    )  # fmt: skip
    # The first spike is gone. The covered one, those starting outside the span, the one a
    # person acknowledged and the night of a kind not rechecked stay. A spike does not
    # hold a level-shift warning (only a level shift or drift does): it is withdrawn.
    assert (settled.withdrawn, settled.confirmed, settled.retracted) == (1, 0, 1)
    assert [r.start_ts for r in fetch_anomalies(conn) if r.kind == "spike"] == [
        early.start_ts, inside.start_ts, noted.start_ts, late.start_ts,
    ]  # fmt: skip
    assert [r.kind for r in fetch_anomalies(conn) if r.kind != "spike"] == ["night_use"]
    # Without a span nothing is rechecked.
    write_anomalies(conn, [faded], step=H)
    none = settle_warnings(conn, [], meter_ids=[meter_id], since=T0, step=H,
                           recheck_kinds=("spike",))  # fmt: skip
    assert none.retracted == 0


def test_assessments_upsert_on_building_period_and_method(conn: psycopg.Connection) -> None:
    bid = create_building(conn, name="b")
    row = Assessment(
        bid, date(2024, 10, 1), date(2025, 4, 30), "changepoint", "ok", hlc_w_per_k=150.0,
        label="E", is_passoire=False,
    )  # fmt: skip
    assert write_assessments(conn, [row]) == 1
    write_assessments(conn, [dataclasses.replace(row, hlc_w_per_k=160.0, label="F")])
    insufficient = Assessment(
        bid, date(2024, 10, 1), date(2025, 4, 30), "arx", "insufficient_data",
        status_reason="no indoor temperature",
    )  # fmt: skip
    write_assessments(conn, [insufficient])
    stored = fetch_assessments(conn)
    assert [(a.method, a.hlc_w_per_k, a.label) for a in stored] == [
        ("arx", None, None),
        ("changepoint", 160.0, "F"),
    ]


def test_two_events_with_the_same_start_in_one_run_are_one_row(conn: psycopg.Connection) -> None:
    meter = register_meter(conn, device_format="own_json", device_id="dup-start",
                           channel="e", quantity="electricity", unit="kWh",
                           cumulative=True)  # fmt: skip
    t0 = datetime(2025, 1, 6, tzinfo=UTC)
    rows = [
        AnomalyRow(meter.id, "spike", t0, t0 + timedelta(hours=1), 6.0, 1.0, 9.0, "short"),
        AnomalyRow(meter.id, "spike", t0, t0 + timedelta(hours=3), 8.0, 1.0, 12.0, "long"),
    ]
    write_anomalies(conn, rows, step=timedelta(hours=1))
    conn.commit()
    got = conn.execute("SELECT start_ts, end_ts, reason FROM anomalies").fetchall()
    assert got == [(t0, t0 + timedelta(hours=3), "long")]
