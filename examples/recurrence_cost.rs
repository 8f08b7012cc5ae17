//! What recurring series cost to expand: the figures behind the "bounded work" claims of
//! `src/recurrence.rs`. Timings are printed, never asserted (tests count work instead).
//!
//!     cargo run --release --example recurrence_cost

use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use notifyctl::recurrence::Series;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// Median of `runs` timings of `f`, printed with `label`.
fn time<T>(label: &str, runs: usize, mut f: impl FnMut() -> T) -> T {
    let mut out = f();
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        out = f();
        samples.push(t.elapsed());
    }
    samples.sort();
    println!("{:>12.3?}  {label}", samples[runs / 2]);
    out
}

fn main() {
    let paris = chrono_tz::Europe::Paris;
    let hour = TimeDelta::hours(1);
    let first = utc("2030-01-07T08:00:00Z");
    let daily = Series::new("FREQ=DAILY", first, hour, paris).expect("valid");
    let n = time("daily open series: every occurrence of 10 years", 21, || {
        daily.occurrences(first, utc("2040-01-07T00:00:00Z"), &[]).len()
    });
    println!("              ({n} occurrences)");
    time("daily open series: a 7-day window 10 years out", 201, || {
        daily.occurrences(utc("2040-01-01T00:00:00Z"), utc("2040-01-08T00:00:00Z"), &[])
    });
    let counted = Series::new("FREQ=DAILY;COUNT=10000", first, hour, paris).expect("valid");
    time(
        "daily COUNT=10000: a 7-day window at its end (walked from the start)",
        21,
        || counted.occurrences(utc("2057-05-01T00:00:00Z"), utc("2057-05-08T00:00:00Z"), &[]),
    );
    let until = Series::new("FREQ=DAILY;UNTIL=20391231T235959Z", first, hour, paris).expect("valid");
    time("daily UNTIL 10 years out: end()", 201, || until.end());

    // `plan --next 30d` over 10,000 weekly series that started over the last three years.
    let zones = [paris, chrono_tz::America::New_York, chrono_tz::Asia::Tokyo];
    let starts: Vec<DateTime<Utc>> = (0..10_000i64)
        .map(|i| utc("2027-03-01T07:00:00Z") + TimeDelta::minutes(i * 157))
        .collect();
    let series: Vec<Series> = time("10,000 weekly series: Series::new", 5, || {
        starts
            .iter()
            .enumerate()
            // A few starts fall in the repeated hour of an autumn night and are refused.
            .filter_map(|(i, s)| Series::new("FREQ=WEEKLY", *s, hour, zones[i % 3]).ok())
            .collect()
    });
    let (from, to) = (utc("2030-03-20T12:00:00Z"), utc("2030-04-19T12:00:00Z"));
    let n = time("10,000 weekly series: occurrences over 30 days", 5, || {
        series
            .iter()
            .map(|s| s.occurrences(from, to, &[]).len())
            .sum::<usize>()
    });
    println!("              ({} series, {n} occurrences)", series.len());
}
