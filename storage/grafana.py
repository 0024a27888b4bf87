"""What Grafana needs of the database: the read-only role's password and running panel SQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

READER_ROLE: Final = "wattwatch_reader"


def set_reader_password(conn: psycopg.Connection, password: str) -> None:
    """Give the read-only role (migration 0004) its password; the caller commits.

    Needs a role allowed to alter roles (the migrating superuser or a CREATEROLE owner).
    """
    conn.execute(
        sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(
            sql.Identifier(READER_ROLE), sql.Literal(password)
        )
    )


def reader_url(url: str, password: str) -> str:
    """The same database URL, as the read-only role."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{READER_ROLE}:{quote(password, safe='')}@{host}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Columns (name, PostgreSQL type name) and rows of one panel query."""

    columns: list[tuple[str, str]]
    rows: list[tuple[Any, ...]]


def run_panel_sql(conn: psycopg.Connection, query: str) -> QueryResult:
    """Run one expanded panel query as Grafana would (a dashboard's SQL is the product here:
    it is written in ``dashboards/`` and Grafana sends it verbatim)."""
    with conn.cursor() as cur:
        cur.execute(query.encode())
        desc = cur.description or []
        names = []
        for col in desc:
            info = conn.adapters.types.get(col.type_code)
            names.append((col.name, info.name if info is not None else str(col.type_code)))
        rows = cur.fetchall() if desc else []
    return QueryResult(names, rows)
