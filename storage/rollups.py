"""Hourly and daily rollups and raw-data retention, maintained by wattwatch's own job.

The ingestor marks the hours it wrote into ``rollup_dirty``; ``refresh_rollups`` claims them,
recomputes those hours and their Europe/Paris days, and records counter resets. The same code
runs on both TimescaleDB editions (continuous aggregates cannot compute counter deltas).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from storage.database import TimescaleInfo

# How far back to look for the reading before a recomputed hour. A cumulative meter silent for
# longer than this has its first reading after the gap left without a consumption figure.
LOOKBACK = timedelta(days=1)
# Dirty hours closer than this are refreshed as one range.
_MERGE_GAP = timedelta(days=1)

_DELTAS = """
CREATE TEMP TABLE rollup_deltas ON COMMIT DROP AS
SELECT r.meter_id, r.ts, r.value, r.prev, m.cumulative,
       CASE WHEN m.cumulative THEN date_trunc('hour', r.ts - interval '1 microsecond')
            ELSE date_trunc('hour', r.ts) END AS hour
FROM (
    SELECT meter_id, ts, value, lag(value) OVER (PARTITION BY meter_id ORDER BY ts) AS prev
    FROM readings
    WHERE ts >= %(lo)s - %(lookback)s AND ts < %(hi)s
) r
JOIN meters m ON m.id = r.meter_id
WHERE r.ts > %(lo)s - interval '1 hour'
"""

# A drop in an index is a reset: what was used since is the new value itself (the counter
# restarted from zero), never a negative figure.
_HOURLY = """
INSERT INTO readings_hourly AS h (meter_id, hour, consumption, mean, min, max, samples)
SELECT meter_id, hour,
       CASE WHEN bool_or(cumulative) THEN
            sum(CASE WHEN prev IS NULL THEN NULL
                     WHEN value >= prev THEN value - prev
                     ELSE value END) END,
       avg(value), min(value), max(value), count(*)
FROM rollup_deltas
WHERE hour >= %(lo)s AND hour < %(hi)s
GROUP BY meter_id, hour
ON CONFLICT (meter_id, hour) DO UPDATE SET
    consumption = EXCLUDED.consumption, mean = EXCLUDED.mean, min = EXCLUDED.min,
    max = EXCLUDED.max, samples = EXCLUDED.samples
"""

_RESETS = """
INSERT INTO meter_events (meter_id, ts, kind, value_before, value_after)
SELECT meter_id, ts, 'counter_reset', prev, value
FROM rollup_deltas
WHERE cumulative AND prev IS NOT NULL AND value < prev
ON CONFLICT DO NOTHING
"""

_DAILY = """
INSERT INTO readings_daily AS d (meter_id, day, consumption, mean, min, max, samples)
SELECT meter_id, (hour AT TIME ZONE 'Europe/Paris')::date,
       sum(consumption), sum(mean * samples) / sum(samples), min(min), max(max), sum(samples)
FROM readings_hourly
WHERE hour >= (date_trunc('day', %(lo)s AT TIME ZONE 'Europe/Paris') AT TIME ZONE 'Europe/Paris')
  AND hour < (date_trunc('day', %(hi)s AT TIME ZONE 'Europe/Paris') + interval '1 day')
              AT TIME ZONE 'Europe/Paris'
GROUP BY 1, 2
ON CONFLICT (meter_id, day) DO UPDATE SET
    consumption = EXCLUDED.consumption, mean = EXCLUDED.mean, min = EXCLUDED.min,
    max = EXCLUDED.max, samples = EXCLUDED.samples
"""


@dataclass(frozen=True, slots=True)
class RollupRun:
    """What one refresh did."""

    hours_claimed: int
    ranges: int
    hourly_rows: int
    daily_rows: int


def _ranges(hours: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Group sorted hours into [lo, hi) ranges, widened by an hour on the right: a reading
    inserted late changes the delta of the reading after it."""
    out: list[tuple[datetime, datetime]] = []
    for hour in sorted(hours):
        if out and hour - out[-1][1] <= _MERGE_GAP:
            out[-1] = (out[-1][0], hour + timedelta(hours=2))
        else:
            out.append((hour, hour + timedelta(hours=2)))
    return out


def refresh_rollups(conn: psycopg.Connection) -> RollupRun:
    """Recompute the hours marked dirty, in one transaction (a failure leaves them marked)."""
    hourly_rows = daily_rows = 0
    with conn.transaction():
        hours = [row[0] for row in conn.execute("DELETE FROM rollup_dirty RETURNING hour")]
        ranges = _ranges(hours)
        for lo, hi in ranges:
            params = {"lo": lo, "hi": hi, "lookback": LOOKBACK}
            conn.execute(_DELTAS, params)
            hourly_rows += max(conn.execute(_HOURLY, params).rowcount, 0)
            conn.execute(_RESETS)
            conn.execute("DROP TABLE rollup_deltas")
            daily_rows += max(conn.execute(_DAILY, params).rowcount, 0)
    return RollupRun(len(hours), len(ranges), hourly_rows, daily_rows)


def mark_all_dirty(conn: psycopg.Connection) -> int:
    """Mark every hour that has readings (rebuild all rollups at the next refresh)."""
    cur = conn.execute(
        "INSERT INTO rollup_dirty (hour) SELECT DISTINCT date_trunc('hour', ts) FROM readings"
        " ON CONFLICT DO NOTHING"
    )
    return max(cur.rowcount, 0)


def apply_retention(conn: psycopg.Connection, info: TimescaleInfo, *, days: int) -> int:
    """Drop raw-reading chunks older than ``days`` (rollups are kept); returns chunks dropped.

    On the Timescale License edition a retention policy does this in the background instead.
    """
    keep = timedelta(days=days)
    if info.has_licensed_features:
        conn.execute(
            "SELECT add_retention_policy('readings', %s::interval, if_not_exists => true)", (keep,)
        )
        return 0
    rows = conn.execute(
        "SELECT drop_chunks('readings', older_than => now() - %s::interval)", (keep,)
    )
    return len(rows.fetchall())
