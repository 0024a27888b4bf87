"""Migrations against the real TimescaleDB: idempotent, recorded, hypertables created."""

from __future__ import annotations

import shutil

import psycopg
import pytest

from storage import migrate as module
from storage.database import timescale_info
from storage.migrate import applied_versions, available_migrations, migrate
from tests.fixtures.servers import TEST_PG_SETTINGS, make_shared_tmpdir
from wattwatch.errors import StorageError
from wattwatch.stack.postgres import EmbeddedPostgres
from wattwatch.stack.system import free_port

pytestmark = pytest.mark.integration


def test_template_is_fully_migrated(conn: psycopg.Connection) -> None:
    assert applied_versions(conn) == [m.version for m in available_migrations()]


def test_migrate_twice_applies_nothing_the_second_time(pg: EmbeddedPostgres) -> None:
    pg.ensure_database("migrate_twice")
    with psycopg.connect(pg.url("migrate_twice")) as conn:
        first = migrate(conn)
        second = migrate(conn)
        assert [m.version for m in first] == [m.version for m in available_migrations()]
        assert second == []


def test_readings_and_hourly_rollup_are_hypertables(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "SELECT hypertable_name FROM timescaledb_information.hypertables ORDER BY 1"
    ).fetchall()
    assert [r[0] for r in rows] == ["readings", "readings_hourly"]


def test_edition_and_version_are_detected(conn: psycopg.Connection) -> None:
    info = timescale_info(conn)
    assert info.timescaledb_version is not None
    assert info.edition in ("apache", "timescale")
    assert info.postgres_version.split(".")[0].isdigit()


def test_unique_meter_ts_absorbs_replays(conn: psycopg.Connection) -> None:
    conn.execute(
        "INSERT INTO readings VALUES (1, '2025-01-01T00:00Z', 1.0)"
        " ON CONFLICT (meter_id, ts) DO NOTHING"
    )
    cur = conn.execute(
        "INSERT INTO readings VALUES (1, '2025-01-01T00:00Z', 2.0)"
        " ON CONFLICT (meter_id, ts) DO NOTHING"
    )
    assert cur.rowcount == 0
    assert conn.execute("SELECT value FROM readings").fetchall() == [(1.0,)]


def test_server_without_timescaledb_preloaded_gives_a_clear_error() -> None:
    root = make_shared_tmpdir("wattwatch-test-plainpg-")
    plain = EmbeddedPostgres(
        root=root / "postgres",
        port=free_port(),
        settings={**TEST_PG_SETTINGS, "shared_preload_libraries": "''"},
    )
    try:
        plain.start()
        with psycopg.connect(plain.url()) as conn, pytest.raises(StorageError) as err:
            migrate(conn)
        assert "not preloaded" in str(err.value)
        assert "shared_preload_libraries" in str(err.value)
    finally:
        plain.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_broken_migration_names_itself(
    conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = module.Migration(9999, "broken", "SELECT * FROM no_such_table;")
    monkeypatch.setattr(module, "available_migrations", lambda: [bad])
    with pytest.raises(StorageError, match="9999_broken"):
        migrate(conn)


@pytest.mark.parametrize("table", ["api_tokens", "households", "engineers", "invitations"])
def test_grafana_reader_cannot_read_people_or_secrets(conn: psycopg.Connection, table: str) -> None:
    conn.execute("SET ROLE wattwatch_reader")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(f"SELECT * FROM {table}")


def test_grafana_reader_reads_the_energy_tables(conn: psycopg.Connection) -> None:
    conn.execute("SET ROLE wattwatch_reader")
    for table in ("readings", "readings_daily", "anomalies", "insulation_assessments"):
        conn.execute(f"SELECT count(*) FROM {table}")
