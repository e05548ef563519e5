//! `footfall simulate`: realistic synthetic traffic sent through the real bulk ingestion
//! API (`POST /api/v1/events`), so demos, tests and benchmarks exercise the whole pipeline.
//!
//! Traffic model: visits are spread over the last `--days` days with daily and weekly
//! seasonality; each visit is 1..N page views seconds to minutes apart (Zipf-distributed
//! pages), with engagement beacons and a few custom events; its visitor comes from a
//! power-law population (~events/8, so most visitors come once and a few return often)
//! with a stable user agent and IP; sessions of one visitor are always > 30 min apart.
//!
//! Events are generated one hour of event time at a time and sorted, so the stream is in
//! time order (the server sessionizes by event time) and memory stays bounded. JSON is
//! written straight into the request body from pre-escaped fragments: generation is far
//! cheaper than ingestion, so 10M events load in minutes.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// A running server and a Bearer token it accepts for bulk ingestion on the site
/// (the admin token works on every site).
#[derive(Debug, Clone)]
pub struct Target {
    pub base_url: String,
    pub token: String,
}

#[derive(clap::Args, Debug, Clone)]
pub struct SimulateArgs {
    /// Site domain to send traffic for (created with timezone UTC if it does not exist).
    #[arg(long)]
    pub site: String,
    /// Number of events to generate (page views, engagement beacons and custom events).
    #[arg(long, default_value_t = 10_000)]
    pub events: u64,
    /// Spread the traffic over this many days, ending now (or at --end).
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Spread the traffic over this many minutes instead of --days, e.g. `--minutes 30`
    /// for a burst that leaves many visits open (start-up measurements).
    #[arg(long, conflicts_with = "days")]
    pub minutes: Option<u32>,
    /// Random seed: the same seed gives the same traffic and the same event ids, so a
    /// re-run is deduplicated by the server instead of doubling the numbers.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Events per bulk request.
    #[arg(long, default_value_t = 5000)]
    pub batch: usize,
    /// Bulk requests in flight at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Last moment of the simulated traffic (RFC 3339); default: now.
    #[arg(long)]
    pub end: Option<String>,
    #[command(flatten)]
    pub send: SendArgs,
}

/// Where bulk-sending commands (`simulate`, `import`) send, and how they behave.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SendArgs {
    /// Send to this server URL instead of the one running on the data directory
    /// (needs --token).
    #[arg(long, env = "FOOTFALL_SERVER")]
    pub server: Option<String>,
    /// Bearer token for --server (an ingest key of the site, or the admin token).
    #[arg(long, env = "FOOTFALL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Do not create the site when it does not exist.
    #[arg(long)]
    pub no_create_site: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

impl SendArgs {
    /// The target given explicitly with `--server` and `--token`, if any (it wins over
    /// the data directory's server in `run`).
    pub fn explicit_target(&self) -> anyhow::Result<Option<Target>> {
        match (&self.server, &self.token) {
            (Some(url), Some(token)) => Ok(Some(Target {
                base_url: url.trim_end_matches('/').to_string(),
                token: token.clone(),
            })),
            (Some(_), None) => bail!("--server needs --token (or FOOTFALL_TOKEN)"),
            _ => Ok(None),
        }
    }
}

/// What a simulation sent and what the server said about it.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Events sent (all kinds).
    pub sent: u64,
    /// Events the server accepted (stored or dropped as duplicates/bots).
    pub accepted: u64,
    /// Events the server rejected individually.
    pub rejected: u64,
    /// Events sent that count in the `events` metric (everything but engagement).
    pub non_engagement: u64,
    /// Page views sent.
    pub pageviews: u64,
    /// Up to five rejection messages, for the user.
    pub rejection_samples: Vec<String>,
    /// From the first request to the last response.
    pub elapsed: Duration,
    /// First and last event time (ms since the epoch).
    pub first_ts_ms: i64,
    pub last_ts_ms: i64,
}

impl Summary {
    pub fn events_per_sec(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Entry point of `footfall simulate`.
pub async fn run(target: Target, args: SimulateArgs) -> anyhow::Result<()> {
    let target = args.send.explicit_target()?.unwrap_or(target);
    let s = send(&target, &args).await?;
    let span = match args.minutes {
        Some(m) => format!("{m} minutes"),
        None => format!("{} days", args.days),
    };
    println!(
        "simulated {} events ({} page views) for {} over {span} (seed {})",
        s.sent, s.pageviews, args.site, args.seed
    );
    println!(
        "sent {} events in {:.1} s ({:.0} events/s): {} accepted, {} rejected",
        s.sent,
        s.elapsed.as_secs_f64(),
        s.events_per_sec(),
        s.accepted,
        s.rejected
    );
    for msg in &s.rejection_samples {
        println!("  rejected: {msg}");
    }
    Ok(())
}

/// Generates and sends the traffic described by `args`; returns the totals. Used by
/// `run` and by `footfall bench` to load data.
pub async fn send(target: &Target, args: &SimulateArgs) -> anyhow::Result<Summary> {
    if args.site.is_empty() {
        bail!("--site must not be empty");
    }
    if args.days == 0 || args.minutes == Some(0) {
        bail!("--days and --minutes must be at least 1");
    }
    let spec = GenSpec::from_args(args)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .context("building the HTTP client")?;
    if !args.send.no_create_site {
        ensure_site(&client, target, &args.site).await;
    }

    let pb = if args.send.quiet {
        ProgressBar::hidden()
    } else {
        let pb = ProgressBar::new(args.events);
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} events  {per_sec}  ETA {eta}",
        ) {
            pb.set_style(style);
        }
        pb
    };

    // CPU-bound generation on its own thread; a small channel bounds memory and keeps
    // `concurrency` requests in flight.
    let concurrency = args.concurrency.max(1);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(concurrency * 2);
    let batch = args.batch.max(1);
    let generator = std::thread::Builder::new()
        .name("simulate-gen".into())
        .spawn(move || {
            for b in Batches::new(spec, batch) {
                if tx.blocking_send(b).is_err() {
                    break; // sender side failed; stop generating
                }
            }
        })
        .context("starting the generator thread")?;
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let result = post_batches(&client, target, stream, concurrency, &pb).await;
    pb.finish_and_clear();
    // The receiver is dropped by now, so the thread ends promptly.
    if generator.join().is_err() {
        bail!("the traffic generator panicked");
    }
    result
}

/// Creates the site if the admin API is there and it does not exist yet. Any failure is
/// left for the ingestion requests to report (e.g. a site key cannot create sites).
pub(crate) async fn ensure_site(client: &reqwest::Client, target: &Target, site: &str) {
    let url = format!("{}/api/admin/sites", target.base_url);
    let body = serde_json::json!({ "domain": site, "timezone": "UTC" });
    if let Ok(resp) = client
        .post(url)
        .bearer_auth(&target.token)
        .json(&body)
        .send()
        .await
        && resp.status().is_success()
    {
        eprintln!("created site {site} (timezone UTC)");
    }
}

/// One request body: a JSON array of events (shared bytes: the bench sends the same body
/// to footfall and to its baseline).
pub(crate) struct Batch {
    pub body: Bytes,
    pub events: u64,
    pub non_engagement: u64,
    pub pageviews: u64,
    pub first_ts_ms: i64,
    pub last_ts_ms: i64,
}

/// Posts batches with `concurrency` requests in flight; retries 503/429 (after
/// Retry-After) and transport errors (safe: events carry ids).
pub(crate) async fn post_batches<S>(
    client: &reqwest::Client,
    target: &Target,
    batches: S,
    concurrency: usize,
    pb: &ProgressBar,
) -> anyhow::Result<Summary>
where
    S: futures::Stream<Item = Batch>,
{
    let url = format!("{}/api/v1/events", target.base_url);
    let accepted = AtomicU64::new(0);
    let rejected = AtomicU64::new(0);
    let sent = AtomicU64::new(0);
    let non_engagement = AtomicU64::new(0);
    let pageviews = AtomicU64::new(0);
    let first_ts = AtomicU64::new(u64::MAX);
    let last_ts = AtomicU64::new(0);
    let samples = Mutex::new(Vec::<String>::new());
    let start = Instant::now();
    batches
        .map(Ok::<Batch, anyhow::Error>)
        .try_for_each_concurrent(concurrency, |b| {
            let (url, accepted, rejected, sent) = (&url, &accepted, &rejected, &sent);
            let (non_engagement, pageviews, samples) = (&non_engagement, &pageviews, &samples);
            let (first_ts, last_ts) = (&first_ts, &last_ts);
            async move {
                let reply = post_one(client, url, &target.token, b.body).await?;
                accepted.fetch_add(reply.accepted, Ordering::Relaxed);
                rejected.fetch_add(reply.rejected, Ordering::Relaxed);
                sent.fetch_add(b.events, Ordering::Relaxed);
                non_engagement.fetch_add(b.non_engagement, Ordering::Relaxed);
                pageviews.fetch_add(b.pageviews, Ordering::Relaxed);
                first_ts.fetch_min(b.first_ts_ms.max(0) as u64, Ordering::Relaxed);
                last_ts.fetch_max(b.last_ts_ms.max(0) as u64, Ordering::Relaxed);
                if !reply.samples.is_empty()
                    && let Ok(mut s) = samples.lock()
                {
                    let room = 5usize.saturating_sub(s.len());
                    s.extend(reply.samples.into_iter().take(room));
                }
                pb.inc(b.events);
                Ok(())
            }
        })
        .await?;
    let first = first_ts.load(Ordering::Relaxed);
    Ok(Summary {
        sent: sent.load(Ordering::Relaxed),
        accepted: accepted.load(Ordering::Relaxed),
        rejected: rejected.load(Ordering::Relaxed),
        non_engagement: non_engagement.load(Ordering::Relaxed),
        pageviews: pageviews.load(Ordering::Relaxed),
        rejection_samples: samples.into_inner().unwrap_or_default(),
        elapsed: start.elapsed(),
        first_ts_ms: if first == u64::MAX { 0 } else { first as i64 },
        last_ts_ms: last_ts.load(Ordering::Relaxed) as i64,
    })
}

pub(crate) struct Reply {
    pub accepted: u64,
    pub rejected: u64,
    /// Accepted ids the server already had (`duplicates` in the reply).
    pub duplicates: u64,
    pub samples: Vec<String>,
    /// Up to five rejections as (index in the batch, message).
    pub rejected_at: Vec<(usize, String)>,
}

pub(crate) async fn post_one(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: Bytes,
) -> anyhow::Result<Reply> {
    let mut busy_retries = 0u32;
    let mut io_retries = 0u32;
    loop {
        let resp = client
            .post(url)
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) if io_retries < 5 => {
                io_retries += 1;
                tokio::time::sleep(Duration::from_millis(200 << io_retries)).await;
                tracing::debug!("retrying bulk request after {e}");
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("POST {url}")),
        };
        let status = resp.status();
        if (status.as_u16() == 503 || status.as_u16() == 429) && busy_retries < 300 {
            busy_retries += 1;
            let wait = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.2)
                .clamp(0.05, 10.0);
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
            continue;
        }
        let text = resp.bytes().await.unwrap_or_default();
        if !status.is_success() {
            let msg = serde_json::from_slice::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
                .unwrap_or_else(|| String::from_utf8_lossy(&text).chars().take(300).collect());
            bail!("POST {url} answered {status}: {msg}");
        }
        let v: serde_json::Value = serde_json::from_slice(&text)
            .with_context(|| format!("POST {url}: the reply is not JSON"))?;
        let rejected_list = v
            .get("rejected")
            .and_then(|r| r.as_array())
            .cloned()
            .unwrap_or_default();
        let samples = rejected_list
            .iter()
            .take(5)
            .map(|r| {
                let err = r.get("error").and_then(|e| e.as_str()).unwrap_or("?");
                match r.get("index") {
                    Some(i) => format!("event {i} of a batch: {err}"),
                    None => err.to_string(),
                }
            })
            .collect();
        let rejected_at = rejected_list
            .iter()
            .take(5)
            .map(|r| {
                let index = r.get("index").and_then(|i| i.as_u64()).unwrap_or(0) as usize;
                let err = r.get("error").and_then(|e| e.as_str()).unwrap_or("?");
                (index, err.to_string())
            })
            .collect();
        let count = |key: &str| v.get(key).and_then(|a| a.as_u64()).unwrap_or(0);
        return Ok(Reply {
            accepted: count("accepted"),
            rejected: rejected_list.len() as u64,
            duplicates: count("duplicates"),
            samples,
            rejected_at,
        });
    }
}

// ---------------------------------------------------------------------------------------
// Traffic model
// ---------------------------------------------------------------------------------------

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// Sessions of one visitor start at least this long after the visitor's last event
/// (the server's inactivity timeout is 30 minutes).
const SESSION_GAP_MS: i64 = 31 * 60 * 1000;
const NONE8: u8 = u8::MAX;
const NONE16: u16 = u16::MAX;

/// What to generate.
#[derive(Debug, Clone)]
pub(crate) struct GenSpec {
    pub site: String,
    pub events: u64,
    /// Length of the traffic window, ending at `end_ms`.
    pub span_ms: i64,
    pub seed: u64,
    /// End of the traffic window, ms since the epoch.
    pub end_ms: i64,
}

impl GenSpec {
    pub fn from_args(args: &SimulateArgs) -> anyhow::Result<Self> {
        let end_ms = match &args.end {
            Some(s) => chrono::DateTime::parse_from_rfc3339(s)
                .with_context(|| format!("--end {s:?} is not an RFC 3339 time"))?
                .timestamp_millis(),
            None => now_ms(),
        };
        Ok(GenSpec {
            site: args.site.clone(),
            events: args.events,
            span_ms: match args.minutes {
                Some(m) => i64::from(m.max(1)) * 60_000,
                None => i64::from(args.days.max(1)) * DAY_MS,
            },
            seed: args.seed,
            end_ms,
        })
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
enum Kind {
    Pageview,
    Engagement,
    Signup,
    Download,
    Outbound,
}

/// One generated event, compact until it is written out.
#[derive(Clone, Copy, Debug)]
struct Ev {
    ts: i64,
    /// Generation order: the event id, and the tie-break that keeps a visitor's events
    /// in order when they share a millisecond.
    seq: u64,
    visitor: u32,
    kind: Kind,
    page: u16,
    /// Previous page of the visit (internal referrer), or NONE16 on entry.
    prev: u16,
    /// External referrer index (entry page view only), or NONE8.
    src: u8,
    /// UTM query index (entry page view only), or NONE8.
    utm: u8,
    prop: u8,
    sd: u8,
    e_ms: u32,
}

/// Inverse-CDF sampler over weighted choices.
pub(crate) struct Cdf(Vec<f64>);

impl Cdf {
    fn from_weights(w: &[f64]) -> Self {
        let total: f64 = w.iter().sum();
        let mut acc = 0.0;
        Cdf(w
            .iter()
            .map(|x| {
                acc += x / total;
                acc
            })
            .collect())
    }
    fn zipf(n: usize, s: f64) -> Self {
        let w: Vec<f64> = (1..=n).map(|k| 1.0 / (k as f64).powf(s)).collect();
        Self::from_weights(&w)
    }
    fn sample(&self, u: f64) -> usize {
        self.0.partition_point(|&c| c < u).min(self.0.len() - 1)
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Generates events one hour of event time at a time, each hour sorted by time.
pub(crate) struct Generator {
    rng: SmallRng,
    pools: &'static Pools,
    start_ms: i64,
    end_ms: i64,
    /// Events to generate in each hour window (sums to the total).
    budgets: Vec<u64>,
    window: usize,
    /// Last event time of each visitor (i64::MIN = never seen).
    last_ts: Vec<i64>,
    population: usize,
    /// Events of visits that run past the current window.
    carry: Vec<Ev>,
    scratch: Vec<Ev>,
    seq: u64,
}

impl Generator {
    pub fn new(spec: &GenSpec) -> Self {
        let pools = pools();
        let mut rng = SmallRng::seed_from_u64(spec.seed);
        // Align to the minute so re-runs within a minute produce identical timestamps.
        let end_ms = spec.end_ms - spec.end_ms.rem_euclid(60_000);
        let span_ms = spec.span_ms.max(60_000);
        let start_ms = end_ms - span_ms;
        // Hour windows; a span that is not whole hours ends with a shorter window.
        let hours = (span_ms as u64).div_ceil(HOUR_MS as u64) as usize;
        let days = hours.div_ceil(24);
        let spike_day = if days >= 7 {
            Some(rng.random_range(0..days))
        } else {
            None
        };
        let mut day_w = Vec::with_capacity(days);
        for d in 0..days {
            let day_start = start_ms + d as i64 * DAY_MS;
            // 1970-01-01 was a Thursday: 0 = Thursday, 2 = Saturday, 3 = Sunday.
            let weekday = day_start.div_euclid(DAY_MS).rem_euclid(7);
            let weekly = match weekday {
                2 => 0.68,
                3 => 0.74,
                _ => 1.0,
            };
            let trend = 0.85 + 0.3 * d as f64 / days as f64;
            let noise = rng.random_range(0.9..1.1);
            let spike = if spike_day == Some(d) { 2.2 } else { 1.0 };
            day_w.push(weekly * trend * noise * spike);
        }
        let mut weights = Vec::with_capacity(hours);
        for h in 0..hours {
            let hour_of_day = (start_ms + h as i64 * HOUR_MS)
                .div_euclid(HOUR_MS)
                .rem_euclid(24);
            // Peak mid-afternoon UTC (Europe's afternoon, America's morning).
            let phase = (hour_of_day as f64 - 14.0) / 24.0 * std::f64::consts::TAU;
            let diurnal = 0.3 + 0.7 * (0.5 + 0.5 * phase.cos());
            weights.push(day_w[h / 24] * diurnal);
        }
        let total_w: f64 = weights.iter().sum();
        let mut budgets = Vec::with_capacity(hours);
        let (mut acc, mut prev) = (0.0, 0u64);
        for w in &weights {
            acc += w;
            let upto = ((acc / total_w) * spec.events as f64).round() as u64;
            let upto = upto.min(spec.events);
            budgets.push(upto - prev);
            prev = upto;
        }
        if let Some(last) = budgets.last_mut() {
            *last += spec.events - prev;
        }
        let population = (spec.events / 8).max(64) as usize;
        Generator {
            rng,
            pools,
            start_ms,
            end_ms,
            budgets,
            window: 0,
            last_ts: vec![i64::MIN; population],
            population,
            carry: Vec::new(),
            scratch: Vec::with_capacity(128),
            seq: 0,
        }
    }

    /// The next hour's events, sorted by time; None when done.
    fn next_window(&mut self) -> Option<Vec<Ev>> {
        if self.window >= self.budgets.len() {
            if self.carry.is_empty() {
                return None;
            }
            let mut rest = std::mem::take(&mut self.carry);
            rest.sort_unstable_by_key(|e| (e.ts, e.seq));
            return Some(rest);
        }
        let ws = self.start_ms + self.window as i64 * HOUR_MS;
        let we = ws + HOUR_MS;
        let mut budget = self.budgets[self.window];
        self.window += 1;
        let mut out = Vec::with_capacity(budget as usize + self.carry.len());
        let mut keep = Vec::new();
        for ev in self.carry.drain(..) {
            if ev.ts < we {
                out.push(ev)
            } else {
                keep.push(ev)
            }
        }
        self.carry = keep;
        while budget > 0 {
            let start = ws
                + self
                    .rng
                    .random_range(0..(self.end_ms - ws).clamp(1, HOUR_MS));
            let visitor = self.pick_visitor(start);
            self.make_visit(start, visitor);
            self.scratch.truncate(budget as usize);
            budget -= self.scratch.len() as u64;
            if let Some(last) = self.scratch.last() {
                self.last_ts[visitor as usize] = last.ts;
            }
            for ev in self.scratch.drain(..) {
                if ev.ts < we {
                    out.push(ev)
                } else {
                    self.carry.push(ev)
                }
            }
        }
        out.sort_unstable_by_key(|e| (e.ts, e.seq));
        Some(out)
    }

    /// A visitor free at `start` (last event over 30 min before): mostly the power-law
    /// population, falling back to uniform picks, then to a brand-new visitor.
    fn pick_visitor(&mut self, start: i64) -> u32 {
        let free = |last: i64| last == i64::MIN || last + SESSION_GAP_MS < start;
        for attempt in 0..8 {
            let v = if attempt < 4 {
                // Rank density ~ x^-0.375: a few heavy returners, a long tail of one-offs.
                let u: f64 = self.rng.random();
                ((u.powf(1.6) * self.population as f64) as usize).min(self.population - 1)
            } else {
                self.rng.random_range(0..self.last_ts.len())
            };
            if free(self.last_ts[v]) {
                return v as u32;
            }
        }
        self.last_ts.push(i64::MIN);
        (self.last_ts.len() - 1) as u32
    }

    /// Fills `scratch` with one visit, in time order.
    fn make_visit(&mut self, start: i64, visitor: u32) {
        let p = self.pools;
        let rng = &mut self.rng;
        self.scratch.clear();
        let src = p.ref_cdf.sample(rng.random()) as u8;
        let utm = if rng.random_bool(0.06) {
            rng.random_range(0..p.utms.len()) as u8
        } else {
            NONE8
        };
        let mut page = p.page_cdf.sample(rng.random()) as u16;
        let mut prev = NONE16;
        let mut n_pv = 1;
        if rng.random_bool(0.5) {
            n_pv += 1;
            while n_pv < 30 && rng.random_bool(0.68) {
                n_pv += 1;
            }
        }
        let mut t = 0i64;
        let base = Ev {
            ts: 0,
            seq: 0,
            visitor,
            kind: Kind::Pageview,
            page,
            prev,
            src: NONE8,
            utm: NONE8,
            prop: 0,
            sd: 0,
            e_ms: 0,
        };
        for i in 0..n_pv {
            let entry = i == 0;
            self.scratch.push(Ev {
                ts: t,
                page,
                prev,
                src: if entry { src } else { NONE8 },
                utm: if entry { utm } else { NONE8 },
                ..base
            });
            // Log-uniform dwell between 4 s and 4 min.
            let dwell = (rng.random_range(4_000f64.ln()..240_000f64.ln())).exp() as i64;
            let r: f64 = rng.random();
            let custom = if r < 0.015 {
                Some((Kind::Signup, rng.random_range(0..p.signup_props.len())))
            } else if r < 0.045 {
                Some((Kind::Download, rng.random_range(0..p.download_props.len())))
            } else if r < 0.085 {
                Some((Kind::Outbound, rng.random_range(0..p.outbound_props.len())))
            } else {
                None
            };
            if let Some((kind, prop)) = custom {
                self.scratch.push(Ev {
                    ts: t + dwell / 2,
                    kind,
                    page,
                    prop: prop as u8,
                    ..base
                });
            }
            if rng.random_bool(0.55) {
                let engaged = (dwell as f64 * rng.random_range(0.35..1.0)) as u32;
                let sd = (10.0 + 90.0 * rng.random::<f64>().sqrt()) as u8;
                self.scratch.push(Ev {
                    ts: t + dwell - 300,
                    kind: Kind::Engagement,
                    page,
                    sd,
                    e_ms: engaged,
                    ..base
                });
            }
            t += dwell;
            prev = page;
            page = p.page_cdf.sample(rng.random()) as u16;
        }
        // Visits near the end of the window are compressed so no event is in the future.
        let last_off = self.scratch.last().map_or(0, |e| e.ts);
        let room = self.end_ms - 1 - start;
        let scale = if last_off > room && last_off > 0 {
            room.max(0) as f64 / last_off as f64
        } else {
            1.0
        };
        for ev in &mut self.scratch {
            ev.ts = start + (ev.ts as f64 * scale) as i64;
            ev.seq = self.seq;
            self.seq += 1;
        }
    }
}

/// Turns the generator's stream into request bodies of `batch` events.
pub(crate) struct Batches {
    generator: Generator,
    enc: Encoder,
    pending: VecDeque<Ev>,
    batch: usize,
}

impl Batches {
    pub fn new(spec: GenSpec, batch: usize) -> Self {
        Batches {
            generator: Generator::new(&spec),
            enc: Encoder::new(&spec.site, spec.seed),
            pending: VecDeque::new(),
            batch: batch.max(1),
        }
    }
}

impl Iterator for Batches {
    type Item = Batch;
    fn next(&mut self) -> Option<Batch> {
        while self.pending.len() < self.batch {
            match self.generator.next_window() {
                Some(w) => self.pending.extend(w),
                None => break,
            }
        }
        if self.pending.is_empty() {
            return None;
        }
        let n = self.batch.min(self.pending.len());
        let mut body = Vec::with_capacity(n * 360 + 2);
        let mut out = Batch {
            body: Bytes::new(),
            events: n as u64,
            non_engagement: 0,
            pageviews: 0,
            first_ts_ms: i64::MAX,
            last_ts_ms: i64::MIN,
        };
        body.push(b'[');
        for (i, ev) in self.pending.drain(..n).enumerate() {
            if i > 0 {
                body.push(b',');
            }
            self.enc.write(&mut body, &ev);
            if ev.kind != Kind::Engagement {
                out.non_engagement += 1;
            }
            if ev.kind == Kind::Pageview {
                out.pageviews += 1;
            }
            out.first_ts_ms = out.first_ts_ms.min(ev.ts);
            out.last_ts_ms = out.last_ts_ms.max(ev.ts);
        }
        body.push(b']');
        out.body = Bytes::from(body);
        Some(out)
    }
}

/// Writes events as bulk-API JSON from pre-escaped fragments.
struct Encoder {
    seed: u64,
    pools: &'static Pools,
    /// `,"domain":"<site>","url":"https://<site>` (the path follows).
    domain_url: Vec<u8>,
    /// `https://<site>` inside a JSON string, for internal referrers.
    origin: Vec<u8>,
    date_cache: (i64, [u8; 10]),
}

impl Encoder {
    fn new(site: &str, seed: u64) -> Self {
        let quoted = serde_json::to_string(site).unwrap_or_else(|_| "\"\"".into());
        let inner = &quoted[1..quoted.len() - 1];
        Encoder {
            seed,
            pools: pools(),
            domain_url: format!(",\"domain\":{quoted},\"url\":\"https://{inner}").into_bytes(),
            origin: format!("https://{inner}").into_bytes(),
            date_cache: (i64::MIN, [0; 10]),
        }
    }

    fn write(&mut self, out: &mut Vec<u8>, ev: &Ev) {
        let p = self.pools;
        let page = &p.pages[ev.page as usize];
        out.extend_from_slice(b"{\"id\":\"");
        push_hex(out, splitmix(self.seed ^ splitmix(ev.seq ^ 0x5EED)));
        out.extend_from_slice(b"\",\"name\":");
        out.extend_from_slice(match ev.kind {
            Kind::Pageview => b"\"pageview\"",
            Kind::Engagement => b"\"engagement\"",
            Kind::Signup => b"\"Signup\"",
            Kind::Download => b"\"Download\"",
            Kind::Outbound => b"\"Outbound Link: Click\"",
        });
        out.extend_from_slice(&self.domain_url);
        out.extend_from_slice(page.path.as_bytes());
        if ev.utm != NONE8 {
            out.extend_from_slice(p.utms[ev.utm as usize].as_bytes());
        }
        out.push(b'"');
        if ev.kind == Kind::Pageview {
            out.extend_from_slice(b",\"referrer\":\"");
            if ev.prev != NONE16 {
                out.extend_from_slice(&self.origin);
                out.extend_from_slice(p.pages[ev.prev as usize].path.as_bytes());
            } else if ev.src != NONE8 {
                out.extend_from_slice(p.referrers[ev.src as usize].as_bytes());
            }
            out.push(b'"');
            out.extend_from_slice(b",\"title\":");
            out.extend_from_slice(page.title_json.as_bytes());
        }
        out.extend_from_slice(b",\"timestamp\":\"");
        self.write_ts(out, ev.ts);
        out.extend_from_slice(b"\",\"visitor_id\":\"");
        let vh = splitmix(self.seed.rotate_left(17) ^ splitmix(ev.visitor as u64 ^ 0xF00F));
        push_hex(out, vh);
        out.extend_from_slice(b"\",\"ip\":\"");
        out.extend_from_slice(p.ips[(vh >> 40) as usize % p.ips.len()].as_bytes());
        out.extend_from_slice(b"\",\"user_agent\":");
        out.extend_from_slice(p.uas[p.ua_cdf.sample(unit(splitmix(vh)))].as_bytes());
        match ev.kind {
            Kind::Engagement => {
                out.extend_from_slice(b",\"e\":");
                push_u64(out, ev.e_ms as u64);
                out.extend_from_slice(b",\"sd\":");
                push_u64(out, ev.sd as u64);
            }
            Kind::Signup => out.extend_from_slice(p.signup_props[ev.prop as usize].as_bytes()),
            Kind::Download => out.extend_from_slice(p.download_props[ev.prop as usize].as_bytes()),
            Kind::Outbound => out.extend_from_slice(p.outbound_props[ev.prop as usize].as_bytes()),
            Kind::Pageview => {}
        }
        out.push(b'}');
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`, with the date part cached per day.
    fn write_ts(&mut self, out: &mut Vec<u8>, ms: i64) {
        let day = ms.div_euclid(DAY_MS);
        if self.date_cache.0 != day {
            let (y, m, d) = civil_from_days(day);
            let mut buf = Vec::with_capacity(10);
            push_padded(&mut buf, y.clamp(0, 9999) as u64, 4);
            buf.push(b'-');
            push_padded(&mut buf, m as u64, 2);
            buf.push(b'-');
            push_padded(&mut buf, d as u64, 2);
            let mut arr = [0u8; 10];
            arr.copy_from_slice(&buf[..10]);
            self.date_cache = (day, arr);
        }
        out.extend_from_slice(&self.date_cache.1);
        let rem = ms.rem_euclid(DAY_MS) as u64;
        out.push(b'T');
        push_padded(out, rem / HOUR_MS as u64, 2);
        out.push(b':');
        push_padded(out, rem / 60_000 % 60, 2);
        out.push(b':');
        push_padded(out, rem / 1000 % 60, 2);
        out.push(b'.');
        push_padded(out, rem % 1000, 3);
        out.push(b'Z');
    }
}

/// Days since 1970-01-01 to (year, month, day) (proleptic Gregorian; H. Hinnant).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn push_padded(out: &mut Vec<u8>, mut v: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    while v > 0 || i == buf.len() {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    let digits = buf.len() - i;
    for _ in digits..width {
        out.push(b'0');
    }
    out.extend_from_slice(&buf[i..]);
}

fn push_u64(out: &mut Vec<u8>, v: u64) {
    push_padded(out, v, 1);
}

fn push_hex(out: &mut Vec<u8>, v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..16).rev() {
        out.push(HEX[((v >> (shift * 4)) & 0xF) as usize]);
    }
}

// ---------------------------------------------------------------------------------------
// Pools of realistic values (shared with the benchmark's /api/event load generator)
// ---------------------------------------------------------------------------------------

pub(crate) struct Page {
    /// Path, safe inside a JSON string.
    pub path: String,
    /// Title as a JSON string literal (with quotes).
    pub title_json: String,
}

pub(crate) struct Pools {
    pub pages: Vec<Page>,
    pub page_cdf: Cdf,
    /// External referrer URLs, safe inside a JSON string ("" = direct).
    pub referrers: Vec<&'static str>,
    ref_cdf: Cdf,
    /// Query strings with UTM tags appended to entry URLs.
    pub utms: Vec<&'static str>,
    /// User agents as JSON string literals (with quotes).
    pub uas: Vec<String>,
    ua_cdf: Cdf,
    /// Public-looking client IPs from residential ranges of many countries (and the
    /// MaxMind test database's networks, so a test GeoIP database shows countries too).
    pub ips: Vec<String>,
    signup_props: Vec<&'static str>,
    download_props: Vec<&'static str>,
    outbound_props: Vec<&'static str>,
}

impl Pools {
    /// A page index, Zipf-distributed.
    pub fn sample_page(&self, u: f64) -> usize {
        self.page_cdf.sample(u)
    }
    /// A referrer index, Zipf-distributed.
    pub fn sample_referrer(&self, u: f64) -> usize {
        self.ref_cdf.sample(u)
    }
    /// A raw user agent string, weighted like real traffic.
    pub fn sample_ua(&self, u: f64) -> &'static str {
        UAS[self.ua_cdf.sample(u)]
    }
}

pub(crate) fn pools() -> &'static Pools {
    static POOLS: std::sync::OnceLock<Pools> = std::sync::OnceLock::new();
    POOLS.get_or_init(build_pools)
}

/// Real user agents, most common first (weights follow a Zipf law over this order).
pub(crate) const UAS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.111 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 OPR/109.0.0.0",
    "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36 EdgA/124.0.2478.64",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Gecko/20100101 Firefox/115.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0",
    "Mozilla/5.0 (Linux; U; Android 13; en-us; 2201117TY Build/TKQ1.221114.001) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/112.0.5615.136 Mobile Safari/537.36 XiaoMi/MiuiBrowser/14.7.10-gn",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 YaBrowser/24.4.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 12; SM-T870) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
];

/// IPv4 ranges (first address, size, weight).
const IP_RANGES: &[([u8; 4], u32, f64)] = &[
    ([73, 0, 0, 0], 1 << 24, 16.0),     // US, Comcast
    ([12, 81, 96, 0], 1 << 13, 4.0),    // US, AT&T
    ([216, 160, 83, 56], 8, 2.0),       // US (MaxMind test network)
    ([99, 224, 0, 0], 1 << 21, 3.0),    // CA, Rogers
    ([86, 128, 0, 0], 1 << 22, 6.0),    // GB, BT
    ([81, 2, 69, 160], 32, 3.0),        // GB (MaxMind test network)
    ([2, 125, 160, 216], 8, 1.0),       // GB (MaxMind test network)
    ([79, 192, 0, 0], 1 << 22, 8.0),    // DE, Deutsche Telekom
    ([90, 0, 0, 0], 1 << 23, 5.0),      // FR, Orange
    ([77, 160, 0, 0], 1 << 20, 3.0),    // NL, KPN
    ([83, 32, 0, 0], 1 << 21, 3.0),     // ES, Telefonica
    ([83, 0, 0, 0], 1 << 21, 2.0),      // PL, Orange Polska
    ([89, 160, 20, 128], 128, 3.0),     // SE (MaxMind test network)
    ([126, 0, 0, 0], 1 << 24, 4.0),     // JP, SoftBank
    ([49, 36, 0, 0], 1 << 18, 5.0),     // IN, Reliance Jio
    ([177, 0, 0, 0], 1 << 22, 4.0),     // BR
    ([1, 128, 0, 0], 1 << 21, 3.0),     // AU, Telstra
    ([175, 16, 199, 0], 256, 2.0),      // CN (MaxMind test network)
    ([202, 196, 224, 0], 1 << 12, 1.0), // PH (MaxMind test network)
    ([67, 43, 156, 0], 256, 0.5),       // BT (MaxMind test network)
];

/// A random address from the weighted ranges (never .0 or .255 in the last byte).
pub(crate) fn random_ip(rng: &mut impl Rng, range_cdf: &Cdf) -> String {
    let (first, size, _) = IP_RANGES[range_cdf.sample(rng.random())];
    let base = u32::from_be_bytes(first);
    let mut ip = base.wrapping_add(rng.random_range(0..size));
    if size > 256 {
        ip = (ip & !0xFF) | rng.random_range(1..255);
    }
    std::net::Ipv4Addr::from(ip).to_string()
}

pub(crate) fn ip_range_cdf() -> Cdf {
    Cdf::from_weights(&IP_RANGES.iter().map(|r| r.2).collect::<Vec<_>>())
}

fn build_pools() -> Pools {
    // Fixed seed: the pools are part of the model, not of a run.
    let mut rng = SmallRng::seed_from_u64(0xF007_FA11);
    let mut pages: Vec<(String, String)> = [
        ("/", "Home"),
        ("/pricing", "Pricing"),
        ("/features", "Features"),
        ("/docs", "Documentation"),
        ("/blog", "Blog"),
        ("/about", "About us"),
        ("/signup", "Sign up"),
        ("/login", "Log in"),
        ("/download", "Download"),
        ("/changelog", "Changelog"),
        ("/contact", "Contact"),
        ("/integrations", "Integrations"),
        ("/customers", "Customers"),
        ("/careers", "Careers"),
        ("/privacy", "Privacy policy"),
        ("/terms", "Terms of service"),
        ("/security", "Security"),
        ("/status", "Status"),
        ("/compare", "Compare"),
        ("/roadmap", "Roadmap"),
    ]
    .iter()
    .map(|(p, t)| (p.to_string(), t.to_string()))
    .collect();
    let adjectives = [
        "why",
        "how",
        "simple",
        "private",
        "fast",
        "honest",
        "lightweight",
        "open",
        "better",
        "cookieless",
    ];
    let topics = [
        "web-analytics",
        "gdpr-compliance",
        "self-hosting",
        "page-speed",
        "bounce-rate",
        "utm-tags",
        "dashboards",
    ];
    for a in adjectives {
        for t in topics {
            pages.push((
                format!("/blog/{a}-{t}"),
                format!("{a} {t}").replace('-', " "),
            ));
        }
    }
    let sections = [
        "getting-started",
        "api",
        "tracker",
        "self-hosting",
        "integrations",
    ];
    let doc_topics = [
        "overview",
        "install",
        "configuration",
        "events",
        "goals",
        "filters",
        "sessions",
        "bots",
        "countries",
        "keys",
        "limits",
        "upgrade",
        "backup",
        "proxy",
        "spa",
        "faq",
    ];
    for s in sections {
        for t in doc_topics {
            pages.push((
                format!("/docs/{s}/{t}"),
                format!("{t} - {s}").replace('-', " "),
            ));
        }
    }
    for n in [
        "wordpress",
        "shopify",
        "nextjs",
        "hugo",
        "gatsby",
        "ghost",
        "webflow",
        "django",
        "rails",
        "laravel",
        "vue",
        "svelte",
        "astro",
        "jekyll",
        "docusaurus",
    ] {
        pages.push((format!("/integrations/{n}"), format!("{n} integration")));
    }
    for n in [
        "acme",
        "globex",
        "initech",
        "umbrella",
        "hooli",
        "stark",
        "wayne",
        "tyrell",
        "cyberdyne",
        "soylent",
        "wonka",
        "gringotts",
        "aperture",
        "monarch",
        "vandelay",
    ] {
        pages.push((format!("/customers/{n}"), format!("{n} case study")));
    }
    // Mix the long tail so popularity does not follow the category order.
    for i in (11..pages.len()).rev() {
        let j = rng.random_range(10..=i);
        pages.swap(i, j);
    }
    let pages: Vec<Page> = pages
        .into_iter()
        .map(|(path, title)| Page {
            path,
            title_json: serde_json::to_string(&format!("{title} · Acme Analytics"))
                .unwrap_or_else(|_| "\"\"".into()),
        })
        .collect();
    let page_cdf = Cdf::zipf(pages.len(), 1.1);

    let referrers = vec![
        "https://www.google.com/",
        "", // direct
        "https://www.bing.com/",
        "https://duckduckgo.com/",
        "https://t.co/x7Fq2LmZ9a",
        "https://www.reddit.com/r/selfhosted/comments/1c9x2b4/",
        "https://news.ycombinator.com/item?id=40123456",
        "https://github.com/footfall/footfall",
        "https://l.facebook.com/",
        "https://www.google.de/",
        "https://search.brave.com/",
        "https://www.linkedin.com/",
        "https://lobste.rs/s/x2kq7c/privacy_friendly_analytics",
        "https://jvns.example/blog/2024/analytics/",
        "https://someones.substack.example/p/we-dropped-google-analytics",
        "https://devnotes.example/posts/self-hosted-analytics",
        "https://weekly.example/issues/212",
    ];
    let ref_cdf = Cdf::zipf(referrers.len(), 1.0);
    let utms = vec![
        "?utm_source=newsletter&utm_medium=email&utm_campaign=weekly-digest",
        "?utm_source=twitter&utm_medium=social&utm_campaign=launch",
        "?utm_source=google&utm_medium=cpc&utm_campaign=brand&utm_term=privacy+analytics",
        "?utm_source=producthunt&utm_medium=referral&utm_campaign=launch",
        "?ref=alternativeto",
    ];
    let uas = UAS
        .iter()
        .map(|u| serde_json::to_string(u).unwrap_or_else(|_| "\"\"".into()))
        .collect();
    let ua_cdf = Cdf::zipf(UAS.len(), 0.9);
    let range_cdf = ip_range_cdf();
    let ips = (0..8192).map(|_| random_ip(&mut rng, &range_cdf)).collect();
    Pools {
        pages,
        page_cdf,
        referrers,
        ref_cdf,
        utms,
        uas,
        ua_cdf,
        ips,
        signup_props: vec![
            r#","props":{"plan":"free"}"#,
            r#","props":{"plan":"pro"}"#,
            r#","props":{"plan":"team"}"#,
        ],
        download_props: vec![
            r#","props":{"file":"footfall-linux-x86_64.tar.gz"}"#,
            r#","props":{"file":"footfall-macos-arm64.zip"}"#,
            r#","props":{"file":"whitepaper.pdf"}"#,
        ],
        outbound_props: vec![
            r#","props":{"url":"https://github.com/footfall/footfall"}"#,
            r#","props":{"url":"https://twitter.com/footfall"}"#,
            r#","props":{"url":"https://discord.gg/footfall"}"#,
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn spec(events: u64, days: u32) -> GenSpec {
        GenSpec {
            site: "sim.example".into(),
            events,
            span_ms: i64::from(days) * DAY_MS,
            seed: 7,
            end_ms: 1_717_000_000_000,
        }
    }

    fn all_events(spec: GenSpec, batch: usize) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        for b in Batches::new(spec, batch) {
            let v: Vec<serde_json::Value> =
                serde_json::from_slice(&b.body).expect("generated body is JSON");
            assert_eq!(v.len() as u64, b.events);
            out.extend(v);
        }
        out
    }

    #[test]
    fn civil_dates_match_chrono() {
        for day in [-1000i64, 0, 59, 365, 11_016, 19_000, 19_782, 20_000, 50_000] {
            let (y, m, d) = civil_from_days(day);
            let c = chrono::DateTime::from_timestamp(day * 86_400, 0)
                .expect("in range")
                .date_naive();
            assert_eq!(format!("{y:04}-{m:02}-{d:02}"), c.to_string());
        }
    }

    #[test]
    fn timestamps_are_rfc3339() {
        let mut enc = Encoder::new("a.example", 1);
        let mut out = Vec::new();
        let ms = 1_709_251_199_007; // 2024-02-29T23:59:59.007Z
        enc.write_ts(&mut out, ms);
        let s = String::from_utf8(out).expect("ascii");
        assert_eq!(s, "2024-02-29T23:59:59.007Z");
        let parsed = chrono::DateTime::parse_from_rfc3339(&s).expect("rfc3339");
        assert_eq!(parsed.timestamp_millis(), ms);
    }

    #[test]
    fn exact_count_in_time_order_with_unique_ids() {
        let spec = spec(20_000, 5);
        let (start, end) = (spec.end_ms - 5 * DAY_MS - 60_000, spec.end_ms);
        let events = all_events(spec, 777);
        assert_eq!(events.len(), 20_000);
        let mut ids = HashSet::new();
        let mut prev = String::new();
        let mut kinds: HashMap<String, usize> = HashMap::new();
        for e in &events {
            let ts = e["timestamp"].as_str().expect("timestamp").to_string();
            assert!(ts >= prev, "not in time order: {ts} after {prev}");
            let t = chrono::DateTime::parse_from_rfc3339(&ts)
                .expect("rfc3339")
                .timestamp_millis();
            assert!(t >= start && t < end, "{ts} outside the window");
            prev = ts;
            assert!(ids.insert(e["id"].as_str().expect("id").to_string()));
            assert!(
                e["url"]
                    .as_str()
                    .expect("url")
                    .starts_with("https://sim.example/")
            );
            assert_eq!(e["domain"], "sim.example");
            *kinds
                .entry(e["name"].as_str().expect("name").into())
                .or_default() += 1;
            if e["name"] == "engagement" {
                assert!(e["e"].as_u64().is_some() && e["sd"].as_u64().expect("sd") <= 100);
            }
        }
        let pv = kinds["pageview"] as f64 / 20_000.0;
        assert!(pv > 0.5 && pv < 0.75, "pageview share {pv}");
        assert!(kinds["engagement"] > 1000 && kinds["Signup"] > 10 && kinds["Download"] > 10);
    }

    #[test]
    fn a_span_of_minutes_keeps_every_event_inside_it() {
        let spec = GenSpec {
            span_ms: 30 * 60_000,
            ..spec(12_000, 1)
        };
        // The end is aligned down to the minute.
        let end = spec.end_ms - spec.end_ms.rem_euclid(60_000);
        let events = all_events(spec, 1000);
        assert_eq!(events.len(), 12_000);
        for e in &events {
            let t = chrono::DateTime::parse_from_rfc3339(e["timestamp"].as_str().expect("ts"))
                .expect("rfc3339")
                .timestamp_millis();
            assert!(
                t >= end - 30 * 60_000 && t < end,
                "{t} outside the 30 minutes"
            );
        }
    }

    #[test]
    fn visits_are_separated_and_visitors_return() {
        let events = all_events(spec(30_000, 10), 5000);
        let mut last: HashMap<String, (i64, String)> = HashMap::new();
        let mut visits: HashMap<String, usize> = HashMap::new();
        for e in &events {
            let v = e["visitor_id"].as_str().expect("visitor").to_string();
            let t = chrono::DateTime::parse_from_rfc3339(e["timestamp"].as_str().expect("ts"))
                .expect("rfc3339")
                .timestamp_millis();
            let ua = e["user_agent"].as_str().expect("ua").to_string();
            let is_entry = e["name"] == "pageview"
                && !e["referrer"]
                    .as_str()
                    .expect("ref")
                    .starts_with("https://sim.example");
            if let Some((prev_t, prev_ua)) = last.get(&v) {
                let gap = t - prev_t;
                assert_eq!(&ua, prev_ua, "a visitor keeps its browser");
                // A new visit starts only after more than 30 minutes; inside a visit the
                // gaps are a few minutes at most.
                if is_entry {
                    assert!(gap > 30 * 60 * 1000, "visit starts {gap} ms after the last");
                } else {
                    assert!(gap <= 30 * 60 * 1000, "gap of {gap} ms inside a visit");
                }
            } else {
                assert!(is_entry, "a visitor's first event is an entry page view");
            }
            if is_entry {
                *visits.entry(v.clone()).or_default() += 1;
            }
            last.insert(v, (t, ua));
        }
        let returning = visits.values().filter(|&&n| n > 1).count();
        let visitors = visits.len();
        assert!(
            returning * 10 > visitors,
            "{returning} of {visitors} return"
        );
        assert!(visitors > 1000);
    }

    #[test]
    fn same_seed_same_traffic() {
        let a: Vec<Bytes> = Batches::new(spec(3000, 2), 1000).map(|b| b.body).collect();
        let b: Vec<Bytes> = Batches::new(spec(3000, 2), 1000).map(|b| b.body).collect();
        assert_eq!(a, b);
        let mut other = spec(3000, 2);
        other.seed = 8;
        let c: Vec<Bytes> = Batches::new(other, 1000).map(|b| b.body).collect();
        assert_ne!(a, c);
    }

    #[test]
    fn tiny_and_odd_sizes() {
        assert_eq!(all_events(spec(1, 1), 10).len(), 1);
        assert_eq!(all_events(spec(0, 3), 10).len(), 0);
        assert_eq!(all_events(spec(999, 1), 100).len(), 999);
    }

    #[test]
    fn site_names_are_escaped() {
        let mut s = spec(10, 1);
        s.site = "we\"ird".into();
        for e in all_events(s, 10) {
            assert_eq!(e["domain"], "we\"ird");
        }
    }
}
