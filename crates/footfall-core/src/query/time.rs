//! Date ranges, time buckets and UTC offsets in the site's timezone (no ICU in the store:
//! offsets are computed here and handed to SQL).

use super::{DateRange, QueryError, RangeKind, TimeGranularity};
use chrono::{
    DateTime, Datelike, Days, Duration, FixedOffset, LocalResult, Months, NaiveDate, NaiveDateTime,
    Offset, TimeZone, Utc,
};
use chrono_tz::Tz;
use serde_json::Value;

/// Lower bound of the "all" range when the site's first day is not known
/// ([`SiteContext::stats_start`](super::SiteContext)).
const ALL_START: NaiveDate = match NaiveDate::from_ymd_opt(2000, 1, 1) {
    Some(d) => d,
    None => panic!("valid date"),
};

/// The UTC instant at which `date` starts in `tz` (first valid local time when midnight
/// falls in a DST gap, earliest when ambiguous).
pub fn local_day_start(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_time(chrono::NaiveTime::MIN);
    local_to_utc(tz, midnight)
}

fn local_to_utc(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut t = local;
    // Gaps are at most a few hours; step forward by 15 minutes until the time exists.
    for _ in 0..32 {
        match tz.from_local_datetime(&t) {
            LocalResult::Single(d) => return d.with_timezone(&Utc),
            LocalResult::Ambiguous(a, _) => return a.with_timezone(&Utc),
            LocalResult::None => t += Duration::minutes(15),
        }
    }
    Utc.from_utc_datetime(&local)
}

fn local_date(tz: Tz, t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
}

/// The `"all"` range starting on the site's first day (Plausible's `stats_start_date`)
/// instead of [`ALL_START`]; `first` after the range's last day leaves one day.
pub(super) fn all_from(range: &DateRange, tz: Tz, first: NaiveDate) -> DateRange {
    days_range(
        tz,
        first.min(range.last_day),
        range.last_day,
        range.kind.clone(),
    )
}

fn days_range(tz: Tz, first: NaiveDate, last: NaiveDate, kind: RangeKind) -> DateRange {
    let end_day = last.checked_add_days(Days::new(1)).unwrap_or(last);
    DateRange {
        start_utc: local_day_start(tz, first),
        end_utc: local_day_start(tz, end_day),
        first_day: first,
        last_day: last,
        kind,
    }
}

fn first_of_month(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap_or(d)
}

fn last_of_month(d: NaiveDate) -> NaiveDate {
    first_of_month(d)
        .checked_add_months(Months::new(1))
        .and_then(|n| n.pred_opt())
        .unwrap_or(d)
}

const RANGE_HELP: &str = "date_range must be one of \"day\", \"24h\", \"7d\", \"28d\", \"30d\", \"91d\", \"month\", \"6mo\", \"12mo\", \"year\", \"all\" or a [from, to] pair of ISO dates (YYYY-MM-DD) or ISO datetimes with offset";

/// Resolves a `date_range` value relative to `now` in the site's timezone.
pub(super) fn resolve_range(
    v: &Value,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<DateRange, QueryError> {
    let today = local_date(tz, now);
    let sub = |n: u64| today.checked_sub_days(Days::new(n)).unwrap_or(today);
    match v {
        Value::String(s) => {
            let kind = RangeKind::Shorthand(s.clone());
            let r = match s.as_str() {
                "day" => days_range(tz, today, today, kind),
                "7d" => days_range(tz, sub(7), sub(1), kind),
                "28d" => days_range(tz, sub(28), sub(1), kind),
                "30d" => days_range(tz, sub(30), sub(1), kind),
                "91d" => days_range(tz, sub(91), sub(1), kind),
                "month" => days_range(tz, first_of_month(today), last_of_month(today), kind),
                "6mo" | "12mo" => {
                    let back = if s == "6mo" { 5 } else { 11 };
                    let first = first_of_month(today)
                        .checked_sub_months(Months::new(back))
                        .unwrap_or(today);
                    days_range(tz, first, last_of_month(today), kind)
                }
                "year" => {
                    let first = NaiveDate::from_ymd_opt(today.year(), 1, 1).unwrap_or(today);
                    let last = NaiveDate::from_ymd_opt(today.year(), 12, 31).unwrap_or(today);
                    days_range(tz, first, last, kind)
                }
                "all" => days_range(tz, ALL_START.min(today), today, kind),
                "24h" => {
                    let start = now - Duration::hours(24);
                    DateRange {
                        start_utc: start,
                        end_utc: now,
                        first_day: local_date(tz, start),
                        last_day: local_date(tz, now - Duration::microseconds(1)),
                        kind,
                    }
                }
                other => {
                    return Err(QueryError::new(format!("{RANGE_HELP}; got '{other}'")));
                }
            };
            Ok(r)
        }
        Value::Array(items) => {
            let [from, to] = items.as_slice() else {
                return Err(QueryError::new(format!(
                    "{RANGE_HELP}; got a list of {} elements",
                    items.len()
                )));
            };
            let (Some(from), Some(to)) = (from.as_str(), to.as_str()) else {
                return Err(QueryError::new(format!(
                    "{RANGE_HELP}; the [from, to] elements must be strings"
                )));
            };
            let date = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
            let datetime = |s: &str| DateTime::parse_from_rfc3339(s).ok();
            if let (Some(f), Some(t)) = (date(from), date(to)) {
                if f > t {
                    return Err(QueryError::new(format!(
                        "date_range start '{from}' is after its end '{to}'"
                    )));
                }
                return Ok(days_range(tz, f, t, RangeKind::Dates));
            }
            if let (Some(f), Some(t)) = (datetime(from), datetime(to)) {
                let start = f.with_timezone(&Utc);
                // The end is inclusive to the second, as Plausible's `<=` on DateTime.
                let end = t.with_timezone(&Utc) + Duration::seconds(1);
                if start >= end {
                    return Err(QueryError::new(format!(
                        "date_range start '{from}' is after its end '{to}'"
                    )));
                }
                return Ok(DateRange {
                    start_utc: start,
                    end_utc: end,
                    first_day: local_date(tz, start),
                    last_day: local_date(tz, end - Duration::microseconds(1)),
                    kind: RangeKind::DateTimes,
                });
            }
            Err(QueryError::new(format!(
                "{RANGE_HELP}; could not read ['{from}', '{to}'] (both must be dates or both datetimes)"
            )))
        }
        _ => Err(QueryError::new(format!(
            "{RANGE_HELP}; got {}",
            super::parse::json_type(v)
        ))),
    }
}

/// Echo form of the range: local ISO datetimes with offset, end inclusive (last second).
/// RFC 3339 offsets have no seconds, but local mean time before standard time had them
/// (New York until 1883: -04:56:02): such an offset is rounded to the minute and the time
/// shown in it, so the echo still names the range's instants (printing the local time with
/// the seconds cut from its offset named another instant, and the echo of the echo moved).
///
/// In a UTC site (footfall's default, Plausible's `Etc/UTC`) the offset is written `Z`,
/// as Elixir's `DateTime.to_iso8601` writes it for `Etc/UTC`: Plausible's tests expect
/// `["2021-01-01T00:00:00Z", "2021-01-01T23:59:59Z"]`.
pub(super) fn echo_range(r: &DateRange, tz: Tz) -> Value {
    let utc = is_utc_zone(tz);
    let fmt = |t: DateTime<Utc>| {
        if utc {
            return t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        }
        let secs = offset_at(tz, t);
        let minutes = (secs + 30).div_euclid(60) * 60;
        let offset = FixedOffset::east_opt(minutes).unwrap_or(Utc.fix());
        t.with_timezone(&offset)
            .format("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    };
    serde_json::json!([fmt(r.start_utc), fmt(r.end_utc - Duration::seconds(1))])
}

/// The zone is UTC itself (one of its names), not a zone that happens to be at +00:00.
fn is_utc_zone(tz: Tz) -> bool {
    matches!(
        tz,
        Tz::UTC
            | Tz::Etc__UTC
            | Tz::Etc__UCT
            | Tz::UCT
            | Tz::Universal
            | Tz::Etc__Universal
            | Tz::Zulu
            | Tz::Etc__Zulu
    )
}

/// The bucket size `time` (auto) stands for: hours for ranges up to two days, days up
/// to about three months, months beyond. Ranges of whole days are measured in the
/// site's days (a DST day has 23 or 25 hours); `24h` and datetime ranges by their length.
pub fn resolve_granularity(g: TimeGranularity, range: &DateRange) -> TimeGranularity {
    if g != TimeGranularity::Auto {
        return g;
    }
    let span = match &range.kind {
        RangeKind::DateTimes => range.end_utc - range.start_utc,
        RangeKind::Shorthand(s) if s == "24h" => range.end_utc - range.start_utc,
        _ => Duration::days((range.last_day - range.first_day).num_days() + 1),
    };
    if span <= Duration::hours(48) {
        TimeGranularity::Hour
    } else if span <= Duration::days(93) {
        TimeGranularity::Day
    } else {
        TimeGranularity::Month
    }
}

/// strftime format of bucket labels (same in chrono and DuckDB).
pub fn bucket_label_format(g: TimeGranularity) -> &'static str {
    match g {
        TimeGranularity::Hour => "%Y-%m-%d %H:00:00",
        _ => "%Y-%m-%d",
    }
}

/// The most buckets a query may have listed (`include.time_labels`, comparisons by time,
/// Stats API v1 timeseries, which list every bucket): 11 years by hour, any range by
/// day. A range to the year 9999 by hour would be 70 million labels, minutes of work and
/// gigabytes of answer for one request.
pub const MAX_TIME_LABELS: u64 = 100_000;

/// How many buckets of `g` the range spans, without listing them: what `time_labels`
/// returns, or one or two more (partial weeks and months at both ends, DST hours).
pub fn bucket_count(g: TimeGranularity, range: &DateRange) -> u64 {
    let days = u64::try_from((range.last_day - range.first_day).num_days()).unwrap_or(0) + 1;
    match resolve_granularity(g, range) {
        TimeGranularity::Hour | TimeGranularity::Auto => {
            u64::try_from((range.end_utc - range.start_utc).num_hours()).unwrap_or(0) + 2
        }
        TimeGranularity::Day => days,
        TimeGranularity::Week => days / 7 + 2,
        TimeGranularity::Month => {
            let month = |d: NaiveDate| i64::from(d.year()) * 12 + i64::from(d.month0());
            u64::try_from(month(range.last_day) - month(range.first_day)).unwrap_or(0) + 1
        }
    }
}

/// Every bucket label of the range, in order (for `include.time_labels`).
pub fn time_labels(g: TimeGranularity, range: &DateRange, tz: Tz) -> Vec<String> {
    let g = resolve_granularity(g, range);
    let mut out: Vec<String> = Vec::new();
    match g {
        TimeGranularity::Hour | TimeGranularity::Auto => {
            // Local hours are not always UTC-hour aligned (+05:45): step by 15 minutes and
            // keep each new label once (a repeated DST hour collapses into one bucket).
            let fmt = bucket_label_format(TimeGranularity::Hour);
            let mut seen = std::collections::HashSet::new();
            let mut t = range.start_utc;
            while t < range.end_utc {
                let label = t.with_timezone(&tz).format(fmt).to_string();
                // Three of four steps repeat the last label: only a new one is cloned.
                if out.last() != Some(&label) && seen.insert(label.clone()) {
                    out.push(label);
                }
                t += Duration::minutes(15);
            }
        }
        TimeGranularity::Day | TimeGranularity::Week | TimeGranularity::Month => {
            // Weeks start on Monday, the first one never before the range (Plausible's
            // `date_or_weekstart`): a range from a Saturday opens with that Saturday.
            let mut d = match g {
                TimeGranularity::Week => range.first_day,
                TimeGranularity::Month => first_of_month(range.first_day),
                _ => range.first_day,
            };
            while d <= range.last_day {
                out.push(d.format("%Y-%m-%d").to_string());
                let next = match g {
                    TimeGranularity::Week => d.checked_add_days(Days::new(
                        7 - u64::from(d.weekday().num_days_from_monday()),
                    )),
                    TimeGranularity::Month => d.checked_add_months(Months::new(1)),
                    _ => d.succ_opt(),
                };
                match next {
                    Some(n) => d = n,
                    None => break,
                }
            }
        }
    }
    out
}

fn offset_at(tz: Tz, t: DateTime<Utc>) -> i32 {
    tz.offset_from_utc_datetime(&t.naive_utc())
        .fix()
        .local_minus_utc()
}

/// UTC offsets in force over `[start, end)`: `(from, offset_secs)` pairs, the first `from`
/// being `start`; each segment lasts until the next one's `from`.
pub fn offset_segments(
    tz: Tz,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, i32)> {
    let mut segs = vec![(start, offset_at(tz, start))];
    // Transitions are months apart: sample every 6 hours, then bisect to the second.
    let step = Duration::hours(6);
    let mut prev = start;
    while prev < end {
        let next = (prev + step).min(end);
        let cur_off = segs.last().map(|s| s.1).unwrap_or(0);
        if offset_at(tz, next) != cur_off || (next == end && offset_at(tz, end) != cur_off) {
            // Bisect on whole seconds (transitions happen on the second).
            let (mut lo, mut hi) = (prev.timestamp(), next.timestamp() + 1);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                let at = DateTime::from_timestamp(mid, 0).unwrap_or(next);
                if offset_at(tz, at) == cur_off {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let hi = DateTime::from_timestamp(hi, 0).unwrap_or(next).max(prev);
            if hi < end {
                segs.push((hi, offset_at(tz, hi)));
            }
        }
        if next == end {
            break;
        }
        prev = next;
    }
    segs
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::New_York;
    use chrono_tz::Asia::Kathmandu;
    use serde_json::json;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test datetime")
            .with_timezone(&Utc)
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
    }

    #[test]
    fn shorthands_in_site_timezone() {
        // 2024-03-15 02:00 UTC is still 2024-03-14 in New York (EDT, -4).
        let now = utc("2024-03-15T02:00:00Z");
        let r = resolve_range(&json!("day"), New_York, now).expect("day");
        assert_eq!(
            (r.first_day, r.last_day),
            (d("2024-03-14"), d("2024-03-14"))
        );
        assert_eq!(r.start_utc, utc("2024-03-14T04:00:00Z"));
        assert_eq!(r.end_utc, utc("2024-03-15T04:00:00Z"));

        let r = resolve_range(&json!("7d"), New_York, now).expect("7d");
        assert_eq!(
            (r.first_day, r.last_day),
            (d("2024-03-07"), d("2024-03-13"))
        );
        // DST began 2024-03-10: start is EST (-5), end EDT (-4).
        assert_eq!(r.start_utc, utc("2024-03-07T05:00:00Z"));
        assert_eq!(r.end_utc, utc("2024-03-14T04:00:00Z"));

        for (s, first, last) in [
            ("28d", "2024-02-15", "2024-03-13"),
            ("30d", "2024-02-13", "2024-03-13"),
            ("91d", "2023-12-14", "2024-03-13"),
            ("month", "2024-03-01", "2024-03-31"),
            ("6mo", "2023-10-01", "2024-03-31"),
            ("12mo", "2023-04-01", "2024-03-31"),
            ("year", "2024-01-01", "2024-12-31"),
            ("all", "2000-01-01", "2024-03-14"),
        ] {
            let r = resolve_range(&json!(s), New_York, now).expect(s);
            assert_eq!((r.first_day, r.last_day), (d(first), d(last)), "{s}");
        }
        // "all" from the site's first day (a first day after today leaves today).
        let all = resolve_range(&json!("all"), New_York, now).expect("all");
        for (first, want) in [("2024-02-29", "2024-02-29"), ("2024-03-20", "2024-03-14")] {
            let r = all_from(&all, New_York, d(first));
            assert_eq!(
                (r.first_day, r.last_day),
                (d(want), d("2024-03-14")),
                "{first}"
            );
            assert_eq!(r.start_utc, local_day_start(New_York, d(want)));
            assert!(r.is_all());
        }

        let r = resolve_range(&json!("24h"), New_York, now).expect("24h");
        assert_eq!(r.start_utc, utc("2024-03-14T02:00:00Z"));
        assert_eq!(r.end_utc, now);
    }

    #[test]
    fn custom_ranges() {
        let now = utc("2024-03-15T02:00:00Z");
        let r = resolve_range(&json!(["2024-03-09", "2024-03-10"]), New_York, now).expect("dates");
        assert_eq!(r.start_utc, utc("2024-03-09T05:00:00Z"));
        assert_eq!(r.end_utc, utc("2024-03-11T04:00:00Z"));
        assert_eq!(
            echo_range(&r, New_York),
            json!(["2024-03-09T00:00:00-05:00", "2024-03-10T23:59:59-04:00"])
        );
        // Found by fuzzing (fuzz/fuzz_targets/stats_query.rs): local mean time has an
        // offset with seconds (New York -04:56:02 until 1883); the echo must name the
        // same instants, so that re-sending it gives the same range.
        let r = resolve_range(&json!(["1800-01-01", "1800-01-01"]), New_York, now).expect("lmt");
        assert_eq!(r.start_utc, utc("1800-01-01T04:56:02Z"));
        let echo = echo_range(&r, New_York);
        assert_eq!(
            echo,
            json!(["1800-01-01T00:00:02-04:56", "1800-01-02T00:00:01-04:56"])
        );
        let again = resolve_range(&echo, New_York, now).expect("echo parses");
        assert_eq!((again.start_utc, again.end_utc), (r.start_utc, r.end_utc));
        assert_eq!(echo_range(&again, New_York), echo);

        let r = resolve_range(
            &json!(["2024-03-09T10:00:00+00:00", "2024-03-09T11:00:00Z"]),
            New_York,
            now,
        )
        .expect("datetimes");
        assert_eq!(r.start_utc, utc("2024-03-09T10:00:00Z"));
        assert_eq!(r.end_utc, utc("2024-03-09T11:00:01Z"));
        assert_eq!(r.kind, RangeKind::DateTimes);

        for bad in [
            json!("yesterday"),
            json!(["2024-03-10"]),
            json!(["2024-03-10", "2024-03-09"]),
            json!(["2024-03-10", "2024-03-11T00:00:00Z"]),
            json!(7),
        ] {
            let e = resolve_range(&bad, New_York, now).expect_err("bad range");
            assert!(e.message.starts_with("date_range"), "{}", e.message);
        }
    }

    #[test]
    fn granularity_and_labels() {
        let now = utc("2024-03-15T02:00:00Z");
        let r = resolve_range(&json!(["2024-03-09", "2024-03-12"]), New_York, now).expect("r");
        assert_eq!(
            resolve_granularity(TimeGranularity::Auto, &r),
            TimeGranularity::Day
        );
        assert_eq!(
            time_labels(TimeGranularity::Day, &r, New_York),
            ["2024-03-09", "2024-03-10", "2024-03-11", "2024-03-12"]
        );
        // 2024-03-09 is a Saturday: its week started Monday 2024-03-04, before the
        // range, so the range's first bucket is labelled with the Saturday.
        assert_eq!(
            time_labels(TimeGranularity::Week, &r, New_York),
            ["2024-03-09", "2024-03-11"]
        );
        assert_eq!(
            time_labels(TimeGranularity::Month, &r, New_York),
            ["2024-03-01"]
        );

        // The DST day has 23 local hours (02:00 does not exist).
        let r = resolve_range(&json!(["2024-03-10", "2024-03-10"]), New_York, now).expect("r");
        assert_eq!(
            resolve_granularity(TimeGranularity::Auto, &r),
            TimeGranularity::Hour
        );
        let hours = time_labels(TimeGranularity::Hour, &r, New_York);
        assert_eq!(hours.len(), 23);
        assert_eq!(hours[0], "2024-03-10 00:00:00");
        assert_eq!(hours[2], "2024-03-10 03:00:00");
        // Two days with the autumn DST day (25 hours, 49 in all) are still two days.
        let r = resolve_range(&json!(["2024-11-03", "2024-11-04"]), New_York, now).expect("r");
        assert_eq!(
            resolve_granularity(TimeGranularity::Auto, &r),
            TimeGranularity::Hour
        );

        let r = resolve_range(&json!("year"), New_York, now).expect("r");
        assert_eq!(
            resolve_granularity(TimeGranularity::Auto, &r),
            TimeGranularity::Month
        );
        assert_eq!(time_labels(TimeGranularity::Auto, &r, New_York).len(), 12);
    }

    #[test]
    fn bucket_counts_bound_the_labels() {
        let now = Utc.with_ymd_and_hms(2024, 6, 15, 12, 0, 0).unwrap();
        for range in [
            json!(["2024-03-09", "2024-03-12"]),
            json!(["2024-11-03", "2024-11-04"]),
            json!(["2023-12-30", "2024-03-02"]),
            json!("year"),
            json!("7d"),
        ] {
            let r = resolve_range(&range, New_York, now).expect("range");
            for g in [
                TimeGranularity::Hour,
                TimeGranularity::Day,
                TimeGranularity::Week,
                TimeGranularity::Month,
            ] {
                let listed = time_labels(g, &r, New_York).len() as u64;
                let counted = bucket_count(g, &r);
                // A few more: partial weeks and months at both ends, or an hour
                // repeated on the autumn DST day that the labels list once.
                assert!(
                    listed <= counted && counted <= listed + 3,
                    "{range} {g:?}: {listed} listed, {counted} counted"
                );
            }
        }
    }

    #[test]
    fn offsets_over_dst() {
        let segs = offset_segments(
            New_York,
            utc("2024-03-01T00:00:00Z"),
            utc("2024-12-01T00:00:00Z"),
        );
        assert_eq!(
            segs,
            vec![
                (utc("2024-03-01T00:00:00Z"), -5 * 3600),
                (utc("2024-03-10T07:00:00Z"), -4 * 3600),
                (utc("2024-11-03T06:00:00Z"), -5 * 3600),
            ]
        );
        let segs = offset_segments(
            Kathmandu,
            utc("2024-03-01T00:00:00Z"),
            utc("2024-03-02T00:00:00Z"),
        );
        assert_eq!(
            segs,
            vec![(utc("2024-03-01T00:00:00Z"), 5 * 3600 + 45 * 60)]
        );
    }
}
