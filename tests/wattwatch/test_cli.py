"""The `wattwatch` command's own output, in process (the stack's commands: test_stack.py)."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from wattwatch.cli import app


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path) -> CliRunner:
    for name in list(os.environ):
        if name.startswith("WATTWATCH_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray ./wattwatch.toml
    return CliRunner()


def test_thresholds_show_what_the_settings_change(runner: CliRunner) -> None:
    env = {
        "WATTWATCH_PROCESSING_DETECTORS": '{"school": {"z_single": 8}}',
        "WATTWATCH_PROCESSING_QUALITY": '{"gas": {"flatline_steps": 9}}',
        "COLUMNS": "200",
    }
    every = runner.invoke(app, ["thresholds"], env=env)
    assert every.exit_code == 0, every.output
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip()
            for line in every.output.splitlines() if line.count("│") == 3}  # fmt: skip
    assert rows["school"] == "z_single=8" and rows["gas"] == "flatline_steps=9"
    assert rows["household"] == "-"

    school = runner.invoke(app, ["thresholds", "school"], env=env)
    assert school.exit_code == 0, school.output
    cells = {tuple(c.strip() for c in line.split("│")[1:5])
             for line in school.output.splitlines() if line.count("│") == 5}  # fmt: skip
    assert ("detectors", "z_single", "8.0", "setting") in cells
    assert ("detectors", "cusum_h", "5.0", "built in") in cells
    # A school's own data-quality rule (pipeline.QUALITY_BY_KIND) is in force, built in.
    assert ("quality", "flatline_busy_steps", "8", "built in") in cells


def test_thresholds_of_an_unknown_kind_name_the_known_ones(runner: CliRunner) -> None:
    result = runner.invoke(app, ["thresholds", "scool"])
    assert result.exit_code == 2
    assert "kind: unknown meter kind 'scool'; known: household, office, school" in result.output
