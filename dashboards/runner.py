"""Run a dashboard's queries against a database the way Grafana would: resolve the template
variables (with their own SQL), compute ``$__interval``, expand, execute. Tests and the
preview both use it, so what they check is what Grafana will send."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from dashboards.build import PanelQuery, panel_queries
from dashboards.macros import (
    QueryContext,
    Variable,
    expand,
    grafana_interval,
    parse_interval,
)
from storage.grafana import QueryResult, run_panel_sql

ALL = "$__all"


@dataclass(frozen=True, slots=True)
class PanelRun:
    """One executed query: what ran, what came back and how long it took [s]."""

    query: PanelQuery
    sql: str
    result: QueryResult
    seconds: float


def _context(
    time_from: datetime, time_to: datetime, variables: Mapping[str, Variable], min_interval: str
) -> QueryContext:
    interval = grafana_interval(time_from, time_to, min_interval=parse_interval(min_interval))
    return QueryContext(time_from, time_to, interval, variables)


def resolve_variables(
    conn: psycopg.Connection,
    data: Mapping[str, Any],
    *,
    time_from: datetime,
    time_to: datetime,
    choose: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Variable]:
    """Current values of the dashboard's variables: ``choose`` first, else "All" for
    multi-value variables, else the saved or first option. Query variables run their SQL."""
    choose = choose or {}
    resolved: dict[str, Variable] = {}
    for var in data.get("templating", {}).get("list", []):
        name = str(var["name"])
        multi = bool(var.get("multi") or var.get("includeAll"))
        if var.get("type") == "custom":
            options = [v.strip() for v in str(var["query"]).split(",") if v.strip()]
        elif var.get("type") == "query":
            ctx = _context(time_from, time_to, resolved, "1s")
            result = run_panel_sql(conn, expand(str(var["query"]), ctx))
            names = [c[0] for c in result.columns]
            col = names.index("__value") if "__value" in names else 0
            options = [str(row[col]) for row in result.rows]
        else:
            continue
        if name in choose:
            values = list(choose[name])
        else:
            current = var.get("current", {}).get("value")
            wanted = current if isinstance(current, list) else [current]
            if ALL in wanted or not options:
                values = options if multi else options[:1]
            else:
                picked = [str(v) for v in wanted if str(v) in options]
                values = picked or options[:1]
        resolved[name] = Variable(name, tuple(values) or ("",), multi=multi)
    return resolved


def run_dashboard(
    conn: psycopg.Connection,
    data: Mapping[str, Any],
    *,
    time_from: datetime,
    time_to: datetime,
    choose: Mapping[str, Sequence[str]] | None = None,
) -> Iterator[PanelRun]:
    """Every query of the dashboard (variables, annotations, panels), executed in order."""
    variables = resolve_variables(conn, data, time_from=time_from, time_to=time_to, choose=choose)
    for query in panel_queries(data):
        ctx = _context(time_from, time_to, variables, query.min_interval or "1s")
        text = expand(query.raw_sql, ctx)
        t0 = time.perf_counter()
        result = run_panel_sql(conn, text)
        yield PanelRun(query, text, result, time.perf_counter() - t0)
