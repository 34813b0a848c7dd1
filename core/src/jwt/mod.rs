//! JSON Web Token layer: header rules, claims and validation on top of [`crate::jws`].

pub(crate) mod claims;
pub(crate) mod header;
pub(crate) mod strict;
pub(crate) mod validate;
