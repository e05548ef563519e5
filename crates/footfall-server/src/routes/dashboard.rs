//! `GET /dashboard`: the web dashboard (dashboard/index.html, compiled in), one page that
//! reads the Stats API and the realtime endpoint with the key the user signs in with
//! (kept in the browser). `GET /` leads there, so opening the server's address shows it.

use crate::state::AppState;
use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;

const DASHBOARD_HTML: &str = include_str!("../../../../dashboard/index.html");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/dashboard") }))
        .route("/dashboard", get(get_dashboard))
}

async fn get_dashboard() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Revalidated on every load: an upgrade shows at once.
            (header::CACHE_CONTROL, "no-cache"),
            // The page talks to this server only and is never framed.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
            ),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        DASHBOARD_HTML,
    )
}
