-- A level shift seen on a meter's last two days only, under the evidence of an alarm, is
-- stored as a warning: a later run confirms it when the evidence adds up, or deletes it
-- when the evidence fades (storage.results.settle_warnings). Every other anomaly is
-- confirmed when written.
ALTER TABLE anomalies
    ADD COLUMN status text NOT NULL DEFAULT 'confirmed'
        CHECK (status IN ('confirmed', 'warning'));
