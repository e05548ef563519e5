//! Keep-alive HTTP/1.1 load generator for `POST /api/event` (one hyper client connection
//! per task, pre-built requests) and the minimal hyper server used as its baseline.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue, USER_AGENT};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::net::{TcpListener, TcpStream};

use crate::simulate;

/// The baseline: answers 202 with an empty body to every request, after reading it.
pub async fn baseline_server(listen: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(|req: Request<Incoming>| async move {
                let _ = req.into_body().collect().await;
                let mut resp = Response::new(Empty::<Bytes>::new());
                *resp.status_mut() = StatusCode::ACCEPTED;
                Ok::<_, Infallible>(resp)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// One pre-built request.
pub struct PreReq {
    pub body: Bytes,
    pub ua: HeaderValue,
    pub xff: HeaderValue,
}

/// Realistic mixed Events API traffic for `domain`: per simulated visitor (own UA and
/// client IP) an entry page view with an external referrer, sometimes more page views,
/// engagement beacons and custom events, in that order. The list is laid out in rounds
/// (every visitor's 1st request, then every visitor's 2nd, ...) so a visitor's requests
/// are thousands of requests apart, as they are seconds apart in real traffic: with many
/// connections in flight, an engagement beacon never overtakes its page view.
pub fn build_requests(domain: &str, visitors: usize, seed: u64) -> anyhow::Result<Vec<PreReq>> {
    let pools = simulate::pools();
    let ip_cdf = simulate::ip_range_cdf();
    let mut rng = SmallRng::seed_from_u64(seed);
    let d = serde_json::to_string(domain)?;
    let origin = format!("https://{}", &d[1..d.len() - 1]);
    let mut scripts: Vec<Vec<PreReq>> = Vec::with_capacity(visitors);
    for _ in 0..visitors {
        let mut out = Vec::new();
        let ua = HeaderValue::from_str(pools.sample_ua(rng.random()))?;
        let ip = simulate::random_ip(&mut rng, &ip_cdf);
        let xff = HeaderValue::from_str(&ip)?;
        let mut page = &pools.pages[pools.sample_page(rng.random())].path;
        let referrer = pools.referrers[pools.sample_referrer(rng.random())];
        let utm = if rng.random_bool(0.06) {
            pools.utms[rng.random_range(0..pools.utms.len())]
        } else {
            ""
        };
        let mut push = |body: String| {
            out.push(PreReq {
                body: Bytes::from(body),
                ua: ua.clone(),
                xff: xff.clone(),
            })
        };
        push(format!(
            r#"{{"n":"pageview","u":"{origin}{page}{utm}","d":{d},"r":"{referrer}"}}"#
        ));
        let mut views = 1;
        loop {
            let r: f64 = rng.random();
            if r < 0.08 {
                push(format!(
                    r#"{{"n":"Signup","u":"{origin}{page}","d":{d},"r":null,"p":{{"plan":"pro"}}}}"#
                ));
            }
            if r > 0.5 {
                let sd = rng.random_range(10..=100);
                let e = rng.random_range(3_000..120_000);
                push(format!(
                    r#"{{"n":"engagement","u":"{origin}{page}","d":{d},"sd":{sd},"e":{e}}}"#
                ));
            }
            if views >= 6 || rng.random_bool(0.5) {
                break;
            }
            let prev = page;
            page = &pools.pages[pools.sample_page(rng.random())].path;
            push(format!(
                r#"{{"n":"pageview","u":"{origin}{page}","d":{d},"r":"{origin}{prev}"}}"#
            ));
            views += 1;
        }
        scripts.push(out);
    }
    let total = scripts.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(total);
    let mut iters: Vec<_> = scripts.into_iter().map(Vec::into_iter).collect();
    while out.len() < total {
        out.extend(iters.iter_mut().filter_map(Iterator::next));
    }
    Ok(out)
}

pub struct LoadSpec {
    pub addr: SocketAddr,
    pub connections: usize,
    /// Total requests (ignored when `duration` is set).
    pub requests: u64,
    pub duration: Option<Duration>,
    pub reqs: Arc<Vec<PreReq>>,
}

#[derive(Debug, Default)]
pub struct LoadResult {
    /// Requests answered (any status).
    pub answered: u64,
    /// Answered 202 (or another 2xx).
    pub ok: u64,
    pub non_2xx: u64,
    /// 2xx with `x-footfall-dropped`, by reason.
    pub dropped: u64,
    pub dropped_by_reason: std::collections::BTreeMap<String, u64>,
    /// Connection or protocol errors.
    pub errors: u64,
    pub elapsed: Duration,
    /// Latencies of answered requests, microseconds, sorted.
    pub lat_us: Vec<u32>,
}

impl LoadResult {
    pub fn rps(&self) -> f64 {
        self.answered as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    /// Latency quantile in ms (nearest rank).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.lat_us.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * self.lat_us.len() as f64).ceil() as usize).clamp(1, self.lat_us.len());
        self.lat_us[rank - 1] as f64 / 1000.0
    }
}

/// Runs the load: `connections` tasks, each with one keep-alive connection, sending
/// requests `reqs[n % len]` for a shared counter n until the count or time is reached.
pub async fn run(spec: LoadSpec) -> anyhow::Result<LoadResult> {
    let spec = Arc::new(spec);
    let counter = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = spec.duration.map(|d| start + d);
    let mut tasks = Vec::with_capacity(spec.connections);
    for _ in 0..spec.connections.max(1) {
        let (spec, counter) = (spec.clone(), counter.clone());
        tasks.push(tokio::spawn(connection(spec, counter, deadline)));
    }
    let mut total = LoadResult::default();
    for t in tasks {
        let r = t.await.context("load task panicked")?;
        total.answered += r.answered;
        total.ok += r.ok;
        total.non_2xx += r.non_2xx;
        total.dropped += r.dropped;
        for (k, v) in r.dropped_by_reason {
            *total.dropped_by_reason.entry(k).or_default() += v;
        }
        total.errors += r.errors;
        total.lat_us.extend_from_slice(&r.lat_us);
    }
    total.elapsed = start.elapsed();
    total.lat_us.sort_unstable();
    if total.answered == 0 {
        anyhow::bail!(
            "no request to {} was answered ({} connection errors)",
            spec.addr,
            total.errors
        );
    }
    Ok(total)
}

async fn connection(
    spec: Arc<LoadSpec>,
    counter: Arc<AtomicU64>,
    deadline: Option<Instant>,
) -> LoadResult {
    let mut r = LoadResult {
        lat_us: Vec::with_capacity((spec.requests as usize / spec.connections.max(1)) + 16),
        ..Default::default()
    };
    let host = HeaderValue::from_str(&spec.addr.to_string())
        .unwrap_or(HeaderValue::from_static("localhost"));
    let text = HeaderValue::from_static("text/plain");
    let mut consecutive_failures = 0;
    'connect: while consecutive_failures < 20 {
        let stream = match TcpStream::connect(spec.addr).await {
            Ok(s) => s,
            Err(_) => {
                r.errors += 1;
                consecutive_failures += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) =
            match hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                .await
            {
                Ok(x) => x,
                Err(_) => {
                    r.errors += 1;
                    consecutive_failures += 1;
                    continue;
                }
            };
        let driver = tokio::spawn(conn);
        loop {
            if let Some(d) = deadline
                && Instant::now() >= d
            {
                driver.abort();
                break 'connect;
            }
            let n = counter.fetch_add(1, Ordering::Relaxed);
            if deadline.is_none() && n >= spec.requests {
                driver.abort();
                break 'connect;
            }
            let pre = &spec.reqs[(n % spec.reqs.len() as u64) as usize];
            let mut req = Request::new(Full::new(pre.body.clone()));
            *req.method_mut() = Method::POST;
            *req.uri_mut() = hyper::Uri::from_static("/api/event");
            let h = req.headers_mut();
            h.insert(HOST, host.clone());
            h.insert(CONTENT_TYPE, text.clone());
            h.insert(USER_AGENT, pre.ua.clone());
            h.insert("x-forwarded-for", pre.xff.clone());
            if sender.ready().await.is_err() {
                r.errors += 1;
                consecutive_failures += 1;
                continue 'connect;
            }
            let t0 = Instant::now();
            match sender.send_request(req).await {
                Ok(resp) => {
                    let status = resp.status();
                    let dropped = resp
                        .headers()
                        .get("x-footfall-dropped")
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
                    if resp.into_body().collect().await.is_err() {
                        r.errors += 1;
                        consecutive_failures += 1;
                        continue 'connect;
                    }
                    let us = t0.elapsed().as_micros().min(u32::MAX as u128) as u32;
                    r.lat_us.push(us);
                    r.answered += 1;
                    consecutive_failures = 0;
                    if status.is_success() {
                        r.ok += 1;
                        if let Some(reason) = dropped {
                            r.dropped += 1;
                            *r.dropped_by_reason.entry(reason).or_default() += 1;
                        }
                    } else {
                        r.non_2xx += 1;
                    }
                }
                Err(_) => {
                    r.errors += 1;
                    consecutive_failures += 1;
                    continue 'connect;
                }
            }
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_valid_json_and_varied() {
        let reqs = build_requests("bench.example", 500, 1).expect("build");
        assert!(reqs.len() > 600);
        let mut uas = std::collections::HashSet::new();
        let mut ips = std::collections::HashSet::new();
        let mut names = std::collections::HashMap::<String, usize>::new();
        for r in &reqs {
            let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
            assert_eq!(v["d"], "bench.example");
            assert!(
                v["u"]
                    .as_str()
                    .expect("u")
                    .starts_with("https://bench.example/")
            );
            *names.entry(v["n"].as_str().expect("n").into()).or_default() += 1;
            uas.insert(r.ua.clone());
            ips.insert(r.xff.clone());
        }
        assert!(
            uas.len() > 15 && ips.len() > 400,
            "{} UAs, {} IPs",
            uas.len(),
            ips.len()
        );
        assert!(names["pageview"] > names["engagement"] && names["Signup"] > 5);
    }

    #[test]
    fn quantiles() {
        let r = LoadResult {
            lat_us: (1..=100).map(|x| x * 1000).collect(),
            ..Default::default()
        };
        assert_eq!(r.quantile_ms(0.5), 50.0);
        assert_eq!(r.quantile_ms(0.99), 99.0);
        assert_eq!(r.quantile_ms(1.0), 100.0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn generator_against_baseline() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        tokio::spawn(baseline_server(addr));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let reqs = Arc::new(build_requests("bench.example", 100, 2).expect("build"));
        let r = run(LoadSpec {
            addr,
            connections: 4,
            requests: 2000,
            duration: None,
            reqs,
        })
        .await
        .expect("load");
        assert_eq!(r.answered, 2000);
        assert_eq!(r.ok, 2000);
        assert_eq!(r.errors, 0);
        assert!(r.rps() > 0.0 && r.quantile_ms(0.99) > 0.0);
    }
}
