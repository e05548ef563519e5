//! Visitor classification rules (`visit:label`) from the config file and the API,
//! against the real binary.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;

#[test]
fn labels_from_config_and_api_are_a_dimension_and_a_filter() {
    let s = Server::start_with_config(
        r#"
[[sites."jobs.example".label]]
label = "recruiter"
referrer_host = ["linkedin.com", "greenhouse.io", "lever.co"]
"#,
    );
    s.add_site("jobs.example", "UTC");
    let stats = s.create_key("jobs.example", "stats");
    let admin = s.admin_token();
    let labels_url = s.url("/api/v1/sites/jobs.example/labels");

    // The API's own rules come first; a bad rule is refused with a JSON error.
    let bad = s
        .http
        .put(&labels_url)
        .bearer_auth(&admin)
        .json(&json!({"rules": [{"label": "x"}]}))
        .send()
        .expect("PUT labels");
    let err = assert_json_error("rule without a condition", bad, 400);
    assert!(
        err["error"].as_str().is_some_and(|e| e.contains("rule 1")),
        "{err}"
    );
    let forbidden = s
        .http
        .put(&labels_url)
        .bearer_auth(&stats)
        .json(&json!({"rules": []}))
        .send()
        .expect("PUT labels with a stats key");
    assert_eq!(forbidden.status().as_u16(), 403);
    let put = s
        .http
        .put(&labels_url)
        .bearer_auth(&admin)
        .json(&json!({"rules": [
            {"label": "careers-campaign", "utm_campaign": "careers*", "entry_path": "/jobs/*"}
        ]}))
        .send()
        .expect("PUT labels");
    assert_eq!(put.status().as_u16(), 200);
    let got: Value = s
        .http
        .get(&labels_url)
        .bearer_auth(&stats)
        .send()
        .expect("GET labels")
        .json()
        .expect("labels JSON");
    assert_eq!(got["rules"][0]["label"], "careers-campaign");
    assert_eq!(got["config_rules"][0]["label"], "recruiter");

    // One visit per visitor (distinct IPs): 3 recruiters, 2 from the campaign (one of
    // them also from LinkedIn: the API rule wins), 2 unlabelled.
    let visits = [
        ("10.0.0.1", "/", "https://www.linkedin.com/jobs/view/1"),
        ("10.0.0.2", "/about", "https://boards.greenhouse.io/acme"),
        ("10.0.0.3", "/", "https://jobs.lever.co/acme/123"),
        ("10.0.0.4", "/jobs/rust?utm_campaign=careers-2026", ""),
        (
            "10.0.0.5",
            "/jobs/go?utm_campaign=Careers-fall",
            "https://linkedin.com/",
        ),
        ("10.0.0.6", "/", "https://news.ycombinator.com/"),
        ("10.0.0.7", "/pricing", ""),
    ];
    for (ip, path, referrer) in visits {
        let body = json!({"name": "pageview", "url": format!("https://jobs.example{path}"),
                          "domain": "jobs.example", "referrer": referrer});
        let r = s.post_event(&body.to_string(), CHROME_UA, Some(ip), "application/json");
        assert_eq!(r.status().as_u16(), 202);
    }
    s.wait_for_metric(
        &stats,
        "jobs.example",
        &json!("day"),
        "visits",
        7.0,
        Duration::from_secs(20),
    );

    let rows = s.query_ok(
        &stats,
        &json!({"site_id": "jobs.example", "date_range": "day", "metrics": ["visitors", "visits"],
                "dimensions": ["visit:label"]}),
    );
    let mut by_label: Vec<(String, Vec<f64>)> = rows
        .iter()
        .map(|r| (dimension_values(r)[0].clone(), metric_values(r)))
        .collect();
    by_label.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        by_label,
        vec![
            ("(not set)".to_string(), vec![2.0, 2.0]),
            ("careers-campaign".to_string(), vec![2.0, 2.0]),
            ("recruiter".to_string(), vec![3.0, 3.0]),
        ]
    );
    let recruiters = s.aggregate_filtered(
        &stats,
        "jobs.example",
        &json!("day"),
        &["visitors", "pageviews"],
        &json!([["is", "visit:label", ["recruiter"]]]),
    );
    assert_eq!(recruiters, vec![3.0, 3.0]);

    // API rules survive a restart.
    let mut s = s;
    s.restart();
    let got: Value = s
        .http
        .get(&labels_url)
        .bearer_auth(&stats)
        .send()
        .expect("GET labels after restart")
        .json()
        .expect("labels JSON");
    assert_eq!(got["rules"][0]["label"], "careers-campaign");
}

#[test]
fn a_bad_label_rule_in_the_config_stops_start_up_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        "[[sites.\"a.example\".label]]\nlabel = \"\"\nreferrer_host = [\"x.com\"]\n",
    );
    let data = dir.path().join("data");
    let out = run_bin(
        &[
            "--data",
            &data.display().to_string(),
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            &config.display().to_string(),
        ],
        dir.path(),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("label rule 1") && stderr.contains("a.example"),
        "{stderr}"
    );
}
