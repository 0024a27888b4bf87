"""The `wattwatch` command: one entry point for the stack, the services and the tools."""

from __future__ import annotations

import sys
from typing import Annotated

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
        bool, typer.Option("--service", help="Keep running: refresh every interval.")
    ] = False,
) -> None:
    """Refresh rollups and apply retention (once, or as a service with --service)."""
    from processing.service import run_once, run_service

    if service:
        run_service(settings(ctx))
    else:
        run_once(settings(ctx), echo)


def _not_yet(what: str, issue: int) -> None:
    typer.echo(f"wattwatch: {what} is not available yet (tracked in issue {issue})", err=True)
    raise typer.Exit(2)


@app.command()
def api(ctx: typer.Context) -> None:
    """Serve the HTTP API for engineers, households and the public."""
    settings(ctx)
    _not_yet("the API", 6)


@app.command()
def simulate(ctx: typer.Context) -> None:
    """Simulate a city of buildings, meters, weather and grid sensors."""
    settings(ctx)
    _not_yet("the simulator", 4)


@dashboards_app.command("build")
def dashboards_build(ctx: typer.Context) -> None:
    """Regenerate the dashboard JSON in deploy/grafana/provisioning."""
    settings(ctx)
    _not_yet("dashboards", 7)


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
