"""The wattwatch services started by `wattwatch up`: detached processes with pid and log files."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from wattwatch.stack.system import read_pid, stop_pid


@dataclass(frozen=True, slots=True)
class Service:
    """One long-running wattwatch subcommand."""

    name: str
    argv: tuple[str, ...]  # arguments after `wattwatch`


# The services `wattwatch up` may start, in start order.
SERVICES: Mapping[str, Service] = {
    "ingest": Service("ingest", ("ingest",)),
    "processing": Service("processing", ("process", "--service")),
    "api": Service("api", ("api",)),
}


class ServiceRunner:
    """Starts and stops services under ``run_dir`` (pid files) and ``log_dir``."""

    def __init__(self, *, run_dir: Path, log_dir: Path) -> None:
        self.run_dir = run_dir
        self.log_dir = log_dir

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def pid(self, name: str) -> int | None:
        return read_pid(self.pid_file(name))

    def start(self, service: Service, env: Mapping[str, str]) -> int:
        """Start ``service`` unless it runs already; returns its pid."""
        running = self.pid(service.name)
        if running is not None:
            return running
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file(service.name).open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "wattwatch", *service.argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
                start_new_session=True,  # survives the terminal that ran `wattwatch up`
            )
        self.pid_file(service.name).write_text(f"{proc.pid}\n")
        return proc.pid

    def stop(self, name: str) -> bool:
        """Stop a service; True when one was running."""
        pid = self.pid(name)
        self.pid_file(name).unlink(missing_ok=True)
        if pid is None:
            return False
        stop_pid(pid)
        return True
