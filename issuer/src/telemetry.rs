//! Logging: `tracing` to stderr, as text or JSON, filtered by `RUST_LOG` (default `info`).
//!
//! What must never be logged (passwords, tokens, refresh tokens, keys, `Authorization`) is
//! kept out by types rather than by care: secrets live in redacting wrappers, spans capture
//! only named fields (`#[instrument(skip_all, …)]`), and the request span records no headers.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::LogFormat;

/// Installs the global subscriber.
///
/// # Errors
///
/// If a global subscriber is already installed.
pub fn init(format: LogFormat) -> Result<(), tracing_subscriber::util::TryInitError> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal()),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    }
}
