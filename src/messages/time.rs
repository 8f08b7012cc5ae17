//! Human-readable dates, times and durations for message bodies, in the recipient's zone and
//! language. French names come from a hand-written table because chrono's `unstable-locales`
//! feature stays disabled (it pulls in a large locale database for two languages' worth of
//! words); the UTC-to-local conversion, including daylight-saving changes, is left to chrono-tz.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;

use super::Locale;

const FR_WEEKDAYS: [&str; 7] = [
    "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
];
const FR_MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

/// `dimanche 10 mars 2030` / `Sunday, March 10, 2030`.
fn format_date(local: &DateTime<Tz>, locale: Locale) -> String {
    match locale {
        Locale::Fr => {
            let day = local.day();
            // French writes the first of the month as an ordinal ("1er mars").
            let suffix = if day == 1 { "er" } else { "" };
            format!(
                "{} {day}{suffix} {} {}",
                FR_WEEKDAYS[local.weekday().num_days_from_monday() as usize],
                FR_MONTHS[local.month0() as usize],
                local.year()
            )
        }
        Locale::En => local.format("%A, %B %-d, %Y").to_string(),
    }
}

/// `09:30` / `9:30 AM`.
fn format_time(local: &DateTime<Tz>, locale: Locale) -> String {
    match locale {
        Locale::Fr => format!("{:02}:{:02}", local.hour(), local.minute()),
        Locale::En => local.format("%-I:%M %p").to_string(),
    }
}

/// One instant in the recipient's zone, with the zone named so that a reader in another
/// zone (or a forwarded email) is never ambiguous: `dimanche 10 mars 2030, 09:30 (Europe/Paris)`.
pub fn format_datetime(t: DateTime<Utc>, tz: Tz, locale: Locale) -> String {
    let local = t.with_timezone(&tz);
    format!(
        "{}, {} ({})",
        format_date(&local, locale),
        format_time(&local, locale),
        tz.name()
    )
}

/// A start–end interval; the date is written once when both ends fall on the same local day.
pub fn format_range(start: DateTime<Utc>, end: DateTime<Utc>, tz: Tz, locale: Locale) -> String {
    let (s, e) = (start.with_timezone(&tz), end.with_timezone(&tz));
    if s.date_naive() == e.date_naive() {
        format!(
            "{}, {} – {} ({})",
            format_date(&s, locale),
            format_time(&s, locale),
            format_time(&e, locale),
            tz.name()
        )
    } else {
        format!(
            "{}, {} – {}, {} ({})",
            format_date(&s, locale),
            format_time(&s, locale),
            format_date(&e, locale),
            format_time(&e, locale),
            tz.name()
        )
    }
}

const FR_WEEKDAYS_SHORT: [&str; 7] = ["lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim."];

/// A whole local day, for agendas: `lundi 11 mars 2030` / `Monday, March 11, 2030`.
pub fn format_day(date: NaiveDate, locale: Locale) -> String {
    match locale {
        Locale::Fr => {
            let day = date.day();
            let suffix = if day == 1 { "er" } else { "" };
            format!(
                "{} {day}{suffix} {} {}",
                FR_WEEKDAYS[date.weekday().num_days_from_monday() as usize],
                FR_MONTHS[date.month0() as usize],
                date.year()
            )
        }
        Locale::En => date.format("%A, %B %-d, %Y").to_string(),
    }
}

/// The time of day only, in the recipient's zone: `09:30` / `9:30 AM`.
pub fn format_clock(t: DateTime<Utc>, tz: Tz, locale: Locale) -> String {
    format_time(&t.with_timezone(&tz), locale)
}

/// A start for short texts (SMS), in the recipient's zone and without naming it:
/// `lun. 11 mars 09:30` / `Mon Mar 11, 9:30 AM`.
pub fn format_short(t: DateTime<Utc>, tz: Tz, locale: Locale) -> String {
    let local = t.with_timezone(&tz);
    match locale {
        Locale::Fr => format!(
            "{} {} {} {}",
            FR_WEEKDAYS_SHORT[local.weekday().num_days_from_monday() as usize],
            local.day(),
            FR_MONTHS[local.month0() as usize],
            format_time(&local, locale)
        ),
        Locale::En => format!("{}, {}", local.format("%a %b %-d"), format_time(&local, locale)),
    }
}

/// How far away a reminder's event is, as it reads after "commence" / "starts":
/// `dans 30 minutes`, `dans 1 heure 30`, `in 2 hours`. Zero or negative offsets (a reminder sent
/// at or after the start) read `maintenant` / `now` rather than a nonsensical "in 0 minutes".
pub fn format_starts_in(minutes: i64, locale: Locale) -> String {
    if minutes <= 0 {
        return match locale {
            Locale::Fr => "maintenant".to_string(),
            Locale::En => "now".to_string(),
        };
    }
    let prefix = match locale {
        Locale::Fr => "dans",
        Locale::En => "in",
    };
    format!("{prefix} {}", format_duration(minutes, locale))
}

fn plural(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Whole days only from two days up: "dans 24 heures" reads more naturally than "dans 1 jour",
/// and "2 jours 3 heures" is more precision than a reminder needs to spell out.
fn format_duration(minutes: i64, locale: Locale) -> String {
    const DAY: i64 = 24 * 60;
    let (h, m) = (minutes / 60, minutes % 60);
    match locale {
        Locale::Fr => {
            if minutes >= 2 * DAY && minutes % DAY == 0 {
                plural(minutes / DAY, "jour", "jours")
            } else if h == 0 {
                plural(m, "minute", "minutes")
            } else if m == 0 {
                plural(h, "heure", "heures")
            } else {
                format!("{} {m:02}", plural(h, "heure", "heures"))
            }
        }
        Locale::En => {
            if minutes >= 2 * DAY && minutes % DAY == 0 {
                plural(minutes / DAY, "day", "days")
            } else if h == 0 {
                plural(m, "minute", "minutes")
            } else if m == 0 {
                plural(h, "hour", "hours")
            } else {
                format!(
                    "{} {}",
                    plural(h, "hour", "hours"),
                    plural(m, "minute", "minutes")
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    const PARIS: Tz = chrono_tz::Europe::Paris;
    const NEW_YORK: Tz = chrono_tz::America::New_York;

    #[test]
    fn french_and_english_names_and_clocks() {
        // 2030-03-10 is a Sunday; 08:30 UTC is 09:30 in Paris (winter time, UTC+1).
        let t = utc(2030, 3, 10, 8, 30);
        assert_eq!(
            format_datetime(t, PARIS, Locale::Fr),
            "dimanche 10 mars 2030, 09:30 (Europe/Paris)"
        );
        assert_eq!(
            format_datetime(t, PARIS, Locale::En),
            "Sunday, March 10, 2030, 9:30 AM (Europe/Paris)"
        );
        assert_eq!(
            format_datetime(utc(2030, 8, 1, 10, 5), PARIS, Locale::Fr),
            "jeudi 1er août 2030, 12:05 (Europe/Paris)"
        );
        assert_eq!(
            format_datetime(utc(2030, 8, 1, 10, 5), PARIS, Locale::En),
            "Thursday, August 1, 2030, 12:05 PM (Europe/Paris)"
        );
        assert_eq!(
            format_datetime(utc(2030, 12, 31, 23, 0), PARIS, Locale::En),
            "Wednesday, January 1, 2031, 12:00 AM (Europe/Paris)"
        );
    }

    #[test]
    fn range_on_one_day_names_the_date_once() {
        let (s, e) = (utc(2030, 3, 11, 8, 30), utc(2030, 3, 11, 9, 30));
        assert_eq!(
            format_range(s, e, PARIS, Locale::Fr),
            "lundi 11 mars 2030, 09:30 – 10:30 (Europe/Paris)"
        );
        assert_eq!(
            format_range(s, e, PARIS, Locale::En),
            "Monday, March 11, 2030, 9:30 AM – 10:30 AM (Europe/Paris)"
        );
    }

    #[test]
    fn range_across_local_midnight_names_both_dates() {
        // 22:30–23:30 UTC is the same UTC day but crosses midnight in Paris.
        let (s, e) = (utc(2030, 3, 11, 22, 30), utc(2030, 3, 11, 23, 30));
        assert_eq!(
            format_range(s, e, PARIS, Locale::Fr),
            "lundi 11 mars 2030, 23:30 – mardi 12 mars 2030, 00:30 (Europe/Paris)"
        );
        // ... and is a single local day in New York.
        assert_eq!(
            format_range(s, e, NEW_YORK, Locale::En),
            "Monday, March 11, 2030, 6:30 PM – 7:30 PM (America/New_York)"
        );
    }

    #[test]
    fn paris_spring_change() {
        // 2030-03-31: clocks jump from 02:00 CET to 03:00 CEST at 01:00 UTC.
        assert_eq!(
            format_datetime(utc(2030, 3, 31, 0, 30), PARIS, Locale::Fr),
            "dimanche 31 mars 2030, 01:30 (Europe/Paris)"
        );
        assert_eq!(
            format_datetime(utc(2030, 3, 31, 1, 30), PARIS, Locale::Fr),
            "dimanche 31 mars 2030, 03:30 (Europe/Paris)"
        );
        // An hour-long event straddling the change spans two wall-clock hours.
        assert_eq!(
            format_range(
                utc(2030, 3, 31, 0, 30),
                utc(2030, 3, 31, 1, 30),
                PARIS,
                Locale::En
            ),
            "Sunday, March 31, 2030, 1:30 AM – 3:30 AM (Europe/Paris)"
        );
    }

    #[test]
    fn paris_autumn_change() {
        // 2030-10-27: clocks fall back from 03:00 CEST to 02:00 CET at 01:00 UTC.
        assert_eq!(
            format_datetime(utc(2030, 10, 26, 12, 0), PARIS, Locale::Fr),
            "samedi 26 octobre 2030, 14:00 (Europe/Paris)"
        );
        assert_eq!(
            format_datetime(utc(2030, 10, 27, 12, 0), PARIS, Locale::Fr),
            "dimanche 27 octobre 2030, 13:00 (Europe/Paris)"
        );
        // 02:30 happens twice; both UTC instants must map to it.
        assert_eq!(
            format_range(
                utc(2030, 10, 27, 0, 30),
                utc(2030, 10, 27, 1, 30),
                PARIS,
                Locale::Fr
            ),
            "dimanche 27 octobre 2030, 02:30 – 02:30 (Europe/Paris)"
        );
    }

    #[test]
    fn new_york_changes() {
        // 2030-03-10: EST (UTC-5) to EDT (UTC-4) at 07:00 UTC.
        assert_eq!(
            format_datetime(utc(2030, 3, 10, 6, 30), NEW_YORK, Locale::En),
            "Sunday, March 10, 2030, 1:30 AM (America/New_York)"
        );
        assert_eq!(
            format_datetime(utc(2030, 3, 10, 7, 30), NEW_YORK, Locale::En),
            "Sunday, March 10, 2030, 3:30 AM (America/New_York)"
        );
        // 2030-11-03: EDT back to EST at 06:00 UTC; the same UTC hour of day moves by one.
        assert_eq!(
            format_datetime(utc(2030, 11, 2, 14, 0), NEW_YORK, Locale::En),
            "Saturday, November 2, 2030, 10:00 AM (America/New_York)"
        );
        assert_eq!(
            format_datetime(utc(2030, 11, 4, 14, 0), NEW_YORK, Locale::Fr),
            "lundi 4 novembre 2030, 09:00 (America/New_York)"
        );
    }

    #[test]
    fn starts_in_phrases() {
        let fr = |m| format_starts_in(m, Locale::Fr);
        let en = |m| format_starts_in(m, Locale::En);
        assert_eq!(fr(30), "dans 30 minutes");
        assert_eq!(fr(5), "dans 5 minutes");
        assert_eq!(fr(1), "dans 1 minute");
        assert_eq!(fr(60), "dans 1 heure");
        assert_eq!(fr(90), "dans 1 heure 30");
        assert_eq!(fr(125), "dans 2 heures 05");
        assert_eq!(fr(1440), "dans 24 heures");
        assert_eq!(fr(2880), "dans 2 jours");
        assert_eq!(fr(0), "maintenant");
        assert_eq!(en(30), "in 30 minutes");
        assert_eq!(en(60), "in 1 hour");
        assert_eq!(en(90), "in 1 hour 30 minutes");
        assert_eq!(en(120), "in 2 hours");
        assert_eq!(en(-5), "now");
    }
}
