"""A private Mosquitto broker on loopback, configured so that no QoS 1 message is dropped."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path
from typing import Literal

from wattwatch.errors import StackError
from wattwatch.stack.system import (
    check_reachable,
    make_owned_dir,
    port_in_use,
    read_pid,
    require_binary,
    service_user,
    stop_pid,
    wait_for,
)

# Mosquitto's defaults drop data silently (design.md §2): persistence off, a 30-minute autosave,
# and 1000 queued messages per client. Queues here are bounded only by this large count,
# which at ~200 bytes a message is about 1 GB of broker memory.
MAX_QUEUED_MESSAGES = 5_000_000
AUTOSAVE_INTERVAL_S = 10
MAX_PACKET_BYTES = 1_048_576  # larger payloads are refused by the broker itself
DYNSEC_PLUGIN = Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so")
DYNSEC_ADMIN = "wattwatch-admin"


class EmbeddedMosquitto:
    """One Mosquitto under ``root`` (config, persistence, log, pid), listening on 127.0.0.1:port."""

    def __init__(
        self,
        *,
        root: Path,
        port: int,
        extra_config: str = "",
        auth: Literal["anonymous", "dynsec"] = "anonymous",
    ) -> None:
        # auth="dynsec": no anonymous clients; users, roles and ACLs are managed at runtime
        # through the dynamic-security plugin ($CONTROL/dynamic-security/v1), by an admin
        # whose generated password is kept in ``admin_password_file`` (mode 0600).
        self.auth = auth
        self.root = root
        self.port = port
        self.conf_file = root / "mosquitto.conf"
        self.data_dir = root / "data"
        self.log_file = root / "mosquitto.log"
        self.pid_file = root / "mosquitto.pid"
        self.extra_config = extra_config
        self.dynsec_file = root / "dynamic-security.json"
        self.admin_password_file = root / "admin-password"
        self._owner = service_user("mosquitto")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        """URL with the dynamic-security admin's credentials (auth="dynsec" only)."""
        password = self.admin_password_file.read_text().strip()
        return f"mqtt://{DYNSEC_ADMIN}:{password}@127.0.0.1:{self.port}"

    def _auth_config(self) -> str:
        if self.auth == "anonymous":
            return "allow_anonymous true\n"
        return (
            "allow_anonymous false\n"
            f"plugin {DYNSEC_PLUGIN}\n"
            f"plugin_opt_config_file {self.dynsec_file}\n"
        )

    def _init_dynsec(self) -> None:
        """Create the plugin's file with an admin user once; later starts keep it."""
        if self.dynsec_file.exists():
            return
        if not DYNSEC_PLUGIN.exists():
            raise StackError(f"mosquitto's dynamic-security plugin is missing: {DYNSEC_PLUGIN}")
        ctrl = require_binary("mosquitto_ctrl", [Path("/usr/bin/mosquitto_ctrl")])
        password = secrets.token_urlsafe(24)
        self.admin_password_file.write_text(password + "\n")
        self.admin_password_file.chmod(0o600)
        proc = subprocess.run(
            [str(ctrl), "dynsec", "init", str(self.dynsec_file), DYNSEC_ADMIN, password],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0 or not self.dynsec_file.exists():
            raise StackError(f"mosquitto_ctrl dynsec init failed: {proc.stderr.strip()}")
        if self._owner is not None:  # the plugin rewrites the file as the broker's user
            os.chown(self.dynsec_file, self._owner.pw_uid, self._owner.pw_gid)

    def config_text(self) -> str:
        """The broker configuration, rewritten at every start."""
        user = f"user {self._owner.pw_name}\n" if self._owner else ""
        return (
            "# written by wattwatch at each start\n"
            f"{user}"
            f"pid_file {self.pid_file}\n"
            "per_listener_settings false\n"
            f"listener {self.port} 127.0.0.1\n"
            "protocol mqtt\n"
            f"{self._auth_config()}"
            "persistence true\n"
            f"persistence_location {self.data_dir}/\n"
            f"autosave_interval {AUTOSAVE_INTERVAL_S}\n"
            f"max_queued_messages {MAX_QUEUED_MESSAGES}\n"
            "max_queued_bytes 0\n"
            "max_inflight_messages 0\n"  # 0: bounded by each client's Receive Maximum instead
            f"max_packet_size {MAX_PACKET_BYTES}\n"
            "persistent_client_expiration 14d\n"
            "log_dest file " + str(self.log_file) + "\n"
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
            "connection_messages true\n"
            f"{self.extra_config}"
        )

    def running(self) -> bool:
        return read_pid(self.pid_file) is not None

    def start(self) -> None:
        """Start the broker in the background; no-op when already running."""
        if self.running():
            return
        binary = require_binary("mosquitto", [Path("/usr/sbin/mosquitto")])
        if port_in_use(self.port):
            raise StackError(
                f"WATTWATCH_MQTT_PORT: port {self.port} on 127.0.0.1 is already in use; "
                "choose another port"
            )
        make_owned_dir(self.root.parent, None, mode=0o755)
        check_reachable(self.root, self._owner)
        make_owned_dir(self.root, self._owner, mode=0o755)
        make_owned_dir(self.data_dir, self._owner)
        if self.auth == "dynsec":
            self._init_dynsec()
        self.conf_file.write_text(self.config_text())
        for path in (self.log_file, self.pid_file):
            path.touch()
            if self._owner is not None:
                os.chown(path, self._owner.pw_uid, self._owner.pw_gid)
        self.pid_file.write_text("")
        proc = subprocess.run(
            [str(binary), "-c", str(self.conf_file), "-d"],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise StackError(
                f"mosquitto failed to start: {proc.stderr.strip() or self._log_tail()}"
            )
        try:
            wait_for(lambda: port_in_use(self.port), timeout_s=15, what="mosquitto listening")
        except StackError:
            raise StackError(f"mosquitto did not start: {self._log_tail()}") from None

    def stop(self) -> None:
        """SIGTERM: Mosquitto writes its persistence file and exits."""
        pid = read_pid(self.pid_file)
        if pid is not None:
            stop_pid(pid)

    def _log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return lines[-1] if lines else "empty log"
