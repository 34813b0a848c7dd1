//! Rate limits (design note 0005): a GCRA budget per client IP and per account on the routes
//! that check a secret or create one, checked before any password work so a flood costs no
//! Argon2 time.
//!
//! A route takes part with one [`Action`] variant and one line in [`RateLimits::budgets`].
//! Keys never hold an email: accounts are keyed by a hash of tenant and normalized address.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::Ipv6Net;
use tracing::debug;

use super::lockout::AccountKey;
use crate::config::{Limit, RateLimitSettings};
use crate::error::ApiError;
use crate::ids::TenantId;
use crate::store::RateLimiter;

/// A rate-limited operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    Login,
    Register,
    /// `POST /v1/auth/mfa/verify`: the second step of a login.
    MfaVerify,
    /// TOTP enrolment, confirmation and removal, and backup-code regeneration.
    MfaManage,
    ForgotPassword,
    VerifyEmail,
    ResetPassword,
    ChangePassword,
}

impl Action {
    const fn name(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Register => "register",
            Self::MfaVerify => "mfa_verify",
            Self::MfaManage => "mfa_manage",
            Self::ForgotPassword => "forgot_password",
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
            Self::ChangePassword => "change_password",
        }
    }
}

/// The account a request names: its tenant and normalized email.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Account<'a> {
    pub(crate) tenant: TenantId,
    pub(crate) email: &'a str,
}

/// Checks and spends budgets.
#[derive(Debug)]
pub(crate) struct RateLimits {
    limiter: Arc<dyn RateLimiter>,
    settings: RateLimitSettings,
}

impl RateLimits {
    pub(crate) fn new(limiter: Arc<dyn RateLimiter>, settings: RateLimitSettings) -> Self {
        Self { limiter, settings }
    }

    /// The per-IP and per-account budgets of an action; `None`: not limited that way.
    fn budgets(&self, action: Action) -> (Option<Limit>, Option<Limit>) {
        let settings = &self.settings;
        match action {
            Action::Login => (
                Some(settings.login_per_ip),
                Some(settings.login_per_account),
            ),
            Action::Register => (
                Some(settings.register_per_ip),
                Some(settings.register_per_account),
            ),
            Action::MfaVerify => (
                Some(settings.mfa_verify_per_ip),
                Some(settings.mfa_verify_per_account),
            ),
            Action::MfaManage => (
                Some(settings.mfa_manage_per_ip),
                Some(settings.mfa_manage_per_account),
            ),
            Action::ForgotPassword => (
                Some(settings.forgot_password_per_ip),
                Some(settings.forgot_password_per_account),
            ),
            Action::VerifyEmail => (Some(settings.verify_email_per_ip), None),
            Action::ResetPassword => (Some(settings.reset_password_per_ip), None),
            Action::ChangePassword => (
                Some(settings.change_password_per_ip),
                Some(settings.change_password_per_account),
            ),
        }
    }

    /// Spends one request of the client's budget and, when the request names an account, of
    /// the account's; a spent budget answers 429 `rate_limited` with `Retry-After`.
    ///
    /// # Errors
    ///
    /// `rate_limited`, or an internal error when the limiter's store fails (closed: an
    /// unreachable Redis must not switch the limits off).
    pub(crate) async fn check(
        &self,
        action: Action,
        client: IpAddr,
        account: Option<Account<'_>>,
    ) -> Result<(), ApiError> {
        let (per_ip, per_account) = self.budgets(action);
        if let Some(limit) = per_ip {
            let key = format!("{}:ip:{}", action.name(), ip_key(client));
            if let Some(wait) = self.limiter.acquire(&key, limit).await? {
                debug!(target: "security", event = "rate_limited", action = action.name(),
                    scope = "ip", client_ip = %client);
                return Err(ApiError::rate_limited(wait));
            }
        }
        if let (Some(limit), Some(account)) = (per_account, account) {
            let account = AccountKey::new(account.tenant, account.email);
            let key = format!("{}:account:{}", action.name(), account.short_hex());
            if let Some(wait) = self.limiter.acquire(&key, limit).await? {
                debug!(target: "security", event = "rate_limited", action = action.name(),
                    scope = "account", client_ip = %client);
                return Err(ApiError::rate_limited(wait));
            }
        }
        Ok(())
    }
}

/// IPv4 addresses one by one; IPv6 by /64, the block one subscriber usually holds, so a
/// client cannot multiply its budget by walking its own block.
fn ip_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => Ipv6Net::new(v6, 64)
            .map(|net| net.trunc().to_string())
            .unwrap_or_else(|_| v6.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_share_their_slash_64() {
        assert_eq!(ip_key("203.0.113.9".parse().unwrap()), "203.0.113.9");
        assert_eq!(ip_key("::ffff:203.0.113.9".parse().unwrap()), "203.0.113.9");
        assert_eq!(
            ip_key("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
    }
}
