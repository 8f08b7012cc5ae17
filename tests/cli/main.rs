//! End-to-end tests: the real binary, a real SQLite file, real SMTP and HTTP servers on
//! 127.0.0.1, and `--now` (NOTIFYCTL_NOW) walking the clock.

mod pgcluster;
mod support;

mod admin;
mod channels;
mod events;
mod faults;
mod hostile;
mod import;
mod inbox;
mod messages;
mod operations;
mod ops;
mod outbox;
mod pg_connect;
mod reminders;
mod users;
