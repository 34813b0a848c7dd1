//! The outbox worker: one per replica, sending due messages over a pooled SMTP transport and
//! retrying with exponential backoff (design note 0005, "Email").
//!
//! A message is claimed with a lease (its `next_attempt_at` moves [`CLAIM_LEASE`] ahead), so
//! a replica that dies mid-send leaves it to be retried by any replica once the lease runs
//! out: delivery is at least once. Each attempt, connection included, is bounded by
//! `mail.timeout_secs`. On shutdown the worker finishes the batch it holds and stops.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use tokio::sync::{Notify, watch};
use tracing::{info, instrument, warn};

use crate::clock::Clock;
use crate::config::{MailSettings, SmtpSecurity, SmtpTarget};
use crate::store::{DueMessage, OutboxStore, StoreError};

/// How long a claimed message is left to the worker that claimed it.
const CLAIM_LEASE: TimeDelta = TimeDelta::minutes(5);
/// Messages claimed at once.
const BATCH: u16 = 10;
/// The longest `last_error` kept.
const MAX_ERROR_CHARS: usize = 500;

/// Why the transport could not be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    #[error("reading `mail.tls_root_cert` ({path})")]
    RootCertFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`mail.tls_root_cert` holds no usable PEM certificate")]
    RootCert(#[source] lettre::transport::smtp::Error),
    #[error("preparing TLS for the SMTP server")]
    Tls(#[source] lettre::transport::smtp::Error),
}

/// The SMTP transport `smtp` describes: pooled, with timeouts, TLS as the URL's scheme says.
///
/// # Errors
///
/// The root certificate cannot be read or parsed, or TLS cannot be set up.
pub(crate) fn transport(
    smtp: &SmtpTarget,
    settings: &MailSettings,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, TransportError> {
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
        .port(smtp.port)
        .timeout(Some(settings.timeout))
        .pool_config(PoolConfig::new().max_size(settings.pool_max));
    if smtp.security != SmtpSecurity::Plain {
        let mut tls = TlsParameters::builder(smtp.host.clone());
        if let Some(path) = &smtp.root_cert {
            let pem = std::fs::read(path).map_err(|source| TransportError::RootCertFile {
                path: path.display().to_string(),
                source,
            })?;
            let certificate = Certificate::from_pem(&pem).map_err(TransportError::RootCert)?;
            tls = tls.add_root_certificate(certificate);
        }
        let tls = tls.build_rustls().map_err(TransportError::Tls)?;
        builder = builder.tls(match smtp.security {
            SmtpSecurity::ImplicitTls => Tls::Wrapper(tls),
            SmtpSecurity::StartTls | SmtpSecurity::Plain => Tls::Required(tls),
        });
    }
    if let Some((user, password)) = &smtp.credentials {
        builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
    }
    Ok(builder.build())
}

/// The wait before attempt `attempts + 1`: `initial`, doubling per failure, at most `max`.
pub(crate) fn backoff(attempts: u32, initial: Duration, max: Duration) -> Duration {
    let doublings = attempts.saturating_sub(1).min(31);
    initial
        .checked_mul(1_u32 << doublings)
        .unwrap_or(max)
        .min(max)
}

/// Sends what the outbox holds.
#[derive(Debug)]
pub(crate) struct Delivery {
    store: Arc<dyn OutboxStore>,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    settings: MailSettings,
    wake: Arc<Notify>,
    clock: Clock,
}

/// What one attempt came to.
enum Attempt {
    Sent,
    Retry(DateTime<Utc>, String),
    GiveUp(String),
}

impl Delivery {
    pub(crate) fn new(
        store: Arc<dyn OutboxStore>,
        transport: AsyncSmtpTransport<Tokio1Executor>,
        settings: MailSettings,
        wake: Arc<Notify>,
        clock: Clock,
    ) -> Self {
        Self {
            store,
            transport,
            settings,
            wake,
            clock,
        }
    }

    /// Sends due messages until `shutdown` turns true: at once when a message is queued on
    /// this replica, else every `mail.poll_interval_ms`.
    pub(crate) async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.deliver_due().await {
                // A full batch: more may be waiting.
                Ok(claimed) if claimed == usize::from(BATCH) => continue,
                Ok(_) => {}
                Err(err) => warn!(target: "mail", error = %err, "reading the outbox failed"),
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.settings.poll_interval) => {}
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// Claims one batch and attempts each message once; how many were claimed.
    async fn deliver_due(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let mut due = self.store.claim_due(now, now + CLAIM_LEASE, BATCH).await?;
        // `UPDATE … RETURNING` returns rows in no set order. Sent out of order, a newer reset
        // link could arrive before the older one it retired, and the user would follow the
        // mail that came last to a dead link. Ids are UUIDv7: oldest first.
        due.sort_unstable_by_key(|message| message.id);
        let claimed = due.len();
        for message in due {
            self.deliver(message).await?;
        }
        Ok(claimed)
    }

    #[instrument(skip_all, name = "mail.deliver", fields(message_id = %message.id,
        attempt = message.attempts))]
    async fn deliver(&self, message: DueMessage) -> Result<(), StoreError> {
        let now = self.clock.now();
        match self.attempt(&message).await {
            Attempt::Sent => {
                info!(target: "mail", event = "mail_sent", message_id = %message.id);
                self.store.mark_sent(message.id, now).await
            }
            Attempt::Retry(at, error) => {
                warn!(target: "mail", event = "mail_retry", message_id = %message.id,
                    retry_at = %at, error = %error);
                self.store
                    .mark_failed(message.id, now, Some(at), &error)
                    .await
            }
            Attempt::GiveUp(error) => {
                warn!(target: "mail", event = "mail_given_up", message_id = %message.id,
                    error = %error);
                self.store.mark_failed(message.id, now, None, &error).await
            }
        }
    }

    async fn attempt(&self, message: &DueMessage) -> Attempt {
        let email = match build(message) {
            Ok(email) => email,
            Err(reason) => return Attempt::GiveUp(reason),
        };
        // lettre bounds the TCP connect, but an async send then waits on the server's answers
        // with no deadline: a server that accepts and never answers would hold this worker,
        // and every message queued behind it, for good. So one whole attempt is bounded.
        let timeout = self.settings.timeout;
        let error = match tokio::time::timeout(timeout, self.transport.send(email)).await {
            Ok(Ok(_)) => return Attempt::Sent,
            Ok(Err(err)) if err.is_permanent() => {
                return Attempt::GiveUp(truncated(&err.to_string()));
            }
            Ok(Err(err)) => truncated(&err.to_string()),
            Err(_) => format!("the SMTP server did not finish within {timeout:?}"),
        };
        if message.attempts >= self.settings.max_attempts {
            return Attempt::GiveUp(error);
        }
        let wait = backoff(
            message.attempts,
            self.settings.retry_initial,
            self.settings.retry_max,
        );
        let wait = TimeDelta::from_std(wait).unwrap_or(TimeDelta::MAX);
        Attempt::Retry(self.clock.now() + wait, error)
    }
}

fn truncated(error: &str) -> String {
    error.chars().take(MAX_ERROR_CHARS).collect()
}

/// The MIME message: text and HTML alternatives. A malformed address can never be sent, so it
/// gives the message up rather than retrying.
fn build(message: &DueMessage) -> Result<Message, String> {
    let from: Mailbox = message
        .sender
        .parse()
        .map_err(|err| format!("sender: {err}"))?;
    let to: Mailbox = message
        .recipient
        .parse()
        .map_err(|err| format!("recipient: {err}"))?;
    Message::builder()
        .from(from)
        .to(to)
        .subject(message.subject.clone())
        .multipart(MultiPart::alternative_plain_html(
            message.body_text.clone(),
            message.body_html.clone(),
        ))
        .map_err(|err| format!("message: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let initial = Duration::from_secs(30);
        let max = Duration::from_secs(3_600);
        let waits: Vec<_> = (1..=9)
            .map(|n| backoff(n, initial, max).as_secs())
            .collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1_920, 3_600, 3_600]);
        assert_eq!(backoff(u32::MAX, initial, max), max, "no overflow");
        assert_eq!(backoff(0, initial, max), initial);
    }

    fn due(sender: &str, recipient: &str) -> DueMessage {
        DueMessage {
            id: uuid::Uuid::from_u128(1),
            recipient: recipient.to_owned(),
            sender: sender.to_owned(),
            subject: "Hello".to_owned(),
            body_text: "text plk_secret".to_owned(),
            body_html: "<p>html</p>".to_owned(),
            attempts: 1,
        }
    }

    #[test]
    fn messages_are_multipart_and_addresses_checked() {
        let email = build(&due("Acme <auth@acme.test>", "ada@example.com")).unwrap();
        let raw = String::from_utf8(email.formatted()).unwrap();
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("Subject: Hello"));
        assert!(build(&due("not an address", "ada@example.com")).is_err());
        assert!(build(&due("auth@acme.test", "")).is_err());
        assert!(!format!("{:?}", due("a@b.c", "d@e.f")).contains("plk_secret"));
    }
}
