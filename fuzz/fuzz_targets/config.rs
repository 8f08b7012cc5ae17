//! The TOML config file: any text must give Ok or Err, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use notifyctl::config::Config;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::parse(text);
    }
});
