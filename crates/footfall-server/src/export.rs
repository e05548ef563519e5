//! Export of stored events with their visits' attributes, as NDJSON or CSV: written by
//! `GET /api/v1/sites/{site}/export` and by `footfall export` when no server runs, so both
//! give the same bytes. Also the date ranges the native endpoints take.

use footfall_core::query::{SiteContext, parse_query};
use footfall_store::{ExportRow, Site};
use serde_json::{Value, json};

/// The CSV columns, in order: every field of `ExportRow` (`props` as a JSON object).
pub const CSV_COLUMNS: &[&str] = &[
    "time",
    "name",
    "hostname",
    "page",
    "title",
    "visitor",
    "session_id",
    "engaged_secs",
    "scroll_depth",
    "revenue_amount",
    "revenue_currency",
    "props",
    "entry_page",
    "source",
    "referrer",
    "channel",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "device",
    "browser",
    "browser_version",
    "os",
    "os_version",
    "country",
    "region",
    "city_name",
    "org",
    "label",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON object per line.
    Ndjson,
    /// RFC 4180: a header line, fields quoted when they hold a comma, quote or line break.
    Csv,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ndjson" | "jsonl" => Some(ExportFormat::Ndjson),
            "csv" => Some(ExportFormat::Csv),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Ndjson => "ndjson",
            ExportFormat::Csv => "csv",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Ndjson => "application/x-ndjson",
            ExportFormat::Csv => "text/csv; charset=utf-8",
        }
    }

    /// What comes before the rows (the CSV header line).
    pub fn header(self) -> Vec<u8> {
        match self {
            ExportFormat::Ndjson => Vec::new(),
            ExportFormat::Csv => {
                let mut out = CSV_COLUMNS.join(",").into_bytes();
                out.extend_from_slice(b"\r\n");
                out
            }
        }
    }

    /// Appends `rows`, one line each.
    pub fn write_rows(self, rows: &[ExportRow], out: &mut Vec<u8>) {
        for row in rows {
            let value = json!(row);
            match self {
                ExportFormat::Ndjson => {
                    out.extend_from_slice(value.to_string().as_bytes());
                    out.push(b'\n');
                }
                ExportFormat::Csv => {
                    for (i, column) in CSV_COLUMNS.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        csv_field(&value[*column], out);
                    }
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
    }
}

fn csv_field(v: &Value, out: &mut Vec<u8>) {
    let text = match v {
        Value::Null => return,
        Value::String(s) => std::borrow::Cow::Borrowed(s.as_str()),
        other => std::borrow::Cow::Owned(other.to_string()),
    };
    if text.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        out.extend_from_slice(text.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

/// A date range as the native endpoints and the export take it: a Stats API shorthand or
/// `FROM,TO` dates (site timezone), `default` when absent. Returns `[start, end)` in
/// microseconds and the range as the Stats API echoes it.
pub fn date_range(
    site: &Site,
    param: Option<&str>,
    default: &str,
) -> Result<(i64, i64, Value), String> {
    let range = match param.unwrap_or(default).split_once(',') {
        Some((from, to)) => json!([from.trim(), to.trim()]),
        None => json!(param.unwrap_or(default)),
    };
    let ctx = SiteContext {
        domain: site.domain.clone(),
        timezone: site.timezone.parse().unwrap_or(chrono_tz::UTC),
        goals: Vec::new(),
        stats_start: None,
    };
    let probe = json!({"site_id": site.domain, "metrics": ["visits"], "date_range": range});
    let query = parse_query(&probe, &ctx, chrono::Utc::now()).map_err(|e| e.message)?;
    Ok((
        query.range.start_utc.timestamp_micros(),
        query.range.end_utc.timestamp_micros(),
        query.echo["date_range"].clone(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> ExportRow {
        ExportRow {
            time: "2026-12-05T10:00:00.000Z".into(),
            name: "Signup".into(),
            hostname: "example.com".into(),
            page: "/a,b".into(),
            title: "Say \"hi\"".into(),
            visitor: "00000000000000ff".into(),
            session_id: "7".into(),
            engaged_secs: 0.0,
            scroll_depth: None,
            revenue_amount: Some(9.5),
            revenue_currency: Some("EUR".into()),
            props: [("plan".to_string(), "pro".to_string())].into(),
            entry_page: "/".into(),
            source: "Google".into(),
            referrer: String::new(),
            channel: "Organic Search".into(),
            utm_source: String::new(),
            utm_medium: String::new(),
            utm_campaign: String::new(),
            utm_content: String::new(),
            utm_term: String::new(),
            device: "Desktop".into(),
            browser: "Firefox".into(),
            browser_version: "133.0".into(),
            os: "Linux".into(),
            os_version: String::new(),
            country: "DE".into(),
            region: String::new(),
            city_name: String::new(),
            org: String::new(),
            label: String::new(),
        }
    }

    #[test]
    fn csv_columns_are_every_field_once() {
        let value = json!(row());
        let fields: std::collections::BTreeSet<&str> = value
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let columns: std::collections::BTreeSet<&str> = CSV_COLUMNS.iter().copied().collect();
        assert_eq!(fields, columns);
        assert_eq!(columns.len(), CSV_COLUMNS.len());
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let mut out = ExportFormat::Csv.header();
        ExportFormat::Csv.write_rows(&[row()], &mut out);
        let text = String::from_utf8(out).expect("utf-8");
        let line = text.lines().nth(1).expect("a row");
        assert!(
            line.starts_with(
                "2026-12-05T10:00:00.000Z,Signup,example.com,\"/a,b\",\"Say \"\"hi\"\"\",00000000000000ff,7,0.0,,9.5,EUR,\"{\"\"plan\"\":\"\"pro\"\"}\",/,Google,"
            ),
            "{line}"
        );
        let mut out = Vec::new();
        ExportFormat::Ndjson.write_rows(&[row(), row()], &mut out);
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(text.lines().count(), 2);
        let back: Value = serde_json::from_str(text.lines().next().unwrap_or("")).expect("json");
        assert_eq!(back["props"]["plan"], "pro");
    }
}
