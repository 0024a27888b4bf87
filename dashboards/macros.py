"""Grafana's PostgreSQL query expansion, reproduced so panel SQL can run without Grafana.

Two passes, as in Grafana: the frontend interpolates template variables (``$var``,
``${var}``, ``${var:format}``, ``[[var]]``, and the built-ins ``$__interval``, ``$__from``…),
then the backend of ``grafana-postgresql-datasource`` expands its macros (``$__timeFilter``,
``$__timeGroup``…) — with ``time_bucket`` when the datasource's TimescaleDB option is on.

Notes
-----
Sources: Grafana's ``public/app/plugins/datasource/*sql*/datasource.ts`` (``interpolateVariable``:
multi-value and include-all variables are quoted SQL literals, single values are inserted with
their quotes doubled), ``public/app/features/templating/formatRegistry.ts`` (formats) and
``pkg/tsdb/grafana-postgresql-datasource/macros.go`` (macros). Unlike Grafana, an unknown
variable or macro is an error here: a typo must fail a test, not reach an engineer's screen.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from wattwatch.errors import WattwatchError

DASHBOARD_TZ: Final = "Europe/Paris"


class MacroError(WattwatchError):
    """A query uses an unknown macro or variable, or a macro with wrong arguments."""


@dataclass(frozen=True, slots=True)
class Variable:
    """The current value(s) of one template variable.

    ``multi`` is true for variables declared multi-value or with "All": Grafana quotes their
    values as SQL literals even when one value is selected.
    """

    name: str
    values: tuple[str, ...]
    multi: bool = False

    def __post_init__(self) -> None:
        if not self.values:
            raise MacroError(f"variable {self.name}: needs at least one value")


@dataclass(frozen=True, slots=True)
class QueryContext:
    """What Grafana knows when it runs a panel query: time range, interval, variables."""

    time_from: datetime
    time_to: datetime
    interval: timedelta
    variables: Mapping[str, Variable] = field(default_factory=dict)
    timescaledb: bool = True

    def __post_init__(self) -> None:
        for name, when in (("time_from", self.time_from), ("time_to", self.time_to)):
            if when.tzinfo is None:
                raise MacroError(f"{name}: needs a time zone")
        if self.time_to <= self.time_from:
            raise MacroError("time_to: must be after time_from")
        if self.interval <= timedelta(0):
            raise MacroError("interval: must be positive")


# Grafana's rangeutil.roundInterval: the raw interval [ms] is snapped to a readable step.
_ROUNDING_MS: Final = (
    (10, 1), (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500),
    (1_500, 1_000), (3_500, 2_000), (7_500, 5_000), (12_500, 10_000), (17_500, 15_000),
    (25_000, 20_000), (45_000, 30_000), (90_000, 60_000), (210_000, 120_000),
    (450_000, 300_000), (750_000, 600_000), (1_050_000, 900_000), (1_500_000, 1_200_000),
    (2_700_000, 1_800_000), (5_400_000, 3_600_000), (9_000_000, 7_200_000),
    (16_200_000, 10_800_000), (27_000_000, 21_600_000), (43_200_000, 43_200_000),
    (604_800_000, 86_400_000), (1_814_400_000, 604_800_000), (3_628_800_000, 2_592_000_000),
)  # fmt: skip
_YEAR_MS: Final = 31_536_000_000


def grafana_interval(
    time_from: datetime,
    time_to: datetime,
    *,
    max_data_points: int = 1000,
    min_interval: timedelta | None = None,
) -> timedelta:
    """``$__interval`` as Grafana computes it: range / max data points, rounded, at least the
    panel's minimum interval."""
    raw_ms = (time_to - time_from) / timedelta(milliseconds=1) / max(max_data_points, 1)
    step = next((s for limit, s in _ROUNDING_MS if raw_ms <= limit), _YEAR_MS)
    interval = timedelta(milliseconds=step)
    if min_interval is not None and interval < min_interval:
        interval = min_interval
    return interval


_UNITS: Final = (("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000),
                 ("s", 1_000), ("ms", 1))  # fmt: skip


def interval_text(interval: timedelta) -> str:
    """Grafana's text form of an interval: ``1h``, ``15m``, ``500ms``…"""
    ms = round(interval / timedelta(milliseconds=1))
    for unit, size in _UNITS:
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def parse_interval(text: str) -> timedelta:
    """Grafana's ``gtime.ParseInterval`` for the units dashboards use (ms, s, m, h, d, w)."""
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d|w)", text.strip().strip("'\""))
    if match is None:
        raise MacroError(f"invalid interval {text!r} (expected e.g. 1h, 15m, 1d)")
    size = dict(_UNITS)[match[2]]
    return timedelta(milliseconds=int(match[1]) * size)


def rfc3339(when: datetime) -> str:
    """Go's ``time.RFC3339Nano`` of the UTC time, as Grafana writes time literals."""
    utc = when.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += "." + f"{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


# --- pass 1: template variables (Grafana's frontend) ----------------------------------------

# Grafana's variableRegex: $var, [[var:fmt]], ${var.field:fmt}.
_VARIABLE: Final = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}"
)


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _format(var: Variable, fmt: str | None) -> str:
    values = var.values
    if fmt is None:  # the SQL datasources' interpolateVariable
        if var.multi or len(values) > 1:
            return ",".join(_quote_literal(v) for v in values)
        return values[0].replace("'", "''")
    formats = {
        "csv": lambda: ",".join(values),
        "raw": lambda: ",".join(values),
        "text": lambda: " + ".join(values),
        "pipe": lambda: "|".join(values),
        "sqlstring": lambda: ",".join(_quote_literal(v) for v in values),
        "singlequote": lambda: ",".join("'" + v.replace("'", "\\'") + "'" for v in values),
        "doublequote": lambda: ",".join('"' + v.replace('"', '\\"') + '"' for v in values),
        "json": lambda: json.dumps(list(values) if var.multi else values[0]),
        "regex": lambda: (
            "(" + "|".join(re.escape(v) for v in values) + ")" if len(values) > 1
            else re.escape(values[0])
        ),
    }  # fmt: skip
    if fmt not in formats:
        raise MacroError(f"variable {var.name}: unknown format {fmt!r}")
    return formats[fmt]()


def _builtin(name: str, fmt: str | None, ctx: QueryContext) -> str | None:
    range_ = ctx.time_to - ctx.time_from
    if name in ("__from", "__to"):
        when = ctx.time_from if name == "__from" else ctx.time_to
        if fmt in (None, "date:ms"):
            return str(round(when.timestamp() * 1000))
        if fmt == "date:seconds":
            return str(round(when.timestamp()))
        if fmt in ("date", "date:iso"):
            return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
                f"{when.microsecond // 1000:03d}Z"
            )
        raise MacroError(f"${name}: unknown format {fmt!r}")
    simple = {
        "__interval": interval_text(ctx.interval),
        "__interval_ms": str(round(ctx.interval / timedelta(milliseconds=1))),
        "__range": interval_text(range_),
        "__range_s": str(round(range_.total_seconds())),
        "__range_ms": str(round(range_ / timedelta(milliseconds=1))),
        "__timezone": DASHBOARD_TZ,
    }
    return simple.get(name)


def interpolate_variables(sql: str, ctx: QueryContext) -> str:
    """Replace template variables as Grafana's frontend does; macros are left for pass 2."""

    def replace(match: re.Match[str]) -> str:
        name = match[1] or match[2] or match[4]
        fmt = match[3] or match[6]
        if name in ctx.variables:
            if match[5]:
                raise MacroError(f"variable {name}: field access .{match[5]} is not supported")
            return _format(ctx.variables[name], fmt)
        builtin = _builtin(name, fmt, ctx)
        if builtin is not None:
            return builtin
        if match[1] and match.end() < len(sql) and sql[match.end()] == "(":
            return match[0]  # a macro call such as $__timeFilter(ts): the backend's
        raise MacroError(f"unknown template variable ${name}")

    return _VARIABLE.sub(replace, sql)


# --- pass 2: macros (Grafana's backend) -----------------------------------------------------

_MACRO_START: Final = re.compile(r"\$(__\w+)\(")


def _split_args(text: str) -> list[str]:
    args: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "," and depth == 0:
            args.append("".join(current).strip())
            current = []
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current.append(char)
    args.append("".join(current).strip())
    return [] if args == [""] else args


def _macro(name: str, args: Sequence[str], ctx: QueryContext) -> str:  # noqa: PLR0911 - one per macro
    lo, hi = rfc3339(ctx.time_from), rfc3339(ctx.time_to)

    def need(n: int, what: str) -> None:
        if len(args) < n:
            raise MacroError(f"macro ${name} needs {what}")

    if name == "__time":
        need(1, "a time column")
        return f'{args[0]} AS "time"'
    if name == "__timeEpoch":
        need(1, "a time column")
        return f'extract(epoch from {args[0]}) as "time"'
    if name == "__timeFilter":
        need(1, "a time column")
        return f"{args[0]} BETWEEN '{lo}' AND '{hi}'"
    if name == "__timeFrom":
        return f"'{lo}'"
    if name == "__timeTo":
        return f"'{hi}'"
    if name in ("__timeGroup", "__timeGroupAlias"):
        need(2, "time column and interval and optional fill value")
        seconds = parse_interval(args[1]).total_seconds()
        if ctx.timescaledb:
            expr = f"time_bucket('{seconds:.0f}s',{args[0]})"
        else:
            expr = f"floor(extract(epoch from {args[0]})/{seconds:g})*{seconds:g}"
        return expr + (' AS "time"' if name == "__timeGroupAlias" else "")
    if name == "__unixEpochFilter":
        need(1, "a time column")
        return (
            f"{args[0]} >= {int(ctx.time_from.timestamp())} AND "
            f"{args[0]} <= {int(ctx.time_to.timestamp())}"
        )
    if name in ("__unixEpochGroup", "__unixEpochGroupAlias"):
        need(2, "time column and interval")
        seconds = parse_interval(args[1]).total_seconds()
        expr = f"floor(({args[0]})/{seconds:g})*{seconds:g}"
        return expr + (' AS "time"' if name == "__unixEpochGroupAlias" else "")
    raise MacroError(f"undefined macro: ${name}")


def expand_macros(sql: str, ctx: QueryContext) -> str:
    """Expand ``$__macro(args)`` calls as the PostgreSQL datasource's backend does."""
    out: list[str] = []
    pos = 0
    while (match := _MACRO_START.search(sql, pos)) is not None:
        depth, end = 1, match.end()
        while end < len(sql) and depth:
            depth += {"(": 1, ")": -1}.get(sql[end], 0)
            end += 1
        if depth:
            raise MacroError(f"macro ${match[1]}: unbalanced parentheses")
        out.append(sql[pos : match.start()])
        out.append(_macro(match[1], _split_args(sql[match.end() : end - 1]), ctx))
        pos = end
    out.append(sql[pos:])
    return "".join(out)


def expand(sql: str, ctx: QueryContext) -> str:
    """The SQL Grafana would send to PostgreSQL for this panel query."""
    return expand_macros(interpolate_variables(sql, ctx), ctx)
