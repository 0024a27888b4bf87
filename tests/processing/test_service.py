"""The processing job's one run, from its settings to its report line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from processing.service import check_thresholds, pipeline_config, run_once
from storage.meters import register_meter
from storage.readings import write_readings
from storage.rollups import refresh_rollups
from wattwatch.errors import ConfigError
from wattwatch.settings import Settings

T0 = datetime(2025, 1, 5, 23, tzinfo=UTC)  # local midnight
HOURS = 6 * 168


def _homes(conn: psycopg.Connection, count: int) -> None:
    """``count`` homes' hourly electricity indexes over six weeks."""
    rng = np.random.default_rng(2)
    hour = np.arange(HOURS) % 24
    for k in range(count):
        meter = register_meter(
            conn, device_format="own_json", device_id=f"home-{k}", channel="",
            quantity="electricity", unit="kWh", cumulative=True,
        ).id  # fmt: skip
        use = (0.4 + 0.3 * np.sin(2 * np.pi * (hour - 8) / 24)) * rng.lognormal(0, 0.05, HOURS)
        index = 100.0 + np.cumsum(use)
        write_readings(
            conn, [(meter, T0 + timedelta(hours=i + 1), float(v)) for i, v in enumerate(index)]
        )
    refresh_rollups(conn)
    conn.commit()


def test_an_anomaly_run_reports_where_its_time_went_in_one_process_or_in_workers(
    conn: psycopg.Connection, db_url: str
) -> None:
    _homes(conn, 3)
    end = T0 + timedelta(hours=HOURS)
    seconds = r"\d+\.\d reading, \d+\.\d scanning\)$"
    for workers, split in ((1, r"\(\d+\.\d s: "), (2, r"\(\d+\.\d s; 2 workers' seconds: ")):
        lines: list[str] = []
        settings = Settings(
            database_url=db_url, processing_workers=workers, processing_chunk_meters=2
        )
        out = run_once(
            settings, lines.append, only=("anomalies",), since=end - timedelta(days=1), until=end
        )
        assert out["anomalies"]["chunks"] == 2
        assert out["anomalies"]["workers"] == workers
        (line,) = [line for line in lines if line.startswith("anomalies:")]
        assert re.search(split + seconds, line), line


def test_python_m_wattwatch_process_runs_its_chunks_in_workers(
    conn: psycopg.Connection, db_url: str
) -> None:
    """As ``wattwatch up`` starts the service: ``python -m wattwatch``. Each worker starts
    from the parent's main module, which must not run the command again."""
    _homes(conn, 3)
    end = T0 + timedelta(hours=HOURS)
    env = {
        **os.environ, "WATTWATCH_DATABASE_URL": db_url, "WATTWATCH_PROCESSING_WORKERS": "2",
        "WATTWATCH_PROCESSING_CHUNK_METERS": "2",
    }  # fmt: skip
    args = ["process", "--only", "anomalies", "--since", (end - timedelta(days=1)).isoformat(),
            "--until", end.isoformat()]  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-m", "wattwatch", *args], env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    # The log wraps at the console's width: words, not line breaks, are what it says.
    assert "2 workers' seconds" in " ".join((run.stderr + run.stdout).split())


def test_the_settings_thresholds_reach_the_runs_config() -> None:
    settings = Settings(
        processing_detectors={"school": {"z_single": 9}},
        processing_quality={"gas": {"flatline_steps": 8}},
    )
    cfg = pipeline_config(settings)
    assert set(cfg.detectors) == {"school"} and cfg.detectors["school"].z_single == 9.0
    assert cfg.quality_by_kind == {"gas": {"flatline_steps": 8}}
    assert pipeline_config(Settings()).detectors == {}


def test_thresholds_a_test_scan_fails_with_stop_the_processing_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tuned = Settings(processing_detectors={"school": {"z_single": 9}})
    check_thresholds(tuned)  # a scan works with these

    def failing(**_kwargs: object) -> None:
        raise ValueError("school: a test scan fails with these thresholds (boom)")

    monkeypatch.setattr("processing.service.trial_scan", failing)
    with pytest.raises(ConfigError, match=r"^WATTWATCH_PROCESSING_DETECTORS: school: a test"):
        check_thresholds(tuned)
