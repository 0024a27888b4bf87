"""City overview: consumption by municipality and carrier, live load, open anomalies, the
worst-insulated buildings and ingest health at a glance."""

# ruff: noqa: S608 - panel SQL is Grafana's query text, assembled from module constants only

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.models import dashboard as model

from dashboards import common as c

UID: Final = "wattwatch-city"

BUCKET = f"""
    SELECT (date_trunc('$bucket', d.day::timestamp) AT TIME ZONE 'Europe/Paris') AS "time",
           m.quantity AS metric,
           sum(d.consumption * {c.ENERGY_KWH}) AS "energy"
    FROM readings_daily d
    JOIN meters m ON m.id = d.meter_id
    JOIN buildings b ON b.id = m.building_id
    WHERE d.day {c.PARIS_DAYS}
      AND m.cumulative AND m.quantity IN ($carrier)
      AND b.municipality_id IN ($municipality)
    GROUP BY 1, 2
    ORDER BY 1
"""


def _carrier_kwh(carrier: str) -> str:
    return (
        f"coalesce(sum(d.consumption * {c.ENERGY_KWH}) FILTER (WHERE m.quantity = '{carrier}'), 0)"
    )


BY_MUNICIPALITY = f"""
    SELECT mu.name AS "municipality",
           {_carrier_kwh("electricity")} AS "electricity",
           {_carrier_kwh("gas")} AS "gas",
           {_carrier_kwh("heat")} AS "heat"
    FROM readings_daily d
    JOIN meters m ON m.id = d.meter_id
    JOIN buildings b ON b.id = m.building_id
    JOIN municipalities mu ON mu.id = b.municipality_id
    WHERE d.day {c.PARIS_DAYS}
      AND m.cumulative AND m.quantity IN ($carrier)
      AND b.municipality_id IN ($municipality)
    GROUP BY mu.name
    ORDER BY sum(d.consumption * {c.ENERGY_KWH}) DESC
    LIMIT 25
"""

# Active power meters (W) of the chosen municipalities, averaged per meter and bucket, then
# summed: meters reporting at different instants still add up. Apparent power (VA) is left
# out on purpose: it is not W.
LIVE_LOAD = """
    SELECT "time", sum(power_w) AS "active power"
    FROM (
        SELECT $__timeGroupAlias(r.ts, $__interval), r.meter_id, avg(r.value) AS power_w
        FROM readings r
        JOIN meters m ON m.id = r.meter_id
        JOIN buildings b ON b.id = m.building_id
        WHERE $__timeFilter(r.ts)
          AND m.quantity = 'electricity' AND m.unit = 'W'
          AND b.municipality_id IN ($municipality)
        GROUP BY 1, 2
    ) per_meter
    GROUP BY 1
    ORDER BY 1
"""

OPEN_BY_SEVERITY = f"""
    SELECT {c.SEVERITY_CLASS} AS "severity", count(*) AS "open anomalies"
    FROM anomalies a
    JOIN meters m ON m.id = a.meter_id
    LEFT JOIN buildings b ON b.id = m.building_id
    WHERE a.acknowledged_at IS NULL
      AND (b.id IS NULL OR b.municipality_id IN ($municipality))
    GROUP BY 1
    ORDER BY 1
"""

OPEN_LIST = f"""
    SELECT a.start_ts AS "start", a.end_ts AS "end", {c.SEVERITY_CLASS} AS "severity",
           a.kind AS "kind", a.status AS "status", coalesce(b.name, m.device_id) AS "where",
           a.severity AS "score", a.reason AS "reason"
    FROM anomalies a
    JOIN meters m ON m.id = a.meter_id
    LEFT JOIN buildings b ON b.id = m.building_id
    WHERE a.acknowledged_at IS NULL
      AND (b.id IS NULL OR b.municipality_id IN ($municipality))
    ORDER BY a.start_ts DESC
    LIMIT 50
"""

WORST_INSULATED = f"""
    WITH {c.LATEST_ASSESSMENT}
    SELECT b.name AS "building", mu.name AS "municipality", l.label AS "label",
           l.hlc_w_per_m2k AS "HLC per m²", l.hlc_w_per_k AS "HLC",
           l.primary_kwh_per_m2 AS "primary energy"
    FROM latest l
    JOIN buildings b ON b.id = l.building_id
    LEFT JOIN municipalities mu ON mu.id = b.municipality_id
    WHERE b.municipality_id IN ($municipality)
    ORDER BY l.hlc_w_per_m2k DESC NULLS LAST
    LIMIT 15
"""

READINGS_LAST_HOUR = """
    SELECT count(*) AS "readings"
    FROM readings
    WHERE ts > $__timeTo()::timestamptz - interval '1 hour' AND ts <= $__timeTo()
"""

# A meter is silent when it sent nothing in the 24 h before the end of the time range.
SILENT_METERS = """
    SELECT count(*) AS "silent meters"
    FROM meters m
    WHERE m.created_at <= $__timeTo()
      AND NOT EXISTS (
        SELECT 1 FROM readings r
        WHERE r.meter_id = m.id
          AND r.ts > $__timeTo()::timestamptz - interval '24 hours' AND r.ts <= $__timeTo()
      )
"""

DEAD_LETTERS = """
    SELECT count(*) AS "dead letters" FROM dead_letters WHERE $__timeFilter(received_at)
"""

OPEN_ANOMALIES = """
    SELECT count(*) AS "open anomalies" FROM anomalies WHERE acknowledged_at IS NULL
"""


def build() -> dashboard.Dashboard:
    bucket = (
        dashboard.CustomVariable("bucket")
        .label("Period")
        .values("day,week,month")
        .current(model.VariableOption(selected=True, text="day", value="day"))
    )
    health = (
        c.stat_panel(
            "Readings in the last hour",
            c.COUNT,
            c.sql(READINGS_LAST_HOUR),
            description="Readings stamped in the hour before the end of the time range "
            "(device time).",
            colors=c.thresholds("red", (1, "green")),
        ),
        c.stat_panel(
            "Silent meters (24 h)",
            c.COUNT,
            c.sql(SILENT_METERS),
            description="Meters with no reading in the 24 h before the end of the time range.",
            colors=c.thresholds("green", (1, "orange"), (10, "red")),
        ),
        c.stat_panel(
            "Dead letters",
            c.COUNT,
            c.sql(DEAD_LETTERS),
            description="Messages refused by the ingestor in the time range (kept with their "
            "raw bytes in dead_letters).",
            colors=c.thresholds("green", (1, "orange"), (100, "red")),
        ),
        c.stat_panel(
            "Open anomalies (all)",
            c.COUNT,
            c.sql(OPEN_ANOMALIES),
            description="Anomalies not acknowledged yet, every municipality.",
            colors=c.thresholds("green", (1, "orange"), (50, "red")),
        ),
        c.stat_panel(
            "Live load now",
            c.WATT,
            c.sql(LIVE_LOAD, time_series=True),
            description="Latest total active power of the chosen municipalities' power meters.",
            width=8,
        ),
    )
    d = c.new_dashboard(
        UID,
        "wattwatch · City overview",
        "Consumption by municipality and carrier, live load, open anomalies, "
        "worst-insulated buildings and ingest health.",
    ).variables([c.municipality_variable(), c.carrier_variable(), bucket])
    for panel in health:
        d = d.with_panel(panel)
    return (
        d.with_panel(
            c.timeseries_panel(
                "Consumption per $bucket by carrier",
                c.KWH,
                c.sql(BUCKET, time_series=True),
                description="Metered consumption of the chosen municipalities per Paris "
                f"calendar $bucket; gas converted at {c.GAS_KWH_PER_M3} kWh/m³.",
                bars=True,
                stacked=True,
                min_interval="1d",
            )
        )
        .with_panel(
            c.timeseries_panel(
                "Live load",
                c.WATT,
                c.sql(LIVE_LOAD, time_series=True),
                description="Total active power of the power meters (W); apparent power (VA) "
                "meters are not included.",
                min_interval="5m",
            )
        )
        .with_panel(
            c.barchart_panel(
                "Consumption by municipality",
                c.KWH,
                c.sql(BY_MUNICIPALITY),
                description="Metered consumption per municipality and carrier over the time "
                "range (25 largest).",
                x_field="municipality",
            )
        )
        .with_panel(
            c.table_panel(
                "Worst-insulated buildings",
                c.sql(WORST_INSULATED),
                description="Highest heat-loss coefficient per m² of floor (latest qualified "
                "change-point assessment). The label is a DPE estimate from metered data.",
                units={
                    "HLC per m²": c.W_PER_M2K,
                    "HLC": c.W_PER_K,
                    "primary energy": c.KWH_PER_M2_YR,
                },
            )
        )
        .with_panel(
            c.piechart_panel(
                "Open anomalies by severity",
                c.COUNT,
                c.sql(OPEN_BY_SEVERITY),
                description="Unacknowledged anomalies. Critical: robust z ≥ 10 (processing) or "
                "5 % past an EN 50160 limit (ingest); major: z ≥ 5 or any limit broken.",
                width=8,
            )
        )
        .with_panel(
            c.table_panel(
                "Newest open anomalies",
                c.sql(OPEN_LIST),
                description="The 50 newest unacknowledged anomalies.",
                units={"start": c.DATE, "end": c.DATE, "score": c.COUNT},
                width=16,
            )
        )
    )
