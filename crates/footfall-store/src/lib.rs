//! The storage contract: four traits so each backend implements what it is good at
//! (DESIGN §6). Backends live in their own crates; the server holds `Arc<dyn …>`s.

use async_trait::async_trait;
use footfall_core::Event;
use footfall_core::query::{Query, QueryOutput, SiteContext};
use serde::Serialize;

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    Conflict(String),
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("invalid query: {0}")]
    Query(String),
    #[error("database error: {0}")]
    Backend(String),
}

impl StoreError {
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::NotFound(_) => "not_found",
            StoreError::Conflict(_) => "conflict",
            StoreError::Invalid(_) => "invalid",
            StoreError::Query(_) => "invalid_query",
            StoreError::Backend(_) => "storage_error",
        }
    }
}

/// Identity mode of a site (DESIGN §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityMode {
    Cookieless,
    Cookie,
}

impl IdentityMode {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityMode::Cookieless => "cookieless",
            IdentityMode::Cookie => "cookie",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "cookieless" => Some(IdentityMode::Cookieless),
            "cookie" => Some(IdentityMode::Cookie),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Site {
    pub id: u32,
    pub domain: String,
    pub timezone: String,
    pub identity_mode: IdentityMode,
    pub session_timeout_secs: u32,
    /// Empty: the domain and its subdomains.
    pub allowed_hostnames: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyScope {
    Ingest,
    Stats,
}

impl KeyScope {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyScope::Ingest => "ingest",
            KeyScope::Stats => "stats",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ingest" => Some(KeyScope::Ingest),
            "stats" => Some(KeyScope::Stats),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKey {
    pub id: u32,
    pub site_id: u32,
    pub site_domain: String,
    pub scope: KeyScope,
    pub name: String,
    /// First characters of the key, to recognise it in lists.
    pub prefix: String,
    /// Hex SHA-256 of the key; the key itself is never stored.
    #[serde(skip)]
    pub key_hash: String,
    pub created_at: String,
    pub revoked: bool,
    pub usage_count: u64,
    pub last_used_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DropCount {
    pub reason: String,
    pub count: u64,
}

/// A visit that may still receive events, rebuilt at start-up.
#[derive(Debug, Clone)]
pub struct RecentSession {
    pub site_id: u32,
    pub event: Event,
    pub start_us: i64,
    pub last_us: i64,
}

/// Appends event batches; idempotent replay is driven by the WAL position (`lsn`)
/// stored atomically with each batch.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Stores `events` and records `lsn` as applied, atomically.
    async fn append(&self, events: std::sync::Arc<Vec<Event>>, lsn: u64) -> StoreResult<()>;
    /// Highest WAL position already applied.
    async fn checkpoint(&self) -> StoreResult<u64>;
    /// Event ids that came from client-given ids (for de-duplication after restarts).
    async fn client_event_ids(&self) -> StoreResult<Vec<u64>>;
    /// Last event of each visit whose latest event is within `window_secs` of the site's
    /// newest event: the visits that can still continue.
    async fn recent_sessions(&self, window_secs: u32) -> StoreResult<Vec<RecentSession>>;
    /// Deletes events of one site older than `days` days (retention).
    async fn delete_before(&self, site_id: u32, before_us: i64) -> StoreResult<u64>;
    /// Deletes every event of one visitor (GDPR erase).
    async fn erase_visitor(&self, site_id: u32, visitor_id: u64) -> StoreResult<u64>;
    /// Deletes every event of a site.
    async fn delete_site_events(&self, site_id: u32) -> StoreResult<()>;
}

/// Runs validated Stats API queries.
#[async_trait]
pub trait EventQuery: Send + Sync {
    async fn run(&self, site_id: u32, site: SiteContext, query: Query) -> StoreResult<QueryOutput>;
}

/// Sites, keys, goals, salts, counters.
#[async_trait]
pub trait MetaStore: Send + Sync {
    async fn sites(&self) -> StoreResult<Vec<Site>>;
    async fn add_site(&self, domain: &str, timezone: &str) -> StoreResult<Site>;
    async fn remove_site(&self, domain: &str) -> StoreResult<()>;
    async fn keys(&self) -> StoreResult<Vec<ApiKey>>;
    /// Stores a key (hash only) and returns its record.
    async fn add_key(
        &self,
        site_id: u32,
        scope: KeyScope,
        name: &str,
        prefix: &str,
        key_hash: &str,
    ) -> StoreResult<ApiKey>;
    async fn revoke_key(&self, id: u32) -> StoreResult<()>;
    /// Adds usage counted in memory since the last flush.
    async fn record_key_usage(&self, id: u32, uses: u64, last_used_us: i64) -> StoreResult<()>;
    async fn goals(&self, site_id: u32) -> StoreResult<Vec<footfall_core::query::Goal>>;
    /// Salts by UTC day number (days since the epoch).
    async fn salts(&self) -> StoreResult<Vec<(i32, footfall_core::identity::Salt)>>;
    async fn put_salt(&self, day: i32, salt: footfall_core::identity::Salt) -> StoreResult<()>;
    async fn delete_salts_before(&self, day: i32) -> StoreResult<()>;
    async fn add_drops(&self, site_id: u32, reason: &str, count: u64) -> StoreResult<()>;
    async fn drops(&self, site_id: u32) -> StoreResult<Vec<DropCount>>;
    /// Label rules set through the API, by site id (sites without any are left out).
    async fn label_rules(&self) -> StoreResult<Vec<(u32, Vec<footfall_core::labels::LabelRule>)>>;
    /// Replaces a site's API label rules (none: removes them).
    async fn set_label_rules(
        &self,
        site_id: u32,
        rules: Vec<footfall_core::labels::LabelRule>,
    ) -> StoreResult<()>;
}

/// A visitor seen recently, for realtime views.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActiveVisitor {
    pub visitor_id: u64,
    pub session_id: u64,
    pub pathname: String,
    pub last_seen_us: i64,
}

/// Short-lived shared state: who is on a site right now, and rate-limit buckets.
/// In process when embedded; Redis in a cluster, so every node sees the same.
#[async_trait]
pub trait LiveState: Send + Sync {
    /// Records stored events (engagement beacons included: the visitor is still there).
    async fn record(&self, events: &[Event]) -> StoreResult<()>;
    /// Visitors of a site whose last event is at or after `since_us`, newest first.
    async fn active_visitors(&self, site_id: u32, since_us: i64)
    -> StoreResult<Vec<ActiveVisitor>>;
    /// Takes one token from `key`'s bucket of `per_hour` tokens; false when empty.
    async fn take_rate_token(&self, key: &str, per_hour: u32, now_us: i64) -> StoreResult<bool>;
}

pub mod memory;
