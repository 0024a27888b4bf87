"""Grid: voltage, frequency and load per feeder against the EN 50160 limits, compliance and
the events table."""

# ruff: noqa: S608 - panel SQL is Grafana's query text, assembled from module constants only

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import common, dashboard
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.common import GraphTresholdsStyleMode

from dashboards import common as c
from dashboards.query import DATASOURCE
from wattwatch import en50160

UID: Final = "wattwatch-grid"


def _series(quantity: str) -> str:
    return f"""
        SELECT $__timeGroupAlias(r.ts, $__interval), m.device_id AS metric,
               avg(r.value) AS "{quantity}"
        FROM readings r
        JOIN meters m ON m.id = r.meter_id
        WHERE m.quantity = 'grid_{quantity}' AND m.device_id IN ($feeder)
          AND $__timeFilter(r.ts)
        GROUP BY 1, 2
        ORDER BY 1
    """


V_LOW_ALWAYS, V_HIGH = en50160.VOLTAGE_ALWAYS_V
V_LOW_WEEKLY, _ = en50160.VOLTAGE_WEEKLY_V
F_LOW_ALWAYS, F_HIGH_ALWAYS = en50160.FREQUENCY_ALWAYS_HZ
F_LOW_YEARLY, F_HIGH_YEARLY = en50160.FREQUENCY_YEARLY_HZ

# Shares of 10-minute voltage means inside ±10 % (EN 50160 asks 95 % of each week).
VOLTAGE_COMPLIANCE = f"""
    SELECT avg((v BETWEEN {V_LOW_WEEKLY:g} AND {V_HIGH:g})::int) AS "within ±10 %"
    FROM (
        SELECT time_bucket('10 minutes', r.ts) AS t, r.meter_id, avg(r.value) AS v
        FROM readings r
        JOIN meters m ON m.id = r.meter_id
        WHERE m.quantity = 'grid_voltage' AND m.device_id IN ($feeder) AND $__timeFilter(r.ts)
        GROUP BY 1, 2
    ) means
"""

FREQUENCY_COMPLIANCE = f"""
    SELECT avg((r.value BETWEEN {F_LOW_YEARLY:g} AND {F_HIGH_YEARLY:g})::int)
           AS "within ±1 %"
    FROM readings r
    JOIN meters m ON m.id = r.meter_id
    WHERE m.quantity = 'grid_frequency' AND m.device_id IN ($feeder) AND $__timeFilter(r.ts)
"""

PEAK_LOAD = """
    SELECT max(r.value) AS "peak load"
    FROM readings r
    JOIN meters m ON m.id = r.meter_id
    WHERE m.quantity = 'grid_load' AND m.device_id IN ($feeder) AND $__timeFilter(r.ts)
"""

EVENT_COUNT = """
    SELECT count(*) AS "events"
    FROM anomalies a
    JOIN meters m ON m.id = a.meter_id
    WHERE m.quantity LIKE 'grid\\_%' AND m.device_id IN ($feeder)
      AND a.end_ts >= $__timeFrom() AND a.start_ts <= $__timeTo()
"""

EVENTS = f"""
    SELECT a.start_ts AS "start", a.end_ts AS "end", m.device_id AS "feeder", a.kind,
           {c.SEVERITY_CLASS} AS "severity", a.observed AS "observed", a.expected AS "limit",
           a.source, a.reason
    FROM anomalies a
    JOIN meters m ON m.id = a.meter_id
    WHERE m.quantity LIKE 'grid\\_%' AND m.device_id IN ($feeder)
      AND a.end_ts >= $__timeFrom() AND a.start_ts <= $__timeTo()
    ORDER BY a.start_ts DESC
    LIMIT 200
"""


def feeder_variable() -> dashboard.QueryVariable:
    return (
        dashboard.QueryVariable("feeder")
        .label("Feeder")
        .datasource(DATASOURCE)
        .query(
            "SELECT DISTINCT device_id AS __text, device_id AS __value FROM meters"
            " WHERE quantity IN ('grid_voltage', 'grid_frequency', 'grid_load') ORDER BY 1"
        )
        .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(model.VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
        .multi(True)
        .include_all(True)
        .current(model.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def _bands() -> common.GraphThresholdsStyleConfig:
    return common.GraphThresholdsStyleConfig().mode(GraphTresholdsStyleMode.LINE_AND_AREA)


def build() -> dashboard.Dashboard:
    voltage = (
        c.timeseries_panel(
            "Voltage per feeder",
            c.VOLT,
            c.sql(_series("voltage"), time_series=True),
            description=f"Mean voltage per interval. EN 50160: 10-minute means within "
            f"{V_LOW_WEEKLY:g}–{V_HIGH:g} V (±10 %) 95 % of each week, always within "
            f"{V_LOW_ALWAYS:g}–{V_HIGH:g} V (+10/−15 %).",
            width=24,
            min_interval="10m",
        )
        .thresholds(
            c.thresholds(
                "red", (V_LOW_ALWAYS, "orange"), (V_LOW_WEEKLY, "transparent"), (V_HIGH, "red")
            )
        )
        .thresholds_style(_bands())
        .axis_soft_min(V_LOW_ALWAYS - 5)
        .axis_soft_max(V_HIGH + 5)
    )
    frequency = (
        c.timeseries_panel(
            "Frequency per feeder",
            c.HERTZ,
            c.sql(_series("frequency"), time_series=True),
            description=f"Mean frequency per interval. EN 50160: {F_LOW_YEARLY:g}–"
            f"{F_HIGH_YEARLY:g} Hz (±1 %) 99.5 % of a year, always {F_LOW_ALWAYS:g}–"
            f"{F_HIGH_ALWAYS:g} Hz.",
            min_interval="1m",
        )
        .thresholds(
            c.thresholds(
                "red",
                (F_LOW_ALWAYS, "orange"),
                (F_LOW_YEARLY, "transparent"),
                (F_HIGH_YEARLY, "orange"),
                (F_HIGH_ALWAYS, "red"),
            )
        )
        .thresholds_style(_bands())
        .axis_soft_min(F_LOW_YEARLY - 0.1)
        .axis_soft_max(F_HIGH_YEARLY + 0.1)
    )
    load = (
        c.timeseries_panel(
            "Load per feeder",
            c.PERCENT,
            c.sql(_series("load"), time_series=True),
            description="Load relative to the transformer or feeder rating (1 pu = 100 %); "
            "above 100 % is an overload.",
            min_interval="10m",
        )
        .thresholds(c.thresholds("transparent", (0.8, "orange"), (en50160.OVERLOAD_PU, "red")))
        .thresholds_style(_bands())
    )
    d = c.new_dashboard(
        UID,
        "wattwatch · Grid",
        "Voltage, frequency and load per feeder against EN 50160, and the grid events.",
    ).variables([feeder_variable()])
    stats = (
        ("Voltage compliance", c.PERCENT, VOLTAGE_COMPLIANCE,
         c.thresholds("red", (en50160.VOLTAGE_WEEKLY_SHARE, "green")),
         "Share of 10-minute voltage means within ±10 % (EN 50160 asks 95 % per week)."),
        ("Frequency compliance", c.PERCENT, FREQUENCY_COMPLIANCE,
         c.thresholds("red", (en50160.FREQUENCY_YEARLY_SHARE, "green")),
         "Share of frequency readings within ±1 % (EN 50160 asks 99.5 % per year)."),
        ("Peak load", c.PERCENT, PEAK_LOAD,
         c.thresholds("green", (0.8, "orange"), (en50160.OVERLOAD_PU, "red")),
         "Highest load reading relative to the rating."),
        ("Grid events in range", c.COUNT, EVENT_COUNT, c.thresholds("green", (1, "orange")),
         "Grid anomalies overlapping the time range."),
    )  # fmt: skip
    for title, unit, query, colors, text in stats:
        d = d.with_panel(
            c.stat_panel(title, unit, c.sql(query), description=text, colors=colors, width=6)
        )
    return (
        d.with_panel(voltage)
        .with_panel(frequency)
        .with_panel(load)
        .with_panel(
            c.table_panel(
                "Grid events",
                c.sql(EVENTS),
                description="Voltage, frequency and load events of the feeders, newest first: "
                "real-time ones from the ingestor, statistical ones from processing.",
                units={"start": c.DATE, "end": c.DATE, "observed": c.NONE, "limit": c.NONE},
                width=24,
            )
        )
    )
