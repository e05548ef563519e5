//! The host application keeps answering at full speed when footfall is unreachable:
//! hits beyond the buffer are dropped and counted, shutdown does not hang.

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use footfall_tower::{SendOptions, Tracker};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

/// A loopback port with nothing listening: connections are refused at once.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_app_answers_quickly_when_footfall_is_down() {
    let tracker = Tracker::builder("example.com")
        .endpoint(&format!("http://127.0.0.1:{}", closed_port()), "key")
        .send_options(SendOptions {
            buffer: 8,
            batch: 4,
            flush_interval: Duration::from_millis(20),
            max_attempts: 1000,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        })
        .build()
        .expect("build");
    let app = Router::new()
        .route("/", get(|| async { Html("<p>hi</p>") }))
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

    let client = reqwest::Client::new();
    let n = 200u64;
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    for _ in 0..n {
        let t = Instant::now();
        let r = client
            .get(format!("http://{addr}/"))
            .header(
                "User-Agent",
                "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
            )
            .send()
            .await
            .expect("host app answers");
        assert_eq!(r.status(), 200);
        assert!(r.headers().get("set-cookie").is_some());
        slowest = slowest.max(t.elapsed());
    }
    let total = start.elapsed();
    assert!(
        slowest < Duration::from_millis(250),
        "slowest request {slowest:?}"
    );
    assert!(
        total < Duration::from_secs(10),
        "{n} requests took {total:?}"
    );

    let stats = tracker.stats();
    assert_eq!(stats.sent, 0);
    assert_eq!(stats.queued + stats.dropped_full, n, "{stats:?}");
    // At most the buffer plus the batch being retried are held; the rest is dropped.
    assert!(stats.dropped_full >= n - 8 - 4, "{stats:?}");
    assert!(stats.retries > 0, "{stats:?}");

    let t = Instant::now();
    let after = tracker.shutdown(Duration::from_secs(2)).await;
    assert!(t.elapsed() < Duration::from_secs(3), "shutdown hung");
    assert_eq!(after.sent, 0);
}
