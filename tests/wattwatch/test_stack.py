"""The two README commands' machinery, for real: `wattwatch up/status/down` as subprocesses,
with the embedded PostgreSQL+TimescaleDB, Mosquitto and services, on free ports."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.fixtures.servers import TEST_PG_SETTINGS
from tests.ingest.publisher import Publisher
from wattwatch.stack.postgres import EmbeddedPostgres
from wattwatch.stack.system import free_port, port_in_use

pytestmark = pytest.mark.integration


def wattwatch(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wattwatch", *args],
        env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def base_env(state_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATTWATCH_")}
    env.update(
        WATTWATCH_STATE_DIR=str(state_dir / "state"),
        WATTWATCH_DB_PORT=str(free_port()),
        WATTWATCH_MQTT_PORT=str(free_port()),
        WATTWATCH_INGEST_METRICS_PORT=str(free_port()),
        WATTWATCH_API_PORT=str(free_port()),
        WATTWATCH_INGEST_FLUSH_INTERVAL_S="0.2",
    )
    return env


@pytest.fixture
def stack_env(state_dir: Path) -> Iterator[dict[str, str]]:
    env = base_env(state_dir)
    yield env
    wattwatch(env, "down")


def test_up_status_down_up_keeps_the_data(stack_env: dict[str, str]) -> None:
    up = wattwatch(stack_env, "up")
    assert up.returncode == 0, up.stderr
    # `up` returns once the ingestor has subscribed (its status file): a reading published
    # from then on is not lost.
    assert (Path(stack_env["WATTWATCH_STATE_DIR"]) / "run" / "ingest.status.json").exists()
    status = wattwatch(stack_env, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "TimescaleDB 2." in status.stdout
    assert "edition" in status.stdout
    for service in ("ingest", "processing", "api"):
        assert f"service {service}" in status.stdout
    # The API answers on its port.
    health_url = f"http://127.0.0.1:{stack_env['WATTWATCH_API_PORT']}/health"
    deadline = time.monotonic() + 30
    while True:
        try:
            assert httpx.get(health_url, timeout=2).status_code == 200
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, "the API never answered"
            time.sleep(0.2)

    # A reading travels device → broker → ingest service → database.
    # The embedded broker has no anonymous access: devices use the account `up` created.
    state = Path(stack_env["WATTWATCH_STATE_DIR"])
    password = (state / "mosquitto" / "wattwatch-devices-password").read_text().strip()
    port = stack_env["WATTWATCH_MQTT_PORT"]
    with pytest.raises(ConnectionRefusedError):
        Publisher(f"mqtt://127.0.0.1:{port}", client_id="anonymous")
    pub = Publisher(f"mqtt://wattwatch-devices:{password}@127.0.0.1:{port}", client_id="stack-test")
    payload = {"device": "boiler-1", "ts": "2025-01-15T06:00:00+01:00",
               "readings": [{"channel": "gas", "value": 1234.5, "unit": "kWh",
                             "quantity": "gas", "cumulative": True}]}  # fmt: skip
    pub.publish("wattwatch/boiler-1", json.dumps(payload).encode())
    pub.close()
    url = EmbeddedPostgres(root=state / "postgres", port=int(stack_env["WATTWATCH_DB_PORT"])).url()
    deadline = time.monotonic() + 30
    rows: list[tuple[object, ...]] = []
    while time.monotonic() < deadline and not rows:
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT value FROM readings").fetchall()
        time.sleep(0.2)
    assert rows == [(1234.5,)]

    down = wattwatch(stack_env, "down")
    assert down.returncode == 0, down.stderr
    # Every process is gone, API workers included: nothing listens on the ports any more.
    for port_name in ("WATTWATCH_API_PORT", "WATTWATCH_DB_PORT", "WATTWATCH_MQTT_PORT"):
        assert not port_in_use(int(stack_env[port_name])), port_name
    after_down = wattwatch(stack_env, "status")
    assert after_down.returncode == 1
    assert "DOWN" in after_down.stdout

    again = wattwatch(stack_env, "up")
    assert again.returncode == 0, again.stderr
    assert "0 applied now" in again.stdout
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT value FROM readings").fetchall() == [(1234.5,)]
    assert wattwatch(stack_env, "status").returncode == 0


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_unreachable_database_url(state_dir: Path) -> None:
    env = base_env(state_dir)
    env["WATTWATCH_DATABASE_URL"] = f"postgresql://nobody@127.0.0.1:{free_port()}/nothing"
    line = one_line_error(wattwatch(env, "up"))
    assert "cannot connect to the database" in line


def test_database_port_in_use(state_dir: Path) -> None:
    env = base_env(state_dir)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        env["WATTWATCH_DB_PORT"] = str(busy.getsockname()[1])
        line = one_line_error(wattwatch(env, "up"))
    assert line.startswith("wattwatch: WATTWATCH_DB_PORT:")
    assert "already in use" in line


def test_broker_port_in_use(stack_env: dict[str, str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        stack_env["WATTWATCH_MQTT_PORT"] = str(busy.getsockname()[1])
        line = one_line_error(wattwatch(stack_env, "up"))
    assert "WATTWATCH_MQTT_PORT:" in line


def test_unwritable_state_folder(state_dir: Path) -> None:
    env = base_env(state_dir)
    blocker = state_dir / "a-file"
    blocker.write_text("not a folder")
    env["WATTWATCH_STATE_DIR"] = str(blocker / "state")
    line = one_line_error(wattwatch(env, "up"))
    assert line.startswith("wattwatch: WATTWATCH_STATE_DIR:")


def test_database_without_timescaledb(state_dir: Path, pg: EmbeddedPostgres) -> None:
    plain = EmbeddedPostgres(
        root=state_dir / "plain",
        port=free_port(),
        settings={**TEST_PG_SETTINGS, "shared_preload_libraries": "''"},
    )
    plain.start()
    try:
        env = base_env(state_dir)
        env["WATTWATCH_DATABASE_URL"] = plain.url()
        line = one_line_error(wattwatch(env, "up"))
        assert "TimescaleDB" in line and "shared_preload_libraries" in line
    finally:
        plain.stop()


def test_bad_setting_value(state_dir: Path) -> None:
    env = base_env(state_dir)
    env["WATTWATCH_MQTT_URL"] = "http://broker"
    proc = wattwatch(env, "status")
    assert proc.returncode == 2
    assert one_line_error(proc).startswith("WATTWATCH_MQTT_URL:")


def test_help_works_everywhere() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATTWATCH_")}
    for args in [(), ("up",), ("ingest",), ("process",), ("dashboards",), ("migrate",)]:
        proc = wattwatch(env, *args, "--help")
        assert proc.returncode == 0, args
        assert "Usage" in proc.stdout
