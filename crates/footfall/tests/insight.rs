//! The native lists (DESIGN §5): visits, one visit with its events and engagement score,
//! visitors with filters, checked against what the test sent.

mod common;

use chrono::{DateTime, Duration as ChronoDuration, SecondsFormat, Utc};
use common::{CHROME_UA, FIREFOX_UA, Server, assert_json_error};
use serde_json::json;
use std::time::Duration;

const SITE: &str = "insight.example";

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[test]
fn sessions_one_session_and_visitors() {
    let s = Server::start();
    s.add_site(SITE, "UTC");
    let ingest = s.create_key(SITE, "ingest");
    let stats = s.create_key(SITE, "stats");
    // Two hours ago: ann (Chrome) views / and /pricing, engages 30 s scrolling to 80 %,
    // signs up; one hour ago ann again (a second visit, one page); bob (Firefox) one page.
    let t0 = Utc::now() - ChronoDuration::hours(2);
    let t1 = Utc::now() - ChronoDuration::hours(1);
    let ev = |name: &str, path: &str, t: DateTime<Utc>, visitor: &str, ua: &str| {
        json!({"name": name, "url": format!("https://{SITE}{path}"), "timestamp": at(t),
               "visitor_id": visitor, "user_agent": ua})
    };
    let mut engagement = ev(
        "engagement",
        "/pricing",
        t0 + ChronoDuration::seconds(90),
        "ann",
        CHROME_UA,
    );
    engagement["engagement_time"] = json!(30_000);
    engagement["scroll_depth"] = json!(80);
    let mut signup = ev(
        "Signup",
        "/pricing",
        t0 + ChronoDuration::seconds(120),
        "ann",
        CHROME_UA,
    );
    signup["props"] = json!({"plan": "pro"});
    let body = json!([
        ev("pageview", "/", t0, "ann", CHROME_UA),
        ev(
            "pageview",
            "/pricing",
            t0 + ChronoDuration::seconds(60),
            "ann",
            CHROME_UA
        ),
        engagement,
        signup,
        ev("pageview", "/blog", t1, "ann", CHROME_UA),
        ev(
            "pageview",
            "/",
            t1 + ChronoDuration::seconds(5),
            "bob",
            FIREFOX_UA
        ),
    ]);
    assert_eq!(s.bulk(&ingest, &body).status().as_u16(), 202);
    s.wait_for_metric(
        &stats,
        SITE,
        &json!("24h"),
        "visits",
        3.0,
        Duration::from_secs(30),
    );
    let base = format!("/api/v1/sites/{SITE}");

    // The list: newest first; total counts every match, limit and offset page.
    let (status, list) = s.get_json(&stats, &format!("{base}/sessions"));
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["total"], 3, "{list}");
    let entries: Vec<&str> = list["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|v| v["entry_page"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        entries,
        ["/", "/blog", "/"],
        "bob's, ann's second, ann's first"
    );
    let first = &list["sessions"][2];
    assert_eq!(first["pageviews"], 2, "{first}");
    assert_eq!(first["interactive_events"], 1, "{first}");
    assert_eq!(first["bounced"], false, "{first}");
    assert_eq!(first["duration_secs"], 120, "{first}");
    assert_eq!(first["exit_page"], "/pricing", "{first}");
    assert_eq!(first["browser"], "Chrome", "{first}");
    assert_eq!(first["started"], at(t0), "{first}");
    let (_, page) = s.get_json(&stats, &format!("{base}/sessions?limit=1&offset=1"));
    assert_eq!(page["total"], 3);
    assert_eq!(page["sessions"][0]["entry_page"], "/blog", "{page}");

    // Filters: the visitor's own id, a browser, the entry page, a date range.
    let (_, ann) = s.get_json(&stats, &format!("{base}/sessions?visitor_id=ann"));
    assert_eq!(ann["total"], 2, "{ann}");
    let hex = ann["sessions"][0]["visitor"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (_, by_hex) = s.get_json(&stats, &format!("{base}/sessions?visitor={hex}"));
    assert_eq!(by_hex["total"], 2, "{by_hex}");
    let (_, firefox) = s.get_json(&stats, &format!("{base}/sessions?browser=Firefox"));
    assert_eq!(firefox["total"], 1, "{firefox}");
    assert_eq!(firefox["sessions"][0]["bounced"], true, "{firefox}");
    let (_, blog) = s.get_json(&stats, &format!("{base}/sessions?entry_page=/blog"));
    assert_eq!(blog["total"], 1, "{blog}");
    let yesterday = (Utc::now() - ChronoDuration::days(2)).format("%Y-%m-%d");
    let (_, old) = s.get_json(
        &stats,
        &format!("{base}/sessions?date_range={yesterday},{yesterday}"),
    );
    assert_eq!(old["total"], 0, "{old}");

    // One visit: its events in order, with props, and the engagement score:
    // 120 s of 300 -> 16, one page view beyond the first of 4 -> 7.5, one interactive
    // event of 2 -> 10, scroll 80 % of 75 -> 10: 43.5, rounded 44.
    let id = first["session_id"].as_str().expect("session_id");
    let (status, one) = s.get_json(&stats, &format!("{base}/sessions/{id}"));
    assert_eq!(status, 200, "{one}");
    let names: Vec<&str> = one["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["pageview", "pageview", "engagement", "Signup"]);
    assert_eq!(one["events"][2]["engaged_secs"], 30.0, "{one}");
    assert_eq!(one["events"][2]["scroll_depth"], 80, "{one}");
    assert_eq!(one["events"][3]["props"], json!({"plan": "pro"}), "{one}");
    assert_eq!(one["engagement_score"], 44, "{one}");
    assert_eq!(one["visitor"], hex.as_str());

    // Visitors: ann with two visits, three page views, 120 s in all; bob.
    let (status, visitors) = s.get_json(&stats, &format!("{base}/visitors"));
    assert_eq!(status, 200, "{visitors}");
    assert_eq!(visitors["total"], 2, "{visitors}");
    let ann = visitors["visitors"]
        .as_array()
        .expect("visitors")
        .iter()
        .find(|v| v["visitor"] == hex.as_str())
        .cloned()
        .unwrap_or_default();
    assert_eq!(ann["visits"], 2, "{ann}");
    assert_eq!(ann["pageviews"], 3, "{ann}");
    assert_eq!(ann["total_duration_secs"], 120, "{ann}");
    assert_eq!(ann["first_seen"], at(t0), "{ann}");
    assert_eq!(ann["last_seen"], at(t1), "{ann}");
    let (_, one_visitor) = s.get_json(&stats, &format!("{base}/visitors?visitor_id=bob"));
    assert_eq!(one_visitor["total"], 1, "{one_visitor}");
    assert_eq!(one_visitor["visitors"][0]["browser"], "Firefox");

    // Errors: unknown parameter, bad id, unknown session, no key, another site's key.
    let r = s.get_as(Some(&stats), &format!("{base}/sessions?colour=red"));
    assert_json_error("unknown list parameter", r, 400);
    let r = s.get_as(Some(&stats), &format!("{base}/sessions/abc"));
    assert_json_error("non-numeric session id", r, 400);
    let r = s.get_as(Some(&stats), &format!("{base}/sessions/12345"));
    assert_json_error("unknown session", r, 404);
    let r = s.get_as(None, &format!("{base}/visitors"));
    assert_json_error("visitor list without a key", r, 401);
    let r = s.get_as(Some(&ingest), &format!("{base}/visitors"));
    assert_json_error("visitor list with an ingest key", r, 403);
}

#[test]
fn export_gives_every_event_with_its_visit_online_and_offline() {
    let mut s = Server::start();
    s.add_site(SITE, "UTC");
    let ingest = s.create_key(SITE, "ingest");
    let stats = s.create_key(SITE, "stats");
    let t0 = Utc::now() - ChronoDuration::days(3);
    let ev = |name: &str, path: &str, secs: i64| {
        json!({"name": name, "url": format!("https://{SITE}{path}?utm_source=news"),
               "timestamp": at(t0 + ChronoDuration::seconds(secs)),
               "visitor_id": "exp", "user_agent": CHROME_UA})
    };
    let mut signup = ev("Signup", "/a,b", 30);
    signup["props"] = json!({"plan": "pro \"gold\""});
    // A visit 40 days earlier: the default range ("all") spans the empty days between.
    let mut early = ev("pageview", "/early", -40 * 86_400);
    early["visitor_id"] = json!("early");
    let body = json!([
        ev("pageview", "/", 0),
        ev("pageview", "/a,b", 20),
        signup,
        early
    ]);
    assert_eq!(s.bulk(&ingest, &body).status().as_u16(), 202);
    s.wait_for_metric(
        &stats,
        SITE,
        &json!("7d"),
        "events",
        3.0,
        Duration::from_secs(30),
    );

    // Over HTTP, NDJSON: one line per event, in time order, with the visit's attributes.
    let (announced, rows) = s.export_rows(&stats, SITE, "?date_range=7d");
    assert_eq!(announced.as_deref(), Some("3"));
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["pageview", "pageview", "Signup"]);
    assert_eq!(rows[2]["props"], json!({"plan": "pro \"gold\""}));
    assert_eq!(rows[2]["page"], "/a,b");
    assert_eq!(rows[2]["entry_page"], "/");
    assert_eq!(rows[2]["utm_source"], "news");
    assert_eq!(rows[0]["time"], at(t0));
    assert_eq!(rows[0]["browser"], "Chrome");
    // The default range, "all" (from 2000-01-01): every event, the early one first.
    let (announced, rows) = s.export_rows(&stats, SITE, "");
    assert_eq!(announced.as_deref(), Some("4"));
    let pages: Vec<&str> = rows
        .iter()
        .map(|r| r["page"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(pages, ["/early", "/", "/a,b", "/a,b"]);
    // A range without events: nothing.
    let (status, _) = s.get_json(
        &stats,
        &format!("/api/v1/sites/{SITE}/export?date_range=day"),
    );
    assert_eq!(status, 200);
    let r = s.get_as(
        Some(&stats),
        &format!("/api/v1/sites/{SITE}/export?format=xml"),
    );
    assert_json_error("export format xml", r, 400);

    // The CLI, CSV, through the running server and then from the files: the same bytes.
    let dir = tempfile::tempdir().expect("temp dir");
    let online = dir.path().join("online.csv");
    let offline = dir.path().join("offline.csv");
    let export = |s: &Server, path: &std::path::Path| {
        s.cli(&[
            "export",
            "--site",
            SITE,
            "--date-range",
            "7d",
            "--format",
            "csv",
            "--quiet",
            "--output",
            &path.display().to_string(),
        ])
    };
    export(&s, &online);
    s.stop();
    export(&s, &offline);
    let csv = std::fs::read_to_string(&online).expect("online CSV");
    assert_eq!(csv, std::fs::read_to_string(&offline).expect("offline CSV"));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "a header and three rows:\n{csv}");
    assert!(
        lines[0].starts_with("time,name,hostname,page,"),
        "{}",
        lines[0]
    );
    assert!(
        lines[3].contains(",Signup,") && lines[3].contains("\"/a,b\""),
        "{}",
        lines[3]
    );
    assert!(
        lines[3].contains(r#""{""plan"":""pro \""gold\""""}""#),
        "{}",
        lines[3]
    );
}
