//! `POST /api/event`: the Plausible Events API.

use crate::cookie;
use crate::error::{ApiError, ApiResult};
use crate::extract::{browser_hit_context, check_content_type, read_body};
use crate::state::{AppState, normalize_domain};
use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use footfall_core::event::PAGEVIEW;
use footfall_ingest::pipeline::HitOutcome;
use footfall_ingest::wire::{JsonEventError, parse_event_json};
use footfall_store::IdentityMode;
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
    // The whole request rather than a `HeaderMap` extractor, which clones the headers.
    request: Request,
) -> ApiResult<Response> {
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    check_content_type(headers, &[])?;
    let body = read_body(body, EVENT_BODY_LIMIT).await?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("invalid_json", "request body is not UTF-8"))?;
    let (mut hit, cookie_flag) = parse_event_json(text).map_err(|e| match e {
        JsonEventError::Syntax(m) => ApiError::bad_request(
            "invalid_json",
            format!("request body is not valid JSON: {m}"),
        ),
        JsonEventError::Invalid(m) => ApiError::bad_request("invalid_event", m),
    })?;
    // `domain` may list several sites; without it, the URL's host names the site. A blank
    // domain, or none and a URL without a host, is a bad request (Plausible's
    // `map_domains`: "domain: can't be blank").
    let domains: Vec<String> = match &hit.domain {
        Some(d) => d
            .split(',')
            .map(normalize_domain)
            .filter(|d| !d.is_empty())
            .collect(),
        None => url_host(&hit.url).into_iter().collect(),
    };
    if domains.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_event",
            "`domain` can't be blank: send the site as registered (or a URL with a host to take it from)",
        ));
    }
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
    // Cookie mode: the tracker's `data-cookie` sends `c`, or the site is set to cookies.
    let cookie_mode = cookie_flag
        || sites
            .iter()
            .any(|s| s.identity_mode == IdentityMode::Cookie);
    let identity = cookie_mode.then(|| cookie::identity(headers));
    if let Some(id) = &identity {
        cookie::apply(id, &mut hit);
    }
    let is_pageview = hit.name == PAGEVIEW;
    let ctx = browser_hit_context(&state, peer, headers);
    let mut dropped = None;
    // The first site's visit: for the cookie and the live channel.
    let mut stored = None;
    let mut sites = sites.into_iter().peekable();
    while let Some(site) = sites.next() {
        // A copy of the hit per further site; the last (usually the only) one takes it.
        let this = if sites.peek().is_some() {
            hit.clone()
        } else {
            std::mem::take(&mut hit)
        };
        let outcomes = state.ingestor.submit(&site, vec![this], &ctx).await?;
        for outcome in outcomes {
            match outcome {
                HitOutcome::Rejected(msg) => {
                    return Err(ApiError::bad_request("invalid_event", msg));
                }
                HitOutcome::Dropped(reason) => dropped = Some(reason),
                HitOutcome::Stored {
                    visitor_id,
                    session_id,
                } if stored.is_none() => stored = Some((site.clone(), visitor_id, session_id)),
                HitOutcome::Accepted(_) | HitOutcome::Stored { .. } | HitOutcome::Duplicate => {}
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
    if let Some((site, visitor_id, session_id)) = stored {
        if let Some(id) = &identity {
            cookie::set(
                resp.headers_mut(),
                id,
                session_id,
                site.session_timeout_secs,
            );
        }
        // The tracker opens the visitor's live channel with this token (docs/TRACKER.md).
        if is_pageview && state.config.live_invites(&site.domain) {
            let token = state
                .storage
                .live
                .channel_token(site.id, visitor_id)
                .await?;
            if let Ok(v) = HeaderValue::from_str(&token) {
                resp.headers_mut().insert(LIVE_HEADER, v);
            }
        }
    }
    Ok(resp)
}

/// Response header naming the visitor's live channel (live invitations on).
pub const LIVE_HEADER: &str = "x-footfall-live";

/// The host of a page URL, for the site when no `domain` is sent: after `scheme://` or a
/// leading `//`. A URL without either has no host (Plausible's `URI.parse`): the `://` in
/// "example.com/a?next=https://other.example" does not make `other.example` the site.
pub fn url_host(url: &str) -> Option<String> {
    let url = url.trim();
    let rest = match url.strip_prefix("//") {
        Some(rest) => rest,
        None => {
            let (scheme, rest) = url.split_once("://")?;
            let mut chars = scheme.chars();
            let is_scheme = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
            if !is_scheme {
                return None;
            }
            rest
        }
    };
    let host = footfall_enrich::url::authority_host(rest);
    (!host.is_empty()).then(|| normalize_domain(host))
}

/// `POST /api/event` answered before the router: the hottest route skips route matching,
/// the boxed clone of its service and the CORS, JSON-error and panic layers' futures,
/// which together cost about as much server CPU per hit as the handler itself (perf under
/// `footfall bench --only event-api`: the handler 22 % of the server's samples, the
/// layers between the connection and it ~17 %). It answers as the routed handler does:
/// the same CORS headers, a panic as a JSON 500 `internal_error` (the router's message
/// is tower-http's "Service panicked"; this one says what failed). Every other request
/// (other paths, other methods, such as a CORS preflight) goes to `inner`, and so does
/// every request while the router's per-request log lines are on (`tower_http=debug`).
#[derive(Clone)]
pub struct EventFirst<S> {
    inner: S,
    state: AppState,
    enabled: bool,
}

impl<S> EventFirst<S> {
    pub fn new(inner: S, state: AppState) -> Self {
        let enabled = !tracing::enabled!(target: "tower_http::trace", tracing::Level::DEBUG);
        Self {
            inner,
            state,
            enabled,
        }
    }
}

/// What the router's permissive CORS layer (`router`) adds to a non-preflight answer;
/// `cross_origin_trackers_pass_cors` holds both to the same headers.
fn add_cors(resp: &mut Response) {
    use axum::http::header;
    let headers = resp.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
}

async fn answer_event(state: AppState, request: Request) -> Response {
    use futures::FutureExt;
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let handled =
        std::panic::AssertUnwindSafe(post_event(State(state), ConnectInfo(peer), request))
            .catch_unwind()
            .await;
    let mut resp = match handled {
        Ok(answer) => answer.into_response(),
        Err(_) => {
            tracing::error!("POST /api/event panicked");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "the server failed while handling this request",
            )
            .into_response()
        }
    };
    add_cors(&mut resp);
    resp
}

impl<S> tower::Service<Request> for EventFirst<S>
where
    S: tower::Service<Request, Response = Response, Error = std::convert::Infallible>,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = futures::future::Either<
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response, Self::Error>> + Send>>,
        S::Future,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let is_event = self.enabled
            && request.method() == axum::http::Method::POST
            && matches!(request.uri().path(), "/api/event" | "/api/event/");
        if is_event {
            let state = self.state.clone();
            futures::future::Either::Left(Box::pin(async move {
                Ok(answer_event(state, request).await)
            }))
        } else {
            futures::future::Either::Right(self.inner.call(request))
        }
    }
}
