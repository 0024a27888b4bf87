"""Shared panel defaults and template variables: every dashboard is built from these.

One place decides the datasource, the time zone, units, legend and tooltip style, so the five
dashboards look alike and a change of house style is one edit.
"""

from __future__ import annotations

import textwrap
from typing import Final

from grafana_foundation_sdk.builders import (
    barchart,
    common,
    dashboard,
    geomap,
    piechart,
    stat,
    table,
    timeseries,
    xychart,
)
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.common import (
    BigValueColorMode,
    BigValueGraphMode,
    FrameGeometrySourceMode,
    GraphDrawStyle,
    LegendDisplayMode,
    LegendPlacement,
    SortOrder,
    StackingMode,
    TooltipDisplayMode,
)
from grafana_foundation_sdk.models.xychart import ScatterSeriesConfig as XYSeries
from grafana_foundation_sdk.models.xychart import SeriesMapping

from dashboards.query import DATASOURCE, PostgresQueryBuilder, SqlAnnotationTargetBuilder

TIMEZONE: Final = "Europe/Paris"
TAGS: Final = ["wattwatch"]
# Gas meters count m³; dashboards show kWh (lower heating value, as storage.matrices does).
GAS_KWH_PER_M3: Final = 11.2
# Energy carriers a dashboard filters by: meter quantities read as consumption.
CARRIERS: Final = ("electricity", "gas", "heat")
LABELS: Final = ("A", "B", "C", "D", "E", "F", "G")
LABEL_COLORS: Final = {
    "A": "#009c6d",
    "B": "#52b153",
    "C": "#a5cc74",
    "D": "#f4e70f",
    "E": "#f0b40f",
    "F": "#eb8235",
    "G": "#d7221f",
}  # fmt: skip  (the DPE label's own colours)

# SQL fragments shared by several dashboards.
ENERGY_KWH: Final = f"CASE WHEN m.unit = 'm3' THEN {GAS_KWH_PER_M3} ELSE 1.0 END"
"""Factor turning a consumption in the meter's unit (kWh or m³ of gas) into kWh."""
PARIS_DAYS: Final = (
    "BETWEEN ($__timeFrom()::timestamptz AT TIME ZONE 'Europe/Paris')::date"
    " AND ($__timeTo()::timestamptz AT TIME ZONE 'Europe/Paris')::date"
)
"""``<date column> PARIS_DAYS``: the Europe/Paris days of the dashboard's time range."""
SEVERITY_CLASS: Final = """CASE
    WHEN a.source = 'ingest' AND a.severity >= 0.05 THEN 'critical'
    WHEN a.source = 'ingest' THEN 'major'
    WHEN a.severity >= 10 THEN 'critical'
    WHEN a.severity >= 5 THEN 'major'
    ELSE 'minor' END"""
"""Severity class of an anomaly ``a``: ingest events score the relative excess over an
EN 50160 limit, processing events a robust z-score or CUSUM [σ]."""
LATEST_ASSESSMENT: Final = """latest AS (
    SELECT DISTINCT ON (building_id) *
    FROM insulation_assessments
    WHERE method = 'changepoint' AND status = 'ok'
    ORDER BY building_id, period_end DESC, computed_at DESC
)"""
"""CTE ``latest``: each building's newest qualified change-point assessment."""

# Grafana unit ids.
KWH: Final = "kwatth"
WATT: Final = "watt"
VA: Final = "voltamp"
CELSIUS: Final = "celsius"
VOLT: Final = "volt"
HERTZ: Final = "hertz"
W_PER_K: Final = "W/K"  # no built-in unit: Grafana shows a custom suffix
W_PER_M2K: Final = "W/(m²·K)"
KWH_PER_M2_YR: Final = "kWh/(m²·yr)"
AREA: Final = "areaM2"
RATIO: Final = "none"
PERCENT: Final = "percentunit"
COUNT: Final = "short"
PER_SECOND: Final = "cps"
WRITES_PER_SECOND: Final = "wps"
MILLISECONDS: Final = "ms"
SECONDS: Final = "s"
DATE: Final = "dateTimeAsIso"
NONE: Final = "string"


def sql(raw: str, *, ref: str = "A", time_series: bool = False) -> PostgresQueryBuilder:
    """A raw-SQL target; ``time_series`` frames rows as series (``time``, ``metric``, values)."""
    return (
        PostgresQueryBuilder(textwrap.dedent(raw).strip())
        .ref_id(ref)
        .format("time_series" if time_series else "table")
    )


def thresholds(base: str, *steps: tuple[float, str]) -> dashboard.ThresholdsConfig:
    """Absolute thresholds: ``base`` colour below the first step, then each (value, colour)."""
    return (
        dashboard.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps(
            [model.Threshold(value=None, color=base)]
            + [model.Threshold(value=v, color=c) for v, c in steps]
        )
    )


def _legend() -> common.VizLegendOptions:
    return (
        common.VizLegendOptions()
        .display_mode(LegendDisplayMode.LIST)
        .placement(LegendPlacement.BOTTOM)
        .show_legend(True)
    )


def _tooltip() -> common.VizTooltipOptions:
    return common.VizTooltipOptions().mode(TooltipDisplayMode.MULTI).sort(SortOrder.DESCENDING)


def timeseries_panel(
    title: str,
    unit: str,
    *targets: PostgresQueryBuilder,
    description: str,
    width: int = 12,
    height: int = 8,
    bars: bool = False,
    stacked: bool = False,
    min_interval: str | None = None,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(height)
        .legend(_legend())
        .tooltip(_tooltip())
        .line_width(1)
        .fill_opacity(80 if bars else 10)
        .draw_style(GraphDrawStyle.BARS if bars else GraphDrawStyle.LINE)
        .span_nulls(False)
    )
    if stacked:
        panel = panel.stacking(common.StackingConfig().mode(StackingMode.NORMAL))
    if min_interval is not None:
        panel = panel.interval(min_interval)
    for target in targets:
        panel = panel.with_target(target)
    return panel


def stat_panel(
    title: str,
    unit: str,
    target: PostgresQueryBuilder,
    *,
    description: str,
    colors: dashboard.ThresholdsConfig | None = None,
    width: int = 4,
    height: int = 4,
    calc: str = "lastNotNull",
) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(height)
        .with_target(target)
        .graph_mode(BigValueGraphMode.NONE)
        .color_mode(BigValueColorMode.VALUE)
        .reduce_options(common.ReduceDataOptions().calcs([calc]).values(False))
        .thresholds(colors or thresholds("blue"))
    )


def column_units(
    units: dict[str, str],
) -> list[cogbuilder.Builder[model.DashboardFieldConfigSourceOverrides]]:
    """Per-column unit overrides of a table, in a stable order."""
    overrides: list[cogbuilder.Builder[model.DashboardFieldConfigSourceOverrides]] = [
        dashboard.DashboardFieldConfigSourceOverrides()
        .matcher(model.MatcherConfig(id_val="byName", options=name))
        .properties([model.DynamicConfigValue(id_val="unit", value=unit)])
        for name, unit in sorted(units.items())
    ]
    return overrides


def table_panel(
    title: str,
    target: PostgresQueryBuilder,
    *,
    description: str,
    units: dict[str, str],
    default_unit: str = NONE,
    width: int = 12,
    height: int = 8,
) -> table.Panel:
    """A table whose every numeric column carries its unit (``units``: column → unit)."""
    return (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(default_unit)
        .span(width)
        .height(height)
        .with_target(target)
        .overrides(column_units(units))
    )


def barchart_panel(
    title: str,
    unit: str,
    target: PostgresQueryBuilder,
    *,
    description: str,
    x_field: str,
    stacked: bool = True,
    width: int = 12,
    height: int = 8,
    label_colors: bool = False,
) -> barchart.Panel:
    panel = (
        barchart.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(height)
        .with_target(target)
        .x_field(x_field)
        .stacking(StackingMode.NORMAL if stacked else StackingMode.NONE)
        .legend(_legend())
        .tooltip(_tooltip())
        .x_tick_label_rotation(-45)
    )
    if label_colors:
        colors: list[cogbuilder.Builder[model.DashboardFieldConfigSourceOverrides]] = [
            dashboard.DashboardFieldConfigSourceOverrides()
            .matcher(model.MatcherConfig(id_val="byName", options=label))
            .properties(
                [
                    model.DynamicConfigValue(
                        id_val="color", value={"fixedColor": color, "mode": "fixed"}
                    )
                ]
            )
            for label, color in LABEL_COLORS.items()
        ]
        panel = panel.overrides(colors)
    return panel


def piechart_panel(
    title: str, unit: str, target: PostgresQueryBuilder, *, description: str, width: int = 6
) -> piechart.Panel:
    return (
        piechart.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(8)
        .with_target(target)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(True))
    )


def xy_panel(
    title: str,
    unit: str,
    *targets: PostgresQueryBuilder,
    description: str,
    series: list[cogbuilder.Builder[XYSeries]],
    x_unit: str,
    width: int = 12,
) -> xychart.Panel:
    panel = (
        xychart.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(9)
        .series_mapping(SeriesMapping.MANUAL)
        .series(series)
        .legend(_legend())
        .override_by_field_type("number", [model.DynamicConfigValue(id_val="unit", value=unit)])
    )
    panel = panel.axis_label(f"[{x_unit}]")
    for target in targets:
        panel = panel.with_target(target)
    return panel


def geomap_panel(
    title: str, target: PostgresQueryBuilder, *, description: str, color_field: str, unit: str
) -> geomap.Panel:
    """Buildings as markers at their lat/lon, coloured by ``color_field`` through thresholds."""
    markers = (
        common.MapLayerOptions()
        .type("markers")
        .name("buildings")
        .tooltip(True)
        .config(
            {
                "showLegend": True,
                "style": {
                    "color": {"field": color_field, "fixed": "dark-green"},
                    "opacity": 0.8,
                    "size": {"fixed": 6},
                    "symbol": {"fixed": "img/icons/marker/circle.svg", "mode": "fixed"},
                },
            }
        )
        .location(
            common.FrameGeometrySource()
            .mode(FrameGeometrySourceMode.COORDS)
            .latitude("lat")
            .longitude("lon")
        )
    )
    return (
        geomap.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(12)
        .height(12)
        .with_target(target)
        .view(geomap.MapViewConfig().id("fit").padding(5))
        .basemap(common.MapLayerOptions().type("default").name("Basemap"))
        .layers([markers])
        .color_scheme(dashboard.FieldColor().mode(model.FieldColorModeId.THRESHOLDS))
        .thresholds(
            thresholds(
                LABEL_COLORS["A"],
                *((i + 1.5, LABEL_COLORS[lab]) for i, lab in enumerate(LABELS[1:])),
            )
        )
    )


def annotation(name: str, raw_sql: str, color: str) -> dashboard.AnnotationQuery:
    return (
        dashboard.AnnotationQuery()
        .name(name)
        .datasource(DATASOURCE)
        .enable(True)
        .hide(False)
        .icon_color(color)
        .target(SqlAnnotationTargetBuilder(textwrap.dedent(raw_sql).strip()))
    )


# --- template variables ------------------------------------------------------------------------


def _query_variable(
    name: str, label: str, query: str, *, multi: bool, refresh_on_time: bool = False
) -> dashboard.QueryVariable:
    var = (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(" ".join(query.split()))
        .refresh(
            model.VariableRefresh.ON_TIME_RANGE_CHANGED
            if refresh_on_time
            else model.VariableRefresh.ON_DASHBOARD_LOAD
        )
        .sort(model.VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
        .multi(multi)
        .include_all(multi)
    )
    if multi:
        var = var.current(model.VariableOption(selected=True, text=["All"], value=["$__all"]))
    return var


def municipality_variable() -> dashboard.QueryVariable:
    return _query_variable(
        "municipality",
        "Municipality",
        "SELECT name AS __text, id AS __value FROM municipalities ORDER BY name",
        multi=True,
    )


def building_variable() -> dashboard.QueryVariable:
    """One building (single value), among the chosen municipalities."""
    return _query_variable(
        "building",
        "Building",
        "SELECT name AS __text, id AS __value FROM buildings"
        " WHERE municipality_id IN ($municipality) ORDER BY name",
        multi=False,
    )


def meter_variable() -> dashboard.QueryVariable:
    return _query_variable(
        "meter",
        "Meter",
        "SELECT coalesce(name, device_id || ' ' || channel) || ' (' || unit || ')' AS __text,"
        " id AS __value FROM meters WHERE building_id = $building ORDER BY 1",
        multi=True,
    )


def carrier_variable() -> dashboard.CustomVariable:
    return (
        dashboard.CustomVariable("carrier")
        .label("Energy carrier")
        .values(",".join(CARRIERS))
        .multi(True)
        .include_all(True)
        .current(model.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def new_dashboard(uid: str, title: str, description: str) -> dashboard.Dashboard:
    """A dashboard with the house defaults: Paris time, last 7 days, shared crosshair."""
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .timezone(TIMEZONE)
        .week_start("monday")
        .time("now-7d", "now")
        .refresh("5m")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .editable()
        .link(
            dashboard.DashboardLink("wattwatch")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags(TAGS)
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )
