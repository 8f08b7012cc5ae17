//! End-to-end tests: the real binary, a real SQLite file or PostgreSQL database (a
//! throwaway cluster, `pgcluster`), real SMTP and HTTP servers on 127.0.0.1, and `--now`
//! (NOTIFYCTL_NOW) walking the clock. Each file's tests run on SQLite, and those it lists
//! in `on_postgres!` on PostgreSQL too.

mod pgcluster;
mod support;

mod admin;
mod channels;
mod events;
mod faults;
mod hostile;
mod import;
mod inbox;
mod many_hosts;
mod messages;
mod operations;
mod ops;
mod outbox;
mod people;
mod pg_connect;
mod pg_schema;
mod reminders;
mod rules;
mod users;
