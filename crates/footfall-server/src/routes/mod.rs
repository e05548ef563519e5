//! HTTP routes; each module exposes `router()`.

pub mod admin;
pub mod bulk;
pub mod docs;
pub mod event;
pub mod health;
pub mod labels;
pub mod privacy;
pub mod stats;
