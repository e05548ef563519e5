//! Payloads of write-ahead log records. Two kinds share one log and are applied in LSN
//! order: `Hits` (validated wire events with their request context, not yet enriched:
//! the bulk API answers 202 once these are on disk) and `Events` (hits already processed
//! on the request, for endpoints that answer with per-hit outcomes).
//!
//! `Hits` is a compact binary encoding (little-endian integers, `u32`-length-prefixed
//! UTF-8 strings); `Events` is the JSON array of enriched events that every record was
//! before hit records existed, so a log written by an older version replays unchanged.

use crate::pipeline::HitContext;
use crate::wire::WireEvent;
use footfall_core::Event;
use footfall_enrich::hints::ClientHints;
use footfall_store::{IdentityMode, Site};

/// First payload byte of a hit record. Event records start with `[` (JSON).
const KIND_HITS: u8 = 1;
const KIND_EVENTS: u8 = b'[';

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

/// Encodes a batch of processed events.
pub fn encode_events(events: &[Event]) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(events)
}

/// Encodes validated hits of one site and request.
pub fn encode_hits(site: &Site, ctx: &HitContext, hits: &[WireEvent]) -> Vec<u8> {
    // Sized up front: growing a multi-megabyte buffer copies it several times.
    let strings: usize = hits
        .iter()
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
    let mut w = Writer(Vec::with_capacity(512 + strings + hits.len() * 96));
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
    w.u32(hits.len() as u32);
    for hit in hits {
        w.str(&hit.name);
        w.str(&hit.url);
        w.opt_str(hit.domain.as_deref());
        w.opt_str(hit.referrer.as_deref());
        w.u32(hit.props.len() as u32);
        for (k, v) in &hit.props {
            w.str(k);
            w.str(v);
        }
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
        match hit.scroll_depth {
            Some(d) => {
                w.u8(1);
                w.u8(d);
            }
            None => w.u8(0),
        }
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
        Some(&KIND_EVENTS) => serde_json::from_slice(payload)
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
        let n_props = r.len()?;
        let mut props = Vec::with_capacity(n_props);
        for _ in 0..n_props {
            props.push((r.string()?, r.string()?));
        }
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
        let scroll_depth = match r.u8()? {
            0 => None,
            _ => Some(r.u8()?),
        };
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
    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
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
        let payload = encode_hits(&site, &ctx, &hits);
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
}
