"""Run logs of the services, read by the Operations dashboard: ingest stats per minute and
processing runs."""

from __future__ import annotations

from datetime import datetime

import psycopg

_INGEST_BATCH = """
INSERT INTO ingest_stats AS s (minute, ingestor, messages, readings_written, dead_letters,
                               batches, commit_ms_mean, commit_ms_max, lag_s_max)
VALUES (date_trunc('minute', %(at)s), %(ingestor)s, %(messages)s, %(written)s, %(dead)s, 1,
        %(commit_ms)s, %(commit_ms)s, %(lag_s)s)
ON CONFLICT (minute, ingestor) DO UPDATE SET
    messages = s.messages + EXCLUDED.messages,
    readings_written = s.readings_written + EXCLUDED.readings_written,
    dead_letters = s.dead_letters + EXCLUDED.dead_letters,
    batches = s.batches + 1,
    commit_ms_mean = (s.commit_ms_mean * s.batches + EXCLUDED.commit_ms_mean) / (s.batches + 1),
    commit_ms_max = greatest(s.commit_ms_max, EXCLUDED.commit_ms_max),
    lag_s_max = greatest(s.lag_s_max, EXCLUDED.lag_s_max)
"""


def record_ingest_batch(
    conn: psycopg.Connection,
    *,
    at: datetime,
    ingestor: str,
    messages: int,
    readings_written: int,
    dead_letters: int,
    commit_ms: float,
    lag_s: float,
) -> None:
    """Add one committed batch to its minute's row (``conn`` in autocommit mode)."""
    conn.execute(
        _INGEST_BATCH,
        {"at": at, "ingestor": ingestor, "messages": messages, "written": readings_written,
         "dead": dead_letters, "commit_ms": commit_ms, "lag_s": lag_s},
    )  # fmt: skip


def start_processing_run(conn: psycopg.Connection, stage: str) -> int:
    """Open a ``processing_runs`` row; returns its id."""
    row = conn.execute(
        "INSERT INTO processing_runs (stage) VALUES (%s) RETURNING id", (stage,)
    ).fetchone()
    assert row is not None
    return int(row[0])


def finish_processing_run(
    conn: psycopg.Connection, run_id: int, *, ok: bool, items: int | None, detail: str
) -> None:
    """Close a run with its outcome and a one-line summary or error."""
    conn.execute(
        "UPDATE processing_runs SET finished_at = greatest(now(), started_at), status = %s,"
        " items = %s, detail = %s WHERE id = %s",
        ("ok" if ok else "failed", items, detail[:500], run_id),
    )
