-- Schema step to version 3, the first PostgreSQL step: the whole contract as SQLite had it
-- at version 3 (no PostgreSQL database was ever at 1 or 2). Released steps are never
-- edited; schema.postgres.sql documents the current result as a whole.

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
    email_enabled boolean NOT NULL DEFAULT true,
    created_at    timestamptz(0) NOT NULL DEFAULT now() CHECK (isfinite(created_at))
);
CREATE UNIQUE INDEX users_email_key ON notifyctl.users (lower(email));

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
    CONSTRAINT events_ends_after_start CHECK (ends_at > starts_at),
    CONSTRAINT events_instants_finite CHECK (isfinite(starts_at) AND isfinite(ends_at)
        AND isfinite(armed_at) AND isfinite(created_at) AND isfinite(updated_at))
);
-- The tick looks for scheduled events starting in the next few minutes.
CREATE INDEX events_scheduled_by_start ON notifyctl.events (status, starts_at);

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
-- Double-booking check and `event list --user`.
CREATE INDEX participants_by_user ON notifyctl.participants (user_id, event_id);

-- A participant's slot, from its event. The event row is locked as an UPDATE would lock
-- it, so that a concurrent change of the event's times waits for this row and then
-- updates its slot too (under READ COMMITTED it would otherwise miss it).
CREATE FUNCTION notifyctl.participants_slot() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    SELECT CASE WHEN e.status = 'scheduled' THEN tstzrange(e.starts_at, e.ends_at, '[)') END
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
       SET slot = CASE WHEN NEW.status = 'scheduled' THEN tstzrange(NEW.starts_at, NEW.ends_at, '[)') END
     WHERE event_id = NEW.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER events_slot AFTER UPDATE OF starts_at, ends_at, status ON notifyctl.events
    FOR EACH ROW
    WHEN (OLD.starts_at IS DISTINCT FROM NEW.starts_at OR OLD.ends_at IS DISTINCT FROM NEW.ends_at
          OR OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION notifyctl.events_slot();

-- The in-app inbox: one row per notice and recipient.
CREATE TABLE notifyctl.notifications (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id        bigint NOT NULL REFERENCES notifyctl.users (id) ON DELETE CASCADE,
    kind           text NOT NULL CHECK (kind IN ('assigned', 'reminder', 'rescheduled', 'cancelled', 'custom')),
    event_id       bigint REFERENCES notifyctl.events (id) ON DELETE SET NULL,
    offset_minutes bigint,              -- reminders only
    event_start    timestamptz(0),      -- the event's start this notice was about
    event_sequence bigint,              -- the event's sequence this notice was about
    previous_start timestamptz(0),      -- rescheduled notices: the start before the move
    title          text NOT NULL,       -- what the inbox shows (emails are rendered at send
    body           text NOT NULL,       -- time from the event, except for custom notices)
    created_at     timestamptz(0) NOT NULL DEFAULT now(),
    read_at        timestamptz(0),
    CONSTRAINT notifications_instants_finite CHECK (isfinite(event_start) AND isfinite(previous_start)
        AND isfinite(created_at) AND isfinite(read_at))
);
-- Exactly once: one reminder per (event, recipient, offset, event start) ...
CREATE UNIQUE INDEX notifications_reminder_once
    ON notifyctl.notifications (event_id, user_id, offset_minutes, event_start) WHERE kind = 'reminder';
-- ... and one immediate notice per (event, recipient, kind, event revision).
CREATE UNIQUE INDEX notifications_notice_once
    ON notifyctl.notifications (event_id, user_id, kind, event_sequence)
    WHERE kind IN ('assigned', 'rescheduled', 'cancelled') AND event_id IS NOT NULL;
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
    channel          text NOT NULL CHECK (channel IN ('email', 'webhook')),
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
    CONSTRAINT ticks_instants_finite CHECK (isfinite(started_at) AND isfinite(finished_at))
);
CREATE INDEX ticks_by_start ON notifyctl.ticks (started_at);
