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
use footfall_core::{CompactString, Event, VisitAttrs};
use footfall_enrich::hints::ClientHints;
use footfall_store::{IdentityMode, Site};
use std::sync::Arc;

/// First payload byte of a hit record.
const KIND_HITS: u8 = 1;
/// First payload byte of an event record.
const KIND_EVENTS: u8 = 2;
/// Bytes before an event record's events: the kind and the event count (`u32`).
const EVENTS_HEADER: usize = 5;
/// First byte of an event record written as JSON (before KIND_EVENTS existed).
const KIND_EVENTS_JSON: u8 = b'[';

#[derive(Debug, thiserror::Error)]
#[error("write-ahead log record is malformed: {0}")]
pub struct DecodeError(String);

/// One decoded record.
// Records are decoded one at a time and consumed at once: the size gap costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Record<'a> {
    Hits {
        site: Site,
        ctx: HitContext,
        hits: EncodedHits<'a>,
    },
    Events(Vec<Event>),
}

/// The hits of a hit record, decoded one at a time as they are taken: a record holds a
/// whole bulk body (10,000 hits are ~14 MB as `WireEvent`s, ~3 MB encoded). A malformed
/// hit ends the iteration with its error.
pub struct EncodedHits<'a> {
    r: Reader<'a>,
    left: usize,
}

impl EncodedHits<'_> {
    /// Hits not yet taken.
    pub fn len(&self) -> usize {
        self.left
    }

    pub fn is_empty(&self) -> bool {
        self.left == 0
    }
}

impl Iterator for EncodedHits<'_> {
    type Item = Result<WireEvent, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            if self.r.0.is_empty() {
                return None;
            }
            self.r.0 = &[];
            return Some(Err(DecodeError("bytes after the last hit".into())));
        }
        self.left -= 1;
        let hit = decode_hit(&mut self.r);
        if hit.is_err() {
            (self.left, self.r.0) = (0, &[]);
        }
        Some(hit)
    }
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
    let mut encoder = EventsEncoder::with_capacity(events.len() * 192);
    events.iter().for_each(|e| encoder.push(e));
    encoder.finish()
}

/// An event record built event by event. The applier gathers a store batch this way:
/// ~150 bytes per event instead of an `Event` (224 bytes, its strings beyond 24 bytes and
/// its visit's attributes beside it), so the batch being gathered takes a fraction of
/// the one being stored, which the store writer decodes just before it stores it.
pub struct EventsEncoder {
    w: Writer,
    count: u32,
}

impl EventsEncoder {
    /// `capacity`: bytes to reserve for the events.
    pub fn with_capacity(capacity: usize) -> EventsEncoder {
        let mut w = Writer(Vec::with_capacity(EVENTS_HEADER + capacity));
        w.u8(KIND_EVENTS);
        w.u32(0);
        EventsEncoder { w, count: 0 }
    }

    /// Events pushed so far.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn push(&mut self, e: &Event) {
        self.count += 1;
        let w = &mut self.w;
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

    /// Takes a record read from the log into the batch: an event record's events are
    /// appended as they are encoded (an older JSON record's one by one); a hit record is
    /// handed back, its hits to be processed and pushed. A record that does not decode
    /// is refused whole here (and skipped, as before), so the batch always decodes.
    pub fn take<'a>(
        &mut self,
        payload: &'a [u8],
    ) -> Result<Option<(Site, HitContext, EncodedHits<'a>)>, DecodeError> {
        let record = decode(payload)?;
        if let (Some(&KIND_EVENTS), Record::Events(events)) = (payload.first(), &record) {
            self.count += events.len() as u32;
            // After the kind byte and the count: the events as encoded.
            self.w.0.extend_from_slice(&payload[EVENTS_HEADER..]);
            return Ok(None);
        }
        match record {
            Record::Hits { site, ctx, hits } => Ok(Some((site, ctx, hits))),
            Record::Events(events) => {
                events.iter().for_each(|e| self.push(e));
                Ok(None)
            }
        }
    }

    /// The event record.
    pub fn finish(self) -> Vec<u8> {
        let mut bytes = self.w.0;
        bytes[1..EVENTS_HEADER].copy_from_slice(&self.count.to_le_bytes());
        bytes
    }
}

fn decode_events(payload: &[u8]) -> Result<Record<'_>, DecodeError> {
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
        let name = r.compact()?;
        let hostname = r.compact()?;
        let pathname = r.compact()?;
        let title = r.compact()?;
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
        *s = r.compact()?;
    }
    v.city = r.u32()?;
    Ok(v)
}

/// A hit record built hit by hit while a bulk body is parsed: each hit is encoded as soon
/// as it is validated, so a body's hits wait for the log as their encoded bytes (about
/// their JSON's size) instead of as `WireEvent`s (~1.4 KB each with their strings: 14 MB
/// per 10,000-hit body, the largest item after DuckDB's in a bulk load's heap profile).
pub struct HitsEncoder {
    /// The record's header, a placeholder for the hit count at `count_at`, then the hits
    /// back to back in push order.
    w: Writer,
    count_at: usize,
    /// Time (the ordering key) and start in `w` of each hit, in push order.
    placed: Vec<(i64, usize)>,
    now_us: i64,
}

impl HitsEncoder {
    /// Starts the record of `site`'s hits sent in one request. `capacity`: bytes to
    /// reserve for the hits (their JSON's length is a good bound; reserved pages that are
    /// never written cost no memory, while growing by doubling copies megabytes).
    pub fn new(site: &Site, ctx: &HitContext, capacity: usize) -> HitsEncoder {
        let mut w = Writer(Vec::with_capacity(512 + capacity));
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
        let count_at = w.0.len();
        w.u32(0);
        HitsEncoder {
            w,
            count_at,
            placed: Vec::with_capacity((capacity / 64).min(100_000)),
            now_us: ctx.now_us,
        }
    }

    /// Hits pushed so far.
    pub fn len(&self) -> usize {
        self.placed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.placed.is_empty()
    }

    /// Appends one validated hit.
    pub fn push(&mut self, hit: &WireEvent) {
        self.placed
            .push((hit.timestamp_us.unwrap_or(self.now_us), self.w.0.len()));
        let w = &mut self.w;
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

    /// The record of the hits for which `keep(i)` holds (`i` in push order), in time
    /// order. Visits are decided by event time (DESIGN §3), and the sessionizer behind
    /// the log takes hits in log order: a body sent out of time order is logged in time
    /// order (stable, so hits of one instant keep the request's order). Sent in request
    /// order, a later hit opened the visit and gave it its entry page and source, and an
    /// engagement beacon before its page view was dropped.
    pub fn finish(self, keep: impl Fn(usize) -> bool) -> Vec<u8> {
        let HitsEncoder {
            w: Writer(mut bytes),
            count_at,
            placed,
            ..
        } = self;
        let mut order: Vec<usize> = (0..placed.len()).filter(|&i| keep(i)).collect();
        let kept = order.len();
        let in_order = placed.is_sorted_by_key(|&(at, _)| at);
        if kept == placed.len() && in_order {
            // The common case: the buffer is the record as it stands.
            bytes[count_at..count_at + 4].copy_from_slice(&(kept as u32).to_le_bytes());
            return bytes;
        }
        let end = |i: usize| placed.get(i + 1).map_or(bytes.len(), |&(_, start)| start);
        if !in_order {
            order.sort_by_key(|&i| placed[i].0);
        }
        let size = count_at + 4 + order.iter().map(|&i| end(i) - placed[i].1).sum::<usize>();
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(&bytes[..count_at]);
        out.extend_from_slice(&(kept as u32).to_le_bytes());
        for i in order {
            out.extend_from_slice(&bytes[placed[i].1..end(i)]);
        }
        out
    }
}

/// Decodes a record payload of either kind.
pub fn decode(payload: &[u8]) -> Result<Record<'_>, DecodeError> {
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

fn decode_hits(payload: &[u8]) -> Result<Record<'_>, DecodeError> {
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
    let left = r.len()?;
    Ok(Record::Hits {
        site,
        ctx,
        hits: EncodedHits { r, left },
    })
}

fn decode_hit(r: &mut Reader) -> Result<WireEvent, DecodeError> {
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
    Ok(WireEvent {
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
    })
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
    fn str(&mut self) -> Result<&str, DecodeError> {
        let n = self.len()?;
        let bytes = self.take(n)?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError("string is not UTF-8".into()))
    }
    fn string(&mut self) -> Result<String, DecodeError> {
        self.str().map(str::to_string)
    }
    fn compact(&mut self) -> Result<CompactString, DecodeError> {
        self.str().map(CompactString::from)
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
        let payload = encode_hits(&site, &ctx, &hits, |_| true);
        let Ok(Record::Hits {
            site: s,
            ctx: c,
            hits: h,
        }) = decode(&payload)
        else {
            panic!("expected a hit record");
        };
        let h: Vec<WireEvent> = h.collect::<Result<_, _>>().expect("hits decode");
        assert_eq!((s, h), (site, hits));
        assert_eq!((c.ip, c.now_us, c.server_side), (ctx.ip, 42, true));
        assert_eq!(
            (c.hints.platform, c.cdn_country),
            (ctx.hints.platform, ctx.cdn_country)
        );
        // Truncated records are errors, never panics; so are bytes after the last hit.
        for cut in 0..payload.len() {
            let hits = decode(&payload[..cut]).map(|record| match record {
                Record::Hits { hits, .. } => hits.collect::<Result<Vec<_>, _>>().map(|_| ()),
                Record::Events(_) => Ok(()),
            });
            assert!(!matches!(hits, Ok(Ok(()))), "cut at {cut}");
        }
        let mut longer = payload.clone();
        longer.push(0);
        let Ok(Record::Hits { hits, .. }) = decode(&longer) else {
            panic!("expected a hit record");
        };
        assert!(hits.collect::<Result<Vec<_>, _>>().is_err());
    }

    fn test_site() -> (Site, HitContext) {
        let ctx = HitContext {
            now_us: 500,
            ..HitContext::default()
        };
        (crate::pipeline::tests::site(), ctx)
    }

    fn encode_hits(
        site: &Site,
        ctx: &HitContext,
        hits: &[WireEvent],
        keep: impl Fn(usize) -> bool,
    ) -> Vec<u8> {
        let mut encoder = HitsEncoder::new(site, ctx, 0);
        hits.iter().for_each(|hit| encoder.push(hit));
        assert_eq!(encoder.len(), hits.len());
        encoder.finish(keep)
    }

    fn decoded_urls(payload: &[u8]) -> Vec<String> {
        let Ok(Record::Hits { hits, .. }) = decode(payload) else {
            panic!("expected a hit record");
        };
        hits.map(|hit| hit.expect("hit decodes").url).collect()
    }

    /// Hits are logged in time order (stable; a hit without a time is at the request's
    /// time) and only the kept ones.
    #[test]
    fn hit_records_are_in_time_order_and_keep_only_kept_hits() {
        let (site, ctx) = test_site();
        let hit = |url: &str, ts: Option<i64>| WireEvent {
            url: url.into(),
            timestamp_us: ts,
            ..WireEvent::default()
        };
        let hits = [
            hit("/c", Some(900)),
            hit("/a", Some(100)),
            hit("/now", None),
            hit("/b", Some(100)),
            hit("/d", Some(1000)),
        ];
        assert_eq!(
            decoded_urls(&encode_hits(&site, &ctx, &hits, |_| true)),
            ["/a", "/b", "/now", "/c", "/d"]
        );
        assert_eq!(
            decoded_urls(&encode_hits(&site, &ctx, &hits, |i| i != 1 && i != 4)),
            ["/b", "/now", "/c"]
        );
        // In order already: the same record whether rewritten or not.
        let sorted = [hit("/a", Some(1)), hit("/b", Some(2)), hit("/c", Some(3))];
        assert_eq!(
            decoded_urls(&encode_hits(&site, &ctx, &sorted, |_| true)),
            ["/a", "/b", "/c"]
        );
        assert_eq!(
            decoded_urls(&encode_hits(&site, &ctx, &sorted, |i| i != 2)),
            ["/a", "/b"]
        );
        assert!(decoded_urls(&encode_hits(&site, &ctx, &sorted, |_| false)).is_empty());
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

    /// A store batch gathered from pushed events and from event records read from the
    /// log (binary or JSON) decodes to all of them in order; hit records are handed back.
    #[test]
    fn gathered_events_decode_in_order() {
        let events = sample_events();
        let mut batch = EventsEncoder::with_capacity(0);
        batch.push(&events[1]);
        let binary = encode_events(&events);
        assert!(matches!(batch.take(&binary), Ok(None)));
        let json = serde_json::to_vec(&events[..1]).expect("events serialise");
        assert!(matches!(batch.take(&json), Ok(None)));
        assert_eq!(batch.len(), 4);
        let Ok(Record::Events(back)) = decode(&batch.finish()) else {
            panic!("expected an event record");
        };
        assert_eq!(
            back,
            [&events[1], &events[0], &events[1], &events[0]].map(Clone::clone)
        );
        // A record that does not decode is refused and leaves the batch as it was.
        let mut batch = EventsEncoder::with_capacity(0);
        assert!(batch.take(&binary[..binary.len() - 1]).is_err());
        assert!(batch.is_empty());
        assert!(matches!(decode(&batch.finish()), Ok(Record::Events(e)) if e.is_empty()));
        let hits = {
            let (site, ctx) = test_site();
            encode_hits(&site, &ctx, &[WireEvent::default()], |_| true)
        };
        let mut batch = EventsEncoder::with_capacity(0);
        let Ok(Some((_, _, hits))) = batch.take(&hits) else {
            panic!("a hit record is handed back");
        };
        assert_eq!((hits.len(), batch.len()), (1, 0));
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
