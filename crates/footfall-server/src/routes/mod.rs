//! HTTP routes; each module exposes `router()`.

pub mod admin;
pub mod auth;
pub mod bulk;
pub mod compat;
pub mod dashboard;
pub mod docs;
pub mod event;
pub mod health;
pub mod labels;
pub mod live;
pub mod privacy;
pub mod stats;
pub mod stats_v1;
pub mod tracker;
