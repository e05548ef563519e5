//! A body of the bulk Events API (`POST /api/v1/events`): a JSON array read in one pass
//! (`wire::parse_event_array`) or NDJSON, one `parse_event_json` per line, as
//! footfall-server's `routes/bulk.rs::parse_body` splits it (private there, and that
//! crate needs DuckDB, so the split is repeated here).
//! Properties: no panic; an array that parses gives one result per element, each the
//! same as `wire::parse_event` on that element's JSON tree.
#![no_main]

use footfall_ingest::pipeline::validate;
use footfall_ingest::wire::{parse_event, parse_event_array, parse_event_json};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let Ok(items) = parse_event_array(trimmed) else {
            return;
        };
        let tree: Vec<Value> =
            serde_json::from_str(trimmed).expect("an array parse_event_array read is JSON");
        assert_eq!(items.len(), tree.len());
        for (item, value) in items.iter().zip(&tree) {
            match (item, parse_event(value)) {
                (Ok(a), Ok(b)) => assert_eq!(a, &b),
                (Err(_), Err(_)) => {}
                (a, b) => panic!("array element {a:?} but tree parse {b:?}"),
            }
            if let Ok(hit) = item {
                let _ = validate(hit);
            }
        }
        return;
    }
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Ok((hit, _)) = parse_event_json(line) {
            let _ = validate(&hit);
        }
    }
});
