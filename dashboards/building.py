"""Building: every meter of one building with the outdoor temperature, its anomalies as
annotations, the energy signature with its fitted change-point line, HLC and label history."""

# ruff: noqa: S608 - panel SQL is Grafana's query text, assembled from module constants only

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import common, dashboard, xychart
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.common import VisibilityMode
from grafana_foundation_sdk.models.xychart import ScatterShow

from dashboards import common as c

UID: Final = "wattwatch-building"

# Outdoor temperature as processing uses it: the mean of the outdoor sensors of the building's
# municipality, else of every outdoor sensor (a city weather station belongs to no building).
OUTDOOR_HOURLY = """
    SELECT $__timeGroupAlias(h.hour, $__interval),
           coalesce(avg(h.mean) FILTER (WHERE ob.municipality_id = tb.municipality_id),
                    avg(h.mean)) AS "outdoor temperature"
    FROM readings_hourly h
    JOIN meters m ON m.id = h.meter_id
    LEFT JOIN buildings ob ON ob.id = m.building_id
    CROSS JOIN (SELECT municipality_id FROM buildings WHERE id = $building) tb
    WHERE m.quantity = 'outdoor_temperature' AND $__timeFilter(h.hour)
    GROUP BY 1
    ORDER BY 1
"""

ENERGY = f"""
    SELECT $__timeGroupAlias(h.hour, $__interval),
           coalesce(m.name, m.device_id || ' ' || m.channel) AS metric,
           sum(h.consumption * {c.ENERGY_KWH}) AS "energy"
    FROM readings_hourly h
    JOIN meters m ON m.id = h.meter_id
    WHERE m.building_id = $building AND m.id IN ($meter)
      AND m.cumulative AND m.unit IN ('kWh', 'm3')
      AND $__timeFilter(h.hour)
    GROUP BY 1, 2
    ORDER BY 1
"""

POWER = """
    SELECT $__timeGroupAlias(r.ts, $__interval),
           coalesce(m.name, m.device_id || ' ' || m.channel) || ' (' || m.unit || ')' AS metric,
           avg(r.value) AS "power"
    FROM readings r
    JOIN meters m ON m.id = r.meter_id
    WHERE m.building_id = $building AND m.id IN ($meter)
      AND m.unit IN ('W', 'VA') AND $__timeFilter(r.ts)
    GROUP BY 1, 2
    ORDER BY 1
"""

INDOOR = """
    SELECT $__timeGroupAlias(h.hour, $__interval),
           coalesce(m.name, m.device_id || ' ' || m.channel) AS metric,
           avg(h.mean) AS "temperature"
    FROM readings_hourly h
    JOIN meters m ON m.id = h.meter_id
    WHERE m.building_id = $building AND m.quantity = 'indoor_temperature'
      AND $__timeFilter(h.hour)
    GROUP BY 1, 2
    ORDER BY 1
"""

# The heating meter as processing picks it (storage.matrices): heat, else gas, else
# electricity of an electrically heated building.
_HEATING = f"""b AS (
        SELECT id, municipality_id, heating_carrier FROM buildings WHERE id = $building
    ),
    hm AS (
        SELECT m.id, {c.ENERGY_KWH} AS factor
        FROM meters m CROSS JOIN b
        WHERE m.building_id = b.id AND m.cumulative AND m.unit IN ('kWh', 'm3')
          AND (m.quantity IN ('heat', 'gas')
               OR (m.quantity = 'electricity'
                   AND coalesce(b.heating_carrier, 'electricity') IN ('electricity', 'heat_pump')))
        ORDER BY CASE m.quantity WHEN 'heat' THEN 0 WHEN 'gas' THEN 1 ELSE 2 END, m.id
        LIMIT 1
    )"""

SIGNATURE_POINTS = f"""
    WITH {_HEATING},
    te AS (
        SELECT d.day,
               coalesce(avg(d.mean) FILTER (WHERE ob.municipality_id = b.municipality_id),
                        avg(d.mean)) AS outdoor_c
        FROM readings_daily d
        JOIN meters m ON m.id = d.meter_id
        LEFT JOIN buildings ob ON ob.id = m.building_id
        CROSS JOIN b
        WHERE m.quantity = 'outdoor_temperature' AND d.day {c.PARIS_DAYS}
        GROUP BY d.day
    )
    SELECT te.outdoor_c AS "outdoor temperature", d.consumption * hm.factor AS "daily energy"
    FROM readings_daily d
    JOIN hm ON hm.id = d.meter_id
    JOIN te ON te.day = d.day
    WHERE d.day {c.PARIS_DAYS} AND d.consumption IS NOT NULL
      AND d.day < ($__timeTo()::timestamptz AT TIME ZONE 'Europe/Paris')::date
    ORDER BY 1
"""

# Whole days only: the day the range ends in is still filling up.
# Q = b + s·(Tb − Te)⁺ of the newest qualified change-point fit, drawn over −10…25 °C.
SIGNATURE_FIT = """
    WITH fit AS (
        SELECT base_kwh_per_day, slope_kwh_per_day_k, balance_temp_c
        FROM insulation_assessments
        WHERE building_id = $building AND method = 'changepoint' AND status = 'ok'
        ORDER BY period_end DESC, computed_at DESC
        LIMIT 1
    )
    SELECT t.te::float8 AS "outdoor temperature",
           fit.base_kwh_per_day
             + fit.slope_kwh_per_day_k * greatest(fit.balance_temp_c - t.te::float8, 0)
             AS "change-point fit"
    FROM fit CROSS JOIN generate_series(-10.0, 25.0, 0.5) AS t (te)
    ORDER BY 1
"""

HLC_HISTORY = """
    SELECT (period_end::timestamp AT TIME ZONE 'Europe/Paris') AS "time",
           hlc_w_per_k AS "HLC", hlc_low_w_per_k AS "HLC low (90 %)",
           hlc_high_w_per_k AS "HLC high (90 %)"
    FROM insulation_assessments
    WHERE building_id = $building AND method = 'changepoint' AND status = 'ok'
      AND hlc_w_per_k IS NOT NULL
    ORDER BY 1
"""

LABEL_HISTORY = """
    SELECT period_start AS "from", period_end AS "to", method, status,
           hlc_w_per_k AS "HLC", hlc_low_w_per_k AS "low", hlc_high_w_per_k AS "high",
           hlc_w_per_m2k AS "HLC per m²", balance_temp_c AS "balance temperature",
           primary_kwh_per_m2 AS "primary energy", label, r2 AS "R²", cv_rmse AS "CV(RMSE)",
           n_days AS "days", coalesce(status_reason, '') AS "note"
    FROM insulation_assessments
    WHERE building_id = $building
    ORDER BY period_end DESC, method
"""

ANOMALIES = f"""
    SELECT a.start_ts AS "start", a.end_ts AS "end", {c.SEVERITY_CLASS} AS "severity",
           coalesce(m.name, m.device_id) AS "meter", a.kind, a.severity AS "score",
           a.expected, a.observed, a.reason,
           CASE WHEN a.status = 'warning' THEN 'warning'
                WHEN a.acknowledged_at IS NULL THEN 'open' ELSE 'acknowledged' END AS "state"
    FROM anomalies a
    JOIN meters m ON m.id = a.meter_id
    WHERE m.building_id = $building AND a.end_ts >= $__timeFrom() AND a.start_ts <= $__timeTo()
    ORDER BY a.start_ts DESC
"""

ANNOTATIONS = """
    SELECT a.start_ts AS "time", a.end_ts AS "timeend",
           a.kind || ' on ' || coalesce(m.name, m.device_id) || ': ' || a.reason AS "text",
           a.kind || ',' || a.source AS "tags"
    FROM anomalies a
    JOIN meters m ON m.id = a.meter_id
    WHERE m.building_id = $building AND a.end_ts >= $__timeFrom() AND a.start_ts <= $__timeTo()
    ORDER BY a.start_ts
"""


def _outdoor_on_right() -> list[model.DynamicConfigValue]:
    return [
        model.DynamicConfigValue(id_val="unit", value=c.CELSIUS),
        model.DynamicConfigValue(id_val="custom.axisPlacement", value="right"),
        model.DynamicConfigValue(id_val="custom.drawStyle", value="line"),
        model.DynamicConfigValue(id_val="color", value={"fixedColor": "blue", "mode": "fixed"}),
    ]


def build() -> dashboard.Dashboard:
    energy = c.timeseries_panel(
        "Energy by meter, with outdoor temperature",
        c.KWH,
        c.sql(ENERGY, time_series=True),
        c.sql(OUTDOOR_HOURLY, ref="B", time_series=True),
        description="Consumption of each cumulative meter per interval (gas converted at "
        f"{c.GAS_KWH_PER_M3} kWh/m³); outdoor temperature on the right axis.",
        bars=True,
        width=24,
        min_interval="1h",
    ).override_by_query("B", _outdoor_on_right())
    power = c.timeseries_panel(
        "Power",
        c.WATT,
        c.sql(POWER, time_series=True),
        description="Instantaneous power meters; apparent power (VA) series keep their unit.",
        min_interval="15m",
    ).override_by_regexp(r".*\(VA\)$", [model.DynamicConfigValue(id_val="unit", value=c.VA)])
    temperatures = c.timeseries_panel(
        "Indoor and outdoor temperature",
        c.CELSIUS,
        c.sql(INDOOR, time_series=True),
        c.sql(OUTDOOR_HOURLY, ref="B", time_series=True),
        description="Indoor sensors of the building and the outdoor temperature used for it.",
        min_interval="1h",
    )
    signature = c.xy_panel(
        "Energy signature",
        c.KWH,
        c.sql(SIGNATURE_POINTS),
        c.sql(SIGNATURE_FIT, ref="B"),
        description="Daily heating energy against the day's mean outdoor temperature, with "
        "the newest change-point fit Q = b + s·(Tb − Te)⁺ (kWh/day).",
        series=[
            xychart.ScatterSeriesConfig()
            .name("days")
            .x("outdoor temperature")
            .y("daily energy")
            .show(ScatterShow.POINTS)
            .point_size(common.ScaleDimensionConfig().fixed(5).min(5).max(5)),
            xychart.ScatterSeriesConfig()
            .name("change-point fit")
            .x("outdoor temperature")
            .y("change-point fit")
            .show(ScatterShow.LINES)
            .line_width(2),
        ],
        x_unit="°C",
    )
    hlc = c.timeseries_panel(
        "Heat-loss coefficient history",
        c.W_PER_K,
        c.sql(HLC_HISTORY, time_series=True),
        description="HLC of each change-point assessment at the end of its period, with its "
        "90 % interval (ARX estimates are in the table below).",
    ).show_points(VisibilityMode.ALWAYS)
    d = (
        c.new_dashboard(
            UID,
            "wattwatch · Building",
            "Every meter of one building, its anomalies, energy signature, heat loss and label.",
        )
        .variables([c.municipality_variable(), c.building_variable(), c.meter_variable()])
        .annotation(c.annotation("Anomalies", ANNOTATIONS, "red"))
    )
    return (
        d.with_panel(energy)
        .with_panel(power)
        .with_panel(temperatures)
        .with_panel(signature)
        .with_panel(hlc)
        .with_panel(
            c.table_panel(
                "Assessments and label history",
                c.sql(LABEL_HISTORY),
                description="Every insulation assessment of the building; the label is a DPE "
                "estimate from metered data.",
                units={
                    "from": c.DATE,
                    "to": c.DATE,
                    "HLC": c.W_PER_K,
                    "low": c.W_PER_K,
                    "high": c.W_PER_K,
                    "HLC per m²": c.W_PER_M2K,
                    "balance temperature": c.CELSIUS,
                    "primary energy": c.KWH_PER_M2_YR,
                    "R²": c.RATIO,
                    "CV(RMSE)": c.PERCENT,
                    "days": c.COUNT,
                },
                width=24,
            )
        )
        .with_panel(
            c.table_panel(
                "Anomalies",
                c.sql(ANOMALIES),
                description="Anomalies of the building's meters overlapping the time range.",
                units={
                    "start": c.DATE,
                    "end": c.DATE,
                    "score": c.COUNT,
                    "expected": c.NONE,
                    "observed": c.NONE,
                },
                width=24,
            )
        )
    )
