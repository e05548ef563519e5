//! Retention and GDPR erasure through the API and the CLI (DESIGN §7).

mod common;

use common::{Server, assert_json_error};
use serde_json::{Value, json};
use std::time::Duration;

const SITE: &str = "privacy.example";

fn ev(id: &str, visitor: &str, days_ago: i64) -> Value {
    let ts = chrono::Utc::now() - chrono::Duration::days(days_ago);
    json!({"name": "pageview", "url": format!("https://{SITE}/p"), "id": id,
           "visitor_id": visitor, "timestamp": ts.to_rfc3339(), "user_agent": common::CHROME_UA})
}

#[test]
fn erase_and_prune_delete_exactly_what_they_name() {
    let mut s = Server::start();
    s.add_site(SITE, "UTC");
    let ingest = s.create_key(SITE, "ingest");
    let stats = s.create_key(SITE, "stats");
    // alice: 2 events (1 and 40 days ago); bob: 3 events (2, 50 and 60 days ago).
    let events = json!([
        ev("a1", "alice", 40),
        ev("b1", "bob", 60),
        ev("b2", "bob", 50),
        ev("a2", "alice", 1),
        ev("b3", "bob", 2)
    ]);
    assert_eq!(s.bulk(&ingest, &events).status().as_u16(), 202);
    let all = json!("all");
    assert_eq!(
        s.wait_for_metric(&stats, SITE, &all, "events", 5.0, Duration::from_secs(20)),
        5.0
    );

    // Erasing needs the admin token: a stats key is refused.
    let url = s.url(&format!("/api/v1/sites/{SITE}/visitors/alice"));
    let r = s
        .http
        .delete(&url)
        .bearer_auth(&stats)
        .send()
        .expect("delete");
    assert_json_error("erase with a stats key", r, 403);
    let r = s
        .http
        .delete(&url)
        .bearer_auth(s.admin_token())
        .send()
        .expect("delete");
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().expect("json");
    assert_eq!(body["deleted_events"], 2);
    assert_eq!(
        s.aggregate(&stats, SITE, &all, &["events", "visitors"]),
        vec![3.0, 1.0]
    );

    // A client re-sending the same batch, even after a restart (the de-dup set is
    // rebuilt from the store), does not bring the erased events back.
    s.kill9();
    s.restart();
    assert_eq!(s.bulk(&ingest, &events).status().as_u16(), 202);
    let marker = json!([ev("m1", "carol", 1)]);
    assert_eq!(s.bulk(&ingest, &marker).status().as_u16(), 202);
    assert_eq!(
        s.wait_for_metric(&stats, SITE, &all, "visitors", 2.0, Duration::from_secs(20)),
        2.0
    );
    assert_eq!(
        s.aggregate(&stats, SITE, &all, &["events", "visitors"]),
        vec![4.0, 2.0],
        "bob's three events and carol's marker, nothing of alice's"
    );

    // Retention through the CLI (server running): bob's 50- and 60-day-old events go.
    let out = s.cli(&["prune", "--site", SITE, "--older-than-days", "30"]);
    assert!(out.contains("deleted 2 events"), "{out}");
    assert_eq!(s.aggregate(&stats, SITE, &all, &["events"]), vec![2.0]);

    let r = s
        .http
        .post(s.url(&format!("/api/v1/sites/{SITE}/prune")))
        .bearer_auth(s.admin_token())
        .json(&json!({"older_than_days": 0}))
        .send()
        .expect("prune");
    assert_json_error("prune with 0 days", r, 400);
}

/// The realtime answer once `visitors_last_5_minutes` is `want` (or after 10 s).
fn realtime(s: &Server, stats: &str, want: u64) -> Value {
    let url = s.url(&format!("/api/v1/sites/{SITE}/realtime"));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let body: Value = s
            .http
            .get(&url)
            .bearer_auth(stats)
            .send()
            .expect("realtime")
            .json()
            .expect("json");
        if body["visitors_last_5_minutes"] == want || std::time::Instant::now() > deadline {
            return body;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn current_pages(body: &Value) -> Vec<(String, u64)> {
    body["current_pages"]
        .as_array()
        .expect("current_pages")
        .iter()
        .map(|p| {
            (
                p["page"].as_str().unwrap_or_default().to_string(),
                p["visitors"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

#[test]
fn realtime_lists_current_visitors_and_their_pages() {
    let mut s = Server::start();
    s.add_site(SITE, "UTC");
    let stats = s.create_key(SITE, "stats");
    // Two visitors now (one on /pricing twice, then /), via the Events API.
    for (ip, path) in [
        ("203.0.113.1", "/pricing"),
        ("203.0.113.2", "/pricing"),
        ("203.0.113.1", "/"),
    ] {
        let r = s
            .http
            .post(s.url("/api/event"))
            .header("User-Agent", common::CHROME_UA)
            .header("X-Forwarded-For", ip)
            .body(
                json!({"n": "pageview", "u": format!("https://{SITE}{path}"), "d": SITE})
                    .to_string(),
            )
            .send()
            .expect("event");
        assert_eq!(r.status().as_u16(), 202);
    }
    let want_pages = vec![("/".to_string(), 1), ("/pricing".to_string(), 1)];
    let body = realtime(&s, &stats, 2);
    assert_eq!(body["visitors_last_5_minutes"], 2, "{body}");
    assert_eq!(body["active_sessions"], 2, "{body}");
    assert_eq!(current_pages(&body), want_pages);

    // The live state is in the process; after kill -9 and a restart the store's open
    // visits say who is still here.
    s.wait_for_metric(
        &stats,
        SITE,
        &common::recent_range(),
        "pageviews",
        3.0,
        Duration::from_secs(30),
    );
    s.kill9();
    s.restart();
    let body = realtime(&s, &stats, 2);
    assert_eq!(
        body["visitors_last_5_minutes"], 2,
        "after a restart: {body}"
    );
    assert_eq!(body["active_sessions"], 2, "after a restart: {body}");
    assert_eq!(current_pages(&body), want_pages, "after a restart");
}
