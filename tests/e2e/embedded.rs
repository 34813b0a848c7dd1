//! End-to-end suite, embedded backend (test target `e2e_embedded`): the same test modules as
//! `main.rs`, against an issuer with neither `PORTCULLIS_DATABASE_URL` nor `PORTCULLIS_REDIS_URL`,
//! so on SQLite in its data directory and an in-process blacklist (design note 0003). Each test
//! gets its own issuer process and fresh data directory (see `support`); these tests need no
//! service and never skip.

// As in `main.rs`: a failing end-to-end check stops at once with the response in the message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

/// The backend every test of this target runs against (read by the harness only).
const BACKEND: support::Backend = support::Backend::Embedded;

// The shared modules: the same list, in the same order, as in `main.rs` (a test in `support`
// checks it).
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

// Only where the embedded backend behaves differently from PostgreSQL + Redis.
mod embedded_only;
