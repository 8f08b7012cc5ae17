-- Version 4: an index for the double-booking check, so that it costs O(log n) in a
-- participant's history instead of reading all of it (SQLite's step 4 builds an R*Tree for
-- the same purpose). The exclusion constraint's own index leaves out the rows booked with
-- allow_overlap, which the check must see too: this one has every scheduled participant,
-- by user and slot (kept by the triggers of version 3).
CREATE INDEX participants_busy ON notifyctl.participants USING gist (user_id, slot)
    WHERE slot IS NOT NULL;
