//! Administrative operations shared by the admin API and the offline CLI, so both paths
//! validate and create things the same way.

use crate::state::{hash_secret, normalize_domain};
use footfall_core::identity::client_visitor_id;
use footfall_core::query::{Goal, GoalKind};
use footfall_store::{
    ApiKey, EventSink, GoalRecord, IdentityMode, KeyScope, MetaStore, Role, Site, StoreError,
    StoreResult, User,
};
use rand::RngCore;

/// Validates and adds a site.
pub async fn add_site(meta: &dyn MetaStore, domain: &str, timezone: &str) -> StoreResult<Site> {
    let domain = normalize_domain(domain);
    if !valid_domain(&domain) {
        return Err(StoreError::Invalid(format!(
            "{domain:?} is not a valid domain"
        )));
    }
    check_timezone(timezone)?;
    meta.add_site(&domain, timezone).await
}

/// Site settings to change; `None` leaves a setting as it is.
#[derive(Debug, Default, Clone)]
pub struct SiteChanges {
    pub timezone: Option<String>,
    /// `cookieless` (the default: a daily-salted hash, no cookie) or `cookie`.
    pub identity_mode: Option<String>,
    /// Inactivity after which the next hit starts a new visit.
    pub session_timeout_secs: Option<u32>,
    /// Hostnames whose hits are stored (each with its subdomains); empty: every
    /// hostname is stored.
    pub allowed_hostnames: Option<Vec<String>>,
}

impl SiteChanges {
    pub fn is_empty(&self) -> bool {
        self.timezone.is_none()
            && self.identity_mode.is_none()
            && self.session_timeout_secs.is_none()
            && self.allowed_hostnames.is_none()
    }
}

/// Session timeouts accepted: one minute to one day (Plausible's is 30 minutes).
const SESSION_TIMEOUT_SECS: std::ops::RangeInclusive<u32> = 60..=86_400;

/// Validates and applies `changes` to a site; returns the site as stored.
pub async fn update_site(
    meta: &dyn MetaStore,
    domain: &str,
    changes: &SiteChanges,
) -> StoreResult<Site> {
    let mut site = find_site(meta, domain).await?;
    apply_changes(&mut site, changes)?;
    meta.update_site(&site).await?;
    Ok(site)
}

/// Adds a site with settings besides its timezone: all are checked before the site is
/// created, so an invalid setting creates nothing.
pub async fn add_site_with(
    meta: &dyn MetaStore,
    domain: &str,
    timezone: &str,
    changes: &SiteChanges,
) -> StoreResult<Site> {
    let mut probe = Site {
        id: 0,
        domain: domain.to_owned(),
        timezone: timezone.to_owned(),
        identity_mode: IdentityMode::Cookieless,
        session_timeout_secs: 1800,
        allowed_hostnames: Vec::new(),
    };
    apply_changes(&mut probe, changes)?;
    let mut site = add_site(meta, domain, timezone).await?;
    if changes.is_empty() {
        return Ok(site);
    }
    apply_changes(&mut site, changes)?;
    meta.update_site(&site).await?;
    Ok(site)
}

fn apply_changes(site: &mut Site, changes: &SiteChanges) -> StoreResult<()> {
    if let Some(tz) = &changes.timezone {
        check_timezone(tz)?;
        site.timezone.clone_from(tz);
    }
    if let Some(mode) = &changes.identity_mode {
        site.identity_mode = IdentityMode::parse(mode).ok_or_else(|| {
            StoreError::Invalid(format!(
                "identity mode {mode:?} must be `cookieless` or `cookie`"
            ))
        })?;
    }
    if let Some(secs) = changes.session_timeout_secs {
        if !SESSION_TIMEOUT_SECS.contains(&secs) {
            return Err(StoreError::Invalid(format!(
                "session timeout {secs} s must be between {} and {} seconds",
                SESSION_TIMEOUT_SECS.start(),
                SESSION_TIMEOUT_SECS.end()
            )));
        }
        site.session_timeout_secs = secs;
    }
    if let Some(hosts) = &changes.allowed_hostnames {
        let mut clean = Vec::new();
        for host in hosts {
            let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
            if host.is_empty() {
                continue;
            }
            if !valid_domain(&host) {
                return Err(StoreError::Invalid(format!(
                    "allowed hostname {host:?} is not a hostname (e.g. example.com)"
                )));
            }
            if !clean.contains(&host) {
                clean.push(host);
            }
        }
        site.allowed_hostnames = clean;
    }
    Ok(())
}

/// What a new goal counts: page views of matching paths, or a custom event.
#[derive(Debug, Clone)]
pub enum GoalSpec {
    /// A path pattern, as in Plausible: `*` matches within one path segment (`/blog*`:
    /// `/blog`, `/blog-2024`), `**` across segments (`/blog/**`: every page under it).
    Page(String),
    /// A custom event name. Every event name is already an `event:goal` value; a
    /// configured event goal is listed with the site's goals.
    Event(String),
}

/// Validates and adds a goal to a site.
pub async fn add_goal(
    meta: &dyn MetaStore,
    site: &Site,
    spec: GoalSpec,
) -> StoreResult<GoalRecord> {
    let goal = match spec {
        GoalSpec::Page(path) => {
            let path = path.trim().to_string();
            if !path.starts_with('/') || path.len() > 2000 {
                return Err(StoreError::Invalid(format!(
                    "page goal {path:?} must be a path starting with `/` (`*` as a wildcard), at most 2000 bytes"
                )));
            }
            Goal {
                kind: GoalKind::Page,
                display_name: format!("Visit {path}"),
                pattern: path,
            }
        }
        GoalSpec::Event(name) => {
            let name = name.trim().to_string();
            if name.is_empty() || name.len() > 120 {
                return Err(StoreError::Invalid(
                    "an event goal needs the event's name (1 to 120 bytes)".into(),
                ));
            }
            Goal {
                kind: GoalKind::Event,
                display_name: name.clone(),
                pattern: name,
            }
        }
    };
    meta.add_goal(site.id, goal).await
}

fn valid_domain(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= 253
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
}

fn check_timezone(timezone: &str) -> StoreResult<()> {
    if timezone.parse::<chrono_tz::Tz>().is_err() {
        return Err(StoreError::Invalid(format!(
            "{timezone:?} is not an IANA timezone name (e.g. Europe/Berlin)"
        )));
    }
    Ok(())
}

/// Creates an API key; returns its record and the key itself (shown once, stored hashed).
pub async fn create_key(
    meta: &dyn MetaStore,
    site: &Site,
    scope: KeyScope,
    name: &str,
) -> StoreResult<(ApiKey, String)> {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    let key = format!("ff_{}_{}", scope.as_str(), hex::encode(bytes));
    let prefix: String = key.chars().take(14).collect();
    let record = meta
        .add_key(
            site.id,
            scope,
            name,
            &prefix,
            &hex::encode(hash_secret(&key)),
        )
        .await?;
    Ok((record, key))
}

/// Passwords shorter than this are refused.
pub const MIN_PASSWORD_LEN: usize = 10;

/// An argon2id hash (PHC string, random salt, the crate's default cost) of `password`.
pub fn hash_password(password: &str) -> StoreResult<String> {
    use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(StoreError::Invalid(format!(
            "a password needs at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Backend(format!("hashing the password: {e}")))
}

/// Whether `password` matches the PHC string `hash` (false for a malformed hash).
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A random password for a user added without one (shown once).
pub fn generate_password() -> String {
    let mut bytes = [0u8; 12];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn normalize_email(email: &str) -> StoreResult<String> {
    let email = email.trim().to_ascii_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, host)| {
            !local.is_empty() && !host.is_empty() && !email.contains(char::is_whitespace)
        });
    if !valid {
        return Err(StoreError::Invalid(format!(
            "{email:?} is not an email address"
        )));
    }
    Ok(email)
}

/// Finds a user by email or fails naming it.
pub async fn find_user(meta: &dyn MetaStore, email: &str) -> StoreResult<User> {
    let email = normalize_email(email)?;
    meta.users()
        .await?
        .into_iter()
        .find(|u| u.email == email)
        .ok_or_else(|| {
            StoreError::NotFound(format!(
                "user {email:?}; list users with `footfall user list`"
            ))
        })
}

/// Adds a dashboard user with `password` (hashed with argon2id) and, when `site` is
/// given, a role on it.
pub async fn add_user(
    meta: &dyn MetaStore,
    email: &str,
    password: &str,
    site: Option<(&Site, Role)>,
) -> StoreResult<User> {
    let email = normalize_email(email)?;
    let hash = hash_password(password)?;
    let user = meta.add_user(&email, &hash).await?;
    if let Some((site, role)) = site {
        meta.set_role(user.id, site.id, Some(role)).await?;
    }
    find_user(meta, &email).await
}

/// The name of the stats keys that back shared dashboard links.
pub const SHARED_LINK_KEY_NAME: &str = "shared link";

/// A read-only dashboard link for `site`: a new stats key in the link's fragment. Returns
/// the key's record and the link's path (`/dashboard#site=...&key=...`).
pub async fn create_shared_link(
    meta: &dyn MetaStore,
    site: &Site,
) -> StoreResult<(ApiKey, String)> {
    let (record, key) = create_key(meta, site, KeyScope::Stats, SHARED_LINK_KEY_NAME).await?;
    Ok((record, format!("/dashboard#site={}&key={key}", site.domain)))
}

/// Finds a site by domain or fails with a message naming it.
pub async fn find_site(meta: &dyn MetaStore, domain: &str) -> StoreResult<Site> {
    let domain = normalize_domain(domain);
    meta.sites()
        .await?
        .into_iter()
        .find(|s| s.domain == domain)
        .ok_or_else(|| {
            StoreError::NotFound(format!(
                "site {domain:?}; list sites with `footfall site list`"
            ))
        })
}

/// The stored visitor id of a site's client-given `visitor_id`.
pub fn visitor_id_of(site: &Site, visitor: &str) -> u64 {
    client_visitor_id(site.id, visitor)
}

/// GDPR erase: deletes every event of one visitor; returns how many.
pub async fn erase_visitor(events: &dyn EventSink, site: &Site, visitor: &str) -> StoreResult<u64> {
    events
        .erase_visitor(site.id, visitor_id_of(site, visitor))
        .await
}

/// Retention: deletes a site's events older than `days` (at least 1) days.
pub async fn prune(events: &dyn EventSink, site: &Site, days: u32) -> StoreResult<u64> {
    if days == 0 {
        return Err(StoreError::Invalid(
            "`older_than_days` must be an integer >= 1".into(),
        ));
    }
    let before_us = chrono::Utc::now().timestamp_micros() - i64::from(days) * 86_400 * 1_000_000;
    events.delete_before(site.id, before_us).await
}
