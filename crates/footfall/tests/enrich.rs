//! `footfall enrich` and GeoIP start-up through the real binary: JSON lines in and out,
//! bad lines answered in place, crawler corpus recall through the pipe, corrupt GeoIP
//! databases refused at start-up with the file named, and locations reaching the Stats
//! API (`visit:country`, `visit:region`, `visit:city`, `visit:org`).

mod common;

use common::{BIN, CHROME_UA, Server, dimension_values, run_bin, write_config};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn testdata() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/testdata"
    ));
    if p.is_dir() {
        Some(p)
    } else {
        println!("note: {} absent; skipped", p.display());
        None
    }
}

/// Runs `footfall enrich <args>` with `input` on stdin; returns the output lines as JSON.
fn enrich(args: &[&str], input: &str) -> Vec<Value> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(BIN)
        .arg("enrich")
        .args(args)
        .current_dir(dir.path())
        .env_remove("FOOTFALL_GEOIP_CITY")
        .env_remove("FOOTFALL_GEOIP_ASN")
        .env_remove("FOOTFALL_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn footfall enrich");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().expect("wait for footfall enrich");
    writer.join().expect("stdin writer");
    assert!(
        out.status.success(),
        "footfall enrich failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("output line {l:?}: {e}")))
        .collect()
}

#[test]
fn json_lines_in_order_with_errors_in_place() {
    let input = [
        json!({"ua": CHROME_UA, "referrer": "https://news.ycombinator.com/item?id=1", "url": "https://example.com/a?utm_campaign=launch"}).to_string(),
        "{not json".to_string(),
        "[1, 2]".to_string(),
        json!({"ua": "curl/8.4.0", "url": "https://example.com/"}).to_string(),
        json!({"ua": CHROME_UA, "url": ""}).to_string(),
        json!({"ua": CHROME_UA, "ip": "not-an-ip"}).to_string(),
        json!({"headers": {"User-Agent": CHROME_UA, "Sec-CH-UA": "\"Chromium\";v=\"124\", \"Brave\";v=\"124\"", "sec-ch-ua-platform": "\"Windows\"", "Sec-CH-UA-Platform-Version": "\"15.0.0\""}}).to_string(),
    ]
    .join("\n");
    let out = enrich(&[], &input);
    assert_eq!(out.len(), 7, "{out:?}");
    let first = &out[0];
    assert_eq!(first["browser"], "Chrome");
    assert_eq!(first["os"], "Windows");
    assert_eq!(first["device"], "Desktop");
    assert_eq!(first["device_label"], "Windows - Chrome");
    assert_eq!(first["source"], "Hacker News");
    assert_eq!(first["channel"], "Organic Social");
    assert_eq!(first["utm_campaign"], "launch");
    assert_eq!(first["bot"], false);
    assert_eq!(first["country"], "");
    assert_eq!(first["city"], Value::Null);
    for key in [
        "browser_version",
        "os_version",
        "bot_reason",
        "utm_source",
        "utm_medium",
        "utm_content",
        "utm_term",
        "region",
        "org",
        "country_name",
        "region_name",
        "city_name",
    ] {
        assert!(first.get(key).is_some(), "field {key} missing in {first}");
    }
    assert!(out[1]["error"].as_str().is_some_and(|e| e.contains("JSON")));
    assert!(out[2]["error"].is_string());
    assert_eq!(out[3]["bot"], true);
    assert_eq!(out[3]["bot_reason"], "http_library");
    assert!(out[4]["error"].as_str().is_some_and(|e| e.contains("url")));
    assert!(out[5]["error"].as_str().is_some_and(|e| e.contains("ip")));
    assert_eq!(out[6]["browser"], "Brave");
    assert_eq!(out[6]["os_version"], "11");
}

#[test]
fn single_hit_from_flags() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run_bin(
        &[
            "enrich",
            "--ua",
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "--referrer",
            "https://chatgpt.com/",
        ],
        dir.path(),
    );
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(v["bot_reason"], "crawler");
    assert_eq!(v["device"], "Bot");
    assert_eq!(v["channel"], "AI Assistants");
}

#[test]
fn geoip_lookups_through_the_binary() {
    let Some(td) = testdata() else { return };
    let city = td.join("maxmind-db/test-data/GeoIP2-City-Test.mmdb");
    let asn = td.join("maxmind-db/test-data/GeoLite2-ASN-Test.mmdb");
    let input = [
        json!({"ua": CHROME_UA, "ip": "81.2.69.142"}).to_string(),
        json!({"ua": CHROME_UA, "ip": "1.128.0.1"}).to_string(),
        json!({"ua": CHROME_UA, "ip": "10.1.2.3"}).to_string(),
    ]
    .join("\n");
    let out = enrich(
        &[
            "--geoip-city",
            &city.display().to_string(),
            "--geoip-asn",
            &asn.display().to_string(),
        ],
        &input,
    );
    assert_eq!(out[0]["country"], "GB");
    assert_eq!(out[0]["country_name"], "United Kingdom");
    assert_eq!(out[0]["region"], "GB-ENG");
    assert_eq!(out[0]["city"], 2643743);
    assert_eq!(out[0]["city_name"], "London");
    assert_eq!(out[1]["org"], "Telstra Pty Ltd");
    assert_eq!(out[2]["country"], "");
    for line in &out {
        assert!(line.get("ip").is_none(), "the IP is never echoed: {line}");
    }
}

#[derive(serde::Deserialize)]
struct Crawler {
    #[serde(default)]
    instances: Vec<String>,
}

/// The crawler-user-agents corpus piped through the real binary (also a throughput
/// check: 2,116 distinct user agents, most of them uncached parses).
#[test]
fn crawler_corpus_through_the_binary() {
    let Some(td) = testdata() else { return };
    let text = std::fs::read_to_string(td.join("crawler-user-agents/crawler-user-agents.json"))
        .expect("read crawler corpus");
    let crawlers: Vec<Crawler> = serde_json::from_str(&text).expect("parse crawler corpus");
    let uas: Vec<&String> = crawlers.iter().flat_map(|c| &c.instances).collect();
    let input: String = uas
        .iter()
        .map(|ua| format!("{}\n", json!({"ua": ua})))
        .collect();
    let started = std::time::Instant::now();
    let out = enrich(&[], &input);
    println!(
        "{} lines through `footfall enrich` in {:.2} s",
        out.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(out.len(), uas.len());
    let bots = out.iter().filter(|v| v["bot"] == true).count();
    let recall = 100.0 * bots as f64 / uas.len() as f64;
    println!(
        "crawler recall through the binary: {bots}/{} = {recall:.2}%",
        uas.len()
    );
    assert!(recall >= 99.0, "recall {recall:.2}% below 99%");
}

fn corrupt_databases(maxmind: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
            let p = entry.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "mmdb") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&maxmind.join("bad-data"), &mut files);
    for name in [
        "MaxMind-DB-test-broken-pointers-24.mmdb",
        "MaxMind-DB-test-broken-search-tree-24.mmdb",
        "GeoIP2-City-Test-Broken-Double-Format.mmdb",
        "GeoIP2-City-Test-Invalid-Node-Count.mmdb",
    ] {
        files.push(maxmind.join("test-data").join(name));
    }
    files
}

#[test]
fn serve_refuses_corrupt_geoip_databases_naming_the_file() {
    let Some(td) = testdata() else { return };
    let files = corrupt_databases(&td.join("maxmind-db"));
    assert!(files.len() >= 20);
    for (flag, file) in files
        .iter()
        .map(|f| ("--geoip-city", f))
        .chain(files.iter().take(3).map(|f| ("--geoip-asn", f)))
    {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let path = file.display().to_string();
        let out = run_bin(
            &[
                "--data",
                &data.display().to_string(),
                "serve",
                "--listen",
                "127.0.0.1:0",
                flag,
                &path,
            ],
            dir.path(),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "serve {flag} {path} started; stderr:\n{stderr}"
        );
        assert!(
            stderr.contains(&path),
            "stderr for {path} does not name it:\n{stderr}"
        );
        assert!(
            !stderr.contains("panicked"),
            "serve {flag} {path} panicked:\n{stderr}"
        );
    }
    // A missing file too.
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run_bin(
        &[
            "--data",
            &dir.path().join("data").display().to_string(),
            "serve",
            "--geoip-asn",
            "/nonexistent/GeoLite2-ASN.mmdb",
        ],
        dir.path(),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/GeoLite2-ASN.mmdb"));
}

fn breakdown(s: &Server, key: &str, dim: &str) -> Vec<(String, f64)> {
    let q = json!({"site_id": "geo.example", "metrics": ["visitors"], "date_range": "all", "dimensions": [dim]});
    s.query_ok(key, &q)
        .iter()
        .map(|r| {
            (
                dimension_values(r).join("|"),
                r["metrics"][0].as_f64().unwrap_or(-1.0),
            )
        })
        .collect()
}

#[test]
fn locations_and_orgs_reach_the_stats_api() {
    let Some(td) = testdata() else { return };
    let city = td.join("maxmind-db/test-data/GeoIP2-City-Test.mmdb");
    let asn = td.join("maxmind-db/test-data/GeoLite2-ASN-Test.mmdb");
    let s = Server::start_with(&[
        "--geoip-city",
        &city.display().to_string(),
        "--geoip-asn",
        &asn.display().to_string(),
    ]);
    s.add_site("geo.example", "UTC");
    let key = s.create_key("geo.example", "stats");
    for (ip, path) in [
        ("81.2.69.142", "/a"),
        ("1.128.0.1", "/b"),
        ("2001:218::1", "/c"),
    ] {
        let body = json!({"name": "pageview", "url": format!("https://geo.example{path}"), "domain": "geo.example"});
        let r = s.post_event(&body.to_string(), CHROME_UA, Some(ip), "application/json");
        assert_eq!(r.status().as_u16(), 202);
    }
    s.wait_for_metric(
        &key,
        "geo.example",
        &json!("all"),
        "visitors",
        3.0,
        Duration::from_secs(20),
    );
    let countries = breakdown(&s, &key, "visit:country");
    assert!(countries.contains(&("GB".into(), 1.0)), "{countries:?}");
    assert!(countries.contains(&("JP".into(), 1.0)), "{countries:?}");
    let regions = breakdown(&s, &key, "visit:region");
    assert!(regions.contains(&("GB-ENG".into(), 1.0)), "{regions:?}");
    let cities = breakdown(&s, &key, "visit:city_name");
    assert!(cities.contains(&("London".into(), 1.0)), "{cities:?}");
    let orgs = breakdown(&s, &key, "visit:org");
    assert!(orgs.contains(&("Telstra Pty Ltd".into(), 1.0)), "{orgs:?}");
    // The raw address is nowhere in the data directory's files that the server wrote.
    let log = s.log();
    assert!(!log.contains("81.2.69.142"), "IP in the server log");
}

/// Source, referrer and channel of visits sent through `POST /api/event`, read back
/// with `visit:*` breakdowns: Plausible's channel names and rules ("Organic Video",
/// shopping, paid `utm_source` spellings, e-mail tags inside a source or medium),
/// localhost referrers ignored, the referrer's trailing slash trimmed; and cases of
/// Plausible's external_controller_test: ntp.msn.com is Bing, temu.com stays its host
/// (Organic Shopping), Linktree is Referral, a host as utm_source is kept verbatim
/// (chatgpt.com: AI Assistants), a `source=` tag is paid like utm_source
/// ("Google-ads is Google"), gclid is paid only for Google.
#[test]
fn sources_and_channels_reach_the_stats_api() {
    let s = Server::start();
    s.add_site("acq.example", "UTC");
    let key = s.create_key("acq.example", "stats");
    let cases = [
        ("/v", "https://www.youtube.com/watch", ""),
        ("/s", "https://www.amazon.co.uk/dp/1/", ""),
        ("/g", "", "?utm_source=adwords"),
        ("/f", "", "?utm_source=fb-ads"),
        ("/n", "", "?utm_source=acme&utm_medium=email-weekly"),
        ("/h", "https://github.com/org/repo/", ""),
        ("/l", "http://localhost:3000/admin", ""),
        ("/b", "https://blog.example.org/post/", ""),
        ("/m", "https://ntp.msn.com/edge/ntp?locale=en", ""),
        ("/t", "https://www.temu.com/x.html", ""),
        ("/k", "https://linktr.ee/someone", ""),
        ("/c", "", "?utm_source=chatgpt.com"),
        ("/a", "", "?source=Google-ads"),
        ("/d", "https://duckduckgo.com/", "?gclid=1"),
        ("/q", "https://www.google.com/", "?gclid=1"),
        ("/r", "", "?ref=producthunt"),
    ];
    for (i, (path, referrer, query)) in cases.iter().enumerate() {
        let body = json!({"name": "pageview", "url": format!("https://acq.example{path}{query}"), "domain": "acq.example", "referrer": referrer});
        let ip = format!("198.51.100.{}", i + 1);
        let r = s.post_event(&body.to_string(), CHROME_UA, Some(&ip), "application/json");
        assert_eq!(r.status().as_u16(), 202);
    }
    s.wait_for_metric(
        &key,
        "acq.example",
        &json!("all"),
        "visitors",
        cases.len() as f64,
        Duration::from_secs(20),
    );
    // Each visit's dimension values joined by `|`, sorted.
    let rows_by = |dims: Value| -> Vec<String> {
        let q = json!({"site_id": "acq.example", "metrics": ["visitors"], "date_range": "all",
            "dimensions": dims});
        let mut rows: Vec<String> = s
            .query_ok(&key, &q)
            .iter()
            .map(|r| dimension_values(r).join("|"))
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(
        rows_by(json!(["visit:entry_page", "visit:source", "visit:channel"])),
        vec![
            "/a|Google|Paid Search",
            "/b|blog.example.org|Referral",
            "/c|chatgpt.com|AI Assistants",
            "/d|DuckDuckGo|Organic Search",
            "/f|Facebook|Paid Social",
            "/g|Google|Paid Search",
            "/h|GitHub|Organic Social",
            "/k|Linktree|Referral",
            "/l|Direct / None|Direct",
            "/m|Bing|Organic Search",
            "/n|acme|Email",
            "/q|Google|Paid Search",
            "/r|producthunt|Organic Social",
            "/s|amazon.co.uk|Organic Shopping",
            "/t|temu.com|Organic Shopping",
            "/v|Youtube|Organic Video",
        ]
    );
    // utm_source and utm_medium as Plausible stores them (Ingestion.Event): the tag the
    // visit came with (utm_source, else source, else ref) as sent, and the medium
    // inferred from Google's gclid on an untagged link (not from DuckDuckGo's).
    for (dim, want) in [
        (
            "visit:utm_source",
            vec![
                "/a|Google-ads",
                "/c|chatgpt.com",
                "/f|fb-ads",
                "/g|adwords",
                "/n|acme",
                "/r|producthunt",
            ],
        ),
        ("visit:utm_medium", vec!["/n|email-weekly", "/q|(gclid)"]),
    ] {
        // The other visits have none: a "(not set)" row each (Plausible's v2).
        let (tagged, not_set): (Vec<String>, Vec<String>) =
            rows_by(json!(["visit:entry_page", dim]))
                .into_iter()
                .partition(|r| !r.ends_with("|(not set)"));
        assert_eq!(tagged, want, "{dim}");
        assert_eq!(tagged.len() + not_set.len(), 16, "{dim}: {not_set:?}");
    }
    let q = json!({"site_id": "acq.example", "metrics": ["visitors"], "date_range": "all",
        "dimensions": ["visit:referrer"]});
    let referrers: Vec<(String, f64)> = s
        .query_ok(&key, &q)
        .iter()
        .map(|r| {
            (
                dimension_values(r).join("|"),
                r["metrics"][0].as_f64().unwrap_or(-1.0),
            )
        })
        .collect();
    assert!(
        referrers.contains(&("blog.example.org/post".into(), 1.0)),
        "{referrers:?}"
    );
    assert!(
        referrers.contains(&("github.com/org/repo".into(), 1.0)),
        "{referrers:?}"
    );
    assert!(
        !referrers.iter().any(|(r, _)| r.contains("localhost")),
        "{referrers:?}"
    );
}

/// `event:hostname` is the page URL's host without `www.`, whatever `d` names: with no
/// allowed hostnames configured every hostname is stored (Plausible keeps them all;
/// its hostname allow-list is opt-in), subdomains and other domains included.
#[test]
fn every_hostname_is_stored_when_none_are_configured() {
    let s = Server::start();
    s.add_site("hosts.example", "UTC");
    let key = s.create_key("hosts.example", "stats");
    for (i, url) in [
        "https://www.hosts.example/a",
        "https://blog.hosts.example/b",
        "https://hosts-alias.example/c",
        "https://HOSTS.example:8443/d",
    ]
    .iter()
    .enumerate()
    {
        let body = json!({"name": "pageview", "url": url, "domain": "hosts.example"});
        let ip = format!("198.51.100.{}", i + 20);
        let r = s.post_event(&body.to_string(), CHROME_UA, Some(&ip), "application/json");
        assert_eq!(r.status().as_u16(), 202);
        assert!(r.headers().get("x-footfall-dropped").is_none(), "{url}");
    }
    s.wait_for_metric(
        &key,
        "hosts.example",
        &json!("all"),
        "pageviews",
        4.0,
        Duration::from_secs(20),
    );
    let q = json!({"site_id": "hosts.example", "metrics": ["pageviews"], "date_range": "all",
        "dimensions": ["event:hostname", "event:page"]});
    let mut rows: Vec<String> = s
        .query_ok(&key, &q)
        .iter()
        .map(|r| dimension_values(r).join(""))
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        vec![
            "blog.hosts.example/b",
            "hosts-alias.example/c",
            "hosts.example/a",
            "hosts.example/d",
        ]
    );
}

#[test]
fn country_header_only_when_configured() {
    let s = Server::start_with(&["--country-header", "CF-IPCountry"]);
    s.add_site("cdn.example", "UTC");
    let key = s.create_key("cdn.example", "stats");
    let r = s
        .http
        .post(s.url("/api/event"))
        .header("User-Agent", CHROME_UA)
        .header("CF-IPCountry", "de")
        .header("Content-Type", "application/json")
        .body(
            json!({"name": "pageview", "url": "https://cdn.example/", "domain": "cdn.example"})
                .to_string(),
        )
        .send()
        .expect("POST /api/event");
    assert_eq!(r.status().as_u16(), 202);
    s.wait_for_metric(
        &key,
        "cdn.example",
        &json!("all"),
        "visitors",
        1.0,
        Duration::from_secs(20),
    );
    let q = json!({"site_id": "cdn.example", "metrics": ["visitors"], "date_range": "all", "dimensions": ["visit:country"]});
    let rows = s.query_ok(&key, &q);
    assert_eq!(
        dimension_values(&rows[0]),
        vec!["DE".to_string()],
        "{rows:?}"
    );
}

#[test]
fn block_rules_from_the_config_file_drop_and_count() {
    let s = Server::start_with_config(
        r#"
[[sites."rules.example".block]]
path = "/admin*"

[[sites."rules.example".block]]
ip = "203.0.113.0/24"
"#,
    );
    s.add_site("rules.example", "UTC");
    let key = s.create_key("rules.example", "stats");
    let post = |path: &str, xff: &str, referrer: &str| {
        let body = json!({"name": "pageview", "url": format!("https://rules.example{path}"), "domain": "rules.example", "referrer": referrer});
        let r = s.post_event(&body.to_string(), CHROME_UA, Some(xff), "application/json");
        assert_eq!(r.status().as_u16(), 202);
        r.headers()
            .get("x-footfall-dropped")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(
        post("/admin/users", "198.51.100.7", ""),
        Some("blocked".into())
    );
    assert_eq!(post("/", "203.0.113.9", ""), Some("blocked".into()));
    assert_eq!(
        post("/", "198.51.100.8", "http://forum.semalt.com/"),
        Some("spam_referrer".into())
    );
    assert_eq!(post("/", "198.51.100.7", ""), None);
    // Drop counters are flushed by the server's periodic upkeep (every 10 s).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let drops = loop {
        let r = s
            .http
            .get(s.url("/api/v1/sites/rules.example/drops"))
            .bearer_auth(&key)
            .send()
            .expect("GET drops");
        let v: Value = r.json().expect("drops JSON");
        if v["dropped"] == 3 || std::time::Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(drops["dropped"], 3, "{drops}");
    assert_eq!(
        drops["bots_dropped"], 0,
        "block rules and spam are not bots: {drops}"
    );
    let reasons: Vec<(String, u64)> = drops["by_reason"]
        .as_array()
        .expect("by_reason")
        .iter()
        .map(|r| {
            (
                r["reason"].as_str().unwrap_or_default().to_string(),
                r["count"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert!(reasons.contains(&("blocked".into(), 2)), "{reasons:?}");
    assert!(
        reasons.contains(&("spam_referrer".into(), 1)),
        "{reasons:?}"
    );
}

#[test]
fn bad_block_rule_stops_start_up() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), "[[sites.\"x.example\".block]]\nip = \"nope\"\n");
    let out = run_bin(
        &[
            "--data",
            &dir.path().join("data").display().to_string(),
            "--config",
            &config.display().to_string(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ],
        dir.path(),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("x.example") && stderr.contains("nope"),
        "{stderr}"
    );
}

/// From a peer that is not a trusted proxy the CDN header is ignored; client hints from
/// the browser's request refine the browser (Brave sends Chrome's UA string).
#[test]
fn untrusted_country_header_ignored_and_client_hints_used() {
    let s = Server::start_with(&[
        "--country-header",
        "CF-IPCountry",
        "--trusted-proxies",
        "192.0.2.0/24",
    ]);
    s.add_site("hints.example", "UTC");
    let key = s.create_key("hints.example", "stats");
    let r = s
        .http
        .post(s.url("/api/event"))
        .header("User-Agent", CHROME_UA)
        .header("CF-IPCountry", "DE")
        .header(
            "Sec-CH-UA",
            r#""Chromium";v="124", "Brave";v="124", "Not-A.Brand";v="99""#,
        )
        .header("Sec-CH-UA-Platform", r#""Windows""#)
        .header("Sec-CH-UA-Platform-Version", r#""15.0.0""#)
        .header("Content-Type", "application/json")
        .body(
            json!({"name": "pageview", "url": "https://hints.example/", "domain": "hints.example"})
                .to_string(),
        )
        .send()
        .expect("POST /api/event");
    assert_eq!(r.status().as_u16(), 202);
    s.wait_for_metric(
        &key,
        "hints.example",
        &json!("all"),
        "visitors",
        1.0,
        Duration::from_secs(20),
    );
    let row = |dim: &str| {
        let q = json!({"site_id": "hints.example", "metrics": ["visitors"], "date_range": "all", "dimensions": [dim]});
        s.query_ok(&key, &q)
            .iter()
            .map(dimension_values)
            .collect::<Vec<_>>()
    };
    // No country: a "" row in the v2 API (as Plausible's v2 shows the stored value).
    assert_eq!(row("visit:country"), vec![vec![String::new()]]);
    assert_eq!(row("visit:browser"), vec![vec!["Brave".to_string()]]);
    assert_eq!(row("visit:os_version"), vec![vec!["11".to_string()]]);
}
