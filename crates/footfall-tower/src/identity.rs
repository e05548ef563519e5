//! Cookies (DESIGN §3 cookie mode) and the client address.

use axum::http::{HeaderMap, HeaderValue, header};
use ipnet::IpNet;
use std::net::IpAddr;

pub const VISITOR_COOKIE: &str = "ff_vid";
pub const SESSION_COOKIE: &str = "ff_sid";
/// `ff_vid` lives one year.
pub const VISITOR_MAX_AGE: u32 = 365 * 24 * 3600;
/// `ff_sid` lives 30 minutes, renewed on every tracked response.
pub const SESSION_MAX_AGE: u32 = 30 * 60;

/// A cookie value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// Ids this crate issues: 32 lower-case hex digits. Anything else in a cookie (tampered
/// or from another app) is replaced rather than sent on.
pub fn valid_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// `Set-Cookie` value: HttpOnly, SameSite=Lax, Path=/ and (unless turned off for plain
/// HTTP development) Secure.
pub fn set_cookie(name: &str, value: &str, max_age: u32, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let s = format!("{name}={value}; Max-Age={max_age}; Path=/; HttpOnly{secure}; SameSite=Lax");
    // Names are constants and values hex: always a valid header value.
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The client address: the connection's peer, or when the peer is a trusted proxy the
/// right-most `X-Forwarded-For` address that is not itself a trusted proxy.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let trusted_peer = match peer {
        Some(p) => trusted.iter().any(|n| n.contains(&p)),
        None => false,
    };
    if !trusted_peer {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    forwarded
        .iter()
        .rev()
        .find(|ip| !trusted.iter().any(|n| n.contains(*ip)))
        .or(forwarded.first())
        .copied()
        .or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cookies_among_others() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; ff_vid=abc"));
        h.append(header::COOKIE, HeaderValue::from_static("ff_sid=\"def\""));
        assert_eq!(cookie(&h, VISITOR_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("def"));
        assert_eq!(cookie(&h, "none"), None);
    }

    #[test]
    fn ids_and_set_cookie() {
        let id = new_id();
        assert!(valid_id(&id), "{id}");
        assert!(!valid_id("abc"));
        assert!(!valid_id(&"g".repeat(32)));
        let v = set_cookie(VISITOR_COOKIE, &id, VISITOR_MAX_AGE, true);
        assert_eq!(
            v.to_str().ok(),
            Some(
                format!("ff_vid={id}; Max-Age=31536000; Path=/; HttpOnly; Secure; SameSite=Lax")
                    .as_str()
            )
        );
        let v = set_cookie(SESSION_COOKIE, &id, SESSION_MAX_AGE, false);
        assert!(
            v.to_str()
                .is_ok_and(|s| s.contains("Max-Age=1800") && !s.contains("Secure"))
        );
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().expect("cidr")];
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("198.51.100.1, 203.0.113.5, 10.0.0.2"),
        );
        let proxy: IpAddr = "10.0.0.1".parse().expect("ip");
        let stranger: IpAddr = "192.0.2.9".parse().expect("ip");
        assert_eq!(
            client_ip(Some(proxy), &h, &trusted),
            "203.0.113.5".parse().ok()
        );
        assert_eq!(client_ip(Some(stranger), &h, &trusted), Some(stranger));
        assert_eq!(client_ip(Some(proxy), &h, &[]), Some(proxy));
        assert_eq!(
            client_ip(Some(proxy), &HeaderMap::new(), &trusted),
            Some(proxy)
        );
    }
}
