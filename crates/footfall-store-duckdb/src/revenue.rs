//! `total_revenue` and `average_revenue` as Plausible's Stats API v2 answers them
//! (`Plausible.Stats.Goal.Revenue.preload/4` and `format_revenue_metric`,
//! `QueryResult.metric_warnings`).
//!
//! Plausible configures a currency per revenue goal and sums each event's amount
//! converted into it. footfall has no goal currencies and no exchange rates: every custom
//! event name is a goal (DESIGN §4), and a goal has revenue in the currencies its events
//! carried (up to the range's end: a result then depends only on events before the end,
//! the result cache's rule). As in Plausible:
//! - the goals that count are those the top-level `event:goal` filters name (all goals
//!   without one);
//! - none of them has revenue: every revenue value is `null`, with the warning
//!   `no_revenue_goals_matching`;
//! - without an `event:goal` dimension they must share one currency: the sum (average)
//!   of the matching events' revenue in it, `0` when no event matched; several
//!   currencies: `null` with `no_single_revenue_currency`;
//! - by `event:goal`, each row in its goal's currency, `null` for a goal without revenue
//!   (and, footfall's case, with `no_single_revenue_currency` for a goal whose events
//!   carried several currencies).
//!
//! The average is over the matching events that carry revenue (SQL `avg` skips NULLs, as
//! ClickHouse's `avg` over Plausible's nullable revenue column).

use footfall_core::query::{Dimension, Query, ResultRow, money_value};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Plausible's codes and texts (`QueryResult`, `@revenue_metrics_warnings`).
const NO_GOALS: (&str, &str) = (
    "no_revenue_goals_matching",
    "Revenue metrics are null as there are no matching revenue goals.",
);
const MIXED: (&str, &str) = (
    "no_single_revenue_currency",
    "Revenue metrics are null as there are multiple currencies for the selected event:goals.",
);

/// Revenue currencies by custom event name, of the goals a query's `event:goal` filters
/// select (`Builder::revenue_currencies_sql`).
pub(crate) type GoalCurrencies = BTreeMap<String, BTreeSet<String>>;

/// The currency a row's revenue is shown in: `Err` with the warning when there is none.
type RowCurrency<'a> = Result<&'a str, Option<(&'static str, &'static str)>>;

fn single(set: Option<&BTreeSet<String>>) -> RowCurrency<'_> {
    match set {
        Some(s) if s.len() == 1 => s.iter().next().map(String::as_str).ok_or(None),
        Some(s) if s.len() > 1 => Err(Some(MIXED)),
        _ => Err(None),
    }
}

/// Turns the revenue metrics' plain sums and averages in `results` into money values (or
/// `null`) and adds `meta.metric_warnings` when they cannot be computed.
pub(crate) fn apply(
    matching: &GoalCurrencies,
    q: &Query,
    results: &mut [ResultRow],
    meta: &mut Map<String, Value>,
) {
    let at: Vec<usize> = q
        .metrics
        .iter()
        .enumerate()
        .filter(|(_, m)| m.is_revenue())
        .map(|(j, _)| j)
        .collect();
    let union: BTreeSet<String> = matching.values().flat_map(|s| s.iter().cloned()).collect();
    let goal_dim = q.dimensions.iter().position(|d| *d == Dimension::EventGoal);
    let mut warning = None;
    for row in results.iter_mut() {
        let currency = if union.is_empty() {
            Err(Some(NO_GOALS))
        } else if let Some(gi) = goal_dim {
            let label = row.dimensions.get(gi).and_then(Value::as_str);
            single(label.and_then(|l| matching.get(l)))
        } else {
            single(Some(&union))
        };
        for &j in &at {
            let Some(v) = row.metrics.get_mut(j) else {
                continue;
            };
            *v = match currency {
                Ok(c) => money_value(v.as_f64().unwrap_or(0.0), c),
                Err(_) => Value::Null,
            };
        }
        if let Err(Some(w)) = currency {
            warning.get_or_insert(w);
        }
    }
    // An aggregate always has its row; a breakdown without rows still says why revenue
    // would not be shown.
    if results.is_empty() && union.is_empty() {
        warning = Some(NO_GOALS);
    } else if results.is_empty() && goal_dim.is_none() && union.len() > 1 {
        warning = Some(MIXED);
    }
    if let Some((code, text)) = warning {
        let warnings: Map<String, Value> = at
            .iter()
            .map(|&j| {
                (
                    q.metrics[j].as_str().to_string(),
                    json!({"code": code, "warning": text}),
                )
            })
            .collect();
        meta.insert("metric_warnings".into(), Value::Object(warnings));
    }
}
