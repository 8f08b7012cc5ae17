//! Everything a user types on the command line: instants, durations, zones, addresses,
//! phone numbers, ntfy topics and quiet hours.
//! First byte picks the zone `parse_time` reads local times in; the rest is the text.
//! None of these may panic, and every duration `parse_duration` accepts must survive
//! `format_duration` → `parse_duration` unchanged.
#![no_main]

use chrono_tz::Tz;
use libfuzzer_sys::fuzz_target;
use notifyctl::input::{
    format_duration, parse_duration, parse_ntfy_topic, parse_phone, parse_time, parse_tz,
    validate_email,
};
use notifyctl::quiet_hours::QuietHours;

const ZONES: [Tz; 8] = [
    Tz::UTC,
    Tz::Europe__Paris,
    Tz::America__New_York,
    Tz::Australia__Lord_Howe, // 30-minute DST shift
    Tz::Asia__Kolkata,        // +05:30, no DST
    Tz::Pacific__Chatham,     // +12:45 / +13:45
    Tz::Pacific__Apia,        // skipped a whole day (2011-12-30)
    Tz::America__Santiago,    // DST change at midnight
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(s) = std::str::from_utf8(rest) else {
        return;
    };
    let tz = ZONES[pick as usize % ZONES.len()];

    let _ = parse_time(s, tz);

    if let Ok(d) = parse_duration(s) {
        let text = format_duration(d);
        match parse_duration(&text) {
            Ok(back) => assert_eq!(
                back, d,
                "round trip changed {s:?}: {d:?} -> {text:?} -> {back:?}"
            ),
            Err(e) => panic!("round trip failed for {s:?}: {d:?} -> {text:?} -> Err({e})"),
        }
    }

    let _ = parse_tz(s);
    let _ = validate_email(s);
    let _ = parse_ntfy_topic(s);
    if let Ok(phone) = parse_phone(s) {
        assert_eq!(parse_phone(&phone).ok().as_deref(), Some(phone.as_str()), "{s:?}");
    }
    // Quiet hours that parse end after now, within a day and an hour, in every zone.
    if let Ok(q) = QuietHours::parse(s) {
        let night = parse_time("2030-03-31T00:30:00Z", Tz::UTC).unwrap();
        let hour = parse_duration("1h").unwrap();
        for hours in 0..30 {
            let now = night + hour * hours;
            if let Some(end) = q.until(now, tz) {
                assert!(end > now && end - now <= hour * 25, "{s:?} at {now}");
            }
        }
    }
});
