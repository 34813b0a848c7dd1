//! End-to-end tests of the edge worker (test target `edge`, design note 0004): the real issuer
//! binary, a small origin that echoes what it receives, and the built worker (`edge/build/`)
//! under the real workerd runtime, through Miniflare 4 (`edge/test/serve.mjs`) and, in one
//! smoke test, `wrangler dev` with the repository's wrangler.toml. Each test starts its own
//! three processes on ports the system picks, so the tests run in parallel.
//!
//! The contract under test is 0004's; the tests drive it only over HTTP, as clients and the
//! issuer do. Without Node.js, the edge's npm tools or the built worker a test prints
//! `skipped: <why>` and passes, unless `PORTCULLIS_REQUIRE_SERVICES=1` (CI), in which case it
//! fails. Timings (propagation, latency, CPU) are measured by `edge/bench/`, not asserted
//! here: the only time limits below are generous liveness bounds.

// As in the e2e suite: a failing end-to-end check stops at once with the response in the
// message, so this crate unwraps, expects, panics and indexes into JSON freely.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

// The e2e harness, for its `Issuer` (one real process per test, fresh data directory) and its
// response and problem assertions. This target uses only part of it.
#[allow(dead_code)]
#[path = "../e2e/support/mod.rs"]
mod support;

/// The issuer's backend for every edge test: embedded, so the tests need no service.
const BACKEND: support::Backend = support::Backend::Embedded;

mod harness;

mod gating;
mod rate_limit;
mod refusals;
mod request_rules;
mod revocation;
mod rotation;
mod staleness;
mod wrangler;
