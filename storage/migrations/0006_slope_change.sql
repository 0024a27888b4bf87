-- Retrofit or degradation: the heating slope of an assessment period's second half against its
-- first half, at the period's balance temperature (change-point rows only).
ALTER TABLE insulation_assessments
    ADD COLUMN slope_change_rel double precision,  -- (second − first) / first [-]
    ADD COLUMN slope_change_p   double precision;  -- two-sided p-value of "no change" [-]
