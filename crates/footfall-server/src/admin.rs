//! Administrative operations shared by the admin API and the offline CLI, so both paths
//! validate and create things the same way.

use crate::state::{hash_secret, normalize_domain};
use footfall_core::identity::client_visitor_id;
use footfall_store::{ApiKey, EventSink, KeyScope, MetaStore, Site, StoreError, StoreResult};
use rand::RngCore;

/// Validates and adds a site.
pub async fn add_site(meta: &dyn MetaStore, domain: &str, timezone: &str) -> StoreResult<Site> {
    let domain = normalize_domain(domain);
    let valid = !domain.is_empty()
        && domain.len() <= 253
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    if !valid {
        return Err(StoreError::Invalid(format!(
            "{domain:?} is not a valid domain"
        )));
    }
    if timezone.parse::<chrono_tz::Tz>().is_err() {
        return Err(StoreError::Invalid(format!(
            "{timezone:?} is not an IANA timezone name (e.g. Europe/Berlin)"
        )));
    }
    meta.add_site(&domain, timezone).await
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
