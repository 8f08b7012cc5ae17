-- Version 6: what each person receives (SQLite's step 6 makes the same contract).
--
-- * users: a phone number for SMS (E.164), an ntfy topic for push, quiet hours in the
--   user's zone ('22:00-07:00'); an index on the zone for the daily agenda.
-- * preferences: per user, kind and outgoing channel, on or off (no row: on). The kind
--   'all' is the channel's setting for every kind without a row of its own; for email
--   that setting is users.email_enabled, as it always was.
-- * notifications: the kind 'agenda' (one per user and local date: agenda_date, a unique
--   key). deliveries: the channels 'sms' and 'ntfy', and hold_reason (why a pending
--   delivery waits: the recipient's quiet hours).
-- * agenda_runs: the (zone, local date) agenda passes already done.
-- * ticks: how many deliveries a tick held back for quiet hours.
ALTER TABLE notifyctl.users
    ADD COLUMN phone text CONSTRAINT users_phone_e164 CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    ADD COLUMN ntfy_topic text CONSTRAINT users_ntfy_topic_form CHECK (ntfy_topic ~ '^[A-Za-z0-9_-]{1,64}$'),
    ADD COLUMN quiet_hours text
        CONSTRAINT users_quiet_hours_form CHECK (quiet_hours ~ '^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$');
CREATE INDEX users_by_timezone ON notifyctl.users (timezone);

ALTER TABLE notifyctl.notifications
    DROP CONSTRAINT notifications_kind_check,
    ADD CONSTRAINT notifications_kind_check
        CHECK (kind IN ('assigned', 'reminder', 'rescheduled', 'cancelled', 'custom', 'agenda')),
    ADD COLUMN agenda_date date,
    ADD CONSTRAINT notifications_agenda_date CHECK ((kind = 'agenda') = (agenda_date IS NOT NULL));
CREATE UNIQUE INDEX notifications_agenda_once
    ON notifyctl.notifications (user_id, agenda_date) WHERE kind = 'agenda';

ALTER TABLE notifyctl.deliveries
    DROP CONSTRAINT deliveries_channel_check,
    ADD CONSTRAINT deliveries_channel_check CHECK (channel IN ('email', 'webhook', 'sms', 'ntfy')),
    ADD COLUMN hold_reason text;

ALTER TABLE notifyctl.ticks ADD COLUMN held bigint NOT NULL DEFAULT 0;

CREATE TABLE notifyctl.preferences (
    user_id    bigint NOT NULL REFERENCES notifyctl.users (id) ON DELETE CASCADE,
    kind       text NOT NULL
               CHECK (kind IN ('all', 'assigned', 'reminder', 'rescheduled', 'cancelled', 'custom', 'agenda')),
    channel    text NOT NULL CHECK (channel IN ('email', 'sms', 'ntfy')),
    enabled    boolean NOT NULL,
    updated_at timestamptz(0) NOT NULL DEFAULT now() CHECK (isfinite(updated_at)),
    PRIMARY KEY (user_id, kind, channel),
    CONSTRAINT preferences_email_all CHECK (kind <> 'all' OR channel <> 'email')
);

CREATE TABLE notifyctl.agenda_runs (
    zone       text NOT NULL,
    local_date date NOT NULL,
    done_at    timestamptz(0) NOT NULL DEFAULT now() CHECK (isfinite(done_at)),
    PRIMARY KEY (zone, local_date)
);
