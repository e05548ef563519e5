//! The Stats API result cache, and the record of committed writes that decides when a
//! cached result (or a shared set of matching visits, `matching.rs`) is still the store's
//! answer.
//!
//! A result is served again while no write since it was computed could have changed it.
//! A query over `[start, end)` depends only on events before `end` and on visits that
//! started before `end` (a visit belongs to the range of its first event; its duration,
//! exit page and bounce include later events). An append that only touches events and
//! visits at or after `end` of other ranges leaves the answer as it was — so live traffic
//! today keeps the "7d" and "30d" dashboards (which end before today) cached, while a
//! range that includes now is recomputed after every batch.

use footfall_core::query::QueryOutput;
use std::collections::{HashMap, VecDeque};

/// Committed writes to the event tables.
#[derive(Debug, Default)]
pub(crate) struct WriteLog {
    /// Bumped by every committed write.
    generation: u64,
    /// The last write that may have changed any site and range (erasure, retention,
    /// site removal): results computed before it are never served.
    last_rewrite: u64,
    /// Appends through this generation may be missing from `appends`.
    forgotten_through: u64,
    /// Recent appends: generation, site, and the earliest time the append touched (its
    /// oldest event, or the start of the oldest visit it extended).
    appends: VecDeque<(u64, u32, i64)>,
}

impl WriteLog {
    /// Appends remembered; at one store batch a second, over an hour.
    const KEEP: usize = 4096;

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Records a committed append touching, per site, nothing before the given time.
    pub(crate) fn appended(&mut self, touched: impl IntoIterator<Item = (u32, i64)>) {
        self.generation += 1;
        for (site, earliest_us) in touched {
            self.appends.push_back((self.generation, site, earliest_us));
        }
        while self.appends.len() > Self::KEEP {
            if let Some((g, _, _)) = self.appends.pop_front() {
                self.forgotten_through = g;
            }
        }
    }

    /// Records a committed write that may have changed anything.
    pub(crate) fn rewritten(&mut self) {
        self.generation += 1;
        self.last_rewrite = self.generation;
    }

    /// Whether a result for `site` over a range ending at `end_us`, computed at
    /// `generation`, is still what the store would answer.
    pub(crate) fn unchanged_since(&self, generation: u64, site: u32, end_us: i64) -> bool {
        if generation == self.generation {
            return true;
        }
        if generation < self.last_rewrite || generation < self.forgotten_through {
            return false;
        }
        self.appends
            .iter()
            .rev()
            .take_while(|(g, _, _)| *g > generation)
            .all(|&(_, s, earliest_us)| s != site || earliest_us >= end_us)
    }
}

/// What a cached result answers: the site and the end of its range (the key holds the
/// whole resolved query as well).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope {
    pub site: u32,
    pub end_us: i64,
}

/// Stats API results by query (its full resolved form and the site context), with the
/// generation they were computed at. Small and cleared when full: it serves the repeated
/// identical queries of open dashboards.
#[derive(Default)]
pub(crate) struct ResultCache {
    entries: HashMap<String, (u64, QueryOutput)>,
}

impl ResultCache {
    const MAX_ENTRIES: usize = 64;
    /// Larger results are not kept (a full breakdown can hold 10,000 rows).
    const MAX_ROWS: usize = 1_000;

    pub(crate) fn get(&self, key: &str, scope: Scope, writes: &WriteLog) -> Option<QueryOutput> {
        match self.entries.get(key) {
            Some((g, out)) if writes.unchanged_since(*g, scope.site, scope.end_us) => {
                Some(out.clone())
            }
            _ => None,
        }
    }

    /// Keeps `out`, computed from the store as of `generation` (read before the query
    /// ran, so a write committing meanwhile counts as after it).
    pub(crate) fn put(&mut self, key: String, generation: u64, out: &QueryOutput) {
        if out.results.len() > Self::MAX_ROWS {
            return;
        }
        if self.entries.len() >= Self::MAX_ENTRIES {
            self.entries.clear();
        }
        self.entries.insert(key, (generation, out.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const END: i64 = 1_000_000;

    #[test]
    fn appends_after_the_range_keep_results_and_others_do_not() {
        let mut log = WriteLog::default();
        log.appended([(1, 0)]);
        let computed = log.generation();
        // Live traffic after the range's end, on this site and on another.
        log.appended([(1, END), (2, 0)]);
        log.appended([(1, END + 5)]);
        assert!(log.unchanged_since(computed, 1, END));
        // An event (or a visit extended) before the end changes the answer.
        log.appended([(1, END - 1)]);
        assert!(!log.unchanged_since(computed, 1, END));
        // Site 2's own results were changed by its append.
        assert!(!log.unchanged_since(computed, 2, END));
    }

    #[test]
    fn rewrites_and_forgotten_appends_invalidate() {
        let mut log = WriteLog::default();
        let computed = log.generation();
        log.rewritten();
        assert!(!log.unchanged_since(computed, 1, END));

        let computed = log.generation();
        for _ in 0..=WriteLog::KEEP {
            log.appended([(1, END)]);
        }
        assert!(!log.unchanged_since(computed, 1, END));
        let recent = log.generation();
        log.appended([(1, END)]);
        assert!(log.unchanged_since(recent, 1, END));
    }

    #[test]
    fn an_empty_append_changes_nothing() {
        let mut log = WriteLog::default();
        let computed = log.generation();
        log.appended([]);
        assert!(log.unchanged_since(computed, 1, END));
    }
}
