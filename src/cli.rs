//! The command line, as clap derive definitions; doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Exactly-once event notifications — assignment notices, reminders before a session,
/// an in-app inbox and an email outbox — on one SQLite file. Run `check-reminders`
/// every minute from cron, a systemd timer or Windows Task Scheduler.
#[derive(Debug, Parser)]
#[command(name = "notifyctl", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalOpts {
    /// The SQLite file (default: [database] path from the config, else notifyctl.db)
    #[arg(long, global = true, env = "NOTIFYCTL_DB", value_name = "PATH")]
    pub db: Option<String>,
    /// The TOML config file (optional: every setting has a default)
    #[arg(long, global = true, env = "NOTIFYCTL_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// The clock, RFC 3339 (for tests, replays and CI smoke runs)
    #[arg(long, global = true, env = "NOTIFYCTL_NOW", value_name = "TIME")]
    pub now: Option<String>,
    /// Machine-readable JSON on stdout
    #[arg(long, global = true)]
    pub json: bool,
    /// Less logging: errors only
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More logging (-v info, -vv debug); NOTIFYCTL_LOG also sets the level
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log lines as text, or as JSON objects for a log shipper (logs go to stderr)
    #[arg(
        long,
        global = true,
        env = "NOTIFYCTL_LOG_FORMAT",
        value_name = "FORMAT",
        value_enum,
        default_value_t
    )]
    pub log_format: crate::logging::LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or migrate the database (idempotent)
    Init,
    /// Manage users
    #[command(subcommand)]
    User(UserCmd),
    /// Manage events and their participants
    #[command(subcommand)]
    Event(EventCmd),
    /// The cron tick: create due reminders, then deliver the outbox
    CheckReminders(CheckRemindersArgs),
    /// Reminder decisions: reopen the ones a clock running ahead recorded as late
    #[command(subcommand)]
    Reminders(RemindersCmd),
    /// Why a user did (or did not) get each message about an event: every notice, reminder
    /// decision and delivery attempt, and what the coming ticks will do
    Explain {
        event: i64,
        /// The recipient, by id or email
        #[arg(long, value_name = "USER")]
        user: String,
    },
    /// The reminders the coming ticks will send, and when
    Plan {
        /// How far ahead to look
        #[arg(long, default_value = "24h", value_name = "DUR")]
        next: String,
    },
    /// What each person receives: per kind of notice and channel (email, sms, ntfy)
    #[command(subcommand)]
    Prefs(PrefsCmd),
    /// Send an ad-hoc notice (kind `custom`)
    Send {
        #[arg(long, value_name = "USER")]
        user: String,
        #[arg(long)]
        title: String,
        #[arg(long)]
        body: String,
        /// In-app only: no email, SMS or push (the webhook still carries it)
        #[arg(long)]
        no_email: bool,
    },
    /// A user's inbox, newest first
    List {
        #[arg(long, value_name = "USER")]
        user: String,
        /// Unread notifications only
        #[arg(long)]
        unread: bool,
        /// Only this kind: assigned, reminder, rescheduled, cancelled, custom, agenda
        #[arg(long = "type", value_name = "KIND")]
        kind: Option<String>,
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
    },
    /// One notification
    Show { id: i64 },
    /// Mark notifications read: by id, or all of a user's with --all --user U
    MarkRead {
        #[arg(required_unless_present = "all")]
        ids: Vec<i64>,
        #[arg(long, requires = "user", conflicts_with = "ids")]
        all: bool,
        #[arg(long, value_name = "USER")]
        user: Option<String>,
    },
    /// Mark notifications unread
    MarkUnread {
        #[arg(required = true)]
        ids: Vec<i64>,
    },
    /// The number of unread notifications, for a badge
    UnreadCount {
        #[arg(long, value_name = "USER")]
        user: String,
    },
    /// Delete notifications
    Delete {
        #[arg(required = true)]
        ids: Vec<i64>,
    },
    /// Delete a user's read notifications
    ClearRead {
        #[arg(long, value_name = "USER")]
        user: String,
    },
    /// The outbox: list deliveries, or re-queue them
    Deliveries(DeliveriesArgs),
    /// Health: last tick, backlog, dead deliveries, skipped reminders
    Status {
        /// Exit non-zero (3) when the last successful tick is older than this, or deliveries are dead
        #[arg(long, value_name = "DUR")]
        max_age: Option<String>,
    },
    /// Bulk load users or events, all or nothing
    #[command(subcommand)]
    Import(ImportCmd),
    /// Remove read notifications, sent deliveries and tick records older than an age
    Prune {
        #[arg(long, value_name = "DUR")]
        older_than: String,
        /// Count only
        #[arg(long)]
        dry_run: bool,
    },
    /// Check or show the configuration
    #[command(subcommand)]
    Config(ConfigCmd),
    /// The whole product on a temporary database, no server needed
    Demo {
        /// Keep the demo database and outbox in this directory instead of a temporary one
        #[arg(long, value_name = "DIR")]
        keep: Option<PathBuf>,
    },
    /// Print shell completions
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write all the pages to a directory
    Man {
        /// Write notifyctl.1 and one page per subcommand (notifyctl-init.1, ...) here
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Add a user and print its id
    Add(UserFields),
    /// List users
    List,
    /// Show one user
    Show { user: String },
    /// Change a user's fields
    Update {
        user: String,
        #[command(flatten)]
        fields: UserUpdate,
    },
    /// Remove a user, their participations and notifications
    Remove { user: String },
}

#[derive(Debug, Args)]
pub struct UserFields {
    #[arg(long)]
    pub email: String,
    #[arg(long)]
    pub name: String,
    /// IANA time zone, e.g. Europe/Paris (default: [reminders] default_timezone)
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// fr or en (default: [reminders] default_locale)
    #[arg(long)]
    pub locale: Option<String>,
    /// No email for any kind of notice (in-app and the other channels still work)
    #[arg(long)]
    pub no_email: bool,
    /// Mobile number for SMS, in E.164: +33612345678
    #[arg(long, value_name = "NUMBER")]
    pub phone: Option<String>,
    /// The ntfy topic for push notifications, or auto for an unguessable one
    #[arg(long, value_name = "TOPIC|auto")]
    pub ntfy_topic: Option<String>,
    /// Hours when messages that are not urgent wait, in the user's zone: 22:00-07:00
    #[arg(long, value_name = "HH:MM-HH:MM")]
    pub quiet_hours: Option<String>,
}

#[derive(Debug, Args)]
pub struct UserUpdate {
    #[arg(long)]
    pub email: Option<String>,
    #[arg(long)]
    pub name: Option<String>,
    /// IANA zone, or "default"
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// fr, en, or "default"
    #[arg(long)]
    pub locale: Option<String>,
    /// Receive email for every kind of notice: on or off (per kind: `prefs set`)
    #[arg(long, value_name = "on|off")]
    pub email_notices: Option<OnOff>,
    /// Mobile number for SMS (E.164, +33612345678), or none
    #[arg(long, value_name = "NUMBER|none")]
    pub phone: Option<String>,
    /// The ntfy topic for push notifications, auto (unguessable), or none
    #[arg(long, value_name = "TOPIC|auto|none")]
    pub ntfy_topic: Option<String>,
    /// Quiet hours in the user's zone (22:00-07:00), or none
    #[arg(long, value_name = "HH:MM-HH:MM|none")]
    pub quiet_hours: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum PrefsCmd {
    /// A user's choices per kind and channel, and which channels can reach them
    Show {
        #[arg(long, value_name = "USER")]
        user: String,
    },
    /// Switch a kind of notice on or off on a channel; in-app notices are always kept
    Set {
        #[arg(long, value_name = "USER")]
        user: String,
        /// assigned, reminder, rescheduled, cancelled, custom, agenda, or all
        #[arg(long, value_name = "KIND")]
        kind: String,
        /// email, sms, ntfy, or all
        #[arg(long, value_name = "CHANNEL")]
        channel: String,
        #[arg(value_enum)]
        value: OnOff,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, Subcommand)]
pub enum EventCmd {
    /// Create an event; participants get an `assigned` notice
    Add(EventAdd),
    /// Assign a user to an event, with an immediate notice
    Assign {
        event: i64,
        #[arg(long, value_name = "USER")]
        user: String,
        #[arg(long, default_value = "participant")]
        role: String,
        #[arg(long)]
        allow_overlap: bool,
    },
    /// Remove a user from an event; they get a `cancelled` notice
    Unassign {
        event: i64,
        #[arg(long, value_name = "USER")]
        user: String,
    },
    /// Edit an event; a new start re-arms reminders and sends `rescheduled`
    Update(EventUpdate),
    /// Cancel an event (a series: all of it), one occurrence of a series, or the rest of a
    /// series: sends `cancelled`, no more reminders
    Cancel {
        event: i64,
        /// Only this occurrence of a series: its start, RFC 3339 or local time in the event's zone
        #[arg(long, value_name = "TIME", conflicts_with = "from")]
        occurrence: Option<String>,
        /// A series' occurrences from TIME on (the earlier ones stay): RFC 3339 or local time
        /// in the event's zone
        #[arg(long, value_name = "TIME")]
        from: Option<String>,
    },
    /// List events; a series by its occurrences in the window (without --to, the 30 days
    /// after --from or now)
    List {
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        #[arg(long, value_name = "TIME")]
        from: Option<String>,
        #[arg(long, value_name = "TIME")]
        to: Option<String>,
        /// Include cancelled events
        #[arg(long)]
        all: bool,
        /// Zone for reading --from/--to local times
        #[arg(long, value_name = "ZONE")]
        tz: Option<String>,
    },
    /// Show one event
    Show { event: i64 },
}

#[derive(Debug, Args)]
pub struct EventAdd {
    #[arg(long)]
    pub title: String,
    /// RFC 3339, or a local time read in --tz / the first participant's zone / the default
    #[arg(long, value_name = "TIME")]
    pub start: String,
    #[arg(long, value_name = "TIME", conflicts_with = "duration")]
    pub end: Option<String>,
    /// Length, e.g. 1h or 45m (default 1h)
    #[arg(long, value_name = "DUR")]
    pub duration: Option<String>,
    /// A participant, by id or email, optionally with a role: ana@example.org:mentor
    #[arg(long = "participant", value_name = "USER[:ROLE]")]
    pub participants: Vec<String>,
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// auto (the configured provider), none, or a URL kept as given
    #[arg(long, default_value = "auto", value_name = "auto|none|URL")]
    pub video: String,
    /// Allow overlapping another scheduled event of a participant
    #[arg(long)]
    pub allow_overlap: bool,
    /// A reminder this long before the start (repeatable, whole minutes: 10m, 1h, 1d), or
    /// `none`; default: [reminders] offsets
    #[arg(long = "remind", value_name = "DUR|none")]
    pub remind: Vec<String>,
    /// Make it a series: an RFC 5545 RRULE, e.g. FREQ=WEEKLY;COUNT=16 or
    /// FREQ=WEEKLY;BYDAY=MO,TH;UNTIL=20301231T000000Z, read in the event's zone
    #[arg(long, value_name = "RRULE")]
    pub repeat: Option<String>,
}

#[derive(Debug, Args)]
pub struct EventUpdate {
    pub event: i64,
    #[arg(long)]
    pub title: Option<String>,
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    #[arg(long, value_name = "TIME", conflicts_with = "duration")]
    pub end: Option<String>,
    #[arg(long, value_name = "DUR")]
    pub duration: Option<String>,
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// A new link: auto, none, or a URL
    #[arg(long, value_name = "auto|none|URL")]
    pub video: Option<String>,
    #[arg(long)]
    pub allow_overlap: bool,
    /// New reminder offsets (repeatable), `none`, or `default` ([reminders] offsets); the
    /// reminders already sent or skipped stay so
    #[arg(long = "remind", value_name = "DUR|none|default")]
    pub remind: Vec<String>,
    /// A new repeat rule (RRULE): the event becomes, or stays, a series
    #[arg(long, value_name = "RRULE")]
    pub repeat: Option<String>,
    /// Move only this occurrence of a series (its start, RFC 3339 or local time in the
    /// event's zone) to --start / --end / --duration
    #[arg(long, value_name = "TIME")]
    pub occurrence: Option<String>,
}

#[derive(Debug, Args)]
pub struct CheckRemindersArgs {
    /// Say what would happen; write nothing, send nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Stop claiming new work after this long (default [tick] max_runtime, 45s)
    #[arg(long, value_name = "DUR")]
    pub max_runtime: Option<String>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DeliveriesArgs {
    #[command(subcommand)]
    pub action: Option<DeliveriesCmd>,
    /// pending, held (pending until the end of quiet hours), sending, failed, dead, sent,
    /// superseded or expired
    #[arg(long)]
    pub status: Option<String>,
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

#[derive(Debug, Subcommand)]
pub enum DeliveriesCmd {
    /// Re-queue deliveries now, by id or all dead ones
    Retry {
        #[arg(required_unless_present = "dead")]
        ids: Vec<i64>,
        #[arg(long, conflicts_with = "ids")]
        dead: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RemindersCmd {
    /// Forget the `late` and `collapsed` decisions recorded since TIME for events still to
    /// come, so the next tick decides them again (after a tick ran with its clock ahead)
    Reopen {
        /// When the clock went wrong: decisions recorded from then on are reopened
        #[arg(long, value_name = "TIME")]
        since: String,
        /// Count only
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImportCmd {
    /// Users from .csv or .jsonl: email, name, timezone, locale
    Users { file: PathBuf },
    /// Events from .csv or .jsonl: title, start, end|duration, timezone, video, participants, remind
    Events {
        file: PathBuf,
        /// Send `assigned` notices to the participants
        #[arg(long)]
        notify: bool,
        #[arg(long)]
        allow_overlap: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Parse and validate the config, render the templates, and test the SMTP connection and login without sending
    Check,
    /// The effective settings, secrets masked
    Show,
}
