"""Public request and response models, separate from the storage rows they are built from."""

from __future__ import annotations

from datetime import date, datetime
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class PageOf(BaseModel, Generic[T]):
    items: list[T]
    limit: int
    offset: int
    total: int | None = Field(None, description="All matching items, when cheap to count.")


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: bool
    broker_accounts: bool = Field(description="Households get broker credentials.")


class Municipality(_Out):
    id: int
    name: str
    insee_code: str | None
    buildings: int
    households: int
    meters: int
    open_anomalies: int
    assessed_buildings: int
    passoires: int = Field(description="Buildings labelled F or G (estimate).")
    mean_primary_kwh_per_m2: float | None = Field(
        description="Mean primary energy of assessed buildings [kWh/m²/yr]."
    )


class PublicMunicipality(BaseModel):
    id: int
    name: str
    withheld: bool = Field(
        description="True when fewer households than the threshold take part: no figures."
    )
    min_households: int = Field(description="The threshold below which figures are withheld.")
    households: int | None
    daily_kwh_per_household: float | None = Field(
        description="Mean electricity per household over the last 30 Paris days [kWh/d]."
    )
    labels: dict[str, int] | None = Field(description="Households per DPE estimate label.")


class Building(_Out):
    id: int
    municipality_id: int | None
    name: str
    floor_area_m2: float | None
    year_built: int | None
    use: str
    heating_carrier: str | None
    is_household: bool
    lat: float | None
    lon: float | None


class Meter(_Out):
    id: int
    building_id: int | None
    quantity: str
    unit: str
    cumulative: bool
    device_format: str
    device_id: str
    channel: str
    name: str | None
    created_at: datetime
    last_reading_at: datetime | None = Field(description="Newest reading of the last 7 days.")


class Point(_Out):
    ts: datetime = Field(description="Bucket start (UTC); days start at midnight Europe/Paris.")
    value: float | None = Field(description="Mean (raw: the reading) in the meter's unit.")
    consumption: float | None = Field(description="Used in the bucket (cumulative meters).")
    min: float | None
    max: float | None
    samples: int


class Readings(BaseModel):
    meter_id: int
    unit: str
    resolution: Literal["raw", "hour", "day", "week", "month"]
    start: datetime
    end: datetime
    points: list[Point]
    next_start: datetime | None = Field(
        description="More points exist: ask again from here (same end)."
    )


class Anomaly(_Out):
    id: int
    meter_id: int
    building_id: int | None
    kind: str = Field(examples=["spike"])
    source: str
    start_ts: datetime
    end_ts: datetime
    severity: float
    expected: float | None
    observed: float | None
    unit: str
    reason: str
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    ack_comment: str | None
    status: str = Field(
        examples=["confirmed"],
        description="'confirmed', or 'warning': a level shift seen on the meter's last two "
        "days only, which a later run confirms or deletes",
    )


class Acknowledge(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"comment": "boiler replaced on 12/01"}]}
    )
    comment: str = Field(min_length=1, max_length=2000)


class Assessment(_Out):
    id: int
    building_id: int
    municipality_id: int | None
    period_start: date
    period_end: date
    method: str
    status: str
    status_reason: str | None
    hlc_w_per_k: float | None = Field(
        description="Heat-loss coefficient [W/K]; null, with the status ok and a label, when "
        "the heating register's energy does not rise as it gets colder (status_reason)."
    )
    hlc_low_w_per_k: float | None
    hlc_high_w_per_k: float | None
    hlc_w_per_m2k: float | None
    heating_kwh_per_year: float | None
    primary_kwh_per_m2: float | None
    co2_kg_per_m2: float | None
    label: str | None = Field(description="DPE estimate from metered data (A–G).")
    is_passoire: bool | None
    worst_decile: bool | None
    slope_change_rel: float | None = Field(
        description="Heating slope of the period's second half against its first [-]: "
        "−0.3 is 30 % less heat per degree (a retrofit?), +0.3 more (a degradation?)."
    )
    slope_change_p: float | None = Field(
        description="Two-sided p-value of no slope change; daily residuals are serially "
        "correlated, so read it as a ranking, not a proof."
    )
    computed_at: datetime


HeatingCarrier = Literal["gas", "electricity", "heat_pump", "district_heat", "fuel_oil", "wood"]
DeviceFormat = Literal[
    "shelly", "tasmota", "esphome", "zigbee2mqtt", "linky_tic", "senml", "own_json"
]


class Consents(BaseModel):
    model_config = ConfigDict(extra="forbid")
    daily_totals: bool = Field(True, description="Keep and show daily totals.")
    load_curve: bool = Field(
        False, description="Keep and show hourly and finer readings (load curve)."
    )


class NewHousehold(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "display_name": "Flat 12, rue Nationale",
                    "municipality_id": 1,
                    "floor_area_m2": 64,
                    "year_built": 1968,
                    "heating_carrier": "gas",
                    "occupants": 3,
                    "device_format": "shelly",
                    "consents": {"daily_totals": True, "load_curve": False},
                }
            ]
        },
    )
    invitation_code: str | None = Field(
        None, max_length=200, description="Required when enrolling without an engineer token."
    )
    display_name: str = Field(min_length=1, max_length=120)
    municipality_id: int | None = Field(None, ge=1, le=2_147_483_647)
    floor_area_m2: float = Field(ge=1, le=100_000, description="Heated floor area [m²].")
    year_built: int = Field(ge=1000, le=2100)
    heating_carrier: HeatingCarrier
    occupants: int | None = Field(
        None,
        ge=1,
        le=50,
        description="Persons living in the home: sizes the hot water of electric heating, "
        "which a whole-house meter cannot tell apart (per m² when left out).",
    )
    device_format: DeviceFormat
    linky_id: str | None = Field(
        None, pattern=r"^[0-9]{12}$", description="Linky meter number (ADCO/ADSC), linky_tic only."
    )
    channel: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_:./-]{1,64}$", description="Energy channel; default per format."
    )
    consents: Consents = Field(default_factory=Consents)


class HomeUpdate(BaseModel):
    """The fields sent are changed; ``occupants: null`` withdraws the number."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"occupants": 4}, {"floor_area_m2": 82}]}
    )
    floor_area_m2: float | None = Field(
        None, ge=1, le=100_000, description="Heated floor area [m²]."
    )
    year_built: int | None = Field(None, ge=1000, le=2100)
    heating_carrier: HeatingCarrier | None = None
    occupants: int | None = Field(None, ge=1, le=50, description="Persons living in the home.")


class Connection(BaseModel):
    host: str
    port: int
    username: str | None
    client_id: str | None
    topic: str
    steps: list[str]
    example_payload: str


class Household(BaseModel):
    id: int
    building_id: int
    display_name: str
    municipality_id: int | None
    floor_area_m2: float | None
    year_built: int | None
    heating_carrier: str | None
    occupants: int | None
    consents: Consents
    consent_updated_at: datetime
    mqtt_username: str | None
    created_at: datetime


class Enrolled(BaseModel):
    household: Household
    meter: Meter
    token: str = Field(description="The household's API token: shown once, keep it safe.")
    mqtt_password: str | None = Field(description="The device's broker password, shown once.")
    connection: Connection


class DeviceStatus(BaseModel):
    meter_id: int
    device_format: str
    connected: bool = Field(description="A reading arrived in the last 2 hours.")
    last_reading_at: datetime | None
    connection: Connection


class Invitation(BaseModel):
    code: str = Field(description="Give it to the household; single use.")
    expires_at: datetime


class Erased(BaseModel):
    household_id: int
    removed: dict[str, int] = Field(description="Rows deleted per kind of data.")
    broker_account_removed: bool


class Similar(BaseModel):
    buildings: int | None
    labels: dict[str, int] | None
    withheld: bool
