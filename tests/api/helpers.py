"""Seeding and enrolment helpers shared by the API tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from storage.rollups import refresh_rollups

_names = itertools.count(1)


def enrol(api: Any, device_format: str = "own_json", **fields: Any) -> dict[str, Any]:
    body = {
        "display_name": f"Home {next(_names)}",
        "floor_area_m2": 70,
        "year_built": 1975,
        "heating_carrier": "gas",
        "device_format": device_format,
        "consents": {"daily_totals": True, "load_curve": True},
        **fields,
    }
    with api.engineer as client:
        r = client.post("/v1/households", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def seed_readings(
    db_url: str, meter_id: int, *, start: datetime, hours: int, per_hour_kwh: float = 1.0
) -> None:
    """A cumulative index every 15 minutes, then the rollups."""
    with psycopg.connect(db_url) as conn:
        rows = [
            (meter_id, start + timedelta(minutes=15 * i), 1000 + per_hour_kwh * i / 4)
            for i in range(hours * 4 + 1)
        ]
        with conn.cursor() as cur, cur.copy("COPY readings (meter_id, ts, value) FROM STDIN") as cp:
            for row in rows:
                cp.write_row(row)
        conn.execute(
            "INSERT INTO rollup_dirty (hour) SELECT DISTINCT date_trunc('hour', ts)"
            " FROM readings WHERE meter_id = %s ON CONFLICT DO NOTHING",
            (meter_id,),
        )
        conn.commit()
        refresh_rollups(conn)
        conn.commit()


def seed_anomaly(
    db_url: str,
    meter_id: int,
    *,
    kind: str = "spike",
    severity: float = 5.0,
    start: datetime | None = None,
    status: str = "confirmed",
) -> int:
    ts = start or datetime(2025, 1, 10, 12, tzinfo=UTC)
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "INSERT INTO anomalies (meter_id, kind, source, start_ts, end_ts, severity, reason,"
            " status) VALUES (%s, %s, 'processing', %s, %s, %s, %s, %s) RETURNING id",
            (
                meter_id,
                kind,
                ts,
                ts + timedelta(hours=2),
                severity,
                "Your consumption was five times the usual for a Friday noon.",
                status,
            ),
        ).fetchone()
        conn.commit()
    assert row is not None
    return int(row[0])


def seed_assessment(
    db_url: str,
    building_id: int,
    label: str = "E",
    *,
    hlc_w_per_k: float | None = 250.0,
    reason: str | None = None,
) -> None:
    """An assessed building; ``hlc_w_per_k`` None (with a ``reason``) for one whose register
    shows no heating response."""
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO insulation_assessments (building_id, period_start, period_end, method,"
            " status, status_reason, hlc_w_per_k, hlc_w_per_m2k, primary_kwh_per_m2, label,"
            " is_passoire)"
            " VALUES (%s, '2024-01-01', '2024-12-31', 'changepoint', 'ok', %s, %s, %s, 300, %s,"
            " %s)",
            (building_id, reason, hlc_w_per_k, hlc_w_per_k and hlc_w_per_k / 70, label,
             label in "FG"),
        )  # fmt: skip
        conn.commit()
