"""Volunteer households: onboarding (building + meter), consents, and erasure (GDPR art. 17).

A household owns exactly one building; its meters hang off that building, so deleting the
building cascades to meters, anomalies, meter events and assessments. Readings and rollups
have no foreign key (insert speed) and are deleted explicitly, in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from psycopg import AsyncConnection, sql
from psycopg.rows import class_row


@dataclass(frozen=True, slots=True)
class HouseholdRow:
    id: int
    building_id: int
    display_name: str
    consent_daily: bool
    consent_load_curve: bool
    consent_updated_at: datetime
    mqtt_username: str | None
    created_at: datetime
    municipality_id: int | None
    floor_area_m2: float | None
    year_built: int | None
    heating_carrier: str | None
    occupants: int | None


_COLUMNS: Final = (
    "h.id, h.building_id, h.display_name, h.consent_daily, h.consent_load_curve,"
    " h.consent_updated_at, h.mqtt_username, h.created_at, b.municipality_id, b.floor_area_m2,"
    " b.year_built, b.heating_carrier, b.occupants"
)


@dataclass(frozen=True, slots=True)
class NewMeter:
    device_format: str
    device_id: str
    channel: str
    quantity: str
    unit: str
    cumulative: bool
    name: str


async def create_household(
    conn: AsyncConnection[Any],
    *,
    display_name: str,
    municipality_id: int | None,
    floor_area_m2: float,
    year_built: int,
    heating_carrier: str,
    occupants: int | None,
    consent_daily: bool,
    consent_load_curve: bool,
    created_by: str,
) -> int:
    """Create the household and its building (in the caller's transaction); returns its id."""
    cur = await conn.execute(
        "INSERT INTO buildings (name, municipality_id, floor_area_m2, year_built, use,"
        " heating_carrier, occupants, is_household)"
        " VALUES (%s, %s, %s, %s, 'household', %s, %s, true) RETURNING id",
        (display_name, municipality_id, floor_area_m2, year_built, heating_carrier, occupants),
    )
    building = await cur.fetchone()
    assert building is not None
    cur = await conn.execute(
        "INSERT INTO households (building_id, display_name, consent_daily, consent_load_curve,"
        " created_by) VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (building[0], display_name, consent_daily, consent_load_curve, created_by),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def municipality_exists(conn: AsyncConnection[Any], municipality_id: int) -> bool:
    cur = await conn.execute("SELECT 1 FROM municipalities WHERE id = %s", (municipality_id,))
    return await cur.fetchone() is not None


async def meter_key_taken(conn: AsyncConnection[Any], meter: NewMeter) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM meters WHERE device_format = %s AND device_id = %s AND channel = %s",
        (meter.device_format, meter.device_id, meter.channel),
    )
    return await cur.fetchone() is not None


async def add_meter(conn: AsyncConnection[Any], household_id: int, meter: NewMeter) -> int:
    """Register a meter in the household's building; returns its id."""
    cur = await conn.execute(
        "INSERT INTO meters (building_id, device_format, device_id, channel, quantity, unit,"
        " cumulative, name) SELECT building_id, %s, %s, %s, %s, %s, %s, %s FROM households"
        " WHERE id = %s RETURNING id",
        (meter.device_format, meter.device_id, meter.channel, meter.quantity, meter.unit,
         meter.cumulative, meter.name, household_id),
    )  # fmt: skip
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def set_mqtt_username(conn: AsyncConnection[Any], household_id: int, username: str) -> None:
    await conn.execute(
        "UPDATE households SET mqtt_username = %s WHERE id = %s", (username, household_id)
    )


async def household(
    conn: AsyncConnection[Any], household_id: int, *, caller_household: int | None
) -> HouseholdRow | None:
    """One household, if the caller may see it (an engineer: any; a household: itself)."""
    if caller_household is not None and caller_household != household_id:
        return None
    async with conn.cursor(row_factory=class_row(HouseholdRow)) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM households h JOIN buildings b ON b.id = h.building_id"
            " WHERE h.id = %s",
            (household_id,),
        )
        return await cur.fetchone()


async def list_households(
    conn: AsyncConnection[Any], *, limit: int, offset: int
) -> list[HouseholdRow]:
    async with conn.cursor(row_factory=class_row(HouseholdRow)) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM households h JOIN buildings b ON b.id = h.building_id"
            " ORDER BY h.id LIMIT %s OFFSET %s",
            (limit, offset),
        )
        return await cur.fetchall()


_PURGE_FINE: Final = """
WITH m AS (
    SELECT x.id FROM meters x JOIN households h ON h.building_id = x.building_id
    WHERE NOT h.consent_load_curve AND (%(hh)s::bigint IS NULL OR h.id = %(hh)s)
), raw AS (
    DELETE FROM readings WHERE meter_id IN (SELECT id FROM m) AND ts < %(before)s RETURNING 1
), hourly AS (
    DELETE FROM readings_hourly WHERE meter_id IN (SELECT id FROM m) AND hour < %(before)s
    RETURNING 1
)
SELECT (SELECT count(*) FROM raw), (SELECT count(*) FROM hourly)
"""


async def purge_load_curves(
    conn: AsyncConnection[Any], *, household_id: int | None = None
) -> tuple[int, int]:
    """Delete raw readings and hourly rollups of households without load-curve consent, before
    the start of today (Paris): only daily totals are kept. Today's raw readings stay until
    the rollup job has turned them into today's total. Returns (raw, hourly) rows deleted."""
    cur = await conn.execute(
        "SELECT date_trunc('day', now() AT TIME ZONE 'Europe/Paris') AT TIME ZONE 'Europe/Paris'"
    )
    before = await cur.fetchone()
    assert before is not None
    cur = await conn.execute(_PURGE_FINE, {"hh": household_id, "before": before[0]})
    row = await cur.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def set_consents(
    conn: AsyncConnection[Any], household_id: int, *, daily: bool, load_curve: bool
) -> None:
    await conn.execute(
        "UPDATE households SET consent_daily = %s, consent_load_curve = %s,"
        " consent_updated_at = now() WHERE id = %s",
        (daily, load_curve, household_id),
    )


# What a household may say about its home (columns of its building).
HOME_FIELDS: Final = ("floor_area_m2", "year_built", "heating_carrier", "occupants")


async def update_home(
    conn: AsyncConnection[Any], household_id: int, changes: dict[str, object]
) -> None:
    """Set the given ``HOME_FIELDS`` of the household's building (None clears one)."""
    unknown = set(changes) - set(HOME_FIELDS)
    if unknown:
        raise ValueError(f"changes: not home fields: {', '.join(sorted(unknown))}")
    if not changes:
        return
    columns = sql.SQL(", ").join(
        sql.SQL("{} = %s").format(sql.Identifier(name)) for name in changes
    )
    await conn.execute(
        sql.SQL(
            "UPDATE buildings SET {} WHERE id = (SELECT building_id FROM households WHERE id = %s)"
        ).format(columns),
        (*changes.values(), household_id),
    )


async def erase_household(
    conn: AsyncConnection[Any], household_id: int, *, topic_prefixes: list[str]
) -> dict[str, int]:
    """Delete everything of one household; returns rows removed per kind (in the caller's
    transaction). ``topic_prefixes``: its devices' topics, whose dead letters go too."""
    counts: dict[str, int] = {}
    cur = await conn.execute(
        "SELECT x.id FROM meters x JOIN households h ON h.building_id = x.building_id"
        " WHERE h.id = %s",
        (household_id,),
    )
    meter_ids = [int(r[0]) for r in await cur.fetchall()]
    for name, query in (
        ("readings", "DELETE FROM readings WHERE meter_id = ANY(%(m)s)"),
        ("readings_hourly", "DELETE FROM readings_hourly WHERE meter_id = ANY(%(m)s)"),
        ("readings_daily", "DELETE FROM readings_daily WHERE meter_id = ANY(%(m)s)"),
        ("meter_events", "DELETE FROM meter_events WHERE meter_id = ANY(%(m)s)"),
        ("anomalies", "DELETE FROM anomalies WHERE meter_id = ANY(%(m)s)"),
        (
            "insulation_assessments",
            "DELETE FROM insulation_assessments WHERE building_id ="
            " (SELECT building_id FROM households WHERE id = %(h)s)",
        ),
        ("api_tokens", "DELETE FROM api_tokens WHERE household_id = %(h)s"),
        (
            "dead_letters",
            "DELETE FROM dead_letters WHERE EXISTS"
            " (SELECT 1 FROM unnest(%(p)s::text[]) p WHERE starts_with(topic, p))",
        ),
        ("meters", "DELETE FROM meters WHERE id = ANY(%(m)s)"),
    ):
        cur = await conn.execute(query, {"m": meter_ids, "h": household_id, "p": topic_prefixes})
        counts[name] = max(cur.rowcount, 0)
    cur = await conn.execute(
        "DELETE FROM buildings WHERE id = (SELECT building_id FROM households WHERE id = %s)",
        (household_id,),
    )  # cascades to the household row
    counts["households"] = counts["buildings"] = max(cur.rowcount, 0)
    return counts


async def household_meter_topics(conn: AsyncConnection[Any], household_id: int) -> list[NewMeter]:
    """The household's meters as registered (to rebuild topics and instructions)."""
    cur = await conn.execute(
        "SELECT x.device_format, x.device_id, x.channel, x.quantity, x.unit, x.cumulative,"
        " coalesce(x.name, '') FROM meters x JOIN households h ON h.building_id = x.building_id"
        " WHERE h.id = %s ORDER BY x.id",
        (household_id,),
    )
    return [NewMeter(*row) for row in await cur.fetchall()]
