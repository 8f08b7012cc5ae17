//! The only place that reads the system time.
//!
//! `--now` / `NOTIFYCTL_NOW` freeze the clock at an instant so that tests, replays and CI
//! smoke runs are deterministic. Elapsed-time limits (`--max-runtime`) use a monotonic
//! `Instant` instead, because a frozen clock never advances.
//!
//! With several hosts on one PostgreSQL database, each host's clock may be a little off;
//! the store measures how far the database's clock is from this one's when it opens, and
//! the service shifts the system clock by that much ([`Clock::shifted`]), so every tick on
//! every host reads the same time. A frozen clock is never shifted.

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    frozen: Option<DateTime<Utc>>,
    /// Added to the system time (the database's clock minus this machine's).
    offset: TimeDelta,
}

impl Clock {
    pub fn system() -> Self {
        Clock {
            frozen: None,
            offset: TimeDelta::zero(),
        }
    }

    pub fn frozen(at: DateTime<Utc>) -> Self {
        Clock {
            frozen: Some(at),
            offset: TimeDelta::zero(),
        }
    }

    /// This clock moved by `offset`; a frozen clock (`--now`) stays where it is.
    pub fn shifted(self, offset: TimeDelta) -> Self {
        match self.frozen {
            Some(_) => self,
            None => Clock { offset, ..self },
        }
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen.is_some()
    }

    /// The current instant, to the second (the precision of every stored instant).
    #[allow(clippy::disallowed_methods)] // this is the one sanctioned reader of the system time
    pub fn now(&self) -> DateTime<Utc> {
        self.frozen
            .unwrap_or_else(|| Utc::now() + self.offset)
            .trunc_subsecs(0)
    }

    /// How far `read_other` (another clock, read once) is ahead of the system clock: the
    /// other reading is compared with the middle of the two system readings around it, so
    /// the round trip does not count.
    #[allow(clippy::disallowed_methods)] // reads the system time, as `now` does
    pub fn offset_of(
        read_other: impl FnOnce() -> anyhow::Result<DateTime<Utc>>,
    ) -> anyhow::Result<TimeDelta> {
        let before = Utc::now();
        let other = read_other()?;
        let after = Utc::now();
        Ok(other - (before + (after - before) / 2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frozen_clock_is_never_shifted() {
        let at = DateTime::parse_from_rfc3339("2030-03-10T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock = Clock::frozen(at).shifted(TimeDelta::hours(3));
        assert_eq!(clock.now(), at);
    }

    #[test]
    fn a_shifted_system_clock_reads_the_other_clock() {
        let ahead = Clock::system().shifted(TimeDelta::hours(1));
        let delta = ahead.now() - Clock::system().now();
        assert!(
            (TimeDelta::minutes(59)..=TimeDelta::minutes(61)).contains(&delta),
            "{delta}"
        );
        let measured = Clock::offset_of(|| Ok(ahead.now())).unwrap();
        assert!((TimeDelta::minutes(59)..=TimeDelta::minutes(61)).contains(&measured));
    }
}
