-- Schema v1: places, meters, readings, results, dead letters and rollups.
-- Units are in column names; times are timestamptz (UTC inside), days are Europe/Paris dates.

CREATE TABLE municipalities (
    id          serial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    insee_code  text UNIQUE,                 -- French commune code
    normal_hdd  real NOT NULL DEFAULT 2500   -- normal heating degree-days, base 18 °C [K·d/yr]
);

CREATE TABLE buildings (
    id                  bigserial PRIMARY KEY,
    municipality_id     integer REFERENCES municipalities (id),
    name                text NOT NULL,
    floor_area_m2       real CHECK (floor_area_m2 > 0),
    year_built          integer CHECK (year_built BETWEEN 1000 AND 2100),
    use                 text NOT NULL DEFAULT 'household',
    heating_carrier     text CHECK (heating_carrier IN
                          ('gas', 'electricity', 'heat_pump', 'district_heat', 'fuel_oil', 'wood')),
    heating_efficiency  real CHECK (heating_efficiency > 0 AND heating_efficiency <= 8),
    lat                 double precision CHECK (lat BETWEEN -90 AND 90),
    lon                 double precision CHECK (lon BETWEEN -180 AND 180),
    is_household        boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX buildings_municipality_idx ON buildings (municipality_id);

CREATE TABLE meters (
    id             serial PRIMARY KEY,       -- int4 keeps every reading row 4 bytes smaller
    building_id    bigint REFERENCES buildings (id) ON DELETE CASCADE,  -- NULL: grid or weather
    quantity       text NOT NULL CHECK (quantity IN
                     ('electricity', 'electricity_injected', 'gas', 'heat', 'water',
                      'indoor_temperature', 'outdoor_temperature', 'grid_voltage',
                      'grid_frequency', 'grid_load', 'pv', 'irradiance')),
    unit           text NOT NULL CHECK (unit IN
                     ('kWh', 'W', 'VA', 'var', 'V', 'A', 'Hz', 'degC', 'm3', 'pu', 'W/m2', '%')),
    cumulative     boolean NOT NULL,         -- true: an index (kWh since installation)
    device_format  text NOT NULL,            -- adapter name: shelly, linky_tic, senml…
    device_id      text NOT NULL,            -- the device's own id in that format
    channel        text NOT NULL DEFAULT '',
    name           text,
    installed_at   timestamptz,              -- readings stamped before this are refused
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (device_format, device_id, channel)
);
CREATE INDEX meters_building_idx ON meters (building_id);

-- No foreign key to meters: the ingestor only writes resolved meter ids, and a per-row key
-- check would cost insert speed on the hottest table. Erasing a meter deletes its rows.
CREATE TABLE readings (
    meter_id  integer NOT NULL,
    ts        timestamptz NOT NULL,
    value     double precision NOT NULL,
    UNIQUE (meter_id, ts)                    -- replays and redeliveries are absorbed here
);
-- 7-day chunks: the embedded default carries a district (~20 k meters at 15 min, ~2 M rows
-- a day, ~1 GB a week with its indexes), so a chunk and its indexes stay well under a quarter
-- of memory while a year-long query touches only ~53 chunks. A city-wide deployment with
-- minute data should lower it with set_chunk_time_interval.
SELECT create_hypertable('readings', 'ts', chunk_time_interval => interval '7 days');

-- Counter resets and meter replacements seen in cumulative series (never negative consumption).
CREATE TABLE meter_events (
    meter_id      integer NOT NULL REFERENCES meters (id) ON DELETE CASCADE,
    ts            timestamptz NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('counter_reset', 'replacement')),
    value_before  double precision,
    value_after   double precision,
    PRIMARY KEY (meter_id, ts, kind)
);

CREATE TABLE anomalies (
    id               bigserial PRIMARY KEY,
    meter_id         integer NOT NULL REFERENCES meters (id) ON DELETE CASCADE,
    kind             text NOT NULL,          -- spike, outage, flatline, level_shift, voltage_high…
    source           text NOT NULL CHECK (source IN ('ingest', 'processing')),
    start_ts         timestamptz NOT NULL,
    end_ts           timestamptz NOT NULL CHECK (end_ts >= start_ts),
    severity         double precision NOT NULL,  -- robust z-score or ratio to the limit
    expected         double precision,
    observed         double precision,
    reason           text NOT NULL,          -- one sentence a person can read
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    ack_comment      text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (meter_id, kind, start_ts)        -- re-running a window updates, never duplicates
);
CREATE INDEX anomalies_time_idx ON anomalies (start_ts DESC);

CREATE TABLE insulation_assessments (
    id                      bigserial PRIMARY KEY,
    building_id             bigint NOT NULL REFERENCES buildings (id) ON DELETE CASCADE,
    period_start            date NOT NULL,
    period_end              date NOT NULL,
    method                  text NOT NULL CHECK (method IN ('changepoint', 'arx')),
    status                  text NOT NULL CHECK (status IN ('ok', 'insufficient_data')),
    status_reason           text,
    hlc_w_per_k             double precision,
    hlc_low_w_per_k         double precision,    -- 90 % confidence interval
    hlc_high_w_per_k        double precision,
    hlc_w_per_m2k           double precision,
    tau_h                   double precision,
    balance_temp_c          double precision,
    base_kwh_per_day        double precision,
    slope_kwh_per_day_k     double precision,
    r2                      double precision,
    cv_rmse                 double precision,
    nmbe                    double precision,
    n_days                  integer,
    heating_kwh_per_year    double precision,    -- weather-normalised, final energy
    primary_kwh_per_m2      double precision,
    co2_kg_per_m2           double precision,
    energy_class            char(1),
    climate_class           char(1),
    label                   char(1),             -- the worse of the two: a DPE estimate
    is_passoire             boolean,
    worst_decile            boolean,
    methods_disagree        boolean,
    computed_at             timestamptz NOT NULL DEFAULT now(),
    UNIQUE (building_id, period_start, period_end, method)
);

CREATE TABLE dead_letters (
    id           bigserial PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    topic        text NOT NULL,
    payload      bytea NOT NULL,                 -- the raw bytes, exactly as received
    reason       text NOT NULL,
    format       text
);
CREATE INDEX dead_letters_received_idx ON dead_letters (received_at);

-- Rollups, maintained by wattwatch's own job on every edition (continuous aggregates cannot
-- compute counter deltas, which need the previous reading across bucket edges).
-- consumption: for cumulative meters, what was used in the bucket in the meter's unit
-- (resets counted from zero); NULL for instantaneous meters, whose mean/min/max matter.
CREATE TABLE readings_hourly (
    meter_id     integer NOT NULL,
    hour         timestamptz NOT NULL,
    consumption  double precision,
    mean         double precision NOT NULL,
    min          double precision NOT NULL,
    max          double precision NOT NULL,
    samples      integer NOT NULL,
    PRIMARY KEY (meter_id, hour)
);
SELECT create_hypertable('readings_hourly', 'hour', chunk_time_interval => interval '90 days');

CREATE TABLE readings_daily (
    meter_id     integer NOT NULL,
    day          date NOT NULL,                  -- Europe/Paris calendar day
    consumption  double precision,
    mean         double precision NOT NULL,
    min          double precision NOT NULL,
    max          double precision NOT NULL,
    samples      integer NOT NULL,
    PRIMARY KEY (meter_id, day)
);

-- Hours that received new readings since the rollups were last refreshed. The ingestor adds
-- them in the same transaction as the readings, so late data (a device back after days
-- offline) is rolled up too.
CREATE TABLE rollup_dirty (
    hour  timestamptz PRIMARY KEY
);
