//! Live channels (DESIGN §5): the dashboard's feed of arrivals, page views and departures
//! (`GET /api/v1/sites/{site}/live`: server-sent events, or a WebSocket that also takes
//! invitations), invitations to one live visitor
//! (`POST /api/v1/sites/{site}/live/{visitor}/invite`), and the visitor's own channel
//! that the tracker keeps open (`GET /api/live/visitor?t=<token>`).
//!
//! The tracker learns its token from the `x-footfall-live` header of its page view
//! response; the token names (site, visitor id) inside `LiveState` and nothing else, so
//! no IP address or other personal data is kept for the channel.

use crate::error::{ApiError, ApiResult};
use crate::extract::{check_content_type, parse_json, read_body};
use crate::state::{AppState, Caller};
use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use footfall_store::{Invitation, KeyScope, LiveEvent, LiveFeed, LiveState, Site};
use futures::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// Comment lines keep proxies from closing idle streams.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
const MAX_TEXT: usize = 500;
const MAX_URL: usize = 2000;
const MAX_LABEL: usize = 60;
/// The WebSocket sub-protocol of the live feed. A browser cannot send an `Authorization`
/// header with a WebSocket, so it may name a key as a second sub-protocol,
/// `bearer.<key>`, beside this one (the server answers with this one only).
pub const WS_PROTOCOL: &str = "footfall.live";
const WS_BEARER_PREFIX: &str = "bearer.";
/// Largest command a dashboard sends over the WebSocket (an invitation).
const MAX_WS_COMMAND: usize = 16 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/live/visitor", get(get_visitor_channel))
        .route("/api/v1/sites/{site}/live", get(get_live_feed))
        .route(
            "/api/v1/sites/{site}/live/{visitor}/invite",
            post(post_invite),
        )
}

/// Same authorization as the other `/api/v1/sites` routes: the site's stats key, a user
/// with a role on it, or the admin token. `caller` comes from the request's headers
/// (`authenticate_request`) or, for a WebSocket, from `websocket_caller`.
fn live_site(state: &AppState, caller: &Caller, domain: &str) -> ApiResult<Arc<Site>> {
    let site = state.existing_site(domain)?;
    state.authorize(caller, &site, KeyScope::Stats)?;
    Ok(site)
}

fn sse_event(e: &LiveEvent) -> Result<Event, Infallible> {
    Ok(Event::default().event(e.kind()).data(e.data().to_string()))
}

fn sse<S>(state: &AppState, events: S) -> Response
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    // Streams never end by themselves: end them when the server shuts down.
    let events = events.take_until(state.closed());
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

fn ready_data(state: &AppState, site: &Site, feed: &LiveFeed) -> Value {
    json!({
        "site": site.domain,
        "visitors": feed.visitors.len(),
        "live_invites": state.config.live_invites(&site.domain),
    })
}

/// `ready` first (so clients know they are subscribed), then an `arrival` for every
/// visitor already there, then changes as they happen. A WebSocket upgrade on the same
/// path gets the same messages and takes invitations (`live_socket`).
async fn get_live_feed(
    State(state): State<AppState>,
    Path(domain): Path<String>,
    request: Request,
) -> ApiResult<Response> {
    let (mut parts, _body) = request.into_parts();
    if wants_websocket(&parts.headers) {
        let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &state)
            .await
            .map_err(|e| {
                ApiError::bad_request(
                    "invalid_request",
                    format!("WebSocket upgrade refused: {}", e.body_text()),
                )
            })?;
        let caller = websocket_caller(&state, &parts.headers, &upgrade)?;
        let site = live_site(&state, &caller, &domain)?;
        let feed = state.storage.live.subscribe(site.id).await?;
        return Ok(upgrade
            .protocols([WS_PROTOCOL])
            .max_message_size(MAX_WS_COMMAND)
            .on_upgrade(move |socket| live_socket(state, site, feed, socket)));
    }
    let site = live_site(
        &state,
        &state.authenticate_request(&parts.headers)?,
        &domain,
    )?;
    let feed = state.storage.live.subscribe(site.id).await?;
    let ready = Event::default()
        .event("ready")
        .data(ready_data(&state, &site, &feed).to_string());
    let snapshot: Vec<_> = feed
        .visitors
        .into_iter()
        .map(|v| sse_event(&LiveEvent::Arrival(v)))
        .collect();
    let updates = stream::unfold(feed.events, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(e) => return Some((sse_event(&e), rx)),
                // A dashboard too slow to keep up skips what it missed.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    });
    let events = stream::once(async { Ok(ready) })
        .chain(stream::iter(snapshot))
        .chain(updates);
    Ok(sse(&state, events))
}

fn wants_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Who opens a WebSocket: a key or the admin token in `Authorization` (or as the
/// `bearer.<key>` sub-protocol), else a signed-in user's session cookie. Browsers send
/// cookies with a WebSocket from any page, so a cookie counts only when the request's
/// `Origin` is this server's own host.
fn websocket_caller(
    state: &AppState,
    headers: &HeaderMap,
    upgrade: &WebSocketUpgrade,
) -> ApiResult<Caller> {
    if crate::extract::bearer(headers).is_some() {
        return state.authenticate_request(headers);
    }
    let protocol_key = upgrade
        .requested_protocols()
        .filter_map(|p| p.to_str().ok())
        .find_map(|p| p.trim().strip_prefix(WS_BEARER_PREFIX));
    if let Some(key) = protocol_key {
        return state.authenticate(Some(key));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, rest)| rest.trim_end_matches('/'));
        if host.is_none() || origin_host != host {
            return Err(ApiError::forbidden(
                "a WebSocket from another origin must carry a key (`bearer.<key>` sub-protocol or `Authorization`)",
            ));
        }
    }
    state.authenticate_request(headers)
}

fn ws_message(kind: &str, id: Option<&Value>, data: Value) -> Message {
    let mut msg = json!({ "type": kind, "data": data });
    if let Some(id) = id {
        msg["id"] = id.clone();
    }
    Message::Text(Utf8Bytes::from(msg.to_string()))
}

fn ws_error(id: Option<&Value>, e: &ApiError) -> Message {
    ws_message(
        "error",
        id,
        json!({"error": e.message, "code": e.code, "status": e.status.as_u16()}),
    )
}

/// The WebSocket side of the live feed: the SSE events as `{"type", "data"}` text
/// messages, and commands from the dashboard, each answered on the same socket with the
/// `id` it carried: `{"type": "invite", "visitor", "text", "url"?, "label"?}` ->
/// `invited` (`{"visitor", "delivered"}`) or `error` (the HTTP API's error body plus
/// `status`). Pings every 15 s keep proxies from closing it.
async fn live_socket(state: AppState, site: Arc<Site>, feed: LiveFeed, mut socket: WebSocket) {
    let mut first = vec![ws_message("ready", None, ready_data(&state, &site, &feed))];
    first.extend(
        feed.visitors
            .into_iter()
            .map(LiveEvent::Arrival)
            .map(|e| ws_message(e.kind(), None, e.data())),
    );
    for msg in first {
        if socket.send(msg).await.is_err() {
            return;
        }
    }
    let mut events = feed.events;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
    let closed = state.closed();
    tokio::pin!(closed);
    loop {
        let reply = tokio::select! {
            _ = &mut closed => {
                let bye = CloseFrame { code: 1001, reason: Utf8Bytes::from_static("server shutting down") };
                let _ = socket.send(Message::Close(Some(bye))).await;
                return;
            }
            event = events.recv() => match event {
                Ok(e) => ws_message(e.kind(), None, e.data()),
                // A dashboard too slow to keep up skips what it missed.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => socket_command(&state, &site, text.as_str()).await,
                Some(Ok(Message::Binary(_))) => ws_error(None, &ApiError::bad_request(
                    "invalid_request",
                    "send commands as JSON text messages",
                )),
                Some(Ok(_)) => continue,
                None | Some(Err(_)) => return,
            },
            _ = ping.tick() => Message::Ping(Default::default()),
        };
        if socket.send(reply).await.is_err() {
            return;
        }
    }
}

async fn socket_command(state: &AppState, site: &Site, text: &str) -> Message {
    let command: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let e = ApiError::bad_request("invalid_json", format!("the command is not JSON: {e}"));
            return ws_error(None, &e);
        }
    };
    let id = command.get("id");
    match command.get("type").and_then(Value::as_str) {
        Some("invite") => {
            let visitor = match command.get("visitor").and_then(Value::as_str) {
                Some(v) => v,
                None => {
                    let e = ApiError::bad_request(
                        "invalid_request",
                        "`visitor` (the visitor id from the feed) must be a string",
                    );
                    return ws_error(id, &e);
                }
            };
            match invite(state, site, visitor, &command).await {
                Ok(data) => ws_message("invited", id, data),
                Err(e) => ws_error(id, &e),
            }
        }
        other => {
            let e = ApiError::bad_request(
                "invalid_request",
                format!("unknown command type {other:?}: the feed takes `invite`"),
            );
            ws_error(id, &e)
        }
    }
}

#[derive(Deserialize)]
struct ChannelParams {
    t: Option<String>,
}

/// Closes the visitor's channel in `LiveState` when its stream is dropped (the browser
/// left or the connection broke).
struct ChannelGuard {
    live: Arc<dyn LiveState>,
    site_id: u32,
    visitor_id: u64,
    id: u64,
}

impl Drop for ChannelGuard {
    fn drop(&mut self) {
        let (live, site, visitor, id) = (self.live.clone(), self.site_id, self.visitor_id, self.id);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = live.close_channel(site, visitor, id).await {
                    tracing::warn!(error = %e, "could not close a live channel");
                }
            });
        }
    }
}

async fn get_visitor_channel(
    State(state): State<AppState>,
    Query(params): Query<ChannelParams>,
) -> ApiResult<Response> {
    let token = params.t.filter(|t| !t.is_empty()).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_request",
            "`t` (the token from the x-footfall-live header) is required",
        )
    })?;
    let channel = state
        .storage
        .live
        .open_channel(&token)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "unknown_channel",
                "unknown or expired live channel token; send a page view for a new one",
            )
        })?;
    let guard = ChannelGuard {
        live: state.storage.live.clone(),
        site_id: channel.site_id,
        visitor_id: channel.visitor_id,
        id: channel.id,
    };
    let invitations = stream::unfold((channel.invitations, guard), |(mut rx, guard)| async move {
        let invitation = rx.recv().await?;
        let data = serde_json::to_string(&invitation).unwrap_or_default();
        Some((Ok(Event::default().event("invite").data(data)), (rx, guard)))
    });
    let ready = Event::default().event("ready").data("{}");
    Ok(sse(
        &state,
        stream::once(async { Ok(ready) }).chain(invitations),
    ))
}

fn text_field(v: &Value, key: &str, max: usize, required: bool) -> ApiResult<Option<String>> {
    match v.get(key) {
        None | Some(Value::Null) if !required => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => {
            let s = s.trim();
            if s.chars().count() > max {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    format!("`{key}` is longer than {max} characters"),
                ));
            }
            Ok(Some(s.to_string()))
        }
        _ => Err(ApiError::bad_request(
            "invalid_request",
            format!("`{key}` must be a non-empty string"),
        )),
    }
}

/// Parses the invite body: `text` (required), `url` (http or https), `label` (link text).
fn parse_invitation(v: &Value) -> ApiResult<Invitation> {
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "invalid_request",
            "send a JSON object {\"text\": ..., \"url\": ...}",
        ));
    }
    let text = text_field(v, "text", MAX_TEXT, true)?.unwrap_or_default();
    let url = text_field(v, "url", MAX_URL, false)?;
    if let Some(u) = &url {
        let lower = u.to_ascii_lowercase();
        // The tracker shows it as a link: never `javascript:` or other schemes.
        let ok = ["https://", "http://"]
            .iter()
            .any(|p| lower.starts_with(p) && lower.len() > p.len());
        if !ok {
            return Err(ApiError::bad_request(
                "invalid_request",
                "`url` must be an absolute http or https URL",
            ));
        }
    }
    let label = text_field(v, "label", MAX_LABEL, false)?;
    Ok(Invitation { text, url, label })
}

async fn post_invite(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((domain, visitor)): Path<(String, String)>,
    body: Body,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let site = live_site(&state, &state.authenticate_request(&headers)?, &domain)?;
    check_content_type(&headers, &[])?;
    let body = parse_json(&read_body(body, 16 * 1024).await?)?;
    let sent = invite(&state, &site, &visitor, &body).await?;
    Ok((StatusCode::ACCEPTED, Json(sent)))
}

/// Delivers an invitation (`body` as `parse_invitation` reads it) to every open channel of
/// one visitor: `{"visitor", "delivered"}`, or 404 when the visitor has none.
async fn invite(state: &AppState, site: &Site, visitor: &str, body: &Value) -> ApiResult<Value> {
    let invitation = parse_invitation(body)?;
    if !state.config.live_invites(&site.domain) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "live_invites_disabled",
            format!(
                "live invitations are off for {}; set `live_invites = true` under [sites.\"{}\"] in the configuration file",
                site.domain, site.domain
            ),
        ));
    }
    let not_live = || {
        ApiError::not_found(
            "visitor_not_live",
            format!(
                "visitor {visitor:?} has no open live channel on {}",
                site.domain
            ),
        )
    };
    let visitor_id = u64::from_str_radix(visitor, 16).map_err(|_| not_live())?;
    let delivered = state
        .storage
        .live
        .invite(site.id, visitor_id, invitation)
        .await?;
    if delivered == 0 {
        return Err(not_live());
    }
    Ok(json!({"visitor": visitor, "delivered": delivered}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invitations_are_validated() {
        let ok = parse_invitation(&json!({"text": " Hi! ", "url": "https://x.com/call"}))
            .expect("valid");
        assert_eq!(ok.text, "Hi!");
        assert_eq!(ok.url.as_deref(), Some("https://x.com/call"));
        assert!(parse_invitation(&json!({"text": "Hi", "url": null})).is_ok());
        for bad in [
            json!({"url": "https://x.com"}),
            json!({"text": ""}),
            json!({"text": "Hi", "url": "javascript:alert(1)"}),
            json!({"text": "Hi", "url": "https://"}),
            json!({"text": "x".repeat(501)}),
            json!(["Hi"]),
        ] {
            assert!(parse_invitation(&bad).is_err(), "{bad}");
        }
    }
}
