//! Server-side page-view tracking for [footfall](https://github.com/) as a tower
//! [`Layer`](tower::Layer): put it on an axum `Router` and every successful HTML `GET`
//! answered to a person (not a bot, not an asset) becomes a page view, with no
//! JavaScript. Routes can be mapped to custom events (`POST /api/chat` -> `chat`).
//!
//! Hits are queued in a bounded buffer and sent in batches by a background task to
//! footfall's bulk API (or any in-process [`Sink`]); the host application never waits
//! for footfall and never fails because of it. When footfall is slow or down the
//! buffer fills and further hits are dropped and counted ([`Tracker::stats`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), footfall_tower::BuildError> {
//! use axum::{Router, routing::get, http::Method};
//! use footfall_tower::Tracker;
//!
//! let tracker = Tracker::builder("example.com")
//!     .endpoint("http://127.0.0.1:8070", "INGEST_KEY")
//!     .track_route(Method::POST, "/api/chat", "chat")
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/", get(|| async { axum::response::Html("<h1>hi</h1>") }))
//!     .layer(tracker.layer());
//! // serve with `app.into_make_service_with_connect_info::<std::net::SocketAddr>()`,
//! // then on shutdown: tracker.shutdown(std::time::Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```
//!
//! Usage, options, cookie and failure behaviour: docs/MIDDLEWARE.md.

mod decide;
mod identity;
mod sender;

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, Response, header};
use ipnet::IpNet;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

pub use decide::{Candidate, RouteEvent, candidate, is_asset, is_bot, response_tracked};
pub use identity::{SESSION_COOKIE, SESSION_MAX_AGE, VISITOR_COOKIE, VISITOR_MAX_AGE};
pub use sender::{Event, HttpSink, SendOptions, Sink, SinkError, SinkFuture, Stats};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("give a footfall endpoint (`endpoint`) or a sink (`sink`)")]
    NoSink,
    #[error("the tracker starts a background task: build it inside a Tokio runtime")]
    NoRuntime,
    #[error("cannot create the HTTP sink: {0}")]
    Sink(#[from] SinkError),
}

/// How hits are described (everything but sending).
#[derive(Debug, Clone)]
struct Config {
    domain: String,
    base_url: Option<String>,
    scheme: String,
    cookies: bool,
    secure_cookies: bool,
    trusted_proxies: Vec<IpNet>,
    routes: Vec<RouteEvent>,
}

/// Builds a [`Tracker`]. Start with [`Tracker::builder`].
pub struct TrackerBuilder {
    config: Config,
    send: SendOptions,
    sink: Option<Arc<dyn Sink>>,
    endpoint: Option<(String, String)>,
    timeout: Duration,
}

impl TrackerBuilder {
    /// Send to a footfall server's bulk API with a site ingest key.
    pub fn endpoint(mut self, base_url: &str, ingest_key: &str) -> Self {
        self.endpoint = Some((base_url.to_string(), ingest_key.to_string()));
        self
    }

    /// Send to an in-process sink instead (a [`Sink`] or an async closure over
    /// `Vec<Event>`).
    pub fn sink(mut self, sink: impl Sink) -> Self {
        self.sink = Some(Arc::new(sink));
        self
    }

    /// Cookie mode (default on): `ff_vid`/`ff_sid` cookies, the visitor id sent with
    /// each hit. Off: cookieless, footfall hashes IP and user agent with a daily salt.
    pub fn cookies(mut self, on: bool) -> Self {
        self.config.cookies = on;
        self
    }

    /// Mark cookies `Secure` (default on). Turn off only for plain-HTTP development:
    /// browsers do not send `Secure` cookies over `http://` except to localhost.
    pub fn secure_cookies(mut self, on: bool) -> Self {
        self.config.secure_cookies = on;
        self
    }

    /// Page URLs as `base_url` + path and query (e.g. `https://example.com`), instead of
    /// scheme + `Host` header.
    pub fn base_url(mut self, base_url: &str) -> Self {
        self.config.base_url = Some(base_url.trim_end_matches('/').to_string());
        self
    }

    /// Scheme used with the `Host` header when no `base_url` is given (default `https`).
    pub fn scheme(mut self, scheme: &str) -> Self {
        self.config.scheme = scheme.to_string();
        self
    }

    /// Peers whose `X-Forwarded-For` is believed (your reverse proxy). Default: none,
    /// the connection's address is the client.
    pub fn trusted_proxies(mut self, nets: impl IntoIterator<Item = IpNet>) -> Self {
        self.config.trusted_proxies = nets.into_iter().collect();
        self
    }

    /// Track successful (2xx) responses to `method path` as the custom event `event`.
    /// `path` is exact, or a prefix ending in `*`. Checked before page views.
    pub fn track_route(mut self, method: Method, path: &str, event: &str) -> Self {
        self.config.routes.push(RouteEvent {
            method,
            path: path.to_string(),
            event: event.to_string(),
        });
        self
    }

    /// Batching, buffer and retry parameters.
    pub fn send_options(mut self, opts: SendOptions) -> Self {
        self.send = opts;
        self
    }

    /// Timeout of one request to footfall (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Starts the background sender on the current Tokio runtime.
    pub fn build(self) -> Result<Tracker, BuildError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| BuildError::NoRuntime)?;
        let sink: Arc<dyn Sink> = match (self.sink, self.endpoint) {
            (Some(s), _) => s,
            (None, Some((url, key))) => Arc::new(HttpSink::new(&url, &key, self.timeout)?),
            (None, None) => return Err(BuildError::NoSink),
        };
        let (tx, rx) = mpsc::channel(self.send.buffer.max(1));
        let (stop_tx, stop_rx) = oneshot::channel();
        let counters = Arc::new(sender::Counters::default());
        let task = runtime.spawn(sender::run(rx, sink, self.send, counters.clone(), stop_rx));
        Ok(Tracker {
            shared: Arc::new(Shared {
                config: self.config,
                tx,
                counters,
                stop: Mutex::new(Some(stop_tx)),
                task: tokio::sync::Mutex::new(Some(task)),
            }),
        })
    }
}

struct Shared {
    config: Config,
    tx: mpsc::Sender<sender::Msg>,
    counters: Arc<sender::Counters>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    task: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// The tracker: make layers from it, read its counters, flush and shut it down.
/// Cheap to clone.
#[derive(Clone)]
pub struct Tracker {
    shared: Arc<Shared>,
}

impl Tracker {
    /// A builder for the site `domain` (as registered in footfall).
    pub fn builder(domain: &str) -> TrackerBuilder {
        TrackerBuilder {
            config: Config {
                domain: domain.to_string(),
                base_url: None,
                scheme: "https".into(),
                cookies: true,
                secure_cookies: true,
                trusted_proxies: Vec::new(),
                routes: Vec::new(),
            },
            send: SendOptions::default(),
            sink: None,
            endpoint: None,
            timeout: Duration::from_secs(10),
        }
    }

    pub fn layer(&self) -> FootfallLayer {
        FootfallLayer {
            shared: self.shared.clone(),
        }
    }

    /// Counters since start: queued, sent, dropped (buffer full / send failed), retries.
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// Queues a hit of your own (e.g. a custom event from a handler). Never waits;
    /// returns false when it was dropped.
    pub fn track(&self, event: Event) -> bool {
        enqueue(&self.shared, event)
    }

    /// Sends what is queued now and waits for it (one attempt per batch plus retries).
    pub async fn flush(&self) {
        let (done_tx, done_rx) = oneshot::channel();
        if self
            .shared
            .tx
            .send(sender::Msg::Flush(done_tx))
            .await
            .is_ok()
        {
            let _ = done_rx.await;
        }
    }

    /// Stops accepting hits, sends what is queued (one attempt each) and waits at most
    /// `timeout` for it. Hits arriving afterwards are dropped and counted.
    pub async fn shutdown(&self, timeout: Duration) -> Stats {
        let stop = self.shared.stop.lock().ok().and_then(|mut s| s.take());
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        let task = self.shared.task.lock().await.take();
        if let Some(mut task) = task
            && tokio::time::timeout(timeout, &mut task).await.is_err()
        {
            task.abort();
        }
        self.stats()
    }
}

fn enqueue(shared: &Shared, event: Event) -> bool {
    use std::sync::atomic::Ordering;
    match shared.tx.try_send(sender::Msg::Hit(Box::new(event))) {
        Ok(()) => {
            shared.counters.queued.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(_) => {
            shared.counters.dropped_full.fetch_add(1, Ordering::Relaxed);
            false
        }
    }
}

/// The tower layer; see the crate documentation.
#[derive(Clone)]
pub struct FootfallLayer {
    shared: Arc<Shared>,
}

impl<S> tower::Layer<S> for FootfallLayer {
    type Service = FootfallService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FootfallService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

#[derive(Clone)]
pub struct FootfallService<S> {
    inner: S,
    shared: Arc<Shared>,
}

/// What is kept of a tracked request until its response is known.
struct Pending {
    candidate: Candidate,
    url: String,
    referrer: Option<String>,
    user_agent: String,
    ip: Option<String>,
    visitor: Option<String>,
    session: Option<String>,
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

impl Pending {
    fn from_request<B>(config: &Config, req: &Request<B>) -> Option<Pending> {
        let headers = req.headers();
        let user_agent = header_str(headers, header::USER_AGENT).unwrap_or("");
        let candidate = candidate(req.method(), req.uri().path(), user_agent, &config.routes)?;
        let path_and_query = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
        let url = match &config.base_url {
            Some(base) => format!("{base}{path_and_query}"),
            None => {
                let host = header_str(headers, header::HOST)
                    .or_else(|| req.uri().authority().map(|a| a.as_str()))
                    .unwrap_or(&config.domain);
                format!("{}://{host}{path_and_query}", config.scheme)
            }
        };
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let ip = identity::client_ip(peer, headers, &config.trusted_proxies);
        let cookie = |name| {
            identity::cookie(headers, name)
                .filter(|v| identity::valid_id(v))
                .map(String::from)
        };
        Some(Pending {
            candidate,
            url,
            referrer: header_str(headers, header::REFERER).map(String::from),
            user_agent: user_agent.to_string(),
            ip: ip.map(|i| i.to_string()),
            visitor: cookie(VISITOR_COOKIE),
            session: cookie(SESSION_COOKIE),
        })
    }

    /// Sets the cookies on the response and queues the hit.
    fn finish<B>(self, shared: &Shared, resp: &mut Response<B>) {
        let config = &shared.config;
        let visitor_id = if config.cookies {
            let secure = config.secure_cookies;
            let headers = resp.headers_mut();
            let vid = match self.visitor {
                Some(v) => v,
                None => {
                    let v = identity::new_id();
                    headers.append(
                        header::SET_COOKIE,
                        identity::set_cookie(VISITOR_COOKIE, &v, VISITOR_MAX_AGE, secure),
                    );
                    v
                }
            };
            // Sliding: renewed on every tracked response.
            let sid = self.session.unwrap_or_else(identity::new_id);
            headers.append(
                header::SET_COOKIE,
                identity::set_cookie(SESSION_COOKIE, &sid, SESSION_MAX_AGE, secure),
            );
            Some(vid)
        } else {
            None
        };
        let name = match self.candidate {
            Candidate::PageView => "pageview".to_string(),
            Candidate::Event(name) => name,
        };
        enqueue(
            shared,
            Event {
                name,
                url: self.url,
                domain: config.domain.clone(),
                referrer: self.referrer,
                timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                visitor_id,
                ip: self.ip,
                user_agent: self.user_agent,
                id: identity::new_id(),
            },
        );
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, ResBody> tower::Service<Request<B>> for FootfallService<S>
where
    S: tower::Service<Request<B>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let pending = Pending::from_request(&self.shared.config, &req);
        let fut = self.inner.call(req);
        let Some(pending) = pending else {
            return Box::pin(fut);
        };
        let shared = self.shared.clone();
        Box::pin(async move {
            let mut resp = fut.await?;
            if response_tracked(&pending.candidate, resp.status(), resp.headers()) {
                pending.finish(&shared, &mut resp);
            }
            Ok(resp)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::response::{Html, IntoResponse};
    use axum::routing::{get, post};
    use tower::ServiceExt;

    const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0";

    fn app(tracker: &Tracker) -> Router {
        Router::new()
            .route("/", get(|| async { Html("<p>home</p>") }))
            .route(
                "/app.css",
                get(|| async { ([(header::CONTENT_TYPE, "text/css")], "a{}") }),
            )
            .route(
                "/api/chat",
                post(|| async { axum::Json(serde_json::json!({"ok": true})) }),
            )
            .route(
                "/missing",
                get(|| async { (axum::http::StatusCode::NOT_FOUND, Html("no")).into_response() }),
            )
            .layer(tracker.layer())
    }

    fn request(method: Method, path: &str, cookie: Option<&str>) -> Request<Body> {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "example.com")
            .header(header::USER_AGENT, FIREFOX)
            .header(header::REFERER, "https://www.google.com/");
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, c);
        }
        b.body(Body::empty()).expect("request")
    }

    fn set_cookies(resp: &Response<Body>) -> Vec<String> {
        resp.headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(String::from))
            .collect()
    }

    #[tokio::test]
    async fn tracks_html_and_mapped_routes_into_a_sink_with_cookies() {
        let seen = Arc::new(Mutex::new(Vec::<Event>::new()));
        let sink_seen = seen.clone();
        let tracker = Tracker::builder("example.com")
            .sink(move |batch: Vec<Event>| {
                let seen = sink_seen.clone();
                async move {
                    seen.lock().expect("lock").extend(batch);
                    Ok(())
                }
            })
            .track_route(Method::POST, "/api/chat", "chat")
            .build()
            .expect("build");
        let app = app(&tracker);

        let first = app
            .clone()
            .oneshot(request(Method::GET, "/?a=1", None))
            .await
            .expect("call");
        let cookies = set_cookies(&first);
        assert_eq!(cookies.len(), 2, "{cookies:?}");
        assert!(
            cookies.iter().all(|c| c.contains("HttpOnly")
                && c.contains("Secure")
                && c.contains("SameSite=Lax"))
        );
        let vid = cookies[0]
            .strip_prefix("ff_vid=")
            .and_then(|s| s.split(';').next())
            .expect("ff_vid first")
            .to_string();
        let sid = cookies[1]
            .strip_prefix("ff_sid=")
            .and_then(|s| s.split(';').next())
            .expect("ff_sid second")
            .to_string();
        let jar = format!("ff_vid={vid}; ff_sid={sid}");

        // With the cookies: ff_sid renewed, ff_vid not re-set.
        let again = app
            .clone()
            .oneshot(request(Method::GET, "/", Some(&jar)))
            .await
            .expect("call");
        let cookies = set_cookies(&again);
        assert_eq!(cookies.len(), 1);
        assert!(cookies[0].starts_with(&format!("ff_sid={sid};")));

        // Not tracked: asset, HEAD, 404, bot. Mapped POST: tracked.
        for req in [
            request(Method::GET, "/app.css", Some(&jar)),
            request(Method::HEAD, "/", Some(&jar)),
            request(Method::GET, "/missing", Some(&jar)),
        ] {
            let r = app.clone().oneshot(req).await.expect("call");
            assert!(set_cookies(&r).is_empty());
        }
        let mut bot = request(Method::GET, "/", None);
        bot.headers_mut()
            .insert(header::USER_AGENT, "Googlebot/2.1".parse().expect("ua"));
        assert!(set_cookies(&app.clone().oneshot(bot).await.expect("call")).is_empty());
        app.clone()
            .oneshot(request(Method::POST, "/api/chat", Some(&jar)))
            .await
            .expect("call");

        tracker.flush().await;
        let events = seen.lock().expect("lock").clone();
        let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, vec!["pageview", "pageview", "chat"]);
        assert!(
            events
                .iter()
                .all(|e| e.visitor_id.as_deref() == Some(vid.as_str()))
        );
        assert_eq!(events[0].url, "https://example.com/?a=1");
        assert_eq!(
            events[0].referrer.as_deref(),
            Some("https://www.google.com/")
        );
        assert_eq!(events[0].user_agent, FIREFOX);
        assert_ne!(events[0].id, events[1].id);
        let stats = tracker.shutdown(Duration::from_secs(1)).await;
        assert_eq!((stats.queued, stats.sent, stats.dropped()), (3, 3, 0));
    }

    #[tokio::test]
    async fn cookieless_mode_sets_no_cookies_and_sends_no_visitor_id() {
        let seen = Arc::new(Mutex::new(Vec::<Event>::new()));
        let sink_seen = seen.clone();
        let tracker = Tracker::builder("example.com")
            .cookies(false)
            .sink(move |batch: Vec<Event>| {
                let seen = sink_seen.clone();
                async move {
                    seen.lock().expect("lock").extend(batch);
                    Ok(())
                }
            })
            .build()
            .expect("build");
        let r = app(&tracker)
            .oneshot(request(Method::GET, "/", None))
            .await
            .expect("call");
        assert!(set_cookies(&r).is_empty());
        tracker.shutdown(Duration::from_secs(1)).await;
        let events = seen.lock().expect("lock").clone();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].visitor_id, None);
    }
}
