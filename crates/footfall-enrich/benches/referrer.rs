//! Referrer host lookup rate on one core: `cargo bench -p footfall-enrich --bench
//! referrer` (add `-- --quick` for a shorter run).
//!
//! The hosts: those of referer-parser's test cases and of the referrers in the real access
//! log (../shared/testdata), lowercased and without `www.`, in file order. Each round
//! looks them up with `lookup_host` (the pattern index) and with `lookup_host_by_scan`
//! (every pattern tried: the baseline), alternating so drift hits both alike.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use footfall_enrich::referrer::{Category, lookup_host, lookup_host_by_scan};

fn hosts() -> Vec<String> {
    let testdata = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/testdata"
    ));
    let mut text = std::fs::read_to_string(testdata.join("referer-parser/referer-tests.json"))
        .unwrap_or_default();
    for line in std::fs::read_to_string(testdata.join("access-logs/apache_logs.log"))
        .unwrap_or_default()
        .lines()
    {
        if let Some(referrer) = line.split('"').nth(3) {
            text.push_str(referrer);
            text.push('\n');
        }
    }
    text.split("://")
        .skip(1)
        .filter_map(|rest| rest.split(['/', '?', '"', ':', '\n']).next())
        .map(|host| {
            let host = host.to_ascii_lowercase();
            host.strip_prefix("www.").unwrap_or(&host).to_string()
        })
        .filter(|host| !host.is_empty())
        .collect()
}

fn time(hosts: &[String], lookup: fn(&str) -> Option<(&'static str, Category)>) -> Duration {
    let t = Instant::now();
    for h in hosts {
        let _ = black_box(lookup(black_box(h)));
    }
    t.elapsed()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 5 } else { 25 };
    let hosts = hosts();
    if hosts.is_empty() {
        println!("note: test data absent; nothing to measure");
        return;
    }
    let (mut indexed, mut scan) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        indexed.push(time(&hosts, lookup_host));
        scan.push(time(&hosts, lookup_host_by_scan));
    }
    let per_host = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_nanos() as f64 / hosts.len() as f64
    };
    let (a, b) = (per_host(&mut indexed), per_host(&mut scan));
    println!(
        "referrer hosts: {} ({} rounds, median)\n  lookup_host (index): {a:.0} ns/host\n  \
         lookup_host_by_scan (baseline): {b:.0} ns/host\n  speed-up: {:.2}x",
        hosts.len(),
        rounds,
        b / a
    );
}
