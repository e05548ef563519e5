//! Matching visits shared by the queries of one dashboard load.
//!
//! With an event filter (`page=/`), the aggregate and each visit-attribute breakdown of a
//! dashboard first find the visits with a matching hit: a scan of the range's events that
//! was ~half of each such query at 10M events (27 of 55 ms for `visit:browser` with
//! `page=/`, docs/ARCHITECTURE.md). A dashboard sends its queries together and they take
//! turns, so the first one keeps the set in a table of an in-memory database and the
//! others read it. A set lives while queries keep using it (at most `IDLE` apart: one
//! dashboard load, not the next one, which computes its own) and while no committed write
//! could have changed it (the result cache's rule, `cache::WriteLog`).

use crate::cache::{Scope, WriteLog};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

/// The in-memory database the sets live in, attached to the store's DuckDB instance
/// (visible to every connection of it).
pub(crate) const SCRATCH_DB: &str = "footfall_scratch";

/// `ATTACH` for the scratch database; run once per DuckDB instance.
pub(crate) const ATTACH_SCRATCH: &str = "ATTACH IF NOT EXISTS ':memory:' AS footfall_scratch";

/// A set unused for this long is dropped: the queries of one dashboard load follow each
/// other closely (they take turns, ~0.1 s each at 10M events); a later load is a new
/// question and finds its visits again.
const IDLE: Duration = Duration::from_secs(1);

/// Sets kept at most (each a few MB at 10M events: 8 bytes and a flag per visit).
const MAX_SETS: usize = 4;

/// The table a set with this key is kept in: named after the key's hash, so the same
/// question uses the same name (and its prepared statements) every time.
pub(crate) fn table_name(key: &str) -> String {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    format!("{SCRATCH_DB}.m_{:016x}", h.finish())
}

struct Entry {
    key: String,
    table: String,
    /// Its visits' map in `visit_map`, withdrawn with the entry.
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

/// The sets kept; used within a query turn.
pub(crate) struct MatchingSets {
    entries: Vec<Entry>,
    /// Tells this store's sets apart from other stores' in `visit_map`'s registry.
    instance: u64,
}

impl Default for MatchingSets {
    fn default() -> Self {
        static INSTANCES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        MatchingSets {
            entries: Vec::new(),
            instance: INSTANCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }
}

impl MatchingSets {
    /// The handle of the visit map (`visit_map.rs`) of the set kept in `table`.
    pub(crate) fn handle(&self, table: &str) -> u64 {
        let mut h = DefaultHasher::new();
        (self.instance, table).hash(&mut h);
        h.finish()
    }

    /// Forgets the sets that expired or that a write has changed, returning their tables
    /// (the caller drops them), then says whether `key`'s set is kept (its table can be
    /// read) or has to be made (then `made`).
    pub(crate) fn lookup(
        &mut self,
        key: &str,
        writes: &WriteLog,
        now: Instant,
    ) -> (bool, Vec<String>) {
        let mut dropped = Vec::new();
        self.entries.retain(|e| {
            let keep = e.readable(writes, now);
            if !keep {
                dropped.push(e.table.clone());
            }
            keep
        });
        match self.entries.iter_mut().find(|e| e.key == key) {
            Some(e) => {
                e.last_used = now;
                (true, dropped)
            }
            None => (false, dropped),
        }
    }

    /// Whether `key`'s set is kept and can be read now (`lookup` without its changes;
    /// should it lapse before `lookup`, the query makes it again).
    pub(crate) fn kept(&self, key: &str, writes: &WriteLog, now: Instant) -> bool {
        self.entries
            .iter()
            .any(|e| e.key == key && e.readable(writes, now))
    }

    /// Records that `key`'s set was made from the store as of `generation` (read before
    /// it was made). Returns the table of a set pushed out to stay within `MAX_SETS`.
    pub(crate) fn made(
        &mut self,
        key: String,
        scope: Scope,
        generation: u64,
        now: Instant,
    ) -> Option<String> {
        let table = table_name(&key);
        let handle = self.handle(&table);
        // Another key whose hash names the same table would now read this set.
        self.entries.retain(|e| e.table != table);
        let mut pushed_out = None;
        if self.entries.len() >= MAX_SETS {
            let oldest = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(i, _)| i);
            if let Some(i) = oldest {
                pushed_out = Some(self.entries.remove(i).table.clone());
            }
        }
        self.entries.push(Entry {
            key,
            table,
            handle,
            generation,
            scope,
            last_used: now,
        });
        pushed_out
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
        assert!(!sets.lookup("k", &writes, t0).0);
        assert_eq!(sets.made("k".into(), SCOPE, writes.generation(), t0), None);
        // The next queries of the load, each within IDLE of the one before.
        let t1 = t0 + Duration::from_millis(600);
        assert_eq!(sets.lookup("k", &writes, t1), (true, vec![]));
        let t2 = t1 + Duration::from_millis(900);
        assert_eq!(sets.lookup("k", &writes, t2), (true, vec![]));
        // A later load: expired, dropped, made again.
        let t3 = t2 + Duration::from_millis(1500);
        assert_eq!(
            sets.lookup("k", &writes, t3),
            (false, vec![table_name("k")])
        );
    }

    /// A set's visit map goes with its entry; two stores' sets of one key have their own
    /// handles.
    #[test]
    fn the_visit_map_of_a_set_is_withdrawn_with_it() {
        let (mut sets, other) = (MatchingSets::default(), MatchingSets::default());
        let writes = WriteLog::default();
        let t0 = Instant::now();
        let handle = sets.handle(&table_name("k"));
        assert_ne!(handle, other.handle(&table_name("k")));
        sets.made("k".into(), SCOPE, writes.generation(), t0);
        crate::visit_map::publish(
            handle,
            crate::visit_map::VisitMap::from_visits(&[(7, 0, true)]),
        );
        assert!(crate::visit_map::published(handle));
        let later = t0 + IDLE + Duration::from_millis(1);
        assert!(!sets.lookup("k", &writes, later).0);
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
        assert!(sets.lookup("k", &writes, t0).0);
        writes.appended([(1, SCOPE.end_us - 10)]);
        assert_eq!(
            sets.lookup("k", &writes, t0),
            (false, vec![table_name("k")])
        );
    }

    #[test]
    fn at_most_max_sets_are_kept() {
        let mut sets = MatchingSets::default();
        let writes = WriteLog::default();
        let t0 = Instant::now();
        for i in 0..MAX_SETS {
            let t = t0 + Duration::from_millis(i as u64);
            assert_eq!(sets.made(format!("k{i}"), SCOPE, 0, t), None);
        }
        let t = t0 + Duration::from_millis(10);
        assert_eq!(
            sets.made("new".into(), SCOPE, writes.generation(), t),
            Some(table_name("k0"))
        );
        assert!(sets.lookup("k1", &writes, t).0);
        assert!(!sets.lookup("k0", &writes, t).0);
    }
}
