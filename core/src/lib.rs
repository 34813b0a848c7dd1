//! The Portcullis validation core: one implementation of the checks every consumer of a
//! Portcullis token performs, shared by the issuer, the edge worker and the JavaScript SDK so
//! they all reach the same verdict for the same token.
//!
//! - [`Verifier`] checks compact JWS/JWT access tokens strictly (RFC 7515, 7519, 8725): HS256
//!   and EdDSA (Ed25519) only, the key chosen by `kid` and owning its algorithm, `exp`
//!   required, exact issuer and audience, no duplicate JSON members, at most 8 KiB.
//! - [`rbac`] matches `resource:action` permissions with `*` wildcards and expands roles.
//! - [`revocation`] holds the revocation feed and checks verified claims against it.
//! - [`jws`] exposes the bare signature layer for known-answer tests.
//!
//! The crate does no I/O and never reads a clock: every time-dependent check takes `now` in
//! unix seconds, so tests pin time and each platform passes its own clock. Errors are small
//! `Copy` enums with stable codes ([`TokenError::code`]) that never allocate.
//!
//! Tokens are read by a purpose-built strict JSON reader and a canonical-only base64url
//! decoder rather than general-purpose crates: both refuse what a lenient parser would
//! silently accept (duplicate member names at any depth, padding, stray bits, lone
//! surrogates), and both are differentially tested against `serde_json` and `base64`. Time
//! claims must be integers from 0 to 2^53 − 1, the range every JSON implementation
//! represents exactly.
//!
//! ```
//! use portcullis_core::{Key, KeySet, TokenError, Validation, Verifier};
//!
//! # fn main() -> Result<(), Box<dyn core::error::Error>> {
//! let mut keys = KeySet::new();
//! keys.insert(Key::hs256("2026-01", b"an HS256 secret of at least 32 bytes!")?)?;
//! let verifier = Verifier::new(keys, Validation::new("https://auth.example", "api"));
//!
//! // A token signed with another key never gets as far as its claims.
//! let forged = "eyJhbGciOiJIUzI1NiIsImtpZCI6IjIwMjYtMDEifQ.e30.\
//!               AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
//! assert_eq!(verifier.verify(forged, 1_767_225_600), Err(TokenError::BadSignature));
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! - `std` (default): links `std` for the conveniences of `serde_json`'s `std` feature. Every
//!   type and check is available without it: the crate is always `#![no_std]` with `alloc`,
//!   and builds for `wasm32-unknown-unknown` with `--no-default-features`.
#![no_std]
#![warn(missing_docs)]
#![warn(
    clippy::std_instead_of_core,
    clippy::std_instead_of_alloc,
    clippy::alloc_instead_of_core
)]
#![warn(clippy::missing_errors_doc, clippy::must_use_candidate)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod base64url;
mod error;
mod json;
pub mod jws;
mod jwt;
mod key;
pub mod rbac;
pub mod revocation;

pub use error::{Claim, ConfigError, KeyError, PolicyError, TokenError};
pub use jwt::claims::{Audience, Claims};
pub use jwt::validate::{DEFAULT_LEEWAY, DEFAULT_TYP, MAX_LEEWAY, Validation, Verifier};
pub use key::{Algorithm, Key, KeySet, MAX_KID_LEN, MIN_HS256_SECRET_LEN};
