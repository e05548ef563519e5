//! A referrer with the page it led to, as the enrichment sees them: the page URL's
//! query (`utm_*`, `source`, `ref`, click ids), `referrer::referrer_source`, the known-
//! source lookup, `channel::acquisition`, `channel::channel_category` and
//! `channel::channel`, the referrer-spam
//! check. Input: referrer, then the page URL, one per line.
//! Properties: no panic; the indexed host lookup equals the full scan it stands for.
#![no_main]

use footfall_enrich::channel::{acquisition, channel, channel_category};
use footfall_enrich::referrer::{
    canonical_utm_source, lookup_host, lookup_host_by_scan, referrer_source, registrable_domain,
};
use footfall_enrich::rules::{is_spam_referrer, is_spam_referrer_url};
use footfall_enrich::url::parse_page_url;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (referrer, page) = text
        .split_once('\n')
        .unwrap_or((text, "https://example.com/"));
    let page = parse_page_url(page, false).unwrap_or_default();

    if let Some(s) = referrer_source(referrer, &page.hostname) {
        assert!(!s.host.is_empty());
        assert_eq!(lookup_host(&s.host), lookup_host_by_scan(&s.host));
        let _ = is_spam_referrer(&s.host);
    }
    let lower = referrer.trim().to_ascii_lowercase();
    assert_eq!(
        lookup_host(&lower),
        lookup_host_by_scan(&lower),
        "index and scan differ"
    );
    let _ = registrable_domain(&lower);
    let _ = is_spam_referrer_url(referrer);

    let acq = acquisition(&page, Some(referrer));
    assert!(!acq.source.is_empty());
    let name = canonical_utm_source(referrer);
    let _ = channel_category(&name);
    let _ = channel(
        &acq.source,
        &page.utm_medium,
        &page.utm_source,
        &page.utm_campaign,
        &page.click_id,
    );
});
