//! The in-process `LiveState` of the embedded deployment.

use crate::{ActiveVisitor, LiveState, StoreResult};
use async_trait::async_trait;
use footfall_core::Event;
use std::collections::HashMap;
use std::sync::Mutex;

/// How long a visitor stays in the live table without events (the longest realtime
/// window asked for is a visit timeout).
const KEEP_US: i64 = 30 * 60 * 1_000_000;

#[derive(Default)]
pub struct MemoryLive {
    /// (site, visitor) -> latest activity.
    visitors: Mutex<HashMap<(u32, u64), ActiveVisitor>>,
    /// key -> (tokens left, last refill time).
    buckets: Mutex<HashMap<String, (f64, i64)>>,
}

#[async_trait]
impl LiveState for MemoryLive {
    async fn record(&self, events: &[Event]) -> StoreResult<()> {
        let mut visitors = self.visitors.lock().unwrap_or_else(|e| e.into_inner());
        let mut newest = i64::MIN;
        for e in events {
            newest = newest.max(e.ts_us);
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
        let now_us = chrono::Utc::now().timestamp_micros();
        visitors.retain(|_, v| now_us - v.last_seen_us <= KEEP_US);
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
