//! Embedded backend: one DuckDB file holds events and metadata (DESIGN §6).
//!
//! DuckDB allows one writing process; inside it, connections cloned from one database
//! share it with MVCC. We keep one connection for the event writer, one for metadata
//! and a small pool for queries, and run every call on tokio's blocking pool.

/// A time parameter (microseconds since the epoch) as the type of the event and visit
/// time columns (TIMESTAMP_MS, migration 8), truncated to the millisecond as stored
/// times are (`footfall_core::event::stored_time_us`; DuckDB's own cast rounds).
/// Compared with a TIMESTAMP instead, DuckDB casts the column on every row and no longer
/// skips row groups outside the range by their min/max (a grouped 30-day scan at 10M
/// events: 50 against 114 ms). A macro so `concat!` can build SQL constants with it.
macro_rules! ts_param {
    () => {
        "CAST(make_timestamp(?::BIGINT // 1000 * 1000) AS TIMESTAMP_MS)"
    };
}

mod aggregate;
mod cache;
mod clock;
pub mod database;
mod insight;
mod matching;
mod meta;
pub mod query;
mod revenue;
mod sink;
pub mod uniq;
mod visit_collect;
mod visit_map;

use cache::ResultCache;
use database::Database;
use duckdb::Connection;
use footfall_store::{StoreError, StoreResult};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;

/// Forward-only migrations, applied in order at open; the applied version is recorded.
const MIGRATIONS: &[(u32, &str)] = &[
    (1, include_str!("../migrations/0001_init.sql")),
    (2, include_str!("../migrations/0002_sessions.sql")),
    (3, include_str!("../migrations/0003_labels.sql")),
    (4, include_str!("../migrations/0004_slim_events.sql")),
    (5, include_str!("../migrations/0005_erased_ids.sql")),
    (6, include_str!("../migrations/0006_users.sql")),
    (7, include_str!("../migrations/0007_visitor_numbers.sql")),
    (8, include_str!("../migrations/0008_ms_times.sql")),
    (
        9,
        include_str!("../migrations/0009_event_visitor_numbers.sql"),
    ),
    (10, include_str!("../migrations/0010_event_kinds.sql")),
    (11, include_str!("../migrations/0011_not_set_values.sql")),
];

/// Data steps run after a migration's file, in the same transaction.
fn migration_data_step(conn: &Connection, version: u32) -> duckdb::Result<()> {
    match version {
        // The rollup is (re)built from the events once its last column exists.
        3 => sink::rebuild_sessions_v3(conn),
        4 => sink::migrate_to_v4(conn),
        7 => sink::number_stored_visitors(conn),
        9 => sink::number_stored_events(conn),
        10 => sink::classify_stored_events(conn),
        _ => Ok(()),
    }
}

/// DuckDB's memory limit while migrations run (their slices are sized for it).
const MIGRATION_MEMORY_LIMIT: &str = "256MB";

/// Size of DuckDB's own WAL at which it checkpoints while the store writer works through
/// a backlog (DuckDB's default is 16 MB). Each checkpoint compresses the row groups
/// appended since the last one and merges small ones (`VacuumTask`: ~19 % of the store
/// writer's time under a bulk backlog), so at ~1 store batch a second the default
/// checkpointed every few batches. 64 MB: a 3M-event load stored in 20-22 s instead of
/// 26-27 s with a lower peak (`scripts/load-memory`, alternating); 192 MB was no faster
/// and held more.
const BACKLOG_CHECKPOINT_THRESHOLD: &str = "64MB";

/// The threshold otherwise (DuckDB's default). Appended rows stay in DuckDB's memory,
/// uncompressed, until a checkpoint (`IN_MEMORY_TABLE` in `duckdb_memory()`): under live
/// traffic, with 64 MB, that grew to 59 MiB by 29 MB of WAL (and, extrapolated, about
/// double that by the checkpoint), for no gain (live batches are small). Also bounds the
/// WAL that a restart after `kill -9` replays.
const LIVE_CHECKPOINT_THRESHOLD: &str = "16MB";

/// DuckDB's default memory limit: its buffer pool and query state, allocated through
/// glibc malloc, are most of what DuckDB adds to the resident set. The dashboard queries
/// over 10M events took as long with 128 MB as with 256 MB (`scripts/dashboard-direct`,
/// docs/ARCHITECTURE.md "Memory").
pub const DEFAULT_MEMORY_LIMIT: &str = "128MB";

/// DuckDB's default memory limit while the store writer works through a backlog (a bulk
/// load, a burst): its appends and rollup merges spill to temporary storage beyond it.
/// At 64 MB a bulk load peaks ~45 MiB lower for a few per cent of the storing rate
/// (BENCHMARKS.md §5). Queries in the meantime run under it too; heavy ones spill.
pub const DEFAULT_WRITE_MEMORY_LIMIT: &str = "64MB";

/// A store batch this large means the writer is behind (live traffic gives batches of
/// about one second of hits): DuckDB's limit goes down to the write limit.
const BACKLOG_BATCH: usize = 10_000;

/// How long after the last backlog batch ended a query turn sets the query limit again
/// (never while one is being stored: a 50,000-event batch can take longer than this).
const BACKLOG_QUIET: std::time::Duration = std::time::Duration::from_secs(1);

/// A Stats API query or store batch that runs out of memory is run once more with this
/// many times the configured limit (`Inner::with_more_memory`).
const RETRY_MEMORY_FACTOR: f64 = 4.0;

/// A store batch that does not fit even the raised limit is stored with this many times
/// the configured limit, and at least `LAST_RESORT_MIN_MIB` (`Inner::with_most_memory`).
const LAST_RESORT_MEMORY_FACTOR: f64 = 16.0;
const LAST_RESORT_MIN_MIB: f64 = 1024.0;

/// A limit written as DuckDB takes it ("128MB", "1GB", "512MiB", ...) in MiB; None when
/// it cannot be read.
fn limit_mib(limit: &str) -> Option<f64> {
    let limit = limit.trim();
    let split = limit
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(limit.len());
    let (number, unit) = limit.split_at(split);
    let number: f64 = number.parse().ok()?;
    Some(match unit.trim().to_ascii_lowercase().as_str() {
        "kb" => number * 1000.0 / 1048576.0,
        "kib" => number / 1024.0,
        "mb" => number * 1e6 / 1048576.0,
        "mib" => number,
        "gb" => number * 1e9 / 1048576.0,
        "gib" => number * 1024.0,
        _ => return None,
    })
}

/// `RETRY_MEMORY_FACTOR` times a limit, in MiB; None when it cannot be read.
fn raised_limit(limit: &str) -> Option<String> {
    limit_mib(limit).map(|mib| format!("{}MiB", (mib * RETRY_MEMORY_FACTOR).ceil()))
}

/// `LAST_RESORT_MEMORY_FACTOR` times a limit and at least `LAST_RESORT_MIN_MIB`, in MiB
/// (the minimum when the limit cannot be read).
fn last_resort_limit(limit: &str) -> String {
    let mib = limit_mib(limit).map_or(0.0, |mib| mib * LAST_RESORT_MEMORY_FACTOR);
    format!("{}MiB", mib.max(LAST_RESORT_MIN_MIB).ceil())
}

/// DuckDB could not allocate within its memory limit (`Inner::with_more_memory`). A
/// statement says "Out of Memory Error: ..."; the appender's error carries only the
/// reason ("Failed to append: could not allocate block ...", "... failed to allocate
/// data ...", "... failed to pin block ...").
pub(crate) fn out_of_memory(e: &StoreError) -> bool {
    const REASONS: [&str; 4] = [
        "Out of Memory Error",
        "could not allocate",
        "failed to allocate",
        "failed to pin",
    ];
    matches!(e, StoreError::Backend(m) if REASONS.iter().any(|r| m.contains(r)))
}

fn set_checkpoint_threshold(conn: &Connection, threshold: &str) -> StoreResult<()> {
    conn.execute_batch(&format!("SET checkpoint_threshold = '{threshold}'"))
        .map_err(db_err)
}

fn set_memory_limit(conn: &Connection, limit: &str) -> StoreResult<()> {
    conn.execute_batch(&format!(
        "SET memory_limit = '{}'",
        limit.replace('\'', "''")
    ))
    .map_err(db_err)
}

/// Resource limits handed to DuckDB.
#[derive(Debug, Clone)]
pub struct DuckConfig {
    /// For queries, e.g. "128MB" (`DEFAULT_MEMORY_LIMIT`).
    pub memory_limit: String,
    /// While the store writer works through a backlog, e.g. "64MB"
    /// (`DEFAULT_WRITE_MEMORY_LIMIT`); the query limit when larger.
    pub write_memory_limit: String,
    pub threads: u32,
    /// Keep Stats API results until the next write (`ResultCache`).
    pub query_cache: bool,
}

impl Default for DuckConfig {
    fn default() -> Self {
        DuckConfig {
            memory_limit: DEFAULT_MEMORY_LIMIT.into(),
            write_memory_limit: DEFAULT_WRITE_MEMORY_LIMIT.into(),
            threads: 2,
            query_cache: true,
        }
    }
}

pub(crate) struct Inner {
    pub(crate) writer: Mutex<Connection>,
    pub(crate) meta: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// Sets DuckDB's instance-wide settings (memory limit, checkpoint threshold) and
    /// checkpoints after a backlog.
    base: Mutex<Connection>,
    /// None when the cache is off (`DuckConfig::query_cache`).
    results: Option<Mutex<ResultCache>>,
    /// Committed writes, which decide whether a cached result or a shared set of matching
    /// visits is still the store's answer.
    pub(crate) writes: Mutex<cache::WriteLog>,
    /// Matching visits shared by the queries of one dashboard load (`matching.rs`).
    pub(crate) matching: Mutex<matching::MatchingSets>,
    /// Goals by site id, read once: every Stats API query needs them, and a DuckDB
    /// lookup cost ~1 ms of CPU per query (planning included). Only this process writes
    /// the file; site removal drops its entry.
    pub(crate) goals: Mutex<HashMap<u32, Vec<footfall_core::query::Goal>>>,
    /// The configured DuckDB memory limit for queries (`release_cached_buffers` and
    /// `with_memory_limit` restore it: they run in a query turn, which sets it).
    memory_limit: String,
    /// The limit while the store writer works through a backlog (`lower_for_backlog`).
    write_memory_limit: String,
    /// Which of the two limits is set, and when the last backlog batch was stored.
    limit_state: Mutex<LimitState>,
    /// The configured DuckDB threads (store batches run on one, `sink::append_with_lsn`).
    pub(crate) threads: u32,
    /// Jobs for the store writer's thread (`DuckStore::on_writer_thread`), spawned by the
    /// first store batch.
    writer_jobs: Mutex<Option<std::sync::mpsc::Sender<WriterJob>>>,
    /// The thread that sets DuckDB's thread count at normal priority
    /// (`Inner::set_duck_threads`), spawned with the writer's; stopped when the store is
    /// dropped (`Drop for Inner`).
    duck_threads: Mutex<Option<DuckThreadsSetter>>,
    /// Stats API queries run one at a time, each with all of DuckDB's threads. A
    /// dashboard sends its queries at once; run side by side they shared DuckDB's one
    /// worker thread and its memory limit: the nine dashboard queries over 10M events took
    /// 2.2x as long as one after another, and some ran out of memory and were re-run with
    /// a raised limit (BENCHMARKS.md History). Whatever changes DuckDB's memory limit for
    /// a moment (`with_more_memory`, the writer's `release_idle_memory`) does so in a
    /// turn, so no other query runs under the changed limit. Taken through
    /// `Inner::query_turn`, which also sets the query limit.
    pub(crate) query_turns: Mutex<()>,
    /// The database the connections above were made from, and reader connections are
    /// made as needed. Last, so its handle closes after them.
    database: Database,
}

/// DuckDB runs with the backlog settings (`lowered`: the write limit and
/// `BACKLOG_CHECKPOINT_THRESHOLD`) while store batches are large, with the query limit and
/// `LIVE_CHECKPOINT_THRESHOLD` otherwise.
struct LimitState {
    lowered: bool,
    last_backlog_batch: std::time::Instant,
    /// A backlog batch is being stored now.
    backlog_batch_running: bool,
    /// A backlog was stored since the last checkpoint `query_turn` made.
    checkpoint_due: bool,
}

/// The embedded store; cheap to clone.
#[derive(Clone)]
pub struct DuckStore {
    pub(crate) inner: Arc<Inner>,
}

/// Bytes in memory and in temporary storage over `DuckStore::memory_by_tag`'s tags.
fn total_memory(tags: &[(String, u64, u64)]) -> (u64, u64) {
    tags.iter()
        .fold((0, 0), |(m, t), (_, tm, tt)| (m + tm, t + tt))
}

/// [`ts_param!`] as a constant.
pub(crate) const TS_PARAM: &str = ts_param!();

/// `events.kind` of a page view (migration 10): queries keep or drop events by kind, a
/// number DuckDB compares cheaply, rather than by name.
pub(crate) const KIND_PAGEVIEW: u8 = 0;
/// `events.kind` of an engagement beacon.
pub(crate) const KIND_ENGAGEMENT: u8 = 1;
/// `events.kind` of a custom event.
pub(crate) const KIND_CUSTOM: u8 = 2;

/// The `events.kind` of an event named `name`.
pub(crate) fn event_kind(name: &str) -> u8 {
    match name {
        footfall_core::event::PAGEVIEW => KIND_PAGEVIEW,
        footfall_core::event::ENGAGEMENT => KIND_ENGAGEMENT,
        _ => KIND_CUSTOM,
    }
}

/// [`ts_param!`] for a time written into the SQL text (computed, never user input).
pub(crate) fn ts_literal(us: i64) -> String {
    TS_PARAM.replacen('?', &us.to_string(), 1)
}

pub(crate) fn db_err(e: duckdb::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl DuckStore {
    /// Opens (creating if needed) the database file and runs pending migrations.
    pub fn open(path: &Path, cfg: &DuckConfig) -> StoreResult<Self> {
        let open = || {
            let threads = cfg.threads.to_string();
            let db = Database::open(
                Some(path),
                &[("max_memory", &cfg.memory_limit), ("threads", &threads)],
            )
            .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", path.display())))?;
            let conn = db.connect().map_err(db_err)?;
            Ok::<_, StoreError>((db, conn))
        };
        let (db, conn) = open()?;
        // Migrations copy and regroup whole tables in slices sized for 256 MB; they run
        // with that limit whatever the configured one (a lower limit is for serving).
        set_memory_limit(&conn, MIGRATION_MEMORY_LIMIT)?;
        if migrate(&conn)? {
            compact_file(db, conn, path)?;
            let (db, conn) = open()?;
            set_memory_limit(&conn, &cfg.memory_limit)?;
            return Self::from_connection(db, conn, cfg);
        }
        // Written out, the blocks migrations (or a replayed WAL) left in memory can be
        // evicted to fit a small configured limit.
        conn.execute_batch("CHECKPOINT").map_err(db_err)?;
        set_memory_limit(&conn, &cfg.memory_limit)?;
        Self::from_connection(db, conn, cfg)
    }

    /// An in-memory store, for tests.
    pub fn memory() -> StoreResult<Self> {
        let db = Database::open(None, &[]).map_err(StoreError::Backend)?;
        let conn = db.connect().map_err(db_err)?;
        Self::from_connection(db, conn, &DuckConfig::default())
    }

    /// A DuckDB setting as DuckDB reports it (`memory_limit`: "91.5 MiB"), for tests.
    #[cfg(test)]
    pub(crate) fn setting(&self, name: &str) -> String {
        self.inner
            .with_reader(|conn| {
                conn.query_row("SELECT current_setting(?)::VARCHAR", [name], |r| r.get(0))
                    .map_err(db_err)
            })
            .expect("DuckDB setting")
    }

    /// DuckDB's own account of its memory (`duckdb_memory()`): bytes in use by its
    /// buffer pool and tracked allocations, and bytes spilled to temporary storage.
    pub fn memory_usage(&self) -> StoreResult<(u64, u64)> {
        Ok(total_memory(&self.memory_by_tag()?))
    }

    /// `duckdb_memory()` by tag: (tag, bytes in memory, bytes in temporary storage).
    pub fn memory_by_tag(&self) -> StoreResult<Vec<(String, u64, u64)>> {
        self.inner.with_reader(|conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT tag, memory_usage_bytes::UBIGINT, temporary_storage_bytes::UBIGINT \
                     FROM duckdb_memory() ORDER BY tag",
                )
                .map_err(db_err)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
    }

    /// Logs `memory_usage` every `every` while the store is open (target
    /// `footfall::memory`, next to the process report of `FOOTFALL_MEMORY_REPORT`).
    pub fn spawn_memory_report(&self, every: std::time::Duration) {
        let store = Arc::downgrade(&self.inner);
        let spawned = std::thread::Builder::new()
            .name("footfall-duckdb-memory".into())
            .spawn(move || {
                while let Some(inner) = store.upgrade() {
                    match (DuckStore { inner }).memory_by_tag() {
                        Ok(tags) => {
                            let (used, spilled) = total_memory(&tags);
                            // Which part of DuckDB holds what: the tags with 1 MiB or more.
                            let held: Vec<String> = tags
                                .iter()
                                .filter(|(_, m, t)| m >> 20 > 0 || t >> 20 > 0)
                                .map(|(tag, m, t)| format!("{tag} {}/{}", m >> 20, t >> 20))
                                .collect();
                            tracing::info!(
                                target: "footfall::memory",
                                "duckdb: memory {} MiB, temporary storage {} MiB ({})",
                                used >> 20,
                                spilled >> 20,
                                held.join(", ")
                            );
                        }
                        Err(e) => tracing::warn!(error = %e, "could not read duckdb_memory()"),
                    }
                    std::thread::sleep(every);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start the DuckDB memory report");
        }
    }

    fn from_connection(
        database: Database,
        base: Connection,
        cfg: &DuckConfig,
    ) -> StoreResult<Self> {
        migrate(&base)?;
        set_checkpoint_threshold(&base, LIVE_CHECKPOINT_THRESHOLD)?;
        let writer = database.connect().map_err(db_err)?;
        // Per connection: the visits a write touched and a batch's numbers per visit, for
        // the rollup refresh and merge (sink.rs).
        writer
            .execute_batch(sink::TOUCHED_SESSIONS_DDL)
            .and_then(|()| writer.execute_batch(sink::BATCH_VISITS_DDL))
            .map_err(db_err)?;
        let meta = database.connect().map_err(db_err)?;
        Ok(DuckStore {
            inner: Arc::new(Inner {
                writer: Mutex::new(writer),
                meta: Mutex::new(meta),
                readers: Mutex::new(Vec::new()),
                base: Mutex::new(base),
                results: cfg.query_cache.then(|| Mutex::new(ResultCache::default())),
                writes: Mutex::new(cache::WriteLog::default()),
                matching: Mutex::new(matching::MatchingSets::default()),
                goals: Mutex::new(HashMap::new()),
                memory_limit: cfg.memory_limit.clone(),
                write_memory_limit: match (
                    limit_mib(&cfg.write_memory_limit),
                    limit_mib(&cfg.memory_limit),
                ) {
                    (Some(write), Some(query)) if write <= query => cfg.write_memory_limit.clone(),
                    _ => cfg.memory_limit.clone(),
                },
                limit_state: Mutex::new(LimitState {
                    lowered: false,
                    last_backlog_batch: std::time::Instant::now(),
                    backlog_batch_running: false,
                    checkpoint_due: false,
                }),
                threads: cfg.threads,
                writer_jobs: Mutex::new(None),
                duck_threads: Mutex::new(None),
                query_turns: Mutex::new(()),
                database,
            }),
        })
    }

    /// Runs `f` on the blocking pool with `self`.
    pub(crate) async fn blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> StoreResult<R> + Send + 'static,
    ) -> StoreResult<R> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
    }

    /// Runs `f` with `self` on the store writer's own thread, which runs at a lower
    /// priority (`footfall_store::thread`): store batches then take the CPU that
    /// acceptance and queries leave, as the applier before them does. On the blocking
    /// pool they competed with acceptance at full priority (a bulk load keeps both cores
    /// busy), and a pool thread cannot be re-niced back up for the queries it runs next.
    pub(crate) async fn on_writer_thread<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> StoreResult<R> + Send + 'static,
    ) -> StoreResult<R> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let inner = self.inner.clone();
        let job: WriterJob = Box::new(move || {
            let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&inner)))
                .unwrap_or_else(|_| Err(StoreError::Backend("a store batch panicked".into())));
            // Let go of the store before answering: the caller may drop its own handle at
            // once, and the last one must not be this thread's, released after the
            // caller's shutdown went on (DuckDB's closing checkpoint then raced the exit;
            // `dropping_the_store_checkpoints_duckdbs_wal` failed now and then).
            drop(inner);
            // The caller may have gone (shutdown): nothing to tell then.
            let _ = answer.send(done);
        });
        self.inner
            .writer_jobs()?
            .send(job)
            .map_err(|_| writer_gone())?;
        answered.await.map_err(|_| writer_gone())?
    }
}

/// A backlog batch being stored (`Inner::lower_for_backlog`; `None` for a small batch).
/// When it ends, stored or not, even by a panic the writer's thread catches, queries stay
/// under the write limit for `BACKLOG_QUIET` more and the first query turn after that
/// checkpoints; until then they stay under it however long the batch takes.
#[must_use]
pub(crate) struct BacklogBatch<'a>(Option<&'a Inner>);

impl Drop for BacklogBatch<'_> {
    fn drop(&mut self) {
        if let Some(inner) = self.0 {
            let mut state = inner.limit_state.lock();
            state.backlog_batch_running = false;
            state.last_backlog_batch = std::time::Instant::now();
            state.checkpoint_due = true;
        }
    }
}

/// Work for the store writer's thread.
type WriterJob = Box<dyn FnOnce() + Send>;

/// A DuckDB thread count to set, and where to say it is set.
type ThreadsRequest = (u32, std::sync::mpsc::SyncSender<StoreResult<()>>);

/// The thread of `Inner::spawn_duck_threads_setter` and its queue.
struct DuckThreadsSetter {
    requests: std::sync::mpsc::Sender<ThreadsRequest>,
    thread: std::thread::JoinHandle<()>,
}

impl Drop for Inner {
    /// Stops the thread-count setter before the fields (the database last) are dropped:
    /// its connection would keep DuckDB's instance open past them, and DuckDB writes its
    /// checkpoint on shutdown only when the instance closes (a clean stop left the whole
    /// WAL to replay at the next start: 2.7 s after a 4.2M-event burst).
    fn drop(&mut self) {
        if let Some(setter) = self.duck_threads.get_mut().take() {
            drop(setter.requests);
            if setter.thread.join().is_err() {
                tracing::warn!("DuckDB's thread-count setter had panicked");
            }
        }
    }
}

fn writer_gone() -> StoreError {
    StoreError::Backend("the store writer's thread has stopped".into())
}

impl Inner {
    /// The store writer's job queue, spawning its thread on first use. The thread ends
    /// when the store is dropped (its queue then closes).
    fn writer_jobs(&self) -> StoreResult<std::sync::mpsc::Sender<WriterJob>> {
        let mut jobs = self.writer_jobs.lock();
        if let Some(sender) = jobs.as_ref() {
            return Ok(sender.clone());
        }
        // Spawned from here (a request thread, normal priority), not from the writer.
        *self.duck_threads.lock() = Some(self.spawn_duck_threads_setter()?);
        let (sender, receiver) = std::sync::mpsc::channel::<WriterJob>();
        std::thread::Builder::new()
            .name("footfall-store".into())
            .spawn(move || {
                if let Err(e) = footfall_store::thread::lower_priority() {
                    tracing::debug!(error = %e, "could not lower the store writer's priority");
                }
                while let Ok(job) = receiver.recv() {
                    job();
                }
            })
            .map_err(|e| StoreError::Backend(format!("could not start the store writer: {e}")))?;
        *jobs = Some(sender.clone());
        Ok(sender)
    }

    /// The thread that raises DuckDB's thread count back after a store batch
    /// (`sink::OneDuckThread`). DuckDB launches its worker threads on the thread that
    /// runs `SET threads` (`TaskScheduler::RelaunchThreads`, at the statement's end), and
    /// a thread inherits its creator's priority: set by the store writer, which runs
    /// niced, the worker that serves every Stats API query ran niced too, and lost the
    /// CPU to any request handling while a query ran. This thread keeps its creator's
    /// normal priority and its own connection.
    fn spawn_duck_threads_setter(&self) -> StoreResult<DuckThreadsSetter> {
        let conn = self.database.connect().map_err(db_err)?;
        let (requests, receiver) = std::sync::mpsc::channel::<ThreadsRequest>();
        let thread = std::thread::Builder::new()
            .name("footfall-duckdb".into())
            .spawn(move || {
                while let Ok((threads, done)) = receiver.recv() {
                    let set = conn
                        .execute_batch(&format!("SET threads = {threads}"))
                        .map_err(db_err);
                    // The writer waits for the answer unless it has gone (shutdown).
                    let _ = done.send(set);
                }
            })
            .map_err(|e| {
                StoreError::Backend(format!("could not start DuckDB's thread setter: {e}"))
            })?;
        Ok(DuckThreadsSetter { requests, thread })
    }

    /// Sets DuckDB's thread count from the normal-priority setter thread (see
    /// `spawn_duck_threads_setter`), or on `conn` when there is none (a store never
    /// written through the writer's thread) or it has stopped.
    pub(crate) fn set_duck_threads(&self, conn: &Connection, threads: u32) -> StoreResult<()> {
        let setter = self
            .duck_threads
            .lock()
            .as_ref()
            .map(|setter| setter.requests.clone());
        if let Some(setter) = setter {
            let (done, finished) = std::sync::mpsc::sync_channel(1);
            if setter.send((threads, done)).is_ok()
                && let Ok(set) = finished.recv()
            {
                return set;
            }
        }
        conn.execute_batch(&format!("SET threads = {threads}"))
            .map_err(db_err)
    }
}

/// Prepared Stats API statements kept per query connection.
const QUERY_STATEMENT_CACHE: usize = 64;

/// The limit `release_cached_buffers` lowers DuckDB's to for a moment.
const RELEASE_MEMORY_LIMIT: &str = "16MB";

impl Inner {
    /// Waits for the query turn ("Queries take turns"). Sets DuckDB's query memory limit
    /// unless the store writer is working through a backlog.
    pub(crate) fn query_turn(&self) -> parking_lot::MutexGuard<'_, ()> {
        let turn = self.query_turns.lock();
        let quiet = {
            let state = self.limit_state.lock();
            !state.backlog_batch_running && state.last_backlog_batch.elapsed() >= BACKLOG_QUIET
        };
        if quiet {
            // The checkpoint first, under the write limit: it reads the backlog's last
            // row groups back from DuckDB's temporary file, and with the query limit set
            // it held ~120 MiB (the peak of a 10M-event load). If it could not be made
            // (out of memory, or a live batch's transaction), once more after raising.
            self.checkpoint_after_backlog();
            self.raise_to_query_limit();
            self.checkpoint_after_backlog();
        }
        turn
    }

    /// The backlog is over: its last row groups are still DuckDB's uncheckpointed
    /// (uncompressed, partly spilled) ones, which every query of the range would read
    /// back. Folded into the file now; DuckDB refuses while another transaction runs (a
    /// live batch), and the next query turn (or quiet writer) tries again. In a query turn.
    pub(crate) fn checkpoint_after_backlog(&self) {
        if !self.limit_state.lock().checkpoint_due {
            return;
        }
        match self.base.lock().execute_batch("CHECKPOINT") {
            Ok(()) => self.limit_state.lock().checkpoint_due = false,
            Err(e) => tracing::debug!(error = %e, "no checkpoint after the backlog yet"),
        }
    }

    /// Sets the query limit if the write limit is set; true if it was. In a query turn.
    fn raise_to_query_limit(&self) -> bool {
        let mut state = self.limit_state.lock();
        if !state.lowered {
            return false;
        }
        let base = self.base.lock();
        match set_memory_limit(&base, &self.memory_limit)
            .and_then(|()| set_checkpoint_threshold(&base, LIVE_CHECKPOINT_THRESHOLD))
        {
            Ok(()) => state.lowered = false,
            Err(e) => tracing::warn!(error = %e, "could not set DuckDB's query memory limit"),
        }
        true
    }

    /// Before a store batch of `events` events: a backlog batch (`BACKLOG_BATCH`) sets
    /// DuckDB's write limit and backlog checkpoint threshold unless a query runs (the next
    /// batch tries again). Lowering evicts cached blocks; DuckDB spills what it cannot
    /// drop. With the write limit off (equal to the query limit) only the threshold
    /// changes. Held while the batch is stored (`BacklogBatch`).
    pub(crate) fn lower_for_backlog(&self, events: usize) -> BacklogBatch<'_> {
        if events < BACKLOG_BATCH {
            return BacklogBatch(None);
        }
        self.limit_state.lock().backlog_batch_running = true;
        let batch = BacklogBatch(Some(self));
        let Some(_turn) = self.query_turns.try_lock() else {
            return batch;
        };
        let mut state = self.limit_state.lock();
        if state.lowered {
            return batch;
        }
        let base = self.base.lock();
        match set_memory_limit(&base, &self.write_memory_limit)
            .and_then(|()| set_checkpoint_threshold(&base, BACKLOG_CHECKPOINT_THRESHOLD))
        {
            Ok(()) => state.lowered = true,
            Err(e) => tracing::debug!(error = %e, "could not set DuckDB's write memory limit"),
        }
        batch
    }

    /// Whether DuckDB runs under the write limit now.
    #[cfg(test)]
    pub(crate) fn write_limit_set(&self) -> bool {
        self.limit_state.lock().lowered
    }

    /// Records a committed append of `events` for the result cache and the shared
    /// matching sets: per site, the earliest event time or visit start it touched.
    pub(crate) fn note_append(&self, events: &[footfall_core::Event]) {
        let mut touched: Vec<(u32, i64)> = Vec::new();
        for e in events {
            let earliest = e.ts_us.min(e.session_start_us);
            match touched.iter_mut().find(|(site, _)| *site == e.site_id) {
                Some((_, t)) => *t = (*t).min(earliest),
                None => touched.push((e.site_id, earliest)),
            }
        }
        self.writes.lock().appended(touched);
    }

    /// The shared matching sets of Stats API queries, with the write record.
    pub(crate) fn shared_sets(&self) -> matching::SharedSets<'_> {
        matching::SharedSets {
            sets: &self.matching,
            writes: &self.writes,
        }
    }

    /// Records a committed write that may have changed any site and range.
    pub(crate) fn note_rewrite(&self) {
        self.writes.lock().rewritten();
    }

    /// Empties DuckDB's buffer pool of cached blocks: lowering the memory limit makes
    /// DuckDB evict unpinned blocks, and the configured limit is set again at once.
    /// For start-up, whose whole-table scans (client ids, open visits) fill the pool
    /// with blocks no query needs (~100 MB of the idle resident set otherwise).
    /// Best effort: a failure only leaves the blocks cached.
    pub(crate) fn release_cached_buffers(&self, conn: &Connection) {
        let state = self.limit_state.lock();
        let limit = if state.lowered {
            &self.write_memory_limit
        } else {
            &self.memory_limit
        };
        let lowered = set_memory_limit(conn, RELEASE_MEMORY_LIMIT);
        if let Err(e) = lowered.and_then(|()| set_memory_limit(conn, limit)) {
            tracing::debug!(error = %e, "could not release DuckDB's cached buffers");
            // Whatever happened, serve with the configured limit.
            if let Err(e) = set_memory_limit(conn, limit) {
                tracing::warn!(error = %e, "could not restore DuckDB's memory limit");
            }
        }
    }

    /// Runs `f`, and once more with a raised memory limit if it runs out of DuckDB
    /// memory (`with_more_memory`): how Stats API queries and the native lists run.
    pub(crate) fn retrying_out_of_memory<R>(
        &self,
        conn: &Connection,
        what: &str,
        f: impl Fn() -> StoreResult<R>,
    ) -> StoreResult<R> {
        match f() {
            Err(e) if out_of_memory(&e) => {
                if let Some(done) = self.again_with_query_limit(what, &f) {
                    return done;
                }
                self.with_more_memory(conn, what, f)
            }
            other => other,
        }
    }

    /// After `f` (`what`) ran out of DuckDB memory: if that was the write limit (during a
    /// backlog), sets the query limit and runs `f` again. None when the write limit was
    /// not in force or `f` ran out of the query limit too: the caller raises further.
    /// In a query turn.
    pub(crate) fn again_with_query_limit<R>(
        &self,
        what: &str,
        f: impl Fn() -> StoreResult<R>,
    ) -> Option<StoreResult<R>> {
        if self.write_memory_limit == self.memory_limit || !self.raise_to_query_limit() {
            return None;
        }
        tracing::debug!(
            "{what} ran out of DuckDB's write memory limit; running it again with the query limit"
        );
        match f() {
            Err(e) if out_of_memory(&e) => None,
            other => Some(other),
        }
    }

    /// Runs `f` once more with DuckDB's memory limit raised to `RETRY_MEMORY_FACTOR` times
    /// the configured one, for work (`what`) that ran out of memory: a rare, heavy Stats
    /// API query (a 30-day `event:page` breakdown with bounce rate at 10M events needs
    /// ~190 MB), or a store batch under a limit set low for a small machine (100,000
    /// events need ~40-50 MB), is then done instead of failing, while the resident set
    /// stays bounded by the configured limit the rest of the time.
    pub(crate) fn with_more_memory<R>(
        &self,
        conn: &Connection,
        what: &str,
        f: impl FnOnce() -> StoreResult<R>,
    ) -> StoreResult<R> {
        let Some(raised) = raised_limit(&self.memory_limit) else {
            return Err(StoreError::Backend(format!(
                "out of memory at the configured limit {}",
                self.memory_limit
            )));
        };
        tracing::warn!(
            limit = %self.memory_limit,
            raised = %raised,
            "{what} ran out of DuckDB memory; running it again with a raised limit (duckdb_memory_limit)"
        );
        self.with_memory_limit(conn, &raised, f)
    }

    /// Runs `f` with `last_resort_limit`, for a store batch that did not fit even the
    /// raised limit: a limit set far below what a batch needs must not stop storing
    /// (the log would grow behind the batch for ever).
    pub(crate) fn with_most_memory<R>(
        &self,
        conn: &Connection,
        what: &str,
        f: impl FnOnce() -> StoreResult<R>,
    ) -> StoreResult<R> {
        let most = last_resort_limit(&self.memory_limit);
        tracing::warn!(
            limit = %self.memory_limit,
            raised = %most,
            "{what} ran out of DuckDB memory with the raised limit too; running it again with more (raise duckdb_memory_limit)"
        );
        self.with_memory_limit(conn, &most, f)
    }

    /// Runs `f` with DuckDB's memory limit at `limit`, then sets the query limit again
    /// whatever happened. The limit is DuckDB-wide: called within a query turn
    /// (`query_turn`), which set the query limit.
    fn with_memory_limit<R>(
        &self,
        conn: &Connection,
        limit: &str,
        f: impl FnOnce() -> StoreResult<R>,
    ) -> StoreResult<R> {
        set_memory_limit(conn, limit)?;
        let out = f();
        if let Err(e) = set_memory_limit(conn, &self.memory_limit) {
            tracing::warn!(error = %e, "could not restore DuckDB's memory limit");
        }
        out
    }

    /// Borrows a query connection from the pool (cloning a new one when empty).
    pub(crate) fn with_reader<R>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<R>,
    ) -> StoreResult<R> {
        let conn = match self.readers.lock().pop() {
            Some(c) => c,
            None => {
                let conn = self.database.connect().map_err(db_err)?;
                // Room for a dashboard's statements with a few filter sets (see query.rs).
                conn.set_prepared_statement_cache_capacity(QUERY_STATEMENT_CACHE);
                conn
            }
        };
        let out = f(&conn);
        self.readers.lock().push(conn);
        out
    }
}

/// Applies pending migrations. True when one rewrote the event tables of a store that
/// had events: the freed blocks stay in the file (DuckDB does not shrink it), so the
/// caller compacts it.
fn migrate(conn: &Connection) -> StoreResult<bool> {
    migrate_up_to(conn, u32::MAX)
}

fn migrate_up_to(conn: &Connection, last: u32) -> StoreResult<bool> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (version UINTEGER PRIMARY KEY, applied_at TIMESTAMP NOT NULL)",
    )
    .map_err(db_err)?;
    let current: u32 = conn
        .query_row(
            "SELECT coalesce(max(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )
        .map_err(db_err)?;
    let had_events = current >= 1
        && conn
            .query_row("SELECT count(*) > 0 FROM events", [], |r| {
                r.get::<_, bool>(0)
            })
            .map_err(db_err)?;
    for (version, sql) in MIGRATIONS
        .iter()
        .filter(|(v, _)| *v > current && *v <= last)
    {
        let started = std::time::Instant::now();
        let apply = || -> duckdb::Result<()> {
            conn.execute_batch(&format!("BEGIN; {sql};"))?;
            migration_data_step(conn, *version)?;
            conn.execute_batch(&format!(
                "INSERT INTO schema_version VALUES ({version}, now()::TIMESTAMP); COMMIT;"
            ))
        };
        if let Err(e) = apply() {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(StoreError::Backend(format!(
                "migration {version} failed: {e}"
            )));
        }
        tracing::info!(
            version,
            ms = started.elapsed().as_millis() as u64,
            "schema migration applied"
        );
    }
    Ok(had_events && current < LAST_REWRITE)
}

/// The last migration that rewrites the event tables' data (9: a column filled in),
/// leaving the old blocks free in the file.
const LAST_REWRITE: u32 = 10;

/// Rewrites the database file without its free blocks: copies every table into a new
/// file next to it, then renames that over the old one (an interrupted copy leaves the
/// old, already migrated file in place).
fn compact_file(db: Database, conn: Connection, path: &Path) -> StoreResult<()> {
    let started = std::time::Instant::now();
    let sibling = |suffix: &str| {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        std::path::PathBuf::from(p)
    };
    let tmp = sibling(".compact");
    let _ = std::fs::remove_file(&tmp);
    let name: String = conn
        .query_row("SELECT current_database()", [], |r| r.get(0))
        .map_err(db_err)?;
    let tmp_sql = tmp.to_string_lossy().replace('\'', "''");
    conn.execute_batch(&format!(
        "ATTACH '{tmp_sql}' AS ff_compact; COPY FROM DATABASE \"{name}\" TO ff_compact; \
         DETACH ff_compact; CHECKPOINT;"
    ))
    .map_err(|e| StoreError::Backend(format!("cannot compact {}: {e}", path.display())))?;
    // The file closes with the last connection and the database handle.
    drop(conn);
    drop(db);
    // A clean close leaves no DuckDB WAL; one left over would be replayed onto the new file.
    let wal = sibling(".wal");
    if wal.exists() {
        let _ = std::fs::remove_file(&tmp);
        return Err(StoreError::Backend(format!(
            "cannot compact {}: {} remains after closing",
            path.display(),
            wal.display()
        )));
    }
    let before = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    std::fs::rename(&tmp, path)
        .map_err(|e| StoreError::Backend(format!("cannot replace {}: {e}", path.display())))?;
    let after = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    tracing::info!(
        before_bytes = before,
        after_bytes = after,
        ms = started.elapsed().as_millis() as u64,
        "database file compacted after migration"
    );
    Ok(())
}

impl DuckStore {
    /// The SQL of a Stats API query with its parameters inlined (see
    /// [`query::statement_text`]).
    pub fn query_text(
        &self,
        site_id: u32,
        site: &footfall_core::query::SiteContext,
        q: &footfall_core::query::Query,
    ) -> String {
        query::statement_text(site_id, site, q)
    }

    /// Times the main statement of a Stats API query run directly on this store, then
    /// writes DuckDB's profile of one more run to `profile` (see
    /// [`query::profile_statement`]); the first run is a warm-up and not returned.
    pub fn profile_query(
        &self,
        site_id: u32,
        site: &footfall_core::query::SiteContext,
        q: &footfall_core::query::Query,
        runs: usize,
        profile: &std::path::Path,
    ) -> StoreResult<Vec<std::time::Duration>> {
        self.inner.with_reader(|conn| {
            let mut times = query::profile_statement(conn, site_id, site, q, runs + 1, profile)
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            times.remove(0);
            Ok(times)
        })
    }

    /// Times `queries` as one dashboard load, in order, through the server's own query
    /// path (`query::execute`: the same statements, and a load's matching visits shared
    /// among its queries as the server shares them) without HTTP, JSON, the result cache
    /// or the queries' turns: `rounds` loads after one warm-up load, each with fresh
    /// shared sets, as the server's next load would find them, and each after `pause`
    /// (idle before a load, as a dashboard's load comes after a user's pause: on the
    /// benchmark machine a load after 1.5 s idle took ~20 % longer than back to back).
    /// Per query, its time in each round.
    pub fn time_load(
        &self,
        site_id: u32,
        site: &footfall_core::query::SiteContext,
        queries: &[footfall_core::query::Query],
        rounds: usize,
        pause: std::time::Duration,
    ) -> StoreResult<Vec<Vec<std::time::Duration>>> {
        self.inner.with_reader(|conn| {
            let mut times = vec![Vec::with_capacity(rounds); queries.len()];
            for round in 0..=rounds {
                std::thread::sleep(pause);
                let sets = Mutex::new(matching::MatchingSets::default());
                let shared = matching::SharedSets {
                    sets: &sets,
                    writes: &self.inner.writes,
                };
                for (q, out) in queries.iter().zip(times.iter_mut()) {
                    let started = std::time::Instant::now();
                    query::execute(conn, site_id, site, q, Some(&shared))
                        .map_err(|e| StoreError::Backend(e.to_string()))?;
                    if round > 0 {
                        out.push(started.elapsed());
                    }
                }
            }
            Ok(times)
        })
    }
}

#[async_trait::async_trait]
impl footfall_store::EventQuery for DuckStore {
    async fn run(
        &self,
        site_id: u32,
        site: footfall_core::query::SiteContext,
        query: footfall_core::query::Query,
    ) -> StoreResult<footfall_core::query::QueryOutput> {
        self.blocking(move |inner| {
            let scope = cache::Scope {
                site: site_id,
                end_us: query.range.end_utc.timestamp_micros(),
            };
            let key = format!("{site_id}\u{1f}{site:?}\u{1f}{query:?}");
            // A cached result, or the cache's generation to store the result under: read
            // before the query runs, so a write committing meanwhile counts as after it.
            let lookup = || match &inner.results {
                Some(cache) => {
                    let cache = cache.lock();
                    let writes = inner.writes.lock();
                    match cache.get(&key, scope, &writes) {
                        Some(out) => ControlFlow::Break(out),
                        None => ControlFlow::Continue(Some(writes.generation())),
                    }
                }
                None => ControlFlow::Continue(None),
            };
            if let ControlFlow::Break(out) = lookup() {
                return Ok(out);
            }
            let _turn = inner.query_turn();
            // The same query may have been answered while this one waited for its turn.
            let generation = match lookup() {
                ControlFlow::Break(out) => return Ok(out),
                ControlFlow::Continue(generation) => generation,
            };
            let out = inner.with_reader(|conn| {
                let run = || {
                    query::execute(conn, site_id, &site, &query, Some(&inner.shared_sets()))
                        .map_err(|e| match e {
                            query::ExecError::Invalid(m) => StoreError::Query(m),
                            other => StoreError::Backend(other.to_string()),
                        })
                };
                inner.retrying_out_of_memory(conn, "a query", run)
            })?;
            if let (Some(cache), Some(generation)) = (&inner.results, generation) {
                cache.lock().put(key, generation, &out);
            }
            Ok(out)
        })
        .await
    }

    async fn sessions(
        &self,
        site_id: u32,
        filter: footfall_store::ListFilter,
    ) -> StoreResult<(Vec<footfall_store::SessionSummary>, u64)> {
        self.listing(move |conn| insight::sessions(conn, site_id, &filter))
            .await
    }

    async fn session(
        &self,
        site_id: u32,
        session_id: u64,
    ) -> StoreResult<Option<footfall_store::SessionDetail>> {
        self.listing(move |conn| insight::session(conn, site_id, session_id))
            .await
    }

    async fn visitors(
        &self,
        site_id: u32,
        filter: footfall_store::ListFilter,
    ) -> StoreResult<(Vec<footfall_store::VisitorSummary>, u64)> {
        self.listing(move |conn| insight::visitors(conn, site_id, &filter))
            .await
    }

    async fn export_count(&self, site_id: u32, start_us: i64, end_us: i64) -> StoreResult<u64> {
        self.listing(move |conn| insight::export_count(conn, site_id, start_us, end_us))
            .await
    }

    async fn first_event_us(&self, site_id: u32) -> StoreResult<Option<i64>> {
        self.listing(move |conn| insight::first_event_us(conn, site_id))
            .await
    }

    /// Not in a query turn: an export of a large store runs for seconds or minutes, and
    /// dashboard queries need not wait for it (they share DuckDB's threads meanwhile).
    async fn export(
        &self,
        site_id: u32,
        start_us: i64,
        end_us: i64,
        mut each: footfall_store::EachExportChunk,
    ) -> StoreResult<()> {
        self.blocking(move |inner| {
            inner.with_reader(|conn| insight::export(conn, site_id, start_us, end_us, &mut each))
        })
        .await
    }
}

impl DuckStore {
    /// Runs a native list's SQL in a Stats API query turn ("Queries take turns"), once
    /// more with a raised memory limit if it runs out (as a Stats API query).
    async fn listing<R: Send + 'static>(
        &self,
        f: impl Fn(&Connection) -> StoreResult<R> + Send + 'static,
    ) -> StoreResult<R> {
        self.blocking(move |inner| {
            let _turn = inner.query_turn();
            inner.with_reader(|conn| {
                inner.retrying_out_of_memory(conn, "a session or visitor list", || f(conn))
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raised_limits_are_four_times_the_configured_one() {
        assert_eq!(raised_limit("128MB").as_deref(), Some("489MiB"));
        assert_eq!(raised_limit("128MiB").as_deref(), Some("512MiB"));
        assert_eq!(raised_limit(" 1GB").as_deref(), Some("3815MiB"));
        assert_eq!(raised_limit("0.5GiB").as_deref(), Some("2048MiB"));
        assert_eq!(raised_limit("512KiB").as_deref(), Some("2MiB"));
        assert_eq!(raised_limit("lots"), None);
        assert_eq!(raised_limit("12 parsecs"), None);
        assert_eq!(last_resort_limit("8MB"), "1024MiB");
        assert_eq!(last_resort_limit("128MB"), "1954MiB");
        assert_eq!(last_resort_limit("lots"), "1024MiB");
    }

    /// The planner settings every database gets (`database::PLANNER_SETTINGS`) are in
    /// force on a store file and in memory.
    #[test]
    fn planner_settings_are_in_force() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = DuckStore::open(&dir.path().join("footfall.duckdb"), &DuckConfig::default())
            .expect("open");
        for store in [file, DuckStore::memory().expect("memory store")] {
            for (name, value) in database::PLANNER_SETTINGS {
                let set = store.setting(name);
                assert!(set.contains(value), "{name} = {set}");
            }
        }
    }

    /// The configured limit is in force after opening and after the start-up release of
    /// cached blocks, which empties the buffer pool.
    #[test]
    fn memory_limit_is_configured_and_survives_releasing_cached_buffers() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cfg = DuckConfig {
            memory_limit: "96MB".into(),
            ..DuckConfig::default()
        };
        let store = DuckStore::open(&dir.path().join("footfall.duckdb"), &cfg).expect("open");
        let configured = store.setting("memory_limit");
        assert!(configured.starts_with("91.5 MiB"), "{configured}");
        store
            .inner
            .with_reader(|conn| {
                conn.execute_batch(
                    "CREATE TABLE filler AS SELECT range AS i, md5(range::VARCHAR) AS s \
                     FROM range(300000); CHECKPOINT; SELECT count(DISTINCT s) FROM filler",
                )
                .map_err(db_err)
            })
            .expect("fill");
        store
            .inner
            .with_reader(|conn| {
                store.inner.release_cached_buffers(conn);
                Ok(())
            })
            .expect("release");
        let (after, _) = store.memory_usage().expect("usage");
        assert!(after <= 16 << 20, "{after}");
        assert_eq!(store.setting("memory_limit"), configured);
    }

    fn store_with_limits(dir: &Path, query: &str, write: &str) -> DuckStore {
        let cfg = DuckConfig {
            memory_limit: query.into(),
            write_memory_limit: write.into(),
            ..DuckConfig::default()
        };
        DuckStore::open(&dir.join("footfall.duckdb"), &cfg).expect("open")
    }

    /// Backlog batches (`BACKLOG_BATCH` events or more) set the write limit and the backlog
    /// checkpoint threshold, and queries run under them until the backlog has been quiet
    /// for `BACKLOG_QUIET`; small batches (live traffic) leave both alone.
    #[tokio::test]
    async fn backlog_batches_lower_the_limit_until_the_backlog_is_quiet() {
        use footfall_store::EventSink;
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store_with_limits(dir.path(), "96MB", "32MB");
        let query_limit = store.setting("memory_limit");
        assert!(query_limit.starts_with("91.5 MiB"), "{query_limit}");
        let batch = |n: u64, lsn: u64| {
            let events = sink::tests::page_views(n, 2, 1_000_000, 50, &["Google"]);
            store.append(Arc::new(events), lsn)
        };
        let live_threshold = store.setting("checkpoint_threshold");
        batch(1_000, 1).await.expect("stored");
        assert_eq!(store.setting("memory_limit"), query_limit);
        assert_eq!(store.setting("checkpoint_threshold"), live_threshold);
        batch(BACKLOG_BATCH as u64, 2).await.expect("stored");
        let write_limit = store.setting("memory_limit");
        assert!(write_limit.starts_with("30.5 MiB"), "{write_limit}");
        // And DuckDB checkpoints less often (BACKLOG_CHECKPOINT_THRESHOLD).
        let backlog_threshold = store.setting("checkpoint_threshold");
        assert_ne!(backlog_threshold, live_threshold);
        // A query right after a backlog batch runs under the write limit.
        drop(store.inner.query_turn());
        assert_eq!(store.setting("memory_limit"), write_limit);
        // Once the backlog is quiet, a query sets the query limit and checkpoints what
        // the backlog left in DuckDB's WAL.
        let wal = dir.path().join("footfall.duckdb.wal");
        let wal_len = || std::fs::metadata(&wal).map_or(0, |m| m.len());
        assert!(wal_len() > 0);
        store.inner.limit_state.lock().last_backlog_batch -= BACKLOG_QUIET;
        // Not while a backlog batch is being stored, however long it takes.
        store.inner.limit_state.lock().backlog_batch_running = true;
        drop(store.inner.query_turn());
        assert_eq!(store.setting("memory_limit"), write_limit);
        assert!(wal_len() > 0);
        store.inner.limit_state.lock().backlog_batch_running = false;
        drop(store.inner.query_turn());
        assert_eq!(store.setting("memory_limit"), query_limit);
        assert_eq!(store.setting("checkpoint_threshold"), live_threshold);
        assert_eq!(wal_len(), 0);
        assert!(!store.inner.limit_state.lock().checkpoint_due);
    }

    /// Store batches run on the writer's own thread, which a panicking batch does not stop
    /// (nor leave marked as running).
    #[tokio::test]
    async fn the_writer_thread_runs_batches_and_outlives_a_panic() {
        let store = DuckStore::memory().expect("store");
        let thread = store
            .on_writer_thread(|_| Ok(std::thread::current().name().map(str::to_string)))
            .await
            .expect("ran");
        assert_eq!(thread.as_deref(), Some("footfall-store"));
        let panicked = store
            .on_writer_thread(|inner| -> StoreResult<()> {
                let _backlog = inner.lower_for_backlog(BACKLOG_BATCH);
                panic!("a failing batch")
            })
            .await;
        assert!(panicked.is_err());
        // The batch ended: queries are not held under the write limit for good.
        assert!(!store.inner.limit_state.lock().backlog_batch_running);
        let again = store
            .on_writer_thread(|_| Ok(7))
            .await
            .expect("still running");
        assert_eq!(again, 7);
    }

    /// A backlog batch that does not fit the write limit is stored with the query limit
    /// (not the raised one of `with_more_memory`).
    #[tokio::test]
    async fn a_batch_over_the_write_limit_is_stored_with_the_query_limit() {
        use footfall_store::EventSink;
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store_with_limits(dir.path(), "128MB", "16MB");
        // 100,000 events need 40-48 MB (`a_batch_over_the_memory_limit_is_stored_with_a_raised_one`).
        let events = sink::tests::page_views(100_000, 4, 1_000_000, 500, &["Google"]);
        let _backlog = store.inner.lower_for_backlog(events.len());
        assert!(store.inner.write_limit_set());
        let alone = store
            .inner
            .append_on(&store.inner.writer.lock(), &events, 1);
        assert!(alone.as_ref().is_err_and(out_of_memory), "{alone:?}");
        store.append(Arc::new(events), 1).await.expect("stored");
        assert_eq!(sink::tests::stored_events(&store), 100_000);
        let limit = store.setting("memory_limit");
        assert!(limit.starts_with("122"), "{limit}");
    }

    /// A version-3 store with events is migrated (visit attributes and visitor moved to
    /// the rollup, events clustered by visit, visitors numbered) and its file rewritten.
    #[test]
    fn migration_4_converts_a_version_3_store() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("footfall.duckdb");
        {
            let conn = Connection::open(&path).expect("open");
            migrate_up_to(&conn, 3).expect("v3");
            // Two visits; written out of visit order, as v3 stores are (by arrival).
            conn.execute_batch(
                "INSERT INTO events (site_id, ts, event_id, client_id, visitor_id, session_id, \
                 session_start, name, interactive, hostname, pathname, title, engagement_ms, \
                 scroll_depth, revenue_amount, revenue_currency, has_props, entry_page, \
                 entry_hostname, referrer, source, channel, utm_source, utm_medium, \
                 utm_campaign, utm_content, utm_term, device, browser, browser_version, os, \
                 os_version, country, region, city, country_name, region_name, city_name, org) \
                 SELECT 1, TIMESTAMP '2024-03-10 00:00:00' + to_minutes(i), 100 + i, true, \
                 10 + i % 2, 1 + i % 2, TIMESTAMP '2024-03-10 00:00:00' + to_minutes(i % 2), \
                 'pageview', true, 'example.com', '/p' || i, 't', 0, NULL, NULL, NULL, false, \
                 '/p' || (i % 2), 'example.com', '', CASE WHEN i % 2 = 0 THEN 'Google' \
                 ELSE 'Bing' END, '', '', '', '', '', '', 'Desktop', 'Firefox', '', '', '', \
                 'DE', '', 0, '', '', '', '' FROM range(6) t(i);",
            )
            .expect("v3 events");
            sink::rebuild_sessions_v3(&conn).expect("v3 rollup");
        }
        let store = DuckStore::open(&path, &DuckConfig::default()).expect("migrated");
        let conn = store.inner.writer.lock();
        let version: u32 = conn
            .query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(Some(version), MIGRATIONS.last().map(|m| m.0));
        let order: Vec<(u64, String)> = conn
            .prepare("SELECT session_id, pathname FROM events")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()
            })
            .expect("events");
        let expected: Vec<(u64, String)> = [0, 2, 4, 1, 3, 5]
            .iter()
            .map(|i| (1 + i % 2, format!("/p{i}")))
            .collect();
        assert_eq!(order, expected);
        let visits: Vec<(u64, u64, String, String, u32, String)> = conn
            .prepare(
                "SELECT session_id, visitor_id, source, exit_page, pageviews, \
                 strftime(session_start, '%H:%M') FROM sessions ORDER BY session_id",
            )
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                })?
                .collect::<Result<_, _>>()
            })
            .expect("sessions");
        assert_eq!(
            visits,
            vec![
                (1, 10, "Google".into(), "/p4".into(), 3, "00:00".into()),
                (2, 11, "Bing".into(), "/p5".into(), 3, "00:01".into()),
            ]
        );
        // Migration 7 numbers the visitors in first-seen order.
        let numbers: Vec<(u64, u32)> = conn
            .prepare("SELECT visitor_id, visitor_no FROM sessions ORDER BY visitor_id")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()
            })
            .expect("numbers");
        assert_eq!(numbers, vec![(10, 0), (11, 1)]);
        let next: (u32, u32) = conn
            .query_row("SELECT site_id, next_no FROM visitor_counters", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("counter");
        assert_eq!(next, (1, 2));
        let no_visitor_column: i64 = conn
            .query_row(
                "SELECT count(*) FROM duckdb_columns() WHERE table_name = 'events' \
                 AND column_name IN ('visitor_id', 'source', 'session_start')",
                [],
                |r| r.get(0),
            )
            .expect("columns");
        assert_eq!(no_visitor_column, 0);
        let mut leftover = path.as_os_str().to_owned();
        leftover.push(".compact");
        assert!(!std::path::Path::new(&leftover).exists());
    }

    /// Migration 8 turns a version-7 store's time columns to milliseconds (sub-millisecond
    /// digits truncated), keeps every row, and compacts the file.
    #[test]
    fn migrations_from_7_keep_times_number_classify_events_and_empty_not_set() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("footfall.duckdb");
        {
            let conn = Connection::open(&path).expect("open");
            migrate_up_to(&conn, 7).expect("v7");
            conn.execute_batch(
                "INSERT INTO events SELECT 1, make_timestamp(1710028800000000 + i * 1000999), \
                 100 + i, false, 1 + i % 2, ['pageview', 'engagement', 'Signup'][i % 3 + 1], \
                 true, 'example.com', '/p' || i, '', 0, NULL, NULL, NULL, false FROM range(6) t(i);
                 INSERT INTO sessions BY NAME SELECT 1 AS site_id, s AS session_id, \
                 10 + s AS visitor_id, make_timestamp(1710028800000000 + (s - 1) * 1000999) \
                 AS session_start, make_timestamp(1710028800000000 + (s + 3) * 1000999) \
                 AS last_ts, 3 AS pageviews, 0 AS interactive, '/p' || (s - 1) AS entry_page, \
                 'example.com' AS entry_hostname, '/p' || (s + 3) AS exit_page, \
                 'example.com' AS exit_hostname, '' AS referrer, '' AS source, '' AS channel, \
                 '' AS utm_source, '' AS utm_medium, '' AS utm_campaign, '' AS utm_content, \
                 '' AS utm_term, '' AS device, \
                 CASE WHEN s = 1 THEN '(not set)' ELSE 'Firefox' END AS browser, \
                 '' AS browser_version, '' AS os, '' AS os_version, '' AS country, '' AS region, 0 AS city, '' AS country_name, \
                 '' AS region_name, '' AS city_name, '' AS org, '' AS label, \
                 CAST(s - 1 AS UINTEGER) AS visitor_no FROM range(1, 3) t(s);",
            )
            .expect("v7 rows");
        }
        let store = DuckStore::open(&path, &DuckConfig::default()).expect("migrated");
        let conn = store.inner.writer.lock();
        let types: Vec<(String, String)> = conn
            .prepare(
                "SELECT column_name, data_type FROM duckdb_columns() \
                 WHERE table_name IN ('events', 'sessions') \
                 AND column_name IN ('ts', 'session_start', 'last_ts') ORDER BY 1",
            )
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()
            })
            .expect("types");
        let ms = || "TIMESTAMP_MS".to_string();
        assert_eq!(
            types,
            vec![
                ("last_ts".into(), ms()),
                ("session_start".into(), ms()),
                ("ts".into(), ms())
            ]
        );
        let times: Vec<i64> = conn
            .prepare("SELECT epoch_us(ts) FROM events ORDER BY event_id")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect::<Result<_, _>>())
            .expect("times");
        let expected: Vec<i64> = (0..6)
            .map(|i| footfall_core::event::stored_time_us(1_710_028_800_000_000 + i * 1_000_999))
            .collect();
        assert_eq!(times, expected);
        let visit: (i64, i64) = conn
            .query_row(
                "SELECT epoch_us(session_start), epoch_us(last_ts) FROM sessions WHERE session_id = 2",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("visit");
        assert_eq!(visit, (expected[1], expected[5]));
        // Migration 9 numbers each event with its visit's visitor, 10 sets its kind.
        let numbered: Vec<(u32, u8)> = conn
            .prepare("SELECT visitor_no, kind FROM events ORDER BY event_id")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()
            })
            .expect("numbers and kinds");
        let kinds = [KIND_PAGEVIEW, KIND_ENGAGEMENT, KIND_CUSTOM];
        let want: Vec<(u32, u8)> = (0..6).map(|i| (i % 2, kinds[i as usize % 3])).collect();
        assert_eq!(numbered, want);
        // Migration 11 stores a derived "(not set)" empty.
        let browsers: Vec<String> = conn
            .prepare("SELECT browser FROM sessions ORDER BY session_id")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect::<Result<_, _>>())
            .expect("browsers");
        assert_eq!(browsers, vec!["", "Firefox"]);
        let mut leftover = path.as_os_str().to_owned();
        leftover.push(".compact");
        assert!(!std::path::Path::new(&leftover).exists());
    }
}
