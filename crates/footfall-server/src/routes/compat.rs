//! Ingestion endpoints of other trackers (DESIGN §5), each translated into the Events
//! API's fields and sent through the same pipeline:
//! - `POST /track/visitor`: API-key tracker `{event, visitor: {visitorId, url, timestamp}, website}`;
//! - `POST /api/analytics/track`: SPA hook `{eventType, path}` in cookie mode;
//! - `POST /api/send`, `POST /api/batch`: Umami's tracker and Node client.

use crate::cookie;
use crate::error::{ApiError, ApiResult};
use crate::extract::{bearer, browser_hit_context, json_body};
use crate::routes::bulk::BULK_BODY_LIMIT;
use crate::routes::event::{EVENT_BODY_LIMIT, url_host};
use crate::state::{AppState, Caller, normalize_domain};
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use footfall_core::DropReason;
use footfall_ingest::pipeline::{HitContext, HitOutcome};
use footfall_ingest::wire::{WireEvent, parse_event};
use footfall_store::{KeyScope, Site};
use serde_json::{Map, Value, json};
use std::net::SocketAddr;
use std::sync::Arc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/track/visitor", post(post_track_visitor))
        .route("/api/analytics/track", post(post_analytics_track))
        .route("/api/send", post(post_send))
        .route("/api/batch", post(post_batch))
        .layer(DefaultBodyLimit::disable())
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_event", message)
}

fn object<'a>(v: &'a Value, what: &str) -> ApiResult<&'a Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| bad(format!("{what} must be a JSON object")))
}

fn str_of<'a>(obj: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_str))
        .filter(|s| !s.trim().is_empty())
}

fn first_of<'a>(obj: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter()
        .find_map(|k| obj.get(*k))
        .filter(|v| !v.is_null())
}

/// A page given as a URL or as a path on `host`.
fn absolute_url(url: Option<&str>, host: &str) -> String {
    match url.map(str::trim) {
        Some(u) if u.contains("://") => u.to_string(),
        Some(u) if u.starts_with('/') => format!("https://{host}{u}"),
        Some(u) if !u.is_empty() => format!("https://{host}/{u}"),
        _ => format!("https://{host}/"),
    }
}

/// RFC 3339 from unix seconds or milliseconds (a number or numeric string), or an RFC
/// 3339 string as given (the wire parser checks it).
fn timestamp(v: Option<&Value>, unit_ms: Option<bool>) -> Result<Option<Value>, String> {
    let n = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => match s.trim().parse::<f64>() {
            Ok(n) => Some(n),
            Err(_) => return Ok(Some(Value::String(s.clone()))),
        },
        Some(_) => None,
    };
    let n = n.ok_or("`timestamp` must be unix time or an RFC 3339 string")?;
    // Seconds would be in the year 5138 at 1e11: larger values are milliseconds.
    let ms = unit_ms.unwrap_or(n.abs() >= 1e11);
    let us = if ms { n * 1e3 } else { n * 1e6 };
    let t = chrono::DateTime::from_timestamp_micros(us as i64)
        .filter(|_| us.is_finite())
        .ok_or("`timestamp` is out of range")?;
    Ok(Some(Value::String(t.to_rfc3339())))
}

fn id_string(v: Option<&Value>) -> Option<Value> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(Value::String(s.clone())),
        Value::Number(n) => Some(Value::String(n.to_string())),
        _ => None,
    }
}

/// A site named by domain or by numeric id.
fn site_by_ref(state: &AppState, v: Option<&Value>) -> ApiResult<Option<Arc<Site>>> {
    let by_id = |id: u64| {
        u32::try_from(id)
            .ok()
            .and_then(|id| state.indexes.read().sites_by_id.get(&id).cloned())
            .ok_or_else(|| ApiError::not_found("unknown_site", format!("no site with id {id}")))
    };
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => match s.trim().parse::<u64>() {
            Ok(id) => by_id(id).map(Some),
            Err(_) => state.existing_site(s.trim()).map(Some),
        },
        Some(Value::Number(n)) => by_id(n.as_u64().unwrap_or(u64::MAX)).map(Some),
        Some(_) => Err(bad("`website` must be the site's domain or id")),
    }
}

/// Page views under other names (`page_view`, `pageView`, `PAGE_VIEW`).
fn event_name(name: Option<&str>) -> String {
    match name.map(str::trim) {
        None | Some("") => "pageview".into(),
        Some(n) if n.replace(['_', '-'], "").eq_ignore_ascii_case("pageview") => "pageview".into(),
        Some(n) => n.to_string(),
    }
}

/// Turns Events API fields into a hit with the wire parser's validation.
fn hit_from(fields: Map<String, Value>) -> ApiResult<WireEvent> {
    parse_event(&Value::Object(fields)).map_err(bad)
}

async fn submit_one(
    state: &AppState,
    site: &Site,
    hit: WireEvent,
    ctx: &HitContext,
) -> ApiResult<HitOutcome> {
    let mut outcomes = state.ingestor.submit(site, vec![hit], ctx).await?;
    match outcomes.pop() {
        Some(HitOutcome::Rejected(message)) => Err(bad(message)),
        Some(outcome) => Ok(outcome),
        None => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the pipeline returned no outcome",
        )),
    }
}

fn hex(id: u64) -> String {
    format!("{id:016x}")
}

fn with_dropped(mut resp: Response, reason: Option<DropReason>) -> Response {
    if let Some(r) = reason {
        resp.headers_mut()
            .insert("x-footfall-dropped", HeaderValue::from_static(r.as_str()));
    }
    resp
}

/// `{"success": true, "sessionId": ...}`, the seeds' answer; drops are successes without
/// a session, with `x-footfall-dropped` as on `/api/event`.
fn seed_answer(outcome: &HitOutcome) -> Response {
    let (body, dropped) = match outcome {
        HitOutcome::Stored { session_id, .. } => (
            json!({"success": true, "sessionId": hex(*session_id)}),
            None,
        ),
        HitOutcome::Accepted(e) => (
            json!({"success": true, "sessionId": hex(e.session_id)}),
            None,
        ),
        HitOutcome::Duplicate => (
            json!({"success": true, "sessionId": null, "duplicate": true}),
            None,
        ),
        HitOutcome::Dropped(r) => (
            json!({"success": true, "sessionId": null, "dropped": r.as_str()}),
            Some(*r),
        ),
        HitOutcome::Rejected(m) => (json!({"success": false, "error": m}), None),
    };
    with_dropped(Json(body).into_response(), dropped)
}

/// `POST /track/visitor`: a tracker authenticated by the site's ingest key (`X-API-Key`
/// or `Authorization: Bearer`). The request comes from the visitor's browser, so its
/// `User-Agent` and address are the visitor's (or `visitor.userAgent` / `visitor.ip`).
async fn post_track_visitor(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let caller = state.authenticate(bearer(&headers))?;
    let v = json_body(&headers, body, EVENT_BODY_LIMIT).await?;
    let obj = object(&v, "the body")?;
    let site = match (site_by_ref(&state, obj.get("website"))?, &caller) {
        (Some(site), _) => site,
        (None, Caller::Key(key)) => state
            .indexes
            .read()
            .sites_by_id
            .get(&key.site_id)
            .cloned()
            .ok_or_else(|| ApiError::not_found("unknown_site", "the key's site is gone"))?,
        (None, Caller::Admin | Caller::User(_)) => {
            return Err(bad("`website` is required with the admin token"));
        }
    };
    state.authorize(&caller, &site, KeyScope::Ingest)?;
    let visitor = match obj.get("visitor") {
        Some(Value::Object(o)) => o,
        _ => {
            return Err(bad(
                "`visitor` must be an object {visitorId, url, timestamp}",
            ));
        }
    };
    let url = str_of(visitor, &["url"])
        .or_else(|| str_of(obj, &["url"]))
        .ok_or_else(|| bad("`visitor.url` is required"))?;
    let mut fields = Map::new();
    fields.insert(
        "name".into(),
        json!(event_name(str_of(obj, &["event", "name"]))),
    );
    fields.insert("url".into(), json!(absolute_url(Some(url), &site.domain)));
    if let Some(id) = id_string(first_of(visitor, &["visitorId", "visitor_id", "id"])) {
        fields.insert("visitor_id".into(), id);
    }
    let ts = timestamp(first_of(visitor, &["timestamp"]), None).map_err(bad)?;
    if let Some(ts) = ts {
        fields.insert("timestamp".into(), ts);
    }
    for (to, from) in [
        ("referrer", &["referrer", "referer"][..]),
        ("title", &["title"][..]),
        ("user_agent", &["userAgent", "user_agent"][..]),
        ("ip", &["ip"][..]),
    ] {
        if let Some(s) = str_of(visitor, from).or_else(|| str_of(obj, from)) {
            fields.insert(to.into(), json!(s));
        }
    }
    if let Some(p) = first_of(obj, &["props", "properties", "data"])
        .or_else(|| first_of(visitor, &["props", "properties"]))
    {
        fields.insert("props".into(), p.clone());
    }
    if let Some(id) = id_string(first_of(obj, &["eventId", "event_id"])) {
        fields.insert("id".into(), id);
    }
    let hit = hit_from(fields)?;
    let outcome = submit_one(
        &state,
        &site,
        hit,
        &browser_hit_context(&state, peer, &headers),
    )
    .await?;
    Ok(seed_answer(&outcome))
}

/// The host a header names: `Origin` and `Referer` are URLs, `Host` is `host[:port]`.
fn header_host(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    let v = headers.get(&name)?.to_str().ok()?.trim();
    if name == header::HOST {
        let host = v.rsplit_once(':').map_or(v, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                v
            }
        });
        return (!host.is_empty()).then(|| normalize_domain(host));
    }
    url_host(v)
}

/// The site of a host: the host itself or the nearest parent domain registered.
fn site_for_host(state: &AppState, host: &str) -> Option<Arc<Site>> {
    let mut h = host;
    loop {
        if let Some(site) = state.site(h) {
            return Some(site);
        }
        h = h.split_once('.')?.1;
        if !h.contains('.') {
            return None;
        }
    }
}

/// `POST /api/analytics/track`: an SPA hook or server middleware on the site's own origin,
/// always in cookie mode. The site comes from `domain`, else the `Origin`, `Referer` or
/// `Host` header.
async fn post_analytics_track(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let v = json_body(&headers, body, EVENT_BODY_LIMIT).await?;
    let obj = object(&v, "the body")?;
    let page_host = [header::ORIGIN, header::REFERER, header::HOST]
        .into_iter()
        .find_map(|h| header_host(&headers, h));
    let site = match str_of(obj, &["domain", "website", "site"]) {
        Some(d) => state.existing_site(d)?,
        None => page_host
            .as_deref()
            .and_then(|h| site_for_host(&state, h))
            .ok_or_else(|| {
                ApiError::not_found(
                    "unknown_site",
                    format!(
                        "no site is registered for host {:?}; send `domain`",
                        page_host.as_deref().unwrap_or("")
                    ),
                )
            })?,
    };
    let host = page_host
        .filter(|h| site_for_host(&state, h).is_some_and(|s| s.id == site.id))
        .unwrap_or_else(|| site.domain.clone());
    let mut fields = Map::new();
    fields.insert(
        "name".into(),
        json!(event_name(str_of(obj, &["eventType", "event", "name"]))),
    );
    let page = str_of(obj, &["path", "url", "page"]).ok_or_else(|| bad("`path` is required"))?;
    fields.insert("url".into(), json!(absolute_url(Some(page), &host)));
    for (to, from) in [
        ("referrer", &["referrer", "referer"][..]),
        ("title", &["title"][..]),
    ] {
        if let Some(s) = str_of(obj, from) {
            fields.insert(to.into(), json!(s));
        }
    }
    if let Some(p) = first_of(obj, &["props", "properties", "data", "metadata"]) {
        fields.insert("props".into(), p.clone());
    }
    let mut hit = hit_from(fields)?;
    let identity = cookie::identity(&headers);
    cookie::apply(&identity, &mut hit);
    let outcome = submit_one(
        &state,
        &site,
        hit,
        &browser_hit_context(&state, peer, &headers),
    )
    .await?;
    let mut resp = seed_answer(&outcome);
    if let HitOutcome::Stored { session_id, .. } = outcome {
        cookie::set(
            resp.headers_mut(),
            &identity,
            session_id,
            site.session_timeout_secs,
        );
    }
    Ok(resp)
}

/// One Umami `/api/send` body: its answer and, for a dropped hit, the reason.
async fn umami_send(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    v: &Value,
) -> ApiResult<(Value, Option<DropReason>)> {
    let obj = object(v, "the body")?;
    let kind = obj.get("type").and_then(Value::as_str).unwrap_or_default();
    if !matches!(kind, "event" | "identify" | "performance") {
        return Err(bad(
            "`type` must be \"event\", \"identify\" or \"performance\"",
        ));
    }
    let payload = match obj.get("payload") {
        Some(Value::Object(p)) => p,
        _ => return Err(bad("`payload` must be an object")),
    };
    umami_schema(payload)?;
    // Umami answers an unknown website with 400 ("Website not found."), not 404.
    let site = site_by_ref(state, first_of(payload, &["website", "link", "pixel"]))
        .map_err(|e| {
            if e.status == StatusCode::NOT_FOUND {
                ApiError::bad_request("unknown_site", format!("Website not found: {}", e.message))
            } else {
                e
            }
        })?
        .ok_or_else(|| bad("`payload.website` is required (the site's domain or id)"))?;
    let host = str_of(payload, &["hostname"])
        .map(normalize_domain)
        .unwrap_or_else(|| site.domain.clone());
    let mut fields = Map::new();
    fields.insert("name".into(), json!(event_name(str_of(payload, &["name"]))));
    fields.insert(
        "url".into(),
        json!(absolute_url(str_of(payload, &["url"]), &host)),
    );
    if let Some(r) = str_of(payload, &["referrer"]) {
        // A path is a referral from the site itself.
        let r = if r.starts_with('/') {
            absolute_url(Some(r), &host)
        } else {
            r.to_string()
        };
        fields.insert("referrer".into(), json!(r));
    }
    for (to, from) in [
        ("title", "title"),
        ("ip", "ip"),
        ("user_agent", "userAgent"),
    ] {
        if let Some(s) = str_of(payload, &[from]) {
            fields.insert(to.into(), json!(s));
        }
    }
    if let Some(Value::Object(data)) = first_of(payload, &["data"]) {
        fields.insert("props".into(), Value::Object(umami_event_data(data)));
    }
    // Umami's distinct id (`umami.identify("user-1")`): the visitor, across devices.
    if let Some(id) = id_string(first_of(payload, &["id"])) {
        fields.insert("visitor_id".into(), id);
    }
    if let Some(ts) = timestamp(first_of(payload, &["timestamp"]), Some(false)).map_err(bad)? {
        fields.insert("timestamp".into(), ts);
    }
    let hit = hit_from(fields)?;
    let ctx = browser_hit_context(state, peer, headers);
    if kind != "event" {
        // Session data and web vitals have no place in footfall's store: nothing is
        // stored, but the answer is Umami's (a bot gets its `beep`, others their ids).
        return Ok(match state.ingestor.pipeline.peek(&site, &hit, &ctx) {
            HitOutcome::Dropped(r) => (json!({"beep": "boop"}), Some(r)),
            HitOutcome::Rejected(m) => return Err(bad(m)),
            HitOutcome::Stored {
                visitor_id,
                session_id,
            } => {
                let visit = (session_id != 0).then(|| hex(session_id));
                (
                    json!({"cache": visit.clone().unwrap_or_default(),
                           "sessionId": hex(visitor_id), "visitId": visit}),
                    None,
                )
            }
            _ => (
                json!({"cache": "", "sessionId": null, "visitId": null}),
                None,
            ),
        });
    }
    let outcome = submit_one(state, &site, hit, &ctx).await?;
    Ok(match outcome {
        HitOutcome::Stored {
            visitor_id,
            session_id,
        } => (
            json!({"cache": hex(session_id), "sessionId": hex(visitor_id), "visitId": hex(session_id)}),
            None,
        ),
        // Umami answers every dropped hit (bots) like this.
        HitOutcome::Dropped(r) => (json!({"beep": "boop"}), Some(r)),
        _ => (
            json!({"cache": "", "sessionId": null, "visitId": null}),
            None,
        ),
    })
}

/// Umami's event data as Umami stores it (`flattenJSON` in its `lib/data.ts`): a nested
/// object's values under dotted keys (`{"plan": {"tier": "pro"}}` -> `plan.tier`), an
/// array as its JSON text; other values as given, for the props rules to take or drop.
fn umami_event_data(data: &Map<String, Value>) -> Map<String, Value> {
    fn walk(prefix: &str, data: &Map<String, Value>, out: &mut Map<String, Value>) {
        for (key, value) in data {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value {
                Value::Object(nested) => walk(&path, nested, out),
                Value::Array(_) => {
                    out.insert(path, Value::String(value.to_string()));
                }
                _ => {
                    out.insert(path, value.clone());
                }
            }
        }
    }
    let mut out = Map::new();
    walk("", data, &mut out);
    out
}

/// Umami's payload schema (v3.1 `request-schema.ts`, REFERENCE §2.4): exactly one of
/// `website`, `link`, `pixel`; length limits; web vitals in range; `data` an object;
/// `timestamp` whole unix seconds. A violation is a 400, as in Umami.
fn umami_schema(payload: &Map<String, Value>) -> ApiResult<()> {
    let given = ["website", "link", "pixel"]
        .iter()
        .filter(|k| payload.get(**k).is_some_and(|v| !v.is_null()))
        .count();
    if given > 1 {
        return Err(bad(
            "exactly one of `payload.website`, `link` or `pixel` may be given",
        ));
    }
    for (key, max) in [
        ("hostname", 100),
        ("language", 35),
        ("screen", 11),
        ("name", 50),
        ("tag", 50),
    ] {
        match payload.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.chars().count() <= max => {}
            Some(Value::String(_)) => {
                return Err(bad(format!(
                    "`payload.{key}` must be at most {max} characters"
                )));
            }
            Some(_) => return Err(bad(format!("`payload.{key}` must be a string"))),
        }
    }
    for (key, max) in [
        ("lcp", 60000.0),
        ("inp", 60000.0),
        ("fcp", 60000.0),
        ("ttfb", 60000.0),
        ("cls", 100.0),
    ] {
        if let Some(v) = payload.get(key).filter(|v| !v.is_null())
            && !v.as_f64().is_some_and(|n| (0.0..=max).contains(&n))
        {
            return Err(bad(format!(
                "`payload.{key}` must be a number from 0 to {max}"
            )));
        }
    }
    if payload
        .get("data")
        .is_some_and(|d| !d.is_null() && !d.is_object())
    {
        return Err(bad("`payload.data` must be an object"));
    }
    let whole = |n: f64| n.is_finite() && n.fract() == 0.0;
    match payload.get("timestamp") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_f64().is_some_and(whole) => {}
        Some(Value::String(s)) if s.trim().parse::<f64>().is_ok_and(whole) => {}
        Some(_) => {
            return Err(bad("`payload.timestamp` must be whole unix seconds"));
        }
    }
    Ok(())
}

/// `POST /api/send`: Umami's collection endpoint.
async fn post_send(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let v = json_body(&headers, body, EVENT_BODY_LIMIT).await?;
    let (answer, dropped) = umami_send(&state, peer, &headers, &v).await?;
    Ok(with_dropped(Json(answer).into_response(), dropped))
}

/// `POST /api/batch`: many `/api/send` bodies; each is answered on its own, as Umami does.
async fn post_batch(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let v = json_body(&headers, body, BULK_BODY_LIMIT).await?;
    let items = v
        .as_array()
        .ok_or_else(|| bad("send a JSON array of /api/send bodies"))?;
    let mut details = Vec::new();
    let mut cache = Value::String(String::new());
    for (index, item) in items.iter().enumerate() {
        match umami_send(&state, peer, &headers, item).await {
            Ok((answer, _)) => {
                if let Some(c) = answer.get("cache").filter(|c| c.as_str() != Some("")) {
                    cache = c.clone();
                }
            }
            // One bad body does not spoil the others; overload and faults end the batch.
            Err(e) if e.status.is_client_error() => details.push(json!({
                "index": index,
                "response": {"error": e.message, "code": e.code},
            })),
            Err(e) => return Err(e),
        }
    }
    Ok(Json(json!({
        "size": items.len(),
        "processed": items.len() - details.len(),
        "errors": details.len(),
        "details": details,
        "cache": cache,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn umami_data_flattened_as_umami_stores_it() {
        let data = json!({"plan": "pro", "seats": 3, "billing": {"cycle": "yearly",
                          "card": {"brand": "visa"}}, "tags": ["a", "b"], "gift": null});
        let data = data.as_object().expect("an object literal");
        assert_eq!(
            Value::Object(umami_event_data(data)),
            json!({"plan": "pro", "seats": 3, "billing.cycle": "yearly",
                   "billing.card.brand": "visa", "tags": "[\"a\",\"b\"]", "gift": null})
        );
    }

    #[test]
    fn urls_paths_and_names() {
        assert_eq!(absolute_url(Some("/a?b=1"), "x.com"), "https://x.com/a?b=1");
        assert_eq!(
            absolute_url(Some("http://y.com/"), "x.com"),
            "http://y.com/"
        );
        assert_eq!(absolute_url(None, "x.com"), "https://x.com/");
        assert_eq!(event_name(Some("page_view")), "pageview");
        assert_eq!(event_name(Some("PAGE-VIEW")), "pageview");
        assert_eq!(event_name(Some("Signup")), "Signup");
    }

    #[test]
    fn timestamps_in_seconds_milliseconds_or_rfc3339() {
        let s = |v: Value, ms| timestamp(Some(&v), ms).expect("valid").expect("some");
        assert_eq!(
            s(json!(1_700_000_000), None),
            json!("2023-11-14T22:13:20+00:00")
        );
        assert_eq!(
            s(json!(1_700_000_000_000i64), None),
            json!("2023-11-14T22:13:20+00:00")
        );
        assert_eq!(
            s(json!("1700000000"), Some(false)),
            json!("2023-11-14T22:13:20+00:00")
        );
        assert_eq!(
            s(json!("2024-01-01T00:00:00Z"), None),
            json!("2024-01-01T00:00:00Z")
        );
        assert!(timestamp(Some(&json!([1])), None).is_err());
    }
}
