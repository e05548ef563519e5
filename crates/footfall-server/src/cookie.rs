//! Cookie mode (DESIGN §3): the first-party cookies `ff_vid` (visitor, 1 year) and
//! `ff_sid` (visit, sliding timeout), set on same-origin requests to the ingestion
//! endpoints. The visitor id the pipeline uses is the cookie's value; a request without
//! a live `ff_sid` starts a new visit.

use axum::http::{HeaderMap, HeaderValue, header};
use footfall_core::event::ENGAGEMENT;
use footfall_ingest::wire::WireEvent;
use rand::RngCore;

pub const VISITOR: &str = "ff_vid";
pub const SESSION: &str = "ff_sid";
pub const VISITOR_MAX_AGE_SECS: u32 = 365 * 86_400;

/// The identity a request carries in its cookies.
#[derive(Debug, Clone, PartialEq)]
pub struct CookieIdentity {
    pub visitor: String,
    /// No (valid) `ff_vid` came: a new one was minted and must be set.
    pub new_visitor: bool,
    /// An `ff_sid` came: the visit is still going on the client's side.
    pub in_session: bool,
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn read<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().trim_matches('"'))
}

/// Cookie values we issue are hex; accept any short token so ids survive a change of
/// format, but nothing that could smuggle attributes or be huge.
fn valid_id(v: &str) -> bool {
    (8..=64).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn identity(headers: &HeaderMap) -> CookieIdentity {
    let in_session = read(headers, SESSION).is_some_and(valid_id);
    match read(headers, VISITOR).filter(|v| valid_id(v)) {
        Some(v) => CookieIdentity {
            visitor: v.to_string(),
            new_visitor: false,
            in_session,
        },
        None => {
            let mut bytes = [0u8; 16];
            rand::rng().fill_bytes(&mut bytes);
            CookieIdentity {
                visitor: hex::encode(bytes),
                new_visitor: true,
                in_session: false,
            }
        }
    }
}

/// Makes a hit use the cookie identity. An expired `ff_sid` means a new visit, except for
/// engagement beacons, which never start one.
pub fn apply(id: &CookieIdentity, hit: &mut WireEvent) {
    hit.visitor_id = Some(id.visitor.clone());
    hit.new_session = !id.in_session && !id.new_visitor && hit.name != ENGAGEMENT;
}

fn cookie(name: &str, value: &str, max_age: u32) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{name}={value}; Max-Age={max_age}; Path=/; HttpOnly; Secure; SameSite=Lax"
    ))
    .ok()
}

/// Sets `ff_vid` for a new visitor and (re)sets `ff_sid` to the visit, sliding.
pub fn set(headers: &mut HeaderMap, id: &CookieIdentity, session_id: u64, timeout_secs: u32) {
    if id.new_visitor
        && let Some(v) = cookie(VISITOR, &id.visitor, VISITOR_MAX_AGE_SECS)
    {
        headers.append(header::SET_COOKIE, v);
    }
    if let Some(v) = cookie(SESSION, &format!("{session_id:016x}"), timeout_secs) {
        headers.append(header::SET_COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(c: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(c).expect("header"));
        h
    }

    #[test]
    fn new_returning_and_in_session_visitors() {
        let new = identity(&HeaderMap::new());
        assert!(new.new_visitor && !new.in_session);
        assert_eq!(new.visitor.len(), 32);

        let returning = identity(&with_cookie("theme=dark; ff_vid=abcdef0123456789"));
        assert_eq!(returning.visitor, "abcdef0123456789");
        assert!(!returning.new_visitor && !returning.in_session);
        let mut hit = WireEvent {
            name: "pageview".into(),
            ..WireEvent::default()
        };
        apply(&returning, &mut hit);
        assert!(hit.new_session, "an expired ff_sid starts a new visit");
        hit.name = ENGAGEMENT.into();
        apply(&returning, &mut hit);
        assert!(!hit.new_session);

        let within = identity(&with_cookie(
            "ff_vid=abcdef0123456789; ff_sid=00000000000000aa",
        ));
        assert!(within.in_session && !within.new_visitor);

        let forged = identity(&with_cookie("ff_vid=x;Secure"));
        assert!(forged.new_visitor);
    }

    #[test]
    fn cookies_are_first_party_and_http_only() {
        let mut h = HeaderMap::new();
        let id = identity(&HeaderMap::new());
        set(&mut h, &id, 0xab, 1800);
        let set: Vec<&str> = h
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        assert_eq!(set.len(), 2);
        assert!(set[0].starts_with(&format!("ff_vid={}; Max-Age=31536000;", id.visitor)));
        assert_eq!(
            set[1],
            "ff_sid=00000000000000ab; Max-Age=1800; Path=/; HttpOnly; Secure; SameSite=Lax"
        );
    }
}
