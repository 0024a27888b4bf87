"""Bulk readings from numpy arrays: PostgreSQL binary COPY built with numpy, no per-row Python.

Same path as ``storage.readings.write_readings`` (staging table, ``ON CONFLICT DO NOTHING``,
``rollup_dirty`` hours) for the ingestor's batches and for backfills of millions of rows.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
import psycopg

from storage.readings import _COPY, _MARK_DIRTY, _STAGING_DDL, _UPSERT

# Binary COPY: signature, flags (int32), header extension length (int32) … trailer int16 −1.
_HEADER: Final = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_TRAILER: Final = b"\xff\xff"
# One tuple: field count, then (length, value) per field, all big-endian (34 bytes).
_ROW: Final = np.dtype(
    [
        ("nfields", ">i2"),
        ("len_meter", ">i4"),
        ("meter_id", ">i4"),
        ("len_ts", ">i4"),
        ("ts_us", ">i8"),  # microseconds since 2000-01-01 UTC, PostgreSQL's epoch
        ("len_value", ">i4"),
        ("value", ">f8"),
    ]
)
_PG_EPOCH_US: Final = 946_684_800 * 1_000_000
DEFAULT_CHUNK_ROWS: Final = 1_000_000  # 34 MB of COPY data per chunk


def copy_payload(meter_id: npt.ArrayLike, ts: npt.ArrayLike, value: npt.ArrayLike) -> bytes:
    """The binary COPY stream of ``(meter_id int4, ts timestamptz, value float8)`` rows.

    Parameters
    ----------
    meter_id : array_like of int, (n,)
    ts : array_like of datetime64 (any unit; naive values are UTC), (n,)
    value : array_like of float, (n,); must be finite (NaN rows are the caller's to drop)
    """
    m = np.asarray(meter_id)
    t = np.asarray(ts, dtype="datetime64[us]").astype(np.int64)
    v = np.asarray(value, dtype=np.float64)
    if not (m.shape == t.shape == v.shape) or m.ndim != 1:
        raise ValueError(
            f"meter_id, ts, value: need three 1-D arrays of one length, got {m.shape}, "
            f"{t.shape}, {v.shape}"
        )
    if m.size and (m.min() < -(2**31) or m.max() >= 2**31):
        raise ValueError("meter_id: values do not fit int4")
    rows = np.empty(m.size, dtype=_ROW)
    rows["nfields"] = 3
    rows["len_meter"] = 4
    rows["meter_id"] = m
    rows["len_ts"] = 8
    rows["ts_us"] = t - _PG_EPOCH_US
    rows["len_value"] = 8
    rows["value"] = v
    return b"".join((_HEADER, rows.tobytes(), _TRAILER))


def write_batch(
    conn: psycopg.Connection, meter_id: npt.ArrayLike, ts: npt.ArrayLike, value: npt.ArrayLike
) -> tuple[int, int]:
    """Stage one batch of finite rows with a single COPY and insert those not stored yet.

    The ingestor's write: runs inside the caller's transaction, which must not have staged
    rows before (the staging table empties itself at each commit; ``write_arrays`` stages
    several chunks in one transaction). Arguments as in ``copy_payload``.

    Returns
    -------
    (staged, inserted)
        ``staged - inserted`` rows were already stored.
    """
    staged = int(np.size(value))
    if staged == 0:
        return 0, 0
    data = copy_payload(meter_id, ts, value)
    with conn.cursor() as cur:
        cur.execute(_STAGING_DDL)
        with cur.copy(_COPY) as copy:
            copy.write(data)
        return staged, _insert_staged(cur)


def _insert_staged(cur: psycopg.Cursor[tuple[object, ...]]) -> int:
    """Insert the staged rows not stored yet and mark their hours for the rollups."""
    cur.execute(_UPSERT)
    inserted = max(cur.rowcount, 0)
    cur.execute(_MARK_DIRTY)
    return inserted


def write_arrays(
    conn: psycopg.Connection,
    meter_id: npt.ArrayLike,
    ts: npt.ArrayLike,
    value: npt.ArrayLike,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> tuple[int, int]:
    """Stage the rows (NaN values dropped) and insert those not stored yet.

    Runs inside the caller's transaction, ``chunk_rows`` at a time so the COPY buffer stays
    bounded; marks each hour written in ``rollup_dirty``. The caller commits.

    Returns
    -------
    (staged, inserted)
        ``staged - inserted`` rows were already stored.
    """
    if chunk_rows <= 0:
        raise ValueError("chunk_rows: must be positive")
    m = np.asarray(meter_id).reshape(-1)
    t = np.asarray(ts, dtype="datetime64[us]").reshape(-1)
    v = np.asarray(value, dtype=np.float64).reshape(-1)
    keep = np.isfinite(v)
    if not keep.all():
        m, t, v = m[keep], t[keep], v[keep]
    staged = inserted = 0
    for lo in range(0, v.size, chunk_rows):
        hi = min(lo + chunk_rows, v.size)
        chunk_staged, chunk_inserted = write_batch(conn, m[lo:hi], t[lo:hi], v[lo:hi])
        staged += chunk_staged
        inserted += chunk_inserted
        # Several chunks share one transaction, so ON COMMIT DELETE ROWS is not enough.
        conn.execute("TRUNCATE staging_readings")
    return staged, inserted
