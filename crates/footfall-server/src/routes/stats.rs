//! `POST /api/v2/query`: the Plausible Stats API v2, and native stats endpoints.

use crate::error::{ApiError, ApiResult};
use crate::export::ExportFormat;
use crate::extract::{check_content_type, parse_json, read_body};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use footfall_core::query::{
    DateRange, Dimension, Pagination, Query as StatsQuery, ResultRow, SiteContext, change,
    parse_query, resolve_granularity, site_id_of, time_labels,
};
use footfall_store::{KeyScope, ListFilter, Site};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

const QUERY_BODY_LIMIT: usize = 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v2/query", post(post_query))
        .route("/api/v1/sites/{site}/drops", get(get_drops))
        .route("/api/v1/sites/{site}/realtime", get(get_realtime))
        .route("/api/v1/sites/{site}/sessions", get(get_sessions))
        .route(
            "/api/v1/sites/{site}/sessions/{session_id}",
            get(get_session),
        )
        .route("/api/v1/sites/{site}/visitors", get(get_visitors))
        .route("/api/v1/sites/{site}/export", get(get_export))
}

/// Events with their visits' attributes as NDJSON or CSV, streamed in time order
/// (`export.rs`); `x-footfall-export-rows` says how many rows follow.
async fn get_export(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(domain): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<axum::response::Response> {
    let site = stats_site(&state, &headers, &domain).await?;
    let bad = |m: String| ApiError::bad_request("invalid_request", m);
    if let Some(unknown) = params
        .keys()
        .find(|k| !["date_range", "format"].contains(&k.as_str()))
    {
        return Err(bad(format!(
            "unknown parameter {unknown:?}; known: date_range, format"
        )));
    }
    let format = match params.get("format") {
        None => ExportFormat::Ndjson,
        Some(f) => ExportFormat::parse(f)
            .ok_or_else(|| bad(format!("format {f:?} must be ndjson or csv")))?,
    };
    let (start_us, end_us, _) =
        crate::export::date_range(&site, params.get("date_range").map(String::as_str), "all")
            .map_err(bad)?;
    let rows = state
        .storage
        .query
        .export_count(site.id, start_us, end_us)
        .await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    let header = format.header();
    let query = state.storage.query.clone();
    let site_id = site.id;
    tokio::spawn(async move {
        if !header.is_empty() && tx.send(Ok(header.into())).await.is_err() {
            return;
        }
        let sender = tx.clone();
        let each: footfall_store::EachExportChunk = Box::new(move |chunk| {
            let mut out = Vec::with_capacity(chunk.len() * 512);
            format.write_rows(chunk, &mut out);
            // Called on the store's blocking thread; false when the client went away.
            sender.blocking_send(Ok(out.into())).is_ok()
        });
        if let Err(e) = query.export(site_id, start_us, end_us, each).await {
            tracing::error!(error = %e, "export failed");
            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    let file = format!("{}.{}", site.domain, format.extension());
    axum::response::Response::builder()
        .header(axum::http::header::CONTENT_TYPE, format.content_type())
        .header(
            axum::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file}\""),
        )
        .header("x-footfall-export-rows", rows)
        .body(Body::from_stream(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))
        .map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                e.to_string(),
            )
        })
}

/// Query parameters the visit and visitor lists take.
const LIST_PARAMS: &[&str] = &[
    "date_range",
    "visitor",
    "visitor_id",
    "country",
    "city",
    "org",
    "source",
    "device",
    "browser",
    "os",
    "entry_page",
    "limit",
    "offset",
];
const LIST_DEFAULT_LIMIT: u32 = 100;
const LIST_MAX_LIMIT: u32 = 1000;

/// The filter of a visit or visitor list from its query parameters. `date_range` is a
/// Stats API shorthand (default `24h`) or `FROM,TO` dates; `visitor` the hex id the lists
/// show, `visitor_id` the id the site sent.
fn list_filter(site: &Site, params: &HashMap<String, String>) -> ApiResult<(ListFilter, Value)> {
    let bad = |m: String| ApiError::bad_request("invalid_request", m);
    if let Some(unknown) = params.keys().find(|k| !LIST_PARAMS.contains(&k.as_str())) {
        return Err(bad(format!(
            "unknown parameter {unknown:?}; known: {}",
            LIST_PARAMS.join(", ")
        )));
    }
    let (start_us, end_us, range) =
        crate::export::date_range(site, params.get("date_range").map(String::as_str), "24h")
            .map_err(bad)?;
    let number = |key: &str, default: u32| -> ApiResult<u32> {
        match params.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| bad(format!("{key} must be a whole number, got {v:?}"))),
        }
    };
    let limit = number("limit", LIST_DEFAULT_LIMIT)?;
    if !(1..=LIST_MAX_LIMIT).contains(&limit) {
        return Err(bad(format!("limit must be 1 to {LIST_MAX_LIMIT}")));
    }
    let visitor_id = match (params.get("visitor"), params.get("visitor_id")) {
        (Some(_), Some(_)) => return Err(bad("give visitor or visitor_id, not both".into())),
        (Some(hex), None) => Some(
            u64::from_str_radix(hex, 16)
                .map_err(|_| bad(format!("visitor {hex:?} is not a hex visitor id")))?,
        ),
        (None, Some(id)) => Some(crate::admin::visitor_id_of(site, id)),
        (None, None) => None,
    };
    let text = |key: &str| params.get(key).cloned();
    let filter = ListFilter {
        start_us,
        end_us,
        visitor_id,
        country: text("country").map(|c| c.to_ascii_uppercase()),
        city_name: text("city"),
        org: text("org"),
        source: text("source"),
        device: text("device"),
        browser: text("browser"),
        os: text("os"),
        entry_page: text("entry_page"),
        limit,
        offset: number("offset", 0)?,
    };
    Ok((filter, range))
}

/// Visits starting in the range, newest first (DESIGN §5 session list).
async fn get_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(domain): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let site = stats_site(&state, &headers, &domain).await?;
    let (filter, range) = list_filter(&site, &params)?;
    let page = ListPage::of(&site, range, &filter);
    let (sessions, total) = state.storage.query.sessions(site.id, filter).await?;
    Ok(page.answer("sessions", json!(sessions), total))
}

/// What a list's answer says besides its rows.
struct ListPage {
    site: String,
    date_range: Value,
    limit: u32,
    offset: u32,
}

impl ListPage {
    fn of(site: &Site, date_range: Value, filter: &ListFilter) -> Self {
        ListPage {
            site: site.domain.clone(),
            date_range,
            limit: filter.limit,
            offset: filter.offset,
        }
    }

    fn answer(self, name: &str, rows: Value, total: u64) -> Json<Value> {
        let mut out = json!({
            "site": self.site,
            "date_range": self.date_range,
            "total": total,
            "limit": self.limit,
            "offset": self.offset,
        });
        out[name] = rows;
        Json(out)
    }
}

/// One visit with its events in order and its engagement score (DESIGN §5 per-session
/// insight).
async fn get_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((domain, session_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let site = stats_site(&state, &headers, &domain).await?;
    let id: u64 = session_id.parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_request",
            format!("session id {session_id:?} is not a number (the session list gives them)"),
        )
    })?;
    match state.storage.query.session(site.id, id).await? {
        Some(detail) => Ok(Json(json!(detail))),
        None => Err(ApiError::not_found(
            "not_found",
            format!("site {} has no session {session_id}", site.domain),
        )),
    }
}

/// Visitors with a visit starting in the range, most recently seen first (DESIGN §5
/// visitor list).
async fn get_visitors(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(domain): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let site = stats_site(&state, &headers, &domain).await?;
    let (filter, range) = list_filter(&site, &params)?;
    let page = ListPage::of(&site, range, &filter);
    let (visitors, total) = state.storage.query.visitors(site.id, filter).await?;
    Ok(page.answer("visitors", json!(visitors), total))
}

/// Resolves the site named in a request and checks the caller may read its stats.
pub(crate) async fn stats_site(
    state: &AppState,
    headers: &HeaderMap,
    domain: &str,
) -> ApiResult<Arc<Site>> {
    let caller = state.authenticate_request(headers)?;
    let site = state.existing_site(domain)?;
    state.authorize(&caller, &site, KeyScope::Stats)?;
    state.spend_stats_request(&caller).await?;
    Ok(site)
}

pub async fn site_context(state: &AppState, site: &Site) -> ApiResult<SiteContext> {
    let timezone = site.timezone.parse().unwrap_or(chrono_tz::UTC);
    Ok(SiteContext {
        domain: site.domain.clone(),
        timezone,
        goals: state.storage.meta.goals(site.id).await?,
        stats_start: None,
    })
}

/// The local day of the site's first event, where `"all"` starts (today when it has none),
/// as Plausible's `stats_start_date`.
async fn stats_start(
    state: &AppState,
    site: &Site,
    ctx: &SiteContext,
) -> ApiResult<chrono::NaiveDate> {
    let first = state.storage.query.first_event_us(site.id).await?;
    let at = first
        .and_then(chrono::DateTime::from_timestamp_micros)
        .unwrap_or_else(chrono::Utc::now);
    Ok(at.with_timezone(&ctx.timezone).date_naive())
}

async fn post_query(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    check_content_type(&headers, &[])?;
    let body = read_body(body, QUERY_BODY_LIMIT).await?;
    let request = parse_json(&body)?;
    // Authenticate before validating, so an anonymous caller learns nothing.
    let domain = match site_id_of(&request) {
        Ok(d) => d.to_string(),
        Err(e) => {
            state.authenticate_request(&headers)?;
            return Err(ApiError::bad_request("invalid_query", e.message));
        }
    };
    let site = stats_site(&state, &headers, &domain).await?;
    let mut ctx = site_context(&state, &site).await?;
    if request.get("date_range").and_then(Value::as_str) == Some("all") {
        ctx.stats_start = Some(stats_start(&state, &site, &ctx).await?);
    }
    let query = parse_query(&request, &ctx, chrono::Utc::now())
        .map_err(|e| ApiError::bad_request("invalid_query", e.message))?;
    let echo = query.echo.clone();
    let comparison = query.compared_range.clone().map(|range| {
        let compared = compared_query(&query, range);
        let keys = RowKeys::new(&query, &compared);
        (compared, keys)
    });
    let metrics = query.metrics.clone();
    let imports_asked = query.include.imports;
    let mut out = state.storage.query.run(site.id, ctx.clone(), query).await?;
    if imports_asked {
        // Plausible keeps data imported from other tools (Google Analytics, CSV) apart
        // and adds it on request; footfall's imports (access logs) are stored as events
        // and always counted, so there is never separate imported data to include.
        out.meta.insert("imports_included".into(), json!(false));
        out.meta
            .insert("imports_skip_reason".into(), json!("no_imported_data"));
    }
    let mut results: Vec<Value> = out.results.iter().map(ResultRow::to_json).collect();
    if let Some((compared, keys)) = comparison {
        let before = state.storage.query.run(site.id, ctx, compared).await?;
        let by_key: HashMap<Vec<Value>, &ResultRow> = before
            .results
            .iter()
            .map(|r| (keys.compared(&r.dimensions), r))
            .collect();
        for (json, row) in results.iter_mut().zip(&out.results) {
            let previous = by_key.get(&keys.current(&row.dimensions));
            let prev_metrics: Vec<Value> = match previous {
                Some(p) => p.metrics.clone(),
                // Nothing in the compared range: counts and averages were 0 there.
                None => metrics.iter().map(|_| json!(0)).collect(),
            };
            let changes: Vec<Value> = metrics
                .iter()
                .zip(prev_metrics.iter().zip(&row.metrics))
                .map(|(m, (old, new))| change(*m, old, new))
                .collect();
            let dimensions = match previous {
                Some(p) => p.dimensions.clone(),
                None => keys.compared_dimensions(&row.dimensions),
            };
            json["comparison"] =
                json!({"dimensions": dimensions, "metrics": prev_metrics, "change": changes});
        }
    }
    Ok(Json(
        json!({"results": results, "meta": out.meta, "query": echo}),
    ))
}

/// The query over the compared range: the same buckets (an automatic `time` keeps the
/// main query's size, which a shorter compared range would change) and every row, so each
/// row of the main query finds its counterpart.
fn compared_query(query: &StatsQuery, range: DateRange) -> StatsQuery {
    let mut compared = query.clone();
    compared.range = range;
    compared.compared_range = None;
    compared.include.total_rows = false;
    compared.include.time_labels = false;
    for d in &mut compared.dimensions {
        if let Dimension::Time(g) = d {
            *g = resolve_granularity(*g, &query.range);
        }
    }
    if query.dimensions.iter().any(|d| !d.is_time()) {
        compared.pagination = Pagination::default();
    }
    compared
}

/// Matches rows of the main and the compared query: by their dimension values, a time
/// bucket by its position in its range (the first day of this month with the first day
/// of the previous one).
struct RowKeys {
    time: Option<usize>,
    current: HashMap<String, usize>,
    compared: Vec<String>,
    compared_index: HashMap<String, usize>,
}

impl RowKeys {
    fn new(query: &StatsQuery, compared: &StatsQuery) -> RowKeys {
        let Some((at, g)) = query.time_dimension() else {
            return RowKeys {
                time: None,
                current: HashMap::new(),
                compared: Vec::new(),
                compared_index: HashMap::new(),
            };
        };
        let index = |labels: &[String]| {
            labels
                .iter()
                .enumerate()
                .map(|(i, l)| (l.clone(), i))
                .collect::<HashMap<_, _>>()
        };
        let current = time_labels(g, &query.range, query.timezone);
        let compared_labels = time_labels(g, &compared.range, compared.timezone);
        RowKeys {
            time: Some(at),
            current: index(&current),
            compared_index: index(&compared_labels),
            compared: compared_labels,
        }
    }

    fn key(&self, dims: &[Value], index: &HashMap<String, usize>) -> Vec<Value> {
        let mut key = dims.to_vec();
        if let Some(at) = self.time
            && let Some(v) = key.get_mut(at)
        {
            let bucket = v.as_str().and_then(|l| index.get(l)).copied();
            *v = json!(bucket);
        }
        key
    }

    fn current(&self, dims: &[Value]) -> Vec<Value> {
        self.key(dims, &self.current)
    }

    fn compared(&self, dims: &[Value]) -> Vec<Value> {
        self.key(dims, &self.compared_index)
    }

    /// The compared row's dimensions when it has no row: the bucket's label there.
    fn compared_dimensions(&self, dims: &[Value]) -> Vec<Value> {
        let mut out = dims.to_vec();
        if let Some(at) = self.time
            && let Some(v) = out.get_mut(at)
        {
            let label = v
                .as_str()
                .and_then(|l| self.current.get(l))
                .and_then(|&i| self.compared.get(i));
            *v = json!(label);
        }
        out
    }
}

async fn get_drops(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(domain): Path<String>,
) -> ApiResult<Json<Value>> {
    let site = stats_site(&state, &headers, &domain).await?;
    let drops = state.storage.meta.drops(site.id).await?;
    let total: u64 = drops.iter().map(|d| d.count).sum();
    let bots: u64 = drops
        .iter()
        .filter(|d| d.reason == "bot" || d.reason == "headless")
        .map(|d| d.count)
        .sum();
    Ok(Json(json!({
        "site": site.domain,
        "dropped": total,
        "bots_dropped": bots,
        "by_reason": drops,
    })))
}

/// Visitors seen in the last 5 minutes and visits still open, from the live state.
async fn get_realtime(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(domain): Path<String>,
) -> ApiResult<Json<Value>> {
    let site = stats_site(&state, &headers, &domain).await?;
    let now = chrono::Utc::now().timestamp_micros();
    let timeout_us = i64::from(site.session_timeout_secs) * 1_000_000;
    let open = state
        .storage
        .live
        .active_visitors(site.id, now - timeout_us)
        .await?;
    let recent: Vec<_> = open
        .iter()
        .filter(|v| v.last_seen_us >= now - 5 * 60 * 1_000_000)
        .collect();
    let mut pages: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
    for v in &recent {
        *pages.entry(v.pathname.as_str()).or_insert(0) += 1;
    }
    let mut current_pages: Vec<_> = pages
        .into_iter()
        .map(|(page, visitors)| json!({"page": page, "visitors": visitors}))
        .collect();
    current_pages.sort_by_key(|p| std::cmp::Reverse(p["visitors"].as_u64()));
    Ok(Json(json!({
        "site": site.domain,
        "visitors_last_5_minutes": recent.len(),
        "active_sessions": open.len(),
        "current_pages": current_pages,
    })))
}
