//! Visitor classification rules (the seed's "recruiter identification"): a site's rules
//! give a visit a label from its referrer host, UTM tags, user agent or entry path. The
//! label is decided once, when the visit starts, and is the `visit:label` dimension.
//!
//! ```toml
//! [[sites."example.com".label]]
//! label = "recruiter"
//! referrer_host = ["linkedin.com", "greenhouse.io", "lever.co"]
//! ```

use serde::{Deserialize, Serialize};

/// One rule; every condition given must match, and the first matching rule of a site
/// labels the visit. Text conditions are `*` globs, compared case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelRule {
    pub label: String,
    /// Any of these hosts; a host also matches its subdomains (`linkedin.com` matches
    /// `www.linkedin.com` and `lnkd.linkedin.com`); `*` globs allowed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub referrer_host: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_medium: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_campaign: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_path: Option<String>,
}

/// What a rule can look at, from the visit's first hit.
#[derive(Debug, Clone, Copy, Default)]
pub struct VisitFacts<'a> {
    /// Referrer host, any case, "" when none.
    pub referrer_host: &'a str,
    pub utm_source: &'a str,
    pub utm_medium: &'a str,
    pub utm_campaign: &'a str,
    pub user_agent: &'a str,
    pub entry_path: &'a str,
}

/// Longest label accepted (labels are dimension values, not notes).
pub const MAX_LABEL_LEN: usize = 64;

impl LabelRule {
    /// Why the rule cannot be used, if it cannot.
    pub fn problem(&self) -> Option<String> {
        let label = self.label.trim();
        if label.is_empty() {
            return Some("`label` must not be empty".into());
        }
        if label.len() > MAX_LABEL_LEN {
            return Some(format!("`label` is longer than {MAX_LABEL_LEN} bytes"));
        }
        let texts = [
            &self.utm_source,
            &self.utm_medium,
            &self.utm_campaign,
            &self.user_agent,
            &self.entry_path,
        ];
        if self.referrer_host.is_empty() && texts.iter().all(|t| t.is_none()) {
            return Some(
                "needs at least one of referrer_host, utm_source, utm_medium, utm_campaign, \
                 user_agent, entry_path"
                    .into(),
            );
        }
        if self.referrer_host.iter().any(|h| h.trim().is_empty())
            || texts
                .iter()
                .any(|t| t.as_deref().is_some_and(str::is_empty))
        {
            return Some("conditions must not be empty strings".into());
        }
        None
    }

    pub fn matches(&self, v: &VisitFacts<'_>) -> bool {
        let text = |pattern: &Option<String>, value: &str| {
            pattern
                .as_deref()
                .is_none_or(|p| glob(&p.to_lowercase(), &value.to_lowercase()))
        };
        (self.referrer_host.is_empty()
            || self
                .referrer_host
                .iter()
                .any(|h| host_matches(&h.to_lowercase(), &v.referrer_host.to_lowercase())))
            && text(&self.utm_source, v.utm_source)
            && text(&self.utm_medium, v.utm_medium)
            && text(&self.utm_campaign, v.utm_campaign)
            && text(&self.user_agent, v.user_agent)
            && text(&self.entry_path, v.entry_path)
    }
}

/// The label of the first rule that matches, if any.
pub fn classify<'r>(rules: &'r [LabelRule], v: &VisitFacts<'_>) -> Option<&'r str> {
    rules.iter().find(|r| r.matches(v)).map(|r| r.label.trim())
}

/// Host pattern match: `*` globs, else the host itself or any subdomain of it.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    if host.is_empty() {
        return false;
    }
    if pattern.contains('*') {
        return glob(pattern, host);
    }
    host == pattern
        || host
            .strip_suffix(pattern)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// `*` matches any run of characters (including `/`); everything else is literal.
pub fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recruiter() -> LabelRule {
        LabelRule {
            label: "recruiter".into(),
            referrer_host: vec![
                "linkedin.com".into(),
                "greenhouse.io".into(),
                "lever.co".into(),
            ],
            ..LabelRule::default()
        }
    }

    #[test]
    fn referrer_hosts_match_subdomains_any_case() {
        let rules = [recruiter()];
        for host in [
            "linkedin.com",
            "WWW.LinkedIn.com",
            "boards.greenhouse.io",
            "jobs.lever.co",
        ] {
            let v = VisitFacts {
                referrer_host: host,
                ..VisitFacts::default()
            };
            assert_eq!(classify(&rules, &v), Some("recruiter"), "{host}");
        }
        for host in ["notlinkedin.com", "linkedin.com.evil.net", ""] {
            let v = VisitFacts {
                referrer_host: host,
                ..VisitFacts::default()
            };
            assert_eq!(classify(&rules, &v), None, "{host}");
        }
    }

    #[test]
    fn every_condition_must_match_and_first_rule_wins() {
        let rules = [
            LabelRule {
                label: "campaign-careers".into(),
                utm_campaign: Some("careers*".into()),
                entry_path: Some("/jobs/*".into()),
                ..LabelRule::default()
            },
            LabelRule {
                label: "bot-ish".into(),
                user_agent: Some("*HeadlessChrome*".into()),
                ..LabelRule::default()
            },
            recruiter(),
        ];
        let v = VisitFacts {
            referrer_host: "linkedin.com",
            utm_campaign: "Careers-2026",
            entry_path: "/jobs/rust",
            ..VisitFacts::default()
        };
        assert_eq!(classify(&rules, &v), Some("campaign-careers"));
        let v = VisitFacts {
            entry_path: "/about",
            ..v
        };
        assert_eq!(classify(&rules, &v), Some("recruiter"));
        let v = VisitFacts {
            user_agent: "Mozilla/5.0 HeadlessChrome/120",
            ..VisitFacts::default()
        };
        assert_eq!(classify(&rules, &v), Some("bot-ish"));
    }

    #[test]
    fn problems_are_named() {
        assert!(LabelRule::default().problem().is_some());
        let no_condition = LabelRule {
            label: "x".into(),
            ..LabelRule::default()
        };
        assert!(
            no_condition
                .problem()
                .is_some_and(|p| p.contains("at least one"))
        );
        assert_eq!(recruiter().problem(), None);
    }

    #[test]
    fn globs() {
        assert!(glob("/wp-admin*", "/wp-admin/x.php"));
        assert!(glob("/wp-admin*", "/wp-admin"));
        assert!(!glob("/wp-admin*", "/blog/wp-admin"));
        assert!(glob("*.staging.*", "a.staging.example.com"));
    }
}
