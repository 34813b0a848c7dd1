//! The Portcullis edge: a Cloudflare Worker in front of an origin that decides every request
//! locally with `portcullis-core`, with no call to the issuer on the hot path.
//!
//! The contract (steps, codes, headers, configuration, revocation replication) is design note
//! `docs/design/0004-edge.md`. This file is the entry point only:
//!
//! - the `fetch` event, answered by [`handler`];
//! - the `RevocationReplica` Durable Object ([`replica`]), exported for the runtime.
//!
//! The decision itself ([`gate`]) and every rule it applies are plain Rust, unit-tested on
//! the host with `cargo test -p portcullis-edge`; the modules that talk to the runtime
//! (`handler`, `http`, `isolate`, `rate_limit`, `replica`) are exercised under workerd by the
//! end-to-end tests in `tests/edge/`.

use worker::{Context, Env, Request, Response, Result, event};

mod config;
mod error;
mod feed;
mod forward;
mod gate;
mod handler;
mod http;
mod isolate;
mod keys;
mod path;
mod rate_limit;
mod replica;
mod request_rules;
mod revocation;
mod routes;

pub use replica::RevocationReplica;

/// Every request to the worker.
#[event(fetch)]
async fn fetch(request: Request, env: Env, _context: Context) -> Result<Response> {
    handler::handle(request, &env).await
}
