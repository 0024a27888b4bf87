"""Anomalies: filter by kind, severity, time and building; engineers acknowledge them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from api.deps import Conn, CurrentCaller, Paging
from api.errors import ApiError, not_found, responses
from api.models import Acknowledge, Anomaly, PageOf
from api.rendering import json_response, records
from api.routes.meters import aware
from storage import api_reads

router = APIRouter(prefix="/v1/anomalies", tags=["anomalies"])

Id = Annotated[int, Path(ge=1, le=9_223_372_036_854_775_807)]


@router.get("", response_model=PageOf[Anomaly], responses=responses(401, 422))
async def list_anomalies(
    *,
    conn: Conn,
    caller: CurrentCaller,
    page: Paging,
    kind: Annotated[str | None, Query(max_length=64, examples=["spike"])] = None,
    min_severity: Annotated[float | None, Query(ge=0, le=1e12)] = None,
    start: Annotated[datetime | None, Query(description="Anomalies ending from then.")] = None,
    end: Annotated[datetime | None, Query(description="Anomalies starting before then.")] = None,
    building_id: Annotated[int | None, Query(ge=1, le=9_223_372_036_854_775_807)] = None,
    meter_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    acknowledged: Annotated[bool | None, Query()] = None,
) -> Response:
    rows = await api_reads.anomaly_tuples(
        conn,
        household_id=caller.household_id,
        limit=page.limit,
        offset=page.offset,
        kind=kind,
        min_severity=min_severity,
        start=aware(start, "start"),
        end=aware(end, "end"),
        building_id=building_id,
        meter_id=meter_id,
        acknowledged=acknowledged,
    )
    # PageOf[Anomaly], built without validation: see api.rendering.
    return json_response(
        {
            "items": records(api_reads.ANOMALY_COLUMNS, rows),
            "limit": page.limit,
            "offset": page.offset,
            "total": None,
        }
    )


async def _one(conn: Conn, caller: CurrentCaller, anomaly_id: int) -> api_reads.AnomalyRow:
    rows = await api_reads.anomalies(
        conn, household_id=caller.household_id, anomaly_id=anomaly_id, limit=1
    )
    if not rows:
        raise not_found("anomaly", anomaly_id)
    return rows[0]


@router.get("/{anomaly_id}", response_model=Anomaly, responses=responses(401, 404, 422))
async def get_anomaly(conn: Conn, caller: CurrentCaller, anomaly_id: Id) -> Anomaly:
    return Anomaly.model_validate(await _one(conn, caller, anomaly_id))


@router.post(
    "/{anomaly_id}/acknowledge",
    response_model=Anomaly,
    summary="Acknowledge an anomaly with a comment (engineers)",
    responses=responses(401, 403, 404, 413, 422),
)
async def acknowledge(
    conn: Conn, caller: CurrentCaller, anomaly_id: Id, body: Acknowledge
) -> Anomaly:
    await _one(conn, caller, anomaly_id)  # "not yours" is a 404 before any role check
    if caller.engineer is None:
        raise ApiError(403, "engineers only")
    await api_reads.acknowledge_anomaly(conn, anomaly_id, by=caller.engineer, comment=body.comment)
    return Anomaly.model_validate(await _one(conn, caller, anomaly_id))
