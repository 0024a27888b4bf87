-- The API's own tables: engineers and their tokens, volunteer households with their consents,
-- invitations and broker accounts. Tokens and invitation codes are stored as sha256 digests only.

CREATE TABLE engineers (
    id          serial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One household = one building of its own (is_household); erasing the household deletes the
-- building, which cascades to its meters, assessments and anomalies (readings are deleted
-- explicitly: the readings hypertable has no foreign key).
CREATE TABLE households (
    id                  bigserial PRIMARY KEY,
    building_id         bigint NOT NULL UNIQUE REFERENCES buildings (id) ON DELETE CASCADE,
    display_name        text NOT NULL,
    consent_daily       boolean NOT NULL DEFAULT true,   -- daily totals: kept and shown
    consent_load_curve  boolean NOT NULL DEFAULT false,  -- hourly and finer: kept and shown
    consent_updated_at  timestamptz NOT NULL DEFAULT now(),
    mqtt_username       text UNIQUE,                     -- dynamic-security client and role
    created_by          text NOT NULL,                   -- 'engineer:<name>' or 'invitation'
    created_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_tokens (
    id            bigserial PRIMARY KEY,
    token_sha256  bytea NOT NULL UNIQUE,
    engineer_id   integer REFERENCES engineers (id) ON DELETE CASCADE,
    household_id  bigint REFERENCES households (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    CHECK ((engineer_id IS NULL) <> (household_id IS NULL))
);

CREATE TABLE invitations (
    id           bigserial PRIMARY KEY,
    code_sha256  bytea NOT NULL UNIQUE,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz
);

CREATE INDEX anomalies_meter_time_idx ON anomalies (meter_id, start_ts DESC);

-- Grafana's read-only role (0004) gets SELECT on new tables by default; people's contacts,
-- token hashes and invitation codes are none of its business.
REVOKE ALL ON engineers, households, api_tokens, invitations FROM wattwatch_reader;
