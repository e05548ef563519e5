//! Other trackers' endpoints (DESIGN §5): the seeds' `/track/visitor` and
//! `/api/analytics/track` (cookie mode), and Umami's `/api/send` and `/api/batch`.

mod common;

use common::{
    CHROME_UA, FIREFOX_UA, Server, assert_json_error, dimension_values, recent_range,
    site_with_stats_key,
};
use reqwest::blocking::Response;
use serde_json::{Value, json};
use std::time::Duration;

fn post(s: &Server, path: &str, ua: &str, headers: &[(&str, &str)], body: &Value) -> Response {
    let mut rb = s
        .http
        .post(s.url(path))
        .header("User-Agent", ua)
        .header("Content-Type", "application/json")
        .body(body.to_string());
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    rb.send().unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

fn ok_json(what: &str, r: Response) -> (Value, Vec<String>, String) {
    let status = r.status().as_u16();
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect();
    let dropped = r
        .headers()
        .get("x-footfall-dropped")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = r.text().unwrap_or_default();
    assert_eq!(status, 200, "{what}: {text}");
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: {e}: {text}"));
    (body, cookies, dropped)
}

fn is_hex_id(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[test]
fn track_visitor_with_an_api_key() {
    let s = Server::start();
    let stats = site_with_stats_key(&s, "seed.test");
    let ingest = s.create_key("seed.test", "ingest");
    s.add_site("elsewhere.test", "UTC");
    let now_ms = chrono::Utc::now().timestamp_millis();
    let body = |path: &str, ts: i64| {
        json!({"event": "pageview", "website": "seed.test",
               "visitor": {"visitorId": "visitor-42", "url": format!("https://seed.test{path}"), "timestamp": ts}})
    };

    let (first, _, _) = ok_json(
        "X-API-Key",
        post(
            &s,
            "/track/visitor",
            CHROME_UA,
            &[("X-API-Key", &ingest)],
            &body("/pricing", now_ms - 60_000),
        ),
    );
    assert_eq!(first["success"], true);
    assert!(is_hex_id(&first["sessionId"]), "{first}");
    let bearer = format!("Bearer {ingest}");
    let (second, _, _) = ok_json(
        "Bearer",
        post(
            &s,
            "/track/visitor",
            FIREFOX_UA,
            &[("Authorization", &bearer)],
            // ISO time, relative URL, no website: the key names the site.
            &json!({"event": "Signup", "visitor": {"visitorId": "visitor-42", "url": "/signup",
                    "timestamp": chrono::Utc::now().to_rfc3339()}, "props": {"plan": "pro"}}),
        ),
    );
    assert_eq!(
        second["sessionId"], first["sessionId"],
        "the visitor id given keeps one visit across user agents"
    );
    let (bot, _, dropped) = ok_json(
        "bot",
        post(
            &s,
            "/track/visitor",
            "curl/8.5.0",
            &[("X-API-Key", &ingest)],
            &body("/", now_ms),
        ),
    );
    assert_eq!(
        (bot["success"].clone(), bot["sessionId"].clone()),
        (json!(true), Value::Null)
    );
    assert_eq!(dropped, "bot");

    assert_json_error(
        "no key",
        post(&s, "/track/visitor", CHROME_UA, &[], &body("/", now_ms)),
        401,
    );
    assert_json_error(
        "stats key",
        post(
            &s,
            "/track/visitor",
            CHROME_UA,
            &[("X-API-Key", &stats)],
            &body("/", now_ms),
        ),
        403,
    );
    let mut other = body("/", now_ms);
    other["website"] = json!("elsewhere.test");
    assert_json_error(
        "another site",
        post(
            &s,
            "/track/visitor",
            CHROME_UA,
            &[("X-API-Key", &ingest)],
            &other,
        ),
        403,
    );
    assert_json_error(
        "no visitor",
        post(
            &s,
            "/track/visitor",
            CHROME_UA,
            &[("X-API-Key", &ingest)],
            &json!({"event": "pageview"}),
        ),
        400,
    );

    let range = recent_range();
    s.wait_for_metric(
        &stats,
        "seed.test",
        &range,
        "events",
        2.0,
        Duration::from_secs(10),
    );
    assert_eq!(
        s.aggregate(
            &stats,
            "seed.test",
            &range,
            &["visitors", "visits", "pageviews", "events"]
        ),
        vec![1.0, 1.0, 1.0, 2.0]
    );
    let pages = s.query_ok(
        &stats,
        &json!({"site_id": "seed.test", "metrics": ["events"], "date_range": range, "dimensions": ["event:page"],
                "order_by": [["event:page", "asc"]]}),
    );
    let pages: Vec<Vec<String>> = pages.iter().map(dimension_values).collect();
    assert_eq!(pages, vec![vec!["/pricing"], vec!["/signup"]]);
}

/// The value of `name` among Set-Cookie headers, with its attributes.
fn cookie<'a>(set: &'a [String], name: &str) -> Option<(&'a str, &'a str)> {
    set.iter().find_map(|c| {
        let (pair, attrs) = c.split_once(';')?;
        let (k, v) = pair.split_once('=')?;
        (k == name).then_some((v, attrs.trim()))
    })
}

#[test]
fn analytics_track_sets_visitor_and_session_cookies() {
    let s = Server::start();
    let stats = site_with_stats_key(&s, "spa.test");
    let origin = [("Origin", "https://spa.test")];

    // A new visitor: both cookies.
    let (new, set, _) = ok_json(
        "new visitor",
        post(
            &s,
            "/api/analytics/track",
            CHROME_UA,
            &origin,
            &json!({"eventType": "pageview", "path": "/"}),
        ),
    );
    assert_eq!(new["success"], true);
    let (vid, vid_attrs) = cookie(&set, "ff_vid").expect("ff_vid set");
    let (sid, sid_attrs) = cookie(&set, "ff_sid").expect("ff_sid set");
    assert_eq!(
        vid_attrs,
        "Max-Age=31536000; Path=/; HttpOnly; Secure; SameSite=Lax"
    );
    assert_eq!(
        sid_attrs,
        "Max-Age=1800; Path=/; HttpOnly; Secure; SameSite=Lax"
    );
    assert_eq!(new["sessionId"], json!(sid));

    // Within the session: ff_sid refreshed (same visit), ff_vid left alone.
    let both = format!("ff_vid={vid}; ff_sid={sid}");
    let (within, set2, _) = ok_json(
        "within the session",
        post(
            &s,
            "/api/analytics/track",
            FIREFOX_UA,
            &[("Origin", "https://spa.test"), ("Cookie", &both)],
            &json!({"eventType": "page_view", "path": "/settings"}),
        ),
    );
    assert_eq!(cookie(&set2, "ff_vid"), None);
    assert_eq!(cookie(&set2, "ff_sid"), Some((sid, sid_attrs)));
    assert_eq!(within["sessionId"], json!(sid));

    // A returning visitor whose session cookie expired: a new visit, a new ff_sid.
    let only_vid = format!("ff_vid={vid}");
    let (back, set3, _) = ok_json(
        "returning visitor",
        post(
            &s,
            "/api/analytics/track",
            CHROME_UA,
            &[("Cookie", &only_vid)],
            // No Origin: the site comes from `domain`.
            &json!({"eventType": "pageview", "path": "/", "domain": "spa.test"}),
        ),
    );
    assert_eq!(cookie(&set3, "ff_vid"), None);
    let (sid3, _) = cookie(&set3, "ff_sid").expect("new ff_sid");
    assert_ne!(sid3, sid);
    assert_eq!(back["sessionId"], json!(sid3));
    let third = format!("ff_vid={vid}; ff_sid={sid3}");
    ok_json(
        "custom event",
        post(
            &s,
            "/api/analytics/track",
            CHROME_UA,
            &[("Referer", "https://spa.test/pricing"), ("Cookie", &third)],
            &json!({"eventType": "Upgrade", "path": "/pricing", "properties": {"plan": "team"}}),
        ),
    );

    assert_json_error(
        "unknown host",
        post(
            &s,
            "/api/analytics/track",
            CHROME_UA,
            &[("Origin", "https://nobody.test")],
            &json!({"eventType": "pageview", "path": "/"}),
        ),
        404,
    );
    assert_json_error(
        "no path",
        post(
            &s,
            "/api/analytics/track",
            CHROME_UA,
            &origin,
            &json!({"eventType": "pageview"}),
        ),
        400,
    );

    let range = recent_range();
    s.wait_for_metric(
        &stats,
        "spa.test",
        &range,
        "events",
        4.0,
        Duration::from_secs(10),
    );
    // One visitor across two user agents (the cookie), two visits (the session cookie).
    assert_eq!(
        s.aggregate(
            &stats,
            "spa.test",
            &range,
            &["visitors", "visits", "pageviews", "events"]
        ),
        vec![1.0, 2.0, 3.0, 4.0]
    );
}

#[test]
fn umami_tracker_and_node_client() {
    let s = Server::start();
    let stats = site_with_stats_key(&s, "umami.test");
    // What Umami's tracker sends for a page view, and a custom event with data.
    let page = json!({"type": "event", "payload": {
        "website": "umami.test", "screen": "1920x1080", "language": "en-US", "title": "Home",
        "hostname": "umami.test", "url": "https://umami.test/?utm_source=newsletter",
        "referrer": "https://www.google.com/", "vid": "2f7a6e0c-8f3c-4d5e-9a55-0c1f7b8e4d21"}});
    let (first, _, _) = ok_json("pageview", post(&s, "/api/send", CHROME_UA, &[], &page));
    assert!(
        is_hex_id(&first["sessionId"]) && is_hex_id(&first["visitId"]),
        "{first}"
    );
    assert!(first["cache"].is_string());
    let event = json!({"type": "event", "payload": {
        "website": "umami.test", "hostname": "umami.test", "language": "en-US", "screen": "1920x1080",
        "title": "Pricing", "url": "/pricing", "referrer": "", "name": "Signup",
        "data": {"plan": "pro", "seats": 3, "billing": {"cycle": "yearly"}, "tags": ["a", "b"]}}});
    let cache = first["cache"].as_str().unwrap_or_default().to_string();
    let (second, _, _) = ok_json(
        "event",
        post(
            &s,
            "/api/send",
            CHROME_UA,
            &[("x-umami-cache", &cache)],
            &event,
        ),
    );
    assert_eq!(second["visitId"], first["visitId"]);

    // Umami's Node client: its own user agent, no URL, a distinct id.
    let node = json!({"type": "event", "payload": {"website": "umami.test", "name": "Server Job",
                      "data": {"kind": "import"}, "id": "user-7"}});
    let (server_side, _, dropped) = ok_json(
        "node client",
        post(&s, "/api/send", "node/v20.11.0", &[], &node),
    );
    assert_eq!(dropped, "", "{server_side}");
    assert!(is_hex_id(&server_side["sessionId"]));
    let (identify, _, _) = ok_json(
        "identify",
        post(
            &s,
            "/api/send",
            CHROME_UA,
            &[],
            &json!({"type": "identify", "payload": {"website": "umami.test", "data": {"plan": "pro"}}}),
        ),
    );
    assert!(identify.get("cache").is_some());
    // Identify and performance from the page view's browser: Umami's answer with that
    // visitor and visit (nothing is stored; the event counts below stay the same).
    for kind in ["identify", "performance"] {
        let body = json!({"type": kind, "payload": {"website": "umami.test",
                          "hostname": "umami.test", "url": "/pricing", "lcp": 1200, "cls": 0.05}});
        let (answer, _, _) = ok_json(kind, post(&s, "/api/send", CHROME_UA, &[], &body));
        assert_eq!(answer["sessionId"], first["sessionId"], "{kind}: {answer}");
        assert_eq!(answer["visitId"], first["visitId"], "{kind}: {answer}");
        let (bot, _, dropped) = ok_json(kind, post(&s, "/api/send", "curl/8.5.0", &[], &body));
        assert_eq!((bot, dropped.as_str()), (json!({"beep": "boop"}), "bot"));
    }

    // Bots are answered as Umami does, and not stored.
    let (bot, _, dropped) = ok_json("bot", post(&s, "/api/send", "curl/8.5.0", &[], &page));
    assert_eq!(bot, json!({"beep": "boop"}));
    assert_eq!(dropped, "bot");

    let mut unknown = page.clone();
    unknown["payload"]["website"] = json!("nobody.test");
    // Umami: 400 "Website not found."
    let err = assert_json_error(
        "unknown website",
        post(&s, "/api/send", CHROME_UA, &[], &unknown),
        400,
    );
    assert_eq!(err["code"], "unknown_site");
    // Umami's schema (v3.1): limits on names and vitals, one of website/link/pixel.
    let long_name = "n".repeat(51);
    for (what, payload) in [
        (
            "name over 50",
            json!({"website": "umami.test", "url": "/", "name": long_name}),
        ),
        (
            "screen over 11",
            json!({"website": "umami.test", "url": "/", "screen": "123456x123456"}),
        ),
        (
            "lcp over 60000",
            json!({"website": "umami.test", "url": "/", "lcp": 60001}),
        ),
        (
            "website and link",
            json!({"website": "umami.test", "link": "umami.test", "url": "/"}),
        ),
        (
            "data not an object",
            json!({"website": "umami.test", "url": "/", "data": "x"}),
        ),
    ] {
        let body = json!({"type": "event", "payload": payload});
        assert_json_error(what, post(&s, "/api/send", CHROME_UA, &[], &body), 400);
    }
    assert_json_error(
        "no payload",
        post(&s, "/api/send", CHROME_UA, &[], &json!({"type": "event"})),
        400,
    );

    // A batch is answered item by item.
    let mut later = page.clone();
    later["payload"]["url"] = json!("https://umami.test/docs");
    let bad = json!({"type": "nonsense", "payload": {"website": "umami.test"}});
    let (batch, _, _) = ok_json(
        "batch",
        post(
            &s,
            "/api/batch",
            CHROME_UA,
            &[],
            &json!([later, bad, event]),
        ),
    );
    assert_eq!(
        (
            batch["size"].clone(),
            batch["processed"].clone(),
            batch["errors"].clone()
        ),
        (json!(3), json!(2), json!(1))
    );
    assert_eq!(batch["details"][0]["index"], 1);
    assert_eq!(batch["details"][0]["response"]["code"], "invalid_event");
    assert_json_error(
        "batch of an object",
        post(&s, "/api/batch", CHROME_UA, &[], &page),
        400,
    );

    let range = recent_range();
    s.wait_for_metric(
        &stats,
        "umami.test",
        &range,
        "events",
        5.0,
        Duration::from_secs(10),
    );
    assert_eq!(
        s.aggregate(
            &stats,
            "umami.test",
            &range,
            &["visitors", "pageviews", "events"]
        ),
        vec![2.0, 2.0, 5.0]
    );
    let sources = s.query_ok(
        &stats,
        &json!({"site_id": "umami.test", "metrics": ["visitors"], "date_range": range,
                "dimensions": ["visit:source"], "order_by": [["visit:source", "asc"]]}),
    );
    let sources: Vec<Vec<String>> = sources.iter().map(dimension_values).collect();
    assert_eq!(sources, vec![vec!["Direct / None"], vec!["newsletter"]]);
    let goals = s.query_ok(
        &stats,
        &json!({"site_id": "umami.test", "metrics": ["events"], "date_range": range,
                "dimensions": ["event:goal", "event:props:plan"], "filters": [["is", "event:goal", ["Signup"]]]}),
    );
    assert_eq!(dimension_values(&goals[0]), vec!["Signup", "pro"]);
    assert_eq!(common::metric_values(&goals[0]), vec![2.0]);
    // Nested data is stored as Umami stores it: dotted keys, arrays as their JSON text
    // (the Signup event was sent twice: alone and in the batch).
    for (key, value) in [("billing.cycle", "yearly"), ("tags", r#"["a","b"]"#)] {
        let rows = s.query_ok(
            &stats,
            &json!({"site_id": "umami.test", "metrics": ["events"], "date_range": range,
                    "filters": [["is", format!("event:props:{key}"), [value]]]}),
        );
        assert_eq!(common::metric_values(&rows[0]), vec![2.0], "{key}");
    }
}
