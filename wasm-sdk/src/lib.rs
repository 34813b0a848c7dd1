//! The Portcullis validation core (`portcullis-core`) compiled to WebAssembly, for the
//! `@portcullis/sdk` npm package in `wasm-sdk/js`.
//!
//! This crate is conversion code only. Every rule (signature, `alg` owned by the key, `typ`,
//! claim types and times, issuer, audience, revocations, permission wildcards) lives in
//! `portcullis-core`, so a token gets the same verdict here as in the issuer and the edge.
//! What the crate adds is the shape of the boundary to JavaScript:
//!
//! - [`WasmKeyRing`] collects HS256 secrets and JWKS documents into one key set;
//! - [`WasmVerifier`] verifies a token at a given time and answers with one string: the
//!   claims in a compact form (or JSON), or the core's stable error code and message (see
//!   [`WasmVerifier::verify`] for why a string and not a thrown error or a JS object);
//! - [`WasmRevocationList`] applies entries of the issuer's revocation feed;
//! - [`has_permission`], [`has_all`] and [`has_any`] expose the core's permission matching.
//!
//! The hand-written TypeScript layer in `wasm-sdk/js/src` is the public API; nothing here is
//! meant to be called by applications directly.
//!
//! ```
//! use portcullis_wasm_sdk::{WasmKeyRing, WasmVerifier};
//!
//! let mut keys = WasmKeyRing::new();
//! keys.add_hs256("k1", vec![7; 32]).unwrap();
//! let verifier = WasmVerifier::new(keys, "https://auth.example", "api", 30, None, false).unwrap();
//! let verdict = verifier.verify(b"not-a-token", 1_767_225_600.0);
//! assert_eq!(verdict, "token_malformed malformed token");
//! ```
//!
//! # Features
//!
//! None. The crate always builds the whole boundary; `portcullis-core` is linked without its
//! `std` feature, exactly as it runs on `wasm32-unknown-unknown`.

#![warn(missing_docs)]

mod compact;
mod keys;
mod permissions;
mod revocations;
mod time;
mod verifier;

pub use keys::WasmKeyRing;
pub use permissions::{has_all, has_any, has_permission};
pub use revocations::WasmRevocationList;
pub use verifier::WasmVerifier;
