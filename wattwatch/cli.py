"""The `wattwatch` command: one entry point for the stack, the services and the tools."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from wattwatch.errors import ConfigError, WattwatchError
from wattwatch.settings import Settings, load_settings

app = typer.Typer(
    help="wattwatch: energy monitoring for a city and its citizens.\n\n"
    "Settings come from WATTWATCH_* environment variables or a TOML file "
    "(WATTWATCH_CONFIG, default ./wattwatch.toml); see the README for the list.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
dashboards_app = typer.Typer(help="Grafana dashboards as code: build, publish, preview.")
app.add_typer(dashboards_app, name="dashboards")


def settings(ctx: typer.Context) -> Settings:
    """The settings, built once per command from the environment and the TOML file."""
    root = ctx.find_root()
    if root.obj is None:
        root.obj = load_settings()
    assert isinstance(root.obj, Settings)
    return root.obj


def echo(line: str) -> None:
    typer.echo(line)


def _when(name: str, value: str | None) -> datetime | None:
    """An ISO date or date-time option; without an offset it is Paris time."""
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        typer.echo(f"--{name}: not an ISO date or date-time: {value!r}", err=True)
        raise typer.Exit(2) from None
    return t if t.tzinfo is not None else t.replace(tzinfo=ZoneInfo("Europe/Paris"))


@app.command()
def up(ctx: typer.Context) -> None:
    """Start the database, the broker and the services; apply migrations. Keeps existing data."""
    from wattwatch.stack.stack import Stack

    Stack(settings(ctx)).up(echo)
    echo("wattwatch is up; `wattwatch status` shows each part, `wattwatch down` stops them")


@app.command()
def down(ctx: typer.Context) -> None:
    """Stop the services, then the embedded broker and database (data is kept)."""
    from wattwatch.stack.stack import Stack

    Stack(settings(ctx)).down(echo)


@app.command()
def status(ctx: typer.Context) -> None:
    """Show the health of each part; exit 1 if any part is down."""
    from wattwatch.stack.stack import Stack

    parts = Stack(settings(ctx)).status()
    width = max(len(p.name) for p in parts)
    for part in parts:
        mark = "ok  " if part.healthy else "DOWN"
        echo(f"{mark} {part.name:<{width}}  {part.detail}")
    if not all(p.healthy for p in parts):
        raise typer.Exit(1)


@app.command()
def migrate(ctx: typer.Context) -> None:
    """Apply the schema migrations that are not applied yet (idempotent)."""
    from storage.database import connect
    from storage.migrate import migrate as apply
    from wattwatch.stack.stack import Stack

    with connect(Stack(settings(ctx)).database_url()) as conn:
        applied = apply(conn)
    for migration in applied:
        echo(f"applied {migration.version:04d}_{migration.name}")
    echo(f"{len(applied)} migration(s) applied; the schema is up to date")


@app.command()
def ingest(ctx: typer.Context) -> None:
    """Run the MQTT → TimescaleDB ingestor until interrupted."""
    from ingest.service import run_ingest

    run_ingest(settings(ctx))


@app.command()
def process(
    ctx: typer.Context,
    service: Annotated[
        bool,
        typer.Option(
            "--service", help="Keep running: rollups and anomalies each interval, insulation daily."
        ),
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(help="ISO date/time: anomalies ending from then, insulation from that day."),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="ISO date/time: end of the window (default: now).")
    ] = None,
    only: Annotated[
        str | None, typer.Option(help="One stage only: anomalies, insulation or rollups.")
    ] = None,
) -> None:
    """Refresh rollups, find anomalies and assess insulation (once, or with --service)."""

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.table import Table

    from processing.service import STAGES, check_thresholds, run_once, run_service

    if only is not None and only not in STAGES:
        typer.echo(f"--only: expected one of {', '.join(STAGES)}, got {only!r}", err=True)
        raise typer.Exit(2)
    cfg = settings(ctx)
    if service:
        run_service(cfg)
        return
    check_thresholds(cfg)
    start, end = _when("since", since), _when("until", until)
    if start is not None and start >= (end or datetime.now(UTC)):
        typer.echo("--since: must be before --until (or now)", err=True)
        raise typer.Exit(2)
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description:<11}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(),
    )  # fmt: skip
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        summary = run_once(
            cfg, console.log, only=STAGES if only is None else (only,), since=start, until=end,
            progress=progress,
        )  # fmt: skip
    table = Table(title="wattwatch process")
    table.add_column("stage")
    table.add_column("result")
    for stage, numbers in summary.items():
        shown = ", ".join(
            f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
            for k, v in numbers.items()
            if v not in ({}, 0) or k in ("events", "buildings", "meters")
        )
        table.add_row(stage, shown)
    Console().print(table)


@app.command()
def thresholds(
    ctx: typer.Context,
    kind: Annotated[
        str | None, typer.Argument(help="A meter kind; without it, the kinds and what is set.")
    ] = None,
) -> None:
    """Show the anomaly thresholds in force per meter kind: built in, or set by
    WATTWATCH_PROCESSING_DETECTORS and WATTWATCH_PROCESSING_QUALITY."""
    import dataclasses

    from rich.console import Console
    from rich.table import Table

    from processing.detector_config import BUILT_IN_CONFIGS, tuned_configs
    from processing.pipeline import quality_for

    cfg = settings(ctx)
    if kind is None:
        table = Table(title="meter kinds (one kind's thresholds: wattwatch thresholds KIND)")
        table.add_column("kind")
        table.add_column("set by the settings")
        for name in BUILT_IN_CONFIGS:
            mine = {
                **cfg.processing_detectors.get(name, {}),
                **cfg.processing_quality.get(name, {}),
            }
            table.add_row(name, ", ".join(f"{k}={v}" for k, v in mine.items()) or "-")
        Console().print(table)
        return
    if kind not in BUILT_IN_CONFIGS:
        typer.echo(f"kind: unknown meter kind {kind!r}; known: {', '.join(BUILT_IN_CONFIGS)}",
                   err=True)  # fmt: skip
        raise typer.Exit(2)
    detector = tuned_configs(cfg.processing_detectors).get(kind, BUILT_IN_CONFIGS[kind])
    quality = quality_for(kind, tuned=cfg.processing_quality)
    table = Table(title=f"thresholds of {kind}")
    for column in ("group", "field", "value", "from"):
        table.add_column(column)
    for group, config, setting in (
        ("detectors", detector, cfg.processing_detectors),
        ("quality", quality, cfg.processing_quality),
    ):
        for f in dataclasses.fields(config):
            source = "setting" if f.name in setting.get(kind, {}) else "built in"
            table.add_row(group, f.name, str(getattr(config, f.name)), source)
    Console().print(table)


def _not_yet(what: str, issue: int) -> None:
    typer.echo(f"wattwatch: {what} is not available yet (tracked in issue {issue})", err=True)
    raise typer.Exit(2)


@app.command()
def api(ctx: typer.Context) -> None:
    """Serve the HTTP API for engineers, households and the public (uvicorn).

    Listens on WATTWATCH_API_HOST:WATTWATCH_API_PORT; OpenAPI docs at /docs, the households'
    page at /household, Prometheus metrics at /metrics.
    """
    from api.main import run

    run(settings(ctx))


@app.command()
def simulate(  # noqa: PLR0917  (typer: one parameter per option)
    ctx: typer.Context,
    buildings: Annotated[int, typer.Option(min=1, help="Number of buildings.")] = 100,
    days: Annotated[int, typer.Option(min=1, help="Length of the run [days].")] = 7,
    start: Annotated[
        str | None,
        typer.Option(
            help="First hour, UTC (ISO date or time); default: --days before today, so the "
            "rows are recent (raw readings older than WATTWATCH_RETENTION_DAYS are dropped)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same rows.")] = 0,
    formats: Annotated[
        str,
        typer.Option(
            help="Device-format mix, e.g. 'shelly=0.3,linky_tic=0.3,own_json=0.4'. Known: "
            "own_json, senml, shelly, tasmota, linky_tic, zigbee2mqtt, esphome (no clock), "
            "dsmr (on <device>/json). "
            "Default: own_json 0.3, linky_tic 0.25, shelly 0.15, tasmota/zigbee2mqtt/senml 0.1.",
        ),
    ] = "",
    speed: Annotated[
        float,
        typer.Option(min=0.0, help="Wall seconds per simulated hour; 0 = as fast as acked."),
    ] = 0.05,
    realtime: Annotated[
        bool, typer.Option("--realtime", help="One simulated hour per real hour.")
    ] = False,
    direct: Annotated[
        bool,
        typer.Option("--direct", help="Backfill straight into TimescaleDB (COPY), no MQTT."),
    ] = False,
    truth_dir: Annotated[
        str | None, typer.Option(help="Also write the ground truth as CSV/JSON files here.")
    ] = None,
    anomaly_rate: Annotated[
        float, typer.Option(min=0.0, help="Injected anomalies per meter and year.")
    ] = 1.0,
    register: Annotated[
        bool,
        typer.Option(
            "--register/--no-register",
            help="Register buildings and meters (and the sim_* ground truth) first; "
            "--no-register relies on auto-registration (ESPHome then dead-letters).",
        ),
    ] = True,
    print_registration: Annotated[
        bool,
        typer.Option("--print-registration", help="Print what would be registered and stop."),
    ] = False,
    offline_devices: Annotated[
        int, typer.Option(min=0, help="Devices that go silent, then publish their backlog.")
    ] = 0,
    offline_hours: Annotated[int, typer.Option(min=1, help="Length of each silence [h].")] = 24,
    duplicate_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of messages published twice.")
    ] = 0.0,
    malformed_rate: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Extra broken message (bad JSON, NaN, wrong types, oversize) per message.",
        ),
    ] = 0.0,
    prefix: Annotated[
        str, typer.Option(help="Device-id and building-name prefix; default sim<seed>.")
    ] = "",
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Simulate a city (weather, buildings, meters, grid, anomalies) and feed it to wattwatch.

    By default the city is registered, then published over MQTT as real devices would
    (Linky, Shelly, Tasmota…), one simulated hour every --speed seconds; Ctrl-C stops cleanly
    and prints what was sent. --direct writes the same rows straight into the database.

    Examples: `wattwatch simulate --buildings 500 --days 120 --speed 0.05`;
    `wattwatch simulate --buildings 5000 --days 365 --direct --truth-dir truth/`.
    """
    from pathlib import Path

    from simulators.devices import parse_mix
    from simulators.publish import Faults
    from simulators.run import REALTIME_S_PER_HOUR, SimulateOptions, run_simulation
    from wattwatch.stack.stack import Stack

    config = settings(ctx)
    try:
        mix = parse_mix(formats)
        faults = Faults(offline_devices, offline_hours, duplicate_rate, malformed_rate)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    options = SimulateOptions(
        buildings=buildings,
        days=days,
        start=start or (datetime.now(UTC) - timedelta(days=days)).date().isoformat(),
        seed=seed,
        formats=mix,
        seconds_per_hour=REALTIME_S_PER_HOUR if realtime else speed,
        direct=direct,
        truth_dir=None if truth_dir is None else Path(truth_dir),
        anomaly_rate=anomaly_rate,
        register=register,
        print_registration=print_registration,
        faults=faults,
        prefix=prefix,
        progress=progress,
    )
    stack = Stack(config)
    needs_db = not print_registration and (direct or register)
    needs_mqtt = not print_registration and not direct
    result = run_simulation(
        options,
        database_url=stack.database_url() if needs_db else None,
        mqtt_url=stack.mqtt_url() if needs_mqtt else None,
    )
    if result.published is not None and result.published.interrupted:
        raise typer.Exit(130)


@dashboards_app.command("build")
def dashboards_build(
    ctx: typer.Context,
    out: Annotated[
        str, typer.Option(help="Provisioning folder to write.")
    ] = "deploy/grafana/provisioning",
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if a file is out of date.")
    ] = False,
) -> None:
    """Regenerate the dashboard JSON and provisioning YAML in deploy/grafana/provisioning."""
    from pathlib import Path

    from dashboards.build import provisioning_files, write_provisioning

    del ctx  # builds from code only: no settings needed
    folder = Path(out)
    if check:
        stale = [
            rel
            for rel, text in provisioning_files().items()
            if not (folder / rel).is_file() or (folder / rel).read_text(encoding="utf-8") != text
        ]
        for rel in stale:
            echo(f"out of date: {folder / rel}")
        if stale:
            raise typer.Exit(1)
        echo(f"{folder}: up to date")
        return
    changed = write_provisioning(folder)
    for path in changed:
        echo(f"wrote {path}")
    echo(f"{len(changed)} file(s) changed in {folder}")


@dashboards_app.command("publish")
def dashboards_publish(
    ctx: typer.Context,
    set_password: Annotated[
        bool,
        typer.Option(
            "--set-reader-password/--no-set-reader-password",
            help="Also set wattwatch_reader's password in the database "
            "(WATTWATCH_GRAFANA_DB_PASSWORD).",
        ),
    ] = True,
) -> None:
    """Push the dashboards, their folder and the TimescaleDB datasource to an existing
    Grafana (WATTWATCH_GRAFANA_URL, WATTWATCH_GRAFANA_TOKEN); safe to repeat."""
    from urllib.parse import urlsplit

    from dashboards.publish import GrafanaTarget, publish
    from storage.database import connect
    from storage.grafana import set_reader_password
    from wattwatch.stack.stack import Stack

    cfg = settings(ctx)
    if not cfg.grafana_url or not cfg.grafana_token:
        raise ConfigError(
            "WATTWATCH_GRAFANA_URL and WATTWATCH_GRAFANA_TOKEN: both are needed to publish"
        )
    db_url = Stack(cfg).database_url()
    parts = urlsplit(db_url)
    password = cfg.grafana_db_password or None
    if password is not None and set_password:
        with connect(db_url) as conn:
            set_reader_password(conn, password)
            conn.commit()
        echo("database: wattwatch_reader password set")
    target = GrafanaTarget(
        url=cfg.grafana_url,
        token=cfg.grafana_token,
        db_host=cfg.grafana_db_host or f"{parts.hostname}:{parts.port or 5432}",
        db_name=parts.path.lstrip("/") or "wattwatch",
        db_password=password,
    )
    report = publish(target, echo)
    echo(f"published {len(report.dashboards)} dashboards to {cfg.grafana_url}")


@dashboards_app.command("preview")
def dashboards_preview(
    ctx: typer.Context,
    out: Annotated[str, typer.Option(help="Folder of the PNG files.")] = "docs/dashboards",
    since: Annotated[
        str | None,
        typer.Option(help="ISO start of the time range (default: 7 days before --until)."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="ISO end of the time range (default: the newest reading)."),
    ] = None,
    building: Annotated[
        int | None, typer.Option(help="Building of the building dashboard (default: first).")
    ] = None,
) -> None:
    """Render one PNG per dashboard (matplotlib) from the same queries, against the database."""
    from pathlib import Path

    from dashboards.preview import render_previews
    from storage.database import connect
    from wattwatch.stack.stack import Stack

    cfg = settings(ctx)
    end, start = _when("until", until), _when("since", since)
    with connect(Stack(cfg).database_url(), autocommit=True) as conn:
        if end is None:
            row = conn.execute("SELECT max(ts) FROM readings").fetchone()
            if row is None or row[0] is None:
                typer.echo("no readings in the database: nothing to preview", err=True)
                raise typer.Exit(1)
            end = row[0]
        assert end is not None
        start = start or end - timedelta(days=7)
        choose = {} if building is None else {"building": [str(building)]}
        for path in render_previews(conn, Path(out), time_from=start, time_to=end, choose=choose):
            echo(f"wrote {path}")


token_app = typer.Typer(help="API tokens of the energy service's engineers.")
app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    engineer: Annotated[str, typer.Option(help="Engineer's name (created if new).")],
) -> None:
    """Create an API token for an engineer; it is printed once and stored only as a hash."""
    import asyncio

    from psycopg import AsyncConnection

    from storage.tokens import create_engineer_token
    from wattwatch.stack.stack import Stack

    name = engineer.strip()
    if not name or len(name) > 100:
        raise typer.BadParameter("1 to 100 characters", param_hint="--engineer")

    async def create() -> str:
        url = Stack(settings(ctx)).database_url()
        async with await AsyncConnection.connect(url) as conn:
            return await create_engineer_token(conn, name)

    echo(asyncio.run(create()))


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context,
    engineer: Annotated[str, typer.Option(help="Engineer whose tokens are revoked.")],
) -> None:
    """Revoke every token of an engineer."""
    import asyncio

    from psycopg import AsyncConnection

    from storage.tokens import revoke_engineer_tokens
    from wattwatch.stack.stack import Stack

    async def revoke() -> int:
        url = Stack(settings(ctx)).database_url()
        async with await AsyncConnection.connect(url) as conn:
            return await revoke_engineer_tokens(conn, engineer)

    echo(f"{asyncio.run(revoke())} token(s) revoked")


def main() -> None:
    """Entry point: run the CLI, turning wattwatch errors into one clear line."""
    try:
        app()
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        sys.exit(2)
    except WattwatchError as exc:
        typer.echo(f"wattwatch: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
