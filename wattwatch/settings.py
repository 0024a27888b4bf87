"""The one settings object: environment (prefix WATTWATCH_), an optional TOML file, defaults.

Built once in the CLI's entry point and passed down; never at import.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from wattwatch.errors import ConfigError

ENV_PREFIX = "WATTWATCH_"
CONFIG_FILE_ENV = "WATTWATCH_CONFIG"
DEFAULT_CONFIG_FILE = Path("wattwatch.toml")


def _config_file() -> Path | None:
    explicit = os.environ.get(CONFIG_FILE_ENV)
    if explicit:
        return Path(explicit)
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


class Settings(BaseSettings):
    """Every setting of wattwatch, with its default. The README lists them all."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    # --- where things run -------------------------------------------------------------------
    state_dir: Path = Field(
        Path(".wattwatch"),
        description="Folder of the embedded stack: database cluster, broker data, logs, pids.",
    )
    database_url: str | None = Field(
        None,
        description="PostgreSQL URL of an existing TimescaleDB; empty = the embedded cluster.",
    )
    mqtt_url: str | None = Field(
        None,
        description="mqtt://[user:password@]host:port of an existing broker; empty = embedded.",
    )
    db_port: int = Field(55432, ge=1, le=65535, description="Port of the embedded PostgreSQL.")
    mqtt_port: int = Field(51883, ge=1, le=65535, description="Port of the embedded Mosquitto.")
    services: list[Literal["ingest", "processing", "api"]] = Field(
        default_factory=lambda: ["ingest", "processing", "api"],  # type: ignore[arg-type]
        description="Services `wattwatch up` starts.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level of the services."
    )

    # --- ingest -----------------------------------------------------------------------------
    ingest_client_id: str = Field(
        "wattwatch-ingest-1",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="Stable MQTT client id; one per ingest process (its persistent session).",
    )
    ingest_share_group: str = Field(
        "wattwatch", pattern=r"^[A-Za-z0-9_-]{1,32}$", description="MQTT shared-subscription group."
    )
    ingest_batch_size: int = Field(
        2000,
        ge=1,
        le=60000,
        description="Messages per commit; the MQTT Receive Maximum is twice this.",
    )
    ingest_flush_interval_s: float = Field(
        1.0, gt=0, le=60, description="Longest a message waits before its batch is committed [s]."
    )
    ingest_session_expiry_s: int = Field(
        7 * 24 * 3600, ge=60, description="How long the broker keeps the ingestor's session [s]."
    )
    ingest_auto_register: bool = Field(
        True,
        description="Register unknown devices as meters (engineers' buildings); "
        "false = dead-letter them (households must be enrolled first).",
    )
    ingest_topics: dict[str, str] = Field(
        default_factory=dict,
        description="Device format → MQTT topic filter; empty = every format's default topic.",
    )
    ingest_metrics_port: int = Field(
        9464, ge=0, le=65535, description="Prometheus metrics port of the ingestor (0 = off)."
    )

    # --- processing ---------------------------------------------------------------------------
    processing_interval_min: float = Field(
        5.0, gt=0, description="Minutes between two runs of the processing job."
    )
    retention_days: int = Field(
        365, ge=1, description="Raw readings older than this are dropped (rollups are kept)."
    )
    processing_context_weeks: int = Field(
        8,
        ge=3,
        le=52,
        description="Weeks of history each anomaly run loads before its new results "
        "(hour-of-week baseline and CUSUM reference).",
    )
    processing_report_hours: float = Field(
        24.0,
        gt=0,
        description="Each anomaly run stores events ending within this many trailing hours [h].",
    )
    processing_chunk_meters: int = Field(
        0,
        ge=0,
        le=100000,
        description="Meters loaded and scanned together; 0 = as many as fit in "
        "processing_chunk_mb.",
    )
    processing_chunk_mb: float = Field(
        64.0,
        gt=0,
        le=100000,
        description="Memory of one chunk's matrix when processing_chunk_meters is 0 [MB] "
        "(the scan peaks at about twice this, in each of processing_workers).",
    )
    processing_threads: int = Field(
        0,
        ge=0,
        le=64,
        description="Threads of the anomaly scan (NumPy releases the GIL); 0 = one per CPU core.",
    )
    processing_workers: int = Field(
        0,
        ge=0,
        le=64,
        description="Processes that load and scan chunks of meters at once, each with a "
        "database connection of its own; 0 = one per CPU core.",
    )
    processing_insulation_days: int = Field(
        365,
        ge=30,
        le=3650,
        description="Days of daily heating energy behind each insulation assessment "
        "(CalTRACK asks for 365).",
    )
    processing_outdoor_meter_id: int | None = Field(
        None,
        ge=1,
        description="Outdoor-temperature meter used for every building; unset = each "
        "municipality's sensors, else the mean of every outdoor-temperature meter.",
    )
    processing_detectors: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Detector thresholds per meter kind, over the built-in ones: a table "
        'of kinds, each a table of DetectorConfig fields, e.g. {"school": {"z_single": 8}}.',
    )
    processing_quality: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Data-quality thresholds per meter kind, over the built-in ones: a table "
        'of kinds, each a table of QualityConfig fields, e.g. {"gas": {"flatline_steps": 8}}.',
    )

    # --- api ----------------------------------------------------------------------------------
    api_host: str = Field("127.0.0.1", description="Address the API listens on.")
    api_port: int = Field(8080, ge=1, le=65535, description="Port the API listens on.")
    api_min_group_households: int = Field(
        10,
        ge=1,
        description="Public aggregates cover at least this many households; smaller groups "
        "are withheld (French rule for residential energy data: 10).",
    )
    api_max_body_bytes: int = Field(
        65536, ge=1024, description="Request bodies larger than this are refused (413) [bytes]."
    )
    api_onboarding_per_minute: int = Field(
        10, ge=1, description="Onboarding requests allowed per client address and minute (429)."
    )
    api_pool_size: int = Field(
        10, ge=1, le=100, description="Database connections of each API worker."
    )
    api_workers: int = Field(
        2, ge=1, le=32, description="API worker processes sharing the port (one per core)."
    )
    api_broker_admin_url: str = Field(
        "",
        description="mqtt://admin:password@host:port of the broker's dynamic-security admin; "
        "empty = the embedded broker's generated admin when it runs with dynsec, else no "
        "broker accounts are created for households.",
    )
    api_device_mqtt_host: str = Field(
        "", description="MQTT host given to households' devices; empty = the broker's host."
    )
    api_device_mqtt_port: int = Field(
        0, ge=0, le=65535, description="MQTT port given to devices; 0 = the broker's port."
    )

    # --- grafana ------------------------------------------------------------------------------
    grafana_url: str | None = Field(None, description="URL of an existing Grafana to publish to.")
    grafana_token: str | None = Field(None, description="Grafana service-account token.")
    grafana_db_host: str | None = Field(
        None,
        description="host:port at which Grafana reaches TimescaleDB; empty = the wattwatch "
        "database's host and port.",
    )
    grafana_db_password: str | None = Field(
        None,
        description="Password of the read-only role wattwatch_reader; `dashboards publish` "
        "sets it in the database and in Grafana's datasource.",
    )

    @field_validator(
        "database_url",
        "mqtt_url",
        "grafana_url",
        "grafana_token",
        "grafana_db_host",
        "grafana_db_password",
        "processing_outdoor_meter_id",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("postgresql", "postgres"):
            raise ValueError("must start with postgresql:// (e.g. postgresql://user@host:5432/db)")
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
            raise ValueError("must look like mqtt://host:1883 or mqtt://user:password@host:1883")
        try:
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from None
        return value

    @field_validator("processing_detectors", "processing_quality")
    @classmethod
    def _check_thresholds(
        cls, value: dict[str, dict[str, Any]], info: ValidationInfo
    ) -> dict[str, dict[str, Any]]:
        # Imported here: the settings load before (and without) the numerical packages. The
        # test scan with these thresholds runs where scans do (processing.service).
        from processing.detector_config import tuned_configs, tuned_quality  # noqa: PLC0415

        check = tuned_configs if info.field_name == "processing_detectors" else tuned_quality
        check(value)  # raises ValueError naming kind.field
        return value

    @field_validator("grafana_url")
    @classmethod
    def _check_grafana_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must start with http:// or https://")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    # --- derived ------------------------------------------------------------------------------
    @property
    def embedded_database(self) -> bool:
        """True when wattwatch runs its own PostgreSQL cluster under the state folder."""
        return self.database_url is None

    @property
    def embedded_broker(self) -> bool:
        """True when wattwatch runs its own Mosquitto under the state folder."""
        return self.mqtt_url is None


def _field_env_name(loc: tuple[int | str, ...]) -> str:
    head = str(loc[0]) if loc else "settings"
    return ENV_PREFIX + head.upper()


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning validation errors into one line per bad setting.

    Raises
    ------
    ConfigError
        With lines of the form ``WATTWATCH_<NAME>: <problem>``.
    """
    path = _config_file()
    if path is not None and not path.is_file():
        raise ConfigError(f"{CONFIG_FILE_ENV}: no such file {path}")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = _field_env_name(err["loc"])
            if err["type"] == "extra_forbidden":
                lines.append(f"{name}: unknown setting")
            else:
                lines.append(f"{name}: {err['msg'].removeprefix('Value error, ')}")
        raise ConfigError("\n".join(lines)) from None
    except ValueError as exc:  # a TOML file that does not parse
        raise ConfigError(f"{CONFIG_FILE_ENV}: {exc}") from None
