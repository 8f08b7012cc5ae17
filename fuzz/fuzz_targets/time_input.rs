//! Everything a user types on the command line: instants, durations, zones, addresses.
//! First byte picks the zone `parse_time` reads local times in; the rest is the text.
//! None of these may panic, and every duration `parse_duration` accepts must survive
//! `format_duration` → `parse_duration` unchanged.
#![no_main]

use chrono_tz::Tz;
use libfuzzer_sys::fuzz_target;
use notifyctl::input::{format_duration, parse_duration, parse_time, parse_tz, validate_email};

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
});
