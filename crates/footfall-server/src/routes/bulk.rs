//! `POST /api/v1/events`: authenticated bulk and server-side ingestion.

use crate::error::{ApiError, ApiResult};
use crate::extract::{bearer, cdn_country, check_content_type, client_ip, read_body, user_agent};
use crate::state::{AppState, Caller};
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use footfall_ingest::Acceptance;
use footfall_ingest::pipeline::HitContext;
use footfall_ingest::wire::{JsonEventError, WireEvent, parse_event_array, parse_event_json};
use footfall_store::KeyScope;
use serde_json::{Value, json};
use std::net::SocketAddr;

/// A site's share of a bulk body: its hits and their indexes in the body.
struct SiteHits {
    site: std::sync::Arc<footfall_store::Site>,
    indexes: Vec<usize>,
    hits: Vec<WireEvent>,
}

pub const BULK_BODY_LIMIT: usize = 16 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/events", post(post_events))
        .layer(DefaultBodyLimit::disable())
}

/// Parses a body into events: a JSON array, one object, or NDJSON lines. Each element
/// is deserialized straight from the body text, without a JSON tree in between; a bad
/// element is reported by index and does not spoil the others.
/// Whether `domain` (as an event sends it) names the site `site_domain` (normalised:
/// lowercase, no `www.`), without allocating per event.
fn names_domain(domain: &str, site_domain: &str) -> bool {
    let d = domain.trim();
    let d = match d.get(..4) {
        Some(www) if www.eq_ignore_ascii_case("www.") => &d[4..],
        _ => d,
    };
    d.eq_ignore_ascii_case(site_domain)
}

fn parse_body(body: &[u8]) -> Result<Vec<Result<WireEvent, String>>, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("invalid_json", "request body is not UTF-8"))?;
    let trimmed = text.trim_start();
    let one = |item: &str| match parse_event_json(item) {
        Ok((hit, _)) => Ok(hit),
        Err(JsonEventError::Invalid(e)) => Err(e),
        Err(JsonEventError::Syntax(e)) => Err(format!("invalid JSON: {e}")),
    };
    if trimmed.starts_with('[') {
        let items = parse_event_array(trimmed).map_err(|e| {
            ApiError::bad_request(
                "invalid_json",
                format!("request body is not a valid JSON array: {e}"),
            )
        })?;
        return Ok(items);
    }
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return Err(ApiError::bad_request(
            "empty_body",
            "send a JSON array or NDJSON of events",
        ));
    }
    if let [line] = lines.as_slice() {
        if let Err(JsonEventError::Syntax(e)) = parse_event_json(line) {
            return Err(ApiError::bad_request(
                "invalid_json",
                format!("request body is not valid JSON: {e}"),
            ));
        }
        // A lone number, string or `null` is not a batch with one bad event.
        if !line.trim_start().starts_with('{') {
            return Err(ApiError::bad_request(
                "invalid_json",
                "send a JSON array of event objects, NDJSON (one object per line) or one event object",
            ));
        }
    }
    Ok(lines.into_iter().map(one).collect())
}

async fn post_events(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let caller = state.authenticate(bearer(&headers))?;
    check_content_type(
        &headers,
        &[
            "application/x-ndjson",
            "application/ndjson",
            "application/jsonl",
        ],
    )?;
    let body = read_body(body, BULK_BODY_LIMIT).await?;
    let items = parse_body(&body)?;
    // The parsed events own their text: the body (megabytes) need not wait for the fsync.
    drop(body);

    // A site key names its site once for the whole body.
    let key_site = match &caller {
        Caller::Key(key) => state.indexes.read().sites_by_id.get(&key.site_id).cloned(),
        // `authenticate` gives no users (they sign in with a cookie, not a bearer token).
        Caller::Admin | Caller::User(_) => None,
    };
    let mut rejected = Vec::new();
    // Events grouped by site, keeping their index for per-event errors.
    let mut by_site: Vec<SiteHits> = Vec::new();
    let count = items.len();
    // The previous event's domain and site: a body usually names one site throughout.
    let mut last: Option<(String, Option<std::sync::Arc<footfall_store::Site>>)> = None;
    for (index, item) in items.into_iter().enumerate() {
        let hit = match item {
            Ok(hit) => hit,
            Err(error) => {
                rejected.push(json!({"index": index, "error": error}));
                continue;
            }
        };
        let site = match (&caller, &hit.domain) {
            // A site key stores only its own site's events: one naming another site is
            // refused, not filed under the key's site.
            (Caller::Key(_), Some(domain))
                if key_site
                    .as_ref()
                    .is_some_and(|s| !names_domain(domain, &s.domain)) =>
            {
                rejected.push(json!({"index": index, "error": format!(
                    "domain {domain:?} is not this key's site; send it with that site's key"
                )}));
                continue;
            }
            (Caller::Key(_), _) => key_site.clone(),
            (Caller::Admin, Some(domain)) => match &last {
                Some((d, site)) if d == domain => site.clone(),
                _ => {
                    let site = state.site(domain);
                    last = Some((domain.clone(), site.clone()));
                    site
                }
            },
            (Caller::Admin, None) | (Caller::User(_), _) => None,
        };
        let Some(site) = site else {
            rejected.push(json!({"index": index, "error": "unknown site: give `domain` (admin token) or use a site key"}));
            continue;
        };
        state.authorize(&caller, &site, KeyScope::Ingest)?;
        let at = match by_site.iter().position(|s| s.site.id == site.id) {
            Some(at) => at,
            None => {
                // Sized for the whole body (usually one site): growing a multi-megabyte
                // vector by doubling faults in fresh pages at every step.
                by_site.push(SiteHits {
                    site,
                    indexes: Vec::with_capacity(count - index),
                    hits: Vec::with_capacity(count - index),
                });
                by_site.len() - 1
            }
        };
        by_site[at].indexes.push(index);
        by_site[at].hits.push(hit);
    }
    if let (Caller::Key(_), true) = (&caller, by_site.is_empty()) {
        // Nothing valid, but the key's scope still decides 403 vs 202.
        if let Some(site) = &key_site {
            state.authorize(&caller, site, KeyScope::Ingest)?;
        }
    }

    let ctx = HitContext {
        ip: client_ip(&state, peer, &headers).to_string(),
        user_agent: user_agent(&headers),
        now_us: chrono::Utc::now().timestamp_micros(),
        server_side: true,
        hints: Default::default(),
        cdn_country: cdn_country(&state, peer, &headers),
    };
    // Validated and logged now; enriched, sessionized and stored behind the log, so
    // hits dropped there (bots, block rules) are counted per site, not in this reply.
    let (mut accepted, mut duplicates) = (0usize, 0usize);
    for SiteHits {
        site,
        indexes,
        hits,
    } in by_site
    {
        let answers = state.ingestor.accept(&site, hits, &ctx).await?;
        for (index, answer) in indexes.into_iter().zip(answers) {
            match answer {
                Acceptance::Logged => accepted += 1,
                Acceptance::Duplicate => {
                    accepted += 1;
                    duplicates += 1;
                }
                Acceptance::Rejected(error) => {
                    rejected.push(json!({"index": index, "error": error}))
                }
            }
        }
    }
    rejected.sort_by_key(|r| r["index"].as_u64());
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "accepted": accepted,
            "rejected": rejected,
            "duplicates": duplicates,
        })),
    ))
}
