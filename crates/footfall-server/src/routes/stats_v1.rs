//! Plausible's legacy Stats API v1 (`GET /api/v1/stats/...`), which many existing clients
//! (dashboards, plugins, scripts) still call: each request is translated into a Stats API
//! v2 query and answered in v1's shapes (REFERENCE-plausible §2.3). Same keys, same rate
//! limit, same engine.

use crate::error::{ApiError, ApiResult};
use crate::routes::stats::{site_context, stats_site};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{Datelike, Days, Months, NaiveDate};
use footfall_core::query::{QueryOutput, parse_query, wildcard_to_regex};
use footfall_store::Site;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/stats/realtime/visitors",
            get(get_realtime_visitors),
        )
        .route("/api/v1/stats/aggregate", get(get_aggregate))
        .route("/api/v1/stats/timeseries", get(get_timeseries))
        .route("/api/v1/stats/breakdown", get(get_breakdown))
}

type Params = HashMap<String, String>;

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_query", message)
}

async fn site_of(
    state: &AppState,
    headers: &HeaderMap,
    p: &Params,
) -> ApiResult<std::sync::Arc<Site>> {
    let domain = p
        .get("site_id")
        .ok_or_else(|| bad("site_id is required (the site's domain)"))?;
    stats_site(state, headers, domain).await
}

/// v1's `period` and `date` as a v2 date range of dates: `7d` and `30d` end on `date`
/// (default today in the site's timezone) and include it, `month`, `6mo` and `12mo` are
/// whole months up to `date`'s, `custom` takes `date=FROM,TO`.
fn date_range(site: &Site, p: &Params) -> ApiResult<(Value, NaiveDate, NaiveDate)> {
    let tz: chrono_tz::Tz = site.timezone.parse().unwrap_or(chrono_tz::UTC);
    let today = chrono::Utc::now().with_timezone(&tz).date_naive();
    let period = p.get("period").map_or("30d", String::as_str);
    let parse = |s: &str| {
        NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map_err(|_| bad(format!("date {s:?} must be YYYY-MM-DD")))
    };
    let date = match (period, p.get("date")) {
        ("custom", _) | (_, None) => today,
        (_, Some(d)) => parse(d)?,
    };
    let month_start = |d: NaiveDate| d.with_day(1).unwrap_or(d);
    let month_end = |d: NaiveDate| {
        month_start(d)
            .checked_add_months(Months::new(1))
            .and_then(|n| n.pred_opt())
            .unwrap_or(d)
    };
    let back = |days: u64| date.checked_sub_days(Days::new(days)).unwrap_or(date);
    let (from, to) = match period {
        "day" => (date, date),
        "7d" => (back(6), date),
        "30d" => (back(29), date),
        "month" => (month_start(date), month_end(date)),
        "6mo" | "12mo" => {
            let months = if period == "6mo" { 5 } else { 11 };
            let first = month_start(date)
                .checked_sub_months(Months::new(months))
                .unwrap_or(date);
            (first, month_end(date))
        }
        "custom" => {
            let spec = p
                .get("date")
                .ok_or_else(|| bad("period=custom needs date=YYYY-MM-DD,YYYY-MM-DD"))?;
            let (a, b) = spec
                .split_once(',')
                .ok_or_else(|| bad("period=custom needs date=YYYY-MM-DD,YYYY-MM-DD"))?;
            (parse(a)?, parse(b)?)
        }
        other => {
            return Err(bad(format!(
                "period {other:?} must be day, 7d, 30d, month, 6mo, 12mo or custom"
            )));
        }
    };
    let iso = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    Ok((json!([iso(from), iso(to)]), from, to))
}

/// v1 filters (`visit:browser==Firefox;event:page==/blog/**`, `!=`, `|` between values,
/// `\|` for a literal bar, `*` wildcards) as v2 filters.
fn filters(p: &Params) -> ApiResult<Vec<Value>> {
    let Some(spec) = p.get("filters").filter(|s| !s.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for part in spec.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (dim, negated, values) = if let Some((d, v)) = part.split_once("!=") {
            (d, true, v)
        } else if let Some((d, v)) = part.split_once("==") {
            (d, false, v)
        } else {
            return Err(bad(format!(
                "filter {part:?} must be dimension==value or dimension!=value"
            )));
        };
        let values: Vec<String> = split_values(values);
        let wildcard = values.iter().any(|v| v.contains('*'));
        let (op, clauses): (&str, Vec<String>) = match (wildcard, negated) {
            (true, false) => (
                "matches",
                values.iter().map(|v| wildcard_to_regex(v)).collect(),
            ),
            (true, true) => (
                "matches_not",
                values.iter().map(|v| wildcard_to_regex(v)).collect(),
            ),
            (false, false) => ("is", values),
            (false, true) => ("is_not", values),
        };
        out.push(json!([op, dim.trim(), clauses]));
    }
    Ok(out)
}

fn split_values(s: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                chars.next();
                if let Some(last) = out.last_mut() {
                    last.push('|');
                }
            }
            '|' => out.push(String::new()),
            c => {
                if let Some(last) = out.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    out
}

fn metrics(p: &Params) -> Vec<String> {
    p.get("metrics")
        .map(|m| {
            m.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .filter(|m: &Vec<String>| !m.is_empty())
        .unwrap_or_else(|| vec!["visitors".to_string()])
}

/// Runs a v2 query body for `site`, as `POST /api/v2/query` would.
async fn run(state: &AppState, site: &Site, body: Value) -> ApiResult<QueryOutput> {
    let ctx = site_context(state, site).await?;
    let query = parse_query(&body, &ctx, chrono::Utc::now()).map_err(|e| bad(e.message))?;
    Ok(state.storage.query.run(site.id, ctx, query).await?)
}

/// `GET /api/v1/stats/realtime/visitors`: a bare number, the visitors of the last 5
/// minutes (the realtime endpoint's figure).
async fn get_realtime_visitors(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Query<Params>,
) -> ApiResult<Json<Value>> {
    let site = site_of(&state, &headers, &p).await?;
    let now = chrono::Utc::now().timestamp_micros();
    let recent = state
        .storage
        .live
        .active_visitors(site.id, now - 5 * 60 * 1_000_000)
        .await?;
    Ok(Json(json!(recent.len())))
}

async fn get_aggregate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Query<Params>,
) -> ApiResult<Json<Value>> {
    let site = site_of(&state, &headers, &p).await?;
    let (range, from, to) = date_range(&site, &p)?;
    let names = metrics(&p);
    let v2_filters = filters(&p)?;
    let body = |range: Value| json!({"site_id": site.domain, "metrics": names, "date_range": range, "filters": v2_filters});
    let current = run(&state, &site, body(range)).await?;
    let values = current
        .results
        .first()
        .map(|r| r.metrics.clone())
        .unwrap_or_default();
    let previous = match p.get("compare").map(String::as_str) {
        None => None,
        Some("previous_period") => {
            // The same number of days right before.
            let days = (to - from).num_days() + 1;
            let prev_to = from.pred_opt().unwrap_or(from);
            let prev_from = prev_to
                .checked_sub_days(Days::new(u64::try_from(days - 1).unwrap_or(0)))
                .unwrap_or(prev_to);
            let iso = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
            let out = run(&state, &site, body(json!([iso(prev_from), iso(prev_to)]))).await?;
            Some(
                out.results
                    .first()
                    .map(|r| r.metrics.clone())
                    .unwrap_or_default(),
            )
        }
        Some(other) => return Err(bad(format!("compare {other:?} must be previous_period"))),
    };
    let mut results = Map::new();
    for (i, name) in names.iter().enumerate() {
        let value = values.get(i).cloned().unwrap_or(Value::Null);
        let mut entry = json!({"value": value});
        if let Some(prev) = &previous {
            let before = prev.get(i).cloned().unwrap_or(Value::Null);
            entry["change"] = change(name, &value, &before);
            entry["comparison_value"] = before;
        }
        results.insert(name.clone(), entry);
    }
    Ok(Json(json!({"results": results})))
}

/// Plausible's change: percent for counts (100 from nothing), points for bounce rate.
fn change(metric: &str, now: &Value, before: &Value) -> Value {
    let (Some(a), Some(b)) = (now.as_f64(), before.as_f64()) else {
        return Value::Null;
    };
    if metric == "bounce_rate" {
        return json!((a - b).round() as i64);
    }
    if b == 0.0 {
        return json!(if a > 0.0 { 100 } else { 0 });
    }
    json!(((a - b) / b * 100.0).round() as i64)
}

async fn get_timeseries(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Query<Params>,
) -> ApiResult<Json<Value>> {
    let site = site_of(&state, &headers, &p).await?;
    let (range, _, _) = date_range(&site, &p)?;
    let period = p.get("period").map_or("30d", String::as_str);
    let interval = p
        .get("interval")
        .map(String::as_str)
        .unwrap_or(match period {
            "6mo" | "12mo" => "month",
            "day" => "hour",
            _ => "date",
        });
    let dimension = match interval {
        "date" | "day" => "time:day",
        "month" => "time:month",
        "hour" => "time:hour",
        "week" => "time:week",
        other => {
            return Err(bad(format!(
                "interval {other:?} must be date, month, hour or week"
            )));
        }
    };
    let names = metrics(&p);
    let out = run(
        &state,
        &site,
        json!({"site_id": site.domain, "metrics": names, "date_range": range,
               "filters": filters(&p)?, "dimensions": [dimension],
               "include": {"time_labels": true}}),
    )
    .await?;
    let by_label: HashMap<String, &Vec<Value>> = out
        .results
        .iter()
        .filter_map(|r| Some((r.dimensions.first()?.as_str()?.to_string(), &r.metrics)))
        .collect();
    let labels: Vec<String> = out
        .meta
        .get("time_labels")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let results: Vec<Value> = labels
        .iter()
        .map(|label| {
            let mut row = json!({"date": label});
            for (i, name) in names.iter().enumerate() {
                row[name] = by_label
                    .get(label)
                    .and_then(|m| m.get(i).cloned())
                    .unwrap_or(json!(0));
            }
            row
        })
        .collect();
    Ok(Json(json!({"results": results})))
}

async fn get_breakdown(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Query<Params>,
) -> ApiResult<Json<Value>> {
    let site = site_of(&state, &headers, &p).await?;
    let (range, _, _) = date_range(&site, &p)?;
    let property = p
        .get("property")
        .ok_or_else(|| bad("property is required (e.g. visit:source or event:page)"))?;
    let number = |key: &str, default: u64| -> ApiResult<u64> {
        p.get(key).map_or(Ok(default), |v| {
            v.parse()
                .map_err(|_| bad(format!("{key} must be a whole number, got {v:?}")))
        })
    };
    let limit = number("limit", 100)?.clamp(1, 1000);
    let page = number("page", 1)?.max(1);
    let names = metrics(&p);
    let out = run(
        &state,
        &site,
        json!({"site_id": site.domain, "metrics": names, "date_range": range,
               "filters": filters(&p)?, "dimensions": [property],
               "pagination": {"limit": limit, "offset": (page - 1) * limit}}),
    )
    .await?;
    // The row's key is the property's last part: `visit:source` -> `source`,
    // `event:props:author` -> `author`.
    let key = property.rsplit(':').next().unwrap_or(property).to_string();
    let results: Vec<Value> = out
        .results
        .iter()
        .map(|r| {
            let mut row = json!({});
            row[&key] = r.dimensions.first().cloned().unwrap_or(Value::Null);
            for (i, name) in names.iter().enumerate() {
                row[name] = r.metrics.get(i).cloned().unwrap_or(Value::Null);
            }
            row
        })
        .collect();
    Ok(Json(json!({"results": results})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn v1_filters_become_v2_filters() {
        let p = params(&[(
            "filters",
            "visit:browser==Firefox|Chrome;event:page!=/blog/**;visit:source==a\\|b",
        )]);
        assert_eq!(
            filters(&p).expect("valid"),
            vec![
                json!(["is", "visit:browser", ["Firefox", "Chrome"]]),
                json!(["matches_not", "event:page", ["^/blog/.*$"]]),
                json!(["is", "visit:source", ["a|b"]]),
            ]
        );
        assert!(filters(&params(&[("filters", "visit:browser=Firefox")])).is_err());
    }

    #[test]
    fn v1_periods_end_on_the_date_and_include_it() {
        let site = Site {
            id: 1,
            domain: "example.com".into(),
            timezone: "UTC".into(),
            identity_mode: footfall_store::IdentityMode::Cookieless,
            session_timeout_secs: 1800,
            allowed_hostnames: Vec::new(),
        };
        let range = |pairs: &[(&str, &str)]| date_range(&site, &params(pairs)).map(|r| r.0);
        assert_eq!(
            range(&[("period", "7d"), ("date", "2024-03-15")]).expect("7d"),
            json!(["2024-03-09", "2024-03-15"])
        );
        assert_eq!(
            range(&[("period", "month"), ("date", "2024-02-10")]).expect("month"),
            json!(["2024-02-01", "2024-02-29"])
        );
        assert_eq!(
            range(&[("period", "6mo"), ("date", "2024-03-15")]).expect("6mo"),
            json!(["2023-10-01", "2024-03-31"])
        );
        assert_eq!(
            range(&[("period", "custom"), ("date", "2024-01-01,2024-01-31")]).expect("custom"),
            json!(["2024-01-01", "2024-01-31"])
        );
        assert!(range(&[("period", "week")]).is_err());
    }

    #[test]
    fn changes_as_plausible_reports_them() {
        assert_eq!(change("visitors", &json!(150), &json!(100)), json!(50));
        assert_eq!(change("visitors", &json!(5), &json!(0)), json!(100));
        assert_eq!(change("bounce_rate", &json!(40), &json!(45)), json!(-5));
    }
}
