//! footfall's pure domain: events, identity, sessions and the Stats API query model.
//! No I/O and no async runtime here, so every rule can be unit-tested in isolation.

pub mod event;
pub mod identity;
pub mod labels;
pub mod query;
pub mod session;

pub use event::{CompactString, DropReason, Event, VisitAttrs};
