//! Plausible's legacy Stats API v1 (`GET /api/v1/stats/...`) answers in v1's shapes with
//! the numbers the test counts by hand from what it sent.

mod common;

use chrono::{Duration as ChronoDuration, SecondsFormat, Utc};
use common::{CHROME_UA, FIREFOX_UA, Server, assert_json_error};
use serde_json::{Value, json};
use std::time::Duration;

const SITE: &str = "v1.example";

#[test]
fn v1_aggregate_timeseries_breakdown_and_realtime() {
    let s = Server::start();
    s.add_site(SITE, "UTC");
    let ingest = s.create_key(SITE, "ingest");
    let stats = s.create_key(SITE, "stats");
    // Three days ago: ann (Chrome, from Google) views / and /pricing; bob (Firefox, direct)
    // views /blog/post and leaves (a bounce); cat (Chrome, direct) views / and signs up.
    let day = (Utc::now() - ChronoDuration::days(3)).date_naive();
    let t0 = day.and_hms_opt(12, 0, 0).expect("noon").and_utc();
    let ev = |name: &str, path: &str, secs: i64, visitor: &str, ua: &str, referrer: &str| {
        json!({"name": name, "url": format!("https://{SITE}{path}"), "referrer": referrer,
               "timestamp": (t0 + ChronoDuration::seconds(secs)).to_rfc3339_opts(SecondsFormat::Secs, true),
               "visitor_id": visitor, "user_agent": ua})
    };
    let body = json!([
        ev(
            "pageview",
            "/",
            0,
            "ann",
            CHROME_UA,
            "https://www.google.com/"
        ),
        ev("pageview", "/pricing", 60, "ann", CHROME_UA, ""),
        ev("pageview", "/blog/post", 10, "bob", FIREFOX_UA, ""),
        ev("pageview", "/", 20, "cat", CHROME_UA, ""),
        ev("Signup", "/", 50, "cat", CHROME_UA, ""),
    ]);
    assert_eq!(s.bulk(&ingest, &body).status().as_u16(), 202);
    s.wait_for_metric(
        &stats,
        SITE,
        &json!("7d"),
        "pageviews",
        4.0,
        Duration::from_secs(30),
    );
    let date = day.format("%Y-%m-%d").to_string();

    // Aggregate: 3 visitors, 4 page views, bounce rate 33 (bob of three visits), duration
    // (60 + 0 + 30) / 3 = 30 s.
    let (status, agg) = s.get_json(&stats,
        &format!(
            "/api/v1/stats/aggregate?site_id={SITE}&period=day&date={date}&metrics=visitors,pageviews,bounce_rate,visit_duration"
        ),
    );
    assert_eq!(status, 200, "{agg}");
    assert_eq!(
        agg,
        json!({"results": {"visitors": {"value": 3}, "pageviews": {"value": 4},
                           "bounce_rate": {"value": 33}, "visit_duration": {"value": 30}}})
    );
    // v1 filters: one browser; a wildcard page; OR between values.
    let visitors = |filters: &str| {
        s.get_json(
            &stats,
            &format!("/api/v1/stats/aggregate?site_id={SITE}&period=7d&filters={filters}"),
        )
        .1["results"]["visitors"]["value"]
            .clone()
    };
    assert_eq!(visitors("visit:browser%3D%3DFirefox"), json!(1));
    assert_eq!(visitors("event:page%3D%3D/blog/**"), json!(1));
    assert_eq!(visitors("event:page%3D%3D/pricing%7C/blog/post"), json!(2));
    assert_eq!(visitors("visit:browser!%3DFirefox"), json!(2));
    assert_eq!(visitors("event:goal%3D%3DSignup"), json!(1));
    // Compared with the period before (empty): +100 %.
    let (_, cmp) = s.get_json(
        &stats,
        &format!(
            "/api/v1/stats/aggregate?site_id={SITE}&period=day&date={date}&compare=previous_period"
        ),
    );
    assert_eq!(
        cmp["results"]["visitors"],
        json!({"value": 3, "change": 100, "comparison_value": 0})
    );

    // Timeseries: every day of the 7 with its visitors (3 on the day, 0 elsewhere).
    let (status, ts) = s.get_json(
        &stats,
        &format!("/api/v1/stats/timeseries?site_id={SITE}&period=7d&metrics=visitors,pageviews"),
    );
    assert_eq!(status, 200, "{ts}");
    let rows = ts["results"].as_array().expect("results");
    assert_eq!(rows.len(), 7, "{ts}");
    let on_day: Vec<&Value> = rows.iter().filter(|r| r["date"] == date.as_str()).collect();
    assert_eq!(
        on_day,
        vec![&json!({"date": date, "visitors": 3, "pageviews": 4})]
    );
    assert_eq!(
        rows.iter()
            .map(|r| r["visitors"].as_i64().unwrap_or(-1))
            .sum::<i64>(),
        3
    );

    // Breakdown: rows keyed by the property's short name; pages by visitors, paged.
    let (status, br) = s.get_json(
        &stats,
        &format!("/api/v1/stats/breakdown?site_id={SITE}&period=7d&property=visit:source"),
    );
    assert_eq!(status, 200, "{br}");
    assert_eq!(
        br,
        json!({"results": [{"source": "Direct / None", "visitors": 2}, {"source": "Google", "visitors": 1}]})
    );
    let (_, pages) = s.get_json(&stats,
        &format!(
            "/api/v1/stats/breakdown?site_id={SITE}&period=7d&property=event:page&metrics=visitors,pageviews&limit=1&page=1"
        ),
    );
    assert_eq!(
        pages,
        json!({"results": [{"page": "/", "visitors": 2, "pageviews": 2}]})
    );

    // Realtime: a bare number, visitors of the last 5 minutes (none of the above).
    let (status, now) = s.get_json(
        &stats,
        &format!("/api/v1/stats/realtime/visitors?site_id={SITE}"),
    );
    assert_eq!((status, now), (200, json!(0)));

    // Errors.
    let r = s.get_as(
        Some(&stats),
        &format!("/api/v1/stats/aggregate?site_id={SITE}&period=fortnight"),
    );
    assert_json_error("an unknown period", r, 400);
    let r = s.get_as(
        Some(&stats),
        &format!("/api/v1/stats/breakdown?site_id={SITE}&period=7d"),
    );
    assert_json_error("a breakdown without property", r, 400);
    let r = s.get_as(None, &format!("/api/v1/stats/aggregate?site_id={SITE}"));
    assert_json_error("no key", r, 401);
    let r = s.get_as(
        Some(&ingest),
        &format!("/api/v1/stats/aggregate?site_id={SITE}"),
    );
    assert_json_error("an ingest key", r, 403);
}
