//! Accuracy against third-party corpora in /work/shared/testdata (skipped when absent).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::OnceLock;

use footfall_enrich::ua::{UaParser, browser_display_name};
use serde::Deserialize;

fn testdata() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/testdata"
    ));
    if p.is_dir() {
        Some(p)
    } else {
        println!("note: {} absent; corpus test skipped", p.display());
        None
    }
}

fn parser() -> &'static UaParser {
    static P: OnceLock<UaParser> = OnceLock::new();
    P.get_or_init(UaParser::new)
}

#[derive(Deserialize)]
struct UaCases {
    test_cases: Vec<UaCase>,
}

#[derive(Deserialize)]
struct UaCase {
    user_agent_string: String,
    family: String,
}

fn ua_cases(dir: &std::path::Path) -> Vec<UaCase> {
    let text =
        std::fs::read_to_string(dir.join("uap-core/test_ua.yaml")).expect("read test_ua.yaml");
    let cases: UaCases = serde_yaml::from_str(&text).expect("parse test_ua.yaml");
    cases.test_cases
}

/// UAs that uap-core's test_device.yaml classifies as device family "Spider".
fn uap_spiders(dir: &std::path::Path) -> HashSet<String> {
    let text = std::fs::read_to_string(dir.join("uap-core/test_device.yaml"))
        .expect("read test_device.yaml");
    let cases: UaCases = serde_yaml::from_str(&text).expect("parse test_device.yaml");
    cases
        .test_cases
        .into_iter()
        .filter(|c| c.family == "Spider")
        .map(|c| c.user_agent_string)
        .collect()
}

/// crawler-user-agents patterns: an oracle independent of our own marker lists.
fn crawler_patterns(dir: &std::path::Path) -> regex::RegexSet {
    let text = std::fs::read_to_string(dir.join("crawler-user-agents/crawler-user-agents.json"))
        .expect("read crawler-user-agents.json");
    let crawlers: Vec<Crawler> = serde_json::from_str(&text).expect("parse crawler json");
    regex::RegexSet::new(crawlers.iter().map(|c| c.pattern.as_str())).expect("patterns compile")
}

/// Expected cases that are automated clients rather than people's browsers or apps:
/// matched by a crawler-user-agents pattern, self-declared (crawler/spider/robot wording,
/// a contact URL or e-mail address), a "Spider" in uap-core's test_device.yaml, or named like a bot/library/tool by uap-core.
fn expected_is_automated(
    case: &UaCase,
    patterns: &regex::RegexSet,
    uap_spiders: &HashSet<String>,
) -> bool {
    if uap_spiders.contains(&case.user_agent_string) {
        return true;
    }
    static SELF_DECLARED: OnceLock<regex::Regex> = OnceLock::new();
    let self_declared = SELF_DECLARED.get_or_init(|| {
        regex::Regex::new(
            r"(?i)crawl|spider|robot|scrap|\bbots?\b|bot[/.@]|https?://|mailto|@|\(at\)|\[at\]| at \S+ dot ",
        )
        .expect("regex compiles")
    });
    if patterns.is_match(&case.user_agent_string) || self_declared.is_match(&case.user_agent_string)
    {
        return true;
    }
    let f = case.family.to_ascii_lowercase();
    [
        "bot",
        "spider",
        "crawl",
        "slurp",
        "python",
        "java",
        "curl",
        "wget",
        "aws-sdk",
        "headless",
        "phantom",
        "go-http",
        "okhttp",
        "libwww",
        "httpclient",
        "synthetic",
        "wordpress",
        "cfnetwork",
        "monitor",
        "pingdom",
        "lighthouse",
        "apache",
        "ruby",
        "axios",
        "node",
        "google",
        "sdk",
        "scrapy",
        "feed",
        "fetcher",
        "indexer",
        "archive",
        "seeker",
        "search",
        "reqwest",
        "aws-cli",
        "postman",
        "guzzle",
        "resty",
        "winhttp",
        "jnlp",
        "prober",
    ]
    .iter()
    .any(|m| f.contains(m))
}

#[test]
fn uap_browser_family_agreement() {
    let Some(dir) = testdata() else { return };
    let p = parser();
    let cases = ua_cases(&dir);
    let mut ok = 0usize;
    let mut misses = Vec::new();
    for c in &cases {
        let got = p.parse_uncached(&c.user_agent_string);
        let want = browser_display_name(&c.family);
        if got.browser == want {
            ok += 1;
        } else if misses.len() < 15 {
            misses.push(format!(
                "want {want:?} got {:?}: {}",
                got.browser, c.user_agent_string
            ));
        }
    }
    let pct = 100.0 * ok as f64 / cases.len() as f64;
    println!(
        "uap-core test_ua.yaml browser family agreement: {ok}/{} = {pct:.2}%",
        cases.len()
    );
    for m in &misses {
        println!("  {m}");
    }
    assert!(pct >= 97.0, "browser agreement {pct:.2}% < 97%");
}

#[test]
fn uap_false_positive_bots() {
    let Some(dir) = testdata() else { return };
    let p = parser();
    let cases = ua_cases(&dir);
    let patterns = crawler_patterns(&dir);
    let spiders = uap_spiders(&dir);
    let mut total = 0usize;
    let mut flagged = Vec::new();
    for c in cases
        .iter()
        .filter(|c| !expected_is_automated(c, &patterns, &spiders))
    {
        total += 1;
        let got = p.parse_uncached(&c.user_agent_string);
        if let Some(r) = got.bot {
            flagged.push(format!(
                "[{}] {} ({})",
                r.as_str(),
                c.user_agent_string,
                c.family
            ));
        }
    }
    let pct = 100.0 * flagged.len() as f64 / total as f64;
    println!(
        "uap-core test_ua.yaml false-positive bots: {}/{total} = {pct:.2}% ({} of {} cases excluded as automated)",
        flagged.len(),
        cases.len() - total,
        cases.len()
    );
    for f in flagged.iter().take(400) {
        println!("  {f}");
    }
    assert!(pct <= 1.0, "false positive rate {pct:.2}% > 1%");
}

#[derive(Deserialize)]
struct Crawler {
    pattern: String,
    #[serde(default)]
    instances: Vec<String>,
}

#[test]
fn crawler_recall() {
    let Some(dir) = testdata() else { return };
    let text = std::fs::read_to_string(dir.join("crawler-user-agents/crawler-user-agents.json"))
        .expect("read crawler-user-agents.json");
    let crawlers: Vec<Crawler> = serde_json::from_str(&text).expect("parse crawler json");
    let p = parser();
    let mut total = 0usize;
    let mut missed = Vec::new();
    for ua in crawlers.iter().flat_map(|c| &c.instances) {
        total += 1;
        if p.parse_uncached(ua).bot.is_none() {
            missed.push(ua.clone());
        }
    }
    let hit = total - missed.len();
    let pct = 100.0 * hit as f64 / total as f64;
    println!("crawler-user-agents bot recall: {hit}/{total} = {pct:.2}%");
    for m in missed.iter().take(400) {
        println!("  missed: {m}");
    }
    assert!(pct >= 90.0, "bot recall {pct:.2}% < 90%");
}

/// Informational: verdicts over 10,000 real 2015 access-log lines (no threshold).
#[test]
fn access_log_bot_share() {
    let Some(dir) = testdata() else { return };
    let Ok(text) = std::fs::read_to_string(dir.join("access-logs/apache_logs.log")) else {
        println!("note: access log absent; skipped");
        return;
    };
    let p = parser();
    let mut by_reason: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut browsers_flagged = HashSet::new();
    let mut total = 0usize;
    for line in text.lines() {
        // Combined log format: the UA is the last quoted field.
        let Some(ua) = line.rsplit('"').nth(1) else {
            continue;
        };
        total += 1;
        let info = p.parse(ua);
        let key = info.bot.map_or("human", |r| r.as_str());
        *by_reason.entry(key).or_default() += 1;
        let browser_like = ua.starts_with("Mozilla/5.0 (") && !ua.contains("compatible;");
        if info.bot.is_some() && browser_like {
            browsers_flagged.insert(ua.to_string());
        }
    }
    println!("access log verdicts over {total} lines: {by_reason:?}");
    for ua in browsers_flagged.iter().take(30) {
        println!("  browser-like but flagged: {ua}");
    }
}
