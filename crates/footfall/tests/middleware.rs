//! footfall-tower on a real axum app sending to the real footfall binary: page views
//! and a mapped custom event arrive, one visitor per cookie across requests, bots and
//! assets stay out.

mod common;

use axum::Router;
use axum::http::Method;
use axum::response::Html;
use axum::routing::{get, post};
use common::{CHROME_UA, FIREFOX_UA, Server, recent_range, site_with_stats_key};
use footfall_tower::{SendOptions, Tracker};
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;

/// The `ff_vid=...; ff_sid=...` cookie header a browser would send back.
fn jar(resp: &reqwest::Response, jar: &mut Vec<(String, String)>) {
    for v in resp.headers().get_all("set-cookie") {
        let Some((pair, _)) = v.to_str().unwrap_or("").split_once(';') else {
            continue;
        };
        if let Some((k, val)) = pair.split_once('=') {
            jar.retain(|(name, _)| name != k);
            jar.push((k.to_string(), val.to_string()));
        }
    }
}

fn cookie_header(jar: &[(String, String)]) -> String {
    jar.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn middleware_page_views_reach_footfall_with_one_visitor_per_cookie() {
    let server = Server::start();
    let site = "app.example";
    let stats = site_with_stats_key(&server, site);
    let ingest = server.create_key(site, "ingest");
    let rt = tokio::runtime::Runtime::new().expect("runtime");

    let sent = rt.block_on(async {
        let tracker = Tracker::builder(site)
            .endpoint(&server.base, &ingest)
            .base_url("https://app.example")
            .track_route(Method::POST, "/api/chat", "chat")
            .send_options(SendOptions {
                flush_interval: Duration::from_millis(50),
                ..SendOptions::default()
            })
            .build()
            .expect("tracker");
        let app = Router::new()
            .route("/", get(|| async { Html("<h1>home</h1>") }))
            .route("/about", get(|| async { Html("<h1>about</h1>") }))
            .route("/style.css", get(|| async { "body{}" }))
            .route(
                "/api/chat",
                post(|| async { axum::Json(json!({"ok": true})) }),
            )
            .layer(tracker.layer());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await;
        });
        let http = reqwest::Client::new();
        let get = |path: &str, ua: &str, cookies: &[(String, String)]| {
            http.get(format!("http://{addr}{path}"))
                .header("User-Agent", ua)
                .header("Cookie", cookie_header(cookies))
                .send()
        };

        // Visitor A: three page views and a chat with its cookies; an asset.
        let mut a = Vec::new();
        for path in ["/", "/about", "/", "/style.css"] {
            let r = get(path, CHROME_UA, &a).await.expect("GET");
            assert_eq!(r.status(), 200);
            jar(&r, &mut a);
        }
        assert!(a.iter().any(|(k, _)| k == "ff_vid") && a.iter().any(|(k, _)| k == "ff_sid"));
        let r = http
            .post(format!("http://{addr}/api/chat"))
            .header("User-Agent", CHROME_UA)
            .header("Cookie", cookie_header(&a))
            .send()
            .await
            .expect("POST");
        assert_eq!(r.status(), 200);
        // Visitor B: same browser and address, no cookies kept: a second visitor.
        get("/", CHROME_UA, &[]).await.expect("GET");
        // Visitor C: Firefox, one page view; a bot is not tracked.
        get("/about", FIREFOX_UA, &[]).await.expect("GET");
        get("/", "Mozilla/5.0 (compatible; Googlebot/2.1)", &[])
            .await
            .expect("GET");
        let stats = tracker.shutdown(Duration::from_secs(10)).await;
        assert_eq!(stats.dropped(), 0, "{stats:?}");
        stats.sent
    });
    assert_eq!(sent, 6, "5 page views and 1 chat event");

    let range = recent_range();
    server.wait_for_metric(
        &stats,
        site,
        &range,
        "pageviews",
        5.0,
        Duration::from_secs(20),
    );
    let m = server.aggregate(
        &stats,
        site,
        &range,
        &["pageviews", "visitors", "visits", "events"],
    );
    assert_eq!(
        m,
        vec![5.0, 3.0, 3.0, 6.0],
        "pageviews, visitors, visits, events"
    );
    // Visitor A's four hits are one visit of one visitor.
    let chat = server.aggregate_filtered(
        &stats,
        site,
        &range,
        &["visitors", "events"],
        &json!([["is", "event:name", ["chat"]]]),
    );
    assert_eq!(chat, vec![1.0, 1.0]);
    let about = server.aggregate_filtered(
        &stats,
        site,
        &range,
        &["visitors", "pageviews"],
        &json!([["is", "event:page", ["/about"]]]),
    );
    assert_eq!(about, vec![2.0, 2.0]);
    let rows = server.query_ok(
        &stats,
        &json!({"site_id": site, "metrics": ["visits"], "date_range": range,
                "dimensions": ["visit:entry_page"], "order_by": [["visit:entry_page", "asc"]]}),
    );
    let entries: Vec<(String, f64)> = rows
        .iter()
        .map(|r| {
            (
                r["dimensions"][0].as_str().unwrap_or("").to_string(),
                r["metrics"][0].as_f64().unwrap_or(-1.0),
            )
        })
        .collect();
    assert_eq!(
        entries,
        vec![("/".to_string(), 2.0), ("/about".to_string(), 1.0)]
    );
    // Page views by entry page: with a filter (the Stats API v2 refuses the event metric
    // with the session-only dimension, as Plausible's).
    for (entry, pageviews) in [("/", 4.0), ("/about", 1.0)] {
        let got = server.aggregate_filtered(
            &stats,
            site,
            &range,
            &["pageviews"],
            &json!([["is", "visit:entry_page", [entry]]]),
        );
        assert_eq!(
            got,
            vec![pageviews],
            "page views of visits entering on {entry}"
        );
    }
}
