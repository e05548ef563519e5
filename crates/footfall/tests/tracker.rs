//! The tracker as served (`/js/script.js` and its names), and sites that keep the official
//! Plausible script with `data-api` pointed at footfall: its payloads, byte for byte.

mod common;

use common::{CHROME_UA, Server, assert_json_error, dimension_values, metric_values, recent_range};
use serde_json::{Value, json};
use std::io::Read;
use std::time::Duration;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn get(s: &Server, path: &str, headers: &[(&str, &str)]) -> reqwest::blocking::Response {
    let mut rb = s.http.get(s.url(path));
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    rb.send().unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

fn header(r: &reqwest::blocking::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn the_tracker_is_small_cacheable_and_revalidated_by_etag() {
    let s = Server::start();
    let plain = get(&s, "/js/script.js", &[]);
    assert_eq!(plain.status().as_u16(), 200);
    assert_eq!(header(&plain, "content-type"), "application/javascript");
    assert!(
        header(&plain, "cache-control").starts_with("public, max-age="),
        "cache-control: {}",
        header(&plain, "cache-control")
    );
    let etag = header(&plain, "etag");
    assert!(etag.contains(VERSION), "the version is in the ETag: {etag}");
    let script = plain.text().expect("script");
    assert!(script.contains("/api/event") && script.contains("engagement"));

    // Gzipped as served: at most 2 KB, and the same script once inflated.
    let gz = get(&s, "/js/script.js", &[("Accept-Encoding", "gzip")]);
    assert_eq!(header(&gz, "content-encoding"), "gzip");
    assert_eq!(header(&gz, "etag"), etag);
    let bytes = gz.bytes().expect("gzip body");
    println!("tracker: {} bytes, {} gzipped", script.len(), bytes.len());
    assert!(
        bytes.len() <= 2048,
        "tracker is {} bytes gzipped",
        bytes.len()
    );
    let mut inflated = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut inflated)
        .expect("valid gzip");
    assert_eq!(inflated, script);

    // Revalidation.
    for tag in [etag.clone(), format!("W/{etag}"), format!("\"x\", {etag}")] {
        let r = get(&s, "/js/script.js", &[("If-None-Match", &tag)]);
        assert_eq!(r.status().as_u16(), 304, "If-None-Match: {tag}");
        assert_eq!(header(&r, "etag"), etag);
        assert!(r.bytes().expect("body").is_empty());
    }
    let stale = get(
        &s,
        "/js/script.js",
        &[("If-None-Match", "\"footfall-0.0.0-old\"")],
    );
    assert_eq!(stale.status().as_u16(), 200);

    // The alias and Plausible-style names serve the same script.
    for alias in [
        "/js/footfall.js",
        "/js/script.outbound-links.js",
        "/js/script.file-downloads.hash.outbound-links.js",
        "/js/plausible.local.manual.js",
    ] {
        let r = get(&s, alias, &[]);
        assert_eq!(r.status().as_u16(), 200, "{alias}");
        assert_eq!(header(&r, "etag"), etag, "{alias}");
        assert_eq!(r.text().expect("body"), script, "{alias}");
    }
    // Outbound links, file downloads, tagged events and form submissions: the tracker
    // loads them next to itself when one of them is on.
    assert!(script.contains("'extras.js'"));
    let extras = get(&s, "/js/extras.js", &[("Accept-Encoding", "gzip")]);
    assert_eq!(extras.status().as_u16(), 200);
    assert_eq!(header(&extras, "content-type"), "application/javascript");
    assert_eq!(header(&extras, "content-encoding"), "gzip");
    let mut extras_js = String::new();
    flate2::read::GzDecoder::new(&extras.bytes().expect("body")[..])
        .read_to_string(&mut extras_js)
        .expect("valid gzip");
    assert!(extras_js.contains("'Outbound Link: Click'") && extras_js.contains("plausible-"));
    let live = get(&s, "/js/live.js", &[]);
    assert_eq!(live.status().as_u16(), 200);
    assert_eq!(header(&live, "content-type"), "application/javascript");
    assert!(live.text().expect("body").contains("footfall-invite"));

    assert_json_error("unknown script", get(&s, "/js/tracker.js", &[]), 404);
}

fn plausible(s: &Server, body: &str) {
    // Exactly what the Plausible script sends: text/plain, short keys.
    let r = s.post_event(body, CHROME_UA, Some("198.51.100.4"), "text/plain");
    assert_eq!(r.status().as_u16(), 202, "{body}");
    assert_eq!(header(&r, "x-footfall-dropped"), "", "{body}");
}

#[test]
fn the_official_plausible_script_works_with_data_api_pointed_at_footfall() {
    let s = Server::start();
    let key = common::site_with_stats_key(&s, "plausible.test");
    let page = "https://plausible.test/blog/hello-world?utm_source=newsletter";
    plausible(
        &s,
        &format!(
            r#"{{"n":"pageview","v":27,"u":"{page}","d":"plausible.test","r":"https://news.ycombinator.com/"}}"#
        ),
    );
    plausible(
        &s,
        &format!(
            r#"{{"n":"Signup","v":27,"u":"{page}","d":"plausible.test","r":"https://news.ycombinator.com/","p":{{"plan":"pro"}},"$":{{"currency":"EUR","amount":"29.00"}}}}"#
        ),
    );
    plausible(
        &s,
        &format!(
            r#"{{"n":"engagement","sd":75,"d":"plausible.test","u":"{page}","p":{{}},"e":12000,"v":27}}"#
        ),
    );
    // The hash-routing build, a non-interactive event and the legacy `m` props.
    plausible(
        &s,
        r#"{"n":"pageview","v":27,"u":"https://plausible.test/app#/settings","d":"plausible.test","r":null,"h":1}"#,
    );
    plausible(
        &s,
        r#"{"n":"Video Play","v":27,"u":"https://plausible.test/app#/settings","d":"plausible.test","r":null,"p":{"video":"intro"},"i":false,"h":1}"#,
    );
    plausible(
        &s,
        r#"{"n":"engagement","sd":100,"d":"plausible.test","u":"https://plausible.test/app#/settings","p":{},"e":4000,"v":27,"h":1}"#,
    );
    plausible(
        &s,
        r#"{"n":"File Download","u":"https://plausible.test/app","d":"plausible.test","r":null,"m":"{\"url\":\"https://plausible.test/a.pdf\"}"}"#,
    );

    let range = recent_range();
    let pv = s.wait_for_metric(
        &key,
        "plausible.test",
        &range,
        "pageviews",
        2.0,
        Duration::from_secs(10),
    );
    assert_eq!(pv, 2.0);
    assert_eq!(
        s.aggregate(
            &key,
            "plausible.test",
            &range,
            &["visitors", "visits", "events"]
        ),
        vec![1.0, 1.0, 5.0]
    );
    let rows = s.query_ok(
        &key,
        &json!({"site_id": "plausible.test", "metrics": ["pageviews", "time_on_page", "scroll_depth"],
                "date_range": range, "dimensions": ["event:page"], "order_by": [["event:page", "asc"]],
                "filters": [["is", "event:page", ["/app#/settings", "/blog/hello-world"]]]}),
    );
    let pages: Vec<(Vec<String>, Vec<f64>)> = rows
        .iter()
        .map(|r| (dimension_values(r), metric_values(r)))
        .collect();
    assert_eq!(
        pages,
        vec![
            (vec!["/app#/settings".to_string()], vec![1.0, 4.0, 100.0]),
            (vec!["/blog/hello-world".to_string()], vec![1.0, 12.0, 75.0]),
        ]
    );
    let goals = s.query_ok(
        &key,
        &json!({"site_id": "plausible.test", "metrics": ["events"], "date_range": range,
                "dimensions": ["event:goal", "event:props:plan"]}),
    );
    let goals: Vec<Vec<String>> = goals.iter().map(dimension_values).collect();
    assert!(
        goals.contains(&vec!["Signup".to_string(), "pro".to_string()]),
        "{goals:?}"
    );
    let url = s.query_ok(
        &key,
        &json!({"site_id": "plausible.test", "metrics": ["events"], "date_range": range,
                "dimensions": ["event:props:url"], "filters": [["is", "event:goal", ["File Download"]]]}),
    );
    assert_eq!(
        dimension_values(&url[0]),
        vec!["https://plausible.test/a.pdf"]
    );
    let bounce: Value = json!(s.aggregate(&key, "plausible.test", &range, &["bounce_rate"]));
    assert_eq!(bounce, json!([0.0]), "one visit of two pages");
}

fn set_cookies(r: &reqwest::blocking::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect()
}

fn cookie_value(set: &[String], name: &str) -> Option<String> {
    set.iter().find_map(|c| {
        let (k, v) = c.split(';').next()?.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

#[test]
fn cookie_mode_of_the_tracker_on_the_events_api() {
    let s = Server::start();
    let key = common::site_with_stats_key(&s, "cookies.test");
    let hit = |path: &str, cookie: Option<&str>| {
        let body = format!(
            r#"{{"n":"pageview","u":"https://cookies.test{path}","d":"cookies.test","r":null,"c":1}}"#
        );
        let mut rb = s
            .http
            .post(s.url("/api/event"))
            .header("User-Agent", CHROME_UA)
            .header("Content-Type", "text/plain")
            .body(body);
        if let Some(c) = cookie {
            rb = rb.header("Cookie", c);
        }
        let r = rb.send().expect("POST /api/event");
        assert_eq!(r.status().as_u16(), 202);
        set_cookies(&r)
    };
    let first = hit("/", None);
    let vid = cookie_value(&first, "ff_vid").expect("ff_vid for a new visitor");
    let sid = cookie_value(&first, "ff_sid").expect("ff_sid");
    assert!(
        first
            .iter()
            .all(|c| c.ends_with("Path=/; HttpOnly; Secure; SameSite=Lax"))
    );
    let again = hit("/a", Some(&format!("ff_vid={vid}; ff_sid={sid}")));
    assert_eq!(cookie_value(&again, "ff_vid"), None);
    assert_eq!(cookie_value(&again, "ff_sid"), Some(sid.clone()));
    let later = hit("/b", Some(&format!("ff_vid={vid}")));
    assert_ne!(cookie_value(&later, "ff_sid"), Some(sid));
    // Without the flag the same request is cookieless: no cookies.
    let plain = s.post_event(
        r#"{"n":"pageview","u":"https://cookies.test/","d":"cookies.test","r":null}"#,
        CHROME_UA,
        None,
        "text/plain",
    );
    assert!(set_cookies(&plain).is_empty());

    let range = recent_range();
    s.wait_for_metric(
        &key,
        "cookies.test",
        &range,
        "pageviews",
        4.0,
        Duration::from_secs(10),
    );
    // The cookie visitor (two visits) and the cookieless one.
    assert_eq!(
        s.aggregate(&key, "cookies.test", &range, &["visitors", "visits"]),
        vec![2.0, 3.0]
    );
}
