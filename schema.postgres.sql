-- notifyctl data contract for PostgreSQL, schema version 6: the same tables, meanings
-- and rules as schema.sql (SQLite) at version 6, in PostgreSQL's own types.
--
-- Everything lives in the schema `notifyctl` of the application's database; nothing
-- outside it is created or changed (the btree_gist extension, which the double-booking
-- constraint needs, is installed into it unless the database already has it elsewhere).
-- `notifyctl init` applies this (as its migration steps) under an advisory lock and
-- records the version in notifyctl.schema_migrations; several hosts may run it at once.
--
-- A web app may read these tables, and write users, events and participants (and notices
-- with their deliveries) in its own transactions, so that a booking and its notices
-- commit together. Rules every writer follows:
--   * Instants are timestamptz(0): whole seconds (fractions are rounded), finite. Write
--     them with an offset or as UTC ('2030-03-10T08:30:00Z', now()); never as a
--     timestamp without time zone read in some session zone.
--   * Ids come from identity columns: never give one (GENERATED ALWAYS).
--   * Enumerations are lower-case text guarded by CHECK constraints.
--   * Every column the app may leave out has a default (times default to now()).
--
-- Booking from the app, in one transaction:
--   INSERT INTO notifyctl.events (title, starts_at, ends_at, timezone)
--        VALUES ('Mentoring', '2030-03-10T09:00:00+01:00', '2030-03-10T10:00:00+01:00',
--                'Europe/Paris') RETURNING id;
--   INSERT INTO notifyctl.participants (event_id, user_id, role) VALUES ($event, $user, 'mentee');
--   -- optional: the "assigned" notice, delivered by the next tick (a notice the app does
--   -- not insert is not sent: the tick creates reminders, not assignment notices)
--   WITH n AS (INSERT INTO notifyctl.notifications (user_id, kind, event_id, event_sequence, title, body)
--              VALUES ($user, 'assigned', $event, 0, 'New event assigned: Mentoring', 'Mentoring')
--              RETURNING id)
--   INSERT INTO notifyctl.deliveries (notification_id, channel) SELECT id, 'email' FROM n;
-- A participant whose slot overlaps another scheduled event of the same user is refused
-- by the exclusion constraint participants_no_double_booking (SQLSTATE 23P01), unless
-- the row says allow_overlap. Reminders need nothing from the app: every tick looks for
-- scheduled events whose reminders are due.
--
-- Reading the inbox:
--   SELECT id, kind, title, body, event_id, created_at, read_at FROM notifyctl.notifications
--    WHERE user_id = $user ORDER BY id DESC LIMIT 20;
--   SELECT count(*) FROM notifyctl.notifications WHERE user_id = $user AND read_at IS NULL;
--   UPDATE notifyctl.notifications SET read_at = now() WHERE id = $id AND user_id = $user AND read_at IS NULL;

CREATE SCHEMA IF NOT EXISTS notifyctl;
CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA notifyctl;

-- The schema steps applied, one row per version; the highest is the schema's version.
CREATE TABLE notifyctl.schema_migrations (
    version    bigint PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE notifyctl.users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         text NOT NULL,        -- unique, case-insensitively (users_email_key)
    name          text NOT NULL,
    timezone      text,                 -- IANA zone; NULL: [reminders] default_timezone
    locale        text CHECK (locale IN ('fr', 'en')),  -- NULL: [reminders] default_locale
    -- Email for every kind of notice: the 'all' email preference (see preferences).
    email_enabled boolean NOT NULL DEFAULT true,
    created_at    timestamptz(0) NOT NULL DEFAULT now() CHECK (isfinite(created_at)),
    -- For SMS, in E.164 ('+33612345678'); NULL: no SMS.
    phone         text CONSTRAINT users_phone_e164 CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    -- The ntfy topic the user's push notifications go to (a secret: anyone who knows it can
    -- subscribe); NULL: no push.
    ntfy_topic    text CONSTRAINT users_ntfy_topic_form CHECK (ntfy_topic ~ '^[A-Za-z0-9_-]{1,64}$'),
    -- 'HH:MM-HH:MM' in the user's zone, possibly across midnight ('22:00-07:00'): outgoing
    -- messages that are not urgent wait for the end. NULL: none.
    quiet_hours   text
        CONSTRAINT users_quiet_hours_form CHECK (quiet_hours ~ '^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$')
);
CREATE UNIQUE INDEX users_email_key ON notifyctl.users (lower(email));
-- The daily agenda finds the zones in use, and each zone's users, through this.
CREATE INDEX users_by_timezone ON notifyctl.users (timezone);

CREATE TABLE notifyctl.events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title       text NOT NULL,
    starts_at   timestamptz(0) NOT NULL,
    ends_at     timestamptz(0) NOT NULL,
    timezone    text,                   -- the zone the event was entered in (display only)
    video_url   text,
    status      text NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'cancelled')),
    -- iCalendar SEQUENCE: bumped on every change a calendar must see (time, title, cancel).
    -- An app that moves an event sets sequence = sequence + 1, updated_at = now() and, for
    -- a new start, armed_at = now(), as notifyctl does.
    sequence    bigint NOT NULL DEFAULT 0,
    -- When the current start was set: reminders whose moment came before it are not sent.
    armed_at    timestamptz(0) NOT NULL DEFAULT now(),
    created_at  timestamptz(0) NOT NULL DEFAULT now(),
    updated_at  timestamptz(0) NOT NULL DEFAULT now(),
    -- NULL: the config's [reminders] offsets; else whole minutes (1 to 525600), largest
    -- first (a trigger sorts what a writer puts here: the tick reads the first element as
    -- the largest); '{}': no reminders.
    remind_offsets bigint[],
    -- NULL: a single event. Else an RFC 5545 RRULE value ('FREQ=WEEKLY;COUNT=16'): the
    -- event is a series whose first occurrence is starts_at/ends_at, expanded in `timezone`
    -- (required) so that local wall-clock time is kept across daylight saving.
    repeat_rule text,
    -- A series: when its last occurrence ends (moved ones included); NULL when it has no
    -- end. Written by notifyctl; an app that writes a series leaves it NULL (always safe).
    series_end  timestamptz(0),
    CONSTRAINT events_ends_after_start CHECK (ends_at > starts_at),
    CONSTRAINT events_instants_finite CHECK (isfinite(starts_at) AND isfinite(ends_at)
        AND isfinite(armed_at) AND isfinite(created_at) AND isfinite(updated_at)),
    CONSTRAINT events_remind_offsets_valid CHECK (0 < ALL (remind_offsets) AND 525600 >= ALL (remind_offsets)
        AND array_position(remind_offsets, NULL) IS NULL),
    CONSTRAINT events_series_zone CHECK (repeat_rule IS NULL OR timezone IS NOT NULL),
    CONSTRAINT events_series_end_finite CHECK (isfinite(series_end))
);
-- The tick looks for scheduled events starting in the next few minutes.
CREATE INDEX events_scheduled_by_start ON notifyctl.events (status, starts_at);

-- Reminder offsets are kept sorted, largest first, without duplicates.
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

CREATE TABLE notifyctl.participants (
    event_id      bigint NOT NULL REFERENCES notifyctl.events (id) ON DELETE CASCADE,
    user_id       bigint NOT NULL REFERENCES notifyctl.users (id) ON DELETE CASCADE,
    role          text NOT NULL DEFAULT 'participant',
    added_at      timestamptz(0) NOT NULL DEFAULT now() CHECK (isfinite(added_at)),
    -- Booked knowingly over another event (`--allow-overlap`): outside the rule below.
    allow_overlap boolean NOT NULL DEFAULT false,
    -- The event's [starts_at, ends_at) while it is scheduled, NULL once cancelled. Kept by
    -- the triggers below (whatever a writer puts here is replaced): the exclusion
    -- constraint can only look at this row's own columns.
    slot          tstzrange,
    PRIMARY KEY (event_id, user_id),
    -- No double booking: two scheduled events of one user may not intersect (half-open,
    -- so back-to-back is fine). Binds every writer, the web app included.
    CONSTRAINT participants_no_double_booking EXCLUDE USING gist (user_id WITH =, slot WITH &&)
        WHERE (slot IS NOT NULL AND NOT allow_overlap)
);
-- `event list --user`.
CREATE INDEX participants_by_user ON notifyctl.participants (user_id, event_id);
-- The double-booking check in O(log n) of a participant's history: every scheduled
-- participant (the constraint's own index leaves out allow_overlap rows).
CREATE INDEX participants_busy ON notifyctl.participants USING gist (user_id, slot)
    WHERE slot IS NOT NULL;

-- A participant's slot, from its event (NULL for a series: its occurrences are checked by
-- notifyctl's service, under a per-user advisory lock). The event row is locked as an UPDATE would lock
-- it, so that a concurrent change of the event's times waits for this row and then
-- updates its slot too (under READ COMMITTED it would otherwise miss it).
CREATE FUNCTION notifyctl.participants_slot() RETURNS trigger
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
CREATE TRIGGER participants_slot BEFORE INSERT OR UPDATE ON notifyctl.participants
    FOR EACH ROW EXECUTE FUNCTION notifyctl.participants_slot();

-- An event moved, cancelled or scheduled again: its participants' slots follow (and the
-- exclusion constraint checks them).
CREATE FUNCTION notifyctl.events_slot() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE notifyctl.participants
       SET slot = CASE WHEN NEW.status = 'scheduled' AND NEW.repeat_rule IS NULL
                       THEN tstzrange(NEW.starts_at, NEW.ends_at, '[)') END
     WHERE event_id = NEW.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER events_slot AFTER UPDATE OF starts_at, ends_at, status, repeat_rule ON notifyctl.events
    FOR EACH ROW
    WHEN (OLD.starts_at IS DISTINCT FROM NEW.starts_at OR OLD.ends_at IS DISTINCT FROM NEW.ends_at
          OR OLD.status IS DISTINCT FROM NEW.status OR OLD.repeat_rule IS DISTINCT FROM NEW.repeat_rule)
    EXECUTE FUNCTION notifyctl.events_slot();

-- The in-app inbox: one row per notice and recipient.
CREATE TABLE notifyctl.notifications (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id        bigint NOT NULL REFERENCES notifyctl.users (id) ON DELETE CASCADE,
    kind           text NOT NULL CHECK (kind IN ('assigned', 'reminder', 'rescheduled', 'cancelled', 'custom', 'agenda')),
    event_id       bigint REFERENCES notifyctl.events (id) ON DELETE SET NULL,
    offset_minutes bigint,              -- reminders only
    event_start    timestamptz(0),      -- the event's start this notice was about
    event_sequence bigint,              -- the event's sequence this notice was about
    previous_start timestamptz(0),      -- rescheduled notices: the start before the move
    title          text NOT NULL,       -- what the inbox shows (emails are rendered at send
    body           text NOT NULL,       -- time from the event, except for custom notices)
    created_at     timestamptz(0) NOT NULL DEFAULT now(),
    read_at        timestamptz(0),
    -- A notice about one occurrence of a series (its reminders, a cancelled or moved
    -- occurrence): that occurrence's original start, as the rule gives it; event_start is
    -- then when the occurrence takes place.
    occurrence_start timestamptz(0),
    agenda_date    date,                -- agenda notices: the local date they list
    CONSTRAINT notifications_instants_finite CHECK (isfinite(event_start) AND isfinite(previous_start)
        AND isfinite(created_at) AND isfinite(read_at)),
    CONSTRAINT notifications_occurrence_finite CHECK (isfinite(occurrence_start)),
    CONSTRAINT notifications_agenda_date CHECK ((kind = 'agenda') = (agenda_date IS NOT NULL))
);
-- Exactly once: one reminder per (event, recipient, offset, event start) ...
CREATE UNIQUE INDEX notifications_reminder_once
    ON notifyctl.notifications (event_id, user_id, offset_minutes, event_start) WHERE kind = 'reminder';
-- ... and one immediate notice per (event, recipient, kind, event revision).
CREATE UNIQUE INDEX notifications_notice_once
    ON notifyctl.notifications (event_id, user_id, kind, event_sequence)
    WHERE kind IN ('assigned', 'rescheduled', 'cancelled') AND event_id IS NOT NULL;
-- ... and one agenda per recipient and local date.
CREATE UNIQUE INDEX notifications_agenda_once
    ON notifyctl.notifications (user_id, agenda_date) WHERE kind = 'agenda';
-- The inbox, newest first, and the unread badge.
CREATE INDEX notifications_inbox ON notifyctl.notifications (user_id, id);
CREATE INDEX notifications_unread ON notifyctl.notifications (user_id) WHERE read_at IS NULL;

-- Every reminder decision, sent or skipped, once per (event, recipient, offset, start).
CREATE TABLE notifyctl.reminders (
    event_id        bigint NOT NULL REFERENCES notifyctl.events (id) ON DELETE CASCADE,
    user_id         bigint NOT NULL REFERENCES notifyctl.users (id) ON DELETE CASCADE,
    offset_minutes  bigint NOT NULL,
    event_start     timestamptz(0) NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('sent', 'skipped')),
    -- skipped: 'late' (missed by more than grace), 'collapsed' (a later offset was due too),
    -- 'armed_late' (its moment came before the participant was added or the event moved).
    reason          text,
    notification_id bigint REFERENCES notifyctl.notifications (id) ON DELETE SET NULL,
    decided_at      timestamptz(0) NOT NULL,
    PRIMARY KEY (event_id, user_id, offset_minutes, event_start)
);
CREATE INDEX reminders_skipped ON notifyctl.reminders (decided_at) WHERE outcome = 'skipped';
-- Deleting notices (prune, clear-read) clears their decisions' link without a scan.
CREATE INDEX reminders_by_notification ON notifyctl.reminders (notification_id)
    WHERE notification_id IS NOT NULL;

-- The outbox: one row per notice and channel. Sent exactly once unless a crash falls
-- between the server's acceptance and the commit that records it.
CREATE TABLE notifyctl.deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id  bigint NOT NULL REFERENCES notifyctl.notifications (id) ON DELETE CASCADE,
    channel          text NOT NULL CHECK (channel IN ('email', 'webhook', 'sms', 'ntfy')),
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'dead', 'superseded', 'expired')),
    attempts         bigint NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz(0) NOT NULL DEFAULT now(),
    -- The tick holding it while status = 'sending' ('tick-<ticks.id>-<pid>', unique: the
    -- fencing token; an outcome is recorded only by the tick that still holds the claim).
    claimed_by       text,
    claim_expires_at timestamptz(0),    -- after this a crashed tick's claim is taken over
    last_error       text,
    message_id       text,
    response         text,              -- the server's answer on success
    created_at       timestamptz(0) NOT NULL DEFAULT now(),
    updated_at       timestamptz(0) NOT NULL DEFAULT now(),
    sent_at          timestamptz(0),
    -- Why a pending delivery waits until next_attempt_at although nothing failed: the
    -- recipient's quiet hours. Cleared when it is claimed.
    hold_reason      text,
    UNIQUE (notification_id, channel),
    CONSTRAINT deliveries_instants_finite CHECK (isfinite(next_attempt_at) AND isfinite(claim_expires_at)
        AND isfinite(created_at) AND isfinite(updated_at) AND isfinite(sent_at))
);
-- Claiming due work: only unfinished rows are indexed, so the idle tick reads nothing.
CREATE INDEX deliveries_due ON notifyctl.deliveries (next_attempt_at)
    WHERE status IN ('pending', 'failed');
CREATE INDEX deliveries_claimed ON notifyctl.deliveries (claim_expires_at)
    WHERE status = 'sending';
CREATE INDEX deliveries_by_status ON notifyctl.deliveries (status, id);

-- One row per check-reminders run, whichever host ran it.
CREATE TABLE notifyctl.ticks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at  timestamptz(0) NOT NULL, -- the tick's clock (the database's, or --now)
    finished_at timestamptz(0),
    ok          boolean,                -- true finished, false failed, NULL running or killed
    created     bigint NOT NULL DEFAULT 0,
    skipped     bigint NOT NULL DEFAULT 0,
    sent        bigint NOT NULL DEFAULT 0,
    failed      bigint NOT NULL DEFAULT 0,
    dead        bigint NOT NULL DEFAULT 0,
    dropped     bigint NOT NULL DEFAULT 0,
    error       text,
    elapsed_ms  bigint,
    -- What the tick could not do although it finished: one-line messages.
    problems    jsonb CHECK (jsonb_typeof(problems) = 'array'),
    CONSTRAINT ticks_instants_finite CHECK (isfinite(started_at) AND isfinite(finished_at)),
    held        bigint NOT NULL DEFAULT 0   -- deliveries held back for quiet hours
);
CREATE INDEX ticks_by_start ON notifyctl.ticks (started_at);

-- What each person receives, per kind of notice and outgoing channel (the in-app row is
-- always kept; the webhook is the app's own feed). No row: on. The kind 'all' is the
-- channel's setting for the kinds without a row of their own; for email that setting is
-- users.email_enabled (so it has no row here). Kinds listed in [preferences] mandatory go
-- out whatever these say. An app's settings page may write these rows itself:
--   INSERT INTO notifyctl.preferences (user_id, kind, channel, enabled)
--        VALUES ($user, 'reminder', 'sms', false)
--   ON CONFLICT (user_id, kind, channel) DO UPDATE SET enabled = EXCLUDED.enabled, updated_at = now();
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

-- The daily agenda passes done, per zone as users.timezone holds it ('' for NULL, the
-- default zone) and local date: a tick whose agendas are decided reads one row.
CREATE TABLE notifyctl.agenda_runs (
    zone       text NOT NULL,
    local_date date NOT NULL,
    done_at    timestamptz(0) NOT NULL DEFAULT now() CHECK (isfinite(done_at)),
    PRIMARY KEY (zone, local_date)
);
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
