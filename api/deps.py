"""Dependencies shared by the routes, as ``Annotated`` aliases (``Conn``, ``CurrentCaller``…)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Final

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from api.broker import BrokerAccounts
from api.errors import ApiError
from api.ratelimit import RateLimiter
from storage.tokens import Caller, caller_of, digest
from wattwatch.settings import Settings

COOKIE = "ww_token"

CALLER_TTL_S: Final = 5.0


class CallerCache:
    """Valid tokens' owners for ``ttl_s`` seconds, by token digest, in this process.

    Saves the token query on most requests. The price: a token revoked elsewhere (``wattwatch
    token revoke``, another API worker) keeps working here for at most ``ttl_s`` seconds after
    this process last looked it up. What this process revokes itself (erasing a household) it
    forgets at once. Unknown and revoked tokens are never cached: each is looked up every time.
    """

    def __init__(
        self,
        *,
        ttl_s: float = CALLER_TTL_S,
        max_size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_size = max_size
        self._clock = clock
        self._callers: dict[bytes, tuple[float, Caller]] = {}

    def get(self, key: bytes) -> Caller | None:
        hit = self._callers.get(key)
        if hit is None:
            return None
        if hit[0] <= self._clock():
            del self._callers[key]
            return None
        return hit[1]

    def put(self, key: bytes, caller: Caller) -> None:
        if len(self._callers) >= self.max_size:
            self._callers.clear()  # many live tokens: a cold start is cheaper than an LRU
        self._callers[key] = (self._clock() + self.ttl_s, caller)

    def forget_household(self, household_id: int) -> None:
        """Drop the household's tokens (erased or revoked by this process)."""
        gone = [k for k, (_, c) in self._callers.items() if c.household_id == household_id]
        for key in gone:
            del self._callers[key]


@dataclass(slots=True)
class AppState:
    """What the lifespan builds once and the routes share."""

    settings: Settings
    pool: AsyncConnectionPool[AsyncConnection[Any]]
    broker: BrokerAccounts
    onboarding_limiter: RateLimiter
    callers: CallerCache = field(default_factory=CallerCache)


# Dependencies are ``async def`` even when they do not wait: FastAPI runs a plain ``def``
# dependency in its thread pool, a thread hop per request.
async def get_state(request: Request) -> AppState:
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
    state: State,
    conn: Conn,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller | None:
    token = credentials.credentials if credentials else request.cookies.get(COOKIE)
    if not token:
        return None
    key = digest(token)
    caller = state.callers.get(key)
    if caller is None:
        caller = await caller_of(conn, token)
        if caller is None:
            raise ApiError(401, "invalid or revoked token", headers={"WWW-Authenticate": "Bearer"})
        state.callers.put(key, caller)
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


async def get_page(
    limit: Annotated[int, Query(ge=1, le=500, description="Items per page.")] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip.")] = 0,
) -> Page:
    return Page(limit, offset)


Paging = Annotated[Page, Depends(get_page)]
