//! JSON -> [`Query`]: every rule of the Stats API v2 schema that footfall supports, with
//! messages that name the bad part.

use super::time::{all_from, echo_range, resolve_range};
use super::{
    Dimension, Filter, FilterOp, Include, Leaf, Metric, OrderBy, OrderTarget, Pagination, Query,
    QueryError, SiteContext, VisitAttr,
};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// The keys a Stats API v2 query may have.
pub const QUERY_KEYS: &[&str] = &[
    "site_id",
    "metrics",
    "date_range",
    "dimensions",
    "filters",
    "order_by",
    "include",
    "pagination",
];

const MAX_LIMIT: u64 = 10_000;

pub(super) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// " — did you mean 'x'?" for the closest candidate when it is close enough, else "".
pub(super) fn suggestion(input: &str, candidates: &[&str]) -> String {
    let best = candidates
        .iter()
        .map(|c| (levenshtein(input, c), *c))
        .min_by_key(|(d, _)| *d);
    match best {
        Some((d, c)) if d > 0 && d <= 3.max(input.chars().count() / 3) => {
            format!(" — did you mean '{c}'?")
        }
        _ => String::new(),
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, QueryError> {
    Err(QueryError::new(msg))
}

/// The `site_id` of a query body (the server resolves the site before parsing).
pub fn site_id_of(body: &Value) -> Result<&str, QueryError> {
    let Some(obj) = body.as_object() else {
        return err(format!(
            "query must be a JSON object, got {}",
            json_type(body)
        ));
    };
    match obj.get("site_id") {
        None => err("site_id is required"),
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(v) => err(format!(
            "site_id must be a non-empty string (the site's domain), got {}",
            json_type(v)
        )),
    }
}

/// Which API's combination rules a query follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rules {
    /// Plausible's Stats API v2 (`QueryBuilder` validations, `TableDecider`).
    V2,
    /// The Stats API v1 endpoints, which check their metrics themselves (Plausible's v1
    /// allows e.g. `views_per_visit` in a timeseries) and run on this grammar.
    V1,
}

/// Parses, validates and resolves a Stats API v2 query body for `site` at time `now`.
pub fn parse_query(
    body: &Value,
    site: &SiteContext,
    now: DateTime<Utc>,
) -> Result<Query, QueryError> {
    parse_with(body, site, now, Rules::V2)
}

/// [`parse_query`] for the Stats API v1 endpoints: the same grammar, without the v2-only
/// combination rules (v1 has its own, checked by its handlers before they get here).
pub fn parse_v1_query(
    body: &Value,
    site: &SiteContext,
    now: DateTime<Utc>,
) -> Result<Query, QueryError> {
    parse_with(body, site, now, Rules::V1)
}

fn parse_with(
    body: &Value,
    site: &SiteContext,
    now: DateTime<Utc>,
    rules: Rules,
) -> Result<Query, QueryError> {
    let site_id = site_id_of(body)?.to_string();
    let Some(obj) = body.as_object() else {
        return err("query must be a JSON object");
    };
    for k in obj.keys() {
        if !QUERY_KEYS.contains(&k.as_str()) {
            return err(format!(
                "unknown key '{k}' in query{}",
                suggestion(k, QUERY_KEYS)
            ));
        }
    }

    let metrics = parse_metrics(obj.get("metrics"))?;
    let Some(range_v) = obj.get("date_range") else {
        return err("date_range is required");
    };
    let mut range = resolve_range(range_v, site.timezone, now)?;
    if range.is_all()
        && let Some(first) = site.stats_start
    {
        range = all_from(&range, site.timezone, first);
    }
    let dimensions = parse_dimensions(obj.get("dimensions"))?;
    let filters = match obj.get("filters") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, f)| parse_filter(f, &format!("filters[{i}]")))
            .collect::<Result<_, _>>()?,
        Some(v) => return err(format!("filters must be a list, got {}", json_type(v))),
    };
    let include = parse_include(obj.get("include"))?;
    let comparisons = match obj.get("include").and_then(|i| i.get("comparisons")) {
        Some(c) => super::compare::parse_comparisons(c, site.timezone, now)?,
        None => None,
    };
    let pagination = parse_pagination(obj.get("pagination"))?;

    let order_by = match rules {
        Rules::V2 => {
            let order_by = parse_order_by(obj.get("order_by"), &metrics, &dimensions)?;
            validate_v2(&metrics, &dimensions, &filters, &include)?;
            order_by
        }
        Rules::V1 => {
            validate(&metrics, &dimensions, &filters, &include)?;
            parse_order_by(obj.get("order_by"), &metrics, &dimensions)?
        }
    };

    let echo = json!({
        "site_id": site_id,
        "metrics": metrics.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        "date_range": echo_range(&range, site.timezone),
        "dimensions": dimensions.iter().map(Dimension::name).collect::<Vec<_>>(),
        "filters": filters.iter().map(Filter::to_json).collect::<Vec<_>>(),
        "order_by": order_by.iter().map(|o| {
            let name = match &o.target {
                OrderTarget::Metric(m) => m.as_str().to_string(),
                OrderTarget::Dimension(d) => d.name(),
            };
            json!([name, if o.desc { "desc" } else { "asc" }])
        }).collect::<Vec<_>>(),
        // Plausible's `QueryResult` echoes only the options that are on.
        "include": include_echo(&include),
        "pagination": {"limit": pagination.limit, "offset": pagination.offset},
    });
    let mut echo = echo;
    let compared_range = comparisons.map(|c| {
        echo["include"]["comparisons"] = c.to_json(site.timezone);
        let compared = super::compare::comparison_range(&range, site.timezone, now, &c);
        echo["comparison_date_range"] = echo_range(&compared, site.timezone);
        compared
    });
    // Labels and comparisons list every bucket of the range, data or not.
    let time = dimensions.iter().find_map(|d| match d {
        Dimension::Time(g) => Some(*g),
        _ => None,
    });
    if let Some(g) = time.filter(|_| include.time_labels || compared_range.is_some()) {
        for r in std::iter::once(&range).chain(compared_range.as_ref()) {
            let n = super::time::bucket_count(g, r);
            if n > super::time::MAX_TIME_LABELS {
                return err(format!(
                    "the date range spans {n} {} buckets; time labels and comparisons list \
                     at most {}: choose a larger time dimension or a shorter range",
                    super::time::resolve_granularity(g, r).as_str(),
                    super::time::MAX_TIME_LABELS
                ));
            }
        }
    }

    Ok(Query {
        site_id,
        metrics,
        dimensions,
        filters: top_level_conjuncts(filters),
        order_by,
        pagination,
        include,
        compared_range,
        range,
        timezone: site.timezone,
        api: match rules {
            Rules::V2 => super::Api::V2,
            Rules::V1 => super::Api::V1,
        },
        echo,
    })
}

/// The filters as a flat conjunction: an `and` at the top level (or an `and`/`or` of one
/// filter) means the same as its filters listed side by side, and rules that look at
/// top-level filters (bounce rate over the visits entering on an `event:page` filter,
/// visit-only plans) must see them the same either way. The echo keeps the query as sent.
fn top_level_conjuncts(filters: Vec<Filter>) -> Vec<Filter> {
    let mut out = Vec::with_capacity(filters.len());
    let mut stack: Vec<Filter> = filters.into_iter().rev().collect();
    while let Some(f) = stack.pop() {
        match f {
            Filter::And(fs) => stack.extend(fs.into_iter().rev()),
            Filter::Or(mut fs) if fs.len() == 1 => stack.extend(fs.pop()),
            f => out.push(f),
        }
    }
    out
}

fn string_list<'a>(v: &'a Value, what: &str) -> Result<Vec<&'a str>, QueryError> {
    let Value::Array(items) = v else {
        return err(format!(
            "{what} must be a list of strings, got {}",
            json_type(v)
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, x)| {
            x.as_str().ok_or_else(|| {
                QueryError::new(format!(
                    "{what}[{i}] must be a string, got {}",
                    json_type(x)
                ))
            })
        })
        .collect()
}

fn parse_metrics(v: Option<&Value>) -> Result<Vec<Metric>, QueryError> {
    let Some(v) = v else {
        return err("metrics is required");
    };
    let names = string_list(v, "metrics")?;
    if names.is_empty() {
        return err("metrics must not be empty");
    }
    let mut out: Vec<Metric> = Vec::new();
    for n in names {
        let m: Metric = n.parse()?;
        if out.contains(&m) {
            return err(format!("metric '{n}' is listed twice"));
        }
        out.push(m);
    }
    Ok(out)
}

fn parse_dimensions(v: Option<&Value>) -> Result<Vec<Dimension>, QueryError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let mut out: Vec<Dimension> = Vec::new();
    for n in string_list(v, "dimensions")? {
        let d: Dimension = n.parse()?;
        if out.contains(&d) {
            return err(format!("dimension '{n}' is listed twice"));
        }
        if d.is_time() && out.iter().any(Dimension::is_time) {
            return err(format!(
                "only one time dimension is allowed, '{n}' is a second one"
            ));
        }
        out.push(d);
    }
    Ok(out)
}

fn parse_filter(v: &Value, at: &str) -> Result<Filter, QueryError> {
    let Value::Array(items) = v else {
        return err(format!(
            "{at} must be a list like [\"is\", \"event:page\", [\"/\"]], got {}",
            json_type(v)
        ));
    };
    let Some(op) = items.first().and_then(Value::as_str) else {
        return err(format!("{at} must start with an operator string"));
    };
    match op {
        "and" | "or" => {
            let [_, Value::Array(subs)] = items.as_slice() else {
                return err(format!(
                    "{at}: '{op}' takes one list of filters: [\"{op}\", [...]]"
                ));
            };
            if subs.is_empty() {
                return err(format!("{at}: '{op}' needs at least one filter"));
            }
            let fs = subs
                .iter()
                .enumerate()
                .map(|(i, f)| parse_filter(f, &format!("{at}[1][{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if op == "and" {
                Filter::And(fs)
            } else {
                Filter::Or(fs)
            })
        }
        "not" => {
            let [_, sub] = items.as_slice() else {
                return err(format!("{at}: 'not' takes one filter: [\"not\", [...]]"));
            };
            Ok(Filter::Not(Box::new(parse_filter(
                sub,
                &format!("{at}[1]"),
            )?)))
        }
        "has_done" | "has_not_done" => {
            err(format!("{at}: filter operator '{op}' is not supported"))
        }
        _ => {
            let Some(fop) = FilterOp::ALL.iter().copied().find(|o| o.as_str() == op) else {
                let mut names: Vec<&str> = FilterOp::ALL.iter().map(|o| o.as_str()).collect();
                names.extend(["and", "or", "not"]);
                return err(format!(
                    "{at}: invalid filter operator '{op}'{}",
                    suggestion(op, &names)
                ));
            };
            parse_leaf(fop, items, at)
        }
    }
}

fn parse_leaf(op: FilterOp, items: &[Value], at: &str) -> Result<Filter, QueryError> {
    if !(3..=4).contains(&items.len()) {
        return err(format!(
            "{at}: a '{op}' filter is [\"{op}\", dimension, [values]] with an optional {{\"case_sensitive\": false}}"
        ));
    }
    let Some(dim_name) = items[1].as_str() else {
        return err(format!(
            "{at}: the dimension must be a string, got {}",
            json_type(&items[1])
        ));
    };
    let dim: Dimension = dim_name
        .parse()
        .map_err(|e: QueryError| QueryError::new(format!("{at}: {}", e.message)))?;
    if dim.is_time() {
        return err(format!("{at}: time dimensions cannot be filtered"));
    }
    if dim == Dimension::EventGoal && !matches!(op, FilterOp::Is | FilterOp::Contains) {
        return err(format!(
            "{at}: filter operator '{op}' is not supported for event:goal (use is or contains, inside 'not' to negate)"
        ));
    }
    let numbers_ok = matches!(
        dim,
        Dimension::EventGoal | Dimension::Visit(VisitAttr::City)
    );
    let Value::Array(raw) = &items[2] else {
        return err(format!(
            "{at}: the values must be a list of strings, got {}",
            json_type(&items[2])
        ));
    };
    if raw.is_empty() {
        return err(format!("{at}: the values list must not be empty"));
    }
    let mut values = Vec::with_capacity(raw.len());
    for (i, x) in raw.iter().enumerate() {
        match x {
            Value::String(s) => values.push(s.clone()),
            Value::Number(n) if numbers_ok => values.push(n.to_string()),
            _ => {
                return err(format!(
                    "{at}: value [{i}] must be a string, got {}",
                    json_type(x)
                ));
            }
        }
    }
    if dim == Dimension::Visit(VisitAttr::City)
        && op.positive() == FilterOp::Is
        && let Some(bad) = values.iter().find(|v| v.parse::<u32>().is_err())
    {
        return err(format!(
            "{at}: visit:city values are GeoName ids (integers), got '{bad}'"
        ));
    }
    let mut case_sensitive = true;
    if let Some(m) = items.get(3) {
        let Value::Object(mods) = m else {
            return err(format!(
                "{at}: the 4th element must be an object like {{\"case_sensitive\": false}}, got {}",
                json_type(m)
            ));
        };
        for (k, v) in mods {
            match (k.as_str(), v) {
                ("case_sensitive", Value::Bool(b)) => case_sensitive = *b,
                ("case_sensitive", _) => {
                    return err(format!("{at}: case_sensitive must be a boolean"));
                }
                _ => return err(format!("{at}: unknown filter modifier '{k}'")),
            }
        }
    }
    Ok(Filter::leaf(op, dim, values, case_sensitive))
}

fn parse_bool(obj: &Map<String, Value>, key: &str, at: &str) -> Result<bool, QueryError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => err(format!(
            "{at}.{key} must be a boolean, got {}",
            json_type(v)
        )),
    }
}

fn parse_include(v: Option<&Value>) -> Result<Include, QueryError> {
    let obj = match v {
        None | Some(Value::Null) => return Ok(Include::default()),
        Some(Value::Object(o)) => o,
        Some(v) => return err(format!("include must be an object, got {}", json_type(v))),
    };
    // `comparisons` is read by `compare::parse_comparisons` (it needs the timezone).
    const KEYS: &[&str] = &["imports", "time_labels", "total_rows", "comparisons"];
    if let Some(k) = obj.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return err(format!(
            "unknown key '{k}' in include{}",
            suggestion(k, KEYS)
        ));
    }
    Ok(Include {
        imports: parse_bool(obj, "imports", "include")?,
        time_labels: parse_bool(obj, "time_labels", "include")?,
        total_rows: parse_bool(obj, "total_rows", "include")?,
    })
}

/// The `include` options that are on, as Plausible's `QueryResult` echoes them
/// (`Map.filter(fn {_key, val} -> val end)`): `{}` when none is.
fn include_echo(include: &Include) -> Value {
    let mut out = Map::new();
    for (key, on) in [
        ("imports", include.imports),
        ("time_labels", include.time_labels),
        ("total_rows", include.total_rows),
    ] {
        if on {
            out.insert(key.into(), Value::Bool(true));
        }
    }
    Value::Object(out)
}

fn parse_pagination(v: Option<&Value>) -> Result<Pagination, QueryError> {
    let obj = match v {
        None | Some(Value::Null) => return Ok(Pagination::default()),
        Some(Value::Object(o)) => o,
        Some(v) => {
            return err(format!(
                "pagination must be an object, got {}",
                json_type(v)
            ));
        }
    };
    let mut p = Pagination::default();
    for (k, v) in obj {
        match k.as_str() {
            "limit" => match v.as_u64() {
                Some(n) if (1..=MAX_LIMIT).contains(&n) => p.limit = n as u32,
                _ => {
                    return err(format!(
                        "pagination.limit must be an integer from 1 to {MAX_LIMIT}, got {v}"
                    ));
                }
            },
            "offset" => match v.as_u64() {
                Some(n) => p.offset = n,
                None => {
                    return err(format!(
                        "pagination.offset must be an integer >= 0, got {v}"
                    ));
                }
            },
            _ => {
                return err(format!(
                    "unknown key '{k}' in pagination{}",
                    suggestion(k, &["limit", "offset"])
                ));
            }
        }
    }
    Ok(p)
}

fn validate(
    metrics: &[Metric],
    dims: &[Dimension],
    filters: &[Filter],
    include: &Include,
) -> Result<(), QueryError> {
    let filtered_on = |d: &Dimension| filters.iter().any(|f| f.any_leaf(&|l| l.dim == d));
    for m in metrics {
        match m {
            Metric::Percentage if dims.is_empty() => {
                return err("metric 'percentage' requires a dimension");
            }
            Metric::ConversionRate | Metric::GroupConversionRate
                if !dims.contains(&Dimension::EventGoal) && !filtered_on(&Dimension::EventGoal) =>
            {
                return err(format!(
                    "metric '{m}' requires an event:goal filter or dimension"
                ));
            }
            Metric::TimeOnPage | Metric::ScrollDepth
                if !dims.contains(&Dimension::EventPage) && !filtered_on(&Dimension::EventPage) =>
            {
                return err(format!(
                    "metric '{m}' requires an event:page filter or dimension"
                ));
            }
            _ => {}
        }
        if m.is_session_only()
            && let Some(d) = dims.iter().find(|d| {
                d.is_event() && !matches!(d, Dimension::EventPage | Dimension::EventHostname)
            })
        {
            return err(format!(
                "session metric '{m}' cannot be used with dimension '{}'",
                d.name()
            ));
        }
    }
    if include.time_labels && !dims.iter().any(Dimension::is_time) {
        return err("include.time_labels requires a time dimension");
    }
    Ok(())
}

/// Every leaf filter with its depth: 0 for a filter listed in `filters` itself, one more
/// inside each `and`, `or` and `not` (Plausible's `Filters.traverse`).
fn leaves_with_depth<'a>(filters: &'a [Filter], depth: usize, out: &mut Vec<(Leaf<'a>, usize)>) {
    for f in filters {
        match f {
            Filter::And(fs) | Filter::Or(fs) => leaves_with_depth(fs, depth + 1, out),
            Filter::Not(inner) => leaves_with_depth(std::slice::from_ref(&**inner), depth + 1, out),
            leaf => out.extend(leaf.as_leaf().map(|l| (l, depth))),
        }
    }
}

/// Metrics Plausible computes only from sessions (`TableDecider`: `:session`).
fn is_session_metric(m: Metric) -> bool {
    matches!(
        m,
        Metric::BounceRate | Metric::VisitDuration | Metric::ViewsPerVisit
    )
}

/// Metrics Plausible computes only from events (`TableDecider`: `:event`; the revenue
/// metrics too).
fn is_event_metric(m: Metric) -> bool {
    matches!(
        m,
        Metric::Pageviews
            | Metric::Events
            | Metric::TimeOnPage
            | Metric::ScrollDepth
            | Metric::TotalRevenue
            | Metric::AverageRevenue
    )
}

/// Dimensions only sessions have (entry and exit pages and their hostnames).
fn is_session_dimension(d: &Dimension) -> bool {
    matches!(
        d,
        Dimension::Visit(
            VisitAttr::EntryPage
                | VisitAttr::EntryPageHostname
                | VisitAttr::ExitPage
                | VisitAttr::ExitPageHostname
        )
    )
}

/// "`a`, `b`" as Plausible lists names in its messages.
fn ticked<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> String {
    names
        .into_iter()
        .map(|n| format!("`{}`", n.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Plausible's Stats API v2 rules on how metrics, dimensions, filters and include
/// combine (`QueryBuilder.build`'s validations and `TableDecider`), in its order and
/// with its messages. `filters` is the list as sent (not flattened): depth matters.
fn validate_v2(
    metrics: &[Metric],
    dims: &[Dimension],
    filters: &[Filter],
    include: &Include,
) -> Result<(), QueryError> {
    let mut leaves = Vec::new();
    leaves_with_depth(filters, 0, &mut leaves);
    for (leaf, _) in &leaves {
        if *leaf.dim == Dimension::Visit(VisitAttr::Country)
            && matches!(leaf.op, FilterOp::Is | FilterOp::IsNot)
            && leaf.values.iter().any(|v| v.chars().count() != 2)
        {
            return err(
                "Invalid visit:country filter, visit:country needs to be a valid 2-letter country code.",
            );
        }
    }
    if let Some((leaf, _)) = leaves.iter().find(|(l, depth)| {
        *depth > 0 && matches!(l.dim, Dimension::EventGoal | Dimension::EventHostname)
    }) {
        return err(format!(
            "Invalid filters. Dimension `{}` can only be filtered at the top level.",
            leaf.dim.name()
        ));
    }
    let conversion = metrics
        .iter()
        .any(|m| matches!(m, Metric::ConversionRate | Metric::GroupConversionRate));
    if conversion
        && leaves
            .iter()
            .any(|(l, depth)| *depth > 0 && matches!(l.dim, Dimension::EventProps(_)))
    {
        return err(
            "Invalid filters. When `conversion_rate` or `group_conversion_rate` metrics are used, custom property filters can only be used on top level.",
        );
    }
    let filtered_on = |d: &Dimension| leaves.iter().any(|(l, _)| l.dim == d);
    let top_level_filter_on = |d: &Dimension| {
        filters
            .iter()
            .any(|f| f.as_leaf().is_some_and(|l| l.dim == d))
    };
    for m in metrics {
        match m {
            Metric::ConversionRate | Metric::GroupConversionRate
                if !dims.contains(&Dimension::EventGoal) && !filtered_on(&Dimension::EventGoal) =>
            {
                return err(format!(
                    "Metric `{m}` can only be queried with event:goal filters or dimensions."
                ));
            }
            Metric::ScrollDepth
                if !dims.contains(&Dimension::EventPage)
                    && !top_level_filter_on(&Dimension::EventPage) =>
            {
                return err(format!(
                    "Metric `{m}` can only be queried with event:page filters or dimensions."
                ));
            }
            Metric::ViewsPerVisit if filtered_on(&Dimension::EventPage) => {
                return err(format!(
                    "Metric `{m}` cannot be queried with a filter on `event:page`."
                ));
            }
            Metric::ViewsPerVisit if !dims.is_empty() => {
                return err(format!("Metric `{m}` cannot be queried with `dimensions`."));
            }
            Metric::TimeOnPage
                if !dims.contains(&Dimension::EventPage) && !filtered_on(&Dimension::EventPage) =>
            {
                return err(format!(
                    "Metric `{m}` can only be queried with event:page filters or dimensions."
                ));
            }
            // Plausible's docs: "Requires non-empty `dimensions`".
            Metric::Percentage if dims.is_empty() => {
                return err(format!("Metric `{m}` can only be queried with dimensions."));
            }
            _ => {}
        }
    }
    let event_dims: Vec<String> = dims
        .iter()
        .filter(|d| d.is_event())
        .map(Dimension::name)
        .collect();
    // `event:page` alone is the exception (session metrics of the visits entering there).
    if event_dims != ["event:page"] {
        let session_metrics: Vec<&str> = metrics
            .iter()
            .filter(|m| is_session_metric(**m))
            .map(|m| m.as_str())
            .collect();
        let event_metrics: Vec<&str> = metrics
            .iter()
            .filter(|m| is_event_metric(**m))
            .map(|m| m.as_str())
            .collect();
        let session_dims: Vec<String> = dims
            .iter()
            .filter(|d| is_session_dimension(d))
            .map(Dimension::name)
            .collect();
        if !session_metrics.is_empty() && !event_dims.is_empty() {
            return err(format!(
                "Session metric(s) {} cannot be queried along with event dimension(s) {}",
                ticked(&session_metrics),
                ticked(&event_dims)
            ));
        }
        if !event_metrics.is_empty() && !session_dims.is_empty() {
            return err(format!(
                "Event metric(s) {} cannot be queried along with session dimension(s) {}",
                ticked(&event_metrics),
                ticked(&session_dims)
            ));
        }
    }
    if include.time_labels && !dims.iter().any(Dimension::is_time) {
        return err("Invalid include.time_labels: requires a time dimension.");
    }
    Ok(())
}

fn parse_order_by(
    v: Option<&Value>,
    metrics: &[Metric],
    dims: &[Dimension],
) -> Result<Vec<OrderBy>, QueryError> {
    let items = match v {
        None | Some(Value::Null) => {
            let mut out = Vec::new();
            if let Some(t) = dims.iter().find(|d| d.is_time()) {
                out.push(OrderBy {
                    target: OrderTarget::Dimension(t.clone()),
                    desc: false,
                });
            }
            if let Some(m) = metrics.first() {
                out.push(OrderBy {
                    target: OrderTarget::Metric(*m),
                    desc: true,
                });
            }
            return Ok(out);
        }
        Some(Value::Array(items)) => items,
        Some(v) => {
            return err(format!(
                "order_by must be a list of [name, \"asc\"|\"desc\"] pairs, got {}",
                json_type(v)
            ));
        }
    };
    let mut out: Vec<OrderBy> = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let pair = it.as_array().map(Vec::as_slice);
        let Some([Value::String(name), Value::String(dir)]) = pair else {
            return err(format!(
                "order_by[{i}] must be a [name, \"asc\"|\"desc\"] pair"
            ));
        };
        let desc = match dir.as_str() {
            "asc" => false,
            "desc" => true,
            other => {
                return err(format!(
                    "order_by[{i}]: direction must be \"asc\" or \"desc\", got '{other}'"
                ));
            }
        };
        let target = if let Some(m) = metrics.iter().find(|m| m.as_str() == name) {
            OrderTarget::Metric(*m)
        } else if let Some(d) = dims.iter().find(|d| d.name() == *name) {
            OrderTarget::Dimension(d.clone())
        } else {
            // Plausible's text, with the entry as Elixir prints it: a metric is an atom,
            // a dimension a string.
            let value = if name.parse::<Metric>().is_ok() {
                format!(":{name}")
            } else {
                format!("{name:?}")
            };
            return err(format!(
                "Invalid order_by entry '{{{value}, :{dir}}}'. Entry is not a queried metric or dimension."
            ));
        };
        if out.iter().any(|o| o.target == target) {
            return err(format!("order_by lists '{name}' twice"));
        }
        out.push(OrderBy { target, desc });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::{Goal, GoalKind, RangeKind, TimeGranularity};
    use super::*;
    use chrono_tz::Tz;

    fn site() -> SiteContext {
        SiteContext {
            domain: "example.com".into(),
            timezone: Tz::UTC,
            goals: vec![Goal {
                kind: GoalKind::Page,
                pattern: "/blog*".into(),
                display_name: "Visit /blog*".into(),
            }],
            stats_start: None,
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-03-15T12:00:00Z")
            .expect("now")
            .with_timezone(&Utc)
    }

    fn parse(v: Value) -> Result<Query, QueryError> {
        parse_query(&v, &site(), now())
    }

    fn base(extra: Value) -> Value {
        let mut q = json!({"site_id": "example.com", "metrics": ["visitors"], "date_range": "7d"});
        if let (Some(o), Value::Object(e)) = (q.as_object_mut(), extra) {
            o.extend(e);
        }
        q
    }

    fn fails(extra: Value, needle: &str) {
        match parse(base(extra)) {
            Ok(_) => panic!("expected an error containing {needle:?}"),
            Err(e) => assert!(
                e.message.contains(needle),
                "{:?} lacks {needle:?}",
                e.message
            ),
        }
    }

    #[test]
    fn minimal_query_and_echo() {
        let q = parse(base(json!({}))).expect("valid");
        assert_eq!(q.metrics, vec![Metric::Visitors]);
        assert_eq!(q.pagination, Pagination::default());
        assert_eq!(q.range.kind, RangeKind::Shorthand("7d".into()));
        assert_eq!(
            q.echo,
            json!({
                "site_id": "example.com",
                "metrics": ["visitors"],
                "date_range": ["2024-03-08T00:00:00Z", "2024-03-14T23:59:59Z"],
                "dimensions": [],
                "filters": [],
                "order_by": [["visitors", "desc"]],
                "include": {},
                "pagination": {"limit": 10000, "offset": 0},
            })
        );
    }

    #[test]
    fn top_level_and_is_a_list_of_filters() {
        let page = json!(["is", "event:page", ["/pricing"]]);
        let source = json!(["is", "visit:source", ["Google"]]);
        let flat = parse(base(json!({"filters": [page.clone(), source.clone()]}))).expect("flat");
        let nested = parse(base(
            json!({"filters": [["and", [page.clone(), ["or", [source.clone()]]]]]}),
        ))
        .expect("nested");
        assert_eq!(nested.filters, flat.filters);
        assert_eq!(nested.filters.len(), 2);
        // The echo keeps the query as it was sent.
        assert_eq!(
            nested.echo["filters"],
            json!([["and", [page, ["or", [source]]]]])
        );
        // An `or` of two stays one filter.
        let or = parse(base(json!({"filters": [["or", [["is", "event:page", ["/a"]], ["is", "event:page", ["/b"]]]]]})))
            .expect("or");
        assert_eq!(or.filters.len(), 1);
    }

    #[test]
    fn site_id_rules() {
        assert_eq!(site_id_of(&json!({"site_id": "a.com"})), Ok("a.com"));
        assert!(
            site_id_of(&json!({}))
                .expect_err("missing")
                .message
                .contains("site_id is required")
        );
        assert!(
            site_id_of(&json!({"site_id": 3}))
                .expect_err("num")
                .message
                .contains("a number")
        );
        assert!(
            site_id_of(&json!([1]))
                .expect_err("list")
                .message
                .contains("JSON object")
        );
    }

    #[test]
    fn metric_errors() {
        fails(
            json!({"metrics": ["visitor"]}),
            "unknown metric 'visitor' — did you mean 'visitors'?",
        );
        fails(json!({"metrics": []}), "metrics must not be empty");
        fails(
            json!({"metrics": "visitors"}),
            "metrics must be a list of strings, got a string",
        );
        fails(
            json!({"metrics": [1]}),
            "metrics[0] must be a string, got a number",
        );
        fails(json!({"metrics": ["visits", "visits"]}), "listed twice");
        fails(
            json!({"metrics": ["percentage"]}),
            "Metric `percentage` can only be queried with dimensions.",
        );
        fails(
            json!({"metrics": ["conversion_rate"]}),
            "Metric `conversion_rate` can only be queried with event:goal filters or dimensions.",
        );
        fails(
            json!({"metrics": ["time_on_page"]}),
            "Metric `time_on_page` can only be queried with event:page filters or dimensions.",
        );
        fails(
            json!({"metrics": ["scroll_depth"]}),
            "Metric `scroll_depth` can only be queried with event:page filters or dimensions.",
        );
        fails(
            json!({"metrics": ["bounce_rate"], "dimensions": ["event:name"]}),
            "Session metric(s) `bounce_rate` cannot be queried along with event dimension(s) `event:name`",
        );
        fails(
            json!({"metrics": ["visit_duration"], "dimensions": ["event:props:plan"]}),
            "Session metric(s) `visit_duration` cannot be queried along with event dimension(s) `event:props:plan`",
        );
        let q = parse(base(json!({"metrics": ["bounce_rate", "time_on_page", "scroll_depth"], "dimensions": ["event:page"]})))
            .expect("session metric with event:page");
        assert_eq!(q.metrics.len(), 3);
        parse(base(
            json!({"metrics": ["conversion_rate"], "filters": [["is", "event:goal", ["Signup"]]]}),
        ))
        .expect("conversion_rate with goal filter");
        parse(base(
            json!({"metrics": ["conversion_rate"], "dimensions": ["event:goal"]}),
        ))
        .expect("conversion_rate with goal dimension");
        parse(base(
            json!({"metrics": ["visits"], "dimensions": ["event:name"]}),
        ))
        .expect("visits may use event dimensions");
    }

    /// Plausible's v2 combination rules with its texts: cases from its
    /// `query_validations_test.exs`, `query_parser_test.exs` and `table_decider_test.exs`.
    #[test]
    fn v2_rules_as_plausible() {
        let is_err = |extra: Value, text: &str| match parse(base(extra.clone())) {
            Ok(_) => panic!("{extra} should be refused with {text:?}"),
            Err(e) => assert_eq!(e.message, text, "{extra}"),
        };
        let ok = |extra: Value| {
            if let Err(e) = parse(base(extra.clone())) {
                panic!("{extra} should be accepted, got {:?}", e.message);
            }
        };
        // views_per_visit: no event:page filter (at any depth), no dimensions.
        is_err(
            json!({"metrics": ["views_per_visit"], "filters": [["is", "event:page", ["/something"]]]}),
            "Metric `views_per_visit` cannot be queried with a filter on `event:page`.",
        );
        is_err(
            json!({"metrics": ["views_per_visit"], "filters": [["not", ["is", "event:page", ["/a"]]]]}),
            "Metric `views_per_visit` cannot be queried with a filter on `event:page`.",
        );
        is_err(
            json!({"metrics": ["views_per_visit"], "dimensions": ["event:name"]}),
            "Metric `views_per_visit` cannot be queried with `dimensions`.",
        );
        is_err(
            json!({"metrics": ["views_per_visit"], "dimensions": ["time:day"]}),
            "Metric `views_per_visit` cannot be queried with `dimensions`.",
        );
        ok(
            json!({"metrics": ["views_per_visit"], "filters": [["is", "visit:source", ["Google"]]]}),
        );
        // Session metrics and event dimensions: only event:page alone is allowed.
        ok(json!({"metrics": ["bounce_rate", "scroll_depth"], "dimensions": ["event:page"]}));
        ok(json!({"metrics": ["bounce_rate"], "dimensions": ["visit:exit_page"]}));
        ok(json!({"metrics": ["scroll_depth"], "dimensions": ["event:page", "visit:device"]}));
        is_err(
            json!({"metrics": ["bounce_rate"], "dimensions": ["event:hostname"]}),
            "Session metric(s) `bounce_rate` cannot be queried along with event dimension(s) `event:hostname`",
        );
        is_err(
            json!({"metrics": ["visitors", "bounce_rate", "visit_duration"], "dimensions": ["event:page", "event:name"]}),
            "Session metric(s) `bounce_rate`, `visit_duration` cannot be queried along with event dimension(s) `event:page`, `event:name`",
        );
        // Event metrics and session-only dimensions.
        is_err(
            json!({"metrics": ["events"], "dimensions": ["visit:exit_page"]}),
            "Event metric(s) `events` cannot be queried along with session dimension(s) `visit:exit_page`",
        );
        is_err(
            json!({"metrics": ["visitors", "pageviews"], "dimensions": ["visit:entry_page"]}),
            "Event metric(s) `pageviews` cannot be queried along with session dimension(s) `visit:entry_page`",
        );
        ok(json!({"metrics": ["visitors", "visits"], "dimensions": ["visit:entry_page"]}));
        ok(json!({"metrics": ["pageviews"], "dimensions": ["event:page", "visit:entry_page"]}));
        // scroll_depth needs the event:page filter at the top level; time_on_page anywhere.
        is_err(
            json!({"metrics": ["scroll_depth"], "filters": [["not", ["is", "event:page", ["/"]]]]}),
            "Metric `scroll_depth` can only be queried with event:page filters or dimensions.",
        );
        ok(json!({"metrics": ["scroll_depth"], "filters": [["is", "event:page", ["/"]]]}));
        ok(json!({"metrics": ["time_on_page"], "filters": [["not", ["is", "event:page", ["/"]]]]}));
        // conversion_rate: a goal filter anywhere or the goal dimension; custom property
        // filters then only at the top level.
        is_err(
            json!({"metrics": ["conversion_rate"], "dimensions": ["event:page"],
                "filters": [["is", "event:props:author", ["Uku"]]]}),
            "Metric `conversion_rate` can only be queried with event:goal filters or dimensions.",
        );
        is_err(
            json!({"metrics": ["conversion_rate"], "dimensions": ["event:goal"],
                "filters": [["not", ["is", "event:props:foo", ["bar"]]]]}),
            "Invalid filters. When `conversion_rate` or `group_conversion_rate` metrics are used, custom property filters can only be used on top level.",
        );
        ok(
            json!({"metrics": ["conversion_rate"], "dimensions": ["event:goal"],
            "filters": [["is", "event:props:foo", ["bar"]]]}),
        );
        // Revenue metrics need no goal (without one, every revenue goal counts: Plausible's
        // `query_parser_test.exs` "revenue metrics"), but are event metrics (`TableDecider`).
        ok(json!({"metrics": ["total_revenue", "average_revenue"]}));
        ok(json!({"metrics": ["total_revenue"], "dimensions": ["event:goal", "visit:source"]}));
        ok(json!({"metrics": ["average_revenue", "bounce_rate"], "dimensions": ["event:page"]}));
        is_err(
            json!({"metrics": ["visitors", "total_revenue"], "dimensions": ["visit:entry_page"]}),
            "Event metric(s) `total_revenue` cannot be queried along with session dimension(s) `visit:entry_page`",
        );
        // event:goal and event:hostname filters only at the top level.
        is_err(
            json!({"filters": [["or", [["is", "event:goal", ["Signup"]], ["is", "event:page", ["/"]]]]]}),
            "Invalid filters. Dimension `event:goal` can only be filtered at the top level.",
        );
        is_err(
            json!({"filters": [["not", ["is", "event:hostname", ["a.com"]]]]}),
            "Invalid filters. Dimension `event:hostname` can only be filtered at the top level.",
        );
        ok(
            json!({"filters": [["is", "event:goal", ["Signup"]], ["is", "event:hostname", ["a.com"]]]}),
        );
        // visit:country `is`/`is_not` take 2-letter codes.
        is_err(
            json!({"metrics": ["pageviews"], "filters": [["is", "visit:country", ["USA"]]]}),
            "Invalid visit:country filter, visit:country needs to be a valid 2-letter country code.",
        );
        ok(json!({"filters": [["is_not", "visit:country", ["EE", "DE"]]]}));
        ok(json!({"filters": [["contains", "visit:country", ["E"]]]}));
        // order_by names a queried metric or dimension.
        is_err(
            json!({"order_by": [["event:name", "desc"]]}),
            "Invalid order_by entry '{\"event:name\", :desc}'. Entry is not a queried metric or dimension.",
        );
        // The Stats API v1 handlers check their own rules: v1 timeseries and breakdowns
        // ask views_per_visit by time and pageviews by entry page.
        let v1 = |extra: Value| parse_v1_query(&base(extra), &site(), now());
        assert!(v1(json!({"metrics": ["views_per_visit"], "dimensions": ["time:day"]})).is_ok());
        assert!(v1(json!({"metrics": ["pageviews"], "dimensions": ["visit:entry_page"]})).is_ok());
    }

    #[test]
    fn dimension_errors() {
        fails(
            json!({"dimensions": ["visit:sauce"]}),
            "unknown dimension 'visit:sauce'",
        );
        fails(
            json!({"dimensions": ["visit:sorce"]}),
            "did you mean 'visit:source'?",
        );
        fails(
            json!({"dimensions": ["time:day", "time:week"]}),
            "only one time dimension",
        );
        fails(
            json!({"dimensions": ["event:page", "event:page"]}),
            "listed twice",
        );
        fails(
            json!({"dimensions": "event:page"}),
            "dimensions must be a list",
        );
        let q = parse(base(
            json!({"dimensions": ["time", "visit:screen", "event:props:plan"]}),
        ))
        .expect("dims");
        assert_eq!(
            q.dimensions,
            vec![
                Dimension::Time(TimeGranularity::Auto),
                Dimension::Visit(VisitAttr::Device),
                Dimension::EventProps("plan".into())
            ]
        );
        // 7d resolves "time" to days.
        assert_eq!(q.time_dimension(), Some((0, TimeGranularity::Day)));
    }

    #[test]
    fn filters() {
        let q = parse(base(json!({"filters": [
            ["is", "event:page", ["/a", "/b"]],
            ["contains", "visit:source", ["oo"], {"case_sensitive": false}],
            ["or", [["matches", "event:page", ["^/x"]], ["not", ["is_not", "visit:city", [2643743]]]]],
            ["is", "event:goal", ["Signup", 5]]
        ]}))).expect("filters");
        assert_eq!(q.filters.len(), 4);
        assert_eq!(
            q.filters[0],
            Filter::Is {
                dim: Dimension::EventPage,
                values: vec!["/a".into(), "/b".into()],
                case_sensitive: true
            }
        );
        assert_eq!(
            q.filters[1],
            Filter::Contains {
                dim: Dimension::Visit(VisitAttr::Source),
                values: vec!["oo".into()],
                case_sensitive: false
            }
        );
        let Filter::Or(parts) = &q.filters[2] else {
            panic!("or")
        };
        assert!(
            matches!(&parts[1], Filter::Not(inner) if matches!(**inner, Filter::IsNot { ref values, .. } if values == &vec!["2643743".to_string()]))
        );
        assert_eq!(
            q.echo["filters"][1],
            json!(["contains", "visit:source", ["oo"], {"case_sensitive": false}])
        );
        assert_eq!(
            q.echo["filters"][3],
            json!(["is", "event:goal", ["Signup", "5"]])
        );

        fails(
            json!({"filters": [["equals", "event:page", ["/"]]]}),
            "filters[0]: invalid filter operator 'equals'",
        );
        fails(
            json!({"filters": [["is", "time:day", ["2024-01-01"]]]}),
            "time dimensions cannot be filtered",
        );
        fails(
            json!({"filters": [["is", "visit:sauce", ["x"]]]}),
            "filters[0]: unknown dimension 'visit:sauce'",
        );
        fails(
            json!({"filters": [["is", "event:page", []]]}),
            "must not be empty",
        );
        fails(
            json!({"filters": [["is", "event:page", [1]]]}),
            "value [0] must be a string, got a number",
        );
        fails(
            json!({"filters": [["is", "event:page", "/"]]}),
            "values must be a list",
        );
        fails(
            json!({"filters": [["is", "visit:city", ["London"]]]}),
            "GeoName ids",
        );
        fails(
            json!({"filters": [["matches", "event:goal", ["x"]]]}),
            "not supported for event:goal",
        );
        fails(
            json!({"filters": [["is", "event:page", ["/"], {"case": false}]]}),
            "unknown filter modifier 'case'",
        );
        fails(
            json!({"filters": [["is", "event:page", ["/"], {"case_sensitive": "no"}]]}),
            "must be a boolean",
        );
        fails(
            json!({"filters": [["and", []]]}),
            "needs at least one filter",
        );
        fails(json!({"filters": [["not"]]}), "'not' takes one filter");
        fails(
            json!({"filters": [["or", [["is", "event:page"]]]]}),
            "filters[0][1][0]",
        );
        fails(
            json!({"filters": [["has_done", ["is", "event:name", ["x"]]]]}),
            "not supported",
        );
        fails(
            json!({"filters": {"page": "/"}}),
            "filters must be a list, got an object",
        );
        fails(json!({"filters": ["is"]}), "filters[0] must be a list");
    }

    #[test]
    fn order_by_rules() {
        let q = parse(base(json!({"metrics": ["visitors", "pageviews"], "dimensions": ["time:day", "visit:source"]})))
            .expect("defaults");
        assert_eq!(
            q.order_by,
            vec![
                OrderBy {
                    target: OrderTarget::Dimension(Dimension::Time(TimeGranularity::Day)),
                    desc: false
                },
                OrderBy {
                    target: OrderTarget::Metric(Metric::Visitors),
                    desc: true
                },
            ]
        );
        assert_eq!(
            q.echo["order_by"],
            json!([["time:day", "asc"], ["visitors", "desc"]])
        );
        let q = parse(base(
            json!({"dimensions": ["visit:source"], "order_by": [["visit:source", "asc"]]}),
        ))
        .expect("ok");
        assert_eq!(q.order_by.len(), 1);
        fails(
            json!({"order_by": [["pageviews", "desc"]]}),
            "Invalid order_by entry '{:pageviews, :desc}'. Entry is not a queried metric or dimension.",
        );
        fails(
            json!({"order_by": [["visitors", "up"]]}),
            "direction must be",
        );
        fails(json!({"order_by": [["visitors"]]}), "order_by[0] must be");
        fails(json!({"order_by": "visitors"}), "order_by must be a list");
    }

    #[test]
    fn listed_buckets_are_bounded() {
        // 11 years by hour fit; the year 9999 by hour, by day with labels, do not.
        let hours = json!({"dimensions": ["time:hour"], "include": {"time_labels": true},
            "date_range": ["2020-01-01", "2030-12-31"]});
        assert!(parse(base(hours)).is_ok());
        fails(
            json!({"dimensions": ["time:hour"], "include": {"time_labels": true},
                "date_range": ["2026-01-01", "9999-12-31"]}),
            "time:hour buckets; time labels and comparisons list at most 100000",
        );
        fails(
            json!({"dimensions": ["time:day"], "date_range": ["1900-01-01", "2300-12-31"],
                "include": {"comparisons": {"mode": "previous_period"}}}),
            "time:day buckets",
        );
        // Without labels or comparisons only buckets with data are answered: no bound.
        let rows_only =
            json!({"dimensions": ["time:hour"], "date_range": ["2026-01-01", "9999-12-31"]});
        assert!(parse(base(rows_only)).is_ok());
        let months = json!({"dimensions": ["time:month"], "include": {"time_labels": true},
            "date_range": ["2026-01-01", "9999-12-31"]});
        assert!(parse(base(months)).is_ok());
    }

    #[test]
    fn include_and_pagination() {
        let q = parse(base(json!({"dimensions": ["time"], "include": {"time_labels": true, "total_rows": true, "imports": true},
            "pagination": {"limit": 5, "offset": 10}}))).expect("ok");
        assert!(q.include.time_labels && q.include.total_rows && q.include.imports);
        assert_eq!(
            q.pagination,
            Pagination {
                limit: 5,
                offset: 10
            }
        );
        fails(
            json!({"include": {"time_labels": true}}),
            "Invalid include.time_labels: requires a time dimension.",
        );
        fails(
            json!({"include": {"comparisons": {}}}),
            "include.comparisons.mode is required",
        );
        fails(
            json!({"include": {"total_rows": 1}}),
            "include.total_rows must be a boolean",
        );
        fails(
            json!({"pagination": {"limit": 0}}),
            "pagination.limit must be an integer from 1 to 10000",
        );
        fails(json!({"pagination": {"limit": 10001}}), "pagination.limit");
        fails(
            json!({"pagination": {"offset": -1}}),
            "pagination.offset must be an integer >= 0",
        );
        fails(
            json!({"pagination": {"page": 2}}),
            "unknown key 'page' in pagination",
        );
    }

    #[test]
    fn top_level_rules() {
        fails(
            json!({"metric": ["visitors"]}),
            "unknown key 'metric' in query — did you mean 'metrics'?",
        );
        let e =
            parse(json!({"site_id": "example.com", "date_range": "day"})).expect_err("no metrics");
        assert_eq!(e.message, "metrics is required");
        assert_eq!(e.code(), "invalid_query");
        let e =
            parse(json!({"site_id": "example.com", "metrics": ["visits"]})).expect_err("no range");
        assert_eq!(e.message, "date_range is required");
        fails(json!({"date_range": "week"}), "date_range must be one of");
    }
}
