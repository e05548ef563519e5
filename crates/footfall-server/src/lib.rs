//! The HTTP layer: `router(state)` and `serve(config, shutdown)`.

pub mod admin;
pub mod config;
pub mod cookie;
pub mod error;
pub mod export;
pub mod extract;
pub mod routes;
pub mod state;

use anyhow::Context;
use axum::Router;
use config::Config;
use footfall_ingest::{IngestConfig, Ingestor};
use footfall_store_duckdb::{DuckConfig, DuckStore};
use rand::RngCore;
use state::{AppState, Inner, Storage};
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tower_http::cors::{AllowHeaders, CorsLayer};
use tower_http::trace::TraceLayer;

pub fn router(state: AppState) -> Router {
    let router = Router::new()
        .merge(routes::health::router())
        .merge(routes::event::router())
        .merge(routes::bulk::router())
        .merge(routes::stats::router())
        .merge(routes::stats_v1::router())
        .merge(routes::admin::router())
        .merge(routes::privacy::router())
        .merge(routes::labels::router())
        .merge(routes::docs::router())
        .merge(routes::dashboard::router())
        .merge(routes::auth::router())
        .merge(routes::tracker::router())
        .merge(routes::live::router())
        .merge(routes::compat::router())
        .fallback(error::not_found)
        // A bug in one request answers 500 (as JSON, via json_errors) instead of
        // dropping the connection.
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        // Framework-made errors (405, …) get our JSON shape. A mapped future rather than
        // `axum::middleware::map_response`, which clones the inner service and boxes a
        // future on every request.
        .layer(tower::util::MapFutureLayer::new(|answer| async move {
            let response = answer.await?;
            Ok::<_, std::convert::Infallible>(error::json_errors(response).await)
        }))
        // Trackers post from other origins. No `Vary`: with `*` for origins, methods and
        // headers no answer depends on the request's CORS headers, so caches need none,
        // and building it cost every request an allocation (~80 bytes more to send too).
        // `Authorization` is named beside `*`: browsers never let the wildcard cover it
        // (Fetch standard), so a page on another origin could not send a Stats API key.
        // Safe to allow: a key is never sent by the browser on its own, and cookies are
        // not (no credentials mode). `routes::event::add_cors` adds the same headers to
        // the answers of `POST /api/event`, which is served before this router (`app`).
        .layer(
            CorsLayer::permissive()
                .allow_headers(AllowHeaders::list([
                    axum::http::HeaderName::from_static("*"),
                    axum::http::header::AUTHORIZATION,
                ]))
                .vary([]),
        );
    // A line per request at DEBUG (`FOOTFALL_LOG=tower_http=debug`). Only when those
    // lines are shown: the layer boxes every response body and reads the clock twice.
    // Server errors are logged where they are answered (`ApiError`), with their cause;
    // the trace layer's own line for them is only a pointer.
    let router =
        if tracing::enabled!(target: "tower_http::trace", tracing::Level::DEBUG) {
            router.layer(TraceLayer::new_for_http().on_failure(
                tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG),
            ))
        } else {
            router
        };
    router.with_state(state)
}

/// The whole HTTP service as `serve` runs it: `POST /api/event` answered first
/// (`routes::event::EventFirst`), everything else by [`router`], with a trailing slash
/// trimmed before routing (`/api/event/` is `/api/event`, as on Plausible: Phoenix ignores
/// a trailing slash).
pub fn app(
    state: AppState,
) -> routes::event::EventFirst<tower_http::normalize_path::NormalizePath<Router>> {
    let routed = tower::Layer::layer(
        &tower_http::normalize_path::NormalizePathLayer::trim_trailing_slash(),
        router(state.clone()),
    );
    routes::event::EventFirst::new(routed, state)
}

/// Opens the embedded store of a data directory.
pub fn open_embedded(config: &Config) -> anyhow::Result<DuckStore> {
    std::fs::create_dir_all(&config.data)
        .with_context(|| format!("cannot create data directory {}", config.data.display()))?;
    let duck = DuckConfig {
        memory_limit: config.duckdb_memory_limit.clone(),
        write_memory_limit: config.duckdb_write_memory_limit.clone(),
        threads: config.duckdb_threads,
        query_cache: config.query_cache,
    };
    DuckStore::open(&config.db_path(), &duck).with_context(|| {
        format!(
            "cannot open {} (is another footfall server using this data directory?)",
            config.db_path().display()
        )
    })
}

pub fn storage_of(store: &DuckStore) -> Storage {
    Storage {
        events: Arc::new(store.clone()),
        query: Arc::new(store.clone()),
        meta: Arc::new(store.clone()),
        live: Arc::new(footfall_store::memory::MemoryLive::default()),
    }
}

/// Reads the admin token of a data directory, creating it (mode 0600) on first use.
pub fn admin_token(path: &Path) -> anyhow::Result<String> {
    if let Ok(token) = std::fs::read_to_string(path) {
        let token = token.trim().to_string();
        if !token.is_empty() {
            return Ok(token);
        }
    }
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("ff_admin_{}", hex::encode(bytes));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    std::io::Write::write_all(&mut opts.open(path)?, token.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(token)
}

/// Builds the application state: storage, recovery, ingestion.
pub async fn build_state(config: Config) -> anyhow::Result<AppState> {
    let trusted = config.trusted_proxy_nets().map_err(anyhow::Error::msg)?;
    // Before the store: a bad GeoIP file or rule stops start-up with nothing opened.
    let started = std::time::Instant::now();
    let enrichment = config.enrichment()?;
    if !enrichment.geo.is_empty() {
        tracing::info!(
            ms = started.elapsed().as_millis() as u64,
            city = ?config.geoip_city,
            asn = ?config.geoip_asn,
            "GeoIP databases opened and verified"
        );
    } else if config.country_header.is_empty() {
        tracing::info!("no GeoIP database configured: locations are unknown (see --geoip-city)");
    }
    let started = std::time::Instant::now();
    let store = open_embedded(&config)?;
    tracing::info!(ms = started.elapsed().as_millis() as u64, "store opened");
    if config.memory_report_secs > 0 {
        store.spawn_memory_report(Duration::from_secs(config.memory_report_secs));
    }
    let storage = storage_of(&store);
    let token = admin_token(&config.admin_token_path())?;
    let max_timeout = storage
        .meta
        .sites()
        .await?
        .iter()
        .map(|s| s.session_timeout_secs)
        .max()
        .unwrap_or(footfall_core::session::DEFAULT_TIMEOUT_SECS);
    let ingestor = Ingestor::start(
        IngestConfig {
            wal_dir: config.wal_dir(),
            max_backlog_bytes: config.max_backlog_mb.saturating_mul(1 << 20),
            store_batch: config.store_batch.max(1),
        },
        storage.events.clone(),
        storage.meta.clone(),
        storage.live.clone(),
        max_timeout,
    )
    .await
    .context("recovering events from the write-ahead log")?;
    ingestor.pipeline.set_enrichment(enrichment);
    let sites = storage.meta.sites().await?;
    for (site_id, rules) in storage.meta.label_rules().await? {
        if let Some(site) = sites.iter().find(|s| s.id == site_id) {
            ingestor
                .pipeline
                .enrichment()
                .labels
                .set_api_rules(&site.domain, rules);
        }
    }
    let state = Arc::new(Inner::new(config, storage, ingestor, trusted, &token));
    state.reload().await?;
    Ok(state)
}

/// Serves until `shutdown` resolves. Writes DATA/server.json so the CLI can find us.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let server_file = config.server_file();
    let state = build_state(config).await?;
    std::fs::write(
        &server_file,
        serde_json::json!({"url": format!("http://{addr}"), "pid": std::process::id()}).to_string(),
    )
    .with_context(|| format!("cannot write {}", server_file.display()))?;

    let upkeep = state.clone();
    let maintenance = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        for second in 0u64.. {
            tick.tick().await;
            if second % 10 == 0 {
                upkeep.maintain().await;
            } else {
                upkeep.ingestor.compact_dedup_if_many();
            }
        }
    });
    let sites = state.indexes.read().sites_by_domain.len();
    tracing::info!(%addr, sites, "footfall is listening");
    tracing::info!(
        "dashboard: http://{addr}/dashboard (sign in with a stats key or the admin token in {})",
        state.config.admin_token_path().display()
    );
    if sites == 0 {
        tracing::info!(
            "no sites yet: run `footfall site add example.com` and `footfall key create --site example.com --scope ingest`"
        );
    }
    let live = state.clone();
    let live_sweep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tick.tick().await;
            let now = chrono::Utc::now().timestamp_micros();
            if let Err(e) = live.storage.live.sweep(now).await {
                tracing::warn!(error = %e, "could not sweep live state");
            }
        }
    });
    let app = app(state.clone());
    let app = axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
        SocketAddr,
    >(app);
    let closing = state.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            closing.closing.send_replace(true);
        })
        .await?;
    maintenance.abort();
    live_sweep.abort();
    state.maintain().await;
    let _ = std::fs::remove_file(&server_file);
    Ok(())
}
