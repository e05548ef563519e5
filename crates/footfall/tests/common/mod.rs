//! Black-box harness: runs the real `footfall` binary on a free loopback port with a fresh
//! data directory, and talks to it over HTTP and through its CLI, exactly as a user would.
#![allow(dead_code)]

use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_footfall");

/// A normal desktop Chrome on Windows.
pub const CHROME_UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
     (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
/// A normal desktop Firefox on Linux.
pub const FIREFOX_UA: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0";
/// Safari on macOS.
pub const SAFARI_UA: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 \
     (KHTML, like Gecko) Version/17.4 Safari/605.1.15";

pub struct Server {
    /// Root of the temporary directory (data dir and log inside); removed on drop.
    pub root: tempfile::TempDir,
    pub data: PathBuf,
    pub port: u16,
    pub base: String,
    extra_args: Vec<String>,
    child: Option<Child>,
    pub http: Client,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts `footfall --data <dir> serve --listen 127.0.0.1:<port> <args>` and waits for
    /// /api/health.
    pub fn start_with(args: &[&str]) -> Server {
        let mut s = Server::unstarted(args);
        s.spawn();
        s
    }

    /// Starts with `--config` pointing at `toml`, written into the server's temp dir (so
    /// it stays for restarts).
    pub fn start_with_config(toml: &str) -> Server {
        let mut s = Server::unstarted(&[]);
        let config = write_config(s.root.path(), toml);
        s.extra_args = vec!["--config".into(), config.display().to_string()];
        s.spawn();
        s
    }

    fn unstarted(args: &[&str]) -> Server {
        let root = tempfile::Builder::new()
            .prefix("footfall-it-")
            .tempdir()
            .expect("create temp dir");
        let data = root.path().join("data");
        std::fs::create_dir_all(&data).expect("create data dir");
        let port = free_port();
        let http = Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client");
        Server {
            base: format!("http://127.0.0.1:{port}"),
            root,
            data,
            port,
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            child: None,
            http,
        }
    }

    pub fn log_path(&self) -> PathBuf {
        self.root.path().join("server.log")
    }

    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = File::open(self.log_path()) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    fn spawn(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open server log");
        let log2 = log.try_clone().expect("clone log handle");
        let listen = format!("127.0.0.1:{}", self.port);
        let mut cmd = Command::new(BIN);
        clean_env(&mut cmd);
        cmd.arg("--data")
            .arg(&self.data)
            .arg("serve")
            .arg("--listen")
            .arg(&listen)
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        let child = cmd.spawn().expect("spawn footfall serve");
        self.child = Some(child);
        self.wait_healthy();
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let probe = Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("probe client");
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "footfall serve exited early with {status}; log:\n{}",
                    self.log()
                );
            }
            if let Ok(r) = probe.get(self.url("/api/health")).send()
                && r.status().as_u16() == 200
            {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "footfall serve not healthy after 30 s on {}; log:\n{}",
                    self.base,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Process id of the running server, for killing it from another thread.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Kills the server abruptly (SIGKILL) and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the server gracefully (SIGTERM, then SIGKILL after 15 s).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Starts the server again on the same data dir and port (after `kill9` or `stop`, or
    /// killing the running one first).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Starts the server again if it is stopped.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "server is still running");
        self.spawn();
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    // ---------- CLI ----------

    /// Runs `footfall --data <dir> <args>`; returns the raw output.
    pub fn cli_output(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        clean_env(&mut cmd);
        cmd.arg("--data")
            .arg(&self.data)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run footfall CLI")
    }

    /// Runs the CLI, asserts success and returns stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.cli_output(args);
        assert!(
            out.status.success(),
            "`footfall {}` failed with {}\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn add_site(&self, domain: &str, tz: &str) {
        self.cli(&["site", "add", domain, "--timezone", tz]);
    }

    /// `key create --site D --scope S`; the key is the last non-empty stdout line.
    pub fn create_key(&self, domain: &str, scope: &str) -> String {
        let out = self.cli(&["key", "create", "--site", domain, "--scope", scope]);
        last_line(&out)
    }

    /// The admin token the running server keeps in DATA/admin-token.
    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data.join("admin-token"))
            .expect("read DATA/admin-token")
            .trim()
            .to_string()
    }

    // ---------- HTTP ----------

    /// `GET /api/health` as JSON (status, `backlog_bytes`, ...).
    pub fn health(&self) -> Value {
        self.http
            .get(self.url("/api/health"))
            .send()
            .and_then(|r| r.json())
            .expect("health")
    }

    /// POST /api/event with the given body, User-Agent, optional X-Forwarded-For and
    /// Content-Type.
    pub fn post_event(
        &self,
        body: &str,
        ua: &str,
        xff: Option<&str>,
        content_type: &str,
    ) -> Response {
        let mut rb = self
            .http
            .post(self.url("/api/event"))
            .header("User-Agent", ua)
            .header("Content-Type", content_type)
            .body(body.to_string());
        if let Some(x) = xff {
            rb = rb.header("X-Forwarded-For", x);
        }
        rb.send().expect("POST /api/event")
    }

    /// POST /api/v1/events with `Authorization: Bearer <key>` and a JSON body.
    /// `GET path` with `key` as the bearer token (none: no `Authorization` header).
    pub fn get_as(&self, key: Option<&str>, path: &str) -> Response {
        let mut rb = self.http.get(self.url(path));
        if let Some(key) = key {
            rb = rb.bearer_auth(key);
        }
        rb.send().expect("GET")
    }

    /// `GET /api/v1/sites/{site}/export{query}` with `key`, answered 200: the row count
    /// it announced (`x-footfall-export-rows`) and its NDJSON lines.
    pub fn export_rows(&self, key: &str, site: &str, query: &str) -> (Option<String>, Vec<Value>) {
        let r = self.get_as(Some(key), &format!("/api/v1/sites/{site}/export{query}"));
        assert_eq!(r.status().as_u16(), 200, "export{query}");
        let announced = r
            .headers()
            .get("x-footfall-export-rows")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        // An export that fails part-way ends its stream with an error: say so.
        let text = r
            .text()
            .unwrap_or_else(|e| panic!("export body ({announced:?} rows announced): {e}"));
        let rows = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("export line {l:?}: {e}")))
            .collect();
        (announced, rows)
    }

    /// `GET path` with `key`: the status and the JSON body (`Null` when not JSON).
    pub fn get_json(&self, key: &str, path: &str) -> (u16, Value) {
        let r = self.get_as(Some(key), path);
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }

    pub fn bulk(&self, key: &str, body: &Value) -> Response {
        self.try_bulk(key, body).expect("POST /api/v1/events")
    }

    pub fn try_bulk(&self, key: &str, body: &Value) -> reqwest::Result<Response> {
        self.http
            .post(self.url("/api/v1/events"))
            .bearer_auth(key)
            .header("Content-Type", "application/json")
            .header("User-Agent", CHROME_UA)
            .body(body.to_string())
            .send()
    }

    /// POST /api/v2/query with a Bearer key; returns status and the JSON body
    /// (`Value::Null` when the body is not JSON).
    pub fn query(&self, key: &str, q: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url("/api/v2/query"))
            .bearer_auth(key)
            .header("Content-Type", "application/json")
            .body(q.to_string())
            .send()
            .expect("POST /api/v2/query");
        let status = r.status().as_u16();
        let text = r.text().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A query that must succeed; returns the `results` array.
    pub fn query_ok(&self, key: &str, q: &Value) -> Vec<Value> {
        let (status, body) = self.query(key, q);
        assert_eq!(status, 200, "query {q} failed: {body}");
        body["results"]
            .as_array()
            .unwrap_or_else(|| panic!("no results array in {body} for {q}"))
            .clone()
    }

    /// Aggregate metrics (no dimensions) as f64s, in the order asked.
    pub fn aggregate(&self, key: &str, site: &str, range: &Value, metrics: &[&str]) -> Vec<f64> {
        self.aggregate_filtered(key, site, range, metrics, &json!([]))
    }

    pub fn aggregate_filtered(
        &self,
        key: &str,
        site: &str,
        range: &Value,
        metrics: &[&str],
        filters: &Value,
    ) -> Vec<f64> {
        let q =
            json!({"site_id": site, "metrics": metrics, "date_range": range, "filters": filters});
        let rows = self.query_ok(key, &q);
        assert_eq!(rows.len(), 1, "aggregate must return one row: {rows:?}");
        metric_values(&rows[0])
    }

    /// Polls the aggregate `metric` until it equals `want` (or `timeout` passes); returns
    /// the last value seen.
    /// Sends `events` (a JSON array) through the bulk API with `ingest`, which must
    /// accept them, and waits until `metric` over `range` reaches `want`, which it must.
    #[allow(clippy::too_many_arguments)]
    pub fn bulk_until_stored(
        &self,
        ingest: &str,
        stats: &str,
        site: &str,
        events: &Value,
        range: &Value,
        metric: &str,
        want: f64,
    ) {
        assert_eq!(self.bulk(ingest, events).status().as_u16(), 202, "bulk");
        let got = self.wait_for_metric(stats, site, range, metric, want, Duration::from_secs(30));
        assert_eq!(got, want, "{metric} stored");
    }

    pub fn wait_for_metric(
        &self,
        key: &str,
        site: &str,
        range: &Value,
        metric: &str,
        want: f64,
        timeout: Duration,
    ) -> f64 {
        let deadline = Instant::now() + timeout;
        loop {
            let (status, body) = self.query(
                key,
                &json!({"site_id": site, "metrics": [metric], "date_range": range}),
            );
            let got = if status == 200 {
                body["results"][0]["metrics"][0].as_f64()
            } else {
                None
            };
            if got == Some(want) || Instant::now() > deadline {
                return got.unwrap_or_else(|| panic!("query failed: {status} {body}"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Keep the caller's FOOTFALL_* environment from changing what the tests ask for.
fn clean_env(cmd: &mut Command) {
    for (k, _) in std::env::vars() {
        if k.starts_with("FOOTFALL_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_LOG", "info");
}

pub fn last_line(s: &str) -> String {
    s.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_else(|| panic!("no output line in {s:?}"))
        .to_string()
}

/// Runs the binary without a data dir (e.g. `--help`).
pub fn run_bin(args: &[&str], cwd: &Path) -> Output {
    let mut cmd = Command::new(BIN);
    clean_env(&mut cmd);
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .expect("run footfall")
}

/// The `metrics` array of a result row as f64s.
pub fn metric_values(row: &Value) -> Vec<f64> {
    row["metrics"]
        .as_array()
        .unwrap_or_else(|| panic!("row without metrics: {row}"))
        .iter()
        .map(|v| {
            v.as_f64()
                .unwrap_or_else(|| panic!("metric value {v} is not a number in {row}"))
        })
        .collect()
}

/// The `dimensions` array of a result row as strings.
pub fn dimension_values(row: &Value) -> Vec<String> {
    row["dimensions"]
        .as_array()
        .unwrap_or_else(|| panic!("row without dimensions: {row}"))
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// Asserts an error response: the given status and a JSON body
/// `{"error": <non-empty string>, "code": <non-empty snake_case string>}`; returns the body.
pub fn assert_json_error(what: &str, r: Response, status: u16) -> Value {
    let got = r.status().as_u16();
    let text = r.text().unwrap_or_default();
    assert_eq!(
        got, status,
        "{what}: expected status {status}, got {got}: {text}"
    );
    assert_error_body(what, &text)
}

pub fn assert_error_body(what: &str, text: &str) -> Value {
    let body: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("{what}: error body is not JSON ({e}): {text:?}"));
    let err = body["error"].as_str();
    let code = body["code"].as_str();
    assert!(
        err.is_some_and(|e| !e.trim().is_empty()),
        "{what}: `error` must be a non-empty string: {body}"
    );
    assert!(
        code.is_some_and(|c| !c.is_empty()
            && c.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')),
        "{what}: `code` must be a snake_case string: {body}"
    );
    body
}

/// Whether `got` equals the exact `value` rounded to an integer, accepting either
/// neighbour when `value` is a tie (x.5), since half-even and half-up are both common.
pub fn rounds_to(got: f64, value: f64, decimals: i32) -> bool {
    let scale = 10f64.powi(decimals);
    let v = value * scale;
    let lo = v.floor() / scale;
    let hi = v.ceil() / scale;
    let nearest = (v.round()) / scale;
    let is_tie = (v - v.floor() - 0.5).abs() < 1e-9;
    if is_tie {
        (got - lo).abs() < 0.01 || (got - hi).abs() < 0.01
    } else {
        (got - nearest).abs() < 0.01
    }
}

/// `[yesterday, tomorrow]` (UTC dates): covers events sent "now" across midnight and in
/// any site timezone (a range's dates are the site's: at 23:30 UTC it is already
/// tomorrow in Paris, and a range ending today would miss what was just sent).
pub fn recent_range() -> Value {
    let today = chrono::Utc::now().date_naive();
    let yesterday = today - chrono::Duration::days(1);
    let tomorrow = today + chrono::Duration::days(1);
    json!([
        yesterday.format("%Y-%m-%d").to_string(),
        tomorrow.format("%Y-%m-%d").to_string()
    ])
}

/// A site with a stats key, on a running server.
pub fn site_with_stats_key(server: &Server, domain: &str) -> String {
    server.add_site(domain, "UTC");
    server.create_key(domain, "stats")
}

/// Writes `toml` as `footfall.toml` in `dir`; returns its path.
pub fn write_config(dir: &Path, toml: &str) -> PathBuf {
    let path = dir.join("footfall.toml");
    std::fs::write(&path, toml).expect("write config");
    path
}
