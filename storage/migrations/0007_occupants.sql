-- Persons living in a home, as its household declared them: electric hot water hides in a
-- whole-house register, and the DPE method sizes it per person.
ALTER TABLE buildings
    ADD COLUMN occupants smallint CHECK (occupants BETWEEN 1 AND 50);  -- NULL: not declared
