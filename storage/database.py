"""Connections to PostgreSQL and what wattwatch needs to know of the server (TimescaleDB)."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from wattwatch.errors import StorageError, TransientStorageError

CONNECT_TIMEOUT_S = 5

# SQLSTATE classes that mean "try again later": connection problems, operator intervention
# (shutdown, crash recovery), insufficient resources. Everything else is permanent.
_TRANSIENT_CLASSES = ("08", "57", "53", "40")


def is_transient(exc: BaseException) -> bool:
    """True when a database error is worth retrying (the server is down, restarting or busy)."""
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        state = getattr(exc, "sqlstate", None)
        return state is None or state[:2] in _TRANSIENT_CLASSES
    state = getattr(exc, "sqlstate", None)
    return bool(state) and str(state)[:2] in _TRANSIENT_CLASSES


def connect(
    url: str, *, autocommit: bool = False, application_name: str = "wattwatch"
) -> psycopg.Connection:
    """Open a connection, translating failures into wattwatch errors that say what to check."""
    try:
        return psycopg.connect(
            url,
            autocommit=autocommit,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name=application_name,
        )
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TransientStorageError(f"cannot connect to the database: {first}") from None


@dataclass(frozen=True, slots=True)
class TimescaleInfo:
    """What is installed on the server."""

    postgres_version: str
    timescaledb_version: str | None  # None: extension not created in this database
    available_version: str | None  # None: TimescaleDB is not installed on the server
    edition: str | None  # "apache" or "timescale" (the Timescale License edition)

    @property
    def has_licensed_features(self) -> bool:
        """Continuous aggregates, compression and retention policies are available."""
        return self.edition == "timescale"


def timescale_info(conn: psycopg.Connection) -> TimescaleInfo:
    """Read the PostgreSQL version and the TimescaleDB version and edition."""
    pg = conn.execute("SHOW server_version").fetchone()
    available = conn.execute(
        "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    installed = conn.execute(
        "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
    ).fetchone()
    edition = conn.execute("SELECT current_setting('timescaledb.license', true)").fetchone()
    return TimescaleInfo(
        postgres_version=str(pg[0]) if pg else "?",
        timescaledb_version=str(installed[0]) if installed else None,
        available_version=str(available[0]) if available else None,
        edition=str(edition[0]) if edition and edition[0] else None,
    )


def require_timescaledb(conn: psycopg.Connection) -> TimescaleInfo:
    """Create the extension if needed, or explain how to install TimescaleDB."""
    info = timescale_info(conn)
    if info.available_version is None:
        raise StorageError(
            f"TimescaleDB is not installed on this PostgreSQL {info.postgres_version} server: "
            "run deploy/bootstrap.sh on it, or install the postgresql-<major>-timescaledb package"
        )
    preload = conn.execute("SHOW shared_preload_libraries").fetchone()
    if preload is None or "timescaledb" not in str(preload[0]):
        raise StorageError(
            "TimescaleDB is installed but not preloaded: add timescaledb to "
            "shared_preload_libraries in postgresql.conf and restart PostgreSQL"
        )
    if info.timescaledb_version is None:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        conn.commit()
        info = timescale_info(conn)
    return info


def analyze(conn: psycopg.Connection, table: str) -> None:
    """Refresh the planner's statistics of ``table`` (after a bulk load, before autovacuum
    would: without them a freshly filled table gets sequential scans)."""
    conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
