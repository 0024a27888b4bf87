"""A simulated city in TimescaleDB, shared by the dashboard tests (built once per run)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from processing.service import run_once
from simulators.backfill import backfill
from simulators.register import register_city
from simulators.run import SimulateOptions, make_city
from storage.grafana import reader_url, set_reader_password
from storage.rollups import refresh_rollups
from tests.fixtures.servers import fresh_database
from wattwatch.settings import Settings
from wattwatch.stack.postgres import EmbeddedPostgres

START = datetime(2025, 1, 6, tzinfo=UTC)
DAYS = 45
READER_PASSWORD = "reader-test-password"


@dataclass(frozen=True, slots=True)
class CityDb:
    """The database (as owner and as Grafana's read-only role) and what the tests choose."""

    url: str
    reader_url: str
    time_from: datetime
    time_to: datetime
    building_id: int


def _insert_results(conn: psycopg.Connection, building_id: int, end: datetime) -> None:
    """Rows the services write but a backfill does not: anomalies, run logs, dead letters."""
    meters = conn.execute(
        "SELECT id FROM meters WHERE building_id = %s ORDER BY id LIMIT 2", (building_id,)
    ).fetchall()
    grid = conn.execute(
        "SELECT id FROM meters WHERE quantity IN ('grid_voltage', 'grid_load') ORDER BY id"
    ).fetchall()
    others = conn.execute(
        "SELECT id FROM meters WHERE building_id <> %s ORDER BY id LIMIT 6", (building_id,)
    ).fetchall()
    rows = []
    for i, (meter_id,) in enumerate(meters + others):
        t = end - timedelta(days=2 + i)
        rows.append((meter_id, "spike", "processing", t, t + timedelta(hours=3), 4.0 + 3 * i,
                     1.0, 5.0, "Consumption unusual for a Tuesday night", i % 3 == 2))  # fmt: skip
    for i, (meter_id,) in enumerate(grid):
        t = end - timedelta(days=1, hours=i)
        rows.append((meter_id, "voltage_high", "ingest", t, t, 0.01 + 0.05 * i, 253.0, 255.0,
                     "Voltage 255.0 V above the EN 50160 limit of 253", False))  # fmt: skip
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO anomalies (meter_id, kind, source, start_ts, end_ts, severity, expected,"
            " observed, reason, acknowledged_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, CASE WHEN %s THEN now() END)",
            rows,
        )
        cur.execute(
            "INSERT INTO ingest_stats (minute, ingestor, messages, readings_written,"
            " dead_letters, batches, commit_ms_mean, commit_ms_max, lag_s_max)"
            " SELECT t, 'wattwatch-ingest-1', 600 + (extract(minute FROM t))::int, 1500, 1,"
            "        10, 12.5, 40.0, 1.2"
            " FROM generate_series(%s::timestamptz - interval '3 days', %s, interval '1 minute') t",
            (end, end),
        )
        cur.executemany(
            "INSERT INTO processing_runs (stage, started_at, finished_at, status, items, detail)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            [
                (stage, end - timedelta(hours=h), end - timedelta(hours=h) + timedelta(seconds=s),
                 "failed" if h == 5 and stage == "anomalies" else "ok", 120, "")
                for h in range(1, 48, 4)
                for stage, s in (("rollups", 2), ("anomalies", 40), ("insulation", 9))
            ],
        )  # fmt: skip
        cur.executemany(
            "INSERT INTO dead_letters (received_at, topic, payload, reason, format)"
            " VALUES (%s, %s, %s, %s, %s)",
            [
                (end - timedelta(hours=i), f"tele/dev{i}/SENSOR", b"{bad",
                 f"invalid JSON at char {i}", "tasmota" if i % 2 else None)
                for i in range(1, 30)
            ],
        )  # fmt: skip


@pytest.fixture(scope="session")
def city_db(pg: EmbeddedPostgres) -> CityDb:
    url = fresh_database(pg)
    city, plan = make_city(
        SimulateOptions(buildings=30, days=DAYS, start=START.date().isoformat(), seed=3,
                        feeders=2)
    )  # fmt: skip
    end = START + timedelta(days=DAYS)
    with psycopg.connect(url) as conn:
        reg = register_city(conn, city, plan)
        conn.commit()
        backfill(conn, city, plan, reg.meter_id)
        refresh_rollups(conn)
        conn.commit()
    # Insulation from the processing job itself (a heating-season study: 30 days suffice).
    run_once(
        Settings(database_url=url, processing_insulation_days=30),
        lambda _line: None,
        only=("insulation",),
        since=START,
        until=end,
    )
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT a.building_id FROM insulation_assessments a"
            " JOIN meters m ON m.building_id = a.building_id AND m.quantity = 'indoor_temperature'"
            " WHERE a.status = 'ok' AND a.method = 'changepoint'"
            " ORDER BY a.building_id LIMIT 1"
        ).fetchone()
        assert found is not None, "no building with an assessment and an indoor sensor"
        _insert_results(conn, int(found[0]), end)
        set_reader_password(conn, READER_PASSWORD)
        conn.commit()
    return CityDb(url, reader_url(url, READER_PASSWORD), end - timedelta(days=14), end,
                 int(found[0]))  # fmt: skip
