"""Municipalities, buildings and meters: the registry readings resolve against."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row


@dataclass(frozen=True, slots=True)
class Meter:
    """A registered meter; ``(device_format, device_id, channel)`` identifies its readings."""

    id: int
    building_id: int | None
    quantity: str
    unit: str
    cumulative: bool
    device_format: str
    device_id: str
    channel: str
    installed_at: datetime | None
    household: bool = False  # its building is a volunteer household's

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.device_format, self.device_id, self.channel)


_METER_COLUMNS = (
    "id, building_id, quantity, unit, cumulative, device_format, device_id, channel, installed_at"
)
# The same columns plus whether the meter is a household's (a subquery keeps FROM simple).
_SELECT_METERS = (
    "SELECT " + _METER_COLUMNS + ", coalesce((SELECT b.is_household FROM buildings b"
    " WHERE b.id = meters.building_id), false) AS household FROM meters"
)


_INSERT_METER = (
    "INSERT INTO meters (device_format, device_id, channel, quantity, unit, cumulative,"
    " building_id, name, installed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (device_format, device_id, channel) DO NOTHING"
    " RETURNING " + _METER_COLUMNS + ", coalesce((SELECT b.is_household FROM buildings b"
    " WHERE b.id = building_id), false) AS household"
)


def load_meters(conn: psycopg.Connection) -> dict[tuple[str, str, str], Meter]:
    """Every meter, keyed by ``(device_format, device_id, channel)``."""
    with conn.cursor(row_factory=class_row(Meter)) as cur:
        cur.execute(_SELECT_METERS)
        return {meter.key: meter for meter in cur}


def get_meter(conn: psycopg.Connection, meter_id: int) -> Meter | None:
    with conn.cursor(row_factory=class_row(Meter)) as cur:
        cur.execute(_SELECT_METERS + " WHERE id = %s", (meter_id,))
        return cur.fetchone()


def register_meter(
    conn: psycopg.Connection,
    *,
    device_format: str,
    device_id: str,
    channel: str,
    quantity: str,
    unit: str,
    cumulative: bool,
    building_id: int | None = None,
    name: str | None = None,
    installed_at: datetime | None = None,
) -> Meter:
    """Register a meter, or return the one already registered under the same key."""
    with conn.cursor(row_factory=class_row(Meter)) as cur:
        cur.execute(
            _INSERT_METER,
            (device_format, device_id, channel, quantity, unit, cumulative, building_id, name,
             installed_at),
        )  # fmt: skip
        meter = cur.fetchone()
        if meter is not None:
            return meter
        cur.execute(
            _SELECT_METERS + " WHERE device_format = %s AND device_id = %s AND channel = %s",
            (device_format, device_id, channel),
        )
        existing = cur.fetchone()
        assert existing is not None  # the conflict above proves it exists
        return existing


def create_municipality(conn: psycopg.Connection, name: str, *, normal_hdd: float = 2500.0) -> int:
    """Create a municipality (or find it by name); returns its id."""
    row = conn.execute(
        "INSERT INTO municipalities (name, normal_hdd) VALUES (%s, %s)"
        " ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
        (name, normal_hdd),
    ).fetchone()
    assert row is not None
    return int(row[0])


def create_building(
    conn: psycopg.Connection,
    *,
    name: str,
    municipality_id: int | None = None,
    floor_area_m2: float | None = None,
    year_built: int | None = None,
    use: str = "household",
    heating_carrier: str | None = None,
    heating_efficiency: float | None = None,
    lat: float | None = None,
    lon: float | None = None,
    is_household: bool = False,
    occupants: int | None = None,
) -> int:
    """Create a building; returns its id."""
    row = conn.execute(
        "INSERT INTO buildings (name, municipality_id, floor_area_m2, year_built, use,"
        " heating_carrier, heating_efficiency, lat, lon, is_household, occupants)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (name, municipality_id, floor_area_m2, year_built, use, heating_carrier,
         heating_efficiency, lat, lon, is_household, occupants),
    ).fetchone()  # fmt: skip
    assert row is not None
    return int(row[0])
