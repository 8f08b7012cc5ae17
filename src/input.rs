//! Parsers for what users type: instants, durations, time zones, email addresses.
//!
//! Every error here is a [`UserError`](crate::error::UserError) that quotes the input and
//! shows the expected form, because these messages end up in cron mails and CI logs.

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use crate::error::user_error;

/// Read an instant: RFC 3339 with an offset, or a local time read in `tz`.
/// A local time that does not exist or happens twice in `tz` (daylight saving) is refused.
pub fn parse_time(raw: &str, tz: Tz) -> anyhow::Result<DateTime<Utc>> {
    let s = raw.trim();
    // Quoted in errors, shortened and made printable: a 10 MB cell is not echoed whole.
    let input = printable(s, 60);
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
pub fn parse_duration(raw: &str) -> anyhow::Result<TimeDelta> {
    let input = printable(raw.trim(), 40);
    let bad = || {
        user_error(format!(
            "invalid duration '{input}': use a number with a unit, like 90s, 10m, 1h30m or 7d"
        ))
    };
    let s = raw.trim();
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

/// A standard duration as `parse_duration` reads it, to the second (`2s`, `1m30s`).
pub fn format_duration_std(d: std::time::Duration) -> String {
    format_duration(TimeDelta::seconds(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)))
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

pub fn parse_tz(raw: &str) -> anyhow::Result<Tz> {
    let name = printable(raw.trim(), 60);
    raw.trim().parse::<Tz>().map_err(|_| {
        user_error(format!(
            "unknown time zone '{name}': use an IANA name such as Europe/Paris or America/New_York"
        ))
    })
}

/// A phone number for SMS, in E.164: `+` then the country code and number, 8 to 15 digits
/// in all. Spaces, dots, hyphens and parentheses people type are dropped
/// (`+33 6 12 34 56 78` is `+33612345678`); anything else is refused, so a number that
/// reaches a gateway is one it can dial.
pub fn parse_phone(raw: &str) -> anyhow::Result<String> {
    let shown = printable(raw.trim(), 40);
    let compact: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')'))
        .collect();
    let digits = compact.strip_prefix('+').unwrap_or_default();
    let ok = compact.starts_with('+')
        && (8..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Ok(compact)
    } else {
        Err(user_error(format!(
            "invalid phone number '{shown}': use E.164, a + then the country code and the number, like +33612345678"
        )))
    }
}

/// An ntfy topic: 1 to 64 letters, digits, `-` or `_` (what ntfy accepts). Anyone who
/// knows a topic on a public server can read it: `auto` makes an unguessable one.
pub fn parse_ntfy_topic(raw: &str) -> anyhow::Result<String> {
    let t = raw.trim();
    let ok = (1..=64).contains(&t.len())
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(t.to_string())
    } else {
        Err(user_error(format!(
            "invalid ntfy topic '{}': use 1 to 64 letters, digits, - or _ (or auto for an unguessable one)",
            printable(t, 70)
        )))
    }
}

/// The longest address SMTP carries (RFC 5321 §4.5.3.1.3, a path of 256 octets less
/// the angle brackets).
const MAX_EMAIL: usize = 254;

/// A check strict enough that every address it accepts can be sent to: a local part and
/// a host name (letters, digits, hyphens, dots, or international letters), no domain
/// literal (`a@[127.0.0.1]`), no spaces, no control characters. The mail server has the
/// final word on whether the mailbox exists.
pub fn validate_email(input: &str) -> anyhow::Result<String> {
    let s = input.trim();
    let shown = printable(s, 80);
    let bad = |why: &str| {
        user_error(format!(
            "invalid email address '{shown}': {why} (expected something like ana@example.org)"
        ))
    };
    if s.len() > MAX_EMAIL {
        return Err(bad(&format!("longer than {MAX_EMAIL} characters")));
    }
    if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad("it contains spaces or control characters"));
    }
    let Some((local, domain)) = s.rsplit_once('@') else {
        return Err(bad("no @"));
    };
    if local.is_empty() || local.contains('@') && !local.starts_with('"') {
        return Err(bad("the part before @ is empty or holds another @"));
    }
    if domain.starts_with('[') {
        return Err(bad("an IP address instead of a domain cannot be used"));
    }
    let labels_ok = domain.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    });
    if !domain.contains('.') || !labels_ok {
        return Err(bad("the domain is not a host name like example.org"));
    }
    if s.chars()
        .any(|c| matches!(c, '<' | '>' | ',' | ';' | '(' | ')' | '[' | ']' | '\\'))
        && !local.starts_with('"')
    {
        return Err(bad("it contains characters an address cannot hold"));
    }
    if s.parse::<lettre::Address>().is_err() {
        return Err(bad("not a valid address"));
    }
    Ok(s.to_string())
}

/// Check a short text a person typed or a file holds (a name, a title, a role): no
/// control characters (a line break in a name would end up in a mail header), not
/// empty, at most `max` characters. Returns it trimmed.
pub fn check_text(field: &str, value: &str, max: usize) -> anyhow::Result<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(user_error(format!("{field} cannot be empty")));
    }
    if let Some(c) = v.chars().find(|c| c.is_control()) {
        return Err(user_error(format!(
            "{field} contains a control character ({}): use one line of plain text",
            c.escape_unicode()
        )));
    }
    let n = v.chars().count();
    if n > max {
        return Err(user_error(format!(
            "{field} is {n} characters long: at most {max} are allowed"
        )));
    }
    Ok(v.to_string())
}

/// Check a longer text (a custom notice's body): line breaks and tabs are fine, other
/// control characters are not; at most `max` characters.
pub fn check_body(field: &str, value: &str, max: usize) -> anyhow::Result<String> {
    if let Some(c) = value
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(user_error(format!(
            "{field} contains a control character ({})",
            c.escape_unicode()
        )));
    }
    let n = value.chars().count();
    if n > max {
        return Err(user_error(format!(
            "{field} is {n} characters long: at most {max} are allowed"
        )));
    }
    Ok(value.to_string())
}

/// Limits on what people type, so every value fits a mail header and a terminal line.
pub mod limits {
    pub const NAME: usize = 200;
    pub const TITLE: usize = 300;
    pub const ROLE: usize = 100;
    pub const BODY: usize = 20_000;
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
        .map_err(|e| format!("'{}' is not a valid address ({e})", printable(s, 80)))
}

/// Format an instant the way the JSON output and the database store it.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    // Digits written directly: chrono's `format` parses its pattern on every call, and even
    // `write!` with six padded numbers cost 5% of an import (every stored instant and every
    // double-booking check formats a few).
    let year = t.year();
    if !(0..=9999).contains(&year) {
        return format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            year,
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
    }
    let two = |n: u32| [b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8];
    let year = year as u32;
    let (y1, y2) = (two(year / 100), two(year % 100));
    let (mo, d, h, mi, s) = (
        two(t.month()),
        two(t.day()),
        two(t.hour()),
        two(t.minute()),
        two(t.second()),
    );
    let bytes = [
        y1[0], y1[1], y2[0], y2[1], b'-', mo[0], mo[1], b'-', d[0], d[1], b'T', h[0], h[1], b':', mi[0],
        mi[1], b':', s[0], s[1], b'Z',
    ];
    bytes.iter().map(|&b| b as char).collect()
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
    fn texts_with_control_characters_or_too_long_are_refused() {
        assert_eq!(check_text("name", "  Ana Martin ", 10).unwrap(), "Ana Martin");
        for bad in ["Ana\r\nBcc: x@y.org", "Ana\u{7}", "Ana\u{1b}[31m", ""] {
            assert!(check_text("name", bad, 100).is_err(), "{bad:?}");
        }
        let e = check_text("title", &"x".repeat(301), 300)
            .unwrap_err()
            .to_string();
        assert!(e.contains("301 characters") && e.contains("300"), "{e}");
        assert!(check_body("body", "line 1\nline 2\ttab", 100).is_ok());
        assert!(check_body("body", "bell\u{7}", 100).is_err());
    }

    #[test]
    fn emails() {
        assert!(validate_email("ana@example.org").is_ok());
        for bad in [
            "ana",
            "ana@",
            "@example.org",
            "ana@example",
            "a b@example.org",
            "a@[127.0.0.1]",
            "ana@exa_mple.org",
            "ana@-example.org",
            "ana@example..org",
            "ana\r\n@example.org",
            "<ana@example.org>",
            "ana@example.org,bob@example.org",
        ] {
            assert!(validate_email(bad).is_err(), "{bad} should be refused");
        }
        assert!(validate_email(&format!("{}@example.org", "a".repeat(250))).is_err());
        assert!(validate_email("ana.maria+tag@mail.example.co.uk").is_ok());
        assert!(validate_email("jose@exámple.org").is_ok());
    }
}

#[cfg(test)]
mod rfc3339_tests {
    use super::*;

    #[test]
    fn rfc3339_matches_chrono_for_every_form() {
        for s in [
            "2030-03-10T08:30:00Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "1969-12-31T23:59:59Z",
            "2024-02-29T12:00:05Z",
        ] {
            let t = DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
            assert_eq!(rfc3339(t), t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            assert_eq!(rfc3339(t), s);
        }
    }
}
