//! The Stats API v2's revenue metrics and empty values through the running server, as
//! Plausible's v2 answers them: `total_revenue` / `average_revenue` as money values or
//! `null` with `meta.metric_warnings` (extra/lib/plausible/stats/goal/revenue.ex,
//! lib/plausible/stats/query_result.ex), a visit without UTM values under "(not set)"
//! (lib/plausible/stats/sql/expression.ex) where v1 leaves it out
//! (lib/plausible/stats/legacy/breakdown.ex).

mod common;

use common::{CHROME_UA, Server, assert_error_body};
use serde_json::{Value, json};

const SITE: &str = "rev.example.com";

fn usd(value: f64, short: &str, long: &str) -> Value {
    json!({"value": value, "currency": "USD", "short": short, "long": long})
}

#[test]
fn revenue_metrics_and_not_set_rows_as_plausible_v2() {
    let s = Server::start();
    s.add_site(SITE, "UTC");
    let ingest = s.create_key(SITE, "ingest");
    let stats = s.create_key(SITE, "stats");
    let at = |h: u32, m: u32| format!("2026-11-01T{h:02}:{m:02}:00Z");
    let event = |id: &str, name: &str, path: &str, t: String, v: &str, revenue: Value| {
        let mut e = json!({"id": id, "name": name, "url": format!("https://{SITE}{path}"),
            "timestamp": t, "visitor_id": v, "user_agent": CHROME_UA});
        if let Some(o) = e.as_object_mut()
            && !revenue.is_null()
        {
            o.insert("revenue".into(), revenue);
        }
        e
    };
    // a: from the newsletter, buys for 10 USD; b: untagged, buys for 20.50 USD (amount
    // as a string); c: untagged, signs up (no revenue) and donates 5 EUR.
    let events = json!([
        event(
            "a1",
            "pageview",
            "/?utm_source=newsletter",
            at(10, 0),
            "a",
            Value::Null
        ),
        event(
            "a2",
            "Purchase",
            "/",
            at(10, 1),
            "a",
            json!({"currency": "USD", "amount": 10})
        ),
        event("b1", "pageview", "/", at(11, 0), "b", Value::Null),
        event(
            "b2",
            "Purchase",
            "/",
            at(11, 1),
            "b",
            json!({"currency": "USD", "amount": "20.5"})
        ),
        event("c1", "pageview", "/pricing", at(12, 0), "c", Value::Null),
        event("c2", "Signup", "/pricing", at(12, 1), "c", Value::Null),
        event(
            "c3",
            "Donate",
            "/pricing",
            at(12, 2),
            "c",
            json!({"currency": "EUR", "amount": 5})
        ),
    ]);
    let range = json!(["2026-11-01", "2026-11-01"]);
    s.bulk_until_stored(&ingest, &stats, SITE, &events, &range, "events", 7.0);
    let query = |extra: Value| {
        let mut q = json!({"site_id": SITE, "date_range": range});
        if let (Some(o), Value::Object(e)) = (q.as_object_mut(), extra) {
            o.extend(e);
        }
        let (status, body) = s.query(&stats, &q);
        assert_eq!(status, 200, "{q}: {body}");
        body
    };
    let both = json!(["total_revenue", "average_revenue"]);

    // One currency among the goals asked: 30.50 in all, 15.25 per purchase.
    let body = query(json!({"metrics": both, "filters": [["is", "event:goal", ["Purchase"]]]}));
    assert_eq!(
        body["results"],
        json!([{"dimensions": [], "metrics": [usd(30.5, "$30.5", "$30.50"), usd(15.25, "$15.2", "$15.25")]}])
    );
    assert_eq!(body["meta"].get("metric_warnings"), None);
    assert_eq!(body["query"]["metrics"], both);

    // Every goal: USD and EUR cannot be added up.
    let body = query(json!({"metrics": both}));
    assert_eq!(
        body["results"],
        json!([{"dimensions": [], "metrics": [null, null]}])
    );
    let mixed = json!({"code": "no_single_revenue_currency",
        "warning": "Revenue metrics are null as there are multiple currencies for the selected event:goals."});
    assert_eq!(
        body["meta"]["metric_warnings"],
        json!({"total_revenue": mixed, "average_revenue": mixed})
    );

    // A goal without revenue.
    let body = query(
        json!({"metrics": ["visitors", "total_revenue"], "filters": [["is", "event:goal", ["Signup"]]]}),
    );
    assert_eq!(
        body["results"],
        json!([{"dimensions": [], "metrics": [1, null]}])
    );
    assert_eq!(
        body["meta"]["metric_warnings"],
        json!({"total_revenue": {"code": "no_revenue_goals_matching",
            "warning": "Revenue metrics are null as there are no matching revenue goals."}})
    );

    // By goal, each in its own currency.
    let body =
        query(json!({"metrics": ["visitors", "total_revenue"], "dimensions": ["event:goal"]}));
    assert_eq!(
        body["results"],
        json!([
            {"dimensions": ["Purchase"], "metrics": [2, usd(30.5, "$30.5", "$30.50")]},
            {"dimensions": ["Donate"], "metrics": [1, {"value": 5.0, "currency": "EUR", "short": "€5.0", "long": "€5.00"}]},
            {"dimensions": ["Signup"], "metrics": [1, null]},
        ])
    );
    assert_eq!(body["meta"].get("metric_warnings"), None);

    // Refused where Plausible refuses: an event metric by a session-only dimension.
    let (status, body) = s.query(
        &stats,
        &json!({"site_id": SITE, "date_range": range, "metrics": ["total_revenue"],
                "dimensions": ["visit:entry_page"]}),
    );
    assert_eq!(status, 400, "{body}");
    let err = assert_error_body("revenue by entry page", &body.to_string());
    assert_eq!(
        err["error"],
        "Event metric(s) `total_revenue` cannot be queried along with session dimension(s) `visit:entry_page`"
    );
    assert_eq!(err["code"], "invalid_query");

    // Visits without a UTM source are a "(not set)" row in v2, which that label filters
    // by; v1 leaves them out. No GeoIP database: every country is unknown, a "" row in v2.
    let body = query(json!({"metrics": ["visitors"], "dimensions": ["visit:utm_source"]}));
    assert_eq!(
        body["results"],
        json!([
            {"dimensions": ["(not set)"], "metrics": [2]},
            {"dimensions": ["newsletter"], "metrics": [1]},
        ])
    );
    let body = query(
        json!({"metrics": ["visitors"], "filters": [["is", "visit:utm_source", ["(not set)"]]]}),
    );
    assert_eq!(body["results"][0]["metrics"], json!([2]));
    let body = query(json!({"metrics": ["visitors"], "dimensions": ["visit:country"]}));
    assert_eq!(
        body["results"],
        json!([{"dimensions": [""], "metrics": [3]}])
    );
    for (property, want) in [
        (
            "visit:utm_source",
            json!([{"utm_source": "newsletter", "visitors": 1}]),
        ),
        ("visit:country", json!([])),
    ] {
        let (status, body) = s.get_json(
            &stats,
            &format!(
                "/api/v1/stats/breakdown?site_id={SITE}&period=custom&date=2026-11-01,2026-11-01&property={property}"
            ),
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["results"], want, "v1 {property}");
    }
}
