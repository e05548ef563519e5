//! `POST /api/v1/events`: authenticated bulk and server-side ingestion.

use crate::error::{ApiError, ApiResult};
use crate::extract::{bearer, cdn_country, check_content_type, client_ip, read_body, user_agent};
use crate::state::{AppState, Caller};
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use footfall_ingest::pipeline::HitContext;
use footfall_ingest::wire::{JsonEventError, WireEvent, for_each_in_event_array, parse_event_json};
use footfall_ingest::{Acceptance, BulkHits};
use footfall_store::KeyScope;
use serde_json::{Value, json};
use std::net::SocketAddr;

/// A site's share of a bulk body: its valid hits, encoded.
struct SiteHits {
    site: std::sync::Arc<footfall_store::Site>,
    hits: BulkHits,
}

pub const BULK_BODY_LIMIT: usize = 16 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/events", post(post_events))
        .layer(DefaultBodyLimit::disable())
}

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

/// Parses a body into events (a JSON array, one object, or NDJSON lines) and hands each
/// to `each` with its index as soon as it is read. Each element is deserialized straight
/// from the body text, without a JSON tree in between; a bad element is reported by
/// index and does not spoil the others. A body that is not JSON at all is an error,
/// possibly after some elements were handed over: `each` must have no effect that
/// outlives the request until the whole body is parsed.
fn for_each_body_event(
    body: &[u8],
    mut each: impl FnMut(usize, Result<WireEvent, String>),
) -> Result<(), ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("invalid_json", "request body is not UTF-8"))?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let mut index = 0;
        return for_each_in_event_array(trimmed, |item| {
            each(index, item);
            index += 1;
        })
        .map_err(|e| {
            ApiError::bad_request(
                "invalid_json",
                format!("request body is not a valid JSON array: {e}"),
            )
        });
    }
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(first) = lines.next() else {
        return Err(ApiError::bad_request(
            "empty_body",
            "send a JSON array or NDJSON of events",
        ));
    };
    let mut rest = lines.peekable();
    let parsed = parse_event_json(first);
    if rest.peek().is_none() {
        if let Err(JsonEventError::Syntax(e)) = &parsed {
            return Err(ApiError::bad_request(
                "invalid_json",
                format!("request body is not valid JSON: {e}"),
            ));
        }
        // A lone number, string or `null` is not a batch with one bad event.
        if !first.trim_start().starts_with('{') {
            return Err(ApiError::bad_request(
                "invalid_json",
                "send a JSON array of event objects, NDJSON (one object per line) or one event object",
            ));
        }
    }
    // One line's event, or why it is rejected.
    let event = |parsed| match parsed {
        Ok((hit, _)) => Ok(hit),
        Err(JsonEventError::Invalid(e)) => Err(e),
        Err(JsonEventError::Syntax(e)) => Err(format!("invalid JSON: {e}")),
    };
    each(0, event(parsed));
    for (index, line) in rest.enumerate() {
        each(index + 1, event(parse_event_json(line)));
    }
    Ok(())
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

    // A site key names its site once for the whole body.
    let key_site = match &caller {
        Caller::Key(key) => state.indexes.read().sites_by_id.get(&key.site_id).cloned(),
        // `authenticate` gives no users (they sign in with a cookie, not a bearer token).
        Caller::Admin | Caller::User(_) => None,
    };
    let ctx = HitContext {
        ip: client_ip(&state, peer, &headers).to_string(),
        user_agent: user_agent(&headers),
        now_us: chrono::Utc::now().timestamp_micros(),
        server_side: true,
        hints: Default::default(),
        cdn_country: cdn_country(&state, peer, &headers),
    };
    let mut rejected = Vec::new();
    // Valid events grouped by site, encoded as parsed.
    let mut by_site: Vec<SiteHits> = Vec::new();
    // The previous event's domain and site: a body usually names one site throughout.
    let mut last: Option<(String, Option<std::sync::Arc<footfall_store::Site>>)> = None;
    // A caller not allowed to ingest for an event's site: the whole body is refused.
    let mut refused: Option<ApiError> = None;
    for_each_body_event(&body, |index, item| {
        if refused.is_some() {
            return;
        }
        let hit = match item {
            Ok(hit) => hit,
            Err(error) => {
                rejected.push(json!({"index": index, "error": error}));
                return;
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
                return;
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
            return;
        };
        if let Err(e) = state.authorize(&caller, &site, KeyScope::Ingest) {
            refused = Some(e);
            return;
        }
        let at = match by_site.iter().position(|s| s.site.id == site.id) {
            Some(at) => at,
            None => {
                // Sized for the rest of the body (usually one site).
                let hits = BulkHits::new(&site, &ctx, body.len());
                by_site.push(SiteHits { site, hits });
                by_site.len() - 1
            }
        };
        if let Err(error) = by_site[at].hits.push(&hit) {
            rejected.push(json!({"index": index, "error": error}));
        }
    })?;
    if let Some(refused) = refused {
        return Err(refused);
    }
    // The events are encoded: the body (megabytes) need not wait for the fsync.
    drop(body);
    if let (Caller::Key(_), true) = (&caller, by_site.is_empty()) {
        // Nothing valid, but the key's scope still decides 403 vs 202.
        if let Some(site) = &key_site {
            state.authorize(&caller, site, KeyScope::Ingest)?;
        }
    }

    // Validated and logged now; enriched, sessionized and stored behind the log, so
    // hits dropped there (bots, block rules) are counted per site, not in this reply.
    let (mut accepted, mut duplicates) = (0usize, 0usize);
    for SiteHits { hits, .. } in by_site {
        if hits.is_empty() {
            continue;
        }
        for answer in state.ingestor.accept(hits).await? {
            accepted += 1;
            if answer == Acceptance::Duplicate {
                duplicates += 1;
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
