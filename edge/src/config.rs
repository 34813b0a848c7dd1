//! The edge's configuration: `wrangler.toml` `[vars]` and secrets, read and validated once per
//! isolate (design note 0004, *Configuration*).
//!
//! Parsing is pure, over a lookup function, so every rule is unit-tested on the host. A
//! missing or invalid variable is a [`ConfigError`] naming the variable; its value is never
//! echoed, not even for non-secret variables, so a value pasted into the wrong variable can
//! never leak through an error.

use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::{Key, MAX_LEEWAY, Validation};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::path::NormalPath;
use crate::routes::{Pattern, Routes, is_method};

/// What to do with authenticated routes while the revocation list is too old.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StaleMode {
    /// Refuse with 503 `revocation_list_stale` (the default).
    Closed,
    /// Pass and log a warning. Weakens security: revocations made during an outage are not
    /// enforced until the list is fresh again.
    Open,
}

/// Everything the edge needs, validated.
#[derive(Clone)]
pub(crate) struct Config {
    /// Where allowed requests go: `scheme://host[:port]`, no trailing slash.
    pub(crate) origin: String,
    /// The issuer's base URL, no trailing slash.
    pub(crate) issuer_url: String,
    /// `iss`, `aud`, leeway and `typ` for the core verifier.
    pub(crate) validation: Validation,
    /// The HS256 keys from the secret; secrets are absorbed, never kept as bytes.
    pub(crate) hs256_keys: Vec<Key>,
    /// Where EdDSA keys come from; `None` when `PORTCULLIS_JWKS_URL` is `off`.
    pub(crate) jwks_url: Option<String>,
    pub(crate) jwks_max_age_ms: u64,
    pub(crate) routes: Routes,
    pub(crate) revocation_interval_ms: u64,
    pub(crate) max_staleness_secs: u64,
    pub(crate) stale_mode: StaleMode,
    pub(crate) max_header_bytes: u64,
    pub(crate) max_body_bytes: u64,
    /// How long the origin may take to start answering before the edge gives up with 504.
    pub(crate) origin_timeout_secs: u64,
    /// Upper-case method names.
    pub(crate) blocked_methods: Vec<String>,
    pub(crate) blocked_paths: Vec<Pattern>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Key`'s own Debug shows only kid and algorithm; the rest is not secret.
        f.debug_struct("Config")
            .field("origin", &self.origin)
            .field("issuer_url", &self.issuer_url)
            .field("validation", &self.validation)
            .field("hs256_keys", &self.hs256_keys)
            .field("jwks_url", &self.jwks_url)
            .field("stale_mode", &self.stale_mode)
            .finish_non_exhaustive()
    }
}

/// A variable that is missing or invalid, and why (the why never quotes the value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConfigError {
    pub(crate) variable: &'static str,
    pub(crate) reason: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.reason)
    }
}

pub(crate) const ORIGIN_URL: &str = "PORTCULLIS_ORIGIN_URL";
pub(crate) const ISSUER_URL: &str = "PORTCULLIS_ISSUER_URL";
pub(crate) const EXPECTED_ISSUER: &str = "PORTCULLIS_EXPECTED_ISSUER";
pub(crate) const AUDIENCE: &str = "PORTCULLIS_AUDIENCE";
pub(crate) const LEEWAY_SECS: &str = "PORTCULLIS_LEEWAY_SECS";
pub(crate) const HS256_KEYS: &str = "PORTCULLIS_HS256_KEYS";
pub(crate) const JWKS_URL: &str = "PORTCULLIS_JWKS_URL";
pub(crate) const JWKS_MAX_AGE_SECS: &str = "PORTCULLIS_JWKS_MAX_AGE_SECS";
pub(crate) const ROUTES: &str = "PORTCULLIS_ROUTES";
pub(crate) const REVOCATION_INTERVAL_MS: &str = "PORTCULLIS_REVOCATION_INTERVAL_MS";
pub(crate) const MAX_STALENESS_SECS: &str = "PORTCULLIS_REVOCATION_MAX_STALENESS_SECS";
pub(crate) const STALE_MODE: &str = "PORTCULLIS_REVOCATION_STALE_MODE";
pub(crate) const MAX_HEADER_BYTES: &str = "PORTCULLIS_MAX_HEADER_BYTES";
pub(crate) const MAX_BODY_BYTES: &str = "PORTCULLIS_MAX_BODY_BYTES";
pub(crate) const BLOCKED_METHODS: &str = "PORTCULLIS_BLOCKED_METHODS";
pub(crate) const BLOCKED_PATHS: &str = "PORTCULLIS_BLOCKED_PATHS";
pub(crate) const ORIGIN_TIMEOUT_SECS: &str = "PORTCULLIS_ORIGIN_TIMEOUT_SECS";

/// The longest origin deadline (15 min, the platform's own limit on a request's wall time
/// being far beyond any origin worth waiting for).
const MAX_ORIGIN_TIMEOUT_SECS: u64 = 900;

/// The shortest revocation interval: below it the replica would poll the issuer faster than
/// one feed round trip.
const MIN_INTERVAL_MS: u64 = 100;
/// The longest revocation interval (one hour); beyond it the propagation bound is meaningless.
const MAX_INTERVAL_MS: u64 = 3_600_000;
/// The longest JWKS max-age (one day), so a removed key stops verifying within a day.
const MAX_JWKS_MAX_AGE_SECS: u64 = 86_400;

impl Config {
    /// Reads and validates every variable through `lookup` (unset variables give `None`).
    ///
    /// # Errors
    ///
    /// The first missing or invalid variable.
    pub(crate) fn parse(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| lookup(name).filter(|value| !value.trim().is_empty());
        let origin = base_url(get(ORIGIN_URL), ORIGIN_URL, false)?;
        let issuer_url = base_url(get(ISSUER_URL), ISSUER_URL, true)?;
        let expected_issuer = get(EXPECTED_ISSUER).unwrap_or_else(|| issuer_url.clone());
        let audience = get(AUDIENCE).unwrap_or_else(|| String::from("portcullis"));
        let leeway = number(get(LEEWAY_SECS), LEEWAY_SECS, 30, 0, MAX_LEEWAY)?;
        let validation = Validation::new(&expected_issuer, &audience)
            .with_leeway(leeway)
            .map_err(|_| invalid(LEEWAY_SECS, "must be at most 60"))?;
        let hs256_keys = get(HS256_KEYS).map_or(Ok(Vec::new()), |json| hs256_keys(&json))?;
        let jwks_url = jwks_url(get(JWKS_URL), &issuer_url)?;
        if hs256_keys.is_empty() && jwks_url.is_none() {
            return Err(invalid(
                HS256_KEYS,
                "no verification key: set it, or leave PORTCULLIS_JWKS_URL on",
            ));
        }
        let max_age = number(
            get(JWKS_MAX_AGE_SECS),
            JWKS_MAX_AGE_SECS,
            300,
            1,
            MAX_JWKS_MAX_AGE_SECS,
        )?;
        let routes = get(ROUTES)
            .ok_or_else(|| invalid(ROUTES, "is required"))
            .and_then(|json| Routes::parse(&json).map_err(|reason| invalid(ROUTES, reason)))?;
        let interval = number(
            get(REVOCATION_INTERVAL_MS),
            REVOCATION_INTERVAL_MS,
            1_000,
            MIN_INTERVAL_MS,
            MAX_INTERVAL_MS,
        )?;
        Ok(Self {
            origin,
            issuer_url,
            validation,
            hs256_keys,
            jwks_url,
            jwks_max_age_ms: max_age.saturating_mul(1_000),
            routes,
            revocation_interval_ms: interval,
            max_staleness_secs: number(
                get(MAX_STALENESS_SECS),
                MAX_STALENESS_SECS,
                30,
                1,
                u64::from(u32::MAX),
            )?,
            stale_mode: stale_mode(get(STALE_MODE))?,
            max_header_bytes: number(
                get(MAX_HEADER_BYTES),
                MAX_HEADER_BYTES,
                16_384,
                1,
                u64::from(u32::MAX),
            )?,
            max_body_bytes: number(
                get(MAX_BODY_BYTES),
                MAX_BODY_BYTES,
                1_048_576,
                0,
                u64::from(u32::MAX),
            )?,
            origin_timeout_secs: number(
                get(ORIGIN_TIMEOUT_SECS),
                ORIGIN_TIMEOUT_SECS,
                30,
                1,
                MAX_ORIGIN_TIMEOUT_SECS,
            )?,
            blocked_methods: blocked_methods(get(BLOCKED_METHODS))?,
            blocked_paths: blocked_paths(get(BLOCKED_PATHS))?,
        })
    }

    /// [`parse`](Self::parse) over name/value pairs, for tests; the last setting of a
    /// variable wins, so a test can override the defaults it starts from.
    #[cfg(test)]
    pub(crate) fn parse_pairs(pairs: &[(&str, &str)]) -> Result<Self, ConfigError> {
        Self::parse(|name| {
            pairs
                .iter()
                .rev()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    /// Whether a path matches a blocked pattern.
    pub(crate) fn is_blocked_path(&self, path: &NormalPath) -> bool {
        self.blocked_paths
            .iter()
            .any(|pattern| pattern.matches(path))
    }

    /// Whether the method is blocked (compared case-insensitively, so `trace` is `TRACE`).
    pub(crate) fn is_blocked_method(&self, method: &str) -> bool {
        self.blocked_methods
            .iter()
            .any(|blocked| blocked.eq_ignore_ascii_case(method))
    }
}

/// The replica Durable Object's settings: only what polling the feed needs, so a mistake in
/// the route rules does not stop revocations from replicating.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ReplicaConfig {
    pub(crate) issuer_url: String,
    pub(crate) revocation_interval_ms: u64,
}

impl ReplicaConfig {
    /// Reads the two variables the replica uses.
    ///
    /// # Errors
    ///
    /// A missing or invalid `PORTCULLIS_ISSUER_URL` or `PORTCULLIS_REVOCATION_INTERVAL_MS`.
    pub(crate) fn parse(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| lookup(name).filter(|value| !value.trim().is_empty());
        Ok(Self {
            issuer_url: base_url(get(ISSUER_URL), ISSUER_URL, true)?,
            revocation_interval_ms: number(
                get(REVOCATION_INTERVAL_MS),
                REVOCATION_INTERVAL_MS,
                1_000,
                MIN_INTERVAL_MS,
                MAX_INTERVAL_MS,
            )?,
        })
    }
}

fn invalid(variable: &'static str, reason: &'static str) -> ConfigError {
    ConfigError { variable, reason }
}

/// An `http(s)://host[:port]` URL without user info, query or fragment; with `allow_path`, a
/// base path is kept too. Returned without a trailing slash, ready for `{base}{path}`.
fn base_url(
    value: Option<String>,
    variable: &'static str,
    allow_path: bool,
) -> Result<String, ConfigError> {
    let value = value.ok_or_else(|| invalid(variable, "is required"))?;
    let value = value.trim();
    let url = url::Url::parse(value).map_err(|_| invalid(variable, "is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(
            variable,
            "must be an http:// or https:// URL with a host",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(variable, "must not contain user info"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(variable, "must not have a query or fragment"));
    }
    if !allow_path && url.path() != "/" {
        return Err(invalid(
            variable,
            "must not have a path (scheme://host[:port] only)",
        ));
    }
    let text = url.as_str();
    Ok(text.strip_suffix('/').unwrap_or(text).to_owned())
}

/// A whole number in `min..=max`, or `default` when unset.
fn number(
    value: Option<String>,
    variable: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(text) = value else {
        return Ok(default);
    };
    let text = text.trim();
    let parsed = (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse::<u64>().ok())
        .flatten();
    parsed.filter(|n| (min..=max).contains(n)).ok_or_else(|| {
        invalid(
            variable,
            "must be a whole number within its documented range",
        )
    })
}

/// The wire shape of one HS256 key in the secret.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Hs256KeyIn {
    kid: String,
    secret: String,
}

fn hs256_keys(json: &str) -> Result<Vec<Key>, ConfigError> {
    let entries: Vec<Hs256KeyIn> = serde_json::from_str(json).map_err(|_| {
        invalid(
            HS256_KEYS,
            r#"must be a JSON array of {"kid": "...", "secret": "<base64url>"}"#,
        )
    })?;
    let mut keys: Vec<Key> = Vec::with_capacity(entries.len());
    for entry in entries {
        let text = Zeroizing::new(entry.secret);
        let secret = URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('=').as_bytes())
            .map(Zeroizing::new)
            .map_err(|_| invalid(HS256_KEYS, "a secret is not base64url"))?;
        let key = Key::hs256(&entry.kid, &secret)
            .map_err(|_| invalid(HS256_KEYS, "a kid is invalid or a secret is under 32 bytes"))?;
        if keys.iter().any(|known| known.kid() == key.kid()) {
            return Err(invalid(HS256_KEYS, "two keys have the same kid"));
        }
        keys.push(key);
    }
    Ok(keys)
}

fn jwks_url(value: Option<String>, issuer_url: &str) -> Result<Option<String>, ConfigError> {
    match value.as_deref().map(str::trim) {
        Some("off") => Ok(None),
        None => Ok(Some(format!("{issuer_url}/.well-known/jwks.json"))),
        Some(url) => {
            let base = base_url(Some(url.to_owned()), JWKS_URL, true)?;
            Ok(Some(base))
        }
    }
}

fn stale_mode(value: Option<String>) -> Result<StaleMode, ConfigError> {
    match value.as_deref().map(str::trim) {
        None | Some("closed") => Ok(StaleMode::Closed),
        Some("open") => Ok(StaleMode::Open),
        Some(_) => Err(invalid(STALE_MODE, "must be `closed` or `open`")),
    }
}

fn blocked_methods(value: Option<String>) -> Result<Vec<String>, ConfigError> {
    let Some(list) = value else {
        return Ok(vec![String::from("TRACE"), String::from("CONNECT")]);
    };
    list.split(',')
        .map(str::trim)
        .filter(|method| !method.is_empty())
        .map(|method| {
            let upper = method.to_ascii_uppercase();
            if is_method(&upper) {
                Ok(upper)
            } else {
                Err(invalid(
                    BLOCKED_METHODS,
                    "must be comma-separated HTTP method names",
                ))
            }
        })
        .collect()
}

fn blocked_paths(value: Option<String>) -> Result<Vec<Pattern>, ConfigError> {
    let Some(json) = value else {
        return Ok(Vec::new());
    };
    let patterns: Vec<String> = serde_json::from_str(&json)
        .map_err(|_| invalid(BLOCKED_PATHS, "must be a JSON array of path patterns"))?;
    patterns
        .iter()
        .map(|pattern| Pattern::parse(pattern).map_err(|reason| invalid(BLOCKED_PATHS, reason)))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const SECRET: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        let mut vars: HashMap<String, String> = [
            (ORIGIN_URL, "http://127.0.0.1:9000"),
            (ISSUER_URL, "http://127.0.0.1:8080/"),
            (ROUTES, r#"[{"path": "/**", "access": "authenticated"}]"#),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (name, value) in pairs {
            vars.insert((*name).to_owned(), (*value).to_owned());
        }
        vars
    }

    fn parse(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars = vars(pairs);
        Config::parse(|name| vars.get(name).cloned())
    }

    fn error_variable(pairs: &[(&str, &str)]) -> &'static str {
        parse(pairs).unwrap_err().variable
    }

    #[test]
    fn parse_defaults_follow_the_contract_table() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.origin, "http://127.0.0.1:9000");
        assert_eq!(config.issuer_url, "http://127.0.0.1:8080");
        assert_eq!(config.validation.issuer(), "http://127.0.0.1:8080");
        assert_eq!(config.validation.audience(), "portcullis");
        assert_eq!(config.validation.leeway(), 30);
        assert!(config.hs256_keys.is_empty());
        assert_eq!(
            config.jwks_url.as_deref(),
            Some("http://127.0.0.1:8080/.well-known/jwks.json")
        );
        assert_eq!(config.jwks_max_age_ms, 300_000);
        assert_eq!(config.revocation_interval_ms, 1_000);
        assert_eq!(config.max_staleness_secs, 30);
        assert_eq!(config.stale_mode, StaleMode::Closed);
        assert_eq!(config.max_header_bytes, 16_384);
        assert_eq!(config.max_body_bytes, 1_048_576);
        assert_eq!(config.origin_timeout_secs, 30);
        assert_eq!(config.blocked_methods, ["TRACE", "CONNECT"]);
        assert!(config.blocked_paths.is_empty());
    }

    #[test]
    fn parse_explicit_values_are_used() {
        let keys = format!(r#"[{{"kid": "k1", "secret": "{SECRET}"}}]"#);
        let config = parse(&[
            (EXPECTED_ISSUER, "https://auth.example"),
            (AUDIENCE, "api"),
            (LEEWAY_SECS, "0"),
            (HS256_KEYS, &keys),
            (JWKS_URL, "off"),
            (STALE_MODE, "open"),
            (BLOCKED_METHODS, "trace, PATCH"),
            (BLOCKED_PATHS, r#"["/internal/**"]"#),
            (REVOCATION_INTERVAL_MS, "250"),
        ])
        .unwrap();
        assert_eq!(config.validation.issuer(), "https://auth.example");
        assert_eq!(config.validation.audience(), "api");
        assert_eq!(config.validation.leeway(), 0);
        assert_eq!(config.hs256_keys.len(), 1);
        assert_eq!(config.jwks_url, None);
        assert_eq!(config.stale_mode, StaleMode::Open);
        assert_eq!(config.blocked_methods, ["TRACE", "PATCH"]);
        assert!(config.is_blocked_method("patch"));
        assert!(config.is_blocked_path(&NormalPath::parse("/internal/x").unwrap()));
        assert_eq!(config.revocation_interval_ms, 250);
    }

    #[test]
    fn parse_missing_required_variables_are_named() {
        for name in [ORIGIN_URL, ISSUER_URL, ROUTES] {
            let vars = vars(&[]);
            let error =
                Config::parse(|n| (n != name).then(|| vars.get(n).cloned()).flatten()).unwrap_err();
            assert_eq!(error.variable, name);
        }
        assert_eq!(error_variable(&[(ROUTES, "  ")]), ROUTES);
    }

    #[test]
    fn parse_invalid_documents_are_misconfigured_naming_the_variable() {
        let cases: [(&str, &str); 26] = [
            (ROUTES, "not json"),
            (ROUTES, r#"[{"path": "/a", "access": "public", "x": 1}]"#),
            (ROUTES, r#"[{"path": "/a", "permission": "bad"}]"#),
            (ROUTES, r#"[{"path": "/a/**/b", "access": "public"}]"#),
            (BLOCKED_PATHS, r#"["no-slash"]"#),
            (BLOCKED_PATHS, r#"{"path": "/a"}"#),
            (BLOCKED_METHODS, "GET, G E T"),
            (HS256_KEYS, "[{}]"),
            (HS256_KEYS, r#"[{"kid": "k1", "secret": "c2hvcnQ"}]"#),
            (HS256_KEYS, r#"[{"kid": "k1", "secret": "!!"}]"#),
            (
                HS256_KEYS,
                r#"[{"kid": "k1", "secret": "x", "alg": "HS256"}]"#,
            ),
            (LEEWAY_SECS, "61"),
            (LEEWAY_SECS, "-1"),
            (LEEWAY_SECS, "+5"),
            (JWKS_MAX_AGE_SECS, "0"),
            (JWKS_URL, "ftp://keys.example"),
            (REVOCATION_INTERVAL_MS, "10"),
            (MAX_STALENESS_SECS, "0"),
            (STALE_MODE, "ajar"),
            (MAX_HEADER_BYTES, "16k"),
            (MAX_BODY_BYTES, "1e6"),
            (ORIGIN_TIMEOUT_SECS, "0"),
            (ORIGIN_TIMEOUT_SECS, "901"),
            (ORIGIN_URL, "http://127.0.0.1:9000/app"),
            (ORIGIN_URL, "http://user:pw@127.0.0.1:9000"),
            (ISSUER_URL, "http://127.0.0.1:8080/?x=1"),
        ];
        for (name, value) in cases {
            let error = parse(&[(name, value)]).unwrap_err();
            assert_eq!(error.variable, name, "{name}={value}");
            assert!(
                !error.to_string().contains(value),
                "{error} echoes the value"
            );
        }
    }

    #[test]
    fn parse_duplicate_hs256_kids_and_no_keys_are_refused() {
        let keys = format!(
            r#"[{{"kid": "k1", "secret": "{SECRET}"}}, {{"kid": "k1", "secret": "{SECRET}"}}]"#
        );
        assert_eq!(error_variable(&[(HS256_KEYS, &keys)]), HS256_KEYS);
        assert_eq!(error_variable(&[(JWKS_URL, "off")]), HS256_KEYS);
    }

    #[test]
    fn parse_errors_never_contain_secret_material() {
        let keys = r#"[{"kid": "k1", "secret": "c2VjcmV0LXRoYXQtaXMtdG9vLXNob3J0"}]"#;
        let error = parse(&[(HS256_KEYS, keys)]).unwrap_err();
        assert!(!error.to_string().contains("c2VjcmV0"));
        let debug = format!("{:?}", parse(&[]).unwrap());
        assert!(!debug.contains(SECRET));
    }

    #[test]
    fn replica_parse_needs_only_issuer_and_interval() {
        let config = ReplicaConfig::parse(|name| match name {
            ISSUER_URL => Some("https://auth.example/base/".to_owned()),
            _ => None,
        })
        .unwrap();
        assert_eq!(config.issuer_url, "https://auth.example/base");
        assert_eq!(config.revocation_interval_ms, 1_000);
        assert_eq!(
            ReplicaConfig::parse(|_| None).unwrap_err().variable,
            ISSUER_URL
        );
    }
}
