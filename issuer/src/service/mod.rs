//! Domain services. Handlers call exactly one of these per request; services see storage only
//! through the traits of [`crate::store`].

pub(crate) mod accounts;
pub(crate) mod audit;
pub(crate) mod email;
pub(crate) mod keys;
pub(crate) mod lockout;
pub(crate) mod mail;
pub(crate) mod mfa;
pub(crate) mod oauth;
pub(crate) mod rate_limits;
pub(crate) mod revocation;
pub(crate) mod sessions;
pub(crate) mod tenants;
pub(crate) mod text;
pub(crate) mod tokens;
