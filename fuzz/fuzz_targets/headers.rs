//! Request headers that the server and the tower middleware read: the `Cookie` header
//! (cookie mode's `ff_vid` / `ff_sid`, footfall-server's `cookie.rs`, compiled in here
//! by path because that crate needs DuckDB; and footfall-tower's own cookie reader,
//! private to its middleware and compiled in by path too),
//! `X-Forwarded-For` behind a trusted proxy, the `Sec-CH-UA*` client hints as the
//! server collects them, a CDN country header, and the middleware's page-view decision.
//! Input: `name: value` lines; the first line is `METHOD path`.
//! Properties: no panic; a visitor id read from a cookie is a valid id and is what the
//! identity uses; the client address is the peer or one of the forwarded addresses.
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/footfall-server/src/cookie.rs"]
mod server_cookie;

// footfall-tower's cookie and client-address readers are private to its middleware;
// the file is pure (axum's header types, ipnet, rand) and compiled in the same way.
#[allow(dead_code)]
#[path = "../../crates/footfall-tower/src/identity.rs"]
mod identity;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use footfall_enrich::geo::country_from_header;
use footfall_enrich::hints::{ClientHints, HEADERS as HINT_HEADERS};
use footfall_tower::{RouteEvent, candidate};
use libfuzzer_sys::fuzz_target;
use std::net::IpAddr;

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|&b| b == b'\n');
    let request_line = lines.next().unwrap_or_default();
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }

    // Cookie mode in the server.
    let id = server_cookie::identity(&headers);
    if !id.new_visitor {
        assert_eq!(
            server_cookie::read(&headers, server_cookie::VISITOR),
            Some(id.visitor.as_str())
        );
    }
    assert!((8..=64).contains(&id.visitor.len()));
    let mut out = HeaderMap::new();
    server_cookie::set(&mut out, &id, 0x1234, 1800);

    // The tower middleware's cookies and client address.
    let vid = identity::cookie(&headers, identity::VISITOR_COOKIE);
    let _ = vid.map(identity::valid_id);
    let peer: IpAddr = "10.0.0.1".parse().expect("peer");
    let trusted = ["10.0.0.0/8".parse().expect("net")];
    if let Some(ip) = identity::client_ip(Some(peer), &headers, &trusted) {
        let forwarded: Vec<String> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_string())
            .collect();
        assert!(
            ip == peer || forwarded.iter().any(|f| f.parse::<IpAddr>() == Ok(ip)),
            "client address {ip} came from nowhere"
        );
    }

    // Client hints, first value of each, as footfall-server's extract.rs reads them.
    let hints = ClientHints::from_values(
        HINT_HEADERS.map(|h| headers.get(h).and_then(|v| v.to_str().ok())),
    );
    let _ = hints.is_empty();
    if let Some(c) = headers
        .get("cf-ipcountry")
        .and_then(|v| v.to_str().ok())
        .and_then(country_from_header)
    {
        assert_eq!(c.len(), 2);
    }

    // The middleware's decision from the request line and user agent.
    let request_line = String::from_utf8_lossy(request_line);
    let (method, path) = request_line
        .split_once(' ')
        .unwrap_or(("GET", &request_line));
    if let Ok(method) = Method::from_bytes(method.as_bytes()) {
        let routes = [RouteEvent {
            method: Method::POST,
            path: "/api/chat/*".into(),
            event: "Chat".into(),
        }];
        let ua = headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let _ = candidate(&method, path, ua, &routes);
    }
});
