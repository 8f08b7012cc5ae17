-- notifyctl data contract, schema version 6.
--
-- A web app may read (and, for users/events/participants, write) these tables directly
-- with SQL. Rules every writer must follow:
--   * Instants are TEXT in RFC 3339 UTC with a trailing 'Z', second precision:
--     '2030-03-10T08:30:00Z'. They sort and compare as text. In users, events and
--     participants, triggers (at the end of this file) convert what SQLite reads as a
--     time — its own CURRENT_TIMESTAMP form '2030-03-10 08:30:00' (UTC), fractional
--     seconds, an offset like '+01:00' — and refuse anything else with an error naming
--     the column, so an event is never silently left without reminders.
--   * Enumerations are lower-case TEXT guarded by CHECK constraints.
--   * Foreign keys are on (PRAGMA foreign_keys = ON in every connection).
-- notifyctl applies this file on `init` and records the version in PRAGMA user_version.

CREATE TABLE IF NOT EXISTS users (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    name          TEXT NOT NULL,
    timezone      TEXT,                 -- IANA zone; NULL: [reminders] default_timezone
    locale        TEXT CHECK (locale IN ('fr', 'en')),  -- NULL: [reminders] default_locale
    -- Email for every kind of notice: the 'all' email preference (see preferences).
    email_enabled INTEGER NOT NULL DEFAULT 1 CHECK (email_enabled IN (0, 1)),
    created_at    TEXT NOT NULL,
    -- For SMS, in E.164 ('+33612345678'); NULL: no SMS.
    phone         TEXT CHECK (phone GLOB '+[1-9]*' AND substr(phone, 2) NOT GLOB '*[^0-9]*' AND length(phone) BETWEEN 8 AND 16),
    -- The ntfy topic the user's push notifications go to (a secret: anyone who knows it can
    -- subscribe); NULL: no push.
    ntfy_topic    TEXT CHECK (length(ntfy_topic) BETWEEN 1 AND 64 AND ntfy_topic NOT GLOB '*[^A-Za-z0-9_-]*'),
    -- 'HH:MM-HH:MM' in the user's zone, possibly across midnight ('22:00-07:00'): outgoing
    -- messages that are not urgent wait for the end. NULL: none.
    quiet_hours   TEXT CHECK (quiet_hours GLOB '[0-2][0-9]:[0-5][0-9]-[0-2][0-9]:[0-5][0-9]')
);
-- The daily agenda finds the zones in use, and each zone's users, through this.
CREATE INDEX IF NOT EXISTS users_by_timezone ON users (timezone);

CREATE TABLE IF NOT EXISTS events (
    id          INTEGER PRIMARY KEY,
    title       TEXT NOT NULL,
    starts_at   TEXT NOT NULL,
    ends_at     TEXT NOT NULL,
    timezone    TEXT,                   -- the zone the event was entered in (display only)
    video_url   TEXT,
    status      TEXT NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'cancelled')),
    -- iCalendar SEQUENCE: bumped on every change a calendar must see (time, title, cancel).
    sequence    INTEGER NOT NULL DEFAULT 0,
    -- When the current start was set: reminders whose moment came before it are not sent.
    armed_at    TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    -- Version 5. NULL: the [reminders] offsets of the config; else a JSON array of whole
    -- minutes (1 to 525600), largest first ('[1440,10]'); '[]': no reminders. What a writer
    -- puts here is sorted and de-duplicated by a trigger (the tick reads the first element
    -- as the largest); anything else is refused.
    remind_offsets TEXT,
    -- NULL: a single event. Else an RFC 5545 RRULE value ('FREQ=WEEKLY;COUNT=16',
    -- 'FREQ=WEEKLY;BYDAY=MO,TH;UNTIL=20301231T000000Z'): the event is a series whose first
    -- occurrence is starts_at/ends_at, expanded in `timezone` (required) so that local
    -- wall-clock time is kept across daylight saving. Daily or less often, one time of day.
    repeat_rule TEXT CHECK (repeat_rule IS NULL OR timezone IS NOT NULL),
    -- A series: when its last occurrence ends (moved ones included); NULL when it has no
    -- end. Written by notifyctl; an app that writes a series leaves it NULL (always safe:
    -- NULL is read as "no end").
    series_end TEXT,
    CHECK (ends_at > starts_at)
);
-- The tick looks for scheduled events starting in the next few minutes.
CREATE INDEX IF NOT EXISTS events_scheduled_by_start ON events (status, starts_at);

CREATE TABLE IF NOT EXISTS participants (
    event_id  INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    user_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role      TEXT NOT NULL DEFAULT 'participant',
    added_at  TEXT NOT NULL,
    PRIMARY KEY (event_id, user_id)
) WITHOUT ROWID;
-- Double-booking check and `event list --user`.
CREATE INDEX IF NOT EXISTS participants_by_user ON participants (user_id, event_id);

-- The in-app inbox: one row per notice and recipient.
CREATE TABLE IF NOT EXISTS notifications (
    id             INTEGER PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind           TEXT NOT NULL CHECK (kind IN ('assigned', 'reminder', 'rescheduled', 'cancelled', 'custom', 'agenda')),
    event_id       INTEGER REFERENCES events (id) ON DELETE SET NULL,
    offset_minutes INTEGER,             -- reminders only
    event_start    TEXT,                -- the event's start this notice was about
    event_sequence INTEGER,             -- the event's sequence this notice was about
    previous_start TEXT,                -- rescheduled notices: the start before the move
    title          TEXT NOT NULL,
    body           TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    read_at        TEXT,
    -- Version 5: a notice about one occurrence of a series (its reminders, a cancelled or
    -- moved occurrence): that occurrence's original start, as the rule gives it. event_start
    -- is then when the occurrence takes place.
    occurrence_start TEXT,
    agenda_date    TEXT,                -- agenda notices: the local date 'YYYY-MM-DD' they list
    CHECK ((kind = 'agenda') = (agenda_date IS NOT NULL))
);
-- Exactly once: one reminder per (event, recipient, offset, event start) ...
CREATE UNIQUE INDEX IF NOT EXISTS notifications_reminder_once
    ON notifications (event_id, user_id, offset_minutes, event_start) WHERE kind = 'reminder';
-- ... and one immediate notice per (event, recipient, kind, event revision).
CREATE UNIQUE INDEX IF NOT EXISTS notifications_notice_once
    ON notifications (event_id, user_id, kind, event_sequence)
    WHERE kind IN ('assigned', 'rescheduled', 'cancelled') AND event_id IS NOT NULL;
-- ... and one agenda per recipient and local date.
CREATE UNIQUE INDEX IF NOT EXISTS notifications_agenda_once
    ON notifications (user_id, agenda_date) WHERE kind = 'agenda';
-- The inbox, newest first, and the unread badge.
CREATE INDEX IF NOT EXISTS notifications_inbox ON notifications (user_id, id);
CREATE INDEX IF NOT EXISTS notifications_unread ON notifications (user_id) WHERE read_at IS NULL;

-- Every reminder decision, sent or skipped, once per (event, recipient, offset, start).
CREATE TABLE IF NOT EXISTS reminders (
    event_id        INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    user_id         INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    offset_minutes  INTEGER NOT NULL,
    event_start     TEXT NOT NULL,
    outcome         TEXT NOT NULL CHECK (outcome IN ('sent', 'skipped')),
    -- skipped: 'late' (missed by more than grace), 'collapsed' (a later offset was due too),
    -- 'armed_late' (its moment came before the participant was added or the event moved).
    reason          TEXT,
    notification_id INTEGER REFERENCES notifications (id) ON DELETE SET NULL,
    decided_at      TEXT NOT NULL,
    PRIMARY KEY (event_id, user_id, offset_minutes, event_start)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS reminders_skipped ON reminders (decided_at) WHERE outcome = 'skipped';

-- The outbox: one row per notice and channel. Sent exactly once unless a crash falls
-- between the server's acceptance and the commit that records it.
CREATE TABLE IF NOT EXISTS deliveries (
    id              INTEGER PRIMARY KEY,
    notification_id INTEGER NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    channel         TEXT NOT NULL CHECK (channel IN ('email', 'webhook', 'sms', 'ntfy')),
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'dead', 'superseded', 'expired')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    claimed_by      TEXT,               -- the tick holding it while status = 'sending'
    claim_expires_at TEXT,              -- after this a crashed tick's claim is taken over
    last_error      TEXT,
    message_id      TEXT,
    response        TEXT,               -- the server's answer on success
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    sent_at         TEXT,
    -- Why a pending delivery waits until next_attempt_at although nothing failed: the
    -- recipient's quiet hours. Cleared when it is claimed.
    hold_reason     TEXT,
    UNIQUE (notification_id, channel)
);
-- Claiming due work: only unfinished rows are indexed, so the idle tick reads nothing.
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (next_attempt_at)
    WHERE status IN ('pending', 'failed');
CREATE INDEX IF NOT EXISTS deliveries_claimed ON deliveries (claim_expires_at)
    WHERE status = 'sending';
CREATE INDEX IF NOT EXISTS deliveries_by_status ON deliveries (status, id);

-- One row per check-reminders run.
CREATE TABLE IF NOT EXISTS ticks (
    id          INTEGER PRIMARY KEY,
    started_at  TEXT NOT NULL,          -- the tick's clock (--now when given)
    finished_at TEXT,
    ok          INTEGER,                -- 1 finished, 0 failed, NULL still running or killed
    created     INTEGER NOT NULL DEFAULT 0,
    skipped     INTEGER NOT NULL DEFAULT 0,
    sent        INTEGER NOT NULL DEFAULT 0,
    failed      INTEGER NOT NULL DEFAULT 0,
    dead        INTEGER NOT NULL DEFAULT 0,
    dropped     INTEGER NOT NULL DEFAULT 0,
    error       TEXT,
    elapsed_ms  INTEGER,
    -- What the tick could not do although it finished: a JSON array of one-line messages
    -- (a channel it could not use, deliveries that went dead).
    problems    TEXT,
    held        INTEGER NOT NULL DEFAULT 0   -- deliveries held back for quiet hours
);
CREATE INDEX IF NOT EXISTS ticks_by_start ON ticks (started_at);

-- Version 6: what each person receives, per kind of notice and outgoing channel (the in-app
-- row is always kept; the webhook is the app's own feed). No row: on. The kind 'all' is the
-- channel's setting for the kinds without a row of their own; for email that setting is
-- users.email_enabled (so it has no row here). Kinds listed in [preferences] mandatory go
-- out whatever these say.
CREATE TABLE IF NOT EXISTS preferences (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL
               CHECK (kind IN ('all', 'assigned', 'reminder', 'rescheduled', 'cancelled', 'custom', 'agenda')),
    channel    TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'ntfy')),
    enabled    INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    updated_at TEXT NOT NULL,
    PRIMARY KEY (user_id, kind, channel),
    CHECK (kind <> 'all' OR channel <> 'email')
) WITHOUT ROWID;

-- The daily agenda passes done, per zone as users.timezone holds it ('' for NULL, the
-- default zone) and local date: a tick whose agendas are decided reads one row.
CREATE TABLE IF NOT EXISTS agenda_runs (
    zone       TEXT NOT NULL,
    local_date TEXT NOT NULL,
    done_at    TEXT NOT NULL,
    PRIMARY KEY (zone, local_date)
) WITHOUT ROWID;

-- Instants written by an app are normalised (or refused) as they are written.
CREATE TRIGGER IF NOT EXISTS users_instants_insert AFTER INSERT ON users
WHEN NEW.created_at IS NOT strftime('%Y-%m-%dT%H:%M:%SZ', NEW.created_at)
BEGIN
    SELECT RAISE(ABORT, 'users.created_at must be a time like 2030-03-10T08:30:00Z')
     WHERE strftime('%Y-%m-%dT%H:%M:%SZ', NEW.created_at) IS NULL;
    UPDATE users SET created_at = strftime('%Y-%m-%dT%H:%M:%SZ', created_at)
     WHERE id = NEW.id;
END;

CREATE TRIGGER IF NOT EXISTS users_instants_update AFTER UPDATE OF created_at ON users
WHEN NEW.created_at IS NOT strftime('%Y-%m-%dT%H:%M:%SZ', NEW.created_at)
BEGIN
    SELECT RAISE(ABORT, 'users.created_at must be a time like 2030-03-10T08:30:00Z')
     WHERE strftime('%Y-%m-%dT%H:%M:%SZ', NEW.created_at) IS NULL;
    UPDATE users SET created_at = strftime('%Y-%m-%dT%H:%M:%SZ', created_at)
     WHERE id = NEW.id;
END;

CREATE TRIGGER IF NOT EXISTS events_instants_insert AFTER INSERT ON events
WHEN NEW.starts_at IS NOT strftime('%Y-%m-%dT%H:%M:%SZ', NEW.starts_at) OR NEW.ends_at IS NOT strftime('%Y-%m-%dT%H:%M:%SZ', NEW.ends_at) OR NEW.armed_at IS NOT strftime('%Y-%m-%dT%H:%M:%SZ', NEW.armed_at) OR NEW.created_at IS NOT strftime('%Y-%m-%dT%H:%M:%SZ', NEW.created_at) OR NEW.updated_at IS NOT strftime('%Y-%m-%dT%H:%M:%SZ', NEW.updated_at)
BEGIN
    SELECT RAISE(ABORT, 'events.starts_at must be a time like 2030-03-10T08:30:00Z')
     WHERE strftime('%Y-%m-%dT%H:%M:%SZ', NEW.starts_at) IS NULL;
    SELECT RAISE(ABORT, 'events.ends_at must be a time like 2030-03-10T08:30:00Z')
     WHERE strftime('%Y-%m-%dT%H:%M:%SZ', NEW.ends_at) IS NULL;
    SELECT RAISE(ABORT, 'events.armed_at must be a time like 2030-03-10T08:30:00Z')
     WHERE strftime('%Y-%m-%dT%H:%M:%SZ', NEW.armed_at) IS NULL;
    SELECT RAISE(ABORT, 'events.created_at must be a time like 2030-03-10T08:30:00Z')
     WHERE strftime('%Y-%m-%dT%H:%M:%SZ', NEW.created_at) IS NULL;
    SELECT RAISE(ABORT, 'events.updated_at must be a time like 2030-03-10T08:30:00Z')
     WHERE strftime('%Y-%m-%dT%H:%M:%SZ', NEW.updated_at) IS NULL;
    UPDATE events SET starts_at = strftime('%Y-%m-%dT%H:%M:%SZ', starts_at), ends_at = strftime('%Y-%m-%dT%H:%M:%SZ', ends_at), armed_at = strftime('%Y-%m-%dT%H:%M:%SZ', armed_at), created_at = strftime('%Y-%m-%dT%H:%M:%SZ', created_at), updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', updated_at)
     WHERE id = NEW.id;
END;

CREATE TRIGGER IF NOT EXISTS events_instants_update AFTER UPDATE OF starts_at, ends_at, armed_at, created_at, updated_at ON events
WHEN NEW.starts_at IS NOT strftime('%Y-%m-%dT%H:%M:%SZ', NEW.starts_at) OR NEW.ends_at IS NOT strftime('%Y-%m-%dT%H:%M:%SZ', NEW.ends_at) OR NEW.armed_at IS NOT strftime('%Y-%m-%dT%H:%M:%SZ', NEW.armed_at) OR NEW.created_at IS NOT strftime('%Y-%m-%dT%H:%M:%SZ', NEW.created_at) OR NEW.updated_at IS NOT strftime('%Y-%m-%dT%H:%M:%SZ', NEW.updated_at)
BEGIN
    SELECT RAISE(ABORT, 'events.starts_at must be a time like 2030-03-10T08:30:00Z')
     WHERE strftime('%Y-%m-%dT%H:%M:%SZ', NEW.starts_at) IS NULL;
    SELECT RAISE(ABORT, 'events.ends_at must be a time like 2030-03-10T08:30:00Z')
     WHERE strftime('%Y-%m-%dT%H:%M:%SZ', NEW.ends_at) IS NULL;
    SELECT RAISE(ABORT, 'events.armed_at must be a time like 2030-03-10T08:30:00Z')
     WHERE strftime('%Y-%m-%dT%H:%M:%SZ', NEW.armed_at) IS NULL;
    SELECT RAISE(ABORT, 'events.created_at must be a time like 2030-03-10T08:30:00Z')
     WHERE strftime('%Y-%m-%dT%H:%M:%SZ', NEW.created_at) IS NULL;
    SELECT RAISE(ABORT, 'events.updated_at must be a time like 2030-03-10T08:30:00Z')
     WHERE strftime('%Y-%m-%dT%H:%M:%SZ', NEW.updated_at) IS NULL;
    UPDATE events SET starts_at = strftime('%Y-%m-%dT%H:%M:%SZ', starts_at), ends_at = strftime('%Y-%m-%dT%H:%M:%SZ', ends_at), armed_at = strftime('%Y-%m-%dT%H:%M:%SZ', armed_at), created_at = strftime('%Y-%m-%dT%H:%M:%SZ', created_at), updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', updated_at)
     WHERE id = NEW.id;
END;

CREATE TRIGGER IF NOT EXISTS participants_instants_insert AFTER INSERT ON participants
WHEN NEW.added_at IS NOT strftime('%Y-%m-%dT%H:%M:%SZ', NEW.added_at)
BEGIN
    SELECT RAISE(ABORT, 'participants.added_at must be a time like 2030-03-10T08:30:00Z')
     WHERE strftime('%Y-%m-%dT%H:%M:%SZ', NEW.added_at) IS NULL;
    UPDATE participants SET added_at = strftime('%Y-%m-%dT%H:%M:%SZ', added_at)
     WHERE event_id = NEW.event_id AND user_id = NEW.user_id;
END;

CREATE TRIGGER IF NOT EXISTS participants_instants_update AFTER UPDATE OF added_at ON participants
WHEN NEW.added_at IS NOT strftime('%Y-%m-%dT%H:%M:%SZ', NEW.added_at)
BEGIN
    SELECT RAISE(ABORT, 'participants.added_at must be a time like 2030-03-10T08:30:00Z')
     WHERE strftime('%Y-%m-%dT%H:%M:%SZ', NEW.added_at) IS NULL;
    UPDATE participants SET added_at = strftime('%Y-%m-%dT%H:%M:%SZ', added_at)
     WHERE event_id = NEW.event_id AND user_id = NEW.user_id;
END;

-- Version 4: an index for the double-booking check, so that it costs O(log n) in a
-- participant's history instead of reading all of it. One R*Tree entry per participant
-- of a scheduled single event (version 5: not of a series, whose occurrences the service
-- expands), over (user, hours [floor(start), ceil(end))); the exact half-open
-- comparison is then made on the few events it returns. Triggers keep it in step with
-- participants and events, also for rows the web app writes itself; neither table is
-- for an app to write.
CREATE TABLE IF NOT EXISTS busy_slots (
    id       INTEGER PRIMARY KEY,
    event_id INTEGER NOT NULL,
    user_id  INTEGER NOT NULL,
    UNIQUE (event_id, user_id)
);
CREATE VIRTUAL TABLE IF NOT EXISTS busy_index USING rtree_i32(id, user_lo, user_hi, hour_lo, hour_hi);


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

CREATE TRIGGER IF NOT EXISTS busy_participant_delete AFTER DELETE ON participants
BEGIN
    DELETE FROM busy_index WHERE id IN
        (SELECT id FROM busy_slots WHERE event_id = OLD.event_id AND user_id = OLD.user_id);
    DELETE FROM busy_slots WHERE event_id = OLD.event_id AND user_id = OLD.user_id;
END;

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

CREATE TRIGGER IF NOT EXISTS busy_event_delete AFTER DELETE ON events
BEGIN
    DELETE FROM busy_index WHERE id IN (SELECT id FROM busy_slots WHERE event_id = OLD.id);
    DELETE FROM busy_slots WHERE event_id = OLD.id;
END;

-- Version 5: recurring series' exceptions, the indexes of the rules a booking app needs,
-- and the log of delivery attempts.
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
