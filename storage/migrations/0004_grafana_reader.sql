-- Grafana reads TimescaleDB as wattwatch_reader: SELECT only, read-only transactions, a
-- statement timeout. The role is cluster-wide (created once); grants are per database.
-- It has no password here: `wattwatch dashboards publish` (or an operator) sets it
-- (storage/grafana.py: set_reader_password). Raw dead-letter payloads stay hidden: they are
-- messages as devices sent them, and a dashboard only needs their reason and format.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'wattwatch_reader') THEN
        CREATE ROLE wattwatch_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
    END IF;
END
$$;
ALTER ROLE wattwatch_reader SET default_transaction_read_only = on;
ALTER ROLE wattwatch_reader SET statement_timeout = '30s';

-- Run logs the operations dashboard reads (the services write them).
-- One row per ingestor and minute of arrival time.
CREATE TABLE ingest_stats (
    minute            timestamptz NOT NULL,     -- start of the minute (arrival time)
    ingestor          text NOT NULL,            -- its MQTT client id
    messages          integer NOT NULL,         -- MQTT messages received
    readings_written  integer NOT NULL,         -- new rows in readings (duplicates excluded)
    dead_letters      integer NOT NULL,
    batches           integer NOT NULL,         -- commits
    commit_ms_mean    double precision,         -- first message of a batch → COMMIT [ms]
    commit_ms_max     double precision,
    lag_s_max         double precision,         -- arrival → commit, worst message [s]
    PRIMARY KEY (minute, ingestor)
);

-- One row per processing stage run (rollups, anomalies, insulation).
CREATE TABLE processing_runs (
    id           bigserial PRIMARY KEY,
    stage        text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz CHECK (finished_at >= started_at),
    status       text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'ok', 'failed')),
    items        integer,                       -- meters, buildings or hours handled
    detail       text                           -- summary or the error, one line
);
CREATE INDEX processing_runs_started_idx ON processing_runs (started_at DESC);

GRANT USAGE ON SCHEMA public TO wattwatch_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO wattwatch_reader;
REVOKE SELECT ON dead_letters FROM wattwatch_reader;
GRANT SELECT (id, received_at, topic, reason, format) ON dead_letters TO wattwatch_reader;
-- Tables of later migrations are readable too (created by the same migrating role).
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO wattwatch_reader;
