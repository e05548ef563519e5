//! A `User-Agent` header with its `Sec-CH-UA*` client hints: `ua::UaParser` (uap-core
//! regexes plus crawler-user-agents) and `hints::ClientHints` refining the result, as
//! `hit::parse_ua` does for every hit. Input: the user agent, then up to six hint
//! values (in `hints::HEADERS` order), one per line.
//! Properties: no panic; the cached parse equals the uncached one; the device is one of
//! the documented values.
#![no_main]

use footfall_enrich::hints::{ClientHints, HEADERS};
use footfall_enrich::hit::parse_ua;
use footfall_enrich::ua::{UaParser, browser_display_name, device_label};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static PARSER: LazyLock<UaParser> = LazyLock::new(UaParser::new);

const DEVICES: [&str; 8] = [
    "Desktop", "Mobile", "Tablet", "TV", "Console", "Wearable", "Bot", "Unknown",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let ua = lines.next().unwrap_or("");
    let mut values: [Option<&str>; HEADERS.len()] = [None; HEADERS.len()];
    for (slot, line) in values.iter_mut().zip(lines) {
        *slot = (!line.is_empty()).then_some(line);
    }
    let hints = ClientHints::from_values(values);

    let cached = PARSER.parse(ua);
    if ua.len() <= 1024 {
        assert_eq!(
            *cached,
            PARSER.parse_uncached(ua.trim()),
            "cache changes the parse"
        );
    }
    assert!(
        DEVICES.contains(&cached.device.as_str()),
        "device {:?}",
        cached.device
    );
    let _ = device_label(&cached);
    let _ = browser_display_name(&cached.browser);
    if let Some(refined) = hints.apply(&cached) {
        assert!(
            DEVICES.contains(&refined.device.as_str()),
            "device {:?}",
            refined.device
        );
        let _ = device_label(&refined);
    }
    for webdriver in [false, true] {
        let info = parse_ua(&PARSER, ua, &hints, webdriver);
        assert!(
            !webdriver || info.bot.is_some(),
            "webdriver is always a bot"
        );
    }
});
