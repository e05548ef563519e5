//! DESIGN §7: an event answered 202 survives `kill -9` at any moment, is replayed on start
//! without duplicates, and a re-sent id is never stored twice.

mod common;

use chrono::{Duration as ChronoDuration, SecondsFormat, Utc};
use common::{CHROME_UA, Server, recent_range, site_with_stats_key};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const SITE: &str = "durable.example.com";
const BATCH: usize = 20;

fn batch(n: usize) -> Value {
    let ts = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    Value::Array(
        (0..BATCH)
            .map(|i| {
                json!({
                    "id": format!("dur-{n:05}-{i:02}"),
                    "name": if i % 5 == 4 { "Signup" } else { "pageview" },
                    "url": format!("https://{SITE}/page/{}", i % 7),
                    "domain": SITE,
                    "timestamp": ts,
                    "visitor_id": format!("visitor-{}", (n * 7 + i) % 53),
                    "user_agent": CHROME_UA,
                })
            })
            .collect(),
    )
}

enum Answer {
    /// 202 with the whole batch accepted.
    Acked,
    /// An HTTP answer that is not a full acknowledgement (e.g. 503 backpressure).
    NotAcked,
    /// No answer: connection refused or reset.
    Unreachable,
}

fn answer(r: reqwest::Result<reqwest::blocking::Response>) -> Answer {
    match r {
        Ok(r) if r.status().as_u16() == 202 => {
            let body: Value = r.json().unwrap_or(Value::Null);
            if body["accepted"].as_u64() == Some(BATCH as u64) {
                Answer::Acked
            } else {
                Answer::NotAcked
            }
        }
        Ok(_) => Answer::NotAcked,
        Err(_) => Answer::Unreachable,
    }
}

struct Streamed {
    acked: Vec<usize>,
    failed: Vec<usize>,
    singles_acked: usize,
}

/// Streams bulk batches (and, during the first second, single /api/event hits) until the
/// server stops answering.
fn stream(s: &Server, ingest: &str, singles_done: &AtomicBool) -> Streamed {
    let start = Instant::now();
    let mut out = Streamed {
        acked: Vec::new(),
        failed: Vec::new(),
        singles_acked: 0,
    };
    let mut consecutive_failures = 0;
    let mut n = 0;
    while consecutive_failures < 5 && n < 100_000 {
        match answer(s.try_bulk(ingest, &batch(n))) {
            Answer::Acked => {
                out.acked.push(n);
                consecutive_failures = 0;
            }
            Answer::NotAcked => {
                out.failed.push(n);
                std::thread::sleep(Duration::from_millis(50));
            }
            Answer::Unreachable => {
                out.failed.push(n);
                consecutive_failures += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        n += 1;
        if !singles_done.load(Ordering::SeqCst) {
            if start.elapsed() < Duration::from_millis(1000) {
                let body =
                    json!({"n": "pageview", "u": format!("https://{SITE}/single/{n}"), "d": SITE});
                let xff = format!("198.51.100.{}", n % 250);
                let r = s.post_event(&body.to_string(), CHROME_UA, Some(&xff), "text/plain");
                assert_eq!(
                    r.status().as_u16(),
                    202,
                    "/api/event must be accepted before the kill"
                );
                out.singles_acked += 1;
            } else {
                // Only bulk requests are in flight from now on, so the kill cannot leave a
                // single hit (which has no id to re-send) in an unknown state.
                singles_done.store(true, Ordering::SeqCst);
            }
        }
    }
    out
}

#[test]
fn acknowledged_events_survive_kill_9_exactly_once() {
    let mut s = Server::start();
    s.add_site(SITE, "UTC");
    let ingest = s.create_key(SITE, "ingest");
    let stats = s.create_key(SITE, "stats");
    let pid = s.pid().expect("server pid");

    let singles_done = AtomicBool::new(false);
    let streamed = std::thread::scope(|scope| {
        let h = scope.spawn(|| stream(&s, &ingest, &singles_done));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !singles_done.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(500));
        let killed = std::process::Command::new("kill")
            .arg("-9")
            .arg(pid.to_string())
            .status()
            .expect("run kill -9");
        assert!(killed.success(), "kill -9 {pid}");
        h.join().expect("streamer thread")
    });
    s.kill9(); // reap the killed process

    assert!(
        streamed.acked.len() >= 5,
        "too few batches acknowledged before the kill ({}); log:\n{}",
        streamed.acked.len(),
        s.log()
    );
    assert!(streamed.singles_acked > 0, "some /api/event hits were sent");
    assert!(
        !streamed.failed.is_empty(),
        "the kill must interrupt the stream"
    );

    s.restart();

    // Re-send the last acknowledged batches (must not double) and every batch whose fate
    // is unknown (in flight at the kill, or refused after it).
    let mut resend: BTreeSet<usize> = streamed.acked.iter().rev().take(3).copied().collect();
    resend.extend(streamed.failed.iter().copied());
    for n in &resend {
        let r = s.try_bulk(&ingest, &batch(*n)).expect("bulk after restart");
        let status = r.status().as_u16();
        let body: Value = r.json().unwrap_or(Value::Null);
        assert_eq!(status, 202, "re-sent batch {n}: {body}");
    }

    let batches: BTreeSet<usize> = streamed.acked.iter().copied().chain(resend).collect();
    let want = (batches.len() * BATCH + streamed.singles_acked) as f64;
    let got = s.wait_for_metric(
        &stats,
        SITE,
        &recent_range(),
        "events",
        want,
        Duration::from_secs(60),
    );
    assert_eq!(
        got,
        want,
        "events after kill -9 + restart: {} batches of {BATCH} + {} single hits",
        batches.len(),
        streamed.singles_acked
    );
    // Stable: nothing replayed twice later.
    std::thread::sleep(Duration::from_secs(2));
    let again = s.aggregate(&stats, SITE, &recent_range(), &["events"]);
    assert_eq!(again[0], want, "events changed after settling");

    // A second restart replays nothing again.
    s.restart();
    std::thread::sleep(Duration::from_secs(1));
    let again = s.aggregate(&stats, SITE, &recent_range(), &["events"]);
    assert_eq!(again[0], want, "events changed after a second restart");
}

#[test]
fn a_visit_spanning_a_restart_stays_one_visit() {
    let mut s = Server::start();
    let site = "restart.example.com";
    s.add_site(site, "UTC");
    let ingest = s.create_key(site, "ingest");
    let stats = s.create_key(site, "stats");
    let t0 = Utc::now() - ChronoDuration::minutes(20);
    let ev = |id: &str, path: &str, t: chrono::DateTime<Utc>| {
        json!({"id": id, "name": "pageview", "url": format!("https://{site}{path}"),
               "timestamp": t.to_rfc3339_opts(SecondsFormat::Secs, true),
               "visitor_id": "returning-1", "user_agent": CHROME_UA})
    };
    let r = s.bulk(&ingest, &json!([ev("r-1", "/", t0)]));
    assert_eq!(r.status().as_u16(), 202);
    s.wait_for_metric(
        &stats,
        site,
        &recent_range(),
        "pageviews",
        1.0,
        Duration::from_secs(30),
    );

    s.kill9();
    s.restart();
    let r = s.bulk(
        &ingest,
        &json!([ev("r-2", "/pricing", t0 + ChronoDuration::minutes(10))]),
    );
    assert_eq!(r.status().as_u16(), 202);
    let got = s.wait_for_metric(
        &stats,
        site,
        &recent_range(),
        "pageviews",
        2.0,
        Duration::from_secs(30),
    );
    assert_eq!(got, 2.0);
    let got = s.aggregate(
        &stats,
        site,
        &recent_range(),
        &["visitors", "visits", "visit_duration"],
    );
    assert_eq!(
        got,
        vec![1.0, 1.0, 600.0],
        "two page views 10 minutes apart across a restart are one 600 s visit"
    );
}

/// Bulk hits are answered once they are in the log and processed behind it: a kill -9
/// while accepted hits wait unprocessed must lose none of them and store none twice,
/// including a re-send of the same ids after the restart.
#[test]
fn hits_accepted_but_not_yet_processed_survive_kill_9_once() {
    let mut s = Server::start();
    let site = "backlog.example.com";
    s.add_site(site, "UTC");
    let ingest = s.create_key(site, "ingest");
    let stats = s.create_key(site, "stats");
    let ts = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let body = |from: usize, n: usize| {
        Value::Array(
            (from..from + n)
                .map(|i| {
                    json!({"id": format!("bk-{i}"), "name": "pageview",
                           "url": format!("https://{site}/p/{}", i % 50), "timestamp": ts,
                           "visitor_id": format!("v-{}", i % 997), "user_agent": CHROME_UA})
                })
                .collect(),
        )
    };
    // Large enough that processing takes a while after the 202.
    let (bodies, per_body) = (4, 10_000);
    for b in 0..bodies {
        let r = s.bulk(&ingest, &body(b * per_body, per_body));
        assert_eq!(r.status().as_u16(), 202);
        let reply: Value = r.json().expect("json reply");
        assert_eq!(reply["accepted"], per_body, "{reply}");
    }
    let health = s.health();
    let pending = health["backlog_bytes"].as_u64().unwrap_or(0);
    s.kill9();
    assert!(
        pending > 0,
        "the kill should find accepted hits not yet in the store: {health}"
    );

    s.restart();
    let want = (bodies * per_body) as f64;
    // Re-sending the last body after the restart stores nothing new.
    let r = s.bulk(&ingest, &body((bodies - 1) * per_body, per_body));
    let reply: Value = r.json().expect("json reply");
    assert_eq!(reply["duplicates"], per_body, "{reply}");
    let got = s.wait_for_metric(
        &stats,
        site,
        &recent_range(),
        "pageviews",
        want,
        Duration::from_secs(60),
    );
    assert_eq!(got, want);
    std::thread::sleep(Duration::from_secs(2));
    let m = s.aggregate(&stats, site, &recent_range(), &["pageviews", "visitors"]);
    assert_eq!(
        m,
        vec![want, 997.0],
        "nothing stored twice, every visitor once"
    );
}

/// Once a load is stored and the store writer has had nothing to do for a while, it gives
/// its cached blocks back (`EventSink::release_idle_memory`) and says so in the log; the
/// events of the load all stay queryable.
#[test]
fn a_quiet_store_gives_back_its_cached_blocks_after_a_load() {
    let s = Server::start();
    let site = "load.example.com";
    let stats = site_with_stats_key(&s, site);
    // More than the 100,000 stored events after which a quiet writer gives blocks back.
    s.cli(&[
        "simulate", "--site", site, "--events", "120000", "--days", "1", "--quiet",
    ]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let health = s.health();
        if health["backlog_bytes"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "load not stored: {health}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // `events` leaves out the load's engagement beacons, which the store counts too.
    let stored = s.aggregate(&stats, site, &recent_range(), &["events", "visitors"]);
    assert!(stored[0] >= 60_000.0 && stored[1] > 0.0, "{stored:?}");

    let deadline = Instant::now() + Duration::from_secs(40);
    while !s.log().contains("cached store blocks given back") {
        assert!(
            Instant::now() < deadline,
            "no release logged after the load:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let after = s.aggregate(&stats, site, &recent_range(), &["events", "visitors"]);
    assert_eq!(after, stored);
}
