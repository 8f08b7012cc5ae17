-- Version 6: what each person receives.
--
-- * users: a phone number for SMS (E.164), an ntfy topic for push, quiet hours in the
--   user's zone ('22:00-07:00'); an index on the zone for the daily agenda.
-- * preferences: per user, kind and outgoing channel, on or off (no row: on). The kind
--   'all' is the channel's setting for every kind without a row of its own; for email
--   that setting is users.email_enabled, as it always was.
-- * notifications: the kind 'agenda' (one per user and local date: agenda_date, a unique
--   key). deliveries: the channels 'sms' and 'ntfy', and hold_reason (why a pending
--   delivery waits: the recipient's quiet hours). SQLite cannot change a CHECK constraint,
--   so both tables are rebuilt: created anew, filled, swapped in, their indexes made
--   again (version 5's occurrence_start and notifications_by_event included). The migration runs with foreign keys off (see migrations.rs): dropping the old
--   tables must not cascade to the rows that refer to them.
-- * agenda_runs: the (zone, local date) agenda passes already done, so that a tick whose
--   agendas are all decided reads one row.
-- * ticks: how many deliveries a tick held back for quiet hours.

ALTER TABLE users ADD COLUMN phone TEXT
    CHECK (phone GLOB '+[1-9]*' AND substr(phone, 2) NOT GLOB '*[^0-9]*' AND length(phone) BETWEEN 8 AND 16);
ALTER TABLE users ADD COLUMN ntfy_topic TEXT
    CHECK (length(ntfy_topic) BETWEEN 1 AND 64 AND ntfy_topic NOT GLOB '*[^A-Za-z0-9_-]*');
ALTER TABLE users ADD COLUMN quiet_hours TEXT
    CHECK (quiet_hours GLOB '[0-2][0-9]:[0-5][0-9]-[0-2][0-9]:[0-5][0-9]');
CREATE INDEX IF NOT EXISTS users_by_timezone ON users (timezone);

ALTER TABLE ticks ADD COLUMN held INTEGER NOT NULL DEFAULT 0;

CREATE TABLE notifications_v6 (
    id             INTEGER PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind           TEXT NOT NULL CHECK (kind IN ('assigned', 'reminder', 'rescheduled', 'cancelled', 'custom', 'agenda')),
    event_id       INTEGER REFERENCES events (id) ON DELETE SET NULL,
    offset_minutes INTEGER,
    event_start    TEXT,
    event_sequence INTEGER,
    previous_start TEXT,
    title          TEXT NOT NULL,
    body           TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    read_at        TEXT,
    occurrence_start TEXT,
    agenda_date    TEXT,
    CHECK ((kind = 'agenda') = (agenda_date IS NOT NULL))
);
INSERT INTO notifications_v6 (id, user_id, kind, event_id, offset_minutes, event_start, event_sequence,
                              previous_start, title, body, created_at, read_at, occurrence_start)
    SELECT id, user_id, kind, event_id, offset_minutes, event_start, event_sequence,
           previous_start, title, body, created_at, read_at, occurrence_start FROM notifications;
DROP TABLE notifications;
ALTER TABLE notifications_v6 RENAME TO notifications;
CREATE UNIQUE INDEX notifications_reminder_once
    ON notifications (event_id, user_id, offset_minutes, event_start) WHERE kind = 'reminder';
CREATE UNIQUE INDEX notifications_notice_once
    ON notifications (event_id, user_id, kind, event_sequence)
    WHERE kind IN ('assigned', 'rescheduled', 'cancelled') AND event_id IS NOT NULL;
CREATE UNIQUE INDEX notifications_agenda_once
    ON notifications (user_id, agenda_date) WHERE kind = 'agenda';
CREATE INDEX notifications_inbox ON notifications (user_id, id);
CREATE INDEX notifications_unread ON notifications (user_id) WHERE read_at IS NULL;
CREATE INDEX notifications_by_event ON notifications (event_id, user_id)
    WHERE event_id IS NOT NULL;

CREATE TABLE deliveries_v6 (
    id              INTEGER PRIMARY KEY,
    notification_id INTEGER NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    channel         TEXT NOT NULL CHECK (channel IN ('email', 'webhook', 'sms', 'ntfy')),
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'dead', 'superseded', 'expired')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    claimed_by      TEXT,
    claim_expires_at TEXT,
    last_error      TEXT,
    message_id      TEXT,
    response        TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    sent_at         TEXT,
    hold_reason     TEXT,
    UNIQUE (notification_id, channel)
);
INSERT INTO deliveries_v6 (id, notification_id, channel, status, attempts, next_attempt_at, claimed_by,
                           claim_expires_at, last_error, message_id, response, created_at, updated_at, sent_at)
    SELECT id, notification_id, channel, status, attempts, next_attempt_at, claimed_by,
           claim_expires_at, last_error, message_id, response, created_at, updated_at, sent_at FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_v6 RENAME TO deliveries;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status IN ('pending', 'failed');
CREATE INDEX deliveries_claimed ON deliveries (claim_expires_at) WHERE status = 'sending';
CREATE INDEX deliveries_by_status ON deliveries (status, id);

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

CREATE TABLE IF NOT EXISTS agenda_runs (
    zone       TEXT NOT NULL,
    local_date TEXT NOT NULL,
    done_at    TEXT NOT NULL,
    PRIMARY KEY (zone, local_date)
) WITHOUT ROWID;
