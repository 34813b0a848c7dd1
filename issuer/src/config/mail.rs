//! `[mail]` (design note 0005, "Email"): where and how the outbox worker sends, and how long
//! mailed links stay valid.
//!
//! `smtp_url` selects the transport security by its scheme: `smtps://` is TLS from the first
//! byte (implicit TLS), `smtp://…?tls=required` upgrades with STARTTLS and refuses a server
//! that does not offer it, and a bare `smtp://` sends in clear (local development only; the
//! issuer warns unless the host is loopback). Credentials go in the URL's user information
//! and are kept in a [`SecretString`]: `Debug` and every message redact them.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
use serde::Deserialize;

use super::{ConfigError, check_range, invalid};
use crate::crypto::secret::SecretString;

/// The file-facing `[mail]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct MailFile {
    /// Unset: messages stay queued in the outbox (a start-up warning says so).
    smtp_url: Option<SecretString>,
    /// The default sender (`Name <address>` or a bare address); a tenant may override it.
    from: String,
    /// A PEM file of CA certificates to trust for the SMTP server, e.g. a private CA.
    tls_root_cert: Option<PathBuf>,
    /// One sending attempt, connection included, gives up after this long (then retries).
    timeout_secs: u64,
    /// SMTP connections kept open per replica.
    pool_max: u32,
    /// Sending attempts before a message is given up.
    max_attempts: u32,
    /// The wait after the first failed attempt; it doubles with each further failure.
    retry_initial_secs: u64,
    /// The longest wait between attempts.
    retry_max_secs: u64,
    /// How often an idle worker looks for due messages (new messages wake it at once).
    poll_interval_ms: u64,
    /// How long an email-verification link works.
    verify_ttl_secs: u64,
    /// How long a password-reset link works.
    reset_ttl_secs: u64,
}

impl Default for MailFile {
    fn default() -> Self {
        Self {
            smtp_url: None,
            from: "Portcullis <no-reply@localhost>".to_owned(),
            tls_root_cert: None,
            timeout_secs: 10,
            pool_max: 4,
            max_attempts: 10,
            retry_initial_secs: 30,
            retry_max_secs: 3_600,
            poll_interval_ms: 1_000,
            verify_ttl_secs: 86_400,
            reset_ttl_secs: 3_600,
        }
    }
}

/// How the connection to the SMTP server is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SmtpSecurity {
    /// `smtps://`: TLS from the first byte.
    ImplicitTls,
    /// `smtp://…?tls=required`: STARTTLS, and no mail without it.
    StartTls,
    /// `smtp://`: no encryption.
    Plain,
}

/// A parsed `smtp_url`.
#[derive(Clone)]
pub(crate) struct SmtpTarget {
    pub(crate) security: SmtpSecurity,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// User name and password, percent-decoded.
    pub(crate) credentials: Option<(String, SecretString)>,
    /// The PEM file of `tls_root_cert`.
    pub(crate) root_cert: Option<PathBuf>,
}

impl fmt::Debug for SmtpTarget {
    /// Never the password; the user name only as "set".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpTarget")
            .field("security", &self.security)
            .field("host", &self.host)
            .field("port", &self.port)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|_| "[redacted]"),
            )
            .field("root_cert", &self.root_cert)
            .finish()
    }
}

impl SmtpTarget {
    /// Whether the server is this machine: plain SMTP there is a development set-up.
    pub(crate) fn is_loopback(&self) -> bool {
        self.host == "localhost" || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

/// The validated `[mail]` settings.
#[derive(Clone, Debug)]
pub(crate) struct MailSettings {
    /// `None`: no sending; messages wait in the outbox.
    pub(crate) smtp: Option<SmtpTarget>,
    pub(crate) from: String,
    pub(crate) timeout: Duration,
    pub(crate) pool_max: u32,
    pub(crate) max_attempts: u32,
    pub(crate) retry_initial: Duration,
    pub(crate) retry_max: Duration,
    pub(crate) poll_interval: Duration,
    pub(crate) verify_ttl_secs: u64,
    pub(crate) reset_ttl_secs: u64,
}

impl MailFile {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.smtp_url {
            parse_smtp_url(url.expose())?;
        }
        if self.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(invalid(
                "mail.from",
                "must be an address, optionally with a name: `Name <user@example.com>`",
            ));
        }
        if let Some(path) = &self.tls_root_cert
            && !path.is_file()
        {
            return Err(invalid(
                "mail.tls_root_cert",
                format!("names `{}`, which is not a readable file", path.display()),
            ));
        }
        check_range("mail.timeout_secs", self.timeout_secs, 1, 300)?;
        check_range("mail.pool_max", self.pool_max, 1, 100)?;
        check_range("mail.max_attempts", self.max_attempts, 1, 100)?;
        check_range(
            "mail.retry_initial_secs",
            self.retry_initial_secs,
            1,
            86_400,
        )?;
        check_range("mail.retry_max_secs", self.retry_max_secs, 1, 86_400)?;
        if self.retry_max_secs < self.retry_initial_secs {
            return Err(invalid(
                "mail.retry_max_secs",
                format!(
                    "is {}; it must be at least `mail.retry_initial_secs` ({})",
                    self.retry_max_secs, self.retry_initial_secs
                ),
            ));
        }
        check_range("mail.poll_interval_ms", self.poll_interval_ms, 10, 600_000)?;
        check_range("mail.verify_ttl_secs", self.verify_ttl_secs, 60, 2_592_000)?;
        check_range("mail.reset_ttl_secs", self.reset_ttl_secs, 60, 86_400)
    }

    pub(super) fn into_settings(self) -> Result<MailSettings, ConfigError> {
        let smtp = match &self.smtp_url {
            Some(url) => Some(SmtpTarget {
                root_cert: self.tls_root_cert.clone(),
                ..parse_smtp_url(url.expose())?
            }),
            None => None,
        };
        Ok(MailSettings {
            smtp,
            from: self.from,
            timeout: Duration::from_secs(self.timeout_secs),
            pool_max: self.pool_max,
            max_attempts: self.max_attempts,
            retry_initial: Duration::from_secs(self.retry_initial_secs),
            retry_max: Duration::from_secs(self.retry_max_secs),
            poll_interval: Duration::from_millis(self.poll_interval_ms),
            verify_ttl_secs: self.verify_ttl_secs,
            reset_ttl_secs: self.reset_ttl_secs,
        })
    }
}

/// Parses `smtp_url`. Messages never repeat the URL: it may hold a password.
fn parse_smtp_url(raw: &str) -> Result<SmtpTarget, ConfigError> {
    let bad = |reason: &str| invalid("mail.smtp_url", reason);
    let url = url::Url::parse(raw).map_err(|_| bad("is not a URL"))?;
    let tls = url
        .query_pairs()
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect::<Vec<_>>();
    let required_tls = match tls.as_slice() {
        [] => false,
        [(key, value)] if key == "tls" && value == "required" => true,
        _ => return Err(bad("accepts only the query `?tls=required`")),
    };
    let (security, default_port) = match (url.scheme(), required_tls) {
        ("smtps", false) => (SmtpSecurity::ImplicitTls, 465),
        ("smtps", true) => return Err(bad("uses TLS from the start; drop `?tls=required`")),
        ("smtp", true) => (SmtpSecurity::StartTls, 587),
        ("smtp", false) => (SmtpSecurity::Plain, 25),
        _ => return Err(bad("must start with smtps:// or smtp://")),
    };
    // An IPv6 address without its URL brackets: the form a socket address is built from.
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Domain(domain)) if !domain.is_empty() => dns_host(domain)
            .ok_or_else(|| bad("has a host that is neither a domain name nor an IP address"))?,
        Some(url::Host::Domain(_)) | None => return Err(bad("has no host")),
    };
    if url.port() == Some(0) {
        return Err(bad("has port 0, which no server listens on"));
    }
    if !matches!(url.path(), "" | "/") || url.fragment().is_some() {
        return Err(bad("must not have a path or a fragment"));
    }
    let credentials = match (url.username(), url.password()) {
        ("", None) => None,
        (user, Some(password)) if !user.is_empty() => {
            let decode = |text: &str| {
                percent_decode(text).ok_or_else(|| bad("has credentials that are not UTF-8"))
            };
            Some((decode(user)?, SecretString::new(decode(password)?)))
        }
        _ => return Err(bad("needs both a user name and a password, or neither")),
    };
    Ok(SmtpTarget {
        security,
        host,
        port: url.port().unwrap_or(default_port),
        credentials,
        root_cert: None,
    })
}

/// The ASCII form of a host name. `url` keeps the host of a non-special scheme such as
/// `smtp://` percent-encoded and unchecked (`smtp://ü.de` gives `%C3%BC.de`, which no resolver
/// finds), so the issuer would start and never send; the host is decoded and converted here
/// (UTS 46, as for email domains), and one that cannot be a host name is refused.
fn dns_host(domain: &str) -> Option<String> {
    let decoded = percent_decode(domain)?;
    let ascii = Uts46::new()
        .to_ascii(
            decoded.as_bytes(),
            AsciiDenyList::URL,
            Hyphens::Allow,
            DnsLength::Ignore,
        )
        .ok()?;
    (!ascii.is_empty()).then(|| ascii.into_owned())
}

/// Percent-decoding of URL user information.
fn percent_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let hex = tail.get(..2)?;
            let value = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            bytes.push(value);
            rest = tail.get(2..)?;
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_selects_the_transport_security() {
        let implicit = parse_smtp_url("smtps://mail.example.com").unwrap();
        assert_eq!(
            (implicit.security, implicit.port),
            (SmtpSecurity::ImplicitTls, 465)
        );
        let starttls = parse_smtp_url("smtp://mail.example.com:2525?tls=required").unwrap();
        assert_eq!(
            (starttls.security, starttls.port),
            (SmtpSecurity::StartTls, 2525)
        );
        let plain = parse_smtp_url("smtp://127.0.0.1:1025").unwrap();
        assert_eq!((plain.security, plain.port), (SmtpSecurity::Plain, 1025));
        assert!(plain.is_loopback());
        assert!(!implicit.is_loopback());
        let v6 = parse_smtp_url("smtp://[::1]:25").unwrap();
        assert!(v6.is_loopback());
        assert_eq!(v6.host, "::1");
        let unicode = parse_smtp_url("smtp://Mail.Bücher.de:2525").unwrap();
        assert_eq!(unicode.host, "mail.xn--bcher-kva.de");
        assert_eq!(
            parse_smtp_url("smtp://mail_relay").unwrap().host,
            "mail_relay"
        );
        for bad in [
            "smtp://mail%20relay.example.com",
            "smtp://mail%00.example.com",
            "smtp://%ff.example.com",
            "smtp://mail.example.com:0",
            "http://mail.example.com",
            "smtps://mail.example.com?tls=required",
            "smtp://mail.example.com?tls=opportunistic",
            "smtp://mail.example.com/path",
            "smtp://user@mail.example.com",
            "smtp://",
            "not a url",
        ] {
            assert!(parse_smtp_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_are_decoded_and_never_shown() {
        let target =
            parse_smtp_url("smtps://ada%40example.com:p%40ss%2Fw0rd@mail.example.com").unwrap();
        let (user, password) = target.credentials.clone().unwrap();
        assert_eq!(user, "ada@example.com");
        assert_eq!(password.expose(), "p@ss/w0rd");
        let debug = format!("{target:?}");
        assert!(
            !debug.contains("p%40ss") && !debug.contains("p@ss"),
            "{debug}"
        );
        assert!(!debug.contains("ada"), "{debug}");
        let err = parse_smtp_url("ftp://u:hunter2@mail.example.com")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("mail.smtp_url") && !err.contains("hunter2"),
            "{err}"
        );
    }
}
