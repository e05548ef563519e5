//! Request facts shared by handlers: the client IP behind trusted proxies, the bearer
//! secret, and body checks that answer with our JSON errors.

use crate::error::ApiError;
use crate::state::AppState;
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use footfall_enrich::hints::{ClientHints, HEADERS as HINT_HEADERS};
use std::net::{IpAddr, SocketAddr};

/// Parsed once: a lookup by `&str` parses and checks the name on every request.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_PLAUSIBLE_IP: HeaderName = HeaderName::from_static("x-plausible-ip");
const CF_CONNECTING_IP: HeaderName = HeaderName::from_static("cf-connecting-ip");
const B_FORWARDED_FOR: HeaderName = HeaderName::from_static("b-forwarded-for");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Context of a hit sent by a browser (tracker, Umami, seed endpoints): client IP from
/// trusted proxies, user agent, client hints, CDN country.
pub fn browser_hit_context(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> footfall_ingest::pipeline::HitContext {
    footfall_ingest::pipeline::HitContext {
        ip: client_ip(state, peer, headers).to_string(),
        user_agent: user_agent(headers),
        now_us: chrono::Utc::now().timestamp_micros(),
        server_side: false,
        hints: client_hints(headers),
        cdn_country: cdn_country(state, peer, headers),
    }
}

/// The client's IP: the address a trusted proxy names (`proxied_ip`), else the peer
/// itself; from any other peer the headers are ignored.
pub fn client_ip(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    let peer_ip = peer.ip();
    if !state
        .trusted_proxies
        .iter()
        .any(|net| net.contains(&peer_ip))
    {
        return peer_ip;
    }
    proxied_ip(headers).unwrap_or(peer_ip)
}

/// The client address a trusted proxy names, in Plausible's order (`PlausibleWeb.RemoteIP`):
/// `X-Plausible-IP`, `CF-Connecting-IP` (Cloudflare), `B-Forwarded-For` (BunnyCDN),
/// `X-Forwarded-For`, `Forwarded` (RFC 7239 `for=`), then `X-Real-IP` (nginx; Umami reads
/// it too). The first header present with a valid address wins; in a list, the first
/// valid entry.
fn proxied_ip(headers: &HeaderMap) -> Option<IpAddr> {
    let value = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let list = |name: &HeaderName| value(name).and_then(|l| l.split(',').find_map(forwarded_ip));
    list(&X_PLAUSIBLE_IP)
        .or_else(|| list(&CF_CONNECTING_IP))
        .or_else(|| list(&B_FORWARDED_FOR))
        .or_else(|| list(&X_FORWARDED_FOR))
        .or_else(|| {
            value(&FORWARDED)?
                .split([',', ';'])
                .filter_map(|pair| pair.trim().split_once('='))
                .filter(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                .find_map(|(_, v)| forwarded_ip(v.trim().trim_matches('"')))
        })
        .or_else(|| list(&X_REAL_IP))
}

/// One `X-Forwarded-For` entry as an address: `203.0.113.7`, `2001:db8::1`, or with the
/// port some proxies add (`203.0.113.7:51234`, `[2001:db8::1]:443`, `[2001:db8::1]`),
/// which Plausible strips too.
fn forwarded_ip(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .and_then(|e| e.parse::<IpAddr>().ok())
        })
}

/// The configured CDN country header (e.g. `CF-IPCountry`), read only when the peer is a
/// trusted proxy: anyone else could send it.
pub fn cdn_country(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> Option<String> {
    let name = state.config.country_header.trim();
    if name.is_empty()
        || !state
            .trusted_proxies
            .iter()
            .any(|net| net.contains(&peer.ip()))
    {
        return None;
    }
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `Sec-CH-UA*` client hints of the request (the first value of each). One pass over the
/// request's few headers instead of six lookups by name, most of them for headers that
/// are not there.
pub fn client_hints(headers: &HeaderMap) -> ClientHints {
    let mut found = [None; HINT_HEADERS.len()];
    for (name, value) in headers {
        let name = name.as_str();
        if name.starts_with("sec-ch-ua")
            && let Some(i) = HINT_HEADERS.iter().position(|h| *h == name)
            && found[i].is_none()
        {
            found[i] = Some(value.to_str().ok());
        }
    }
    ClientHints::from_values(found.map(Option::flatten))
}

pub fn user_agent(headers: &HeaderMap) -> String {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// `Authorization: Bearer <secret>` (the scheme in any case, RFC 9110 §11.1) or
/// `X-API-Key: <secret>`.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, secret) = v.trim_start().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(secret)
        })
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Accepts JSON bodies sent as `application/json`, `text/plain` (trackers avoid CORS
/// preflights) or with no content type; `extra` allows e.g. NDJSON.
pub fn check_content_type(headers: &HeaderMap, extra: &[&str]) -> Result<(), ApiError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let ct = ct.to_str().unwrap_or_default();
    let mime = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if mime.is_empty()
        || mime == "application/json"
        || mime == "text/plain"
        || mime.ends_with("+json")
        // curl's default for `-d`; the body is still parsed as JSON.
        || mime == "application/x-www-form-urlencoded"
        || extra.contains(&mime.as_str())
    {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("content type {mime:?} is not accepted; send application/json"),
        ))
    }
}

/// Reads and parses a JSON request body of at most `limit` bytes: 415 for another
/// content type (as `check_content_type`), 413 over the limit, 400 when not JSON.
pub async fn json_body(
    headers: &HeaderMap,
    body: axum::body::Body,
    limit: usize,
) -> Result<serde_json::Value, ApiError> {
    check_content_type(headers, &[])?;
    parse_json(&read_body(body, limit).await?)
}

/// Parses a JSON body with an error that says where it broke.
pub fn parse_json(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!("request body is not valid JSON: {e}"),
        )
    })
}

/// Reads a body up to `limit` bytes; larger bodies get 413 with our JSON error. The
/// buffer is sized from `Content-Length` up front: growing a multi-megabyte bulk body
/// chunk by chunk copied it several times into freshly faulted pages. A leading UTF-8
/// byte order mark is dropped (RFC 8259 lets a JSON reader ignore it; Windows tools
/// write one).
pub async fn read_body(
    body: axum::body::Body,
    limit: usize,
) -> Result<axum::body::Bytes, ApiError> {
    use futures::StreamExt;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is larger than {} KiB", limit / 1024),
        )
    };
    // No early 413 from the declared length: answering before the client has sent its
    // body breaks the connection under it (it would see no answer at all).
    let hint = axum::body::HttpBody::size_hint(&body);
    let expected = hint.exact().unwrap_or(hint.lower()) as usize;
    let mut buf = Vec::with_capacity(expected.min(limit));
    let mut stream = body.into_data_stream();
    let mut read = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request(
                "invalid_body",
                format!("could not read the request body: {e}"),
            )
        })?;
        read += chunk.len();
        if read > limit {
            // Keep reading (not storing) a body somewhat over the limit, so its sender is
            // not cut off mid-write and does get the 413; give up at twice the limit.
            if read > limit.saturating_mul(2) {
                break;
            }
            buf = Vec::new();
            continue;
        }
        buf.extend_from_slice(&chunk);
    }
    if read > limit {
        return Err(too_large());
    }
    let body = axum::body::Bytes::from(buf);
    Ok(match body.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => body.slice_ref(rest),
        None => body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip_of(pairs: &[(&'static str, &str)]) -> Option<IpAddr> {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("header value"));
        }
        proxied_ip(&h)
    }

    #[test]
    fn proxy_headers_in_plausibles_order() {
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        // Plausible's external_controller_test cases.
        assert_eq!(
            ip_of(&[
                ("x-forwarded-for", "0.0.0.0"),
                ("cf-connecting-ip", "216.160.83.56")
            ]),
            ip("216.160.83.56")
        );
        assert_eq!(
            ip_of(&[
                ("x-forwarded-for", "0.0.0.0"),
                ("b-forwarded-for", "216.160.83.56,9.9.9.9")
            ]),
            ip("216.160.83.56")
        );
        assert_eq!(
            ip_of(&[
                ("cf-connecting-ip", "0.0.0.0"),
                ("x-forwarded-for", "0.0.0.0"),
                ("x-plausible-ip", "216.160.83.56")
            ]),
            ip("216.160.83.56")
        );
        assert_eq!(
            ip_of(&[(
                "forwarded",
                "by=0.0.0.0;for=216.160.83.56;host=somehost.com;proto=https"
            )]),
            ip("216.160.83.56")
        );
        assert_eq!(
            ip_of(&[(
                "forwarded",
                "by=0.0.0.0;for=\"[2001:218:1:1:1:1:1:1]\",for=0.0.0.0;host=somehost.com"
            )]),
            ip("2001:218:1:1:1:1:1:1")
        );
        assert_eq!(
            ip_of(&[("x-forwarded-for", "[2001:218:1:1:1:1:1:1]:123")]),
            ip("2001:218:1:1:1:1:1:1")
        );
        assert_eq!(ip_of(&[("x-real-ip", "203.0.113.9")]), ip("203.0.113.9"));
        assert_eq!(
            ip_of(&[("x-forwarded-for", "garbage"), ("x-real-ip", "203.0.113.9")]),
            ip("203.0.113.9")
        );
        assert_eq!(ip_of(&[]), None);
    }
}
