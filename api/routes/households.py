"""Volunteer households: enrolment (by an engineer or with an invitation), consents, device
connection, broker revocation and erasure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from api import devices
from api.deps import AppState, Conn, CurrentCaller, CurrentEngineer, OptionalCaller, Paging, State
from api.errors import ApiError, not_found, responses
from api.models import (
    Connection,
    Consents,
    DeviceStatus,
    Enrolled,
    Erased,
    HomeUpdate,
    Household,
    Invitation,
    Meter,
    NewHousehold,
    PageOf,
)
from storage import api_reads, tokens
from storage import households as store
from storage.tokens import Caller

router = APIRouter(prefix="/v1/households", tags=["households"])
invitations_router = APIRouter(prefix="/v1/invitations", tags=["households"])

Id = Annotated[int, Path(ge=1, le=9_223_372_036_854_775_807)]
INVITATION_VALIDITY = timedelta(days=14)
CONNECTED_WITHIN = timedelta(hours=2)


def to_model(row: store.HouseholdRow) -> Household:
    return Household(
        id=row.id,
        building_id=row.building_id,
        display_name=row.display_name,
        municipality_id=row.municipality_id,
        floor_area_m2=row.floor_area_m2,
        year_built=row.year_built,
        heating_carrier=row.heating_carrier,
        occupants=row.occupants,
        consents=Consents(daily_totals=row.consent_daily, load_curve=row.consent_load_curve),
        consent_updated_at=row.consent_updated_at,
        mqtt_username=row.mqtt_username,
        created_at=row.created_at,
    )


def connection_of(state: AppState, meter: store.NewMeter, username: str | None) -> Connection:
    ins = devices.instructions(
        meter, host=state.broker.device_host, port=state.broker.device_port, username=username
    )
    return Connection(
        host=ins.host,
        port=ins.port,
        username=ins.username,
        client_id=ins.client_id,
        topic=ins.topic,
        steps=ins.steps,
        example_payload=ins.example_payload,
    )


async def visible_household(conn: Conn, caller: Caller, household_id: int) -> store.HouseholdRow:
    row = await store.household(conn, household_id, caller_household=caller.household_id)
    if row is None:
        raise not_found("household", household_id)
    return row


@invitations_router.post(
    "",
    response_model=Invitation,
    status_code=201,
    summary="Create a single-use invitation code for a household (engineers)",
    responses=responses(401, 403),
)
async def create_invitation(conn: Conn, engineer: CurrentEngineer) -> Invitation:
    code = await tokens.create_invitation(
        conn, created_by=engineer.label, valid_for=INVITATION_VALIDITY
    )
    return Invitation(code=code, expires_at=datetime.now(UTC) + INVITATION_VALIDITY)


def onboarding_limit(request: Request, state: State) -> None:
    """429 past the per-address budget; checked before the body is even validated."""
    client = request.client.host if request.client else "?"
    wait = state.onboarding_limiter.allow(client)
    if wait is not None:
        raise ApiError(
            429,
            "too many enrolments; try again later",
            headers={"Retry-After": str(int(wait) + 1)},
        )


@router.post(
    "",
    response_model=Enrolled,
    status_code=201,
    summary="Enrol a household: its building, a meter, a token and broker credentials",
    description="With an engineer token, or without a token but with an `invitation_code`. "
    "The token and the broker password are shown only in this answer.",
    responses=responses(401, 403, 409, 413, 422, 429),
)
async def enrol(
    _limited: Annotated[None, Depends(onboarding_limit)],
    conn: Conn,
    state: State,
    caller: OptionalCaller,
    body: NewHousehold,
) -> Enrolled:
    if caller is not None and caller.engineer is None:
        raise ApiError(403, "a household cannot enrol another household")
    if body.device_format == "linky_tic" and body.linky_id is None:
        raise ApiError(422, "linky_id: required for linky_tic (12 digits)", field="linky_id")
    if body.municipality_id is not None and not await store.municipality_exists(
        conn, body.municipality_id
    ):
        raise ApiError(422, "municipality_id: no such municipality", field="municipality_id")
    async with conn.transaction():
        if caller is None:
            if body.invitation_code is None:
                raise ApiError(
                    401,
                    "an engineer token or an invitation_code is required",
                    field="invitation_code",
                )
            if not await tokens.use_invitation(conn, body.invitation_code):
                raise ApiError(
                    403, "invitation_code: unknown, used or expired", field="invitation_code"
                )
        household_id = await store.create_household(
            conn,
            display_name=body.display_name,
            municipality_id=body.municipality_id,
            floor_area_m2=body.floor_area_m2,
            year_built=body.year_built,
            heating_carrier=body.heating_carrier,
            occupants=body.occupants,
            consent_daily=body.consents.daily_totals,
            consent_load_curve=body.consents.load_curve,
            created_by=caller.label if caller else "invitation",
        )
        meter = devices.plan_meter(
            household_id, body.device_format, linky_id=body.linky_id, channel=body.channel
        )
        if await store.meter_key_taken(conn, meter):
            raise ApiError(409, "linky_id: this meter is already enrolled", field="linky_id")
        meter_id = await store.add_meter(conn, household_id, meter)
        token = await tokens.create_household_token(conn, household_id)
        username = f"hh-{household_id}" if state.broker.enabled else None
        password = None
        if username is not None:
            await store.set_mqtt_username(conn, household_id, username)
            # Inside the transaction: a broker failure rolls the enrolment back.
            password = await state.broker.create(username, devices.grant_for(meter))
    row = await store.household(conn, household_id, caller_household=None)
    meter_row = await api_reads.meter(conn, meter_id, household_id=None)
    assert row is not None
    assert meter_row is not None
    return Enrolled(
        household=to_model(row),
        meter=Meter.model_validate(meter_row),
        token=token,
        mqtt_password=password,
        connection=connection_of(state, meter, username),
    )


@router.get("", response_model=PageOf[Household], responses=responses(401, 403, 422))
async def list_households(
    conn: Conn, _engineer: CurrentEngineer, page: Paging
) -> PageOf[Household]:
    rows = await store.list_households(conn, limit=page.limit, offset=page.offset)
    return PageOf[Household](
        items=[to_model(r) for r in rows], limit=page.limit, offset=page.offset
    )


@router.get("/me", response_model=Household, responses=responses(401, 404))
async def me(conn: Conn, caller: CurrentCaller) -> Household:
    if caller.household_id is None:
        raise not_found("household", "me")
    return to_model(await visible_household(conn, caller, caller.household_id))


@router.get("/{household_id}", response_model=Household, responses=responses(401, 404, 422))
async def get_household(conn: Conn, caller: CurrentCaller, household_id: Id) -> Household:
    return to_model(await visible_household(conn, caller, household_id))


async def change_consents(
    conn: Conn, caller: Caller, household_id: int, consents: Consents
) -> store.HouseholdRow:
    """Only the household itself decides; a withdrawn load-curve consent deletes the curve."""
    await visible_household(conn, caller, household_id)
    if caller.household_id != household_id:
        raise ApiError(403, "only the household itself can change its consents")
    async with conn.transaction():
        await store.set_consents(
            conn, household_id, daily=consents.daily_totals, load_curve=consents.load_curve
        )
        if not consents.load_curve:
            await store.purge_load_curves(conn, household_id=household_id)
    return await visible_household(conn, caller, household_id)


@router.put(
    "/{household_id}/consents",
    response_model=Household,
    summary="Give or withdraw consent per purpose (the household itself)",
    description="Withdrawing `load_curve` deletes the household's hourly and raw readings "
    "before today; only daily totals are kept from then on.",
    responses=responses(401, 403, 404, 413, 422),
)
async def put_consents(
    conn: Conn, caller: CurrentCaller, household_id: Id, body: Consents
) -> Household:
    return to_model(await change_consents(conn, caller, household_id, body))


@router.patch(
    "/{household_id}",
    response_model=Household,
    summary="Correct the home's details (the household itself or an engineer)",
    description="Floor area, year built, heating and occupants feed the insulation estimate "
    "from the next daily run. Only the fields sent change; `occupants: null` withdraws it.",
    responses=responses(401, 403, 404, 413, 422),
)
async def patch_home(
    conn: Conn, caller: CurrentCaller, household_id: Id, body: HomeUpdate
) -> Household:
    await visible_household(conn, caller, household_id)
    changes = body.model_dump(include=body.model_fields_set)
    for name in ("floor_area_m2", "year_built", "heating_carrier"):
        if name in changes and changes[name] is None:
            raise ApiError(422, f"{name}: may be changed, not removed", field=name)
    await store.update_home(conn, household_id, changes)
    return to_model(await visible_household(conn, caller, household_id))


async def device_statuses(
    conn: Conn, state: AppState, row: store.HouseholdRow
) -> list[DeviceStatus]:
    planned = await store.household_meter_topics(conn, row.id)
    meters = await api_reads.meters(conn, household_id=row.id, limit=100)
    now = datetime.now(UTC)
    out = []
    for m, plan in zip(meters, planned, strict=False):
        out.append(
            DeviceStatus(
                meter_id=m.id,
                device_format=m.device_format,
                connected=m.last_reading_at is not None
                and now - m.last_reading_at <= CONNECTED_WITHIN,
                last_reading_at=m.last_reading_at,
                connection=connection_of(state, plan, row.mqtt_username),
            )
        )
    return out


@router.get(
    "/{household_id}/devices",
    response_model=list[DeviceStatus],
    summary="Each device's connection status and how to connect it",
    responses=responses(401, 404, 422),
)
async def get_devices(
    conn: Conn, state: State, caller: CurrentCaller, household_id: Id
) -> list[DeviceStatus]:
    return await device_statuses(conn, state, await visible_household(conn, caller, household_id))


@router.post(
    "/{household_id}/broker/revoke",
    status_code=204,
    summary="Disable the household's broker account at once (its devices are disconnected)",
    responses=responses(401, 404, 422),
)
async def revoke_broker(conn: Conn, state: State, caller: CurrentCaller, household_id: Id) -> None:
    row = await visible_household(conn, caller, household_id)
    if row.mqtt_username:
        await state.broker.disable(row.mqtt_username)


@router.delete(
    "/{household_id}",
    response_model=Erased,
    summary="Erase the household: credentials, meters, readings and results (GDPR)",
    responses=responses(401, 404, 422),
)
async def erase(conn: Conn, state: State, caller: CurrentCaller, household_id: Id) -> Erased:
    row = await visible_household(conn, caller, household_id)
    planned = await store.household_meter_topics(conn, household_id)
    prefixes = [p for m in planned for p in devices.topic_prefixes(m)]
    if row.mqtt_username:
        await state.broker.delete(row.mqtt_username)  # first: no new readings arrive
    async with conn.transaction():
        removed = await store.erase_household(conn, household_id, topic_prefixes=prefixes)
    state.callers.forget_household(household_id)  # its tokens are gone: 401 from now on
    return Erased(
        household_id=household_id,
        removed=removed,
        broker_account_removed=bool(row.mqtt_username) and state.broker.enabled,
    )
