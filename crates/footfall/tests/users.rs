//! Dashboard users (DESIGN §5): argon2id passwords, a session cookie, roles per site
//! (viewer reads, admin changes settings, owner deletes), through the CLI and the API.

mod common;

use common::{Server, assert_json_error};
use serde_json::{Value, json};

const A: &str = "a.users.example";
const B: &str = "b.users.example";

/// The generated password `user add` prints once.
fn printed_password(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("password (shown once): "))
        .unwrap_or_else(|| panic!("`user add` prints a password: {out}"))
        .to_string()
}

fn login(s: &Server, email: &str, password: &str) -> reqwest::blocking::Response {
    s.http
        .post(s.url("/api/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .expect("login")
}

/// `ff_session=<token>` from a sign-in answer, checking the cookie's attributes.
fn session_cookie(r: &reqwest::blocking::Response) -> String {
    let set = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"),
        "session cookie attributes: {set}"
    );
    set.split(';').next().unwrap_or_default().to_string()
}

fn query(s: &Server, cookie: &str, site: &str) -> u16 {
    s.http
        .post(s.url("/api/v2/query"))
        .header("Cookie", cookie)
        .json(&json!({"site_id": site, "metrics": ["visitors"], "date_range": "7d"}))
        .send()
        .expect("query")
        .status()
        .as_u16()
}

fn patch_site(s: &Server, cookie: &str, site: &str) -> u16 {
    s.http
        .patch(s.url(&format!("/api/admin/sites/{site}")))
        .header("Cookie", cookie)
        .json(&json!({"session_timeout_secs": 900}))
        .send()
        .expect("patch")
        .status()
        .as_u16()
}

fn delete_site(s: &Server, cookie: &str, site: &str) -> u16 {
    s.http
        .delete(s.url(&format!("/api/admin/sites/{site}")))
        .header("Cookie", cookie)
        .send()
        .expect("delete")
        .status()
        .as_u16()
}

#[test]
fn users_sign_in_and_see_only_their_sites_with_their_roles() {
    let mut s = Server::start();
    s.add_site(A, "UTC");
    s.add_site(B, "UTC");
    let out = s.cli(&[
        "user",
        "add",
        "Ann@Example.com",
        "--site",
        A,
        "--role",
        "viewer",
    ]);
    let password = printed_password(&out);
    let list = s.cli(&["user", "list"]);
    assert!(
        list.contains("ann@example.com") && list.contains(&format!("{A}:viewer")),
        "{list}"
    );

    // Wrong password and unknown address: the same 401.
    assert_json_error(
        "wrong password",
        login(&s, "ann@example.com", "not the password"),
        401,
    );
    assert_json_error(
        "unknown user",
        login(&s, "nobody@example.com", &password),
        401,
    );
    let r = login(&s, "ANN@example.com", &password);
    assert_eq!(r.status().as_u16(), 200);
    let cookie = session_cookie(&r);
    let me: Value = r.json().expect("me");
    assert_eq!(
        me["sites"],
        json!([{"site_id": 1, "site": A, "role": "viewer"}]),
        "{me}"
    );

    // A viewer reads their site's stats, not another's, and changes nothing.
    assert_eq!(query(&s, &cookie, A), 200);
    assert_eq!(query(&s, &cookie, B), 403);
    assert_eq!(patch_site(&s, &cookie, A), 403);
    let r = s
        .http
        .get(s.url(&format!("/api/v1/sites/{A}/sessions")))
        .header("Cookie", &cookie)
        .send()
        .expect("sessions");
    assert_eq!(r.status().as_u16(), 200, "the native lists too");
    // Users do not ingest, and the admin API's user and key routes need the admin token.
    let r = s
        .http
        .get(s.url("/api/admin/keys"))
        .header("Cookie", &cookie)
        .send()
        .expect("keys");
    assert!(matches!(r.status().as_u16(), 401 | 403), "{}", r.status());

    // Roles change at once, for a session already open: admin may change settings, only
    // an owner deletes the site.
    s.cli(&[
        "user",
        "grant",
        "ann@example.com",
        "--site",
        A,
        "--role",
        "admin",
    ]);
    assert_eq!(patch_site(&s, &cookie, A), 200);
    assert_eq!(delete_site(&s, &cookie, B), 403, "admin of A, nothing on B");

    // The session survives a restart; signing out ends it.
    s.kill9();
    s.restart();
    assert_eq!(query(&s, &cookie, A), 200, "after a restart");
    let r = s
        .http
        .post(s.url("/api/auth/logout"))
        .header("Cookie", &cookie)
        .send()
        .expect("logout");
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(query(&s, &cookie, A), 401, "signed out");

    // A new password signs the user out everywhere and the old one stops working.
    let cookie = session_cookie(&login(&s, "ann@example.com", &password));
    let out = s.cli(&["user", "password", "ann@example.com"]);
    let new_password = printed_password(&out);
    assert_eq!(query(&s, &cookie, A), 401, "signed out by the new password");
    assert_json_error(
        "the old password",
        login(&s, "ann@example.com", &password),
        401,
    );
    assert_eq!(
        login(&s, "ann@example.com", &new_password)
            .status()
            .as_u16(),
        200
    );

    // Through the admin API: an owner, a too-short password, removal.
    let token = s.admin_token();
    let r = s
        .http
        .post(s.url("/api/admin/users"))
        .bearer_auth(&token)
        .json(
            &json!({"email": "olga@example.com", "password": "short", "site": B, "role": "owner"}),
        )
        .send()
        .expect("add user");
    assert_json_error("a 5-character password", r, 400);
    let r = s
        .http
        .post(s.url("/api/admin/users"))
        .bearer_auth(&token)
        .json(&json!({"email": "olga@example.com", "password": "olga's long password", "site": B, "role": "owner"}))
        .send()
        .expect("add user");
    assert_eq!(r.status().as_u16(), 201);
    let olga = session_cookie(&login(&s, "olga@example.com", "olga's long password"));
    assert_eq!(delete_site(&s, &olga, B), 204, "an owner deletes the site");
    s.cli(&["user", "remove", "olga@example.com"]);
    assert_json_error(
        "a removed user",
        login(&s, "olga@example.com", "olga's long password"),
        401,
    );
}
