//! `GET /api/openapi.json`: the OpenAPI 3.1 description of this API (docs/openapi.json,
//! compiled in). No authentication.

use crate::state::AppState;
use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

/// docs/openapi.json, as written by hand; tests check it matches what is served.
pub const OPENAPI_JSON: &str = include_str!("../../../../docs/openapi.json");

pub fn router() -> Router<AppState> {
    Router::new().route("/api/openapi.json", get(get_openapi))
}

async fn get_openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}
