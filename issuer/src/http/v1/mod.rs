//! The versioned API.

use std::str::FromStr;

pub(crate) mod audit_events;
pub(crate) mod auth;
pub(crate) mod mfa;
pub(crate) mod passwords;
pub(crate) mod revocations;

/// A query parameter of plain ASCII digits: `str::parse` would also take a leading `+`.
fn decimal<T: FromStr>(text: &str) -> Option<T> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| text.parse().ok()).flatten()
}
