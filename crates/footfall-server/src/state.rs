//! Shared server state: storage handles, the ingestor, and in-memory indexes of sites and
//! keys (reloaded whenever the admin API changes them).

use crate::config::Config;
use crate::error::ApiError;
use footfall_ingest::Ingestor;
use footfall_store::{
    ApiKey, EventQuery, EventSink, KeyScope, LiveState, MetaStore, Role, Site, StoreResult, User,
};
use ipnet::IpNet;
use parking_lot::{Mutex, RwLock};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The storage bundle: one handle per concern (DESIGN §6).
#[derive(Clone)]
pub struct Storage {
    pub events: Arc<dyn EventSink>,
    pub query: Arc<dyn EventQuery>,
    pub meta: Arc<dyn MetaStore>,
    pub live: Arc<dyn LiveState>,
}

#[derive(Default)]
pub struct Indexes {
    pub sites_by_domain: HashMap<String, Arc<Site>>,
    pub sites_by_id: HashMap<u32, Arc<Site>>,
    /// Active keys by the hex SHA-256 of the key.
    pub keys_by_hash: HashMap<String, ApiKey>,
    /// Dashboard users by id, with their roles.
    pub users_by_id: HashMap<u32, Arc<User>>,
    /// Signed-in sessions by the hex SHA-256 of their cookie's token: (user id, expiry).
    pub logins_by_hash: HashMap<String, (u32, i64)>,
}

pub struct Inner {
    pub config: Config,
    pub storage: Storage,
    pub ingestor: Arc<Ingestor>,
    pub trusted_proxies: Vec<IpNet>,
    pub indexes: RwLock<Indexes>,
    admin_token_hash: [u8; 32],
    /// Uses per key id since the last flush, with the last use time.
    key_usage: Mutex<HashMap<u32, (u64, i64)>>,
    /// Becomes true when the server shuts down, ending the never-ending SSE streams so
    /// graceful shutdown does not wait for them.
    pub closing: tokio::sync::watch::Sender<bool>,
}

pub type AppState = Arc<Inner>;

/// Who is calling, after authentication.
#[derive(Debug, Clone)]
pub enum Caller {
    Admin,
    Key(ApiKey),
    /// A dashboard user signed in with a session cookie (`routes::auth`).
    User(Arc<User>),
}

/// The cookie of a signed-in dashboard session.
pub const SESSION_COOKIE: &str = "ff_session";

pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Normalises a site domain as Plausible does: lowercase, no `www.`.
pub fn normalize_domain(domain: &str) -> String {
    let d = domain.trim().to_ascii_lowercase();
    d.strip_prefix("www.").map(str::to_owned).unwrap_or(d)
}

impl Inner {
    pub fn new(
        config: Config,
        storage: Storage,
        ingestor: Arc<Ingestor>,
        trusted_proxies: Vec<IpNet>,
        admin_token: &str,
    ) -> Self {
        Inner {
            config,
            storage,
            ingestor,
            trusted_proxies,
            indexes: RwLock::new(Indexes::default()),
            admin_token_hash: hash_secret(admin_token),
            key_usage: Mutex::new(HashMap::new()),
            closing: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Reloads sites and keys from the meta store.
    pub async fn reload(&self) -> StoreResult<()> {
        let sites = self.storage.meta.sites().await?;
        let keys = self.storage.meta.keys().await?;
        let mut idx = Indexes::default();
        for site in sites {
            let site = Arc::new(site);
            idx.sites_by_id.insert(site.id, site.clone());
            idx.sites_by_domain.insert(site.domain.clone(), site);
        }
        for key in keys.into_iter().filter(|k| !k.revoked) {
            idx.keys_by_hash.insert(key.key_hash.clone(), key);
        }
        for user in self.storage.meta.users().await? {
            idx.users_by_id.insert(user.id, Arc::new(user));
        }
        for (hash, user_id, expires_us) in self.storage.meta.login_sessions().await? {
            idx.logins_by_hash.insert(hash, (user_id, expires_us));
        }
        *self.indexes.write() = idx;
        Ok(())
    }

    pub fn site(&self, domain: &str) -> Option<Arc<Site>> {
        self.indexes
            .read()
            .sites_by_domain
            .get(&normalize_domain(domain))
            .cloned()
    }

    /// The site named in a request path or body, or 404 naming it.
    pub fn existing_site(&self, domain: &str) -> Result<Arc<Site>, ApiError> {
        self.site(domain).ok_or_else(|| {
            ApiError::not_found("unknown_site", format!("site {domain:?} does not exist"))
        })
    }

    /// Resolves when the server starts shutting down.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.closing.subscribe();
        async move {
            // An error means the sender is gone: the server is gone too.
            let _ = rx.wait_for(|closing| *closing).await;
        }
    }

    pub fn site_timeout(&self, site_id: u32) -> u32 {
        self.indexes
            .read()
            .sites_by_id
            .get(&site_id)
            .map(|s| s.session_timeout_secs)
            .unwrap_or(footfall_core::session::DEFAULT_TIMEOUT_SECS)
    }

    /// Authenticates a bearer secret: the admin token or an active API key.
    pub fn authenticate(&self, secret: Option<&str>) -> Result<Caller, ApiError> {
        let secret = secret.ok_or_else(|| {
            ApiError::unauthorized("missing API key: send `Authorization: Bearer <key>`")
        })?;
        let hash = hash_secret(secret);
        if bool::from(hash.ct_eq(&self.admin_token_hash)) {
            return Ok(Caller::Admin);
        }
        // The map lookup is on a hash of the secret, which reveals nothing about valid keys.
        let key = self
            .indexes
            .read()
            .keys_by_hash
            .get(&hex::encode(hash))
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("invalid or revoked API key"))?;
        let mut usage = self.key_usage.lock();
        let entry = usage.entry(key.id).or_insert((0, 0));
        entry.0 += 1;
        entry.1 = chrono::Utc::now().timestamp_micros();
        Ok(Caller::Key(key))
    }

    /// Who is calling: the `Authorization` header's key or admin token, or else a
    /// signed-in dashboard session's cookie.
    pub fn authenticate_request(
        &self,
        headers: &axum::http::HeaderMap,
    ) -> Result<Caller, ApiError> {
        let bearer = crate::extract::bearer(headers);
        if bearer.is_some() {
            return self.authenticate(bearer);
        }
        let Some(token) = crate::cookie::read(headers, SESSION_COOKIE) else {
            return self.authenticate(None);
        };
        let idx = self.indexes.read();
        let now = chrono::Utc::now().timestamp_micros();
        idx.logins_by_hash
            .get(&hex::encode(hash_secret(token)))
            .filter(|(_, expires)| *expires > now)
            .and_then(|(user_id, _)| idx.users_by_id.get(user_id))
            .map(|user| Caller::User(user.clone()))
            .ok_or_else(|| ApiError::unauthorized("your session has ended: sign in again"))
    }

    /// Checks that `caller` has at least `role` on `site` (the admin token has every
    /// role; keys have none).
    pub fn require_role(&self, caller: &Caller, site: &Site, role: Role) -> Result<(), ApiError> {
        match caller {
            Caller::Admin => Ok(()),
            Caller::User(user) if user.role_on(site.id).is_some_and(|r| r >= role) => Ok(()),
            Caller::User(user) => Err(ApiError::forbidden(format!(
                "{} needs the {} role on {} for this",
                user.email,
                role.as_str(),
                site.domain
            ))),
            Caller::Key(_) => Err(ApiError::forbidden(
                "this endpoint needs the admin token or a signed-in user",
            )),
        }
    }

    /// Checks that `caller` may use `scope` on `site`.
    pub fn authorize(&self, caller: &Caller, site: &Site, scope: KeyScope) -> Result<(), ApiError> {
        match caller {
            Caller::Admin => Ok(()),
            // Users read the stats of their sites; they do not ingest.
            Caller::User(_) if scope == KeyScope::Stats => {
                self.require_role(caller, site, Role::Viewer)
            }
            Caller::User(_) => Err(ApiError::forbidden("ingestion needs a key of the site's")),
            Caller::Key(key) if key.site_id != site.id => Err(ApiError::forbidden(format!(
                "this key belongs to site {}, not {}",
                key.site_domain, site.domain
            ))),
            Caller::Key(key) if key.scope != scope => Err(ApiError::forbidden(format!(
                "this key has scope `{}`; this endpoint needs scope `{}`",
                key.scope.as_str(),
                scope.as_str()
            ))),
            Caller::Key(_) => Ok(()),
        }
    }

    /// Takes one request from a key's Stats API allowance (`stats_rate_limit` per hour);
    /// the admin token is not limited.
    pub async fn spend_stats_request(&self, caller: &Caller) -> Result<(), ApiError> {
        let per_hour = self.config.stats_rate_limit;
        let Caller::Key(key) = caller else {
            return Ok(());
        };
        if per_hour == 0 {
            return Ok(());
        }
        let now_us = chrono::Utc::now().timestamp_micros();
        let bucket = format!("stats:{}", key.id);
        if self
            .storage
            .live
            .take_rate_token(&bucket, per_hour, now_us)
            .await?
        {
            return Ok(());
        }
        // One request comes back every 3600 / per_hour seconds.
        let wait = 3600_u32.div_ceil(per_hour).max(1);
        Err(ApiError::rate_limited(
            format!("this key may make {per_hour} Stats API requests an hour; retry in {wait} s"),
            wait,
        ))
    }

    pub fn require_admin(&self, caller: &Caller) -> Result<(), ApiError> {
        match caller {
            Caller::Admin => Ok(()),
            Caller::Key(_) | Caller::User(_) => {
                Err(ApiError::forbidden("this endpoint needs the admin token"))
            }
        }
    }

    /// Periodic upkeep: ingest maintenance and key usage counters.
    pub async fn maintain(&self) {
        self.ingestor.maintain(|site| self.site_timeout(site)).await;
        let usage = std::mem::take(&mut *self.key_usage.lock());
        for (id, (uses, last)) in usage {
            if let Err(e) = self.storage.meta.record_key_usage(id, uses, last).await {
                tracing::warn!(error = %e, "could not save key usage");
            }
        }
    }
}
