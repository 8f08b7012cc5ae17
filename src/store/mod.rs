//! The storage interface the service uses, and the choice of backend.
//!
//! The service never sees SQL or a connection: it calls typed operations ([`Ops`]) and
//! composes them inside [`Store::transaction`], whose isolation the backend guarantees
//! (SQLite: `BEGIN IMMEDIATE`, so a read-decide-write sequence sees no concurrent writer;
//! PostgreSQL: unique keys, row locks and constraints, with serialization failures retried).
//! Each backend is one module below; adding one means implementing these traits, not
//! touching the service.
//!
//! Rows are decoded one by one: a value the web app broke becomes a [`BrokenRow`] for that
//! row alone, reported by the caller, never a panic and never a failed query for everyone.

pub mod postgres;
pub mod sqlite;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::Serialize;

use crate::model::{Candidate, Delivery, Event, EventException, NewNotice, Notification, User};

/// Where the data lives, from `--db`, `NOTIFYCTL_DB` or the config: a SQLite file, or a
/// `postgres://` / `postgresql://` URL.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    /// The URL as given (it may hold a password: shown only through `Display`, masked).
    Postgres(String),
}

impl Location {
    pub fn parse(s: &str) -> Location {
        if postgres::connect::is_postgres_url(s) {
            Location::Postgres(s.to_string())
        } else {
            Location::Sqlite(PathBuf::from(s))
        }
    }

    /// The directory relative paths of the file transport are read from: the database's
    /// for SQLite; for PostgreSQL, which has no file, the current directory (the caller
    /// prefers the config file's directory when there is one: `service::outbox_dir`).
    pub fn base_dir(&self) -> PathBuf {
        match self {
            Location::Sqlite(p) => p.parent().map(PathBuf::from).unwrap_or_default(),
            Location::Postgres(_) => PathBuf::new(),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "{}", p.display()),
            Location::Postgres(url) => f.write_str(&postgres::connect::mask_password(url)),
        }
    }
}

/// Never shows a password either (locations end up in logs).
impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(p) => f.debug_tuple("Sqlite").field(p).finish(),
            Location::Postgres(_) => f.debug_tuple("Postgres").field(&self.to_string()).finish(),
        }
    }
}

/// Whether `open` may create the database (only `init` and `demo` do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    Create,
    Existing,
}

#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    pub mode: OpenMode,
    /// How long to wait for another writer's lock before giving up (exit 4).
    pub busy_timeout: Duration,
}

/// Open (and, with [`OpenMode::Create`], create or migrate) the database.
pub fn open(location: &Location, options: OpenOptions) -> anyhow::Result<Box<dyn Store>> {
    match location {
        Location::Sqlite(path) => Ok(Box::new(sqlite::SqliteStore::open(path, options)?)),
        Location::Postgres(url) => Ok(Box::new(postgres::PgStore::open(url, options)?)),
    }
}

/// A database with every operation, plus transactions.
pub trait Store: Ops {
    /// The store as plain operations (outside any transaction).
    fn ops(&mut self) -> &mut dyn Ops;

    /// Run `f` as one write transaction, committed when it returns `Ok`, rolled back
    /// otherwise. A backend may run `f` again after a transient conflict, so `f` must not
    /// have effects outside the database.
    fn transaction(&mut self, f: &mut dyn FnMut(&mut dyn Ops) -> anyhow::Result<()>) -> anyhow::Result<()>;

    /// The schema version the database is at.
    fn schema_version(&mut self) -> anyhow::Result<i64>;

    /// Delete (or count, with `dry_run`) finished rows older than `cutoff`, in batches
    /// small enough never to hold the write lock for long.
    fn prune(&mut self, cutoff: DateTime<Utc>, dry_run: bool) -> anyhow::Result<PruneCounts>;

    /// How far the database server's clock is ahead of this machine's, measured when the
    /// store was opened; `None` when the database has no clock of its own (SQLite). With
    /// several hosts, every tick then reads one clock (see `Service::open`).
    fn clock_offset(&self) -> Option<TimeDelta> {
        None
    }

    /// True when opening created notifyctl's schema (PostgreSQL: `init` on a database
    /// without it). SQLite's `init` looks at the file instead.
    fn created_schema(&self) -> bool {
        false
    }

    /// Many small write transactions follow (a tick sending, one commit per few messages):
    /// the backend may do its housekeeping aside until `checkpoints_aside(false)` instead of
    /// in the commit that triggers it (SQLite: copying the write-ahead log into the
    /// database, with its fsyncs, on a thread of its own). The default does nothing.
    fn checkpoints_aside(&mut self, _on: bool) {}
}

/// Run `f` in a write transaction and return its value.
pub fn write<T>(
    store: &mut dyn Store,
    mut f: impl FnMut(&mut dyn Ops) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut value = None;
    store.transaction(&mut |ops| {
        value = Some(f(ops)?);
        Ok(())
    })?;
    value.ok_or_else(|| anyhow::anyhow!("transaction committed without a result"))
}

/// Every typed operation, usable inside a transaction or on its own.
pub trait Ops: UserOps + EventOps + NoticeOps + ReminderOps + DeliveryOps + TickOps + AgendaOps {}
impl<T: UserOps + EventOps + NoticeOps + ReminderOps + DeliveryOps + TickOps + AgendaOps + ?Sized> Ops for T {}

/// A row whose value could not be read as what it should be. Shown to the admin as
/// `table id N, column C: problem (value '...')`, the value shortened and made printable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenRow {
    pub table: &'static str,
    pub id: String,
    pub column: String,
    pub problem: String,
    pub value: String,
}

impl fmt::Display for BrokenRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}, column {}: {}",
            self.table, self.id, self.column, self.problem
        )?;
        if !self.value.is_empty() {
            write!(f, " (value '{}')", self.value)?;
        }
        Ok(())
    }
}

impl std::error::Error for BrokenRow {}

/// Streaming callbacks: called once per row, in order; an error stops the walk.
pub type Each<'a, T> = &'a mut dyn FnMut(T) -> anyhow::Result<()>;

// ---------------------------------------------------------------------------------------
// Users

#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub name: String,
    pub timezone: Option<String>,
    pub locale: Option<String>,
    pub email_enabled: bool,
    pub phone: Option<String>,
    pub ntfy_topic: Option<String>,
    pub quiet_hours: Option<String>,
}

#[derive(Debug, Default, Clone)]
pub struct UserChanges {
    pub email: Option<String>,
    pub name: Option<String>,
    /// `Some(None)` clears the zone back to the default.
    pub timezone: Option<Option<String>>,
    pub locale: Option<Option<String>>,
    pub email_enabled: Option<bool>,
    /// `Some(None)` removes it (the same for the two below).
    pub phone: Option<Option<String>>,
    pub ntfy_topic: Option<Option<String>>,
    pub quiet_hours: Option<Option<String>>,
}

/// One stored preference: `kind` is a notice kind or `all`; `channel` an outgoing channel
/// (email, sms, ntfy). Rows are kept as stored: the service reads them (a value it does not
/// know is reported and ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preference {
    pub kind: String,
    pub channel: String,
    pub enabled: bool,
}

pub trait UserOps {
    /// Insert a user; a taken email address is a user error.
    fn insert_user(&mut self, user: &NewUser, now: DateTime<Utc>) -> anyhow::Result<i64>;
    /// By numeric id or email (case-insensitive); unknown is a user error.
    fn find_user(&mut self, key: &str) -> anyhow::Result<User>;
    /// By id; `None` when there is no such user.
    fn user(&mut self, id: i64) -> anyhow::Result<Option<User>>;
    fn list_users(&mut self, each: Each<Result<User, BrokenRow>>) -> anyhow::Result<()>;
    fn update_user(&mut self, id: i64, changes: &UserChanges) -> anyhow::Result<()>;
    /// Delete a user with their participations, notifications and deliveries.
    fn delete_user(&mut self, id: i64) -> anyhow::Result<()>;
    /// A user's stored preferences (users.email_enabled holds the `all` email one).
    fn preferences(&mut self, user_id: i64) -> anyhow::Result<Vec<Preference>>;
    /// Set one preference row (`kind` may be `all`, except for email).
    fn put_preference(
        &mut self,
        user_id: i64,
        kind: &str,
        channel: &str,
        enabled: bool,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()>;
    /// Remove a user's rows for `channel` (every kind, `all` included); how many.
    fn clear_preferences(&mut self, user_id: i64, channel: &str) -> anyhow::Result<usize>;
}

// ---------------------------------------------------------------------------------------
// Events

#[derive(Debug, Clone)]
pub struct NewEvent {
    pub title: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub timezone: Option<String>,
    pub video_url: Option<String>,
    /// The event's own reminder offsets (minutes); `None`: the config's.
    pub remind_offsets: Option<Vec<i64>>,
    /// A series: its normalised rule (`starts_at`/`ends_at` are its first occurrence).
    pub repeat_rule: Option<String>,
    /// A series: when its last occurrence ends; `None` when it has no end.
    pub series_end: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Clone)]
pub struct EventChanges {
    pub title: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub video_url: Option<Option<String>>,
    /// A new rule for a series (the event becomes one), with its new end; like a new
    /// start, it re-arms the reminders.
    pub repeat: Option<(String, Option<DateTime<Utc>>)>,
    /// A series moved as a whole: its new end (`None` inside: no end).
    pub series_end: Option<Option<DateTime<Utc>>>,
    /// New times booked with `--allow-overlap`: the participants are outside the
    /// database's double-booking rule from now on (see `add_participant`); without it, a
    /// move puts them back under the rule.
    pub allow_overlap: bool,
}

#[derive(Debug, Default, Clone)]
pub struct EventFilter {
    pub user_id: Option<i64>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub include_cancelled: bool,
}

/// A scheduled event of a user that intersects a requested slot.
#[derive(Debug, Clone)]
pub struct Overlap {
    pub user_email: String,
    pub event_id: i64,
    pub title: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

impl Overlap {
    /// The one-line refusal of a booking that would overlap this event (exit 2), the same
    /// whether the check or a backend's constraint caught it.
    pub fn refusal(&self) -> anyhow::Error {
        crate::error::user_error(format!(
            "{} is already booked from {} to {} (event {} '{}'): pick another time or pass --allow-overlap",
            self.user_email,
            crate::input::rfc3339(self.starts_at),
            crate::input::rfc3339(self.ends_at),
            self.event_id,
            crate::input::printable(&self.title, 60)
        ))
    }
}

pub trait EventOps {
    fn insert_event(&mut self, event: &NewEvent, now: DateTime<Utc>) -> anyhow::Result<i64>;
    /// Add a participant; false when they already were one. `allow_overlap`: booked with
    /// `--allow-overlap`, so the row is outside the database's own double-booking rule
    /// (PostgreSQL's exclusion constraint; SQLite relies on `find_overlap` alone). A
    /// backend whose constraint refuses the row answers with [`Overlap::refusal`].
    fn add_participant(
        &mut self,
        event_id: i64,
        user_id: i64,
        role: &str,
        allow_overlap: bool,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool>;
    /// Remove a participant; false when they were not one.
    fn remove_participant(&mut self, event_id: i64, user_id: i64) -> anyhow::Result<bool>;
    /// A scheduled event of `user_id`, other than `except`, intersecting [start, end).
    fn find_overlap(
        &mut self,
        user_id: i64,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        except: Option<i64>,
    ) -> anyhow::Result<Option<Overlap>>;
    /// One event with its participants; `None` when there is no such event. A row that
    /// cannot be read is an error naming the broken value.
    fn event(&mut self, id: i64) -> anyhow::Result<Option<Event>>;
    /// Apply changes. A new start re-arms reminders (moments before now are not sent);
    /// every change bumps the calendar sequence.
    fn update_event(&mut self, id: i64, changes: &EventChanges, now: DateTime<Utc>) -> anyhow::Result<()>;
    /// Participants changed: calendars need a new sequence number.
    fn bump_sequence(&mut self, id: i64, now: DateTime<Utc>) -> anyhow::Result<()>;
    fn cancel_event(&mut self, id: i64, now: DateTime<Utc>) -> anyhow::Result<()>;
    /// Set the event's own reminder offsets (`None`: back to the config's). Not a change a
    /// calendar sees: the sequence stays.
    fn set_remind_offsets(
        &mut self,
        id: i64,
        offsets: Option<&[i64]>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()>;
    /// Cancel or move one occurrence of a series (replacing what was recorded for it), and
    /// bump the event's sequence; a moved occurrence ending after `series_end` pushes it.
    fn set_exception(
        &mut self,
        id: i64,
        exception: &EventException,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()>;
    /// The scheduled series `user_id` takes part in (other than `except`) that can still
    /// have occurrences after `after`, with their exceptions (participants not loaded): what
    /// a booking is checked against beside the single events `find_overlap` sees.
    fn user_series(
        &mut self,
        user_id: i64,
        after: DateTime<Utc>,
        except: Option<i64>,
    ) -> anyhow::Result<Vec<Result<Event, BrokenRow>>>;
    /// Called first in every write that checks a booking: make that check and the write
    /// one step for other bookings, where the database's own rule does not (it knows single
    /// events only). A booking that involves a series (`series`) excludes every other
    /// booking until it commits; the others only exclude those. SQLite's `BEGIN IMMEDIATE`
    /// already serialises every write: nothing to do. PostgreSQL: table locks on
    /// participants (SHARE ROW EXCLUSIVE, or ROW EXCLUSIVE, which bookings of single events
    /// share, as the web app's own inserts do).
    fn guard_bookings(&mut self, _series: bool) -> anyhow::Result<()> {
        Ok(())
    }
    /// Many events and participants are about to be written by notifyctl itself, in this
    /// transaction (an import): the backend may suspend the per-row work it does for rows
    /// others write (SQLite's triggers) and do the equivalent directly, until
    /// `bulk_writes(false)` (or the transaction's end). The default does nothing.
    fn bulk_writes(&mut self, _on: bool) -> anyhow::Result<()> {
        Ok(())
    }
    /// In a bulk write: the backend may keep the double-booking index of the single events
    /// written from now on aside and build it when the bulk write ends, in one sorted pass
    /// (SQLite: its busy index, which costs far less filled by participant than row by row).
    /// Returns whether it does so: `find_overlap` then sees only the bookings made before,
    /// and the caller must ask [`EventOps::deferred_overlap`] whether the rows written
    /// meanwhile double-book someone among themselves. The default: no (`find_overlap`
    /// sees every row as it is written).
    fn defer_overlap_index(&mut self) -> anyhow::Result<bool> {
        Ok(false)
    }
    /// After [`EventOps::defer_overlap_index`]: whether two single events written since
    /// share a participant and intersect (half-open, as `find_overlap`: back to back is no
    /// overlap). Says nothing about which ones: a caller that must name them writes again
    /// without deferring.
    fn deferred_overlap(&mut self) -> anyhow::Result<bool> {
        Ok(false)
    }
    /// Events by start time, with their participants.
    fn list_events(
        &mut self,
        filter: &EventFilter,
        each: Each<Result<Event, BrokenRow>>,
    ) -> anyhow::Result<()>;
    /// Scheduled events whose start or end cannot be read as a time (so no tick can ever
    /// remind them), at most `limit`, for `status`.
    fn unreadable_events(&mut self, limit: u32) -> anyhow::Result<Vec<BrokenRow>>;
}

// ---------------------------------------------------------------------------------------
// Notifications (the in-app inbox)

#[derive(Debug, Default, Clone)]
pub struct InboxFilter {
    pub unread_only: bool,
    pub kind: Option<String>,
    pub limit: Option<u32>,
}

pub trait NoticeOps {
    /// Insert a notice and one pending delivery per channel, or nothing when the same
    /// notice exists already (the unique keys decide). Returns the new id.
    fn insert_notice(&mut self, notice: &NewNotice, now: DateTime<Utc>) -> anyhow::Result<Option<i64>>;
    fn notification(&mut self, id: i64) -> anyhow::Result<Option<Notification>>;
    /// A user's inbox, newest first.
    fn inbox(
        &mut self,
        user_id: i64,
        filter: &InboxFilter,
        each: Each<Result<Notification, BrokenRow>>,
    ) -> anyhow::Result<()>;
    fn unread_count(&mut self, user_id: i64) -> anyhow::Result<i64>;
    /// The first of `ids` that is not a notification, if any.
    fn first_missing_notification(&mut self, ids: &[i64]) -> anyhow::Result<Option<i64>>;
    /// Mark read (a notice already read keeps its first read time); rows changed.
    fn mark_read(&mut self, ids: &[i64], now: DateTime<Utc>) -> anyhow::Result<usize>;
    fn mark_all_read(&mut self, user_id: i64, now: DateTime<Utc>) -> anyhow::Result<usize>;
    fn mark_unread(&mut self, ids: &[i64]) -> anyhow::Result<usize>;
    /// Delete notices with their deliveries (the user dismissed them).
    fn delete_notifications(&mut self, ids: &[i64]) -> anyhow::Result<usize>;
    /// Delete a user's read notices whose deliveries are all finished.
    fn clear_read(&mut self, user_id: i64) -> anyhow::Result<usize>;
    /// Every notice about `event_id` for `user_id`, oldest first (`explain`).
    fn event_notices(
        &mut self,
        event_id: i64,
        user_id: i64,
    ) -> anyhow::Result<Vec<Result<NoticeRecord, BrokenRow>>>;
}

/// A notice as `explain` shows it: what it was about, beside what the inbox shows.
#[derive(Debug, Clone, Serialize)]
pub struct NoticeRecord {
    pub id: i64,
    pub kind: String,
    pub title: String,
    pub offset_minutes: Option<i64>,
    #[serde(with = "crate::model::utc_opt")]
    pub event_start: Option<DateTime<Utc>>,
    #[serde(with = "crate::model::utc_opt")]
    pub occurrence_start: Option<DateTime<Utc>>,
    #[serde(with = "crate::model::utc_opt")]
    pub previous_start: Option<DateTime<Utc>>,
    pub event_sequence: Option<i64>,
    #[serde(with = "crate::model::utc")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::model::utc_opt")]
    pub read_at: Option<DateTime<Utc>>,
}

// ---------------------------------------------------------------------------------------
// Reminder decisions

/// One decision to record, keyed once per (event, recipient, offset, event start).
#[derive(Debug, Clone)]
pub struct DecisionRecord<'a> {
    pub event_id: i64,
    pub user_id: i64,
    pub offset_minutes: i64,
    pub event_start: DateTime<Utc>,
    /// `None`: sent; else the reason it was skipped.
    pub skipped_reason: Option<&'a str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SkippedCount {
    pub reason: String,
    pub count: i64,
}

/// Where a page of reminder candidates ended: the next page starts after it. The start
/// is kept as stored text so that a row whose start cannot be read still moves the page on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidateCursor {
    pub starts_at: String,
    pub event_id: i64,
    pub user_id: i64,
}

/// Which single events' participants `reminder_candidates` reads: those of scheduled
/// single events starting in (after, until], and, with `lead`, further ahead: up to
/// `until` plus the event's largest offset (`lead` minutes for the events without their
/// own), so that every reminder due by `until` is among them.
#[derive(Debug, Clone, Copy)]
pub struct CandidateWindow {
    pub after: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub lead: Option<i64>,
}

/// One page of reminder candidates, in (start, event, participant) order.
#[derive(Debug, Default)]
pub struct CandidatePage {
    pub candidates: Vec<Candidate>,
    /// Rows in the page that could not be read (reported by the caller).
    pub broken: Vec<BrokenRow>,
    /// Where the next page starts; `None` when this was the last.
    pub next: Option<CandidateCursor>,
}

/// A page of series (see `ReminderOps::series_in_window`), by id.
#[derive(Debug, Default)]
pub struct SeriesPage {
    /// Scheduled series with their exceptions; their participants are not loaded.
    pub series: Vec<Event>,
    pub broken: Vec<BrokenRow>,
    /// The last id of this page when there may be more.
    pub next: Option<i64>,
}

/// The participants of one series and the reminders already decided for its occurrences
/// starting in a window.
#[derive(Debug, Default)]
pub struct OccurrenceParticipants {
    /// (user, when they were added)
    pub participants: Vec<(i64, DateTime<Utc>)>,
    /// (user, occurrence start, offset)
    pub decided: Vec<(i64, DateTime<Utc>, i64)>,
    pub broken: Vec<BrokenRow>,
}

/// A recorded reminder decision, as `explain` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionRow {
    pub offset_minutes: i64,
    #[serde(with = "crate::model::utc")]
    pub event_start: DateTime<Utc>,
    pub outcome: String,
    pub reason: Option<String>,
    pub notification_id: Option<i64>,
    #[serde(with = "crate::model::utc")]
    pub decided_at: DateTime<Utc>,
}

pub trait ReminderOps {
    /// Participants of the scheduled single events in `window` (series are read with
    /// `series_in_window`), after `cursor`, at most `limit` of them, with the offsets
    /// already decided for the event's current start. Reading page by page keeps memory
    /// flat whatever the window.
    fn reminder_candidates(
        &mut self,
        window: &CandidateWindow,
        cursor: Option<&CandidateCursor>,
        limit: u32,
    ) -> anyhow::Result<CandidatePage>;
    /// The largest own offset (minutes) of a scheduled single event starting after `after`:
    /// how far past the config's offsets a window must reach. `None` when there is none.
    fn largest_own_offset(&mut self, after: DateTime<Utc>) -> anyhow::Result<Option<i64>>;
    /// Scheduled series that can have occurrences after `after` (their end is later, or
    /// they have none), by id after `cursor`, at most `limit`, with their exceptions. An
    /// ended series is never read, so the cost is that of the live series.
    fn series_in_window(
        &mut self,
        after: DateTime<Utc>,
        cursor: Option<i64>,
        limit: u32,
    ) -> anyhow::Result<SeriesPage>;
    /// A series' participants, with the reminders decided for occurrences starting in
    /// [from, to].
    fn occurrence_candidates(
        &mut self,
        event_id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> anyhow::Result<OccurrenceParticipants>;
    /// Every decision recorded for `user_id` about `event_id`, by event start and offset.
    fn decisions_for(&mut self, event_id: i64, user_id: i64) -> anyhow::Result<Vec<DecisionRow>>;
    /// Record a decision; false when another tick recorded it first.
    fn record_decision(&mut self, decision: &DecisionRecord, now: DateTime<Utc>) -> anyhow::Result<bool>;
    /// Point a sent decision at the notification it created.
    fn link_notification(&mut self, decision: &DecisionRecord, notification_id: i64) -> anyhow::Result<()>;
    /// Skipped reminders decided since `since`, by reason.
    fn skipped_since(&mut self, since: DateTime<Utc>) -> anyhow::Result<Vec<SkippedCount>>;
    /// Forget the `late` and `collapsed` decisions recorded since `since` for event starts
    /// still after `now` (decided by a tick whose clock was ahead), so the next tick
    /// decides them again. With `dry_run`, only count them.
    fn reopen_decisions(
        &mut self,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> anyhow::Result<usize>;
}

// ---------------------------------------------------------------------------------------
// Deliveries (the outbox)

/// A claimed delivery with what is needed to re-check and build it.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub channel: String,
    pub attempts: i64,
    pub notification_id: i64,
    pub user_id: i64,
    pub kind: String,
    pub event_id: Option<i64>,
    pub offset_minutes: Option<i64>,
    pub notice_event_start: Option<DateTime<Utc>>,
    pub previous_start: Option<DateTime<Utc>>,
    /// A notice about one occurrence of a series: its original start.
    pub occurrence_start: Option<DateTime<Utc>>,
    pub title: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    /// Agenda notices: the local date they list.
    pub agenda_date: Option<NaiveDate>,
}

#[derive(Debug, Clone)]
pub enum DeliveryOutcome {
    Sent {
        message_id: Option<String>,
        response: String,
    },
    Retry {
        error: String,
        next_attempt_at: DateTime<Utc>,
    },
    Dead {
        error: String,
    },
    /// Not sent and never will be: `superseded` (event moved or cancelled) or `expired`.
    Dropped {
        status: &'static str,
        reason: String,
    },
    /// Not sent yet, and nothing failed: it waits until `until` (the recipient's quiet
    /// hours), pending, without spending an attempt.
    Held {
        until: DateTime<Utc>,
        reason: String,
    },
}

#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct DeliveryCounts {
    pub pending: i64,
    pub sending: i64,
    pub failed: i64,
    pub dead: i64,
    pub sent: i64,
}

/// What a tick asks for when it claims work.
#[derive(Debug, Clone)]
pub struct ClaimRequest<'a> {
    /// The tick's claim key: outcomes are recorded only while it still holds the claim.
    pub owner: &'a str,
    pub now: DateTime<Utc>,
    /// The claim lapses then, and another tick may take the delivery over.
    pub until: DateTime<Utc>,
    pub limit: u32,
    /// Channels this tick found unusable: their deliveries wait for the next tick.
    pub skip_channels: &'a [String],
}

/// One attempt to deliver (or the drop of a delivery), from the attempts log.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub attempt: i64,
    #[serde(with = "crate::model::utc")]
    pub at: DateTime<Utc>,
    /// sent, failed, dead, superseded or expired.
    pub outcome: String,
    /// The server's answer, the error, or why it was dropped.
    pub answer: Option<String>,
}

/// A delivery with every attempt made at it, oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryHistory {
    #[serde(flatten)]
    pub delivery: Delivery,
    pub attempts_log: Vec<Attempt>,
}

pub trait DeliveryOps {
    /// Claim up to `limit` due deliveries: pending or failed ones whose time has come,
    /// and ones whose claim lapsed because their tick died. Ids in ascending order.
    fn claim_due(&mut self, request: &ClaimRequest) -> anyhow::Result<Vec<i64>>;
    /// A claimed delivery; a row that cannot be read is an error for it alone.
    fn claimed_delivery(&mut self, id: i64) -> anyhow::Result<ClaimedDelivery>;
    /// Record an outcome, and log it as an attempt, in the caller's transaction; false
    /// (nothing written) when `owner` lost the claim meanwhile.
    fn record_outcome(
        &mut self,
        id: i64,
        owner: &str,
        outcome: &DeliveryOutcome,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool>;
    /// Give back claims the tick holds but did not get to.
    fn release_claims(&mut self, owner: &str, ids: &[i64]) -> anyhow::Result<usize>;
    /// Extend the tick's claims while it works through a slow batch.
    fn renew_claims(&mut self, owner: &str, until: DateTime<Utc>) -> anyhow::Result<usize>;
    fn delivery_counts(&mut self) -> anyhow::Result<DeliveryCounts>;
    /// The earliest moment a waiting delivery becomes due.
    fn next_retry_at(&mut self) -> anyhow::Result<Option<DateTime<Utc>>>;
    /// Newest first, optionally of one status.
    fn list_deliveries(
        &mut self,
        status: Option<&str>,
        limit: u32,
        each: Each<Result<Delivery, BrokenRow>>,
    ) -> anyhow::Result<()>;
    /// The status of each id (`None`: no such delivery).
    fn delivery_status(&mut self, id: i64) -> anyhow::Result<Option<String>>;
    /// Re-queue now with a fresh attempt budget.
    fn requeue(&mut self, ids: &[i64], now: DateTime<Utc>) -> anyhow::Result<usize>;
    fn requeue_dead(&mut self, now: DateTime<Utc>) -> anyhow::Result<usize>;
    /// A user's deliveries held for quiet hours become due now (their quiet hours or zone
    /// changed: the next tick decides again); how many.
    fn release_held(&mut self, user_id: i64, now: DateTime<Utc>) -> anyhow::Result<usize>;
    /// A channel the user turned on for `kinds`: each of their notices of those kinds that
    /// is still on its way (a delivery pending, held, failed or being sent) and has none on
    /// `channel` gets one, due now; how many.
    fn add_channel_to_pending(
        &mut self,
        user_id: i64,
        channel: &str,
        kinds: &[&str],
        now: DateTime<Utc>,
    ) -> anyhow::Result<usize>;
    /// The deliveries of a notification with their attempts, by id.
    fn delivery_history(
        &mut self,
        notification_id: i64,
    ) -> anyhow::Result<Vec<Result<DeliveryHistory, BrokenRow>>>;
    /// When the oldest delivery still waiting (pending, failed or sending) was created,
    /// for the metrics file's backlog age.
    fn oldest_waiting_delivery(&mut self) -> anyhow::Result<Option<DateTime<Utc>>>;
}

// ---------------------------------------------------------------------------------------
// Ticks

/// The counts a tick reports; the JSON names are part of the contract.
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct TickSummary {
    pub created: i64,
    pub skipped: i64,
    pub sent: i64,
    pub failed: i64,
    pub dead: i64,
    /// Deliveries not sent because the event moved or was cancelled, or it was too late.
    pub dropped: i64,
    /// Deliveries held back until the end of their recipient's quiet hours.
    pub held: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TickRecord {
    pub id: i64,
    #[serde(with = "crate::model::utc")]
    pub started_at: DateTime<Utc>,
    #[serde(with = "crate::model::utc_opt")]
    pub finished_at: Option<DateTime<Utc>>,
    pub ok: Option<bool>,
    #[serde(flatten)]
    pub summary: TickSummary,
    pub error: Option<String>,
    pub elapsed_ms: Option<i64>,
    /// What the tick could not do although it finished.
    pub problems: Vec<String>,
}

/// How a tick ended, for its record.
#[derive(Debug, Clone)]
pub struct TickEnd<'a> {
    pub summary: &'a TickSummary,
    /// Why the tick failed, if it did.
    pub error: Option<&'a str>,
    pub problems: &'a [String],
    pub now: DateTime<Utc>,
    pub elapsed_ms: i64,
}

pub trait TickOps {
    fn start_tick(&mut self, now: DateTime<Utc>) -> anyhow::Result<i64>;
    fn finish_tick(&mut self, id: i64, end: &TickEnd) -> anyhow::Result<()>;
    /// The most recent tick, finished or not.
    fn last_tick(&mut self) -> anyhow::Result<Option<TickRecord>>;
    /// The most recent tick that finished without error.
    fn last_good_tick(&mut self) -> anyhow::Result<Option<TickRecord>>;
    /// Forget the records of ticks that started after `now` (they ran with a clock
    /// ahead); how many. With `dry_run`, only count them.
    fn forget_ticks_after(&mut self, now: DateTime<Utc>, dry_run: bool) -> anyhow::Result<usize>;
}

// ---------------------------------------------------------------------------------------
// The daily agenda

/// A zone as `users.timezone` holds it: `None` for users without one (the default zone).
/// Kept as stored, so that each distinct value gets its own pass.
pub type ZoneKey = Option<String>;

pub trait AgendaOps {
    /// The distinct zones users have (`None` when some have none), read through the zone
    /// index one value at a time: as cheap with a million users as with ten.
    fn agenda_zones(&mut self) -> anyhow::Result<Vec<ZoneKey>>;
    /// Whether the agenda pass of `zone` for `date` is done.
    fn agenda_run_done(&mut self, zone: &ZoneKey, date: NaiveDate) -> anyhow::Result<bool>;
    /// Record the pass of `zone` for `date` as done (again is fine).
    fn finish_agenda_run(
        &mut self,
        zone: &ZoneKey,
        date: NaiveDate,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()>;
    /// Users in `zone` with a scheduled event starting in [from, to) and no agenda for
    /// `date` yet, by id after `after`, at most `limit`.
    fn agenda_recipients(
        &mut self,
        zone: &ZoneKey,
        day: (DateTime<Utc>, DateTime<Utc>),
        date: NaiveDate,
        after: i64,
        limit: u32,
    ) -> anyhow::Result<Vec<i64>>;
}

#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct PruneCounts {
    pub notifications: i64,
    pub deliveries: i64,
    pub ticks: i64,
    pub reminders: i64,
    /// Lines of the delivery attempts log.
    pub attempts: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_means_postgres_and_anything_else_a_file() {
        for url in ["postgres://u@h/db", "postgresql://u@h/db"] {
            assert!(matches!(Location::parse(url), Location::Postgres(_)), "{url}");
        }
        for path in [
            "notify.db",
            "/var/lib/notifyctl/db",
            "postgres.db",
            "C:\\data\\n.db",
        ] {
            assert!(matches!(Location::parse(path), Location::Sqlite(_)), "{path}");
        }
    }

    #[test]
    fn a_location_never_shows_its_password() {
        let location = Location::parse("postgres://app:s3cret@db.internal:5433/bookings?sslmode=require");
        assert_eq!(
            location.to_string(),
            "postgres://app:***@db.internal:5433/bookings?sslmode=require"
        );
        assert!(!format!("{location:?}").contains("s3cret"));
        // File transport paths: beside the file, or the current directory.
        assert_eq!(location.base_dir(), PathBuf::new());
        assert_eq!(Location::parse("/srv/n.db").base_dir(), PathBuf::from("/srv"));
    }
}
