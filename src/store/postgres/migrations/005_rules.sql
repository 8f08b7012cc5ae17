-- Schema step to version 5 (SQLite's step 5 is the same contract): per-event reminder
-- offsets, recurring series (a rule on the event, cancelled and moved occurrences in
-- event_exceptions), the occurrence a notice is about, and a log of every delivery attempt.

-- remind_offsets: NULL, the config's [reminders] offsets; else whole minutes, largest first
-- (kept so by a trigger: the tick reads the first as the largest); '{}': no reminders.
-- repeat_rule: NULL, a single event; else an RFC 5545 RRULE value, expanded in `timezone`.
-- series_end: when a series' last occurrence ends; NULL when it has no end (or an app wrote
-- the series: NULL is always safe).
ALTER TABLE notifyctl.events
    ADD COLUMN remind_offsets bigint[],
    ADD COLUMN repeat_rule text,
    ADD COLUMN series_end timestamptz(0),
    ADD CONSTRAINT events_remind_offsets_valid CHECK (0 < ALL (remind_offsets) AND 525600 >= ALL (remind_offsets)
        AND array_position(remind_offsets, NULL) IS NULL),
    ADD CONSTRAINT events_series_zone CHECK (repeat_rule IS NULL OR timezone IS NOT NULL),
    ADD CONSTRAINT events_series_end_finite CHECK (isfinite(series_end));

CREATE FUNCTION notifyctl.events_remind_offsets() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    NEW.remind_offsets := ARRAY(SELECT DISTINCT m FROM unnest(NEW.remind_offsets) AS m ORDER BY m DESC);
    RETURN NEW;
END
$$;
CREATE TRIGGER events_remind_offsets BEFORE INSERT OR UPDATE OF remind_offsets ON notifyctl.events
    FOR EACH ROW WHEN (NEW.remind_offsets IS NOT NULL)
    EXECUTE FUNCTION notifyctl.events_remind_offsets();

-- The tick reads the series that can still have occurrences: ended ones are never read.
CREATE INDEX events_series ON notifyctl.events (status, series_end) WHERE repeat_rule IS NOT NULL;
-- The largest own offset of upcoming single events (how far ahead the tick must look).
CREATE INDEX events_own_reminders ON notifyctl.events ((remind_offsets[1]), starts_at)
    WHERE remind_offsets IS NOT NULL AND repeat_rule IS NULL AND status = 'scheduled';

-- The exclusion constraint covers single events: a series has no slot (its occurrences are
-- checked by notifyctl's service, under a per-user advisory lock).
CREATE OR REPLACE FUNCTION notifyctl.participants_slot() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    SELECT CASE WHEN e.status = 'scheduled' AND e.repeat_rule IS NULL
                THEN tstzrange(e.starts_at, e.ends_at, '[)') END
      INTO NEW.slot
      FROM notifyctl.events e
     WHERE e.id = NEW.event_id
       FOR NO KEY UPDATE;
    RETURN NEW;
END
$$;
CREATE OR REPLACE FUNCTION notifyctl.events_slot() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE notifyctl.participants
       SET slot = CASE WHEN NEW.status = 'scheduled' AND NEW.repeat_rule IS NULL
                       THEN tstzrange(NEW.starts_at, NEW.ends_at, '[)') END
     WHERE event_id = NEW.id;
    RETURN NULL;
END
$$;
DROP TRIGGER events_slot ON notifyctl.events;
CREATE TRIGGER events_slot AFTER UPDATE OF starts_at, ends_at, status, repeat_rule ON notifyctl.events
    FOR EACH ROW
    WHEN (OLD.starts_at IS DISTINCT FROM NEW.starts_at OR OLD.ends_at IS DISTINCT FROM NEW.ends_at
          OR OLD.status IS DISTINCT FROM NEW.status OR OLD.repeat_rule IS DISTINCT FROM NEW.repeat_rule)
    EXECUTE FUNCTION notifyctl.events_slot();

-- Single occurrences of a series that were cancelled or moved, keyed by the start the rule
-- gives them. Written by notifyctl (`event cancel|update EVENT --occurrence TIME`).
CREATE TABLE notifyctl.event_exceptions (
    event_id       bigint NOT NULL REFERENCES notifyctl.events (id) ON DELETE CASCADE,
    original_start timestamptz(0) NOT NULL,
    status         text NOT NULL CHECK (status IN ('cancelled', 'moved')),
    starts_at      timestamptz(0),      -- moved: the new start and end
    ends_at        timestamptz(0),
    -- When the occurrence was moved: its reminders whose moment came before are not sent.
    armed_at       timestamptz(0) NOT NULL DEFAULT now(),
    created_at     timestamptz(0) NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, original_start),
    CONSTRAINT event_exceptions_moved_times CHECK (status = 'cancelled' OR (starts_at IS NOT NULL AND ends_at > starts_at)),
    CONSTRAINT event_exceptions_instants_finite CHECK (isfinite(original_start) AND isfinite(starts_at)
        AND isfinite(ends_at) AND isfinite(armed_at) AND isfinite(created_at))
);

-- A notice about one occurrence of a series: that occurrence's original start.
ALTER TABLE notifyctl.notifications
    ADD COLUMN occurrence_start timestamptz(0),
    ADD CONSTRAINT notifications_occurrence_finite CHECK (isfinite(occurrence_start));
-- `explain`: everything about one event and recipient.
CREATE INDEX notifications_by_event ON notifyctl.notifications (event_id, user_id)
    WHERE event_id IS NOT NULL;
-- The decisions of a series' occurrences in a window.
CREATE INDEX reminders_by_event_start ON notifyctl.reminders (event_id, event_start);

-- Every attempt to deliver, and every drop: when, how it ended, what the server answered.
CREATE TABLE notifyctl.delivery_attempts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id bigint NOT NULL REFERENCES notifyctl.deliveries (id) ON DELETE CASCADE,
    attempt     bigint NOT NULL,        -- the delivery's attempt count after this one
    at          timestamptz(0) NOT NULL CHECK (isfinite(at)),
    outcome     text NOT NULL CHECK (outcome IN ('sent', 'failed', 'dead', 'superseded', 'expired')),
    answer      text                    -- the server's answer, the error, or why it was dropped
);
CREATE INDEX delivery_attempts_by_delivery ON notifyctl.delivery_attempts (delivery_id, id);
CREATE INDEX delivery_attempts_by_time ON notifyctl.delivery_attempts (at);
