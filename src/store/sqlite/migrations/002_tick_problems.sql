-- Version 2: what a tick could not do although it finished (a channel it could not use,
-- deliveries that went dead), as a JSON array of one-line messages; `status` shows them.
ALTER TABLE ticks ADD COLUMN problems TEXT;
