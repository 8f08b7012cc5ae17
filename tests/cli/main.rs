//! End-to-end tests: the real binary, a real SQLite file, real SMTP and HTTP servers on
//! 127.0.0.1, and `--now` (NOTIFYCTL_NOW) walking the clock.

mod support;

mod admin;
mod events;
mod faults;
mod inbox;
mod messages;
mod ops;
mod outbox;
mod reminders;
mod users;
