//! Every derived field of one hit at once: what `footfall enrich` prints, built from the
//! same functions the ingest pipeline calls.

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use crate::channel::acquisition;
use crate::geo::{GeoIp, Location, country_from_header};
use crate::hints::ClientHints;
use crate::rules::{HitFacts, SiteRules, is_spam_referrer};
use crate::ua::{BotReason, UaInfo, UaParser, device_label};
use crate::url::{UrlError, parse_page_url};

/// One hit's raw facts.
#[derive(Debug, Clone, Default)]
pub struct HitInput<'a> {
    pub ua: &'a str,
    pub ip: Option<IpAddr>,
    pub referrer: &'a str,
    pub url: &'a str,
    pub hints: ClientHints,
    /// Value of the configured CDN country header, when the request came through a
    /// trusted proxy.
    pub cdn_country: Option<&'a str>,
    /// The tracker reported `navigator.webdriver`.
    pub webdriver: bool,
}

/// Every derived field. Field names are those of the `visit:*` dimensions.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Enriched {
    pub browser: String,
    pub browser_version: String,
    pub os: String,
    pub os_version: String,
    pub device: String,
    pub device_label: String,
    pub bot: bool,
    pub bot_reason: Option<&'static str>,
    pub hostname: String,
    pub pathname: String,
    pub source: String,
    pub referrer: String,
    pub channel: &'static str,
    pub utm_source: String,
    pub utm_medium: String,
    pub utm_campaign: String,
    pub utm_content: String,
    pub utm_term: String,
    pub country: String,
    pub country_name: String,
    pub region: String,
    pub region_name: String,
    /// GeoName id; null when unknown.
    pub city: Option<u32>,
    pub city_name: String,
    pub org: String,
}

/// User agent (with client hints) -> parsed info, cached parse plus a cheap overlay.
pub fn parse_ua(parser: &UaParser, ua: &str, hints: &ClientHints, webdriver: bool) -> Arc<UaInfo> {
    let mut info = parser.parse(ua);
    if let Some(refined) = hints.apply(&info) {
        info = Arc::new(refined);
    }
    if webdriver && info.bot.is_none() {
        let mut i = (*info).clone();
        i.bot = Some(BotReason::Headless);
        i.device = "Bot".into();
        info = Arc::new(i);
    }
    info
}

/// Location from the GeoIP databases, else from a trusted CDN country header.
pub fn locate(geo: &GeoIp, ip: Option<IpAddr>, cdn_country: Option<&str>) -> Location {
    let mut loc = match ip {
        Some(ip) if !geo.is_empty() => geo.lookup(ip),
        _ => Location::default(),
    };
    if loc.country.is_empty()
        && let Some(c) = cdn_country.and_then(country_from_header)
    {
        loc.country = c;
    }
    loc
}

/// Enriches one hit. `rules` are the site's block rules, if any.
pub fn enrich_hit(
    parser: &UaParser,
    geo: &GeoIp,
    rules: Option<&SiteRules>,
    hit: &HitInput<'_>,
) -> Result<Enriched, UrlError> {
    let page = parse_page_url(hit.url, false)?;
    let ua = parse_ua(parser, hit.ua, &hit.hints, hit.webdriver);
    let acq = acquisition(&page, Some(hit.referrer));
    let loc = locate(geo, hit.ip, hit.cdn_country);
    let mut bot = ua.bot;
    if bot.is_none() && !acq.referrer_host.is_empty() && is_spam_referrer(&acq.referrer_host) {
        bot = Some(BotReason::SpamReferrer);
    }
    if bot.is_none()
        && let Some(rules) = rules
        && rules.blocks(&HitFacts {
            ip: hit.ip,
            country: &loc.country,
            path: &page.pathname,
            hostname: &page.hostname,
        })
    {
        bot = Some(BotReason::Blocked);
    }
    Ok(Enriched {
        browser: ua.browser.clone(),
        browser_version: ua.browser_version.clone(),
        os: ua.os.clone(),
        os_version: ua.os_version.clone(),
        device: ua.device.clone(),
        device_label: device_label(&ua),
        bot: bot.is_some(),
        bot_reason: bot.map(BotReason::as_str),
        hostname: page.hostname,
        pathname: page.pathname,
        source: acq.source,
        referrer: acq.referrer,
        channel: acq.channel,
        utm_source: acq.utm_source,
        utm_medium: acq.utm_medium,
        utm_campaign: page.utm_campaign,
        utm_content: page.utm_content,
        utm_term: page.utm_term,
        country: loc.country,
        country_name: loc.country_name,
        region: loc.region,
        region_name: loc.region_name,
        city: (loc.city != 0).then_some(loc.city),
        city_name: loc.city_name,
        org: loc.org,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hit_all_fields() {
        let parser = UaParser::new();
        let geo = GeoIp::default();
        let hit = HitInput {
            ua: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
            ip: "203.0.113.9".parse().ok(),
            referrer: "https://www.google.de/",
            url: "https://example.com/pricing?utm_medium=cpc&gclid=1",
            cdn_country: Some("de"),
            ..HitInput::default()
        };
        let e = enrich_hit(&parser, &geo, None, &hit).expect("valid");
        assert_eq!(e.device_label, "Mac - Edge");
        assert_eq!(e.source, "Google");
        assert_eq!(e.channel, "Paid Search");
        assert_eq!(e.country, "DE");
        assert_eq!(e.city, None);
        assert!(!e.bot);

        let spam = HitInput {
            referrer: "http://forum.semalt.com/x",
            ..hit.clone()
        };
        let e = enrich_hit(&parser, &geo, None, &spam).expect("valid");
        assert_eq!(e.bot_reason, Some("spam_referrer"));
        let wd = HitInput {
            webdriver: true,
            ..hit.clone()
        };
        let e = enrich_hit(&parser, &geo, None, &wd).expect("valid");
        assert_eq!(e.bot_reason, Some("headless"));
        let bad = HitInput { url: "", ..hit };
        assert!(enrich_hit(&parser, &geo, None, &bad).is_err());
    }
}
