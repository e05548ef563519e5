//! `POST /api/v2/query`: the Plausible Stats API v2, and native stats endpoints.

use crate::error::{ApiError, ApiResult};
use crate::extract::{bearer, check_content_type, parse_json, read_body};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use footfall_core::query::{SiteContext, parse_query, site_id_of};
use footfall_store::{KeyScope, Site};
use serde_json::{Value, json};
use std::sync::Arc;

const QUERY_BODY_LIMIT: usize = 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v2/query", post(post_query))
        .route("/api/v1/sites/{site}/drops", get(get_drops))
        .route("/api/v1/sites/{site}/realtime", get(get_realtime))
}

/// Resolves the site named in a request and checks the caller may read its stats.
async fn stats_site(state: &AppState, headers: &HeaderMap, domain: &str) -> ApiResult<Arc<Site>> {
    let caller = state.authenticate(bearer(headers))?;
    let site = state.existing_site(domain)?;
    state.authorize(&caller, &site, KeyScope::Stats)?;
    state.spend_stats_request(&caller).await?;
    Ok(site)
}

pub async fn site_context(state: &AppState, site: &Site) -> ApiResult<SiteContext> {
    let timezone = site.timezone.parse().unwrap_or(chrono_tz::UTC);
    Ok(SiteContext {
        domain: site.domain.clone(),
        timezone,
        goals: state.storage.meta.goals(site.id).await?,
    })
}

async fn post_query(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    check_content_type(&headers, &[])?;
    let body = read_body(body, QUERY_BODY_LIMIT).await?;
    let request = parse_json(&body)?;
    // Authenticate before validating, so an anonymous caller learns nothing.
    let domain = match site_id_of(&request) {
        Ok(d) => d.to_string(),
        Err(e) => {
            state.authenticate(bearer(&headers))?;
            return Err(ApiError::bad_request("invalid_query", e.message));
        }
    };
    let site = stats_site(&state, &headers, &domain).await?;
    let ctx = site_context(&state, &site).await?;
    let query = parse_query(&request, &ctx, chrono::Utc::now())
        .map_err(|e| ApiError::bad_request("invalid_query", e.message))?;
    let echo = query.echo.clone();
    let out = state.storage.query.run(site.id, ctx, query).await?;
    let results: Vec<Value> = out
        .results
        .into_iter()
        .map(|r| json!({"metrics": r.metrics, "dimensions": r.dimensions}))
        .collect();
    Ok(Json(
        json!({"results": results, "meta": out.meta, "query": echo}),
    ))
}

async fn get_drops(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(domain): Path<String>,
) -> ApiResult<Json<Value>> {
    let site = stats_site(&state, &headers, &domain).await?;
    let drops = state.storage.meta.drops(site.id).await?;
    let total: u64 = drops.iter().map(|d| d.count).sum();
    let bots: u64 = drops
        .iter()
        .filter(|d| d.reason == "bot" || d.reason == "headless")
        .map(|d| d.count)
        .sum();
    Ok(Json(json!({
        "site": site.domain,
        "dropped": total,
        "bots_dropped": bots,
        "by_reason": drops,
    })))
}

/// Visitors seen in the last 5 minutes and visits still open, from the live state.
async fn get_realtime(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(domain): Path<String>,
) -> ApiResult<Json<Value>> {
    let site = stats_site(&state, &headers, &domain).await?;
    let now = chrono::Utc::now().timestamp_micros();
    let timeout_us = i64::from(site.session_timeout_secs) * 1_000_000;
    let open = state
        .storage
        .live
        .active_visitors(site.id, now - timeout_us)
        .await?;
    let recent: Vec<_> = open
        .iter()
        .filter(|v| v.last_seen_us >= now - 5 * 60 * 1_000_000)
        .collect();
    let mut pages: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
    for v in &recent {
        *pages.entry(v.pathname.as_str()).or_insert(0) += 1;
    }
    let mut current_pages: Vec<_> = pages
        .into_iter()
        .map(|(page, visitors)| json!({"page": page, "visitors": visitors}))
        .collect();
    current_pages.sort_by_key(|p| std::cmp::Reverse(p["visitors"].as_u64()));
    Ok(Json(json!({
        "site": site.domain,
        "visitors_last_5_minutes": recent.len(),
        "active_sessions": open.len(),
        "current_pages": current_pages,
    })))
}
