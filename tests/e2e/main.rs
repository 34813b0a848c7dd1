//! End-to-end suite: starts the real `issuer` binary against the real PostgreSQL and Redis and
//! drives the token lifecycle over HTTP, as the edge, the SDK and backend clients will.
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

mod bad_input;
mod core_interop;
mod discovery;
mod lifecycle;
mod refresh;
mod revocation;
mod startup;
mod tenancy;
