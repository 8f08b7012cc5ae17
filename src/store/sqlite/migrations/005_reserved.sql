-- Version 5 is reserved for the per-event reminders, recurring series and delivery
-- attempts of issue 14, developed in parallel; this placeholder keeps the versions in step
-- until that step takes its place.
SELECT 1;
