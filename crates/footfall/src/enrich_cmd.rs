//! `footfall enrich`: every derived field of hits given as JSON lines on stdin (or one
//! hit from flags), one JSON line out per line in, in order. The same functions as the
//! ingest pipeline, so it shows what the server would store and drives the accuracy tests.

use std::collections::HashMap;
use std::io::{BufRead, BufWriter, Write};
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use footfall_enrich::geo::GeoIp;
use footfall_enrich::hints::ClientHints;
use footfall_enrich::hit::{HitInput, enrich_hit};
use footfall_enrich::rules::BlockRules;
use footfall_enrich::ua::UaParser;
use footfall_server::config::Config;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Args, Debug, Clone)]
pub struct EnrichArgs {
    /// MaxMind DB City or Country database (as for `serve`).
    #[arg(long, env = "FOOTFALL_GEOIP_CITY")]
    pub geoip_city: Option<PathBuf>,
    /// MaxMind DB ASN or ISP database (as for `serve`).
    #[arg(long, env = "FOOTFALL_GEOIP_ASN")]
    pub geoip_asn: Option<PathBuf>,
    /// One hit from flags instead of stdin: its user agent.
    #[arg(long)]
    pub ua: Option<String>,
    /// One hit: the client IP (used for the lookup, never printed).
    #[arg(long)]
    pub ip: Option<String>,
    /// One hit: the referrer.
    #[arg(long)]
    pub referrer: Option<String>,
    /// One hit: the page URL [default: https://example.com/].
    #[arg(long)]
    pub url: Option<String>,
    /// Worker threads for stdin input [default: available cores].
    #[arg(long)]
    pub threads: Option<usize>,
}

/// One input line. Unknown keys are ignored.
#[derive(Deserialize, Default)]
struct Line {
    #[serde(default)]
    ua: Option<String>,
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    referrer: Option<String>,
    #[serde(default)]
    url: Option<String>,
    /// Request headers (names case-insensitive): `Sec-CH-UA*`, `User-Agent`.
    #[serde(default)]
    headers: HashMap<String, String>,
    /// Site domain whose block rules (from the configuration file) apply.
    #[serde(default)]
    site: Option<String>,
    /// The tracker's `navigator.webdriver` flag.
    #[serde(default)]
    webdriver: bool,
}

const DEFAULT_URL: &str = "https://example.com/";
/// Lines handed to the workers at a time; output keeps input order.
const CHUNK: usize = 4096;

struct Ctx {
    parser: UaParser,
    geo: GeoIp,
    rules: BlockRules,
}

pub fn run(config: &Config, args: &EnrichArgs) -> anyhow::Result<()> {
    let geo = GeoIp::open(
        args.geoip_city.as_deref().or(config.geoip_city.as_deref()),
        args.geoip_asn.as_deref().or(config.geoip_asn.as_deref()),
    )?;
    let rules = BlockRules::compile(&config.sites)?;
    let ctx = Ctx {
        parser: UaParser::new(),
        geo,
        rules,
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());

    if args.ua.is_some() || args.ip.is_some() || args.referrer.is_some() || args.url.is_some() {
        let line = Line {
            ua: args.ua.clone(),
            ip: args.ip.clone(),
            referrer: args.referrer.clone(),
            url: args.url.clone(),
            ..Line::default()
        };
        writeln!(out, "{}", enrich_line(&ctx, line))?;
        return Ok(out.flush()?);
    }

    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut chunk: Vec<String> = Vec::with_capacity(CHUNK);
    loop {
        chunk.clear();
        let mut eof = false;
        let mut bytes = Vec::new();
        while chunk.len() < CHUNK {
            bytes.clear();
            // Invalid UTF-8 on one line must not stop the rest: read bytes, decode lossily.
            if input
                .read_until(b'\n', &mut bytes)
                .context("reading stdin")?
                == 0
            {
                eof = true;
                break;
            }
            let text = String::from_utf8_lossy(&bytes);
            let line = text.trim_end_matches(['\n', '\r']);
            if !line.trim().is_empty() {
                chunk.push(line.to_string());
            }
        }
        let results = process_chunk(&ctx, &chunk, threads);
        for r in results {
            out.write_all(r.as_bytes())?;
            out.write_all(b"\n")?;
        }
        if eof {
            break;
        }
    }
    out.flush()?;
    Ok(())
}

fn process_chunk(ctx: &Ctx, lines: &[String], threads: usize) -> Vec<String> {
    if threads <= 1 || lines.len() < 256 {
        return lines.iter().map(|l| process_text(ctx, l)).collect();
    }
    let per = lines.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = lines
            .chunks(per)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|l| process_text(ctx, l))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                // A worker panic is a bug; report it per line rather than losing output.
                h.join().unwrap_or_else(|_| {
                    vec![json!({"error": "internal error while enriching"}).to_string(); per]
                })
            })
            .take(lines.len())
            .collect()
    })
}

fn process_text(ctx: &Ctx, text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Err(e) => json!({"error": format!("invalid JSON: {e}")}).to_string(),
        Ok(v) if !v.is_object() => json!({"error": "each line must be a JSON object"}).to_string(),
        Ok(v) => match serde_json::from_value::<Line>(v) {
            Err(e) => json!({"error": format!("invalid hit: {e}")}).to_string(),
            Ok(line) => enrich_line(ctx, line),
        },
    }
}

/// One output line: the derived fields in their documented order, or `{"error": ...}`.
fn enrich_line(ctx: &Ctx, line: Line) -> String {
    let headers: HashMap<String, String> = line
        .headers
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let ip = match line.ip.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match s.parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                return json!({"error": format!("`ip` {s:?} is not an IP address")}).to_string();
            }
        },
    };
    let ua = line
        .ua
        .or_else(|| headers.get("user-agent").cloned())
        .unwrap_or_default();
    let hints = ClientHints::from_headers(|name| headers.get(name).map(String::as_str));
    let url = line.url.unwrap_or_else(|| DEFAULT_URL.to_string());
    let referrer = line.referrer.unwrap_or_default();
    let rules = line.site.as_deref().and_then(|s| ctx.rules.for_site(s));
    let hit = HitInput {
        ua: &ua,
        ip,
        referrer: &referrer,
        url: &url,
        hints,
        cdn_country: None,
        webdriver: line.webdriver,
    };
    match enrich_hit(&ctx.parser, &ctx.geo, rules, &hit) {
        Ok(e) => serde_json::to_string(&e)
            .unwrap_or_else(|e| json!({"error": e.to_string()}).to_string()),
        Err(e) => json!({"error": format!("`url`: {e}")}).to_string(),
    }
}
