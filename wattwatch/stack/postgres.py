"""A private PostgreSQL cluster with TimescaleDB preloaded, on loopback, owned by wattwatch."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from wattwatch.errors import StackError
from wattwatch.stack.system import (
    check_reachable,
    make_owned_dir,
    port_in_use,
    require_binary,
    service_user,
)

SUPERUSER = "wattwatch"
DATABASE = "wattwatch"
_CONF_NAME = "wattwatch.conf"


def find_bindir() -> Path:
    """The bin folder of the newest PostgreSQL that has TimescaleDB installed beside it."""
    candidates = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()),
        key=lambda p: int(p.parent.name),
        reverse=True,
    )
    for bindir in candidates:
        share = Path("/usr/share/postgresql") / bindir.parent.name / "extension"
        if (share / "timescaledb.control").is_file():
            return bindir
    if candidates:
        raise StackError(
            f"TimescaleDB is not installed for PostgreSQL {candidates[0].parent.name}: "
            "run deploy/bootstrap.sh"
        )
    return require_binary("initdb", []).parent


class EmbeddedPostgres:
    """One PostgreSQL cluster under ``root`` (data, log, password), listening on 127.0.0.1:port.

    Unix sockets are off so that clusters of several checkouts or test runs never collide.
    """

    def __init__(
        self,
        *,
        root: Path,
        port: int,
        settings: Mapping[str, str] | None = None,
        bindir: Path | None = None,
    ) -> None:
        self.root = root
        self.port = port
        self.data_dir = root / "data"
        self.log_file = root / "postgres.log"
        self.password_file = root.parent / "db-password"
        self.extra_settings = dict(settings or {})
        self._bindir = bindir
        self._owner = service_user("postgres")

    # --- plumbing -----------------------------------------------------------------------------
    @property
    def bindir(self) -> Path:
        if self._bindir is None:
            self._bindir = find_bindir()
        return self._bindir

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        owner = self._owner
        try:
            return subprocess.run(
                [str(self.bindir / args[0]), *args[1:]],
                capture_output=True,
                text=True,
                check=check,
                cwd="/",
                user=owner.pw_uid if owner else None,
                group=owner.pw_gid if owner else None,
                extra_groups=[] if owner else None,
            )
        except subprocess.CalledProcessError as exc:
            detail = (exc.stderr or exc.stdout or "").strip().splitlines()
            raise StackError(
                f"{args[0]} failed: {detail[-1] if detail else exc}{self._log_tail()}"
            ) from None

    def _log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        errors = [line for line in lines[-20:] if "FATAL" in line or "ERROR" in line]
        return f" ({errors[-1].strip()})" if errors else ""

    @property
    def password(self) -> str:
        try:
            return self.password_file.read_text().strip()
        except OSError:
            raise StackError(
                f"the database password file {self.password_file} is missing"
            ) from None

    def url(self, database: str = DATABASE) -> str:
        """A libpq URL for this cluster."""
        return (
            f"postgresql://{SUPERUSER}:{quote(self.password, safe='')}"
            f"@127.0.0.1:{self.port}/{database}"
        )

    # --- lifecycle ----------------------------------------------------------------------------
    @property
    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    def init(self) -> None:
        """Create the cluster once; a second call keeps the data."""
        if self.initialised:
            return
        make_owned_dir(self.root.parent, None, mode=0o755)
        check_reachable(self.root.parent, self._owner)
        make_owned_dir(self.root, self._owner)
        if not self.password_file.exists():
            self.password_file.write_text(secrets.token_urlsafe(24) + "\n")
            self.password_file.chmod(0o600)
        pwfile = self.root / "initdb-password"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if self._owner is not None:
            os.chown(pwfile, self._owner.pw_uid, self._owner.pw_gid)
        try:
            self._run(
                "initdb",
                "-D", str(self.data_dir),
                "-U", SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a") as handle:
            handle.write(f"\ninclude_if_exists = '{_CONF_NAME}'\n")

    def _write_conf(self) -> None:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": "''",
            "shared_preload_libraries": "'timescaledb'",
            "timescaledb.telemetry_level": "off",
            "max_connections": "100",
            "shared_buffers": "'256MB'",
            "timezone": "'UTC'",
            "log_timezone": "'UTC'",
        }
        settings.update(self.extra_settings)
        text = "# written by wattwatch at each start; edit the settings, not this file\n"
        text += "".join(f"{key} = {value}\n" for key, value in settings.items())
        (self.data_dir / _CONF_NAME).write_text(text)

    def running(self) -> bool:
        if not self.initialised:
            return False
        return self._run("pg_ctl", "status", "-D", str(self.data_dir), check=False).returncode == 0

    def start(self) -> None:
        """Start the cluster and create the wattwatch database; no-op when already running."""
        self.init()
        if self.running():
            return
        if port_in_use(self.port):
            raise StackError(
                f"WATTWATCH_DB_PORT: port {self.port} on 127.0.0.1 is already in use; "
                "choose another port"
            )
        self._write_conf()
        self._run(
            "pg_ctl", "start", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60"
        )
        self.ensure_database(DATABASE)

    def stop(self) -> None:
        """Fast shutdown: running transactions are rolled back, committed data is kept."""
        if self.running():
            self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60")

    def restart(self) -> None:
        self.stop()
        self.start()

    def ensure_database(self, name: str, *, template: str | None = None) -> None:
        """Create database ``name`` unless it exists (optionally as a copy of ``template``)."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if exists:
                return
            query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template:
                query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
            conn.execute(query)
