#![doc = include_str!("../README.md")]
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

mod error;
pub mod jws;
mod jwt;
mod key;
pub mod rbac;
pub mod revocation;

pub use error::{Claim, ConfigError, KeyError, PolicyError, TokenError};
pub use jwt::claims::{ClaimValues, Claims};
pub use jwt::validate::{DEFAULT_LEEWAY, DEFAULT_TYP, MAX_LEEWAY, Validation, Verifier};
pub use key::{Algorithm, Key, KeySet, MAX_KID_LEN, MIN_HS256_SECRET_LEN};
