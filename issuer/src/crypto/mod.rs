//! Cryptography the issuer owns: key derivation and wrapping, refresh tokens, password hashing,
//! one-time codes of the second factor and signing-key material. Token signatures themselves
//! are made by `jsonwebtoken` and checked by `portcullis-core`.

mod hash_pool;
pub(crate) mod keys;
pub(crate) mod link_token;
pub(crate) mod otp;
pub(crate) mod password;
pub(crate) mod refresh;
pub(crate) mod secret;
pub(crate) mod signing;
