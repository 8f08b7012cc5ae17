//! Parsers for what users type: instants, durations, time zones, email addresses.
//!
//! Every error here is a [`UserError`](crate::error::UserError) that quotes the input and
//! shows the expected form, because these messages end up in cron mails and CI logs.

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use crate::error::user_error;

/// Read an instant: RFC 3339 with an offset, or a local time read in `tz`.
/// A local time that does not exist or happens twice in `tz` (daylight saving) is refused.
pub fn parse_time(input: &str, tz: Tz) -> anyhow::Result<DateTime<Utc>> {
    let s = input.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    // Also accept a space for the 'T' and a time without seconds (`2030-03-10T09:30Z`).
    let spaced = s.replacen(' ', "T", 1);
    let zulu = spaced
        .strip_suffix('Z')
        .or_else(|| spaced.strip_suffix('z'))
        .map(|p| format!("{p}+00:00"));
    for candidate in [Some(spaced.clone()), zulu].into_iter().flatten() {
        if let Ok(t) = DateTime::parse_from_rfc3339(&candidate) {
            return Ok(t.with_timezone(&Utc));
        }
        if let Ok(t) = DateTime::parse_from_str(&candidate, "%Y-%m-%dT%H:%M%:z") {
            return Ok(t.with_timezone(&Utc));
        }
    }
    let local = ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .ok_or_else(|| {
            user_error(format!(
                "invalid time '{input}': use RFC 3339 like 2030-03-10T09:30:00+01:00 or a local time like 2030-03-10T09:30"
            ))
        })?;
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
        LocalResult::None => Err(user_error(format!(
            "time '{input}' does not exist in {tz} (the clocks skip it at a daylight-saving change): pick another time or give an explicit offset"
        ))),
        LocalResult::Ambiguous(a, b) => Err(user_error(format!(
            "time '{input}' is ambiguous in {tz} (it happens twice at a daylight-saving change): give the offset, {} or {}",
            a.to_rfc3339(),
            b.to_rfc3339()
        ))),
    }
}

/// Read a duration: `90s`, `10m`, `1h`, `1h30m`, `7d`, `2w` (units may be combined).
pub fn parse_duration(input: &str) -> anyhow::Result<TimeDelta> {
    let bad = || {
        user_error(format!(
            "invalid duration '{input}': use a number with a unit, like 90s, 10m, 1h30m or 7d"
        ))
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: i64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: i64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(bad()),
        };
        let n: i64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    // 100 years is more than any offset or retention anyone means; larger is a typo.
    if total > 100 * 366 * 86_400 {
        return Err(bad());
    }
    TimeDelta::try_seconds(total).ok_or_else(bad)
}

/// Print a duration the way `parse_duration` reads it (`1h30m`).
pub fn format_duration(d: TimeDelta) -> String {
    let mut secs = d.num_seconds();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    if secs < 0 {
        out.push('-');
        secs = -secs;
    }
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

pub fn parse_tz(name: &str) -> anyhow::Result<Tz> {
    name.trim().parse::<Tz>().map_err(|_| {
        user_error(format!(
            "unknown time zone '{name}': use an IANA name such as Europe/Paris or America/New_York"
        ))
    })
}

/// A light check, enough to catch typos; the mail server has the final word.
pub fn validate_email(input: &str) -> anyhow::Result<String> {
    let s = input.trim();
    let ok = match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !s
                    .chars()
                    .any(|c| c.is_whitespace() || c == '<' || c == '>' || c == ',')
                && !domain.contains('@')
                && s.parse::<lettre::Address>().is_ok()
        }
        None => false,
    };
    if ok {
        Ok(s.to_string())
    } else {
        Err(user_error(format!(
            "invalid email address '{input}': expected something like ana@example.org"
        )))
    }
}

/// A value for a one-line report: control characters shown as `\u{..}` escapes, cut to
/// `max` characters with an ellipsis. Nothing from a file, a row or a server reaches a
/// terminal or a log line without going through this.
pub fn printable(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n >= max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// A `From:`-style mailbox (`Name <a@b.org>` or a bare address), for settings.
pub fn parse_mailbox(s: &str) -> Result<lettre::message::Mailbox, String> {
    s.parse::<lettre::message::Mailbox>()
        .map_err(|e| format!("'{s}' is not a valid address ({e})"))
}

/// Format an instant the way the JSON output and the database store it.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paris() -> Tz {
        "Europe/Paris".parse().unwrap()
    }

    #[test]
    fn rfc3339_with_offset_is_converted_to_utc() {
        let t = parse_time("2030-03-10T09:30:00+01:00", paris()).unwrap();
        assert_eq!(rfc3339(t), "2030-03-10T08:30:00Z");
    }

    #[test]
    fn local_time_is_read_in_the_zone() {
        let t = parse_time("2030-07-10 09:30", paris()).unwrap();
        assert_eq!(rfc3339(t), "2030-07-10T07:30:00Z");
        let t = parse_time("2030-01-10T09:30", paris()).unwrap();
        assert_eq!(rfc3339(t), "2030-01-10T08:30:00Z");
    }

    #[test]
    fn spring_forward_gap_is_refused() {
        let err = parse_time("2030-03-31T02:30", paris()).unwrap_err().to_string();
        assert!(err.contains("does not exist in Europe/Paris"), "{err}");
    }

    #[test]
    fn autumn_back_overlap_is_refused_with_both_offsets() {
        let err = parse_time("2030-10-27T02:30", paris()).unwrap_err().to_string();
        assert!(err.contains("ambiguous"), "{err}");
        assert!(err.contains("+02:00") && err.contains("+01:00"), "{err}");
    }

    #[test]
    fn offsets_without_seconds_are_accepted() {
        assert_eq!(
            rfc3339(parse_time("2030-03-10T09:30Z", paris()).unwrap()),
            "2030-03-10T09:30:00Z"
        );
        assert_eq!(
            rfc3339(parse_time("2030-03-10 09:30+01:00", paris()).unwrap()),
            "2030-03-10T08:30:00Z"
        );
    }

    #[test]
    fn garbage_time_is_refused() {
        assert!(parse_time("tomorrow", paris()).is_err());
        assert!(parse_time("2030-13-10T09:30", paris()).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap().num_seconds(), 90);
        assert_eq!(parse_duration("10m").unwrap().num_seconds(), 600);
        assert_eq!(parse_duration("1h30m").unwrap().num_seconds(), 5400);
        assert_eq!(parse_duration("7d").unwrap().num_seconds(), 604_800);
        for bad in ["", "10", "m", "1x", "-5m", "1.5h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be refused");
        }
        assert_eq!(format_duration(parse_duration("1h30m").unwrap()), "1h30m");
    }

    #[test]
    fn emails() {
        assert!(validate_email("ana@example.org").is_ok());
        for bad in ["ana", "ana@", "@example.org", "ana@example", "a b@example.org"] {
            assert!(validate_email(bad).is_err(), "{bad} should be refused");
        }
    }
}
