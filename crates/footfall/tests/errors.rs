//! Bad input gets the right status and a JSON `{"error", "code"}` body, and the server
//! keeps serving (DESIGN §5, §7; issue 2 point 8).

mod common;

use common::{CHROME_UA, Server, assert_error_body, assert_json_error, recent_range};
use serde_json::{Value, json};
use std::time::Duration;

const SITE: &str = "errors.example.com";
const OTHER: &str = "other.example.com";

struct Keys {
    ingest: String,
    stats: String,
    other_stats: String,
}

fn setup() -> (Server, Keys) {
    let s = Server::start();
    s.add_site(SITE, "UTC");
    s.add_site(OTHER, "UTC");
    let keys = Keys {
        ingest: s.create_key(SITE, "ingest"),
        stats: s.create_key(SITE, "stats"),
        other_stats: s.create_key(OTHER, "stats"),
    };
    (s, keys)
}

fn post(
    s: &Server,
    path: &str,
    key: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::blocking::Response {
    let len = body.len();
    let mut rb = s
        .http
        .post(s.url(path))
        .header("User-Agent", CHROME_UA)
        .header("Content-Type", content_type)
        .body(body);
    if let Some(k) = key {
        rb = rb.bearer_auth(k);
    }
    rb.send().unwrap_or_else(|e| {
        // Seen when an earlier answer (e.g. a 413 sent before the whole body was read)
        // left a keep-alive connection that the server then closed without saying
        // `Connection: close`.
        panic!("POST {path} ({content_type}, {len} bytes): no HTTP answer ({e:?})")
    })
}

fn still_serving(s: &Server, stats: &str) {
    let r = s.http.get(s.url("/api/health")).send().expect("health");
    assert_eq!(r.status().as_u16(), 200, "health after bad input");
    let body: Value = r.json().unwrap_or(Value::Null);
    assert_eq!(body["status"], json!("ok"), "health body");
    let (status, body) = s.query(
        stats,
        &json!({"site_id": SITE, "metrics": ["visitors", "pageviews"], "date_range": recent_range()}),
    );
    assert_eq!(status, 200, "valid query after bad input: {body}");
    assert!(body["results"].is_array(), "results array: {body}");
}

fn event(path: &str) -> Value {
    json!({"name": "pageview", "url": format!("https://{SITE}{path}"), "domain": SITE})
}

#[test]
fn bad_ingestion_input_gets_the_right_status_and_json_error() {
    let (s, k) = setup();
    let ev = event("/").to_string().into_bytes();

    // Malformed JSON.
    assert_json_error(
        "malformed JSON on /api/event",
        post(
            &s,
            "/api/event",
            None,
            "application/json",
            b"{\"name\": ".to_vec(),
        ),
        400,
    );
    assert_json_error(
        "malformed JSON on bulk",
        post(
            &s,
            "/api/v1/events",
            Some(&k.ingest),
            "application/json",
            b"[{\"name\": ]".to_vec(),
        ),
        400,
    );

    // Wrong types.
    let wrong = json!({"name": {}, "url": format!("https://{SITE}/"), "domain": SITE});
    assert_json_error(
        "\"name\": {} on /api/event",
        post(
            &s,
            "/api/event",
            None,
            "application/json",
            wrong.to_string().into_bytes(),
        ),
        400,
    );
    let wrong = json!({"name": "pageview", "url": 42, "domain": SITE});
    assert_json_error(
        "\"url\": 42 on /api/event",
        post(
            &s,
            "/api/event",
            None,
            "application/json",
            wrong.to_string().into_bytes(),
        ),
        400,
    );

    // Oversize bodies: > 1 MiB single, > 16 MiB bulk.
    let big = json!({"name": "pageview", "url": format!("https://{SITE}/"), "domain": SITE,
                     "props": {"pad": "x".repeat(1024 * 1024 + 100)}});
    assert_json_error(
        "/api/event body over 1 MiB",
        post(
            &s,
            "/api/event",
            None,
            "application/json",
            big.to_string().into_bytes(),
        ),
        413,
    );
    let one = json!({"name": "pageview", "url": format!("https://{SITE}/{}", "p".repeat(1000)),
                     "domain": SITE, "user_agent": CHROME_UA})
    .to_string();
    let n = (17 * 1024 * 1024) / one.len() + 1;
    let mut bulk = String::with_capacity(n * (one.len() + 1) + 2);
    bulk.push('[');
    for i in 0..n {
        if i > 0 {
            bulk.push(',');
        }
        bulk.push_str(&one);
    }
    bulk.push(']');
    assert!(bulk.len() > 16 * 1024 * 1024);
    assert_json_error(
        "bulk body over 16 MiB",
        post(
            &s,
            "/api/v1/events",
            Some(&k.ingest),
            "application/json",
            bulk.into_bytes(),
        ),
        413,
    );

    // Wrong content type.
    assert_json_error(
        "application/xml on /api/event",
        post(&s, "/api/event", None, "application/xml", ev.clone()),
        415,
    );
    assert_json_error(
        "application/xml on bulk",
        post(
            &s,
            "/api/v1/events",
            Some(&k.ingest),
            "application/xml",
            format!("[{}]", event("/")).into_bytes(),
        ),
        415,
    );

    // Unknown site.
    let unknown = json!({"name": "pageview", "url": "https://nobody.example.net/", "domain": "nobody.example.net"});
    assert_json_error(
        "unknown site on /api/event",
        post(
            &s,
            "/api/event",
            None,
            "application/json",
            unknown.to_string().into_bytes(),
        ),
        404,
    );

    // Keys on the bulk API: missing 401, unknown 401, wrong scope 403.
    let arr = format!("[{}]", event("/")).into_bytes();
    assert_json_error(
        "bulk without a key",
        post(&s, "/api/v1/events", None, "application/json", arr.clone()),
        401,
    );
    assert_json_error(
        "bulk with an unknown key",
        post(
            &s,
            "/api/v1/events",
            Some("ff_not_a_real_key_0123456789"),
            "application/json",
            arr.clone(),
        ),
        401,
    );
    assert_json_error(
        "bulk with a stats-scope key",
        post(
            &s,
            "/api/v1/events",
            Some(&k.stats),
            "application/json",
            arr.clone(),
        ),
        403,
    );

    // Keys on the Stats API: missing 401, ingest scope 403, another site's key 403.
    let q = json!({"site_id": SITE, "metrics": ["visitors"], "date_range": "7d"}).to_string();
    assert_json_error(
        "query without a key",
        post(
            &s,
            "/api/v2/query",
            None,
            "application/json",
            q.clone().into_bytes(),
        ),
        401,
    );
    assert_json_error(
        "query with an ingest-scope key",
        post(
            &s,
            "/api/v2/query",
            Some(&k.ingest),
            "application/json",
            q.clone().into_bytes(),
        ),
        403,
    );
    assert_json_error(
        "query on another site's id",
        post(
            &s,
            "/api/v2/query",
            Some(&k.other_stats),
            "application/json",
            q.into_bytes(),
        ),
        403,
    );

    // Errors the framework makes, not a handler, have the same JSON shape.
    let body = assert_json_error(
        "GET on a POST-only endpoint",
        s.http
            .get(s.url("/api/event"))
            .send()
            .expect("GET /api/event"),
        405,
    );
    assert_eq!(body["code"], "method_not_allowed", "{body}");

    // Nothing of the above was stored; the server still works.
    still_serving(&s, &k.stats);
    let got = s.aggregate(&k.stats, SITE, &recent_range(), &["events"]);
    assert_eq!(got, vec![0.0], "rejected input must not be stored");
}

/// The indexes of a bulk answer's `rejected`, sorted; each must come with a message.
fn rejected_indexes(answer: &Value) -> Vec<u64> {
    let rejected = answer["rejected"].as_array().expect("rejected array");
    let mut idx: Vec<u64> = rejected
        .iter()
        .map(|r| {
            assert!(
                r["error"].as_str().is_some_and(|e| !e.trim().is_empty()),
                "rejected[].error is a message: {r}"
            );
            r["index"].as_u64().expect("rejected[].index")
        })
        .collect();
    idx.sort();
    idx
}

/// The site's page views once they reach `want` (or the last count after 30 s).
fn stored_pageviews(s: &Server, k: &Keys, want: f64) -> f64 {
    let range = recent_range();
    s.wait_for_metric(
        &k.stats,
        SITE,
        &range,
        "pageviews",
        want,
        Duration::from_secs(30),
    )
}

#[test]
fn bulk_rejects_bad_events_one_by_one_and_keeps_the_good_ones() {
    let (s, k) = setup();
    let body = json!([
        event("/ok-0"),
        {"name": {}, "url": format!("https://{SITE}/bad-1"), "domain": SITE},
        event("/ok-2"),
        {"name": "pageview", "domain": SITE},
        {"name": "pageview", "url": format!("https://{SITE}/bad-4"), "timestamp": "not a time"},
        event("/ok-5"),
        // A site key files nothing under another site's name ...
        {"name": "pageview", "url": format!("https://{OTHER}/bad-6"), "domain": OTHER},
        // ... but its own domain may be written with `www.` and capitals.
        {"name": "pageview", "url": format!("https://{SITE}/ok-7"), "domain": format!("WWW.{}", SITE.to_uppercase())},
    ]);
    let r = s.bulk(&k.ingest, &body);
    let status = r.status().as_u16();
    let text = r.text().unwrap_or_default();
    assert_eq!(status, 202, "bulk with some bad events: {text}");
    let v: Value = serde_json::from_str(&text).expect("bulk answer is JSON");
    assert_eq!(v["accepted"], json!(4), "accepted count: {v}");
    assert_eq!(
        rejected_indexes(&v),
        vec![1, 3, 4, 6],
        "rejected indexes: {v}"
    );
    assert_eq!(
        stored_pageviews(&s, &k, 4.0),
        4.0,
        "the four valid events are stored"
    );
    let other = s.aggregate(&k.other_stats, OTHER, &recent_range(), &["pageviews"]);
    assert_eq!(other, vec![0.0], "nothing filed under the other site");
    // A body that is no event at all is a bad request, not a batch of one bad event.
    for body in ["5", "\"pageview\"", "null", "true"] {
        let r = post(
            &s,
            "/api/v1/events",
            Some(&k.ingest),
            "application/json",
            body.into(),
        );
        assert_json_error(&format!("bulk body {body}"), r, 400);
    }
    still_serving(&s, &k.stats);
}

/// NDJSON bodies are taken line by line (blank lines skipped, indexes count the event
/// lines), a bad line is rejected alone, and a body of one object is a batch of one.
#[test]
fn bulk_takes_ndjson_line_by_line_and_one_object_as_a_batch() {
    let (s, k) = setup();
    let ndjson = format!(
        "{}\n\n{{\"name\": \n{}\r\n   \n{{\"name\":\"pageview\",\"domain\":\"{SITE}\"}}\n{}\n",
        event("/nd-0"),
        event("/nd-2"),
        event("/nd-4"),
    );
    let r = post(
        &s,
        "/api/v1/events",
        Some(&k.ingest),
        "application/x-ndjson",
        ndjson.into_bytes(),
    );
    assert_eq!(r.status().as_u16(), 202, "NDJSON with bad lines");
    let v: Value = r.json().expect("bulk answer is JSON");
    assert_eq!(v["accepted"], json!(3), "{v}");
    assert_eq!(
        rejected_indexes(&v),
        vec![1, 3],
        "rejected NDJSON lines: {v}"
    );
    let r = post(
        &s,
        "/api/v1/events",
        Some(&k.ingest),
        "application/json",
        event("/one").to_string().into_bytes(),
    );
    assert_eq!(r.status().as_u16(), 202, "one object");
    let v: Value = r.json().expect("bulk answer is JSON");
    assert_eq!(
        (&v["accepted"], &v["rejected"]),
        (&json!(1), &json!([])),
        "{v}"
    );
    assert_eq!(
        stored_pageviews(&s, &k, 4.0),
        4.0,
        "three NDJSON lines and one object stored"
    );
    let r = post(
        &s,
        "/api/v1/events",
        Some(&k.ingest),
        "application/x-ndjson",
        b"\n  \n".to_vec(),
    );
    assert_json_error("blank NDJSON body", r, 400);
}

#[test]
fn stats_api_validation_errors_name_the_bad_part() {
    let (s, k) = setup();
    let base = || json!({"site_id": SITE, "metrics": ["visitors"], "date_range": "7d"});
    let with = |key: &str, v: Value| {
        let mut q = base();
        q[key] = v;
        q
    };
    // (what, query, every one of these must appear in the message, or any of `alt`)
    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "unknown metric",
            with("metrics", json!(["visitor"])),
            vec!["visitor", "visitors"],
        ),
        (
            "unknown dimension",
            with("dimensions", json!(["event:pagee"])),
            vec!["event:pagee"],
        ),
        (
            "bad operator",
            with("filters", json!([["iz", "event:page", ["/"]]])),
            vec!["iz"],
        ),
        (
            "bad filter dimension",
            with("filters", json!([["is", "visit:sauce", ["Google"]]])),
            vec!["visit:sauce"],
        ),
        (
            "bad date_range shorthand",
            with("date_range", json!("7days")),
            vec!["date_range|7days"],
        ),
        (
            "bad date_range array",
            with("date_range", json!(["2024-01-10"])),
            vec!["date_range"],
        ),
        (
            "bad date_range date",
            with("date_range", json!(["2024-02-30", "2024-03-01"])),
            vec!["date_range|2024-02-30"],
        ),
        ("empty metrics", with("metrics", json!([])), vec!["metrics"]),
        (
            "order_by not in query",
            with("order_by", json!([["pageviews", "desc"]])),
            vec!["pageviews", "order_by"],
        ),
        (
            "missing site_id",
            json!({"metrics": ["visitors"], "date_range": "7d"}),
            vec!["site_id"],
        ),
        // Every hour to the year 9999 listed: 70 million labels (it took minutes and held
        // the server's shutdown).
        (
            "too many time labels",
            json!({"site_id": SITE, "metrics": ["visitors"], "dimensions": ["time:hour"],
                   "date_range": ["2026-01-01", "9999-12-31"], "include": {"time_labels": true}}),
            vec!["time:hour buckets", "100000"],
        ),
    ];
    let mut failures = Vec::new();
    for (what, q, needles) in cases {
        let (status, body) = s.query(&k.stats, &q);
        if status != 400 {
            failures.push(format!("{what}: status {status}, expected 400: {body}"));
            continue;
        }
        let text = body.to_string();
        let parsed = assert_error_body(what, &text);
        let msg = parsed["error"].as_str().unwrap_or_default();
        for needle in needles {
            // "a|b": either spelling names the bad part.
            if !needle.split('|').any(|n| msg.contains(n)) {
                failures.push(format!("{what}: message {msg:?} does not name {needle:?}"));
            }
        }
    }
    // Stats API v1 timeseries list every bucket too.
    let (status, body) = s.get_json(
        &k.stats,
        &format!(
            "/api/v1/stats/timeseries?site_id={SITE}&period=custom&date=2026-01-01,9999-12-31"
        ),
    );
    if status != 400
        || !body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("time:day buckets")
    {
        failures.push(format!("v1 timeseries to 9999: status {status}: {body}"));
    }
    // Malformed JSON body.
    let r = s
        .http
        .post(s.url("/api/v2/query"))
        .bearer_auth(&k.stats)
        .header("Content-Type", "application/json")
        .body("{\"site_id\": ")
        .send()
        .expect("query");
    assert_json_error("malformed query JSON", r, 400);

    still_serving(&s, &k.stats);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn stats_api_rate_limit_answers_429_with_retry_after() {
    // 3 requests an hour per key: one every 1,200 s.
    let s = Server::start_with_config("stats_rate_limit = 3\n");
    s.add_site(SITE, "UTC");
    let stats = s.create_key(SITE, "stats");
    let q = json!({"site_id": SITE, "metrics": ["visitors"], "date_range": "7d"}).to_string();
    let query = |key: &str| {
        post(
            &s,
            "/api/v2/query",
            Some(key),
            "application/json",
            q.clone().into_bytes(),
        )
    };
    for i in 0..3 {
        assert_eq!(
            query(&stats).status().as_u16(),
            200,
            "request {i} is allowed"
        );
    }
    let r = query(&stats);
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = assert_json_error("the fourth request in the hour", r, 429);
    assert_eq!(body["code"], "rate_limited", "{body}");
    assert_eq!(
        retry.as_deref(),
        Some("1200"),
        "Retry-After: one request's refill"
    );
    // The realtime endpoint spends from the same allowance; the admin token has none.
    let realtime = s.get_as(Some(&stats), &format!("/api/v1/sites/{SITE}/realtime"));
    assert_eq!(realtime.status().as_u16(), 429);
    for _ in 0..5 {
        assert_eq!(query(s.admin_token().as_str()).status().as_u16(), 200);
    }
    // Another key has its own allowance.
    let other = s.create_key(SITE, "stats");
    assert_eq!(query(&other).status().as_u16(), 200);
}

/// A UTF-8 byte order mark before a JSON body (Windows tools write one) is ignored, as
/// RFC 8259 allows, rather than answered 400 invalid_json.
#[test]
fn a_byte_order_mark_before_json_is_ignored() {
    let (s, k) = setup();
    let with_bom = |v: Value| [b"\xEF\xBB\xBF".as_slice(), v.to_string().as_bytes()].concat();
    let r = post(
        &s,
        "/api/event",
        None,
        "application/json",
        with_bom(event("/bom")),
    );
    assert_eq!(r.status().as_u16(), 202, "{:?}", r.text());
    let q = json!({"site_id": SITE, "metrics": ["pageviews"], "date_range": recent_range()});
    let r = post(
        &s,
        "/api/v2/query",
        Some(&k.stats),
        "application/json",
        with_bom(q),
    );
    assert_eq!(r.status().as_u16(), 200, "{:?}", r.text());
    let r = post(
        &s,
        "/api/v1/events",
        Some(&k.ingest),
        "application/json",
        with_bom(json!([event("/bom-bulk")])),
    );
    assert_eq!(r.status().as_u16(), 202, "{:?}", r.text());
}

/// An admin field of the wrong type is a 400 naming it, not its default: a numeric
/// `password` generated one, a numeric `timezone` made the site UTC.
#[test]
fn admin_fields_of_the_wrong_type_are_refused() {
    let (s, _k) = setup();
    let admin = s.admin_token();
    let cases = [
        (
            "/api/admin/sites",
            json!({"domain": "typed.example", "timezone": 5}),
            "timezone",
        ),
        (
            "/api/admin/keys",
            json!({"site": SITE, "scope": "stats", "name": 5}),
            "name",
        ),
        (
            "/api/admin/users",
            json!({"email": "t@example.com", "password": 1234}),
            "password",
        ),
        (
            "/api/admin/users",
            json!({"email": "u@example.com", "site": 7, "role": "viewer"}),
            "site",
        ),
        (
            &format!("/api/admin/sites/{SITE}/goals"),
            json!({"event": ["Signup"]}),
            "event",
        ),
    ];
    for (path, body, field) in cases {
        let r = post(
            &s,
            path,
            Some(&admin),
            "application/json",
            body.to_string().into(),
        );
        let err = assert_json_error(&format!("POST {path} {body}"), r, 400);
        assert!(
            err["error"].as_str().unwrap_or_default().contains(field),
            "{path}: {err}"
        );
    }
    // Nothing was created by them.
    let (status, sites) = s.get_json(&admin, "/api/admin/sites");
    assert_eq!(status, 200);
    assert!(!sites.to_string().contains("typed.example"), "{sites}");
    let (_, users) = s.get_json(&admin, "/api/admin/users");
    assert!(!users.to_string().contains("t@example.com"), "{users}");
}

/// Every JSON endpoint answers a body of another content type with 415 (DESIGN §7), not
/// only ingestion and the Stats API: admin, sign-in, labels and retention too. Nothing of
/// such a request is done.
#[test]
fn every_json_endpoint_refuses_another_content_type_with_415() {
    let (s, _k) = setup();
    let admin = s.admin_token();
    let refused = |method: reqwest::Method, path: &str, key: Option<&str>, body: Value| {
        let mut rb = s
            .http
            .request(method.clone(), s.url(path))
            .header("Content-Type", "application/xml")
            .body(body.to_string());
        if let Some(k) = key {
            rb = rb.bearer_auth(k);
        }
        let r = rb.send().expect("request");
        let body = assert_json_error(&format!("{method} {path} as application/xml"), r, 415);
        assert_eq!(body["code"], "unsupported_media_type", "{path}: {body}");
    };
    use reqwest::Method;
    refused(
        Method::POST,
        "/api/admin/sites",
        Some(&admin),
        json!({"domain": "xml.example.com"}),
    );
    refused(
        Method::PATCH,
        &format!("/api/admin/sites/{SITE}"),
        Some(&admin),
        json!({"timezone": "Europe/Paris"}),
    );
    refused(
        Method::POST,
        &format!("/api/admin/sites/{SITE}/goals"),
        Some(&admin),
        json!({"event": "Signup"}),
    );
    refused(
        Method::POST,
        "/api/admin/keys",
        Some(&admin),
        json!({"site": SITE, "scope": "stats"}),
    );
    refused(
        Method::POST,
        "/api/admin/users",
        Some(&admin),
        json!({"email": "xml@example.com"}),
    );
    refused(
        Method::POST,
        "/api/auth/login",
        None,
        json!({"email": "xml@example.com", "password": "whatever it is"}),
    );
    refused(
        Method::PUT,
        &format!("/api/v1/sites/{SITE}/labels"),
        Some(&admin),
        json!({"rules": []}),
    );
    refused(
        Method::POST,
        &format!("/api/v1/sites/{SITE}/prune"),
        Some(&admin),
        json!({"older_than_days": 30}),
    );
    refused(
        Method::POST,
        "/api/send",
        None,
        json!({"type": "event", "payload": {"website": SITE, "url": "/"}}),
    );

    // Nothing was done: no site, goal, key or user was made, the timezone is unchanged.
    let r = s.get_as(Some(&admin), "/api/admin/sites");
    let sites: Value = r.json().expect("sites");
    let sites = sites["sites"].as_array().cloned().unwrap_or_default();
    assert!(
        sites.iter().all(|site| site["domain"] != "xml.example.com"),
        "{sites:?}"
    );
    let ours = sites.iter().find(|site| site["domain"] == SITE);
    assert_eq!(ours.map(|site| &site["timezone"]), Some(&json!("UTC")));
    let (_, goals) = s.get_json(&admin, &format!("/api/admin/sites/{SITE}/goals"));
    assert_eq!(goals["goals"], json!([]), "{goals}");
    let (_, users) = s.get_json(&admin, "/api/admin/users");
    assert_eq!(users["users"], json!([]), "{users}");

    // The same bodies as JSON (or with curl's default form type) are fine.
    let r = s
        .http
        .post(s.url("/api/admin/sites"))
        .bearer_auth(&admin)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(json!({"domain": "form.example.com"}).to_string())
        .send()
        .expect("POST /api/admin/sites");
    assert_eq!(r.status().as_u16(), 201, "curl -d: {:?}", r.text());
}

/// The `Authorization` scheme is case-insensitive (RFC 9110 §11.1): `BEARER <key>` is the
/// key, as `Bearer <key>` is; another scheme is no key at all.
#[test]
fn the_bearer_scheme_is_case_insensitive() {
    let (s, k) = setup();
    let path = format!("/api/v1/stats/aggregate?site_id={SITE}&period=day");
    for scheme in ["Bearer", "bearer", "BEARER", "BeArEr"] {
        let r = s
            .http
            .get(s.url(&path))
            .header("Authorization", format!("{scheme} {}", k.stats))
            .send()
            .expect("aggregate");
        assert_eq!(r.status().as_u16(), 200, "{scheme}: {:?}", r.text());
    }
    let r = s
        .http
        .get(s.url(&path))
        .header("Authorization", format!("Basic {}", k.stats))
        .send()
        .expect("aggregate");
    assert_json_error("Basic scheme", r, 401);
}

/// A trailing slash names the same endpoint, as on Plausible (whose router ignores it):
/// `/api/event/` takes hits, `/api/v2/query/` and `/api/v1/stats/aggregate/` answer.
/// Unknown paths stay a JSON 404 with or without it; a wrong method is a JSON 405 with
/// a sentence and `Allow`.
#[test]
fn trailing_slashes_name_the_same_endpoint_and_405_says_what_is_allowed() {
    let (s, k) = setup();
    let r = s.post_event(&event("/slash").to_string(), CHROME_UA, None, "text/plain");
    assert_eq!(r.status().as_u16(), 202, "POST /api/event: {:?}", r.text());
    let r = s
        .http
        .post(s.url("/api/event/"))
        .header("User-Agent", CHROME_UA)
        .header("Content-Type", "text/plain")
        .body(event("/slash").to_string())
        .send()
        .expect("POST /api/event/");
    assert_eq!(r.status().as_u16(), 202, "POST /api/event/: {:?}", r.text());
    let q = json!({"site_id": SITE, "metrics": ["pageviews"], "date_range": recent_range()});
    let want = json!(2);
    let mut got = Value::Null;
    for _ in 0..100 {
        let r = post(
            &s,
            "/api/v2/query/",
            Some(&k.stats),
            "application/json",
            q.to_string().into_bytes(),
        );
        assert_eq!(r.status().as_u16(), 200, "POST /api/v2/query/");
        let body: Value = r.json().expect("query answer");
        got = body["results"][0]["metrics"][0].clone();
        if got == want {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(got, want, "both hits stored");
    let r = s.get_as(
        Some(&k.stats),
        &format!("/api/v1/stats/aggregate/?site_id={SITE}&period=day"),
    );
    assert_eq!(
        r.status().as_u16(),
        200,
        "v1 aggregate with a trailing slash"
    );

    let body = assert_json_error(
        "unknown path with a slash",
        s.get_as(None, "/api/nothing-here/"),
        404,
    );
    assert_eq!(body["code"], "route_not_found", "{body}");
    let r = s
        .http
        .delete(s.url("/api/event/"))
        .send()
        .expect("DELETE /api/event/");
    let allow = r
        .headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = assert_json_error("DELETE /api/event/", r, 405);
    assert_eq!(body["code"], "method_not_allowed", "{body}");
    assert_eq!(
        allow.as_deref(),
        Some("POST"),
        "405 names the allowed method"
    );
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("method")),
        "405 says what is wrong in a sentence: {body}"
    );
}
