//! Several hundred generated visitors over five past days, sent through the bulk API; every
//! Stats API number is checked against what this test computes from the events it sent
//! (DESIGN §3 sessions, §4 metric meanings).

mod common;

use chrono::{Duration as ChronoDuration, NaiveDate, SecondsFormat, TimeZone, Utc};
use common::{CHROME_UA, Server, dimension_values, metric_values, rounds_to};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const SITE: &str = "shop.example.com";
const DAYS: i64 = 5;
const VISITORS: usize = 420;

const PAGES: &[(&str, u32)] = &[
    ("/", 30),
    ("/pricing", 15),
    ("/blog/", 10),
    ("/blog/rust-analytics", 8),
    ("/blog/privacy-first", 6),
    ("/docs/getting-started", 8),
    ("/docs/api", 6),
    ("/about", 5),
    ("/contact", 4),
    ("/signup", 8),
];

/// How a visitor arrives: referrer sent, utm_source put in the URL, expected source name.
struct Arrival {
    referrer: Option<&'static str>,
    utm_source: Option<&'static str>,
    source: &'static str,
    weight: u32,
}

const ARRIVALS: &[Arrival] = &[
    Arrival {
        referrer: Some("https://www.google.com/"),
        utm_source: None,
        source: "Google",
        weight: 30,
    },
    Arrival {
        referrer: None,
        utm_source: None,
        source: "Direct / None",
        weight: 25,
    },
    Arrival {
        referrer: Some("https://t.co/abc"),
        utm_source: None,
        source: "Twitter",
        weight: 15,
    },
    Arrival {
        referrer: Some("https://news.ycombinator.com/"),
        utm_source: None,
        source: "Hacker News",
        weight: 10,
    },
    Arrival {
        referrer: Some("https://blog.example.org/post"),
        utm_source: None,
        source: "blog.example.org",
        weight: 10,
    },
    // utm_source overrides the referrer; an unknown utm_source is kept verbatim.
    Arrival {
        referrer: Some("https://www.google.com/"),
        utm_source: Some("newsletter"),
        source: "newsletter",
        weight: 10,
    },
];

#[derive(Debug, Clone)]
struct Ev {
    ts: i64,
    name: &'static str,
    path: &'static str,
}

#[derive(Debug, Clone)]
struct Session {
    visitor: usize,
    day: NaiveDate,
    source: &'static str,
    events: Vec<Ev>,
}

impl Session {
    fn pageviews(&self) -> impl Iterator<Item = &Ev> {
        self.events.iter().filter(|e| e.name == "pageview")
    }
    fn pageview_count(&self) -> usize {
        self.pageviews().count()
    }
    fn signups(&self) -> usize {
        self.events.iter().filter(|e| e.name == "Signup").count()
    }
    fn entry(&self) -> &'static str {
        self.pageviews().next().map(|e| e.path).unwrap_or("")
    }
    fn exit(&self) -> &'static str {
        self.pageviews().last().map(|e| e.path).unwrap_or("")
    }
    fn bounced(&self) -> bool {
        self.pageview_count() == 1 && self.signups() == 0
    }
    fn duration(&self) -> i64 {
        let first = self.events.first().map(|e| e.ts).unwrap_or(0);
        let last = self.events.last().map(|e| e.ts).unwrap_or(0);
        last - first
    }
    fn has_page(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        self.events.iter().any(|e| pred(e.path))
    }
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T], weight: impl Fn(&T) -> u32) -> &'a T {
    let total: u32 = items.iter().map(&weight).sum();
    let mut r = rng.random_range(0..total);
    for it in items {
        let w = weight(it);
        if r < w {
            return it;
        }
        r -= w;
    }
    &items[items.len() - 1]
}

/// Generates the visitors' sessions. Every session lies inside one UTC day (starts before
/// 21:00, lasts at most 2.25 h); events inside a session are < 30 min apart; sessions of a
/// visitor are > 30 min apart.
fn generate(seed: u64, first_day: NaiveDate) -> (Vec<Session>, Vec<&'static Arrival>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sessions = Vec::new();
    let mut arrivals = Vec::new();
    for v in 0..VISITORS {
        let arrival = pick(&mut rng, ARRIVALS, |a| a.weight);
        arrivals.push(arrival);
        let nsess = match rng.random_range(0..100) {
            0..55 => 1,
            55..85 => 2,
            _ => 3,
        };
        let mut day = rng.random_range(0..DAYS);
        let mut t: i64 = rng.random_range(0..14 * 3600);
        for _ in 0..nsess {
            if t > 21 * 3600 {
                day += 1;
                t = rng.random_range(0..10 * 3600);
            }
            if day >= DAYS {
                break;
            }
            let date = first_day + ChronoDuration::days(day);
            let midnight = Utc
                .from_utc_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight"))
                .timestamp();
            let npv = rng.random_range(1..=6);
            let mut events = Vec::new();
            let mut ts = midnight + t;
            for i in 0..npv {
                if i > 0 {
                    ts += rng.random_range(5..1500);
                }
                let page = pick(&mut rng, PAGES, |p| p.1).0;
                events.push(Ev {
                    ts,
                    name: "pageview",
                    path: page,
                });
            }
            // Some sessions sign up, on the page of one of their page views and before the
            // next page view (so the signup never changes entry or exit page).
            if rng.random_bool(0.18) {
                let k = rng.random_range(0..npv);
                let at = events[k].ts;
                let until = events.get(k + 1).map(|e| e.ts).unwrap_or(at + 600);
                let sts = if until - at >= 2 {
                    rng.random_range(at + 1..until)
                } else {
                    at
                };
                let path = events[k].path;
                events.insert(
                    k + 1,
                    Ev {
                        ts: sts,
                        name: "Signup",
                        path,
                    },
                );
            }
            let last = events.last().map(|e| e.ts).unwrap_or(ts);
            sessions.push(Session {
                visitor: v,
                day: date,
                source: arrival.source,
                events,
            });
            // Next session: same day after a > 30 min pause, or a later day.
            if rng.random_bool(0.5) {
                t = last - midnight + rng.random_range(31 * 60..3 * 3600);
            } else {
                day += rng.random_range(1..3);
                t = rng.random_range(0..20 * 3600);
            }
        }
    }
    (sessions, arrivals)
}

/// The JSON events sent for the sessions, sorted by time (historical data in time order).
fn to_json_events(sessions: &[Session], arrivals: &[&Arrival]) -> Vec<Value> {
    let mut out: Vec<(i64, Value)> = Vec::new();
    let mut n = 0usize;
    for s in sessions {
        let arrival = arrivals[s.visitor];
        let mut prev_path: Option<&str> = None;
        for (i, e) in s.events.iter().enumerate() {
            let mut url = format!("https://{SITE}{}", e.path);
            let mut ev = json!({
                "id": format!("acc-{n:06}"),
                "name": e.name,
                "domain": SITE,
                "timestamp": Utc.timestamp_opt(e.ts, 0).single().expect("ts")
                    .to_rfc3339_opts(SecondsFormat::Secs, true),
                "visitor_id": format!("visitor-{}", s.visitor),
                "user_agent": CHROME_UA,
            });
            if i == 0 {
                if let Some(u) = arrival.utm_source {
                    url.push_str(&format!("?utm_source={u}&utm_medium=email"));
                }
                if let Some(r) = arrival.referrer {
                    ev["referrer"] = json!(r);
                }
            } else if e.name == "pageview"
                && let Some(p) = prev_path
            {
                // Internal navigation: the referrer is our own previous page.
                ev["referrer"] = json!(format!("https://{SITE}{p}"));
            }
            ev["url"] = json!(url);
            if e.name == "pageview" {
                prev_path = Some(e.path);
            }
            out.push((e.ts, ev));
            n += 1;
        }
    }
    out.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| a.1["id"].as_str().cmp(&b.1["id"].as_str()))
    });
    out.into_iter().map(|(_, v)| v).collect()
}

/// Expected metric values over a set of sessions, computed from what was sent.
struct Expect {
    visitors: f64,
    visits: f64,
    pageviews: f64,
    events: f64,
    views_per_visit: f64,
    bounce_rate: f64,
    visit_duration: f64,
}

fn expect(sessions: &[&Session]) -> Expect {
    let visitors: BTreeSet<usize> = sessions.iter().map(|s| s.visitor).collect();
    let visits = sessions.len() as f64;
    let pageviews: usize = sessions.iter().map(|s| s.pageview_count()).sum();
    let events: usize = sessions.iter().map(|s| s.events.len()).sum();
    let bounces = sessions.iter().filter(|s| s.bounced()).count();
    let dur: i64 = sessions.iter().map(|s| s.duration()).sum();
    let div = |a: f64| if visits > 0.0 { a / visits } else { 0.0 };
    Expect {
        visitors: visitors.len() as f64,
        visits,
        pageviews: pageviews as f64,
        events: events as f64,
        views_per_visit: div(pageviews as f64),
        bounce_rate: div(bounces as f64) * 100.0,
        visit_duration: div(dur as f64),
    }
}

/// Compares one metric: counts exactly, derived values as the exact value rounded to
/// `decimals` (views_per_visit 2, bounce_rate 0, visit_duration 0, percentage 1, ...).
fn check(errors: &mut Vec<String>, label: &str, got: f64, exact: f64, decimals: Option<i32>) {
    let ok = match decimals {
        None => got == exact,
        Some(d) => rounds_to(got, exact, d),
    };
    if !ok {
        errors.push(format!("{label}: got {got}, expected {exact}"));
    }
}

fn finish(errors: Vec<String>) {
    assert!(
        errors.is_empty(),
        "{} mismatches:\n{}",
        errors.len(),
        errors.join("\n")
    );
}

struct Fixture {
    server: Server,
    stats_key: String,
    sessions: Vec<Session>,
    range: Value,
    days: Vec<NaiveDate>,
}

fn setup() -> Fixture {
    setup_sending(false)
}

/// The fixture, its events sent in time order in bodies of 500, or (`shuffled`) all in
/// one body in a seeded random order.
fn setup_sending(shuffled: bool) -> Fixture {
    let server = Server::start();
    server.add_site(SITE, "UTC");
    let ingest = server.create_key(SITE, "ingest");
    let stats_key = server.create_key(SITE, "stats");

    let today = Utc::now().date_naive();
    let first_day = today - ChronoDuration::days(6);
    let days: Vec<NaiveDate> = (0..DAYS)
        .map(|d| first_day + ChronoDuration::days(d))
        .collect();
    let (sessions, arrivals) = generate(0x0000_f007_fa11, first_day);
    let mut events = to_json_events(&sessions, &arrivals);
    assert!(events.len() > 1000, "generator made too few events");
    let chunk_len = if shuffled {
        let mut rng = StdRng::seed_from_u64(0x5eed_0ff1);
        for i in (1..events.len()).rev() {
            events.swap(i, rng.random_range(0..=i));
        }
        events.len()
    } else {
        500
    };

    for chunk in events.chunks(chunk_len) {
        let r = server.bulk(&ingest, &Value::Array(chunk.to_vec()));
        let status = r.status().as_u16();
        let body: Value = r.json().unwrap_or(Value::Null);
        assert_eq!(status, 202, "bulk answered {status}: {body}");
        assert_eq!(
            body["accepted"].as_u64(),
            Some(chunk.len() as u64),
            "all events of the batch must be accepted: {body}"
        );
        assert_eq!(
            body["rejected"].as_array().map(Vec::len),
            Some(0),
            "no event may be rejected: {body}"
        );
    }

    let range = json!([
        days[0].format("%Y-%m-%d").to_string(),
        days[days.len() - 1].format("%Y-%m-%d").to_string()
    ]);
    let sent = events.len() as f64;
    let got = server.wait_for_metric(
        &stats_key,
        SITE,
        &range,
        "events",
        sent,
        Duration::from_secs(30),
    );
    assert_eq!(got, sent, "events stored and queryable within 30 s");
    Fixture {
        server,
        stats_key,
        sessions,
        range,
        days,
    }
}

const ALL_METRICS: [&str; 7] = [
    "visitors",
    "visits",
    "pageviews",
    "events",
    "views_per_visit",
    "bounce_rate",
    "visit_duration",
];

fn check_all(errors: &mut Vec<String>, label: &str, got: &[f64], e: &Expect) {
    assert_eq!(got.len(), 7, "{label}: seven metrics expected, got {got:?}");
    check(
        errors,
        &format!("{label} visitors"),
        got[0],
        e.visitors,
        None,
    );
    check(errors, &format!("{label} visits"), got[1], e.visits, None);
    check(
        errors,
        &format!("{label} pageviews"),
        got[2],
        e.pageviews,
        None,
    );
    check(errors, &format!("{label} events"), got[3], e.events, None);
    check(
        errors,
        &format!("{label} views_per_visit"),
        got[4],
        e.views_per_visit,
        Some(2),
    );
    check(
        errors,
        &format!("{label} bounce_rate"),
        got[5],
        e.bounce_rate,
        Some(0),
    );
    check(
        errors,
        &format!("{label} visit_duration"),
        got[6],
        e.visit_duration,
        Some(0),
    );
}

/// Result rows keyed by their first dimension value.
fn rows_by_dim(rows: &[Value]) -> BTreeMap<String, Vec<f64>> {
    rows.iter()
        .map(|r| {
            let d = dimension_values(r);
            (d.first().cloned().unwrap_or_default(), metric_values(r))
        })
        .collect()
}

fn breakdown(
    f: &Fixture,
    dim: &str,
    metrics: &[&str],
    filters: Value,
) -> BTreeMap<String, Vec<f64>> {
    let q = json!({
        "site_id": SITE, "metrics": metrics, "date_range": f.range,
        "dimensions": [dim], "filters": filters,
    });
    let rows = f.server.query_ok(&f.stats_key, &q);
    let map = rows_by_dim(&rows);
    assert_eq!(map.len(), rows.len(), "duplicate {dim} rows: {rows:?}");
    map
}

/// Checks a breakdown: the set of row names and each row's values.
fn check_breakdown(
    errors: &mut Vec<String>,
    label: &str,
    got: &BTreeMap<String, Vec<f64>>,
    want: &BTreeMap<String, Vec<(f64, Option<i32>)>>,
) {
    let got_names: BTreeSet<&String> = got.keys().collect();
    let want_names: BTreeSet<&String> = want.keys().collect();
    if got_names != want_names {
        errors.push(format!(
            "{label}: rows {got_names:?}, expected {want_names:?}"
        ));
    }
    for (name, vals) in want {
        let Some(g) = got.get(name) else { continue };
        assert_eq!(g.len(), vals.len(), "{label} {name}: metric count");
        for (i, (exact, dec)) in vals.iter().enumerate() {
            check(
                errors,
                &format!("{label} [{name}] metric {i}"),
                g[i],
                *exact,
                *dec,
            );
        }
    }
}

#[test]
fn stats_api_matches_independently_computed_numbers() {
    let f = setup();
    let all: Vec<&Session> = f.sessions.iter().collect();
    let total = expect(&all);
    let mut errors = Vec::new();

    // --- aggregate ---
    let got = f
        .server
        .aggregate(&f.stats_key, SITE, &f.range, &ALL_METRICS);
    check_all(&mut errors, "aggregate", &got, &total);

    // --- daily timeseries, with time_labels ---
    let q = json!({
        "site_id": SITE, "metrics": ["visitors", "visits", "pageviews"],
        "date_range": f.range, "dimensions": ["time:day"],
        "include": {"time_labels": true},
    });
    let (status, body) = f.server.query(&f.stats_key, &q);
    assert_eq!(status, 200, "timeseries: {body}");
    let rows = body["results"].as_array().cloned().unwrap_or_default();
    let mut got_days = BTreeMap::new();
    for r in &rows {
        let d = dimension_values(r);
        let day = d.first().cloned().unwrap_or_default();
        // time:day values are dates (YYYY-MM-DD).
        got_days.insert(day.chars().take(10).collect::<String>(), metric_values(r));
    }
    let mut want_days = BTreeMap::new();
    for day in &f.days {
        let ss: Vec<&Session> = f.sessions.iter().filter(|s| s.day == *day).collect();
        if ss.is_empty() {
            continue;
        }
        let e = expect(&ss);
        want_days.insert(
            day.format("%Y-%m-%d").to_string(),
            vec![(e.visitors, None), (e.visits, None), (e.pageviews, None)],
        );
    }
    assert_eq!(want_days.len(), f.days.len(), "generator covers every day");
    check_breakdown(&mut errors, "time:day", &got_days, &want_days);
    let labels: Vec<String> = body["meta"]["time_labels"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or_default().chars().take(10).collect())
                .collect()
        })
        .unwrap_or_default();
    let want_labels: Vec<String> = f
        .days
        .iter()
        .map(|d| d.format("%Y-%m-%d").to_string())
        .collect();
    if labels != want_labels {
        errors.push(format!(
            "meta.time_labels: got {labels:?}, expected {want_labels:?} (body meta: {})",
            body["meta"]
        ));
    }
    // include.imports: footfall has no imported data kept apart (imports are events), so
    // the numbers are the same and meta says why nothing was added, as Plausible says it.
    let q = json!({
        "site_id": SITE, "metrics": ["visitors", "pageviews"], "date_range": f.range,
        "include": {"imports": true},
    });
    let (status, body) = f.server.query(&f.stats_key, &q);
    assert_eq!(status, 200, "imports: {body}");
    assert_eq!(
        body["meta"],
        json!({"imports_included": false, "imports_skip_reason": "no_imported_data"})
    );
    assert_eq!(
        metric_values(&body["results"][0]),
        vec![total.visitors, total.pageviews],
        "include.imports changes no number"
    );
    // The daily rows come in time order by default.
    let order: Vec<String> = rows
        .iter()
        .map(|r| dimension_values(r).first().cloned().unwrap_or_default())
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    if order != sorted {
        errors.push(format!("time:day rows not in ascending order: {order:?}"));
    }

    // --- breakdown by event:page (visitors, pageviews) ---
    let mut want = BTreeMap::new();
    for (page, _) in PAGES {
        let visitors: BTreeSet<usize> = f
            .sessions
            .iter()
            .filter(|s| s.pageviews().any(|e| e.path == *page))
            .map(|s| s.visitor)
            .collect();
        let pvs: usize = f
            .sessions
            .iter()
            .map(|s| s.pageviews().filter(|e| e.path == *page).count())
            .sum();
        if pvs > 0 {
            want.insert(
                page.to_string(),
                vec![(visitors.len() as f64, None), (pvs as f64, None)],
            );
        }
    }
    let got = breakdown(&f, "event:page", &["visitors", "pageviews"], json!([]));
    check_breakdown(&mut errors, "event:page", &got, &want);

    // --- breakdown by visit:source (visitors, visits, percentage) ---
    // Each visitor always arrives the same way, so the per-source visitor counts sum to the
    // total and `percentage` has one meaning.
    let mut want = BTreeMap::new();
    for a in ARRIVALS {
        let ss: Vec<&Session> = f.sessions.iter().filter(|s| s.source == a.source).collect();
        if ss.is_empty() {
            continue;
        }
        let e = expect(&ss);
        want.insert(
            a.source.to_string(),
            vec![
                (e.visitors, None),
                (e.visits, None),
                (e.visitors / total.visitors * 100.0, Some(1)),
            ],
        );
    }
    let got = breakdown(
        &f,
        "visit:source",
        &["visitors", "visits", "percentage"],
        json!([]),
    );
    check_breakdown(&mut errors, "visit:source", &got, &want);

    // --- breakdown by visit:entry_page (visits, visitors, bounce_rate) ---
    let mut want = BTreeMap::new();
    for (page, _) in PAGES {
        let ss: Vec<&Session> = f.sessions.iter().filter(|s| s.entry() == *page).collect();
        if ss.is_empty() {
            continue;
        }
        let e = expect(&ss);
        want.insert(
            page.to_string(),
            vec![
                (e.visits, None),
                (e.visitors, None),
                (e.bounce_rate, Some(0)),
            ],
        );
    }
    let got = breakdown(
        &f,
        "visit:entry_page",
        &["visits", "visitors", "bounce_rate"],
        json!([]),
    );
    check_breakdown(&mut errors, "visit:entry_page", &got, &want);

    // --- breakdown by visit:exit_page (visits) ---
    let mut want = BTreeMap::new();
    for (page, _) in PAGES {
        let n = f.sessions.iter().filter(|s| s.exit() == *page).count();
        if n > 0 {
            want.insert(page.to_string(), vec![(n as f64, None)]);
        }
    }
    let got = breakdown(&f, "visit:exit_page", &["visits"], json!([]));
    check_breakdown(&mut errors, "visit:exit_page", &got, &want);

    finish(errors);
}

/// Expected (visitors, visits, pageviews, bounce_rate) for an `event:page` filter: visitors
/// and visits that contain a matching page view, page views on matching pages, bounce rate
/// over the visits that entered on a matching page.
fn page_filter_expect(f: &Fixture, pred: &dyn Fn(&str) -> bool) -> [(f64, Option<i32>); 4] {
    let containing: Vec<&Session> = f.sessions.iter().filter(|s| s.has_page(pred)).collect();
    let visitors: BTreeSet<usize> = containing.iter().map(|s| s.visitor).collect();
    let pvs: usize = f
        .sessions
        .iter()
        .map(|s| s.pageviews().filter(|e| pred(e.path)).count())
        .sum();
    let entered: Vec<&Session> = f.sessions.iter().filter(|s| pred(s.entry())).collect();
    let e = expect(&entered);
    [
        (visitors.len() as f64, None),
        (containing.len() as f64, None),
        (pvs as f64, None),
        (e.bounce_rate, Some(0)),
    ]
}

#[test]
fn filters_and_goals_match_independently_computed_numbers() {
    let f = setup();
    let all: Vec<&Session> = f.sessions.iter().collect();
    let total = expect(&all);
    let mut errors = Vec::new();
    let page_metrics = ["visitors", "visits", "pageviews", "bounce_rate"];

    let page_case =
        |errors: &mut Vec<String>, label: &str, filters: Value, pred: &dyn Fn(&str) -> bool| {
            let got =
                f.server
                    .aggregate_filtered(&f.stats_key, SITE, &f.range, &page_metrics, &filters);
            let want = page_filter_expect(&f, pred);
            for (i, (exact, dec)) in want.iter().enumerate() {
                check(
                    errors,
                    &format!("{label} {}", page_metrics[i]),
                    got[i],
                    *exact,
                    *dec,
                );
            }
        };

    // is, one value
    page_case(
        &mut errors,
        "is event:page /pricing",
        json!([["is", "event:page", ["/pricing"]]]),
        &|p| p == "/pricing",
    );
    // is, several values (OR-ed)
    page_case(
        &mut errors,
        "is event:page [/about,/contact]",
        json!([["is", "event:page", ["/about", "/contact"]]]),
        &|p| p == "/about" || p == "/contact",
    );
    // contains
    page_case(
        &mut errors,
        "contains event:page /blog",
        json!([["contains", "event:page", ["/blog"]]]),
        &|p| p.contains("/blog"),
    );

    // is_not on visit:source: all metrics over the visits from other sources.
    let ss: Vec<&Session> = f.sessions.iter().filter(|s| s.source != "Google").collect();
    let got = f.server.aggregate_filtered(
        &f.stats_key,
        SITE,
        &f.range,
        &ALL_METRICS,
        &json!([["is_not", "visit:source", ["Google"]]]),
    );
    check_all(
        &mut errors,
        "is_not visit:source Google",
        &got,
        &expect(&ss),
    );

    // not(is) on visit:source
    let ss: Vec<&Session> = f
        .sessions
        .iter()
        .filter(|s| s.source != "Direct / None")
        .collect();
    let got = f.server.aggregate_filtered(
        &f.stats_key,
        SITE,
        &f.range,
        &ALL_METRICS,
        &json!([["not", ["is", "visit:source", ["Direct / None"]]]]),
    );
    check_all(
        &mut errors,
        "not is visit:source Direct",
        &got,
        &expect(&ss),
    );

    // or of two visit:source filters
    let ss: Vec<&Session> = f
        .sessions
        .iter()
        .filter(|s| s.source == "Twitter" || s.source == "Hacker News")
        .collect();
    let got = f.server.aggregate_filtered(
        &f.stats_key,
        SITE,
        &f.range,
        &ALL_METRICS,
        &json!([[
            "or",
            [
                ["is", "visit:source", ["Twitter"]],
                ["is", "visit:source", ["Hacker News"]]
            ]
        ]]),
    );
    check_all(
        &mut errors,
        "or visit:source Twitter|HN",
        &got,
        &expect(&ss),
    );

    // Visit filter with an event breakdown: pages seen by visits that came from Google.
    let mut want = BTreeMap::new();
    for (page, _) in PAGES {
        let ss: Vec<&Session> = f.sessions.iter().filter(|s| s.source == "Google").collect();
        let visitors: BTreeSet<usize> = ss
            .iter()
            .filter(|s| s.pageviews().any(|e| e.path == *page))
            .map(|s| s.visitor)
            .collect();
        let pvs: usize = ss
            .iter()
            .map(|s| s.pageviews().filter(|e| e.path == *page).count())
            .sum();
        if pvs > 0 {
            want.insert(
                page.to_string(),
                vec![(visitors.len() as f64, None), (pvs as f64, None)],
            );
        }
    }
    let got = breakdown(
        &f,
        "event:page",
        &["visitors", "pageviews"],
        json!([["is", "visit:source", ["Google"]]]),
    );
    check_breakdown(&mut errors, "event:page where source=Google", &got, &want);

    // Event filter with a visit breakdown: sources of the visits that viewed /pricing.
    let mut want = BTreeMap::new();
    for a in ARRIVALS {
        let ss: Vec<&Session> = f
            .sessions
            .iter()
            .filter(|s| s.source == a.source && s.has_page(&|p| p == "/pricing"))
            .collect();
        if ss.is_empty() {
            continue;
        }
        let visitors: BTreeSet<usize> = ss.iter().map(|s| s.visitor).collect();
        want.insert(
            a.source.to_string(),
            vec![(visitors.len() as f64, None), (ss.len() as f64, None)],
        );
    }
    let got = breakdown(
        &f,
        "visit:source",
        &["visitors", "visits"],
        json!([["is", "event:page", ["/pricing"]]]),
    );
    check_breakdown(&mut errors, "visit:source where page=/pricing", &got, &want);

    // Goal: every custom event name is a goal. Conversion rate over all visitors.
    let converted: BTreeSet<usize> = f
        .sessions
        .iter()
        .filter(|s| s.signups() > 0)
        .map(|s| s.visitor)
        .collect();
    let signups: usize = f.sessions.iter().map(|s| s.signups()).sum();
    assert!(signups > 0, "generator made signups");
    let rate = converted.len() as f64 / total.visitors * 100.0;
    let got = f.server.aggregate_filtered(
        &f.stats_key,
        SITE,
        &f.range,
        &["visitors", "events", "conversion_rate"],
        &json!([["is", "event:goal", ["Signup"]]]),
    );
    check(
        &mut errors,
        "goal Signup visitors",
        got[0],
        converted.len() as f64,
        None,
    );
    check(
        &mut errors,
        "goal Signup events",
        got[1],
        signups as f64,
        None,
    );
    check(
        &mut errors,
        "goal Signup conversion_rate",
        got[2],
        rate,
        Some(1),
    );

    let got = breakdown(
        &f,
        "event:goal",
        &["visitors", "events", "conversion_rate"],
        json!([]),
    );
    let mut want = BTreeMap::new();
    want.insert(
        "Signup".to_string(),
        vec![
            (converted.len() as f64, None),
            (signups as f64, None),
            (rate, Some(1)),
        ],
    );
    check_breakdown(&mut errors, "event:goal", &got, &want);

    finish(errors);
}

/// The generator itself keeps the rules the expectations rely on (no server needed).
#[test]
fn generated_sessions_follow_the_30_minute_rule() {
    let first_day = NaiveDate::from_ymd_opt(2026, 3, 1).expect("date");
    let (sessions, arrivals) = generate(0x0000_f007_fa11, first_day);
    assert_eq!(arrivals.len(), VISITORS);
    let mut by_visitor: BTreeMap<usize, Vec<&Session>> = BTreeMap::new();
    for s in &sessions {
        assert_eq!(
            s.events[0].name, "pageview",
            "a session starts with a page view"
        );
        for w in s.events.windows(2) {
            let gap = w[1].ts - w[0].ts;
            assert!((0..30 * 60).contains(&gap), "in-session gap {gap}");
        }
        let first = s.events[0].ts;
        let last = s.events[s.events.len() - 1].ts;
        let day_of = |t: i64| Utc.timestamp_opt(t, 0).single().expect("ts").date_naive();
        assert_eq!(day_of(first), s.day, "session starts on its day");
        assert_eq!(day_of(last), s.day, "session ends on its day");
        by_visitor.entry(s.visitor).or_default().push(s);
    }
    for ss in by_visitor.values() {
        for w in ss.windows(2) {
            let gap = w[1].events[0].ts - w[0].events[w[0].events.len() - 1].ts;
            assert!(gap > 30 * 60, "gap between sessions {gap}");
        }
    }
    let days: BTreeSet<NaiveDate> = sessions.iter().map(|s| s.day).collect();
    assert_eq!(days.len() as i64, DAYS, "every day has sessions");
    assert!(sessions.iter().any(|s| s.bounced()));
    assert!(
        sessions
            .iter()
            .any(|s| s.signups() > 0 && s.pageview_count() == 1)
    );
    let events: usize = sessions.iter().map(|s| s.events.len()).sum();
    assert!(events > 1000, "{events} events");
    let json = to_json_events(&sessions, &arrivals);
    assert_eq!(json.len(), events);
    let ids: BTreeSet<&str> = json.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids.len(), events, "ids are unique");
}

/// DESIGN §3: visits are decided by event time, not arrival time. One bulk body with the
/// fixture's events in random order must give the numbers of the same events sent in
/// time order: visits, bounce rate and duration, and each visit's entry page, source
/// (both from its first event) and exit page. Sessionized in request order, a later hit
/// opened the visit (its entry page and a "Direct / None" source from the internal
/// referrer) and engagement-free visits split; the exit page breakdown with page views
/// also answered 500 (a binder error on the exits join).
#[test]
fn a_bulk_body_out_of_time_order_is_sessionized_by_event_time() {
    let f = setup_sending(true);
    let all: Vec<&Session> = f.sessions.iter().collect();
    let mut errors = Vec::new();
    let got = f
        .server
        .aggregate(&f.stats_key, SITE, &f.range, &ALL_METRICS);
    check_all(&mut errors, "shuffled aggregate", &got, &expect(&all));

    type Key = fn(&Session) -> &'static str;
    let source: Key = |s| s.source;
    let entry: Key = |s| s.entry();
    let exit: Key = |s| s.exit();
    for (dim, key) in [
        ("visit:source", source),
        ("visit:entry_page", entry),
        ("visit:exit_page", exit),
    ] {
        let mut groups: BTreeMap<String, Vec<&Session>> = BTreeMap::new();
        for s in &f.sessions {
            groups.entry(key(s).to_string()).or_default().push(s);
        }
        // Page views (an event metric) cannot be broken down by the session-only entry
        // and exit pages (Plausible's TableDecider answers 400).
        let pageviews = dim == "visit:source";
        let want = groups
            .iter()
            .map(|(name, ss)| {
                let e = expect(ss);
                let mut vals = vec![(e.visitors, None), (e.visits, None)];
                if pageviews {
                    vals.push((e.pageviews, None));
                }
                vals.extend([(e.bounce_rate, Some(0)), (e.visit_duration, Some(0))]);
                (name.clone(), vals)
            })
            .collect();
        let mut metrics = vec!["visitors", "visits"];
        if pageviews {
            metrics.push("pageviews");
        }
        metrics.extend(["bounce_rate", "visit_duration"]);
        let got = breakdown(&f, dim, &metrics, json!([]));
        check_breakdown(&mut errors, &format!("shuffled {dim}"), &got, &want);
    }
    finish(errors);
}

/// A visit's first event sent in a later bulk body than its other events (within the
/// session timeout of them) still is the visit's first event: it gives the visit its
/// entry page and source (DESIGN §4: `visit:*` values come from the session's first
/// event) and its start. Before, the visit kept the entry page and the "Direct / None"
/// source of the hit that happened to arrive first.
#[test]
fn a_first_event_sent_late_still_opens_its_visit() {
    let server = Server::start();
    server.add_site(SITE, "UTC");
    let ingest = server.create_key(SITE, "ingest");
    let stats_key = server.create_key(SITE, "stats");
    let day = Utc::now().date_naive() - ChronoDuration::days(2);
    let noon = Utc
        .from_utc_datetime(&day.and_hms_opt(12, 0, 0).expect("noon"))
        .timestamp();
    let at = |mins: i64| {
        Utc.timestamp_opt(noon + mins * 60, 0)
            .single()
            .expect("ts")
            .to_rfc3339_opts(SecondsFormat::Secs, true)
    };
    let ev = |id: &str, mins: i64, path: &str| {
        json!({"id": id, "name": "pageview", "url": format!("https://{SITE}{path}"),
               "timestamp": at(mins), "visitor_id": "late-1", "user_agent": CHROME_UA})
    };
    // (minutes after noon, page) in time order; the first is sent last, with the
    // visit's external referrer.
    let visit = [(0, "/one"), (20, "/two"), (25, "/three")];
    let first_body = json!([
        ev("late-b", visit[1].0, visit[1].1),
        ev("late-c", visit[2].0, visit[2].1)
    ]);
    let mut opening = ev("late-a", visit[0].0, visit[0].1);
    opening["referrer"] = json!("https://news.ycombinator.com/");
    for body in [first_body, json!([opening])] {
        let r = server.bulk(&ingest, &body);
        assert_eq!(r.status().as_u16(), 202);
    }
    let range = json!([
        day.format("%Y-%m-%d").to_string(),
        day.format("%Y-%m-%d").to_string()
    ]);
    let sent = visit.len() as f64;
    let got = server.wait_for_metric(
        &stats_key,
        SITE,
        &range,
        "pageviews",
        sent,
        Duration::from_secs(30),
    );
    assert_eq!(got, sent, "page views stored");

    let duration = ((visit[2].0 - visit[0].0) * 60) as f64;
    let got = server.aggregate(
        &stats_key,
        SITE,
        &range,
        &["visits", "visit_duration", "bounce_rate"],
    );
    assert_eq!(
        got,
        vec![1.0, duration, 0.0],
        "one visit of three page views"
    );
    for (dim, want) in [
        ("visit:entry_page", visit[0].1),
        ("visit:exit_page", visit[2].1),
        ("visit:source", "Hacker News"),
    ] {
        let rows = server.query_ok(
            &stats_key,
            &json!({"site_id": SITE, "metrics": ["visits"], "date_range": range, "dimensions": [dim]}),
        );
        let got: Vec<(Vec<String>, Vec<f64>)> = rows
            .iter()
            .map(|r| (dimension_values(r), metric_values(r)))
            .collect();
        assert_eq!(got, vec![(vec![want.to_string()], vec![1.0])], "{dim}");
    }
}

/// Ties round to the even neighbour, as ClickHouse's `round` on floats does in the
/// formulas Plausible uses (REFERENCE §3.5) and as Python's `round` does: eight visits
/// with one bounce (12.5 %), 17 page views (2.125 per visit) and 420 s of duration
/// (52.5 s per visit) give 12, 2.12 and 52; rounding half up would give 13, 2.13 and 53.
#[test]
fn ties_round_to_the_even_neighbour() {
    let server = Server::start();
    let site = "ties.example";
    server.add_site(site, "UTC");
    let ingest = server.create_key(site, "ingest");
    let stats = server.create_key(site, "stats");
    // (page views, seconds from the first to the last) per visit.
    let visits: [(usize, i64); 8] = [
        (1, 0),
        (2, 60),
        (2, 60),
        (2, 60),
        (2, 60),
        (2, 60),
        (3, 60),
        (3, 60),
    ];
    let mut events = Vec::new();
    for (v, &(pageviews, duration)) in visits.iter().enumerate() {
        let start = Utc
            .with_ymd_and_hms(2026, 11, 10, 8 + v as u32, 0, 0)
            .single()
            .expect("start");
        for p in 0..pageviews {
            // The last page view ends the visit; the others are a second apart.
            let offset = if p + 1 == pageviews && p > 0 {
                duration
            } else {
                p as i64
            };
            let at = start + ChronoDuration::seconds(offset);
            events.push(json!({
                "id": format!("tie-{v}-{p}"),
                "name": "pageview",
                "url": format!("https://{site}/p{p}"),
                "timestamp": at.to_rfc3339_opts(SecondsFormat::Secs, true),
                "visitor_id": format!("tie-visitor-{v}"),
                "user_agent": CHROME_UA,
            }));
        }
    }
    let sent: usize = visits.iter().map(|v| v.0).sum();
    let bounces = visits.iter().filter(|v| v.0 == 1).count();
    let seconds: i64 = visits.iter().map(|v| v.1).sum();
    // The exact values are ties, which is what this test is about.
    assert_eq!(100.0 * bounces as f64 / visits.len() as f64, 12.5);
    assert_eq!(sent as f64 / visits.len() as f64, 2.125);
    assert_eq!(seconds as f64 / visits.len() as f64, 52.5);
    let range = json!(["2026-11-10", "2026-11-10"]);
    let events = Value::Array(events);
    server.bulk_until_stored(
        &ingest,
        &stats,
        site,
        &events,
        &range,
        "pageviews",
        sent as f64,
    );
    let m = server.aggregate(
        &stats,
        site,
        &range,
        &["visits", "bounce_rate", "views_per_visit", "visit_duration"],
    );
    assert_eq!(m, vec![8.0, 12.0, 2.12, 52.0]);
}

/// A visit's custom event carries the page it was sent from: in a breakdown by
/// `event:page` the visit is one of that page's visits, as it is one of its visitors and
/// as the `event:page` filter counts it (DESIGN §4: an `event:` key restricts to the
/// matching events, and for visit metrics to the visits that contain one).
#[test]
fn visits_by_page_count_custom_events_on_the_page() {
    let server = Server::start();
    let site = "pagevisits.example";
    server.add_site(site, "UTC");
    let ingest = server.create_key(site, "ingest");
    let stats = server.create_key(site, "stats");
    let at = |visit: u32, secs: i64| {
        (Utc.with_ymd_and_hms(2026, 11, 10, 8 + visit, 0, 0)
            .single()
            .expect("start")
            + ChronoDuration::seconds(secs))
        .to_rfc3339_opts(SecondsFormat::Secs, true)
    };
    // Visit 0 views / and sends Signup from /signup (a server-side event, no page view
    // of /signup); visit 1 views /signup.
    let events = json!([
        {"id": "pv-0", "name": "pageview", "url": format!("https://{site}/"),
         "timestamp": at(0, 0), "visitor_id": "a", "user_agent": CHROME_UA},
        {"id": "su-0", "name": "Signup", "url": format!("https://{site}/signup"),
         "timestamp": at(0, 60), "visitor_id": "a", "user_agent": CHROME_UA},
        {"id": "pv-1", "name": "pageview", "url": format!("https://{site}/signup"),
         "timestamp": at(1, 0), "visitor_id": "b", "user_agent": CHROME_UA},
    ]);
    let range = json!(["2026-11-10", "2026-11-10"]);
    server.bulk_until_stored(&ingest, &stats, site, &events, &range, "events", 3.0);

    let filtered = server.aggregate_filtered(
        &stats,
        site,
        &range,
        &["visitors", "visits"],
        &json!([["is", "event:page", ["/signup"]]]),
    );
    assert_eq!(filtered, vec![2.0, 2.0], "page=/signup: visitors, visits");
    for filters in [json!([]), json!([["is_not", "event:name", ["pageview"]]])] {
        let rows = server.query_ok(
            &stats,
            &json!({"site_id": site, "metrics": ["visitors", "visits", "events"],
                    "date_range": range, "dimensions": ["event:page"], "filters": filters}),
        );
        let signup: Vec<Vec<f64>> = rows
            .iter()
            .filter(|r| dimension_values(r) == ["/signup"])
            .map(metric_values)
            .collect();
        let want = if filters == json!([]) {
            vec![2.0, 2.0, 2.0]
        } else {
            vec![1.0, 1.0, 1.0]
        };
        assert_eq!(
            signup,
            vec![want],
            "/signup row with filters {filters}: {rows:?}"
        );
    }
}

/// `group_conversion_rate` (REFERENCE §2.2, Plausible's Stats API v2): a row's converted
/// visitors over all visitors of the same row, i.e. the denominator is the query without
/// its goal and property filters, per group of the non-goal dimensions; `conversion_rate`
/// keeps the whole range's visitors as its denominator.
#[test]
fn group_conversion_rate_divides_by_the_rows_own_visitors() {
    let server = Server::start();
    let site = "groupcr.example";
    server.add_site(site, "UTC");
    let ingest = server.create_key(site, "ingest");
    let stats = server.create_key(site, "stats");
    // (visitor, referrer, signs up): Google 2 visitors (1 converts), direct 4 (1 converts).
    let visitors = [
        ("g1", Some("https://www.google.com/"), true),
        ("g2", Some("https://www.google.com/"), false),
        ("d1", None, true),
        ("d2", None, false),
        ("d3", None, false),
        ("d4", None, false),
    ];
    let mut events = Vec::new();
    for (i, (v, referrer, signs_up)) in visitors.iter().enumerate() {
        let start = Utc
            .with_ymd_and_hms(2026, 11, 10, 8 + i as u32, 0, 0)
            .single()
            .expect("start");
        events.push(json!({
            "id": format!("{v}-pv"), "name": "pageview", "url": format!("https://{site}/"),
            "timestamp": start.to_rfc3339_opts(SecondsFormat::Secs, true),
            "visitor_id": v, "user_agent": CHROME_UA, "referrer": referrer,
        }));
        if *signs_up {
            events.push(json!({
                "id": format!("{v}-su"), "name": "Signup", "url": format!("https://{site}/"),
                "timestamp": (start + ChronoDuration::seconds(30)).to_rfc3339_opts(SecondsFormat::Secs, true),
                "visitor_id": v, "user_agent": CHROME_UA,
            }));
        }
    }
    let sent = events.len() as f64;
    let range = json!(["2026-11-10", "2026-11-10"]);
    let events = Value::Array(events);
    server.bulk_until_stored(&ingest, &stats, site, &events, &range, "events", sent);

    let rows = |dims: Value| {
        let rows = server.query_ok(
            &stats,
            &json!({"site_id": site, "date_range": range, "dimensions": dims,
                    "metrics": ["visitors", "group_conversion_rate", "conversion_rate"],
                    "filters": [["is", "event:goal", ["Signup"]]]}),
        );
        rows.iter()
            .map(|r| (dimension_values(r), metric_values(r)))
            .collect::<BTreeMap<_, _>>()
    };
    let by_source = rows(json!(["visit:source"]));
    assert_eq!(
        by_source,
        BTreeMap::from([
            (vec!["Direct / None".to_string()], vec![1.0, 25.0, 16.7]),
            (vec!["Google".to_string()], vec![1.0, 50.0, 16.7]),
        ])
    );
    let by_goal_and_source = rows(json!(["event:goal", "visit:source"]));
    assert_eq!(
        by_goal_and_source,
        BTreeMap::from([
            (
                vec!["Signup".to_string(), "Direct / None".to_string()],
                vec![1.0, 25.0, 16.7]
            ),
            (
                vec!["Signup".to_string(), "Google".to_string()],
                vec![1.0, 50.0, 16.7]
            ),
        ])
    );
    // Without other dimensions the group is the whole range: the two rates agree.
    let by_goal = rows(json!(["event:goal"]));
    assert_eq!(
        by_goal,
        BTreeMap::from([(vec!["Signup".to_string()], vec![2.0, 33.3, 33.3])])
    );
    let (status, body) = server.query(
        &stats,
        &json!({"site_id": site, "date_range": range, "metrics": ["group_conversion_rate"]}),
    );
    assert_eq!(status, 400, "group_conversion_rate without a goal: {body}");
}

/// `time` (auto) is hourly for ranges up to two days (API.md §6), counted in the site's
/// days: two days that include the autumn DST day (25 hours) are still two days.
#[test]
fn auto_time_buckets_count_local_days_across_dst() {
    let server = Server::start();
    let site = "autotime.example";
    server.add_site(site, "America/New_York");
    let ingest = server.create_key(site, "ingest");
    let stats = server.create_key(site, "stats");
    // 2026-11-01 10:00 EST.
    let events = json!([{"id": "t-1", "name": "pageview", "url": format!("https://{site}/"),
        "timestamp": "2026-11-01T15:00:00Z", "visitor_id": "t", "user_agent": CHROME_UA}]);
    let range = json!(["2026-11-01", "2026-11-02"]);
    server.bulk_until_stored(&ingest, &stats, site, &events, &range, "pageviews", 1.0);
    let rows = server.query_ok(
        &stats,
        &json!({"site_id": site, "metrics": ["pageviews"], "date_range": range,
                "dimensions": ["time"]}),
    );
    let got: Vec<Vec<String>> = rows.iter().map(dimension_values).collect();
    assert_eq!(got, vec![vec!["2026-11-01 10:00:00".to_string()]]);
}

/// The response of `POST /api/v2/query` as Plausible's `QueryResult` builds it: the
/// `query` echo lists only the `include` options that are on (`{}` by default, the docs'
/// "include": {"time_labels": true}), writes a UTC site's range with `Z` as its tests
/// expect (`["2021-01-01T00:00:00Z", "2021-01-01T23:59:59Z"]`) and another zone's with
/// its offset, and `meta` carries `time_labels` / `total_rows` only when asked. A
/// combination Plausible refuses is a 400 with its text (and footfall's code).
#[test]
fn v2_response_shape_as_plausible() {
    let server = Server::start();
    server.add_site("utc.example", "UTC");
    server.add_site("tallinn.example", "Europe/Tallinn");
    let token = server.admin_token();
    let range = json!(["2021-01-01", "2021-01-01"]);
    for site in ["utc.example", "tallinn.example"] {
        let ingest = server.create_key(site, "ingest");
        // Two visitors on /, one on /about, at noon UTC (the same day in Tallinn).
        let events: Vec<Value> = [("a", "/"), ("b", "/"), ("c", "/about")]
            .iter()
            .map(|(v, page)| {
                json!({"name": "pageview", "url": format!("https://{site}{page}"),
                       "domain": site, "timestamp": "2021-01-01T12:00:00Z",
                       "visitor_id": v, "user_agent": CHROME_UA})
            })
            .collect();
        server.bulk_until_stored(
            &ingest,
            &token,
            site,
            &json!(events),
            &range,
            "visitors",
            3.0,
        );
    }

    let (status, body) = server.query(
        &token,
        &json!({"site_id": "utc.example", "metrics": ["visitors"], "date_range": range,
                "dimensions": ["event:page"]}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["results"],
        json!([{"dimensions": ["/"], "metrics": [2]}, {"dimensions": ["/about"], "metrics": [1]}])
    );
    assert_eq!(body["meta"], json!({}));
    assert_eq!(
        body["query"],
        json!({"site_id": "utc.example", "metrics": ["visitors"],
               "date_range": ["2021-01-01T00:00:00Z", "2021-01-01T23:59:59Z"],
               "filters": [], "dimensions": ["event:page"],
               "order_by": [["visitors", "desc"]], "include": {},
               "pagination": {"limit": 10000, "offset": 0}})
    );

    let (status, body) = server.query(
        &token,
        &json!({"site_id": "tallinn.example", "metrics": ["visitors"], "date_range": range,
                "dimensions": ["time:hour"],
                "include": {"time_labels": true, "total_rows": true, "imports": false}}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["query"]["date_range"],
        json!(["2021-01-01T00:00:00+02:00", "2021-01-01T23:59:59+02:00"])
    );
    assert_eq!(
        body["query"]["include"],
        json!({"time_labels": true, "total_rows": true})
    );
    assert_eq!(
        body["query"]["order_by"],
        json!([["time:hour", "asc"], ["visitors", "desc"]])
    );
    // Noon UTC is 14:00 in Tallinn; 24 hourly labels; one row.
    assert_eq!(
        body["results"],
        json!([{"dimensions": ["2021-01-01 14:00:00"], "metrics": [3]}])
    );
    let labels = body["meta"]["time_labels"].as_array().expect("time_labels");
    assert_eq!(labels.len(), 24);
    assert_eq!(labels[0], json!("2021-01-01 00:00:00"));
    assert_eq!(body["meta"]["total_rows"], json!(1));

    // Plausible's query_validations_test: views_per_visit with an event:page filter.
    let (status, body) = server.query(
        &token,
        &json!({"site_id": "utc.example", "metrics": ["views_per_visit"], "date_range": "all",
                "filters": [["is", "event:page", ["/something"]]]}),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body,
        json!({"error": "Metric `views_per_visit` cannot be queried with a filter on `event:page`.",
               "code": "invalid_query"})
    );
}

/// `"all"` starts on the day of the site's first event, as Plausible's `stats_start_date`:
/// the echo says so, `time` picks its bucket from that span, and the labels start there.
#[test]
fn all_starts_on_the_first_event_day() {
    let server = Server::start();
    server.add_site("all.example", "UTC");
    let token = server.admin_token();
    let ingest = server.create_key("all.example", "ingest");
    let today = chrono::Utc::now().date_naive();
    let day = |back: i64| today - chrono::Duration::days(back);
    // Visitors a (5 days ago), b and c (2 days ago), c again (today, 00:00:01).
    let events: Vec<Value> = [("a", 5), ("b", 2), ("c", 2), ("c", 0)]
        .iter()
        .map(|(v, back)| {
            json!({"name": "pageview", "url": "https://all.example/", "domain": "all.example",
                   "timestamp": format!("{}T00:00:01Z", day(*back)), "visitor_id": v,
                   "user_agent": CHROME_UA})
        })
        .collect();
    server.bulk_until_stored(
        &ingest,
        &token,
        "all.example",
        &json!(events),
        &json!("all"),
        "pageviews",
        4.0,
    );

    let (status, body) = server.query(
        &token,
        &json!({"site_id": "all.example", "metrics": ["visitors"], "date_range": "all",
                "dimensions": ["time"], "include": {"time_labels": true}}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["query"]["date_range"],
        json!([
            format!("{}T00:00:00Z", day(5)),
            format!("{}T23:59:59Z", today)
        ])
    );
    // Six days: daily buckets (a span over two days), each day from the first listed.
    let labels: Vec<String> = (0..6).rev().map(|b| day(b).to_string()).collect();
    assert_eq!(body["meta"]["time_labels"], json!(labels));
    assert_eq!(
        body["results"],
        json!([
            {"dimensions": [day(5).to_string()], "metrics": [1]},
            {"dimensions": [day(2).to_string()], "metrics": [2]},
            {"dimensions": [today.to_string()], "metrics": [1]}
        ])
    );

    // A site without events: "all" is today.
    server.add_site("empty.example", "UTC");
    let (status, body) = server.query(
        &token,
        &json!({"site_id": "empty.example", "metrics": ["visitors"], "date_range": "all"}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["query"]["date_range"],
        json!([format!("{today}T00:00:00Z"), format!("{today}T23:59:59Z")])
    );
}
