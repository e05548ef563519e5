//! A bulk body read as `POST /api/v1/events` reads it, on one core: `cargo bench --workspace
//! --bench bulk_parse` (add `-- --quick` for a shorter run).
//!
//! One body of 10,000 mixed events (the bench's batch: page views and custom events with
//! props, varied user agents, referrers, visitor ids, event ids and timestamps) parsed
//! with `wire::for_each_in_event_array` and each event validated and encoded
//! (`BulkHits::push`), which is all the request thread does per event before the log
//! write. Baseline in the same run, alternating rounds: `serde_json` parsing the same
//! body into a `Vec<Value>` (a JSON tree, no validation, no encoding).

mod common;

use std::hint::black_box;
use std::time::Instant;

use footfall_ingest::BulkHits;
use footfall_ingest::pipeline::HitContext;
use footfall_ingest::wire::for_each_in_event_array;
use footfall_store::{IdentityMode, Site};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const EVENTS: usize = 10_000;

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
];
const PAGES: &[&str] = &[
    "/",
    "/pricing",
    "/blog/why-footfall",
    "/docs/api",
    "/signup",
];
const REFERRERS: &[&str] = &[
    "",
    "https://www.google.com/",
    "https://news.ycombinator.com/item?id=1",
    "https://duckduckgo.com/",
];

fn body(rng: &mut impl Rng) -> String {
    let events: Vec<Value> = (0..EVENTS)
        .map(|i| {
            let page = PAGES[rng.random_range(0..PAGES.len())];
            let secs = rng.random_range(0..30 * 86_400);
            let mut e = json!({
                "name": "pageview",
                "url": format!("https://bench.example{page}?utm_source=news&n={i}"),
                "referrer": REFERRERS[rng.random_range(0..REFERRERS.len())],
                "timestamp": format!("2026-11-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                    1 + secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60, i % 1000),
                "visitor_id": format!("visitor-{}", rng.random_range(0..2_000)),
                "user_agent": USER_AGENTS[rng.random_range(0..USER_AGENTS.len())],
                "ip": format!("198.51.100.{}", rng.random_range(1..255)),
                "id": format!("event-{i}"),
            });
            if i % 10 == 0 {
                e["name"] = json!("Signup");
                e["props"] = json!({"plan": "pro", "seats": i % 7});
            }
            e
        })
        .collect();
    serde_json::to_string(&events).expect("a JSON body")
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 11 } else { 41 };
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let text = body(&mut rng);
    let site = Site {
        id: 1,
        domain: "bench.example".into(),
        timezone: "UTC".into(),
        identity_mode: IdentityMode::Cookieless,
        session_timeout_secs: 1800,
        allowed_hostnames: Vec::new(),
    };
    let ctx = HitContext {
        ip: "127.0.0.1".into(),
        user_agent: "bench".into(),
        now_us: chrono::Utc::now().timestamp_micros(),
        server_side: true,
        hints: Default::default(),
        cdn_country: None,
    };

    let (mut ours, mut tree) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        let mut hits = BulkHits::new(&site, &ctx, text.len());
        let mut refused = 0usize;
        for_each_in_event_array(black_box(&text), |item| match item {
            Ok(hit) => refused += usize::from(hits.push(&hit).is_err()),
            Err(_) => refused += 1,
        })
        .expect("the body parses");
        assert_eq!(refused, 0, "every event is valid");
        black_box(hits);
        ours.push(t.elapsed());

        let t = Instant::now();
        let values: Vec<Value> = serde_json::from_str(black_box(&text)).expect("JSON");
        black_box(values);
        tree.push(t.elapsed());
    }
    let (a, b) = (
        common::median_ns_per(&mut ours, EVENTS),
        common::median_ns_per(&mut tree, EVENTS),
    );
    println!(
        "bulk body: {EVENTS} events, {} bytes ({rounds} rounds, median)\n  \
         parse, validate and encode (acceptance): {a:.0} ns/event\n  \
         serde_json into a Value tree (baseline): {b:.0} ns/event\n  \
         ratio: {:.2}x the baseline's time",
        text.len(),
        a / b
    );
}
