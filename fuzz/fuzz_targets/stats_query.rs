//! A Stats API v2 query body (`POST /api/v2/query`): `query::site_id_of` and
//! `query::parse_query` (parse, validate, resolve the date range in the site's
//! timezone), then what a backend does with a valid query before SQL: the time
//! dimension, the filters' JSON form and, when asked for, the time labels.
//! Properties: no panic; the normalised echo of a valid query is itself a valid query
//! whose echo is the same (parsing is idempotent on its own output).
#![no_main]

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use footfall_core::query::{
    Filter, Goal, GoalKind, QUERY_KEYS, SiteContext, parse_query, site_id_of, time_labels,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::sync::LazyLock;

const ZONES: [Tz; 4] = [
    chrono_tz::UTC,
    chrono_tz::America::New_York,
    chrono_tz::Asia::Kathmandu,
    chrono_tz::Pacific::Apia,
];

static SITES: LazyLock<Vec<SiteContext>> = LazyLock::new(|| {
    ZONES
        .iter()
        .map(|&timezone| SiteContext {
            domain: "example.com".into(),
            timezone,
            goals: vec![
                Goal {
                    kind: GoalKind::Page,
                    pattern: "/blog*".into(),
                    display_name: "Visit /blog*".into(),
                },
                Goal {
                    kind: GoalKind::Event,
                    pattern: "Signup".into(),
                    display_name: "Signup".into(),
                },
            ],
            // All sites but the UTC one start "all" on a known first day.
            stats_start: NaiveDate::from_ymd_opt(2024, 3, 1).filter(|_| timezone != Tz::UTC),
        })
        .collect()
});

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let _ = site_id_of(&body);
    let site = &SITES[data.len() % ZONES.len()];
    let now: DateTime<Utc> = DateTime::from_timestamp(1_710_504_000, 0).expect("fixed now");
    let Ok(q) = parse_query(&body, site, now) else {
        return;
    };
    assert!(!q.metrics.is_empty());
    assert!(q.range.start_utc < q.range.end_utc);
    assert!(q.range.first_day <= q.range.last_day);
    let _ = q.filters.iter().map(Filter::to_json).count();
    if let Some((_, g)) = q.time_dimension()
        && q.include.time_labels
    {
        let _ = time_labels(g, &q.range, q.timezone);
    }
    // The echo as a request: without keys a response may add to it beside the query's.
    let mut request = q.echo.clone();
    if let Some(obj) = request.as_object_mut() {
        obj.retain(|k, _| QUERY_KEYS.contains(&k.as_str()));
    }
    let again = parse_query(&request, site, now)
        .unwrap_or_else(|e| panic!("the echo {} does not parse: {e}", q.echo));
    assert_eq!(again.echo, q.echo, "echo of the echo differs");
});
