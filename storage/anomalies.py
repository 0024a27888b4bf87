"""Anomalies: written by the ingestor's real-time grid rules and by the batch processor."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

# A violation within this time of the end of an open event of the same kind extends it,
# so a sag lasting an hour is one anomaly, not sixty.
EXTEND_WITHIN = timedelta(minutes=15)

_EXTEND = """
UPDATE anomalies
SET end_ts = greatest(end_ts, %(ts)s), start_ts = least(start_ts, %(ts)s),
    severity = greatest(severity, %(severity)s),
    observed = CASE WHEN %(severity)s > severity THEN %(observed)s ELSE observed END,
    updated_at = now()
WHERE meter_id = %(meter_id)s AND kind = %(kind)s AND source = %(source)s
  AND %(ts)s BETWEEN start_ts - %(within)s AND end_ts + %(within)s
RETURNING id
"""
_INSERT = """
INSERT INTO anomalies (meter_id, kind, source, start_ts, end_ts, severity, expected, observed,
                       reason)
VALUES (%(meter_id)s, %(kind)s, %(source)s, %(ts)s, %(ts)s, %(severity)s, %(expected)s,
        %(observed)s, %(reason)s)
ON CONFLICT (meter_id, kind, start_ts) DO NOTHING
"""


@dataclass(frozen=True, slots=True)
class PointAnomaly:
    """An anomaly seen on one reading (it may extend an open event)."""

    meter_id: int
    ts: datetime
    kind: str
    severity: float
    expected: float | None
    observed: float
    reason: str


def record_point_anomalies(
    conn: psycopg.Connection, anomalies: Iterable[PointAnomaly], *, source: str
) -> int:
    """Extend an open event of the same meter and kind, or open a new one. Returns new events."""
    opened = 0
    for a in anomalies:
        params = {
            "meter_id": a.meter_id, "kind": a.kind, "source": source, "ts": a.ts,
            "severity": a.severity, "expected": a.expected, "observed": a.observed,
            "reason": a.reason, "within": EXTEND_WITHIN,
        }  # fmt: skip
        if conn.execute(_EXTEND, params).fetchone() is None:
            opened += max(conn.execute(_INSERT, params).rowcount, 0)
    return opened
