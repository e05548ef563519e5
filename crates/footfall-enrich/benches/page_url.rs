//! Page URL parse rate on one core: `cargo bench -p footfall-enrich --bench page_url`
//! (add `-- --quick` for a shorter run).
//!
//! The URLs: the 10,000 lines of the real access log in ../shared/testdata/access-logs,
//! each line's request path as a page of `https://www.example.com` and its referrer URL,
//! in log order. Each round parses them with `parse_page_url` (its shortcut for the common
//! shape, the parser for the rest) and with `parse_page_url_with_parser` (the WHATWG
//! parser for all: the baseline), alternating so drift hits both alike.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use footfall_enrich::url::{parse_page_url, parse_page_url_with_parser};

fn page_urls() -> Vec<String> {
    let log = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/testdata/access-logs/apache_logs.log"
    ));
    let Ok(text) = std::fs::read_to_string(log) else {
        return Vec::new();
    };
    let mut urls = Vec::new();
    for line in text.lines() {
        let quoted: Vec<&str> = line.split('"').collect();
        if let Some(path) = quoted.get(1).and_then(|r| r.split(' ').nth(1)) {
            urls.push(format!("https://www.example.com{path}"));
        }
        if let Some(referrer) = quoted.get(3).filter(|r| r.contains("://")) {
            urls.push((*referrer).to_string());
        }
    }
    urls
}

fn time(
    urls: &[String],
    parse: fn(&str, bool) -> Result<footfall_enrich::url::PageUrl, footfall_enrich::url::UrlError>,
) -> Duration {
    let t = Instant::now();
    for u in urls {
        let _ = black_box(parse(black_box(u), false));
    }
    t.elapsed()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 5 } else { 25 };
    let urls = page_urls();
    if urls.is_empty() {
        println!("note: access log absent; nothing to measure");
        return;
    }
    let (mut ours, mut parser) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        ours.push(time(&urls, parse_page_url));
        parser.push(time(&urls, parse_page_url_with_parser));
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (ours, parser) = (median(&mut ours), median(&mut parser));
    let rate = |d: Duration| urls.len() as f64 / d.as_secs_f64();
    println!(
        "{} page URLs per round, median of {rounds} rounds:",
        urls.len()
    );
    println!(
        "parse_page_url (shortcut for the common shape): {:.0} URLs/s ({:.0} ns each)",
        rate(ours),
        ours.as_nanos() as f64 / urls.len() as f64
    );
    println!(
        "parse_page_url_with_parser (baseline, WHATWG parser for all): {:.0} URLs/s ({:.0} ns each)",
        rate(parser),
        parser.as_nanos() as f64 / urls.len() as f64
    );
    println!(
        "ratio: {:.2}x the baseline's rate",
        parser.as_secs_f64() / ours.as_secs_f64()
    );
}
