//! `/api/v1/sites/{site}/labels`: visitor classification rules (`visit:label`). The
//! configuration file's rules are read-only here; the API's own rules are replaced as a
//! whole and apply, before the file's, to visits that start afterwards.

use crate::error::{ApiError, ApiResult};
use crate::extract::{bearer, json_body};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use footfall_core::labels::LabelRule;
use footfall_store::KeyScope;
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/sites/{site}/labels",
        get(get_labels).put(put_labels),
    )
}

async fn api_rules(state: &AppState, site_id: u32) -> ApiResult<Vec<LabelRule>> {
    Ok(state
        .storage
        .meta
        .label_rules()
        .await?
        .into_iter()
        .find(|(id, _)| *id == site_id)
        .map(|(_, rules)| rules)
        .unwrap_or_default())
}

fn answer(state: &AppState, domain: &str, rules: Vec<LabelRule>) -> Json<Value> {
    let enrichment = state.ingestor.pipeline.enrichment();
    Json(json!({
        "site_id": domain,
        "rules": rules,
        "config_rules": enrichment.labels.config_rules(domain),
    }))
}

async fn get_labels(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(domain): Path<String>,
) -> ApiResult<Json<Value>> {
    let caller = state.authenticate(bearer(&headers))?;
    let site = state.existing_site(&domain)?;
    state.authorize(&caller, &site, KeyScope::Stats)?;
    let rules = api_rules(&state, site.id).await?;
    Ok(answer(&state, &site.domain, rules))
}

async fn put_labels(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(domain): Path<String>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let caller = state.authenticate(bearer(&headers))?;
    state.require_admin(&caller)?;
    let site = state.existing_site(&domain)?;
    let v = json_body(&headers, body, 64 * 1024).await?;
    let rules_json = v.get("rules").cloned().ok_or_else(|| {
        ApiError::bad_request(
            "invalid_request",
            "`rules` (array of label rules) is required",
        )
    })?;
    let rules: Vec<LabelRule> = serde_json::from_value(rules_json)
        .map_err(|e| ApiError::bad_request("invalid_rules", format!("label rules: {e}")))?;
    if let Some((index, problem)) = footfall_enrich::rules::first_problem(&rules) {
        return Err(ApiError::bad_request(
            "invalid_rules",
            format!("label rule {index}: {problem}"),
        ));
    }
    state
        .storage
        .meta
        .set_label_rules(site.id, rules.clone())
        .await?;
    state
        .ingestor
        .pipeline
        .enrichment()
        .labels
        .set_api_rules(&site.domain, rules.clone());
    Ok(answer(&state, &site.domain, rules))
}
