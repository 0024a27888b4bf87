"""Grafana's PostgreSQL macro and template-variable expansion, case by case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboards.macros import (
    MacroError,
    QueryContext,
    Variable,
    expand,
    grafana_interval,
    interval_text,
    parse_interval,
    rfc3339,
)

FROM = datetime(2025, 1, 6, 0, 0, tzinfo=UTC)
TO = datetime(2025, 1, 13, 0, 0, 30, 500000, tzinfo=UTC)


def ctx(**variables: Variable) -> QueryContext:
    return QueryContext(FROM, TO, timedelta(hours=1), variables)


def test_time_filter_and_bounds_are_rfc3339_utc() -> None:
    assert expand("WHERE $__timeFilter(r.ts)", ctx()) == (
        "WHERE r.ts BETWEEN '2025-01-06T00:00:00Z' AND '2025-01-13T00:00:30.5Z'"
    )
    assert expand("$__timeFrom() $__timeTo()", ctx()) == (
        "'2025-01-06T00:00:00Z' '2025-01-13T00:00:30.5Z'"
    )
    paris = FROM.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
    assert rfc3339(paris) == "2025-01-06T00:00:00Z"


def test_time_group_uses_time_bucket_with_timescaledb_and_epoch_math_without() -> None:
    assert expand("$__timeGroupAlias(ts, $__interval)", ctx()) == (
        "time_bucket('3600s',ts) AS \"time\""
    )
    assert expand("$__timeGroup(ts, '5m', 0)", ctx()) == "time_bucket('300s',ts)"
    plain = QueryContext(FROM, TO, timedelta(minutes=1), timescaledb=False)
    assert expand("$__timeGroup(ts, 1h)", plain) == "floor(extract(epoch from ts)/3600)*3600"


def test_other_macros() -> None:
    assert expand("$__time(t)", ctx()) == 't AS "time"'
    assert expand("$__timeEpoch(t)", ctx()) == 'extract(epoch from t) as "time"'
    assert expand("$__unixEpochFilter(e)", ctx()) == "e >= 1736121600 AND e <= 1736726430"
    assert expand("$__unixEpochGroupAlias(e, 1h)", ctx()) == 'floor((e)/3600)*3600 AS "time"'
    # Arguments may hold parentheses (coalesce(a, b)) and sit next to other text.
    assert expand("x $__timeFilter(coalesce(a, b)) y", ctx()).startswith(
        "x coalesce(a, b) BETWEEN '2025"
    )


def test_interval_builtins() -> None:
    c = QueryContext(FROM, TO, timedelta(minutes=15))
    assert expand("$__interval $__interval_ms ${__interval}", c) == "15m 900000 15m"
    assert expand("$__from $__to", c) == "1736121600000 1736726430500"
    assert expand("${__from:date:seconds}", c) == "1736121600"
    assert expand("$__timezone", c) == "Europe/Paris"


def test_single_value_variables_are_inserted_with_quotes_doubled() -> None:
    c = ctx(building=Variable("building", ("42",)), name=Variable("name", ("O'Brien",)))
    assert expand("id = $building AND n = '$name'", c) == "id = 42 AND n = 'O''Brien'"
    assert expand("[[building]] ${building}", c) == "42 42"


def test_multi_value_variables_are_quoted_literals_and_formats_apply() -> None:
    m = Variable("m", ("1", "2", "it's"), multi=True)
    one = Variable("one", ("7",), multi=True)  # multi with one selection: still quoted
    c = ctx(m=m, one=one)
    assert expand("IN ($m)", c) == "IN ('1','2','it''s')"
    assert expand("IN ($one)", c) == "IN ('7')"
    assert expand("${m:csv}", c) == "1,2,it's"
    assert expand("${m:sqlstring}", c) == "'1','2','it''s'"
    assert expand("${m:singlequote}", c) == "'1','2','it\\'s'"
    assert expand("${m:doublequote}", c) == '"1","2","it\'s"'
    assert expand("${m:pipe}", c) == "1|2|it's"
    assert expand("${m:json}", c) == '["1", "2", "it\'s"]'
    assert expand("[[m:csv]]", c) == "1,2,it's"


def test_variables_expand_inside_macro_arguments() -> None:
    c = ctx(col=Variable("col", ("r.ts",)))
    assert expand("$__timeFilter($col)", c).startswith("r.ts BETWEEN")


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("$__nope(ts)", "undefined macro"),
        ("$unknown", "unknown template variable"),
        ("$__timeGroup(ts)", "needs time column and interval"),
        ("$__timeGroup(ts, fortnight)", "invalid interval"),
        ("$__timeFilter(ts", "unbalanced"),
        ("${m:base64}", "unknown format"),
    ],
)
def test_errors_name_the_problem(sql: str, message: str) -> None:
    with pytest.raises(MacroError, match=message):
        expand(sql, ctx(m=Variable("m", ("a",))))


def test_grafana_interval_rounding() -> None:
    week = timedelta(days=7)
    # 7 d / 1000 points = 604.8 s → Grafana rounds to 10 min.
    assert grafana_interval(FROM, FROM + week) == timedelta(minutes=10)
    assert grafana_interval(FROM, FROM + week, min_interval=timedelta(hours=1)) == timedelta(
        hours=1
    )
    assert grafana_interval(FROM, FROM + timedelta(hours=1)) == timedelta(seconds=5)
    assert grafana_interval(FROM, FROM + timedelta(days=365)) == timedelta(hours=12)


def test_interval_text_round_trips() -> None:
    for text in ("500ms", "1s", "15m", "1h", "2d", "1w"):
        assert interval_text(parse_interval(text)) == text
    assert interval_text(timedelta(minutes=90)) == "90m"


def test_context_refuses_naive_or_inverted_ranges() -> None:
    with pytest.raises(MacroError, match="time zone"):
        QueryContext(FROM.replace(tzinfo=None), TO, timedelta(hours=1))
    with pytest.raises(MacroError, match="after"):
        QueryContext(TO, FROM, timedelta(hours=1))
