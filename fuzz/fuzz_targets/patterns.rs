//! Patterns that sites and API callers write: visitor label rules (`labels::LabelRule`,
//! sent as JSON to the labels API or set in the config; `*` globs matched against every
//! visit's first hit) and page-goal / Stats API v1 wildcards (`query::wildcard_to_regex`,
//! whose output DuckDB compiles as RE2). Input: a JSON list of rules, or any text as a
//! pattern; facts to match come from the same text.
//! Properties: no panic; a glob without `*` is equality; the regex of a wildcard
//! compiles and, for a pattern without `*`, matches exactly the pattern's text.
#![no_main]

use footfall_core::labels::{LabelRule, VisitFacts, classify, glob, host_matches};
use footfall_core::query::wildcard_to_regex;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (pattern, subject) = text.split_once('\n').unwrap_or((text, ""));
    let matched = glob(pattern, subject);
    if !pattern.contains('*') {
        assert_eq!(matched, pattern == subject);
    }
    if pattern.chars().all(|c| c == '*') && !pattern.is_empty() {
        assert!(matched, "`{pattern}` matches anything");
    }
    let _ = host_matches(pattern, subject);

    // RE2 and the regex crate agree on this subset (escapes, `.*`, `[^/]*`, anchors).
    let re = regex::Regex::new(&wildcard_to_regex(pattern))
        .unwrap_or_else(|e| panic!("wildcard {pattern:?} gives a bad regex: {e}"));
    if !pattern.contains('*') {
        assert!(re.is_match(pattern));
        assert_eq!(re.is_match(subject), pattern == subject);
    }

    if let Ok(rules) = serde_json::from_str::<Vec<LabelRule>>(text) {
        let facts = VisitFacts {
            referrer_host: "www.linkedin.com",
            utm_source: "newsletter",
            utm_medium: "email",
            utm_campaign: "spring",
            user_agent: "Mozilla/5.0",
            entry_path: "/jobs/1",
        };
        for r in &rules {
            let _ = r.problem();
        }
        let _ = classify(&rules, &facts);
    }
});
