-- Version 3: instants that the web app writes into users, events and participants are
-- normalised to RFC 3339 UTC text ('2030-03-10T08:30:00Z'), the form every query compares.
-- SQLite's own CURRENT_TIMESTAMP form ('2030-03-10 08:30:00', UTC), fractional seconds and
-- offsets ('2030-03-10T09:30:00+01:00') are accepted and converted; anything SQLite cannot
-- read as a time makes the INSERT or UPDATE fail with a message naming the column, instead
-- of an event that is silently never reminded.
--
-- Existing rows are converted once here (all columns of a row together, so the events'
-- CHECK (ends_at > starts_at) compares like with like); rows that cannot be read are left
-- as they are and reported by `notifyctl status`.

UPDATE OR IGNORE users SET created_at = coalesce(strftime('%Y-%m-%dT%H:%M:%SZ', created_at), created_at)
 WHERE created_at IS NOT coalesce(strftime('%Y-%m-%dT%H:%M:%SZ', created_at), created_at);

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

UPDATE OR IGNORE events SET starts_at = coalesce(strftime('%Y-%m-%dT%H:%M:%SZ', starts_at), starts_at), ends_at = coalesce(strftime('%Y-%m-%dT%H:%M:%SZ', ends_at), ends_at), armed_at = coalesce(strftime('%Y-%m-%dT%H:%M:%SZ', armed_at), armed_at), created_at = coalesce(strftime('%Y-%m-%dT%H:%M:%SZ', created_at), created_at), updated_at = coalesce(strftime('%Y-%m-%dT%H:%M:%SZ', updated_at), updated_at)
 WHERE starts_at IS NOT coalesce(strftime('%Y-%m-%dT%H:%M:%SZ', starts_at), starts_at) OR ends_at IS NOT coalesce(strftime('%Y-%m-%dT%H:%M:%SZ', ends_at), ends_at) OR armed_at IS NOT coalesce(strftime('%Y-%m-%dT%H:%M:%SZ', armed_at), armed_at) OR created_at IS NOT coalesce(strftime('%Y-%m-%dT%H:%M:%SZ', created_at), created_at) OR updated_at IS NOT coalesce(strftime('%Y-%m-%dT%H:%M:%SZ', updated_at), updated_at);

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

UPDATE OR IGNORE participants SET added_at = coalesce(strftime('%Y-%m-%dT%H:%M:%SZ', added_at), added_at)
 WHERE added_at IS NOT coalesce(strftime('%Y-%m-%dT%H:%M:%SZ', added_at), added_at);

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
