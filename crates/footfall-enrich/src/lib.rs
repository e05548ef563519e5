//! Enrichment on the ingest hot path: page URL parsing, referrer -> source and channel,
//! user agent (+ client hints) -> browser/OS/device, the layered bot verdict (user agent,
//! referrer spam, per-site block rules) and IP -> location/organisation (MaxMind DB).
//! CPU only after construction; GeoIP databases are read into memory when opened.

pub mod channel;
pub mod geo;
pub mod hints;
pub mod hit;
pub mod referrer;
pub mod rules;
pub mod ua;
pub mod url;
