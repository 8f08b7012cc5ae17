//! The only place that reads the system time.
//!
//! `--now` / `NOTIFYCTL_NOW` freeze the clock at an instant so that tests, replays and CI
//! smoke runs are deterministic. Elapsed-time limits (`--max-runtime`) use a monotonic
//! `Instant` instead, because a frozen clock never advances.

use chrono::{DateTime, SubsecRound, Utc};

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    frozen: Option<DateTime<Utc>>,
}

impl Clock {
    pub fn system() -> Self {
        Clock { frozen: None }
    }

    pub fn frozen(at: DateTime<Utc>) -> Self {
        Clock { frozen: Some(at) }
    }

    /// The current instant, to the second (the precision of every stored instant).
    #[allow(clippy::disallowed_methods)] // this is the one sanctioned reader of the system time
    pub fn now(&self) -> DateTime<Utc> {
        self.frozen.unwrap_or_else(Utc::now).trunc_subsecs(0)
    }
}
