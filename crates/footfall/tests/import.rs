//! `footfall import` through the real binary against a running server: the real Apache
//! log (summary numbers recomputed here with simple code, page views in the Stats API,
//! a second import and a gzip copy adding nothing) and small fixtures of the other
//! formats.

mod common;

use common::{BIN, FIREFOX_UA, Server, dimension_values, site_with_stats_key};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn apache_log() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/testdata/access-logs/apache_logs.log"
    ));
    if p.is_file() {
        Some(p)
    } else {
        println!("note: {} absent; skipped", p.display());
        None
    }
}

/// The `key: value` lines of the import summary (first occurrence of each key).
fn summary(out: &str) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for line in out.lines() {
        if let Some((k, v)) = line.trim().split_once(": ") {
            m.entry(k.to_string()).or_insert_with(|| v.to_string());
        }
    }
    m
}

/// The pages with page views over `range`, in path order.
fn pages_with_views(server: &Server, stats: &str, site: &str, range: &Value) -> Vec<String> {
    server
        .query_ok(
            stats,
            &json!({"site_id": site, "metrics": ["pageviews"], "date_range": range,
                    "dimensions": ["event:page"], "order_by": [["event:page", "asc"]]}),
        )
        .iter()
        .map(|r| r["dimensions"][0].as_str().unwrap_or("").to_string())
        .collect()
}

/// A count from the summary: the number at the start of the value.
fn count(s: &HashMap<String, String>, key: &str) -> u64 {
    let v = s
        .get(key)
        .unwrap_or_else(|| panic!("no `{key}` in summary {s:?}"));
    v.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("`{key}` is not a count: {v}"))
}

fn import(server: &Server, args: &[&str]) -> HashMap<String, String> {
    let mut all = vec!["import", "--quiet"];
    all.extend_from_slice(args);
    let out = server.cli(&all);
    summary(&out)
}

/// Bot verdicts of user agents, from `footfall enrich` (the server's own verdict).
fn bot_verdicts(uas: &HashSet<String>) -> HashMap<String, bool> {
    let uas: Vec<&String> = uas.iter().collect();
    let input: String = uas
        .iter()
        .map(|ua| format!("{}\n", json!({"ua": ua})))
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(BIN)
        .arg("enrich")
        .current_dir(dir.path())
        .env_remove("FOOTFALL_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn footfall enrich");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("enrich output");
    writer.join().expect("writer").expect("write stdin");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("enrich JSON"))
        .collect();
    assert_eq!(lines.len(), uas.len());
    uas.into_iter()
        .zip(lines)
        .map(|(ua, v)| (ua.clone(), v["bot"].as_bool().expect("bot field")))
        .collect()
}

/// The documented asset extensions (docs/IMPORT.md), written out again here.
const ASSETS: &str = "css js mjs map json xml txt png jpg jpeg gif svg ico webp avif bmp tif tiff \
    woff woff2 ttf otf eot mp4 webm mov avi mp3 ogg wav flac m4a zip gz tgz bz2 xz 7z rar tar dmg \
    exe msi iso deb rpm apk wasm";

#[derive(Default, Debug, PartialEq)]
struct Expected {
    lines: u64,
    malformed: u64,
    method: u64,
    error: u64,
    redirect: u64,
    asset: u64,
    bot: u64,
    sent: u64,
    /// Distinct (ip, ua) and (ip, ua, day) of the sent lines: visitor count bounds.
    pairs: usize,
    pair_days: usize,
    /// Distinct (ip, ua) of the sent lines per day (`YYYY-MM-DD`).
    pairs_by_day: BTreeMap<String, usize>,
}

/// The summary recomputed with plain string splitting: a combined line without escaped
/// quotes splits into exactly 7 pieces on `"`.
fn expected(text: &str) -> Expected {
    struct Line {
        ip: String,
        day: String,
        method: String,
        path: String,
        status: u16,
        ua: String,
    }
    let assets: HashSet<&str> = ASSETS.split_whitespace().collect();
    let mut e = Expected::default();
    let mut parsed = Vec::new();
    for raw in text.lines() {
        e.lines += 1;
        let parts: Vec<&str> = raw.split('"').collect();
        let head: Vec<&str> = parts[0].split_whitespace().collect();
        let req: Vec<&str> = parts.get(1).map_or(vec![], |r| r.split(' ').collect());
        let status = parts
            .get(2)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse::<u16>().ok());
        let (7, Some(status), true) = (parts.len(), status, req.len() >= 2 && head.len() == 5)
        else {
            e.malformed += 1;
            continue;
        };
        let day = head[3].trim_start_matches('[')[..11].to_string();
        let path = req[1].split(['?', '#']).next().unwrap_or("").to_string();
        parsed.push(Line {
            ip: head[0].to_string(),
            day,
            method: req[0].to_string(),
            path,
            status,
            ua: parts[5].to_string(),
        });
    }
    let uas: HashSet<String> = parsed.iter().map(|l| l.ua.clone()).collect();
    let bots = bot_verdicts(&uas);
    let mut pairs = HashSet::new();
    let mut pair_days = HashSet::new();
    for l in parsed {
        let last = l.path.rsplit('/').next().unwrap_or("");
        let ext = last
            .rsplit_once('.')
            .map(|(_, x)| x.to_ascii_lowercase())
            .unwrap_or_default();
        if l.method != "GET" {
            e.method += 1;
        } else if l.status < 200 || l.status >= 400 {
            e.error += 1;
        } else if (300..400).contains(&l.status) && l.status != 304 {
            e.redirect += 1;
        } else if assets.contains(ext.as_str()) {
            e.asset += 1;
        } else if bots[&l.ua] {
            e.bot += 1;
        } else {
            e.sent += 1;
            pairs.insert((l.ip.clone(), l.ua.clone()));
            pair_days.insert((l.ip, l.ua, l.day));
        }
    }
    e.pairs = pairs.len();
    e.pair_days = pair_days.len();
    for (_, _, day) in &pair_days {
        let iso = chrono::NaiveDate::parse_from_str(day, "%d/%b/%Y")
            .map_or_else(|_| day.clone(), |d| d.to_string());
        *e.pairs_by_day.entry(iso).or_default() += 1;
    }
    e
}

fn got(s: &HashMap<String, String>) -> Expected {
    Expected {
        lines: count(s, "lines read"),
        malformed: count(s, "malformed"),
        method: count(s, "not GET"),
        error: count(s, "error status (< 200 or >= 400)"),
        redirect: count(s, "redirect (3xx except 304)"),
        asset: count(s, "asset (by extension)"),
        bot: count(s, "bot (by user agent)"),
        sent: count(s, "sent"),
        pairs: 0,
        pair_days: 0,
        pairs_by_day: BTreeMap::new(),
    }
}

#[test]
fn apache_log_imports_once_with_the_expected_summary() {
    let Some(log) = apache_log() else { return };
    let text = std::fs::read_to_string(&log).expect("read log");
    let want = expected(&text);
    assert_eq!(want.lines, 10_000);
    assert_eq!(want.malformed, 1, "the sample has one malformed line");
    assert!(want.sent > 1000, "{want:?}");

    let server = Server::start();
    let site = "semicomplete.com";
    let stats = site_with_stats_key(&server, site);
    let log_arg = log.to_str().expect("utf-8 path");
    let first = import(&server, &["--format", "combined", "--site", site, log_arg]);
    let mut g = got(&first);
    g.pairs = want.pairs;
    g.pair_days = want.pair_days;
    g.pairs_by_day = want.pairs_by_day.clone();
    assert_eq!(g, want, "summary: {first:?}");
    assert_eq!(count(&first, "stored"), want.sent, "{first:?}");
    assert_eq!(count(&first, "already imported"), 0);
    assert_eq!(count(&first, "rejected"), 0);
    assert!(
        first.keys().any(|k| k.ends_with(":8899")),
        "the malformed line is shown with its number: {first:?}"
    );

    let range = wait_for_the_log(&server, &stats, site, want.sent);
    let m = server.aggregate(&stats, site, &range, &["visitors", "visits"]);
    // Cookieless ids: one per (ip, ua) per day, a visit over midnight keeps its id.
    assert!(
        m[0] >= want.pairs as f64 && m[0] <= want.pair_days as f64,
        "visitors {} not within [{}, {}]",
        m[0],
        want.pairs,
        want.pair_days
    );
    assert!(m[1] >= m[0] && m[1] <= want.sent as f64, "visits {m:?}");

    // Again, and a gzip copy of the same lines: nothing new.
    let again = import(&server, &["--format", "combined", "--site", site, log_arg]);
    assert_eq!(count(&again, "stored"), 0, "{again:?}");
    assert_eq!(count(&again, "already imported"), want.sent);
    let gz = server.root.path().join("rotated.log.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).expect("create gz"),
        flate2::Compression::fast(),
    );
    enc.write_all(text.as_bytes()).expect("write gz");
    enc.finish().expect("finish gz");
    let gz_run = import(
        &server,
        &[
            "--format",
            "combined",
            "--site",
            site,
            gz.to_str().expect("utf-8 path"),
        ],
    );
    assert_eq!(count(&gz_run, "lines read"), 10_000, "{gz_run:?}");
    assert_eq!(count(&gz_run, "stored"), 0, "{gz_run:?}");
    std::thread::sleep(Duration::from_millis(600));
    let after = server.aggregate(&stats, site, &range, &["pageviews", "visitors", "visits"]);
    assert_eq!(after[0], want.sent as f64);
    assert_eq!(&after[1..], &m[..], "re-imports changed visitors/visits");
}

/// An import that starts its own server (none runs on the data directory) sends before
/// the server's first upkeep: the salts it makes for the log's old days must survive
/// that upkeep, so each day keeps one salt and one visitor per (ip, ua) and day.
#[test]
fn import_without_a_running_server_keeps_one_salt_per_day() {
    let Some(log) = apache_log() else { return };
    let text = std::fs::read_to_string(&log).expect("read log");
    let want = expected(&text);
    let mut server = Server::start();
    let site = "semicomplete.com";
    let stats = site_with_stats_key(&server, site);
    server.stop();
    let log_arg = log.to_str().expect("utf-8 path");
    let run = import(&server, &["--format", "combined", "--site", site, log_arg]);
    assert_eq!(count(&run, "stored"), want.sent, "{run:?}");
    server.start_again();
    let range = wait_for_the_log(&server, &stats, site, want.sent);
    let rows = server.query_ok(
        &stats,
        &json!({"site_id": site, "metrics": ["visitors"], "date_range": range,
                "dimensions": ["time:day"]}),
    );
    let got: BTreeMap<String, usize> = rows
        .iter()
        .map(|r| {
            let day = dimension_values(r).concat();
            (day, common::metric_values(r)[0] as usize)
        })
        .collect();
    assert_eq!(got, want.pairs_by_day);
}

/// Waits until the Stats API counts the real log's `sent` page views; its date range.
fn wait_for_the_log(server: &Server, stats: &str, site: &str, sent: u64) -> Value {
    let range = json!(["2015-05-17", "2015-05-20"]);
    let pv = server.wait_for_metric(
        stats,
        site,
        &range,
        "pageviews",
        sent as f64,
        Duration::from_secs(20),
    );
    assert_eq!(pv, sent as f64);
    range
}

fn write(dir: &Path, name: &str, lines: &[String]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, lines.join("\n") + "\n").expect("write fixture");
    p.to_str().expect("utf-8 path").to_string()
}

/// Imports a fixture of `format` and checks: 2 page views of one visitor in one visit,
/// one asset and one POST skipped, one malformed line.
fn fixture(format: &str, lines: Vec<String>) {
    let server = Server::start();
    let site = "fixture.example";
    let stats = site_with_stats_key(&server, site);
    let file = write(server.root.path(), "access.log", &lines);
    let s = import(&server, &["--format", format, "--site", site, &file]);
    assert_eq!(count(&s, "lines read"), 5, "{s:?}");
    assert_eq!(count(&s, "sent"), 2, "{s:?}");
    assert_eq!(count(&s, "stored"), 2, "{s:?}");
    assert_eq!(count(&s, "asset (by extension)"), 1, "{s:?}");
    assert_eq!(count(&s, "not GET"), 1, "{s:?}");
    assert_eq!(count(&s, "malformed"), 1, "{s:?}");
    assert!(s.keys().any(|k| k.ends_with("access.log:4")), "{s:?}");
    let range = json!(["2024-03-01", "2024-03-02"]);
    server.wait_for_metric(
        &stats,
        site,
        &range,
        "pageviews",
        2.0,
        Duration::from_secs(20),
    );
    let m = server.aggregate(&stats, site, &range, &["pageviews", "visitors", "visits"]);
    assert_eq!(m, vec![2.0, 1.0, 1.0]);
    let pages = pages_with_views(&server, &stats, site, &range);
    assert_eq!(pages, vec!["/", "/pricing"]);
    let again = import(&server, &["--format", format, "--site", site, &file]);
    assert_eq!(count(&again, "already imported"), 2, "{again:?}");
}

#[test]
fn common_format_fixture() {
    fixture(
        "common",
        vec![
            r#"198.51.100.7 - - [01/Mar/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 512"#.into(),
            r#"198.51.100.7 - - [01/Mar/2024:10:00:01 +0000] "GET /app.css HTTP/1.1" 200 99"#.into(),
            r#"198.51.100.7 - - [01/Mar/2024:11:02:00 +0100] "GET /pricing?plan=pro HTTP/1.1" 200 100"#.into(),
            r#"198.51.100.7 - - [not a time] "GET / HTTP/1.1" 200 512"#.into(),
            r#"198.51.100.7 - - [01/Mar/2024:10:03:00 +0000] "POST /login HTTP/1.1" 200 5"#.into(),
        ],
    );
}

#[test]
fn nginx_json_fixture() {
    let line = |time: &str, req: &str, status: &str| {
        json!({"time_local": time, "remote_addr": "198.51.100.8", "remote_user": "",
               "request": req, "status": status, "body_bytes_sent": "512",
               "request_time": "0.001", "http_referrer": "", "http_referer": "https://news.ycombinator.com/",
               "http_user_agent": FIREFOX_UA, "http_x_forwarded_for": ""})
        .to_string()
    };
    fixture(
        "nginx-json",
        vec![
            line("01/Mar/2024:10:00:00 +0000", "GET / HTTP/1.1", "200"),
            line(
                "01/Mar/2024:10:00:01 +0000",
                "GET /logo.svg HTTP/1.1",
                "200",
            ),
            line("01/Mar/2024:10:01:00 +0000", "GET /pricing HTTP/2.0", "304"),
            r#"{"time_local": "01/Mar/2024:10:01:00 +0000", "remote_addr": "#.into(),
            line("01/Mar/2024:10:03:00 +0000", "POST /api/x HTTP/1.1", "201"),
        ],
    );
}

#[test]
fn caddy_json_fixture() {
    let line = |ts: f64, method: &str, uri: &str| {
        json!({"level": "info", "ts": ts, "logger": "http.log.access.log0",
               "msg": "handled request",
               "request": {"remote_ip": "198.51.100.9", "remote_port": "51234",
                           "client_ip": "198.51.100.9", "proto": "HTTP/2.0", "method": method,
                           "host": "fixture.example", "uri": uri,
                           "headers": {"User-Agent": [FIREFOX_UA], "Referer": ["https://www.google.com/"],
                                       "Accept": ["text/html"]}},
               "bytes_read": 0, "user_id": "", "duration": 0.0012, "size": 512, "status": 200,
               "resp_headers": {"Content-Type": ["text/html"]}})
        .to_string()
    };
    // 2024-03-01T10:00:00Z
    let t0 = 1_709_287_200.0;
    fixture(
        "caddy-json",
        vec![
            line(t0, "GET", "/"),
            line(t0 + 1.0, "GET", "/fonts/inter.woff2"),
            line(t0 + 60.5, "GET", "/pricing"),
            r#"{"level":"info","ts":1709287200,"request":{"method":"GET"},"status":200}"#.into(),
            line(t0 + 120.0, "PUT", "/api/x"),
        ],
    );
}

/// Real-world combined variants in one import: a gzip cut before its trailer (its lines
/// are read, then the file is reported unreadable and the next file still imported), and
/// in a CRLF file an Apache `vhost_combined` line with an IPv6 client, nginx's extra
/// trailing fields and another offset, an escaped quote in the request, an absolute
/// request URL, `CONNECT`, and the `"-"` / TLS-handshake request lines of a 400.
#[test]
fn combined_variants_and_a_truncated_gzip() {
    let server = Server::start();
    let site = "variants.example";
    let stats = site_with_stats_key(&server, site);
    let ua = FIREFOX_UA;
    let gz = server.root.path().join("access.log.1.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(
        format!(
            "198.51.100.30 - - [01/Mar/2024:09:00:00 +0000] \"GET /gz HTTP/1.1\" 200 5 \"-\" \"{ua}\"\n"
        )
        .as_bytes(),
    )
    .expect("gzip");
    let mut bytes = enc.finish().expect("gzip");
    bytes.truncate(bytes.len() - 8); // no CRC and size
    std::fs::write(&gz, bytes).expect("write gz");
    let plain = [
        format!(
            r#"www.variants.example:443 2001:db8::30 - - [01/Mar/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 512 "-" "{ua}""#
        ),
        format!(
            r#"2001:db8::30 - - [01/Mar/2024:11:05:00 +0100] "GET /pricing?utm_source=x HTTP/2.0" 200 5 "https://www.google.com/" "{ua}" 0.012 "-" 0.010"#
        ),
        format!(
            r#"198.51.100.31 - - [01/Mar/2024:10:10:00 +0000] "GET /search?q=\"x\" HTTP/1.1" 200 5 "-" "{ua}""#
        ),
        r#"198.51.100.32 - - [01/Mar/2024:10:11:00 +0000] "-" 400 0 "-" "-""#.to_string(),
        r#"198.51.100.33 - - [01/Mar/2024:10:12:00 +0000] "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" 400 226 "-" "-""#.to_string(),
        r#"198.51.100.34 - - [01/Mar/2024:10:13:00 +0000] "CONNECT variants.example:443 HTTP/1.1" 400 0 "-" "-""#.to_string(),
        format!(
            r#"198.51.100.31 - - [01/Mar/2024:10:14:00 +0000] "GET http://variants.example/abs HTTP/1.1" 200 5 "-" "{ua}""#
        ),
    ];
    let file = server.root.path().join("access.log");
    std::fs::write(&file, plain.join("\r\n") + "\r\n").expect("write log");
    let out = server.cli_output(&[
        "import",
        "--quiet",
        "--format",
        "combined",
        "--site",
        site,
        gz.to_str().expect("utf-8 path"),
        file.to_str().expect("utf-8 path"),
    ]);
    // The summary is printed, and the exit status says a file was not read to its end.
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1 file(s) could not be read to the end"),
        "{stderr}"
    );
    let s = summary(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(count(&s, "lines read"), 8, "{s:?}");
    assert_eq!(count(&s, "sent"), 5, "{s:?}");
    assert_eq!(count(&s, "stored"), 5, "{s:?}");
    assert_eq!(count(&s, "not GET"), 1, "{s:?}");
    assert_eq!(count(&s, "malformed"), 2, "{s:?}");
    assert_eq!(count(&s, "unreadable"), 1, "{s:?}");
    assert!(s.keys().any(|k| k.ends_with("access.log:4")), "{s:?}");
    assert!(s.keys().any(|k| k.ends_with("access.log:5")), "{s:?}");
    assert!(s.keys().any(|k| k == "access.log.1.gz"), "{s:?}");
    let range = json!(["2024-03-01", "2024-03-01"]);
    server.wait_for_metric(
        &stats,
        site,
        &range,
        "pageviews",
        5.0,
        Duration::from_secs(20),
    );
    // Visitors: the IPv6 client (/ and /pricing, one visit), 198.51.100.31 (/search
    // and /abs), 198.51.100.30 (/gz).
    let m = server.aggregate(&stats, site, &range, &["pageviews", "visitors", "visits"]);
    assert_eq!(m, vec![5.0, 3.0, 3.0]);
    let pages = pages_with_views(&server, &stats, site, &range);
    assert_eq!(pages, vec!["/", "/abs", "/gz", "/pricing", "/search"]);
}
