-- Version 4: an index for the double-booking check, so that it costs O(log n) in a
-- participant's history instead of reading all of it. One R*Tree entry per participant
-- of a scheduled event, over (user, hours [floor(start), ceil(end))); the exact half-open
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

INSERT OR IGNORE INTO busy_slots (event_id, user_id)
    SELECT p.event_id, p.user_id FROM participants p JOIN events e ON e.id = p.event_id
    WHERE e.status = 'scheduled' AND strftime('%s', e.starts_at) IS NOT NULL AND strftime('%s', e.ends_at) IS NOT NULL;
INSERT OR REPLACE INTO busy_index
    SELECT s.id, s.user_id, s.user_id, (CASE WHEN CAST(strftime('%s', e.starts_at) AS INTEGER) >= 0 THEN CAST(strftime('%s', e.starts_at) AS INTEGER) / 3600 ELSE (CAST(strftime('%s', e.starts_at) AS INTEGER) - 3599) / 3600 END), (CASE WHEN CAST(strftime('%s', e.ends_at) AS INTEGER) >= 0 THEN (CAST(strftime('%s', e.ends_at) AS INTEGER) + 3599) / 3600 ELSE CAST(strftime('%s', e.ends_at) AS INTEGER) / 3600 END)
    FROM busy_slots s JOIN events e ON e.id = s.event_id;

CREATE TRIGGER IF NOT EXISTS busy_participant_insert AFTER INSERT ON participants
BEGIN
    INSERT OR IGNORE INTO busy_slots (event_id, user_id)
        SELECT NEW.event_id, NEW.user_id FROM events e
        WHERE e.id = NEW.event_id AND e.status = 'scheduled' AND strftime('%s', e.starts_at) IS NOT NULL AND strftime('%s', e.ends_at) IS NOT NULL;
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

CREATE TRIGGER IF NOT EXISTS busy_event_update AFTER UPDATE OF starts_at, ends_at, status ON events
BEGIN
    DELETE FROM busy_index WHERE id IN (SELECT id FROM busy_slots WHERE event_id = NEW.id);
    DELETE FROM busy_slots WHERE event_id = NEW.id;
    INSERT OR IGNORE INTO busy_slots (event_id, user_id)
        SELECT NEW.id, p.user_id FROM participants p
        WHERE p.event_id = NEW.id AND NEW.status = 'scheduled' AND strftime('%s', NEW.starts_at) IS NOT NULL AND strftime('%s', NEW.ends_at) IS NOT NULL;
    INSERT OR REPLACE INTO busy_index
        SELECT s.id, s.user_id, s.user_id, (CASE WHEN CAST(strftime('%s', NEW.starts_at) AS INTEGER) >= 0 THEN CAST(strftime('%s', NEW.starts_at) AS INTEGER) / 3600 ELSE (CAST(strftime('%s', NEW.starts_at) AS INTEGER) - 3599) / 3600 END), (CASE WHEN CAST(strftime('%s', NEW.ends_at) AS INTEGER) >= 0 THEN (CAST(strftime('%s', NEW.ends_at) AS INTEGER) + 3599) / 3600 ELSE CAST(strftime('%s', NEW.ends_at) AS INTEGER) / 3600 END)
        FROM busy_slots s WHERE s.event_id = NEW.id;
END;

CREATE TRIGGER IF NOT EXISTS busy_event_delete AFTER DELETE ON events
BEGIN
    DELETE FROM busy_index WHERE id IN (SELECT id FROM busy_slots WHERE event_id = OLD.id);
    DELETE FROM busy_slots WHERE event_id = OLD.id;
END;
