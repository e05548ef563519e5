//! `include.comparisons`: the same query over an earlier range, as Plausible's dashboard
//! asks for it (its Stats API v2 keeps this internal), and each row's change.

use super::time::{local_day_start, resolve_range};
use super::{DateRange, Metric, QueryError, RangeKind};
use chrono::{DateTime, Days, Duration, Months, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value, json};

/// Which earlier range a query is compared with.
#[derive(Debug, Clone, PartialEq)]
pub enum ComparisonMode {
    /// The range of the same length just before.
    PreviousPeriod,
    /// The same days a year before.
    YearOverYear,
    /// A `date_range` of its own (already resolved).
    Custom(DateRange),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Comparisons {
    pub mode: ComparisonMode,
    /// Shift by whole weeks (7-day multiples; 52 weeks for a year), so Mondays are
    /// compared with Mondays.
    pub match_day_of_week: bool,
}

impl Comparisons {
    /// The `include.comparisons` object as the query echo shows it.
    pub fn to_json(&self, tz: Tz) -> Value {
        let mut out = Map::new();
        let mode = match &self.mode {
            ComparisonMode::PreviousPeriod => "previous_period",
            ComparisonMode::YearOverYear => "year_over_year",
            ComparisonMode::Custom(r) => {
                out.insert("date_range".into(), super::time::echo_range(r, tz));
                "custom"
            }
        };
        out.insert("mode".into(), json!(mode));
        out.insert("match_day_of_week".into(), json!(self.match_day_of_week));
        Value::Object(out)
    }
}

const MODES: &str = "\"previous_period\", \"year_over_year\" or \"custom\"";

/// Reads `include.comparisons`: `{"mode", "date_range" (custom only), "match_day_of_week"}`.
pub(super) fn parse_comparisons(
    v: &Value,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<Option<Comparisons>, QueryError> {
    let obj = match v {
        Value::Null => return Ok(None),
        Value::Object(o) => o,
        other => {
            return Err(QueryError::new(format!(
                "include.comparisons must be an object, got {}",
                super::parse::json_type(other)
            )));
        }
    };
    if let Some(k) = obj
        .keys()
        .find(|k| !["mode", "date_range", "match_day_of_week"].contains(&k.as_str()))
    {
        return Err(QueryError::new(format!(
            "unknown key '{k}' in include.comparisons (known: mode, date_range, match_day_of_week)"
        )));
    }
    let match_day_of_week = match obj.get("match_day_of_week") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(QueryError::new(
                "include.comparisons.match_day_of_week must be a boolean",
            ));
        }
    };
    let date_range = obj.get("date_range").filter(|v| !v.is_null());
    let mode = match obj.get("mode").and_then(Value::as_str) {
        Some("previous_period") => ComparisonMode::PreviousPeriod,
        Some("year_over_year") => ComparisonMode::YearOverYear,
        Some("custom") => {
            let Some(range) = date_range else {
                return Err(QueryError::new(
                    "include.comparisons.date_range is required with mode \"custom\"",
                ));
            };
            let resolved = resolve_range(range, tz, now)
                .map_err(|e| QueryError::new(format!("include.comparisons.{}", e.message)))?;
            ComparisonMode::Custom(resolved)
        }
        Some(other) => {
            return Err(QueryError::new(format!(
                "include.comparisons.mode must be {MODES}; got '{other}'"
            )));
        }
        None => {
            return Err(QueryError::new(format!(
                "include.comparisons.mode is required: {MODES}"
            )));
        }
    };
    if date_range.is_some() && !matches!(mode, ComparisonMode::Custom(_)) {
        return Err(QueryError::new(
            "include.comparisons.date_range is only for mode \"custom\"",
        ));
    }
    Ok(Some(Comparisons {
        mode,
        match_day_of_week,
    }))
}

/// The range `range` is compared with. A range that reaches past `now` (today, this
/// month, "the last 30 days" up to today) is compared up to the same point: today until
/// now with yesterday until the same time, not with the whole of yesterday.
pub fn comparison_range(
    range: &DateRange,
    tz: Tz,
    now: DateTime<Utc>,
    c: &Comparisons,
) -> DateRange {
    let effective_end = range.end_utc.min(now.max(range.start_utc));
    let elapsed = effective_end - range.start_utc;
    let start = match &c.mode {
        ComparisonMode::Custom(r) => return r.clone(),
        // A range of whole days moves back by its number of days (local days, so DST
        // does not shift it by an hour); "24h" and datetime ranges by their length.
        ComparisonMode::PreviousPeriod if whole_days(range) => {
            let days = (range.last_day - range.first_day).num_days() + 1;
            let days = if c.match_day_of_week {
                (days + 6) / 7 * 7
            } else {
                days
            };
            let first = range
                .first_day
                .checked_sub_days(Days::new(days.unsigned_abs()))
                .unwrap_or(range.first_day);
            local_day_start(tz, first)
        }
        ComparisonMode::PreviousPeriod => {
            let length = range.end_utc - range.start_utc;
            let length = if c.match_day_of_week {
                let week = Duration::days(7);
                let weeks = (length.num_seconds() + week.num_seconds() - 1) / week.num_seconds();
                week * weeks.max(1) as i32
            } else {
                length
            };
            range.start_utc - length
        }
        ComparisonMode::YearOverYear if c.match_day_of_week => {
            range.start_utc - Duration::days(364)
        }
        ComparisonMode::YearOverYear => {
            let local = range.start_utc.with_timezone(&tz).naive_local();
            let back = local.checked_sub_months(Months::new(12)).unwrap_or(local);
            if whole_days(range) {
                local_day_start(tz, back.date())
            } else {
                range.start_utc - (local - back)
            }
        }
    };
    let end = start + elapsed;
    DateRange {
        start_utc: start,
        end_utc: end.max(start + Duration::microseconds(1)),
        first_day: start.with_timezone(&tz).date_naive(),
        last_day: (end - Duration::microseconds(1))
            .max(start)
            .with_timezone(&tz)
            .date_naive(),
        kind: RangeKind::DateTimes,
    }
}

fn whole_days(range: &DateRange) -> bool {
    !matches!(range.kind, RangeKind::DateTimes) && range.kind != RangeKind::Shorthand("24h".into())
}

/// How `current` moved from `previous`, as Plausible reports it (v1 and v2 alike): rates
/// (bounce rate as a whole number, none when the period before had no bounce rate;
/// conversion rate and percentage to one decimal) as the difference in points,
/// everything else as a whole percentage (100 when it grew from zero); `null` when either
/// side is missing.
pub fn change(metric: Metric, previous: &Value, current: &Value) -> Value {
    let number = |v: &Value| match v {
        Value::Object(o) => o.get("value").and_then(Value::as_f64),
        v => v.as_f64(),
    };
    let (Some(old), Some(new)) = (number(previous), number(current)) else {
        return Value::Null;
    };
    match metric {
        Metric::BounceRate if old > 0.0 => json!((new - old).round() as i64),
        Metric::BounceRate => Value::Null,
        Metric::ConversionRate | Metric::GroupConversionRate | Metric::Percentage => {
            json!(((new - old) * 10.0).round() / 10.0)
        }
        _ if old == 0.0 => json!(if new > 0.0 { 100 } else { 0 }),
        _ => json!(((new - old) / old * 100.0).round() as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use chrono_tz::America::New_York;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("datetime")
            .with_timezone(&Utc)
    }

    fn compare(range: &Value, tz: Tz, now: &str, c: Value) -> DateRange {
        let now = utc(now);
        let r = resolve_range(range, tz, now).expect("range");
        let c = parse_comparisons(&c, tz, now)
            .expect("comparisons")
            .expect("some");
        comparison_range(&r, tz, now, &c)
    }

    #[test]
    fn previous_period_of_whole_days_and_of_a_range_reaching_now() {
        let r = compare(
            &json!(["2026-11-01", "2026-11-30"]),
            Tz::UTC,
            "2026-12-05T12:00:00Z",
            json!({"mode": "previous_period"}),
        );
        assert_eq!(
            (r.start_utc, r.end_utc),
            (utc("2026-10-02T00:00:00Z"), utc("2026-11-01T00:00:00Z"))
        );
        // Today until noon against yesterday until noon.
        let r = compare(
            &json!("day"),
            Tz::UTC,
            "2026-12-05T12:00:00Z",
            json!({"mode": "previous_period"}),
        );
        assert_eq!(
            (r.start_utc, r.end_utc),
            (utc("2026-12-04T00:00:00Z"), utc("2026-12-04T12:00:00Z"))
        );
        // Local days across the DST change: New York's 2026-11-01 is 25 hours long.
        let r = compare(
            &json!(["2026-11-02", "2026-11-02"]),
            New_York,
            "2026-12-05T12:00:00Z",
            json!({"mode": "previous_period"}),
        );
        assert_eq!(r.start_utc, utc("2026-11-01T04:00:00Z"));
        assert_eq!(
            r.first_day,
            NaiveDate::from_ymd_opt(2026, 11, 1).expect("date")
        );
        // Weeks matched: 10 days go back 14.
        let r = compare(
            &json!(["2026-11-21", "2026-11-30"]),
            Tz::UTC,
            "2026-12-05T12:00:00Z",
            json!({"mode": "previous_period", "match_day_of_week": true}),
        );
        assert_eq!(r.start_utc, utc("2026-11-07T00:00:00Z"));
        assert_eq!(r.end_utc, utc("2026-11-17T00:00:00Z"));
    }

    #[test]
    fn year_over_year_and_custom() {
        let r = compare(
            &json!("month"),
            Tz::UTC,
            "2026-12-05T12:00:00Z",
            json!({"mode": "year_over_year"}),
        );
        assert_eq!(
            (r.start_utc, r.end_utc),
            (utc("2025-12-01T00:00:00Z"), utc("2025-12-05T12:00:00Z"))
        );
        let r = compare(
            &json!("7d"),
            Tz::UTC,
            "2026-12-05T12:00:00Z",
            json!({"mode": "custom", "date_range": ["2026-01-01", "2026-01-03"]}),
        );
        assert_eq!(
            (r.start_utc, r.end_utc),
            (utc("2026-01-01T00:00:00Z"), utc("2026-01-04T00:00:00Z"))
        );
    }

    #[test]
    fn bad_comparisons_name_the_part() {
        let now = utc("2026-12-05T12:00:00Z");
        for (v, want) in [
            (json!({}), "include.comparisons.mode is required"),
            (
                json!({"mode": "last_year"}),
                "include.comparisons.mode must be",
            ),
            (json!({"mode": "custom"}), "date_range is required"),
            (
                json!({"mode": "previous_period", "date_range": ["2026-01-01", "2026-01-02"]}),
                "only for mode \"custom\"",
            ),
            (
                json!({"mode": "custom", "date_range": "yesterday"}),
                "include.comparisons.date_range",
            ),
            (
                json!({"mode": "previous_period", "x": 1}),
                "unknown key 'x'",
            ),
            (json!("previous_period"), "must be an object"),
        ] {
            let e = parse_comparisons(&v, Tz::UTC, now).expect_err("invalid");
            assert!(e.message.contains(want), "{v}: {}", e.message);
        }
    }

    #[test]
    fn changes_as_plausible_reports_them() {
        assert_eq!(change(Metric::Visitors, &json!(50), &json!(75)), json!(50));
        assert_eq!(change(Metric::Visitors, &json!(0), &json!(3)), json!(100));
        assert_eq!(change(Metric::Visitors, &json!(0), &json!(0)), json!(0));
        assert_eq!(change(Metric::Visitors, &json!(3), &json!(0)), json!(-100));
        assert_eq!(
            change(Metric::BounceRate, &json!(40), &json!(35)),
            json!(-5)
        );
        assert_eq!(
            change(Metric::BounceRate, &json!(0), &json!(40)),
            Value::Null
        );
        assert_eq!(
            change(Metric::ConversionRate, &json!(2.5), &json!(4.0)),
            json!(1.5)
        );
        assert_eq!(
            change(Metric::VisitDuration, &json!(null), &json!(3)),
            Value::Null
        );
    }
}
