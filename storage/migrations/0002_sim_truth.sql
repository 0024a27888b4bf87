-- Ground truth of simulated cities, so testers can score detections and heat-loss estimates
-- against what the simulator knows. Only simulator runs write here; deleting a run cascades.

CREATE TABLE sim_runs (
    id             serial PRIMARY KEY,
    seed           bigint NOT NULL,
    device_prefix  text NOT NULL,             -- device ids of the run start with it
    settings       jsonb NOT NULL,            -- arguments of simulate_city
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sim_buildings (
    run_id                   integer NOT NULL REFERENCES sim_runs (id) ON DELETE CASCADE,
    building_id              bigint NOT NULL REFERENCES buildings (id) ON DELETE CASCADE,
    building_index           integer NOT NULL,          -- row in the simulated stock
    hlc_w_per_k              double precision NOT NULL, -- true heat-loss coefficient
    tau_h                    double precision NOT NULL, -- dominant time constant
    balance_temp_c           double precision NOT NULL,
    setpoint_mean_c          double precision NOT NULL,
    gains_mean_w             double precision NOT NULL,
    annual_heating_need_kwh  double precision NOT NULL, -- normal year, heat delivered
    heating_simulated_kwh    double precision NOT NULL, -- heat delivered during the run
    heating_normalised_kwh   double precision,          -- NaN-free: NULL without degree-days
    seasonal_efficiency      double precision NOT NULL, -- final → heat
    meter_efficiency         double precision NOT NULL, -- heating meter → heat
    final_energy_kwh_per_m2  double precision NOT NULL, -- heating + hot water [kWh/m²/yr]
    dpe_class                char(1) NOT NULL,
    PRIMARY KEY (run_id, building_id)
);

CREATE TABLE sim_anomalies (
    id          bigserial PRIMARY KEY,
    run_id      integer NOT NULL REFERENCES sim_runs (id) ON DELETE CASCADE,
    meter_id    integer NOT NULL REFERENCES meters (id) ON DELETE CASCADE,
    source      text NOT NULL CHECK (source IN ('meter', 'grid')),  -- hourly meters or feeders
    start_ts    timestamptz NOT NULL,         -- first affected reading
    end_ts      timestamptz NOT NULL CHECK (end_ts >= start_ts),   -- last affected reading
    kind        text NOT NULL,
    magnitude   double precision NOT NULL     -- meaning per kind: simulators.anomalies
);
CREATE INDEX sim_anomalies_run_idx ON sim_anomalies (run_id, meter_id, start_ts);
