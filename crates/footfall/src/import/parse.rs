//! Access-log line parsers (Apache/nginx combined and common, nginx JSON, Caddy JSON) and
//! the rules that decide which requests are page views. Pure functions, no I/O.

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};

/// Supported log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Apache/nginx "combined": `ip - user [time] "request" status bytes "referer" "ua"`.
    Combined,
    /// Apache/nginx "common": combined without referrer and user agent.
    Common,
    /// nginx `log_format ... escape=json` with the usual variable names as keys.
    NginxJson,
    /// Caddy's structured access log (`request.remote_ip`, `request.uri`, `ts`, ...).
    CaddyJson,
}

/// One request from a log line.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub ip: String,
    pub time: DateTime<Utc>,
    pub method: String,
    /// Request target as logged (usually path and query).
    pub target: String,
    pub status: u16,
    pub referrer: Option<String>,
    pub user_agent: Option<String>,
}

/// Why a well-formed line is not imported. Checked in this order; the first that
/// applies is the reason counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Skip {
    /// Not a GET request.
    Method,
    /// Status below 200 or at least 400.
    Error,
    /// A 3xx redirect (304 Not Modified is a cached page view and is kept).
    Redirect,
    /// A static file, by extension.
    Asset,
    /// A crawler or tool, by user agent (the server's own verdict).
    Bot,
}

impl Skip {
    pub const ALL: [Skip; 5] = [
        Skip::Method,
        Skip::Error,
        Skip::Redirect,
        Skip::Asset,
        Skip::Bot,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Skip::Method => "not GET",
            Skip::Error => "error status (< 200 or >= 400)",
            Skip::Redirect => "redirect (3xx except 304)",
            Skip::Asset => "asset (by extension)",
            Skip::Bot => "bot (by user agent)",
        }
    }

    pub fn flag(self) -> &'static str {
        match self {
            Skip::Method => "--include-non-get",
            Skip::Error => "--include-errors",
            Skip::Redirect => "--include-redirects",
            Skip::Asset => "--include-assets",
            Skip::Bot => "--include-bots",
        }
    }
}

/// Which skip rules are switched off.
#[derive(Debug, Clone, Copy, Default)]
pub struct Include {
    pub non_get: bool,
    pub errors: bool,
    pub redirects: bool,
    pub assets: bool,
    pub bots: bool,
}

/// File extensions that are not pages. Documented in docs/IMPORT.md.
pub const ASSET_EXTENSIONS: &[&str] = &[
    "css", "js", "mjs", "map", "json", "xml", "txt", "png", "jpg", "jpeg", "gif", "svg", "ico",
    "webp", "avif", "bmp", "tif", "tiff", "woff", "woff2", "ttf", "otf", "eot", "mp4", "webm",
    "mov", "avi", "mp3", "ogg", "wav", "flac", "m4a", "zip", "gz", "tgz", "bz2", "xz", "7z", "rar",
    "tar", "dmg", "exe", "msi", "iso", "deb", "rpm", "apk", "wasm",
];

/// The path of a request target: scheme and host of an absolute target removed, query
/// and fragment cut off.
pub fn target_path(target: &str) -> &str {
    let rest = match target.find("://") {
        Some(i) if target[..i].chars().all(|c| c.is_ascii_alphabetic()) => {
            let after = &target[i + 3..];
            after.find('/').map_or("/", |j| &after[j..])
        }
        _ => target,
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    &rest[..end]
}

pub fn is_asset(target: &str) -> bool {
    let path = target_path(target);
    let last = path.rsplit('/').next().unwrap_or("");
    match last.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() || last.starts_with('.') => {
            let ext = ext.to_ascii_lowercase();
            ASSET_EXTENSIONS.contains(&ext.as_str())
        }
        _ => false,
    }
}

/// The first skip rule that applies, if any. `is_bot` is asked last (it parses the UA).
pub fn skip_reason(
    rec: &Record,
    include: &Include,
    is_bot: impl FnOnce(&str) -> bool,
) -> Option<Skip> {
    if !include.non_get && rec.method != "GET" {
        return Some(Skip::Method);
    }
    if !include.errors && (rec.status < 200 || rec.status >= 400) {
        return Some(Skip::Error);
    }
    if !include.redirects && (300..400).contains(&rec.status) && rec.status != 304 {
        return Some(Skip::Redirect);
    }
    if !include.assets && is_asset(&rec.target) {
        return Some(Skip::Asset);
    }
    // Without a user agent (common format) there is nothing to judge.
    if !include.bots
        && let Some(ua) = &rec.user_agent
        && is_bot(ua)
    {
        return Some(Skip::Bot);
    }
    None
}

pub fn parse_line(format: Format, line: &str) -> Result<Record, String> {
    match format {
        Format::Combined => parse_clf(line, true),
        Format::Common => parse_clf(line, false),
        Format::NginxJson => parse_nginx_json(line),
        Format::CaddyJson => parse_caddy_json(line),
    }
}

/// A cursor over a common/combined log line.
struct Cursor<'a> {
    s: &'a str,
}

impl<'a> Cursor<'a> {
    fn skip_spaces(&mut self) {
        self.s = self.s.trim_start_matches(' ');
    }

    fn word(&mut self, what: &str) -> Result<&'a str, String> {
        self.skip_spaces();
        let end = self.s.find(' ').unwrap_or(self.s.len());
        if end == 0 {
            return Err(format!("missing {what}"));
        }
        let (w, rest) = self.s.split_at(end);
        self.s = rest;
        Ok(w)
    }

    fn bracketed(&mut self, what: &str) -> Result<&'a str, String> {
        self.skip_spaces();
        let inner = self
            .s
            .strip_prefix('[')
            .ok_or_else(|| format!("{what} must start with `[`"))?;
        let end = inner
            .find(']')
            .ok_or_else(|| format!("unterminated {what}"))?;
        self.s = &inner[end + 1..];
        Ok(&inner[..end])
    }

    /// A double-quoted field as written (escapes kept); `\"` does not end it.
    fn quoted_raw(&mut self, what: &str) -> Result<&'a str, String> {
        self.skip_spaces();
        let inner = self
            .s
            .strip_prefix('"')
            .ok_or_else(|| format!("{what} must be quoted"))?;
        let bytes = inner.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'"' => {
                    self.s = &inner[i + 1..];
                    return Ok(&inner[..i]);
                }
                b'\\' => i += 2,
                _ => i += 1,
            }
        }
        Err(format!("unterminated quoted {what}"))
    }

    /// A double-quoted field, unescaped.
    fn quoted(&mut self, what: &str) -> Result<String, String> {
        self.quoted_raw(what).map(unescape)
    }
}

/// Undoes Apache's and nginx's log escaping: `\"`, `\\` and `\xHH` (nginx writes `"` as
/// `\x22`; both write bytes outside printable ASCII, e.g. UTF-8 in a request line, as
/// `\xHH`). Other backslashes are kept. Bytes that are not UTF-8 are replaced.
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            match b.get(i + 1) {
                Some(&e @ (b'"' | b'\\')) => {
                    out.push(e);
                    i += 2;
                    continue;
                }
                Some(b'x') => {
                    let hex = b
                        .get(i + 2..i + 4)
                        .and_then(|h| std::str::from_utf8(h).ok());
                    if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        out.push(v);
                        i += 4;
                        continue;
                    }
                }
                _ => {}
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_clf_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_str(s, "%d/%b/%Y:%H:%M:%S %z")
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("bad time `{s}`: {e}"))
}

/// `METHOD TARGET [PROTOCOL]`.
fn split_request(req: &str) -> Result<(String, String), String> {
    let mut parts = req.split(' ').filter(|p| !p.is_empty());
    match (parts.next(), parts.next()) {
        (Some(m), Some(t)) => Ok((m.to_string(), t.to_string())),
        _ => Err(format!("bad request line `{}`", truncate(req, 80))),
    }
}

fn parse_status(s: &str) -> Result<u16, String> {
    s.parse::<u16>()
        .ok()
        .filter(|n| (100..1000).contains(n))
        .ok_or_else(|| format!("bad status `{}`", truncate(s, 20)))
}

fn non_empty(s: String) -> Option<String> {
    if s.is_empty() || s == "-" {
        None
    } else {
        Some(s)
    }
}

/// The words before the `[time]`: `ip ident user`, or Apache's `vhost_combined` /
/// `vhost_common` (`%v:%p %h %l %u`), whose leading `host:port` is told apart by the
/// client address that follows it.
fn client_address(c: &mut Cursor<'_>) -> Result<String, String> {
    let mut words = Vec::with_capacity(4);
    loop {
        c.skip_spaces();
        if c.s.is_empty() || c.s.starts_with('[') || words.len() == 4 {
            break;
        }
        words.push(c.word("client address")?);
    }
    match words.as_slice() {
        [ip, _ident, _user] => Ok(ip.to_string()),
        [_vhost, ip, _ident, _user] if ip.parse::<IpAddr>().is_ok() => Ok(ip.to_string()),
        [] => Err("missing client address".into()),
        _ => Err(
            "expected `client ident user` (or `vhost:port client ident user`) before the time"
                .into(),
        ),
    }
}

fn parse_clf(line: &str, combined: bool) -> Result<Record, String> {
    let mut c = Cursor { s: line };
    let ip = client_address(&mut c)?;
    let time = parse_clf_time(c.bracketed("time")?)?;
    // Split before unescaping: an escaped byte is never a separator.
    let (method, target) = split_request(c.quoted_raw("request")?)?;
    let (method, target) = (unescape(&method), unescape(&target));
    let status = parse_status(c.word("status")?)?;
    let bytes = c.word("size")?;
    if bytes != "-" && !bytes.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad size `{}`", truncate(bytes, 20)));
    }
    let (referrer, user_agent) = if combined {
        (
            non_empty(c.quoted("referrer")?),
            Some(c.quoted("user agent")?),
        )
    } else {
        (None, None)
    };
    // Anything after the last field (vhost, response time, ...) is ignored.
    Ok(Record {
        ip,
        time,
        method,
        target,
        status,
        referrer,
        user_agent,
    })
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn json_object(line: &str) -> Result<serde_json::Map<String, Value>, String> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err("not a JSON object".into()),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

fn str_of<'a>(o: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a str> {
    o.get(key).and_then(Value::as_str)
}

/// A status given as a number or a string (nginx writes `"status":"200"`).
fn status_of(v: Option<&Value>) -> Result<u16, String> {
    match v {
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| (100..1000).contains(n))
            .ok_or_else(|| format!("bad status {n}")),
        Some(Value::String(s)) => parse_status(s),
        _ => Err("missing `status`".into()),
    }
}

/// Seconds since the epoch (fractional) as a time.
fn unix_secs(secs: f64) -> Result<DateTime<Utc>, String> {
    if !secs.is_finite() {
        return Err("bad timestamp".into());
    }
    let micros = (secs * 1e6).round();
    if micros.abs() > 1e17 {
        return Err("timestamp out of range".into());
    }
    Utc.timestamp_micros(micros as i64)
        .single()
        .ok_or_else(|| "timestamp out of range".into())
}

fn rfc3339(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::<FixedOffset>::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("bad time `{}`: {e}", truncate(s, 40)))
}

fn parse_nginx_json(line: &str) -> Result<Record, String> {
    let o = json_object(line)?;
    let ip = str_of(&o, "remote_addr")
        .filter(|s| !s.is_empty())
        .ok_or("missing `remote_addr`")?
        .to_string();
    // `$time_iso8601` is often logged as `@timestamp` (for Elasticsearch), `timestamp`
    // or `time`.
    let iso = ["time_iso8601", "@timestamp", "timestamp", "time"]
        .iter()
        .find_map(|k| str_of(&o, k));
    let time = if let Some(t) = iso {
        rfc3339(t).or_else(|e| parse_clf_time(t).map_err(|_| e))?
    } else if let Some(t) = str_of(&o, "time_local") {
        parse_clf_time(t)?
    } else {
        match o.get("msec") {
            Some(Value::Number(n)) => unix_secs(n.as_f64().unwrap_or(f64::NAN))?,
            Some(Value::String(s)) => unix_secs(s.parse().map_err(|_| "bad `msec`")?)?,
            _ => return Err("missing `time_iso8601`, `time_local` or `msec`".into()),
        }
    };
    let (method, target) = match (str_of(&o, "request_method"), str_of(&o, "request_uri")) {
        (Some(m), Some(u)) if !m.is_empty() && !u.is_empty() => (m.to_string(), u.to_string()),
        _ => split_request(str_of(&o, "request").ok_or("missing `request`")?)?,
    };
    Ok(Record {
        ip,
        time,
        method,
        target,
        status: status_of(o.get("status"))?,
        // Many published configs spell the key `http_referrer`.
        referrer: ["http_referer", "http_referrer"]
            .iter()
            .find_map(|k| str_of(&o, k).and_then(|s| non_empty(s.to_string()))),
        user_agent: str_of(&o, "http_user_agent").map(String::from),
    })
}

/// First value of a header in Caddy's `{"Name": ["value", ...]}` map (names compared
/// case-insensitively).
fn caddy_header(headers: Option<&Value>, name: &str) -> Option<String> {
    let obj = headers?.as_object()?;
    let (_, v) = obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))?;
    match v {
        Value::Array(a) => a.first().and_then(Value::as_str).map(String::from),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// `1.2.3.4:5678` or `[2001:db8::1]:5678` without the port; anything else as it is.
fn without_port(addr: &str) -> String {
    match addr.parse::<SocketAddr>() {
        Ok(sa) => sa.ip().to_string(),
        Err(_) => addr.to_string(),
    }
}

/// A numeric `ts` in the unit of Caddy's `time_format`: `unix_seconds_float` (the
/// default), `unix_milli_float` or `unix_nano`, told apart by magnitude (seconds
/// below 1e11 reach the year 5138; milliseconds above it start in 1973).
fn caddy_unix(n: f64) -> Result<DateTime<Utc>, String> {
    let a = n.abs();
    let secs = if a < 1e11 {
        n
    } else if a < 1e14 {
        n / 1e3
    } else if a < 1e17 {
        n / 1e6
    } else {
        n / 1e9
    };
    unix_secs(secs)
}

/// A string `ts`: `rfc3339`/`rfc3339_nano`, `iso8601` (`2006-01-02T15:04:05.000-0700`)
/// or `common_log` (`02/Jan/2006:15:04:05 -0700`). `wall` has no offset and is refused.
fn caddy_time_str(s: &str) -> Result<DateTime<Utc>, String> {
    rfc3339(s)
        .or_else(|e| {
            DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| e)
        })
        .or_else(|e| parse_clf_time(s).map_err(|_| e))
}

fn parse_caddy_json(line: &str) -> Result<Record, String> {
    let o = json_object(line)?;
    let req = o
        .get("request")
        .and_then(Value::as_object)
        .ok_or("missing `request` object")?;
    // `client_ip` is Caddy's address after its trusted-proxy handling (2.7+),
    // `remote_ip` the peer's (2.5+); before 2.5 only `remote_addr`, `ip:port`.
    let ip = str_of(req, "client_ip")
        .or_else(|| str_of(req, "remote_ip"))
        .filter(|s| !s.is_empty())
        .map(String::from)
        .or_else(|| str_of(req, "remote_addr").map(without_port))
        .filter(|s| !s.is_empty())
        .ok_or("missing `request.remote_ip`")?;
    let time = match o.get("ts") {
        Some(Value::Number(n)) => caddy_unix(n.as_f64().unwrap_or(f64::NAN))?,
        Some(Value::String(s)) => caddy_time_str(s)?,
        _ => return Err("missing `ts`".into()),
    };
    let method = str_of(req, "method").ok_or("missing `request.method`")?;
    let target = str_of(req, "uri").ok_or("missing `request.uri`")?;
    let headers = req.get("headers");
    Ok(Record {
        ip,
        time,
        method: method.to_string(),
        target: target.to_string(),
        status: status_of(o.get("status"))?,
        referrer: caddy_header(headers, "Referer").and_then(non_empty),
        user_agent: caddy_header(headers, "User-Agent"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0";

    #[test]
    fn combined_line() {
        let line = format!(
            r#"83.149.9.216 - - [17/May/2015:10:05:03 +0200] "GET /a/b?x=1 HTTP/1.1" 200 203023 "http://ex.com/" "{UA}""#
        );
        let r = parse_line(Format::Combined, &line).expect("parses");
        assert_eq!(r.ip, "83.149.9.216");
        assert_eq!(r.time.to_rfc3339(), "2015-05-17T08:05:03+00:00");
        assert_eq!((r.method.as_str(), r.target.as_str()), ("GET", "/a/b?x=1"));
        assert_eq!(r.status, 200);
        assert_eq!(r.referrer.as_deref(), Some("http://ex.com/"));
        assert_eq!(r.user_agent.as_deref(), Some(UA));
    }

    #[test]
    fn combined_hex_escapes() {
        // nginx writes `"` as \x22; both servers write non-ASCII bytes as \xHH.
        let line = r#"1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] "GET /\xc3\xa9t\xc3\xa9?q=\x22a\x22 HTTP/1.1" 200 1 "-" "a \x22b\x22 \xZZ \\x41""#;
        let r = parse_line(Format::Combined, line).expect("parses");
        assert_eq!(r.target, "/été?q=\"a\"");
        assert_eq!(r.user_agent.as_deref(), Some(r#"a "b" \xZZ \x41"#));
        // An escaped space in the request line is not a separator.
        let line =
            r#"1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] "GET /a\x20b HTTP/1.1" 200 1 "-" "ua""#;
        let r = parse_line(Format::Combined, line).expect("parses");
        assert_eq!(r.target, "/a b");
        // A TLS handshake sent to the HTTP port stays one malformed word.
        let line = r#"1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" 400 226 "-" "-""#;
        assert!(parse_line(Format::Combined, line).is_err());
    }

    #[test]
    fn combined_escapes_and_dashes() {
        let line = r#"::1 - bob [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.0" 304 - "-" "say \"hi\" \\o/""#;
        let r = parse_line(Format::Combined, line).expect("parses");
        assert_eq!(r.referrer, None);
        assert_eq!(r.user_agent.as_deref(), Some(r#"say "hi" \o/"#));
        assert_eq!(r.status, 304);
    }

    #[test]
    fn vhost_combined_and_common() {
        let line = format!(
            r#"www.ex.com:443 2001:db8::7 - - [01/Mar/2024:10:00:00 +0000] "GET /v HTTP/1.1" 200 5 "-" "{UA}""#
        );
        let r = parse_line(Format::Combined, &line).expect("parses");
        assert_eq!((r.ip.as_str(), r.target.as_str()), ("2001:db8::7", "/v"));
        assert_eq!(r.user_agent.as_deref(), Some(UA));
        let line =
            r#"ex.com:80 198.51.100.4 - bob [01/Mar/2024:10:00:00 +0000] "GET / HTTP/1.0" 200 5"#;
        let r = parse_line(Format::Common, line).expect("parses");
        assert_eq!(r.ip, "198.51.100.4");
        // Four words whose second is no address, or five words, are not a vhost line.
        for line in [
            r#"ex.com:80 host.ex.net - - [01/Mar/2024:10:00:00 +0000] "GET / HTTP/1.0" 200 5"#,
            r#"a b 198.51.100.4 - - [01/Mar/2024:10:00:00 +0000] "GET / HTTP/1.0" 200 5"#,
            r#"198.51.100.4 - [01/Mar/2024:10:00:00 +0000] "GET / HTTP/1.0" 200 5"#,
        ] {
            assert!(parse_line(Format::Common, line).is_err(), "{line}");
        }
    }

    #[test]
    fn malformed_lines_are_errors() {
        for line in [
            "",
            "garbage",
            r#"1.2.3.4 - - [17/May/2015:10:05:03 +0000] "GET / HTTP/1.1" 200 1 "-" "truncated ua"#,
            r#"1.2.3.4 - - [bad time] "GET / HTTP/1.1" 200 1 "-" "ua""#,
            r#"1.2.3.4 - - [17/May/2015:10:05:03 +0000] "GET" 200 1 "-" "ua""#,
            r#"1.2.3.4 - - [17/May/2015:10:05:03 +0000] "GET / HTTP/1.1" abc 1 "-" "ua""#,
        ] {
            assert!(parse_line(Format::Combined, line).is_err(), "{line}");
        }
    }

    #[test]
    fn common_line_has_no_ua() {
        let line =
            r#"10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#;
        let r = parse_line(Format::Common, line).expect("parses");
        assert_eq!(r.user_agent, None);
        assert_eq!(r.time.to_rfc3339(), "2000-10-10T20:55:36+00:00");
    }

    #[test]
    fn nginx_json_line() {
        let line = format!(
            r#"{{"time_local":"17/May/2015:10:05:03 +0000","remote_addr":"1.2.3.4","request":"GET /p?q HTTP/1.1","status":"200","body_bytes_sent":"5","http_referer":"","http_user_agent":"{UA}"}}"#
        );
        let r = parse_line(Format::NginxJson, &line).expect("parses");
        assert_eq!((r.method.as_str(), r.target.as_str()), ("GET", "/p?q"));
        assert_eq!(r.referrer, None);
        assert_eq!(r.status, 200);
        let iso = r#"{"time_iso8601":"2024-03-01T12:00:00+01:00","remote_addr":"1.2.3.4","request_method":"POST","request_uri":"/x","status":404}"#;
        let r = parse_line(Format::NginxJson, iso).expect("parses");
        assert_eq!(r.time.to_rfc3339(), "2024-03-01T11:00:00+00:00");
        assert_eq!((r.method.as_str(), r.status), ("POST", 404));
        assert!(parse_line(Format::NginxJson, r#"{"remote_addr":"1.2.3.4"}"#).is_err());
    }

    #[test]
    fn nginx_json_common_key_spellings() {
        // The widespread `json_combined` format: `http_referrer`, `@timestamp`.
        let line = r#"{"@timestamp":"2024-03-01T11:00:00+01:00","remote_addr":"1.2.3.4","request":"GET / HTTP/1.1","status":"200","http_referrer":"https://www.google.com/","http_user_agent":"ua"}"#;
        let r = parse_line(Format::NginxJson, line).expect("parses");
        assert_eq!(r.time.to_rfc3339(), "2024-03-01T10:00:00+00:00");
        assert_eq!(r.referrer.as_deref(), Some("https://www.google.com/"));
        // `time` holding `$time_local`; an empty `http_referer` beside `http_referrer`.
        let line = r#"{"time":"01/Mar/2024:10:00:00 +0000","remote_addr":"1.2.3.4","request":"GET / HTTP/1.1","status":200,"http_referer":"","http_referrer":"https://ex.org/"}"#;
        let r = parse_line(Format::NginxJson, line).expect("parses");
        assert_eq!(r.time.to_rfc3339(), "2024-03-01T10:00:00+00:00");
        assert_eq!(r.referrer.as_deref(), Some("https://ex.org/"));
    }

    #[test]
    fn caddy_json_line() {
        let line = format!(
            r#"{{"level":"info","ts":1700000000.5,"logger":"http.log.access","msg":"handled request","request":{{"remote_ip":"10.0.0.9","client_ip":"203.0.113.7","proto":"HTTP/2.0","method":"GET","host":"ex.com","uri":"/docs/","headers":{{"User-Agent":["{UA}"],"Referer":["https://www.google.com/"]}}}},"status":200}}"#
        );
        let r = parse_line(Format::CaddyJson, &line).expect("parses");
        assert_eq!(r.ip, "203.0.113.7");
        assert_eq!(r.time.timestamp_millis(), 1_700_000_000_500);
        assert_eq!(r.referrer.as_deref(), Some("https://www.google.com/"));
        assert_eq!(r.user_agent.as_deref(), Some(UA));
        assert!(parse_line(Format::CaddyJson, r#"{"ts":1,"status":200}"#).is_err());
    }

    #[test]
    fn caddy_json_older_versions_and_time_formats() {
        let at = |ts: &str, req: &str| {
            format!(r#"{{"ts":{ts},"request":{{{req},"method":"GET","uri":"/"}},"status":200}}"#)
        };
        // Caddy before 2.5: only `remote_addr` with the port.
        for (req, ip) in [
            (r#""remote_addr":"203.0.113.7:51234""#, "203.0.113.7"),
            (r#""remote_addr":"[2001:db8::9]:443""#, "2001:db8::9"),
            (r#""remote_addr":"203.0.113.8""#, "203.0.113.8"),
        ] {
            let r = parse_line(Format::CaddyJson, &at("1700000000", req)).expect(req);
            assert_eq!(r.ip, ip);
        }
        let req = r#""remote_ip":"203.0.113.7""#;
        // 2023-11-14T22:13:20.5Z in each of Caddy's `time_format`s that has a zone.
        for ts in [
            "1700000000.5",
            "1700000000500.0",
            "1700000000500000000",
            r#""2023-11-14T22:13:20.5Z""#,
            r#""2023-11-14T23:13:20.500+0100""#,
        ] {
            let r = parse_line(Format::CaddyJson, &at(ts, req)).expect(ts);
            assert_eq!(r.time.timestamp_millis(), 1_700_000_000_500, "{ts}");
        }
        let r = parse_line(
            Format::CaddyJson,
            &at(r#""14/Nov/2023:23:13:20 +0100""#, req),
        )
        .expect("common_log");
        assert_eq!(r.time.timestamp(), 1_700_000_000);
        assert!(parse_line(Format::CaddyJson, &at(r#""2023/11/14 22:13:20.500""#, req)).is_err());
    }

    #[test]
    fn assets_by_extension() {
        assert!(is_asset("/a/b/style.CSS?v=3"));
        assert!(is_asset("/favicon.ico"));
        assert!(is_asset("https://ex.com/img/x.png#f"));
        assert!(!is_asset("/blog/post.html"));
        assert!(!is_asset("/"));
        assert!(!is_asset("/?file=x.png"));
        assert!(!is_asset("/v1.2/docs"));
    }

    #[test]
    fn skip_order_and_switches() {
        let mut r = parse_line(
            Format::Combined,
            r#"1.2.3.4 - - [17/May/2015:10:05:03 +0000] "HEAD /x.png HTTP/1.1" 404 1 "-" "bot""#,
        )
        .expect("parses");
        let none = Include::default();
        assert_eq!(skip_reason(&r, &none, |_| true), Some(Skip::Method));
        r.method = "GET".into();
        assert_eq!(skip_reason(&r, &none, |_| true), Some(Skip::Error));
        r.status = 301;
        assert_eq!(skip_reason(&r, &none, |_| true), Some(Skip::Redirect));
        r.status = 304;
        assert_eq!(skip_reason(&r, &none, |_| true), Some(Skip::Asset));
        r.target = "/x".into();
        assert_eq!(skip_reason(&r, &none, |_| true), Some(Skip::Bot));
        assert_eq!(skip_reason(&r, &none, |_| false), None);
        let all = Include {
            non_get: true,
            errors: true,
            redirects: true,
            assets: true,
            bots: true,
        };
        r.status = 500;
        r.target = "/x.js".into();
        assert_eq!(skip_reason(&r, &all, |_| true), None);
    }
}
