//! Message templates (minijinja): a subject, a text body and an HTML body per message kind,
//! with built-in defaults and per-tenant overrides of any of them and of the sender.
//!
//! HTML bodies are auto-escaped (their template names end in `.html`), so a user agent or a
//! name shown in an alert cannot inject markup. Subjects are rendered as text and folded onto
//! one line. Undefined variables are errors: a typo in a tenant's template falls back to the
//! default instead of mailing a blank where the link should be.

use minijinja::{Environment, UndefinedBehavior, Value};

use crate::store::TemplateOverride;

/// A message kind: its stable name (the `template` column) and default parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    VerifyEmail,
    PasswordReset,
    Welcome,
    NewSignIn,
    PasswordChanged,
    MfaEnabled,
    MfaDisabled,
    AccountLocked,
}

impl Kind {
    pub(crate) const ALL: [Self; 8] = [
        Self::VerifyEmail,
        Self::PasswordReset,
        Self::Welcome,
        Self::NewSignIn,
        Self::PasswordChanged,
        Self::MfaEnabled,
        Self::MfaDisabled,
        Self::AccountLocked,
    ];

    /// The stable name tenants override the kind by.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::PasswordReset => "password_reset",
            Self::Welcome => "welcome",
            Self::NewSignIn => "new_sign_in",
            Self::PasswordChanged => "password_changed",
            Self::MfaEnabled => "mfa_enabled",
            Self::MfaDisabled => "mfa_disabled",
            Self::AccountLocked => "account_locked",
        }
    }

    /// The built-in subject, text and HTML templates.
    const fn defaults(self) -> [&'static str; 3] {
        match self {
            Self::VerifyEmail => [
                "Confirm your email address",
                "Hello,\n\nplease confirm your email address by opening this link:\n\n\
                 {{ link }}\n\nThe link works once and expires in {{ expires_in_hours }} \
                 hours. If you did not create an account, ignore this message.\n",
                "<p>Hello,</p><p>please confirm your email address:</p>\
                 <p><a href=\"{{ link }}\">Confirm my address</a></p>\
                 <p>The link works once and expires in {{ expires_in_hours }} hours. If you \
                 did not create an account, ignore this message.</p>",
            ],
            Self::PasswordReset => [
                "Reset your password",
                "Hello,\n\nsomeone asked to reset the password of your account. To choose a \
                 new one, open this link:\n\n{{ link }}\n\nThe link works once and expires in \
                 {{ expires_in_minutes }} minutes. If it was not you, ignore this message: \
                 your password stays as it is.\n",
                "<p>Hello,</p><p>someone asked to reset the password of your account.</p>\
                 <p><a href=\"{{ link }}\">Choose a new password</a></p>\
                 <p>The link works once and expires in {{ expires_in_minutes }} minutes. If it \
                 was not you, ignore this message: your password stays as it is.</p>",
            ],
            Self::Welcome => [
                "Welcome",
                "Hello,\n\nyour email address is confirmed. Welcome!\n\n{{ public_url }}\n",
                "<p>Hello,</p><p>your email address is confirmed. Welcome!</p>\
                 <p><a href=\"{{ public_url }}\">{{ public_url }}</a></p>",
            ],
            Self::NewSignIn => [
                "New sign-in to your account",
                "Hello,\n\nyour account was signed in to at {{ time }} from {{ ip }}, with a \
                 browser that calls itself \"{{ user_agent }}\".\n\n\
                 If it was not you, change your password now.\n",
                "<p>Hello,</p><p>your account was signed in to at {{ time }} from \
                 {{ ip }}, with a browser that calls itself \"{{ user_agent }}\".</p>\
                 <p>If it was not you, change your password now.</p>",
            ],
            Self::PasswordChanged => [
                "Your password was changed",
                "Hello,\n\nthe password of your account was changed at {{ time }}.\n\n\
                 If it was not you, reset your password now and contact support.\n",
                "<p>Hello,</p><p>the password of your account was changed at {{ time }}.</p>\
                 <p>If it was not you, reset your password now and contact support.</p>",
            ],
            Self::MfaEnabled => [
                "Two-step verification is on",
                "Hello,\n\ntwo-step verification was turned on for your account at \
                 {{ time }}.\n\nIf it was not you, contact support now.\n",
                "<p>Hello,</p><p>two-step verification was turned on for your account at \
                 {{ time }}.</p><p>If it was not you, contact support now.</p>",
            ],
            Self::MfaDisabled => [
                "Two-step verification is off",
                "Hello,\n\ntwo-step verification was turned off for your account at \
                 {{ time }}.\n\nIf it was not you, change your password and contact support \
                 now.\n",
                "<p>Hello,</p><p>two-step verification was turned off for your account at \
                 {{ time }}.</p><p>If it was not you, change your password and contact \
                 support now.</p>",
            ],
            Self::AccountLocked => [
                "Your account is locked",
                "Hello,\n\nafter repeated failed sign-in attempts your account is locked \
                 until {{ until }}.\n\nIf these attempts were not yours, someone may be \
                 guessing your password; consider changing it once the lock ends.\n",
                "<p>Hello,</p><p>after repeated failed sign-in attempts your account is \
                 locked until {{ until }}.</p><p>If these attempts were not yours, someone may \
                 be guessing your password; consider changing it once the lock ends.</p>",
            ],
        }
    }
}

/// A message rendered from templates.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Rendered {
    pub(crate) subject: String,
    pub(crate) text: String,
    pub(crate) html: String,
}

impl std::fmt::Debug for Rendered {
    /// The bodies may hold a link token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rendered")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// The template environment with every default loaded and checked.
#[derive(Debug)]
pub(crate) struct Templates {
    defaults: Environment<'static>,
}

const PARTS: [&str; 3] = ["subject", "txt", "html"];

/// The most template instructions one render of a tenant's override may run. Overrides are
/// rendered on the request path (register, forgot, login alerts), so a loop nested in one must
/// fail, and fall back to the default, instead of holding a request and a core; a rich
/// template needs a few thousand.
const OVERRIDE_FUEL: u64 = 100_000;

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
}

impl Templates {
    /// Compiles the defaults.
    ///
    /// # Errors
    ///
    /// A default that does not compile (a bug caught by the unit tests and at start).
    pub(crate) fn new() -> Result<Self, minijinja::Error> {
        let mut defaults = environment();
        for kind in Kind::ALL {
            for (part, source) in PARTS.iter().zip(kind.defaults()) {
                defaults.add_template_owned(format!("{}.{part}", kind.name()), source)?;
            }
        }
        Ok(Self { defaults })
    }

    /// Renders `kind` with the built-in templates.
    ///
    /// # Errors
    ///
    /// A variable the template needs is missing from `context`.
    pub(crate) fn render_default(
        &self,
        kind: Kind,
        context: &Value,
    ) -> Result<Rendered, minijinja::Error> {
        render_with(&self.defaults, kind, context)
    }

    /// Renders `kind` with the tenant's overrides in place of the defaults they replace.
    ///
    /// # Errors
    ///
    /// An override that does not compile or render; the caller falls back to the defaults.
    pub(crate) fn render_override(
        &self,
        kind: Kind,
        overrides: &TemplateOverride,
        context: &Value,
    ) -> Result<Rendered, minijinja::Error> {
        let mut env = environment();
        env.set_fuel(Some(OVERRIDE_FUEL));
        let sources = [
            &overrides.subject,
            &overrides.body_text,
            &overrides.body_html,
        ];
        for ((part, default), source) in PARTS.iter().zip(kind.defaults()).zip(sources) {
            let source = source.clone().unwrap_or_else(|| default.to_owned());
            env.add_template_owned(format!("{}.{part}", kind.name()), source)?;
        }
        render_with(&env, kind, context)
    }
}

fn render_with(
    env: &Environment<'_>,
    kind: Kind,
    context: &Value,
) -> Result<Rendered, minijinja::Error> {
    let render = |part: &str| {
        env.get_template(&format!("{}.{part}", kind.name()))?
            .render(context)
    };
    Ok(Rendered {
        subject: one_line(&render("subject")?),
        text: render("txt")?,
        html: render("html")?,
    })
}

/// A subject on one line, at most 200 characters: line breaks in a header are how header
/// injection starts, whatever the template says.
fn one_line(subject: &str) -> String {
    subject
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use minijinja::context;

    use super::*;

    fn full_context() -> Value {
        context! {
            public_url => "https://auth.example.com",
            link => "https://auth.example.com/auth/verify-email?token=plk_abc",
            expires_in_hours => 24,
            expires_in_minutes => 60,
            time => "2026-12-04T18:00:00Z",
            until => "2026-12-04T18:15:00Z",
            ip => "203.0.113.9",
            user_agent => "<script>alert(1)</script>",
        }
    }

    #[test]
    fn every_default_renders_both_bodies() {
        let templates = Templates::new().unwrap();
        for kind in Kind::ALL {
            let rendered = templates.render_default(kind, &full_context()).unwrap();
            assert!(!rendered.subject.is_empty(), "{kind:?}");
            assert!(
                !rendered.text.is_empty() && !rendered.html.is_empty(),
                "{kind:?}"
            );
            assert!(!rendered.subject.contains('\n'), "{kind:?}");
        }
        let mfa_on = templates
            .render_default(Kind::MfaEnabled, &full_context())
            .unwrap();
        assert!(mfa_on.text.contains("turned on"));
        let mfa_off = templates
            .render_default(Kind::MfaDisabled, &full_context())
            .unwrap();
        assert!(mfa_off.text.contains("turned off"));
        let locked = templates
            .render_default(Kind::AccountLocked, &full_context())
            .unwrap();
        assert!(locked.text.contains("2026-12-04T18:15:00Z"));
    }

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let templates = Templates::new().unwrap();
        let rendered = templates
            .render_default(Kind::NewSignIn, &full_context())
            .unwrap();
        assert!(
            rendered.html.contains("&lt;script&gt;"),
            "{}",
            rendered.html
        );
        assert!(!rendered.html.contains("<script>"));
        assert!(rendered.text.contains("<script>alert(1)</script>"));
        let link = templates
            .render_default(Kind::VerifyEmail, &full_context())
            .unwrap();
        assert!(link.text.contains("verify-email?token=plk_abc"));
    }

    #[test]
    fn overrides_replace_only_what_they_set() {
        let templates = Templates::new().unwrap();
        let overrides = TemplateOverride {
            subject: Some("Acme:\r\nBcc: x@evil.test {{ expires_in_hours }}h".to_owned()),
            body_html: Some("<b>{{ user_agent }}</b> {{ link }}".to_owned()),
            ..TemplateOverride::default()
        };
        let rendered = templates
            .render_override(Kind::VerifyEmail, &overrides, &full_context())
            .unwrap();
        assert_eq!(rendered.subject, "Acme: Bcc: x@evil.test 24h");
        assert!(rendered.html.starts_with("<b>&lt;script&gt;"));
        let default = templates
            .render_default(Kind::VerifyEmail, &full_context())
            .unwrap();
        assert_eq!(rendered.text, default.text);
        let broken = TemplateOverride {
            body_text: Some("{{ linkk }}".to_owned()),
            ..TemplateOverride::default()
        };
        assert!(
            templates
                .render_override(Kind::VerifyEmail, &broken, &full_context())
                .is_err()
        );
        let runaway = TemplateOverride {
            subject: Some(
                "{% for i in range(100000) %}{% for j in range(100) %}x{% endfor %}{% endfor %}"
                    .to_owned(),
            ),
            ..TemplateOverride::default()
        };
        let started = std::time::Instant::now();
        assert!(
            templates
                .render_override(Kind::VerifyEmail, &runaway, &full_context())
                .is_err()
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        let unclosed = TemplateOverride {
            subject: Some("{% if %}".to_owned()),
            ..TemplateOverride::default()
        };
        assert!(
            templates
                .render_override(Kind::VerifyEmail, &unclosed, &full_context())
                .is_err()
        );
    }
}
