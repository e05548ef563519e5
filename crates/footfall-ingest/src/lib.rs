//! Ingestion without HTTP: wire parsing, the pipeline steps, the write-ahead log and the
//! writer that moves durable batches into the event store.

pub mod dedup;
pub mod pipeline;
pub mod record;
pub mod salts;
pub mod sessions;
pub mod wal;
pub mod wire;

use footfall_core::identity::client_event_id;
use footfall_core::session::OpenSession;
use footfall_core::{DropReason, Event};
use footfall_store::{ActiveVisitor, EventSink, LiveState, MetaStore, Site};
use parking_lot::Mutex;
use pipeline::{HitContext, HitOutcome, Pipeline};
use record::Record;
use salts::{SaltBook, day_of};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use wal::{LogReader, Wal};
use wire::WireEvent;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the server is busy writing earlier events; retry shortly")]
    Overloaded,
    #[error(transparent)]
    Wal(#[from] wal::WalError),
    #[error("storage error during start-up: {0}")]
    Store(#[from] footfall_store::StoreError),
}

impl IngestError {
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::Overloaded => "overloaded",
            IngestError::Wal(_) => "wal_error",
            IngestError::Store(_) => "storage_error",
        }
    }
}

#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub wal_dir: PathBuf,
    /// Bytes of log accepted but not yet applied to the store beyond which hits get 503.
    pub max_backlog_bytes: u64,
    /// Largest batch handed to the store in one transaction.
    pub store_batch: usize,
}

/// Per-site, per-reason counters of dropped hits, flushed to the meta store.
#[derive(Default)]
pub struct DropCounter {
    counts: Mutex<HashMap<(u32, DropReason), u64>>,
}

impl DropCounter {
    pub fn add(&self, site_id: u32, reason: DropReason) {
        *self.counts.lock().entry((site_id, reason)).or_insert(0) += 1;
    }
    fn take(&self) -> HashMap<(u32, DropReason), u64> {
        std::mem::take(&mut *self.counts.lock())
    }
}

/// How long the applier gathers records before one store transaction when there is no
/// backlog: each DuckDB commit and visit-rollup refresh has a fixed cost, and the records
/// are already durable. 1 s instead of 200 ms: `/api/event` 12.4k -> 16.1k req/s back to
/// back (server CPU per request 128 -> 89 us); only visibility waits.
const STORE_LINGER: Duration = Duration::from_millis(1000);
/// Recent client ids (hash sets, ~16 bytes each) folded into the compact set from this
/// count (and a sixteenth of the set); a fold rewrites the compact set (~60 MB at 10M
/// ids), so not on every tick.
const DEDUP_COMPACT_AT: usize = 250_000;

/// What the bulk API can say about a valid hit at 202 time; enrichment, identity and
/// sessionization happen behind the log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Acceptance {
    /// Durable in the log; processed and stored shortly.
    Logged,
    /// A re-sent client id: acknowledged, not stored again.
    Duplicate,
}

/// A bulk body's hits for one site, validated and encoded while the body is parsed
/// (`record::HitsEncoder`), for `Ingestor::accept`.
pub struct BulkHits {
    site_id: u32,
    encoder: record::HitsEncoder,
    /// The client event id of each encoded hit, in push order.
    client_ids: Vec<Option<u64>>,
}

impl BulkHits {
    /// `capacity`: bytes of JSON the hits may take (see `HitsEncoder::new`).
    pub fn new(site: &Site, ctx: &HitContext, capacity: usize) -> BulkHits {
        BulkHits {
            site_id: site.id,
            encoder: record::HitsEncoder::new(site, ctx, capacity),
            client_ids: Vec::with_capacity((capacity / 64).min(100_000)),
        }
    }

    /// Validates one hit and encodes it; the error says why it is refused.
    pub fn push(&mut self, hit: &WireEvent) -> Result<(), String> {
        pipeline::validate(hit)?;
        let id = hit.id.as_deref();
        self.client_ids
            .push(id.map(|id| client_event_id(self.site_id, id)));
        self.encoder.push(hit);
        Ok(())
    }

    /// Whether no hit was pushed.
    pub fn is_empty(&self) -> bool {
        self.client_ids.is_empty()
    }
}

pub struct Ingestor {
    pub pipeline: Arc<Pipeline>,
    wal: Wal,
    max_backlog_bytes: u64,
    pub drops: Arc<DropCounter>,
    meta: Arc<dyn MetaStore>,
}

impl Ingestor {
    /// Recovers state (store checkpoint, open visits, de-dup ids, unapplied log records)
    /// and starts the log writer and the applier, which stores the unapplied records
    /// first.
    pub async fn start(
        cfg: IngestConfig,
        sink: Arc<dyn EventSink>,
        meta: Arc<dyn MetaStore>,
        live: Arc<dyn LiveState>,
        max_timeout_secs: u32,
    ) -> Result<Arc<Ingestor>, IngestError> {
        let checkpoint = sink.checkpoint().await?;
        let started = Instant::now();
        let mut pipeline = Pipeline::new(SaltBook::load(meta.salts().await?));
        // Beside the log: the same disk, and a directory footfall owns (made here, as the
        // ids load before the log opens; a failure is the log's to report).
        let _ = std::fs::create_dir_all(&cfg.wal_dir);
        pipeline.dedup = dedup::Dedup::in_dir(cfg.wal_dir.clone());
        let pipeline = Arc::new(pipeline);
        // The de-dup set and the open visits are independent and each mostly one
        // thread's work (DuckDB's scan feeding the set's placement on a blocking thread;
        // the visits' table and the live state here): made side by side on the 2 cores.
        // The ids on a task of their own: the visits' loop here runs without yielding,
        // and the ids' second pass starts when their future is polled.
        let ids = tokio::spawn(load_client_ids(sink.clone(), pipeline.clone(), started));
        restore_visits(sink.as_ref(), &pipeline, live.as_ref(), max_timeout_secs).await?;
        ids.await.map_err(|e| {
            footfall_store::StoreError::Backend(format!("loading the client ids failed: {e}"))
        })??;
        // Nothing later needs the blocks these scans left in DuckDB's buffer pool.
        sink.release_idle_memory().await;
        let (wal_dir, p) = (cfg.wal_dir.clone(), pipeline.clone());
        let (found, records) =
            tokio::task::spawn_blocking(move || recover(&wal_dir, checkpoint, &p))
                .await
                .map_err(|e| IngestError::Wal(wal::WalError::Io(std::io::Error::other(e))))??;
        if records > 0 {
            tracing::info!(
                records,
                bytes = found.pending_bytes,
                "write-ahead log records not yet in the store: applying them first"
            );
        }
        tracing::info!(
            open_visits = pipeline.sessions.len(),
            ms = started.elapsed().as_millis() as u64,
            "sessions restored"
        );

        let wal = Wal::start(
            cfg.wal_dir.clone(),
            found.last_lsn.max(checkpoint) + 1,
            checkpoint,
            found.pending_bytes,
        )?;
        let drops = Arc::new(DropCounter::default());
        let (batch_tx, batch_rx) = tokio::sync::mpsc::channel(1);
        tokio::spawn(store_writer(batch_rx, sink, live, wal.clone()));
        let applier = Applier {
            reader: LogReader::new(cfg.wal_dir.clone(), checkpoint),
            durable: wal.durable(),
            pipeline: pipeline.clone(),
            drops: drops.clone(),
            out: batch_tx,
            slots: Arc::new(tokio::sync::Semaphore::new(BATCHES_IN_MEMORY)),
            max_batch: cfg.store_batch,
            runtime: tokio::runtime::Handle::current(),
        };
        std::thread::Builder::new()
            .name("footfall-apply".into())
            .spawn(move || applier.run())
            .map_err(|e| IngestError::Wal(e.into()))?;
        let ingestor = Arc::new(Ingestor {
            pipeline,
            wal,
            max_backlog_bytes: cfg.max_backlog_bytes,
            drops,
            meta,
        });
        ingestor.persist_salts().await;
        Ok(ingestor)
    }

    /// Bytes of log acknowledged but not yet in the store.
    pub fn backlog_bytes(&self) -> u64 {
        self.wal.bytes.backlog()
    }

    fn admit(&self) -> Result<(), IngestError> {
        if self.backlog_bytes() > self.max_backlog_bytes {
            return Err(IngestError::Overloaded);
        }
        Ok(())
    }

    /// Processes hits of one site on the request (for answers that need the outcome:
    /// drop reason, session id, cookies) and makes the accepted ones durable.
    pub async fn submit(
        &self,
        site: &Site,
        hits: Vec<WireEvent>,
        ctx: &HitContext,
    ) -> Result<Vec<HitOutcome>, IngestError> {
        self.admit()?;
        let mut outcomes: Vec<HitOutcome> = hits
            .into_iter()
            .map(|hit| self.pipeline.process(site, hit, ctx))
            .collect();
        let mut events: Vec<Event> = Vec::new();
        for outcome in &mut outcomes {
            match outcome {
                HitOutcome::Accepted(e) => {
                    let stored = HitOutcome::Stored {
                        visitor_id: e.visitor_id,
                        session_id: e.session_id,
                    };
                    if let HitOutcome::Accepted(e) = std::mem::replace(outcome, stored) {
                        events.push(*e);
                    }
                }
                HitOutcome::Dropped(reason) => self.drops.add(site.id, *reason),
                _ => {}
            }
        }
        if !events.is_empty() {
            let ids: Vec<u64> = events
                .iter()
                .filter(|e| e.client_id)
                .map(|e| e.event_id)
                .collect();
            // Per-hit endpoints serve browsers, which never re-send a hit: in the log file
            // (safe from kill -9) is enough, the fsync follows within milliseconds.
            let written = self
                .wal
                .append(record::encode_events(&events), wal::Ack::Written)
                .await
                .map_err(IngestError::from);
            if let Err(e) = written {
                // Not durable, so not seen: a retry with the same ids must be stored.
                for id in ids {
                    self.pipeline.dedup.remove(id);
                }
                return Err(e);
            }
        }
        Ok(outcomes)
    }

    /// Bulk acceptance: answers re-sent client ids and makes the rest durable as one
    /// hit record; the answers are in push order. Validation happened as the hits were
    /// pushed; enrichment, identity, sessionization and the store write happen behind
    /// the log (`Applier`), so a 202 costs only parsing, validation and the group-commit
    /// fsync.
    pub async fn accept(&self, hits: BulkHits) -> Result<Vec<Acceptance>, IngestError> {
        self.admit()?;
        let BulkHits {
            encoder,
            client_ids,
            ..
        } = hits;
        // Decided here, in acceptance order, so the reply can say so.
        let given: Vec<u64> = client_ids.iter().flatten().copied().collect();
        let mut new = self.pipeline.dedup.insert_batch(&given).into_iter();
        let mut inserted = Vec::new();
        let answers: Vec<Acceptance> = client_ids
            .iter()
            .map(|id| match id {
                Some(id) if new.next() == Some(true) => {
                    inserted.push(*id);
                    Acceptance::Logged
                }
                Some(_) => Acceptance::Duplicate,
                None => Acceptance::Logged,
            })
            .collect();
        drop(client_ids);
        if answers.contains(&Acceptance::Logged) {
            let payload = encoder.finish(|i| answers[i] == Acceptance::Logged);
            // Bulk senders retry on failure: their 202 promises the batch is on disk.
            if let Err(e) = self.wal.append(payload, wal::Ack::Synced).await {
                // Not durable, so not seen: a retry with the same ids must be stored.
                for id in inserted {
                    self.pipeline.dedup.remove(id);
                }
                return Err(e.into());
            }
        }
        Ok(answers)
    }

    async fn persist_salts(&self) {
        let today = day_of(chrono::Utc::now().timestamp_micros());
        for (day, salt) in self.pipeline.salts.take_unsaved() {
            // Salts of older days (historical imports) stay in memory only.
            if day >= today - 1
                && let Err(e) = self.meta.put_salt(day, salt).await
            {
                tracing::warn!(error = %e, "could not save a salt");
            }
        }
    }

    /// Folds recently accepted client ids into the compact de-dup set once they are
    /// many: during a bulk load at 300k events/s, ten seconds of them (~3M ids, ~16
    /// bytes each in hash sets) would wait for the next `maintain`.
    pub fn compact_dedup_if_many(&self) {
        self.pipeline.dedup.compact_if_many(DEDUP_COMPACT_AT);
    }

    /// Periodic upkeep: close stale visits, rotate salts, flush drop counters.
    pub async fn maintain(&self, timeout_of: impl Fn(u32) -> u32) {
        let now_us = chrono::Utc::now().timestamp_micros();
        self.pipeline.sessions.sweep(now_us, timeout_of);
        self.pipeline.dedup.compact();
        let today = day_of(now_us);
        // Have today's and tomorrow's salts on disk before they are needed.
        self.pipeline.salts.get(today);
        self.pipeline.salts.get(today + 1);
        self.persist_salts().await;
        self.pipeline.salts.forget_before(today - 1);
        if let Err(e) = self.meta.delete_salts_before(today - 1).await {
            tracing::warn!(error = %e, "could not delete old salts");
        }
        for ((site, reason), count) in self.drops.take() {
            if let Err(e) = self.meta.add_drops(site, reason.as_str(), count).await {
                tracing::warn!(error = %e, "could not save drop counters");
            }
        }
    }
}

/// Reads every client-given event id of the store into the pipeline's de-dup set (two
/// passes over the ids: counted, then placed, so no list of them all is held).
async fn load_client_ids(
    sink: Arc<dyn EventSink>,
    pipeline: Arc<Pipeline>,
    started: Instant,
) -> Result<(), IngestError> {
    let loader = Arc::new(parking_lot::Mutex::new(dedup::IdLoader::default()));
    let counting = loader.clone();
    sink.client_event_ids(Box::new(move |ids| counting.lock().count(ids)))
        .await?;
    let placing = loader.clone();
    sink.client_event_ids(Box::new(move |ids| placing.lock().place(ids)))
        .await?;
    pipeline.dedup.load(std::mem::take(&mut *loader.lock()));
    tracing::info!(
        ids = pipeline.dedup.footprint().0,
        ms = started.elapsed().as_millis() as u64,
        "loaded client event ids"
    );
    Ok(())
}

/// Re-opens the visits that can still continue, and restores the live state from them:
/// realtime figures read the live state, which starts empty, so the visitors the store
/// shows as recently active are put there now (the log's unapplied records are recorded
/// as the applier stores them).
async fn restore_visits(
    sink: &dyn EventSink,
    pipeline: &Pipeline,
    live: &dyn LiveState,
    max_timeout_secs: u32,
) -> Result<(), IngestError> {
    // Handed over in chunks, so that a million open visits are not copied into a second
    // list at once.
    const RESTORE_CHUNK: usize = 65_536;
    let now_us = chrono::Utc::now().timestamp_micros();
    let mut here_now = Vec::with_capacity(RESTORE_CHUNK);
    for open in sink.recent_sessions(max_timeout_secs + 300).await? {
        pipeline.reopen(
            open.site_id,
            OpenSession {
                session_id: open.session_id,
                visitor_id: open.visitor_id,
                start_us: open.start_us,
                last_us: open.last_us,
            },
        );
        if now_us - open.last_us > i64::from(max_timeout_secs) * 1_000_000 {
            continue;
        }
        here_now.push((
            open.site_id,
            ActiveVisitor {
                visitor_id: open.visitor_id,
                session_id: open.session_id,
                pathname: open.exit_page.into(),
                last_seen_us: open.last_us,
            },
        ));
        if here_now.len() == RESTORE_CHUNK {
            live.restore(std::mem::replace(
                &mut here_now,
                Vec::with_capacity(RESTORE_CHUNK),
            ))
            .await?;
        }
    }
    live.restore(here_now).await?;
    // The live feed's presences: visitors of the last 5 minutes, with their visit's
    // attributes (a visit begun before the restart would show without them).
    live.restore_presence(sink.live_visits(now_us - 5 * 60 * 1_000_000).await?)
        .await?;
    Ok(())
}

/// Start-up pass over the unapplied records: their client ids go into the de-dup set
/// (acceptance decides duplicates, so it must know them before serving) and the visits
/// of already-processed events are re-opened. The applier then stores them.
fn recover(
    dir: &std::path::Path,
    checkpoint: u64,
    pipeline: &Pipeline,
) -> Result<(wal::Recovered, usize), IngestError> {
    let found = wal::recover(dir, checkpoint)?;
    let mut reader = LogReader::new(dir.to_path_buf(), checkpoint);
    let mut records = 0;
    while let Some((_, payload, _)) = reader.next(found.last_lsn)? {
        records += 1;
        match record::decode(&payload).map_err(wal::WalError::from)? {
            Record::Hits { site, hits, .. } => {
                for hit in hits {
                    if let Some(id) = hit.map_err(wal::WalError::from)?.id {
                        pipeline.dedup.insert(client_event_id(site.id, &id));
                    }
                }
            }
            Record::Events(events) => events.iter().for_each(|e| pipeline.restore(e)),
        }
    }
    Ok((found, records))
}

/// Events ready for the store, as an event record (`record::EventsEncoder`): everything
/// up to `lsn` (`bytes` of log).
struct Applied {
    events: Vec<u8>,
    lsn: u64,
    bytes: u64,
    /// Held until the batch is stored (see `BATCHES_IN_MEMORY`).
    _slot: tokio::sync::OwnedSemaphorePermit,
}

/// Batches of processed events in memory at once: one being written to the store (decoded)
/// while the next is gathered and processed (encoded). A third, queued between them,
/// would only wait (the store is the slower side) and cost memory.
const BATCHES_IN_MEMORY: usize = 2;

/// Reads durable records back from the log in LSN order, runs the pipeline over hit
/// records (both cores when there is a backlog) and hands batches to the store writer,
/// which runs concurrently with the next batch's processing.
struct Applier {
    reader: LogReader,
    durable: tokio::sync::watch::Receiver<u64>,
    pipeline: Arc<Pipeline>,
    drops: Arc<DropCounter>,
    out: tokio::sync::mpsc::Sender<Applied>,
    /// `BATCHES_IN_MEMORY` permits; one is taken before a batch is gathered.
    slots: Arc<tokio::sync::Semaphore>,
    max_batch: usize,
    runtime: tokio::runtime::Handle,
}

/// Events of the records read for one store batch: up to `lsn`, `bytes` of log.
struct Gathered {
    events: record::EventsEncoder,
    lsn: u64,
    bytes: u64,
}

impl Applier {
    fn run(mut self) {
        if let Err(e) = footfall_store::thread::lower_priority() {
            tracing::debug!(error = %e, "could not lower the applier's priority");
        }
        loop {
            let slots = self.slots.clone();
            let Ok(slot) = self.runtime.block_on(slots.acquire_owned()) else {
                return;
            };
            let Some(Gathered { events, lsn, bytes }) = self.gather() else {
                return;
            };
            let batch = Applied {
                events: events.finish(),
                lsn,
                bytes,
                _slot: slot,
            };
            if self.out.blocking_send(batch).is_err() {
                return;
            }
        }
    }

    /// Waits for records and reads up to `max_batch` hits/events, lingering briefly
    /// when the log is quiet. `None` when the log writer has stopped.
    fn gather(&mut self) -> Option<Gathered> {
        let mut g = Gathered {
            // ~150 bytes per event: reserved pages that are never written cost nothing,
            // while growing by doubling copies megabytes.
            events: record::EventsEncoder::with_capacity(self.max_batch.min(1 << 20) * 160),
            lsn: 0,
            bytes: 0,
        };
        let mut count = 0usize;
        let mut deadline: Option<Instant> = None;
        loop {
            let durable = *self.durable.borrow_and_update();
            match self.reader.next(durable) {
                Ok(Some((at, payload, size))) => {
                    g.lsn = at;
                    g.bytes += size;
                    let before = g.events.len();
                    match g.events.take(&payload) {
                        // Processed as decoded: one raw hit at a time is in memory, not
                        // a batch's (~140 MB at 100,000 hits) next to their events.
                        Ok(Some((site, ctx, hits))) => {
                            count += hits.len();
                            self.process(&site, &ctx, hits, &mut g.events);
                        }
                        Ok(None) => count += g.events.len() - before,
                        // Cannot happen for a checksummed record we wrote; never stall on it.
                        Err(e) => tracing::error!(lsn = at, error = %e, "skipping a log record"),
                    }
                    deadline.get_or_insert_with(|| Instant::now() + STORE_LINGER);
                    if count >= self.max_batch {
                        return Some(g);
                    }
                }
                Ok(None) => match deadline {
                    Some(d) if Instant::now() >= d => return Some(g),
                    // Lingering: sleep it out and read what arrived meanwhile, instead of
                    // waking (and reading a few hundred bytes) at every group commit.
                    Some(d) => std::thread::sleep(d - Instant::now()),
                    None => {
                        let changed = self.runtime.block_on(async {
                            tokio::time::timeout(Duration::from_secs(3600), self.durable.changed())
                                .await
                        });
                        if let Ok(Err(_)) = changed {
                            // The writer is gone (shutdown): nothing was read.
                            return None;
                        }
                    }
                },
                Err(e) => {
                    tracing::error!(error = %e, "could not read the write-ahead log; retrying");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }

    /// Runs the pipeline over the gathered hits, appending accepted events to `out`, in
    /// log order on this one thread. Records of 2,048 hits or more used to be split over
    /// up to four threads by visitor; the store writer, not this, bounds the rate
    /// (`footfall bench --only bulk`: 105-110k events/s until queryable either way), and
    /// every thread that parses user agents keeps its own regex caches (~44 MB each once
    /// warm: `UaParser` over the uap-core corpus), which stayed resident after loads.
    fn process(
        &self,
        site: &Site,
        ctx: &HitContext,
        hits: record::EncodedHits,
        out: &mut record::EventsEncoder,
    ) {
        for hit in hits {
            let hit = match hit {
                Ok(hit) => hit,
                // Cannot happen for a checksummed record we wrote; never stall on it.
                Err(e) => {
                    tracing::error!(error = %e, "skipping the rest of a log record");
                    break;
                }
            };
            match self.pipeline.process_logged(site, hit, ctx) {
                HitOutcome::Accepted(e) => out.push(&e),
                HitOutcome::Dropped(reason) => self.drops.add(site.id, reason),
                HitOutcome::Rejected(error) => {
                    tracing::debug!(%error, "a logged hit failed processing")
                }
                HitOutcome::Stored { .. } | HitOutcome::Duplicate => {}
            }
        }
    }
}

/// Events stored since the store last gave back its caches (`EventSink::
/// release_idle_memory`) after which a quiet writer does so again: a load, not the
/// trickle of a quiet site, whose caches are small and worth keeping.
const RELEASE_AFTER_EVENTS: usize = 100_000;
/// How long the store writer waits for the next batch before it counts as quiet: longer
/// than the pauses of a sender posting batches every few seconds, whose next batches
/// would read the released blocks back each time. (`footfall bench` waits this long after
/// a load before it measures the store.)
pub const RELEASE_WHEN_IDLE_FOR: Duration = Duration::from_secs(10);

/// Moves processed batches into the store. On a store error it retries: the records
/// are durable in the log.
async fn store_writer(
    mut rx: tokio::sync::mpsc::Receiver<Applied>,
    sink: Arc<dyn EventSink>,
    live: Arc<dyn LiveState>,
    wal: Wal,
) {
    let mut stored_since_release = 0usize;
    loop {
        let batch = if stored_since_release >= RELEASE_AFTER_EVENTS {
            match tokio::time::timeout(RELEASE_WHEN_IDLE_FOR, rx.recv()).await {
                Ok(batch) => batch,
                Err(_quiet) => {
                    sink.release_idle_memory().await;
                    tracing::info!(
                        events = stored_since_release,
                        "store quiet after a load: cached store blocks given back"
                    );
                    stored_since_release = 0;
                    continue;
                }
            }
        } else {
            rx.recv().await
        };
        let Some(batch) = batch else { break };
        // Decoded only now, so the batch being gathered meanwhile stays encoded.
        let events = match record::decode(&batch.events) {
            Ok(Record::Events(events)) => events,
            // Cannot happen for a record built here; never stall on it.
            Ok(Record::Hits { .. }) | Err(_) => {
                tracing::error!(
                    lsn = batch.lsn,
                    "skipping a store batch that does not decode"
                );
                Vec::new()
            }
        };
        drop(batch.events);
        let n = events.len();
        stored_since_release += n;
        let events = Arc::new(events);
        // A batch whose hits were all dropped has nothing to store.
        if n > 0 {
            let mut delay = Duration::from_millis(100);
            loop {
                match sink.append(events.clone(), batch.lsn).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::error!(error = %e, events = n, "store write failed; retrying (events are safe in the log)");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(10));
                    }
                }
            }
            if let Err(e) = live.record(&events).await {
                tracing::warn!(error = %e, "could not update live state");
            }
        }
        wal.bytes.applied.fetch_add(batch.bytes, Ordering::Relaxed);
        wal.applied_up_to(batch.lsn);
    }
}
