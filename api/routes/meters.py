"""Meters and their readings, served from the rollups (hour: readings_hourly; day and coarser:
readings_daily, whose days are Europe/Paris calendar days)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from api.deps import Conn, CurrentCaller, Paging
from api.errors import ApiError, not_found, responses
from api.models import Meter, PageOf, Readings
from api.rendering import json_response, records
from storage import api_reads

router = APIRouter(prefix="/v1/meters", tags=["meters"])

PARIS = ZoneInfo("Europe/Paris")
Id = Annotated[int, Path(ge=1, le=2_147_483_647)]
# Timestamps outside this range are refused with a 422 (PostgreSQL and Python disagree
# on the far edges of the calendar).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
DEFAULT_SPAN = {"raw": 1, "hour": 7, "day": 365, "week": 365, "month": 3 * 365}  # days


def aware(value: datetime | None, name: str) -> datetime | None:
    """Naive times are Paris local time (what a person means); refuse absurd years."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=PARIS)
    if not EARLIEST <= value <= LATEST:
        raise ApiError(422, f"{name}: must be between 1970 and 2200", field=name)
    return value


def next_bucket(ts: datetime, resolution: str) -> datetime:
    """Start of the bucket after the one starting at ``ts``, in Paris calendar terms."""
    if resolution == "raw":
        return ts + timedelta(microseconds=1)
    if resolution == "hour":
        return ts + timedelta(hours=1)
    day = ts.astimezone(PARIS).date()
    if resolution == "day":
        nxt = day + timedelta(days=1)
    elif resolution == "week":
        nxt = day + timedelta(days=7)
    else:
        nxt = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return datetime(nxt.year, nxt.month, nxt.day, tzinfo=PARIS)


@router.get("", response_model=PageOf[Meter], responses=responses(401, 422))
async def list_meters(
    conn: Conn,
    caller: CurrentCaller,
    page: Paging,
    building_id: Annotated[int | None, Query(ge=1, le=9_223_372_036_854_775_807)] = None,
) -> PageOf[Meter]:
    rows = await api_reads.meters(
        conn,
        household_id=caller.household_id,
        limit=page.limit,
        offset=page.offset,
        building_id=building_id,
    )
    return PageOf[Meter](
        items=[Meter.model_validate(r) for r in rows], limit=page.limit, offset=page.offset
    )


@router.get("/{meter_id}", response_model=Meter, responses=responses(401, 404, 422))
async def get_meter(conn: Conn, caller: CurrentCaller, meter_id: Id) -> Meter:
    row = await api_reads.meter(conn, meter_id, household_id=caller.household_id)
    if row is None:
        raise not_found("meter", meter_id)
    return Meter.model_validate(row)


_CSV_DOC = {
    "text/csv": {
        "schema": {"type": "string"},
        "example": "ts,value,consumption,min,max,samples\n"
        "2025-01-14T23:00:00+00:00,1234.5,12.5,1228.0,1240.5,96\n",
    }
}


@router.get(
    "/{meter_id}/readings",
    response_model=Readings,
    summary="Readings of one meter over a time range, at a resolution, as JSON or CSV",
    responses={200: {"content": _CSV_DOC}, **responses(401, 403, 404, 422)},
)
async def get_readings(
    *,
    conn: Conn,
    caller: CurrentCaller,
    meter_id: Id,
    start: Annotated[
        datetime | None,
        Query(
            description="Range start (ISO 8601; no offset = Europe/Paris). Default: end − "
            "1 day (raw), 7 days (hour), 365 days (day, week), 3 years (month)."
        ),
    ] = None,
    end: Annotated[datetime | None, Query(description="Range end, excluded. Default: now.")] = None,
    resolution: Annotated[
        Literal["raw", "hour", "day", "week", "month"],
        Query(description="raw readings, or buckets; day/week/month follow Paris days."),
    ] = "hour",
    limit: Annotated[int, Query(ge=1, le=10_000, description="Most points returned.")] = 1000,
    format: Annotated[Literal["json", "csv"], Query(description="Response body format.")] = "json",
) -> Response:
    meter = await api_reads.meter_access(conn, meter_id, household_id=caller.household_id)
    if meter is None:
        raise not_found("meter", meter_id)
    if not meter.consent_daily and not meter.consent_load_curve:
        raise ApiError(403, "the household has not consented to sharing these readings")
    if resolution in ("raw", "hour") and not meter.consent_load_curve:
        raise ApiError(
            403,
            "resolution: the household has not consented to its load curve; use day, week or month",
            field="resolution",
        )
    end_t = aware(end, "end") or datetime.now(UTC)
    start_t = aware(start, "start") or end_t - timedelta(days=DEFAULT_SPAN[resolution])
    if start_t >= end_t:
        raise ApiError(422, "start: must be before end", field="start")
    rows = await api_reads.series_tuples(
        conn, meter_id, resolution=resolution, start=start_t, end=end_t, limit=limit
    )
    more = next_bucket(rows[-1][0], resolution) if len(rows) == limit else None
    if format == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(api_reads.POINT_COLUMNS)
        for ts, *rest in rows:
            writer.writerow([ts.isoformat(), *rest])
        headers = {"X-Next-Start": more.isoformat()} if more else {}
        return Response(out.getvalue(), media_type="text/csv", headers=headers)
    # Readings, built without validation: see api.rendering.
    return json_response(
        {
            "meter_id": meter_id,
            "unit": meter.unit,
            "resolution": resolution,
            "start": start_t,
            "end": end_t,
            "points": records(api_reads.POINT_COLUMNS, rows),
            "next_start": more,
        }
    )
