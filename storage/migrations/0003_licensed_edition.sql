-- Native compression on the Timescale License edition; nothing on the Apache edition.
-- Rollups stay with wattwatch's own job on both editions: continuous aggregates cannot compute
-- counter deltas (they need the previous reading across bucket edges, a window function).
-- Retention is a policy on the licensed edition (storage/rollups.apply_retention adds it).
DO $$
BEGIN
    IF current_setting('timescaledb.license', true) = 'timescale' THEN
        ALTER TABLE readings SET (
            timescaledb.compress,
            timescaledb.compress_segmentby = 'meter_id',
            timescaledb.compress_orderby = 'ts'
        );
        -- Late data (a device back after days offline) still lands in uncompressed chunks.
        PERFORM add_compression_policy('readings', interval '14 days', if_not_exists => true);
    END IF;
END
$$;
