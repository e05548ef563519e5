//! `footfall import`: web-server access logs into a site, through the bulk ingestion API
//! of a running server (or one started in-process on the data directory), so imported
//! hits get the same enrichment, cookieless visitor ids and sessions as live traffic.
//!
//! Each line becomes at most one page view whose `id` is derived from the line's
//! position and bytes: importing a file again (or a log that has grown since) stores
//! only lines the server has not seen. Lines are sent in file order, one request at a
//! time, because the server sessionizes by event time and logs are in time order.

mod parse;

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use footfall_enrich::ua::UaParser;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::simulate::{Target, ensure_site, post_one};
pub use parse::Format;
use parse::{Include, Skip, parse_line, skip_reason, target_path};

#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "Examples:\n  footfall import --format combined --site example.com /var/log/nginx/access.log*\n  footfall import --format caddy-json --site example.com --include-redirects access.json.gz\n\n\
Files may be plain or gzip (detected by content); give them oldest first. Skipped by default:\nnon-GET requests, statuses < 200 or >= 400, 3xx redirects (304 is kept), static files by\nextension, and bots by user agent. Importing the same lines again adds nothing.\nSee docs/IMPORT.md."
)]
pub struct ImportArgs {
    /// Log format of every FILE.
    #[arg(long, value_enum)]
    pub format: Format,
    /// Site domain the hits belong to (created with timezone UTC if it does not exist);
    /// page URLs become http://SITE/<request path>.
    #[arg(long)]
    pub site: String,
    /// Log files, plain or gzip, oldest first.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Import requests for static files (css, js, images, fonts, ...) too.
    #[arg(long)]
    pub include_assets: bool,
    /// Import requests answered with an error status (< 200 or >= 400) too.
    #[arg(long)]
    pub include_errors: bool,
    /// Import 3xx redirect responses too.
    #[arg(long)]
    pub include_redirects: bool,
    /// Import requests with methods other than GET (HEAD, POST, ...) too.
    #[arg(long)]
    pub include_non_get: bool,
    /// Send requests from bots too: the server still drops them, but counts them in
    /// the site's drops (`bots_dropped`).
    #[arg(long)]
    pub include_bots: bool,
    /// Events per bulk request.
    #[arg(long, default_value_t = 5000)]
    pub batch: usize,
    #[command(flatten)]
    pub send: crate::simulate::SendArgs,
}

impl ImportArgs {
    fn include(&self) -> Include {
        Include {
            non_get: self.include_non_get,
            errors: self.include_errors,
            redirects: self.include_redirects,
            assets: self.include_assets,
            bots: self.include_bots,
        }
    }
}

/// Malformed lines shown in the summary.
const MALFORMED_SHOWN: usize = 5;

/// What the reader saw.
#[derive(Debug, Default)]
struct ReadStats {
    lines: u64,
    sent: u64,
    skipped: HashMap<Skip, u64>,
    malformed: u64,
    malformed_samples: Vec<String>,
    /// Files whose reading stopped early (a truncated or corrupt gzip, an I/O error).
    read_errors: Vec<String>,
}

impl ReadStats {
    fn malformed(&mut self, name: &str, line_no: u64, reason: &str, line: &str) {
        self.malformed += 1;
        if self.malformed_samples.len() < MALFORMED_SHOWN {
            let shown: String = line.chars().take(160).collect();
            self.malformed_samples
                .push(format!("{name}:{line_no}: {reason}: {shown}"));
        }
    }
}

/// Lines longer than this are malformed (no web server writes one; Apache's and nginx's
/// request line and header limits keep a combined line far below it).
const MAX_LINE: usize = 1 << 20;

/// Reads up to and including the next `\n` into `out`, keeping at most `max` bytes of
/// it. Returns the bytes consumed (0 at the end) and whether the line was longer.
fn read_line_capped(
    r: &mut dyn BufRead,
    out: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<(usize, bool)> {
    let (mut total, mut long) = (0, false);
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok((total, long));
        }
        let (n, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        let room = max.saturating_sub(out.len());
        long |= n > room;
        out.extend_from_slice(&buf[..n.min(room)]);
        r.consume(n);
        total += n;
        if done {
            return Ok((total, long));
        }
    }
}

/// One bulk request body and where its events came from.
struct Batch {
    body: Vec<u8>,
    /// (file index, line number) of each event, for naming rejected lines.
    origins: Vec<(usize, u64)>,
}

/// Counts bytes read from the underlying file (compressed bytes for gzip), for the
/// progress bar.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens a log file, decompressing it when it starts with the gzip magic bytes.
fn open_log(path: &Path, count: Arc<AtomicU64>) -> anyhow::Result<Box<dyn BufRead>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut raw = BufReader::with_capacity(256 * 1024, Counting { inner: file, count });
    let head = raw
        .fill_buf()
        .with_context(|| format!("cannot read {}", path.display()))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        // Multi-member: logrotate and `cat a.gz b.gz` both produce several members.
        Ok(Box::new(BufReader::with_capacity(
            256 * 1024,
            flate2::read::MultiGzDecoder::new(raw),
        )))
    } else {
        Ok(Box::new(raw))
    }
}

/// The event id of a line: its position and bytes, so the same line of the same file
/// maps to the same id on every import, and a grown log keeps the ids of its old lines.
pub fn line_id(line_no: u64, raw: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(line_no.to_string().as_bytes());
    h.update(b"\n");
    h.update(raw);
    let digest = h.finalize();
    let mut id = String::from("log-");
    for b in &digest[..16] {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// Reads every file, classifies each line and hands batches to `tx`. Runs on its own
/// thread (parsing and hashing are CPU work).
fn read_files(
    args: &ImportArgs,
    bytes_read: &Arc<AtomicU64>,
    tx: &tokio::sync::mpsc::Sender<Batch>,
) -> anyhow::Result<ReadStats> {
    let include = args.include();
    let ua = (!include.bots).then(UaParser::new);
    let mut stats = ReadStats::default();
    let batch_size = args.batch.max(1);
    let mut batch = Batch {
        body: Vec::with_capacity(batch_size * 400),
        origins: Vec::with_capacity(batch_size),
    };
    let mut file_offset = 0u64;
    let mut raw = Vec::with_capacity(1024);
    for (file_index, path) in args.files.iter().enumerate() {
        let counter = Arc::new(AtomicU64::new(0));
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let mut reader = match open_log(path, counter.clone()) {
            Ok(r) => r,
            Err(e) => {
                stats.read_errors.push(format!("{name}: {e:#}; skipped"));
                continue;
            }
        };
        let mut line_no = 0u64;
        loop {
            raw.clear();
            let (n, too_long) = match read_line_capped(&mut reader, &mut raw, MAX_LINE) {
                Ok(r) => r,
                Err(e) => {
                    // A truncated gzip (a log still being compressed, a cut download)
                    // or an I/O error: keep what was read, go on with the next file.
                    if !raw.iter().all(u8::is_ascii_whitespace) {
                        stats.lines += 1;
                        let line = String::from_utf8_lossy(&raw).into_owned();
                        stats.malformed(&name, line_no + 1, "cut off by a read error", &line);
                    }
                    stats.read_errors.push(format!(
                        "{name}: {e} after line {line_no}; the rest of the file is skipped"
                    ));
                    break;
                }
            };
            if n == 0 {
                break;
            }
            line_no += 1;
            while matches!(raw.last(), Some(b'\n' | b'\r')) {
                raw.pop();
            }
            if line_no.is_multiple_of(1024) {
                bytes_read.store(
                    file_offset + counter.load(Ordering::Relaxed),
                    Ordering::Relaxed,
                );
            }
            if raw.iter().all(u8::is_ascii_whitespace) {
                continue; // blank lines are neither requests nor malformed
            }
            stats.lines += 1;
            // Logs are not always UTF-8 (user agents in Latin-1): keep what can be read.
            let line = String::from_utf8_lossy(&raw);
            if too_long {
                stats.malformed(&name, line_no, "line longer than 1 MiB", &line);
                continue;
            }
            let rec = match parse_line(args.format, &line) {
                Ok(r) => r,
                Err(e) => {
                    stats.malformed(&name, line_no, &e, &line);
                    continue;
                }
            };
            let reason = skip_reason(&rec, &include, |agent| {
                ua.as_ref().is_some_and(|p| p.parse(agent).bot.is_some())
            });
            if let Some(reason) = reason {
                *stats.skipped.entry(reason).or_default() += 1;
                continue;
            }
            let mut path_part = target_path(&rec.target).to_string();
            if !path_part.starts_with('/') {
                path_part.insert(0, '/');
            }
            // Keep the query string: UTM parameters in it are the visit's source.
            let query = rec
                .target
                .find('?')
                .map_or("", |i| &rec.target[i..])
                .split('#')
                .next()
                .unwrap_or("");
            let mut event = json!({
                "name": "pageview",
                "url": format!("http://{}{}{}", args.site, path_part, query),
                "domain": &args.site,
                "timestamp": rec.time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                "ip": rec.ip,
                "id": line_id(line_no, &raw),
            });
            if let Some(r) = &rec.referrer {
                event["referrer"] = json!(r);
            }
            if let Some(u) = &rec.user_agent {
                event["user_agent"] = json!(u);
            }
            batch
                .body
                .push(if batch.origins.is_empty() { b'[' } else { b',' });
            serde_json::to_writer(&mut batch.body, &event)?;
            batch.origins.push((file_index, line_no));
            stats.sent += 1;
            if batch.origins.len() >= batch_size {
                batch.body.push(b']');
                let full = std::mem::replace(
                    &mut batch,
                    Batch {
                        body: Vec::with_capacity(batch_size * 400),
                        origins: Vec::with_capacity(batch_size),
                    },
                );
                if tx.blocking_send(full).is_err() {
                    return Ok(stats); // the sender failed; its error is reported
                }
            }
        }
        file_offset += counter.load(Ordering::Relaxed);
        bytes_read.store(file_offset, Ordering::Relaxed);
    }
    if !batch.origins.is_empty() {
        batch.body.push(b']');
        let _ = tx.blocking_send(batch);
    }
    Ok(stats)
}

/// What the server said about the sent events.
#[derive(Debug, Default)]
struct SendStats {
    accepted: u64,
    duplicates: u64,
    rejected: u64,
    rejected_samples: Vec<String>,
}

/// Entry point of `footfall import`.
pub async fn run(target: Target, args: ImportArgs) -> anyhow::Result<()> {
    let target = args.send.explicit_target()?.unwrap_or(target);
    if args.site.trim().is_empty() {
        bail!("--site must not be empty");
    }
    let mut total_bytes = 0u64;
    for f in &args.files {
        let meta = std::fs::metadata(f).with_context(|| format!("cannot open {}", f.display()))?;
        if !meta.is_file() {
            bail!("{} is not a file", f.display());
        }
        total_bytes += meta.len();
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .context("building the HTTP client")?;
    if !args.send.no_create_site {
        ensure_site(&client, &target, &args.site).await;
    }
    let pb = if args.send.quiet {
        ProgressBar::hidden()
    } else {
        let pb = ProgressBar::new(total_bytes);
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes}  {binary_bytes_per_sec}  ETA {eta}",
        ) {
            pb.set_style(style);
        }
        pb
    };

    let start = Instant::now();
    let bytes_read = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(2);
    let reader = {
        let (args, bytes_read) = (args.clone(), bytes_read.clone());
        std::thread::Builder::new()
            .name("import-read".into())
            .spawn(move || read_files(&args, &bytes_read, &tx))
            .context("starting the reader thread")?
    };
    let url = format!("{}/api/v1/events", target.base_url);
    let mut sent = SendStats::default();
    let send_result: anyhow::Result<()> = async {
        while let Some(batch) = rx.recv().await {
            pb.set_position(bytes_read.load(Ordering::Relaxed));
            let reply = post_one(&client, &url, &target.token, Bytes::from(batch.body)).await?;
            sent.accepted += reply.accepted;
            sent.duplicates += reply.duplicates;
            sent.rejected += reply.rejected;
            for (index, err) in reply.rejected_at {
                if sent.rejected_samples.len() < MALFORMED_SHOWN
                    && let Some((file, line)) = batch.origins.get(index)
                {
                    let name = args.files.get(*file).map(|p| p.display().to_string());
                    sent.rejected_samples
                        .push(format!("{}:{line}: {err}", name.unwrap_or_default()));
                }
            }
            pb.set_position(bytes_read.load(Ordering::Relaxed));
        }
        Ok(())
    }
    .await;
    // Dropping the receiver stops the reader if sending failed.
    drop(rx);
    let read = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the log reader panicked"))?;
    pb.finish_and_clear();
    send_result?;
    let read = read?;
    let elapsed = start.elapsed();
    print_summary(&args, &read, &sent, total_bytes, elapsed);
    if !read.read_errors.is_empty() {
        // The summary is printed and what was read is stored; a script still has to
        // see that some input was not.
        bail!(
            "{} file(s) could not be read to the end (listed as unreadable above); the lines \
             read before that were imported. Repair or replace them and run the import \
             again: lines already imported are recognised and not stored twice",
            read.read_errors.len()
        );
    }
    Ok(())
}

fn print_summary(
    args: &ImportArgs,
    read: &ReadStats,
    sent: &SendStats,
    total_bytes: u64,
    elapsed: Duration,
) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    println!(
        "import of {} file(s) ({:.1} MB) into {} took {:.2} s ({:.0} lines/s)",
        args.files.len(),
        total_bytes as f64 / 1e6,
        args.site,
        secs,
        read.lines as f64 / secs
    );
    let stored = sent.accepted.saturating_sub(sent.duplicates);
    println!("lines read: {}", read.lines);
    println!("sent: {}", read.sent);
    println!("  stored: {stored}");
    println!("  already imported: {}", sent.duplicates);
    println!("  rejected: {}", sent.rejected);
    for msg in &sent.rejected_samples {
        println!("    {msg}");
    }
    let skipped: u64 = read.skipped.values().sum();
    println!("skipped: {skipped}");
    for reason in Skip::ALL {
        let n = read.skipped.get(&reason).copied().unwrap_or(0);
        println!("  {}: {n} ({} to import)", reason.label(), reason.flag());
    }
    println!("malformed: {}", read.malformed);
    for msg in &read.malformed_samples {
        println!("  {msg}");
    }
    if !read.read_errors.is_empty() {
        println!("unreadable: {}", read.read_errors.len());
        for msg in &read.read_errors {
            println!("  {msg}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_depend_on_position_and_bytes() {
        let a = line_id(1, b"x");
        assert_eq!(a, line_id(1, b"x"));
        assert_ne!(a, line_id(2, b"x"));
        assert_ne!(a, line_id(1, b"y"));
        assert_eq!(a.len(), 4 + 32);
    }
}
