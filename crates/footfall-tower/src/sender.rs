//! Events, sinks and the background task that sends them in batches.

use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// One hit, in the shape of footfall's bulk API (`POST /api/v1/events`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub name: String,
    pub url: String,
    pub domain: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    /// RFC 3339.
    pub timestamp: String,
    /// The `ff_vid` cookie in cookie mode; absent in cookieless mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visitor_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    pub user_agent: String,
    /// Random per hit: a retried batch is not stored twice.
    pub id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Worth retrying (network error, 429, 5xx).
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// Retrying will not help (bad key, 4xx): the batch is dropped.
    #[error("permanent failure: {0}")]
    Permanent(String),
}

pub type SinkFuture = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send>>;

/// Where batches go: footfall's HTTP API (`HttpSink`), or anything in process.
/// Closures `Fn(Vec<Event>) -> impl Future<Output = Result<(), SinkError>>` are sinks.
pub trait Sink: Send + Sync + 'static {
    fn send(&self, batch: Vec<Event>) -> SinkFuture;
}

impl<F, Fut> Sink for F
where
    F: Fn(Vec<Event>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), SinkError>> + Send + 'static,
{
    fn send(&self, batch: Vec<Event>) -> SinkFuture {
        Box::pin(self(batch))
    }
}

/// footfall's bulk API with a site ingest key.
pub struct HttpSink {
    url: String,
    key: String,
    client: reqwest::Client,
}

impl HttpSink {
    /// `base_url` is the footfall server (e.g. `http://127.0.0.1:8070`).
    pub fn new(base_url: &str, ingest_key: &str, timeout: Duration) -> Result<Self, SinkError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("footfall-tower/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SinkError::Permanent(format!("HTTP client: {e}")))?;
        Ok(HttpSink {
            url: format!("{}/api/v1/events", base_url.trim_end_matches('/')),
            key: ingest_key.to_string(),
            client,
        })
    }
}

impl Sink for HttpSink {
    fn send(&self, batch: Vec<Event>) -> SinkFuture {
        let req = self
            .client
            .post(&self.url)
            .bearer_auth(&self.key)
            .json(&batch);
        Box::pin(async move {
            let resp = req
                .send()
                .await
                .map_err(|e| SinkError::Temporary(e.to_string()))?;
            let status = resp.status();
            if status.is_success() {
                Ok(())
            } else if status.as_u16() == 429 || status.is_server_error() {
                Err(SinkError::Temporary(format!("footfall answered {status}")))
            } else {
                let body = resp.text().await.unwrap_or_default();
                Err(SinkError::Permanent(format!(
                    "footfall answered {status}: {}",
                    body.chars().take(200).collect::<String>()
                )))
            }
        })
    }
}

/// Counters of a tracker, all since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Hits queued for sending.
    pub queued: u64,
    /// Hits the sink accepted.
    pub sent: u64,
    /// Hits dropped because the buffer was full (footfall slow or down) or the tracker
    /// was shut down.
    pub dropped_full: u64,
    /// Hits dropped after the sink failed permanently or retries ran out.
    pub dropped_failed: u64,
    /// Batch send attempts that failed and were retried.
    pub retries: u64,
}

impl Stats {
    pub fn dropped(&self) -> u64 {
        self.dropped_full + self.dropped_failed
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    pub queued: AtomicU64,
    pub sent: AtomicU64,
    pub dropped_full: AtomicU64,
    pub dropped_failed: AtomicU64,
    pub retries: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> Stats {
        Stats {
            queued: self.queued.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
            dropped_full: self.dropped_full.load(Ordering::Relaxed),
            dropped_failed: self.dropped_failed.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
        }
    }
}

/// Sending parameters.
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// Events waiting to be sent at most; further hits are dropped and counted.
    pub buffer: usize,
    /// Events per request at most.
    pub batch: usize,
    /// A partial batch waits at most this long.
    pub flush_interval: Duration,
    /// Attempts per batch before it is dropped.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions {
            buffer: 10_000,
            batch: 500,
            flush_interval: Duration::from_secs(2),
            max_attempts: 6,
            backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
        }
    }
}

pub(crate) enum Msg {
    Hit(Box<Event>),
    /// Send what is buffered now; answer when done.
    Flush(oneshot::Sender<()>),
}

/// The background task: collects hits into batches and sends them with retries. Ends
/// when every sender is gone (after sending what is left, once).
pub(crate) async fn run(
    mut rx: mpsc::Receiver<Msg>,
    sink: Arc<dyn Sink>,
    opts: SendOptions,
    counters: Arc<Counters>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let mut batch: Vec<Event> = Vec::with_capacity(opts.batch);
    let mut closing = false;
    loop {
        let deadline = tokio::time::sleep(opts.flush_interval);
        tokio::pin!(deadline);
        let mut waiter = None;
        // Gather until the batch is full, the interval passes, or a flush is asked.
        while batch.len() < opts.batch.max(1) && !closing {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(Msg::Hit(e)) => batch.push(*e),
                    Some(Msg::Flush(done)) => { waiter = Some(done); break; }
                    None => { closing = true; }
                },
                _ = &mut deadline => break,
                _ = &mut shutdown, if !closing => {
                    closing = true;
                    rx.close();
                }
            }
        }
        if closing {
            // Take what was queued before the close, then send it all once.
            while let Ok(msg) = rx.try_recv() {
                match msg {
                    Msg::Hit(e) => batch.push(*e),
                    Msg::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
            for chunk in batch.chunks(opts.batch.max(1)) {
                send_with_retry(&*sink, chunk.to_vec(), &opts, &counters, 1).await;
            }
            return;
        }
        if !batch.is_empty() {
            let out = std::mem::replace(&mut batch, Vec::with_capacity(opts.batch));
            send_with_retry(&*sink, out, &opts, &counters, opts.max_attempts).await;
        }
        if let Some(done) = waiter {
            let _ = done.send(());
        }
    }
}

async fn send_with_retry(
    sink: &dyn Sink,
    batch: Vec<Event>,
    opts: &SendOptions,
    counters: &Counters,
    attempts: u32,
) {
    let n = batch.len() as u64;
    let mut delay = opts.backoff;
    for attempt in 1..=attempts.max(1) {
        match sink.send(batch.clone()).await {
            Ok(()) => {
                counters.sent.fetch_add(n, Ordering::Relaxed);
                return;
            }
            Err(SinkError::Temporary(e)) if attempt < attempts => {
                counters.retries.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, attempt, "footfall: retrying a batch");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(opts.max_backoff);
            }
            Err(e) => {
                tracing::warn!(error = %e, events = n, "footfall: dropping a batch");
                break;
            }
        }
    }
    counters.dropped_failed.fetch_add(n, Ordering::Relaxed);
}
