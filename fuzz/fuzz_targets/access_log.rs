//! One access-log line of `footfall import` (Apache/nginx combined and common, nginx
//! JSON, Caddy JSON) and the rules that pick page views. The parsers live in the binary
//! crate, which needs DuckDB; their file is pure (chrono, serde_json, clap's derive) and
//! is compiled in here by path, unchanged. First byte: the format; the rest: the line
//! (the importer reads lines lossily as UTF-8).
//! Properties: no panic; a parsed line has a status in 100..1000, a method and a target.
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/footfall/src/import/parse.rs"]
mod parse;

use libfuzzer_sys::fuzz_target;
use parse::{Format, Include, is_asset, parse_line, skip_reason, target_path};

const FORMATS: [Format; 4] = [
    Format::Combined,
    Format::Common,
    Format::NginxJson,
    Format::CaddyJson,
];

fuzz_target!(|data: &[u8]| {
    let Some((&f, rest)) = data.split_first() else {
        return;
    };
    let line = String::from_utf8_lossy(rest);
    let format = FORMATS[usize::from(f) % FORMATS.len()];
    let _ = target_path(&line);
    let _ = is_asset(&line);
    let Ok(rec) = parse_line(format, &line) else {
        return;
    };
    assert!((100..1000).contains(&rec.status), "status {}", rec.status);
    assert!(!rec.method.is_empty() && !rec.target.is_empty());
    let path = target_path(&rec.target);
    assert!(rec.target.contains(path));
    let _ = skip_reason(&rec, &Include::default(), |ua| ua.contains("bot"));
    let all = Include {
        non_get: true,
        errors: true,
        redirects: true,
        assets: true,
        bots: true,
    };
    assert_eq!(skip_reason(&rec, &all, |_| true), None);
});
