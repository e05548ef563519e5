//! Open visits per (site, visitor), sharded so concurrent requests rarely contend.

use footfall_core::session::OpenSession;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicI64, Ordering};

const SHARDS: usize = 64;

/// Shards below this many open visits keep whatever capacity they have.
const MIN_SHRINK_CAPACITY: usize = 1024;

type Key = (u32, u64);
/// foldhash (seeded per process) instead of std's SipHash: looked up on every hit.
type OpenVisits = HashMap<Key, OpenSession, foldhash::fast::RandomState>;

pub struct SessionTable {
    shards: Vec<Mutex<OpenVisits>>,
    /// Newest event time seen per site: visits are closed relative to it, so historical
    /// data sent in time order sessionizes exactly like live traffic.
    newest: Mutex<HashMap<u32, i64>>,
    len_hint: AtomicI64,
}

impl Default for SessionTable {
    fn default() -> Self {
        SessionTable {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(OpenVisits::default()))
                .collect(),
            newest: Mutex::new(HashMap::new()),
            len_hint: AtomicI64::new(0),
        }
    }
}

impl SessionTable {
    fn shard(&self, key: &Key) -> &Mutex<OpenVisits> {
        let idx = (key.1 as usize ^ key.0 as usize) % SHARDS;
        &self.shards[idx]
    }

    /// Runs `f` with the entry of (site, visitor) locked. One hash lookup (the entry),
    /// not a remove and a re-insert per hit.
    pub fn with<R>(
        &self,
        site_id: u32,
        visitor_id: u64,
        f: impl FnOnce(&mut Option<OpenSession>) -> R,
    ) -> R {
        let key = (site_id, visitor_id);
        let mut shard = self.shard(&key).lock();
        match shard.entry(key) {
            Entry::Occupied(mut open) => {
                let mut slot = Some(open.get().clone());
                let out = f(&mut slot);
                match slot {
                    Some(s) => *open.get_mut() = s,
                    None => {
                        open.remove();
                        self.len_hint.fetch_sub(1, Ordering::Relaxed);
                    }
                }
                out
            }
            Entry::Vacant(vacant) => {
                let mut slot = None;
                let out = f(&mut slot);
                if let Some(s) = slot {
                    vacant.insert(s);
                    self.len_hint.fetch_add(1, Ordering::Relaxed);
                }
                out
            }
        }
    }

    /// Whether (site, visitor) has a visit that an event at `ts_us` would continue.
    pub fn continues(&self, site_id: u32, visitor_id: u64, ts_us: i64, timeout_secs: u32) -> bool {
        let key = (site_id, visitor_id);
        self.shard(&key)
            .lock()
            .get(&key)
            .is_some_and(|s| s.continues_at(ts_us, timeout_secs))
    }

    /// The session id of the visit of (site, visitor) that an event at `ts_us` would
    /// continue.
    pub fn open_session(
        &self,
        site_id: u32,
        visitor_id: u64,
        ts_us: i64,
        timeout_secs: u32,
    ) -> Option<u64> {
        let key = (site_id, visitor_id);
        self.shard(&key)
            .lock()
            .get(&key)
            .filter(|s| s.continues_at(ts_us, timeout_secs))
            .map(|s| s.session_id)
    }

    pub fn note_time(&self, site_id: u32, ts_us: i64) {
        let mut newest = self.newest.lock();
        let entry = newest.entry(site_id).or_insert(ts_us);
        *entry = (*entry).max(ts_us);
    }

    /// Forgets visits that can no longer continue: their last event is older than the
    /// timeout relative to the site's newest event and to `now_us`.
    pub fn sweep(&self, now_us: i64, timeout_of: impl Fn(u32) -> u32) {
        let newest = self.newest.lock().clone();
        for shard in &self.shards {
            let mut map = shard.lock();
            let before = map.len();
            map.retain(|(site, _), s| {
                let reference = newest.get(site).copied().unwrap_or(now_us).min(now_us);
                // Keep a 5-minute margin for slightly late events.
                let keep_us = (i64::from(timeout_of(*site)) + 300) * 1_000_000;
                reference - s.last_us <= keep_us
            });
            self.len_hint
                .fetch_sub((before - map.len()) as i64, Ordering::Relaxed);
            // `retain` keeps the capacity a burst needed (a bulk load holds ~10 s of
            // visits between sweeps, a restart restores a million); give it back once
            // the open visits fill less than a quarter of it.
            let open = map.len();
            if map.capacity() > 4 * open.max(MIN_SHRINK_CAPACITY) {
                map.shrink_to(2 * open);
            }
        }
    }

    /// Number of open visits.
    pub fn len(&self) -> usize {
        self.len_hint.load(Ordering::Relaxed).max(0) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
