//! Administrative operations shared by the admin API and the offline CLI, so both paths
//! validate and create things the same way.

use crate::state::{hash_secret, normalize_domain};
use footfall_store::{ApiKey, KeyScope, MetaStore, Site, StoreError, StoreResult};
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
