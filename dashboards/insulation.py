"""Insulation: ranking by heat loss per m², a map coloured by label, label distributions per
municipality and construction era, and the count of "passoires thermiques" (F and G)."""

# ruff: noqa: S608 - panel SQL is Grafana's query text, assembled from module constants only

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.models import dashboard as model

from dashboards import common as c

UID: Final = "wattwatch-insulation"
HEATING_CARRIERS: Final = (
    "gas", "electricity", "heat_pump", "district_heat", "fuel_oil", "wood", "unknown"
)  # fmt: skip

# Buildings of the chosen municipalities and heating carriers, with their newest assessment.
_ASSESSED = f"""WITH {c.LATEST_ASSESSMENT},
    assessed AS (
        SELECT b.*, l.hlc_w_per_k, l.hlc_low_w_per_k, l.hlc_high_w_per_k, l.hlc_w_per_m2k,
               l.primary_kwh_per_m2, l.label, l.is_passoire, l.r2, l.cv_rmse, l.n_days,
               l.slope_change_rel, l.slope_change_p, mu.name AS municipality
        FROM latest l
        JOIN buildings b ON b.id = l.building_id
        LEFT JOIN municipalities mu ON mu.id = b.municipality_id
        WHERE b.municipality_id IN ($municipality)
          AND coalesce(b.heating_carrier, 'unknown') IN ($heating)
    )"""

_LABEL_COUNTS = ", ".join(
    f"count(*) FILTER (WHERE label = '{label}') AS \"{label}\"" for label in c.LABELS
)

RANKING = f"""
    {_ASSESSED}
    SELECT name AS "building", municipality, year_built AS "built",
           floor_area_m2 AS "floor area", coalesce(heating_carrier, 'unknown') AS "heating",
           hlc_w_per_m2k AS "HLC per m²", hlc_w_per_k AS "HLC",
           (hlc_high_w_per_k - hlc_low_w_per_k) / nullif(2 * hlc_w_per_k, 0) AS "± (90 %)",
           r2 AS "R²", label, primary_kwh_per_m2 AS "primary energy",
           CASE WHEN is_passoire THEN 'passoire' ELSE '' END AS "passoire",
           -- Retrofit (down) or degradation (up) within the period, when clear (p < 1 %).
           CASE WHEN slope_change_p < 0.01 THEN slope_change_rel END AS "heating slope change"
    FROM assessed
    ORDER BY hlc_w_per_m2k DESC NULLS LAST
    LIMIT 200
"""

MAP = f"""
    {_ASSESSED}
    SELECT name AS "building", lat, lon, label,
           position(label IN 'ABCDEFG') AS "label rank", hlc_w_per_m2k AS "HLC per m²"
    FROM assessed
    WHERE lat IS NOT NULL AND lon IS NOT NULL AND label IS NOT NULL
"""

BY_MUNICIPALITY = f"""
    {_ASSESSED}
    SELECT coalesce(municipality, 'unknown') AS "municipality", {_LABEL_COUNTS}
    FROM assessed
    WHERE label IS NOT NULL
    GROUP BY 1
    ORDER BY count(*) FILTER (WHERE label IN ('F', 'G')) DESC, 1
    LIMIT 30
"""

# French thermal-regulation eras (processing.insulation.ERA_BOUNDS).
_ERA = """CASE
        WHEN year_built IS NULL THEN '7 unknown'
        WHEN year_built < 1948 THEN '1 before 1948'
        WHEN year_built < 1975 THEN '2 1948–1974'
        WHEN year_built < 1990 THEN '3 1975–1989'
        WHEN year_built < 2005 THEN '4 1990–2004'
        WHEN year_built < 2013 THEN '5 2005–2012'
        ELSE '6 2013 and later' END"""

BY_ERA = f"""
    {_ASSESSED}
    SELECT substr(era, 3) AS "era", {_LABEL_COUNTS}
    FROM (SELECT label, {_ERA} AS era FROM assessed WHERE label IS NOT NULL) e
    GROUP BY era
    ORDER BY era
"""

PASSOIRES = f"""
    {_ASSESSED}
    SELECT count(*) FILTER (WHERE is_passoire) AS "passoires" FROM assessed
"""

ASSESSED_COUNT = f"""
    {_ASSESSED}
    SELECT count(*) AS "buildings assessed" FROM assessed
"""

MEDIAN_HLC = f"""
    {_ASSESSED}
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY hlc_w_per_m2k) AS "median HLC per m²"
    FROM assessed
"""

INSUFFICIENT = """
    SELECT count(DISTINCT a.building_id) AS "insufficient data"
    FROM insulation_assessments a
    JOIN buildings b ON b.id = a.building_id
    WHERE a.method = 'changepoint' AND a.status = 'insufficient_data'
      AND b.municipality_id IN ($municipality)
      AND NOT EXISTS (SELECT 1 FROM insulation_assessments o
                      WHERE o.building_id = a.building_id AND o.status = 'ok')
"""


def heating_variable() -> dashboard.CustomVariable:
    return (
        dashboard.CustomVariable("heating")
        .label("Heating carrier")
        .values(",".join(HEATING_CARRIERS))
        .multi(True)
        .include_all(True)
        .current(model.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def build() -> dashboard.Dashboard:
    d = c.new_dashboard(
        UID,
        "wattwatch · Insulation",
        "Heat-loss ranking, label map and distributions, passoires thermiques. Labels are DPE "
        "estimates from metered data (change-point model, weather-normalised).",
    ).variables([c.municipality_variable(), heating_variable()])
    stats = (
        ("Passoires (F, G)", PASSOIRES, c.thresholds("green", (1, "red")),
         "Buildings whose estimated label is F or G."),
        ("Buildings assessed", ASSESSED_COUNT, None,
         "Buildings with a qualified change-point assessment."),
        ("Insufficient data", INSUFFICIENT, c.thresholds("green", (1, "orange")),
         "Buildings with no qualified assessment: too few days or degree-days (CalTRACK)."),
    )  # fmt: skip
    for title, query, colors, text in stats:
        d = d.with_panel(
            c.stat_panel(title, c.COUNT, c.sql(query), description=text, colors=colors, width=6)
        )
    d = d.with_panel(
        c.stat_panel(
            "Median HLC per m²",
            c.W_PER_M2K,
            c.sql(MEDIAN_HLC),
            description="Median heat-loss coefficient per m² of floor.",
            width=6,
        )
    )
    return (
        d.with_panel(
            c.table_panel(
                "Ranking by heat loss per m²",
                c.sql(RANKING),
                description="Latest qualified assessment per building, worst first; ± is the "
                "half-width of the 90 % bootstrap interval relative to the HLC.",
                units={
                    "built": c.NONE,
                    "floor area": c.AREA,
                    "HLC per m²": c.W_PER_M2K,
                    "HLC": c.W_PER_K,
                    "± (90 %)": c.PERCENT,
                    "R²": c.RATIO,
                    "primary energy": c.KWH_PER_M2_YR,
                },
                width=24,
                height=10,
            )
        )
        .with_panel(
            c.geomap_panel(
                "Buildings by label",
                c.sql(MAP),
                description="Each assessed building at its location, coloured by its label "
                "(A green … G red).",
                color_field="label rank",
                unit=c.NONE,
            )
        )
        .with_panel(
            c.barchart_panel(
                "Labels per municipality",
                c.COUNT,
                c.sql(BY_MUNICIPALITY),
                description="Buildings per label, municipalities with the most passoires first.",
                x_field="municipality",
                label_colors=True,
            )
        )
        .with_panel(
            c.barchart_panel(
                "Labels per construction era",
                c.COUNT,
                c.sql(BY_ERA),
                description="Buildings per label and French thermal-regulation era.",
                x_field="era",
                label_colors=True,
                width=24,
            )
        )
    )
