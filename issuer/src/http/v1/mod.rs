//! The versioned API.

pub(crate) mod auth;
pub(crate) mod revocations;
