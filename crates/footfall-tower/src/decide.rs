//! What to track: pure decisions on the request and the response, no I/O.

use axum::http::{HeaderMap, Method, StatusCode, header};

/// File extensions of static assets, never page views.
const ASSET_EXTENSIONS: &[&str] = &[
    "css", "js", "mjs", "map", "json", "xml", "txt", "png", "jpg", "jpeg", "gif", "svg", "ico",
    "webp", "avif", "bmp", "woff", "woff2", "ttf", "otf", "eot", "mp4", "webm", "mp3", "ogg",
    "wav", "zip", "gz", "pdf", "wasm",
];

/// Lower-case user-agent fragments of crawlers, tools and headless browsers. A cheap
/// first filter: the footfall server applies its full bot verdict to what gets through.
const BOT_MARKERS: &[&str] = &[
    "bot",
    "crawl",
    "spider",
    "slurp",
    "headless",
    "phantomjs",
    "puppeteer",
    "playwright",
    "selenium",
    "curl/",
    "wget/",
    "python-",
    "go-http-client",
    "java/",
    "okhttp",
    "axios/",
    "node-fetch",
    "libwww",
    "httpclient",
    "facebookexternalhit",
    "preview",
    "lighthouse",
    "pingdom",
    "uptime",
    "monitor",
];

/// A request route mapped to a custom event.
#[derive(Debug, Clone)]
pub struct RouteEvent {
    pub method: Method,
    /// Exact path, or a prefix ending in `*` (`/api/chat/*`).
    pub path: String,
    pub event: String,
}

impl RouteEvent {
    fn matches(&self, method: &Method, path: &str) -> bool {
        if self.method != *method {
            return false;
        }
        match self.path.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => self.path == path,
        }
    }
}

/// What a request would be tracked as, if its response qualifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Candidate {
    PageView,
    Event(String),
}

pub fn is_asset(path: &str) -> bool {
    let last = path.rsplit('/').next().unwrap_or("");
    last.rsplit_once('.')
        .is_some_and(|(_, ext)| ASSET_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()))
}

pub fn is_bot(user_agent: &str) -> bool {
    let ua = user_agent.trim().to_ascii_lowercase();
    ua.is_empty() || BOT_MARKERS.iter().any(|m| ua.contains(m))
}

/// Decides from the request alone: mapped routes first (any method), then GET page
/// views of non-asset paths. Bots are never tracked.
pub fn candidate(
    method: &Method,
    path: &str,
    user_agent: &str,
    routes: &[RouteEvent],
) -> Option<Candidate> {
    if is_bot(user_agent) {
        return None;
    }
    if let Some(r) = routes.iter().find(|r| r.matches(method, path)) {
        return Some(Candidate::Event(r.event.clone()));
    }
    (method == Method::GET && !is_asset(path)).then_some(Candidate::PageView)
}

/// Whether the response makes the candidate a hit: page views need a 2xx HTML
/// response; mapped events any 2xx.
pub fn response_tracked(candidate: &Candidate, status: StatusCode, headers: &HeaderMap) -> bool {
    if !status.is_success() {
        return false;
    }
    match candidate {
        Candidate::Event(_) => true,
        Candidate::PageView => headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.trim_start()
                    .get(..9)
                    .is_some_and(|p| p.eq_ignore_ascii_case("text/html"))
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0";

    #[test]
    fn page_views_assets_methods_and_bots() {
        let routes = vec![RouteEvent {
            method: Method::POST,
            path: "/api/chat".into(),
            event: "chat".into(),
        }];
        assert_eq!(
            candidate(&Method::GET, "/blog/x", FIREFOX, &routes),
            Some(Candidate::PageView)
        );
        assert_eq!(candidate(&Method::GET, "/app.CSS", FIREFOX, &routes), None);
        assert_eq!(candidate(&Method::HEAD, "/", FIREFOX, &routes), None);
        assert_eq!(candidate(&Method::POST, "/login", FIREFOX, &routes), None);
        assert_eq!(
            candidate(&Method::POST, "/api/chat", FIREFOX, &routes),
            Some(Candidate::Event("chat".into()))
        );
        assert_eq!(
            candidate(&Method::POST, "/api/chat/2", FIREFOX, &routes),
            None
        );
        for ua in [
            "",
            "Googlebot/2.1",
            "curl/8.0",
            "Mozilla/5.0 HeadlessChrome/120",
        ] {
            assert_eq!(candidate(&Method::GET, "/", ua, &routes), None, "{ua}");
        }
    }

    #[test]
    fn prefix_routes() {
        let routes = vec![RouteEvent {
            method: Method::PUT,
            path: "/api/items/*".into(),
            event: "item saved".into(),
        }];
        assert_eq!(
            candidate(&Method::PUT, "/api/items/42", FIREFOX, &routes),
            Some(Candidate::Event("item saved".into()))
        );
        assert_eq!(
            candidate(&Method::PUT, "/api/other", FIREFOX, &routes),
            None
        );
    }

    #[test]
    fn only_successful_html_is_a_page_view() {
        let mut html = HeaderMap::new();
        html.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        let mut json = HeaderMap::new();
        json.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let pv = Candidate::PageView;
        assert!(response_tracked(&pv, StatusCode::OK, &html));
        assert!(!response_tracked(&pv, StatusCode::NOT_FOUND, &html));
        assert!(!response_tracked(&pv, StatusCode::FOUND, &html));
        assert!(!response_tracked(&pv, StatusCode::OK, &json));
        assert!(!response_tracked(&pv, StatusCode::OK, &HeaderMap::new()));
        let ev = Candidate::Event("chat".into());
        assert!(response_tracked(&ev, StatusCode::CREATED, &json));
        assert!(!response_tracked(&ev, StatusCode::BAD_REQUEST, &json));
    }
}
