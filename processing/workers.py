"""Chunks of meters loaded and scanned in worker processes, several at once.

An anomaly run spends its time reading each chunk's matrix (psycopg's loop over one COPY
message per row: 90 % of ``bench.incremental``, twenty-fourth session) and scanning it, whose
NumPy calls are short enough that the GIL between them keeps threads from running together
(``bench.processing``, twenty-fifth session: two threads 1.1–1.2 × faster than one, two
processes 1.3–1.9 ×; ``bench.incremental``: 1.5 ×). So whole chunks go to processes: each
loads its chunk, on its own database connection or from a matrix in shared memory, scans it
and sends back only the events. The chunks are the same whatever the count of workers, and
so are the events.

The workers fork from a server process started once (``forkserver``), not from the caller:
the service runs beside other threads, which a plain ``fork`` would copy holding their locks.
The pool lives as long as the process, so the service pays for starting it once.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import signal
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import psycopg

from processing.events import Anomaly
from storage.matrices import MeterInfo, load_matrix

FloatArray = npt.NDArray[np.float64]

# Imported once by the fork server, so that a worker starts with the detectors loaded.
_PRELOAD: Final = ["processing.pipeline"]
_POOLS: dict[int, ProcessPoolExecutor] = {}


@dataclass(frozen=True, slots=True)
class DatabaseRows:
    """A chunk's hourly matrix read from the rollups on a connection of its own."""

    conninfo: str
    meters: MeterInfo
    start: datetime
    end: datetime

    def load(self) -> FloatArray:
        with psycopg.connect(self.conninfo) as conn:
            return load_matrix(conn, self.meters, start=self.start, end=self.end).values


@dataclass(frozen=True, slots=True)
class SharedRows:
    """Rows ``[lo, hi)`` of a :class:`SharedMatrix`, read where they lie."""

    path: str
    shape: tuple[int, int]
    lo: int
    hi: int

    def load(self) -> FloatArray:
        matrix = np.memmap(self.path, dtype=np.float64, mode="r", shape=self.shape)
        return np.asarray(matrix[self.lo : self.hi])


class SharedMatrix:
    """A (rows, steps) float64 matrix in a file of shared memory, which the workers map
    instead of receiving a copy; ``values`` is the array to fill. The file goes with
    :meth:`close` (or the ``with`` block)."""

    def __init__(self, shape: tuple[int, int]) -> None:
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"shape: expected (rows, steps) >= 1, got {shape}")
        # tmpfs where Linux has it; mkstemp creates the file itself, mode 0600, O_EXCL.
        shm = Path("/dev/shm")  # noqa: S108
        where = str(shm) if shm.is_dir() else None
        fd, self.path = tempfile.mkstemp(prefix="wattwatch-", suffix=".f8", dir=where)
        os.close(fd)
        self.shape = (int(shape[0]), int(shape[1]))
        self.values: FloatArray = np.memmap(self.path, dtype=np.float64, mode="w+", shape=shape)

    def rows(self, lo: int, hi: int) -> SharedRows:
        if not 0 <= lo < hi <= self.shape[0]:
            raise ValueError(f"rows: expected 0 <= lo < hi <= {self.shape[0]}, got {lo}, {hi}")
        return SharedRows(self.path, self.shape, lo, hi)

    def close(self) -> None:
        del self.values
        Path(self.path).unlink(missing_ok=True)

    def __enter__(self) -> SharedMatrix:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class ChunkScan:
    """One chunk's work: load ``rows``, then ``scan(matrix, **kwargs)``. ``scan`` is a
    module-level function (a worker receives it by name)."""

    rows: DatabaseRows | SharedRows
    scan: Callable[..., list[Anomaly]]
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """A chunk's events, where its time went [s], and the process that loaded and
    scanned it."""

    found: list[Anomaly]
    read_seconds: float
    scan_seconds: float
    pid: int = field(default_factory=os.getpid)


def run_chunk(job: ChunkScan) -> ChunkResult:
    """Load and scan one chunk, in whichever process calls it."""
    t0 = time.perf_counter()
    x = job.rows.load()
    t1 = time.perf_counter()
    found = job.scan(x, **job.kwargs)
    return ChunkResult(found, t1 - t0, time.perf_counter() - t1)


def run_chunks(jobs: Sequence[ChunkScan], workers: int) -> Iterator[ChunkResult]:
    """Each job's result, in the jobs' order, with up to ``workers`` chunks at once; in this
    process when ``workers`` is 1 or there is one job."""
    if workers < 1:
        raise ValueError(f"workers: must be >= 1, got {workers}")
    if workers == 1 or len(jobs) <= 1:
        yield from map(run_chunk, jobs)
        return
    pool = _pool(workers)
    try:
        yield from pool.map(run_chunk, jobs)
    except BrokenProcessPool:
        # A worker died (killed, out of memory): the next run starts a new pool.
        _POOLS.pop(workers, None)
        raise


def _pool(workers: int) -> ProcessPoolExecutor:
    if workers not in _POOLS:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)
        _POOLS[workers] = ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_ignore_interrupts
        )
    return _POOLS[workers]


def _ignore_interrupts() -> None:
    # Ctrl-C reaches the whole process group: the caller decides when to stop, and a worker
    # that stopped on it would break the pool under the run in progress.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@atexit.register
def _shutdown() -> None:
    for pool in _POOLS.values():
        pool.shutdown(cancel_futures=True)
    _POOLS.clear()
