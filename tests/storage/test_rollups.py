"""Rollups and retention on the real TimescaleDB (the Apache-edition path)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from storage.database import timescale_info
from storage.meters import register_meter
from storage.readings import write_readings
from storage.rollups import apply_retention, mark_all_dirty, refresh_rollups

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 29, 22, 0, tzinfo=UTC)  # the night Paris moves to summer time


def meter(conn: psycopg.Connection, channel: str, *, cumulative: bool, unit: str) -> int:
    m = register_meter(conn, device_format="own_json", device_id="r", channel=channel,
                       quantity="electricity", unit=unit, cumulative=cumulative)  # fmt: skip
    return m.id


def test_index_deltas_with_a_reset_and_paris_days(conn: psycopg.Connection) -> None:
    index = meter(conn, "index", cumulative=True, unit="kWh")
    # Every 30 min: +1 kWh, except a reset to 0.5 at 01:00 UTC on 30 March.
    values, v = [], 100.0
    for i in range(12):
        ts = T0 + timedelta(minutes=30 * i)
        v = 0.5 if ts == datetime(2025, 3, 30, 1, 0, tzinfo=UTC) else v + 1.0
        values.append((index, ts, v))
    staged, inserted = write_readings(conn, values)
    conn.commit()
    assert (staged, inserted) == (12, 12)
    refresh_rollups(conn)

    hourly = dict(
        conn.execute(
            "SELECT hour, consumption FROM readings_hourly WHERE meter_id = %s ORDER BY hour",
            (index,),
        ).fetchall()
    )
    # A reading at hh:00 closes the hour before it: the first one (22:00) closes 21:00-22:00,
    # which has no earlier reading, so no consumption figure.
    assert hourly[T0 - timedelta(hours=1)] is None
    assert hourly[T0] == 2.0  # 22:30 +1, 23:00 +1
    assert hourly[T0 + timedelta(hours=2)] == 1.0 + 0.5  # 00:30 +1, 01:00 reset: 0.5 counted
    assert min(v for v in hourly.values() if v is not None) >= 0
    events = conn.execute(
        "SELECT ts, kind, value_before, value_after FROM meter_events WHERE meter_id = %s",
        (index,),
    ).fetchall()
    assert events == [(datetime(2025, 3, 30, 1, 0, tzinfo=UTC), "counter_reset", 106.0, 0.5)]

    daily = dict(
        conn.execute(
            "SELECT day, consumption FROM readings_daily WHERE meter_id = %s", (index,)
        ).fetchall()
    )
    # 22:00 UTC on 29 March is 23:00 in Paris: the first two hours belong to the 29th.
    assert set(daily) == {date(2025, 3, 29), date(2025, 3, 30)}
    total = sum(v for v in hourly.values() if v is not None)
    assert daily[date(2025, 3, 29)] + daily[date(2025, 3, 30)] == pytest.approx(total)


def test_instantaneous_means_and_idempotent_refresh(conn: psycopg.Connection) -> None:
    power = meter(conn, "power", cumulative=False, unit="W")
    rows = [(power, T0 + timedelta(minutes=15 * i), float(100 * (i % 4))) for i in range(8)]
    write_readings(conn, rows)
    conn.commit()
    first = refresh_rollups(conn)
    assert first.hours_claimed > 0
    assert refresh_rollups(conn).hours_claimed == 0  # nothing new, nothing to do
    mark_all_dirty(conn)
    conn.commit()
    refresh_rollups(conn)  # recomputing gives the same rows, not more
    got = conn.execute(
        "SELECT hour, consumption, mean, min, max, samples FROM readings_hourly"
        " WHERE meter_id = %s ORDER BY hour",
        (power,),
    ).fetchall()
    assert got == [
        (T0, None, 150.0, 0.0, 300.0, 4),
        (T0 + timedelta(hours=1), None, 150.0, 0.0, 300.0, 4),
    ]


def test_late_data_is_rolled_up(conn: psycopg.Connection) -> None:
    index = meter(conn, "late", cumulative=True, unit="kWh")
    write_readings(conn, [(index, T0, 10.0), (index, T0 + timedelta(hours=1), 12.0)])
    conn.commit()
    refresh_rollups(conn)
    # A device back online sends an older reading in between.
    write_readings(conn, [(index, T0 + timedelta(minutes=30), 11.5)])
    conn.commit()
    refresh_rollups(conn)
    (total,) = conn.execute(
        "SELECT sum(consumption) FROM readings_hourly WHERE meter_id = %s", (index,)
    ).fetchone() or (None,)
    assert total == 2.0


def test_retention_drops_old_chunks_only(conn: psycopg.Connection) -> None:
    m = meter(conn, "old", cumulative=False, unit="W")
    now = datetime.now(UTC)
    write_readings(conn, [(m, now - timedelta(days=400), 1.0), (m, now - timedelta(days=1), 2.0)])
    conn.commit()
    dropped = apply_retention(conn, timescale_info(conn), days=365)
    conn.commit()
    assert dropped == 1
    assert conn.execute("SELECT value FROM readings").fetchall() == [(2.0,)]
