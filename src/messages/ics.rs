//! iCalendar (RFC 5545) attachments for event emails, so that mail clients offer "add to
//! calendar" and later update or remove the entry. Written by hand because the output is one
//! fixed shape: the rules that matter are CRLF line ends, TEXT escaping, and folding long lines
//! at 75 octets without splitting a UTF-8 character. Invitations use METHOD:REQUEST, withdrawals
//! METHOD:CANCEL (RFC 5546); clients match them to the original by UID and keep the entry with
//! the highest SEQUENCE, so the caller must keep the UID stable and raise SEQUENCE on every change.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Request,
    Cancel,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Request => "REQUEST",
            Method::Cancel => "CANCEL",
        }
    }
}

#[derive(Debug, Clone)]
pub struct IcsInput<'a> {
    /// Stable across every message about the same event, e.g. `event-42@notifyctl`.
    pub uid: &'a str,
    pub sequence: i64,
    pub title: &'a str,
    pub description: &'a str,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub video_url: Option<&'a str>,
    pub organizer_email: &'a str,
    pub attendee_email: &'a str,
    pub attendee_name: &'a str,
    /// When this version of the object was created; an input because the clock is never read here.
    pub stamp: DateTime<Utc>,
}

const PRODID: &str = "-//notifyctl//notifyctl//EN";
const MAX_LINE_OCTETS: usize = 75;

/// The whole `.ics` body, CRLF-terminated, ready to attach as `text/calendar; method=...`.
pub fn build(input: &IcsInput, method: Method) -> String {
    let status = match method {
        Method::Request => "CONFIRMED",
        Method::Cancel => "CANCELLED",
    };
    let mut lines: Vec<String> = vec![
        "BEGIN:VCALENDAR".into(),
        format!("PRODID:{PRODID}"),
        "VERSION:2.0".into(),
        "CALSCALE:GREGORIAN".into(),
        format!("METHOD:{}", method.as_str()),
        "BEGIN:VEVENT".into(),
        format!("UID:{}", escape_text(input.uid)),
        format!("SEQUENCE:{}", input.sequence.max(0)),
        format!("DTSTAMP:{}", utc_stamp(input.stamp)),
        format!("DTSTART:{}", utc_stamp(input.starts_at)),
        format!("DTEND:{}", utc_stamp(input.ends_at)),
        format!("SUMMARY:{}", escape_text(input.title)),
    ];
    if !input.description.is_empty() {
        lines.push(format!("DESCRIPTION:{}", escape_text(input.description)));
    }
    if let Some(url) = input.video_url.filter(|u| !u.trim().is_empty()) {
        lines.push(format!("LOCATION:{}", escape_text(url)));
        // URL is a URI value, not TEXT: backslash escapes would corrupt it, so only strip what
        // could end the line.
        lines.push(format!("URL:{}", strip_controls(url)));
    }
    lines.push(format!(
        "ORGANIZER:mailto:{}",
        strip_controls(input.organizer_email)
    ));
    lines.push(format!(
        "ATTENDEE;CN={};ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=FALSE:mailto:{}",
        quote_param(input.attendee_name),
        strip_controls(input.attendee_email)
    ));
    lines.push(format!("STATUS:{status}"));
    lines.push("END:VEVENT".into());
    lines.push("END:VCALENDAR".into());

    let mut out = String::new();
    for line in &lines {
        fold_into(&mut out, line);
    }
    out
}

fn utc_stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// RFC 5545 §3.3.11. Other control characters are not allowed in TEXT at all, so they are
/// dropped rather than escaped; CRLF and lone CR count as one line break.
fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            '\t' => out.push('\t'),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn strip_controls(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

/// Parameter values cannot contain DQUOTE and have no escape for it (short of RFC 6868, which
/// not every client reads), so a quote in a display name becomes an apostrophe.
fn quote_param(s: &str) -> String {
    let inner: String = s
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if c == '"' { '\'' } else { c })
        .collect();
    format!("\"{inner}\"")
}

/// Appends `line` folded so that no physical line exceeds 75 octets (the leading space of a
/// continuation counts), cutting only between characters so multi-byte UTF-8 stays intact.
fn fold_into(out: &mut String, line: &str) {
    let mut budget = MAX_LINE_OCTETS;
    let mut used = 0;
    for c in line.chars() {
        if used + c.len_utf8() > budget {
            out.push_str("\r\n ");
            budget = MAX_LINE_OCTETS - 1;
            used = 0;
        }
        out.push(c);
        used += c.len_utf8();
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use icalendar::parser::{read_calendar, unfold, Component};

    fn input<'a>(title: &'a str, description: &'a str) -> IcsInput<'a> {
        IcsInput {
            uid: "event-42@notifyctl",
            sequence: 3,
            title,
            description,
            starts_at: Utc.with_ymd_and_hms(2030, 3, 31, 0, 30, 0).unwrap(),
            ends_at: Utc.with_ymd_and_hms(2030, 3, 31, 1, 30, 0).unwrap(),
            video_url: Some("https://meet.example.com/abc-def?pwd=x;y,z"),
            organizer_email: "noreply@notifyctl.example",
            attendee_email: "alice@example.com",
            attendee_name: "Alice \"Al\" Martin, PhD",
            stamp: Utc.with_ymd_and_hms(2030, 3, 1, 12, 0, 0).unwrap(),
        }
    }

    fn prop(component: &Component, name: &str) -> String {
        component
            .find_prop(name)
            .unwrap_or_else(|| panic!("no {name} property"))
            .val
            .as_str()
            .to_string()
    }

    fn parse(ics: &str, check: impl FnOnce(&Component, &Component)) {
        let unfolded = unfold(ics);
        let cal = read_calendar(&unfolded).expect("icalendar parser rejected the output");
        let root = Component {
            name: "VCALENDAR".into(),
            properties: cal.properties.clone(),
            components: vec![],
        };
        let events: Vec<&Component> = cal.components.iter().filter(|c| c.name == "VEVENT").collect();
        assert_eq!(events.len(), 1, "exactly one VEVENT expected");
        check(&root, events[0]);
    }

    #[test]
    fn request_parses_with_expected_properties() {
        let inp = input("Mentoring", "See you there");
        let ics = build(&inp, Method::Request);
        parse(&ics, |cal, ev| {
            assert_eq!(prop(cal, "VERSION"), "2.0");
            assert_eq!(prop(cal, "PRODID"), PRODID);
            assert_eq!(prop(cal, "METHOD"), "REQUEST");
            assert_eq!(prop(ev, "UID"), "event-42@notifyctl");
            assert_eq!(prop(ev, "SEQUENCE"), "3");
            assert_eq!(prop(ev, "STATUS"), "CONFIRMED");
            assert_eq!(prop(ev, "DTSTAMP"), "20300301T120000Z");
            let start = chrono::NaiveDateTime::parse_from_str(&prop(ev, "DTSTART"), "%Y%m%dT%H%M%SZ")
                .unwrap()
                .and_utc();
            assert_eq!(start, inp.starts_at);
            assert_eq!(prop(ev, "DTEND"), "20300331T013000Z");
            assert_eq!(prop(ev, "SUMMARY"), "Mentoring");
            assert_eq!(prop(ev, "URL"), "https://meet.example.com/abc-def?pwd=x;y,z");
            assert_eq!(prop(ev, "LOCATION"), "https://meet.example.com/abc-def?pwd=x;y,z");
            assert_eq!(prop(ev, "ORGANIZER"), "mailto:noreply@notifyctl.example");
            let attendee = ev.find_prop("ATTENDEE").unwrap();
            assert_eq!(attendee.val.as_str(), "mailto:alice@example.com");
        });
    }

    #[test]
    fn cancel_sets_method_and_status() {
        let mut inp = input("Mentoring", "");
        inp.sequence = 4;
        inp.video_url = None;
        let ics = build(&inp, Method::Cancel);
        parse(&ics, |cal, ev| {
            assert_eq!(prop(cal, "METHOD"), "CANCEL");
            assert_eq!(prop(ev, "STATUS"), "CANCELLED");
            assert_eq!(prop(ev, "SEQUENCE"), "4");
            assert!(ev.find_prop("URL").is_none());
            assert!(ev.find_prop("LOCATION").is_none());
            assert!(ev.find_prop("DESCRIPTION").is_none());
        });
    }

    #[test]
    fn every_line_ends_in_crlf_and_fits_75_octets() {
        let long = "Ordre du jour : présentation, questions; suivi — ".repeat(12);
        let ics = build(&input(&long, &long), Method::Request);
        assert!(ics.ends_with("\r\n"));
        assert!(!ics.replace("\r\n", "").contains('\n'), "bare LF found");
        assert!(!ics.replace("\r\n", "").contains('\r'), "bare CR found");
        for line in ics.split("\r\n") {
            assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
        }
        assert!(ics.contains("\r\n "), "long lines should have been folded");
    }

    #[test]
    fn long_description_unfolds_back_to_original() {
        // Multi-byte characters at every position make a mid-character cut likely if folding
        // counted chars instead of octets.
        let description = "Événement « été » ✓ 日本語 ".repeat(20);
        let ics = build(&input("t", &description), Method::Request);
        let desc_lines: Vec<&str> = ics
            .split("\r\n")
            .skip_while(|l| !l.starts_with("DESCRIPTION:"))
            .take_while(|l| l.starts_with("DESCRIPTION:") || l.starts_with(' '))
            .collect();
        assert!(desc_lines.len() > 5);
        assert!(desc_lines.iter().all(|l| l.len() <= 75));
        parse(&ics, |_, ev| assert_eq!(prop(ev, "DESCRIPTION"), description));
    }

    #[test]
    fn text_escaping_round_trips() {
        let title = "Point d'étape; budget, planning";
        let description = "Ligne 1\nLigne 2; avec, ponctuation\r\nChemin C:\\partage\\docs";
        let ics = build(&input(title, description), Method::Request);
        assert!(ics.contains("SUMMARY:Point d'étape\\; budget\\, planning\r\n"));
        parse(&ics, |_, ev| {
            assert_eq!(prop(ev, "SUMMARY"), title);
            assert_eq!(
                prop(ev, "DESCRIPTION"),
                "Ligne 1\nLigne 2; avec, ponctuation\nChemin C:\\partage\\docs"
            );
        });
    }

    #[test]
    fn hostile_values_cannot_inject_properties() {
        let mut inp = input("x\r\nSTATUS:CANCELLED", "y");
        inp.attendee_name = "Eve\r\nATTENDEE:mailto:evil@example.com";
        inp.attendee_email = "eve@example.com\r\nX-EVIL:1";
        let ics = build(&inp, Method::Request);
        assert_eq!(ics.matches("\r\nSTATUS:").count(), 1);
        assert_eq!(ics.matches("\r\nATTENDEE").count(), 1);
        assert!(!ics.contains("\r\nX-EVIL"));
    }

    #[test]
    fn folding_respects_utf8_boundaries() {
        let mut out = String::new();
        let line = format!("X:{}", "é".repeat(100));
        fold_into(&mut out, &line);
        for physical in out.split("\r\n") {
            assert!(physical.len() <= 75);
        }
        assert_eq!(unfold(&out).trim_end(), line);
    }
}
