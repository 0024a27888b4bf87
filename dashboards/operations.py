"""Operations: messages/s, readings written, dead letters by reason, commit latency, consumer
lag, processing runs and their duration — all from the database (no Prometheus datasource).

``ingest_stats`` and ``processing_runs`` (migration 0004) are written by the services; until
they are, those panels are empty and the panels over ``readings`` and ``dead_letters`` still
tell the story.
"""

# ruff: noqa: S608 - panel SQL is Grafana's query text, assembled from module constants only

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.models.common import VisibilityMode

from dashboards import common as c

UID: Final = "wattwatch-operations"

MESSAGES = """
    SELECT $__timeGroupAlias(minute, $__interval), ingestor AS metric,
           sum(messages) / ($__interval_ms / 1000.0) AS "messages per second"
    FROM ingest_stats
    WHERE $__timeFilter(minute)
    GROUP BY 1, 2
    ORDER BY 1
"""

WRITTEN_LOG = """
    SELECT $__timeGroupAlias(minute, $__interval),
           sum(readings_written) / ($__interval_ms / 1000.0) AS "written (arrival time)"
    FROM ingest_stats
    WHERE $__timeFilter(minute)
    GROUP BY 1
    ORDER BY 1
"""

# Device time, not arrival time: a device that was offline shows its backlog where it belongs.
STORED = """
    SELECT $__timeGroupAlias(ts, $__interval),
           count(*) / ($__interval_ms / 1000.0) AS "stored (device time)"
    FROM readings
    WHERE $__timeFilter(ts)
    GROUP BY 1
    ORDER BY 1
"""

COMMIT_LATENCY = """
    SELECT $__timeGroupAlias(minute, $__interval),
           sum(commit_ms_mean * batches) / nullif(sum(batches), 0) AS "mean commit",
           max(commit_ms_max) AS "slowest commit"
    FROM ingest_stats
    WHERE $__timeFilter(minute)
    GROUP BY 1
    ORDER BY 1
"""

LAG = """
    SELECT $__timeGroupAlias(minute, $__interval), ingestor AS metric,
           max(lag_s_max) AS "consumer lag"
    FROM ingest_stats
    WHERE $__timeFilter(minute)
    GROUP BY 1, 2
    ORDER BY 1
"""

# Reasons carry details (values, names, timestamps): digits and quoted parts are folded so that
# one kind of refusal is one row.
_REASON = "left(regexp_replace(reason, '''[^'']*''|\"[^\"]*\"|[0-9][0-9.:+TZ-]*', '…', 'g'), 80)"

DEAD_BY_FORMAT = """
    SELECT $__timeGroupAlias(received_at, $__interval), coalesce(format, 'unrouted') AS metric,
           count(*) AS "dead letters"
    FROM dead_letters
    WHERE $__timeFilter(received_at)
    GROUP BY 1, 2
    ORDER BY 1
"""

DEAD_BY_REASON = f"""
    SELECT {_REASON} AS "reason", coalesce(format, 'unrouted') AS "format",
           count(*) AS "messages", max(received_at) AS "last seen"
    FROM dead_letters
    WHERE $__timeFilter(received_at)
    GROUP BY 1, 2
    ORDER BY 3 DESC
    LIMIT 50
"""

GRID_REALTIME = """
    SELECT $__timeGroupAlias(start_ts, $__interval), kind AS metric, count(*) AS "events"
    FROM anomalies
    WHERE source = 'ingest' AND $__timeFilter(start_ts)
    GROUP BY 1, 2
    ORDER BY 1
"""

RUN_DURATION = """
    SELECT started_at AS "time", stage AS metric,
           extract(epoch FROM finished_at - started_at) AS "duration"
    FROM processing_runs
    WHERE $__timeFilter(started_at) AND finished_at IS NOT NULL
    ORDER BY 1
"""

RUNS = """
    SELECT started_at AS "started", stage, status,
           extract(epoch FROM coalesce(finished_at, now()) - started_at) AS "duration",
           items, coalesce(detail, '') AS "detail"
    FROM processing_runs
    WHERE $__timeFilter(started_at)
    ORDER BY started_at DESC
    LIMIT 100
"""

LAST_RUN_AGE = """
    SELECT extract(epoch FROM $__timeTo()::timestamptz - max(finished_at)) AS "since last run"
    FROM processing_runs
    WHERE status = 'ok' AND finished_at <= $__timeTo()
"""

FAILED_RUNS = """
    SELECT count(*) AS "failed runs"
    FROM processing_runs
    WHERE status = 'failed' AND $__timeFilter(started_at)
"""

READINGS_PER_MINUTE = """
    SELECT count(*) / 15.0 AS "readings per minute"
    FROM readings
    WHERE ts > $__timeTo()::timestamptz - interval '15 minutes' AND ts <= $__timeTo()
"""

DEAD_SHARE = """
    SELECT (SELECT count(*) FROM dead_letters WHERE $__timeFilter(received_at))::float8
           / nullif((SELECT sum(messages) FROM ingest_stats WHERE $__timeFilter(minute)), 0)
           AS "dead-letter share"
"""


def build() -> dashboard.Dashboard:
    d = c.new_dashboard(
        UID,
        "wattwatch · Operations",
        "Ingest throughput, dead letters, commit latency, consumer lag and processing runs.",
    )
    stats = (
        ("Readings per minute (last 15 min)", "short", READINGS_PER_MINUTE,
         c.thresholds("red", (1, "green")),
         "Readings stamped in the 15 minutes before the end of the time range, per minute."),
        ("Dead-letter share", c.PERCENT, DEAD_SHARE,
         c.thresholds("green", (0.001, "orange"), (0.01, "red")),
         "Dead letters over messages received in the time range (needs ingest_stats)."),
        ("Since last processing run", c.SECONDS, LAST_RUN_AGE,
         c.thresholds("green", (900, "orange"), (3600, "red")),
         "Time from the last successful processing run to the end of the time range."),
        ("Failed processing runs", c.COUNT, FAILED_RUNS, c.thresholds("green", (1, "red")),
         "Processing runs that failed in the time range."),
    )  # fmt: skip
    for title, unit, query, colors, text in stats:
        d = d.with_panel(
            c.stat_panel(title, unit, c.sql(query), description=text, colors=colors, width=6)
        )
    return (
        d.with_panel(
            c.timeseries_panel(
                "Messages per second",
                c.PER_SECOND,
                c.sql(MESSAGES, time_series=True),
                description="MQTT messages received per second, per ingestor (ingest_stats).",
                min_interval="1m",
            )
        )
        .with_panel(
            c.timeseries_panel(
                "Readings written per second",
                c.WRITES_PER_SECOND,
                c.sql(WRITTEN_LOG, time_series=True),
                c.sql(STORED, ref="B", time_series=True),
                description="New readings committed per second by arrival time (ingest_stats), "
                "and readings stored per second of device time (readings).",
                min_interval="1m",
            )
        )
        .with_panel(
            c.timeseries_panel(
                "Dead letters by format",
                c.COUNT,
                c.sql(DEAD_BY_FORMAT, time_series=True),
                description="Refused messages per interval, by device format.",
                bars=True,
                stacked=True,
                min_interval="1m",
            )
        )
        .with_panel(
            c.table_panel(
                "Dead letters by reason",
                c.sql(DEAD_BY_REASON),
                description="Refusals in the time range, similar reasons folded together "
                "(numbers and quoted values replaced by …).",
                units={"messages": c.COUNT, "last seen": c.DATE},
            )
        )
        .with_panel(
            c.timeseries_panel(
                "Commit latency",
                c.MILLISECONDS,
                c.sql(COMMIT_LATENCY, time_series=True),
                description="Time from a batch's first message to its COMMIT (mean and "
                "slowest per interval; ingest_stats).",
                min_interval="1m",
            )
        )
        .with_panel(
            c.timeseries_panel(
                "Consumer lag",
                c.SECONDS,
                c.sql(LAG, time_series=True),
                description="Largest delay between a message's arrival and its commit, per "
                "ingestor (ingest_stats).",
                min_interval="1m",
            )
        )
        .with_panel(
            c.timeseries_panel(
                "Real-time grid events",
                c.COUNT,
                c.sql(GRID_REALTIME, time_series=True),
                description="EN 50160 always-limit breaches raised by the ingestor.",
                bars=True,
                stacked=True,
                min_interval="10m",
            )
        )
        .with_panel(
            c.timeseries_panel(
                "Processing run duration",
                c.SECONDS,
                c.sql(RUN_DURATION, time_series=True),
                description="Duration of each processing run by stage (processing_runs).",
            ).show_points(VisibilityMode.ALWAYS)
        )
        .with_panel(
            c.table_panel(
                "Processing runs",
                c.sql(RUNS),
                description="The newest processing runs with their status and duration.",
                units={"started": c.DATE, "duration": c.SECONDS, "items": c.COUNT},
                width=24,
            )
        )
    )
