//! Ingestion without HTTP: wire parsing, the pipeline steps, the write-ahead log and the
//! writer that moves durable batches into the event store.

pub mod pipeline;
pub mod salts;
pub mod sessions;
pub mod wal;
pub mod wire;

use footfall_core::{DropReason, Event};
use footfall_store::{EventSink, LiveState, MetaStore, Site};
use parking_lot::Mutex;
use pipeline::{HitContext, HitOutcome, Pipeline};
use salts::{SaltBook, day_of};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use wal::{Durable, Wal};

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
    /// Events accepted but not yet in the store beyond which hits get 503.
    pub max_backlog: usize,
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

/// How long the store writer gathers durable batches before one store transaction.
const STORE_LINGER: Duration = Duration::from_millis(200);

/// Batches up to this size are processed on the calling task.
const INLINE_HITS: usize = 256;

pub struct Ingestor {
    pub pipeline: Arc<Pipeline>,
    wal: Wal,
    backlog: Arc<AtomicUsize>,
    max_backlog: usize,
    pub drops: DropCounter,
    meta: Arc<dyn MetaStore>,
}

impl Ingestor {
    /// Recovers state (store checkpoint, log replay, open visits, de-dup ids) and starts
    /// the log writer and the store writer.
    pub async fn start(
        cfg: IngestConfig,
        sink: Arc<dyn EventSink>,
        meta: Arc<dyn MetaStore>,
        live: Arc<dyn LiveState>,
        max_timeout_secs: u32,
    ) -> Result<Arc<Ingestor>, IngestError> {
        let checkpoint = sink.checkpoint().await?;
        let wal_dir = cfg.wal_dir.clone();
        let (records, last_lsn) =
            tokio::task::spawn_blocking(move || wal::replay(&wal_dir, checkpoint))
                .await
                .map_err(|e| IngestError::Wal(wal::WalError::Io(std::io::Error::other(e))))??;

        let started = std::time::Instant::now();
        let pipeline = Arc::new(Pipeline::new(SaltBook::load(meta.salts().await?)));
        let ids = sink.client_event_ids().await?;
        let id_count = ids.len();
        pipeline.dedup.extend(ids);
        tracing::info!(
            ids = id_count,
            ms = started.elapsed().as_millis() as u64,
            "loaded client event ids"
        );
        for open in sink.recent_sessions(max_timeout_secs + 300).await? {
            let mut e = open.event;
            e.session_start_us = open.start_us;
            e.ts_us = open.last_us;
            pipeline.restore(&e);
        }
        let replayed: usize = records.iter().map(|r| r.events.len()).sum();
        for record in &records {
            for e in &record.events {
                pipeline.restore(e);
            }
        }
        if !records.is_empty() {
            tracing::info!(
                records = records.len(),
                events = replayed,
                "replaying write-ahead log"
            );
            for record in records {
                sink.append(Arc::new(record.events), record.lsn).await?;
            }
        }
        // Everything in the log is now in the store (checkpointed with it).
        wal::remove_all(&cfg.wal_dir)?;
        tracing::info!(
            open_visits = pipeline.sessions.len(),
            ms = started.elapsed().as_millis() as u64,
            "sessions restored"
        );

        let (applied_tx, applied_rx) = tokio::sync::mpsc::unbounded_channel();
        let wal = Wal::start(
            cfg.wal_dir.clone(),
            last_lsn.max(checkpoint) + 1,
            applied_tx,
        )?;
        let backlog = Arc::new(AtomicUsize::new(0));
        tokio::spawn(store_writer(
            applied_rx,
            sink,
            live,
            wal.clone(),
            backlog.clone(),
            cfg.store_batch,
        ));
        let ingestor = Arc::new(Ingestor {
            pipeline,
            wal,
            backlog,
            max_backlog: cfg.max_backlog,
            drops: DropCounter::default(),
            meta,
        });
        ingestor.persist_salts().await;
        Ok(ingestor)
    }

    /// Events acknowledged but not yet in the store.
    pub fn backlog(&self) -> usize {
        self.backlog.load(Ordering::Relaxed)
    }

    /// Processes hits of one site and makes the accepted ones durable before returning.
    pub async fn submit(
        &self,
        site: &Site,
        hits: Vec<wire::WireEvent>,
        ctx: &HitContext,
    ) -> Result<Vec<HitOutcome>, IngestError> {
        if self.backlog() >= self.max_backlog {
            return Err(IngestError::Overloaded);
        }
        let mut outcomes: Vec<HitOutcome> = if hits.len() <= INLINE_HITS {
            hits.into_iter()
                .map(|hit| self.pipeline.process(site, hit, ctx))
                .collect()
        } else {
            // Large bulk bodies: keep the CPU work off the async worker threads.
            let (pipeline, site, ctx) = (self.pipeline.clone(), site.clone(), ctx.clone());
            tokio::task::spawn_blocking(move || {
                hits.into_iter()
                    .map(|hit| pipeline.process(&site, hit, &ctx))
                    .collect()
            })
            .await
            .map_err(|e| IngestError::Wal(wal::WalError::Io(std::io::Error::other(e))))?
        };
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
            let n = events.len();
            let ids: Vec<u64> = events
                .iter()
                .filter(|e| e.client_id)
                .map(|e| e.event_id)
                .collect();
            self.backlog.fetch_add(n, Ordering::Relaxed);
            if let Err(e) = self.wal.append(events).await {
                self.backlog.fetch_sub(n, Ordering::Relaxed);
                // Not durable, so not seen: a retry with the same ids must be stored.
                for id in ids {
                    self.pipeline.dedup.remove(id);
                }
                return Err(e.into());
            }
        }
        Ok(outcomes)
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

    /// Periodic upkeep: close stale visits, rotate salts, flush drop counters.
    pub async fn maintain(&self, timeout_of: impl Fn(u32) -> u32) {
        let now_us = chrono::Utc::now().timestamp_micros();
        self.pipeline.sessions.sweep(now_us, timeout_of);
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

/// Moves durable batches into the store, merging whatever is queued into one
/// transaction. On a store error it retries: the batch is already durable in the log.
async fn store_writer(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Durable>,
    sink: Arc<dyn EventSink>,
    live: Arc<dyn LiveState>,
    wal: Wal,
    backlog: Arc<AtomicUsize>,
    max_batch: usize,
) {
    while let Some(first) = rx.recv().await {
        let mut lsn = first.lsn;
        let mut events = first.events;
        // Each DuckDB commit has a fixed cost (and writes DuckDB's own log), so gather for
        // a short while: the events are already durable, only their visibility waits.
        let deadline = tokio::time::Instant::now() + STORE_LINGER;
        while events.len() < max_batch {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(next)) => {
                    lsn = next.lsn;
                    events.extend(next.events);
                }
                Ok(None) | Err(_) => break,
            }
        }
        let n = events.len();
        let events = Arc::new(events);
        let mut delay = Duration::from_millis(100);
        loop {
            match sink.append(events.clone(), lsn).await {
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
        backlog.fetch_sub(n, Ordering::Relaxed);
        wal.applied_up_to(lsn);
    }
}
