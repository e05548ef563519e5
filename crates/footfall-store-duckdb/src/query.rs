//! Stats API v2 on DuckDB: a validated [`Query`] becomes one SQL statement (CTEs) with
//! every user value bound as a parameter (DESIGN §4 is the contract).
//!
//! Shape of the statement:
//! - `r_ev` / `r_vis` / `r_tot`: event rows of the range (by `ts`, by `session_start`, and
//!   by `ts` without goal filters), each with `m` = "the row matches the filters" and the
//!   group keys `d0..`;
//! - `ev`: event metrics grouped by the keys; `sess` -> `vis`: visit metrics over sessions
//!   with at least one matching event; `eng` / `sd`: time on page and scroll depth;
//! - the parts are FULL OUTER JOINed on the keys, ordered, paginated.

use crate::matching::SharedSets;
use crate::uniq::NAME as UNIQ;
use crate::{KIND_CUSTOM, KIND_ENGAGEMENT, KIND_PAGEVIEW};
use crate::{TS_PARAM, ts_literal};
use duckdb::types::Value as DbValue;
use footfall_core::query::{
    Dimension, EmptyValue, Filter, FilterOp, GoalKind, Leaf, Metric, OrderTarget, Query,
    QueryOutput, ResultRow, SiteContext, TimeGranularity, VisitAttr, bucket_label_format,
    offset_segments, time_labels, wildcard_to_regex,
};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("database error: {0}")]
    Db(#[from] duckdb::Error),
    #[error("{0}")]
    Invalid(String),
}

/// SQL text plus its positional parameters, appended together so they stay in order.
#[derive(Debug, Clone, Default)]
struct Sql {
    text: String,
    params: Vec<DbValue>,
}

impl Sql {
    fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    fn bind(&mut self, v: DbValue) -> &mut Self {
        self.text.push('?');
        self.params.push(v);
        self
    }

    fn bind_str(&mut self, s: &str) -> &mut Self {
        self.bind(DbValue::Text(s.to_string()))
    }

    fn append(&mut self, other: Sql) -> &mut Self {
        self.text.push_str(&other.text);
        self.params.extend(other.params);
        self
    }

    /// Appends `parts` with `separator` between them.
    fn append_joined(&mut self, parts: Vec<Sql>, separator: &str) -> &mut Self {
        for (i, part) in parts.into_iter().enumerate() {
            if i > 0 {
                self.push(separator);
            }
            self.append(part);
        }
        self
    }
}

/// The columns of a one-row-per-visit source that `Builder::visit_aggregates` reads.
struct VisitColumns<'c> {
    first: &'c str,
    last: &'c str,
    pv: &'c str,
    inter: &'c str,
}

/// Where the event rows of `r_ev` find their visits among the matching ones
/// (`Builder::matching_visit_join`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MatchingVisits {
    /// The query's own `msess`, joined.
    Msess,
    /// The load's visit map, as a filter on the join to `sessions` (or, for the visitor
    /// alone, instead of it: `Builder::visits_from_map`).
    Map,
}

/// Which visits `visit_hits_branch` reads the hits of: those whose `sessions` row cannot
/// stand for their hits in range.
enum VisitSpan {
    /// Started before the range and still going at its start.
    OpenAtStart,
    /// Still going at the range's end.
    OpenAtEnd,
    /// Started in the range and still going at its end.
    StartsInRangeOpenAtEnd,
    /// First and last event in different time buckets (the condition's SQL).
    Across(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Window {
    /// Events with `ts` in range.
    Events,
    /// All events of the sessions starting in range.
    Visits,
}

struct Builder<'a> {
    q: &'a Query,
    site: &'a SiteContext,
    site_id: u32,
    start_us: i64,
    end_us: i64,
    /// Property keys joined as p0, p1, ... (from dimensions and filters).
    prop_keys: Vec<String>,
    need_exits: bool,
    /// Read visits from the `sessions` rollup where the query allows it (see `rollup_visits`).
    use_rollup: bool,
    /// Set while writing SQL over `sessions e`, where exit pages are columns of `e`.
    over_sessions: std::cell::Cell<bool>,
    /// Compute `time_on_page`'s legacy fallback (the gap to the visit's next page view)
    /// for keys without engagement data: off at first, on for the re-run that
    /// `execute_with` makes when a key needs it.
    legacy_gaps: bool,
    /// Whether `execute_with` offers matching visits shared with the other queries of a
    /// dashboard load (`matching.rs`); `matching_used` says whether the SQL reads them.
    shared_set: bool,
    /// The handle of that set's visit map (`ff_matching`, `ff_visitor_no`, `visit_map.rs`).
    matching_handle: u64,
    matching_used: std::cell::Cell<bool>,
    /// Whether that set is already made (an earlier query of the load made it): only
    /// then do the event rows' visits come from it (`matching_visit_join`).
    matching_ready: bool,
    /// The visits open at the range's start with a hit in range, when the load has
    /// found them (`open_at_start_ids`); `open_ids_wanted` says whether the SQL would
    /// read them.
    open_ids: Option<std::sync::Arc<[u64]>>,
    open_ids_wanted: std::cell::Cell<bool>,
}

/// Most visits open at a range's start written into a query's SQL as a list; more (a
/// very busy site) are found by the query itself.
const MAX_LISTED_OPEN_VISITS: usize = 2_000;

fn collect_prop_keys(f: &Filter, out: &mut Vec<String>) {
    match f {
        Filter::And(fs) | Filter::Or(fs) => fs.iter().for_each(|f| collect_prop_keys(f, out)),
        Filter::Not(f) => collect_prop_keys(f, out),
        leaf => {
            if let Some(Leaf {
                dim: Dimension::EventProps(k),
                ..
            }) = leaf.as_leaf()
                && !out.contains(k)
            {
                out.push(k.clone());
            }
        }
    }
}

/// A visit attribute stored on the visit's `sessions` row (exit pages are computed).
fn visit_column(d: &Dimension) -> bool {
    matches!(d, Dimension::Visit(a) if a.column().is_some())
}

/// Whether any of `filters` reads a visit attribute of `sessions`.
fn filters_on_visit(filters: &[Filter]) -> bool {
    filters.iter().any(|f| f.any_leaf(&|l| visit_column(l.dim)))
}

/// Top-level filters minus goal (and property) leaves: the conversion-rate denominator.
fn strip_goal_filters(filters: &[Filter]) -> Vec<Filter> {
    filters
        .iter()
        .filter(|f| {
            !f.as_leaf()
                .is_some_and(|l| matches!(l.dim, Dimension::EventGoal | Dimension::EventProps(_)))
        })
        .cloned()
        .collect()
}

impl<'a> Builder<'a> {
    fn new(q: &'a Query, site: &'a SiteContext, site_id: u32, use_rollup: bool) -> Self {
        let mut prop_keys = Vec::new();
        for d in &q.dimensions {
            if let Dimension::EventProps(k) = d
                && !prop_keys.contains(k)
            {
                prop_keys.push(k.clone());
            }
        }
        for f in &q.filters {
            collect_prop_keys(f, &mut prop_keys);
        }
        let is_exit = |d: &Dimension| {
            matches!(
                d,
                Dimension::Visit(VisitAttr::ExitPage | VisitAttr::ExitPageHostname)
            )
        };
        let need_exits = q.dimensions.iter().any(is_exit) || q.filters_on(&is_exit);
        Builder {
            q,
            site,
            site_id,
            start_us: q.range.start_utc.timestamp_micros(),
            end_us: q.range.end_utc.timestamp_micros(),
            prop_keys,
            need_exits,
            use_rollup,
            over_sessions: std::cell::Cell::new(false),
            legacy_gaps: false,
            shared_set: false,
            matching_handle: 0,
            matching_used: std::cell::Cell::new(false),
            matching_ready: false,
            open_ids: None,
            open_ids_wanted: std::cell::Cell::new(false),
        }
    }

    fn has_metric(&self, pred: impl Fn(Metric) -> bool) -> bool {
        self.q.metrics.iter().any(|m| pred(*m))
    }

    fn dims(&self) -> &[Dimension] {
        &self.q.dimensions
    }

    /// `d0, d2, ...`: the group keys but the goal (`group_conversion_rate`'s groups).
    fn group_keys(&self) -> String {
        (0..self.dims().len())
            .filter(|i| Some(*i) != self.goal_dim_index())
            .map(|i| format!("d{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn dim_cols(&self) -> String {
        (0..self.dims().len())
            .map(|i| format!("d{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn group_by(&self) -> String {
        if self.dims().is_empty() {
            String::new()
        } else {
            format!(" GROUP BY {}", self.dim_cols())
        }
    }

    fn bind_site(&self, sql: &mut Sql) {
        sql.bind(DbValue::UInt(self.site_id));
    }

    fn bind_ts(&self, sql: &mut Sql, us: i64) {
        let (before, after) = TS_PARAM.split_once('?').unwrap_or_default();
        sql.push(before).bind(DbValue::BigInt(us)).push(after);
    }

    /// ` AND {col} >= start AND {col} < end`: `col` inside the query range.
    fn in_range(&self, sql: &mut Sql, col: &str) {
        sql.push(&format!(" AND {col} >= "));
        self.bind_ts(sql, self.start_us);
        sql.push(&format!(" AND {col} < "));
        self.bind_ts(sql, self.end_us);
    }

    /// The site's UTC offset in seconds at time `col`, as SQL (a number, or a `CASE` over
    /// the range's offset changes). Offsets and transition instants are computed integers
    /// (not user input), so they are written into the text.
    fn local_offset(&self, col: &str) -> String {
        let segs = offset_segments(
            self.q.timezone,
            self.q.range.start_utc,
            self.q.range.end_utc,
        );
        if let [(_, off)] = segs.as_slice() {
            return off.to_string();
        }
        let mut case = String::from("CASE");
        for w in segs.windows(2) {
            case.push_str(&format!(
                " WHEN {col} < {} THEN {}",
                ts_literal(w[1].0.timestamp_micros()),
                w[0].1
            ));
        }
        let last = segs.last().map(|s| s.1).unwrap_or(0);
        case.push_str(&format!(" ELSE {last} END"));
        case
    }

    /// `col` shifted to site-local time.
    fn local_time(&self, col: &str) -> String {
        match self.local_offset(col).as_str() {
            "0" => col.to_string(),
            off => format!("({col} + to_seconds({off}))"),
        }
    }

    fn time_bucket(&self, g: TimeGranularity, col: &str) -> String {
        let g = footfall_core::query::resolve_granularity(g, &self.q.range);
        let unit = match g {
            TimeGranularity::Hour | TimeGranularity::Auto => "hour",
            TimeGranularity::Day => "day",
            TimeGranularity::Week => "week",
            TimeGranularity::Month => "month",
        };
        // Grouped as timestamps (days as dates); formatted as labels only in `final` (per
        // group, not per row: formatting 3M rows cost half of a 30-day timeseries at 10M
        // events). Days are `ff_day` (`clock.rs`): a cast to DATE cost a third of
        // `date_trunc('day', ...)`, and `ff_day` a fraction of the cast.
        if g == TimeGranularity::Day {
            return format!("{}({col}, {})", crate::clock::DAY, self.local_offset(col));
        }
        let bucket = format!("date_trunc('{unit}', {})", self.local_time(col));
        if g != TimeGranularity::Week {
            return bucket;
        }
        // Plausible's weeks start on Monday but never before the range's first day
        // (`weekstart_not_before`): a range starting on a Wednesday opens with a bucket
        // labelled with that Wednesday, as `time_labels` lists it.
        let first = self
            .q
            .range
            .first_day
            .and_time(chrono::NaiveTime::MIN)
            .and_utc();
        format!(
            "greatest({bucket}, make_timestamp({}))",
            first.timestamp_micros()
        )
    }

    /// The output column of dimension `i` in `final`: time buckets become labels.
    fn dim_output(&self, i: usize, d: &Dimension) -> String {
        match d {
            Dimension::Time(g) => {
                let g = footfall_core::query::resolve_granularity(*g, &self.q.range);
                format!("strftime(d{i}, '{}') AS d{i}", bucket_label_format(g))
            }
            // Grouped as stored (`dim_expr`), the empty value labelled here, per group:
            // per row before grouping it cost ~3-4 of ~21 ms (a 30-day browser breakdown
            // at 10M events), and DuckDB groups the stored, dictionary-encoded strings
            // faster than computed ones.
            Dimension::Visit(a) if a.unknown_stored_empty() => match d.empty_label(self.q.api) {
                Some(label) => format!("CASE WHEN d{i} = '' THEN '{label}' ELSE d{i} END AS d{i}"),
                None => format!("d{i}"),
            },
            _ => format!("d{i}"),
        }
    }

    fn prop_alias(&self, key: &str) -> String {
        let i = self.prop_keys.iter().position(|k| k == key).unwrap_or(0);
        format!("p{i}")
    }

    /// Table alias of the visit attributes: `sessions e` itself in rollup CTEs, the
    /// joined `sessions v` over events (`events` has no visit attributes).
    fn visit_alias(&self) -> &'static str {
        if self.over_sessions.get() { "e" } else { "v" }
    }

    /// Whether event rows need their visit's `sessions` row joined as `v` for these
    /// filters and the query's dimensions (exit pages come from `exits`, not `v`).
    fn needs_visit_join(&self, filters: &[Filter]) -> bool {
        self.dims().iter().any(visit_column) || filters_on_visit(filters)
    }

    /// ` JOIN sessions v ...`: the visit of each event row, restricted to the visits that
    /// can have events in range (zone maps on both sides skip the rest). Session ids are
    /// unique across sites, and both sides are restricted to the site, so the join key is
    /// the session id alone: a single dense integer key joins in half the time of
    /// (site_id, session_id) (10M events, 30 days: ~100 vs ~220 ms).
    fn visit_join(&self, sql: &mut Sql, window: Window) {
        sql.push(" JOIN sessions v ON v.session_id = e.session_id AND v.site_id = ");
        self.bind_site(sql);
        match window {
            Window::Visits => self.in_range(sql, "v.session_start"),
            Window::Events => {
                sql.push(" AND v.session_start < ");
                self.bind_ts(sql, self.end_us);
                sql.push(" AND v.last_ts >= ");
                self.bind_ts(sql, self.start_us);
            }
        }
    }

    /// Row-level expression of a (non-goal, non-time) dimension for filtering.
    fn filter_expr(&self, d: &Dimension) -> String {
        match d {
            Dimension::EventPage => "e.pathname".into(),
            Dimension::EventHostname => "e.hostname".into(),
            Dimension::EventName => "e.name".into(),
            Dimension::EventProps(k) => format!("COALESCE({}.value, '(none)')", self.prop_alias(k)),
            Dimension::Visit(VisitAttr::ExitPage) if self.over_sessions.get() => {
                "e.exit_page".into()
            }
            Dimension::Visit(VisitAttr::ExitPageHostname) if self.over_sessions.get() => {
                "e.exit_hostname".into()
            }
            Dimension::Visit(VisitAttr::ExitPage) => "x.exit_page".into(),
            Dimension::Visit(VisitAttr::ExitPageHostname) => "x.exit_hostname".into(),
            Dimension::Visit(VisitAttr::City) => {
                format!("CAST({}.city AS VARCHAR)", self.visit_alias())
            }
            Dimension::Visit(a) => format!(
                "{}.{}",
                self.visit_alias(),
                a.column().unwrap_or("entry_page")
            ),
            // Rejected by the parser; never matches.
            Dimension::EventGoal | Dimension::Time(_) => "NULL".into(),
        }
    }

    /// Row-level group key of a dimension (goal handled separately).
    fn dim_expr(&self, d: &Dimension, window: Window) -> String {
        match d {
            Dimension::Time(g) => self.time_bucket(
                *g,
                &if window == Window::Visits {
                    format!("{}.session_start", self.visit_alias())
                } else {
                    "e.ts".to_string()
                },
            ),
            Dimension::Visit(VisitAttr::City) => format!("{}.city", self.visit_alias()),
            // Labelled after grouping (`dim_output`).
            Dimension::Visit(a) if a.unknown_stored_empty() => self.filter_expr(d),
            d if let Some(label) = d.empty_label(self.q.api) => {
                let c = self.filter_expr(d);
                format!("CASE WHEN {c} = '' THEN '{label}' ELSE {c} END")
            }
            other => self.filter_expr(other),
        }
    }

    /// Group-stage condition leaving out empty attribute values (see `EmptyValue`).
    fn exclude_empty(&self) -> String {
        let mut out = String::new();
        for (i, d) in self.dims().iter().enumerate() {
            if let Dimension::Visit(a) = d
                && a.empty_value(self.q.api) == EmptyValue::Exclude
            {
                if *a == VisitAttr::City {
                    out.push_str(&format!(" AND d{i} <> 0"));
                } else {
                    out.push_str(&format!(" AND d{i} <> ''"));
                }
            }
        }
        out
    }

    fn leaf_cond(&self, l: &Leaf<'_>, expr: &str, sql: &mut Sql) {
        let positive = l.op.positive();
        let cs = l.case_sensitive;
        // Only exit pages (LEFT JOINed `exits`) can be NULL; everywhere else the bare
        // condition lets DuckDB push it into the table scan (a COALESCE around it made
        // `page=/` by source ~3x slower at 10M events).
        let nullable = expr.starts_with("x.");
        sql.push(match (l.op.is_negated(), nullable) {
            (true, true) => "NOT COALESCE(",
            (false, true) => "COALESCE(",
            (true, false) => "NOT (",
            (false, false) => "(",
        });
        match positive {
            FilterOp::Is => {
                sql.push(&if cs {
                    format!("{expr} IN (")
                } else {
                    format!("lower({expr}) IN (")
                });
                // "(not set)" (and "Direct / None" on sources, referrers and UTM values)
                // names the empty value, as in Plausible (`WhereBuilder.db_field_val`):
                // the rows a breakdown shows under those labels.
                let aliases = l.dim.empty_aliases();
                for (i, v) in l.values.iter().enumerate() {
                    if i > 0 {
                        sql.push(", ");
                    }
                    let v = match aliases {
                        Some((names, stored)) if names.contains(&v.as_str()) => stored,
                        _ => v.as_str(),
                    };
                    if cs {
                        sql.bind_str(v);
                    } else {
                        sql.push("lower(").bind_str(v).push(")");
                    }
                }
                sql.push(")");
            }
            _ => {
                sql.push("(");
                for (i, v) in l.values.iter().enumerate() {
                    if i > 0 {
                        sql.push(" OR ");
                    }
                    match (positive, cs) {
                        (FilterOp::Contains, true) => {
                            sql.push(&format!("contains({expr}, "))
                                .bind_str(v)
                                .push(")");
                        }
                        (FilterOp::Contains, false) => {
                            sql.push(&format!("contains(lower({expr}), lower("))
                                .bind_str(v)
                                .push("))");
                        }
                        (_, true) => {
                            sql.push(&format!("regexp_matches({expr}, "))
                                .bind_str(v)
                                .push(")");
                        }
                        (_, false) => {
                            sql.push(&format!("regexp_matches({expr}, "))
                                .bind_str(v)
                                .push(", 'i')");
                        }
                    }
                }
                sql.push(")");
            }
        }
        sql.push(if nullable { ", false)" } else { ")" });
    }

    /// A row completed one of the goals named by an `event:goal` leaf.
    fn goal_cond(&self, l: &Leaf<'_>, sql: &mut Sql) {
        let cs = l.case_sensitive;
        let norm = |s: &str| if cs { s.to_string() } else { s.to_lowercase() };
        let mut parts: Vec<Sql> = Vec::new();
        let page = |pattern: &str| {
            let mut s = Sql::default();
            s.push(&format!(
                "(e.kind = {KIND_PAGEVIEW} AND regexp_full_match(e.pathname, "
            ))
            .bind_str(&wildcard_to_regex(pattern))
            .push("))");
            s
        };
        for v in l.values {
            let nv = norm(v);
            if l.op.positive() == FilterOp::Contains {
                for g in &self.site.goals {
                    if g.kind == GoalKind::Page && norm(&g.display_name).contains(&nv) {
                        parts.push(page(&g.pattern));
                    }
                }
                let mut s = Sql::default();
                s.push(&format!(
                    "(e.kind = {KIND_CUSTOM} AND contains({}, {}",
                    if cs { "e.name" } else { "lower(e.name)" },
                    if cs { "" } else { "lower(" }
                ))
                .bind_str(v)
                .push(if cs { "))" } else { ")))" });
                parts.push(s);
                continue;
            }
            let configured = self.site.goals.iter().find(|g| norm(&g.display_name) == nv);
            match configured {
                Some(g) if g.kind == GoalKind::Page => parts.push(page(&g.pattern)),
                None if v.starts_with("Visit ") => parts.push(page(&v["Visit ".len()..])),
                other => {
                    let name = other.map(|g| g.pattern.as_str()).unwrap_or(v);
                    let mut s = Sql::default();
                    s.push(&format!(
                        "(e.kind = {KIND_CUSTOM} AND {} = {}",
                        if cs { "e.name" } else { "lower(e.name)" },
                        if cs { "" } else { "lower(" }
                    ))
                    .bind_str(name)
                    .push(if cs { ")" } else { "))" });
                    parts.push(s);
                }
            }
        }
        sql.push("(").append_joined(parts, " OR ").push(")");
    }

    /// Each custom event name's revenue currencies before the range end, for the names
    /// the top-level `event:goal` filters select (every name without one): the goals
    /// `revenue::apply` shows revenue for. Selected by `goal_cond`, so revenue follows the
    /// goals the metrics count.
    fn revenue_currencies_sql(&self) -> Sql {
        let mut sql = Sql::default();
        sql.push("SELECT DISTINCT e.name, e.revenue_currency FROM events e WHERE e.site_id = ")
            .bind(DbValue::UInt(self.site_id))
            .push(" AND e.ts < ");
        self.bind_ts(&mut sql, self.end_us);
        sql.push(&format!(
            " AND e.kind = {KIND_CUSTOM} \
                 AND e.revenue_amount IS NOT NULL AND e.revenue_currency IS NOT NULL"
        ));
        for l in self.q.filters.iter().filter_map(Filter::as_leaf) {
            if *l.dim == Dimension::EventGoal {
                sql.push(" AND ");
                self.goal_cond(&l, &mut sql);
            }
        }
        sql
    }

    fn cond(&self, f: &Filter, sql: &mut Sql) {
        match f {
            Filter::And(fs) | Filter::Or(fs) => {
                let op = if matches!(f, Filter::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                sql.push("(");
                for (i, sub) in fs.iter().enumerate() {
                    if i > 0 {
                        sql.push(op);
                    }
                    self.cond(sub, sql);
                }
                sql.push(")");
            }
            Filter::Not(inner) => {
                sql.push("(NOT ");
                self.cond(inner, sql);
                sql.push(")");
            }
            leaf => {
                let Some(l) = leaf.as_leaf() else { return };
                if *l.dim == Dimension::EventGoal {
                    self.goal_cond(&l, sql);
                } else {
                    let expr = self.filter_expr(l.dim);
                    self.leaf_cond(&l, &expr, sql);
                }
            }
        }
    }

    fn filters_cond(&self, filters: &[Filter], sql: &mut Sql) {
        if filters.is_empty() {
            sql.push("true");
            return;
        }
        sql.push("(");
        for (i, f) in filters.iter().enumerate() {
            if i > 0 {
                sql.push(" AND ");
            }
            self.cond(f, sql);
        }
        sql.push(")");
    }

    fn goal_dim_index(&self) -> Option<usize> {
        self.dims().iter().position(|d| *d == Dimension::EventGoal)
    }

    /// The list of goals a row completed (unnested later): its custom event name and
    /// every configured page goal its pathname matches.
    fn goal_list(&self, sql: &mut Sql) {
        sql.push(&format!(
            "[CASE WHEN e.kind = {KIND_CUSTOM} THEN e.name END"
        ));
        for g in self.site.goals.iter().filter(|g| g.kind == GoalKind::Page) {
            sql.push(&format!(
                ", CASE WHEN e.kind = {KIND_PAGEVIEW} AND regexp_full_match(e.pathname, "
            ))
            .bind_str(&wildcard_to_regex(&g.pattern))
            .push(") THEN ")
            .bind_str(&g.display_name)
            .push(" END");
        }
        sql.push("]");
    }

    fn exits_cte(&self, sql: &mut Sql) {
        if self.use_rollup {
            // The rollup keeps each visit's exit exact (sink.rs tests it against a full
            // recompute); computing it here from events grouped by visit needed more
            // than DuckDB's 128 MB default at 10M events (Out of Memory on
            // `visit:exit_page` with event metrics). These are the visits of every
            // events-window row (events in range) and visits-window row (visits
            // starting in range).
            sql.push("exits AS (SELECT session_id, exit_page, exit_hostname FROM sessions WHERE site_id = ");
            self.bind_site(sql);
            sql.push(" AND session_start < ");
            self.bind_ts(sql, self.end_us);
            sql.push(" AND last_ts >= ");
            self.bind_ts(sql, self.start_us);
            sql.push(")");
            return;
        }
        sql.push(&format!(
            "exits AS (SELECT session_id, \
             COALESCE(arg_max(pathname, (ts, event_id)) FILTER (WHERE kind = {KIND_PAGEVIEW}), arg_max(pathname, (ts, event_id))) AS exit_page, \
             COALESCE(arg_max(hostname, (ts, event_id)) FILTER (WHERE kind = {KIND_PAGEVIEW}), arg_max(hostname, (ts, event_id))) AS exit_hostname \
             FROM events WHERE site_id = "
        ));
        self.bind_site(sql);
        sql.push(" AND session_id IN (SELECT session_id FROM events WHERE site_id = ");
        self.bind_site(sql);
        sql.push(" AND ((ts >= ");
        self.bind_ts(sql, self.start_us);
        sql.push(" AND ts < ");
        self.bind_ts(sql, self.end_us);
        sql.push(") OR session_id IN (SELECT session_id FROM sessions WHERE site_id = ");
        self.bind_site(sql);
        self.in_range(sql, "session_start");
        sql.push("))) GROUP BY session_id)");
    }

    /// `name AS (...)`: event rows of the window with `m` and the group keys (and the
    /// visitor number with `visitors`: on the event itself, 0009, so rows are joined to
    /// their visits only for visit columns or the visit window). With a goal dimension a
    /// second CTE `name_g` holds one row per (event, goal).
    fn rows_cte(
        &self,
        sql: &mut Sql,
        name: &str,
        window: Window,
        filters: &[Filter],
        gap: bool,
        visitors: bool,
    ) {
        let join = window == Window::Visits || self.needs_visit_join(filters);
        let from_map = join && self.visits_from_map(name, window, gap, filters);
        // With the visit map, the visit-side filters are the map's (`visit_map_select`).
        let on_events;
        let filters = if from_map {
            on_events = self.split_visit_filters().1;
            on_events.as_slice()
        } else {
            filters
        };
        sql.push(&format!(
            "{name} AS (SELECT e.session_id, e.ts, e.name, e.kind, \
             e.interactive, e.pathname, e.hostname, e.engagement_ms, e.scroll_depth, {}",
            if self.needs_revenue() {
                // Revenue of custom events only (the goals revenue belongs to).
                format!("CASE WHEN e.kind = {KIND_CUSTOM} THEN e.revenue_amount END AS rev, ")
            } else {
                String::new()
            },
        ));
        if visitors && from_map {
            self.map_call(sql, crate::visit_map::VISITOR_NO, Some("e"));
            sql.push(" AS visitor_no, ");
        } else if visitors && join {
            // The joined visit's: it is in the join's hash table already, so the events'
            // column need not be read as well.
            sql.push("v.visitor_no, ");
        } else if visitors {
            sql.push("e.visitor_no, ");
        }
        if window == Window::Visits {
            sql.push("v.entry_page, v.entry_hostname, ");
        }
        // Events-window rows without gaps keep only rows passing `filters` (the `WHERE`
        // below), so `m` holds for all of them: not evaluated a second time per row (the
        // `page=/` timeseries and page breakdown at 10M events ~1-2 ms each of ~30-40,
        // `examples/sql_time`).
        if window == Window::Events && !gap {
            sql.push("true");
        } else {
            self.filters_cond(filters, sql);
        }
        sql.push(" AS m");
        for (i, d) in self.dims().iter().enumerate() {
            sql.push(", ");
            if *d == Dimension::EventGoal {
                self.goal_list(sql);
            } else {
                sql.push(&self.dim_expr(d, window));
            }
            sql.push(&format!(" AS d{i}"));
        }
        if gap {
            // Seconds to the session's next page view (legacy time on page).
            sql.push(&format!(
                ", CASE WHEN e.kind = {KIND_PAGEVIEW} THEN ({ms}(lead(e.ts) OVER \
                 (PARTITION BY e.session_id, e.kind = {KIND_PAGEVIEW} ORDER BY e.ts)) - {ms}(e.ts)) / 1e3 END AS gap",
                ms = crate::clock::MS
            ));
        }
        sql.push(" FROM events e");
        if join && !from_map {
            match self.matching_visit_join(name, window, gap) {
                Some(MatchingVisits::Msess) => {
                    sql.push(
                        " JOIN (SELECT s.* FROM (SELECT session_id FROM msess WHERE in_range) mm \
                         JOIN sessions s ON s.session_id = mm.session_id) v ON v.session_id = e.session_id AND v.site_id = ",
                    );
                    self.bind_site(sql);
                }
                Some(MatchingVisits::Map) => {
                    self.visit_join(sql, window);
                    self.matching_filter(sql, "v");
                }
                None => self.visit_join(sql, window),
            }
        }
        if self.need_exits {
            sql.push(" LEFT JOIN exits x ON x.session_id = e.session_id");
        }
        for (i, k) in self.prop_keys.iter().enumerate() {
            sql.push(&format!(
                " LEFT JOIN event_props p{i} ON p{i}.site_id = e.site_id AND p{i}.event_id = e.event_id AND p{i}.key = "
            ))
            .bind_str(k);
        }
        sql.push(" WHERE e.site_id = ");
        self.bind_site(sql);
        match window {
            Window::Events => {
                self.in_range(sql, "e.ts");
                // Every user of an events-window CTE keeps only rows with `m` (except the
                // page-view gaps, which need the visit's other page views): filtering
                // here lets DuckDB filter before joining the visits.
                if !gap {
                    sql.push(" AND ");
                    self.filters_cond(filters, sql);
                }
                if from_map {
                    self.matching_filter(sql, "e");
                }
            }
            Window::Visits => {
                // A visit's events are never before its start.
                sql.push(" AND e.ts >= ");
                self.bind_ts(sql, self.start_us);
            }
        }
        sql.push(")");

        if let Some(gi) = self.goal_dim_index() {
            sql.push(&format!(
                ", {name}_g AS (SELECT * FROM (SELECT * EXCLUDE (d{gi}), unnest(d{gi}) AS d{gi} FROM {name}) WHERE d{gi} IS NOT NULL"
            ));
            // Goal filters also pick which goal rows are shown.
            for f in &self.q.filters {
                if let Some(l) = f.as_leaf()
                    && *l.dim == Dimension::EventGoal
                {
                    sql.push(" AND ");
                    let expr = format!("d{gi}");
                    self.leaf_cond(&l, &expr, sql);
                }
            }
            sql.push(")");
        }
    }

    /// Rows CTE name to group on (the per-goal one with a goal dimension).
    fn grouped(&self, name: &str) -> String {
        if self.goal_dim_index().is_some() {
            format!("{name}_g")
        } else {
            name.to_string()
        }
    }

    fn needs_events(&self) -> bool {
        self.has_metric(|m| {
            matches!(
                m,
                Metric::Visitors
                    | Metric::Pageviews
                    | Metric::Events
                    | Metric::Percentage
                    | Metric::ConversionRate
                    | Metric::GroupConversionRate
                    | Metric::TotalRevenue
                    | Metric::AverageRevenue
            )
        })
    }

    fn needs_revenue(&self) -> bool {
        self.has_metric(Metric::is_revenue)
    }

    /// `, sum(rev) AS rev_sum, avg(rev) AS rev_avg` for the revenue metrics, else "".
    fn revenue_aggregates(&self) -> &'static str {
        if self.needs_revenue() {
            ", sum(rev) AS rev_sum, avg(rev) AS rev_avg"
        } else {
            ""
        }
    }

    fn needs_engagement(&self) -> bool {
        self.has_metric(|m| m == Metric::TimeOnPage)
    }

    fn needs_scroll(&self) -> bool {
        self.has_metric(|m| m == Metric::ScrollDepth)
    }

    fn needs_visits(&self) -> bool {
        self.has_metric(Metric::is_visit_level)
    }

    fn event_dims(&self) -> bool {
        self.dims().iter().any(Dimension::is_event)
    }

    /// Every filter and dimension is a visit attribute or time, so each visit either
    /// matches as a whole or not at all: visit metrics can come from the `sessions`
    /// rollup (one row per visit) instead of grouping the range's events by visit.
    fn rollup_visits(&self) -> bool {
        self.use_rollup
            && !self.dims().iter().any(Dimension::is_event)
            && !self
                .q
                .filters_on(&|d| matches!(d, Dimension::EventProps(_)))
            && (self.visit_only_filters() || !self.need_exits)
    }

    /// Visit metrics by event page or hostname (bounce rate and duration of the visits
    /// entering there) can take each visit from the rollup when nothing else needs its
    /// events: visit-only filters, and no other event key.
    fn entry_keyed_rollup(&self) -> bool {
        self.use_rollup
            && self.visit_only_filters()
            && !self.need_exits
            && self.dims().iter().all(|d| {
                matches!(d, Dimension::EventPage | Dimension::EventHostname) || !d.is_event()
            })
    }

    /// Every filter is on a visit attribute (a visit matches as a whole or not at all).
    fn visit_only_filters(&self) -> bool {
        !self.q.filters_on(&|d| !matches!(d, Dimension::Visit(_)))
    }

    /// Visitors from the rollup too: with event filters (`rollup_matching_visitors_cte`)
    /// only without time buckets; with time buckets (`rollup_bucket_visitors_cte`) not with
    /// exit pages, which would come from `exits` there.
    fn rollup_visitors(&self) -> bool {
        self.rollup_visits()
            && (!self.time_dims() || (self.visit_only_filters() && !self.need_exits))
    }

    /// Page views too come from `sv` (see `rollup_bucket_visitors_cte`) when nothing
    /// else needs the range's events.
    fn sv_pageviews(&self) -> bool {
        self.rollup_visitors()
            && self.visit_only_filters()
            && self.has_metric(|m| m == Metric::Pageviews)
            && !self.has_metric(|m| m == Metric::Events)
            && !self.needs_revenue()
            && !self.needs_engagement()
            && !self.needs_scroll()
    }

    fn time_dims(&self) -> bool {
        self.dims().iter().any(|d| matches!(d, Dimension::Time(_)))
    }

    /// `sv AS (...)`: visitor id and group keys of the visits with a hit (a non-engagement
    /// event) in range. A visit starting in range has one (its first event); for the few
    /// that started earlier and are still going at the start, the events say. The two
    /// are a `UNION ALL` rather than one scan with `session_start >= start OR session_id
    /// IN (...)`: DuckDB evaluated that subquery as a mark join over every visit of the
    /// range (10M events, 30 days, by browser: ~10 -> ~5 ms with `max`, Python duckdb).
    fn rollup_visitors_cte(&self, sql: &mut Sql) {
        if self.time_dims() || self.sv_pageviews() {
            self.rollup_bucket_visitors_cte(sql);
            return;
        }
        if !self.visit_only_filters() {
            self.rollup_matching_visitors_cte(sql);
            return;
        }
        self.sv_select(sql);
        sql.push(" FROM sessions e WHERE e.site_id = ");
        self.bind_site(sql);
        self.in_range(sql, "e.session_start");
        sql.push(" AND ");
        self.filters_cond(&self.q.filters, sql);
        self.over_sessions.set(false);
        let listed = self
            .open_ids
            .as_ref()
            .filter(|ids| ids.len() <= MAX_LISTED_OPEN_VISITS);
        if self.shared_set && self.open_ids.is_none() {
            self.open_ids_wanted.set(true);
        }
        if listed.is_some_and(|ids| ids.is_empty()) {
            sql.push(")");
            return;
        }
        sql.push(" UNION ALL ");
        self.sv_columns(sql);
        sql.push(" FROM sessions e WHERE e.site_id = ");
        self.bind_site(sql);
        self.visits_open_at_start(sql, "e.");
        if let Some(ids) = listed {
            // Found once for the dashboard load: three scans and two joins (~4 of a
            // ~21 ms breakdown at 10M events) become one scan of the few row groups
            // around the range's start.
            let list: Vec<String> = ids.iter().map(u64::to_string).collect();
            sql.push(&format!(" AND e.session_id IN ({}) AND ", list.join(", ")));
        } else {
            sql.push(" AND e.session_id IN (");
            self.open_at_start_with_hits(sql);
            sql.push(") AND ");
        }
        self.filters_cond(&self.q.filters, sql);
        sql.push(")");
        self.over_sessions.set(false);
    }

    /// `SELECT session_id` of the visits open at the range's start that have a hit in
    /// range (whatever the filters).
    fn open_at_start_with_hits(&self, sql: &mut Sql) {
        sql.push("SELECT session_id FROM events WHERE site_id = ");
        self.bind_site(sql);
        self.in_range(sql, "ts");
        sql.push(" AND session_id IN (SELECT session_id FROM sessions WHERE site_id = ");
        self.bind_site(sql);
        self.visits_open_at_start(sql, "");
        sql.push(&format!(") AND kind <> {KIND_ENGAGEMENT}"));
    }

    /// ` AND {prefix}session_start < start AND {prefix}last_ts >= start`: the visits that
    /// started before the range and were still going at its start.
    fn visits_open_at_start(&self, sql: &mut Sql, prefix: &str) {
        sql.push(&format!(" AND {prefix}session_start < "));
        self.bind_ts(sql, self.start_us);
        sql.push(&format!(" AND {prefix}last_ts >= "));
        self.bind_ts(sql, self.start_us);
    }

    /// `sv AS (...)` with time buckets (or page views): visitor, keys and page views `pv`
    /// of the hits in range, per visit or per event. Without time buckets the same holds
    /// for the visits inside the range. A visit inside the range whose first and last
    /// events fall in one bucket has all its hits there (its first event is one:
    /// engagement beacons never start a visit), so one row from `sessions` stands for it.
    /// The few others (visits spanning buckets or the range's ends: ~0.5 % at 30 days by
    /// day, measured at 10M events) contribute one row per hit from `events`. Distinct
    /// (bucket, visitor) pairs then come from ~900k rows instead of ~2.2M events joined
    /// to their visits (10M events, 30 days by day: ~90 vs ~160-270 ms).
    fn rollup_bucket_visitors_cte(&self, sql: &mut Sql) {
        let same_bucket = |alias: &str, eq: &str| {
            let mut out = Vec::new();
            for d in self.dims() {
                if let Dimension::Time(g) = d {
                    let (first, last) =
                        (format!("{alias}.session_start"), format!("{alias}.last_ts"));
                    let g = footfall_core::query::resolve_granularity(*g, &self.q.range);
                    if g == TimeGranularity::Day {
                        // One call instead of two `ff_day`s and a comparison, asked of
                        // every visit of the range (`clock.rs`).
                        let not = if eq == "=" { "" } else { "NOT " };
                        out.push(format!(
                            "{not}{}({first}, {}, {last}, {})",
                            crate::clock::SAME_DAY,
                            self.local_offset(&first),
                            self.local_offset(&last)
                        ));
                        continue;
                    }
                    out.push(format!(
                        "{} {eq} {}",
                        self.time_bucket(g, &first),
                        self.time_bucket(g, &last)
                    ));
                }
            }
            out
        };
        self.over_sessions.set(true);
        sql.push("sv AS (SELECT e.visitor_no, e.pageviews AS pv");
        for (i, d) in self.dims().iter().enumerate() {
            sql.push(&format!(", {} AS d{i}", self.dim_expr(d, Window::Visits)));
        }
        sql.push(" FROM sessions e WHERE e.site_id = ");
        self.bind_site(sql);
        self.in_range(sql, "e.session_start");
        sql.push(" AND e.last_ts < ");
        self.bind_ts(sql, self.end_us);
        for c in same_bucket("e", "=") {
            sql.push(&format!(" AND {c}"));
        }
        sql.push(" AND ");
        self.filters_cond(&self.q.filters, sql);
        self.over_sessions.set(false);
        if self.time_dims() {
            let mut spans = vec![VisitSpan::OpenAtStart, VisitSpan::OpenAtEnd];
            spans.extend(same_bucket("v", "<>").into_iter().map(VisitSpan::Across));
            self.visit_hits_branch(sql, &spans);
        } else {
            // One branch per end of the range: the visits open at each end then have
            // neighbouring session ids, so DuckDB's join filter (the build side's
            // smallest and largest id) skips most of the range's events (10M events,
            // 30 days, this part of the aggregate: 7.7 -> 2.4 ms, Python duckdb).
            self.visit_hits_branch(sql, &[VisitSpan::OpenAtStart]);
            self.visit_hits_branch(sql, &[VisitSpan::StartsInRangeOpenAtEnd]);
        }
        sql.push(")");
    }

    /// ` UNION ALL SELECT` visitor, `pv` and keys of each hit in range of the visits that
    /// have one of `spans` (their other hits come from their `sessions` row).
    fn visit_hits_branch(&self, sql: &mut Sql, spans: &[VisitSpan]) {
        sql.push(&format!(
            " UNION ALL SELECT v.visitor_no, CAST(e.kind = {KIND_PAGEVIEW} AS INTEGER) AS pv"
        ));
        for (i, d) in self.dims().iter().enumerate() {
            sql.push(&format!(", {} AS d{i}", self.dim_expr(d, Window::Events)));
        }
        sql.push(" FROM events e");
        self.visit_join(sql, Window::Events);
        sql.push(" AND (");
        for (i, span) in spans.iter().enumerate() {
            if i > 0 {
                sql.push(" OR ");
            }
            match span {
                VisitSpan::OpenAtStart => {
                    sql.push("v.session_start < ");
                    self.bind_ts(sql, self.start_us);
                }
                VisitSpan::OpenAtEnd => {
                    sql.push("v.last_ts >= ");
                    self.bind_ts(sql, self.end_us);
                }
                VisitSpan::StartsInRangeOpenAtEnd => {
                    sql.push("v.session_start >= ");
                    self.bind_ts(sql, self.start_us);
                    sql.push(" AND v.last_ts >= ");
                    self.bind_ts(sql, self.end_us);
                }
                VisitSpan::Across(cond) => {
                    sql.push(cond);
                }
            };
        }
        sql.push(")");
        if self.need_exits {
            // Exit page keys of event rows are read from `exits` (as in `rows_cte`):
            // without it `visit:exit_page` with page views was a binder error (500).
            sql.push(" LEFT JOIN exits x ON x.session_id = e.session_id");
        }
        sql.push(" WHERE e.site_id = ");
        self.bind_site(sql);
        self.in_range(sql, "e.ts");
        sql.push(&format!(" AND e.kind <> {KIND_ENGAGEMENT} AND "));
        self.filters_cond(&self.q.filters, sql);
    }

    /// `sv AS (SELECT e.visitor_no, <dimension keys>` over `sessions e` (leaves
    /// `over_sessions` set).
    fn sv_select(&self, sql: &mut Sql) {
        sql.push("sv AS (");
        self.sv_columns(sql);
    }

    /// `SELECT e.visitor_no, <dimension keys>` over `sessions e` (leaves `over_sessions`
    /// set).
    fn sv_columns(&self, sql: &mut Sql) {
        self.over_sessions.set(true);
        sql.push("SELECT e.visitor_no");
        for (i, d) in self.dims().iter().enumerate() {
            sql.push(&format!(", {} AS d{i}", self.dim_expr(d, Window::Events)));
        }
    }

    /// The condition on `sessions e` keeping the site's visits that can have events in
    /// range.
    fn visit_rows_in_range(&self, sql: &mut Sql) {
        sql.push("e.site_id = ");
        self.bind_site(sql);
        sql.push(" AND e.session_start < ");
        self.bind_ts(sql, self.end_us);
        sql.push(" AND e.last_ts >= ");
        self.bind_ts(sql, self.start_us);
    }

    /// `sv AS (...)` with event filters: the visits with a matching hit in range, picked
    /// from `events` by session id; keys and visitor from their `sessions` row. Grouping
    /// visits instead of their matching events joined to their visits: half the time
    /// (10M events, 30 days, `page=/` by source: ~110 vs ~220 ms, Python duckdb). The
    /// matching session ids are made distinct and joined to `sessions`, rather than
    /// tested with `session_id IN (...)`: DuckDB then hashes the ~350k matching visits
    /// instead of probing every visit of the range against ~530k matching events
    /// (`page=/`: 61 -> 45 ms for this CTE alone, 2026-12-04). With a load's shared set,
    /// its visit map filters the scan of `sessions` instead (`ff_matching`, no join).
    fn rollup_matching_visitors_cte(&self, sql: &mut Sql) {
        let (on_visit, on_events) = self.split_visit_filters();
        self.sv_select(sql);
        self.over_sessions.set(false);
        if self.shared_matching_visits() {
            sql.push(" FROM (SELECT session_id FROM msess WHERE in_range");
        } else if self.uses_visit_map() {
            // The load's matching visits as a filter on the scan of `sessions`.
            sql.push(" FROM sessions e WHERE ");
            self.visits_passing(sql, &on_visit);
            self.matching_filter(sql, "e");
            sql.push(")");
            return;
        } else {
            sql.push(" FROM (SELECT DISTINCT e.session_id FROM events e");
            if filters_on_visit(&on_events) {
                self.visit_join(sql, Window::Events);
            }
            sql.push(" WHERE e.site_id = ");
            self.bind_site(sql);
            self.in_range(sql, "e.ts");
            sql.push(&format!(" AND e.kind <> {KIND_ENGAGEMENT} AND "));
            self.filters_cond(&on_events, sql);
        }
        sql.push(") m");
        self.matching_sessions(sql, &on_visit);
        sql.push(")");
    }

    /// ` JOIN sessions e ... WHERE`: the `sessions` rows of the matching visits `m` that
    /// can have events in range and pass the visit-side filters `on_visit`.
    fn matching_sessions(&self, sql: &mut Sql, on_visit: &[Filter]) {
        sql.push(" JOIN sessions e ON e.session_id = m.session_id WHERE ");
        self.visits_passing(sql, on_visit);
    }

    /// The condition on `sessions e` of the visits that can have events in range and
    /// pass the visit-side filters `on_visit`.
    fn visits_passing(&self, sql: &mut Sql, on_visit: &[Filter]) {
        self.over_sessions.set(true);
        self.visit_rows_in_range(sql);
        if !on_visit.is_empty() {
            sql.push(" AND ");
            self.filters_cond(on_visit, sql);
        }
        self.over_sessions.set(false);
    }

    /// Both the matching visitors (`rollup_matching_visitors_cte`) and the matching
    /// visits (`rollup_sess_cte`) come from the events that pass event filters: one
    /// `msess` CTE finds those visits for both, in one scan of the events (the `page=/`
    /// aggregate at 10M events: 114-123 -> 91-95 ms, Python duckdb, alternating). Not
    /// when an event-side filter reads the visit (the two join it differently).
    fn shared_matching_visits(&self) -> bool {
        self.matching_visits_once() && !self.uses_visit_map()
    }

    /// Whether one set of matching visits can serve both the matching visitors and the
    /// matching visits: `msess` within the query, or the load's visit map when there is
    /// one (`shared_matching_visits` is the first).
    fn matching_visits_once(&self) -> bool {
        let (_, on_events) = self.split_visit_filters();
        self.rollup_visitors()
            && !self.time_dims()
            && !self.visit_only_filters()
            && self.needs_visits()
            && (self.needs_events() || self.needs_engagement() || self.needs_scroll())
            && !filters_on_visit(&on_events)
    }

    /// `msess AS (...)`: the visits with a hit at or after the range start that passes the
    /// event filters, and whether one is before the range end (`in_range`: `sv` wants
    /// those; `sess`, the visits starting in range, takes a match at any later time).
    fn matching_visits_cte(&self, sql: &mut Sql) {
        sql.push("msess AS MATERIALIZED (");
        self.matching_set_select(sql);
        sql.push(")");
    }

    /// The `SELECT` of `msess`: the visits with a hit at or after the range start that
    /// passes the event filters, flagged `in_range` when one is before the range end,
    /// with the page views `pv` and hits `n` among those in range (a query without a
    /// load's shared set; with one, `matching_collect_select` finds the same visits).
    fn matching_set_select(&self, sql: &mut Sql) {
        let (_, on_events) = self.split_visit_filters();
        self.over_sessions.set(false);
        let end = |sql: &mut Sql| self.bind_ts(sql, self.end_us);
        sql.push("SELECT e.session_id, bool_or(e.ts < ");
        end(sql);
        sql.push(") AS in_range, CAST(count(*) FILTER (WHERE e.ts < ");
        end(sql);
        sql.push(&format!(
            " AND e.kind = {KIND_PAGEVIEW}) AS UINTEGER) AS pv, CAST(count(*) FILTER (WHERE e.ts < "
        ));
        end(sql);
        sql.push(") AS UINTEGER) AS n FROM events e");
        self.hits_from_start(sql, &on_events);
        sql.push(" GROUP BY e.session_id");
    }

    /// The dashboard's aggregate with event filters (visitors, visits, page views, events,
    /// bounce rate, duration, views per visit, no dimension) in one pass over the
    /// matching visits joined to their `sessions` rows: visitors from those with a
    /// matching hit in range, visit metrics from those starting in range, page views and
    /// hits counted in `msess`. The general plan joined the visits twice and scanned the
    /// range's events again for the counts (10M events, 30 days, in a dashboard load,
    /// `scripts/dashboard-sets`: `page=/` 141-156 -> 133-138 ms, `page=/` and
    /// `source=Google` 188-206 -> 164).
    fn one_pass_matching(&self) -> bool {
        self.matching_visits_once()
            && self.dims().is_empty()
            && !self.need_exits
            && self.q.metrics.iter().all(|m| {
                matches!(
                    m,
                    Metric::Visitors
                        | Metric::Visits
                        | Metric::Pageviews
                        | Metric::Events
                        | Metric::BounceRate
                        | Metric::VisitDuration
                        | Metric::ViewsPerVisit
                )
            })
    }

    /// `mv`, `ev` and `vis` of `one_pass_matching` (after `msess`). With a shared set,
    /// its visit map picks the visits from their scan of `sessions` instead of a join
    /// (`visit_map.rs`), and the map counted the page views and hits of its visits when it
    /// was made (10M events, 30 days, `scripts/dashboard-sets` alternating: the aggregate
    /// with `page=/` 167-188 -> 142-154 ms, with `source=Google` too 191-197 -> 121-134,
    /// when they came from the set's table; figures of the counts in BENCHMARKS). It
    /// counts their visitors too (`ff_matching_visitors`, from the numbers it holds,
    /// rather than `ff_uniq` over the scan).
    fn one_pass_matching_ctes(&self, sql: &mut Sql) {
        let (on_visit, _) = self.split_visit_filters();
        let starts_in_range = |sql: &mut Sql| {
            sql.push("e.session_start >= ");
            self.bind_ts(sql, self.start_us);
        };
        let visit = VisitColumns {
            first: "e.session_start",
            last: "e.last_ts",
            pv: "e.pageviews",
            inter: "e.interactive",
        };
        if self.uses_visit_map() {
            use crate::visit_map::{HITS, MATCHING_FROM_START, PAGEVIEWS, VISITORS};
            sql.push("mv AS (SELECT ");
            self.visit_aggregates(sql, &visit, Some(&starts_in_range));
            sql.push(" FROM sessions e WHERE ");
            self.visits_passing(sql, &on_visit);
            sql.push(" AND ");
            self.map_call(sql, MATCHING_FROM_START, Some("e"));
            sql.push("), ev AS (SELECT ");
            self.map_call(sql, VISITORS, None);
            sql.push(" AS visitors, ");
            self.map_call(sql, PAGEVIEWS, None);
            sql.push(" AS pageviews, ");
            self.map_call(sql, HITS, None);
            sql.push(" AS events FROM mv), ");
        } else {
            sql.push(&format!(
                "mv AS (SELECT {UNIQ}(e.visitor_no) FILTER (WHERE m.in_range) AS visitors, \
                 sum(m.pv) AS pageviews, sum(m.n) AS events, "
            ));
            self.visit_aggregates(sql, &visit, Some(&starts_in_range));
            sql.push(" FROM msess m");
            self.matching_sessions(sql, &on_visit);
            sql.push("), ev AS (SELECT visitors, pageviews, events FROM mv), ");
        }
        sql.push(
            "vis AS (SELECT s_visits, s_pv, s_bounces, s_bounce_base, s_dur, s_visits AS visits FROM mv)",
        );
    }

    /// For `r_ev` joined to its visits with event filters: the matching visits to take
    /// the visits from (`msess`, or the load's shared set when an earlier query made it),
    /// so DuckDB hashes the ~350k matching visits instead of every visit of the range
    /// (10M events, 30 days, `page=/` by page: the join 66 -> 41 ms, Python duckdb; in a
    /// dashboard load, `scripts/dashboard-sets`: time:day 93-108 -> 73-83 ms, by page
    /// 94-98 -> 67-70, and the same with `source=Google` too). Every
    /// reader of `r_ev` keeps only its matching hits (`m`, not engagement), whose visits
    /// are those with a matching hit in range; not with engagement or scroll metrics,
    /// which read `r_ev`'s engagement rows.
    fn matching_visit_join(&self, name: &str, window: Window, gap: bool) -> Option<MatchingVisits> {
        if name != "r_ev"
            || window != Window::Events
            || gap
            || self.needs_engagement()
            || self.needs_scroll()
            || !self.use_rollup
        {
            return None;
        }
        if self.shared_matching_visits() {
            return Some(MatchingVisits::Msess);
        }
        if !self.matching_ready {
            return None;
        }
        self.uses_visit_map().then_some(MatchingVisits::Map)
    }

    /// Whether the event rows `name` take their visitor from the load's visit map
    /// (`ff_visitor_no`) instead of joining their visits to the shared set and `sessions`:
    /// when an earlier query of the load made the set and the rows read nothing else of
    /// the visit. The map holds the visits passing the visit-side filters, which the rows
    /// then leave out. 10M events, 30 days, `page=/` in a dashboard load
    /// (`scripts/dashboard-sets`, alternating): time:day 67-76 -> 40-44 ms, by page 58-74
    /// -> 29; the map's join to `sessions` costs the aggregate ~25 of that, which its
    /// own use of the map wins back (`one_pass_matching_ctes`).
    fn visits_from_map(&self, name: &str, window: Window, gap: bool, filters: &[Filter]) -> bool {
        self.matching_visit_join(name, window, gap) == Some(MatchingVisits::Map)
            && !self.dims().iter().any(visit_column)
            && filters == self.q.filters.as_slice()
    }

    /// `SELECT ff_collect_visits(handle, session_id, visitor_no, in range, page view in
    /// range)` over the hits from the range start that pass the event filters: the visits
    /// of the load's shared set (`visit_collect.rs`), as `matching_set_select` finds them
    /// for `msess`.
    fn matching_collect_select(&self, sql: &mut Sql) {
        let (_, on_events) = self.split_visit_filters();
        self.over_sessions.set(false);
        sql.push(&format!("SELECT {}(", crate::visit_collect::NAME))
            .bind(DbValue::UBigInt(self.matching_handle))
            .push(", e.session_id, e.visitor_no, e.ts < ");
        self.bind_ts(sql, self.end_us);
        sql.push(", e.ts < ");
        self.bind_ts(sql, self.end_us);
        sql.push(&format!(" AND e.kind = {KIND_PAGEVIEW}) FROM events e"));
        self.hits_from_start(sql, &on_events);
    }

    /// The `SELECT` of the shared set's visit map (`visit_map.rs`): session id, visitor
    /// number and whether a hit is in range, of the visits collected (published as a map
    /// without numbers) that pass the visit-side filters.
    fn visit_map_select(&self, sql: &mut Sql) {
        let (on_visit, _) = self.split_visit_filters();
        sql.push("SELECT e.session_id, e.visitor_no, ");
        self.map_call(sql, crate::visit_map::MATCHING, Some("e"));
        sql.push(" FROM sessions e WHERE ");
        self.visits_passing(sql, &on_visit);
        sql.push(" AND ");
        self.map_call(sql, crate::visit_map::MATCHING_FROM_START, Some("e"));
    }

    /// ` AND ff_matching(handle, {alias}.session_id)`: the visit is one of the load's
    /// shared matching visits with a hit in range that pass the visit-side filters
    /// (`visit_map.rs`; the map is made before the query runs when `uses_visit_map`).
    fn matching_filter(&self, sql: &mut Sql, alias: &str) {
        sql.push(" AND ");
        self.map_call(sql, crate::visit_map::MATCHING, Some(alias));
    }

    /// `function(handle, {alias}.session_id)`, or `function(handle)` without `alias`: one
    /// of the visit map's functions (`visit_map.rs`) on the load's map.
    fn map_call(&self, sql: &mut Sql, function: &str, alias: Option<&str>) {
        sql.push(&format!("{function}("))
            .bind(DbValue::UBigInt(self.matching_handle));
        if let Some(alias) = alias {
            sql.push(&format!(", {alias}.session_id"));
        }
        sql.push(")");
    }

    /// Whether this query reads its matching visits from the load's visit map: when
    /// `execute_with` offers a shared set and there are event-side filters that read no
    /// visit attribute (the set is found without the visit join); the map is then made
    /// before the query runs (`matching_used`).
    fn uses_visit_map(&self) -> bool {
        let (_, on_events) = self.split_visit_filters();
        if !self.shared_set || on_events.is_empty() || filters_on_visit(&on_events) {
            return false;
        }
        self.matching_used.set(true);
        true
    }

    /// The key of this query's shared matching visits: the site (goals included, for
    /// goal filters), the range and every filter. The set depends only on the event-side
    /// filters, but a dashboard load is one filter set: keyed by all of them, a load with
    /// another visit filter (`page=/` then `page=/` and `source=Google`) makes its own.
    fn matching_key(&self) -> String {
        format!(
            "{}\u{1f}{:?}\u{1f}{}\u{1f}{}\u{1f}{:?}",
            self.site_id, self.site, self.start_us, self.end_us, self.q.filters
        )
    }

    /// ` WHERE` the site's hits (not engagement) at or after the range start that pass
    /// `filters`, on `events e`: the visits they belong to match (`msess`, `sess`).
    fn hits_from_start(&self, sql: &mut Sql, filters: &[Filter]) {
        sql.push(" WHERE e.site_id = ");
        self.bind_site(sql);
        sql.push(" AND e.ts >= ");
        self.bind_ts(sql, self.start_us);
        sql.push(&format!(" AND e.kind <> {KIND_ENGAGEMENT} AND "));
        self.filters_cond(filters, sql);
    }

    /// `sess AS (...)` from the rollup: the visits starting in range that match.
    fn rollup_sess_cte(&self, sql: &mut Sql) {
        self.over_sessions.set(true);
        sql.push(
            "sess AS (SELECT e.session_id, e.session_start AS first_ts, e.last_ts, e.pageviews AS pv, \
             e.interactive AS inter, e.entry_page",
        );
        for (i, d) in self.dims().iter().enumerate() {
            let key = match d {
                // Page and hostname keys of visit metrics are the entry ones (see `build`).
                Dimension::EventPage => "e.entry_page".to_string(),
                Dimension::EventHostname => "e.entry_hostname".to_string(),
                d => self.dim_expr(d, Window::Visits),
            };
            sql.push(&format!(", {key} AS d{i}"));
        }
        sql.push(" FROM sessions e WHERE e.site_id = ");
        self.bind_site(sql);
        self.in_range(sql, "e.session_start");
        if self.visit_only_filters() {
            sql.push(" AND ");
            self.filters_cond(&self.q.filters, sql);
            sql.push(")");
            self.over_sessions.set(false);
            return;
        }
        // Event filters: the visits with a matching hit, as the raw plan's HAVING says
        // (filters are evaluated per event; visit attributes are on every event), split
        // as in `split_visit_filters`. The events are joined to their visit only when an
        // event-side filter reads it: the outer condition already keeps the visits
        // starting in range, and the join cost ~20 % of the `page=/` aggregate at 10M
        // events (177 -> 142 ms).
        let (on_visit, on_events) = self.split_visit_filters();
        if !on_visit.is_empty() {
            sql.push(" AND ");
            self.filters_cond(&on_visit, sql);
        }
        self.over_sessions.set(false);
        if self.shared_matching_visits() {
            sql.push(" AND e.session_id IN (SELECT session_id FROM msess))");
            return;
        }
        if self.uses_visit_map() {
            sql.push(" AND ");
            self.map_call(sql, crate::visit_map::MATCHING_FROM_START, Some("e"));
            sql.push(")");
            return;
        }
        sql.push(" AND e.session_id IN (SELECT e.session_id FROM events e");
        if filters_on_visit(&on_events) {
            self.visit_join(sql, Window::Visits);
        }
        self.hits_from_start(sql, &on_events);
        sql.push("))");
    }

    /// Top-level filters wholly on visit attributes (tested on the visit's row) and the
    /// rest (tested on events; a visit matches when one of its events passes them all).
    fn split_visit_filters(&self) -> (Vec<Filter>, Vec<Filter>) {
        self.q
            .filters
            .iter()
            .cloned()
            .partition(|f| !f.any_leaf(&|l| !visit_column(l.dim)))
    }

    /// `, vs AS (...)`: visit metrics per group key over `sess` (one row per visit, from
    /// either plan).
    fn visit_summary_cte(&self, sql: &mut Sql, dsel: &str, excl: &str, gb: &str) {
        sql.push(&format!(", vs AS (SELECT {dsel}"));
        let sess = VisitColumns {
            first: "first_ts",
            last: "last_ts",
            pv: "pv",
            inter: "inter",
        };
        self.visit_aggregates(sql, &sess, None);
        sql.push(&format!(" FROM sess WHERE true{excl}{gb})"));
    }

    /// The visit metrics' aggregates (`s_visits`, `s_pv`, `s_bounces`, `s_bounce_base`,
    /// `s_dur`) over one row per visit with columns `c`, of the rows `only` keeps (all
    /// without it).
    fn visit_aggregates(
        &self,
        sql: &mut Sql,
        c: &VisitColumns<'_>,
        only: Option<&dyn Fn(&mut Sql)>,
    ) {
        // ` FILTER (WHERE <only>)`, or nothing.
        let only_rows = |sql: &mut Sql| {
            if let Some(only) = only {
                sql.push(" FILTER (WHERE ");
                only(sql);
                sql.push(")");
            }
        };
        // ` FILTER (WHERE <only> AND ` before a further condition.
        let rows_where = |sql: &mut Sql| {
            sql.push(" FILTER (WHERE ");
            if let Some(only) = only {
                only(sql);
                sql.push(" AND ");
            }
        };
        let VisitColumns {
            first,
            last,
            pv,
            inter,
        } = c;
        sql.push("count(*)");
        only_rows(sql);
        sql.push(&format!(" AS s_visits, CAST(sum({pv})"));
        only_rows(sql);
        sql.push(" AS DOUBLE) AS s_pv, count(*)");
        rows_where(sql);
        sql.push(&format!("{pv} <= 1 AND {inter} = 0 AND "));
        self.entry_cond(sql);
        sql.push(") AS s_bounces, count(*)");
        rows_where(sql);
        self.entry_cond(sql);
        sql.push(&format!(
            ") AS s_bounce_base, avg({ms}({last}) - {ms}({first}))",
            ms = crate::clock::MS
        ));
        only_rows(sql);
        sql.push(" / 1e3 AS s_dur");
    }

    /// Condition on `sess` for bounce rate: with `event:page` filters, visits that
    /// entered on a matching page (Plausible).
    fn entry_cond(&self, sql: &mut Sql) {
        let mut any = false;
        for f in &self.q.filters {
            if let Some(l) = f.as_leaf()
                && *l.dim == Dimension::EventPage
            {
                if any {
                    sql.push(" AND ");
                }
                self.leaf_cond(&l, "entry_page", sql);
                any = true;
            }
        }
        if !any {
            sql.push("true");
        }
    }

    /// Every CTE plus `final AS (...)` with columns d0.., m0.. (unordered).
    fn build(&self) -> Sql {
        let mut sql = Sql::default();
        let mut ctes: Vec<Sql> = Vec::new();
        let gb = self.group_by();
        let dc = self.dim_cols();
        let dsel = if dc.is_empty() {
            String::new()
        } else {
            format!("{dc}, ")
        };
        let excl = self.exclude_empty();

        if self.need_exits {
            let mut s = Sql::default();
            self.exits_cte(&mut s);
            ctes.push(s);
        }
        if self.shared_matching_visits() {
            let mut s = Sql::default();
            self.matching_visits_cte(&mut s);
            ctes.push(s);
        }
        let mut parts: Vec<&str> = Vec::new();
        if self.one_pass_matching() {
            let mut s = Sql::default();
            self.one_pass_matching_ctes(&mut s);
            ctes.push(s);
            parts.extend(["ev", "vis"]);
        } else {
            self.metric_ctes(&mut ctes, &mut parts, &dc, &dsel, &excl, &gb);
        }

        // Final select.
        let mut from = String::new();
        for (i, p) in parts.iter().enumerate() {
            if i == 0 {
                from.push_str(p);
            } else if dc.is_empty() {
                from.push_str(&format!(" CROSS JOIN {p}"));
            } else {
                from.push_str(&format!(" FULL OUTER JOIN {p} USING ({dc})"));
            }
        }
        if self.has_metric(|m| m == Metric::GroupConversionRate) {
            let keys = self.group_keys();
            if keys.is_empty() {
                from.push_str(" CROSS JOIN tot_g");
            } else {
                from.push_str(&format!(" LEFT JOIN tot_g USING ({keys})"));
            }
        }
        let mut fin = Sql::default();
        fin.push("final AS (SELECT ");
        for (i, d) in self.dims().iter().enumerate() {
            fin.push(&format!("{}, ", self.dim_output(i, d)));
        }
        let metric_sql: Vec<String> = self
            .q
            .metrics
            .iter()
            .enumerate()
            .map(|(j, m)| format!("{} AS m{j}", metric_expr(*m)))
            .collect();
        fin.push(&metric_sql.join(", "));
        if self.needs_engagement() && !self.legacy_gaps {
            // Trailing flag: some key has no engagement data and needs the fallback.
            fin.push(", (SELECT bool_or(COALESCE(eng_sessions, 0) = 0) FROM eng) AS need_gaps");
        }
        fin.push(&format!(" FROM {from})"));
        ctes.push(fin);

        sql.push("WITH ").append_joined(ctes, ", ");
        sql
    }

    /// The CTEs of each metric group (`ev`, `eng`, `sd`, `vis`, and `tot_c`/`tot_g` for
    /// conversion rates), naming the ones `final` joins in `parts`.
    fn metric_ctes(
        &self,
        ctes: &mut Vec<Sql>,
        parts: &mut Vec<&'static str>,
        dc: &str,
        dsel: &str,
        excl: &str,
        gb: &str,
    ) {
        if self.needs_events() || self.needs_engagement() || self.needs_scroll() {
            let rollup_visitors = self.rollup_visitors();
            let sv_pageviews = self.sv_pageviews();
            let counts = !sv_pageviews
                && self.has_metric(|m| {
                    matches!(m, Metric::Pageviews | Metric::Events) || m.is_revenue()
                });
            let rev = self.revenue_aggregates();
            if !rollup_visitors || counts || self.needs_engagement() || self.needs_scroll() {
                let mut s = Sql::default();
                self.rows_cte(
                    &mut s,
                    "r_ev",
                    Window::Events,
                    &self.q.filters,
                    self.needs_engagement() && self.legacy_gaps,
                    !rollup_visitors,
                );
                ctes.push(s);
            }
            let src = self.grouped("r_ev");
            let mut s = Sql::default();
            if rollup_visitors {
                self.rollup_visitors_cte(&mut s);
                s.push(&format!(
                    ", tot AS (SELECT {UNIQ}(visitor_no) AS n FROM sv)"
                ));
            } else {
                s.push(&format!(
                    "tot AS (SELECT {UNIQ}(visitor_no) AS n FROM r_ev WHERE m AND kind <> {KIND_ENGAGEMENT})"
                ));
            }
            ctes.push(s);
            if self.needs_events() && rollup_visitors {
                let mut s = Sql::default();
                if dc.is_empty() && sv_pageviews {
                    // One pass over `sv` (reading `tot` and `sv` apart computed `sv` twice:
                    // 64 against 34 ms for the aggregate at 10M events).
                    s.push(&format!(
                        "ev_v AS (SELECT {UNIQ}(visitor_no) AS visitors, sum(pv) AS pageviews FROM sv)"
                    ));
                } else if dc.is_empty() {
                    s.push("ev_v AS (SELECT n AS visitors FROM tot)");
                } else if sv_pageviews {
                    s.push(&format!(
                        "ev_v AS (SELECT {dsel}{UNIQ}(visitor_no) AS visitors, \
                         sum(pv) AS pageviews FROM sv WHERE true{excl}{gb})"
                    ));
                } else {
                    s.push(&format!(
                        "ev_v AS (SELECT {dsel}{UNIQ}(visitor_no) AS visitors FROM sv WHERE true{excl}{gb})"
                    ));
                }
                if counts {
                    let join = if dc.is_empty() {
                        "CROSS JOIN ev_c".to_string()
                    } else {
                        format!("FULL OUTER JOIN ev_c USING ({dc})")
                    };
                    s.push(&format!(
                        ", ev_c AS (SELECT {dsel}count(*) FILTER (WHERE kind = {KIND_PAGEVIEW}) AS pageviews, \
                         count(*) AS events{rev} FROM {src} WHERE m AND kind <> {KIND_ENGAGEMENT}{excl}{gb}), \
                         ev AS (SELECT * FROM ev_v {join})"
                    ));
                } else {
                    s.push(", ev AS (SELECT * FROM ev_v)");
                }
                ctes.push(s);
                parts.push("ev");
            } else if self.needs_events() {
                let mut s = Sql::default();
                s.push(&format!(
                    "ev AS (SELECT {dsel}{UNIQ}(visitor_no) AS visitors, \
                     count(*) FILTER (WHERE kind = {KIND_PAGEVIEW}) AS pageviews, count(*) AS events{rev} \
                     FROM {src} WHERE m AND kind <> {KIND_ENGAGEMENT}{excl}{gb})"
                ));
                ctes.push(s);
                parts.push("ev");
            }
            if self.needs_engagement() {
                let gap = if self.legacy_gaps {
                    format!("avg(gap) FILTER (WHERE kind = {KIND_PAGEVIEW})")
                } else {
                    "CAST(NULL AS DOUBLE)".to_string()
                };
                let mut s = Sql::default();
                s.push(&format!(
                    "eng AS (SELECT {dsel}sum(engagement_ms) FILTER (WHERE kind = {KIND_ENGAGEMENT}) AS eng_ms, \
                     count(DISTINCT session_id) FILTER (WHERE kind = {KIND_ENGAGEMENT} AND engagement_ms > 0) AS eng_sessions, \
                     {gap} AS gap_avg \
                     FROM {src} WHERE m{excl}{gb})"
                ));
                ctes.push(s);
                parts.push("eng");
            }
            if self.needs_scroll() {
                let mut s = Sql::default();
                s.push(&format!(
                    "sd AS (SELECT {dsel}avg(max_sd) AS sd FROM (SELECT {dsel}session_id, max(scroll_depth) AS max_sd \
                     FROM {src} WHERE m AND kind = {KIND_ENGAGEMENT} AND scroll_depth IS NOT NULL AND scroll_depth <= 100{excl} \
                     GROUP BY {dsel}session_id){gb})"
                ));
                ctes.push(s);
                parts.push("sd");
            }
        }
        if self.has_metric(|m| matches!(m, Metric::ConversionRate | Metric::GroupConversionRate)) {
            let stripped = strip_goal_filters(&self.q.filters);
            let mut s = Sql::default();
            self.rows_cte(&mut s, "r_tot", Window::Events, &stripped, false, true);
            s.push(&format!(
                ", tot_c AS (SELECT {UNIQ}(visitor_no) AS n FROM r_tot WHERE m AND kind <> {KIND_ENGAGEMENT})"
            ));
            if self.has_metric(|m| m == Metric::GroupConversionRate) {
                // The denominator per group of the other (non-goal) keys.
                let keys = self.group_keys();
                let (ksel, kgb) = if keys.is_empty() {
                    (String::new(), String::new())
                } else {
                    (format!("{keys}, "), format!(" GROUP BY {keys}"))
                };
                s.push(&format!(
                    ", tot_g AS (SELECT {ksel}{UNIQ}(visitor_no) AS group_n FROM r_tot \
                     WHERE m AND kind <> {KIND_ENGAGEMENT}{}{kgb})",
                    self.exclude_empty()
                ));
            }
            ctes.push(s);
        }
        if self.needs_visits() && self.rollup_visits() {
            let mut s = Sql::default();
            self.rollup_sess_cte(&mut s);
            self.visit_summary_cte(&mut s, dsel, excl, gb);
            s.push(", vis AS (SELECT *, s_visits AS visits FROM vs)");
            ctes.push(s);
            parts.push("vis");
        } else if self.needs_visits() {
            let mut s = Sql::default();
            self.rows_cte(
                &mut s,
                "r_vis",
                Window::Visits,
                &self.q.filters,
                false,
                false,
            );
            if self.entry_keyed_rollup() {
                // Each visit's numbers from its `sessions` row, keyed by its entry page or
                // hostname: what grouping `r_vis` by visit below computes, without the
                // per-visit aggregate over every event of the range's visits (at 10M
                // events a 30-day page breakdown with bounce rate needed more than
                // DuckDB's 128 MB with it, and `r_vis`, read twice, was materialised).
                s.push(", ");
                self.rollup_sess_cte(&mut s);
            } else {
                // Per session; group keys: visit/time keys are constant within a session, event
                // page/hostname keys become the entry page/hostname (bounce rate and duration
                // of a page are those of the visits that entered on it).
                s.push(&format!(
                    ", sess AS (SELECT session_id, min(ts) AS first_ts, max(ts) AS last_ts, \
                     count(*) FILTER (WHERE kind = {KIND_PAGEVIEW}) AS pv, \
                     count(*) FILTER (WHERE kind = {KIND_CUSTOM} AND interactive) AS inter, \
                     any_value(entry_page) AS entry_page"
                ));
                for (i, d) in self.dims().iter().enumerate() {
                    let v = match d {
                        Dimension::EventPage => "any_value(entry_page)".to_string(),
                        Dimension::EventHostname => "any_value(entry_hostname)".to_string(),
                        // Unused (visits per event key come from `vk`); typed so the join keys agree.
                        d if d.is_event() => "CAST(NULL AS VARCHAR)".to_string(),
                        _ => format!("any_value(d{i})"),
                    };
                    s.push(&format!(", {v} AS d{i}"));
                }
                s.push(" FROM r_vis GROUP BY session_id");
                // Without filters every visit qualifies (a visit's first event is never an
                // engagement beacon), and skipping the HAVING saves ~13 % at 10M events.
                if !self.q.filters.is_empty() {
                    s.push(&format!(
                        " HAVING count(*) FILTER (WHERE m AND kind <> {KIND_ENGAGEMENT}) > 0"
                    ));
                }
                s.push(")");
            }
            self.visit_summary_cte(&mut s, dsel, excl, gb);
            if self.event_dims() {
                // Visits per event key: sessions with a matching event carrying the key,
                // custom events included (they carry the page they were sent from), as
                // the key's visitors and an `is` filter on it count them.
                let src = self.grouped("r_vis");
                // Keys come from events inside the range (a page seen after the range
                // ended is not a row), as for event metrics.
                s.push(&format!(
                    ", vk AS (SELECT {dsel}count(DISTINCT session_id) AS visits FROM {src} \
                     WHERE m AND kind <> {KIND_ENGAGEMENT}{excl}"
                ));
                self.in_range(&mut s, "ts");
                s.push(&format!("{gb})"));
                s.push(&format!(
                    ", vis AS (SELECT * FROM vk LEFT JOIN vs USING ({dc}))"
                ));
            } else {
                s.push(", vis AS (SELECT *, s_visits AS visits FROM vs)");
            }
            ctes.push(s);
            parts.push("vis");
        }
    }

    fn order_by(&self) -> String {
        let mut keys: Vec<String> = Vec::new();
        let mut used_dims: Vec<usize> = Vec::new();
        for o in &self.q.order_by {
            let col = match &o.target {
                OrderTarget::Metric(m) => self
                    .q
                    .metrics
                    .iter()
                    .position(|x| x == m)
                    .map(|j| format!("m{j}")),
                OrderTarget::Dimension(d) => self.dims().iter().position(|x| x == d).map(|i| {
                    used_dims.push(i);
                    format!("d{i}")
                }),
            };
            if let Some(c) = col {
                keys.push(format!(
                    "{c} {} NULLS LAST",
                    if o.desc { "DESC" } else { "ASC" }
                ));
            }
        }
        // Ties broken by the dimension values, for stable pages.
        for i in 0..self.dims().len() {
            if !used_dims.contains(&i) {
                keys.push(format!("d{i} ASC"));
            }
        }
        if keys.is_empty() {
            String::new()
        } else {
            format!(" ORDER BY {}", keys.join(", "))
        }
    }
}

fn metric_expr(m: Metric) -> &'static str {
    match m {
        Metric::Visitors => "CAST(COALESCE(visitors, 0) AS BIGINT)",
        Metric::Pageviews => "CAST(COALESCE(pageviews, 0) AS BIGINT)",
        Metric::Events => "CAST(COALESCE(events, 0) AS BIGINT)",
        Metric::Visits => "CAST(COALESCE(visits, 0) AS BIGINT)",
        Metric::ViewsPerVisit => {
            "CASE WHEN COALESCE(s_visits, 0) = 0 THEN 0.0 ELSE round_even(s_pv / s_visits, 2) END"
        }
        Metric::BounceRate => {
            "CASE WHEN COALESCE(s_bounce_base, 0) = 0 THEN 0 \
             ELSE CAST(round_even(100.0 * s_bounces / s_bounce_base, 0) AS BIGINT) END"
        }
        Metric::VisitDuration => "CAST(COALESCE(round_even(s_dur, 0), 0) AS BIGINT)",
        Metric::Percentage => {
            "COALESCE(round_even(100.0 * COALESCE(visitors, 0) / NULLIF((SELECT n FROM tot), 0), 1), 0.0)"
        }
        Metric::ConversionRate => {
            "COALESCE(round_even(100.0 * COALESCE(visitors, 0) / NULLIF((SELECT n FROM tot_c), 0), 1), 0.0)"
        }
        Metric::GroupConversionRate => {
            "COALESCE(round_even(100.0 * COALESCE(visitors, 0) / NULLIF(group_n, 0), 1), 0.0)"
        }
        Metric::TimeOnPage => {
            "CAST(CASE WHEN COALESCE(eng_sessions, 0) > 0 THEN round_even(eng_ms / 1000.0 / eng_sessions, 0) \
             ELSE round_even(gap_avg, 0) END AS BIGINT)"
        }
        Metric::ScrollDepth => "CAST(round_even(sd, 0) AS BIGINT)",
        // Plain sums and averages here; `revenue::apply` turns them into money values.
        Metric::TotalRevenue => "rev_sum",
        Metric::AverageRevenue => "rev_avg",
    }
}

fn to_json(v: DbValue) -> Value {
    match v {
        DbValue::Null => Value::Null,
        DbValue::Boolean(b) => Value::Bool(b),
        DbValue::TinyInt(n) => n.into(),
        DbValue::SmallInt(n) => n.into(),
        DbValue::Int(n) => n.into(),
        DbValue::BigInt(n) => n.into(),
        DbValue::HugeInt(n) => i64::try_from(n).map(Value::from).unwrap_or(Value::Null),
        DbValue::UTinyInt(n) => n.into(),
        DbValue::USmallInt(n) => n.into(),
        DbValue::UInt(n) => n.into(),
        DbValue::UBigInt(n) => n.into(),
        DbValue::Float(f) => serde_json::Number::from_f64(f64::from(f))
            .map(Value::Number)
            .unwrap_or(Value::Null),
        DbValue::Double(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        DbValue::Text(s) => Value::String(s),
        other => Value::String(format!("{other:?}")),
    }
}

fn collect_regexes<'f>(f: &'f Filter, out: &mut Vec<&'f str>) {
    match f {
        Filter::And(fs) | Filter::Or(fs) => fs.iter().for_each(|f| collect_regexes(f, out)),
        Filter::Not(f) => collect_regexes(f, out),
        leaf => {
            if let Some(l) = leaf.as_leaf()
                && l.op.positive() == FilterOp::Matches
            {
                out.extend(l.values.iter().map(String::as_str));
            }
        }
    }
}

/// A bad user regex is the caller's mistake (400), not a server fault: try each one
/// with DuckDB's own RE2 before running the query.
fn check_regexes(conn: &duckdb::Connection, q: &Query) -> Result<(), ExecError> {
    let mut res = Vec::new();
    for f in &q.filters {
        collect_regexes(f, &mut res);
    }
    for re in res {
        if let Err(e) = conn.query_row("SELECT regexp_matches('', ?)", [re], |r| {
            r.get::<_, Option<bool>>(0)
        }) {
            return Err(ExecError::Invalid(format!(
                "invalid regular expression '{re}' in filters: {e}"
            )));
        }
    }
    Ok(())
}

/// The statement that answers `q`: every CTE, ordered and paginated.
fn main_statement(b: &Builder<'_>, base: &Sql, q: &Query) -> Sql {
    let mut main = base.clone();
    main.push(" SELECT * FROM final");
    main.push(&b.order_by());
    main.push(" LIMIT ")
        .bind(DbValue::BigInt(i64::from(q.pagination.limit)))
        .push(" OFFSET ")
        .bind(DbValue::BigInt(
            i64::try_from(q.pagination.offset).unwrap_or(i64::MAX),
        ));
    main
}

/// The SQL that answers `q` with its parameters written in as literals, to run by hand
/// (`footfall bench-sql --show-sql`); a diagnostic, never executed by footfall.
pub fn statement_text(site_id: u32, site: &SiteContext, q: &Query) -> String {
    let b = Builder::new(q, site, site_id, true);
    let main = main_statement(&b, &b.build(), q);
    let mut params = main.params.iter().peekable();
    let mut out = String::with_capacity(main.text.len() + 64);
    for c in main.text.chars() {
        match params.next_if(|_| c == '?') {
            Some(v) => out.push_str(&sql_literal(v)),
            None => out.push(c),
        }
    }
    out
}

fn sql_literal(v: &DbValue) -> String {
    match v {
        DbValue::Text(s) => format!("'{}'", s.replace('\'', "''")),
        DbValue::Timestamp(_, us) => format!("make_timestamp({us})"),
        DbValue::BigInt(n) => n.to_string(),
        DbValue::UInt(n) => n.to_string(),
        DbValue::UBigInt(n) => n.to_string(),
        DbValue::Int(n) => n.to_string(),
        DbValue::Double(n) => n.to_string(),
        DbValue::Boolean(b) => b.to_string(),
        DbValue::Null => "NULL".to_string(),
        other => format!("{other:?}"),
    }
}

/// DuckDB's profiler format for a profile file, by its extension (DuckDB requires the two
/// to match): `.txt` an operator tree, `.json` JSON; `None` for any other.
fn profile_format(path: &std::path::Path) -> Option<&'static str> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("txt") => Some("query_tree"),
        Some("json") => Some("json"),
        _ => None,
    }
}

/// Runs the main statement of the SQL that answers `q` directly, `runs` times, reading
/// every row but building no JSON, then once more with DuckDB's profiler writing to
/// `profile` (`footfall bench-sql --profile`; timings of whole dashboard loads come from
/// `DuckStore::time_load`).
pub fn profile_statement(
    conn: &duckdb::Connection,
    site_id: u32,
    site: &SiteContext,
    q: &Query,
    runs: usize,
    profile: &std::path::Path,
) -> Result<Vec<std::time::Duration>, ExecError> {
    let format = profile_format(profile).ok_or_else(|| {
        ExecError::Invalid(format!(
            "profile file {}: the extension picks the profile's format, .txt (an \
             operator tree) or .json",
            profile.display()
        ))
    })?;
    let b = Builder::new(q, site, site_id, true);
    let main = main_statement(&b, &b.build(), q);
    let mut stmt = conn.prepare_cached(&main.text)?;
    let mut run = || -> Result<std::time::Duration, ExecError> {
        let started = std::time::Instant::now();
        let mut rows = stmt.query(duckdb::params_from_iter(main.params.iter()))?;
        while rows.next()?.is_some() {}
        Ok(started.elapsed())
    };
    let times = (0..runs).map(|_| run()).collect::<Result<Vec<_>, _>>()?;
    let path = profile.display().to_string().replace('\'', "''");
    conn.execute_batch(&format!(
        "PRAGMA enable_profiling = '{format}'; PRAGMA profiling_output = '{path}';"
    ))?;
    let profiled = run();
    conn.execute_batch("PRAGMA disable_profiling;")?;
    profiled?;
    Ok(times)
}

/// Where visit-level numbers come from. Both give the same answers (tested); `Raw`
/// exists for that test and for comparing plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// The `sessions` rollup wherever the query allows it.
    Rollup,
    /// Always group the events themselves.
    Raw,
}

/// Runs `q` for the site with numeric id `site_id`.
pub(crate) fn execute(
    conn: &duckdb::Connection,
    site_id: u32,
    site: &SiteContext,
    q: &Query,
    shared: Option<&SharedSets<'_>>,
) -> Result<QueryOutput, ExecError> {
    execute_with(conn, site_id, site, q, Plan::Rollup, shared)
}

/// The visits open at the start of `b`'s range that have a hit in it, as found by an
/// earlier query of the dashboard load or now (kept for the load's next queries by the
/// sets' rules, `matching.rs`).
fn open_at_start_ids(
    conn: &duckdb::Connection,
    b: &Builder<'_>,
    shared: &SharedSets<'_>,
) -> Result<std::sync::Arc<[u64]>, ExecError> {
    let range = (b.site_id, b.start_us, b.end_us);
    let now = std::time::Instant::now();
    // The generation is read before the visits are found (the result cache's rule).
    let (kept, generation) = {
        let writes = shared.writes.lock();
        let kept = shared.sets.lock().open_at_start(range, &writes, now);
        (kept, writes.generation())
    };
    if let Some(ids) = kept {
        return Ok(ids);
    }
    // The hits' own subquery already keeps to the visits open at the start.
    let mut sql = Sql::default();
    sql.push("SELECT DISTINCT session_id FROM (");
    b.open_at_start_with_hits(&mut sql);
    sql.push(") ORDER BY session_id");
    let ids: Vec<u64> = conn
        .prepare_cached(&sql.text)?
        .query_map(duckdb::params_from_iter(sql.params.iter()), |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let ids: std::sync::Arc<[u64]> = ids.into();
    shared
        .sets
        .lock()
        .open_at_start_found(range, ids.clone(), generation, now);
    Ok(ids)
}

/// Forgets the shared sets that expired, then, when `b`'s SQL reads its matching visits
/// from a shared set, makes that set's visit map unless a query of the same dashboard load
/// made it already (`matching.rs`, `visit_map.rs`).
fn prepare_matching_set(
    conn: &duckdb::Connection,
    b: &Builder<'_>,
    key: String,
    shared: &SharedSets<'_>,
) -> Result<(), ExecError> {
    let scope = crate::cache::Scope {
        site: b.site_id,
        end_us: b.end_us,
    };
    let now = std::time::Instant::now();
    // The generation is read before the set is made: a write committing meanwhile
    // counts as after it (the result cache's rule).
    let (kept, generation) = {
        let writes = shared.writes.lock();
        let kept = shared.sets.lock().lookup(&key, &writes, now);
        (kept, writes.generation())
    };
    if kept || !b.matching_used.get() {
        return Ok(());
    }
    let handle = b.matching_handle;
    // The map is made before the set is recorded (a failed step leaves it unrecorded and
    // unpublished, made again by the next query) and published after `made`, which
    // withdraws the map of any set it replaces.
    let map = match matching_visit_map(conn, b) {
        Ok(map) => map,
        Err(e) => {
            crate::visit_map::withdraw(handle);
            return Err(e);
        }
    };
    tracing::debug!(
        ms = now.elapsed().as_secs_f64() * 1e3,
        "matching visits made"
    );
    shared.sets.lock().made(key, scope, generation, now);
    crate::visit_map::publish(handle, map);
    Ok(())
}

/// The visit map of `b`'s shared set: the visits with a hit from the range start that
/// passes the event filters (collected by `ff_collect_visits`) and that pass the
/// visit-side filters, with their visitor numbers and their matching hits in range.
/// Without visit-side filters the collected hits are the map (their events carry the
/// visitor numbers); with them, a first map without numbers is published under the
/// set's handle and picks the visits that also pass them from `sessions` (the `page=/`
/// set at 10M events: ~21 ms of a ~86 ms set was that scan).
fn matching_visit_map(
    conn: &duckdb::Connection,
    b: &Builder<'_>,
) -> Result<crate::visit_map::VisitMap, ExecError> {
    use duckdb::arrow::array::{Array, BooleanArray, UInt32Array, UInt64Array};
    let handle = b.matching_handle;
    crate::visit_collect::take(handle);
    let mut collect = Sql::default();
    b.matching_collect_select(&mut collect);
    conn.prepare(&collect.text)?
        .query_row(duckdb::params_from_iter(collect.params.iter()), |r| {
            r.get::<_, i64>(0)
        })?;
    let hits = crate::visit_collect::take(handle);
    let (on_visit, _) = b.split_visit_filters();
    if on_visit.is_empty() {
        // Every visit with a matching hit, numbered by its events (0009). The visits
        // starting after the range that this adds have no hit in range, so they change
        // nothing: each reader of "from the start" keeps visits starting in range.
        let visits = hits
            .iter()
            .map(|&(id, number, in_range, _)| (id, number, in_range));
        return Ok(crate::visit_map::VisitMap::from_visits(visits).with_hits(hits.iter()));
    }
    let first = hits.iter().map(|&(id, _, in_range, _)| (id, 0, in_range));
    crate::visit_map::publish(handle, crate::visit_map::VisitMap::from_visits(first));
    let mut numbers = Sql::default();
    b.visit_map_select(&mut numbers);
    let mut visits = Vec::new();
    let mut stmt = conn.prepare(&numbers.text)?;
    for batch in stmt.query_arrow(duckdb::params_from_iter(numbers.params.iter()))? {
        let (Some(ids), Some(numbers), Some(in_range)) = (
            batch.column(0).as_any().downcast_ref::<UInt64Array>(),
            batch.column(1).as_any().downcast_ref::<UInt32Array>(),
            batch.column(2).as_any().downcast_ref::<BooleanArray>(),
        ) else {
            return Err(ExecError::Invalid("a visit map of another shape".into()));
        };
        if numbers.null_count() > 0 || in_range.null_count() > 0 {
            return Err(ExecError::Invalid(
                "a matching visit without a visitor number".into(),
            ));
        }
        visits.extend((0..ids.len()).map(|i| (ids.value(i), numbers.value(i), in_range.value(i))));
    }
    Ok(crate::visit_map::VisitMap::from_visits(visits).with_hits(hits.iter()))
}

/// The rows of the main statement and its trailing flags.
struct MainRun {
    results: Vec<ResultRow>,
    /// Run without `legacy_gaps`, and some key needs them.
    need_gaps: bool,
}

fn run_main(
    conn: &duckdb::Connection,
    b: &Builder<'_>,
    base: &Sql,
    q: &Query,
) -> Result<MainRun, ExecError> {
    let main = main_statement(b, base, q);
    // `FOOTFALL_LOG=footfall_store_duckdb=debug` shows the SQL of every Stats API query.
    tracing::debug!(sql = %main.text, params = main.params.len(), "stats query");
    let ndims = q.dimensions.len();
    let nmetrics = q.metrics.len();
    let gaps_flag = (b.needs_engagement() && !b.legacy_gaps).then_some(ndims + nmetrics);
    let mut run = MainRun {
        results: Vec::new(),
        need_gaps: false,
    };
    // Cached per pooled connection: parsing, binding and planning the dashboard's CTE
    // statements cost ~1-3 ms each, as much as a small query's execution.
    let mut stmt = conn.prepare_cached(&main.text)?;
    let mut rows = stmt.query(duckdb::params_from_iter(main.params.iter()))?;
    while let Some(row) = rows.next()? {
        let mut dims = Vec::with_capacity(ndims);
        for i in 0..ndims {
            dims.push(to_json(row.get::<_, DbValue>(i)?));
        }
        let mut metrics = Vec::with_capacity(nmetrics);
        for j in 0..nmetrics {
            metrics.push(to_json(row.get::<_, DbValue>(ndims + j)?));
        }
        if let Some(i) = gaps_flag {
            run.need_gaps |= row.get::<_, Option<bool>>(i)?.unwrap_or(false);
        }
        run.results.push(ResultRow {
            dimensions: dims,
            metrics,
        });
    }
    Ok(run)
}

/// `Builder::revenue_currencies_sql`, run.
fn revenue_currencies(
    conn: &duckdb::Connection,
    b: &Builder<'_>,
) -> Result<crate::revenue::GoalCurrencies, ExecError> {
    let sql = b.revenue_currencies_sql();
    let mut stmt = conn.prepare_cached(&sql.text)?;
    let mut rows = stmt.query(duckdb::params_from_iter(sql.params.iter()))?;
    let mut out = crate::revenue::GoalCurrencies::new();
    while let Some(row) = rows.next()? {
        out.entry(row.get(0)?).or_default().insert(row.get(1)?);
    }
    Ok(out)
}

/// [`execute`] with an explicit plan.
pub(crate) fn execute_with(
    conn: &duckdb::Connection,
    site_id: u32,
    site: &SiteContext,
    q: &Query,
    plan: Plan,
    shared: Option<&SharedSets<'_>>,
) -> Result<QueryOutput, ExecError> {
    check_regexes(conn, q)?;
    let mut b = Builder::new(q, site, site_id, plan == Plan::Rollup);
    let matching_key = shared.map(|_| b.matching_key());
    b.shared_set = matching_key.is_some();
    if let (Some(shared), Some(key)) = (shared, &matching_key) {
        let writes = shared.writes.lock();
        let sets = shared.sets.lock();
        b.matching_ready = sets.kept(key, &writes, std::time::Instant::now());
        b.matching_handle = sets.handle(key);
    }
    // `time_on_page` falls back to the gap between a visit's page views for keys without
    // engagement data; that `lead()` window over every event of the range cost ~2.7 s of
    // 3.7 s for a 30-day page breakdown at 10M events. It is computed only when the first
    // run flags such a key (pages tracked without engagement events, imported logs).
    let mut base = b.build();
    if let Some(shared) = shared
        && b.open_ids_wanted.get()
    {
        b.open_ids = Some(open_at_start_ids(conn, &b, shared)?);
        base = b.build();
    }
    if let (Some(shared), Some(key)) = (shared, matching_key) {
        prepare_matching_set(conn, &b, key, shared)?;
    }
    let mut run = run_main(conn, &b, &base, q)?;
    if run.need_gaps {
        b.legacy_gaps = true;
        base = b.build();
        run = run_main(conn, &b, &base, q)?;
    }
    let mut results = run.results;

    let mut meta = serde_json::Map::new();
    if q.metrics.iter().any(|m| m.is_revenue()) {
        let currencies = revenue_currencies(conn, &b)?;
        crate::revenue::apply(&currencies, q, &mut results, &mut meta);
    }
    if q.include.total_rows {
        let mut count = base;
        count.push(" SELECT count(*) FROM final");
        let n: i64 = conn.query_row(
            &count.text,
            duckdb::params_from_iter(count.params.iter()),
            |r| r.get(0),
        )?;
        meta.insert("total_rows".into(), n.into());
    }
    if q.include.time_labels
        && let Some((_, g)) = q.time_dimension()
    {
        // `g` is resolved on the full range, as the SQL buckets are. (`"all"` starts on
        // the site's first day: `SiteContext::stats_start`.)
        let labels = time_labels(g, &q.range, q.timezone);
        meta.insert(
            "time_labels".into(),
            Value::Array(labels.into_iter().map(Value::String).collect()),
        );
    }
    Ok(QueryOutput { results, meta })
}

#[cfg(test)]
mod tests {
    // Fixture (site 1, America/New_York; DST starts 2024-03-10 07:00 UTC). Range used by
    // most tests: ["2024-03-09", "2024-03-11"] local = [03-09 05:00Z, 03-12 04:00Z).
    //
    // | sess | visitor | source        | events (UTC)                                                    |
    // |------|---------|---------------|-----------------------------------------------------------------|
    // | S1   | V1      | Google        | 03-09 15:00 pv /, 15:01 pv /blog/a, 15:02 engagement /blog/a    |
    // |      |         |               | (30 s, scroll 50), 15:03 Signup /blog/a (interactive, plan=pro) |
    // | S2   | V2      | Direct / None | 03-10 04:30 pv /blog/a (local 03-09 23:30 EST), 04:30:20         |
    // |      |         |               | engagement /blog/a (10 s, scroll 80)                            |
    // | S3   | V1      | Google        | 03-10 16:00 pv /pricing, 16:00:40 pv /, 16:01 Outbound /        |
    // |      |         |               | (non-interactive), 16:05 pv /blog/b                             |
    // | S4   | V3      | Twitter       | 03-11 04:30 pv /blog/b (local 03-11 00:30 EDT; 03-10 in EST),   |
    // |      |         |               | 04:31 Signup /blog/b (interactive, plan=free)                   |
    // | S5   | V4      | Google        | 03-11 14:00 pv /                                                |
    // | S6   | V5, V6  | -             | 03-12 05:00 pv / and 03-09 04:00 pv /: both outside the range   |
    // | S7   | V7      | Direct / None | 03-09 04:50 pv / (before range), 05:10 pv /pricing (in range)   |
    // | S8   | V8      | Direct / None | 03-12 03:50 pv / (local 03-11 23:50), 04:10 pv /about (after)   |
    //
    // Totals over events in range (engagement excluded): visitors V1 V2 V3 V4 V7 V8 = 6;
    // pageviews S1 2 + S2 1 + S3 3 + S4 1 + S5 1 + S7 1 + S8 1 = 10; events = 10 + Signup x2
    // + Outbound = 13. Visits = sessions starting in range: S1 S2 S3 S4 S5 S8 = 6 (S7 began
    // before). Per visit (pv, bounce, duration): S1 (2, no, 180 s), S2 (1, yes, 20 s: the
    // engagement extends it), S3 (3, no, 300), S4 (1, no: interactive Signup, 60), S5 (1,
    // yes, 0), S8 (2, no, 1200: events after the range count). bounce_rate = 2/6 = 33;
    // visit_duration = 1760/6 = 293; views_per_visit = 10/6 = 1.67.
    use super::*;
    use footfall_core::query::{Api, Goal, parse_query, parse_v1_query};
    use serde_json::json;

    struct Sess {
        id: u64,
        visitor: u64,
        source: &'static str,
        device: &'static str,
        country: &'static str,
        city: u32,
        entry: &'static str,
    }

    /// (ts UTC, name, pathname, interactive, engagement ms, scroll, prop)
    type Ev = (
        &'static str,
        &'static str,
        &'static str,
        bool,
        u32,
        Option<u8>,
        Option<(&'static str, &'static str)>,
    );

    /// What the store writer does after appending, for visits staged and events inserted
    /// with SQL: visitors numbered, the visit rollup made, each event given its number.
    fn roll_up(conn: &duckdb::Connection) {
        crate::sink::number_staged_visitors(conn, 0).expect("visitor numbers");
        crate::sink::refresh_touched_sessions(conn, 0).expect("session rollup");
        crate::sink::number_stored_events(conn).expect("event visitor numbers");
        crate::sink::classify_stored_events(conn).expect("event kinds");
    }

    fn insert(conn: &duckdb::Connection, site: u32, s: &Sess, evs: &[Ev]) {
        // The visit's attributes, as the store writer stages them (sink.rs).
        conn.execute(
            "INSERT INTO touched_sessions VALUES (?, ?, ?, ?, 'example.com', '', ?, '', '', '', \
             '', '', '', ?, 'Chrome', '', '', '', ?, '', ?, '', '', '', '', '', NULL)",
            duckdb::params![
                site, s.id, s.visitor, s.entry, s.source, s.device, s.country, s.city
            ],
        )
        .expect("stage visit");
        for (i, (ts, name, path, interactive, ms, scroll, prop)) in evs.iter().enumerate() {
            let event_id = s.id * 100 + i as u64;
            conn.execute(
                "INSERT INTO events (site_id, ts, event_id, client_id, session_id, \
                 name, interactive, hostname, pathname, title, engagement_ms, scroll_depth, \
                 revenue_amount, revenue_currency, has_props) VALUES \
                 (?, CAST(? AS TIMESTAMP), ?, false, ?, ?, ?, 'example.com', ?, '', ?, ?, \
                 NULL, NULL, ?)",
                duckdb::params![
                    site,
                    ts,
                    event_id,
                    s.id,
                    name,
                    interactive,
                    path,
                    ms,
                    scroll,
                    prop.is_some()
                ],
            )
            .expect("insert event");
            if let Some((k, v)) = prop {
                conn.execute(
                    "INSERT INTO event_props VALUES (?, ?, ?, ?)",
                    duckdb::params![site, event_id, k, v],
                )
                .expect("insert prop");
            }
        }
    }

    const NYC: u32 = 5128581;
    const LONDON: u32 = 2643743;

    /// A connection to an in-memory database with footfall's functions, which it keeps
    /// open (`Database`).
    pub(crate) struct TestDb {
        conn: duckdb::Connection,
        _db: crate::database::Database,
    }

    impl std::ops::Deref for TestDb {
        type Target = duckdb::Connection;
        fn deref(&self) -> &duckdb::Connection {
            &self.conn
        }
    }

    pub(crate) fn memory_db() -> TestDb {
        let db = crate::database::Database::open(None, &[]).expect("duckdb");
        TestDb {
            conn: db.connect().expect("connection"),
            _db: db,
        }
    }

    /// An empty migrated store with the store writer's staging table, which the tests
    /// fill with visits and events as a store batch would.
    fn staged_db() -> TestDb {
        let conn = memory_db();
        crate::migrate(&conn).expect("migrations");
        conn.execute_batch(crate::sink::TOUCHED_SESSIONS_DDL)
            .expect("staging table");
        conn
    }

    fn fixture() -> TestDb {
        let conn = staged_db();
        let pv = |ts, path| -> Ev { (ts, "pageview", path, true, 0, None, None) };
        let s = |id, visitor, source, device, country, city, entry| Sess {
            id,
            visitor,
            source,
            device,
            country,
            city,
            entry,
        };
        let google = |id, visitor, entry| s(id, visitor, "Google", "Desktop", "US", NYC, entry);
        insert(
            &conn,
            1,
            &google(1, 1, "/"),
            &[
                pv("2024-03-09 15:00:00", "/"),
                pv("2024-03-09 15:01:00", "/blog/a"),
                (
                    "2024-03-09 15:02:00",
                    "engagement",
                    "/blog/a",
                    false,
                    30_000,
                    Some(50),
                    None,
                ),
                (
                    "2024-03-09 15:03:00",
                    "Signup",
                    "/blog/a",
                    true,
                    0,
                    None,
                    Some(("plan", "pro")),
                ),
            ],
        );
        insert(
            &conn,
            1,
            &s(2, 2, "Direct / None", "Mobile", "", 0, "/blog/a"),
            &[
                pv("2024-03-10 04:30:00", "/blog/a"),
                (
                    "2024-03-10 04:30:20",
                    "engagement",
                    "/blog/a",
                    false,
                    10_000,
                    Some(80),
                    None,
                ),
            ],
        );
        insert(
            &conn,
            1,
            &google(3, 1, "/pricing"),
            &[
                pv("2024-03-10 16:00:00", "/pricing"),
                pv("2024-03-10 16:00:40", "/"),
                ("2024-03-10 16:01:00", "Outbound", "/", false, 0, None, None),
                pv("2024-03-10 16:05:00", "/blog/b"),
            ],
        );
        insert(
            &conn,
            1,
            &s(4, 3, "Twitter", "Mobile", "GB", LONDON, "/blog/b"),
            &[
                pv("2024-03-11 04:30:00", "/blog/b"),
                (
                    "2024-03-11 04:31:00",
                    "Signup",
                    "/blog/b",
                    true,
                    0,
                    None,
                    Some(("plan", "free")),
                ),
            ],
        );
        insert(
            &conn,
            1,
            &google(5, 4, "/"),
            &[pv("2024-03-11 14:00:00", "/")],
        );
        insert(
            &conn,
            1,
            &google(6, 5, "/"),
            &[pv("2024-03-12 05:00:00", "/")],
        );
        insert(
            &conn,
            1,
            &google(9, 6, "/"),
            &[pv("2024-03-09 04:00:00", "/")],
        );
        insert(
            &conn,
            1,
            &s(7, 7, "Direct / None", "Desktop", "", 0, "/"),
            &[
                pv("2024-03-09 04:50:00", "/"),
                pv("2024-03-09 05:10:00", "/pricing"),
            ],
        );
        insert(
            &conn,
            1,
            &s(8, 8, "Direct / None", "", "", 0, "/"),
            &[
                pv("2024-03-12 03:50:00", "/"),
                pv("2024-03-12 04:10:00", "/about"),
            ],
        );
        // Another site's event never shows up.
        insert(
            &conn,
            2,
            &google(10, 1, "/"),
            &[pv("2024-03-10 16:00:00", "/")],
        );
        roll_up(&conn);
        conn
    }

    fn site() -> SiteContext {
        SiteContext {
            domain: "example.com".into(),
            timezone: chrono_tz::America::New_York,
            goals: vec![Goal {
                kind: GoalKind::Page,
                pattern: "/blog/*".into(),
                display_name: "Visit /blog/*".into(),
            }],
            stats_start: None,
        }
    }

    fn run_out(conn: &duckdb::Connection, extra: Value) -> QueryOutput {
        run_api(conn, extra, Api::V1)
    }

    /// `run_out` with the grammar and rules of `api`: the v1 one covers combinations the
    /// engine answers for the Stats API v1 (page views by exit page) that v2 refuses; the
    /// v2 one shows empty values as Plausible's v2 does.
    fn run_api(conn: &duckdb::Connection, extra: Value, api: Api) -> QueryOutput {
        let mut body =
            json!({"site_id": "example.com", "date_range": ["2024-03-09", "2024-03-11"]});
        if let (Some(o), Value::Object(e)) = (body.as_object_mut(), extra) {
            o.extend(e);
        }
        let now = chrono::DateTime::parse_from_rfc3339("2024-03-15T12:00:00Z")
            .expect("now")
            .with_timezone(&chrono::Utc);
        let q = match api {
            Api::V1 => parse_v1_query(&body, &site(), now),
            Api::V2 => parse_query(&body, &site(), now),
        }
        .expect("valid query");
        let out = execute_with(conn, 1, &site(), &q, Plan::Rollup, None).expect("query runs");
        // Every query of these tests also checks that the rollup path returns exactly what
        // grouping the raw events returns.
        let raw = execute_with(conn, 1, &site(), &q, Plan::Raw, None).expect("raw query runs");
        assert_eq!(
            out.results, raw.results,
            "rollup and raw plans differ for {body}"
        );
        assert_eq!(out.meta, raw.meta, "rollup and raw meta differ for {body}");
        // And that a query reading its matching visits from a shared set (made by it, then
        // kept for the next query of the same load) answers the same.
        let (sets, writes) = (Default::default(), Default::default());
        let shared = SharedSets {
            sets: &sets,
            writes: &writes,
        };
        for round in ["made", "kept"] {
            let with_set = execute_with(conn, 1, &site(), &q, Plan::Rollup, Some(&shared))
                .expect("query with a shared set runs");
            assert_eq!(
                out.results, with_set.results,
                "a shared matching set ({round}) changes {body}"
            );
        }
        // And as a later query of a dashboard load, whose aggregate made the set (a
        // query that reads its events' visits from it then: `matching_visit_join`).
        let aggregate = Query {
            metrics: vec![Metric::Visitors, Metric::Visits, Metric::Pageviews],
            dimensions: Vec::new(),
            order_by: Vec::new(),
            ..q.clone()
        };
        let (sets, writes) = (Default::default(), Default::default());
        let shared = SharedSets {
            sets: &sets,
            writes: &writes,
        };
        execute_with(conn, 1, &site(), &aggregate, Plan::Rollup, Some(&shared))
            .expect("the load's aggregate runs");
        let later = execute_with(conn, 1, &site(), &q, Plan::Rollup, Some(&shared))
            .expect("a later query of the load runs");
        assert_eq!(
            out.results, later.results,
            "the load's shared matching set changes {body}"
        );
        out
    }

    /// Results as [[dims], [metrics]] pairs.
    fn run(conn: &duckdb::Connection, extra: Value) -> Value {
        let out = run_out(conn, extra);
        Value::Array(
            out.results
                .iter()
                .map(|r| json!([r.dimensions, r.metrics]))
                .collect(),
        )
    }

    fn metrics(conn: &duckdb::Connection, extra: Value) -> Value {
        let rows = run(conn, extra);
        rows[0][1].clone()
    }

    /// `run` through the Stats API v2's grammar and rules.
    fn run_v2(conn: &duckdb::Connection, extra: Value) -> Value {
        rows_of(&run_api(conn, extra, Api::V2))
    }

    fn rows_of(out: &QueryOutput) -> Value {
        Value::Array(
            out.results
                .iter()
                .map(|r| json!([r.dimensions, r.metrics]))
                .collect(),
        )
    }

    const ALL: [&str; 7] = [
        "visitors",
        "visits",
        "pageviews",
        "events",
        "views_per_visit",
        "bounce_rate",
        "visit_duration",
    ];

    #[test]
    fn aggregate_metrics() {
        let c = fixture();
        assert_eq!(
            run(&c, json!({"metrics": ALL})),
            json!([[[], [6, 6, 10, 13, 1.67, 33, 293]]])
        );
    }

    #[test]
    fn daily_timeseries_in_new_york_across_dst() {
        let c = fixture();
        // 03-09: S1, S2 (23:30 EST), S7's /pricing -> visitors V1 V2 V7, pv 2+1+1, visits
        // S1 S2. 03-10: S3 -> 1, 3, 1. 03-11: S4 (00:30 EDT), S5, S8 (23:50 EDT) -> 3, 3, 3.
        let out = run_out(
            &c,
            json!({"metrics": ["visitors", "pageviews", "visits"], "dimensions": ["time:day"],
                   "include": {"time_labels": true}}),
        );
        let rows: Vec<Value> = out
            .results
            .iter()
            .map(|r| json!([r.dimensions, r.metrics]))
            .collect();
        assert_eq!(
            Value::Array(rows),
            json!([
                [["2024-03-09"], [3, 4, 2]],
                [["2024-03-10"], [1, 3, 1]],
                [["2024-03-11"], [3, 3, 3]],
            ])
        );
        assert_eq!(
            out.meta["time_labels"],
            json!(["2024-03-09", "2024-03-10", "2024-03-11"])
        );
        // "time" over three days means days too.
        assert_eq!(
            run(&c, json!({"metrics": ["visitors"], "dimensions": ["time"]}))[2],
            json!([["2024-03-11"], [3]])
        );
    }

    #[test]
    fn hourly_weekly_monthly_buckets() {
        let c = fixture();
        // Only S3 falls on local 2024-03-10 (12:00 EDT); labels: 23 hours on the DST day.
        let out = run_out(
            &c,
            json!({"metrics": ["visitors", "pageviews"], "dimensions": ["time:hour"],
                   "date_range": ["2024-03-10", "2024-03-10"], "include": {"time_labels": true}}),
        );
        assert_eq!(out.results.len(), 1);
        assert_eq!(
            out.results[0].dimensions,
            vec![json!("2024-03-10 12:00:00")]
        );
        assert_eq!(out.results[0].metrics, vec![json!(1), json!(3)]);
        assert_eq!(out.meta["time_labels"].as_array().map(Vec::len), Some(23));
        // 03-09 (Sat) and 03-10 are in the week of Monday 03-04, which began before the
        // range: its bucket is labelled with the range's first day, as Plausible does
        // (V1 V2 V7); 03-11 starts a new week: V3 V4 V8.
        assert_eq!(
            run(
                &c,
                json!({"metrics": ["visitors"], "dimensions": ["time:week"]})
            ),
            json!([[["2024-03-09"], [3]], [["2024-03-11"], [3]]])
        );
        assert_eq!(
            run(
                &c,
                json!({"metrics": ["visitors"], "dimensions": ["time:month"]})
            ),
            json!([[["2024-03-01"], [6]]])
        );
    }

    #[test]
    fn page_breakdown() {
        let c = fixture();
        // Non-engagement events per page: / S1 pv, S3 pv + Outbound, S5, S8 -> V1 V4 V8,
        // 4 pv; /blog/a S1 pv + Signup, S2 -> V1 V2, 2 pv; /blog/b S3, S4 (+Signup) -> V1 V3;
        // /pricing S3, S7 -> V1 V7. Visits with a page view of the page (in range): / S1 S3
        // S5 S8; /blog/a S1 S2; /blog/b S3 S4; /pricing S3 (S7 began before the range).
        // Bounce/duration over visits entering there: / S1 S5 S8 -> 1/3 = 33, 1380/3 = 460;
        // /blog/a S2 -> 100, 20; /blog/b S4 -> 0, 60; /pricing S3 -> 0, 300.
        // percentage = visitors / 6.
        assert_eq!(
            run(
                &c,
                json!({"metrics": ["visitors", "pageviews", "visits", "bounce_rate", "visit_duration", "percentage"],
                           "dimensions": ["event:page"]})
            ),
            json!([
                [["/"], [3, 4, 4, 33, 460, 50.0]],
                [["/blog/a"], [2, 2, 2, 100, 20, 33.3]],
                [["/blog/b"], [2, 2, 2, 0, 60, 33.3]],
                [["/pricing"], [2, 2, 1, 0, 300, 33.3]],
            ])
        );
    }

    #[test]
    fn source_entry_exit_breakdowns() {
        let c = fixture();
        // Direct / None: S2 S7 S8 -> V2 V7 V8; visits S2 S8, bounce S2 -> 50.
        // Google: S1 S3 S5 -> V1 V4; visits 3, bounce S5 -> 33. Twitter: S4 -> 1, 1, 0.
        assert_eq!(
            run(
                &c,
                json!({"metrics": ["visitors", "visits", "bounce_rate"], "dimensions": ["visit:source"]})
            ),
            json!([
                [["Direct / None"], [3, 2, 50]],
                [["Google"], [2, 3, 33]],
                [["Twitter"], [1, 1, 0]],
            ])
        );
        // Entry pages of the 6 visits: / S1 S5 S8; /blog/a S2; /pricing S3; /blog/b S4.
        assert_eq!(
            run(
                &c,
                json!({"metrics": ["visits"], "dimensions": ["visit:entry_page"]})
            ),
            json!([
                [["/"], [3]],
                [["/blog/a"], [1]],
                [["/blog/b"], [1]],
                [["/pricing"], [1]]
            ])
        );
        // Last page view per visit: S1 /blog/a (the later Signup is no page view), S2
        // /blog/a, S3 /blog/b, S4 /blog/b, S5 /, S8 /about (after the range, still its exit).
        assert_eq!(
            run(
                &c,
                json!({"metrics": ["visits"], "dimensions": ["visit:exit_page"]})
            ),
            json!([
                [["/blog/a"], [2]],
                [["/blog/b"], [2]],
                [["/"], [1]],
                [["/about"], [1]]
            ])
        );
        // Event metrics by exit page (the exits joined to events in range): /blog/a S1
        // (pv /, pv /blog/a, Signup) + S2 (pv) -> V1 V2, 3 pv, 4 events; /blog/b S3 (3 pv,
        // Outbound) + S4 (pv, Signup) -> V1 V3, 4 pv, 6 events; / S5; /about S8 (its
        // in-range pv /); /pricing S7 (began before the range, pv /pricing in range).
        assert_eq!(
            run(
                &c,
                json!({"metrics": ["visitors", "pageviews", "events"], "dimensions": ["visit:exit_page"]})
            ),
            json!([
                [["/blog/a"], [2, 3, 4]],
                [["/blog/b"], [2, 4, 6]],
                [["/"], [1, 1, 1]],
                [["/about"], [1, 1, 1]],
                [["/pricing"], [1, 1, 1]]
            ])
        );
        // Exit page as a filter: S3 (V1) and S4 (V3).
        assert_eq!(
            metrics(
                &c,
                json!({"metrics": ["visits", "visitors"], "filters": [["is", "visit:exit_page", ["/blog/b"]]]})
            ),
            json!([2, 2])
        );
    }

    #[test]
    fn empty_values_and_city() {
        let c = fixture();
        // Unknown country ('' for S2 S7 S8) is left out; US: V1 V4, GB: V3.
        assert_eq!(
            run(
                &c,
                json!({"metrics": ["visitors"], "dimensions": ["visit:country"]})
            ),
            json!([[["US"], [2]], [["GB"], [1]]])
        );
        // City is a GeoName id (integer); 0 left out.
        assert_eq!(
            run(
                &c,
                json!({"metrics": ["visitors"], "dimensions": ["visit:city"]})
            ),
            json!([[[NYC], [2]], [[LONDON], [1]]])
        );
        // S8's empty device shows as "(not set)". Desktop: S1 S3 S5 S7 -> V1 V4 V7;
        // Mobile: S2 S4 -> V2 V3.
        assert_eq!(
            run(
                &c,
                json!({"metrics": ["visitors"], "dimensions": ["visit:device"]})
            ),
            json!([[["Desktop"], [3]], [["Mobile"], [2]], [["(not set)"], [1]]])
        );
        // The "(not set)" row is what filtering by "(not set)" finds.
        assert_eq!(
            metrics(
                &c,
                json!({"metrics": ["visitors"], "filters": [["is", "visit:device", ["(not set)"]]]})
            ),
            json!([1])
        );
        // No visit has a referrer: one "Direct / None" row (Plausible's label), which
        // filtering by it finds too.
        assert_eq!(
            run(
                &c,
                json!({"metrics": ["visitors"], "dimensions": ["visit:referrer"]})
            ),
            json!([[["Direct / None"], [6]]])
        );
        assert_eq!(
            metrics(
                &c,
                json!({"metrics": ["visitors"], "filters": [["is", "visit:referrer", ["Direct / None"]]]})
            ),
            json!([6])
        );
        assert_eq!(
            metrics(
                &c,
                json!({"metrics": ["visitors"], "filters": [["is", "visit:city", [LONDON]]]})
            ),
            json!([1])
        );
    }

    #[test]
    fn filter_operators() {
        let c = fixture();
        let m = |f: Value| {
            metrics(
                &c,
                json!({"metrics": ["visitors", "pageviews"], "filters": [f]}),
            )
        };
        // /blog/a: S1 pv + Signup (V1), S2 pv (V2).
        assert_eq!(
            metrics(
                &c,
                json!({"metrics": ["visitors", "pageviews", "visits", "bounce_rate"],
                               "filters": [["is", "event:page", ["/blog/a"]]]})
            ),
            // visits S1 S2; bounce over those entering on /blog/a: S2 bounced -> 100.
            json!([2, 2, 2, 100])
        );
        // The same filter inside an `and` is the same query.
        assert_eq!(
            metrics(
                &c,
                json!({"metrics": ["visitors", "pageviews", "visits", "bounce_rate"],
                               "filters": [["and", [["is", "event:page", ["/blog/a"]]]]]})
            ),
            json!([2, 2, 2, 100])
        );
        // Not / or /pricing: /blog/a (V1 V2) and /blog/b (V1 V3) -> 3 visitors, 4 pv.
        assert_eq!(
            m(json!(["is_not", "event:page", ["/", "/pricing"]])),
            json!([3, 4])
        );
        assert_eq!(
            m(json!(["contains", "event:page", ["blog"]])),
            json!([3, 4])
        );
        assert_eq!(
            m(json!(["contains", "event:page", ["BLOG"]])),
            json!([0, 0])
        );
        assert_eq!(
            m(json!(["contains", "event:page", ["BLOG"], {"case_sensitive": false}])),
            json!([3, 4])
        );
        assert_eq!(
            m(json!(["is", "event:page", ["/BLOG/A"], {"case_sensitive": false}])),
            json!([2, 2])
        );
        // / (V1 V4 V8, 4 pv) and /pricing (V1 V7, 2 pv) -> 4 visitors, 6 pv.
        assert_eq!(
            m(json!(["contains_not", "event:page", ["blog"]])),
            json!([4, 6])
        );
        assert_eq!(
            m(json!(["matches", "event:page", ["^/blog/[ab]$"]])),
            json!([3, 4])
        );
        assert_eq!(
            m(json!(["matches_not", "event:page", ["^/blog/"]])),
            json!([4, 6])
        );
        // Google visits' events in range: S1 (2 pv + Signup), S3 (3 pv + Outbound), S5 (1 pv).
        assert_eq!(
            metrics(
                &c,
                json!({"metrics": ["visitors", "pageviews", "events", "visits"],
                               "filters": [["is", "visit:source", ["Google"]]]})
            ),
            json!([2, 6, 8, 3])
        );
        assert_eq!(
            m(json!(["contains", "visit:source", ["goo"], {"case_sensitive": false}])),
            json!([2, 6])
        );
        assert_eq!(m(json!(["is", "event:name", ["Signup"]])), json!([2, 0]));
        // plan=pro: S1's Signup only.
        assert_eq!(
            metrics(
                &c,
                json!({"metrics": ["visitors", "events"], "filters": [["is", "event:props:plan", ["pro"]]]})
            ),
            json!([1, 1])
        );
    }

    #[test]
    fn logical_filters() {
        let c = fixture();
        // Per event: S4 (Twitter: pv + Signup, V3) or a /pricing event (S3 V1, S7 V7).
        assert_eq!(
            metrics(
                &c,
                json!({"metrics": ["visitors", "pageviews"], "filters": [["or", [
                ["is", "visit:source", ["Twitter"]], ["is", "event:page", ["/pricing"]]]]]})
            ),
            json!([3, 3])
        );
        // Not Google: S2 (1 pv), S4 (pv + Signup), S7 (1 pv in range), S8 (1 pv in range);
        // visits S2 S4 S8.
        assert_eq!(
            metrics(
                &c,
                json!({"metrics": ["visitors", "pageviews", "events", "visits"],
                               "filters": [["not", ["is", "visit:source", ["Google"]]]]})
            ),
            json!([4, 4, 5, 3])
        );
        // Google and page /: S1 pv, S3 pv + Outbound, S5 pv -> V1 V4, 3 pv.
        assert_eq!(
            metrics(
                &c,
                json!({"metrics": ["visitors", "pageviews"], "filters": [["and", [
                ["is", "visit:source", ["Google"]], ["is", "event:page", ["/"]]]]]})
            ),
            json!([2, 3])
        );
    }

    #[test]
    fn goals_and_conversion_rate() {
        let c = fixture();
        // Signup: S1 (V1), S4 (V3) -> 2/6 = 33.3 %. Outbound: S3 (V1) -> 16.7 %.
        // Visit /blog/*: page views of /blog/a (S1 V1, S2 V2) and /blog/b (S3 V1, S4 V3)
        // -> 3 visitors, 4 events, 50 %.
        assert_eq!(
            run(
                &c,
                json!({"metrics": ["visitors", "events", "conversion_rate"], "dimensions": ["event:goal"]})
            ),
            json!([
                [["Visit /blog/*"], [3, 4, 50.0]],
                [["Signup"], [2, 2, 33.3]],
                [["Outbound"], [1, 1, 16.7]],
            ])
        );
        assert_eq!(
            metrics(
                &c,
                json!({"metrics": ["visitors", "conversion_rate"], "filters": [["is", "event:goal", ["Signup"]]]})
            ),
            json!([2, 33.3])
        );
        assert_eq!(
            metrics(
                &c,
                json!({"metrics": ["visitors", "conversion_rate"], "filters": [["contains", "event:goal", ["blog"]]]})
            ),
            json!([3, 50.0])
        );
        // Goal filter with goal dimension keeps only the filtered goal.
        assert_eq!(
            run(
                &c,
                json!({"metrics": ["visitors"], "dimensions": ["event:goal"], "filters": [["is", "event:goal", ["Signup"]]]})
            ),
            json!([[["Signup"], [2]]])
        );
        // Props breakdown: plan=free (S4 V3), plan=pro (S1 V1); every visitor has events
        // without the key.
        assert_eq!(
            run(
                &c,
                json!({"metrics": ["visitors"], "dimensions": ["event:props:plan"]})
            ),
            json!([[["(none)"], [6]], [["free"], [1]], [["pro"], [1]]])
        );
    }

    #[test]
    fn time_on_page_and_scroll_depth() {
        let c = fixture();
        // /blog/a: engagement 30 s (S1) + 10 s (S2) over 2 visits = 20 s; scroll (50 + 80)/2.
        assert_eq!(
            metrics(
                &c,
                json!({"metrics": ["time_on_page", "scroll_depth"], "filters": [["is", "event:page", ["/blog/a"]]]})
            ),
            json!([20, 65])
        );
        // Without engagement: gap to the next page view. /: S1 60 s, S3 260 s (S5 and S8
        // have no next page view in range) -> 160; /pricing: S3 40 s; /blog/b: none.
        assert_eq!(
            run(
                &c,
                json!({"metrics": ["time_on_page"], "dimensions": ["event:page"]})
            ),
            json!([
                [["/"], [160]],
                [["/pricing"], [40]],
                [["/blog/a"], [20]],
                [["/blog/b"], [null]]
            ])
        );
    }

    #[test]
    fn pagination_total_rows_and_order() {
        let c = fixture();
        let out = run_out(
            &c,
            json!({"metrics": ["visitors"], "dimensions": ["visit:source"],
                   "pagination": {"limit": 1, "offset": 1}, "include": {"total_rows": true}}),
        );
        assert_eq!(out.results.len(), 1);
        assert_eq!(out.results[0].dimensions, vec![json!("Google")]);
        assert_eq!(out.meta["total_rows"], json!(3));
        assert_eq!(
            run(
                &c,
                json!({"metrics": ["visitors"], "dimensions": ["visit:source"], "order_by": [["visit:source", "desc"]]})
            ),
            json!([
                [["Twitter"], [1]],
                [["Google"], [2]],
                [["Direct / None"], [3]]
            ])
        );
    }

    #[test]
    fn ff_uniq_counts_visitor_numbers_exactly_at_any_size() {
        let conn = memory_db();
        for (n, visits_per_visitor, spread) in [
            (20_000u64, 3u64, 1u64),
            (100_000, 2, 7),
            (250_000, 2, 1),
            (1_000_000, 1, 3),
        ] {
            // Visitor numbers repeated per visit; `spread` leaves gaps (erased visitors),
            // and 8 groups of different sizes make some sparse sets, some bitmaps.
            conn.execute_batch(&format!(
                "CREATE OR REPLACE TABLE v AS SELECT CAST((i // {visits_per_visitor}) * {spread} AS UINTEGER) AS no, \
                 CAST(hash(i) % 8 AS INTEGER) * CAST(hash(i) % 8 AS INTEGER) % 11 AS g FROM range({}) t(i)",
                n * visits_per_visitor
            ))
            .expect("table");
            let (got, exact): (u64, u64) = conn
                .query_row("SELECT ff_uniq(no), count(DISTINCT no) FROM v", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .expect("count");
            assert_eq!((got, exact), (n, n));
            let wrong: i64 = conn
                .query_row(
                    "SELECT count(*) FROM (SELECT g, ff_uniq(no) AS a, count(DISTINCT no) AS b \
                     FROM v GROUP BY g) WHERE a <> b",
                    [],
                    |r| r.get(0),
                )
                .expect("grouped");
            assert_eq!(wrong, 0, "every group exact at {n}");
        }
        // Grouped, with NULLs (not counted) and an empty group.
        let rows: Vec<(i64, i64)> = conn
            .prepare(
                "SELECT g, ff_uniq(v) FROM (VALUES (1, 5::UINTEGER), (1, 5), (1, NULL), (1, 7), \
                 (2, NULL)) t(g, v) GROUP BY g ORDER BY g",
            )
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<duckdb::Result<_>>()
            })
            .expect("grouped");
        assert_eq!(rows, vec![(1, 2), (2, 0)]);
    }

    /// Visitor counts are exact above 100,000 too (DESIGN §4 would allow an estimate
    /// there, flagged in `meta.approximate`): no query says `approximate`.
    #[test]
    fn visitors_above_a_hundred_thousand_are_counted_exactly() {
        let conn = staged_db();
        // 150,000 visits of 120,000 visitors on 2024-03-10, all entering on `/`; the first
        // 5,000 visits also see `/small`.
        conn.execute_batch(
            "INSERT INTO touched_sessions SELECT 1, i, hash(i % 120000), '/', 'example.com', '', \
             'Google', '', '', '', '', '', '', 'Desktop', 'Chrome', '', '', '', 'US', '', 0, '', \
             '', '', '', '', NULL FROM range(150000) t(i); \
             INSERT INTO events (site_id, ts, event_id, client_id, session_id, name, interactive, \
             hostname, pathname, title, engagement_ms, scroll_depth, revenue_amount, \
             revenue_currency, has_props) \
             SELECT 1, TIMESTAMP '2024-03-10 15:00:00', i * 2, false, i, 'pageview', true, \
             'example.com', '/', '', 0, NULL, NULL, NULL, false FROM range(150000) t(i) \
             UNION ALL SELECT 1, TIMESTAMP '2024-03-10 15:01:00', i * 2 + 1, false, i, 'pageview', \
             true, 'example.com', '/small', '', 0, NULL, NULL, NULL, false FROM range(5000) t(i);",
        )
        .expect("visits");
        roll_up(&conn);

        let total = run_out(
            &conn,
            json!({"metrics": ["visitors", "visits", "pageviews"]}),
        );
        let m = &total.results[0].metrics;
        assert_eq!(m, &vec![json!(120_000), json!(150_000), json!(155_000)]);
        assert_eq!(total.meta.get("approximate"), None);

        let pages = run_out(
            &conn,
            json!({"metrics": ["visitors", "percentage"], "dimensions": ["event:page"]}),
        );
        assert_eq!(pages.results.len(), 2);
        assert_eq!(pages.results[0].metrics, vec![json!(120_000), json!(100.0)]);
        assert_eq!(pages.results[1].dimensions, vec![json!("/small")]);
        assert_eq!(pages.results[1].metrics[0], json!(5_000));
        assert_eq!(pages.meta.get("approximate"), None);

        let small = run_out(
            &conn,
            json!({"metrics": ["visitors"], "dimensions": ["event:page"],
                   "filters": [["is", "event:page", ["/small"]]]}),
        );
        assert_eq!(small.results[0].metrics, vec![json!(5_000)]);
        assert_eq!(small.meta.get("approximate"), None);
    }

    /// A dashboard load with an event filter: its later queries read the visitor of each
    /// matching event from the load's visit map (`ff_visitor_no`) and pick visits with
    /// `ff_matching`. `run_api` compares each query's answer as a later query of a load
    /// with the raw plan's; here with enough visitors (returning ones among them) that a
    /// wrong number would change a count, visits across midnight and across the range end,
    /// and a visit filter that the map applies in the visits' place.
    #[test]
    fn later_queries_of_a_load_count_visitors_from_its_visit_map() {
        let conn = staged_db();
        // 3,000 visits of 2,000 visitors from 2024-03-09 05:00 UTC (the range's start in
        // New York) on, one each ~97 s; a third from Google. Each views its entry page, then
        // `/` or `/b` a minute later (every 50th at the next day's first minute in New York,
        // every 7th after the range's end).
        conn.execute_batch(
            "INSERT INTO touched_sessions SELECT 1, i, hash(i % 2000), \
             CASE WHEN i % 4 = 0 THEN '/' ELSE '/a' END, 'example.com', '', \
             CASE i % 3 WHEN 0 THEN 'Google' WHEN 1 THEN 'Bing' ELSE '' END, '', '', '', '', '', '', \
             'Desktop', 'Chrome', '', '', '', 'US', '', 0, '', '', '', '', '', NULL FROM range(3000) t(i); \
             CREATE TEMP TABLE hits AS SELECT i, TIMESTAMP '2024-03-09 05:00:00' + i * INTERVAL 97 SECOND AS t0 \
             FROM range(3000) t(i); \
             INSERT INTO events (site_id, ts, event_id, client_id, session_id, name, interactive, \
             hostname, pathname, title, engagement_ms, scroll_depth, revenue_amount, \
             revenue_currency, has_props) \
             SELECT 1, t0, i * 2, false, i, 'pageview', true, 'example.com', \
             CASE WHEN i % 4 = 0 THEN '/' ELSE '/a' END, '', 0, NULL, NULL, NULL, false FROM hits \
             UNION ALL SELECT 1, CASE WHEN i % 7 = 0 THEN TIMESTAMP '2024-03-12 04:30:00' \
             WHEN i % 50 = 0 THEN date_trunc('day', t0 - INTERVAL 4 HOUR) + INTERVAL 28 HOUR + INTERVAL 30 SECOND \
             ELSE t0 + INTERVAL 60 SECOND END, i * 2 + 1, false, i, 'pageview', true, 'example.com', \
             CASE WHEN i % 5 < 2 THEN '/' ELSE '/b' END, '', 0, NULL, NULL, NULL, false FROM hits;",
        )
        .expect("visits");
        roll_up(&conn);

        for filters in [
            json!([["is", "event:page", ["/"]]]),
            json!([
                ["is", "event:page", ["/"]],
                ["is", "visit:source", ["Google"]]
            ]),
            json!([
                ["contains", "event:page", ["b"]],
                ["is_not", "visit:source", ["Bing"]]
            ]),
        ] {
            // The load's aggregate makes the set; `run_api` runs each query after it.
            let total = run_api(
                &conn,
                json!({"metrics": ["visitors", "visits", "pageviews"], "filters": filters}),
                Api::V2,
            );
            let days = run_api(
                &conn,
                json!({"metrics": ["visitors", "pageviews"], "dimensions": ["time:day"],
                       "filters": filters}),
                Api::V2,
            );
            assert_eq!(days.results.len(), 3, "{filters}");
            for dim in ["event:page", "visit:source", "visit:entry_page"] {
                run_api(
                    &conn,
                    json!({"metrics": ["visitors"], "dimensions": [dim], "filters": filters}),
                    Api::V2,
                );
            }
            // And the numbers a careful person would count: distinct visitors and page
            // views of the matching hits in range, by New York day.
            let (page, source) = match filters[0][1].as_str() {
                _ if filters[0][0] == "contains" => ("pathname LIKE '%b%'", "s.source <> 'Bing'"),
                _ if filters.as_array().is_some_and(|f| f.len() == 2) => {
                    ("pathname = '/'", "s.source = 'Google'")
                }
                _ => ("pathname = '/'", "true"),
            };
            let by_hand = |sql: &str| -> Vec<(String, i64, i64)> {
                let sql = format!(
                    "SELECT {sql}, count(DISTINCT s.visitor_id), count(*) FROM events e \
                     JOIN sessions s USING (session_id) WHERE e.ts >= TIMESTAMP '2024-03-09 05:00:00' \
                     AND e.ts < TIMESTAMP '2024-03-12 04:00:00' AND {page} AND {source} GROUP BY 1 ORDER BY 1"
                );
                let mut stmt = conn.prepare(&sql).expect("by hand");
                stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .expect("by hand runs")
                    .collect::<Result<_, _>>()
                    .expect("rows")
            };
            let all = by_hand("'all'");
            assert_eq!(total.results[0].metrics[0], json!(all[0].1), "{filters}");
            assert_eq!(total.results[0].metrics[2], json!(all[0].2), "{filters}");
            // New York's days in UTC (daylight saving time from 2024-03-10 07:00 UTC).
            let per_day = by_hand(
                "CASE WHEN e.ts < TIMESTAMP '2024-03-10 05:00:00' THEN '2024-03-09' \
                 WHEN e.ts < TIMESTAMP '2024-03-11 04:00:00' THEN '2024-03-10' ELSE '2024-03-11' END",
            );
            let got: Vec<(String, i64, i64)> = days
                .results
                .iter()
                .map(|r| {
                    (
                        r.dimensions[0].as_str().unwrap_or_default().to_string(),
                        r.metrics[0].as_i64().unwrap_or(-1),
                        r.metrics[1].as_i64().unwrap_or(-1),
                    )
                })
                .collect();
            assert_eq!(got, per_day, "{filters}");
        }
    }

    #[test]
    fn pages_of_a_breakdown_are_slices_of_the_full_breakdown() {
        let c = fixture();
        for dim in [
            "visit:source",
            "visit:device",
            "visit:entry_page",
            "visit:country",
            "event:page",
        ] {
            let full = run(
                &c,
                json!({"metrics": ["visitors", "percentage"], "dimensions": [dim]}),
            );
            for (limit, offset) in [(1, 0), (2, 0), (1, 1), (2, 1), (3, 2)] {
                let page = run(
                    &c,
                    json!({"metrics": ["visitors", "percentage"], "dimensions": [dim],
                           "pagination": {"limit": limit, "offset": offset}}),
                );
                let want: Vec<Value> = full
                    .as_array()
                    .map(|r| r.iter().skip(offset).take(limit).cloned().collect())
                    .unwrap_or_default();
                assert_eq!(
                    page,
                    Value::Array(want),
                    "{dim} limit {limit} offset {offset}"
                );
            }
        }
    }

    /// Plausible's v2 shows a visit without a UTM value under "(not set)" and an unknown
    /// location as stored (`SQL.Expression.select_dimension`); its v1 leaves both out
    /// (`Legacy.Breakdown`'s `is_not` filters). "(not set)" (and "Direct / None" on UTM
    /// values) names the empty value in `is` filters of both (`WhereBuilder.db_field_val`).
    #[test]
    fn empty_values_in_v2_and_v1() {
        let c = fixture();
        // S1 (V1) and S4 (V3) came from the newsletter; S2 S3 S5 S7 S8 have no UTM source.
        c.execute_batch("UPDATE sessions SET utm_source = 'newsletter' WHERE session_id IN (1, 4)")
            .expect("utm");
        // (not set): S2 (V2), S3 (V1), S5 (V4), S7 (V7), S8 (V8) -> 5 visitors; visits
        // starting in range S2 S3 S5 S8. newsletter: V1 V3, visits S1 S4.
        let by_utm = json!({"metrics": ["visitors", "visits"], "dimensions": ["visit:utm_source"]});
        assert_eq!(
            run_v2(&c, by_utm.clone()),
            json!([[["(not set)"], [5, 4]], [["newsletter"], [2, 2]]])
        );
        assert_eq!(run(&c, by_utm), json!([[["newsletter"], [2, 2]]]));
        let visitors = |f: Value| {
            let q = json!({"metrics": ["visitors"], "filters": [f]});
            (
                run_v2(&c, q.clone())[0][1].clone(),
                run(&c, q)[0][1].clone(),
            )
        };
        for label in ["(not set)", "Direct / None"] {
            let v = json!([5]);
            assert_eq!(
                visitors(json!(["is", "visit:utm_source", [label]])),
                (v.clone(), v),
                "{label}"
            );
        }
        assert_eq!(
            visitors(json!(["is_not", "visit:utm_source", ["(not set)"]])),
            (json!([2]), json!([2]))
        );
        // Only the exact label names it (Plausible maps it before lower-casing).
        assert_eq!(
            visitors(json!(["is", "visit:utm_source", ["(NOT SET)"], {"case_sensitive": false}])),
            (json!([0]), json!([0]))
        );
        // A direct visit's source is "Direct / None"; "(not set)" names it too, as
        // Plausible's empty source.
        assert_eq!(
            visitors(json!(["is", "visit:source", ["(not set)"]])),
            (json!([3]), json!([3]))
        );
        // Unknown country (S2 S7 S8 -> V2 V7 V8), city 0 and region: rows of their own in
        // v2, left out in v1 (`empty_values_and_city`).
        assert_eq!(
            run_v2(
                &c,
                json!({"metrics": ["visitors"], "dimensions": ["visit:country"]})
            ),
            json!([[[""], [3]], [["US"], [2]], [["GB"], [1]]])
        );
        assert_eq!(
            run_v2(
                &c,
                json!({"metrics": ["visitors"], "dimensions": ["visit:city"]})
            ),
            json!([[[0], [3]], [[NYC], [2]], [[LONDON], [1]]])
        );
        assert_eq!(
            run_v2(
                &c,
                json!({"metrics": ["visitors"], "dimensions": ["visit:region"]})
            ),
            json!([[[""], [6]]])
        );
        assert_eq!(
            run(
                &c,
                json!({"metrics": ["visitors"], "dimensions": ["visit:region"]})
            ),
            json!([])
        );
        assert_eq!(
            visitors(json!(["is", "visit:region", ["(not set)"]])),
            (json!([6]), json!([6]))
        );
    }

    /// `total_revenue` and `average_revenue` (see `revenue.rs` for the rules).
    #[test]
    fn revenue_metrics() {
        let c = fixture();
        let set = |event_id: u64, amount: Option<f64>, currency: Option<&str>| {
            c.execute(
                "UPDATE events SET revenue_amount = ?, revenue_currency = ? WHERE event_id = ?",
                duckdb::params![amount, currency, event_id],
            )
            .expect("revenue");
        };
        // S1's Signup (V1, 03-09) 10 USD, S4's Signup (V3, 03-11 local) 20.50 USD; S5's page
        // view carries 99 USD, which counts nowhere (revenue belongs to custom events).
        set(103, Some(10.0), Some("USD"));
        set(401, Some(20.5), Some("USD"));
        set(500, Some(99.0), Some("USD"));
        let usd = |v: f64, short: &str, long: &str| json!({"value": v, "currency": "USD", "short": short, "long": long});
        let both = json!(["visitors", "total_revenue", "average_revenue"]);
        // Every goal with revenue is in USD: the sum and average over all revenue events.
        let out = run_api(&c, json!({"metrics": both}), Api::V2);
        assert_eq!(
            rows_of(&out),
            json!([[
                [],
                [
                    6,
                    usd(30.5, "$30.5", "$30.50"),
                    usd(15.25, "$15.2", "$15.25")
                ]
            ]])
        );
        assert_eq!(out.meta.get("metric_warnings"), None);
        assert_eq!(
            run_v2(
                &c,
                json!({"metrics": both, "filters": [["is", "event:goal", ["Signup"]]]})
            ),
            json!([[
                [],
                [
                    2,
                    usd(30.5, "$30.5", "$30.50"),
                    usd(15.25, "$15.2", "$15.25")
                ]
            ]])
        );
        // No revenue goal matches: null, and the warning for each revenue metric.
        let none = json!({"code": "no_revenue_goals_matching",
            "warning": "Revenue metrics are null as there are no matching revenue goals."});
        let out = run_api(
            &c,
            json!({"metrics": both, "filters": [["is", "event:goal", ["Outbound"]]]}),
            Api::V2,
        );
        assert_eq!(rows_of(&out), json!([[[], [1, null, null]]]));
        assert_eq!(
            out.meta["metric_warnings"],
            json!({"total_revenue": none, "average_revenue": none})
        );
        // Revenue follows the goals the filter selects for the metrics: case-insensitive
        // names, and "Visit ..." as a page goal (which has no revenue).
        assert_eq!(
            run_v2(
                &c,
                json!({"metrics": both,
                       "filters": [["is", "event:goal", ["sIGNUP"], {"case_sensitive": false}]]})
            ),
            json!([[
                [],
                [
                    2,
                    usd(30.5, "$30.5", "$30.50"),
                    usd(15.25, "$15.2", "$15.25")
                ]
            ]])
        );
        let out = run_api(
            &c,
            json!({"metrics": both, "filters": [["is", "event:goal", ["Visit /blog/*"]]]}),
            Api::V2,
        );
        assert_eq!(out.meta["metric_warnings"]["total_revenue"], none);
        // By goal: each goal in its currency, null for goals without revenue.
        let by_goal =
            json!({"metrics": ["visitors", "total_revenue"], "dimensions": ["event:goal"]});
        let out = run_api(&c, by_goal.clone(), Api::V2);
        assert_eq!(
            rows_of(&out),
            json!([
                [["Visit /blog/*"], [3, null]],
                [["Signup"], [2, usd(30.5, "$30.5", "$30.50")]],
                [["Outbound"], [1, null]],
            ])
        );
        assert_eq!(out.meta.get("metric_warnings"), None);
        // By source with the goal filter: Google S1 (10), Twitter S4 (20.50).
        assert_eq!(
            run_v2(
                &c,
                json!({"metrics": ["visitors", "total_revenue"], "dimensions": ["visit:source"],
                       "filters": [["is", "event:goal", ["Signup"]]]})
            ),
            json!([
                [["Google"], [1, usd(10.0, "$10.0", "$10.00")]],
                [["Twitter"], [1, usd(20.5, "$20.5", "$20.50")]],
            ])
        );
        // A revenue goal without conversions in range is $0 (its currency is known from
        // S1's Signup before the range end); before any revenue there is none to know.
        let zero = usd(0.0, "$0.0", "$0.00");
        assert_eq!(
            run_v2(
                &c,
                json!({"metrics": ["total_revenue", "average_revenue"], "date_range": ["2024-03-10", "2024-03-10"],
                       "filters": [["is", "event:goal", ["Signup"]]]})
            ),
            json!([[[], [zero.clone(), zero]]])
        );
        let out = run_api(
            &c,
            json!({"metrics": ["total_revenue"], "date_range": ["2024-03-08", "2024-03-08"]}),
            Api::V2,
        );
        assert_eq!(rows_of(&out), json!([[[], [null]]]));
        assert_eq!(out.meta["metric_warnings"], json!({"total_revenue": none}));

        // S3's Outbound 5 EUR: USD and EUR goals can no longer be added up.
        set(302, Some(5.0), Some("EUR"));
        let mixed = json!({"code": "no_single_revenue_currency",
            "warning": "Revenue metrics are null as there are multiple currencies for the selected event:goals."});
        for filters in [json!([]), json!([["contains", "event:goal", ["u"]]])] {
            let out = run_api(&c, json!({"metrics": both, "filters": filters}), Api::V2);
            assert_eq!(rows_of(&out)[0][1][1], Value::Null, "{filters}");
            assert_eq!(
                out.meta["metric_warnings"],
                json!({"total_revenue": mixed, "average_revenue": mixed})
            );
        }
        assert_eq!(
            run_v2(
                &c,
                json!({"metrics": both, "filters": [["is", "event:goal", ["Signup"]]]})
            )[0][1][1],
            usd(30.5, "$30.5", "$30.50")
        );
        let out = run_api(&c, by_goal.clone(), Api::V2);
        assert_eq!(
            rows_of(&out),
            json!([
                [["Visit /blog/*"], [3, null]],
                [["Signup"], [2, usd(30.5, "$30.5", "$30.50")]],
                [["Outbound"], [1, {"value": 5.0, "currency": "EUR", "short": "€5.0", "long": "€5.00"}]],
            ])
        );
        assert_eq!(out.meta.get("metric_warnings"), None);

        // The average is over the events with revenue: S4's Signup without it leaves 10 / 1.
        set(401, None, None);
        assert_eq!(
            run_v2(
                &c,
                json!({"metrics": both, "filters": [["is", "event:goal", ["Signup"]]]})
            ),
            json!([[
                [],
                [
                    2,
                    usd(10.0, "$10.0", "$10.00"),
                    usd(10.0, "$10.0", "$10.00")
                ]
            ]])
        );
        // One goal in two currencies (footfall has no exchange rates): its row is null.
        set(401, Some(7.0), Some("EUR"));
        let out = run_api(&c, by_goal, Api::V2);
        assert_eq!(rows_of(&out)[1], json!([["Signup"], [2, null]]));
        assert_eq!(out.meta["metric_warnings"], json!({"total_revenue": mixed}));
    }

    #[test]
    fn profile_format_follows_the_extension() {
        use std::path::Path;
        assert_eq!(profile_format(Path::new("p.txt")), Some("query_tree"));
        assert_eq!(profile_format(Path::new("/tmp/p.json")), Some("json"));
        assert_eq!(profile_format(Path::new("p.prof")), None);
        assert_eq!(profile_format(Path::new("p")), None);
    }

    #[test]
    fn bad_regex_is_invalid() {
        let c = fixture();
        let body = json!({"site_id": "example.com", "date_range": "all", "metrics": ["visitors"],
                          "filters": [["matches", "event:page", ["("]]]});
        let q = parse_query(&body, &site(), chrono::Utc::now()).expect("valid query");
        assert!(matches!(
            execute(&c, 1, &site(), &q, None),
            Err(ExecError::Invalid(_))
        ));
    }
}
