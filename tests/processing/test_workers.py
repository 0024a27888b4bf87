"""Chunks scanned in worker processes find what this process finds."""

from __future__ import annotations

import os
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from processing.detectors import anomaly_scan
from processing.workers import ChunkResult, ChunkScan, SharedMatrix, run_chunks

START = datetime(2025, 1, 6)  # a Monday, local midnight
METERS, STEPS = 120, 6 * 168
SPIKES = ((7, 5 * 168 + 40), (70, 5 * 168 + 100), (119, 4 * 168 + 13))


def _homes() -> np.ndarray:
    """Hourly use of homes with a daily shape, noise, and a spike on each of ``SPIKES``."""
    rng = np.random.default_rng(3)
    hour = np.arange(STEPS) % 24
    shape = 0.4 + 0.3 * np.sin(2 * np.pi * (hour - 8) / 24)
    x = rng.uniform(0.5, 2.0, (METERS, 1)) * shape * rng.lognormal(0.0, 0.05, (METERS, STEPS))
    for meter, step in SPIKES:
        x[meter, step] += 8.0
    return x


def _events(results: list[ChunkResult]) -> list[list[tuple[int, str, int, int, str]]]:
    return [[(a.meter_index, a.kind, a.start, a.end, a.reason) for a in r.found] for r in results]


def test_two_workers_find_the_events_this_process_finds() -> None:
    with SharedMatrix((METERS, STEPS)) as shared:
        shared.values[:] = _homes()
        jobs = [
            ChunkScan(shared.rows(lo, hi), anomaly_scan, {"start": START, "meter_offset": lo})
            for lo, hi in ((0, 60), (60, METERS))
        ]
        here = list(run_chunks(jobs, workers=1))
        there = list(run_chunks(jobs, workers=2))
    assert _events(there) == _events(here)
    spikes = {(a.meter_index, a.start) for r in there for a in r.found if a.kind == "spike"}
    assert set(SPIKES) <= spikes
    # Each chunk's meters are numbered from the matrix's first row.
    assert all(a.meter_index >= 60 for a in there[1].found)
    assert {r.pid for r in here} == {os.getpid()}
    assert os.getpid() not in {r.pid for r in there}
    assert all(r.read_seconds >= 0 and r.scan_seconds > 0 for r in there)


def test_a_shared_matrix_checks_its_rows_and_leaves_no_file() -> None:
    with SharedMatrix((4, 10)) as shared:
        path = Path(shared.path)
        shared.values[2] = 7.0
        assert path.exists()
        np.testing.assert_array_equal(shared.rows(1, 3).load(), [[0.0] * 10, [7.0] * 10])
        with pytest.raises(ValueError, match="rows"):
            shared.rows(3, 5)
    assert not path.exists()
    with pytest.raises(ValueError, match="shape"):
        SharedMatrix((0, 10))


def _die(_x: np.ndarray) -> list:
    os._exit(3)  # a worker killed mid-chunk (out of memory, kill -9)


def test_a_dead_worker_fails_the_run_and_the_next_run_starts_new_ones() -> None:
    with SharedMatrix((METERS, STEPS)) as shared:
        shared.values[:] = _homes()
        halves = [shared.rows(0, 60), shared.rows(60, METERS)]
        with pytest.raises(BrokenProcessPool):
            list(run_chunks([ChunkScan(rows, _die) for rows in halves], workers=2))
        jobs = [ChunkScan(rows, anomaly_scan, {"start": START}) for rows in halves]
        again = list(run_chunks(jobs, workers=2))
    assert len(again) == 2 and os.getpid() not in {r.pid for r in again}
    assert all(r.found for r in again)


def test_run_chunks_needs_a_worker() -> None:
    with pytest.raises(ValueError, match="workers"):
        list(run_chunks([], workers=0))
