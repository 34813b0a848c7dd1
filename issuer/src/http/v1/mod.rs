//! The versioned API.

pub(crate) mod audit_events;
pub(crate) mod auth;
pub(crate) mod revocations;
