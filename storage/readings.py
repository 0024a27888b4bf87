"""Writing readings: binary COPY into a staging table, then one idempotent INSERT."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import psycopg

# ON COMMIT DELETE ROWS: the staging table empties itself at each commit, and a failed
# transaction leaves nothing behind for the next batch.
_STAGING_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS staging_readings "
    "(meter_id integer, ts timestamptz, value double precision) ON COMMIT DELETE ROWS"
)
_COPY = "COPY staging_readings (meter_id, ts, value) FROM STDIN (FORMAT BINARY)"
_UPSERT = (
    "INSERT INTO readings (meter_id, ts, value) "
    "SELECT meter_id, ts, value FROM staging_readings "
    "ON CONFLICT (meter_id, ts) DO NOTHING"
)
# A cumulative reading at 01:00 closes the hour 00:00-01:00 and an instantaneous one belongs
# to 01:00-02:00, so both hours are marked for the rollup job.
_MARK_DIRTY = (
    "INSERT INTO rollup_dirty (hour) "
    "SELECT DISTINCT date_trunc('hour', ts) FROM staging_readings "
    "UNION SELECT DISTINCT date_trunc('hour', ts - interval '1 microsecond') FROM staging_readings "
    "ON CONFLICT DO NOTHING"
)


def write_readings(
    conn: psycopg.Connection, rows: Iterable[tuple[int, datetime, float]]
) -> tuple[int, int]:
    """Stage ``(meter_id, ts, value)`` rows and insert those not stored yet.

    Runs inside the caller's transaction; the caller commits (and only then acknowledges).

    Returns
    -------
    (staged, inserted)
        ``staged - inserted`` rows were already stored: redeliveries absorbed.
    """
    staged = 0
    with conn.cursor() as cur:
        cur.execute(_STAGING_DDL)
        with cur.copy(_COPY) as copy:
            copy.set_types(["int4", "timestamptz", "float8"])
            for row in rows:
                copy.write_row(row)
                staged += 1
        if staged == 0:
            return 0, 0
        cur.execute(_UPSERT)
        inserted = max(cur.rowcount, 0)
        cur.execute(_MARK_DIRTY)
    return staged, inserted


def count_readings(conn: psycopg.Connection, meter_id: int | None = None) -> int:
    """Number of stored readings, of one meter or of all."""
    if meter_id is None:
        row = conn.execute("SELECT count(*) FROM readings").fetchone()
    else:
        row = conn.execute(
            "SELECT count(*) FROM readings WHERE meter_id = %s", (meter_id,)
        ).fetchone()
    return int(row[0]) if row else 0


def fetch_readings(conn: psycopg.Connection, meter_id: int) -> list[tuple[datetime, float]]:
    """All readings of one meter in time order (small meters and tests)."""
    cur = conn.execute(
        "SELECT ts, value FROM readings WHERE meter_id = %s ORDER BY ts", (meter_id,)
    )
    return [(row[0], row[1]) for row in cur]


def fetch_device_readings(conn: psycopg.Connection) -> list[tuple[str, int, float]]:
    """Every stored reading as (device id, epoch seconds, value): the exact set a test or a
    benchmark published, to compare with (small runs only)."""
    cur = conn.execute(
        "SELECT m.device_id, extract(epoch FROM r.ts)::bigint, r.value"
        " FROM readings r JOIN meters m ON m.id = r.meter_id"
    )
    return [(str(d), int(t), float(v)) for d, t, v in cur]
