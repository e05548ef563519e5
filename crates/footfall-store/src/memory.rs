//! The in-process `LiveState` of the embedded deployment.

use crate::{
    ActiveVisitor, Invitation, LiveEvent, LiveFeed, LivePresence, LiveState, LiveVisitor,
    StoreResult, VisitorChannel,
};
use async_trait::async_trait;
use footfall_core::{Event, VisitAttrs};
use rand::RngCore;
use std::collections::HashMap;

use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc};

/// Maps keyed by (site, visitor id): the ids are already keyed hashes, so the fast
/// hasher the ingestion tables use instead of SipHash (~0.5 % of the server's CPU under
/// `/api/event` load went to hashing these keys).
type ByVisitor<V> = HashMap<VisitorKey, V, foldhash::fast::RandomState>;

/// How long a visitor stays in the live table without events (the longest realtime
/// window asked for is a visit timeout).
const KEEP_US: i64 = 30 * 60 * 1_000_000;
/// A visitor without a live channel departs after this long without events (the
/// realtime "visitors in the last 5 minutes").
const IDLE_US: i64 = 5 * 60 * 1_000_000;
/// A visitor whose last channel closed departs after this long unless a page of the site
/// opens a new one (navigating between pages closes and reopens it).
const GRACE_US: i64 = 15 * 1_000_000;
/// Invitations queued per channel before further ones are refused.
const CHANNEL_QUEUE: usize = 8;
/// Open channels per visitor (tabs); a further one closes the oldest, so a token cannot
/// be used to pile up connections.
const MAX_CHANNELS: usize = 16;
/// Live feed events buffered per site for a slow dashboard.
const FEED_QUEUE: usize = 256;

type VisitorKey = (u32, u64);

/// A visitor's presence on the live feed.
struct Presence {
    present: bool,
    first_us: i64,
    last_us: i64,
    /// Latest event, or the moment the last channel closed.
    activity_us: i64,
    had_channel: bool,
    pageviews: u32,
    page: footfall_core::CompactString,
    hostname: footfall_core::CompactString,
    visit: Arc<VisitAttrs>,
}

#[derive(Default)]
struct Hub {
    presence: ByVisitor<Presence>,
    channels: HashMap<VisitorKey, Vec<(u64, mpsc::Sender<Invitation>)>>,
    /// token -> (visitor, issue time)
    tokens: HashMap<String, (VisitorKey, i64)>,
    token_of: HashMap<VisitorKey, String>,
    feeds: HashMap<u32, broadcast::Sender<LiveEvent>>,
    next_channel: u64,
}

fn rfc3339(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Hub {
    fn open_channels(&self, key: VisitorKey) -> usize {
        self.channels.get(&key).map_or(0, Vec::len)
    }

    fn view(&self, key: VisitorKey, p: &Presence) -> LiveVisitor {
        LiveVisitor {
            visitor: format!("{:016x}", key.1),
            page: p.page.to_string(),
            hostname: p.hostname.to_string(),
            pageviews: p.pageviews,
            source: p.visit.source.to_string(),
            referrer: p.visit.referrer.to_string(),
            device: p.visit.device.to_string(),
            browser: p.visit.browser.to_string(),
            os: p.visit.os.to_string(),
            country: p.visit.country.to_string(),
            city: p.visit.city_name.to_string(),
            org: p.visit.org.to_string(),
            first_seen: rfc3339(p.first_us),
            last_seen: rfc3339(p.last_us),
            invitable: self.open_channels(key) > 0,
        }
    }

    fn watched(&self, site_id: u32) -> bool {
        self.feeds
            .get(&site_id)
            .is_some_and(|f| f.receiver_count() > 0)
    }

    fn emit(&self, site_id: u32, make: impl FnOnce() -> LiveEvent) {
        if let Some(feed) = self.feeds.get(&site_id).filter(|f| f.receiver_count() > 0) {
            // No receiver left between the check and the send is harmless.
            let _ = feed.send(make());
        }
    }

    /// Emits a `channel` event for a visitor on the feed whose reachability changed.
    fn channel_changed(&self, key: VisitorKey) {
        if let Some(p) = self.presence.get(&key).filter(|p| p.present)
            && self.watched(key.0)
        {
            self.emit(key.0, || LiveEvent::Channel(self.view(key, p)));
        }
    }

    fn record(&mut self, e: &Event, now_us: i64) {
        let key = (e.site_id, e.visitor_id);
        let p = self.presence.entry(key).or_insert_with(|| Presence {
            present: false,
            first_us: e.ts_us,
            last_us: e.ts_us,
            activity_us: e.ts_us,
            had_channel: false,
            pageviews: 0,
            page: e.pathname.clone(),
            hostname: e.hostname.clone(),
            // A visit begun before a restart has no attributes in memory: shown empty.
            visit: e.visit.clone().unwrap_or_default(),
        });
        p.last_us = p.last_us.max(e.ts_us);
        p.activity_us = p.activity_us.max(e.ts_us.min(now_us));
        // An engagement beacon says the visitor is still there, never that one arrived.
        if e.is_engagement() {
            return;
        }
        if e.is_pageview() {
            p.pageviews += 1;
            p.page.clone_from(&e.pathname);
            p.hostname.clone_from(&e.hostname);
        }
        // Only a visit's first event carries its attributes: a new visit of the visitor.
        if let Some(visit) = &e.visit
            && !Arc::ptr_eq(&p.visit, visit)
        {
            p.visit = visit.clone();
        }
        let arrived = !p.present;
        if arrived {
            p.present = true;
            p.first_us = e.ts_us;
        }
        if !self.watched(e.site_id) || !(arrived || e.is_pageview()) {
            return;
        }
        let p = &self.presence[&key];
        let view = self.view(key, p);
        self.emit(e.site_id, || {
            if arrived {
                LiveEvent::Arrival(view)
            } else {
                LiveEvent::Page(view)
            }
        });
    }

    /// A visitor already there after a restart (nobody subscribes before start-up ends).
    fn restore(&mut self, v: LivePresence, now_us: i64) {
        if now_us - v.last_us > IDLE_US {
            return;
        }
        let key = (v.site_id, v.visitor_id);
        if self.presence.contains_key(&key) {
            return;
        }
        self.presence.insert(
            key,
            Presence {
                present: true,
                first_us: v.first_us,
                last_us: v.last_us,
                activity_us: v.last_us,
                had_channel: false,
                pageviews: v.pageviews,
                page: v.page,
                hostname: v.hostname,
                visit: Arc::new(v.visit),
            },
        );
    }

    fn sweep(&mut self, now_us: i64) {
        // Channels whose receiver is gone without close_channel (a dropped connection).
        let mut emptied = Vec::new();
        self.channels.retain(|key, chans| {
            let before = chans.len();
            chans.retain(|(_, tx)| !tx.is_closed());
            if chans.len() < before && chans.is_empty() {
                emptied.push(*key);
            }
            !chans.is_empty()
        });
        for key in emptied {
            if let Some(p) = self.presence.get_mut(&key) {
                p.activity_us = p.activity_us.max(now_us);
            }
            self.channel_changed(key);
        }
        let mut departed = Vec::new();
        for (key, p) in self.presence.iter_mut() {
            if !p.present || self.channels.contains_key(key) {
                continue;
            }
            let limit = if p.had_channel { GRACE_US } else { IDLE_US };
            if now_us - p.activity_us > limit {
                p.present = false;
                departed.push(*key);
            }
        }
        for key in departed {
            self.emit(key.0, || LiveEvent::Departure {
                visitor: format!("{:016x}", key.1),
            });
        }
        let channels = &self.channels;
        self.presence.retain(|key, p| {
            p.present || channels.contains_key(key) || now_us - p.activity_us <= KEEP_US
        });
        let (presence, channels) = (&self.presence, &self.channels);
        self.tokens.retain(|_, (key, issued)| {
            presence.contains_key(key) || channels.contains_key(key) || now_us - *issued <= KEEP_US
        });
        let tokens = &self.tokens;
        self.token_of.retain(|_, t| tokens.contains_key(t));
        self.feeds.retain(|_, f| f.receiver_count() > 0);
    }
}

#[derive(Default)]
pub struct MemoryLive {
    /// (site, visitor) -> latest activity.
    visitors: Mutex<ByVisitor<ActiveVisitor>>,
    /// key -> (tokens left, last refill time).
    buckets: Mutex<HashMap<String, (f64, i64)>>,
    hub: Mutex<Hub>,
}

impl MemoryLive {
    fn hub(&self) -> std::sync::MutexGuard<'_, Hub> {
        self.hub.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl LiveState for MemoryLive {
    async fn record(&self, events: &[Event]) -> StoreResult<()> {
        let now_us = chrono::Utc::now().timestamp_micros();
        let mut visitors = self.visitors.lock().unwrap_or_else(|e| e.into_inner());
        let mut newest = i64::MIN;
        for e in events {
            newest = newest.max(e.ts_us);
            // Would be dropped by the `retain` below; a backfill batch holds thousands.
            if now_us - e.ts_us > KEEP_US {
                continue;
            }
            let entry = visitors
                .entry((e.site_id, e.visitor_id))
                .or_insert_with(|| ActiveVisitor {
                    visitor_id: e.visitor_id,
                    session_id: e.session_id,
                    pathname: e.pathname.clone(),
                    last_seen_us: e.ts_us,
                });
            if e.ts_us >= entry.last_seen_us {
                entry.session_id = e.session_id;
                entry.last_seen_us = e.ts_us;
                if e.is_pageview() {
                    entry.pathname.clone_from(&e.pathname);
                }
            }
        }
        visitors.retain(|_, v| now_us - v.last_seen_us <= KEEP_US);
        drop(visitors);
        // Historical events (imports, bulk backfills) say nothing about who is here now.
        if newest >= now_us - IDLE_US {
            let mut hub = self.hub();
            for e in events.iter().filter(|e| e.ts_us >= now_us - IDLE_US) {
                hub.record(e, now_us);
            }
        }
        Ok(())
    }

    async fn restore(&self, restored: Vec<(u32, ActiveVisitor)>) -> StoreResult<()> {
        let now_us = chrono::Utc::now().timestamp_micros();
        let mut visitors = self.visitors.lock().unwrap_or_else(|e| e.into_inner());
        for (site_id, v) in restored {
            if now_us - v.last_seen_us > KEEP_US {
                continue;
            }
            match visitors.entry((site_id, v.visitor_id)) {
                std::collections::hash_map::Entry::Occupied(mut known) => {
                    if v.last_seen_us > known.get().last_seen_us {
                        known.insert(v);
                    }
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(v);
                }
            }
        }
        Ok(())
    }

    async fn restore_presence(&self, visits: Vec<LivePresence>) -> StoreResult<()> {
        let now_us = chrono::Utc::now().timestamp_micros();
        let mut hub = self.hub();
        for v in visits {
            hub.restore(v, now_us);
        }
        Ok(())
    }

    async fn active_visitors(
        &self,
        site_id: u32,
        since_us: i64,
    ) -> StoreResult<Vec<ActiveVisitor>> {
        let visitors = self.visitors.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<ActiveVisitor> = visitors
            .iter()
            .filter(|((site, _), v)| *site == site_id && v.last_seen_us >= since_us)
            .map(|(_, v)| v.clone())
            .collect();
        out.sort_by_key(|v| std::cmp::Reverse(v.last_seen_us));
        Ok(out)
    }

    async fn take_rate_token(&self, key: &str, per_hour: u32, now_us: i64) -> StoreResult<bool> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let capacity = f64::from(per_hour);
        let (tokens, last) = buckets.entry(key.to_owned()).or_insert((capacity, now_us));
        // Refill continuously: per_hour tokens per hour, never above capacity.
        let elapsed_h = (now_us - *last).max(0) as f64 / 3_600_000_000.0;
        *tokens = (*tokens + elapsed_h * capacity).min(capacity);
        *last = now_us;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    async fn channel_token(&self, site_id: u32, visitor_id: u64) -> StoreResult<String> {
        let mut hub = self.hub();
        let key = (site_id, visitor_id);
        let now_us = chrono::Utc::now().timestamp_micros();
        if let Some(token) = hub.token_of.get(&key).cloned() {
            if let Some(entry) = hub.tokens.get_mut(&token) {
                entry.1 = now_us;
            }
            return Ok(token);
        }
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        hub.tokens.insert(token.clone(), (key, now_us));
        hub.token_of.insert(key, token.clone());
        Ok(token)
    }

    async fn open_channel(&self, token: &str) -> StoreResult<Option<VisitorChannel>> {
        let mut hub = self.hub();
        let Some(&(key, _)) = hub.tokens.get(token) else {
            return Ok(None);
        };
        let (tx, rx) = mpsc::channel(CHANNEL_QUEUE);
        hub.next_channel += 1;
        let id = hub.next_channel;
        let chans = hub.channels.entry(key).or_default();
        if chans.len() >= MAX_CHANNELS {
            // Dropping its sender ends the oldest channel's stream.
            chans.remove(0);
        }
        chans.push((id, tx));
        let first = chans.len() == 1;
        if let Some(p) = hub.presence.get_mut(&key) {
            p.had_channel = true;
        }
        if first {
            hub.channel_changed(key);
        }
        Ok(Some(VisitorChannel {
            id,
            site_id: key.0,
            visitor_id: key.1,
            invitations: rx,
        }))
    }

    async fn close_channel(&self, site_id: u32, visitor_id: u64, id: u64) -> StoreResult<()> {
        let mut hub = self.hub();
        let key = (site_id, visitor_id);
        let Some(chans) = hub.channels.get_mut(&key) else {
            return Ok(());
        };
        chans.retain(|(c, _)| *c != id);
        if chans.is_empty() {
            hub.channels.remove(&key);
            let now_us = chrono::Utc::now().timestamp_micros();
            if let Some(p) = hub.presence.get_mut(&key) {
                p.had_channel = true;
                p.activity_us = p.activity_us.max(now_us);
            }
            hub.channel_changed(key);
        }
        Ok(())
    }

    async fn subscribe(&self, site_id: u32) -> StoreResult<LiveFeed> {
        let mut hub = self.hub();
        let events = hub
            .feeds
            .entry(site_id)
            .or_insert_with(|| broadcast::channel(FEED_QUEUE).0)
            .subscribe();
        let mut visitors: Vec<LiveVisitor> = hub
            .presence
            .iter()
            .filter(|((site, _), p)| *site == site_id && p.present)
            .map(|(key, p)| hub.view(*key, p))
            .collect();
        visitors.sort_by(|a, b| b.last_seen.cmp(&a.last_seen));
        Ok(LiveFeed { visitors, events })
    }

    async fn invite(
        &self,
        site_id: u32,
        visitor_id: u64,
        invitation: Invitation,
    ) -> StoreResult<usize> {
        let hub = self.hub();
        let Some(chans) = hub.channels.get(&(site_id, visitor_id)) else {
            return Ok(0);
        };
        Ok(chans
            .iter()
            .filter(|(_, tx)| tx.try_send(invitation.clone()).is_ok())
            .count())
    }

    async fn sweep(&self, now_us: i64) -> StoreResult<()> {
        self.hub().sweep(now_us);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(visitor: u64, ts_us: i64, path: &str) -> Event {
        Event {
            site_id: 1,
            visitor_id: visitor,
            session_id: visitor * 10,
            ts_us,
            name: "pageview".into(),
            pathname: path.into(),
            ..Event::default()
        }
    }

    #[tokio::test]
    async fn recent_visitors_with_their_current_page() {
        let live = MemoryLive::default();
        let now = chrono::Utc::now().timestamp_micros();
        let min = 60 * 1_000_000;
        live.record(&[event(1, now - 10 * min, "/a"), event(2, now - min, "/b")])
            .await
            .expect("record");
        live.record(&[event(1, now, "/c")]).await.expect("record");
        let active = live
            .active_visitors(1, now - 5 * min)
            .await
            .expect("active");
        let pages: Vec<&str> = active.iter().map(|v| v.pathname.as_str()).collect();
        assert_eq!(pages, vec!["/c", "/b"]);
        assert!(live.active_visitors(2, 0).await.expect("active").is_empty());
    }

    fn next(feed: &mut LiveFeed) -> Option<LiveEvent> {
        feed.events.try_recv().ok()
    }

    #[tokio::test]
    async fn the_feed_follows_a_visitor_with_a_channel() {
        let live = MemoryLive::default();
        let now = chrono::Utc::now().timestamp_micros();
        let mut feed = live.subscribe(1).await.expect("subscribe");
        assert!(feed.visitors.is_empty());

        live.record(&[event(7, now, "/a")]).await.expect("record");
        let Some(LiveEvent::Arrival(v)) = next(&mut feed) else {
            panic!("expected an arrival")
        };
        assert_eq!(
            (v.visitor.as_str(), v.page.as_str()),
            ("0000000000000007", "/a")
        );
        assert!(!v.invitable);
        live.record(&[event(7, now + 1, "/b")])
            .await
            .expect("record");
        let Some(LiveEvent::Page(v)) = next(&mut feed) else {
            panic!("expected a page event")
        };
        assert_eq!((v.page.as_str(), v.pageviews), ("/b", 2));

        let token = live.channel_token(1, 7).await.expect("token");
        assert_eq!(token, live.channel_token(1, 7).await.expect("token"));
        assert_eq!(token.len(), 32);
        assert!(
            live.open_channel("not-a-token")
                .await
                .expect("open")
                .is_none()
        );
        let mut channel = live
            .open_channel(&token)
            .await
            .expect("open")
            .expect("known token");
        assert_eq!((channel.site_id, channel.visitor_id), (1, 7));
        let Some(LiveEvent::Channel(v)) = next(&mut feed) else {
            panic!("expected a channel event")
        };
        assert!(v.invitable);

        let invitation = Invitation {
            text: "Want a demo?".into(),
            url: Some("https://example.com/call".into()),
            label: None,
        };
        assert_eq!(
            live.invite(1, 7, invitation.clone()).await.expect("invite"),
            1
        );
        assert_eq!(
            live.invite(1, 8, invitation.clone()).await.expect("invite"),
            0
        );
        assert_eq!(channel.invitations.try_recv().ok(), Some(invitation));

        // A snapshot for a dashboard that connects now.
        let later = live.subscribe(1).await.expect("subscribe");
        assert_eq!(later.visitors.len(), 1);
        assert!(later.visitors[0].invitable);

        live.close_channel(1, 7, channel.id).await.expect("close");
        let Some(LiveEvent::Channel(v)) = next(&mut feed) else {
            panic!("expected a channel event")
        };
        assert!(!v.invitable);
        // Navigating to another page closes the channel for a moment: no departure yet.
        live.sweep(now + GRACE_US / 2).await.expect("sweep");
        assert_eq!(next(&mut feed), None);
        live.sweep(now + GRACE_US + 2_000_000).await.expect("sweep");
        assert_eq!(
            next(&mut feed),
            Some(LiveEvent::Departure {
                visitor: "0000000000000007".into()
            })
        );
    }

    #[tokio::test]
    async fn a_token_opens_a_bounded_number_of_channels() {
        let live = MemoryLive::default();
        let token = live.channel_token(1, 7).await.expect("token");
        let mut tabs = Vec::new();
        for _ in 0..=MAX_CHANNELS {
            tabs.push(
                live.open_channel(&token)
                    .await
                    .expect("open")
                    .expect("known"),
            );
        }
        // The oldest gave way: its stream ends.
        assert!(tabs[0].invitations.recv().await.is_none());
        let invitation = Invitation {
            text: "Hi".into(),
            url: None,
            label: None,
        };
        assert_eq!(
            live.invite(1, 7, invitation).await.expect("invite"),
            MAX_CHANNELS
        );
    }

    #[tokio::test]
    async fn visitors_without_a_channel_depart_when_idle_and_old_events_never_arrive() {
        let live = MemoryLive::default();
        let now = chrono::Utc::now().timestamp_micros();
        let mut feed = live.subscribe(1).await.expect("subscribe");
        live.record(&[event(3, now - 2 * IDLE_US, "/old")])
            .await
            .expect("record");
        assert_eq!(next(&mut feed), None);
        live.record(&[event(4, now, "/")]).await.expect("record");
        assert!(matches!(next(&mut feed), Some(LiveEvent::Arrival(_))));
        live.sweep(now + IDLE_US / 2).await.expect("sweep");
        assert_eq!(next(&mut feed), None);
        live.sweep(now + IDLE_US + 1).await.expect("sweep");
        assert!(matches!(next(&mut feed), Some(LiveEvent::Departure { .. })));
        // Still counted by the realtime view of open visits.
        assert_eq!(live.active_visitors(1, 0).await.expect("active").len(), 2);
    }

    #[tokio::test]
    async fn buckets_refill_over_the_hour() {
        let live = MemoryLive::default();
        let t0 = 0;
        for _ in 0..3 {
            assert!(live.take_rate_token("k", 3, t0).await.expect("take"));
        }
        assert!(!live.take_rate_token("k", 3, t0).await.expect("take"));
        // 20 minutes later one of three hourly tokens is back.
        assert!(
            live.take_rate_token("k", 3, 20 * 60 * 1_000_000)
                .await
                .expect("take")
        );
        assert!(
            !live
                .take_rate_token("k", 3, 20 * 60 * 1_000_000)
                .await
                .expect("take")
        );
    }
}
