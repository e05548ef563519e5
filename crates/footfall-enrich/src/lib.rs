//! Enrichment on the ingest hot path: page URL parsing, referrer -> source,
//! user agent -> browser/OS/device + bot verdict, and acquisition channels.
//! CPU only; no I/O after construction.

pub mod channel;
pub mod referrer;
pub mod ua;
pub mod url;
