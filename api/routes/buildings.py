"""Buildings: engineers see all, a household only its own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import Conn, CurrentCaller, Paging
from api.errors import not_found, responses
from api.models import Building, PageOf
from storage import api_reads

router = APIRouter(prefix="/v1/buildings", tags=["buildings"])

Id = Annotated[int, Path(ge=1, le=9_223_372_036_854_775_807)]


@router.get("", response_model=PageOf[Building], responses=responses(401, 422))
async def list_buildings(
    conn: Conn,
    caller: CurrentCaller,
    page: Paging,
    municipality_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
) -> PageOf[Building]:
    rows, total = await api_reads.buildings(
        conn,
        household_id=caller.household_id,
        limit=page.limit,
        offset=page.offset,
        municipality_id=municipality_id,
    )
    return PageOf[Building](
        items=[Building.model_validate(r) for r in rows],
        limit=page.limit,
        offset=page.offset,
        total=total,
    )


@router.get("/{building_id}", response_model=Building, responses=responses(401, 404, 422))
async def get_building(conn: Conn, caller: CurrentCaller, building_id: Id) -> Building:
    rows, _ = await api_reads.buildings(
        conn, household_id=caller.household_id, limit=1, offset=0, building_id=building_id
    )
    if not rows:
        raise not_found("building", building_id)
    return Building.model_validate(rows[0])
