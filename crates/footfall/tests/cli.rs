//! The admin CLI (`site add|list|remove`, `key create|list|revoke`) works whether or not a
//! server runs on the data dir, and what it does is what the server then enforces. Also the
//! admin HTTP API behind it.

mod common;

use common::{CHROME_UA, Server, assert_json_error, run_bin};
use serde_json::{Value, json};

fn bulk_status(s: &Server, key: &str, domain: &str) -> u16 {
    let body = json!([{"name": "pageview", "url": format!("https://{domain}/"), "domain": domain,
                       "user_agent": CHROME_UA}]);
    s.bulk(key, &body).status().as_u16()
}

fn event_status(s: &Server, domain: &str) -> u16 {
    let body = json!({"name": "pageview", "url": format!("https://{domain}/"), "domain": domain});
    s.post_event(
        &body.to_string(),
        CHROME_UA,
        Some("203.0.113.80"),
        "application/json",
    )
    .status()
    .as_u16()
}

fn query_status(s: &Server, key: &str, domain: &str) -> u16 {
    s.query(
        key,
        &json!({"site_id": domain, "metrics": ["visitors"], "date_range": "7d"}),
    )
    .0
}

/// The id of the one key that appeared in `key list` between `before` and `after`: the
/// first all-digit token of the new lines.
fn new_key_id(before: &str, after: &str) -> String {
    let old: Vec<&str> = before.lines().map(str::trim).collect();
    after
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !old.contains(l))
        .flat_map(|l| {
            l.split(|c: char| c.is_whitespace() || ",|;()[]{}\"'".contains(c))
                .map(|t| {
                    // "id=3", "id:3", "#3" -> "3"; times like 10:48:12 stay non-numeric.
                    let t = t
                        .strip_prefix("id=")
                        .or_else(|| t.strip_prefix("id:"))
                        .unwrap_or(t);
                    t.trim_start_matches('#').to_string()
                })
                .collect::<Vec<_>>()
        })
        .find(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no key id in the new `key list` lines:\n{after}"))
}

fn listed_domains(s: &Server) -> String {
    s.cli(&["site", "list"])
}

struct Made {
    revoked_key: String,
}

/// Runs the admin commands on `s`'s data dir. With a running server, also checks that the
/// server enforces each change immediately.
fn admin_flow(s: &Server) -> Made {
    let running = s.is_running();
    s.cli(&[
        "site",
        "add",
        "a.example.com",
        "--timezone",
        "Europe/Berlin",
    ]);
    s.cli(&["site", "add", "b.example.com"]);
    let list = listed_domains(s);
    assert!(list.contains("a.example.com"), "site list: {list}");
    assert!(list.contains("b.example.com"), "site list: {list}");

    let before = s.cli(&["key", "list"]);
    let ingest = s.create_key("a.example.com", "ingest");
    assert!(
        ingest.len() >= 16 && !ingest.contains(char::is_whitespace),
        "the key is alone on the last line: {ingest:?}"
    );
    let after = s.cli(&["key", "list"]);
    assert!(
        !after.contains(&ingest),
        "keys are hashed at rest, `key list` must not print a whole key:\n{after}"
    );
    let id = new_key_id(&before, &after);
    let site_list = s.cli(&["key", "list", "--site", "a.example.com"]);
    assert!(
        site_list
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|t| t == id),
        "key list --site shows the key (id {id}):\n{site_list}"
    );
    if running {
        assert_eq!(
            bulk_status(s, &ingest, "a.example.com"),
            202,
            "new ingest key works"
        );
    }
    s.cli(&["key", "revoke", &id]);
    if running {
        assert_eq!(
            bulk_status(s, &ingest, "a.example.com"),
            401,
            "revoked key is refused"
        );
    }

    let stats = s.create_key("a.example.com", "stats");
    // A shared link carries a read-only stats key; revoking the key ends the link.
    let shared = s.cli(&["site", "share", "a.example.com"]);
    let link_key = shared
        .lines()
        .last()
        .and_then(|l| l.split("&key=").nth(1))
        .unwrap_or_else(|| panic!("`site share` prints a link with a key: {shared}"))
        .to_string();
    assert!(
        shared
            .lines()
            .last()
            .is_some_and(|l| l.contains("/dashboard#site=a.example.com&key=")),
        "{shared}"
    );
    if running {
        assert_eq!(query_status(s, &link_key, "a.example.com"), 200);
        assert_eq!(bulk_status(s, &link_key, "a.example.com"), 403, "read-only");
    }
    if running {
        assert_eq!(
            query_status(s, &stats, "a.example.com"),
            200,
            "new stats key works"
        );
    }

    // Site settings and goals.
    s.cli(&[
        "site",
        "add",
        "c.example.com",
        "--identity-mode",
        "cookie",
        "--session-timeout-mins",
        "10",
        "--allowed-hostnames",
        "c.example.com, shop.example.net",
    ]);
    s.cli(&["site", "set", "c.example.com", "--timezone", "Asia/Tokyo"]);
    let list = listed_domains(s);
    let c_line = list
        .lines()
        .find(|l| l.starts_with("c.example.com"))
        .unwrap_or_default();
    for want in [
        "timezone=Asia/Tokyo",
        "identity=cookie",
        "session_timeout=10min",
        "allowed_hostnames=c.example.com,shop.example.net",
    ] {
        assert!(c_line.contains(want), "site list shows {want}: {c_line}");
    }
    let bad = s.cli_output(&[
        "site",
        "set",
        "c.example.com",
        "--identity-mode",
        "fingerprint",
    ]);
    assert!(!bad.status.success(), "an unknown identity mode is refused");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("cookieless"),
        "the error names the modes: {}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let added = s.cli(&["goal", "add", "--site", "a.example.com", "--page", "/blog*"]);
    assert!(added.contains("Visit /blog*"), "{added}");
    s.cli(&[
        "goal",
        "add",
        "--site",
        "a.example.com",
        "--event",
        "Signup",
    ]);
    let goals = s.cli(&["goal", "list", "--site", "a.example.com"]);
    let signup_id = goals
        .lines()
        .find(|l| l.ends_with("\tSignup"))
        .and_then(|l| l.split('\t').next())
        .unwrap_or_default()
        .to_string();
    assert!(
        goals.contains("Visit /blog*") && !signup_id.is_empty(),
        "{goals}"
    );
    s.cli(&["goal", "remove", "--site", "a.example.com", &signup_id]);
    let goals = s.cli(&["goal", "list", "--site", "a.example.com"]);
    assert!(
        goals.contains("Visit /blog*") && !goals.contains("Signup"),
        "after removing {signup_id}: {goals}"
    );
    if running {
        let dropped = |url: &str| {
            let body = json!({"name": "pageview", "url": url, "domain": "c.example.com"});
            s.post_event(
                &body.to_string(),
                CHROME_UA,
                Some("203.0.113.81"),
                "application/json",
            )
            .headers()
            .get("x-footfall-dropped")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
        };
        assert_eq!(dropped("https://shop.example.net/cart"), None);
        assert_eq!(
            dropped("https://elsewhere.example.org/"),
            Some("hostname_not_allowed".into())
        );
    }

    s.cli(&["site", "remove", "b.example.com"]);
    let list = listed_domains(s);
    assert!(
        list.contains("a.example.com"),
        "site list after remove: {list}"
    );
    assert!(
        !list.contains("b.example.com"),
        "removed site still listed: {list}"
    );
    if running {
        assert_eq!(
            event_status(s, "b.example.com"),
            404,
            "removed site is unknown"
        );
        assert_eq!(
            event_status(s, "a.example.com"),
            202,
            "remaining site accepts hits"
        );
    }
    Made {
        revoked_key: ingest,
    }
}

/// After the flow ran offline: the server started later sees every change.
fn check_effects(s: &Server, made: &Made) {
    assert_eq!(
        bulk_status(s, &made.revoked_key, "a.example.com"),
        401,
        "key revoked offline is refused"
    );
    let ingest = s.create_key("a.example.com", "ingest");
    assert_eq!(
        bulk_status(s, &ingest, "a.example.com"),
        202,
        "key made while running works"
    );
    assert_eq!(
        event_status(s, "b.example.com"),
        404,
        "site removed offline is unknown"
    );
    assert_eq!(
        event_status(s, "a.example.com"),
        202,
        "site added offline accepts hits"
    );
}

#[test]
fn help_lists_the_subcommands() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run_bin(&["--help"], dir.path());
    assert!(out.status.success(), "footfall --help failed");
    let help = String::from_utf8_lossy(&out.stdout);
    for sub in ["serve", "site", "key", "goal"] {
        assert!(help.contains(sub), "--help lists `{sub}`:\n{help}");
    }
    for (cmd, subs) in [
        ("site", &["add", "set", "list", "remove"][..]),
        ("key", &["create", "list", "revoke"]),
        ("goal", &["add", "list", "remove"]),
    ] {
        let out = run_bin(&[cmd, "--help"], dir.path());
        assert!(out.status.success(), "footfall {cmd} --help failed");
        let help = String::from_utf8_lossy(&out.stdout);
        for sub in subs {
            assert!(help.contains(sub), "`{cmd} --help` lists `{sub}`:\n{help}");
        }
    }
}

#[test]
fn admin_commands_work_with_the_server_running() {
    let s = Server::start();
    // The running server announces itself in the data dir.
    let info: Value = serde_json::from_str(
        &std::fs::read_to_string(s.data.join("server.json"))
            .expect("DATA/server.json while serving"),
    )
    .expect("server.json is JSON");
    assert_eq!(info["url"], json!(s.base), "server.json url: {info}");
    admin_flow(&s);
}

#[test]
fn admin_commands_work_with_the_server_stopped() {
    let mut s = Server::start();
    s.stop();
    let made = admin_flow(&s);
    s.start_again();
    check_effects(&s, &made);
}

#[test]
fn admin_commands_work_after_the_server_crashed() {
    // kill -9 leaves DATA/server.json behind; the CLI must notice nobody answers there.
    let mut s = Server::start();
    s.kill9();
    let made = admin_flow(&s);
    s.start_again();
    check_effects(&s, &made);
}

#[test]
fn admin_http_api_manages_sites_and_keys() {
    let s = Server::start();
    let token = s.admin_token();
    let c = &s.http;

    let r = c
        .post(s.url("/api/admin/sites"))
        .json(&json!({"domain": "adm.example.com", "timezone": "UTC"}))
        .send()
        .expect("admin without token");
    assert_json_error("admin API without a token", r, 401);

    let r = c
        .post(s.url("/api/admin/sites"))
        .bearer_auth(&token)
        .json(&json!({"domain": "adm.example.com", "timezone": "Europe/Paris"}))
        .send()
        .expect("create site");
    assert!(r.status().is_success(), "create site: {}", r.status());
    let sites = c
        .get(s.url("/api/admin/sites"))
        .bearer_auth(&token)
        .send()
        .expect("list sites")
        .text()
        .unwrap_or_default();
    assert!(sites.contains("adm.example.com"), "sites: {sites}");

    let r = c
        .post(s.url("/api/admin/keys"))
        .bearer_auth(&token)
        .json(&json!({"site": "adm.example.com", "scope": "ingest", "name": "test"}))
        .send()
        .expect("create key");
    assert_eq!(r.status().as_u16(), 201, "create key");
    let created: Value = r.json().expect("key JSON");
    let key = created["key"].as_str().expect("key").to_string();
    let id = created["id"].as_u64().expect("id");
    assert_eq!(bulk_status(&s, &key, "adm.example.com"), 202);

    let keys = c
        .get(s.url("/api/admin/keys"))
        .bearer_auth(&token)
        .send()
        .expect("list keys")
        .text()
        .unwrap_or_default();
    assert!(
        keys.contains("adm.example.com") || keys.contains(&id.to_string()),
        "keys: {keys}"
    );
    assert!(
        !keys.contains(&key),
        "listing must not reveal whole keys: {keys}"
    );

    // The admin token reads every site's stats.
    assert_eq!(query_status(&s, &token, "adm.example.com"), 200);

    // Settings: a wrong type is a 400 and changes nothing; valid ones are applied.
    let site_url = s.url("/api/admin/sites/adm.example.com");
    let r = c
        .patch(&site_url)
        .bearer_auth(&token)
        .json(&json!({"session_timeout_secs": "ten minutes"}))
        .send()
        .expect("patch site");
    assert_json_error("session_timeout_secs as a string", r, 400);
    let r = c
        .patch(&site_url)
        .bearer_auth(&token)
        .json(&json!({"identity_mode": "cookie", "session_timeout_secs": 600}))
        .send()
        .expect("patch site");
    assert_eq!(r.status().as_u16(), 200);
    let site: Value = r.json().expect("site JSON");
    assert_eq!(site["identity_mode"], "cookie", "{site}");
    assert_eq!(site["session_timeout_secs"], 600, "{site}");
    assert_eq!(site["timezone"], "Europe/Paris", "untouched: {site}");

    // A page goal counts the visitors who viewed a matching page, as `event:goal`.
    let r = c
        .post(s.url("/api/admin/sites/adm.example.com/goals"))
        .bearer_auth(&token)
        .json(&json!({"page": "/blog/**"}))
        .send()
        .expect("add goal");
    assert_eq!(r.status().as_u16(), 201, "add goal");
    let goal: Value = r.json().expect("goal JSON");
    assert_eq!(goal["display_name"], "Visit /blog/**", "{goal}");
    let blog = json!([{"name": "pageview", "url": "https://adm.example.com/blog/post",
                       "user_agent": CHROME_UA, "visitor_id": "reader"}]);
    assert_eq!(s.bulk(&key, &blog).status().as_u16(), 202);
    let range = common::recent_range();
    s.wait_for_metric(
        &token,
        "adm.example.com",
        &range,
        "pageviews",
        2.0,
        std::time::Duration::from_secs(30),
    );
    let by_goal = |s: &Server| {
        s.query(
            &token,
            &json!({"site_id": "adm.example.com", "metrics": ["visitors"], "date_range": range,
                    "dimensions": ["event:goal"]}),
        )
        .1["results"]
            .clone()
    };
    assert_eq!(
        by_goal(&s),
        json!([{"dimensions": ["Visit /blog/**"], "metrics": [1]}])
    );
    let r = c
        .delete(s.url(&format!(
            "/api/admin/sites/adm.example.com/goals/{}",
            goal["id"]
        )))
        .bearer_auth(&token)
        .send()
        .expect("remove goal");
    assert_eq!(r.status().as_u16(), 204, "remove goal");
    assert_eq!(by_goal(&s), json!([]), "the goal is gone");

    let r = c
        .delete(s.url(&format!("/api/admin/keys/{id}")))
        .bearer_auth(&token)
        .send()
        .expect("revoke key");
    assert!(r.status().is_success(), "revoke key: {}", r.status());
    assert_eq!(bulk_status(&s, &key, "adm.example.com"), 401);

    let r = c
        .delete(s.url("/api/admin/sites/adm.example.com"))
        .bearer_auth(&token)
        .send()
        .expect("delete site");
    assert!(r.status().is_success(), "delete site: {}", r.status());
    assert_eq!(event_status(&s, "adm.example.com"), 404);
    let list = s.cli(&["site", "list"]);
    assert!(
        !list.contains("adm.example.com"),
        "CLI sees the deletion: {list}"
    );
}

#[test]
fn bench_sql_times_a_query_directly_on_the_store() {
    let mut s = Server::start();
    s.add_site("sql.example", "UTC");
    let key = s.create_key("sql.example", "stats");
    for path in ["/", "/a", "/b"] {
        let body = serde_json::json!({"name": "pageview", "url": format!("https://sql.example{path}"), "domain": "sql.example"});
        let r = s.post_event(
            &body.to_string(),
            CHROME_UA,
            Some("10.1.2.3"),
            "application/json",
        );
        assert_eq!(r.status().as_u16(), 202);
    }
    s.wait_for_metric(
        &key,
        "sql.example",
        &serde_json::json!("day"),
        "pageviews",
        3.0,
        std::time::Duration::from_secs(20),
    );
    s.stop();
    let query = r#"{"site_id":"sql.example","date_range":"day","metrics":["visitors"],"dimensions":["event:page"]}"#;
    let data = s.data.display().to_string();
    let bench_sql = |args: &[&str]| {
        let mut all = vec!["--data", &data, "bench-sql", "--site", "sql.example"];
        all.extend_from_slice(args);
        run_bin(&all, s.root.path())
    };
    let out = bench_sql(&["--query", query, "--runs", "3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ms: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("bench-sql prints milliseconds");
    assert!((0.0..10_000.0).contains(&ms), "{ms}");
    // Several queries: timed as one dashboard load, a median per query, in order.
    let filtered = r#"{"site_id":"sql.example","date_range":"day","metrics":["visitors","visits","bounce_rate"],"filters":[["is","event:page",["/a"]]]}"#;
    let load = bench_sql(&[
        "--query",
        query,
        "--query",
        filtered,
        "--runs",
        "2",
        "--pause-ms",
        "10",
    ]);
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let lines: Vec<f64> = String::from_utf8_lossy(&load.stdout)
        .lines()
        .map(|l| l.trim().parse().expect("a median in ms per line"))
        .collect();
    assert_eq!(lines.len(), 2, "one line per query: {lines:?}");
    assert!(
        lines.iter().all(|ms| (0.0..10_000.0).contains(ms)),
        "{lines:?}"
    );
    // The profiler profiles one query.
    let profile = s.root.path().join("p.txt").display().to_string();
    let two = bench_sql(&["--query", query, "--query", filtered, "--profile", &profile]);
    assert!(!two.status.success());
    assert!(String::from_utf8_lossy(&two.stderr).contains("one query"));
    let bad = bench_sql(&[
        "--query",
        r#"{"site_id":"sql.example","metrics":["nope"],"date_range":"day"}"#,
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid query"));
}
