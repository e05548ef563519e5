//! User agent parse rate on one core: `cargo bench -p footfall-enrich --bench ua`
//! (add `-- --quick` for a shorter run).
//!
//! "realistic mix": the user agents of the 10,000 real access-log lines in
//! ../shared/testdata/access-logs, in their order (558 distinct, repeats as real traffic
//! repeats), through the cached `UaParser::parse`: once from an empty cache, then
//! repeatedly with the cache warm. "cold": every distinct uap-core
//! test_ua.yaml user agent through `parse_uncached` (each one a full regex parse).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use footfall_enrich::hints::ClientHints;
use footfall_enrich::hit::parse_ua;
use footfall_enrich::ua::UaParser;

fn testdata() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/testdata"
    ))
}

fn access_log_uas() -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(testdata().join("access-logs/apache_logs.log")) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| l.rsplit('"').nth(1).map(str::to_string))
        .collect()
}

fn uap_uas() -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(testdata().join("uap-core/test_ua.yaml")) else {
        return Vec::new();
    };
    // Only the strings are needed; a line scan avoids a YAML dependency here.
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("- user_agent_string: "))
        .map(|s| {
            let s = s.trim();
            let unquoted = s
                .strip_prefix('\'')
                .and_then(|s| s.strip_suffix('\''))
                .or_else(|| s.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
                .unwrap_or(s);
            unquoted.replace("''", "'")
        })
        .collect()
}

/// This process's resident set (`VmRSS`), in MiB; 0 where /proc is absent.
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn rate(label: &str, n: usize, f: impl FnOnce()) {
    let t = Instant::now();
    f();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{label}: {n} parses in {:.3} s = {:.0} parses/s",
        secs,
        n as f64 / secs
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 5 } else { 50 };
    let t = Instant::now();
    let parser = UaParser::new();
    println!(
        "UaParser::new (regex compilation): {:.2} s, resident set {:.1} MiB",
        t.elapsed().as_secs_f64(),
        rss_mib()
    );

    let mix = access_log_uas();
    if mix.is_empty() {
        println!("note: access log absent; realistic-mix figure skipped");
    } else {
        // One pass from an empty cache: every distinct UA is parsed once, the rest are
        // cache hits, as in the first minutes of a server's life.
        rate(
            "realistic mix, first pass from an empty cache",
            mix.len(),
            || {
                for ua in &mix {
                    black_box(parser.parse(ua));
                }
            },
        );
        println!("resident set after the first pass: {:.1} MiB", rss_mib());
        rate(
            "realistic mix, cached parse (access-log order)",
            mix.len() * rounds,
            || {
                for _ in 0..rounds {
                    for ua in &mix {
                        black_box(parser.parse(ua));
                    }
                }
            },
        );
        let hints = ClientHints {
            ua: r#""Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99""#.into(),
            platform: r#""Windows""#.into(),
            platform_version: r#""15.0.0""#.into(),
            mobile: "?0".into(),
            ..ClientHints::default()
        };
        rate(
            "realistic mix, cached parse + client hints overlay",
            mix.len() * rounds,
            || {
                for _ in 0..rounds {
                    for ua in &mix {
                        black_box(parse_ua(&parser, ua, &hints, false));
                    }
                }
            },
        );
    }

    let cold = uap_uas();
    if cold.is_empty() {
        println!("note: uap-core test_ua.yaml absent; cold figure skipped");
    } else {
        let cold_rounds = if quick { 1 } else { 3 };
        rate(
            "cold, uncached parse (distinct uap-core UAs)",
            cold.len() * cold_rounds,
            || {
                for _ in 0..cold_rounds {
                    for ua in &cold {
                        black_box(parser.parse_uncached(ua));
                    }
                }
            },
        );
        // The regex engines' per-thread caches fill as new user agents are parsed: this
        // is what a thread that parsed a wide variety of them holds.
        println!("resident set after the cold pass: {:.1} MiB", rss_mib());
    }
}
