"""Settings: defaults, environment, TOML file, and one line per bad setting."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wattwatch.errors import ConfigError
from wattwatch.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("WATTWATCH_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray ./wattwatch.toml


def test_defaults_use_the_embedded_stack() -> None:
    s = load_settings()
    assert s.embedded_database and s.embedded_broker
    assert s.state_dir == Path(".wattwatch")
    assert s.ingest_flush_interval_s <= 1.0


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATTWATCH_DATABASE_URL", "postgresql://u@db.example:5432/w")
    monkeypatch.setenv("WATTWATCH_INGEST_BATCH_SIZE", "500")
    monkeypatch.setenv("WATTWATCH_INGEST_TOPICS", '{"shelly": "house/+/events/rpc"}')
    s = load_settings()
    assert not s.embedded_database
    assert s.ingest_batch_size == 500
    assert s.ingest_topics == {"shelly": "house/+/events/rpc"}


def test_toml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "custom.toml"
    path.write_text('mqtt_url = "mqtt://broker.example:1884"\nretention_days = 30\n')
    monkeypatch.setenv("WATTWATCH_CONFIG", str(path))
    s = load_settings()
    assert s.mqtt_url == "mqtt://broker.example:1884"
    assert s.retention_days == 30


def test_environment_wins_over_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "wattwatch.toml").write_text("retention_days = 30\n")
    monkeypatch.setenv("WATTWATCH_RETENTION_DAYS", "60")
    assert load_settings().retention_days == 60


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "WATTWATCH_DATABASE_URL",
            "mysql://x",
            "WATTWATCH_DATABASE_URL: must start with postgresql://",
        ),
        ("WATTWATCH_MQTT_URL", "http://x:1883", "WATTWATCH_MQTT_URL: must look like mqtt://"),
        ("WATTWATCH_MQTT_URL", "mqtt://x:99999", "WATTWATCH_MQTT_URL: bad port"),
        ("WATTWATCH_DB_PORT", "0", "WATTWATCH_DB_PORT: Input should be greater than or equal to 1"),
        (
            "WATTWATCH_INGEST_BATCH_SIZE",
            "lots",
            "WATTWATCH_INGEST_BATCH_SIZE: Input should be a valid integer",
        ),
        ("WATTWATCH_SERVICES", '["ingest", "coffee"]', "WATTWATCH_SERVICES: Input should be"),
        (
            "WATTWATCH_INGEST_CLIENT_ID",
            "bad id with spaces",
            "WATTWATCH_INGEST_CLIENT_ID: String should match",
        ),
        *(
            (f"WATTWATCH_PROCESSING_{name}", value, f"WATTWATCH_PROCESSING_{name}: {problem}")
            for name, value, problem in (
                ("DETECTORS", '{"scool": {"z_single": 8}}', "scool: unknown meter kind"),
                (
                    "DETECTORS",
                    '{"school": {"z_single": "high"}}',
                    "school.z_single: expected a number, got 'high'",
                ),
                ("DETECTORS", '{"school": 8}', "Input should be a valid dictionary"),
                (
                    "DETECTORS",
                    '{"school": {"z_single": -1}}',
                    "school.z_single: must be 0 or more, got -1.0",
                ),
                (
                    "DETECTORS",
                    '{"school": {"reference_weeks": 0}}',
                    "school.reference_weeks: must be 1 or more, got 0",
                ),
                ("QUALITY", '{"gaz": {}}', "gaz: unknown meter kind"),
                (
                    "QUALITY",
                    '{"gas": {"flatline_rel_tol": "high"}}',
                    "gas.flatline_rel_tol: expected a number, got 'high'",
                ),
                (
                    "QUALITY",
                    '{"gas": {"flatline_steps": 1}}',
                    "gas.flatline_steps: must be 2 or more, got 1",
                ),
            )
        ),
    ],
)
def test_bad_setting_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    lines = str(err.value).splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(expected)


def test_detector_thresholds_from_the_file_and_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "w.toml"
    path.write_text("[processing_detectors.school]\nz_single = 8.0\ncheck_holidays = false\n")
    monkeypatch.setenv("WATTWATCH_CONFIG", str(path))
    assert load_settings().processing_detectors == {
        "school": {"z_single": 8.0, "check_holidays": False}
    }
    # The environment's kinds and fields are merged into the file's (pydantic-settings).
    monkeypatch.setenv(
        "WATTWATCH_PROCESSING_DETECTORS", '{"office": {"min_nights": 3}, "school": {"z_single": 9}}'
    )
    assert load_settings().processing_detectors == {
        "school": {"z_single": 9, "check_holidays": False},
        "office": {"min_nights": 3},
    }


def test_unknown_key_in_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text("databse_url = 'postgresql://x'\n")
    monkeypatch.setenv("WATTWATCH_CONFIG", str(path))
    with pytest.raises(ConfigError, match=r"^WATTWATCH_DATABSE_URL: unknown setting$"):
        load_settings()


def test_missing_config_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WATTWATCH_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match=r"^WATTWATCH_CONFIG: no such file"):
        load_settings()


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    missing = [
        f"WATTWATCH_{name.upper()}" for name in Settings.model_fields
        if f"WATTWATCH_{name.upper()}" not in readme
    ]  # fmt: skip
    assert missing == []
