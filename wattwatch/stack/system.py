"""Small process and port helpers shared by the embedded servers."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

from wattwatch.errors import StackError


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    """Poll ``check`` until it is true, or raise StackError naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise StackError(f"{what} did not happen within {timeout_s:.0f} s")


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists (and is not a zombie we can reap)."""
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        if finished == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def read_pid(path: Path) -> int | None:
    """The pid stored in a pid file, or None when the file is missing or stale."""
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid_alive(pid) else None


def stop_pid(pid: int, *, timeout_s: float = 15.0) -> None:
    """SIGTERM, wait, then SIGKILL if the process will not go."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def service_user(preferred: str) -> pwd.struct_passwd | None:
    """The unprivileged account to run a server as when we are root, else None (run as self).

    PostgreSQL refuses to run as root, and Mosquitto drops to an account of its own.
    """
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(preferred)
    except KeyError:
        raise StackError(
            f"running as root needs the system user {preferred!r}: run deploy/bootstrap.sh"
        ) from None


def make_owned_dir(path: Path, owner: pwd.struct_passwd | None, mode: int = 0o700) -> None:
    """Create ``path`` (and parents) writable by ``owner``, with a clear error if we cannot."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
        if owner is not None:
            os.chown(path, owner.pw_uid, owner.pw_gid)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise StackError(f"WATTWATCH_STATE_DIR: cannot create {path}: {reason}") from None


def check_reachable(path: Path, owner: pwd.struct_passwd | None) -> None:
    """Fail early when ``owner`` cannot traverse the folders above ``path``."""
    if owner is None:
        return
    for parent in path.resolve().parents:
        st = parent.stat()
        if st.st_uid == owner.pw_uid:
            continue
        if not st.st_mode & 0o001:
            raise StackError(
                f"WATTWATCH_STATE_DIR: {path} is under {parent}, which the {owner.pw_name!r} "
                "user cannot enter; choose a state folder outside it"
            )


def require_binary(name: str, candidates: list[Path]) -> Path:
    """Find an executable, or explain how to install it."""
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    raise StackError(f"{name} not found: run deploy/bootstrap.sh to install it")


def is_writable_dir(path: Path) -> bool:
    """True when ``path`` exists as a folder we can write into, or can be created."""
    probe = path
    while not probe.exists():
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)


__all__ = [
    "check_reachable",
    "free_port",
    "is_writable_dir",
    "make_owned_dir",
    "pid_alive",
    "port_in_use",
    "read_pid",
    "require_binary",
    "service_user",
    "stop_pid",
    "wait_for",
]
