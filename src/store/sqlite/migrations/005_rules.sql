-- Version 5: the rules a booking app needs. Per-event reminder offsets, recurring series
-- (a rule on the event, its cancelled and moved occurrences in event_exceptions), the
-- occurrence a notice is about, and a log of every delivery attempt with the server's answer.

-- NULL: the [reminders] offsets of the config; else a JSON array of whole minutes, largest
-- first ('[1440,10]'); '[]': no reminders. Whatever a writer puts here is sorted and
-- de-duplicated by the triggers below (the tick reads the first element as the largest);
-- anything else is refused.
ALTER TABLE events ADD COLUMN remind_offsets TEXT;
-- NULL: a single event. Else an RFC 5545 RRULE value ('FREQ=WEEKLY;COUNT=16'): the event is
-- a series whose first occurrence is starts_at/ends_at, expanded in `timezone`.
ALTER TABLE events ADD COLUMN repeat_rule TEXT CHECK (repeat_rule IS NULL OR timezone IS NOT NULL);
-- A series: when its last occurrence ends (moved ones included); NULL when it has no end.
-- Written by notifyctl; an app that writes a series leaves it NULL (always safe).
ALTER TABLE events ADD COLUMN series_end TEXT;

-- Single occurrences of a series that were cancelled or moved, keyed by the start the rule
-- gives them. Written by notifyctl (`event cancel|update EVENT --occurrence TIME`).
CREATE TABLE IF NOT EXISTS event_exceptions (
    event_id       INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    original_start TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('cancelled', 'moved')),
    starts_at      TEXT,                -- moved: the new start and end
    ends_at        TEXT,
    -- When the occurrence was moved: its reminders whose moment came before are not sent.
    armed_at       TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    PRIMARY KEY (event_id, original_start),
    CHECK (status = 'cancelled' OR (starts_at IS NOT NULL AND ends_at > starts_at))
) WITHOUT ROWID;

-- Notices about one occurrence of a series: its original start (the RECURRENCE-ID).
ALTER TABLE notifications ADD COLUMN occurrence_start TEXT;
-- `explain`: everything about one event and recipient.
CREATE INDEX IF NOT EXISTS notifications_by_event ON notifications (event_id, user_id)
    WHERE event_id IS NOT NULL;
-- The decisions of a series' occurrences in a window.
CREATE INDEX IF NOT EXISTS reminders_by_event_start ON reminders (event_id, event_start);
-- The tick reads the series that can still have occurrences: ended ones are never read
-- (one range of this index: a series without an end sorts last).
CREATE INDEX IF NOT EXISTS events_series ON events (status, coalesce(series_end, '9999-12-31T23:59:59Z'))
    WHERE repeat_rule IS NOT NULL;
-- The largest own offset of upcoming single events (how far ahead the tick must look).
CREATE INDEX IF NOT EXISTS events_own_reminders
    ON events (json_extract(remind_offsets, '$[0]'), starts_at)
    WHERE remind_offsets IS NOT NULL AND repeat_rule IS NULL AND status = 'scheduled';

-- Every attempt to deliver, and every drop: when, how it ended, what the server answered.
CREATE TABLE IF NOT EXISTS delivery_attempts (
    id          INTEGER PRIMARY KEY,
    delivery_id INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,       -- the delivery's attempt count after this one
    at          TEXT NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('sent', 'failed', 'dead', 'superseded', 'expired')),
    answer      TEXT                    -- the server's answer, the error, or why it was dropped
);
CREATE INDEX IF NOT EXISTS delivery_attempts_by_delivery ON delivery_attempts (delivery_id, id);
CREATE INDEX IF NOT EXISTS delivery_attempts_by_time ON delivery_attempts (at);

-- Reminder offsets are normalised (sorted, largest first, no duplicates) or refused. Written
-- without an aggregate ORDER BY (SQLite 3.44+), so that older sqlite3 shells and the web
-- app's SQLite can still read the schema.
CREATE TRIGGER IF NOT EXISTS events_remind_offsets_insert AFTER INSERT ON events
WHEN NEW.remind_offsets IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'events.remind_offsets must be NULL or a JSON array of whole minutes (1 to 525600) like [1440,10]')
     WHERE CASE WHEN json_valid(NEW.remind_offsets) AND json_type(NEW.remind_offsets) = 'array'
                THEN EXISTS (SELECT 1 FROM json_each(NEW.remind_offsets)
                              WHERE type <> 'integer' OR value < 1 OR value > 525600)
                ELSE 1 END;
    UPDATE events SET remind_offsets =
           (SELECT json_group_array(value) FROM
             (SELECT DISTINCT value FROM json_each(NEW.remind_offsets) ORDER BY value DESC))
     WHERE id = NEW.id;
END;

CREATE TRIGGER IF NOT EXISTS events_remind_offsets_update AFTER UPDATE OF remind_offsets ON events
WHEN NEW.remind_offsets IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'events.remind_offsets must be NULL or a JSON array of whole minutes (1 to 525600) like [1440,10]')
     WHERE CASE WHEN json_valid(NEW.remind_offsets) AND json_type(NEW.remind_offsets) = 'array'
                THEN EXISTS (SELECT 1 FROM json_each(NEW.remind_offsets)
                              WHERE type <> 'integer' OR value < 1 OR value > 525600)
                ELSE 1 END;
    UPDATE events SET remind_offsets =
           (SELECT json_group_array(value) FROM
             (SELECT DISTINCT value FROM json_each(NEW.remind_offsets) ORDER BY value DESC))
     WHERE id = NEW.id;
END;

-- series_end follows the rules of every other instant (version 3).
CREATE TRIGGER IF NOT EXISTS events_series_end_insert AFTER INSERT ON events
WHEN NEW.series_end IS NOT strftime('%Y-%m-%dT%H:%M:%SZ', NEW.series_end)
BEGIN
    SELECT RAISE(ABORT, 'events.series_end must be NULL or a time like 2030-03-10T08:30:00Z')
     WHERE strftime('%Y-%m-%dT%H:%M:%SZ', NEW.series_end) IS NULL;
    UPDATE events SET series_end = strftime('%Y-%m-%dT%H:%M:%SZ', series_end) WHERE id = NEW.id;
END;

CREATE TRIGGER IF NOT EXISTS events_series_end_update AFTER UPDATE OF series_end ON events
WHEN NEW.series_end IS NOT strftime('%Y-%m-%dT%H:%M:%SZ', NEW.series_end)
BEGIN
    SELECT RAISE(ABORT, 'events.series_end must be NULL or a time like 2030-03-10T08:30:00Z')
     WHERE strftime('%Y-%m-%dT%H:%M:%SZ', NEW.series_end) IS NULL;
    UPDATE events SET series_end = strftime('%Y-%m-%dT%H:%M:%SZ', series_end) WHERE id = NEW.id;
END;

-- The busy index (version 4) holds single events only: a series' occurrences are checked by
-- the service, which expands them. Its triggers are replaced by ones that leave series out
-- (and follow an event that becomes one).
DROP TRIGGER IF EXISTS busy_participant_insert;
CREATE TRIGGER IF NOT EXISTS busy_participant_insert AFTER INSERT ON participants
BEGIN
    INSERT OR IGNORE INTO busy_slots (event_id, user_id)
        SELECT NEW.event_id, NEW.user_id FROM events e
        WHERE e.id = NEW.event_id AND e.status = 'scheduled' AND e.repeat_rule IS NULL AND strftime('%s', e.starts_at) IS NOT NULL AND strftime('%s', e.ends_at) IS NOT NULL;
    INSERT OR REPLACE INTO busy_index
        SELECT s.id, s.user_id, s.user_id, (CASE WHEN CAST(strftime('%s', e.starts_at) AS INTEGER) >= 0 THEN CAST(strftime('%s', e.starts_at) AS INTEGER) / 3600 ELSE (CAST(strftime('%s', e.starts_at) AS INTEGER) - 3599) / 3600 END), (CASE WHEN CAST(strftime('%s', e.ends_at) AS INTEGER) >= 0 THEN (CAST(strftime('%s', e.ends_at) AS INTEGER) + 3599) / 3600 ELSE CAST(strftime('%s', e.ends_at) AS INTEGER) / 3600 END)
        FROM busy_slots s JOIN events e ON e.id = s.event_id
        WHERE s.event_id = NEW.event_id AND s.user_id = NEW.user_id;
END;

DROP TRIGGER IF EXISTS busy_event_update;
CREATE TRIGGER IF NOT EXISTS busy_event_update AFTER UPDATE OF starts_at, ends_at, status, repeat_rule ON events
BEGIN
    DELETE FROM busy_index WHERE id IN (SELECT id FROM busy_slots WHERE event_id = NEW.id);
    DELETE FROM busy_slots WHERE event_id = NEW.id;
    INSERT OR IGNORE INTO busy_slots (event_id, user_id)
        SELECT NEW.id, p.user_id FROM participants p
        WHERE p.event_id = NEW.id AND NEW.status = 'scheduled' AND NEW.repeat_rule IS NULL AND strftime('%s', NEW.starts_at) IS NOT NULL AND strftime('%s', NEW.ends_at) IS NOT NULL;
    INSERT OR REPLACE INTO busy_index
        SELECT s.id, s.user_id, s.user_id, (CASE WHEN CAST(strftime('%s', NEW.starts_at) AS INTEGER) >= 0 THEN CAST(strftime('%s', NEW.starts_at) AS INTEGER) / 3600 ELSE (CAST(strftime('%s', NEW.starts_at) AS INTEGER) - 3599) / 3600 END), (CASE WHEN CAST(strftime('%s', NEW.ends_at) AS INTEGER) >= 0 THEN (CAST(strftime('%s', NEW.ends_at) AS INTEGER) + 3599) / 3600 ELSE CAST(strftime('%s', NEW.ends_at) AS INTEGER) / 3600 END)
        FROM busy_slots s WHERE s.event_id = NEW.id;
END;
