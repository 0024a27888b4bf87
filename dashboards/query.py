"""A PostgreSQL (TimescaleDB) query type for grafana-foundation-sdk, which ships none.

Built on the SDK's custom-query pattern: a ``Dataquery`` variant with its JSON form, a builder,
and a registration so the SDK can read dashboards back (``register_postgres_query``).
The JSON is what Grafana's ``grafana-postgresql-datasource`` plugin stores for a query written
in the code editor.
"""

from __future__ import annotations

from typing import Any, Final, Literal, Self

from grafana_foundation_sdk.cog import builder, runtime, variants
from grafana_foundation_sdk.models import dashboard

PLUGIN_ID: Final = "grafana-postgresql-datasource"
DATASOURCE_UID: Final = "wattwatch-timescaledb"
DATASOURCE: Final = dashboard.DataSourceRef(type_val=PLUGIN_ID, uid=DATASOURCE_UID)

Format = Literal["time_series", "table"]


class PostgresQuery(variants.Dataquery):
    """One raw-SQL target of a panel; ``format`` tells Grafana how to frame the rows."""

    def __init__(
        self,
        raw_sql: str = "",
        *,
        ref_id: str | None = None,
        format: Format = "table",
        hide: bool | None = None,
        datasource: dashboard.DataSourceRef | None = None,
    ) -> None:
        self.raw_sql = raw_sql
        self.ref_id = ref_id
        self.format = format
        self.hide = hide
        self.datasource = datasource

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "editorMode": "code",
            "format": self.format,
            "rawQuery": True,
            "rawSql": self.raw_sql,
        }
        if self.ref_id is not None:
            payload["refId"] = self.ref_id
        if self.hide is not None:
            payload["hide"] = self.hide
        if self.datasource is not None:
            payload["datasource"] = self.datasource
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        ds = data.get("datasource")
        return cls(
            str(data.get("rawSql", "")),
            ref_id=data.get("refId"),
            format="time_series" if data.get("format") == "time_series" else "table",
            hide=data.get("hide"),
            datasource=dashboard.DataSourceRef.from_json(ds) if isinstance(ds, dict) else None,
        )


class PostgresQueryBuilder(builder.Builder[PostgresQuery]):
    """Builder of a :class:`PostgresQuery`, bound to wattwatch's TimescaleDB datasource."""

    def __init__(self, raw_sql: str) -> None:
        self._internal = PostgresQuery(raw_sql, datasource=DATASOURCE)

    def build(self) -> PostgresQuery:
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self

    def format(self, fmt: Format) -> Self:
        self._internal.format = fmt
        return self

    def hide(self, hide: bool) -> Self:
        self._internal.hide = hide
        return self


class SqlAnnotationTarget(dashboard.AnnotationTarget):
    """An annotation target carrying SQL: Grafana's SQL datasources read annotations from it
    (``time``, ``timeend``, ``text``, ``tags`` columns)."""

    def __init__(self, raw_sql: str) -> None:
        super().__init__(limit=100, match_any=False, tags=[], type_val="dashboard")
        self.raw_sql = raw_sql

    def to_json(self) -> dict[str, object]:
        payload = super().to_json()
        payload.update(
            {
                "editorMode": "code",
                "format": "table",
                "rawQuery": True,
                "rawSql": self.raw_sql,
                "refId": "Anno",
            }
        )
        return payload


class SqlAnnotationTargetBuilder(builder.Builder[dashboard.AnnotationTarget]):
    def __init__(self, raw_sql: str) -> None:
        self._internal = SqlAnnotationTarget(raw_sql)

    def build(self) -> dashboard.AnnotationTarget:
        return self._internal


def postgres_query_variant() -> runtime.DataqueryConfig:
    """How the SDK recognises our queries when it reads a dashboard's JSON."""
    return runtime.DataqueryConfig(identifier=PLUGIN_ID, from_json_hook=PostgresQuery.from_json)


def register_postgres_query() -> None:
    """Register the variant (explicitly, never at import) before decoding dashboards."""
    runtime.register_dataquery_variant(postgres_query_variant())
