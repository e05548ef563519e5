use crate::state::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/health", get(get_health))
}

async fn get_health(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "backlog_bytes": state.ingestor.backlog_bytes(),
        "open_visits": state.ingestor.pipeline.sessions.len(),
    }))
}
