//! `POST /api/event`: the Plausible Events API.

use crate::error::{ApiError, ApiResult};
use crate::extract::{
    cdn_country, check_content_type, client_hints, client_ip, parse_json, read_body, user_agent,
};
use crate::state::{AppState, normalize_domain};
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use footfall_ingest::pipeline::{HitContext, HitOutcome};
use footfall_ingest::wire::parse_event;
use std::net::SocketAddr;

pub const EVENT_BODY_LIMIT: usize = 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/event", post(post_event))
        .layer(DefaultBodyLimit::disable())
}

async fn post_event(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    check_content_type(&headers, &[])?;
    let body = read_body(body, EVENT_BODY_LIMIT).await?;
    let value = parse_json(&body)?;
    let hit = parse_event(&value).map_err(|m| ApiError::bad_request("invalid_event", m))?;
    // `domain` may list several sites; without it, the URL's host names the site.
    let domains: Vec<String> = match &hit.domain {
        Some(d) => d
            .split(',')
            .map(normalize_domain)
            .filter(|d| !d.is_empty())
            .collect(),
        None => url_host(&hit.url).into_iter().collect(),
    };
    let sites: Vec<_> = domains.iter().filter_map(|d| state.site(d)).collect();
    if sites.is_empty() {
        return Err(ApiError::not_found(
            "unknown_site",
            format!(
                "no site is registered for domain {:?}; add it with `footfall site add`",
                domains.join(",")
            ),
        ));
    }
    let ctx = HitContext {
        ip: client_ip(&state, peer, &headers).to_string(),
        user_agent: user_agent(&headers),
        now_us: chrono::Utc::now().timestamp_micros(),
        server_side: false,
        hints: client_hints(&headers),
        cdn_country: cdn_country(&state, peer, &headers),
    };
    let mut dropped = None;
    for site in sites {
        let outcomes = state
            .ingestor
            .submit(&site, vec![hit.clone()], &ctx)
            .await?;
        for outcome in outcomes {
            match outcome {
                HitOutcome::Rejected(msg) => {
                    return Err(ApiError::bad_request("invalid_event", msg));
                }
                HitOutcome::Dropped(reason) => dropped = Some(reason),
                HitOutcome::Accepted(_) | HitOutcome::Stored | HitOutcome::Duplicate => {}
            }
        }
    }
    let mut resp = (StatusCode::ACCEPTED, "ok").into_response();
    if let Some(reason) = dropped {
        resp.headers_mut().insert(
            "x-footfall-dropped",
            HeaderValue::from_static(reason.as_str()),
        );
    }
    Ok(resp)
}

fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let host = rest.split(['/', '?', '#']).next()?;
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = host.split(':').next()?;
    (!host.is_empty()).then(|| normalize_domain(host))
}
