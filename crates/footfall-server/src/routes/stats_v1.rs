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
use footfall_core::query::{Metric, QueryOutput, change, parse_v1_query, wildcard_to_regex};
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

/// v1's `period` and `date` as a v2 date range of dates: `7d` and `30d` are the 7 (30)
/// days before `date` (default today in the site's timezone), which they leave out, as
/// Plausible's since v3.0 ("Last 7d and 30d periods do not include today anymore"),
/// `month`, `6mo` and `12mo` are whole months up to `date`'s, `custom` takes
/// `date=FROM,TO`.
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
        "7d" => (back(7), back(1)),
        "30d" => (back(30), back(1)),
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
        // Plausible trims the property and the value around the operator.
        let values: Vec<String> = split_values(values.trim());
        let wildcard = values.iter().any(|v| v.contains('*'));
        let (op, clauses): (&str, Vec<String>) = match (wildcard, negated) {
            (true, false) => ("matches", values.iter().map(|v| v1_wildcard(v)).collect()),
            (true, true) => (
                "matches_not",
                values.iter().map(|v| v1_wildcard(v)).collect(),
            ),
            (false, false) => ("is", values),
            (false, true) => ("is_not", values),
        };
        out.push(json!([op, dim.trim(), clauses]));
    }
    Ok(out)
}

/// A v1 filter value with `*` wildcards as an anchored regex. In v1 filters `*` matches
/// any characters, `/` included (Plausible's docs: "`event:page==/blog/*` ... matches any
/// character"; its code turns both `*` and `**` into `.*`), unlike goal patterns, where
/// `*` stays within one path segment.
fn v1_wildcard(value: &str) -> String {
    let mut any = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        if c != '*' {
            any.push(c);
        } else if !any.ends_with("**") {
            any.push_str("**");
        }
    }
    wildcard_to_regex(&any)
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

/// Event-only properties: a visit has none of them, so session metrics cannot be broken
/// down or filtered by them.
fn event_only(dimension: &str) -> bool {
    matches!(dimension, "event:name" | "event:goal") || dimension.starts_with("event:props:")
}

/// Plausible's v1 metric rules (`ExternalStatsController.validate_metric`), with its error
/// texts: which metric may be asked with which filters and breakdown `property`.
fn validate_metrics(
    names: &[String],
    property: Option<&str>,
    v2_filters: &[Value],
) -> ApiResult<()> {
    let filtered: Vec<&str> = v2_filters
        .iter()
        .filter_map(|f| f.get(1).and_then(Value::as_str))
        .collect();
    let filters_on = |d: &str| filtered.contains(&d);
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(bad("Metrics cannot be queried multiple times."));
        }
    }
    for name in names {
        let m = name.as_str();
        let session = |m: &str| {
            if let Some(p) = property.filter(|p| event_only(p)) {
                return Err(bad(format!(
                    "Session metric `{m}` cannot be queried for breakdown by `{p}`."
                )));
            }
            if let Some(f) = filtered.iter().find(|f| event_only(f)) {
                return Err(bad(format!(
                    "Session metric `{m}` cannot be queried when using a filter on `{f}`."
                )));
            }
            Ok(())
        };
        match m {
            "visitors" | "pageviews" | "events" => {}
            "visits" | "bounce_rate" | "visit_duration" => session(m)?,
            "views_per_visit" => {
                if filters_on("event:page") {
                    return Err(bad(
                        "Metric `views_per_visit` cannot be queried with a filter on `event:page`.",
                    ));
                }
                if property.is_some() {
                    return Err(bad(
                        "Metric `views_per_visit` is not supported in breakdown queries.",
                    ));
                }
                session(m)?;
            }
            "conversion_rate" => {
                if property != Some("event:goal") && !filters_on("event:goal") {
                    return Err(bad(
                        "Metric `conversion_rate` can only be queried in a goal breakdown or with a goal filter",
                    ));
                }
            }
            "time_on_page" => {
                for f in ["event:goal", "event:name"] {
                    if filters_on(f) {
                        return Err(bad(format!(
                            "Metric `time_on_page` cannot be queried when filtering by `{f}`"
                        )));
                    }
                }
                match property {
                    Some("event:page") => {}
                    Some(_) => {
                        return Err(bad(
                            "Metric `time_on_page` is not supported in breakdown queries (except `event:page` breakdown)",
                        ));
                    }
                    None if filters_on("event:page") => {}
                    None => {
                        return Err(bad(
                            "Metric `time_on_page` can only be queried in a page breakdown or with a page filter.",
                        ));
                    }
                }
            }
            // v2's other metrics (`scroll_depth`, `percentage`, ...) included, as in
            // Plausible's v1.
            other => {
                return Err(bad(format!(
                    "The metric `{other}` is not recognized. Find valid metrics from the documentation: https://plausible.io/docs/stats-api#metrics"
                )));
            }
        }
    }
    Ok(())
}

/// Runs a v2 query body for `site`, as `POST /api/v2/query` would.
async fn run(state: &AppState, site: &Site, body: Value) -> ApiResult<QueryOutput> {
    let ctx = site_context(state, site).await?;
    let query = parse_v1_query(&body, &ctx, chrono::Utc::now()).map_err(|e| bad(e.message))?;
    Ok(state.storage.query.run(site.id, ctx, query).await?)
}

/// Plausible's v1 answers `conversion_rate` in timeseries and in breakdowns by anything
/// but `event:goal` or a custom property as its `group_conversion_rate`: the converted
/// visitors of a row over all visitors of the same row (the query without its goal and
/// property filters), 1 decimal. This runs that denominator query and returns the visitors
/// per row, keyed by the row's dimensions.
async fn group_visitors(
    state: &AppState,
    site: &Site,
    range: &Value,
    v2_filters: &[Value],
    dimensions: &[&str],
) -> ApiResult<HashMap<String, f64>> {
    let filters: Vec<&Value> = v2_filters
        .iter()
        .filter(|f| {
            !f.get(1)
                .and_then(Value::as_str)
                .is_some_and(|d| d == "event:goal" || d.starts_with("event:props:"))
        })
        .collect();
    let out = run(
        state,
        site,
        json!({"site_id": site.domain, "metrics": ["visitors"], "date_range": range,
               "filters": filters, "dimensions": dimensions,
               "pagination": {"limit": 10000}}),
    )
    .await?;
    Ok(out
        .results
        .iter()
        .map(|r| {
            (
                Value::from(r.dimensions.clone()).to_string(),
                r.metrics.first().and_then(Value::as_f64).unwrap_or(0.0),
            )
        })
        .collect())
}

/// `converted / total` in percent with 1 decimal (0 for an empty group).
fn group_rate(converted: Option<f64>, total: Option<&f64>) -> Value {
    match (converted, total) {
        (Some(c), Some(t)) if *t > 0.0 => json!((c / t * 1000.0).round() / 10.0),
        _ => json!(0.0),
    }
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
    validate_metrics(&names, None, &v2_filters)?;
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
            // The same number of days right before, counting the current period only up to
            // today (Plausible compares this month so far with as many days before it).
            let tz: chrono_tz::Tz = site.timezone.parse().unwrap_or(chrono_tz::UTC);
            let today = chrono::Utc::now().with_timezone(&tz).date_naive();
            let days = (to.min(today).max(from) - from).num_days() + 1;
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
            entry["change"] = name
                .parse::<Metric>()
                .map_or(Value::Null, |m| change(m, &before, &value));
            entry["comparison_value"] = before;
        }
        results.insert(name.clone(), entry);
    }
    Ok(Json(json!({"results": results})))
}

/// A metric's value in a timeseries bucket where nothing happened, as Plausible's
/// `Metrics.default_value`: no visit has no duration and no page no time on it (`null`),
/// the rates and views per visit are `0.0`, counts `0`.
fn empty_bucket_value(metric: &str) -> Value {
    match metric {
        "visit_duration" | "time_on_page" => Value::Null,
        "views_per_visit" | "bounce_rate" | "conversion_rate" => json!(0.0),
        _ => json!(0),
    }
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
    let v2_filters = filters(&p)?;
    validate_metrics(&names, None, &v2_filters)?;
    // Group conversion rate per bucket needs each bucket's converted visitors.
    let group_cr = names.iter().any(|n| n == "conversion_rate");
    let mut v2_metrics = names.clone();
    if group_cr && !names.iter().any(|n| n == "visitors") {
        v2_metrics.push("visitors".to_string());
    }
    let visitors_at = v2_metrics.iter().position(|n| n == "visitors");
    let out = run(
        &state,
        &site,
        json!({"site_id": site.domain, "metrics": v2_metrics, "date_range": range,
               "filters": v2_filters, "dimensions": [dimension],
               "include": {"time_labels": true}}),
    )
    .await?;
    let totals = if group_cr {
        group_visitors(&state, &site, &range, &v2_filters, &[dimension]).await?
    } else {
        HashMap::new()
    };
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
                    .unwrap_or_else(|| empty_bucket_value(name));
                if name == "conversion_rate" {
                    let converted = by_label
                        .get(label)
                        .and_then(|m| m.get(visitors_at?)?.as_f64());
                    row[name] = group_rate(converted, totals.get(&json!([label]).to_string()));
                }
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
    let property = p.get("property").ok_or_else(|| {
        bad("The `property` parameter is required. Please provide at least one property to show a breakdown by.")
    })?;
    if property == "event:hostname" {
        // Plausible's v1 filters by hostname but does not break down by it.
        return Err(bad(
            "Property 'event:hostname' is currently not supported for breakdowns.  Please provide a valid property for the breakdown endpoint: https://plausible.io/docs/stats-api#properties",
        ));
    }
    // As Plausible: `limit` 1..=1000 (default 100), `page` from 1; anything else is a 400.
    let limit = match p.get("limit") {
        None => 100,
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                bad(format!(
                    "limit must be a number between 1 and 1000, got {v:?}"
                ))
            })?,
    };
    let page = match p.get("page") {
        None => 1,
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| bad(format!("page must be a positive number, got {v:?}")))?,
    };
    let names = metrics(&p);
    let v2_filters = filters(&p)?;
    validate_metrics(&names, Some(property), &v2_filters)?;
    // A browser or OS version is broken down with its browser or OS, and the row carries
    // both (`{"browser": "Chrome", "browser_version": "120.0", ...}`), as in Plausible.
    let dimensions: Vec<&str> = match property.as_str() {
        "visit:browser_version" => vec!["visit:browser", "visit:browser_version"],
        "visit:os_version" => vec!["visit:os", "visit:os_version"],
        other => vec![other],
    };
    let group_cr = names.iter().any(|n| n == "conversion_rate")
        && property != "event:goal"
        && !property.starts_with("event:props:");
    // Rows are ordered by the first metric other than `time_on_page` (`visitors` when
    // there is none) descending, then by the property, as Plausible's v1
    // (`Legacy.Breakdown.metric_to_order_by`).
    let order_metric = names
        .iter()
        .find(|n| *n != "time_on_page")
        .map_or("visitors", String::as_str);
    let mut v2_metrics = names.clone();
    for needed in [(group_cr, "visitors"), (true, order_metric)] {
        if needed.0 && !v2_metrics.iter().any(|n| n == needed.1) {
            v2_metrics.push(needed.1.to_string());
        }
    }
    let visitors_at = v2_metrics.iter().position(|n| n == "visitors");
    // Rows ordered by a group conversion rate are only known once every group's rate is:
    // then all rows are fetched, ordered and paged here.
    let order_here = group_cr && order_metric == "conversion_rate";
    let pagination = if order_here {
        json!({"limit": 10000, "offset": 0})
    } else {
        json!({"limit": limit, "offset": (page - 1) * limit})
    };
    let out = run(
        &state,
        &site,
        json!({"site_id": site.domain, "metrics": v2_metrics, "date_range": range,
               "filters": v2_filters, "dimensions": dimensions, "pagination": pagination,
               "order_by": [[order_metric, "desc"]]}),
    )
    .await?;
    let totals = if group_cr {
        group_visitors(&state, &site, &range, &v2_filters, &dimensions).await?
    } else {
        HashMap::new()
    };
    // The row's keys are the dimensions' last parts: `visit:source` -> `source`,
    // `event:props:author` -> `author`.
    let keys: Vec<&str> = dimensions
        .iter()
        .map(|d| {
            d.strip_prefix("event:props:")
                .unwrap_or_else(|| d.rsplit(':').next().unwrap_or(d))
        })
        .collect();
    let results: Vec<Value> = out
        .results
        .iter()
        .map(|r| {
            let mut row = json!({});
            for (i, key) in keys.iter().enumerate() {
                row[*key] = r.dimensions.get(i).cloned().unwrap_or(Value::Null);
            }
            for (i, name) in names.iter().enumerate() {
                row[name] = r.metrics.get(i).cloned().unwrap_or(Value::Null);
                if group_cr && name == "conversion_rate" {
                    let converted = visitors_at.and_then(|v| r.metrics.get(v)?.as_f64());
                    let total = totals.get(&Value::from(r.dimensions.clone()).to_string());
                    row[name] = group_rate(converted, total);
                }
            }
            row
        })
        .collect();
    let results = if order_here {
        // First metric descending, then the property ascending (Plausible's default order).
        let mut rows = results;
        let rate = |r: &Value| r["conversion_rate"].as_f64().unwrap_or(0.0);
        let label = |r: &Value| keys.iter().map(|k| r[*k].to_string()).collect::<Vec<_>>();
        rows.sort_by(|a, b| {
            rate(b)
                .total_cmp(&rate(a))
                .then_with(|| label(a).cmp(&label(b)))
        });
        let skip = usize::try_from((page - 1) * limit).unwrap_or(usize::MAX);
        let take = usize::try_from(limit).unwrap_or(usize::MAX);
        rows.into_iter().skip(skip).take(take).collect()
    } else {
        results
    };
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
    fn v1_periods_in_days_end_the_day_before_the_date() {
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
            json!(["2024-03-08", "2024-03-14"])
        );
        assert_eq!(
            range(&[("period", "30d"), ("date", "2024-03-01")]).expect("30d"),
            json!(["2024-01-31", "2024-02-29"])
        );
        assert_eq!(
            range(&[("period", "day"), ("date", "2024-03-01")]).expect("day"),
            json!(["2024-03-01", "2024-03-01"])
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
    fn v1_wildcards_match_across_slashes() {
        assert_eq!(v1_wildcard("/blog*"), "^/blog.*$");
        assert_eq!(v1_wildcard("/blog/**"), "^/blog/.*$");
        assert_eq!(v1_wildcard("*.example.com"), "^.*\\.example\\.com$");
    }
}
