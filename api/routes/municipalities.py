"""Municipalities with their aggregates: engineers see everything, the public only figures
that cover enough households (design.md §5)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import Conn, CurrentEngineer, Paging, State
from api.errors import not_found, responses
from api.models import Municipality, PageOf, PublicMunicipality
from storage import api_reads

router = APIRouter(prefix="/v1/municipalities", tags=["municipalities"])
public_router = APIRouter(prefix="/v1/public", tags=["public"])

Id = Annotated[int, Path(ge=1, le=2_147_483_647)]


@router.get("", response_model=PageOf[Municipality], responses=responses(401, 403, 422))
async def list_municipalities(
    conn: Conn, _engineer: CurrentEngineer, page: Paging
) -> PageOf[Municipality]:
    rows = await api_reads.municipalities(conn, limit=page.limit, offset=page.offset)
    total = await api_reads.count_municipalities(conn)
    return PageOf[Municipality](
        items=[Municipality.model_validate(r) for r in rows],
        limit=page.limit,
        offset=page.offset,
        total=total,
    )


@router.get(
    "/{municipality_id}", response_model=Municipality, responses=responses(401, 403, 404, 422)
)
async def get_municipality(
    conn: Conn, _engineer: CurrentEngineer, municipality_id: Id
) -> Municipality:
    rows = await api_reads.municipalities(conn, limit=1, offset=0, municipality_id=municipality_id)
    if not rows:
        raise not_found("municipality", municipality_id)
    return Municipality.model_validate(rows[0])


@public_router.get(
    "/municipalities",
    response_model=PageOf[PublicMunicipality],
    summary="Household figures per municipality (no token; small groups withheld)",
    responses=responses(422),
)
async def public_municipalities(
    conn: Conn, state: State, page: Paging
) -> PageOf[PublicMunicipality]:
    k = state.settings.api_min_group_households
    rows = await api_reads.public_municipalities(conn, limit=page.limit, offset=page.offset)
    items = []
    for r in rows:
        shown = r.households >= k
        items.append(
            PublicMunicipality(
                id=r.id,
                name=r.name,
                withheld=not shown,
                min_households=k,
                households=r.households if shown else None,
                daily_kwh_per_household=r.daily_kwh_per_household if shown else None,
                labels=r.labels if shown else None,
            )
        )
    return PageOf[PublicMunicipality](items=items, limit=page.limit, offset=page.offset)
