"""Idempotent writes of the processing results: anomaly events and insulation assessments.

Re-running a window never duplicates: an anomaly that overlaps (or ends within one step of)
a stored one of the same meter and kind (a level shift and a drift count as one) extends
it, and an assessment replaces the one with the same building, period and method. A level
shift stored as a warning becomes confirmed when a confirmed one extends it, and is
deleted by :func:`settle_warnings` when a later run no longer sees it; so is a short
confirmed one that a later run, reading it with its days after, no longer finds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass, fields
from datetime import date, datetime, timedelta
from typing import Final

import psycopg

SOURCE: Final = "processing"


def finite_or_none(v: float) -> float | None:
    """A result's number as stored: NaN and infinities become NULL."""
    return float(v) if math.isfinite(v) else None


@dataclass(frozen=True, slots=True)
class AnomalyRow:
    """One anomaly event with timestamps; ``end_ts`` is the start of its last step.

    ``severity`` is positive, in the unit of the kind (robust z, CUSUM σ, hours…);
    ``expected``/``observed`` are in the meter's unit (None when meaningless); ``status``
    ``"confirmed"`` or ``"warning"`` (``processing.events.Anomaly``).
    """

    meter_id: int
    kind: str
    start_ts: datetime
    end_ts: datetime
    severity: float
    expected: float | None
    observed: float | None
    reason: str
    status: str = "confirmed"


@dataclass(frozen=True, slots=True)
class AnomalyWrite:
    """What one write did: events staged, rows opened, rows extended (or refreshed)."""

    staged: int
    inserted: int
    extended: int


_STAGING: Final = """
CREATE TEMP TABLE staging_anomalies (
    idx int, meter_id int, kind text, start_ts timestamptz, end_ts timestamptz,
    severity float8, expected float8, observed float8, reason text, status text
) ON COMMIT DROP
"""
_COPY: Final = (
    "COPY staging_anomalies (idx, meter_id, kind, start_ts, end_ts, severity, expected,"
    " observed, reason, status) FROM STDIN (FORMAT BINARY)"
)
# Each staged event matches at most one stored event (the earliest that touches it): overlap,
# or a gap of at most one step on either side. A level shift and a drift are one family: a
# run that sees an excursion half-way may call it either, and it is one event.
_MATCH: Final = """
CREATE TEMP TABLE anomaly_match ON COMMIT DROP AS
SELECT DISTINCT ON (s.idx) s.idx, a.id
FROM staging_anomalies s
JOIN anomalies a ON a.meter_id = s.meter_id AND a.source = %(source)s
 AND (a.kind = s.kind
      OR (a.kind IN ('level_shift', 'drift') AND s.kind IN ('level_shift', 'drift')))
 AND a.end_ts >= s.start_ts - %(step)s AND a.start_ts <= s.end_ts + %(step)s
ORDER BY s.idx, a.start_ts
"""
# The latest-ending event's numbers and sentence describe the event best (it saw more of it);
# the stored kind stays, and with it the sentence of a level shift a later run calls a drift.
# A warning that a confirmed event extends is confirmed; a confirmed one stays so.
_EXTEND: Final = """
UPDATE anomalies a
SET status = CASE WHEN g.confirmed THEN 'confirmed' ELSE a.status END,
    start_ts = least(a.start_ts, g.start_ts),
    end_ts = greatest(a.end_ts, g.end_ts),
    severity = greatest(a.severity, g.severity),
    expected = CASE WHEN g.end_ts >= a.end_ts THEN g.expected ELSE a.expected END,
    observed = CASE WHEN g.end_ts >= a.end_ts THEN g.observed ELSE a.observed END,
    reason = CASE WHEN g.end_ts >= a.end_ts AND g.kind = a.kind THEN g.reason
                  ELSE a.reason END,
    updated_at = now()
FROM (
    SELECT m.id, min(s.start_ts) AS start_ts, max(s.end_ts) AS end_ts,
           max(s.severity) AS severity,
           (array_agg(s.expected ORDER BY s.end_ts DESC))[1] AS expected,
           (array_agg(s.observed ORDER BY s.end_ts DESC))[1] AS observed,
           (array_agg(s.reason ORDER BY s.end_ts DESC))[1] AS reason,
           (array_agg(s.kind ORDER BY s.end_ts DESC))[1] AS kind,
           bool_or(s.status = 'confirmed') AS confirmed
    FROM anomaly_match m JOIN staging_anomalies s USING (idx)
    GROUP BY m.id
) g
WHERE a.id = g.id
  AND (g.start_ts < a.start_ts OR g.end_ts > a.end_ts OR g.severity > a.severity
       OR (g.confirmed AND a.status = 'warning'))
"""
_INSERT: Final = """
INSERT INTO anomalies (meter_id, kind, source, start_ts, end_ts, severity, expected, observed,
                       reason, status)
SELECT DISTINCT ON (s.meter_id, s.kind, s.start_ts)
       s.meter_id, s.kind, %(source)s, s.start_ts, s.end_ts, s.severity, s.expected,
       s.observed, s.reason, s.status
FROM staging_anomalies s
WHERE NOT EXISTS (SELECT 1 FROM anomaly_match m WHERE m.idx = s.idx)
-- Two detectors may report the same meter, kind and start in one run: keep the longest.
ORDER BY s.meter_id, s.kind, s.start_ts, s.end_ts DESC, s.severity DESC
ON CONFLICT (meter_id, kind, start_ts) DO UPDATE
SET end_ts = greatest(anomalies.end_ts, EXCLUDED.end_ts),
    severity = greatest(anomalies.severity, EXCLUDED.severity),
    status = CASE WHEN EXCLUDED.status = 'confirmed' THEN 'confirmed' ELSE anomalies.status END,
    updated_at = now()
"""


def write_anomalies(
    conn: psycopg.Connection, events: Iterable[AnomalyRow], *, step: timedelta
) -> AnomalyWrite:
    """Store events of the processing job; the caller commits.

    Parameters
    ----------
    events : iterable of AnomalyRow
        Events of one run (non-overlapping per meter and kind).
    step : timedelta
        Step of the analysed series: a stored event ending at most one step before a new
        one starts (an event still open at the previous run's end) is extended by it.

    Returns
    -------
    AnomalyWrite
        ``inserted + extended <= staged``; the rest were already stored as they are.
    """
    staged = 0
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(_STAGING)
        with cur.copy(_COPY) as copy:
            copy.set_types(
                ["int4", "int4", "text", "timestamptz", "timestamptz", "float8", "float8",
                 "float8", "text", "text"]
            )  # fmt: skip
            for e in events:
                copy.write_row(
                    (staged, e.meter_id, e.kind, e.start_ts, e.end_ts, e.severity, e.expected,
                     e.observed, e.reason, e.status)
                )  # fmt: skip
                staged += 1
        if staged == 0:
            cur.execute("DROP TABLE staging_anomalies")
            return AnomalyWrite(0, 0, 0)
        params = {"source": SOURCE, "step": step}
        cur.execute(_MATCH, params)
        extended = max(cur.execute(_EXTEND, params).rowcount, 0)
        inserted = max(cur.execute(_INSERT, params).rowcount, 0)
        cur.execute("DROP TABLE anomaly_match")
        cur.execute("DROP TABLE staging_anomalies")
    return AnomalyWrite(staged, inserted, extended)


# The warnings of the run's meters within its window that no level shift or drift of the
# run touches (overlap, or a gap of at most one step) are deleted: the run saw more days,
# and the evidence faded. Those a confirmed one touches are confirmed, though the run
# does not report it (it ended before the run's report window). Short confirmed shifts are
# deleted the same way, judged against the run's level shifts and drifts; so are the
# events of the rechecked kinds starting within the span given, judged against every
# event of the run (a spike that a run reads as part of a longer event is still seen).
_SETTLE: Final = """
WITH judged AS (
    SELECT a.id, a.status,
           bool_or(h.status = 'confirmed') AS confirmed,
           count(h.meter_id) AS seen
    FROM anomalies a
    LEFT JOIN staging_held h ON h.meter_id = a.meter_id
     AND (a.kind = ANY(%(recheck_kinds)s::text[])
          OR (a.kind IN ('level_shift', 'drift') AND h.kind IN ('level_shift', 'drift')))
     AND h.end_ts >= a.start_ts - %(step)s AND h.start_ts <= a.end_ts + %(step)s
    WHERE a.source = %(source)s AND a.meter_id = ANY(%(meters)s)
      AND ((a.kind IN ('level_shift', 'drift')
            AND ((a.status = 'warning' AND a.end_ts >= %(since)s)
                 OR (a.status = 'confirmed' AND a.start_ts >= %(retract_from)s
                     AND a.end_ts - a.start_ts <= %(retract_span)s
                     AND a.acknowledged_at IS NULL)))
           OR (a.kind = ANY(%(recheck_kinds)s::text[]) AND a.status = 'confirmed'
               AND a.start_ts BETWEEN %(recheck_from)s AND %(recheck_until)s
               AND a.acknowledged_at IS NULL))
    GROUP BY a.id, a.status
), gone AS (
    DELETE FROM anomalies a USING judged j WHERE a.id = j.id AND j.seen = 0
    RETURNING j.status
), kept AS (
    UPDATE anomalies a SET status = 'confirmed', updated_at = now()
    FROM judged j WHERE a.id = j.id AND j.status = 'warning' AND j.confirmed RETURNING a.id
)
SELECT (SELECT count(*) FROM gone WHERE status = 'warning'), (SELECT count(*) FROM kept),
       (SELECT count(*) FROM gone WHERE status = 'confirmed')
"""


@dataclass(frozen=True, slots=True)
class WarningsSettled:
    """What :func:`settle_warnings` did: warnings deleted, warnings confirmed, and
    confirmed events deleted (``retracted``: short shifts and rechecked events)."""

    withdrawn: int
    confirmed: int
    retracted: int = 0


def settle_warnings(
    conn: psycopg.Connection,
    held: Iterable[AnomalyRow],
    *,
    meter_ids: Sequence[int],
    since: datetime,
    step: timedelta,
    retract_from: datetime | None = None,
    retract_span: timedelta = timedelta(0),
    recheck_kinds: Sequence[str] = (),
    recheck_starts: tuple[datetime, datetime] | None = None,
) -> WarningsSettled:
    """Judge the stored level-shift warnings of ``meter_ids`` ending at or after ``since``
    (the run's window) against ``held``, every level shift and drift the run found in
    it, reported or not (with ``recheck_starts``, every event it found); the caller
    commits.

    A warning no event of ``held`` touches is deleted; one a confirmed event touches is
    confirmed. The others stay warnings. With ``retract_from``, the confirmed level
    shifts and drifts starting at or after it and lasting at most ``retract_span`` (end
    less start) are judged too: deleted when no event of ``held`` touches them, unless a
    person has acknowledged one (their word on it stays). With ``recheck_starts`` (first,
    last), so are the confirmed events of ``recheck_kinds`` starting between the two, each
    against every event of ``held``, of any kind.
    """
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE staging_held (meter_id int, kind text, start_ts timestamptz,"
            " end_ts timestamptz, status text) ON COMMIT DROP"
        )
        with cur.copy(
            "COPY staging_held (meter_id, kind, start_ts, end_ts, status)"
            " FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int4", "text", "timestamptz", "timestamptz", "text"])
            for e in held:
                copy.write_row((e.meter_id, e.kind, e.start_ts, e.end_ts, e.status))
        # Without a span the bounds are NULL, and no event of the rechecked kinds is judged.
        recheck_from, recheck_until = recheck_starts or (None, None)
        params = {
            "source": SOURCE, "step": step, "meters": list(meter_ids), "since": since,
            "retract_from": retract_from, "retract_span": retract_span,
            "recheck_kinds": list(recheck_kinds), "recheck_from": recheck_from,
            "recheck_until": recheck_until,
        }  # fmt: skip
        row = cur.execute(_SETTLE, params).fetchone()
        cur.execute("DROP TABLE staging_held")
    assert row is not None
    return WarningsSettled(int(row[0]), int(row[1]), int(row[2]))


def fetch_anomalies(
    conn: psycopg.Connection, *, meter_ids: Sequence[int] | None = None
) -> list[AnomalyRow]:
    """Stored processing anomalies, ordered by meter, kind and start (tests, reports)."""
    cur = conn.execute(
        "SELECT meter_id, kind, start_ts, end_ts, severity, expected, observed, reason, status"
        " FROM anomalies WHERE source = %s AND (%s::int4[] IS NULL OR meter_id = ANY(%s::int4[]))"
        " ORDER BY meter_id, kind, start_ts",
        (SOURCE, meter_ids, meter_ids),
    )
    return [AnomalyRow(*row) for row in cur]


@dataclass(frozen=True, slots=True)
class Assessment:
    """One row of ``insulation_assessments``; None where not computed.

    Units are in the names; HLC interval is 90 % (bootstrap); fractions are [-].
    """

    building_id: int
    period_start: date
    period_end: date
    method: str  # "changepoint" or "arx"
    status: str  # "ok" or "insufficient_data"
    status_reason: str | None = None
    hlc_w_per_k: float | None = None
    hlc_low_w_per_k: float | None = None
    hlc_high_w_per_k: float | None = None
    hlc_w_per_m2k: float | None = None
    tau_h: float | None = None
    balance_temp_c: float | None = None
    base_kwh_per_day: float | None = None
    slope_kwh_per_day_k: float | None = None
    r2: float | None = None
    cv_rmse: float | None = None
    nmbe: float | None = None
    n_days: int | None = None
    heating_kwh_per_year: float | None = None
    primary_kwh_per_m2: float | None = None
    co2_kg_per_m2: float | None = None
    energy_class: str | None = None
    climate_class: str | None = None
    label: str | None = None
    is_passoire: bool | None = None
    worst_decile: bool | None = None
    methods_disagree: bool | None = None
    slope_change_rel: float | None = None  # heating slope, 2nd half of the period vs 1st
    slope_change_p: float | None = None  # two-sided p-value of "no change"


_COLUMNS: Final = tuple(f.name for f in fields(Assessment))
_KEY: Final = ("building_id", "period_start", "period_end", "method")
_UPSERT: Final = (
    f"INSERT INTO insulation_assessments ({', '.join(_COLUMNS)})"
    f" VALUES ({', '.join(['%s'] * len(_COLUMNS))})"
    f" ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS if c not in _KEY)
    + ", computed_at = now()"
)


def write_assessments(conn: psycopg.Connection, rows: Iterable[Assessment]) -> int:
    """Upsert assessments on (building, period, method); returns rows written. Caller commits."""
    batch = [astuple(r) for r in rows]
    if not batch:
        return 0
    with conn.cursor() as cur:
        cur.executemany(_UPSERT, batch)
    return len(batch)


def fetch_assessments(conn: psycopg.Connection) -> list[Assessment]:
    """Every stored assessment, ordered by building, period and method."""
    cur = conn.execute(
        f"SELECT {', '.join(_COLUMNS)} FROM insulation_assessments"
        " ORDER BY building_id, period_start, period_end, method"
    )
    return [Assessment(*row) for row in cur]
