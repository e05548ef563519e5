//! `footfall bench`: the figures of BENCHMARKS.md from one command.
//!
//! Starts this very binary as a footfall server on a fresh data directory (and, for the
//! ingestion ratios, as a minimal hyper server answering 202), then measures, each against
//! a baseline in the same run:
//! 1. `POST /api/event` requests/s and latency with the keep-alive load generator of
//!    `bench/load.rs`, against footfall and against the baseline, alternating, same load;
//! 2. bulk ingestion through `POST /api/v1/events` (acknowledged = durable), against the
//!    baseline server sent the same bodies, alternating;
//! 3. Stats API latency for the dashboard queries after `simulate` loaded a site (and a
//!    second one), against the same queries' SQL run directly in DuckDB once the server
//!    has stopped (`footfall bench-sql`), plus bytes per stored event and the server's
//!    resident memory.
//!
//! Every figure is the median of `--runs` runs. Progress goes to stderr, the report to
//! stdout (a table, or JSON with `--json`).

mod load;
mod procs;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::{Value, json};

use crate::simulate::{self, Batches, GenSpec, SendArgs, SimulateArgs, Target};
use procs::{Proc, WorkDir};

pub use load::baseline_server;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// POST /api/event against footfall and the baseline.
    EventApi,
    /// POST /api/v1/events.
    Bulk,
    /// Dashboard queries, storage and memory after loading --query-events.
    Queries,
}

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Requests per run against POST /api/event (for footfall and for the baseline).
    #[arg(long, default_value_t = 100_000)]
    pub events_api_requests: u64,
    /// Run each /api/event measurement for this many seconds instead of a request count.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Concurrent keep-alive connections of the load generator.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Worker threads of the load generator (it shares the machine with the server).
    #[arg(long, default_value_t = 2)]
    pub generator_threads: usize,
    /// Events per run sent to POST /api/v1/events.
    #[arg(long, default_value_t = 1_000_000)]
    pub bulk_events: u64,
    /// Events per bulk request.
    #[arg(long, default_value_t = 10_000)]
    pub bulk_batch: usize,
    /// Bulk requests in flight.
    #[arg(long, default_value_t = 4)]
    pub bulk_concurrency: usize,
    /// Events loaded with the simulator before the query benchmark.
    #[arg(long, default_value_t = 1_000_000)]
    pub query_events: u64,
    /// Days the loaded events are spread over (the dashboard shows the last 30).
    #[arg(long, default_value_t = 90)]
    pub query_days: u32,
    /// Events of a second site loaded after the first (a server holds more than one
    /// site; the queries are the first site's). 0: one site.
    #[arg(long, default_value_t = 100_000)]
    pub query_other_events: u64,
    /// Let the query server answer repeated dashboard queries from its result cache (the
    /// server's default). Off by default: the query figures are then the engine's, as on
    /// the first load of a range after new data.
    #[arg(long)]
    pub query_cache: bool,
    /// Runs per figure; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Only these parts (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Phase>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Parent directory of the benchmark's data directories (default: the temp dir).
    /// Use a real disk: fsync cost and bytes on disk are part of the figures.
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Keep the data directories and server logs (their path is printed).
    #[arg(long)]
    pub keep: bool,
    /// footfall binary to benchmark (default: this one).
    #[arg(long)]
    pub exe: Option<PathBuf>,
}

const EVENTS_SITE: &str = "api.bench.example";
const BULK_SITE: &str = "bulk.bench.example";
const QUERY_SITE: &str = "bench.example";
/// The second site of the query benchmark's store (`--query-other-events`).
const OTHER_QUERY_SITE: &str = "other.bench.example";

/// Entry point of `footfall bench`.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let exe = match &args.exe {
        Some(p) => p.clone(),
        None => std::env::current_exe().context("locating the footfall binary")?,
    };
    let parent = args.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let work = WorkDir {
        path: parent.join(format!(
            "footfall-bench-{}-{}",
            std::process::id(),
            simulate::now_ms()
        )),
        keep: args.keep,
    };
    std::fs::create_dir_all(&work.path)
        .with_context(|| format!("creating {}", work.path.display()))?;
    let want = |p: Phase| args.only.is_empty() || args.only.contains(&p);

    let mut report = Report {
        machine: Machine::detect(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        runs: args.runs,
        cores_note: format!(
            "the load generator ({} threads), the server under test and the simulator share \
             the machine's {} cores, without pinning; the CPU each used is reported",
            args.generator_threads,
            std::thread::available_parallelism().map_or(0, |n| n.get())
        ),
        events_api: None,
        bulk: None,
        queries: None,
    };
    eprintln!("footfall bench: work directory {}", work.path.display());

    if want(Phase::EventApi) || want(Phase::Bulk) {
        let data = work.path.join("ingest");
        let log = work.path.join("ingest-server.log");
        let mut server = start_footfall(&exe, &data, &log, &[]).await?;
        let target = Target {
            base_url: server.url.clone(),
            token: admin_token(&data)?,
        };
        if want(Phase::EventApi) {
            procs::cli(&exe, &data, &["site", "add", EVENTS_SITE]).await?;
            report.events_api = Some(events_api(&args, &exe, &work.path, &server).await?);
        }
        if want(Phase::Bulk) {
            procs::cli(&exe, &data, &["site", "add", BULK_SITE]).await?;
            report.bulk = Some(bulk(&args, &exe, &work.path, &server, &target).await?);
        }
        server.stop();
    }
    if want(Phase::Queries) {
        let data = work.path.join("query");
        let log = work.path.join("query-server.log");
        let cache = if args.query_cache { "true" } else { "false" };
        let mut server =
            start_footfall(&exe, &data, &log, &[("FOOTFALL_QUERY_CACHE", cache)]).await?;
        procs::cli(&exe, &data, &["site", "add", QUERY_SITE]).await?;
        let target = Target {
            base_url: server.url.clone(),
            token: admin_token(&data)?,
        };
        report.queries = Some(queries(&args, &exe, &mut server, &target, &data).await?);
    }

    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_human(&report);
    }
    if args.keep {
        eprintln!("kept {}", work.path.display());
    }
    Ok(())
}

async fn start_footfall(
    exe: &Path,
    data: &Path,
    log: &Path,
    envs: &[(&str, &str)],
) -> anyhow::Result<Proc> {
    std::fs::create_dir_all(data)?;
    let addr = procs::free_addr()?;
    let args: Vec<OsString> = vec![
        "--data".into(),
        data.into(),
        "serve".into(),
        "--listen".into(),
        addr.to_string().into(),
    ];
    eprintln!(
        "starting footfall server on {addr} (data {})",
        data.display()
    );
    let mut p = Proc::spawn("footfall server", exe, &args, envs, addr, log)?;
    p.wait_ready("/api/health", true, Duration::from_secs(120))
        .await?;
    Ok(p)
}

/// Starts this binary as `bench-baseline`: a minimal hyper server that reads each request's
/// body and answers 202, the baseline of targets 1 and 2.
async fn start_baseline(exe: &Path, work: &Path) -> anyhow::Result<Proc> {
    let addr = procs::free_addr()?;
    let args: Vec<OsString> = vec![
        "bench-baseline".into(),
        "--listen".into(),
        addr.to_string().into(),
    ];
    let mut baseline = Proc::spawn(
        "baseline server",
        exe,
        &args,
        &[],
        addr,
        &work.join("baseline.log"),
    )?;
    baseline
        .wait_ready("/", false, Duration::from_secs(20))
        .await?;
    Ok(baseline)
}

fn admin_token(data: &Path) -> anyhow::Result<String> {
    let path = data.join("admin-token");
    Ok(std::fs::read_to_string(&path)
        .with_context(|| format!("reading {}", path.display()))?
        .trim()
        .to_string())
}

// ---------------------------------------------------------------------------------------
// 1. POST /api/event
// ---------------------------------------------------------------------------------------

#[derive(Serialize, Debug, Default, Clone)]
struct LoadFigures {
    /// Medians over the runs.
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// CPU cores busy on average during the run.
    server_cpu_cores: f64,
    generator_cpu_cores: f64,
    /// Totals over the runs.
    non_2xx: u64,
    dropped: u64,
    dropped_by_reason: std::collections::BTreeMap<String, u64>,
    errors: u64,
    runs_requests_per_sec: Vec<f64>,
    runs_p99_ms: Vec<f64>,
}

#[derive(Serialize, Debug)]
struct EventsApiReport {
    connections: usize,
    requests_per_run: Option<u64>,
    seconds_per_run: Option<f64>,
    generator_threads: usize,
    footfall: LoadFigures,
    baseline: LoadFigures,
    /// footfall req/s ÷ baseline req/s (medians).
    ratio: f64,
    server_rss_bytes: Option<u64>,
    server_peak_rss_bytes: Option<u64>,
}

struct Sample {
    result: load::LoadResult,
    server_cores: f64,
    generator_cores: f64,
}

async fn events_api(
    args: &BenchArgs,
    exe: &Path,
    work: &Path,
    server: &Proc,
) -> anyhow::Result<EventsApiReport> {
    let mut baseline = start_baseline(exe, work).await?;
    let reqs = Arc::new(load::build_requests(EVENTS_SITE, 8192, 7)?);
    let duration = args.duration.map(Duration::from_secs_f64);

    // Warm-up: connections, caches, the server's first batches.
    let warm = (args.events_api_requests / 5).clamp(1_000, 20_000);
    for p in [server, &baseline] {
        measure(args, p, &reqs, warm, duration.map(|d| d / 5)).await?;
    }
    let (mut ff, mut base) = (Vec::new(), Vec::new());
    for run in 0..args.runs {
        // Alternate the order so drift (page cache, thermal) hits both alike.
        let order: [bool; 2] = if run % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for is_ff in order {
            let p = if is_ff { server } else { &baseline };
            server.wait_idle(Duration::from_secs(15)).await;
            let s = measure(args, p, &reqs, args.events_api_requests, duration).await?;
            eprintln!(
                "  /api/event run {}/{} {}: {:.0} req/s, p99 {:.2} ms",
                run + 1,
                args.runs,
                if is_ff { "footfall" } else { "baseline" },
                s.result.rps(),
                s.result.quantile_ms(0.99)
            );
            if is_ff { ff.push(s) } else { base.push(s) }
        }
    }
    baseline.stop();
    let footfall = figures(&ff);
    let baseline = figures(&base);
    Ok(EventsApiReport {
        connections: args.connections,
        requests_per_run: duration.is_none().then_some(args.events_api_requests),
        seconds_per_run: args.duration,
        generator_threads: args.generator_threads,
        ratio: footfall.requests_per_sec / baseline.requests_per_sec.max(1e-9),
        footfall,
        baseline,
        server_rss_bytes: server.rss(),
        server_peak_rss_bytes: server.peak_rss(),
    })
}

/// One load run against `p`, on a runtime of its own so the generator's thread count
/// is what `--generator-threads` says.
async fn measure(
    args: &BenchArgs,
    p: &Proc,
    reqs: &Arc<Vec<load::PreReq>>,
    requests: u64,
    duration: Option<Duration>,
) -> anyhow::Result<Sample> {
    let spec = load::LoadSpec {
        addr: p.addr,
        connections: args.connections.max(1),
        requests,
        duration,
        reqs: reqs.clone(),
    };
    let threads = args.generator_threads.max(1);
    let (s0, g0) = (p.cpu_secs(), procs::self_cpu_secs());
    let result = tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?;
        rt.block_on(load::run(spec))
    })
    .await
    .context("load generator panicked")??;
    let (s1, g1) = (p.cpu_secs(), procs::self_cpu_secs());
    let secs = result.elapsed.as_secs_f64().max(1e-9);
    let cores = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => (b - a) / secs,
        _ => f64::NAN,
    };
    Ok(Sample {
        server_cores: cores(s0, s1),
        generator_cores: cores(g0, g1),
        result,
    })
}

fn figures(samples: &[Sample]) -> LoadFigures {
    let pick = |f: fn(&Sample) -> f64| median(&samples.iter().map(f).collect::<Vec<_>>());
    LoadFigures {
        requests_per_sec: pick(|s| s.result.rps()),
        p50_ms: pick(|s| s.result.quantile_ms(0.5)),
        p99_ms: pick(|s| s.result.quantile_ms(0.99)),
        server_cpu_cores: pick(|s| s.server_cores),
        generator_cpu_cores: pick(|s| s.generator_cores),
        non_2xx: samples.iter().map(|s| s.result.non_2xx).sum(),
        dropped: samples.iter().map(|s| s.result.dropped).sum(),
        dropped_by_reason: samples
            .iter()
            .flat_map(|s| s.result.dropped_by_reason.iter())
            .fold(Default::default(), |mut acc, (k, v)| {
                *acc.entry(k.clone()).or_default() += v;
                acc
            }),
        errors: samples.iter().map(|s| s.result.errors).sum(),
        runs_requests_per_sec: samples.iter().map(|s| round2(s.result.rps())).collect(),
        runs_p99_ms: samples
            .iter()
            .map(|s| round2(s.result.quantile_ms(0.99)))
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------
// 2. POST /api/v1/events
// ---------------------------------------------------------------------------------------

#[derive(Serialize, Debug)]
struct BulkReport {
    events_per_run: u64,
    batch: usize,
    concurrency: usize,
    /// Accepted (durable) events per second, median.
    events_per_sec: f64,
    /// The same bodies sent the same way to the baseline server (it reads each and answers
    /// 202): events per second, median. Each run sends to both, alternating which first.
    baseline_events_per_sec: f64,
    baseline_runs_events_per_sec: Vec<f64>,
    /// footfall's accepted events/s ÷ the baseline's (medians).
    ratio: f64,
    /// Events per second until the last one was visible to queries, median (None when
    /// the Stats API could not tell).
    queryable_events_per_sec: Option<f64>,
    server_cpu_cores: f64,
    runs_events_per_sec: Vec<f64>,
    rejected: u64,
    rejection_samples: Vec<String>,
    server_rss_bytes: Option<u64>,
    server_peak_rss_bytes: Option<u64>,
}

async fn bulk(
    args: &BenchArgs,
    exe: &Path,
    work: &Path,
    server: &Proc,
    target: &Target,
) -> anyhow::Result<BulkReport> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()?;
    let mut baseline = start_baseline(exe, work).await?;
    let baseline_url = format!("{}/api/v1/events", baseline.url);
    let mut baseline_rates = Vec::new();
    let (mut rates, mut queryable, mut cores) = (Vec::new(), Vec::new(), Vec::new());
    let (mut rejected, mut samples, mut expected) = (0, Vec::new(), 0u64);
    let end_ms = simulate::now_ms();
    let range = date_range(end_ms - 31 * 86_400_000, end_ms);
    for run in 0..args.runs {
        // Fresh ids and visitors each run (a re-sent id would only be deduplicated);
        // generated before the clock starts.
        let spec = GenSpec {
            site: BULK_SITE.into(),
            events: args.bulk_events,
            span_ms: 30 * 86_400_000,
            seed: 1_000 + run as u64,
            end_ms,
        };
        let batch = args.bulk_batch.max(1);
        let batches: Vec<simulate::Batch> =
            tokio::task::spawn_blocking(move || Batches::new(spec, batch).collect::<Vec<_>>())
                .await?;
        let bodies: Vec<bytes::Bytes> = batches.iter().map(|b| b.body.clone()).collect();
        let events: u64 = batches.iter().map(|b| b.events).sum();
        server.wait_idle(Duration::from_secs(30)).await;
        // Alternate which goes first, so drift hits both alike.
        if run % 2 == 1 {
            baseline_rates
                .push(post_to_baseline(&client, &baseline_url, &bodies, events, args).await?);
        }
        let cpu0 = server.cpu_secs();
        let start = Instant::now();
        let s = simulate::post_batches(
            &client,
            target,
            futures::stream::iter(batches),
            args.bulk_concurrency.max(1),
            &indicatif::ProgressBar::hidden(),
        )
        .await?;
        let rate = s.accepted as f64 / s.elapsed.as_secs_f64().max(1e-9);
        if let (Some(a), Some(b)) = (cpu0, server.cpu_secs()) {
            cores.push((b - a) / s.elapsed.as_secs_f64().max(1e-9));
        }
        rates.push(rate);
        rejected += s.rejected;
        samples.extend(
            s.rejection_samples
                .iter()
                .take(5 - samples.len().min(5))
                .cloned(),
        );
        expected += s.non_engagement;
        let stored = if s.rejected == 0 {
            wait_queryable(&client, target, BULK_SITE, &range, expected, start).await
        } else {
            None
        };
        let q = stored.map(|d| s.sent as f64 / d.as_secs_f64().max(1e-9));
        if let Some(q) = q {
            queryable.push(q);
        }
        if run % 2 == 0 {
            server.wait_idle(Duration::from_secs(30)).await;
            baseline_rates
                .push(post_to_baseline(&client, &baseline_url, &bodies, events, args).await?);
        }
        eprintln!(
            "  bulk run {}/{}: {:.0} events/s accepted{}; baseline {:.0} events/s",
            run + 1,
            args.runs,
            rate,
            q.map(|q| format!(", {q:.0} events/s queryable"))
                .unwrap_or_default(),
            baseline_rates.last().copied().unwrap_or(f64::NAN)
        );
    }
    baseline.stop();
    Ok(BulkReport {
        events_per_run: args.bulk_events,
        batch: args.bulk_batch,
        concurrency: args.bulk_concurrency,
        events_per_sec: median(&rates),
        baseline_events_per_sec: median(&baseline_rates),
        baseline_runs_events_per_sec: baseline_rates.iter().map(|r| r.round()).collect(),
        ratio: median(&rates) / median(&baseline_rates).max(1e-9),
        queryable_events_per_sec: (queryable.len() == rates.len()).then(|| median(&queryable)),
        server_cpu_cores: median(&cores),
        runs_events_per_sec: rates.iter().map(|r| r.round()).collect(),
        rejected,
        rejection_samples: samples,
        server_rss_bytes: server.rss(),
        server_peak_rss_bytes: server.peak_rss(),
    })
}

/// Posts `bodies` (`events` in all) to the baseline server with the bulk bench's
/// concurrency: the events per second that HTTP alone carries on this machine, with the
/// same client and bodies as footfall's run.
async fn post_to_baseline(
    client: &reqwest::Client,
    url: &str,
    bodies: &[bytes::Bytes],
    events: u64,
    args: &BenchArgs,
) -> anyhow::Result<f64> {
    use futures::TryStreamExt;
    let start = Instant::now();
    futures::stream::iter(bodies.iter().map(Ok::<_, anyhow::Error>))
        .try_for_each_concurrent(args.bulk_concurrency.max(1), |body| async move {
            let resp = client
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await
                .with_context(|| format!("POST {url}"))?;
            let status = resp.status();
            resp.bytes().await?;
            anyhow::ensure!(status.is_success(), "POST {url} answered {status}");
            Ok(())
        })
        .await?;
    Ok(events as f64 / start.elapsed().as_secs_f64().max(1e-9))
}

/// Each query's SQL timed directly in DuckDB by `footfall bench-sql` on the stopped
/// server's data directory, one process for the set (its queries as one dashboard load
/// on one open store, each load after the same pause as the HTTP loads): the median of
/// `runs` loads after a warm-up load, in ms.
async fn direct_times(
    exe: &Path,
    data: &Path,
    queries: &[NamedQuery],
    runs: usize,
) -> anyhow::Result<Vec<Option<f64>>> {
    let runs = runs.to_string();
    let pause = DASHBOARD_LOAD_GAP.as_millis().to_string();
    let bodies: Vec<String> = queries.iter().map(|(_, q)| q.to_string()).collect();
    let mut args = vec![
        "bench-sql",
        "--site",
        QUERY_SITE,
        "--runs",
        runs.as_str(),
        "--pause-ms",
        pause.as_str(),
    ];
    for body in &bodies {
        args.extend(["--query", body.as_str()]);
    }
    let out = procs::cli(exe, data, &args).await?;
    let times: Vec<Option<f64>> = out.lines().map(|l| l.trim().parse().ok()).collect();
    anyhow::ensure!(
        times.len() == queries.len(),
        "bench-sql printed {} lines for {} queries",
        times.len(),
        queries.len()
    );
    Ok(times)
}

/// `[from, to]` dates (UTC) around a time span, a day of margin each side.
fn date_range(from_ms: i64, to_ms: i64) -> Value {
    let day = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|d| d.date_naive().to_string())
            .unwrap_or_default()
    };
    json!([day(from_ms - 86_400_000), day(to_ms + 86_400_000)])
}

/// Loads `sim`'s events through the bulk API and, when none was refused, waits until the
/// Stats API counts them all: the load's summary and the time from its start until then
/// (None when refused events or the Stats API could not tell).
async fn load_until_queryable(
    client: &reqwest::Client,
    target: &Target,
    sim: &SimulateArgs,
) -> anyhow::Result<(simulate::Summary, Option<Duration>)> {
    let loaded = simulate::send(target, sim).await?;
    if loaded.rejected > 0 {
        return Ok((loaded, None));
    }
    let range = date_range(loaded.first_ts_ms, loaded.last_ts_ms);
    let load_start = Instant::now()
        .checked_sub(loaded.elapsed)
        .unwrap_or_else(Instant::now);
    let queryable = wait_queryable(
        client,
        target,
        &sim.site,
        &range,
        loaded.non_engagement,
        load_start,
    )
    .await;
    Ok((loaded, queryable))
}

/// Polls the `events` metric until it reaches `expected` (all sent events stored and
/// visible); the time since `start`. None if the Stats API does not say so in 10 min.
async fn wait_queryable(
    client: &reqwest::Client,
    target: &Target,
    site: &str,
    range: &Value,
    expected: u64,
    start: Instant,
) -> Option<Duration> {
    let q = json!({ "site_id": site, "metrics": ["events"], "date_range": range });
    let mut failures = 0;
    while start.elapsed() < Duration::from_secs(600) {
        match stats_query(client, target, &q).await {
            Ok(v) => {
                let n = v
                    .pointer("/results/0/metrics/0")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                if n >= expected {
                    return Some(start.elapsed());
                }
            }
            Err(_) => {
                failures += 1;
                if failures > 20 {
                    return None;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

async fn stats_query(
    client: &reqwest::Client,
    target: &Target,
    q: &Value,
) -> anyhow::Result<Value> {
    let resp = client
        .post(format!("{}/api/v2/query", target.base_url))
        .bearer_auth(&target.token)
        .json(q)
        .send()
        .await?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let msg = body
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("no error message");
        bail!("{status}: {msg}");
    }
    Ok(body)
}

// ---------------------------------------------------------------------------------------
// 3. Queries, storage, memory
// ---------------------------------------------------------------------------------------

#[derive(Serialize, Debug)]
struct QueryFigure {
    name: String,
    /// Through HTTP (`POST /api/v2/query`), result cache as the server is configured.
    median_ms: f64,
    runs_ms: Vec<f64>,
    /// The same query's SQL run directly in DuckDB on the same file after the server
    /// stopped (`footfall bench-sql`, median of `--runs` after a warm-up): the engine's
    /// own time. None if it could not be measured.
    direct_ms: Option<f64>,
    /// `median_ms / direct_ms` (target 3: at most 1.5).
    ratio: Option<f64>,
    rows: Option<usize>,
    error: Option<String>,
}

#[derive(Serialize, Debug)]
struct QuerySet {
    name: String,
    filters: Value,
    queries: Vec<QueryFigure>,
    /// Sum of the queries' medians.
    total_ms: f64,
    /// Sum of the queries' direct medians (None if any is missing).
    direct_total_ms: Option<f64>,
}

#[derive(Serialize, Debug)]
struct QueriesReport {
    /// Whether the server's result cache answered repeated queries (`--query-cache`).
    result_cache: bool,
    events_loaded: u64,
    /// Events of the second site (`--query-other-events`), in the store besides.
    other_site_events: u64,
    events_rejected: u64,
    days: u32,
    /// Simulator throughput (acknowledged events/s).
    load_events_per_sec: f64,
    /// From the first event sent until all were visible to queries.
    load_queryable_secs: Option<f64>,
    data_dir_bytes: u64,
    bytes_per_event: f64,
    data_dir_files: Vec<(String, u64)>,
    /// After a clean shutdown (store checkpointed, logs truncated).
    data_dir_bytes_after_shutdown: u64,
    bytes_per_event_after_shutdown: f64,
    rss_after_load_bytes: Option<u64>,
    /// While loading and until every event was stored (the bench's count query polls
    /// meanwhile).
    peak_rss_loading_bytes: Option<u64>,
    rss_after_queries_bytes: Option<u64>,
    /// While the dashboard queries ran (None if the peak could not be reset after the
    /// load: then `peak_rss_loading_bytes` covers both).
    peak_rss_queries_bytes: Option<u64>,
    sets: Vec<QuerySet>,
}

/// A query's display name and its JSON body.
type NamedQuery = (String, Value);

/// The dashboard's queries over the last 30 days, with `filters`. With a page filter the
/// aggregate leaves out `views_per_visit`, as the dashboard does (the Stats API refuses
/// it there, as Plausible's).
fn dashboard(site: &str, filters: &Value) -> Vec<NamedQuery> {
    let page_filtered = filters.to_string().contains("\"event:page\"");
    let mut aggregate = vec![
        "visitors",
        "visits",
        "pageviews",
        "bounce_rate",
        "visit_duration",
    ];
    if !page_filtered {
        aggregate.push("views_per_visit");
    }
    let mut out = Vec::new();
    let mut q = |name: &str, metrics: Value, dims: Option<&str>, limit: bool| {
        let mut v = json!({ "site_id": site, "metrics": metrics, "date_range": "30d" });
        if let Some(d) = dims {
            v["dimensions"] = json!([d]);
        }
        if filters.as_array().is_some_and(|f| !f.is_empty()) {
            v["filters"] = filters.clone();
        }
        if limit {
            v["pagination"] = json!({ "limit": 10 });
        }
        out.push((name.to_string(), v));
    };
    q("aggregate", json!(aggregate), None, false);
    q(
        "timeseries (time:day)",
        json!(["visitors", "pageviews"]),
        Some("time:day"),
        false,
    );
    for dim in [
        "event:page",
        "visit:source",
        "visit:country",
        "visit:browser",
        "visit:os",
        "visit:device",
        "visit:entry_page",
    ] {
        q(
            &format!("breakdown {dim}"),
            json!(["visitors"]),
            Some(dim),
            true,
        );
    }
    out
}

fn filter_sets() -> Vec<(&'static str, Value)> {
    let page = json!(["is", "event:page", ["/"]]);
    let source = json!(["is", "visit:source", ["Google"]]);
    vec![
        ("unfiltered", json!([])),
        ("page=/", json!([page.clone()])),
        ("source=Google", json!([source.clone()])),
        ("page+source", json!([page, source])),
    ]
}

/// Pause before each dashboard load of the query benchmark: longer than the server keeps
/// a load's shared matching visits without a query using them (1 s).
const DASHBOARD_LOAD_GAP: Duration = Duration::from_millis(1500);

async fn queries(
    args: &BenchArgs,
    exe: &Path,
    server: &mut Proc,
    target: &Target,
    data: &Path,
) -> anyhow::Result<QueriesReport> {
    eprintln!(
        "loading {} events over {} days with the simulator",
        args.query_events, args.query_days
    );
    let sim = SimulateArgs {
        site: QUERY_SITE.into(),
        events: args.query_events,
        days: args.query_days,
        minutes: None,
        seed: 42,
        batch: 10_000,
        concurrency: 4,
        end: None,
        send: SendArgs {
            no_create_site: true,
            ..SendArgs::default()
        },
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()?;
    let (loaded, queryable) = load_until_queryable(&client, target, &sim).await?;
    // A second site, loaded after the first as a server's sites interleave: the query
    // plans must not depend on a store holding one site (DuckDB's optimizer decides on
    // column statistics that the other site's rows change; twenty-third session).
    let other = if args.query_other_events > 0 {
        let other_sim = SimulateArgs {
            site: OTHER_QUERY_SITE.into(),
            events: args.query_other_events,
            seed: 43,
            send: SendArgs::default(),
            ..sim.clone()
        };
        load_until_queryable(&client, target, &other_sim)
            .await?
            .0
            .accepted
    } else {
        0
    };
    server.wait_idle(Duration::from_secs(120)).await;
    // The server settles after a load: once its store writer has been quiet for
    // `RELEASE_WHEN_IDLE_FOR` it checkpoints what the load left in DuckDB's WAL and gives
    // back DuckDB's cached blocks. Storage and memory "while serving" are measured after
    // that (and the queries run after it, not beside the checkpoint).
    tokio::time::sleep(footfall_ingest::RELEASE_WHEN_IDLE_FOR + Duration::from_secs(1)).await;
    server.wait_idle(Duration::from_secs(120)).await;
    eprintln!(
        "loaded {} events at {:.0} events/s{}",
        loaded.accepted,
        loaded.events_per_sec(),
        queryable.map_or(String::new(), |d| format!(
            ", all queryable after {:.1} s",
            d.as_secs_f64()
        ))
    );
    let stored = (loaded.accepted + other).max(1) as f64;
    let (dir_bytes, files) = procs::dir_size(data);
    let rss_after_load = server.rss();
    let peak_loading = server.peak_rss();
    let peak_reset = server.reset_peak_rss();

    let sets_def: Vec<(&str, Value, Vec<NamedQuery>)> = filter_sets()
        .into_iter()
        .map(|(name, f)| {
            let qs = dashboard(QUERY_SITE, &f);
            (name, f, qs)
        })
        .collect();
    // times[set][query] = ms per run; rows and first error likewise.
    let mut times: Vec<Vec<Vec<f64>>> = sets_def
        .iter()
        .map(|s| vec![Vec::new(); s.2.len()])
        .collect();
    let mut rows: Vec<Vec<Option<usize>>> =
        sets_def.iter().map(|s| vec![None; s.2.len()]).collect();
    let mut errors: Vec<Vec<Option<String>>> =
        sets_def.iter().map(|s| vec![None; s.2.len()]).collect();
    // Run 0 warms the server up and is not counted.
    for run in 0..=args.runs {
        for (si, (_, _, qs)) in sets_def.iter().enumerate() {
            // Each set is one dashboard load. The server shares a load's matching visits
            // among its queries for as long as they follow each other within a second
            // (footfall-store-duckdb's matching.rs); waiting longer between loads makes
            // every load find them itself, as a user's next visit to the dashboard would.
            tokio::time::sleep(DASHBOARD_LOAD_GAP).await;
            for (qi, (_, q)) in qs.iter().enumerate() {
                let t0 = Instant::now();
                let r = stats_query(&client, target, q).await;
                let ms = t0.elapsed().as_secs_f64() * 1000.0;
                match r {
                    Ok(v) => {
                        if run > 0 {
                            times[si][qi].push(ms);
                        }
                        rows[si][qi] = v.get("results").and_then(Value::as_array).map(Vec::len);
                    }
                    Err(e) => {
                        if errors[si][qi].is_none() {
                            errors[si][qi] = Some(e.to_string());
                        }
                    }
                }
            }
        }
        if run > 0 {
            let total: f64 = times.iter().flatten().filter_map(|t| t.last()).sum();
            eprintln!(
                "  query run {}/{}: all sets {:.1} ms",
                run, args.runs, total
            );
        }
    }
    let rss_after_queries = server.rss();
    let (peak_loading, peak_queries) = if peak_reset {
        (peak_loading, server.peak_rss())
    } else {
        (server.peak_rss(), None)
    };
    server.stop();
    let (after_shutdown, _) = procs::dir_size(data);
    // The engine's own time for each query's SQL, on the same file once the server has
    // stopped (DuckDB lets one process open it): target 3's baseline, in the same run.
    eprintln!("timing each query's SQL directly in DuckDB (footfall bench-sql)");
    let mut direct: Vec<Vec<Option<f64>>> = Vec::new();
    for (name, _, qs) in &sets_def {
        let times = direct_times(exe, data, qs, args.runs).await;
        if let Err(e) = &times {
            eprintln!("  {name}: the direct SQL could not be timed: {e:#}");
        }
        direct.push(times.unwrap_or_else(|_| vec![None; qs.len()]));
    }
    let sets = sets_def
        .iter()
        .enumerate()
        .map(|(si, (name, filters, qs))| {
            let queries: Vec<QueryFigure> = qs
                .iter()
                .enumerate()
                .map(|(qi, (qname, _))| {
                    let http = median(&times[si][qi]);
                    QueryFigure {
                        name: qname.clone(),
                        median_ms: round2(http),
                        direct_ms: direct[si][qi],
                        ratio: direct[si][qi]
                            .filter(|d| *d > 0.0)
                            .map(|d| round2(http / d)),
                        runs_ms: times[si][qi].iter().map(|&t| round2(t)).collect(),
                        rows: rows[si][qi],
                        error: errors[si][qi].clone(),
                    }
                })
                .collect();
            QuerySet {
                name: name.to_string(),
                filters: filters.clone(),
                total_ms: round2(queries.iter().map(|q| q.median_ms).sum()),
                direct_total_ms: queries
                    .iter()
                    .map(|q| q.direct_ms)
                    .sum::<Option<f64>>()
                    .map(round2),
                queries,
            }
        })
        .collect();
    Ok(QueriesReport {
        result_cache: args.query_cache,
        events_loaded: loaded.accepted,
        other_site_events: other,
        events_rejected: loaded.rejected,
        days: args.query_days,
        load_events_per_sec: loaded.events_per_sec().round(),
        load_queryable_secs: queryable.map(|d| round2(d.as_secs_f64())),
        data_dir_bytes: dir_bytes,
        bytes_per_event: round2(dir_bytes as f64 / stored),
        data_dir_files: files,
        data_dir_bytes_after_shutdown: after_shutdown,
        bytes_per_event_after_shutdown: round2(after_shutdown as f64 / stored),
        rss_after_load_bytes: rss_after_load,
        peak_rss_loading_bytes: peak_loading,
        rss_after_queries_bytes: rss_after_queries,
        peak_rss_queries_bytes: peak_queries,
        sets,
    })
}

// ---------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------

#[derive(Serialize, Debug)]
struct Machine {
    cpus: usize,
    cpu_model: String,
    memory_bytes: u64,
    kernel: String,
    footfall_version: &'static str,
}

impl Machine {
    fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_bytes = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|k| k.parse::<u64>().ok())
            .map_or(0, |k| k * 1024);
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model,
            memory_bytes,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            footfall_version: env!("CARGO_PKG_VERSION"),
        }
    }
}

#[derive(Serialize, Debug)]
struct Report {
    machine: Machine,
    command: String,
    runs: usize,
    cores_note: String,
    events_api: Option<EventsApiReport>,
    bulk: Option<BulkReport>,
    queries: Option<QueriesReport>,
}

fn print_human(r: &Report) {
    let m = &r.machine;
    println!(
        "footfall {} bench: {} CPUs ({}), {:.1} GiB RAM, Linux {}",
        m.footfall_version,
        m.cpus,
        m.cpu_model,
        m.memory_bytes as f64 / GIB,
        m.kernel
    );
    println!("command: {}", r.command);
    println!("every figure is the median of {} runs", r.runs);
    println!("note: {}", r.cores_note);

    if let Some(e) = &r.events_api {
        println!();
        let amount = match (e.requests_per_run, e.seconds_per_run) {
            (_, Some(s)) => format!("{s} s"),
            (Some(n), _) => format!("{} requests", thousands(n as f64)),
            _ => String::new(),
        };
        println!(
            "1. POST /api/event: {} keep-alive connections, {} per run, generator {} threads",
            e.connections, amount, e.generator_threads
        );
        println!(
            "   {:<18} {:>10} {:>8} {:>8} {:>11} {:>14}",
            "", "req/s", "p50 ms", "p99 ms", "server CPU", "generator CPU"
        );
        for (name, f) in [("footfall", &e.footfall), ("baseline (hyper)", &e.baseline)] {
            println!(
                "   {:<18} {:>10} {:>8.2} {:>8.2} {:>11.2} {:>14.2}",
                name,
                thousands(f.requests_per_sec),
                f.p50_ms,
                f.p99_ms,
                f.server_cpu_cores,
                f.generator_cpu_cores
            );
        }
        println!(
            "   footfall / baseline: {:.1} %   (target >= 50 %, footfall p99 < 20 ms)",
            e.ratio * 100.0
        );
        println!("   CPU columns: cores busy on average during the run");
        let f = &e.footfall;
        if f.non_2xx + f.errors + f.dropped > 0 {
            let reasons: Vec<String> = f
                .dropped_by_reason
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            println!(
                "   footfall, all runs: {} non-2xx, {} dropped ({}), {} connection errors",
                f.non_2xx,
                f.dropped,
                reasons.join(", "),
                f.errors
            );
        }
        println!(
            "   server RSS after: {} (peak {})",
            mib(e.server_rss_bytes),
            mib(e.server_peak_rss_bytes)
        );
    }

    if let Some(b) = &r.bulk {
        println!();
        println!(
            "2. POST /api/v1/events: {} events per run, batches of {}, {} in flight, \
             acknowledged after fsync",
            thousands(b.events_per_run as f64),
            thousands(b.batch as f64),
            b.concurrency
        );
        println!(
            "   accepted: {} events/s   (target >= 300,000; runs: {})",
            thousands(b.events_per_sec),
            thousands_list(&b.runs_events_per_sec)
        );
        println!(
            "   baseline (hyper, reads the bodies, 202): {} events/s (runs: {})",
            thousands(b.baseline_events_per_sec),
            thousands_list(&b.baseline_runs_events_per_sec)
        );
        println!("   footfall / baseline: {:.1} %", b.ratio * 100.0);
        match b.queryable_events_per_sec {
            Some(q) => println!("   until queryable: {} events/s", thousands(q)),
            None => println!("   until queryable: n/a (Stats API did not confirm)"),
        }
        println!(
            "   server CPU {:.2} cores; RSS after {} (peak {})",
            b.server_cpu_cores,
            mib(b.server_rss_bytes),
            mib(b.server_peak_rss_bytes)
        );
        if b.rejected > 0 {
            println!(
                "   {} events rejected, e.g. {:?}",
                b.rejected, b.rejection_samples
            );
        }
    }

    if let Some(q) = &r.queries {
        println!();
        println!(
            "3. Stats API v2 (POST /api/v2/query, last 30 days) after loading {} events over \
             {} days{}",
            thousands(q.events_loaded as f64),
            q.days,
            if q.other_site_events > 0 {
                format!(
                    ", then {} events of a second site",
                    thousands(q.other_site_events as f64)
                )
            } else {
                String::new()
            }
        );
        println!(
            "   simulator: {} events/s acknowledged{}",
            thousands(q.load_events_per_sec),
            q.load_queryable_secs
                .map(|s| format!(", all queryable after {s:.1} s"))
                .unwrap_or_default()
        );
        println!(
            "   median ms through HTTP (result cache {}), and in brackets its ratio to the \
             same SQL run directly in DuckDB (target <= 1.5x)",
            if q.result_cache { "on" } else { "off" }
        );
        print!("   {:<26}", "");
        for s in &q.sets {
            print!(" {:>16}", s.name);
        }
        println!();
        let n = q.sets.first().map_or(0, |s| s.queries.len());
        for i in 0..n {
            print!("   {:<26}", q.sets[0].queries[i].name);
            for s in &q.sets {
                let f = &s.queries[i];
                let cell = match (f.runs_ms.is_empty(), f.ratio) {
                    (true, _) => "error".to_string(),
                    (false, Some(r)) => format!("{:.1} ({r:.2}x)", f.median_ms),
                    (false, None) => format!("{:.1}", f.median_ms),
                };
                print!(" {cell:>16}");
            }
            println!();
        }
        print!("   {:<26}", "total (target < 300)");
        for s in &q.sets {
            print!(" {:>16.1}", s.total_ms);
        }
        println!();
        print!("   {:<26}", "direct SQL, total");
        for s in &q.sets {
            match s.direct_total_ms {
                Some(d) => print!(" {d:>16.1}"),
                None => print!(" {:>16}", "n/a"),
            }
        }
        println!();
        for s in &q.sets {
            for f in &s.queries {
                if let Some(e) = &f.error {
                    println!("   error in {} / {}: {e}", s.name, f.name);
                }
            }
        }
        println!();
        println!(
            "4. Storage: {:.1} bytes/event while serving ({} for {} events), {:.1} after a \
             clean shutdown (target <= 30)",
            q.bytes_per_event,
            mib(Some(q.data_dir_bytes)),
            thousands((q.events_loaded + q.other_site_events) as f64),
            q.bytes_per_event_after_shutdown
        );
        let files: Vec<String> = q
            .data_dir_files
            .iter()
            .map(|(n, b)| format!("{n} {}", mib(Some(*b))))
            .collect();
        println!("   {}", files.join(", "));
        println!();
        println!(
            "5. Server RSS: peak {} while loading until all was stored, {} after; peak {} during the dashboard queries, {} after (target < 300 MiB)",
            mib(q.peak_rss_loading_bytes),
            mib(q.rss_after_load_bytes),
            mib(q.peak_rss_queries_bytes),
            mib(q.rss_after_queries_bytes),
        );
    }
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

fn mib(b: Option<u64>) -> String {
    match b {
        Some(b) => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
        None => "n/a".into(),
    }
}

/// Figures of several runs, comma-separated, each with thousands separators.
fn thousands_list(runs: &[f64]) -> String {
    runs.iter()
        .map(|x| thousands(*x))
        .collect::<Vec<_>>()
        .join(", ")
}

/// 1234567.8 -> "1,234,568".
fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    let s = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if x < 0.0 { format!("-{out}") } else { out }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Median (mean of the middle two for even counts); NaN when empty.
fn median(xs: &[f64]) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// What `footfall bench-sql` prints besides the median time.
pub struct SqlOutput<'a> {
    /// Print the SQL instead of timing it.
    pub show_sql: bool,
    /// Write DuckDB's profile of one more run to this file.
    pub profile: Option<&'a std::path::Path>,
    /// Idle before each run of the queries.
    pub pause: Duration,
}

/// `footfall bench-sql`: the median time of each query's SQL run directly in DuckDB on
/// the data directory (printed in ms, a line per query), through the server's query path
/// (`DuckStore::time_load`: the queries as one dashboard load) but without HTTP, JSON or
/// the result cache; with `--profile`, the query's main statement alone.
pub async fn direct_sql(
    config: &footfall_server::config::Config,
    site: &str,
    queries: &[String],
    runs: usize,
    output: SqlOutput<'_>,
) -> anyhow::Result<()> {
    use footfall_store::MetaStore;
    // The profile file's extension is checked by the store before any run
    // (`query::profile_statement`).
    anyhow::ensure!(
        output.profile.is_none() || queries.len() == 1,
        "--profile profiles one query: give --query once"
    );
    let store = footfall_server::open_embedded(config)?;
    let domain = footfall_server::state::normalize_domain(site);
    let site = store
        .sites()
        .await?
        .into_iter()
        .find(|s| s.domain == domain)
        .ok_or_else(|| anyhow::anyhow!("no site {domain} in {}", config.data.display()))?;
    let ctx = footfall_core::query::SiteContext {
        domain: site.domain.clone(),
        timezone: site.timezone.parse().unwrap_or(chrono_tz::UTC),
        goals: store.goals(site.id).await?,
        stats_start: None,
    };
    let parsed = queries
        .iter()
        .map(|query| {
            let body: Value = serde_json::from_str(query)?;
            footfall_core::query::parse_query(&body, &ctx, chrono::Utc::now())
                .map_err(|e| anyhow::anyhow!("invalid query {query}: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if output.show_sql {
        for q in &parsed {
            println!("{}", store.query_text(site.id, &ctx, q));
        }
        return Ok(());
    }
    let times = match (output.profile, parsed.as_slice()) {
        (Some(path), [q]) => vec![store.profile_query(site.id, &ctx, q, runs.max(1), path)?],
        _ => store.time_load(site.id, &ctx, &parsed, runs.max(1), output.pause)?,
    };
    for query_times in times {
        let ms: Vec<f64> = query_times
            .iter()
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect();
        println!("{:.1}", median(&ms));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!(median(&[f64::NAN, 5.0]), 5.0);
    }

    #[test]
    fn formats() {
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(
            thousands_list(&[361_586.0, 8_359_613.0]),
            "361,586, 8,359,613"
        );
        assert_eq!(mib(Some(3 * 1024 * 1024)), "3.0 MiB");
    }

    #[test]
    fn dashboard_queries() {
        let qs = dashboard("s.example", &json!([]));
        assert_eq!(qs.len(), 9);
        assert!(qs.iter().all(|(_, q)| q.get("filters").is_none()));
        assert_eq!(qs[1].1["dimensions"], json!(["time:day"]));
        assert_eq!(qs[2].1["pagination"]["limit"], 10);
        let f = filter_sets();
        let filtered = dashboard("s.example", &f[3].1);
        assert_eq!(filtered[0].1["filters"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn date_range_has_margins() {
        // 2024-03-10T12:00Z .. 2024-03-20T12:00Z
        let r = date_range(1_710_072_000_000, 1_710_936_000_000);
        assert_eq!(r, json!(["2024-03-09", "2024-03-21"]));
    }
}
