//! IP address -> country / region / city and organisation, from MaxMind DB files
//! (GeoLite2 / GeoIP2 City or Country, DB-IP City/Country Lite; GeoLite2 ASN, GeoIP2 ISP,
//! DB-IP ASN Lite) read with the `maxminddb` crate.
//!
//! Databases are checked completely when opened (search tree and data section), so a
//! corrupt file stops start-up with an error naming it instead of failing per lookup.
//! The IP address itself is never returned or kept.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use maxminddb::Reader;
use serde::Deserialize;

/// What a location lookup derives from an IP address. Empty strings (and city 0) mean
/// unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// ISO 3166-1 alpha-2 ("GB").
    pub country: String,
    /// English name ("United Kingdom").
    pub country_name: String,
    /// ISO 3166-2 of the first (largest) subdivision ("GB-ENG").
    pub region: String,
    pub region_name: String,
    /// GeoName id of the city (0 when unknown; DB-IP has names only).
    pub city: u32,
    pub city_name: String,
    /// Organisation owning the address (ASN or ISP database).
    pub org: String,
}

#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    #[error("cannot open GeoIP database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: maxminddb::MaxMindDbError,
    },
    #[error("GeoIP database {path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: maxminddb::MaxMindDbError,
    },
    #[error("GeoIP database {path} has type {kind:?}, which is not {expected} database; {hint}")]
    WrongKind {
        path: PathBuf,
        kind: String,
        expected: &'static str,
        hint: &'static str,
    },
}

/// Which role a database file plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    City,
    Asn,
}

/// Open databases; either may be absent (then lookups leave those fields empty).
#[derive(Default)]
pub struct GeoIp {
    city: Option<Reader<Vec<u8>>>,
    asn: Option<Reader<Vec<u8>>>,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field(
                "city",
                &self.city.as_ref().map(|r| &r.metadata().database_type),
            )
            .field(
                "asn",
                &self.asn.as_ref().map(|r| &r.metadata().database_type),
            )
            .finish()
    }
}

impl GeoIp {
    /// Opens and verifies the given files. `city` takes a City or Country database,
    /// `asn` an ASN or ISP database.
    pub fn open(city: Option<&Path>, asn: Option<&Path>) -> Result<GeoIp, GeoError> {
        Ok(GeoIp {
            city: city.map(|p| open_checked(p, Role::City)).transpose()?,
            asn: asn.map(|p| open_checked(p, Role::Asn)).transpose()?,
        })
    }

    /// No database at all: every lookup is unknown.
    pub fn is_empty(&self) -> bool {
        self.city.is_none() && self.asn.is_none()
    }

    /// Looks an address up. Addresses in no network, and records that fail to decode,
    /// give empty fields: a lookup never fails the hit.
    pub fn lookup(&self, ip: IpAddr) -> Location {
        let mut loc = Location::default();
        if let Some(reader) = &self.city
            && let Ok(found) = reader.lookup(ip)
            && let Ok(Some(rec)) = found.decode::<CityRecord<'_>>()
        {
            if let Some(c) = &rec.country {
                loc.country = c.iso_code.unwrap_or_default().to_string();
                loc.country_name = c.english().to_string();
            }
            if let Some(sub) = rec.subdivisions.as_ref().and_then(|s| s.first()) {
                if let (Some(code), false) = (sub.iso_code, loc.country.is_empty()) {
                    loc.region = format!("{}-{code}", loc.country);
                }
                loc.region_name = sub.english().to_string();
            }
            if let Some(city) = &rec.city {
                loc.city = city.geoname_id.unwrap_or(0);
                loc.city_name = city.english().to_string();
            }
        }
        if let Some(reader) = &self.asn
            && let Ok(found) = reader.lookup(ip)
            && let Ok(Some(rec)) = found.decode::<AsnRecord<'_>>()
        {
            loc.org = rec
                .autonomous_system_organization
                .or(rec.organization)
                .unwrap_or_default()
                .to_string();
        }
        loc
    }
}

fn open_checked(path: &Path, role: Role) -> Result<Reader<Vec<u8>>, GeoError> {
    let reader = Reader::open_readfile(path).map_err(|source| GeoError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    // A full check costs a pass over the file at start-up, and spares every later
    // lookup from walking into a broken pointer or tree.
    reader.verify().map_err(|source| GeoError::Corrupt {
        path: path.to_path_buf(),
        source,
    })?;
    let kind = reader.metadata().database_type.clone();
    let lower = kind.to_ascii_lowercase();
    let ok = match role {
        // GeoIP2-City, GeoLite2-Country, GeoIP2-Enterprise, DBIP-City-Lite, ...
        Role::City => ["city", "country", "enterprise"]
            .iter()
            .any(|m| lower.contains(m)),
        // GeoLite2-ASN, GeoIP2-ISP, DBIP-ASN-Lite, ...
        Role::Asn => ["asn", "isp", "enterprise"]
            .iter()
            .any(|m| lower.contains(m)),
    };
    if !ok {
        return Err(match role {
            Role::City => GeoError::WrongKind {
                path: path.to_path_buf(),
                kind,
                expected: "a City or Country",
                hint: "give a GeoLite2/GeoIP2 City or Country (or DB-IP City/Country Lite) file to --geoip-city",
            },
            Role::Asn => GeoError::WrongKind {
                path: path.to_path_buf(),
                kind,
                expected: "an ASN or ISP",
                hint: "give a GeoLite2 ASN, GeoIP2 ISP (or DB-IP ASN Lite) file to --geoip-asn",
            },
        });
    }
    Ok(reader)
}

#[derive(Deserialize)]
struct CityRecord<'a> {
    #[serde(borrow, default)]
    country: Option<Place<'a>>,
    #[serde(borrow, default)]
    subdivisions: Option<Vec<Place<'a>>>,
    #[serde(borrow, default)]
    city: Option<Place<'a>>,
}

#[derive(Deserialize)]
struct Place<'a> {
    #[serde(default)]
    geoname_id: Option<u32>,
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
    #[serde(borrow, default)]
    names: Option<EnglishName<'a>>,
}

impl Place<'_> {
    fn english(&self) -> &str {
        self.names.as_ref().and_then(|n| n.en).unwrap_or_default()
    }
}

#[derive(Deserialize)]
struct EnglishName<'a> {
    #[serde(borrow, default)]
    en: Option<&'a str>,
}

#[derive(Deserialize)]
struct AsnRecord<'a> {
    #[serde(borrow, default)]
    autonomous_system_organization: Option<&'a str>,
    #[serde(borrow, default)]
    organization: Option<&'a str>,
}

/// A country code from a CDN header (`CF-IPCountry: DE`): two ASCII letters, upper-cased;
/// CDN placeholders for unknown or Tor ("XX", "T1", "ZZ") are no country.
pub fn country_from_header(value: &str) -> Option<String> {
    let v = value.trim();
    if v.len() != 2 || !v.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let v = v.to_ascii_uppercase();
    (!matches!(v.as_str(), "XX" | "T1" | "ZZ" | "A1" | "A2" | "O1")).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_country() {
        assert_eq!(country_from_header(" de "), Some("DE".into()));
        assert_eq!(country_from_header("XX"), None);
        assert_eq!(country_from_header("T1"), None);
        assert_eq!(country_from_header("DEU"), None);
        assert_eq!(country_from_header("1A"), None);
        assert_eq!(country_from_header(""), None);
    }

    #[test]
    fn empty_geoip_knows_nothing() {
        let g = GeoIp::default();
        assert!(g.is_empty());
        assert_eq!(
            g.lookup("81.2.69.142".parse().expect("ip")),
            Location::default()
        );
    }

    #[test]
    fn missing_file_names_the_path() {
        let err =
            GeoIp::open(Some(Path::new("/nonexistent/City.mmdb")), None).expect_err("missing file");
        assert!(err.to_string().contains("/nonexistent/City.mmdb"), "{err}");
    }
}
