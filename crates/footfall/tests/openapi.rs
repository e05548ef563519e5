//! `GET /api/openapi.json` serves docs/openapi.json, an OpenAPI 3.1 description that lists
//! every route the server has, with the right methods.

mod common;

use common::Server;
use reqwest::Method;
use serde_json::Value;
use std::collections::BTreeSet;

/// Every route of `footfall_server::router()`, with its methods (OpenAPI path syntax).
const ROUTES: &[(&str, &[&str])] = &[
    ("/api/event", &["post"]),
    ("/api/v1/events", &["post"]),
    ("/api/v2/query", &["post"]),
    ("/api/v1/stats/realtime/visitors", &["get"]),
    ("/api/v1/stats/aggregate", &["get"]),
    ("/api/v1/stats/timeseries", &["get"]),
    ("/api/v1/stats/breakdown", &["get"]),
    ("/api/health", &["get"]),
    ("/api/v1/sites/{site}/drops", &["get"]),
    ("/api/v1/sites/{site}/labels", &["get", "put"]),
    ("/api/v1/sites/{site}/realtime", &["get"]),
    ("/api/v1/sites/{site}/sessions", &["get"]),
    ("/api/v1/sites/{site}/sessions/{session_id}", &["get"]),
    ("/api/v1/sites/{site}/visitors", &["get"]),
    ("/api/v1/sites/{site}/export", &["get"]),
    ("/api/admin/sites", &["get", "post"]),
    ("/api/admin/sites/{domain}", &["delete", "patch"]),
    ("/api/admin/sites/{domain}/goals", &["get", "post"]),
    ("/api/admin/sites/{domain}/goals/{id}", &["delete"]),
    ("/api/admin/sites/{domain}/shared-links", &["post"]),
    ("/api/admin/users", &["get", "post"]),
    ("/api/admin/users/{email}", &["delete"]),
    ("/api/admin/users/{email}/password", &["put"]),
    (
        "/api/admin/users/{email}/sites/{domain}",
        &["put", "delete"],
    ),
    ("/api/auth/login", &["post"]),
    ("/api/auth/logout", &["post"]),
    ("/api/auth/me", &["get"]),
    ("/api/admin/keys", &["get", "post"]),
    ("/api/admin/keys/{id}", &["delete"]),
    ("/api/openapi.json", &["get"]),
    ("/", &["get"]),
    ("/dashboard", &["get"]),
    ("/api/v1/sites/{site}/visitors/{visitor}", &["delete"]),
    ("/api/v1/sites/{site}/prune", &["post"]),
    ("/js/script.js", &["get"]),
    ("/js/footfall.js", &["get"]),
    ("/js/extras.js", &["get"]),
    ("/js/live.js", &["get"]),
    ("/api/live/visitor", &["get"]),
    ("/api/v1/sites/{site}/live", &["get"]),
    ("/api/v1/sites/{site}/live/{visitor}/invite", &["post"]),
    ("/track/visitor", &["post"]),
    ("/api/analytics/track", &["post"]),
    ("/api/send", &["post"]),
    ("/api/batch", &["post"]),
];

const HTTP_METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn fetch_spec(s: &Server) -> (String, Value) {
    let r = s
        .http
        .get(s.url("/api/openapi.json"))
        .send()
        .expect("GET /api/openapi.json");
    assert_eq!(r.status().as_u16(), 200, "GET /api/openapi.json");
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        ct.starts_with("application/json"),
        "content type of /api/openapi.json: {ct:?}"
    );
    let text = r.text().expect("read /api/openapi.json");
    let spec: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("/api/openapi.json is not JSON: {e}"));
    (text, spec)
}

/// Resolves a local `$ref` like `#/components/schemas/Error`.
fn resolve<'a>(spec: &'a Value, reference: &str) -> Option<&'a Value> {
    spec.pointer(reference.strip_prefix('#')?)
}

fn collect_refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                match (k.as_str(), child) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => collect_refs(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|c| collect_refs(c, out)),
        _ => {}
    }
}

#[test]
fn openapi_lists_every_route_with_its_methods() {
    let s = Server::start();
    let (_, spec) = fetch_spec(&s);

    let version = spec["openapi"].as_str().expect("`openapi` is a string");
    assert!(version.starts_with("3.1"), "openapi version {version:?}");
    let paths = spec["paths"].as_object().expect("`paths` is an object");

    for (path, methods) in ROUTES {
        let item = paths
            .get(*path)
            .unwrap_or_else(|| panic!("{path} is missing from /api/openapi.json"));
        let documented: BTreeSet<&str> = item
            .as_object()
            .expect("path item is an object")
            .keys()
            .map(String::as_str)
            .filter(|k| HTTP_METHODS.contains(k))
            .collect();
        let expected: BTreeSet<&str> = methods.iter().copied().collect();
        assert_eq!(documented, expected, "methods of {path}");
    }
    let known: BTreeSet<&str> = ROUTES.iter().map(|(p, _)| *p).collect();
    for path in paths.keys() {
        assert!(
            known.contains(path.as_str()),
            "{path} is documented but not a route of the server"
        );
    }

    // Shared pieces the description promises.
    let error = &spec["components"]["schemas"]["Error"];
    assert_eq!(error["required"], serde_json::json!(["error", "code"]));
    let bearer = &spec["components"]["securitySchemes"]["bearerAuth"];
    assert_eq!(bearer["type"], "http");
    assert_eq!(bearer["scheme"], "bearer");
    let accepted = &spec["paths"]["/api/event"]["post"]["responses"]["202"];
    assert!(
        accepted["headers"]["x-footfall-dropped"].is_object(),
        "/api/event 202 documents x-footfall-dropped: {accepted}"
    );
    let mut refs = Vec::new();
    collect_refs(&spec, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        assert!(resolve(&spec, r).is_some(), "dangling $ref {r}");
    }
}

#[test]
fn documented_routes_exist_on_the_server() {
    let s = Server::start();
    for (path, methods) in ROUTES {
        let concrete = path
            .replace("{site}", "example.com")
            .replace("{domain}", "example.com")
            .replace("{id}", "1");
        for m in *methods {
            let method = Method::from_bytes(m.to_ascii_uppercase().as_bytes()).expect("method");
            // No credentials and no body: nothing changes, but an unknown route or method
            // would answer 404 `route_not_found` or 405.
            let r = s
                .http
                .request(method, s.url(&concrete))
                .send()
                .unwrap_or_else(|e| panic!("{m} {concrete}: {e}"));
            let status = r.status().as_u16();
            let text = r.text().unwrap_or_default();
            assert_ne!(status, 405, "{m} {concrete}: {text}");
            assert!(
                !text.contains("route_not_found"),
                "{m} {concrete} is not a route: {status} {text}"
            );
        }
    }
}

#[test]
fn served_openapi_equals_docs_openapi_json() {
    let s = Server::start();
    let (served, _) = fetch_spec(&s);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let on_disk =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(
        served == on_disk,
        "docs/openapi.json changed since the server was built: rebuild (the file is compiled in)"
    );
}
