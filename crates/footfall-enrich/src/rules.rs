//! Referrer spam and per-site block rules: the verdict layers after the user agent.
//!
//! Block rules come from the server's configuration file:
//!
//! ```toml
//! [[sites."example.com".block]]
//! ip = "203.0.113.0/24"        # one address or a CIDR
//!
//! [[sites."example.com".block]]
//! path = "/wp-admin*"          # `*` matches any run of characters
//! country = "RU"               # fields of one rule must all match
//!
//! [[sites."example.com".block]]
//! hostname = "*.staging.example.com"
//! ```

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::referrer::registrable_domain;
pub use footfall_core::labels::glob;
use footfall_core::labels::{LabelRule, VisitFacts, classify};
use parking_lot::RwLock;
use std::sync::Arc;

/// Referrer-spam domains (registrable domains; subdomains match too). Footfall's own
/// short list of the long-running campaigns that flood analytics with fake referrers.
pub const SPAM_REFERRERS: &[&str] = &[
    "semalt.com",
    "semalt.semalt.com",
    "buttons-for-website.com",
    "buttons-for-your-website.com",
    "darodar.com",
    "econom.co",
    "ilovevitaly.com",
    "ilovevitaly.ru",
    "priceg.com",
    "blackhatworth.com",
    "hulfingtonpost.com",
    "best-seo-offer.com",
    "best-seo-solution.com",
    "4webmasters.org",
    "free-share-buttons.com",
    "get-free-traffic-now.com",
    "traffic2money.com",
    "social-buttons.com",
    "simple-share-buttons.com",
    "trafficmonetize.org",
    "webmonetizer.net",
    "site-auditor.online",
    "free-social-buttons.com",
    "floating-share-buttons.com",
    "googlsucks.com",
    "o-o-6-o-o.com",
    "o-o-8-o-o.com",
    "7makemoneyonline.com",
    "kambasoft.com",
    "savetubevideo.com",
    "screentoolkit.com",
    "cenoval.ru",
    "bestwebsitesawards.com",
    "rank-checker.online",
    "seo-platform.com",
    "success-seo.com",
    "videos-for-your-business.com",
    "event-tracking.com",
    "copyrightclaims.org",
    "law-enforcement-check.com",
    "xn--80aagddcgkbcqbad7amllnejg6dya.xn--p1ai",
];

/// True when a referrer host (lowercase, without `www.`) is a known spam domain.
pub fn is_spam_referrer(host: &str) -> bool {
    let domain = registrable_domain(host);
    SPAM_REFERRERS.iter().any(|s| *s == domain || *s == host)
}

/// True when a referrer URL's host is a known spam domain. Reads the host without a
/// full URL parse: this runs for every hit that has a referrer.
pub fn is_spam_referrer_url(referrer: &str) -> bool {
    let host = crate::url::raw_host(referrer).trim_end_matches('.');
    if host.is_empty() {
        return false;
    }
    let host = host.to_ascii_lowercase();
    is_spam_referrer(host.strip_prefix("www.").unwrap_or(&host))
}

/// One rule as written in the configuration; every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

/// A site's section of the configuration (`[sites."example.com"]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteSettings {
    #[serde(default)]
    pub block: Vec<BlockRule>,
    /// Visitor classification rules (`[[sites."example.com".label]]`).
    #[serde(default)]
    pub label: Vec<LabelRule>,
    /// The tracker keeps a live channel open so the dashboard can invite the visitor
    /// (docs/TRACKER.md, "Live invitations").
    #[serde(default)]
    pub live_invites: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("{kind} rule {index} of site {site:?}: {message}")]
pub struct RuleError {
    /// "block" or "label".
    pub kind: &'static str,
    pub site: String,
    pub index: usize,
    pub message: String,
}

#[derive(Debug, Clone)]
struct Compiled {
    ip: Option<IpNet>,
    country: Option<String>,
    path: Option<String>,
    hostname: Option<String>,
}

/// The compiled rules of one site.
#[derive(Debug, Clone, Default)]
pub struct SiteRules {
    rules: Vec<Compiled>,
}

/// Facts of one hit that rules can test.
#[derive(Debug, Clone, Copy, Default)]
pub struct HitFacts<'a> {
    pub ip: Option<IpAddr>,
    /// ISO alpha-2, "" when unknown.
    pub country: &'a str,
    pub path: &'a str,
    pub hostname: &'a str,
}

impl SiteRules {
    /// Some rule looks at the country (so the hit needs a GeoIP lookup first).
    pub fn needs_country(&self) -> bool {
        self.rules.iter().any(|r| r.country.is_some())
    }

    pub fn blocks(&self, hit: &HitFacts<'_>) -> bool {
        self.rules.iter().any(|r| {
            r.ip.is_none_or(|net| hit.ip.is_some_and(|ip| net.contains(&ip)))
                && r.country
                    .as_deref()
                    .is_none_or(|c| c.eq_ignore_ascii_case(hit.country))
                && r.path.as_deref().is_none_or(|p| glob(p, hit.path))
                && r.hostname
                    .as_deref()
                    .is_none_or(|h| host_matches(h, hit.hostname))
        })
    }
}

/// Every site's rules, keyed by normalised domain.
#[derive(Debug, Clone, Default)]
pub struct BlockRules {
    by_site: HashMap<String, SiteRules>,
}

impl BlockRules {
    pub fn compile(sites: &BTreeMap<String, SiteSettings>) -> Result<BlockRules, RuleError> {
        let mut by_site = HashMap::new();
        for (site, settings) in sites {
            let domain = normalize(site);
            let mut rules = Vec::new();
            for (index, rule) in settings.block.iter().enumerate() {
                let err = |message: String| RuleError {
                    kind: "block",
                    site: site.clone(),
                    index: index + 1,
                    message,
                };
                let ip = rule
                    .ip
                    .as_deref()
                    .map(|s| {
                        let s = s.trim();
                        s.parse::<IpNet>()
                            .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                            .map_err(|_| err(format!("`ip` {s:?} is not an address or CIDR")))
                    })
                    .transpose()?;
                let country = rule
                    .country
                    .as_deref()
                    .map(|c| {
                        let c = c.trim();
                        if c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()) {
                            Ok(c.to_ascii_uppercase())
                        } else {
                            Err(err(format!(
                                "`country` {c:?} is not an ISO 3166-1 alpha-2 code"
                            )))
                        }
                    })
                    .transpose()?;
                let path = rule.path.as_deref().map(str::trim).map(str::to_string);
                if path
                    .as_deref()
                    .is_some_and(|p| !p.starts_with('/') && p != "*")
                {
                    return Err(err("`path` must start with `/`".into()));
                }
                let hostname = rule.hostname.as_deref().map(normalize);
                if ip.is_none() && country.is_none() && path.is_none() && hostname.is_none() {
                    return Err(err(
                        "give at least one of `ip`, `country`, `path`, `hostname`".into(),
                    ));
                }
                rules.push(Compiled {
                    ip,
                    country,
                    path,
                    hostname,
                });
            }
            if !rules.is_empty() {
                by_site.insert(domain, SiteRules { rules });
            }
        }
        Ok(BlockRules { by_site })
    }

    pub fn for_site(&self, domain: &str) -> Option<&SiteRules> {
        if self.by_site.is_empty() {
            return None;
        }
        self.by_site.get(&normalize(domain))
    }

    pub fn is_empty(&self) -> bool {
        self.by_site.is_empty()
    }
}

/// Label rules per site: those set through the API (replaceable while running) first,
/// then the configuration file's.
#[derive(Debug, Default)]
pub struct LabelBook {
    config: HashMap<String, Vec<LabelRule>>,
    api: RwLock<HashMap<String, Arc<Vec<LabelRule>>>>,
}

impl LabelBook {
    /// The configuration's rules, checked (errors name the site and rule).
    pub fn from_config(sites: &BTreeMap<String, SiteSettings>) -> Result<LabelBook, RuleError> {
        let mut config = HashMap::new();
        for (site, settings) in sites {
            if let Some((index, message)) = first_problem(&settings.label) {
                return Err(RuleError {
                    kind: "label",
                    site: site.clone(),
                    index,
                    message,
                });
            }
            if !settings.label.is_empty() {
                config.insert(normalize(site), settings.label.clone());
            }
        }
        Ok(LabelBook {
            config,
            api: RwLock::default(),
        })
    }

    /// Replaces a site's API rules (checked with [`first_problem`] by the caller).
    pub fn set_api_rules(&self, domain: &str, rules: Vec<LabelRule>) {
        let mut api = self.api.write();
        if rules.is_empty() {
            api.remove(&normalize(domain));
        } else {
            api.insert(normalize(domain), Arc::new(rules));
        }
    }

    /// A site's rules from the configuration file.
    pub fn config_rules(&self, domain: &str) -> &[LabelRule] {
        self.config
            .get(&normalize(domain))
            .map_or(&[], Vec::as_slice)
    }

    /// The visit's label, "" when no rule matches.
    pub fn label(&self, domain: &str, facts: &VisitFacts<'_>) -> String {
        let api = self.api.read();
        if self.config.is_empty() && api.is_empty() {
            return String::new();
        }
        let domain = normalize(domain);
        let api = api.get(&domain).cloned();
        api.as_deref()
            .and_then(|rules| classify(rules, facts))
            .or_else(|| {
                self.config
                    .get(&domain)
                    .and_then(|rules| classify(rules, facts))
            })
            .map(str::to_string)
            .unwrap_or_default()
    }
}

/// The first unusable rule as (1-based index, reason).
pub fn first_problem(rules: &[LabelRule]) -> Option<(usize, String)> {
    rules
        .iter()
        .enumerate()
        .find_map(|(i, r)| r.problem().map(|p| (i + 1, p)))
}

fn normalize(domain: &str) -> String {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    d.strip_prefix("www.").map(str::to_string).unwrap_or(d)
}

/// "example.com" matches itself; "*.example.com" matches its subdomains.
fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(parent) => host
            .strip_suffix(parent)
            .is_some_and(|rest| rest.ends_with('.')),
        None => pattern == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spam() {
        assert!(is_spam_referrer("semalt.com"));
        assert!(is_spam_referrer("forum.semalt.com"));
        assert!(is_spam_referrer("darodar.com"));
        assert!(!is_spam_referrer("google.com"));
        assert!(!is_spam_referrer("notsemalt.com"));
        assert!(is_spam_referrer_url("http://www.Darodar.com/x?y"));
        assert!(is_spam_referrer_url("https://user@semalt.com:8080/"));
        assert!(!is_spam_referrer_url("https://www.google.com/"));
        assert!(!is_spam_referrer_url("://"));
    }

    fn rules(toml_rules: Vec<BlockRule>) -> BlockRules {
        let mut sites = BTreeMap::new();
        sites.insert(
            "Example.com".to_string(),
            SiteSettings {
                block: toml_rules,
                ..SiteSettings::default()
            },
        );
        BlockRules::compile(&sites).expect("valid rules")
    }

    #[test]
    fn rule_matching() {
        let r = rules(vec![
            BlockRule {
                ip: Some("203.0.113.0/24".into()),
                ..BlockRule::default()
            },
            BlockRule {
                path: Some("/admin*".into()),
                country: Some("ru".into()),
                ..BlockRule::default()
            },
            BlockRule {
                hostname: Some("*.staging.example.com".into()),
                ..BlockRule::default()
            },
            BlockRule {
                ip: Some("2001:db8::1".into()),
                ..BlockRule::default()
            },
        ]);
        let site = r.for_site("www.example.com").expect("site has rules");
        assert!(site.needs_country());
        let hit = |ip: &str, country, path, hostname| HitFacts {
            ip: ip.parse().ok(),
            country,
            path,
            hostname,
        };
        assert!(site.blocks(&hit("203.0.113.7", "", "/", "example.com")));
        assert!(!site.blocks(&hit("203.0.114.7", "", "/", "example.com")));
        assert!(site.blocks(&hit("198.51.100.1", "RU", "/admin/x", "example.com")));
        assert!(!site.blocks(&hit("198.51.100.1", "DE", "/admin/x", "example.com")));
        assert!(!site.blocks(&hit("198.51.100.1", "RU", "/blog", "example.com")));
        assert!(site.blocks(&hit("198.51.100.1", "", "/", "a.staging.example.com")));
        assert!(!site.blocks(&hit("198.51.100.1", "", "/", "staging.example.com")));
        assert!(site.blocks(&hit("2001:db8::1", "", "/", "example.com")));
        assert!(!site.blocks(&hit("", "", "/", "example.com")));
        assert!(r.for_site("other.com").is_none());
    }

    #[test]
    fn bad_rules_name_the_site_and_rule() {
        let mut sites = BTreeMap::new();
        sites.insert(
            "example.com".to_string(),
            SiteSettings {
                block: vec![
                    BlockRule {
                        ip: Some("10.0.0.1".into()),
                        ..BlockRule::default()
                    },
                    BlockRule {
                        ip: Some("not-an-ip".into()),
                        ..BlockRule::default()
                    },
                ],
                ..SiteSettings::default()
            },
        );
        let e = BlockRules::compile(&sites).expect_err("bad ip");
        assert!(
            e.to_string().contains("rule 2 of site \"example.com\""),
            "{e}"
        );
        sites.insert(
            "example.com".to_string(),
            SiteSettings {
                block: vec![BlockRule::default()],
                ..SiteSettings::default()
            },
        );
        assert!(BlockRules::compile(&sites).is_err());
        sites.insert(
            "example.com".to_string(),
            SiteSettings {
                block: vec![BlockRule {
                    country: Some("Germany".into()),
                    ..BlockRule::default()
                }],
                ..SiteSettings::default()
            },
        );
        assert!(BlockRules::compile(&sites).is_err());
    }
}
