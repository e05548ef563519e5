//! Payloads of write-ahead log records. Two kinds share one log and are applied in LSN
//! order: `Hits` (validated wire events with their request context, not yet enriched:
//! the bulk API answers 202 once these are on disk) and `Events` (hits already processed
//! on the request, for endpoints that answer with per-hit outcomes).
//!
//! Both are compact binary encodings (little-endian integers, `u32`-length-prefixed UTF-8
//! strings). Event records were a JSON array before (first byte `[`); those still decode,
//! so a log written by an older version replays unchanged. Encoding that JSON and the
//! applier's decoding of it were ~6 % of the server's CPU under `/api/event` load (perf,
//! BENCHMARKS.md History).

use crate::pipeline::HitContext;
use crate::wire::WireEvent;
use footfall_core::{Event, VisitAttrs};
use footfall_enrich::hints::ClientHints;
use footfall_store::{IdentityMode, Site};
use std::sync::Arc;

/// First payload byte of a hit record.
const KIND_HITS: u8 = 1;
/// First payload byte of an event record.
const KIND_EVENTS: u8 = 2;
/// First byte of an event record written as JSON (before KIND_EVENTS existed).
const KIND_EVENTS_JSON: u8 = b'[';

#[derive(Debug, thiserror::Error)]
#[error("write-ahead log record is malformed: {0}")]
pub struct DecodeError(String);

/// One decoded record.
// Records are decoded one at a time and consumed at once: the size gap costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Record {
    Hits {
        site: Site,
        ctx: HitContext,
        hits: Vec<WireEvent>,
    },
    Events(Vec<Event>),
}

/// A visit's string attributes in their encoded order (`city` follows them), as `&` or
/// `&mut` references: one list for the encoder and the decoder, so they cannot disagree.
macro_rules! visit_strings {
    ($v:expr, $($borrow:tt)+) => {
        [
            $($borrow)+ $v.entry_page,
            $($borrow)+ $v.entry_hostname,
            $($borrow)+ $v.referrer,
            $($borrow)+ $v.source,
            $($borrow)+ $v.channel,
            $($borrow)+ $v.utm_source,
            $($borrow)+ $v.utm_medium,
            $($borrow)+ $v.utm_campaign,
            $($borrow)+ $v.utm_content,
            $($borrow)+ $v.utm_term,
            $($borrow)+ $v.device,
            $($borrow)+ $v.browser,
            $($borrow)+ $v.browser_version,
            $($borrow)+ $v.os,
            $($borrow)+ $v.os_version,
            $($borrow)+ $v.country,
            $($borrow)+ $v.region,
            $($borrow)+ $v.country_name,
            $($borrow)+ $v.region_name,
            $($borrow)+ $v.city_name,
            $($borrow)+ $v.org,
            $($borrow)+ $v.label,
        ]
    };
}

/// Encodes a batch of processed events.
pub fn encode_events(events: &[Event]) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(8 + events.len() * 192));
    w.u8(KIND_EVENTS);
    w.u32(events.len() as u32);
    for e in events {
        w.u32(e.site_id);
        w.i64(e.ts_us);
        w.u64(e.event_id);
        w.u8(u8::from(e.client_id) | u8::from(e.interactive) << 1);
        w.u64(e.visitor_id);
        w.u64(e.session_id);
        w.i64(e.session_start_us);
        w.str(&e.name);
        w.str(&e.hostname);
        w.str(&e.pathname);
        w.str(&e.title);
        w.u32(e.engagement_ms);
        w.opt_u8(e.scroll_depth);
        match &e.revenue_amount {
            Some(amount) => {
                w.u8(1);
                w.0.extend_from_slice(&amount.to_le_bytes());
            }
            None => w.u8(0),
        }
        w.opt_str(e.revenue_currency.as_deref());
        w.props(&e.props);
        match &e.visit {
            Some(v) => {
                w.u8(1);
                for s in visit_strings!(v, &) {
                    w.str(s);
                }
                w.u32(v.city);
            }
            None => w.u8(0),
        }
    }
    w.0
}

fn decode_events(payload: &[u8]) -> Result<Record, DecodeError> {
    let mut r = Reader(payload);
    // Each event takes at least 73 bytes (60 is a safe floor), so a bad count cannot
    // reserve much.
    let n = r.u32()? as usize;
    if n > payload.len() / 60 {
        return Err(DecodeError("count larger than the record".into()));
    }
    let mut events = Vec::with_capacity(n);
    for _ in 0..n {
        let site_id = r.u32()?;
        let ts_us = r.i64()?;
        let event_id = r.u64()?;
        let flags = r.u8()?;
        let visitor_id = r.u64()?;
        let session_id = r.u64()?;
        let session_start_us = r.i64()?;
        let name = r.string()?;
        let hostname = r.string()?;
        let pathname = r.string()?;
        let title = r.string()?;
        let engagement_ms = r.u32()?;
        let scroll_depth = r.opt_u8()?;
        let revenue_amount = match r.u8()? {
            0 => None,
            _ => Some(f64::from_le_bytes(r.array()?)),
        };
        let revenue_currency = r.opt_string()?;
        let props = r.props()?;
        let visit = match r.u8()? {
            0 => None,
            _ => Some(Arc::new(decode_visit(&mut r)?)),
        };
        events.push(Event {
            site_id,
            ts_us,
            event_id,
            client_id: flags & 1 != 0,
            visitor_id,
            session_id,
            session_start_us,
            name,
            interactive: flags & 2 != 0,
            hostname,
            pathname,
            title,
            engagement_ms,
            scroll_depth,
            revenue_amount,
            revenue_currency,
            props,
            visit,
        });
    }
    if !r.0.is_empty() {
        return Err(DecodeError("bytes after the last event".into()));
    }
    Ok(Record::Events(events))
}

fn decode_visit(r: &mut Reader) -> Result<VisitAttrs, DecodeError> {
    let mut v = VisitAttrs::default();
    for s in visit_strings!(v, &mut) {
        *s = r.string()?;
    }
    v.city = r.u32()?;
    Ok(v)
}

/// Encodes validated hits of one site and request.
pub fn encode_hits<'a, I>(site: &Site, ctx: &HitContext, hits: I) -> Vec<u8>
where
    I: Iterator<Item = &'a WireEvent> + Clone,
{
    // Sized up front: growing a multi-megabyte buffer copies it several times.
    let mut count = 0usize;
    let strings: usize = hits
        .clone()
        .inspect(|_| count += 1)
        .map(|h| {
            h.name.len()
                + h.url.len()
                + h.referrer.as_ref().map_or(0, String::len)
                + h.props
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 8)
                    .sum::<usize>()
                + h.visitor_id.as_ref().map_or(0, String::len)
                + h.user_agent.as_ref().map_or(0, String::len)
                + h.title.as_ref().map_or(0, String::len)
                + h.id.as_ref().map_or(0, String::len)
                + h.domain.as_ref().map_or(0, String::len)
                + h.ip.as_ref().map_or(0, String::len)
        })
        .sum();
    let mut w = Writer(Vec::with_capacity(512 + strings + count * 96));
    w.u8(KIND_HITS);
    w.u32(site.id);
    w.str(&site.domain);
    w.str(&site.timezone);
    w.str(site.identity_mode.as_str());
    w.u32(site.session_timeout_secs);
    w.u32(site.allowed_hostnames.len() as u32);
    for h in &site.allowed_hostnames {
        w.str(h);
    }
    w.str(&ctx.ip);
    w.str(&ctx.user_agent);
    w.i64(ctx.now_us);
    w.u8(u8::from(ctx.server_side));
    let h = &ctx.hints;
    for s in [
        &h.ua,
        &h.full_version_list,
        &h.platform,
        &h.platform_version,
        &h.mobile,
        &h.model,
    ] {
        w.str(s);
    }
    w.opt_str(ctx.cdn_country.as_deref());
    w.u32(count as u32);
    for hit in hits {
        w.str(&hit.name);
        w.str(&hit.url);
        w.opt_str(hit.domain.as_deref());
        w.opt_str(hit.referrer.as_deref());
        w.props(&hit.props);
        match &hit.revenue {
            Some((amount, currency)) => {
                w.u8(1);
                w.0.extend_from_slice(&amount.to_le_bytes());
                w.str(currency);
            }
            None => w.u8(0),
        }
        w.u8(match hit.interactive {
            None => 0,
            Some(false) => 1,
            Some(true) => 2,
        });
        w.u8(u8::from(hit.hash_mode)
            | u8::from(hit.webdriver) << 1
            | u8::from(hit.new_session) << 2);
        w.opt_u8(hit.scroll_depth);
        match hit.engaged_ms {
            Some(ms) => {
                w.u8(1);
                w.u32(ms);
            }
            None => w.u8(0),
        }
        match hit.timestamp_us {
            Some(ts) => {
                w.u8(1);
                w.i64(ts);
            }
            None => w.u8(0),
        }
        w.opt_str(hit.visitor_id.as_deref());
        w.opt_str(hit.ip.as_deref());
        w.opt_str(hit.user_agent.as_deref());
        w.opt_str(hit.title.as_deref());
        w.opt_str(hit.id.as_deref());
    }
    w.0
}

/// Decodes a record payload of either kind.
pub fn decode(payload: &[u8]) -> Result<Record, DecodeError> {
    match payload.first() {
        Some(&KIND_EVENTS) => decode_events(&payload[1..]),
        Some(&KIND_EVENTS_JSON) => serde_json::from_slice(payload)
            .map(Record::Events)
            .map_err(|e| DecodeError(e.to_string())),
        Some(&KIND_HITS) => decode_hits(&payload[1..]),
        Some(other) => Err(DecodeError(format!("unknown record kind {other}"))),
        None => Err(DecodeError("empty record".into())),
    }
}

fn decode_hits(payload: &[u8]) -> Result<Record, DecodeError> {
    let mut r = Reader(payload);
    let id = r.u32()?;
    let domain = r.string()?;
    let timezone = r.string()?;
    let mode = r.string()?;
    let identity_mode = IdentityMode::parse(&mode)
        .ok_or_else(|| DecodeError(format!("unknown identity mode {mode:?}")))?;
    let session_timeout_secs = r.u32()?;
    let n = r.len()?;
    let allowed_hostnames = (0..n).map(|_| r.string()).collect::<Result<_, _>>()?;
    let site = Site {
        id,
        domain,
        timezone,
        identity_mode,
        session_timeout_secs,
        allowed_hostnames,
    };
    let ip = r.string()?;
    let user_agent = r.string()?;
    let now_us = r.i64()?;
    let server_side = r.u8()? != 0;
    let hints = ClientHints {
        ua: r.string()?,
        full_version_list: r.string()?,
        platform: r.string()?,
        platform_version: r.string()?,
        mobile: r.string()?,
        model: r.string()?,
    };
    let cdn_country = r.opt_string()?;
    let ctx = HitContext {
        ip,
        user_agent,
        now_us,
        server_side,
        hints,
        cdn_country,
    };
    let n = r.len()?;
    let mut hits = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.string()?;
        let url = r.string()?;
        let domain = r.opt_string()?;
        let referrer = r.opt_string()?;
        let props = r.props()?;
        let revenue = match r.u8()? {
            0 => None,
            _ => Some((f64::from_le_bytes(r.array()?), r.string()?)),
        };
        let interactive = match r.u8()? {
            0 => None,
            1 => Some(false),
            _ => Some(true),
        };
        let flags = r.u8()?;
        let scroll_depth = r.opt_u8()?;
        let engaged_ms = match r.u8()? {
            0 => None,
            _ => Some(r.u32()?),
        };
        let timestamp_us = match r.u8()? {
            0 => None,
            _ => Some(r.i64()?),
        };
        hits.push(WireEvent {
            name,
            url,
            domain,
            referrer,
            props,
            revenue,
            interactive,
            hash_mode: flags & 1 != 0,
            scroll_depth,
            engaged_ms,
            timestamp_us,
            visitor_id: r.opt_string()?,
            ip: r.opt_string()?,
            user_agent: r.opt_string()?,
            title: r.opt_string()?,
            id: r.opt_string()?,
            webdriver: flags & 2 != 0,
            new_session: flags & 4 != 0,
        });
    }
    Ok(Record::Hits { site, ctx, hits })
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
    }
    fn opt_u8(&mut self, v: Option<u8>) {
        match v {
            Some(v) => {
                self.u8(1);
                self.u8(v);
            }
            None => self.u8(0),
        }
    }
    fn props(&mut self, props: &[(String, String)]) {
        self.u32(props.len() as u32);
        for (k, v) in props {
            self.str(k);
            self.str(v);
        }
    }
    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
            None => self.u8(0),
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError("record ends early".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    /// A count, bounded by the bytes left so a bad length cannot allocate much.
    fn len(&mut self) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        if n > self.0.len() {
            return Err(DecodeError("count larger than the record".into()));
        }
        Ok(n)
    }
    fn string(&mut self) -> Result<String, DecodeError> {
        let n = self.len()?;
        let bytes = self.take(n)?;
        std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|_| DecodeError("string is not UTF-8".into()))
    }
    fn opt_u8(&mut self) -> Result<Option<u8>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            _ => self.u8().map(Some),
        }
    }
    fn props(&mut self) -> Result<Vec<(String, String)>, DecodeError> {
        let n = self.len()?;
        let mut props = Vec::with_capacity(n);
        for _ in 0..n {
            props.push((self.string()?, self.string()?));
        }
        Ok(props)
    }
    fn opt_string(&mut self) -> Result<Option<String>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            _ => self.string().map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_round_trip() {
        let site = Site {
            id: 3,
            domain: "example.com".into(),
            timezone: "Europe/Paris".into(),
            identity_mode: IdentityMode::Cookieless,
            session_timeout_secs: 1800,
            allowed_hostnames: vec!["a.example.com".into()],
        };
        let ctx = HitContext {
            ip: "203.0.113.9".into(),
            user_agent: "curl".into(),
            now_us: 42,
            server_side: true,
            hints: ClientHints {
                platform: "\"Linux\"".into(),
                ..ClientHints::default()
            },
            cdn_country: Some("FR".into()),
        };
        let hits = vec![
            WireEvent {
                name: "pageview".into(),
                url: "https://example.com/é".into(),
                props: vec![("k".into(), "v".into())],
                revenue: Some((1.5, "EUR".into())),
                interactive: Some(false),
                hash_mode: true,
                scroll_depth: Some(40),
                engaged_ms: Some(1200),
                timestamp_us: Some(-5),
                visitor_id: Some("u1".into()),
                id: Some("e1".into()),
                new_session: true,
                ..WireEvent::default()
            },
            WireEvent::default(),
        ];
        let payload = encode_hits(&site, &ctx, hits.iter());
        let Ok(Record::Hits {
            site: s,
            ctx: c,
            hits: h,
        }) = decode(&payload)
        else {
            panic!("expected a hit record");
        };
        assert_eq!((s, h), (site, hits));
        assert_eq!((c.ip, c.now_us, c.server_side), (ctx.ip, 42, true));
        assert_eq!(
            (c.hints.platform, c.cdn_country),
            (ctx.hints.platform, ctx.cdn_country)
        );
        // Truncated records are errors, never panics.
        for cut in 0..payload.len() {
            assert!(decode(&payload[..cut]).is_err());
        }
    }

    fn sample_events() -> Vec<Event> {
        let visit = VisitAttrs {
            entry_page: "/é".into(),
            source: "Google".into(),
            browser: "Firefox".into(),
            city: 2988507,
            label: "recruiter".into(),
            org: "Example AS".into(),
            ..VisitAttrs::default()
        };
        vec![
            Event {
                site_id: 7,
                ts_us: 1_700_000_000_000_000,
                event_id: u64::MAX,
                client_id: true,
                visitor_id: 1 << 63,
                session_id: 99,
                session_start_us: -1,
                name: "pageview".into(),
                interactive: true,
                hostname: "example.com".into(),
                pathname: "/é".into(),
                title: "Home".into(),
                engagement_ms: 1200,
                scroll_depth: Some(80),
                revenue_amount: Some(12.5),
                revenue_currency: Some("EUR".into()),
                props: vec![("plan".into(), "pro".into()), ("".into(), "".into())],
                visit: Some(Arc::new(visit)),
            },
            Event {
                name: "engagement".into(),
                ..Event::default()
            },
        ]
    }

    #[test]
    fn events_round_trip() {
        let events = sample_events();
        let payload = encode_events(&events);
        assert_eq!(payload[0], KIND_EVENTS);
        let Ok(Record::Events(back)) = decode(&payload) else {
            panic!("expected an event record");
        };
        assert_eq!(back, events);
        for cut in 0..payload.len() {
            assert!(decode(&payload[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = payload.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
        // A count no record could hold is refused before anything is reserved.
        let mut huge = vec![KIND_EVENTS];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&huge).is_err());
    }

    /// Logs written before event records were binary (a JSON array) still replay.
    #[test]
    fn json_event_records_still_decode() {
        let events = sample_events();
        let payload = serde_json::to_vec(&events).expect("events serialise");
        let Ok(Record::Events(back)) = decode(&payload) else {
            panic!("expected an event record");
        };
        assert_eq!(back, events);
    }
}
