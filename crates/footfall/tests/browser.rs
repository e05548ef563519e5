//! Browser end-to-end tests (e2e/tracker.test.mjs): Playwright drives Debian's Chromium
//! through a test site that loads the tracker from the real binary started here; the
//! script then checks the Stats API and the live invitation. Then e2e/dashboard.test.mjs
//! signs in to the web dashboard and checks its numbers against the Stats API, a filter
//! by click, and the phone layout.
//!
//! Needs `node`, `/usr/bin/chromium` (or `CHROMIUM`) and e2e/node_modules (installed here
//! with `npm ci` when missing). A missing browser fails the test: CI must not pass
//! without it. `FOOTFALL_SKIP_E2E=1` skips it for quick local runs.

mod common;

use common::Server;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../e2e")
}

fn run(cmd: &mut Command, what: &str) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed with {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn tracker_in_chromium() {
    if std::env::var("FOOTFALL_SKIP_E2E").is_ok_and(|v| v == "1") {
        eprintln!("browser end-to-end tests skipped (FOOTFALL_SKIP_E2E=1)");
        return;
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} not found: install Debian's chromium (`apt-get install -y chromium`), \
         set CHROMIUM, or set FOOTFALL_SKIP_E2E=1 to skip the browser tests locally"
    );
    run(Command::new("node").arg("--version"), "node --version");
    let e2e = e2e_dir();
    if !e2e.join("node_modules/playwright-core").exists() {
        run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&e2e),
            "npm ci in e2e/",
        );
    }

    let server = Server::start_with_config("[sites.\"shop.test\"]\nlive_invites = true\n");
    let mut keys = serde_json::Map::new();
    for site in ["shop.test", "other.test", "cookie.test", "parity.test"] {
        server.add_site(site, "UTC");
        keys.insert(site.into(), json!(server.create_key(site, "stats")));
    }

    let stats_keys = serde_json::Value::Object(keys).to_string();
    let out = run(
        Command::new("node")
            .args(["--test", "--test-concurrency=1", "tracker.test.mjs"])
            .current_dir(&e2e)
            .env("FOOTFALL_URL", &server.base)
            .env("FOOTFALL_STATS_KEYS", &stats_keys)
            .env("CHROMIUM", &chromium),
        "the browser tests (node --test e2e/tracker.test.mjs)",
    );
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{report}");
    // node --test exits 0 only when every test passed; make sure they all ran.
    assert!(
        report.contains("# pass 7") && report.contains("# fail 0"),
        "unexpected report:\n{report}"
    );

    // The dashboard, over the page views the tracker tests left.
    let shared = server.cli(&["site", "share", "shop.test"]);
    let link = shared
        .lines()
        .last()
        .and_then(|l| l.find("/dashboard#").map(|at| l[at..].to_string()))
        .unwrap_or_else(|| panic!("`site share` prints a link: {shared}"));
    let added = server.cli(&[
        "user",
        "add",
        "viewer@shop.test",
        "--site",
        "shop.test",
        "--role",
        "viewer",
    ]);
    let password = added
        .lines()
        .find_map(|l| l.strip_prefix("password (shown once): "))
        .unwrap_or_else(|| panic!("`user add` prints a password: {added}"))
        .to_string();
    let out = run(
        Command::new("node")
            .args(["--test", "--test-concurrency=1", "dashboard.test.mjs"])
            .current_dir(&e2e)
            .env("FOOTFALL_URL", &server.base)
            .env("FOOTFALL_STATS_KEYS", &stats_keys)
            .env("FOOTFALL_SHARED_LINK", &link)
            .env("FOOTFALL_USER", format!("viewer@shop.test:{password}"))
            .env("CHROMIUM", &chromium),
        "the dashboard browser tests (node --test e2e/dashboard.test.mjs)",
    );
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{report}");
    assert!(
        report.contains("# pass 5") && report.contains("# fail 0"),
        "unexpected report:\n{report}"
    );
}
