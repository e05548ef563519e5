//! Plausible's legacy Stats API v1 (`GET /api/v1/stats/...`) answers in v1's shapes with
//! the numbers the test counts by hand from what it sent.

mod common;

use chrono::{Duration as ChronoDuration, SecondsFormat, Utc};
use common::{CHROME_UA, FIREFOX_UA, SAFARI_UA, Server, assert_json_error, rounds_to};
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

/// What Plausible's v1 does beyond the v2 translation: `*` in a v1 filter matches across
/// `/`, values are trimmed, `conversion_rate` in breakdowns (by anything but goals and
/// properties) and timeseries is per row (its `group_conversion_rate`), a version
/// breakdown carries its browser/OS, `limit`/`page` outside their ranges and
/// `views_per_visit` in a breakdown are 400, and the compared bounce rate has no change
/// from an empty period while the conversion rate's change is in points.
#[test]
fn v1_follows_plausibles_v1_rules() {
    const SITE: &str = "v1rules.example";
    let s = Server::start();
    s.add_site(SITE, "UTC");
    let ingest = s.create_key(SITE, "ingest");
    let stats = s.create_key(SITE, "stats");
    let day = (Utc::now() - ChronoDuration::days(2)).date_naive();
    let t0 = day.and_hms_opt(10, 0, 0).expect("ten").and_utc();
    // (visitor, referrer, user agent, pages viewed a minute apart, signs up)
    let visits: [(&str, &str, &str, &[&str], bool); 7] = [
        (
            "a",
            "https://www.google.com/",
            CHROME_UA,
            &["/", "/blog/a/b"],
            true,
        ),
        (
            "b",
            "https://www.google.com/",
            FIREFOX_UA,
            &["/blog"],
            false,
        ),
        (
            "c",
            "https://www.google.com/",
            CHROME_UA,
            &["/pricing"],
            false,
        ),
        ("d", "", SAFARI_UA, &["/", "/pricing"], true),
        ("e", "", CHROME_UA, &["/blog/x"], true),
        (
            "f",
            "https://news.ycombinator.com/",
            FIREFOX_UA,
            &["/about"],
            false,
        ),
        (
            "g",
            "https://news.ycombinator.com/",
            SAFARI_UA,
            &["/blog/y/z", "/"],
            true,
        ),
    ];
    let source = |referrer: &str| match referrer {
        "" => "Direct / None",
        r if r.contains("google") => "Google",
        _ => "Hacker News",
    };
    let mut events = Vec::new();
    for (i, (visitor, referrer, ua, pages, signs_up)) in visits.iter().enumerate() {
        let start = t0 + ChronoDuration::minutes(10 * i as i64);
        let at = |m: usize| {
            (start + ChronoDuration::minutes(m as i64)).to_rfc3339_opts(SecondsFormat::Secs, true)
        };
        for (m, page) in pages.iter().enumerate() {
            events.push(
                json!({"name": "pageview", "url": format!("https://{SITE}{page}"),
                "referrer": if m == 0 { *referrer } else { "" }, "timestamp": at(m),
                "visitor_id": visitor, "user_agent": ua}),
            );
        }
        if *signs_up {
            events.push(
                json!({"name": "Signup", "url": format!("https://{SITE}/signup"),
                "timestamp": at(pages.len()), "visitor_id": visitor, "user_agent": ua}),
            );
        }
    }
    let pageviews: usize = visits.iter().map(|v| v.3.len()).sum();
    assert_eq!(s.bulk(&ingest, &json!(events)).status().as_u16(), 202);
    s.wait_for_metric(
        &stats,
        SITE,
        &json!("7d"),
        "pageviews",
        pageviews as f64,
        Duration::from_secs(30),
    );
    let date = day.format("%Y-%m-%d").to_string();
    let v1 = |endpoint: &str, query: &str| {
        s.get_json(
            &stats,
            &format!("/api/v1/stats/{endpoint}?site_id={SITE}&period=7d&{query}"),
        )
    };
    let visitors_where = |pred: &dyn Fn(&str) -> bool| {
        visits
            .iter()
            .filter(|v| v.3.iter().any(|p| pred(p)))
            .count()
    };

    // `*` matches any characters, `/` included; spaces around the operator are ignored.
    let (status, agg) = v1("aggregate", "filters=event:page%3D%3D/blog*");
    assert_eq!(status, 200, "{agg}");
    assert_eq!(
        agg["results"]["visitors"]["value"],
        json!(visitors_where(&|p| p.starts_with("/blog")))
    );
    let (_, agg) = v1("aggregate", "filters=event:page%20%3D%3D%20/pricing%20");
    assert_eq!(
        agg["results"]["visitors"]["value"],
        json!(visitors_where(&|p| p == "/pricing"))
    );

    // Conversion rate per source: the source's converted visitors over its visitors.
    let (status, br) = v1(
        "breakdown",
        "property=visit:source&metrics=conversion_rate,visitors&filters=event:goal%3D%3DSignup",
    );
    assert_eq!(status, 200, "{br}");
    let rows = br["results"].as_array().expect("rows");
    assert_eq!(rows.len(), 3, "{br}");
    let mut last = f64::INFINITY;
    for row in rows {
        let name = row["source"].as_str().expect("source");
        let of_source: Vec<_> = visits.iter().filter(|v| source(v.1) == name).collect();
        let converted = of_source.iter().filter(|v| v.4).count();
        let rate = converted as f64 / of_source.len() as f64 * 100.0;
        assert_eq!(row["visitors"], json!(converted), "{row}");
        assert!(
            rounds_to(row["conversion_rate"].as_f64().expect("rate"), rate, 1),
            "{row}"
        );
        // Ordered by the first metric, the group conversion rate.
        assert!(rate <= last, "{br}");
        last = rate;
    }
    // Paged the same way.
    let (_, second) = v1(
        "breakdown",
        "property=visit:source&metrics=conversion_rate&filters=event:goal%3D%3DSignup&limit=1&page=2",
    );
    assert_eq!(
        second["results"],
        json!([{"source": rows[1]["source"], "conversion_rate": rows[1]["conversion_rate"]}])
    );
    // Timeseries: the day's converted visitors over the day's visitors; other days 0.
    let (status, ts) = v1(
        "timeseries",
        "metrics=conversion_rate&filters=event:goal%3D%3DSignup",
    );
    assert_eq!(status, 200, "{ts}");
    let converted = visits.iter().filter(|v| v.4).count() as f64;
    for row in ts["results"].as_array().expect("rows") {
        let want = if row["date"] == date.as_str() {
            converted / visits.len() as f64 * 100.0
        } else {
            0.0
        };
        assert!(
            rounds_to(row["conversion_rate"].as_f64().expect("rate"), want, 1),
            "{ts}"
        );
    }

    // A browser version breakdown: the v2 rows by (browser, version), with both keys.
    let (status, br) = v1("breakdown", "property=visit:browser_version");
    assert_eq!(status, 200, "{br}");
    let v2 = s.query_ok(
        &stats,
        &json!({"site_id": SITE, "metrics": ["visitors"], "date_range": "7d",
                "dimensions": ["visit:browser", "visit:browser_version"]}),
    );
    let mut want: Vec<Value> = v2
        .iter()
        .map(|r| {
            json!({"browser": r["dimensions"][0], "browser_version": r["dimensions"][1],
                   "visitors": r["metrics"][0]})
        })
        .collect();
    let mut got = br["results"].as_array().expect("rows").clone();
    let by_text = |a: &Value, b: &Value| a.to_string().cmp(&b.to_string());
    want.sort_by(by_text);
    got.sort_by(by_text);
    assert_eq!(got, want);
    assert_eq!(got.len(), 3, "{br}");

    // Compared with the empty week before: no bounce-rate change, conversion rate in points
    // (two requests: a session metric cannot be asked with a goal filter).
    let (_, cmp) = v1("aggregate", "metrics=bounce_rate&compare=previous_period");
    assert_eq!(
        cmp["results"]["bounce_rate"]["change"],
        Value::Null,
        "{cmp}"
    );
    let (_, cmp) = v1(
        "aggregate",
        "metrics=conversion_rate&compare=previous_period&filters=event:goal%3D%3DSignup",
    );
    let rate = &cmp["results"]["conversion_rate"];
    assert_eq!(rate["comparison_value"].as_f64(), Some(0.0), "{cmp}");
    assert_eq!(rate["change"].as_f64(), rate["value"].as_f64(), "{cmp}");

    // Out-of-range paging and a breakdown of views per visit are errors, as in Plausible.
    for query in [
        "property=event:page&limit=0",
        "property=event:page&limit=1001",
        "property=event:page&page=0",
        "property=event:page&metrics=views_per_visit",
    ] {
        let r = s.get_as(
            Some(&stats),
            &format!("/api/v1/stats/breakdown?site_id={SITE}&period=7d&{query}"),
        );
        assert_json_error(query, r, 400);
    }
}

/// A site with the visits of Plausible's own v1 tests, on fixed dates (UTC), so every
/// number below is counted by hand:
/// - 2021-01-01: u1 (Chrome) views `/` at 00:00 and `/hello` at 00:05 (one visit, 300 s);
///   u2 (Firefox, from Google) views `/hello` at 05:00 and leaves (a bounce); u3 (Chrome)
///   views `/goobye` at 00:00 and sends `Signup` (props plan=pro) at 00:01 (60 s, no
///   bounce: the custom event is interactive);
/// - 2020-12-31: u4 (Firefox) views `/` at 10:00 and leaves (a bounce).
///
/// Returns the stats key.
fn plausible_fixture(s: &Server, site: &str) -> String {
    s.add_site(site, "UTC");
    let ingest = s.create_key(site, "ingest");
    let stats = s.create_key(site, "stats");
    let ev = |name: &str, path: &str, at: &str, visitor: &str, ua: &str, referrer: &str| {
        json!({"name": name, "url": format!("https://{site}{path}"), "referrer": referrer,
               "timestamp": at, "visitor_id": visitor, "user_agent": ua})
    };
    let mut signup = ev(
        "Signup",
        "/goobye",
        "2021-01-01T00:01:00Z",
        "u3",
        CHROME_UA,
        "",
    );
    signup["props"] = json!({"plan": "pro"});
    let events = json!([
        ev("pageview", "/", "2021-01-01T00:00:00Z", "u1", CHROME_UA, ""),
        ev(
            "pageview",
            "/hello",
            "2021-01-01T00:05:00Z",
            "u1",
            CHROME_UA,
            ""
        ),
        ev(
            "pageview",
            "/hello",
            "2021-01-01T05:00:00Z",
            "u2",
            FIREFOX_UA,
            "https://www.google.com/"
        ),
        ev(
            "pageview",
            "/goobye",
            "2021-01-01T00:00:00Z",
            "u3",
            CHROME_UA,
            ""
        ),
        signup,
        ev(
            "pageview",
            "/",
            "2020-12-31T10:00:00Z",
            "u4",
            FIREFOX_UA,
            ""
        ),
    ]);
    s.bulk_until_stored(
        &ingest,
        &stats,
        site,
        &events,
        &json!(["2020-12-31", "2021-01-01"]),
        "events",
        6.0,
    );
    stats
}

/// Plausible's v1 metric rules (`validate_metric` in its ExternalStatsController, texts
/// as in its tests): session metrics (`visits`, `bounce_rate`, `visit_duration`,
/// `views_per_visit`) not with an event-only filter or breakdown (`event:name`,
/// `event:goal`, `event:props:*`), `views_per_visit` neither with a page filter nor in a
/// breakdown, `time_on_page` only with a page filter or in a page breakdown and never with
/// a goal or event name filter, `conversion_rate` only with a goal, v2-only metrics
/// unknown, no metric twice. What is allowed answers the hand counts.
#[test]
fn v1_metric_rules_as_plausible() {
    const SITE: &str = "v1metrics.example";
    let s = Server::start();
    let stats = plausible_fixture(&s, SITE);
    let day = format!("site_id={SITE}&period=day&date=2021-01-01");
    let refused = [
        (
            "aggregate",
            "metrics=visitors,visitors",
            "Metrics cannot be queried multiple times.",
        ),
        (
            "aggregate",
            "metrics=pageviews,led_zeppelin",
            "The metric `led_zeppelin` is not recognized. Find valid metrics from the documentation: https://plausible.io/docs/stats-api#metrics",
        ),
        (
            "aggregate",
            "metrics=scroll_depth&filters=event:page%3D%3D/",
            "The metric `scroll_depth` is not recognized. Find valid metrics from the documentation: https://plausible.io/docs/stats-api#metrics",
        ),
        (
            "aggregate",
            "metrics=pageviews,visit_duration&filters=event:name%3D%3DSignup",
            "Session metric `visit_duration` cannot be queried when using a filter on `event:name`.",
        ),
        (
            "aggregate",
            "metrics=bounce_rate&filters=event:goal%3D%3DSignup",
            "Session metric `bounce_rate` cannot be queried when using a filter on `event:goal`.",
        ),
        (
            "timeseries",
            "metrics=visits&filters=event:props:plan%3D%3Dpro",
            "Session metric `visits` cannot be queried when using a filter on `event:props:plan`.",
        ),
        (
            "aggregate",
            "metrics=views_per_visit&filters=event:page%3D%3D/hello",
            "Metric `views_per_visit` cannot be queried with a filter on `event:page`.",
        ),
        (
            "aggregate",
            "metrics=views_per_visit&filters=event:name%3D%3DSignup",
            "Session metric `views_per_visit` cannot be queried when using a filter on `event:name`.",
        ),
        (
            "aggregate",
            "metrics=conversion_rate",
            "Metric `conversion_rate` can only be queried in a goal breakdown or with a goal filter",
        ),
        (
            "aggregate",
            "metrics=time_on_page",
            "Metric `time_on_page` can only be queried in a page breakdown or with a page filter.",
        ),
        (
            "aggregate",
            "metrics=time_on_page&filters=event:page%3D%3D/;event:goal%3D%3DSignup",
            "Metric `time_on_page` cannot be queried when filtering by `event:goal`",
        ),
        (
            "aggregate",
            "metrics=time_on_page&filters=event:page%3D%3D/;event:name%3D%3DSignup",
            "Metric `time_on_page` cannot be queried when filtering by `event:name`",
        ),
        (
            "breakdown",
            "property=event:name&metrics=visitors,bounce_rate",
            "Session metric `bounce_rate` cannot be queried for breakdown by `event:name`.",
        ),
        (
            "breakdown",
            "property=event:props:plan&metrics=visit_duration",
            "Session metric `visit_duration` cannot be queried for breakdown by `event:props:plan`.",
        ),
        (
            "breakdown",
            "property=visit:source&filters=event:goal%3D%3DSignup&metrics=visitors,visits",
            "Session metric `visits` cannot be queried when using a filter on `event:goal`.",
        ),
        (
            "breakdown",
            "property=visit:browser&metrics=views_per_visit",
            "Metric `views_per_visit` is not supported in breakdown queries.",
        ),
        (
            "breakdown",
            "property=visit:browser&metrics=time_on_page",
            "Metric `time_on_page` is not supported in breakdown queries (except `event:page` breakdown)",
        ),
        (
            "breakdown",
            "property=visit:browser&metrics=conversion_rate",
            "Metric `conversion_rate` can only be queried in a goal breakdown or with a goal filter",
        ),
    ];
    for (endpoint, query, message) in refused {
        let r = s.get_as(
            Some(&stats),
            &format!("/api/v1/stats/{endpoint}?{day}&{query}"),
        );
        let body = assert_json_error(query, r, 400);
        assert_eq!(body["error"], message, "{endpoint}?{query}");
    }

    // Allowed: event metrics with an event-only filter (one Signup, by u3)...
    let (status, agg) = s.get_json(
        &stats,
        &format!(
            "/api/v1/stats/aggregate?{day}&metrics=visitors,events&filters=event:name%3D%3DSignup"
        ),
    );
    assert_eq!(status, 200, "{agg}");
    assert_eq!(
        agg,
        json!({"results": {"visitors": {"value": 1}, "events": {"value": 1}}})
    );
    // ...session metrics with a page filter: the visits with a view of /hello are u1's
    // (300 s) and u2's (0 s), so 150 s; the bounce rate is over the visits that entered
    // there: u2's alone, a bounce, 100 (Plausible's test "can filter by page")...
    let (status, agg) = s.get_json(&stats,
        &format!(
            "/api/v1/stats/aggregate?{day}&metrics=visitors,visits,pageviews,bounce_rate,visit_duration&filters=event:page%3D%3D/hello"
        ),
    );
    assert_eq!(status, 200, "{agg}");
    assert_eq!(
        agg,
        json!({"results": {"visitors": {"value": 2}, "visits": {"value": 2},
                           "pageviews": {"value": 2}, "bounce_rate": {"value": 100},
                           "visit_duration": {"value": 150}}})
    );
    // ...time on page with a page filter: u1 went from / to /hello 300 s later...
    let (status, agg) = s.get_json(
        &stats,
        &format!("/api/v1/stats/aggregate?{day}&metrics=time_on_page&filters=event:page%3D%3D/"),
    );
    assert_eq!(status, 200, "{agg}");
    assert_eq!(agg, json!({"results": {"time_on_page": {"value": 300}}}));
    // ...and the conversion rate in a goal breakdown: 1 of the day's 3 visitors, 33.3 %.
    let (status, br) = s.get_json(
        &stats,
        &format!(
            "/api/v1/stats/breakdown?{day}&property=event:goal&metrics=visitors,events,conversion_rate"
        ),
    );
    assert_eq!(status, 200, "{br}");
    assert_eq!(
        br,
        json!({"results": [{"goal": "Signup", "visitors": 1, "events": 1, "conversion_rate": 33.3}]})
    );
}

/// `7d` and `30d` are the 7 (30) days before `date`, without it, as Plausible's v1 since
/// v3.0 (its test "shows last 7 days of visitors": date 2021-01-08 lists 2021-01-01 to
/// 2021-01-07); the comparison is the same number of days before.
#[test]
fn v1_7d_and_30d_end_the_day_before_date() {
    const SITE: &str = "v1days.example";
    let s = Server::start();
    let stats = plausible_fixture(&s, SITE);
    let visitors = |period: &str, date: &str| {
        let (status, agg) = s.get_json(
            &stats,
            &format!("/api/v1/stats/aggregate?site_id={SITE}&period={period}&date={date}"),
        );
        assert_eq!(status, 200, "{agg}");
        agg["results"]["visitors"]["value"].clone()
    };
    // u4 on 2020-12-31; u1, u2, u3 on 2021-01-01.
    assert_eq!(visitors("7d", "2021-01-01"), json!(1), "2020-12-25..31");
    assert_eq!(
        visitors("7d", "2021-01-02"),
        json!(4),
        "2020-12-26..2021-01-01"
    );
    assert_eq!(visitors("7d", "2021-01-08"), json!(3), "2021-01-01..07");
    assert_eq!(visitors("7d", "2021-01-09"), json!(0), "2021-01-02..08");
    assert_eq!(visitors("30d", "2021-01-31"), json!(3), "2021-01-01..30");
    assert_eq!(
        visitors("30d", "2021-01-30"),
        json!(4),
        "2020-12-31..2021-01-29"
    );
    assert_eq!(visitors("30d", "2020-12-31"), json!(0), "2020-12-01..30");

    let (status, ts) = s.get_json(
        &stats,
        &format!("/api/v1/stats/timeseries?site_id={SITE}&period=7d&date=2021-01-08"),
    );
    assert_eq!(status, 200, "{ts}");
    assert_eq!(
        ts,
        json!({"results": [
            {"date": "2021-01-01", "visitors": 3},
            {"date": "2021-01-02", "visitors": 0},
            {"date": "2021-01-03", "visitors": 0},
            {"date": "2021-01-04", "visitors": 0},
            {"date": "2021-01-05", "visitors": 0},
            {"date": "2021-01-06", "visitors": 0},
            {"date": "2021-01-07", "visitors": 0},
        ]})
    );
    let (_, ts) = s.get_json(
        &stats,
        &format!("/api/v1/stats/timeseries?site_id={SITE}&period=30d&date=2021-01-30"),
    );
    let rows = ts["results"].as_array().expect("rows");
    assert_eq!(rows.len(), 30, "{ts}");
    assert_eq!(
        (&rows[0], &rows[1], &rows[29]["date"]),
        (
            &json!({"date": "2020-12-31", "visitors": 1}),
            &json!({"date": "2021-01-01", "visitors": 3}),
            &json!("2021-01-29")
        )
    );

    // The 7 days before 2021-01-01..07 are 2020-12-25..31: u4 alone.
    let (_, cmp) = s.get_json(
        &stats,
        &format!(
            "/api/v1/stats/aggregate?site_id={SITE}&period=7d&date=2021-01-08&metrics=visitors&compare=previous_period"
        ),
    );
    assert_eq!(
        cmp,
        json!({"results": {"visitors": {"value": 3, "comparison_value": 1, "change": 200}}})
    );
}

/// A timeseries bucket where nothing happened holds Plausible's default values
/// (`Metrics.default_value`): `null` visit duration and time on page, `0.0` bounce rate
/// and views per visit, `0` counts (its test "shows hourly data for a certain date", on the
/// same visits).
#[test]
fn v1_timeseries_empty_buckets_as_plausible() {
    const SITE: &str = "v1buckets.example";
    let s = Server::start();
    let stats = plausible_fixture(&s, SITE);
    let (status, ts) = s.get_json(&stats,
        &format!(
            "/api/v1/stats/timeseries?site_id={SITE}&period=day&date=2021-01-01&metrics=visitors,pageviews,visits,visit_duration,bounce_rate,views_per_visit"
        ),
    );
    assert_eq!(status, 200, "{ts}");
    let rows = ts["results"].as_array().expect("rows");
    assert_eq!(rows.len(), 24, "{ts}");
    // 00:00: u1 (/ and /hello, 300 s) and u3 (/goobye and Signup, 60 s): 2 visits, 3 page
    // views, no bounce, (300 + 60) / 2 = 180 s, 3 / 2 = 1.5 views per visit.
    assert_eq!(
        rows[0],
        json!({"date": "2021-01-01 00:00:00", "visitors": 2, "pageviews": 3, "visits": 2,
               "visit_duration": 180, "bounce_rate": 0, "views_per_visit": 1.5})
    );
    // 05:00: u2's bounce.
    assert_eq!(
        rows[5],
        json!({"date": "2021-01-01 05:00:00", "visitors": 1, "pageviews": 1, "visits": 1,
               "visit_duration": 0, "bounce_rate": 100, "views_per_visit": 1.0})
    );
    for (hour, row) in rows.iter().enumerate() {
        if hour == 0 || hour == 5 {
            continue;
        }
        assert_eq!(
            row,
            &json!({"date": format!("2021-01-01 {hour:02}:00:00"), "visitors": 0,
                    "pageviews": 0, "visits": 0, "visit_duration": null,
                    "bounce_rate": 0.0, "views_per_visit": 0.0}),
            "{ts}"
        );
    }
    // Time on page for /: 300 s on 2021-01-01 (u1), none the day before (u4 left).
    let (_, ts) = s.get_json(&stats,
        &format!(
            "/api/v1/stats/timeseries?site_id={SITE}&period=custom&date=2020-12-30,2021-01-01&metrics=time_on_page&filters=event:page%3D%3D/"
        ),
    );
    assert_eq!(
        ts,
        json!({"results": [
            {"date": "2020-12-30", "time_on_page": null},
            {"date": "2020-12-31", "time_on_page": null},
            {"date": "2021-01-01", "time_on_page": 300},
        ]})
    );
}

/// A breakdown is ordered by its first metric other than `time_on_page` (by visitors when
/// there is none), then by the property, and cannot be by `event:hostname`, as Plausible's
/// v1 (`Legacy.Breakdown.metric_to_order_by`, `validate_property`).
#[test]
fn v1_breakdown_order_and_properties_as_plausible() {
    const SITE: &str = "v1order.example";
    let s = Server::start();
    let stats = plausible_fixture(&s, SITE);
    let day = format!("site_id={SITE}&period=day&date=2021-01-01");
    // On 2021-01-01: /hello had 2 visitors (u1, u2), / and /goobye 1 each. Only / has a
    // time on page: u1 went on to /hello 300 s later; the other views were visits' last.
    let (status, br) = s.get_json(
        &stats,
        &format!("/api/v1/stats/breakdown?{day}&property=event:page&metrics=time_on_page"),
    );
    assert_eq!(status, 200, "{br}");
    assert_eq!(
        br,
        json!({"results": [
            {"page": "/hello", "time_on_page": null},
            {"page": "/", "time_on_page": 300},
            {"page": "/goobye", "time_on_page": null},
        ]})
    );
    // With another metric after it, that one orders: page views 2, 1, 1.
    let (_, br) = s.get_json(
        &stats,
        &format!(
            "/api/v1/stats/breakdown?{day}&property=event:page&metrics=time_on_page,pageviews"
        ),
    );
    assert_eq!(
        br,
        json!({"results": [
            {"page": "/hello", "time_on_page": null, "pageviews": 2},
            {"page": "/", "time_on_page": 300, "pageviews": 1},
            {"page": "/goobye", "time_on_page": null, "pageviews": 1},
        ]})
    );

    let r = s.get_as(
        Some(&stats),
        &format!("/api/v1/stats/breakdown?{day}&property=event:hostname"),
    );
    let body = assert_json_error("hostname breakdown", r, 400);
    assert_eq!(
        body["error"],
        "Property 'event:hostname' is currently not supported for breakdowns.  Please provide a valid property for the breakdown endpoint: https://plausible.io/docs/stats-api#properties"
    );
    // Filtering by hostname stays: the 3 visitors of the day.
    let (status, agg) = s.get_json(
        &stats,
        &format!("/api/v1/stats/aggregate?{day}&filters=event:hostname%3D%3D{SITE}"),
    );
    assert_eq!(
        (status, agg),
        (200, json!({"results": {"visitors": {"value": 3}}}))
    );
    let r = s.get_as(Some(&stats), &format!("/api/v1/stats/breakdown?{day}"));
    let body = assert_json_error("no property", r, 400);
    assert_eq!(
        body["error"],
        "The `property` parameter is required. Please provide at least one property to show a breakdown by."
    );
}
