"""Prometheus metrics of the ingestor (served on WATTWATCH_INGEST_METRICS_PORT)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class IngestMetrics:
    """One set of metrics per ingestor; a registry of its own keeps tests independent."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages = Counter(
            "wattwatch_ingest_messages", "MQTT messages received", ["format"], registry=r
        )
        self.redelivered = Counter(
            "wattwatch_ingest_redelivered", "Messages the broker sent again (DUP)", registry=r
        )
        self.readings_written = Counter(
            "wattwatch_ingest_readings_written", "Readings inserted (new rows)", registry=r
        )
        self.duplicates = Counter(
            "wattwatch_ingest_duplicates_absorbed",
            "Readings already stored (redeliveries, replays)",
            registry=r,
        )
        self.dead_letters = Counter(
            "wattwatch_ingest_dead_letters", "Messages dead-lettered", ["reason"], registry=r
        )
        self.grid_events = Counter(
            "wattwatch_ingest_grid_anomalies", "Grid readings outside EN 50160 limits", registry=r
        )
        self.batch_size = Histogram(
            "wattwatch_ingest_batch_messages",
            "Messages per committed batch",
            buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000, 10000, 30000),
            registry=r,
        )
        self.commit_seconds = Histogram(
            "wattwatch_ingest_commit_seconds",
            "Time to write and commit one batch",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.lag_seconds = Histogram(
            "wattwatch_ingest_receive_to_commit_seconds",
            "Time from a message's arrival to its commit (consumer lag)",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
            registry=r,
        )
        self.buffered = Gauge(
            "wattwatch_ingest_buffered_messages", "Received, not yet committed", registry=r
        )
        self.db_failures = Counter(
            "wattwatch_ingest_database_failures", "Batches that failed to commit", registry=r
        )
