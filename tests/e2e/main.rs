//! End-to-end suite, PostgreSQL + Redis backend (test target `e2e`): starts the real `issuer`
//! binary against the real PostgreSQL and Redis and drives the token lifecycle over HTTP, as the
//! edge, the SDK and backend clients will. The same test modules run against the embedded
//! backend in the target `e2e_embedded` (`embedded.rs`); only what truly differs between the
//! backends lives in `postgres_only` and `embedded_only` (design note 0003).
//!
//! Every test gets its own issuer process, database and Redis key prefix (see `support`), so the
//! tests run in parallel. Without PostgreSQL or Redis a test prints `skipped: <why>` and passes,
//! unless `PORTCULLIS_REQUIRE_SERVICES=1`, in which case it fails.

// A failing end-to-end check should stop at once with the response in the message, so this test
// crate unwraps, expects, panics and indexes into JSON freely (clippy.toml only exempts items
// marked `#[test]` or `#[cfg(test)]`, not the harness functions they call).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

/// The backend every test of this target runs against (read by the harness only).
const BACKEND: support::Backend = support::Backend::Postgres;

// The shared modules: the same list, in the same order, as in `embedded.rs` (a test in
// `support` checks it).
mod audit;
mod bad_input;
mod core_interop;
mod discovery;
mod flood;
mod lifecycle;
mod lockout;
mod log_secrets;
mod mail;
mod mfa;
mod rate_limit;
mod refresh;
mod request_span;
mod restart;
mod revocation;
mod startup;
mod tenancy;

// Only where PostgreSQL + Redis behave differently from the embedded backend.
mod postgres_only;
