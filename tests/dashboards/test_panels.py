"""Every panel's SQL, expanded as Grafana would, runs as Grafana's read-only role against a
simulated city and returns the columns its panel type needs; the role cannot write."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from dashboards.build import DASHBOARDS, to_json
from dashboards.preview import render_previews
from dashboards.runner import PanelRun, run_dashboard
from storage.grafana import run_panel_sql

pytestmark = pytest.mark.integration

NUMERIC = {"int2", "int4", "int8", "float4", "float8", "numeric"}
TIME = {"timestamptz", "timestamp"}
TEXT = {"text", "varchar", "bpchar", "name"}


def _check(run: PanelRun) -> None:
    q, res = run.query, run.result
    where = f"{q.dashboard} / {q.panel} [{q.ref_id}]"
    names = [n for n, _ in res.columns]
    types = dict(res.columns)
    numeric = [n for n, t in res.columns if t in NUMERIC]
    assert res.rows, f"{where}: no rows\n{run.sql}"
    assert len(set(names)) == len(names), f"{where}: duplicate column names {names}"
    if q.panel_type == "variable":
        assert {"__text", "__value"} <= set(names), where
    elif q.panel_type == "annotation":
        assert types.get("time") in TIME and types.get("timeend") in TIME, where
        assert types.get("text") in TEXT and types.get("tags") in TEXT, where
    elif q.time_series:
        assert names[0] == "time" and types["time"] in TIME, f"{where}: {res.columns}"
        assert numeric, f"{where}: no numeric column in {res.columns}"
        assert set(names) - {"time", "metric"} <= set(numeric), f"{where}: {res.columns}"
        times = [row[0] for row in res.rows]
        assert times == sorted(times), f"{where}: rows not ordered by time"
    elif q.panel_type == "stat":
        assert numeric and any(row[names.index(numeric[0])] is not None for row in res.rows), (
            f"{where}: no value: {res.rows}"
        )
    elif q.panel_type in ("barchart", "piechart"):
        assert types[names[0]] in TEXT and numeric, f"{where}: {res.columns}"
    elif q.panel_type == "xychart":
        assert len(numeric) >= 2, f"{where}: {res.columns}"
    elif q.panel_type == "geomap":
        assert {"lat", "lon"} <= set(numeric), f"{where}: {res.columns}"
    else:
        assert q.panel_type == "table", f"{where}: unexpected panel type"


@pytest.mark.parametrize("spec", DASHBOARDS, ids=lambda s: s.slug)
def test_every_query_runs_as_reader_with_the_columns_its_panel_needs(city_db: Any, spec) -> None:  # type: ignore[no-untyped-def]
    data = to_json(spec)
    choose = {"building": [str(city_db.building_id)]}
    with psycopg.connect(city_db.reader_url, autocommit=True) as conn:
        runs = list(
            run_dashboard(
                conn, data, time_from=city_db.time_from, time_to=city_db.time_to, choose=choose
            )
        )
    assert len(runs) >= len(data["panels"])
    print(f"\n{spec.slug}: {len(runs)} queries")
    for run in runs:
        print(f"  {run.seconds * 1000:8.1f} ms  {len(run.result.rows):6d} rows  "
              f"{run.query.panel} [{run.query.ref_id}]")  # fmt: skip
        _check(run)


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO municipalities (name) VALUES ('x')",
        "UPDATE meters SET name = 'x'",
        "DELETE FROM anomalies",
        "CREATE TABLE sneaky (id int)",
        "TRUNCATE readings",
        "SELECT payload FROM dead_letters",
    ],
)
def test_reader_role_cannot_write(city_db: Any, statement: str) -> None:
    with psycopg.connect(city_db.reader_url, autocommit=True) as conn:
        # Read-only transactions are the role's default; a reader may turn them off, and the
        # grants must still refuse.
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO municipalities (name) VALUES ('ro')")
        conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)


def test_reader_reads_hypertable_chunks(city_db: Any) -> None:
    with psycopg.connect(city_db.reader_url, autocommit=True) as conn:
        res = run_panel_sql(conn, "SELECT count(*) FROM readings")
        assert res.rows[0][0] > 0


def test_preview_writes_one_png_per_dashboard(city_db: Any, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with psycopg.connect(city_db.reader_url, autocommit=True) as conn:
        paths = list(
            render_previews(
                conn, tmp_path, time_from=city_db.time_from, time_to=city_db.time_to,
                choose={"building": [str(city_db.building_id)]},
            )
        )  # fmt: skip
    assert [p.name for p in paths] == [f"{s.slug}.png" for s in DASHBOARDS]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000
               for p in paths)  # fmt: skip
