"""Binary COPY from numpy arrays against the real TimescaleDB: same rows as write_readings."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import psycopg
import pytest

from storage.bulk import copy_payload, write_arrays
from storage.readings import write_readings

pytestmark = pytest.mark.integration


def _arrays(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    meter = (np.arange(n) % 7 + 1).astype(np.int32)
    ts = np.datetime64("2025-01-01T00:00:00") + (np.arange(n) // 7).astype("timedelta64[m]") * 10
    value = np.linspace(-5.0, 1e6, n)
    return meter, ts.astype("datetime64[s]"), value


def _rows(conn: psycopg.Connection) -> list[tuple[int, datetime, float]]:
    return conn.execute("SELECT meter_id, ts, value FROM readings ORDER BY 1, 2").fetchall()


def test_bulk_rows_equal_row_by_row_rows(conn: psycopg.Connection, pg) -> None:  # type: ignore[no-untyped-def]
    meter, ts, value = _arrays(5000)
    staged, inserted = write_arrays(conn, meter, ts, value, chunk_rows=1234)
    conn.commit()
    assert (staged, inserted) == (5000, 5000)
    bulk = _rows(conn)
    conn.execute("TRUNCATE readings, rollup_dirty")
    py_rows = [
        (int(m), t.astype(datetime).replace(tzinfo=UTC), float(v))
        for m, t, v in zip(meter, ts, value, strict=True)
    ]
    assert write_readings(conn, py_rows) == (5000, 5000)
    conn.commit()
    assert _rows(conn) == bulk


def test_nan_dropped_duplicates_absorbed_hours_marked(conn: psycopg.Connection) -> None:
    meter, ts, value = _arrays(100)
    value[::10] = np.nan
    assert write_arrays(conn, meter, ts, value) == (90, 90)
    assert write_arrays(conn, meter, ts, value, chunk_rows=7) == (90, 0)
    conn.commit()
    hours = conn.execute("SELECT count(*) FROM rollup_dirty").fetchone()
    assert hours is not None and hours[0] >= 2
    assert conn.execute("SELECT count(*) FROM staging_readings").fetchone() == (0,)


def test_payload_layout_and_argument_errors() -> None:
    data = copy_payload([1], np.asarray(["2000-01-01T00:00:01"], "datetime64[s]"), [2.5])
    assert data.startswith(b"PGCOPY\n\xff\r\n\x00") and data.endswith(b"\xff\xff")
    assert len(data) == 19 + 34 + 2
    assert data[19 + 14 : 19 + 22] == (1_000_000).to_bytes(8, "big")
    with pytest.raises(ValueError, match="meter_id, ts, value"):
        copy_payload([1, 2], np.asarray(["2000-01-01"], "datetime64[s]"), [1.0])
    with pytest.raises(ValueError, match="int4"):
        copy_payload([2**31], np.asarray(["2000-01-01"], "datetime64[s]"), [1.0])
