"""What the API reads: places, meters, readings from the rollups, anomalies, assessments.

Every function that can return a household's object takes ``household_id``: ``None`` is an
engineer (everything), a number restricts the query to that household's own building, in SQL,
so "not yours" and "does not exist" are the same empty answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, Literal

from psycopg import AsyncConnection
from psycopg.rows import class_row, dict_row

# The caller's scope as one SQL condition on a building id column.
_SCOPE: Final = (
    "(%(hh)s::bigint IS NULL OR {col} = (SELECT building_id FROM households WHERE id = %(hh)s))"
)


def _scope(col: str) -> str:
    return _SCOPE.format(col=col)


@dataclass(frozen=True, slots=True)
class MunicipalityRow:
    id: int
    name: str
    insee_code: str | None
    buildings: int
    households: int
    meters: int
    open_anomalies: int
    assessed_buildings: int
    passoires: int
    mean_primary_kwh_per_m2: float | None


_MUNICIPALITIES: Final = """
SELECT m.id, m.name, m.insee_code,
       (SELECT count(*) FROM buildings b WHERE b.municipality_id = m.id) AS buildings,
       (SELECT count(*) FROM households h JOIN buildings b ON b.id = h.building_id
         WHERE b.municipality_id = m.id) AS households,
       (SELECT count(*) FROM meters x JOIN buildings b ON b.id = x.building_id
         WHERE b.municipality_id = m.id) AS meters,
       (SELECT count(*) FROM anomalies a JOIN meters x ON x.id = a.meter_id
         JOIN buildings b ON b.id = x.building_id
         WHERE b.municipality_id = m.id AND a.acknowledged_at IS NULL) AS open_anomalies,
       coalesce(s.assessed, 0) AS assessed_buildings, coalesce(s.passoires, 0) AS passoires,
       s.mean_primary AS mean_primary_kwh_per_m2
FROM municipalities m
LEFT JOIN LATERAL (
    SELECT count(*) AS assessed, count(*) FILTER (WHERE l.is_passoire) AS passoires,
           avg(l.primary_kwh_per_m2) AS mean_primary
    FROM latest_assessments l JOIN buildings b ON b.id = l.building_id
    WHERE b.municipality_id = m.id AND l.status = 'ok'
) s ON true
{where}
ORDER BY m.id
LIMIT %(limit)s OFFSET %(offset)s
"""

# The newest assessment of each building and method (a CTE prefix for queries that need it).
_LATEST: Final = """
WITH latest_assessments AS (
    SELECT DISTINCT ON (building_id) *
    FROM insulation_assessments
    ORDER BY building_id, (status = 'ok') DESC, period_end DESC, computed_at DESC
)
"""


async def count_municipalities(conn: AsyncConnection[Any]) -> int:
    cur = await conn.execute("SELECT count(*) FROM municipalities")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def municipalities(
    conn: AsyncConnection[Any], *, limit: int, offset: int, municipality_id: int | None = None
) -> list[MunicipalityRow]:
    where = "" if municipality_id is None else "WHERE m.id = %(id)s"
    async with conn.cursor(row_factory=class_row(MunicipalityRow)) as cur:
        await cur.execute(
            _LATEST + _MUNICIPALITIES.format(where=where),
            {"limit": limit, "offset": offset, "id": municipality_id},
        )
        return await cur.fetchall()


@dataclass(frozen=True, slots=True)
class PublicMunicipalityRow:
    """Household figures of one municipality; the API withholds them under the threshold."""

    id: int
    name: str
    households: int
    daily_kwh_per_household: float | None  # mean of the last 30 complete Paris days [kWh/d]
    labels: dict[str, int]


_PUBLIC: Final = """
SELECT m.id, m.name, count(h.id) AS households,
       (SELECT sum(d.consumption) / 30.0 / nullif(count(DISTINCT h2.id), 0)
        FROM households h2 JOIN buildings b2 ON b2.id = h2.building_id
        JOIN meters x ON x.building_id = b2.id AND x.quantity = 'electricity'
                     AND x.unit = 'kWh' AND x.cumulative
        JOIN readings_daily d ON d.meter_id = x.id
        WHERE b2.municipality_id = m.id AND h2.consent_daily
          AND d.day >= (now() AT TIME ZONE 'Europe/Paris')::date - 30
          AND d.day < (now() AT TIME ZONE 'Europe/Paris')::date) AS daily_kwh_per_household,
       coalesce((SELECT jsonb_object_agg(label, n) FROM (
            SELECT l.label, count(*) AS n FROM latest_assessments l
            JOIN households h3 ON h3.building_id = l.building_id
            JOIN buildings b3 ON b3.id = l.building_id
            WHERE b3.municipality_id = m.id AND l.status = 'ok' AND l.label IS NOT NULL
            GROUP BY l.label) t), '{}'::jsonb) AS labels
FROM municipalities m
LEFT JOIN buildings b ON b.municipality_id = m.id
LEFT JOIN households h ON h.building_id = b.id AND h.consent_daily
GROUP BY m.id, m.name
ORDER BY m.id
LIMIT %(limit)s OFFSET %(offset)s
"""


async def public_municipalities(
    conn: AsyncConnection[Any], *, limit: int, offset: int
) -> list[PublicMunicipalityRow]:
    async with conn.cursor(row_factory=class_row(PublicMunicipalityRow)) as cur:
        await cur.execute(_LATEST + _PUBLIC, {"limit": limit, "offset": offset})
        return await cur.fetchall()


@dataclass(frozen=True, slots=True)
class BuildingRow:
    id: int
    municipality_id: int | None
    name: str
    floor_area_m2: float | None
    year_built: int | None
    use: str
    heating_carrier: str | None
    is_household: bool
    lat: float | None
    lon: float | None


_BUILDING_COLUMNS: Final = (
    "b.id, b.municipality_id, b.name, b.floor_area_m2, b.year_built, b.use, b.heating_carrier,"
    " b.is_household, b.lat, b.lon"
)


async def buildings(
    conn: AsyncConnection[Any],
    *,
    household_id: int | None,
    limit: int,
    offset: int,
    municipality_id: int | None = None,
    building_id: int | None = None,
) -> tuple[list[BuildingRow], int]:
    """A page of buildings the caller may see, and how many there are in all."""
    where = (
        f"{_scope('b.id')} AND (%(mun)s::int IS NULL OR b.municipality_id = %(mun)s)"
        " AND (%(bid)s::bigint IS NULL OR b.id = %(bid)s)"
    )
    params = {"hh": household_id, "mun": municipality_id, "bid": building_id,
              "limit": limit, "offset": offset}  # fmt: skip
    async with conn.cursor(row_factory=class_row(BuildingRow)) as cur:
        await cur.execute(
            f"SELECT {_BUILDING_COLUMNS} FROM buildings b WHERE {where}"
            " ORDER BY b.id LIMIT %(limit)s OFFSET %(offset)s",
            params,
        )
        rows = await cur.fetchall()
    total = await conn.execute(f"SELECT count(*) FROM buildings b WHERE {where}", params)
    n = await total.fetchone()
    return rows, int(n[0]) if n else 0


@dataclass(frozen=True, slots=True)
class MeterRow:
    """A meter with what the caller may read of it (consents; True outside households)."""

    id: int
    building_id: int | None
    quantity: str
    unit: str
    cumulative: bool
    device_format: str
    device_id: str
    channel: str
    name: str | None
    created_at: datetime
    last_reading_at: datetime | None
    consent_daily: bool
    consent_load_curve: bool


_METERS: Final = f"""
SELECT x.id, x.building_id, x.quantity, x.unit, x.cumulative, x.device_format, x.device_id,
       x.channel, x.name, x.created_at,
       (SELECT max(r.ts) FROM readings r WHERE r.meter_id = x.id
          AND r.ts > now() - interval '7 days') AS last_reading_at,
       coalesce(h.consent_daily, true) AS consent_daily,
       coalesce(h.consent_load_curve, true) AS consent_load_curve
FROM meters x
LEFT JOIN households h ON h.building_id = x.building_id
WHERE {_scope("x.building_id")}
  AND (%(bid)s::bigint IS NULL OR x.building_id = %(bid)s)
  AND (%(mid)s::int IS NULL OR x.id = %(mid)s)
ORDER BY x.id
LIMIT %(limit)s OFFSET %(offset)s
"""


async def meters(
    conn: AsyncConnection[Any],
    *,
    household_id: int | None,
    limit: int = 100,
    offset: int = 0,
    building_id: int | None = None,
    meter_id: int | None = None,
) -> list[MeterRow]:
    async with conn.cursor(row_factory=class_row(MeterRow)) as cur:
        await cur.execute(
            _METERS,
            {"hh": household_id, "bid": building_id, "mid": meter_id, "limit": limit,
             "offset": offset},
        )  # fmt: skip
        return await cur.fetchall()


async def meter(
    conn: AsyncConnection[Any], meter_id: int, *, household_id: int | None
) -> MeterRow | None:
    rows = await meters(conn, household_id=household_id, meter_id=meter_id, limit=1)
    return rows[0] if rows else None


@dataclass(frozen=True, slots=True)
class MeterAccess:
    """What serving a meter's readings needs to know of it (no ``last_reading_at``)."""

    unit: str
    consent_daily: bool
    consent_load_curve: bool


_METER_ACCESS: Final = f"""
SELECT x.unit, coalesce(h.consent_daily, true), coalesce(h.consent_load_curve, true)
FROM meters x
LEFT JOIN households h ON h.building_id = x.building_id
WHERE x.id = %(mid)s AND {_scope("x.building_id")}
"""


async def meter_access(
    conn: AsyncConnection[Any], meter_id: int, *, household_id: int | None
) -> MeterAccess | None:
    """The meter's unit and consents, or None when it does not exist or is not the caller's."""
    cur = await conn.execute(_METER_ACCESS, {"mid": meter_id, "hh": household_id})
    row = await cur.fetchone()
    return MeterAccess(*row) if row else None


Resolution = Literal["raw", "hour", "day", "week", "month"]

# Hour buckets come from readings_hourly, days from readings_daily (Europe/Paris dates), weeks
# and months are sums of Paris days. ``ts`` is the bucket start as an instant; a bucket is
# returned when it overlaps [start, end) (today's partial day included).
_SERIES: Final[dict[str, str]] = {
    "raw": """SELECT ts, value, NULL::float8 AS consumption, NULL::float8 AS min,
                     NULL::float8 AS max, 1 AS samples
              FROM readings WHERE meter_id = %(m)s AND ts >= %(start)s AND ts < %(end)s
              ORDER BY ts LIMIT %(limit)s""",
    "hour": """SELECT hour AS ts, mean AS value, consumption, min, max, samples
               FROM readings_hourly
               WHERE meter_id = %(m)s AND hour >= %(start)s AND hour < %(end)s
               ORDER BY hour LIMIT %(limit)s""",
    "day": """SELECT (day::timestamp AT TIME ZONE 'Europe/Paris') AS ts, mean AS value,
                     consumption, min, max, samples
              FROM readings_daily
              WHERE meter_id = %(m)s
                AND day >= (%(start)s AT TIME ZONE 'Europe/Paris')::date
                AND day <= (%(end)s AT TIME ZONE 'Europe/Paris')::date
                AND (day::timestamp AT TIME ZONE 'Europe/Paris') < %(end)s
              ORDER BY day LIMIT %(limit)s""",
}
_CALENDAR: Final = """
SELECT (date_trunc(%(unit)s, day)::date::timestamp AT TIME ZONE 'Europe/Paris') AS ts,
       sum(mean * samples) / sum(samples) AS value, sum(consumption) AS consumption,
       min(min) AS min, max(max) AS max, sum(samples)::int AS samples
FROM readings_daily
WHERE meter_id = %(m)s
  AND day >= (%(start)s AT TIME ZONE 'Europe/Paris')::date
  AND day <= (%(end)s AT TIME ZONE 'Europe/Paris')::date
  AND (day::timestamp AT TIME ZONE 'Europe/Paris') < %(end)s
GROUP BY 1 ORDER BY 1 LIMIT %(limit)s
"""


@dataclass(frozen=True, slots=True)
class PointRow:
    """One bucket: ``value`` is the mean (the reading itself at raw resolution) in the meter's
    unit; ``consumption`` what a cumulative meter used in the bucket."""

    ts: datetime
    value: float | None
    consumption: float | None
    min: float | None
    max: float | None
    samples: int


# The columns of a point, in the order of the queries above (and of the API's Point).
POINT_COLUMNS: Final = ("ts", "value", "consumption", "min", "max", "samples")
PointTuple = tuple[datetime, float | None, float | None, float | None, float | None, int]


def _series_query(
    meter_id: int, resolution: Resolution, start: datetime, end: datetime, limit: int
) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {"m": meter_id, "start": start, "end": end, "limit": limit}
    if resolution in ("week", "month"):
        return _CALENDAR, {**params, "unit": resolution}
    return _SERIES[resolution], params


async def series(
    conn: AsyncConnection[Any],
    meter_id: int,
    *,
    resolution: Resolution,
    start: datetime,
    end: datetime,
    limit: int,
) -> list[PointRow]:
    """Readings of one meter in [start, end); day and coarser buckets follow Paris dates."""
    query, params = _series_query(meter_id, resolution, start, end, limit)
    async with conn.cursor(row_factory=class_row(PointRow)) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def series_tuples(
    conn: AsyncConnection[Any],
    meter_id: int,
    *,
    resolution: Resolution,
    start: datetime,
    end: datetime,
    limit: int,
) -> list[PointTuple]:
    """``series`` as plain tuples in ``POINT_COLUMNS`` order: no object per row, for the
    endpoint that serialises them straight to JSON."""
    query, params = _series_query(meter_id, resolution, start, end, limit)
    cur = await conn.execute(query, params)
    return await cur.fetchall()


@dataclass(frozen=True, slots=True)
class AnomalyRow:
    id: int
    meter_id: int
    building_id: int | None
    kind: str
    source: str
    start_ts: datetime
    end_ts: datetime
    severity: float
    expected: float | None
    observed: float | None
    unit: str
    reason: str
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    ack_comment: str | None
    status: str  # "confirmed", or "warning" for a level shift not yet confirmed


_ANOMALIES: Final = f"""
SELECT a.id, a.meter_id, x.building_id, a.kind, a.source, a.start_ts, a.end_ts, a.severity,
       a.expected, a.observed, x.unit, a.reason, a.acknowledged_at, a.acknowledged_by,
       a.ack_comment, a.status
FROM anomalies a JOIN meters x ON x.id = a.meter_id
WHERE {_scope("x.building_id")}
  AND (%(id)s::bigint IS NULL OR a.id = %(id)s)
  AND (%(kind)s::text IS NULL OR a.kind = %(kind)s)
  AND (%(sev)s::float8 IS NULL OR a.severity >= %(sev)s)
  AND (%(start)s::timestamptz IS NULL OR a.end_ts >= %(start)s)
  AND (%(end)s::timestamptz IS NULL OR a.start_ts < %(end)s)
  AND (%(bid)s::bigint IS NULL OR x.building_id = %(bid)s)
  AND (%(mid)s::int IS NULL OR a.meter_id = %(mid)s)
  AND (%(ack)s::boolean IS NULL OR (a.acknowledged_at IS NOT NULL) = %(ack)s)
ORDER BY a.start_ts DESC, a.id DESC
LIMIT %(limit)s OFFSET %(offset)s
"""


# The columns of _ANOMALIES, in order (and of the API's Anomaly).
ANOMALY_COLUMNS: Final = tuple(AnomalyRow.__dataclass_fields__)


async def anomaly_tuples(
    conn: AsyncConnection[Any],
    *,
    household_id: int | None,
    limit: int = 100,
    offset: int = 0,
    anomaly_id: int | None = None,
    kind: str | None = None,
    min_severity: float | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    building_id: int | None = None,
    meter_id: int | None = None,
    acknowledged: bool | None = None,
) -> list[tuple[Any, ...]]:
    """Anomalies the caller may see, newest first, as plain tuples in ``ANOMALY_COLUMNS``
    order (the list endpoint serialises them without building objects)."""
    params = {"hh": household_id, "id": anomaly_id, "kind": kind, "sev": min_severity,
              "start": start, "end": end, "bid": building_id, "mid": meter_id,
              "ack": acknowledged, "limit": limit, "offset": offset}  # fmt: skip
    cur = await conn.execute(_ANOMALIES, params)
    return await cur.fetchall()


async def anomalies(
    conn: AsyncConnection[Any], *, household_id: int | None, **filters: Any
) -> list[AnomalyRow]:
    """``anomaly_tuples`` as ``AnomalyRow`` objects (same filters)."""
    rows = await anomaly_tuples(conn, household_id=household_id, **filters)
    return [AnomalyRow(*row) for row in rows]


async def acknowledge_anomaly(
    conn: AsyncConnection[Any], anomaly_id: int, *, by: str, comment: str
) -> bool:
    """Mark an anomaly acknowledged (again: the newest comment wins); False if none."""
    cur = await conn.execute(
        "UPDATE anomalies SET acknowledged_at = now(), acknowledged_by = %s, ack_comment = %s,"
        " updated_at = now() WHERE id = %s",
        (by, comment, anomaly_id),
    )
    return cur.rowcount > 0


@dataclass(frozen=True, slots=True)
class AssessmentRow:
    id: int
    building_id: int
    municipality_id: int | None
    period_start: date
    period_end: date
    method: str
    status: str
    status_reason: str | None
    hlc_w_per_k: float | None
    hlc_low_w_per_k: float | None
    hlc_high_w_per_k: float | None
    hlc_w_per_m2k: float | None
    heating_kwh_per_year: float | None
    primary_kwh_per_m2: float | None
    co2_kg_per_m2: float | None
    label: str | None
    is_passoire: bool | None
    worst_decile: bool | None
    slope_change_rel: float | None
    slope_change_p: float | None
    computed_at: datetime


_ASSESSMENTS: Final = f"""
SELECT l.id, l.building_id, b.municipality_id, l.period_start, l.period_end, l.method,
       l.status, l.status_reason, l.hlc_w_per_k, l.hlc_low_w_per_k, l.hlc_high_w_per_k,
       l.hlc_w_per_m2k, l.heating_kwh_per_year, l.primary_kwh_per_m2, l.co2_kg_per_m2,
       l.label, l.is_passoire, l.worst_decile, l.slope_change_rel, l.slope_change_p,
       l.computed_at
FROM latest_assessments l JOIN buildings b ON b.id = l.building_id
WHERE {_scope("l.building_id")}
  AND (%(bid)s::bigint IS NULL OR l.building_id = %(bid)s)
  AND (%(mun)s::int IS NULL OR b.municipality_id = %(mun)s)
  AND (%(label)s::text IS NULL OR l.label = %(label)s)
  AND (NOT %(ranked)s OR l.status = 'ok')
ORDER BY {{order}}
LIMIT %(limit)s OFFSET %(offset)s
"""


async def assessments(
    conn: AsyncConnection[Any],
    *,
    household_id: int | None,
    limit: int = 100,
    offset: int = 0,
    building_id: int | None = None,
    municipality_id: int | None = None,
    label: str | None = None,
    ranked: bool = False,
) -> list[AssessmentRow]:
    """The newest assessment of each building; ``ranked``: worst (highest primary energy per
    m²) first, only buildings with a label."""
    order = "l.primary_kwh_per_m2 DESC NULLS LAST, l.building_id" if ranked else "l.building_id"
    params = {"hh": household_id, "bid": building_id, "mun": municipality_id, "label": label,
              "ranked": ranked, "limit": limit, "offset": offset}  # fmt: skip
    async with conn.cursor(row_factory=class_row(AssessmentRow)) as cur:
        await cur.execute(_LATEST + _ASSESSMENTS.format(order=order), params)
        return await cur.fetchall()


async def similar_labels(
    conn: AsyncConnection[Any], building_id: int
) -> tuple[int, dict[str, int]]:
    """Labels of buildings like this one (same heating carrier, built in the same 20 years),
    as (count, {label: n})."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            _LATEST
            + """
            SELECT l.label, count(*) AS n
            FROM latest_assessments l
            JOIN buildings b ON b.id = l.building_id
            JOIN buildings me ON me.id = %(b)s
            WHERE l.status = 'ok' AND l.label IS NOT NULL AND b.id <> me.id
              AND b.heating_carrier IS NOT DISTINCT FROM me.heating_carrier
              AND (me.year_built IS NULL OR abs(b.year_built - me.year_built) <= 10)
            GROUP BY l.label ORDER BY l.label
            """,
            {"b": building_id},
        )
        rows = await cur.fetchall()
    labels = {str(r["label"]): int(r["n"]) for r in rows}
    return sum(labels.values()), labels


async def database_ok(conn: AsyncConnection[Any]) -> bool:
    cur = await conn.execute("SELECT 1")
    return (await cur.fetchone()) is not None
