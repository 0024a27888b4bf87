"""What ``wattwatch simulate`` does: generate a city, register it, then publish or backfill it."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from simulators.backfill import BackfillStats, backfill
from simulators.city import City, simulate_city
from simulators.devices import NO_CLOCK_FORMATS, DevicePlan, parse_mix, plan_devices
from simulators.publish import Faults, MqttPublisher, PublishStats, publish_city
from simulators.register import Registration, register_city, registration_lines, write_truth_rows
from simulators.truth import write_truth
from storage.database import connect
from storage.migrate import migrate

REALTIME_S_PER_HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class SimulateOptions:
    """Arguments of a simulation run (see ``wattwatch simulate --help``)."""

    buildings: int = 100
    days: int = 7
    start: str = "2024-12-02"
    seed: int = 0
    formats: dict[str, float] = field(default_factory=lambda: parse_mix(None))
    seconds_per_hour: float = 0.05
    direct: bool = False
    truth_dir: Path | None = None
    anomaly_rate: float = 1.0
    register: bool = True
    print_registration: bool = False
    faults: Faults = field(default_factory=Faults)
    prefix: str = ""
    feeders: int | None = None
    progress: bool = True


@dataclass(slots=True)
class SimulateResult:
    city: City
    plan: DevicePlan
    registration: Registration | None = None
    run_id: int | None = None
    published: PublishStats | None = None
    backfilled: BackfillStats | None = None


def make_city(options: SimulateOptions) -> tuple[City, DevicePlan]:
    """The city and its device plan; feeders default to one per 50 buildings (at most 10)."""
    feeders = options.feeders or min(10, max(1, options.buildings // 50))
    city = simulate_city(
        buildings=options.buildings,
        start=options.start,
        days=options.days,
        seed=options.seed,
        anomaly_rate=options.anomaly_rate,
        grid_feeders=feeders,
    )
    return city, plan_devices(city, options.formats, seed=options.seed, prefix=options.prefix)


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C and SIGTERM set ``stop`` (the run then flushes and reports) instead of killing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def handler(_signum: int, _frame: object) -> None:
        stop.set()

    for s in previous:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def run_simulation(
    options: SimulateOptions,
    *,
    database_url: str | None,
    mqtt_url: str | None,
    console: Console | None = None,
    stop: threading.Event | None = None,
) -> SimulateResult:
    """Generate, register, then publish (or backfill with ``direct``); prints as it goes."""
    console = console or Console(stderr=True)
    stop = stop or threading.Event()
    t0 = time.perf_counter()
    city, plan = make_city(options)
    console.print(
        f"simulated {options.buildings} buildings × {options.days} days (seed {options.seed}): "
        f"{len(city.meters)} hourly meters, {len(city.grid)} grid sensors, "
        f"{len(plan.devices)} devices, {len(plan.channels)} channels, "
        f"{len(city.anomalies)} anomalies in {time.perf_counter() - t0:.1f} s"
    )
    result = SimulateResult(city=city, plan=plan)
    if options.print_registration:
        for line in registration_lines(city, plan):
            sys.stdout.write(line + "\n")
        return result
    if options.truth_dir is not None:
        files = write_truth(city, options.truth_dir)
        console.print(f"ground truth: {len(files)} files in {options.truth_dir}")
    if options.direct or options.register:
        if database_url is None:
            raise ValueError("database_url: needed to register or backfill")
        with connect(database_url, application_name="wattwatch-simulate") as conn:
            migrate(conn)
            result.registration = register_city(conn, city, plan)
            result.run_id = write_truth_rows(conn, city, plan, result.registration)
            conn.commit()
            console.print(
                f"registered {len(plan.channels)} meters of {options.buildings} buildings; "
                f"ground truth in sim_* tables as run {result.run_id}"
            )
            if options.direct:
                result.backfilled = _backfill(
                    conn, city=city, plan=plan, registration=result.registration, console=console
                )
                return result
    if mqtt_url is None:
        raise ValueError("mqtt_url: needed to publish")
    used_no_clock = sorted(NO_CLOCK_FORMATS & set(options.formats))
    if used_no_clock and options.seconds_per_hour < REALTIME_S_PER_HOUR:
        console.print(
            f"[yellow]note:[/] {', '.join(used_no_clock)} payloads have no clock: their readings "
            "are stamped on arrival, not at the simulated time"
        )
    result.published = _publish(
        city, plan=plan, options=options, mqtt_url=mqtt_url, console=console, stop=stop
    )
    return result


def _backfill(
    conn: psycopg.Connection,
    *,
    city: City,
    plan: DevicePlan,
    registration: Registration,
    console: Console,
) -> BackfillStats:
    t0 = time.perf_counter()
    stats = backfill(conn, city, plan, registration.meter_id)
    seconds = time.perf_counter() - t0
    console.print(
        f"backfilled {stats.rows:,} rows ({stats.inserted:,} new) in {seconds:.1f} s "
        f"({stats.rows / max(seconds, 1e-9):,.0f} rows/s)"
    )
    return stats


def _publish(
    city: City,
    *,
    plan: DevicePlan,
    options: SimulateOptions,
    mqtt_url: str,
    console: Console,
    stop: threading.Event,
) -> PublishStats:
    publisher = MqttPublisher(mqtt_url, client_id=f"wattwatch-sim-{os.getpid()}")
    hours = city.meters.ts.size
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} h"),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not options.progress,
    )
    task = progress.add_task("publishing", total=hours, info="")

    def on_step(hour: int, stats: PublishStats) -> None:
        progress.update(
            task,
            completed=hour + 1,
            description=str(city.meters.ts[hour])[:13].replace("T", " ") + "h",
            info=f"{stats.messages:,} msgs, {stats.acknowledged:,} acked",
        )

    try:
        with stop_on_signals(stop), progress:
            stats = publish_city(
                city,
                plan,
                publisher,
                seconds_per_hour=options.seconds_per_hour,
                faults=options.faults,
                seed=options.seed,
                stop=stop,
                on_step=on_step,
            )
    finally:
        publisher.close(30.0)
    console.print(stats.summary())
    return stats
