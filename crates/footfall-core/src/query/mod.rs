//! Stats API v2 query model (DESIGN §4, §5): a JSON query is parsed, validated and resolved
//! (date range in the site's timezone, goals, default order) into a [`Query`] that storage
//! backends turn into SQL. No I/O here.

mod compare;
mod money;
mod parse;
mod time;

pub use compare::change;
pub use money::money_value;
pub use parse::{QUERY_KEYS, parse_query, parse_v1_query, site_id_of};
pub use time::{
    bucket_label_format, local_day_start, offset_segments, resolve_granularity, time_labels,
};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

/// A query the caller got wrong; the message names the bad part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    pub message: String,
}

impl QueryError {
    pub fn new(message: impl Into<String>) -> Self {
        QueryError {
            message: message.into(),
        }
    }

    /// Stable error code for the JSON error body.
    pub fn code(&self) -> &'static str {
        "invalid_query"
    }
}

/// What the query needs to know about the site.
#[derive(Debug, Clone)]
pub struct SiteContext {
    pub domain: String,
    pub timezone: Tz,
    pub goals: Vec<Goal>,
    /// The local day of the site's first event, where the `"all"` date range starts (as
    /// Plausible's `stats_start_date`; today when it has none). Read from the store only
    /// for queries over `"all"`; `None` (not read) starts it at 2000-01-01.
    pub stats_start: Option<chrono::NaiveDate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoalKind {
    Page,
    Event,
}

/// A configured goal. Custom event names are goals without configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Goal {
    pub kind: GoalKind,
    /// Page path with `*` wildcards (page goals) or the event name.
    pub pattern: String,
    /// `Visit /blog*` or the event name.
    pub display_name: String,
}

/// Converts a page-goal pattern into an anchored regex (RE2 syntax). As in Plausible,
/// `**` matches anything and `*` anything but `/`.
pub fn wildcard_to_regex(pattern: &str) -> String {
    let mut out = String::from("^");
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '*' {
            if chars.peek() == Some(&'*') {
                chars.next();
                out.push_str(".*");
            } else {
                out.push_str("[^/]*");
            }
        } else {
            if "\\.+?()[]{}|^$".contains(c) {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out.push('$');
    out
}

macro_rules! name_enum {
    ($(#[$m:meta])* $name:ident { $($var:ident => $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($var),* }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$var),*];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $s),* }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

name_enum!(
    /// A Stats API metric.
    Metric {
        Visitors => "visitors",
        Visits => "visits",
        Pageviews => "pageviews",
        ViewsPerVisit => "views_per_visit",
        BounceRate => "bounce_rate",
        VisitDuration => "visit_duration",
        Events => "events",
        Percentage => "percentage",
        ConversionRate => "conversion_rate",
        GroupConversionRate => "group_conversion_rate",
        TimeOnPage => "time_on_page",
        ScrollDepth => "scroll_depth",
        TotalRevenue => "total_revenue",
        AverageRevenue => "average_revenue",
    }
);

impl Metric {
    /// Metrics Plausible refuses to mix with event dimensions other than page/hostname.
    pub fn is_session_only(self) -> bool {
        matches!(
            self,
            Metric::BounceRate | Metric::ViewsPerVisit | Metric::VisitDuration
        )
    }

    /// Metrics computed over visits (sessions starting in range) rather than events.
    pub fn is_visit_level(self) -> bool {
        self.is_session_only() || self == Metric::Visits
    }

    /// `total_revenue` and `average_revenue`: money values (`{value, currency, short,
    /// long}`) over the revenue of the matching custom events.
    pub fn is_revenue(self) -> bool {
        matches!(self, Metric::TotalRevenue | Metric::AverageRevenue)
    }
}

impl FromStr for Metric {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self, QueryError> {
        Metric::ALL
            .iter()
            .copied()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Metric::ALL.iter().map(|m| m.as_str()).collect();
                QueryError::new(format!(
                    "unknown metric '{s}'{}",
                    parse::suggestion(s, &names)
                ))
            })
    }
}

name_enum!(
    /// A `visit:*` attribute (the session's first event's).
    VisitAttr {
        EntryPage => "entry_page",
        EntryPageHostname => "entry_page_hostname",
        ExitPage => "exit_page",
        ExitPageHostname => "exit_page_hostname",
        Source => "source",
        Referrer => "referrer",
        Channel => "channel",
        UtmSource => "utm_source",
        UtmMedium => "utm_medium",
        UtmCampaign => "utm_campaign",
        UtmContent => "utm_content",
        UtmTerm => "utm_term",
        Device => "device",
        Browser => "browser",
        BrowserVersion => "browser_version",
        Os => "os",
        OsVersion => "os_version",
        Country => "country",
        Region => "region",
        City => "city",
        CountryName => "country_name",
        RegionName => "region_name",
        CityName => "city_name",
        Org => "org",
        Label => "label",
    }
);

/// Which API a query came in through: Plausible's Stats API v2 and its v1 show visits with
/// an empty attribute differently (`VisitAttr::empty_value`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Api {
    #[default]
    V2,
    V1,
}

/// How a breakdown treats visits whose attribute is empty ('' or city 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmptyValue {
    /// Keep the row as stored (source is literally "Direct / None"; an unknown country
    /// is a "" row in the v2 API, as Plausible's v2 shows it).
    Keep,
    /// Leave such visits out of the breakdown (Plausible's v1 breakdowns do this for UTM,
    /// location and entry/exit pages; footfall's `visit:org` everywhere).
    Exclude,
    /// Show them under this label: "(not set)" for an unknown browser, OS, device or (v2)
    /// UTM value, "Direct / None" for no referrer, "Direct" for no channel (Plausible's
    /// labels). An `is` filter names them by "(not set)" (see `Dimension::empty_aliases`).
    Shown(&'static str),
}

/// Plausible's label for an unknown browser, OS, device, UTM value.
pub const NOT_SET: &str = "(not set)";
/// Plausible's label for a visit without a referrer (also the stored direct source).
pub const DIRECT_NONE: &str = "Direct / None";
/// Plausible's label for a visit without an acquisition channel.
pub const NO_CHANNEL: &str = "Direct";

impl VisitAttr {
    /// The denormalised `events` column, or None when computed per session (exit page).
    pub fn column(self) -> Option<&'static str> {
        use VisitAttr::*;
        Some(match self {
            EntryPage => "entry_page",
            EntryPageHostname => "entry_hostname",
            ExitPage | ExitPageHostname => return None,
            Source => "source",
            Referrer => "referrer",
            Channel => "channel",
            UtmSource => "utm_source",
            UtmMedium => "utm_medium",
            UtmCampaign => "utm_campaign",
            UtmContent => "utm_content",
            UtmTerm => "utm_term",
            Device => "device",
            Browser => "browser",
            BrowserVersion => "browser_version",
            Os => "os",
            OsVersion => "os_version",
            Country => "country",
            Region => "region",
            City => "city",
            CountryName => "country_name",
            RegionName => "region_name",
            CityName => "city_name",
            Org => "org",
            Label => "label",
        })
    }

    /// Whether the store keeps this attribute's unknown value only as the empty text,
    /// never as the text "(not set)" (the store writer maps it to empty): a breakdown can
    /// then group the stored values and show the empty one as "(not set)" afterwards,
    /// instead of relabelling every row before grouping. Values footfall derives itself
    /// (device, browser, OS and versions) and the site's own labels; not UTM values,
    /// referrers or sources, which hold what visitors sent.
    pub fn unknown_stored_empty(self) -> bool {
        use VisitAttr::*;
        matches!(
            self,
            Device | Browser | BrowserVersion | Os | OsVersion | Label
        )
    }

    /// How a breakdown by this attribute shows visits where it is empty. The v2 API as
    /// Plausible's v2 (`Plausible.Stats.SQL.Expression.select_dimension`: UTM values,
    /// device, browser, OS and their versions as "(not set)", referrer and source as
    /// "Direct / None", channel as "Direct", everything else as stored); the v1 API as
    /// Plausible's v1 breakdown, which adds `is_not` filters leaving out empty UTM values,
    /// country, region, city and entry/exit pages (`Plausible.Stats.Legacy.Breakdown`,
    /// `@filter_dimensions_not`). footfall's own `org` is left out by both, its `label`
    /// shown as "(not set)".
    pub fn empty_value(self, api: Api) -> EmptyValue {
        use VisitAttr::*;
        match self {
            Source | EntryPage | ExitPage => EmptyValue::Keep,
            Device | Browser | BrowserVersion | Os | OsVersion | Label => {
                EmptyValue::Shown(NOT_SET)
            }
            Channel => EmptyValue::Shown(NO_CHANNEL),
            Referrer => EmptyValue::Shown(DIRECT_NONE),
            UtmSource | UtmMedium | UtmCampaign | UtmContent | UtmTerm => match api {
                Api::V2 => EmptyValue::Shown(NOT_SET),
                Api::V1 => EmptyValue::Exclude,
            },
            EntryPageHostname | ExitPageHostname | Country | Region | City | CountryName
            | RegionName | CityName => match api {
                Api::V2 => EmptyValue::Keep,
                Api::V1 => EmptyValue::Exclude,
            },
            Org => EmptyValue::Exclude,
        }
    }
}

name_enum!(
    /// Bucket size of a time dimension.
    TimeGranularity {
        Auto => "time",
        Hour => "time:hour",
        Day => "time:day",
        Week => "time:week",
        Month => "time:month",
    }
);

/// A dimension (group key or filter target).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dimension {
    EventPage,
    EventName,
    EventGoal,
    EventHostname,
    EventProps(String),
    Visit(VisitAttr),
    Time(TimeGranularity),
}

impl Dimension {
    /// The label an empty value is shown under in a breakdown (`EmptyValue::Shown`).
    pub fn empty_label(&self, api: Api) -> Option<&'static str> {
        match self {
            Dimension::Visit(a) => match a.empty_value(api) {
                EmptyValue::Shown(label) => Some(label),
                _ => None,
            },
            _ => None,
        }
    }

    /// The `is` / `is_not` filter values that name an empty value, and the value they
    /// then compare with, as Plausible's `WhereBuilder.db_field_val`: "(not set)" on any
    /// page, hostname or visit attribute, "Direct / None" too on the source, referrer and
    /// UTM values (compared as given, before a case-insensitive filter lower-cases them).
    /// footfall stores a direct visit's source as "Direct / None" (Plausible as ""), so
    /// that is what "(not set)" compares with there. `None` for event names, goals,
    /// properties ("(none)" is handled with the property join) and time.
    pub fn empty_aliases(&self) -> Option<(&'static [&'static str], &'static str)> {
        use VisitAttr::*;
        match self {
            Dimension::Visit(Source) => Some((&[NOT_SET], DIRECT_NONE)),
            Dimension::Visit(
                Referrer | UtmSource | UtmMedium | UtmCampaign | UtmContent | UtmTerm,
            ) => Some((&[NOT_SET, DIRECT_NONE], "")),
            Dimension::Visit(_) | Dimension::EventPage | Dimension::EventHostname => {
                Some((&[NOT_SET], ""))
            }
            _ => None,
        }
    }

    pub fn name(&self) -> String {
        match self {
            Dimension::EventPage => "event:page".into(),
            Dimension::EventName => "event:name".into(),
            Dimension::EventGoal => "event:goal".into(),
            Dimension::EventHostname => "event:hostname".into(),
            Dimension::EventProps(k) => format!("event:props:{k}"),
            Dimension::Visit(a) => format!("visit:{}", a.as_str()),
            Dimension::Time(g) => g.as_str().into(),
        }
    }

    /// An `event:*` dimension (restricts to matching events rather than visits).
    pub fn is_event(&self) -> bool {
        matches!(
            self,
            Dimension::EventPage
                | Dimension::EventName
                | Dimension::EventGoal
                | Dimension::EventHostname
                | Dimension::EventProps(_)
        )
    }

    pub fn is_time(&self) -> bool {
        matches!(self, Dimension::Time(_))
    }
}

impl FromStr for Dimension {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self, QueryError> {
        let d = match s {
            "event:page" => Some(Dimension::EventPage),
            "event:name" => Some(Dimension::EventName),
            "event:goal" => Some(Dimension::EventGoal),
            "event:hostname" => Some(Dimension::EventHostname),
            // Legacy name of visit:device.
            "visit:screen" => Some(Dimension::Visit(VisitAttr::Device)),
            _ => None,
        };
        if let Some(d) = d {
            return Ok(d);
        }
        if let Some(key) = s.strip_prefix("event:props:") {
            if key.is_empty() {
                return Err(QueryError::new(
                    "dimension 'event:props:' needs a property name",
                ));
            }
            return Ok(Dimension::EventProps(key.to_string()));
        }
        if let Some(attr) = s.strip_prefix("visit:")
            && let Some(a) = VisitAttr::ALL.iter().find(|a| a.as_str() == attr)
        {
            return Ok(Dimension::Visit(*a));
        }
        if let Some(g) = TimeGranularity::ALL.iter().find(|g| g.as_str() == s) {
            return Ok(Dimension::Time(*g));
        }
        let mut names: Vec<String> = vec![
            "event:page".into(),
            "event:name".into(),
            "event:goal".into(),
            "event:hostname".into(),
        ];
        names.extend(
            VisitAttr::ALL
                .iter()
                .map(|a| format!("visit:{}", a.as_str())),
        );
        names.extend(TimeGranularity::ALL.iter().map(|g| g.as_str().to_string()));
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        Err(QueryError::new(format!(
            "unknown dimension '{s}'{}",
            parse::suggestion(s, &refs)
        )))
    }
}

name_enum!(
    /// A filter operator on a dimension.
    FilterOp {
        Is => "is",
        IsNot => "is_not",
        Contains => "contains",
        ContainsNot => "contains_not",
        Matches => "matches",
        MatchesNot => "matches_not",
    }
);

impl FilterOp {
    pub fn is_negated(self) -> bool {
        matches!(
            self,
            FilterOp::IsNot | FilterOp::ContainsNot | FilterOp::MatchesNot
        )
    }

    /// The positive form (is_not -> is, ...).
    pub fn positive(self) -> FilterOp {
        match self {
            FilterOp::IsNot => FilterOp::Is,
            FilterOp::ContainsNot => FilterOp::Contains,
            FilterOp::MatchesNot => FilterOp::Matches,
            op => op,
        }
    }
}

/// The filter AST. Clauses (`values`) of one leaf are OR-ed; negated operators match
/// when none of the clauses does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    Is {
        dim: Dimension,
        values: Vec<String>,
        case_sensitive: bool,
    },
    IsNot {
        dim: Dimension,
        values: Vec<String>,
        case_sensitive: bool,
    },
    Contains {
        dim: Dimension,
        values: Vec<String>,
        case_sensitive: bool,
    },
    ContainsNot {
        dim: Dimension,
        values: Vec<String>,
        case_sensitive: bool,
    },
    Matches {
        dim: Dimension,
        values: Vec<String>,
        case_sensitive: bool,
    },
    MatchesNot {
        dim: Dimension,
        values: Vec<String>,
        case_sensitive: bool,
    },
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
}

/// A borrowed view of a leaf filter.
#[derive(Debug, Clone, Copy)]
pub struct Leaf<'a> {
    pub op: FilterOp,
    pub dim: &'a Dimension,
    pub values: &'a [String],
    pub case_sensitive: bool,
}

impl Filter {
    pub fn leaf(op: FilterOp, dim: Dimension, values: Vec<String>, case_sensitive: bool) -> Filter {
        match op {
            FilterOp::Is => Filter::Is {
                dim,
                values,
                case_sensitive,
            },
            FilterOp::IsNot => Filter::IsNot {
                dim,
                values,
                case_sensitive,
            },
            FilterOp::Contains => Filter::Contains {
                dim,
                values,
                case_sensitive,
            },
            FilterOp::ContainsNot => Filter::ContainsNot {
                dim,
                values,
                case_sensitive,
            },
            FilterOp::Matches => Filter::Matches {
                dim,
                values,
                case_sensitive,
            },
            FilterOp::MatchesNot => Filter::MatchesNot {
                dim,
                values,
                case_sensitive,
            },
        }
    }

    pub fn as_leaf(&self) -> Option<Leaf<'_>> {
        let (op, dim, values, case_sensitive) = match self {
            Filter::Is {
                dim,
                values,
                case_sensitive,
            } => (FilterOp::Is, dim, values, case_sensitive),
            Filter::IsNot {
                dim,
                values,
                case_sensitive,
            } => (FilterOp::IsNot, dim, values, case_sensitive),
            Filter::Contains {
                dim,
                values,
                case_sensitive,
            } => (FilterOp::Contains, dim, values, case_sensitive),
            Filter::ContainsNot {
                dim,
                values,
                case_sensitive,
            } => (FilterOp::ContainsNot, dim, values, case_sensitive),
            Filter::Matches {
                dim,
                values,
                case_sensitive,
            } => (FilterOp::Matches, dim, values, case_sensitive),
            Filter::MatchesNot {
                dim,
                values,
                case_sensitive,
            } => (FilterOp::MatchesNot, dim, values, case_sensitive),
            _ => return None,
        };
        Some(Leaf {
            op,
            dim,
            values,
            case_sensitive: *case_sensitive,
        })
    }

    /// Whether any leaf satisfies `pred`.
    pub fn any_leaf(&self, pred: &dyn Fn(&Leaf<'_>) -> bool) -> bool {
        match self {
            Filter::And(fs) | Filter::Or(fs) => fs.iter().any(|f| f.any_leaf(pred)),
            Filter::Not(f) => f.any_leaf(pred),
            leaf => leaf.as_leaf().is_some_and(|l| pred(&l)),
        }
    }

    /// The filter in Stats API JSON form.
    pub fn to_json(&self) -> Value {
        match self {
            Filter::And(fs) => {
                serde_json::json!(["and", fs.iter().map(Filter::to_json).collect::<Vec<_>>()])
            }
            Filter::Or(fs) => {
                serde_json::json!(["or", fs.iter().map(Filter::to_json).collect::<Vec<_>>()])
            }
            Filter::Not(f) => serde_json::json!(["not", f.to_json()]),
            leaf => {
                let Some(l) = leaf.as_leaf() else {
                    return Value::Null;
                };
                let mut v = vec![
                    Value::from(l.op.as_str()),
                    Value::from(l.dim.name()),
                    Value::from(l.values.to_vec()),
                ];
                if !l.case_sensitive {
                    v.push(serde_json::json!({"case_sensitive": false}));
                }
                Value::Array(v)
            }
        }
    }
}

/// What an `order_by` entry sorts by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderTarget {
    Metric(Metric),
    Dimension(Dimension),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderBy {
    pub target: OrderTarget,
    pub desc: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pagination {
    pub limit: u32,
    pub offset: u64,
}

impl Default for Pagination {
    fn default() -> Self {
        Pagination {
            limit: 10_000,
            offset: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Include {
    pub time_labels: bool,
    pub total_rows: bool,
    /// Accepted for compatibility; footfall has no imported data.
    pub imports: bool,
}

/// How the date range was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeKind {
    /// "day", "7d", ... as given.
    Shorthand(String),
    /// [from, to] ISO dates.
    Dates,
    /// [from, to] ISO datetimes.
    DateTimes,
}

/// The resolved date range: `[start_utc, end_utc)` plus the site-local days it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateRange {
    pub start_utc: DateTime<Utc>,
    pub end_utc: DateTime<Utc>,
    /// Local day of `start_utc`.
    pub first_day: NaiveDate,
    /// Local day of the last instant of the range.
    pub last_day: NaiveDate,
    pub kind: RangeKind,
}

impl DateRange {
    pub fn is_all(&self) -> bool {
        self.kind == RangeKind::Shorthand("all".into())
    }
}

/// A validated, resolved Stats API v2 query.
#[derive(Debug, Clone)]
pub struct Query {
    pub site_id: String,
    pub metrics: Vec<Metric>,
    pub dimensions: Vec<Dimension>,
    /// Implicit AND.
    pub filters: Vec<Filter>,
    /// Always filled (defaults applied).
    pub order_by: Vec<OrderBy>,
    pub pagination: Pagination,
    pub include: Include,
    /// The range of `include.comparisons`, resolved with the main one: the server runs
    /// the query again over it.
    pub compared_range: Option<DateRange>,
    pub range: DateRange,
    pub timezone: Tz,
    /// The API the query came in through (how breakdowns show empty values).
    pub api: Api,
    /// The normalised query for the response's `query` key.
    pub echo: Value,
}

impl Query {
    /// Position and resolved (never Auto) granularity of the time dimension, if any.
    pub fn time_dimension(&self) -> Option<(usize, TimeGranularity)> {
        self.dimensions
            .iter()
            .enumerate()
            .find_map(|(i, d)| match d {
                Dimension::Time(g) => Some((i, resolve_granularity(*g, &self.range))),
                _ => None,
            })
    }

    pub fn has_dimension(&self, d: &Dimension) -> bool {
        self.dimensions.contains(d)
    }

    /// Whether any filter (at any depth) is on `dim`.
    pub fn filters_on(&self, pred: &dyn Fn(&Dimension) -> bool) -> bool {
        self.filters.iter().any(|f| f.any_leaf(&|l| pred(l.dim)))
    }
}

/// One result row, values in query order.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    pub dimensions: Vec<Value>,
    pub metrics: Vec<Value>,
}

impl ResultRow {
    pub fn to_json(&self) -> Value {
        serde_json::json!({"dimensions": self.dimensions, "metrics": self.metrics})
    }
}

/// What a backend returns for a query; the server adds the `query` echo.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryOutput {
    pub results: Vec<ResultRow>,
    pub meta: serde_json::Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_regex() {
        assert_eq!(wildcard_to_regex("/blog*"), "^/blog[^/]*$");
        assert_eq!(wildcard_to_regex("/blog/**"), "^/blog/.*$");
        assert_eq!(wildcard_to_regex("/a.b"), "^/a\\.b$");
    }

    #[test]
    fn names_roundtrip() {
        for m in Metric::ALL {
            assert_eq!(m.as_str().parse::<Metric>(), Ok(*m));
        }
        for a in VisitAttr::ALL {
            let d: Dimension = format!("visit:{a}").parse().expect("visit dim");
            assert_eq!(d.name(), format!("visit:{a}"));
        }
        assert_eq!(
            "event:props:plan".parse::<Dimension>(),
            Ok(Dimension::EventProps("plan".into()))
        );
        assert_eq!(
            "time:week".parse::<Dimension>(),
            Ok(Dimension::Time(TimeGranularity::Week))
        );
    }
}
