//! The stored event and the reasons a hit can be dropped.

/// Short strings (&le; 24 bytes: names, hosts, most paths and visit attributes) inline, without
/// a heap block each: a store batch holds 100,000 events and their visits.
pub use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Name of the page view event.
pub const PAGEVIEW: &str = "pageview";
/// Name of the engagement beacon (time on page, scroll depth). Never a page view or a
/// custom event; extends visit duration but never un-bounces.
pub const ENGAGEMENT: &str = "engagement";

/// An event time (microseconds since the epoch) at the precision it is kept: whole
/// milliseconds, truncated towards the past (an event never moves into the next day).
/// Clients send milliseconds (`Date.now()`, RFC 3339 with milliseconds) and the store
/// keeps them in millisecond columns, where the digits below cost ~2 bytes an event
/// (store migration 8); every metric reads whole seconds.
pub fn stored_time_us(us: i64) -> i64 {
    us - us.rem_euclid(1000)
}

/// Attributes of a visit, taken from the session's first event (the `visit:*`
/// dimensions). Stored once per visit, in the visit's row of the store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitAttrs {
    pub entry_page: CompactString,
    pub entry_hostname: CompactString,
    pub referrer: CompactString,
    pub source: CompactString,
    pub channel: CompactString,
    pub utm_source: CompactString,
    pub utm_medium: CompactString,
    pub utm_campaign: CompactString,
    pub utm_content: CompactString,
    pub utm_term: CompactString,
    pub device: CompactString,
    pub browser: CompactString,
    pub browser_version: CompactString,
    pub os: CompactString,
    pub os_version: CompactString,
    pub country: CompactString,
    pub region: CompactString,
    pub city: u32,
    pub country_name: CompactString,
    pub region_name: CompactString,
    pub city_name: CompactString,
    pub org: CompactString,
    /// Classification label from the site's rules ("" = none); `visit:label`.
    #[serde(default)]
    pub label: CompactString,
}

/// One enriched, identified and sessionized event, exactly as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub site_id: u32,
    /// Event time, microseconds since the Unix epoch (UTC).
    pub ts_us: i64,
    pub event_id: u64,
    /// `event_id` derives from a client-given id; re-sent ids are not stored twice.
    pub client_id: bool,
    pub visitor_id: u64,
    pub session_id: u64,
    /// Time of the session's first event, microseconds since the epoch.
    pub session_start_us: i64,
    pub name: CompactString,
    pub interactive: bool,
    pub hostname: CompactString,
    pub pathname: CompactString,
    pub title: CompactString,
    pub engagement_ms: u32,
    pub scroll_depth: Option<u8>,
    pub revenue_amount: Option<f64>,
    pub revenue_currency: Option<String>,
    pub props: Vec<(String, String)>,
    /// The visit's attributes, on the event that opened the visit only: later events of
    /// the visit carry `None`, so an open visit costs the sessionizer a few integers,
    /// not two dozen strings (1M open visits would otherwise hold ~1 GB).
    #[serde(default, with = "shared_visit")]
    pub visit: Option<Arc<VisitAttrs>>,
}

/// Serde for `Option<Arc<VisitAttrs>>` without serde's `rc` feature (which would change
/// the feature set, and so the build, of every crate depending on serde).
mod shared_visit {
    use super::VisitAttrs;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::sync::Arc;

    pub fn serialize<S: Serializer>(v: &Option<Arc<VisitAttrs>>, s: S) -> Result<S::Ok, S::Error> {
        v.as_deref().serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Arc<VisitAttrs>>, D::Error> {
        Option::<VisitAttrs>::deserialize(d).map(|v| v.map(Arc::new))
    }
}

impl Event {
    pub fn is_pageview(&self) -> bool {
        self.name == PAGEVIEW
    }
    pub fn is_engagement(&self) -> bool {
        self.name == ENGAGEMENT
    }
}

/// Why a hit was accepted but not stored (`x-footfall-dropped`, per-site counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    Bot,
    Headless,
    SpamReferrer,
    HostnameNotAllowed,
    NoSession,
    /// A per-site block rule (IP/CIDR, country, path, hostname) matched.
    Blocked,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Bot => "bot",
            DropReason::Headless => "headless",
            DropReason::SpamReferrer => "spam_referrer",
            DropReason::HostnameNotAllowed => "hostname_not_allowed",
            DropReason::NoSession => "no_session",
            DropReason::Blocked => "blocked",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::stored_time_us;

    #[test]
    fn times_are_kept_to_the_millisecond_towards_the_past() {
        assert_eq!(stored_time_us(1_700_000_000_123_456), 1_700_000_000_123_000);
        assert_eq!(stored_time_us(1_700_000_000_123_000), 1_700_000_000_123_000);
        assert_eq!(stored_time_us(999), 0);
        // Before the epoch, towards the past too (never into the next millisecond).
        assert_eq!(stored_time_us(-1), -1000);
        assert_eq!(stored_time_us(-1000), -1000);
    }
}
