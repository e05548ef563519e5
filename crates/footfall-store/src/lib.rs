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
            StoreError::Invalid(_) => "invalid_request",
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

/// A visit that may still receive events, rebuilt at start-up (its attributes stay in
/// the store: later events of a visit do not carry them).
#[derive(Debug, Clone)]
pub struct RecentSession {
    pub site_id: u32,
    pub visitor_id: u64,
    pub session_id: u64,
    /// First and last event times, microseconds since the epoch.
    pub start_us: i64,
    pub last_us: i64,
    /// Path of the visit's latest page view: where the visitor is now, for the live
    /// state a restart rebuilds (`LiveState::restore`).
    pub exit_page: String,
}

/// A visitor the live feed shows, as the store knows them (`EventSink::live_visits`).
#[derive(Debug, Clone)]
pub struct LivePresence {
    pub site_id: u32,
    pub visitor_id: u64,
    /// The visit's first and latest event, microseconds since the epoch.
    pub first_us: i64,
    pub last_us: i64,
    pub pageviews: u32,
    /// The latest page view's path and host.
    pub page: footfall_core::CompactString,
    pub hostname: footfall_core::CompactString,
    pub visit: footfall_core::VisitAttrs,
}

/// Receives chunks of ids (`EventSink::client_event_ids`). An alias, so that
/// `async_trait` leaves the lifetime of the chunk to the closure.
pub type EachIdChunk = Box<dyn FnMut(&[u64]) + Send>;

/// Appends event batches; idempotent replay is driven by the WAL position (`lsn`)
/// stored atomically with each batch.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Stores `events` and records `lsn` as applied, atomically.
    async fn append(&self, events: std::sync::Arc<Vec<Event>>, lsn: u64) -> StoreResult<()>;
    /// Highest WAL position already applied.
    async fn checkpoint(&self) -> StoreResult<u64>;
    /// Calls `each` with every event id that came from a client-given id (for
    /// de-duplication after restarts), in chunks, in any order: the caller builds its
    /// set in two passes rather than holding a list of them all.
    async fn client_event_ids(&self, each: EachIdChunk) -> StoreResult<()>;
    /// Last event of each visit whose latest event is within `window_secs` of the site's
    /// newest event: the visits that can still continue.
    async fn recent_sessions(&self, window_secs: u32) -> StoreResult<Vec<RecentSession>>;
    /// The latest visit of every visitor with an event at or after `since_us`, with its
    /// attributes: who the live feed shows after a restart.
    async fn live_visits(&self, since_us: i64) -> StoreResult<Vec<LivePresence>>;
    /// Deletes events of one site older than `days` days (retention).
    async fn delete_before(&self, site_id: u32, before_us: i64) -> StoreResult<u64>;
    /// Deletes every event of one visitor (GDPR erase).
    async fn erase_visitor(&self, site_id: u32, visitor_id: u64) -> StoreResult<u64>;
    /// Deletes every event of a site.
    async fn delete_site_events(&self, site_id: u32) -> StoreResult<()>;
    /// The writer has gone quiet after a load, or start-up has read what it restores:
    /// give back memory held only to make the next write or query faster (caches they
    /// would refill). Best effort.
    async fn release_idle_memory(&self) {}
}

/// Runs validated Stats API queries, and the native lists of visits and visitors.
#[async_trait]
pub trait EventQuery: Send + Sync {
    async fn run(&self, site_id: u32, site: SiteContext, query: Query) -> StoreResult<QueryOutput>;
    /// Visits starting in `[start, end)` that pass the filter, newest first, and how many
    /// pass it in all.
    async fn sessions(
        &self,
        site_id: u32,
        filter: ListFilter,
    ) -> StoreResult<(Vec<SessionSummary>, u64)>;
    /// One visit with its events in order; `None` when the site has no such visit.
    async fn session(&self, site_id: u32, session_id: u64) -> StoreResult<Option<SessionDetail>>;
    /// Visitors with a visit starting in `[start, end)` that passes the filter, most
    /// recently seen first, and how many there are in all.
    async fn visitors(
        &self,
        site_id: u32,
        filter: ListFilter,
    ) -> StoreResult<(Vec<VisitorSummary>, u64)>;
    /// How many events `export` would give for `[start_us, end_us)`.
    async fn export_count(&self, site_id: u32, start_us: i64, end_us: i64) -> StoreResult<u64>;
    /// The time of the site's earliest stored event (microseconds since the epoch), where
    /// the `"all"` date range starts; `None` when it has none.
    async fn first_event_us(&self, site_id: u32) -> StoreResult<Option<i64>>;
    /// Every event of `[start_us, end_us)` with its visit's attributes, in time order,
    /// handed to `each` a chunk at a time; `each` returns false to stop (the reader left).
    async fn export(
        &self,
        site_id: u32,
        start_us: i64,
        end_us: i64,
        each: EachExportChunk,
    ) -> StoreResult<()>;
}

/// Receives chunks of exported events (`EventQuery::export`); false stops the export.
pub type EachExportChunk = Box<dyn FnMut(&[ExportRow]) -> bool + Send>;

/// One stored event with its visit's attributes, as `footfall export` writes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportRow {
    /// RFC 3339 in UTC, milliseconds.
    pub time: String,
    pub name: String,
    pub hostname: String,
    pub page: String,
    pub title: String,
    /// The visitor id in hex.
    pub visitor: String,
    pub session_id: String,
    pub engaged_secs: f64,
    pub scroll_depth: Option<u8>,
    pub revenue_amount: Option<f64>,
    pub revenue_currency: Option<String>,
    pub props: std::collections::BTreeMap<String, String>,
    pub entry_page: String,
    pub source: String,
    pub referrer: String,
    pub channel: String,
    pub utm_source: String,
    pub utm_medium: String,
    pub utm_campaign: String,
    pub utm_content: String,
    pub utm_term: String,
    pub device: String,
    pub browser: String,
    pub browser_version: String,
    pub os: String,
    pub os_version: String,
    pub country: String,
    pub region: String,
    pub city_name: String,
    pub org: String,
    pub label: String,
}

/// Which visits the native lists (`sessions`, `visitors`) show. Text filters match the
/// visit's attribute exactly, except `org`, which matches a part of it, in any case.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Visits starting at or after this time (microseconds since the epoch)...
    pub start_us: i64,
    /// ... and before this one.
    pub end_us: i64,
    pub visitor_id: Option<u64>,
    pub country: Option<String>,
    pub city_name: Option<String>,
    pub org: Option<String>,
    pub source: Option<String>,
    pub device: Option<String>,
    pub browser: Option<String>,
    pub os: Option<String>,
    pub entry_page: Option<String>,
    pub limit: u32,
    pub offset: u32,
}

/// A visit as the session list shows it. Ids are strings: JSON numbers lose 64-bit
/// integers in JavaScript.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionSummary {
    pub session_id: String,
    /// The visitor id in hex (as the live view and the visitor list name it).
    pub visitor: String,
    /// RFC 3339 times of the first and the last event.
    pub started: String,
    pub ended: String,
    pub duration_secs: i64,
    pub pageviews: u32,
    /// Custom events that count as interaction (`interactive` not false).
    pub interactive_events: u32,
    pub bounced: bool,
    pub entry_page: String,
    pub exit_page: String,
    pub source: String,
    pub referrer: String,
    pub channel: String,
    pub utm_source: String,
    pub utm_medium: String,
    pub utm_campaign: String,
    pub device: String,
    pub browser: String,
    pub os: String,
    pub country: String,
    pub region_name: String,
    pub city_name: String,
    pub org: String,
    pub label: String,
}

/// One event of a visit, for the per-session insight.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionEvent {
    /// RFC 3339.
    pub time: String,
    pub name: String,
    pub hostname: String,
    pub page: String,
    pub title: String,
    /// Engagement events: seconds engaged on the page (else 0).
    pub engaged_secs: f64,
    /// Engagement events: the deepest scroll on the page in %, when known.
    pub scroll_depth: Option<u8>,
    pub props: std::collections::BTreeMap<String, String>,
}

/// A visit with its events and an engagement score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionDetail {
    #[serde(flatten)]
    pub summary: SessionSummary,
    pub events: Vec<SessionEvent>,
    /// 0-100, see `engagement_score`.
    pub engagement_score: u8,
}

/// The per-session engagement score, 0-100, from what the visit did: 40 points for its
/// duration (full at 5 minutes or more), 30 for page views beyond the first (full at 4
/// more), 20 for interactive custom events (full at 2), 10 for the deepest scroll (full
/// at 75 %). A bounced visit of one page view scores 0 unless it scrolled.
pub fn engagement_score(
    duration_secs: i64,
    pageviews: u32,
    interactive_events: u32,
    max_scroll: Option<u8>,
) -> u8 {
    let part = |x: f64, full: f64| (x / full).clamp(0.0, 1.0);
    let score = 40.0 * part(duration_secs as f64, 300.0)
        + 30.0 * part(f64::from(pageviews.saturating_sub(1)), 4.0)
        + 20.0 * part(f64::from(interactive_events), 2.0)
        + 10.0 * part(f64::from(max_scroll.unwrap_or(0)), 75.0);
    score.round().clamp(0.0, 100.0) as u8
}

/// A visitor as the visitor list shows it (their latest visit's attributes).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VisitorSummary {
    /// The visitor id in hex.
    pub visitor: String,
    /// RFC 3339: the first event of their first listed visit, the last event of their
    /// latest one.
    pub first_seen: String,
    pub last_seen: String,
    pub visits: u64,
    pub pageviews: u64,
    /// Sum of the visits' durations.
    pub total_duration_secs: i64,
    pub country: String,
    pub region_name: String,
    pub city_name: String,
    pub org: String,
    pub device: String,
    pub browser: String,
    pub os: String,
    pub source: String,
}

/// Sites, keys, goals, salts, counters.
#[async_trait]
pub trait MetaStore: Send + Sync {
    async fn sites(&self) -> StoreResult<Vec<Site>>;
    async fn add_site(&self, domain: &str, timezone: &str) -> StoreResult<Site>;
    async fn remove_site(&self, domain: &str) -> StoreResult<()>;
    /// Writes a site's settings (timezone, identity mode, session timeout, allowed
    /// hostnames), validated by the caller; the domain and id do not change.
    async fn update_site(&self, site: &Site) -> StoreResult<()>;
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
    /// A site's configured goals with their ids, in the order they were added.
    async fn goal_records(&self, site_id: u32) -> StoreResult<Vec<GoalRecord>>;
    /// Adds a goal (validated by the caller); returns its record.
    async fn add_goal(
        &self,
        site_id: u32,
        goal: footfall_core::query::Goal,
    ) -> StoreResult<GoalRecord>;
    /// Removes a site's goal; `NotFound` when the site has no goal with that id.
    async fn remove_goal(&self, site_id: u32, id: u32) -> StoreResult<()>;
    /// Salts by UTC day number (days since the epoch).
    async fn salts(&self) -> StoreResult<Vec<(i32, footfall_core::identity::Salt)>>;
    async fn put_salt(&self, day: i32, salt: footfall_core::identity::Salt) -> StoreResult<()>;
    async fn delete_salts_before(&self, day: i32) -> StoreResult<()>;
    async fn add_drops(&self, site_id: u32, reason: &str, count: u64) -> StoreResult<()>;
    async fn drops(&self, site_id: u32) -> StoreResult<Vec<DropCount>>;
    /// Dashboard users with their roles.
    async fn users(&self) -> StoreResult<Vec<User>>;
    /// Adds a user (the caller hashed the password); `Conflict` when the email is taken.
    async fn add_user(&self, email: &str, password_hash: &str) -> StoreResult<User>;
    /// Removes a user with their roles and signed-in sessions.
    async fn remove_user(&self, user_id: u32) -> StoreResult<()>;
    async fn set_password(&self, user_id: u32, password_hash: &str) -> StoreResult<()>;
    /// Gives a user a role on a site, or takes it away (`None`).
    async fn set_role(&self, user_id: u32, site_id: u32, role: Option<Role>) -> StoreResult<()>;
    /// Signed-in sessions: (SHA-256 of the token in hex, user id, expiry in microseconds).
    async fn login_sessions(&self) -> StoreResult<Vec<(String, u32, i64)>>;
    async fn add_login_session(
        &self,
        token_hash: &str,
        user_id: u32,
        expires_us: i64,
    ) -> StoreResult<()>;
    async fn remove_login_session(&self, token_hash: &str) -> StoreResult<()>;
    /// Label rules set through the API, by site id (sites without any are left out).
    async fn label_rules(&self) -> StoreResult<Vec<(u32, Vec<footfall_core::labels::LabelRule>)>>;
    /// Replaces a site's API label rules (none: removes them).
    async fn set_label_rules(
        &self,
        site_id: u32,
        rules: Vec<footfall_core::labels::LabelRule>,
    ) -> StoreResult<()>;
}

/// A dashboard user's role on a site: viewers read its stats; admins also change its
/// settings, goals and shared links; owners may also delete it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(Role::Viewer),
            "admin" => Some(Role::Admin),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }
}

/// A user's role on one site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    pub site_id: u32,
    pub site: String,
    pub role: Role,
}

/// A dashboard user (DESIGN §5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: u32,
    pub email: String,
    /// argon2id, PHC string format; never shown.
    #[serde(skip)]
    pub password_hash: String,
    pub sites: Vec<Membership>,
}

impl User {
    pub fn role_on(&self, site_id: u32) -> Option<Role> {
        self.sites
            .iter()
            .find(|m| m.site_id == site_id)
            .map(|m| m.role)
    }
}

/// A configured goal as the admin API lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GoalRecord {
    pub id: u32,
    /// `page` or `event`.
    pub kind: &'static str,
    /// Page path pattern (`*` wildcards) or event name.
    pub pattern: String,
    /// The `event:goal` value: `Visit /blog*` or the event name.
    pub display_name: String,
}

/// A visitor seen recently, for realtime views.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActiveVisitor {
    pub visitor_id: u64,
    pub session_id: u64,
    pub pathname: footfall_core::CompactString,
    pub last_seen_us: i64,
}

/// A visitor on a site's live feed (DESIGN §5), as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveVisitor {
    /// Opaque id naming the visitor in the invite endpoint (the visitor id in hex).
    pub visitor: String,
    /// Current page (path of the latest page view).
    pub page: String,
    pub hostname: String,
    pub pageviews: u32,
    pub source: String,
    pub referrer: String,
    pub device: String,
    pub browser: String,
    pub os: String,
    pub country: String,
    pub city: String,
    pub org: String,
    /// RFC 3339 times of the arrival and of the latest event.
    pub first_seen: String,
    pub last_seen: String,
    /// A live channel is open: an invitation reaches this visitor now.
    pub invitable: bool,
}

/// A change on a site's live feed; `kind()` names the SSE event.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    Arrival(LiveVisitor),
    /// A page view of a visitor already there.
    Page(LiveVisitor),
    /// The visitor's live channel opened or closed (`invitable` changed).
    Channel(LiveVisitor),
    Departure {
        visitor: String,
    },
}

impl LiveEvent {
    pub fn kind(&self) -> &'static str {
        match self {
            LiveEvent::Arrival(_) => "arrival",
            LiveEvent::Page(_) => "page",
            LiveEvent::Channel(_) => "channel",
            LiveEvent::Departure { .. } => "departure",
        }
    }
    pub fn data(&self) -> serde_json::Value {
        match self {
            LiveEvent::Arrival(v) | LiveEvent::Page(v) | LiveEvent::Channel(v) => {
                serde_json::to_value(v).unwrap_or_default()
            }
            LiveEvent::Departure { visitor } => serde_json::json!({ "visitor": visitor }),
        }
    }
}

/// What the dashboard sends to one live visitor; the tracker shows it as a prompt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Invitation {
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Text of the link (the tracker shows "Open" without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// The dashboard's view of a site: who is there now, then every change.
pub struct LiveFeed {
    pub visitors: Vec<LiveVisitor>,
    pub events: tokio::sync::broadcast::Receiver<LiveEvent>,
}

/// One open visitor channel (a tracker's SSE connection).
pub struct VisitorChannel {
    pub id: u64,
    pub site_id: u32,
    pub visitor_id: u64,
    pub invitations: tokio::sync::mpsc::Receiver<Invitation>,
}

/// Short-lived shared state: who is on a site right now, live channels, and rate-limit
/// buckets. In process when embedded; Redis in a cluster, so every node sees the same.
#[async_trait]
pub trait LiveState: Send + Sync {
    /// Records stored events (engagement beacons included: the visitor is still there).
    async fn record(&self, events: &[Event]) -> StoreResult<()>;
    /// Seeds who is on each site from the visits the store holds as open at start-up,
    /// as `(site_id, visitor)` pairs: state kept in the process is empty after a restart,
    /// and realtime figures would otherwise count only visitors who act again. An entry
    /// already recorded and newer is kept.
    async fn restore(&self, visitors: Vec<(u32, ActiveVisitor)>) -> StoreResult<()>;
    /// Seeds the live feed's presences after a restart (visitors of the last minutes, with
    /// their visit's attributes), without announcing them: a feed opened later lists them
    /// as already there.
    async fn restore_presence(&self, visits: Vec<LivePresence>) -> StoreResult<()>;
    /// Visitors of a site whose last event is at or after `since_us`, newest first.
    async fn active_visitors(&self, site_id: u32, since_us: i64)
    -> StoreResult<Vec<ActiveVisitor>>;
    /// Takes one token from `key`'s bucket of `per_hour` tokens; false when empty.
    async fn take_rate_token(&self, key: &str, per_hour: u32, now_us: i64) -> StoreResult<bool>;

    /// The token a visitor's tracker opens its channel with: unguessable, stable while
    /// the visitor is live, naming (site, visitor) without anything about the person.
    async fn channel_token(&self, site_id: u32, visitor_id: u64) -> StoreResult<String>;
    /// Opens a channel for the visitor a token names; `None` for an unknown or expired token.
    async fn open_channel(&self, token: &str) -> StoreResult<Option<VisitorChannel>>;
    /// Closes a channel (its connection ended).
    async fn close_channel(&self, site_id: u32, visitor_id: u64, id: u64) -> StoreResult<()>;
    /// Subscribes to a site's live feed.
    async fn subscribe(&self, site_id: u32) -> StoreResult<LiveFeed>;
    /// Delivers an invitation to every open channel of a visitor; how many it reached.
    async fn invite(
        &self,
        site_id: u32,
        visitor_id: u64,
        invitation: Invitation,
    ) -> StoreResult<usize>;
    /// Announces departures of visitors gone quiet and forgets old entries; called every
    /// few seconds.
    async fn sweep(&self, now_us: i64) -> StoreResult<()>;
}

pub mod memory;
pub mod thread;
