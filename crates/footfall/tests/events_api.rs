//! The Plausible Events API (`POST /api/event`, DESIGN §5) and cookieless identity (§3):
//! what real trackers send is accepted, bots are dropped with a header, client IPs come
//! from X-Forwarded-For only behind a trusted proxy, and a visit survives midnight.

mod common;

use chrono::{Duration as ChronoDuration, SecondsFormat, TimeZone, Timelike, Utc};
use common::{
    CHROME_UA, FIREFOX_UA, Server, assert_json_error, dimension_values, metric_values,
    recent_range, site_with_stats_key,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

fn accepted(what: &str, r: reqwest::blocking::Response) {
    let status = r.status().as_u16();
    let dropped = r
        .headers()
        .get("x-footfall-dropped")
        .map(|v| v.to_str().unwrap_or("?").to_string());
    let body = r.text().unwrap_or_default();
    assert_eq!(status, 202, "{what}: expected 202, got {status}: {body}");
    assert_eq!(dropped, None, "{what}: a normal hit must not be dropped");
}

/// Polls `metric` until it equals `want`; then, to catch late extra events, checks it is
/// still `want` a moment later.
fn settle(s: &Server, key: &str, site: &str, metric: &str, want: f64) {
    let range = recent_range();
    let got = s.wait_for_metric(key, site, &range, metric, want, WAIT);
    assert_eq!(got, want, "{metric} for {site}");
    std::thread::sleep(Duration::from_millis(700));
    let again = s.aggregate(key, site, &recent_range(), &[metric]);
    assert_eq!(again[0], want, "{metric} for {site} changed after settling");
}

#[test]
fn accepts_long_keys_short_keys_text_plain_null_referrer_and_unknown_keys() {
    let s = Server::start();
    let site = "events.example.com";
    let key = site_with_stats_key(&s, site);

    let long = json!({
        "name": "pageview", "url": format!("https://{site}/"), "domain": site,
        "referrer": "https://www.google.com/", "props": {"plan": "pro"}
    });
    accepted(
        "long keys, application/json",
        s.post_event(
            &long.to_string(),
            CHROME_UA,
            Some("203.0.113.1"),
            "application/json",
        ),
    );

    let short = json!({
        "n": "pageview", "u": format!("https://{site}/short?utm_source=newsletter"), "d": site,
        "r": "https://t.co/abc", "p": {"plan": "free"}, "h": 0
    });
    accepted(
        "short keys, text/plain",
        s.post_event(
            &short.to_string(),
            CHROME_UA,
            Some("203.0.113.2"),
            "text/plain",
        ),
    );

    // What Plausible's tracker sends when there is no referrer.
    let null_ref =
        json!({"n": "pageview", "u": format!("https://{site}/nullref"), "d": site, "r": null});
    accepted(
        "\"r\": null, text/plain",
        s.post_event(
            &null_ref.to_string(),
            CHROME_UA,
            Some("203.0.113.3"),
            "text/plain;charset=UTF-8",
        ),
    );

    let unknown = json!({
        "name": "pageview", "url": format!("https://{site}/unknown"), "domain": site,
        "v": 27, "some_future_field": {"nested": [1, 2]}, "w": 1280
    });
    accepted(
        "unknown keys ignored",
        s.post_event(
            &unknown.to_string(),
            CHROME_UA,
            Some("203.0.113.4"),
            "application/json",
        ),
    );

    let custom = json!({
        "n": "Download", "u": format!("https://{site}/short"), "d": site, "r": null,
        "p": {"file": "report.pdf"}
    });
    accepted(
        "custom event, short keys",
        s.post_event(
            &custom.to_string(),
            CHROME_UA,
            Some("203.0.113.2"),
            "text/plain",
        ),
    );

    settle(&s, &key, site, "events", 5.0);
    let got = s.aggregate(&key, site, &recent_range(), &["pageviews", "visitors"]);
    assert_eq!(got, vec![4.0, 4.0], "pageviews and visitors");

    // Each variant landed on its page (query string dropped from the path).
    let rows = s.query_ok(
        &key,
        &json!({"site_id": site, "metrics": ["pageviews"], "date_range": recent_range(),
                "dimensions": ["event:page"], "filters": [["is", "event:name", ["pageview"]]]}),
    );
    let pages: BTreeMap<String, f64> = rows
        .iter()
        .map(|r| (dimension_values(r)[0].clone(), metric_values(r)[0]))
        .collect();
    let want: BTreeMap<String, f64> = [
        ("/", 1.0),
        ("/short", 1.0),
        ("/nullref", 1.0),
        ("/unknown", 1.0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(pages, want, "pageviews by page");

    // Sources: referrer (long key), utm_source over the short-key referrer, null = direct.
    let rows = s.query_ok(
        &key,
        &json!({"site_id": site, "metrics": ["visitors"], "date_range": recent_range(),
                "dimensions": ["visit:source"]}),
    );
    let sources: BTreeMap<String, f64> = rows
        .iter()
        .map(|r| (dimension_values(r)[0].clone(), metric_values(r)[0]))
        .collect();
    let want: BTreeMap<String, f64> =
        [("Google", 1.0), ("newsletter", 1.0), ("Direct / None", 2.0)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
    assert_eq!(sources, want, "visitors by source");

    // Props sent with the short key `p` are queryable.
    let rows = s.query_ok(
        &key,
        &json!({"site_id": site, "metrics": ["events"], "date_range": recent_range(),
                "dimensions": ["event:props:plan"], "filters": [["is", "event:props:plan", ["pro", "free"]]]}),
    );
    let plans: BTreeMap<String, f64> = rows
        .iter()
        .map(|r| (dimension_values(r)[0].clone(), metric_values(r)[0]))
        .collect();
    let want: BTreeMap<String, f64> = [("pro", 1.0), ("free", 1.0)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(plans, want, "events by props.plan");
}

#[test]
fn hash_mode_keeps_the_fragment_only_when_asked() {
    let s = Server::start();
    let site = "spa.example.com";
    let key = site_with_stats_key(&s, site);
    let hashed =
        json!({"n": "pageview", "u": format!("https://{site}/app#/settings"), "d": site, "h": 1});
    accepted(
        "hash mode",
        s.post_event(
            &hashed.to_string(),
            CHROME_UA,
            Some("203.0.113.9"),
            "text/plain",
        ),
    );
    let plain = json!({"n": "pageview", "u": format!("https://{site}/app#/other"), "d": site});
    accepted(
        "no hash mode",
        s.post_event(
            &plain.to_string(),
            CHROME_UA,
            Some("203.0.113.9"),
            "text/plain",
        ),
    );
    settle(&s, &key, site, "pageviews", 2.0);
    let rows = s.query_ok(
        &key,
        &json!({"site_id": site, "metrics": ["pageviews"], "date_range": recent_range(),
                "dimensions": ["event:page"]}),
    );
    let mut pages: Vec<String> = rows
        .iter()
        .map(|r| dimension_values(r)[0].clone())
        .collect();
    pages.sort();
    assert_eq!(
        pages,
        vec!["/app".to_string(), "/app#/settings".to_string()]
    );
}

#[test]
fn bots_are_answered_202_with_the_dropped_header_and_not_counted() {
    let s = Server::start();
    let site = "bots.example.com";
    let key = site_with_stats_key(&s, site);
    let body =
        json!({"name": "pageview", "url": format!("https://{site}/"), "domain": site}).to_string();

    for ua in [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "curl/8.0",
    ] {
        let r = s.post_event(&body, ua, Some("203.0.113.20"), "application/json");
        assert_eq!(
            r.status().as_u16(),
            202,
            "bot {ua:?} answered {}",
            r.status()
        );
        let reason = r
            .headers()
            .get("x-footfall-dropped")
            .map(|v| v.to_str().unwrap_or_default().to_string());
        assert!(
            reason.as_deref().is_some_and(|v| !v.is_empty()),
            "bot {ua:?} must carry a non-empty x-footfall-dropped header, got {reason:?}"
        );
    }
    accepted(
        "human",
        s.post_event(&body, CHROME_UA, Some("203.0.113.21"), "application/json"),
    );
    settle(&s, &key, site, "events", 1.0);
}

#[test]
fn unknown_domain_is_404_and_malformed_json_is_400() {
    let s = Server::start();
    let site = "known.example.com";
    site_with_stats_key(&s, site);

    let unknown = json!({"name": "pageview", "url": "https://unknown.example.net/", "domain": "unknown.example.net"});
    assert_json_error(
        "unknown domain",
        s.post_event(&unknown.to_string(), CHROME_UA, None, "application/json"),
        404,
    );
    assert_json_error(
        "malformed JSON",
        s.post_event(
            "{\"name\": \"pageview\", \"url\": ",
            CHROME_UA,
            None,
            "application/json",
        ),
        400,
    );
    assert_json_error(
        "malformed JSON as text/plain",
        s.post_event("not json at all", CHROME_UA, None, "text/plain"),
        400,
    );
}

/// Sends one page view through /api/event from the given X-Forwarded-For and UA.
fn hit(s: &Server, site: &str, path: &str, ua: &str, xff: &str) {
    let body = json!({"name": "pageview", "url": format!("https://{site}{path}"), "domain": site});
    accepted(
        &format!("{path} from {xff}"),
        s.post_event(&body.to_string(), ua, Some(xff), "application/json"),
    );
}

#[test]
fn cookieless_identity_same_ip_and_ua_is_one_visitor_different_ua_is_two() {
    let s = Server::start();
    let site = "ident.example.com";
    let key = site_with_stats_key(&s, site);

    hit(&s, site, "/", CHROME_UA, "203.0.113.7");
    hit(&s, site, "/pricing", CHROME_UA, "203.0.113.7");
    settle(&s, &key, site, "pageviews", 2.0);
    let got = s.aggregate(&key, site, &recent_range(), &["visitors", "visits"]);
    assert_eq!(
        got,
        vec![1.0, 1.0],
        "same IP + same UA: one visitor, one visit"
    );

    hit(&s, site, "/", FIREFOX_UA, "203.0.113.7");
    settle(&s, &key, site, "pageviews", 3.0);
    let got = s.aggregate(&key, site, &recent_range(), &["visitors", "visits"]);
    assert_eq!(
        got,
        vec![2.0, 2.0],
        "same IP + another UA: a second visitor"
    );
}

#[test]
fn x_forwarded_for_is_honoured_from_a_trusted_proxy() {
    // Default configuration: loopback is a trusted proxy, so two forwarded client IPs with
    // the same UA are two visitors.
    let s = Server::start();
    let site = "trusted.example.com";
    let key = site_with_stats_key(&s, site);
    hit(&s, site, "/", CHROME_UA, "203.0.113.7");
    hit(&s, site, "/", CHROME_UA, "198.51.100.23");
    // A list: the first valid address is the client.
    hit(&s, site, "/", CHROME_UA, "192.0.2.44, 10.1.2.3");
    settle(&s, &key, site, "pageviews", 3.0);
    let got = s.aggregate(&key, site, &recent_range(), &["visitors"]);
    assert_eq!(
        got,
        vec![3.0],
        "three forwarded client IPs, one UA: three visitors"
    );
}

/// Proxies that add the client's port (`ip:port`, `[v6]:port`) still name the client: the
/// port is dropped, as Plausible does (REFERENCE §2.1: IPv4 and IPv6), rather than the
/// entry being skipped and every such client becoming the proxy itself.
#[test]
fn x_forwarded_for_entries_with_a_port_name_the_client() {
    let s = Server::start();
    let site = "ports.example.com";
    let key = site_with_stats_key(&s, site);
    hit(&s, site, "/", CHROME_UA, "203.0.113.7:51234");
    hit(&s, site, "/", CHROME_UA, "198.51.100.23:443");
    hit(&s, site, "/", CHROME_UA, "[2001:db8::1]:8443");
    hit(&s, site, "/", CHROME_UA, "[2001:db8::2]");
    // The same client as the first, without its port: the same visitor.
    hit(&s, site, "/about", CHROME_UA, "203.0.113.7");
    settle(&s, &key, site, "pageviews", 5.0);
    let got = s.aggregate(&key, site, &recent_range(), &["visitors"]);
    assert_eq!(
        got,
        vec![4.0],
        "four forwarded clients (two with an IPv4 port, two bracketed IPv6), one UA"
    );
}

#[test]
fn x_forwarded_for_is_ignored_from_an_untrusted_peer() {
    // Only 10.0.0.0/8 is trusted: requests from 127.0.0.1 are the client themselves and
    // their X-Forwarded-For is ignored, so the same UA is one visitor.
    let s = Server::start_with(&["--trusted-proxies", "10.0.0.0/8"]);
    let site = "untrusted.example.com";
    let key = site_with_stats_key(&s, site);
    hit(&s, site, "/", CHROME_UA, "203.0.113.7");
    hit(&s, site, "/about", CHROME_UA, "198.51.100.23");
    settle(&s, &key, site, "pageviews", 2.0);
    let got = s.aggregate(&key, site, &recent_range(), &["visitors", "visits"]);
    assert_eq!(
        got,
        vec![1.0, 1.0],
        "spoofed X-Forwarded-For must not split a visitor"
    );
}

#[test]
fn a_visit_survives_the_midnight_salt_change() {
    let s = Server::start();
    let site = "midnight.example.com";
    s.add_site(site, "UTC");
    let stats = s.create_key(site, "stats");
    let ingest = s.create_key(site, "ingest");

    // The last midnight (UTC) that has at least 15 minutes after it in the past.
    let now = Utc::now();
    let mut midnight_day = now.date_naive();
    if now.hour() == 0 && now.minute() < 15 {
        midnight_day -= ChronoDuration::days(1);
    }
    let midnight = Utc.from_utc_datetime(&midnight_day.and_hms_opt(0, 0, 0).expect("midnight"));
    let ts = |d: ChronoDuration| (midnight + d).to_rfc3339_opts(SecondsFormat::Secs, true);
    let ev = |t: String, path: &str, ua: &str| {
        json!({"name": "pageview", "url": format!("https://{site}{path}"), "domain": site,
               "timestamp": t, "ip": "203.0.113.50", "user_agent": ua})
    };
    let before = ev(ts(-ChronoDuration::minutes(10)), "/", CHROME_UA);
    let after = ev(ts(ChronoDuration::minutes(10)), "/pricing", CHROME_UA);
    let r = s.bulk(&ingest, &json!([before, after]));
    let status = r.status().as_u16();
    let body: Value = r.json().unwrap_or(Value::Null);
    assert_eq!(status, 202, "bulk: {body}");
    assert_eq!(body["accepted"], json!(2), "bulk: {body}");

    let range = json!([
        (midnight_day - ChronoDuration::days(1))
            .format("%Y-%m-%d")
            .to_string(),
        midnight_day.format("%Y-%m-%d").to_string()
    ]);
    let got = s.wait_for_metric(&stats, site, &range, "pageviews", 2.0, WAIT);
    assert_eq!(got, 2.0);
    let got = s.aggregate(
        &stats,
        site,
        &range,
        &["visitors", "visits", "visit_duration"],
    );
    assert_eq!(
        got,
        vec![1.0, 1.0, 1200.0],
        "23:50 and 00:10 from the same IP + UA: one visitor, one 20-minute visit"
    );

    let other = ev(ts(ChronoDuration::minutes(10)), "/", FIREFOX_UA);
    let r = s.bulk(&ingest, &json!([other]));
    assert_eq!(r.status().as_u16(), 202);
    let got = s.wait_for_metric(&stats, site, &range, "pageviews", 3.0, WAIT);
    assert_eq!(got, 3.0);
    let got = s.aggregate(&stats, site, &range, &["visitors", "visits"]);
    assert_eq!(got, vec![2.0, 2.0], "another UA at 00:10: a second visitor");
}

/// Trackers post from the site's own origin, not footfall's: a preflight (JSON bodies) is
/// allowed for any origin, method and header, and a cross-origin POST's answer may be read,
/// its `x-footfall-*` headers included (the tracker reads `x-footfall-live`).
#[test]
fn cross_origin_trackers_pass_cors() {
    let s = Server::start();
    let site = "cors.example";
    site_with_stats_key(&s, site);
    let preflight = s
        .http
        .request(reqwest::Method::OPTIONS, s.url("/api/event"))
        .header("Origin", "https://cors.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .expect("OPTIONS /api/event");
    assert_eq!(preflight.status().as_u16(), 200);
    let header = |r: &reqwest::blocking::Response, name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or("?").to_string())
    };
    for name in [
        "access-control-allow-origin",
        "access-control-allow-methods",
    ] {
        assert_eq!(header(&preflight, name).as_deref(), Some("*"), "{name}");
    }
    // `*` covers every header but `Authorization`, which browsers want named.
    assert_eq!(
        header(&preflight, "access-control-allow-headers").as_deref(),
        Some("*,authorization")
    );
    // So a page on another origin may call the Stats API with a key.
    let preflight = s
        .http
        .request(reqwest::Method::OPTIONS, s.url("/api/v2/query"))
        .header("Origin", "https://reports.example")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization,content-type",
        )
        .send()
        .expect("OPTIONS /api/v2/query");
    assert_eq!(preflight.status().as_u16(), 200);
    let allowed = header(&preflight, "access-control-allow-headers").unwrap_or_default();
    assert!(
        allowed.split(',').any(|h| h.trim() == "authorization")
            && allowed.split(',').any(|h| h.trim() == "*"),
        "{allowed}"
    );
    // A tracker's hit from a page on another origin.
    let post_cross_origin = |body: String| {
        s.http
            .post(s.url("/api/event"))
            .header("Origin", "https://cors.example")
            .header("User-Agent", CHROME_UA)
            .header("Content-Type", "text/plain")
            .body(body)
            .send()
            .expect("POST /api/event")
    };
    let post = post_cross_origin(
        json!({"n": "pageview", "u": "https://cors.example/", "d": site}).to_string(),
    );
    assert_eq!(
        header(&post, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert_eq!(
        header(&post, "access-control-expose-headers").as_deref(),
        Some("*")
    );
    // Nothing in these answers depends on the request's CORS headers.
    assert_eq!(header(&post, "vary"), None);
    accepted("cross-origin POST", post);
    // `POST /api/event` is answered before the router (`EventFirst`): its errors carry
    // the same CORS headers and JSON shape as every routed answer, so a tracker on
    // another origin can read why a hit was refused.
    for (body, status, code) in [
        (
            json!({"n": "pageview", "u": "https://nowhere.example/", "d": "nowhere.example"})
                .to_string(),
            404,
            "unknown_site",
        ),
        ("{not json".to_string(), 400, "invalid_json"),
    ] {
        let refused = post_cross_origin(body);
        assert_eq!(refused.status().as_u16(), status);
        for name in [
            "access-control-allow-origin",
            "access-control-expose-headers",
        ] {
            assert_eq!(header(&refused, name).as_deref(), Some("*"), "{name}");
        }
        let error: Value = refused.json().expect("a JSON error");
        assert_eq!(error["code"], code, "{error}");
    }
}

/// Visitors per value of `dimension` (events of the range, optionally filtered).
fn breakdown(
    s: &Server,
    key: &str,
    site: &str,
    dimension: &str,
    filters: Value,
) -> BTreeMap<String, f64> {
    s.query_ok(
        key,
        &json!({"site_id": site, "metrics": ["events"], "date_range": recent_range(),
                "dimensions": [dimension], "filters": filters}),
    )
    .iter()
    .map(|r| (dimension_values(r)[0].clone(), metric_values(r)[0]))
    .collect()
}

fn counts(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Body fields read as Plausible's `Ingestion.Request.build` reads them
/// (lib/plausible/ingestion/request.ex; external_controller_test.exs, request_test.exs):
/// malformed props are no props, bad prop pairs are dropped, at most 30 props are kept, a
/// referrer that is not a string is none, `sd`/`e` count on engagement events only and are
/// missing when not integers, a float name or a blank domain is a 400, and the system goal
/// `404` gets its page as `path`.
#[test]
fn body_fields_are_read_as_plausible_reads_them() {
    let s = Server::start();
    let site = "lenient.example.com";
    let key = site_with_stats_key(&s, site);
    let url = |p: &str| format!("https://{site}{p}");
    let send =
        |body: Value, ip: &str| s.post_event(&body.to_string(), CHROME_UA, Some(ip), "text/plain");

    // Plausible's "ignores malformed custom props": a string that is not a JSON object.
    accepted(
        "props a JSON string, not an object",
        send(
            json!({"n": "Signup", "u": url("/a"), "d": site, "p": "\"show-more:button\""}),
            "198.51.100.1",
        ),
    );
    accepted(
        "props a number",
        send(
            json!({"n": "Signup", "u": url("/a"), "d": site, "props": 5}),
            "198.51.100.1",
        ),
    );
    // "filters out bad props": empty, blank and null values, blank keys, lists and maps.
    accepted(
        "bad prop pairs",
        send(
            json!({"n": "Signup", "u": url("/a"), "d": site, "props": {
        "empty": "", "blank": "   ", "   ": "value", "null": null, "list": [1], "map": {"a": 1},
        "good": true, "count": 12}}),
            "198.51.100.1",
        ),
    );
    // A referrer that is not a string, and `sd` on a page view, are ignored.
    accepted(
        "numeric referrer, sd on a page view",
        send(
            json!({"n": "pageview", "u": url("/b"), "d": site, "r": 5, "sd": "x"}),
            "198.51.100.2",
        ),
    );
    // Engagement: `sd` as a string holding an integer counts; a negative `sd` is missing
    // but `e` carries the event; `e: 0` alone is no engagement at all (400).
    accepted(
        "engagement sd \"40\"",
        send(
            json!({"n": "engagement", "u": url("/b"), "d": site, "sd": "40"}),
            "198.51.100.2",
        ),
    );
    accepted(
        "engagement sd -1, e 500",
        send(
            json!({"n": "engagement", "u": url("/b"), "d": site, "sd": -1, "e": 500}),
            "198.51.100.2",
        ),
    );
    assert_json_error(
        "engagement with e 0 only",
        send(
            json!({"n": "engagement", "u": url("/b"), "d": site, "e": 0}),
            "198.51.100.2",
        ),
        400,
    );
    // Names are strings or integers; 404 gets its page as the `path` property.
    assert_json_error(
        "float name",
        send(
            json!({"n": 404.5, "u": url("/"), "d": site}),
            "198.51.100.3",
        ),
        400,
    );
    accepted(
        "404 as a number",
        send(
            json!({"n": 404, "u": url("/gone"), "d": site}),
            "198.51.100.3",
        ),
    );
    // 50 props: the first 30 are kept, the event is not refused.
    let many: serde_json::Map<String, Value> =
        (1..=50).map(|i| (format!("k{i:02}"), json!("v"))).collect();
    accepted(
        "50 props",
        send(
            json!({"n": "Many", "u": url("/"), "d": site, "p": many}),
            "198.51.100.4",
        ),
    );
    // "responds 400 with errors when domain is missing": no domain, a URL without a host.
    assert_json_error(
        "no domain, host-less URL",
        send(
            json!({"domain": null, "url": "about:config", "name": "pageview"}),
            "198.51.100.5",
        ),
        400,
    );
    assert_json_error(
        "blank domain",
        send(
            json!({"domain": "  ", "url": url("/"), "name": "pageview"}),
            "198.51.100.5",
        ),
        400,
    );

    // Counted by hand: 3 Signup, 1 page view, 2 engagements (not events), 1 "404", 1 Many.
    settle(&s, &key, site, "events", 6.0);
    assert_eq!(
        breakdown(&s, &key, site, "event:name", json!([])),
        counts(&[
            ("Signup", 3.0),
            ("pageview", 1.0),
            ("404", 1.0),
            ("Many", 1.0)
        ]),
    );
    let signup = json!([["is", "event:name", ["Signup"]]]);
    assert_eq!(
        breakdown(&s, &key, site, "event:props:good", signup.clone()),
        counts(&[("true", 1.0), ("(none)", 2.0)])
    );
    assert_eq!(
        breakdown(&s, &key, site, "event:props:count", signup.clone()),
        counts(&[("12", 1.0), ("(none)", 2.0)])
    );
    for dropped in ["empty", "blank", "null", "list", "map", "   "] {
        assert_eq!(
            breakdown(
                &s,
                &key,
                site,
                &format!("event:props:{dropped}"),
                signup.clone()
            ),
            counts(&[("(none)", 3.0)]),
            "prop {dropped:?} is dropped"
        );
    }
    assert_eq!(
        breakdown(
            &s,
            &key,
            site,
            "visit:source",
            json!([["is", "event:page", ["/b"]]])
        ),
        counts(&[("Direct / None", 1.0)])
    );
    assert_eq!(
        breakdown(
            &s,
            &key,
            site,
            "event:props:path",
            json!([["is", "event:name", ["404"]]])
        ),
        counts(&[("/gone", 1.0)])
    );
    let kept = (1..=50)
        .filter(|i| {
            breakdown(
                &s,
                &key,
                site,
                &format!("event:props:k{i:02}"),
                json!([["is", "event:name", ["Many"]]]),
            ) == counts(&[("v", 1.0)])
        })
        .count();
    assert_eq!(kept, 30, "props kept of 50");
    // The engagement with sd "40" gave /b its scroll depth; the one with sd -1 none.
    let rows = s.query_ok(
        &key,
        &json!({"site_id": site, "metrics": ["scroll_depth"],
        "date_range": recent_range(), "filters": [["is", "event:page", ["/b"]]]}),
    );
    assert_eq!(metric_values(&rows[0]), vec![40.0], "scroll depth of /b");
}

/// Referrers as Plausible's `Ingestion.Source` reads them (external_controller_test.exs):
/// the page's own host is no referrer ("ignores when referrer is internal"), a subdomain
/// is one ("parses subdomain referrer"), only http(s) and android-app schemes count ("if
/// the referrer is not http, https, or android it is ignored", "ignores a malformed
/// referrer URL"), and an unknown app keeps its scheme ("stores referrer from android app").
#[test]
fn referrers_as_plausible_resolves_them() {
    let s = Server::start();
    let site = "refs.example.com";
    let key = site_with_stats_key(&s, site);
    let cases = [
        ("https://example.com", "198.51.100.11"),
        ("https://www.example.com/x", "198.51.100.12"),
        ("https://blog.example.com", "198.51.100.13"),
        ("ftp://wat", "198.51.100.14"),
        ("https:://twitter.com", "198.51.100.15"),
        ("android-app://some.android.app", "198.51.100.16"),
        ("http://localhost:4000/", "198.51.100.17"),
    ];
    for (r, ip) in cases {
        let body = json!({"name": "pageview", "url": "http://example.com/", "domain": site, "referrer": r});
        accepted(
            r,
            s.post_event(&body.to_string(), CHROME_UA, Some(ip), "application/json"),
        );
    }
    settle(&s, &key, site, "visits", 7.0);
    assert_eq!(
        breakdown(&s, &key, site, "visit:source", json!([])),
        counts(&[
            ("Direct / None", 5.0),
            ("blog.example.com", 1.0),
            ("android-app://some.android.app", 1.0)
        ]),
    );
    assert_eq!(
        breakdown(&s, &key, site, "visit:referrer", json!([])),
        counts(&[
            ("Direct / None", 5.0),
            ("blog.example.com", 1.0),
            ("android-app://some.android.app", 1.0)
        ]),
    );
}

/// Client addresses from the proxy headers Plausible reads (`PlausibleWeb.RemoteIP`:
/// X-Plausible-IP, CF-Connecting-IP, B-Forwarded-For, X-Forwarded-For, Forwarded) and
/// nginx's X-Real-IP, from a trusted peer (the test client is on loopback): each names
/// the same client as X-Forwarded-For does, so the cookieless visitor is the same.
#[test]
fn proxy_headers_name_the_client_as_plausible_reads_them() {
    let s = Server::start();
    let site = "proxies.example.com";
    let key = site_with_stats_key(&s, site);
    let send = |path: &str, headers: &[(&str, &str)]| {
        let body = json!({"n": "pageview", "u": format!("https://{site}{path}"), "d": site});
        let mut rb = s
            .http
            .post(s.url("/api/event"))
            .header("User-Agent", CHROME_UA)
            .header("Content-Type", "text/plain")
            .body(body.to_string());
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        accepted(path, rb.send().expect("POST /api/event"));
    };
    // Visitor A (216.160.83.56): named five ways; a decoy X-Forwarded-For loses to the
    // CDN headers.
    send("/a1", &[("X-Forwarded-For", "216.160.83.56")]);
    send(
        "/a2",
        &[
            ("X-Forwarded-For", "0.0.0.0"),
            ("CF-Connecting-IP", "216.160.83.56"),
        ],
    );
    send(
        "/a3",
        &[
            ("X-Forwarded-For", "0.0.0.0"),
            ("B-Forwarded-For", "216.160.83.56,9.9.9.9"),
        ],
    );
    send(
        "/a4",
        &[(
            "Forwarded",
            "by=0.0.0.0;for=216.160.83.56;host=somehost.com;proto=https",
        )],
    );
    send("/a5", &[("X-Real-IP", "216.160.83.56")]);
    // Visitor B (2001:218:1:1:1:1:1:1): by Forwarded (quoted, bracketed) and X-Plausible-IP.
    send(
        "/b1",
        &[("Forwarded", "for=\"[2001:218:1:1:1:1:1:1]\",for=0.0.0.0")],
    );
    send(
        "/b2",
        &[
            ("X-Forwarded-For", "0.0.0.0"),
            ("X-Plausible-IP", "2001:218:1:1:1:1:1:1"),
        ],
    );
    settle(&s, &key, site, "pageviews", 7.0);
    let got = s.aggregate(&key, site, &recent_range(), &["visitors", "visits"]);
    assert_eq!(got, vec![2.0, 2.0], "visitors and visits");
}

/// A page URL without a scheme, as Plausible's `Ingestion.Request` reads it
/// (lib/plausible/ingestion/request.ex: `put_uri` takes any `URI.parse` result but a
/// `data:` one, `put_hostname` gives "(none)" to a URI without a host, `get_pathname` is
/// its decoded path, `map_domains` needs a host when no `domain` is sent): Elixir's
/// `URI.parse` reads "example.com/page" as a path, so the hostname is "(none)" and the
/// page is "example.com/page" (not a host and "/page"); "/page" is "/page" on "(none)",
/// as footfall already read it; "//host/page" has a host; without `domain` a host-less
/// URL is a 400, and a `://` inside the query does not name the site.
#[test]
fn scheme_less_urls_have_no_host_and_keep_their_path() {
    let s = Server::start();
    let site = "noscheme.example.com";
    let key = site_with_stats_key(&s, site);
    // One visitor per page view (its own IP), so each starts its own visit.
    let send =
        |body: Value, ip: &str| s.post_event(&body.to_string(), CHROME_UA, Some(ip), "text/plain");

    accepted(
        "example.com/page",
        send(
            json!({"n": "pageview", "u": "example.com/page?utm_source=letter", "d": site}),
            "198.51.100.11",
        ),
    );
    accepted(
        "/page",
        send(
            json!({"n": "pageview", "u": "/page?utm_source=letter", "d": site}),
            "198.51.100.12",
        ),
    );
    accepted(
        "hash mode, scheme-less",
        send(
            json!({"n": "pageview", "u": "app.html#/inbox", "d": site, "h": 1}),
            "198.51.100.13",
        ),
    );
    accepted(
        "//host/page without domain",
        send(
            json!({"n": "pageview", "u": format!("//www.{site}/proto")}),
            "198.51.100.14",
        ),
    );
    for (what, url) in [
        (
            "example.com/page without domain",
            "example.com/page".to_string(),
        ),
        (
            "a URL in the query without domain",
            format!("spa.html?next=https://{site}/x"),
        ),
    ] {
        let body = assert_json_error(
            what,
            send(json!({"n": "pageview", "u": url}), "198.51.100.15"),
            400,
        );
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains("domain")),
            "{what}: {body}"
        );
    }

    settle(&s, &key, site, "pageviews", 4.0);
    assert_eq!(
        breakdown(&s, &key, site, "event:hostname", json!([])),
        counts(&[("(none)", 3.0), (site, 1.0)])
    );
    assert_eq!(
        breakdown(&s, &key, site, "event:page", json!([])),
        counts(&[
            ("example.com/page", 1.0),
            ("/page", 1.0),
            ("app.html#/inbox", 1.0),
            ("/proto", 1.0)
        ])
    );
    // The query string of a scheme-less URL is still read.
    assert_eq!(
        breakdown(
            &s,
            &key,
            site,
            "event:page",
            json!([["is", "visit:utm_source", ["letter"]]])
        ),
        counts(&[("example.com/page", 1.0), ("/page", 1.0)])
    );
}

/// `h` / `hashMode` as Plausible reads it (lib/plausible/ingestion/request.ex: `field
/// :hash_mode, :integer` filled by `Changeset.cast` from `h || hashMode`, and
/// `get_pathname` keeps the fragment when `hash_mode == 1`; external_controller_test.exs
/// "records hash when in hash mode" (h: 1) and "does not record hash when hash mode is
/// 0"): Ecto's integer cast takes integers and integer strings and fails on anything
/// else, and a failed cast is a 400, so `"h": true` is refused, not read as 1. `false`
/// (like null) falls through to `hashMode` (`||`); only 1 keeps the fragment.
#[test]
fn hash_mode_flag_is_read_as_plausibles_integer_cast() {
    let s = Server::start();
    let site = "hashflag.example.com";
    let key = site_with_stats_key(&s, site);
    let url = |p: &str| format!("https://{site}{p}");
    let send = |body: Value| {
        s.post_event(
            &body.to_string(),
            CHROME_UA,
            Some("198.51.100.8"),
            "text/plain",
        )
    };

    for (what, flag) in [
        ("h: true", json!({"h": true})),
        ("hashMode: true", json!({"hashMode": true})),
        ("h: 1.0", json!({"h": 1.0})),
        ("h: \"yes\"", json!({"h": "yes"})),
        ("h: \"1.0\"", json!({"h": "1.0"})),
        ("h: [1]", json!({"h": [1]})),
    ] {
        let mut body = json!({"n": "pageview", "u": url("/refused#/x"), "d": site});
        if let (Some(b), Some(f)) = (body.as_object_mut(), flag.as_object()) {
            b.extend(f.clone());
        }
        let err = assert_json_error(what, send(body), 400);
        assert_eq!(err["code"], "invalid_event", "{what}");
        assert!(
            err["error"].as_str().is_some_and(|e| e.contains("`h`")),
            "{what}: the error names the field: {err}"
        );
    }
    let cases = [
        (json!({"h": "1"}), "/s1#/a"),
        (json!({"h": "+01"}), "/s2#/a"),
        (json!({"h": false, "hashMode": 1}), "/s3#/a"),
        (json!({"h": false}), "/s4#/a"),
        (json!({"h": 2}), "/s5#/a"),
        (json!({"h": "0"}), "/s6#/a"),
        (json!({"h": -1}), "/s7#/a"),
    ];
    for (flag, path) in &cases {
        let mut body = json!({"n": "pageview", "u": url(path), "d": site});
        if let (Some(b), Some(f)) = (body.as_object_mut(), flag.as_object()) {
            b.extend(f.clone());
        }
        accepted(&format!("{flag}"), send(body));
    }
    settle(&s, &key, site, "pageviews", cases.len() as f64);
    assert_eq!(
        breakdown(&s, &key, site, "event:page", json!([])),
        counts(&[
            ("/s1#/a", 1.0),
            ("/s2#/a", 1.0),
            ("/s3#/a", 1.0),
            ("/s4", 1.0),
            ("/s5", 1.0),
            ("/s6", 1.0),
            ("/s7", 1.0)
        ])
    );
}

/// Revenue as Plausible reads it (extra/lib/plausible/ingestion/request/revenue.ex:
/// `revenue || $`, a map or a JSON string of one with both `amount` and `currency`; the
/// currency must be in `Plausible.Goal.valid_currencies`, current ISO 4217 codes exactly
/// as written; a string amount goes through `Decimal.parse`, which returns the leading
/// number and a rest that is ignored, a float through `Decimal.from_float`, an integer
/// through `Decimal.new`; ex_money's `Money.new` refuses NaN and infinity. Anything else
/// drops the revenue and keeps the event: external_controller_test.exs "does not fail
/// when revenue value is invalid" (amount "1831d", currency "ADSIE": 202, event stored).
/// Read back per page from the export (the Stats API has no revenue metric).
#[test]
fn revenue_amounts_are_read_as_plausibles_decimal_parse() {
    let s = Server::start();
    let site = "revenue.example.com";
    let key = site_with_stats_key(&s, site);
    let usd = |amount: Value| json!({"revenue": {"currency": "USD", "amount": amount}});
    let cases: Vec<(Value, Option<(f64, &str)>)> = vec![
        // Trailing text after the number is ignored.
        (usd(json!("12.5abc")), Some((12.5, "USD"))),
        (usd(json!("1831d")), Some((1831.0, "USD"))),
        (usd(json!("1,5")), Some((1.0, "USD"))),
        (usd(json!("1.2.3")), Some((1.2, "USD"))),
        (usd(json!("9.99 ")), Some((9.99, "USD"))),
        (usd(json!(".5")), Some((0.5, "USD"))),
        (usd(json!("5.")), Some((5.0, "USD"))),
        (usd(json!("-3")), Some((-3.0, "USD"))),
        (usd(json!("+4")), Some((4.0, "USD"))),
        (usd(json!("1e3")), Some((1000.0, "USD"))),
        (usd(json!("2.5E-1x")), Some((0.25, "USD"))),
        (usd(json!("1e")), Some((1.0, "USD"))),
        (usd(json!(10.25)), Some((10.25, "USD"))),
        (usd(json!(7)), Some((7.0, "USD"))),
        (usd(json!(0)), Some((0.0, "USD"))),
        // No leading number: no revenue.
        (usd(json!(" 12")), None),
        (usd(json!("abc")), None),
        (usd(json!("$12")), None),
        (usd(json!("")), None),
        (usd(json!(".")), None),
        (usd(json!("--1")), None),
        (usd(json!("NaN")), None),
        (usd(json!("Infinity")), None),
        (usd(json!("-inf")), None),
        (usd(json!("1e999")), None),
        (usd(json!("1e+")), None),
        (usd(json!(true)), None),
        (usd(json!(null)), None),
        (usd(json!({"v": 1})), None),
        // The currency: a current ISO 4217 code as written.
        (json!({"revenue": {"currency": "usd", "amount": 5}}), None),
        (json!({"revenue": {"currency": "ABC", "amount": 5}}), None),
        (json!({"revenue": {"currency": "EURO", "amount": 5}}), None),
        (json!({"revenue": {"currency": 978, "amount": 5}}), None),
        (json!({"revenue": {"amount": 5}}), None),
        (json!({"revenue": {"currency": "EUR"}}), None),
        (
            json!({"revenue": {"currency": "JPY", "amount": "500yen"}}),
            Some((500.0, "JPY")),
        ),
        // `$` as a JSON string, and `revenue: false` falling through to `$` (`||`).
        (
            json!({"$": "{\"currency\":\"EUR\",\"amount\":\"29.00 EUR\"}"}),
            Some((29.0, "EUR")),
        ),
        (
            json!({"revenue": false, "$": {"currency": "GBP", "amount": 3}}),
            Some((3.0, "GBP")),
        ),
    ];
    for (i, (revenue, _)) in cases.iter().enumerate() {
        let mut body = json!({"n": "Purchase", "u": format!("https://{site}/r/{i}"), "d": site});
        if let (Some(b), Some(r)) = (body.as_object_mut(), revenue.as_object()) {
            b.extend(r.clone());
        }
        accepted(
            &format!("revenue {revenue}"),
            s.post_event(
                &body.to_string(),
                CHROME_UA,
                Some("198.51.100.9"),
                "text/plain",
            ),
        );
    }
    settle(&s, &key, site, "events", cases.len() as f64);

    let (announced, rows) = s.export_rows(&key, site, "");
    let stored: BTreeMap<String, (Value, Value)> = rows
        .iter()
        .map(|row| {
            let page = row["page"].as_str().unwrap_or_default().to_string();
            (
                page,
                (
                    row["revenue_amount"].clone(),
                    row["revenue_currency"].clone(),
                ),
            )
        })
        .collect();
    assert_eq!(
        stored.len(),
        cases.len(),
        "every event is stored ({announced:?} rows announced): {rows:?}"
    );
    for (i, (revenue, want)) in cases.iter().enumerate() {
        let got = stored.get(&format!("/r/{i}")).cloned();
        let want = want.map(|(amount, currency)| (json!(amount), json!(currency)));
        let want = want.unwrap_or((Value::Null, Value::Null));
        let got = got.unwrap_or_else(|| panic!("{revenue}: /r/{i} not stored"));
        let same_amount = match (got.0.as_f64(), want.0.as_f64()) {
            (Some(a), Some(b)) => (a - b).abs() < 1e-9,
            _ => got.0 == want.0,
        };
        assert!(
            same_amount && got.1 == want.1,
            "{revenue}: stored {got:?}, want {want:?}"
        );
    }
}
