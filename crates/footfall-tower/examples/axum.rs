//! An axum app with footfall page-view tracking.
//!
//! ```sh
//! footfall serve &
//! footfall site add example.com
//! KEY=$(footfall key create --site example.com --scope ingest | tail -n1)
//! FOOTFALL_URL=http://127.0.0.1:8070 FOOTFALL_KEY=$KEY \
//!     cargo run --release -p footfall-tower --example axum
//! # then open http://127.0.0.1:3000/ and /about; POST /api/chat is the `chat` event
//! ```

use axum::http::Method;
use axum::response::Html;
use axum::routing::{get, post};
use axum::{Json, Router};
use footfall_tower::Tracker;
use std::net::SocketAddr;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("FOOTFALL_URL").unwrap_or_else(|_| "http://127.0.0.1:8070".into());
    let key = std::env::var("FOOTFALL_KEY").unwrap_or_default();
    let tracker = Tracker::builder("example.com")
        .endpoint(&url, &key)
        // Local development over plain HTTP; keep Secure cookies in production.
        .secure_cookies(false)
        .base_url("https://example.com")
        .track_route(Method::POST, "/api/chat", "chat")
        .build()?;

    let app = Router::new()
        .route(
            "/",
            get(|| async { Html("<h1>Home</h1><a href=/about>About</a>") }),
        )
        .route("/about", get(|| async { Html("<h1>About</h1>") }))
        .route(
            "/api/chat",
            post(|| async { Json(serde_json::json!({"reply": "hello"})) }),
        )
        .layer(tracker.layer());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://127.0.0.1:3000 (tracking to {url})");
    axum::serve(
        listener,
        // ConnectInfo gives the layer the client's address.
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    // Send what is still queued before exiting.
    let stats = tracker.shutdown(Duration::from_secs(5)).await;
    println!("footfall: {stats:?}");
    Ok(())
}
