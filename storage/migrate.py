"""Numbered plain-SQL migrations, applied once each and recorded in ``schema_migrations``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import psycopg

from storage.database import require_timescaledb
from wattwatch.errors import StorageError

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any constant works; it only has to be the same for every wattwatch process.
_LOCK_KEY = 0x77617474


@dataclass(frozen=True, slots=True)
class Migration:
    """One SQL file of ``storage/migrations``."""

    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    """The migrations shipped with the package, in order."""
    found = []
    for entry in resources.files("storage.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise StorageError(f"two migrations share a number: {versions}")
    return found


def migrate(conn: psycopg.Connection) -> list[Migration]:
    """Apply the migrations not applied yet; returns those applied now. Idempotent.

    An advisory lock serialises concurrent callers (several services starting at once).
    """
    require_timescaledb(conn)
    applied_now = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for migration in available_migrations():
            if migration.version in done:
                continue
            try:
                conn.execute(migration.sql.encode())  # several statements, no parameters
            except psycopg.Error as exc:
                raise StorageError(
                    f"migration {migration.version:04d}_{migration.name} failed: {exc}"
                ) from None
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
            applied_now.append(migration)
    return applied_now


def applied_versions(conn: psycopg.Connection) -> list[int]:
    """Versions recorded in ``schema_migrations`` (empty when the table does not exist)."""
    exists = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
    if exists is None or exists[0] is None:
        return []
    return [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
