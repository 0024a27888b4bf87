"""An incremental anomaly run as the processing service does it: the last day of 10,000 meters
with 8 weeks of context (the default), database reads and writes included, against the same
scan in memory.

The run goes four times, by turns in one process and in the service's worker processes (one
per core), so that both see the database cold and warm: the first run of each stores the
events, the second finds them stored. The first run with workers starts their pool, which
the service does once.

Run: ``.venv/bin/python -m bench.incremental [--meters 10000]`` (starts its own PostgreSQL).
Seeding goes through the product path (bulk COPY of raw readings, then the rollup job), so it
takes a few minutes; only the anomaly runs are timed.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import psycopg

from processing.pipeline import (
    AnomalyRunSummary,
    PipelineConfig,
    chunk_size,
    detector_kind,
    run_anomalies,
    scan_meters,
    window_start,
)
from storage.bulk import write_arrays
from storage.database import analyze
from storage.matrices import iter_matrices, load_meter_info
from storage.meters import register_meter
from storage.rollups import refresh_rollups
from tests.fixtures.servers import fresh_database, running_postgres

RESULTS = Path(__file__).parent / "results" / "incremental.json"


def seed(conn: psycopg.Connection, meters: int, start: datetime, hours: int, seed: int) -> None:
    """Hourly cumulative electricity indexes with a daily profile, noise and a few faults."""
    rng = np.random.default_rng(seed)
    ids = np.array(
        [
            register_meter(conn, device_format="own_json", device_id=f"bench-{i}",
                           channel="energy", quantity="electricity", unit="kWh",
                           cumulative=True).id
            for i in range(meters)
        ],
        dtype=np.int32,
    )  # fmt: skip
    conn.commit()
    hour = np.arange(hours)
    profile = 0.6 + 0.4 * np.sin(2 * np.pi * ((hour % 24) - 7) / 24).clip(0)
    level = rng.uniform(0.2, 3.0, meters)[:, None]
    use = level * profile[None, :] * rng.lognormal(0.0, 0.2, (meters, hours))
    use[rng.random((meters, hours)) < 0.002] *= 6.0  # spikes
    index = np.round(np.cumsum(use, axis=1), 3)
    ts = np.datetime64(start.replace(tzinfo=None), "us") + (hour + 1) * np.timedelta64(1, "h")
    step = 500  # meters per transaction keeps the COPY buffer small
    for lo in range(0, meters, step):
        hi = min(lo + step, meters)
        write_arrays(
            conn,
            np.repeat(ids[lo:hi], hours),
            np.tile(ts, hi - lo),
            index[lo:hi].reshape(-1),
        )
        conn.commit()
    refresh_rollups(conn)
    # Autovacuum would analyse the freshly filled tables within a minute or so; do it now.
    for table in ("readings", "readings_hourly", "meter_events"):
        analyze(conn, table)
    conn.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--meters", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--context-weeks", type=int, default=PipelineConfig().context_weeks,
        help="weeks loaded before the reported day (the service's processing_context_weeks)",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1,
        help="worker processes (the service's processing_workers; default one per core)",
    )  # fmt: skip
    args = parser.parse_args()

    # As the service runs it, and in its one process.
    cores = os.cpu_count() or 1
    cfg = PipelineConfig(threads=cores, context_weeks=args.context_weeks, workers=args.workers)
    alone = replace(cfg, workers=1)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    report_from = end - timedelta(days=1)
    start = window_start(report_from, cfg.context_weeks) - timedelta(days=1)
    hours = int((end - start) / timedelta(hours=1))
    with running_postgres() as pg:
        url = fresh_database(pg)
        with psycopg.connect(url) as conn:
            t0 = time.perf_counter()
            seed(conn, args.meters, start, hours, args.seed)
            seeding_s = time.perf_counter() - t0
            print(f"seeded {args.meters} meters × {hours} h in {seeding_s:.0f} s")

            runs: dict[str, list[AnomalyRunSummary]] = {"one_process": [], "workers": []}
            for _ in range(2):
                for name, config in (("one_process", alone), ("workers", cfg)):
                    run = run_anomalies(conn, end=end, report_from=report_from, config=config,
                                        conninfo=url)  # fmt: skip
                    runs[name].append(run)
                    print(f"  run {name} ({run.workers} process(es)): {run.seconds:.2f} s, "
                          f"{run.events} events ({run.inserted} new)")  # fmt: skip
            alone_run = min(runs["one_process"], key=lambda r: r.seconds)
            summary = min(runs["workers"], key=lambda r: r.seconds)
            run_s = summary.seconds

            # The same scan on the same matrices, already in memory: the floor the database
            # path adds its reads and writes to.
            meters = load_meter_info(conn, quantities=["electricity"])
            window = window_start(report_from, cfg.context_weeks)
            local = window.astimezone(ZoneInfo("Europe/Paris")).replace(tzinfo=None)
            kind = detector_kind("electricity", "household")
            per_chunk = chunk_size(cfg, meters=len(meters), start=window, end=end)
            matrices = list(iter_matrices(conn, meters, start=window, end=end,
                                          chunk_meters=per_chunk))  # fmt: skip
            t0 = time.perf_counter()
            for chunk, matrix in matrices:
                scan_meters(matrix.values, [kind] * len(chunk), local_start=local,
                            weeks=cfg.baseline_weeks, quality=cfg.quality,
                            threads=cfg.threads)  # fmt: skip
            memory_s = time.perf_counter() - t0

    result = {
        "meters": args.meters,
        "context_weeks": cfg.context_weeks,
        "chunk_meters": per_chunk,
        "threads": cfg.threads,
        "workers": summary.workers,
        "hours_loaded": int((end - window) / timedelta(hours=1)),
        "seeding_seconds": round(seeding_s, 1),
        "incremental_run_seconds": round(run_s, 2),
        "runs_seconds": {name: [round(r.seconds, 2) for r in rs] for name, rs in runs.items()},
        "one_process_run_seconds": round(alone_run.seconds, 2),
        "one_process_read_seconds": round(alone_run.read_seconds, 2),
        "one_process_scan_seconds": round(alone_run.scan_seconds, 2),
        "ratio_one_process_to_workers": round(alone_run.seconds / run_s, 2),
        "scan_in_memory_seconds": round(memory_s, 2),
        "ratio_run_to_memory_scan": round(run_s / memory_s, 2),
        "workers_read_seconds": round(summary.read_seconds, 2),
        "workers_scan_seconds": round(summary.scan_seconds, 2),
        "events_written": summary.events,
        "target_seconds": 15,
    }
    print(
        f"incremental run (last day, {cfg.context_weeks} weeks of context, {args.meters} meters, "
        f"reads and writes included), best of two: {run_s:.2f} s with {summary.workers} "
        f"worker(s) (target ≤ 15 s), {alone_run.seconds:.2f} s in one process "
        f"(× {alone_run.seconds / run_s:.2f}); the same scan in memory, one process: "
        f"{memory_s:.2f} s; {summary.events} events written"
    )
    rest = alone_run.seconds - alone_run.read_seconds - alone_run.scan_seconds
    print(
        f"  of the one-process run: reading the matrices {alone_run.read_seconds:.2f} s, "
        f"scanning {alone_run.scan_seconds:.2f} s, writing and the rest {rest:.2f} s; the "
        f"workers' own seconds: reading {summary.read_seconds:.2f} s, scanning "
        f"{summary.scan_seconds:.2f} s"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, sort_keys=True))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
