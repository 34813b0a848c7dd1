//! Mail (design note 0005, "Email"): what the rest of the issuer calls to send a message.
//!
//! Nothing here waits for SMTP. A message is rendered, then committed to the outbox (with the
//! one-time token it carries, in the same transaction), and the worker of [`delivery`] sends
//! it. Links are built from `public_url` only, never from request headers, so a forged `Host`
//! cannot point a reset link at someone else's site.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use minijinja::{Value, context};
use tokio::sync::Notify;
use tracing::{error, instrument, warn};

use self::templates::{Kind, Rendered, Templates};
use crate::clock::Clock;
use crate::config::MailSettings;
use crate::crypto::link_token::LinkToken;
use crate::ids::{TenantId, UserId};
use crate::store::{Addressee, LinkPurpose, NewLink, OutboxMessage, OutboxStore, StoreError};

pub(crate) mod delivery;
pub(crate) mod templates;

/// The page of the front end at `public_url` that takes a verification token.
const VERIFY_PATH: &str = "/auth/verify-email";
/// The page of the front end at `public_url` that takes a reset token.
const RESET_PATH: &str = "/auth/reset-password";

/// Why a message could not be queued.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MailError {
    #[error("writing the outbox")]
    Store(#[from] StoreError),
    /// A built-in template failed to render: a bug.
    #[error("rendering a built-in template")]
    Template(#[source] minijinja::Error),
}

/// A security alert for a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Notice {
    /// A password login succeeded.
    NewSignIn {
        ip: IpAddr,
        user_agent: Option<String>,
    },
    PasswordChanged,
    /// TOTP was confirmed.
    MfaEnabled,
    /// TOTP was removed.
    MfaDisabled,
    /// The lockout locked the account (sent once per lock).
    AccountLocked {
        until: DateTime<Utc>,
    },
    /// The address was just verified.
    Welcome,
}

impl Notice {
    fn kind(&self) -> Kind {
        match self {
            Self::NewSignIn { .. } => Kind::NewSignIn,
            Self::PasswordChanged => Kind::PasswordChanged,
            Self::MfaEnabled => Kind::MfaEnabled,
            Self::MfaDisabled => Kind::MfaDisabled,
            Self::AccountLocked { .. } => Kind::AccountLocked,
            Self::Welcome => Kind::Welcome,
        }
    }
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The longest user agent a sign-in alert quotes, in characters.
const SHOWN_USER_AGENT_CHARS: usize = 100;

/// The client's own name for itself, as an alert quotes it. It is text anyone with the
/// password chooses, so it must not grow into a message of its own inside the owner's
/// warning: only printable ASCII is kept (real user agents are ASCII; anything else, line
/// and paragraph separators and direction overrides included, becomes `?`), a double quote
/// becomes a single one so the quotation cannot be closed, and it is cut to
/// [`SHOWN_USER_AGENT_CHARS`].
fn shown_user_agent(user_agent: Option<&str>) -> String {
    let Some(user_agent) = user_agent.map(str::trim).filter(|agent| !agent.is_empty()) else {
        return "unknown".to_owned();
    };
    let mut chars = user_agent.chars().map(|c| match c {
        '"' => '\'',
        ' '..='~' => c,
        _ => '?',
    });
    let shown: String = chars.by_ref().take(SHOWN_USER_AGENT_CHARS).collect();
    if chars.next().is_some() {
        format!("{shown}…")
    } else {
        shown
    }
}

/// Renders and queues messages.
#[derive(Debug)]
pub(crate) struct Mailer {
    store: Arc<dyn OutboxStore>,
    templates: Templates,
    from: String,
    public_url: String,
    verify_ttl: TimeDelta,
    reset_ttl: TimeDelta,
    /// Wakes this replica's worker when a message is queued.
    wake: Arc<Notify>,
    clock: Clock,
}

impl Mailer {
    /// # Errors
    ///
    /// A built-in template does not compile.
    pub(crate) fn new(
        store: Arc<dyn OutboxStore>,
        settings: &MailSettings,
        public_url: String,
        clock: Clock,
    ) -> Result<Self, minijinja::Error> {
        let secs = |secs: u64| {
            TimeDelta::try_seconds(i64::try_from(secs).unwrap_or(i64::MAX))
                .unwrap_or(TimeDelta::MAX)
        };
        Ok(Self {
            store,
            templates: Templates::new()?,
            from: settings.from.clone(),
            public_url,
            verify_ttl: secs(settings.verify_ttl_secs),
            reset_ttl: secs(settings.reset_ttl_secs),
            wake: Arc::new(Notify::new()),
            clock,
        })
    }

    /// What the worker waits on.
    pub(crate) fn wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Mails a fresh one-time link for `purpose` to the addressee, storing the token's hash
    /// with the message. For an address without an account the same work is done and nothing
    /// is stored (`false`), so the answer takes the same time either way.
    ///
    /// # Errors
    ///
    /// The outbox cannot be written (or a built-in template fails).
    #[instrument(skip_all, name = "mail.send_link", fields(purpose = purpose.as_str()))]
    pub(crate) async fn send_link(
        &self,
        tenant: TenantId,
        to: Addressee<'_>,
        purpose: LinkPurpose,
    ) -> Result<bool, MailError> {
        let token = LinkToken::generate();
        let now = self.clock.now();
        let (kind, ttl, path) = match purpose {
            LinkPurpose::VerifyEmail => (Kind::VerifyEmail, self.verify_ttl, VERIFY_PATH),
            LinkPurpose::ResetPassword => (Kind::PasswordReset, self.reset_ttl, RESET_PATH),
        };
        let link = format!("{}{path}?token={}", self.public_url, token.expose());
        let context = context! {
            public_url => &self.public_url,
            link => link,
            expires_in_hours => ttl.num_hours(),
            expires_in_minutes => ttl.num_minutes(),
        };
        let message = self.render(tenant, kind, &context, now).await?;
        let link = NewLink {
            hash: token.hash(),
            purpose,
            expires_at: now + ttl,
            supersede: purpose == LinkPurpose::ResetPassword,
        };
        let queued = self.store.enqueue(to, &message, Some(&link)).await?;
        self.wake.notify_one();
        Ok(queued)
    }

    /// Queues an alert to the user's address. Best effort: the action it reports has already
    /// happened, so a failure is logged (at error, for operators) and the caller goes on.
    #[instrument(skip_all, name = "mail.notify", fields(tenant_id = %tenant, subject_id = %user,
        kind = notice.kind().name()))]
    pub(crate) async fn notify(&self, tenant: TenantId, user: UserId, notice: Notice) {
        if let Err(err) = self.queue_notice(tenant, user, &notice).await {
            error!(target: "mail", error = %err, "queueing an alert failed; it is not sent");
        }
    }

    async fn queue_notice(
        &self,
        tenant: TenantId,
        user: UserId,
        notice: &Notice,
    ) -> Result<(), MailError> {
        let now = self.clock.now();
        let mut context = context! {
            public_url => &self.public_url,
            time => rfc3339(now),
        };
        match notice {
            Notice::NewSignIn { ip, user_agent } => {
                let extra = context! {
                    ip => ip.to_string(),
                    user_agent => shown_user_agent(user_agent.as_deref()),
                };
                context = context! { ..extra, ..context };
            }
            Notice::AccountLocked { until } => {
                context = context! { until => rfc3339(*until), ..context };
            }
            Notice::PasswordChanged
            | Notice::MfaEnabled
            | Notice::MfaDisabled
            | Notice::Welcome => {}
        }
        let message = self.render(tenant, notice.kind(), &context, now).await?;
        self.store
            .enqueue(Addressee::User(user), &message, None)
            .await?;
        self.wake.notify_one();
        Ok(())
    }

    /// Renders `kind` with the tenant's overrides, falling back to the built-in templates
    /// (and the configured sender) when an override fails.
    async fn render(
        &self,
        tenant: TenantId,
        kind: Kind,
        context: &Value,
        now: DateTime<Utc>,
    ) -> Result<OutboxMessage, MailError> {
        let overrides = self.store.template_override(tenant, kind.name()).await?;
        let rendered = match &overrides {
            Some(overrides) => self
                .templates
                .render_override(kind, overrides, context)
                .or_else(|err| {
                    warn!(target: "mail", tenant_id = %tenant, template = kind.name(),
                        error = %err, "the tenant's template fails; using the default");
                    self.templates.render_default(kind, context)
                }),
            None => self.templates.render_default(kind, context),
        };
        let Rendered {
            subject,
            text,
            html,
        } = rendered.map_err(MailError::Template)?;
        let sender = overrides
            .and_then(|overrides| overrides.sender)
            .filter(|sender| {
                let valid = sender.parse::<lettre::message::Mailbox>().is_ok();
                if !valid {
                    warn!(target: "mail", tenant_id = %tenant, template = kind.name(),
                        "the tenant's sender is not an address; using mail.from");
                }
                valid
            })
            .unwrap_or_else(|| self.from.clone());
        Ok(OutboxMessage {
            id: self.clock.new_uuid_v7(),
            tenant,
            template: kind.name(),
            sender,
            subject,
            body_text: text,
            body_html: html,
            created_at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_notice_has_its_own_template() {
        let notices = [
            Notice::NewSignIn {
                ip: IpAddr::from([203, 0, 113, 9]),
                user_agent: None,
            },
            Notice::PasswordChanged,
            Notice::MfaEnabled,
            Notice::MfaDisabled,
            Notice::AccountLocked {
                until: DateTime::UNIX_EPOCH,
            },
            Notice::Welcome,
        ];
        let mut names: Vec<_> = notices.iter().map(|notice| notice.kind().name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), notices.len());
        assert_eq!(Notice::MfaEnabled.kind(), Kind::MfaEnabled);
        assert_eq!(Notice::MfaDisabled.kind(), Kind::MfaDisabled);
    }

    #[test]
    fn alerts_quote_at_most_a_hundred_characters_of_the_user_agent() {
        assert_eq!(shown_user_agent(None), "unknown");
        assert_eq!(shown_user_agent(Some("  ")), "unknown");
        assert_eq!(shown_user_agent(Some("curl/8.5.0")), "curl/8.5.0");
        let long = format!("Mozilla/5.0 {}", "a".repeat(200));
        let shown = shown_user_agent(Some(&long));
        assert_eq!(shown.chars().count(), SHOWN_USER_AGENT_CHARS + 1);
        assert!(shown.ends_with('…') && long.starts_with(shown.trim_end_matches('…')));
        let escape = "Firefox\". Confirmed by Security\u{2028}\u{202e}ok\u{200b}";
        assert_eq!(
            shown_user_agent(Some(escape)),
            "Firefox'. Confirmed by Security??ok?"
        );
    }
}
