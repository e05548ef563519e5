//! `include.comparisons` of the Stats API v2 (Plausible's dashboard asks for it): each row
//! carries the same metrics over the compared range and their change, checked against
//! numbers counted from what the test sent.

mod common;

use common::{CHROME_UA, Server};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const SITE: &str = "compare.test";

/// One visit: a visitor's page views, a minute apart, starting at `day` 10:00 UTC.
struct Visit {
    day: &'static str,
    visitor: &'static str,
    pages: &'static [&'static str],
}

const VISITS: &[Visit] = &[
    // The previous period, 2026-11-01..03.
    Visit {
        day: "2026-11-01",
        visitor: "a",
        pages: &["/"],
    },
    Visit {
        day: "2026-11-01",
        visitor: "b",
        pages: &["/", "/pricing"],
    },
    Visit {
        day: "2026-11-03",
        visitor: "c",
        pages: &["/docs"],
    },
    // The current period, 2026-11-04..06.
    Visit {
        day: "2026-11-04",
        visitor: "d",
        pages: &["/"],
    },
    Visit {
        day: "2026-11-04",
        visitor: "e",
        pages: &["/", "/pricing", "/signup"],
    },
    Visit {
        day: "2026-11-05",
        visitor: "f",
        pages: &["/pricing"],
    },
    Visit {
        day: "2026-11-06",
        visitor: "g",
        pages: &["/"],
    },
    Visit {
        day: "2026-11-06",
        visitor: "h",
        pages: &["/new"],
    },
];

fn in_range(v: &Visit, from: &str, to: &str) -> bool {
    v.day >= from && v.day <= to
}

/// visitors, pageviews and bounce rate of the visits in [from, to], by hand.
fn expected(from: &str, to: &str) -> [f64; 3] {
    let visits: Vec<&Visit> = VISITS.iter().filter(|v| in_range(v, from, to)).collect();
    let visitors: BTreeSet<&str> = visits.iter().map(|v| v.visitor).collect();
    let pageviews: usize = visits.iter().map(|v| v.pages.len()).sum();
    let bounces = visits.iter().filter(|v| v.pages.len() == 1).count();
    let bounce_rate = if visits.is_empty() {
        0.0
    } else {
        (100.0 * bounces as f64 / visits.len() as f64).round()
    };
    [visitors.len() as f64, pageviews as f64, bounce_rate]
}

/// Visitors per page in [from, to], by hand.
fn page_visitors(from: &str, to: &str) -> BTreeMap<&'static str, f64> {
    let mut out: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for v in VISITS.iter().filter(|v| in_range(v, from, to)) {
        for p in v.pages {
            out.entry(p).or_default().insert(v.visitor);
        }
    }
    out.into_iter().map(|(p, v)| (p, v.len() as f64)).collect()
}

fn percent_change(old: f64, new: f64) -> f64 {
    if old == 0.0 {
        if new > 0.0 { 100.0 } else { 0.0 }
    } else {
        ((new - old) / old * 100.0).round()
    }
}

fn setup() -> (Server, String) {
    let s = Server::start();
    s.add_site(SITE, "UTC");
    let ingest = s.create_key(SITE, "ingest");
    let stats = s.create_key(SITE, "stats");
    let mut events = Vec::new();
    for (n, v) in VISITS.iter().enumerate() {
        for (i, page) in v.pages.iter().enumerate() {
            events.push(json!({
                "id": format!("cmp-{n}-{i}"),
                "name": "pageview",
                "url": format!("https://{SITE}{page}"),
                "timestamp": format!("{}T10:{i:02}:00Z", v.day),
                "visitor_id": v.visitor,
                "user_agent": CHROME_UA,
            }));
        }
    }
    let total = events.len() as f64;
    assert_eq!(
        s.bulk(&ingest, &Value::Array(events)).status().as_u16(),
        202
    );
    let all = json!(["2026-11-01", "2026-11-06"]);
    let got = s.wait_for_metric(
        &stats,
        SITE,
        &all,
        "pageviews",
        total,
        Duration::from_secs(30),
    );
    assert_eq!(got, total);
    (s, stats)
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap_or_else(|| panic!("not a number: {x}")))
        .collect()
}

#[test]
fn rows_carry_the_compared_range_and_the_change() {
    let (s, key) = setup();
    let current = json!(["2026-11-04", "2026-11-06"]);

    // The aggregate against the three days before.
    let (status, body) = s.query(
        &key,
        &json!({"site_id": SITE, "metrics": ["visitors", "pageviews", "bounce_rate"],
                "date_range": current, "include": {"comparisons": {"mode": "previous_period"}}}),
    );
    assert_eq!(status, 200, "{body}");
    let row = &body["results"][0];
    let now = expected("2026-11-04", "2026-11-06");
    let before = expected("2026-11-01", "2026-11-03");
    assert_eq!(numbers(&row["metrics"]), now);
    assert_eq!(numbers(&row["comparison"]["metrics"]), before);
    assert_eq!(
        numbers(&row["comparison"]["change"]),
        vec![
            percent_change(before[0], now[0]),
            percent_change(before[1], now[1]),
            now[2] - before[2],
        ]
    );
    assert_eq!(
        body["query"]["comparison_date_range"],
        json!(["2026-11-01T00:00:00Z", "2026-11-03T23:59:59Z"])
    );
    assert_eq!(
        body["query"]["include"]["comparisons"],
        json!({"mode": "previous_period", "match_day_of_week": false})
    );

    // A breakdown: each page against the same page before; a new page had nothing.
    let rows = s.query_ok(
        &key,
        &json!({"site_id": SITE, "metrics": ["visitors"], "date_range": current,
                "dimensions": ["event:page"],
                "include": {"comparisons": {"mode": "previous_period"}}}),
    );
    let now = page_visitors("2026-11-04", "2026-11-06");
    let before = page_visitors("2026-11-01", "2026-11-03");
    assert_eq!(rows.len(), now.len());
    for row in &rows {
        let page = row["dimensions"][0].as_str().expect("page");
        let (new, old) = (now[page], before.get(page).copied().unwrap_or(0.0));
        assert_eq!(numbers(&row["metrics"]), vec![new], "{page}");
        assert_eq!(numbers(&row["comparison"]["metrics"]), vec![old], "{page}");
        assert_eq!(
            numbers(&row["comparison"]["change"]),
            vec![percent_change(old, new)],
            "{page}"
        );
        assert_eq!(row["comparison"]["dimensions"], json!([page]));
    }

    // Days matched by position: the 4th with the 1st, the 5th with the 2nd (no visits).
    let rows = s.query_ok(
        &key,
        &json!({"site_id": SITE, "metrics": ["visitors"], "date_range": current,
                "dimensions": ["time:day"],
                "include": {"comparisons": {"mode": "previous_period"}}}),
    );
    for row in &rows {
        let day = row["dimensions"][0].as_str().expect("day");
        let shifted = match day {
            "2026-11-04" => "2026-11-01",
            "2026-11-05" => "2026-11-02",
            "2026-11-06" => "2026-11-03",
            other => panic!("unexpected bucket {other}"),
        };
        assert_eq!(row["comparison"]["dimensions"], json!([shifted]));
        assert_eq!(
            numbers(&row["comparison"]["metrics"]),
            vec![expected(shifted, shifted)[0]],
            "{day}"
        );
    }

    // A custom range, and year over year (no data a year before).
    let rows = s.query_ok(
        &key,
        &json!({"site_id": SITE, "metrics": ["visitors"], "date_range": current,
                "include": {"comparisons": {"mode": "custom", "date_range": ["2026-11-01", "2026-11-01"]}}}),
    );
    assert_eq!(
        numbers(&rows[0]["comparison"]["metrics"]),
        vec![expected("2026-11-01", "2026-11-01")[0]]
    );
    let rows = s.query_ok(
        &key,
        &json!({"site_id": SITE, "metrics": ["visitors"], "date_range": current,
                "include": {"comparisons": {"mode": "year_over_year"}}}),
    );
    assert_eq!(numbers(&rows[0]["comparison"]["metrics"]), vec![0.0]);
    assert_eq!(numbers(&rows[0]["comparison"]["change"]), vec![100.0]);

    // Without comparisons the rows are as before.
    let rows = s.query_ok(
        &key,
        &json!({"site_id": SITE, "metrics": ["visitors"], "date_range": current}),
    );
    assert!(rows[0].get("comparison").is_none());

    for (comparisons, want) in [
        (
            json!({"mode": "last_month"}),
            "include.comparisons.mode must be",
        ),
        (
            json!({"mode": "custom"}),
            "include.comparisons.date_range is required",
        ),
    ] {
        let (status, body) = s.query(
            &key,
            &json!({"site_id": SITE, "metrics": ["visitors"], "date_range": current,
                    "include": {"comparisons": comparisons}}),
        );
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["code"], "invalid_query");
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains(want)),
            "{body}"
        );
    }
}
