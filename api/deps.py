"""Dependencies shared by the routes, as ``Annotated`` aliases (``Conn``, ``CurrentCaller``…)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from api.broker import BrokerAccounts
from api.errors import ApiError
from api.ratelimit import RateLimiter
from storage.tokens import Caller, caller_of
from wattwatch.settings import Settings

COOKIE = "ww_token"


@dataclass(slots=True)
class AppState:
    """What the lifespan builds once and the routes share."""

    settings: Settings
    pool: AsyncConnectionPool[AsyncConnection[Any]]
    broker: BrokerAccounts
    onboarding_limiter: RateLimiter


def get_state(request: Request) -> AppState:
    state = request.app.state.wattwatch
    assert isinstance(state, AppState)
    return state


State = Annotated[AppState, Depends(get_state)]


async def get_conn(state: State) -> AsyncIterator[AsyncConnection[Any]]:
    async with state.pool.connection() as conn:
        yield conn


Conn = Annotated[AsyncConnection[Any], Depends(get_conn)]

_bearer = HTTPBearer(
    auto_error=False,
    description="An engineer token (`wattwatch token create --engineer NAME`) or a household "
    "token (given once at enrolment).",
)


async def get_optional_caller(
    request: Request,
    conn: Conn,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller | None:
    token = credentials.credentials if credentials else request.cookies.get(COOKIE)
    if not token:
        return None
    caller = await caller_of(conn, token)
    if caller is None:
        raise ApiError(401, "invalid or revoked token", headers={"WWW-Authenticate": "Bearer"})
    return caller


OptionalCaller = Annotated[Caller | None, Depends(get_optional_caller)]


async def get_caller(caller: OptionalCaller) -> Caller:
    if caller is None:
        raise ApiError(
            401,
            "a token is required (Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return caller


CurrentCaller = Annotated[Caller, Depends(get_caller)]


async def get_engineer(caller: CurrentCaller) -> Caller:
    if caller.engineer is None:
        raise ApiError(403, "engineers only")
    return caller


CurrentEngineer = Annotated[Caller, Depends(get_engineer)]


@dataclass(frozen=True, slots=True)
class Page:
    limit: int
    offset: int


def get_page(
    limit: Annotated[int, Query(ge=1, le=500, description="Items per page.")] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip.")] = 0,
) -> Page:
    return Page(limit, offset)


Paging = Annotated[Page, Depends(get_page)]
