//! The PostgreSQL backend: connecting (URL, TLS, timeouts, errors) today; its SQL joins here
//! behind the `Store` trait.

pub mod connect;
mod tls;
mod url;
