"""Dead letters: payloads that could not become readings, kept with their raw bytes and a reason."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import psycopg

_COPY = "COPY dead_letters (received_at, topic, payload, reason, format) FROM STDIN (FORMAT BINARY)"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One refused MQTT message."""

    received_at: datetime
    topic: str
    payload: bytes
    reason: str
    format: str | None


def write_dead_letters(conn: psycopg.Connection, letters: Iterable[DeadLetter]) -> int:
    """Store dead letters in the caller's transaction; returns how many."""
    count = 0
    with (
        conn.cursor() as cur,
        cur.copy(_COPY) as copy,
    ):
        copy.set_types(["timestamptz", "text", "bytea", "text", "text"])
        for letter in letters:
            copy.write_row(
                (letter.received_at, letter.topic, letter.payload, letter.reason, letter.format)
            )
            count += 1
    return count


def fetch_dead_letters(conn: psycopg.Connection, limit: int = 1000) -> list[DeadLetter]:
    """The most recent dead letters, newest first."""
    cur = conn.execute(
        "SELECT received_at, topic, payload, reason, format FROM dead_letters "
        "ORDER BY id DESC LIMIT %s",
        (limit,),
    )
    return [DeadLetter(r[0], r[1], bytes(r[2]), r[3], r[4]) for r in cur]


def count_dead_letters(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
    return int(row[0]) if row else 0
