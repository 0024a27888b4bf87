"""API tokens and invitation codes: random secrets shown once, stored as sha256 digests.

A sha256 of 32 random bytes needs no slow hash: it cannot be brute-forced, and a digest
lookup is one index probe per request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from psycopg import AsyncConnection

ENGINEER_PREFIX: Final = "wwe_"
HOUSEHOLD_PREFIX: Final = "wwh_"
INVITATION_PREFIX: Final = "wwi_"


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a token belongs to: an engineer (``engineer``) or a household (``household_id``)."""

    token_id: int
    engineer: str | None
    household_id: int | None

    @property
    def label(self) -> str:
        return f"engineer:{self.engineer}" if self.engineer else f"household:{self.household_id}"


async def create_engineer_token(conn: AsyncConnection[Any], engineer: str) -> str:
    """Create the engineer if new and a token for them; returns the token (shown once)."""
    cur = await conn.execute(
        "INSERT INTO engineers (name) VALUES (%s)"
        " ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
        (engineer,),
    )
    row = await cur.fetchone()
    assert row is not None
    token = new_secret(ENGINEER_PREFIX)
    await conn.execute(
        "INSERT INTO api_tokens (token_sha256, engineer_id) VALUES (%s, %s)",
        (digest(token), row[0]),
    )
    return token


async def create_household_token(conn: AsyncConnection[Any], household_id: int) -> str:
    token = new_secret(HOUSEHOLD_PREFIX)
    await conn.execute(
        "INSERT INTO api_tokens (token_sha256, household_id) VALUES (%s, %s)",
        (digest(token), household_id),
    )
    return token


async def revoke_engineer_tokens(conn: AsyncConnection[Any], engineer: str) -> int:
    cur = await conn.execute(
        "UPDATE api_tokens SET revoked_at = now() FROM engineers e"
        " WHERE e.id = api_tokens.engineer_id AND e.name = %s AND revoked_at IS NULL",
        (engineer,),
    )
    return max(cur.rowcount, 0)


async def caller_of(conn: AsyncConnection[Any], token: str) -> Caller | None:
    """The owner of a valid (not revoked) token, or None."""
    cur = await conn.execute(
        "SELECT t.id, e.name, t.household_id FROM api_tokens t"
        " LEFT JOIN engineers e ON e.id = t.engineer_id"
        " WHERE t.token_sha256 = %s AND t.revoked_at IS NULL",
        (digest(token),),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return Caller(token_id=int(row[0]), engineer=row[1], household_id=row[2])


async def create_invitation(
    conn: AsyncConnection[Any], *, created_by: str, valid_for: timedelta
) -> str:
    code = new_secret(INVITATION_PREFIX)
    await conn.execute(
        "INSERT INTO invitations (code_sha256, created_by, expires_at) VALUES (%s, %s, now() + %s)",
        (digest(code), created_by, valid_for),
    )
    return code


async def use_invitation(conn: AsyncConnection[Any], code: str) -> bool:
    """Consume an unused, unexpired invitation (in the caller's transaction)."""
    cur = await conn.execute(
        "UPDATE invitations SET used_at = now()"
        " WHERE code_sha256 = %s AND used_at IS NULL AND expires_at > now()",
        (digest(code),),
    )
    return cur.rowcount == 1
