//! Retention and GDPR erasure (DESIGN §7). Admin token only: both delete data for good.

use crate::admin;
use crate::error::{ApiError, ApiResult};
use crate::extract::{bearer, json_body};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/sites/{site}/visitors/{visitor}",
            delete(delete_visitor),
        )
        .route("/api/v1/sites/{site}/prune", post(post_prune))
}

fn admin_site(
    state: &AppState,
    headers: &HeaderMap,
    domain: &str,
) -> ApiResult<std::sync::Arc<footfall_store::Site>> {
    let caller = state.authenticate(bearer(headers))?;
    state.require_admin(&caller)?;
    state.existing_site(domain)
}

/// Erases every event of one visitor, named by the id the site sent (`visitor_id`).
async fn delete_visitor(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((domain, visitor)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let site = admin_site(&state, &headers, &domain)?;
    let visitor_id = admin::visitor_id_of(&site, &visitor);
    // Forget the open visit too, so later events do not continue it.
    state
        .ingestor
        .pipeline
        .sessions
        .with(site.id, visitor_id, |slot| *slot = None);
    let deleted = admin::erase_visitor(state.storage.events.as_ref(), &site, &visitor).await?;
    Ok(Json(
        json!({"site": site.domain, "visitor_id": visitor, "deleted_events": deleted}),
    ))
}

/// Deletes events older than `older_than_days` days.
async fn post_prune(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(domain): Path<String>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let site = admin_site(&state, &headers, &domain)?;
    let request = json_body(&headers, body, 4096).await?;
    let days = request
        .get("older_than_days")
        .and_then(Value::as_u64)
        .and_then(|d| u32::try_from(d).ok())
        .filter(|d| *d >= 1)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_request",
                "`older_than_days` must be an integer >= 1",
            )
        })?;
    let deleted = admin::prune(state.storage.events.as_ref(), &site, days).await?;
    Ok(Json(
        json!({"site": site.domain, "older_than_days": days, "deleted_events": deleted}),
    ))
}
