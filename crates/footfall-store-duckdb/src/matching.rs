//! Matching visits shared by the queries of one dashboard load.
//!
//! With an event filter (`page=/`), the aggregate and each breakdown of a dashboard first
//! find the visits with a matching hit: a scan of the range's events that was ~half of
//! each such query at 10M events (27 of 55 ms for `visit:browser` with `page=/`,
//! docs/ARCHITECTURE.md). A dashboard sends its queries together and they take turns, so
//! the first one makes the set, as a visit map (`visit_map.rs`) under a handle, and the
//! others read it. A set lives while queries keep using it (at most `IDLE` apart: one
//! dashboard load, not the next one, which finds its own) and while no committed write
//! could have changed it (the result cache's rule, `cache::WriteLog`).
//!
//! Without filters, the load's visit breakdowns share the visits open at the range's
//! start that have a hit in it (`OpenAtStart`), by the same rules.

use crate::cache::{Scope, WriteLog};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A set unused for this long is dropped: the queries of one dashboard load follow each
/// other closely (they take turns, ~0.1 s each at 10M events); a later load is a new
/// question and finds its visits again.
const IDLE: Duration = Duration::from_secs(1);

/// Sets kept at most (each ~1.5 MB at 10M events: two bits per session id of the span
/// and a visitor number per visit).
const MAX_SETS: usize = 4;

struct Entry {
    key: String,
    /// Its visit map in `visit_map`, withdrawn with the entry.
    handle: u64,
    generation: u64,
    scope: Scope,
    last_used: Instant,
}

impl Drop for Entry {
    fn drop(&mut self) {
        crate::visit_map::withdraw(self.handle);
    }
}

impl Entry {
    /// Used recently enough (`IDLE`) and unchanged by any write since it was made.
    fn readable(&self, writes: &WriteLog, now: Instant) -> bool {
        now.duration_since(self.last_used) <= IDLE
            && writes.unchanged_since(self.generation, self.scope.site, self.scope.end_us)
    }
}

/// The sets and the write record they are checked against, as `query::execute` takes
/// them (from `Inner`).
pub(crate) struct SharedSets<'a> {
    pub sets: &'a parking_lot::Mutex<MatchingSets>,
    pub writes: &'a parking_lot::Mutex<WriteLog>,
}

/// The visits open at a range's start (site, start, end) with a hit in it: what each
/// visit breakdown of an unfiltered load would otherwise find with three scans and two
/// joins (`query::open_at_start_ids`). Kept by the sets' rules.
struct OpenAtStart {
    range: (u32, i64, i64),
    ids: Arc<[u64]>,
    generation: u64,
    last_used: Instant,
}

/// Ranges whose open visits are kept at most.
const MAX_OPEN_AT_START: usize = 4;

/// The sets kept; used within a query turn.
pub(crate) struct MatchingSets {
    entries: Vec<Entry>,
    open_at_start: Vec<OpenAtStart>,
    /// Tells this store's sets apart from other stores' in `visit_map`'s registry.
    instance: u64,
}

impl Default for MatchingSets {
    fn default() -> Self {
        static INSTANCES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        MatchingSets {
            entries: Vec::new(),
            open_at_start: Vec::new(),
            instance: INSTANCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }
}

impl MatchingSets {
    /// The handle of the visit map (`visit_map.rs`) of `key`'s set: the same question
    /// uses the same handle (and so the same prepared statements) every time.
    pub(crate) fn handle(&self, key: &str) -> u64 {
        let mut h = DefaultHasher::new();
        (self.instance, key).hash(&mut h);
        h.finish()
    }

    /// Forgets the sets that expired or that a write has changed (their maps are
    /// withdrawn), then says whether `key`'s set is kept (its map can be read) or has
    /// to be made (then `made`).
    pub(crate) fn lookup(&mut self, key: &str, writes: &WriteLog, now: Instant) -> bool {
        self.entries.retain(|e| e.readable(writes, now));
        match self.entries.iter_mut().find(|e| e.key == key) {
            Some(e) => {
                e.last_used = now;
                true
            }
            None => false,
        }
    }

    /// Whether `key`'s set is kept and can be read now (`lookup` without its changes;
    /// should it lapse before `lookup`, the query makes it again).
    pub(crate) fn kept(&self, key: &str, writes: &WriteLog, now: Instant) -> bool {
        self.entries
            .iter()
            .any(|e| e.key == key && e.readable(writes, now))
    }

    /// The visits open at the start of `range` (site, start, end) with a hit in it, if
    /// a query of this load found them and no write has changed them since.
    pub(crate) fn open_at_start(
        &mut self,
        range: (u32, i64, i64),
        writes: &WriteLog,
        now: Instant,
    ) -> Option<Arc<[u64]>> {
        self.open_at_start.retain(|e| {
            now.duration_since(e.last_used) <= IDLE
                && writes.unchanged_since(e.generation, e.range.0, e.range.2)
        });
        let entry = self.open_at_start.iter_mut().find(|e| e.range == range)?;
        entry.last_used = now;
        Some(entry.ids.clone())
    }

    /// Records the visits open at the start of `range`, found as of `generation` (read
    /// before they were found), pushing out the least recently used beyond
    /// `MAX_OPEN_AT_START`.
    pub(crate) fn open_at_start_found(
        &mut self,
        range: (u32, i64, i64),
        ids: Arc<[u64]>,
        generation: u64,
        now: Instant,
    ) {
        self.open_at_start.retain(|e| e.range != range);
        if self.open_at_start.len() >= MAX_OPEN_AT_START
            && let Some(i) = self
                .open_at_start
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(i, _)| i)
        {
            self.open_at_start.remove(i);
        }
        self.open_at_start.push(OpenAtStart {
            range,
            ids,
            generation,
            last_used: now,
        });
    }

    /// Records that `key`'s set was made from the store as of `generation` (read before
    /// it was made), pushing out the least recently used beyond `MAX_SETS`. The caller
    /// publishes its map after: a replaced entry of the same handle withdraws it.
    pub(crate) fn made(&mut self, key: String, scope: Scope, generation: u64, now: Instant) {
        let handle = self.handle(&key);
        // Another key with the same handle (a hash collision) would now read this set.
        self.entries.retain(|e| e.handle != handle);
        if self.entries.len() >= MAX_SETS {
            let oldest = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(i, _)| i);
            if let Some(i) = oldest {
                self.entries.remove(i);
            }
        }
        self.entries.push(Entry {
            key,
            handle,
            generation,
            scope,
            last_used: now,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCOPE: Scope = Scope {
        site: 1,
        end_us: 1_000_000,
    };

    #[test]
    fn a_set_is_reused_within_one_load_and_made_again_after() {
        let mut sets = MatchingSets::default();
        let writes = WriteLog::default();
        let t0 = Instant::now();
        assert!(!sets.lookup("k", &writes, t0));
        sets.made("k".into(), SCOPE, writes.generation(), t0);
        // The next queries of the load, each within IDLE of the one before.
        let t1 = t0 + Duration::from_millis(600);
        assert!(sets.lookup("k", &writes, t1));
        let t2 = t1 + Duration::from_millis(900);
        assert!(sets.lookup("k", &writes, t2));
        // A later load: expired, made again.
        let t3 = t2 + Duration::from_millis(1500);
        assert!(!sets.kept("k", &writes, t3));
        assert!(!sets.lookup("k", &writes, t3));
    }

    /// A set's visit map goes with its entry; two stores' sets of one key have their own
    /// handles.
    #[test]
    fn the_visit_map_of_a_set_is_withdrawn_with_it() {
        let (mut sets, other) = (MatchingSets::default(), MatchingSets::default());
        let writes = WriteLog::default();
        let t0 = Instant::now();
        let handle = sets.handle("k");
        assert_ne!(handle, other.handle("k"));
        sets.made("k".into(), SCOPE, writes.generation(), t0);
        crate::visit_map::publish(
            handle,
            crate::visit_map::VisitMap::from_visits([(7, 0, true)]),
        );
        assert!(crate::visit_map::published(handle));
        let later = t0 + IDLE + Duration::from_millis(1);
        assert!(!sets.lookup("k", &writes, later));
        assert!(!crate::visit_map::published(handle));
    }

    #[test]
    fn a_write_before_the_range_end_drops_the_set() {
        let mut sets = MatchingSets::default();
        let mut writes = WriteLog::default();
        let t0 = Instant::now();
        sets.made("k".into(), SCOPE, writes.generation(), t0);
        // Live traffic after the range: still the store's answer.
        writes.appended([(1, SCOPE.end_us + 10)]);
        assert!(sets.lookup("k", &writes, t0));
        writes.appended([(1, SCOPE.end_us - 10)]);
        assert!(!sets.lookup("k", &writes, t0));
    }

    #[test]
    fn open_visits_are_kept_for_one_load_until_a_write_in_range() {
        let mut sets = MatchingSets::default();
        let mut writes = WriteLog::default();
        let range = (1, 0, SCOPE.end_us);
        let t0 = Instant::now();
        assert!(sets.open_at_start(range, &writes, t0).is_none());
        sets.open_at_start_found(range, Arc::from(vec![3u64, 9]), writes.generation(), t0);
        let t1 = t0 + Duration::from_millis(900);
        assert_eq!(
            sets.open_at_start(range, &writes, t1).as_deref(),
            Some(&[3u64, 9][..])
        );
        assert!(
            sets.open_at_start((2, 0, SCOPE.end_us), &writes, t1)
                .is_none()
        );
        writes.appended([(1, SCOPE.end_us + 10)]);
        assert!(
            sets.open_at_start(range, &writes, t1).is_some(),
            "after the range"
        );
        writes.appended([(1, SCOPE.end_us - 10)]);
        assert!(
            sets.open_at_start(range, &writes, t1).is_none(),
            "in the range"
        );
        sets.open_at_start_found(range, Arc::from(vec![]), writes.generation(), t1);
        let later = t1 + IDLE + Duration::from_millis(1);
        assert!(
            sets.open_at_start(range, &writes, later).is_none(),
            "a later load"
        );
    }

    #[test]
    fn at_most_max_sets_are_kept() {
        let mut sets = MatchingSets::default();
        let writes = WriteLog::default();
        let t0 = Instant::now();
        for i in 0..MAX_SETS {
            let t = t0 + Duration::from_millis(i as u64);
            sets.made(format!("k{i}"), SCOPE, 0, t);
        }
        let t = t0 + Duration::from_millis(10);
        let oldest = sets.handle("k0");
        crate::visit_map::publish(oldest, crate::visit_map::VisitMap::default());
        sets.made("new".into(), SCOPE, writes.generation(), t);
        assert!(
            !crate::visit_map::published(oldest),
            "withdrawn with its set"
        );
        assert!(sets.lookup("k1", &writes, t));
        assert!(!sets.lookup("k0", &writes, t));
    }
}
