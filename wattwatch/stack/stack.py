"""`up`, `down` and `status` of the whole system: embedded servers where no URL is given."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from ingest.routing import Router
from storage.database import connect, timescale_info
from storage.migrate import migrate
from wattwatch.errors import StackError, WattwatchError
from wattwatch.settings import Settings
from wattwatch.stack.dynsec import DynsecAdmin, devices_grant, ingestor_grant, new_password
from wattwatch.stack.mosquitto import EmbeddedMosquitto
from wattwatch.stack.postgres import EmbeddedPostgres
from wattwatch.stack.services import SERVICES, ServiceRunner
from wattwatch.stack.system import is_writable_dir, pid_alive, wait_for

Report = Callable[[str], None]

INGEST_ACCOUNT = "wattwatch-ingest"
DEVICES_ACCOUNT = "wattwatch-devices"
# `up` waits this long for the ingestor's subscriptions (it waits for the database first).
INGEST_READY_S = 60


@dataclass(frozen=True, slots=True)
class PartStatus:
    """One line of `wattwatch status`."""

    name: str
    healthy: bool
    detail: str


class Stack:
    """The parts of one wattwatch installation, as the settings describe them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state_dir = settings.state_dir.absolute()
        self.postgres = EmbeddedPostgres(root=self.state_dir / "postgres", port=settings.db_port)
        # Dynamic security: households get accounts at runtime (the API), the ingestor and
        # the engineers' devices get theirs at `up`; nobody connects anonymously.
        self.mosquitto = EmbeddedMosquitto(
            root=self.state_dir / "mosquitto", port=settings.mqtt_port, auth="dynsec"
        )
        self.services = ServiceRunner(
            run_dir=self.state_dir / "run", log_dir=self.state_dir / "logs"
        )

    # --- addresses ----------------------------------------------------------------------------
    def database_url(self) -> str:
        """The database the services use: the configured one, or the embedded cluster."""
        return self.settings.database_url or self.postgres.url()

    def mqtt_url(self, account: str = DEVICES_ACCOUNT) -> str:
        """The broker for tools and devices (the simulator, `mosquitto_pub`): the configured
        one, or the embedded broker with the credentials of ``account``."""
        if self.settings.mqtt_url:
            return self.settings.mqtt_url
        password_file = self.mosquitto.root / f"{account}-password"
        if not password_file.exists():
            return self.mosquitto.url  # not set up yet: `up` creates the accounts
        password = password_file.read_text().strip()
        return f"mqtt://{account}:{quote(password, safe='')}@127.0.0.1:{self.settings.mqtt_port}"

    def service_env(self, service: str) -> dict[str, str]:
        """Environment handed to a service so it reaches the same servers as this process."""
        account = INGEST_ACCOUNT if service == "ingest" else DEVICES_ACCOUNT
        return {
            "WATTWATCH_DATABASE_URL": self.database_url(),
            "WATTWATCH_MQTT_URL": self.mqtt_url(account),
            "WATTWATCH_STATE_DIR": str(self.state_dir),
        }

    def _broker_accounts(self) -> None:
        """Create (or refresh) the ingestor's and the devices' accounts on the embedded broker."""
        filters = [route.topic_filter for route in Router(self.settings.ingest_topics).routes]
        admin = DynsecAdmin(self.mosquitto.admin_url)
        accounts = [
            (INGEST_ACCOUNT, ingestor_grant(self.settings.ingest_share_group, filters),
             self.settings.ingest_client_id),
            (DEVICES_ACCOUNT, devices_grant(filters), ""),
        ]  # fmt: skip
        for username, grant, client_id in accounts:
            password_file = self.mosquitto.root / f"{username}-password"
            if not password_file.exists():
                password_file.write_text(new_password() + "\n")
                password_file.chmod(0o600)
            admin.ensure_account(
                username=username,
                password=password_file.read_text().strip(),
                grant=grant,
                client_id=client_id,
            )

    # --- lifecycle ----------------------------------------------------------------------------
    def _check_state_dir(self) -> None:
        if not is_writable_dir(self.state_dir):
            raise StackError(f"WATTWATCH_STATE_DIR: {self.state_dir} is not writable")
        if self.state_dir.exists() and not self.state_dir.is_dir():
            raise StackError(f"WATTWATCH_STATE_DIR: {self.state_dir} is not a folder")

    def up(self, report: Report) -> None:
        """Start what is configured, apply migrations, start the services. Keeps existing data."""
        if self.settings.embedded_database or self.settings.embedded_broker:
            self._check_state_dir()
        if self.settings.embedded_database:
            self.postgres.start()
            report(f"database   embedded PostgreSQL on 127.0.0.1:{self.settings.db_port}")
        else:
            report(f"database   {_redact(self.database_url())}")
        with connect(self.database_url()) as conn:
            applied = migrate(conn)
        report(f"migrations {len(applied)} applied now")
        if self.settings.embedded_broker:
            self.mosquitto.start()
            self._broker_accounts()
            report(
                f"broker     embedded Mosquitto on 127.0.0.1:{self.settings.mqtt_port} "
                f"(devices log in as {DEVICES_ACCOUNT}, password in "
                f"{self.mosquitto.root / (DEVICES_ACCOUNT + '-password')})"
            )
        else:
            check_broker(self.mqtt_url())
            report(f"broker     {_redact(self.mqtt_url())}")
        for name in self.settings.services:
            # A fresh ingestor is waited for; its last run's status file would pass at once.
            wait = name == "ingest" and self.services.pid(name) is None
            if wait:
                self.ingest_status_file().unlink(missing_ok=True)
            pid = self.services.start(SERVICES[name], self.service_env(name))
            if wait:
                self._wait_for_ingest(pid)
            report(f"service    {name} (pid {pid}, log {self.services.log_file(name)})")

    def ingest_status_file(self) -> Path:
        """Where the ingestor writes its running totals, first once it has subscribed."""
        return self.services.run_dir / "ingest.status.json"

    def _wait_for_ingest(self, pid: int) -> None:
        """Until the ingestor has subscribed (it writes its status file then): the broker
        keeps no message for a subscriber it has not met, so a device publishing between
        `up` and the first subscription would lose its reading."""
        status = self.ingest_status_file()
        log = self.services.log_file("ingest")
        wait_for(
            lambda: status.exists() or not pid_alive(pid),
            timeout_s=INGEST_READY_S,
            what=f"the ingest service's subscription (see {log})",
        )
        if not status.exists():
            raise StackError(f"service ingest stopped; see {log}")

    def down(self, report: Report) -> None:
        """Stop the services, then the embedded broker and database."""
        for name in reversed(list(SERVICES)):
            if self.services.stop(name):
                report(f"stopped    {name}")
        if self.settings.embedded_broker and self.mosquitto.running():
            self.mosquitto.stop()
            report("stopped    broker")
        if self.settings.embedded_database and self.postgres.running():
            self.postgres.stop()
            report("stopped    database")

    def status(self) -> list[PartStatus]:
        """Each part's health; never raises for a part that is down."""
        parts = [self._database_status(), self._broker_status()]
        for name in self.settings.services:
            pid = self.services.pid(name)
            detail = f"running, pid {pid}" if pid else "not running"
            if pid and name == "ingest":
                detail += self._ingest_totals()
            parts.append(PartStatus(f"service {name}", pid is not None, detail))
        return parts

    def _ingest_totals(self) -> str:
        """The ingestor's running totals, from the status file it rewrites every few seconds."""
        try:
            totals = json.loads(self.ingest_status_file().read_text())
        except (OSError, ValueError):
            return ""
        last = totals.get("last_commit_unix")
        ago = f", last commit {time.time() - last:.0f} s ago" if last else ", no commit yet"
        return (
            f"; {totals.get('messages', 0)} messages, {totals.get('readings_written', 0)} "
            f"readings written, {totals.get('duplicates', 0)} duplicates absorbed, "
            f"{totals.get('dead_letters', 0)} dead letters{ago}"
        )

    def _database_status(self) -> PartStatus:
        if self.settings.embedded_database and not self.postgres.running():
            return PartStatus("database", False, "embedded PostgreSQL is not running")
        try:
            with connect(self.database_url()) as conn:
                info = timescale_info(conn)
        except WattwatchError as exc:
            return PartStatus("database", False, str(exc))
        if info.timescaledb_version is None:
            return PartStatus(
                "database", False, f"PostgreSQL {info.postgres_version}, TimescaleDB not created"
            )
        return PartStatus(
            "database",
            True,
            f"PostgreSQL {info.postgres_version}, TimescaleDB {info.timescaledb_version} "
            f"({info.edition} edition)",
        )

    def _broker_status(self) -> PartStatus:
        try:
            check_broker(self.mqtt_url())
        except StackError as exc:
            return PartStatus("broker", False, str(exc))
        return PartStatus("broker", True, f"MQTT at {_redact(self.mqtt_url())}")


def check_broker(url: str, timeout_s: float = 3.0) -> None:
    """Open a TCP connection to the broker, or raise StackError saying why not."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 1883
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise StackError(
            f"broker {host}:{port} unreachable: {os.strerror(exc.errno or 0) or exc}"
        ) from None


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def state_path(settings: Settings, *names: str) -> Path:
    """A path under the state folder."""
    return settings.state_dir.absolute().joinpath(*names)
