//! One event body of `/api/event` (and each NDJSON line of the bulk API):
//! `wire::parse_event_json`, then the acceptance checks (`pipeline::validate`).
//! Properties: no panic; a body that is a JSON object gives the same event (or an
//! error) as `wire::parse_event` on its JSON tree; accepted events keep the limits.
#![no_main]

use footfall_ingest::pipeline::validate;
use footfall_ingest::wire::{JsonEventError, parse_event, parse_event_json};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse_event_json(text);
    if let Ok((hit, _cookie)) = &parsed {
        assert!(!hit.name.is_empty());
        assert!(hit.name.chars().count() <= 120);
        assert!(hit.url.len() <= 2000);
        assert!(hit.referrer.as_ref().is_none_or(|r| r.len() <= 2000));
        assert!(hit.props.len() <= 30);
        assert!(hit.scroll_depth.is_none_or(|d| d <= 100));
        let _ = validate(hit);
    }
    // The typed parser and the tree parser agree on every JSON object.
    if let Ok(value @ Value::Object(_)) = serde_json::from_str::<Value>(text) {
        let tree = parse_event(&value);
        match (&parsed, &tree) {
            (Ok((a, _)), Ok(b)) => assert_eq!(a, b, "typed and tree parses differ"),
            (Err(JsonEventError::Invalid(_)), Err(_)) => {}
            (a, b) => panic!("typed parse {a:?} but tree parse {b:?}"),
        }
    }
});
