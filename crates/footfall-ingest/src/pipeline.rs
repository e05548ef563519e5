//! The per-hit steps, in order (DESIGN §2): cheap drops, URL and referrer, user agent
//! and bot verdict, identity, de-duplication, sessionization. Pure CPU, no I/O.

pub use crate::dedup::Dedup;
use crate::salts::{SaltBook, day_of};
use crate::sessions::SessionTable;
use crate::wire::WireEvent;
use footfall_core::identity::{client_event_id, client_visitor_id, cookieless_visitor_id};
use footfall_core::session::OpenSession;
use footfall_core::{CompactString, DropReason, Event, VisitAttrs, event};
use footfall_enrich::channel::acquisition;
use footfall_enrich::geo::GeoIp;
use footfall_enrich::hints::ClientHints;
use footfall_enrich::hit::{locate, parse_ua};
use footfall_enrich::rules::{BlockRules, HitFacts, is_spam_referrer_url};
use footfall_enrich::ua::{BotReason, UaParser};
use footfall_enrich::url::{check_page_url, parse_page_url};
use footfall_store::Site;
use parking_lot::RwLock;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What became of one hit.
#[derive(Debug, Clone, PartialEq)]
pub enum HitOutcome {
    Accepted(Box<Event>),
    /// Accepted and handed to the write-ahead log (the event moved there); the ids let
    /// handlers answer with the session (seed endpoints, cookies, live channels).
    Stored {
        visitor_id: u64,
        session_id: u64,
    },
    /// A re-sent client id: acknowledged, not stored again.
    Duplicate,
    Dropped(DropReason),
    Rejected(String),
}

/// Request facts that are not in the body.
#[derive(Debug, Clone, Default)]
pub struct HitContext {
    pub ip: String,
    pub user_agent: String,
    pub now_us: i64,
    /// Server-side sending (bulk API): the request's own user agent is the sender's HTTP
    /// client, so only a per-event `user_agent` counts and a missing one is no bot.
    pub server_side: bool,
    /// `Sec-CH-UA*` request headers (browsers only; ignored for server-side sending).
    pub hints: ClientHints,
    /// The configured CDN country header's value, from a trusted proxy only.
    pub cdn_country: Option<String>,
}

/// Enrichment that depends on the configuration: GeoIP databases and per-site block
/// rules. Empty by default (unknown location, no rules).
#[derive(Debug, Default)]
pub struct Enrichment {
    pub geo: GeoIp,
    pub rules: BlockRules,
    /// Visitor classification rules (`visit:label`).
    pub labels: footfall_enrich::rules::LabelBook,
}

fn url_error(e: footfall_enrich::url::UrlError) -> String {
    format!("`url`: {e}")
}

/// The checks of `Pipeline::process` that can reject a hit (as opposed to dropping it),
/// for acceptance before the hit is processed behind the log.
pub fn validate(hit: &WireEvent) -> Result<(), String> {
    check_page_url(&hit.url, hit.hash_mode).map_err(url_error)
}

/// Event and session ids: a counter seeded with the start time in microseconds, so ids
/// only grow (fewer than one id per microsecond is ever issued) and stay unique across
/// restarts. Near-sequential ids compress to a few bits per row in the column store,
/// where random 64-bit ids cost 8 bytes each.
pub struct IdSequence(AtomicU64);

impl IdSequence {
    pub fn starting_now() -> Self {
        let now_us = chrono::Utc::now().timestamp_micros().max(0) as u64;
        IdSequence(AtomicU64::new(now_us))
    }
    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

pub struct Pipeline {
    pub ids: IdSequence,
    pub ua: UaParser,
    pub sessions: SessionTable,
    pub salts: SaltBook,
    pub dedup: Dedup,
    /// Set once the configuration is read (`set_enrichment`); read on every hit.
    enrichment: RwLock<Arc<Enrichment>>,
}

fn drop_reason(reason: BotReason) -> DropReason {
    match reason {
        BotReason::Headless => DropReason::Headless,
        BotReason::SpamReferrer => DropReason::SpamReferrer,
        BotReason::Blocked => DropReason::Blocked,
        BotReason::Crawler | BotReason::HttpLibrary | BotReason::Empty => DropReason::Bot,
    }
}

fn host_allowed(site: &Site, host: &str) -> bool {
    site.allowed_hostnames.is_empty()
        || site.allowed_hostnames.iter().any(|allowed| {
            host == allowed
                || (host.len() > allowed.len()
                    && host.ends_with(allowed.as_str())
                    && host.as_bytes()[host.len() - allowed.len() - 1] == b'.')
        })
}

impl Pipeline {
    pub fn new(salts: SaltBook) -> Self {
        Pipeline {
            ids: IdSequence::starting_now(),
            ua: UaParser::new(),
            sessions: SessionTable::default(),
            salts,
            dedup: Dedup::default(),
            enrichment: RwLock::new(Arc::new(Enrichment::default())),
        }
    }

    /// Installs GeoIP databases and block rules (start-up, after recovery).
    pub fn set_enrichment(&self, enrichment: Enrichment) {
        *self.enrichment.write() = Arc::new(enrichment);
    }

    /// The enrichment in use (label rules change through it while running).
    pub fn enrichment(&self) -> Arc<Enrichment> {
        self.enrichment.read().clone()
    }

    /// Runs every step for one hit.
    pub fn process(&self, site: &Site, hit: WireEvent, ctx: &HitContext) -> HitOutcome {
        match self.process_inner(site, hit, ctx, true) {
            Ok(outcome) => outcome,
            Err(message) => HitOutcome::Rejected(message),
        }
    }

    /// Runs every step for a hit read back from the log: it was validated and its
    /// client id de-duplicated when it was accepted.
    pub fn process_logged(&self, site: &Site, hit: WireEvent, ctx: &HitContext) -> HitOutcome {
        match self.process_inner(site, hit, ctx, false) {
            Ok(outcome) => outcome,
            Err(message) => HitOutcome::Rejected(message),
        }
    }

    /// The visitor id of a hit: the client's id, else the cookieless daily hash.
    fn visitor_of(
        &self,
        site: &Site,
        client_id: Option<&str>,
        user_agent: &str,
        ip: &str,
        hostname: &str,
        ts_us: i64,
    ) -> u64 {
        let timeout = site.session_timeout_secs;
        match client_id {
            Some(id) => client_visitor_id(site.id, id),
            None => {
                let day = day_of(ts_us);
                let hash =
                    |salt| cookieless_visitor_id(&salt, user_agent, ip, &site.domain, hostname);
                let current = hash(self.salts.get(day));
                // A visit that began before midnight UTC carries on under yesterday's salt.
                // Yesterday's id is hashed only when today's continues no visit.
                if self.sessions.continues(site.id, current, ts_us, timeout) {
                    current
                } else {
                    match self.salts.existing(day - 1).map(hash) {
                        Some(previous)
                            if self.sessions.continues(site.id, previous, ts_us, timeout) =>
                        {
                            previous
                        }
                        _ => current,
                    }
                }
            }
        }
    }

    /// What a hit that is not stored (Umami's `identify` and `performance` calls) tells:
    /// dropped (a bot, a host not allowed) or its visitor and the visit it continues
    /// (`session_id` 0 when none is open). Nothing is recorded.
    pub fn peek(&self, site: &Site, hit: &WireEvent, ctx: &HitContext) -> HitOutcome {
        let page = match parse_page_url(&hit.url, hit.hash_mode) {
            Ok(page) => page,
            Err(e) => return HitOutcome::Rejected(url_error(e)),
        };
        if !host_allowed(site, &page.hostname) {
            return HitOutcome::Dropped(DropReason::HostnameNotAllowed);
        }
        let user_agent = hit.user_agent.as_deref().unwrap_or(&ctx.user_agent);
        if let Some(reason) = parse_ua(&self.ua, user_agent, &ctx.hints, hit.webdriver).bot {
            return HitOutcome::Dropped(drop_reason(reason));
        }
        let ts_us = event::stored_time_us(hit.timestamp_us.unwrap_or(ctx.now_us));
        let ip = hit.ip.as_deref().unwrap_or(&ctx.ip);
        let visitor_id = self.visitor_of(
            site,
            hit.visitor_id.as_deref(),
            user_agent,
            ip,
            &page.hostname,
            ts_us,
        );
        let session_id = self
            .sessions
            .open_session(site.id, visitor_id, ts_us, site.session_timeout_secs)
            .unwrap_or(0);
        HitOutcome::Stored {
            visitor_id,
            session_id,
        }
    }

    fn process_inner(
        &self,
        site: &Site,
        hit: WireEvent,
        ctx: &HitContext,
        check_dedup: bool,
    ) -> Result<HitOutcome, String> {
        let page = parse_page_url(&hit.url, hit.hash_mode).map_err(url_error)?;
        if !host_allowed(site, &page.hostname) {
            return Ok(HitOutcome::Dropped(DropReason::HostnameNotAllowed));
        }
        let user_agent = match (&hit.user_agent, ctx.server_side) {
            (Some(ua), _) => ua.as_str(),
            (None, false) => ctx.user_agent.as_str(),
            (None, true) => "",
        };
        let no_hints = ClientHints::default();
        // Client hints describe the request's sender, which is not the visitor's
        // browser when a server sends on its behalf.
        let hints = if ctx.server_side {
            &no_hints
        } else {
            &ctx.hints
        };
        let ua = if user_agent.is_empty() && ctx.server_side {
            Arc::new(footfall_enrich::ua::UaInfo::default())
        } else {
            parse_ua(&self.ua, user_agent, hints, hit.webdriver)
        };
        if let Some(reason) = ua.bot {
            return Ok(HitOutcome::Dropped(drop_reason(reason)));
        }
        if hit
            .referrer
            .as_deref()
            .is_some_and(|r| !r.is_empty() && is_spam_referrer_url(r))
        {
            return Ok(HitOutcome::Dropped(DropReason::SpamReferrer));
        }
        let ts_us = event::stored_time_us(hit.timestamp_us.unwrap_or(ctx.now_us));
        let ip = hit.ip.as_deref().unwrap_or(&ctx.ip);
        let ip_addr = ip.trim().parse::<std::net::IpAddr>().ok();
        // A CDN header speaks about the request's peer, not about an event's own `ip`.
        let cdn_country = if hit.ip.is_some() {
            None
        } else {
            ctx.cdn_country.as_deref()
        };
        let enrichment = self.enrichment.read().clone();
        if let Some(rules) = enrichment.rules.for_site(&site.domain) {
            let country = if rules.needs_country() {
                locate(&enrichment.geo, ip_addr, cdn_country).country
            } else {
                String::new()
            };
            if rules.blocks(&HitFacts {
                ip: ip_addr,
                country: &country,
                path: &page.pathname,
                hostname: &page.hostname,
            }) {
                return Ok(HitOutcome::Dropped(DropReason::Blocked));
            }
        }
        let timeout = site.session_timeout_secs;

        let visitor_id = self.visitor_of(
            site,
            hit.visitor_id.as_deref(),
            user_agent,
            ip,
            &page.hostname,
            ts_us,
        );

        let (event_id, client_id) = match hit.id.as_deref() {
            Some(id) => (client_event_id(site.id, id), true),
            None => (self.ids.next(), false),
        };
        if client_id && check_dedup && !self.dedup.insert(event_id) {
            return Ok(HitOutcome::Duplicate);
        }

        let is_engagement = hit.name == event::ENGAGEMENT;
        // The visit attributes (entry page, source, device, location, label) of a visit
        // this hit opens.
        let opening_attrs = || {
            let mut source = self.visit_attrs(&hit, &page, &ua, || {
                locate(&enrichment.geo, ip_addr, cdn_country)
            });
            source.label = enrichment
                .labels
                .label(
                    &site.domain,
                    &footfall_core::labels::VisitFacts {
                        referrer_host: footfall_enrich::url::raw_host(
                            hit.referrer.as_deref().unwrap_or(""),
                        ),
                        utm_source: &source.utm_source,
                        utm_medium: &source.utm_medium,
                        utm_campaign: &source.utm_campaign,
                        user_agent,
                        entry_path: &source.entry_page,
                    },
                )
                .into();
            Arc::new(source)
        };
        let outcome = self.sessions.with(site.id, visitor_id, |slot| {
            match slot {
                // A client whose session cookie expired asks for a new visit.
                Some(open) if open.continues_at(ts_us, timeout) && !hit.new_session => {
                    // A hit before the visit's start (sent late, within the timeout)
                    // becomes its first event: the visit's attributes are then its own
                    // (DESIGN §4: `visit:*` values come from the session's first event),
                    // and the store takes them from the earliest event carrying them.
                    let opens = ts_us < open.start_us && !is_engagement;
                    open.touch(ts_us);
                    // Otherwise the visit's attributes went out with its first event.
                    Some((open.session_id, open.start_us, opens.then(opening_attrs)))
                }
                // Engagement beacons only extend a visit; alone they are not a visit.
                _ if is_engagement => None,
                _ => {
                    let session = OpenSession {
                        session_id: self.ids.next(),
                        visitor_id,
                        start_us: ts_us,
                        last_us: ts_us,
                    };
                    let out = (session.session_id, session.start_us, Some(opening_attrs()));
                    *slot = Some(session);
                    Some(out)
                }
            }
        });
        let Some((session_id, session_start_us, visit)) = outcome else {
            if client_id && check_dedup {
                self.dedup.remove(event_id);
            }
            return Ok(HitOutcome::Dropped(DropReason::NoSession));
        };
        self.sessions.note_time(site.id, ts_us);

        let interactive = hit.interactive.unwrap_or(true) && !is_engagement;
        let mut props = hit.props;
        // Plausible's system goals filtered by page (`SystemGoals.goals_with_path`) get the
        // page as their `path` property when the event has none (`Ingestion.Request`).
        if matches!(
            hit.name.as_str(),
            "404" | "WP Form Completions" | "Form: Submission"
        ) && !props.iter().any(|(k, _)| k == "path")
        {
            props.insert(0, ("path".to_string(), page.pathname.clone()));
            props.truncate(crate::wire::MAX_PROPS);
        }
        Ok(HitOutcome::Accepted(Box::new(Event {
            site_id: site.id,
            ts_us,
            event_id,
            client_id,
            visitor_id,
            session_id,
            session_start_us,
            interactive,
            hostname: page.hostname.into(),
            pathname: page.pathname.into(),
            title: hit.title.map(CompactString::from).unwrap_or_default(),
            engagement_ms: if is_engagement {
                hit.engaged_ms.unwrap_or(0)
            } else {
                0
            },
            scroll_depth: if is_engagement {
                hit.scroll_depth
            } else {
                None
            },
            revenue_amount: hit.revenue.as_ref().map(|r| r.0),
            revenue_currency: hit.revenue.map(|r| r.1),
            props,
            name: hit.name.into(),
            visit,
        })))
    }

    /// Visit attributes from the first event of a visit. The location is looked up
    /// here, once per visit; the IP address itself goes no further.
    fn visit_attrs(
        &self,
        hit: &WireEvent,
        page: &footfall_enrich::url::PageUrl,
        ua: &footfall_enrich::ua::UaInfo,
        locate: impl FnOnce() -> footfall_enrich::geo::Location,
    ) -> VisitAttrs {
        let acq = acquisition(page, hit.referrer.as_deref());
        let loc = locate();
        VisitAttrs {
            entry_page: page.pathname.as_str().into(),
            entry_hostname: page.hostname.as_str().into(),
            referrer: acq.referrer.into(),
            source: acq.source.into(),
            channel: CompactString::const_new(acq.channel),
            utm_source: acq.utm_source.into(),
            utm_medium: acq.utm_medium.into(),
            utm_campaign: page.utm_campaign.as_str().into(),
            utm_content: page.utm_content.as_str().into(),
            utm_term: page.utm_term.as_str().into(),
            device: ua.device.as_str().into(),
            browser: ua.browser.as_str().into(),
            browser_version: ua.browser_version.as_str().into(),
            os: ua.os.as_str().into(),
            os_version: ua.os_version.as_str().into(),
            country: loc.country.into(),
            region: loc.region.into(),
            city: loc.city,
            country_name: loc.country_name.into(),
            region_name: loc.region_name.into(),
            city_name: loc.city_name.into(),
            org: loc.org.into(),
            // Set by the caller from the site's rules.
            label: CompactString::default(),
        }
    }

    /// Re-opens a visit known from storage or the log (start-up), unless the visitor
    /// already has a later one.
    pub fn reopen(&self, site_id: u32, visit: OpenSession) {
        self.sessions.note_time(site_id, visit.last_us);
        self.sessions
            .with(site_id, visit.visitor_id, |slot| match slot {
                Some(open) if open.session_id == visit.session_id => open.touch(visit.last_us),
                Some(open) if open.last_us > visit.last_us => {}
                _ => *slot = Some(visit),
            });
    }

    /// Re-opens the visit of an event from the log (start-up) and remembers its id.
    pub fn restore(&self, e: &Event) {
        if e.client_id {
            self.dedup.insert(e.event_id);
        }
        self.reopen(
            e.site_id,
            OpenSession {
                session_id: e.session_id,
                visitor_id: e.visitor_id,
                start_us: e.session_start_us,
                last_us: e.ts_us,
            },
        );
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use footfall_store::IdentityMode;

    const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
    const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
    const MIN_US: i64 = 60 * 1_000_000;

    /// A cookieless site with the default timeout (also for `record`'s tests).
    pub(crate) fn site() -> Site {
        Site {
            id: 1,
            domain: "example.com".into(),
            timezone: "UTC".into(),
            identity_mode: IdentityMode::Cookieless,
            session_timeout_secs: 1800,
            allowed_hostnames: vec![],
        }
    }

    fn hit(name: &str, path: &str, ts_us: i64) -> WireEvent {
        WireEvent {
            name: name.into(),
            url: format!("https://example.com{path}"),
            timestamp_us: Some(ts_us),
            ..WireEvent::default()
        }
    }

    fn ctx(ua: &str) -> HitContext {
        HitContext {
            ip: "203.0.113.9".into(),
            user_agent: ua.into(),
            now_us: 0,
            server_side: false,
            ..HitContext::default()
        }
    }

    fn accepted(outcome: HitOutcome) -> Event {
        match outcome {
            HitOutcome::Accepted(e) => *e,
            other => panic!("expected an accepted event, got {other:?}"),
        }
    }

    #[test]
    fn a_visit_survives_midnight_but_other_user_agents_are_other_visitors() {
        let p = Pipeline::new(SaltBook::default());
        let midnight = 20_000 * crate::salts::DAY_US;
        let a = accepted(p.process(
            &site(),
            hit("pageview", "/", midnight - 10 * MIN_US),
            &ctx(CHROME),
        ));
        let b = accepted(p.process(
            &site(),
            hit("pageview", "/b", midnight + 10 * MIN_US),
            &ctx(CHROME),
        ));
        let c = accepted(p.process(
            &site(),
            hit("pageview", "/", midnight + 10 * MIN_US),
            &ctx(FIREFOX),
        ));
        assert_eq!(a.visitor_id, b.visitor_id);
        assert_eq!(a.session_id, b.session_id);
        assert_eq!(b.session_start_us, a.ts_us);
        // The visit's attributes travel with its first event only.
        assert_eq!(a.visit.as_ref().map(|v| v.entry_page.as_str()), Some("/"));
        assert!(b.visit.is_none());
        assert_ne!(a.visitor_id, c.visitor_id);
    }

    #[test]
    fn gaps_over_the_timeout_start_a_new_visit() {
        let p = Pipeline::new(SaltBook::default());
        let t0 = 20_000 * crate::salts::DAY_US + 60 * MIN_US;
        let a = accepted(p.process(&site(), hit("pageview", "/", t0), &ctx(CHROME)));
        let b = accepted(p.process(
            &site(),
            hit("pageview", "/", t0 + 30 * MIN_US),
            &ctx(CHROME),
        ));
        let c = accepted(p.process(
            &site(),
            hit("pageview", "/", t0 + 61 * MIN_US),
            &ctx(CHROME),
        ));
        assert_eq!(a.session_id, b.session_id);
        assert_ne!(b.session_id, c.session_id);
        assert_eq!(a.visitor_id, c.visitor_id);
    }

    #[test]
    fn engagement_needs_a_visit_and_never_counts_as_interactive() {
        let p = Pipeline::new(SaltBook::default());
        let t0 = 20_000 * crate::salts::DAY_US;
        let mut eng = hit("engagement", "/", t0);
        eng.engaged_ms = Some(5000);
        assert_eq!(
            p.process(&site(), eng.clone(), &ctx(CHROME)),
            HitOutcome::Dropped(DropReason::NoSession)
        );
        accepted(p.process(&site(), hit("pageview", "/", t0), &ctx(CHROME)));
        eng.timestamp_us = Some(t0 + MIN_US);
        let e = accepted(p.process(&site(), eng, &ctx(CHROME)));
        assert!(!e.interactive);
        assert_eq!(e.engagement_ms, 5000);
    }

    #[test]
    fn a_client_can_start_a_new_visit_within_the_timeout() {
        let p = Pipeline::new(SaltBook::default());
        let t0 = 20_000 * crate::salts::DAY_US;
        let mut h = hit("pageview", "/", t0);
        h.visitor_id = Some("cookie-1".into());
        let a = accepted(p.process(&site(), h.clone(), &ctx(CHROME)));
        h.timestamp_us = Some(t0 + MIN_US);
        let b = accepted(p.process(&site(), h.clone(), &ctx(CHROME)));
        h.timestamp_us = Some(t0 + 2 * MIN_US);
        h.new_session = true;
        let c = accepted(p.process(&site(), h, &ctx(CHROME)));
        assert_eq!(a.session_id, b.session_id);
        assert_ne!(b.session_id, c.session_id);
        assert_eq!(a.visitor_id, c.visitor_id);
    }

    #[test]
    fn client_ids_are_stored_once_and_bots_dropped() {
        let p = Pipeline::new(SaltBook::default());
        let mut h = hit("pageview", "/", 0);
        h.id = Some("evt-1".into());
        h.visitor_id = Some("user-1".into());
        accepted(p.process(&site(), h.clone(), &ctx(CHROME)));
        assert_eq!(p.process(&site(), h, &ctx(CHROME)), HitOutcome::Duplicate);
        let bot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
        assert!(matches!(
            p.process(&site(), hit("pageview", "/", 0), &ctx(bot)),
            HitOutcome::Dropped(DropReason::Bot)
        ));
    }
}

#[cfg(test)]
mod enrichment_tests {
    use super::*;
    use footfall_enrich::rules::{BlockRule, SiteSettings};
    use footfall_store::IdentityMode;
    use std::collections::BTreeMap;

    const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

    fn site() -> Site {
        Site {
            id: 7,
            domain: "example.com".into(),
            timezone: "UTC".into(),
            identity_mode: IdentityMode::Cookieless,
            session_timeout_secs: 1800,
            allowed_hostnames: vec![],
        }
    }

    fn hit(path: &str, referrer: Option<&str>) -> WireEvent {
        WireEvent {
            name: "pageview".into(),
            url: format!("https://example.com{path}"),
            referrer: referrer.map(str::to_string),
            timestamp_us: Some(20_000 * crate::salts::DAY_US),
            ..WireEvent::default()
        }
    }

    fn ctx(ip: &str) -> HitContext {
        HitContext {
            ip: ip.into(),
            user_agent: CHROME.into(),
            ..HitContext::default()
        }
    }

    #[test]
    fn spam_referrers_webdriver_and_block_rules_are_dropped() {
        let p = Pipeline::new(SaltBook::default());
        let mut sites = BTreeMap::new();
        sites.insert(
            "example.com".to_string(),
            SiteSettings {
                block: vec![
                    BlockRule {
                        path: Some("/internal*".into()),
                        ..BlockRule::default()
                    },
                    BlockRule {
                        ip: Some("198.51.100.0/24".into()),
                        ..BlockRule::default()
                    },
                ],
                ..SiteSettings::default()
            },
        );
        p.set_enrichment(Enrichment {
            geo: GeoIp::default(),
            rules: BlockRules::compile(&sites).expect("rules"),
            labels: Default::default(),
        });
        let spam = p.process(
            &site(),
            hit("/", Some("https://semalt.com/")),
            &ctx("203.0.113.1"),
        );
        assert_eq!(spam, HitOutcome::Dropped(DropReason::SpamReferrer));
        let blocked = p.process(&site(), hit("/internal/x", None), &ctx("203.0.113.1"));
        assert_eq!(blocked, HitOutcome::Dropped(DropReason::Blocked));
        let blocked = p.process(&site(), hit("/", None), &ctx("198.51.100.4"));
        assert_eq!(blocked, HitOutcome::Dropped(DropReason::Blocked));
        let mut wd = hit("/", None);
        wd.webdriver = true;
        assert_eq!(
            p.process(&site(), wd, &ctx("203.0.113.1")),
            HitOutcome::Dropped(DropReason::Headless)
        );
        assert!(matches!(
            p.process(&site(), hit("/", None), &ctx("203.0.113.1")),
            HitOutcome::Accepted(_)
        ));
    }

    #[test]
    fn hints_location_and_channel_reach_the_visit() {
        let p = Pipeline::new(SaltBook::default());
        let db = std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/testdata/maxmind-db/test-data/GeoIP2-City-Test.mmdb"
        ));
        let with_db = db.is_file();
        if with_db {
            p.set_enrichment(Enrichment {
                geo: GeoIp::open(Some(&db), None).expect("test database"),
                rules: BlockRules::default(),
                labels: Default::default(),
            });
        }
        let mut c = ctx("81.2.69.142");
        c.hints = ClientHints {
            ua: r#""Chromium";v="124", "Microsoft Edge";v="124", "Not-A.Brand";v="99""#.into(),
            platform: r#""Windows""#.into(),
            platform_version: r#""15.0.0""#.into(),
            ..ClientHints::default()
        };
        c.cdn_country = Some("FR".into());
        let e = match p.process(
            &site(),
            hit("/?utm_medium=email", Some("https://chatgpt.com/")),
            &c,
        ) {
            HitOutcome::Accepted(e) => e,
            other => panic!("expected an accepted event, got {other:?}"),
        };
        let v = e
            .visit
            .clone()
            .expect("a visit's first event carries its attributes");
        assert_eq!(v.browser, "Microsoft Edge");
        assert_eq!(v.os_version, "11");
        assert_eq!(v.source, "ChatGPT");
        assert_eq!(v.channel, "AI Assistants");
        if with_db {
            assert_eq!(
                (v.country.as_str(), v.region.as_str(), v.city),
                ("GB", "GB-ENG", 2643743)
            );
        } else {
            // No database: the trusted CDN header gives the country.
            assert_eq!(v.country, "FR");
        }
        // Server-side sending: the request's hints are not the visitor's.
        let mut bulk = ctx("10.9.9.9");
        bulk.server_side = true;
        bulk.hints = c.hints.clone();
        let mut h = hit("/", None);
        h.user_agent = Some(CHROME.into());
        let e = match p.process(&site(), h, &bulk) {
            HitOutcome::Accepted(e) => e,
            other => panic!("expected an accepted event, got {other:?}"),
        };
        assert_eq!(e.visit.as_ref().map(|v| v.browser.as_str()), Some("Chrome"));
    }
}
