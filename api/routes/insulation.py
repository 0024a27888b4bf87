"""Insulation assessments (heat-loss coefficient, DPE estimate) and rankings, worst first."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from api.deps import Conn, CurrentCaller, CurrentEngineer, Paging
from api.errors import not_found, responses
from api.models import Assessment, PageOf
from storage import api_reads

router = APIRouter(prefix="/v1/insulation", tags=["insulation"])

Label = Literal["A", "B", "C", "D", "E", "F", "G"]


@router.get("/assessments", response_model=PageOf[Assessment], responses=responses(401, 422))
async def list_assessments(
    conn: Conn,
    caller: CurrentCaller,
    page: Paging,
    municipality_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    label: Label | None = None,
) -> PageOf[Assessment]:
    rows = await api_reads.assessments(
        conn,
        household_id=caller.household_id,
        limit=page.limit,
        offset=page.offset,
        municipality_id=municipality_id,
        label=label,
    )
    return PageOf[Assessment](
        items=[Assessment.model_validate(r) for r in rows], limit=page.limit, offset=page.offset
    )


@router.get(
    "/assessments/{building_id}",
    response_model=Assessment,
    summary="The newest assessment of one building",
    responses=responses(401, 404, 422),
)
async def get_assessment(
    conn: Conn,
    caller: CurrentCaller,
    building_id: Annotated[int, Path(ge=1, le=9_223_372_036_854_775_807)],
) -> Assessment:
    rows = await api_reads.assessments(
        conn, household_id=caller.household_id, building_id=building_id, limit=1
    )
    if not rows:
        raise not_found("assessment of building", building_id)
    return Assessment.model_validate(rows[0])


@router.get(
    "/rankings",
    response_model=PageOf[Assessment],
    summary="Labelled buildings, highest primary energy per m² first (engineers)",
    responses=responses(401, 403, 422),
)
async def rankings(
    conn: Conn,
    _engineer: CurrentEngineer,
    page: Paging,
    municipality_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
) -> PageOf[Assessment]:
    rows = await api_reads.assessments(
        conn,
        household_id=None,
        limit=page.limit,
        offset=page.offset,
        municipality_id=municipality_id,
        ranked=True,
    )
    return PageOf[Assessment](
        items=[Assessment.model_validate(r) for r in rows], limit=page.limit, offset=page.offset
    )
