//! The verifier: what a token must satisfy, and the order in which it is checked.
//!
//! Order matters for security, not only for error messages: the header is read only far
//! enough to pick a key, the signature is checked next, and nothing in the payload is looked
//! at until the signature has verified.

use alloc::string::String;
use alloc::vec::Vec;
use alloc::{format, vec};

use base64::Engine as _;

use crate::error::{ConfigError, TokenError};
use crate::jws::{self, BASE64URL, CompactJws};
use crate::jwt::claims::Claims;
use crate::jwt::header::Header;
use crate::key::{Key, KeySet};
use crate::revocation::RevocationSet;

/// The default clock leeway, in seconds.
pub const DEFAULT_LEEWAY: u64 = 30;

/// The largest leeway [`Validation::with_leeway`] accepts, in seconds. Revocation entries are
/// kept this long past their `expires_at` (see
/// [`RevocationSet::prune`](crate::revocation::RevocationSet::prune)).
pub const MAX_LEEWAY: u64 = 60;

/// The default expected header `typ`: RFC 9068 access tokens.
pub const DEFAULT_TYP: &str = "at+jwt";

/// The optional media-type prefix RFC 7515 section 4.1.9 lets `typ` omit.
const APPLICATION: &str = "application/";

/// What a token must satisfy beyond a good signature.
///
/// ```
/// use portcullis_core::Validation;
/// let validation = Validation::new("https://auth.example", "api")
///     .with_leeway(10)?
///     .with_typ(Some("at+jwt"));
/// assert_eq!(validation.leeway(), 10);
/// # Ok::<(), portcullis_core::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validation {
    issuer: String,
    audience: String,
    leeway: u64,
    typ: Option<String>,
}

impl Validation {
    /// Requires `iss` to equal `issuer` and `aud` to be or contain `audience`, both exactly.
    ///
    /// Defaults: leeway [`DEFAULT_LEEWAY`] (30 s) and `typ` [`DEFAULT_TYP`] (`at+jwt`).
    /// An empty issuer or audience matches no token, so a missing setting fails closed.
    #[must_use]
    pub fn new(issuer: &str, audience: &str) -> Self {
        Self {
            issuer: String::from(issuer),
            audience: String::from(audience),
            leeway: DEFAULT_LEEWAY,
            typ: Some(String::from(DEFAULT_TYP)),
        }
    }

    /// Sets how many seconds of clock skew to tolerate on `exp`, `nbf` and `iat`.
    ///
    /// A token is accepted while `now < exp + leeway`, once `now + leeway >= nbf`, and while
    /// `iat <= now + leeway`. Default [`DEFAULT_LEEWAY`] (30 s). Larger values widen the
    /// window in which a stolen expired token still works.
    ///
    /// # Errors
    ///
    /// [`ConfigError::LeewayTooLarge`] above [`MAX_LEEWAY`] (60 s).
    pub fn with_leeway(mut self, secs: u64) -> Result<Self, ConfigError> {
        if secs > MAX_LEEWAY {
            return Err(ConfigError::LeewayTooLarge);
        }
        self.leeway = secs;
        Ok(self)
    }

    /// Sets the header `typ` a token must carry, compared case-insensitively with an optional
    /// `application/` prefix; `None` accepts any `typ` or none.
    ///
    /// Default `Some("at+jwt")`. Checking `typ` stops an ID token or another JWT signed with
    /// the same key from being replayed as an access token, so `None` weakens validation.
    #[must_use]
    pub fn with_typ(mut self, typ: Option<&str>) -> Self {
        self.typ = typ.map(String::from);
        self
    }

    /// The required issuer.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The required audience.
    #[must_use]
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The leeway in seconds.
    #[must_use]
    pub fn leeway(&self) -> u64 {
        self.leeway
    }

    /// The required `typ`, if any.
    #[must_use]
    pub fn typ(&self) -> Option<&str> {
        self.typ.as_deref()
    }

    fn check_typ(&self, actual: Option<&str>) -> Result<(), TokenError> {
        let Some(expected) = self.typ.as_deref() else {
            return Ok(());
        };
        let actual = actual.ok_or(TokenError::InvalidType)?;
        if strip_application(actual).eq_ignore_ascii_case(strip_application(expected)) {
            Ok(())
        } else {
            Err(TokenError::InvalidType)
        }
    }

    fn check_claims(&self, claims: &Claims, now: u64) -> Result<(), TokenError> {
        if now >= claims.exp().saturating_add(self.leeway) {
            return Err(TokenError::Expired);
        }
        let horizon = now.saturating_add(self.leeway);
        if claims.nbf().is_some_and(|nbf| nbf > horizon)
            || claims.iat().is_some_and(|iat| iat > horizon)
        {
            return Err(TokenError::NotYetValid);
        }
        if self.issuer.is_empty() || claims.iss() != self.issuer {
            return Err(TokenError::InvalidIssuer);
        }
        if self.audience.is_empty() || !claims.has_audience(&self.audience) {
            return Err(TokenError::InvalidAudience);
        }
        Ok(())
    }
}

/// The key a header names, if the header may use it: `alg` implemented and equal to the
/// algorithm of the key named by `kid`.
fn select_key<'k>(keys: &'k KeySet, header: &Header<'_>) -> Result<&'k Key, TokenError> {
    let alg = jws::algorithm(header)?;
    let kid = header.kid.as_deref().ok_or(TokenError::UnknownKey)?;
    let key = keys.get(kid).ok_or(TokenError::UnknownKey)?;
    if key.algorithm() != alg {
        return Err(TokenError::AlgorithmMismatch);
    }
    Ok(key)
}

/// Precomputes the header segments an issuer is expected to send, so `verify` can skip
/// decoding and parsing a header byte-identical to one of them.
///
/// An issuer sends the same header for every token of a key, so this is the common case.
/// It is a pure memo, not a second set of rules: each candidate is admitted only after the
/// ordinary path (decode, [`Header::parse`], [`select_key`], `typ`) accepts it and picks that
/// same key, and identical bytes always get the identical verdict. Any other header, such as
/// one with members in another order, simply takes the ordinary path.
fn known_headers(keys: &KeySet, validation: &Validation) -> Vec<(String, usize)> {
    let mut known = Vec::new();
    for key in keys.iter() {
        let (alg, kid) = (key.algorithm().as_str(), key.kid());
        let candidates = match validation.typ() {
            Some(typ) => vec![
                // Member order of `jsonwebtoken` (the issuer's minting library), then ours.
                format!(r#"{{"typ":"{typ}","alg":"{alg}","kid":"{kid}"}}"#),
                format!(r#"{{"alg":"{alg}","kid":"{kid}","typ":"{typ}"}}"#),
                format!(r#"{{"alg":"{alg}","typ":"{typ}","kid":"{kid}"}}"#),
            ],
            None => vec![format!(r#"{{"alg":"{alg}","kid":"{kid}"}}"#)],
        };
        for json in candidates {
            let encoded = BASE64URL.encode(json);
            if let Some(index) = admitted(keys, validation, &encoded) {
                known.push((encoded, index));
            }
        }
    }
    known.sort_unstable();
    known.dedup();
    known
}

/// The position of the key the ordinary header path picks for `encoded`, if it accepts it.
fn admitted(keys: &KeySet, validation: &Validation, encoded: &str) -> Option<usize> {
    // A `kid` or `typ` that needed escaping would have produced invalid JSON: refused here.
    let json = BASE64URL.decode(encoded).ok()?;
    let header = Header::parse(&json).ok()?;
    let key = select_key(keys, &header).ok()?;
    validation.check_typ(header.typ.as_deref()).ok()?;
    keys.position(key.kid())
}

fn strip_application(typ: &str) -> &str {
    match (typ.get(..APPLICATION.len()), typ.get(APPLICATION.len()..)) {
        (Some(prefix), Some(rest)) if prefix.eq_ignore_ascii_case(APPLICATION) => rest,
        _ => typ,
    }
}

/// Verifies access tokens against a key set and a [`Validation`].
///
/// ```
/// use portcullis_core::{Key, KeySet, TokenError, Validation, Verifier};
///
/// let mut keys = KeySet::new();
/// keys.insert(Key::hs256("k1", &[7u8; 32])?)?;
/// let verifier = Verifier::new(keys, Validation::new("https://auth.example", "api"));
/// assert_eq!(verifier.verify("not-a-token", 1_700_000_000), Err(TokenError::Malformed));
/// # Ok::<(), Box<dyn core::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Verifier {
    keys: KeySet,
    validation: Validation,
    /// Encoded header segments already proven to pass every header rule, sorted, each with
    /// the position of the key it selects. See [`known_headers`].
    known_headers: Vec<(String, usize)>,
}

impl Verifier {
    /// A verifier trusting exactly `keys` and enforcing `validation`.
    #[must_use]
    pub fn new(keys: KeySet, validation: Validation) -> Self {
        let known_headers = known_headers(&keys, &validation);
        Self {
            keys,
            validation,
            known_headers,
        }
    }

    /// The trusted keys.
    #[must_use]
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// The validation policy.
    #[must_use]
    pub fn validation(&self) -> &Validation {
        &self.validation
    }

    /// Verifies a compact JWT at time `now` (unix seconds) and returns its claims.
    ///
    /// Checks, in order: size and structure; header (`alg`, `kid`, no `crit`, `jku`, `jwk`,
    /// `x5u`, `x5c`); the key named by `kid` and that `alg` is its algorithm; the signature;
    /// `typ`; then the claims: types, `exp`, `nbf`, `iat`, `iss`, `aud`.
    ///
    /// # Errors
    ///
    /// The first failed check as a [`TokenError`]: `TooLarge` or `Malformed`,
    /// `UnsupportedAlgorithm`, `UnknownKey` (also for a missing `kid`), `AlgorithmMismatch`,
    /// `BadSignature`, `InvalidType`, `InvalidClaim`/`MissingClaim`, `Expired`,
    /// `NotYetValid`, `InvalidIssuer`, `InvalidAudience`.
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        let jws = CompactJws::split(token)?;
        // The payload is decoded (not parsed) before the signature check: the decoder is what
        // refuses a fourth segment, and the decoded bytes become the claims' own text right
        // after. Nothing in it is interpreted until the signature has verified.
        let payload = jws.decode_payload()?;
        match self.known_key(jws.header_b64()) {
            Some(key) => jws.verify_signature(key)?,
            None => jws.with_header(|header| {
                let key = select_key(&self.keys, header)?;
                jws.verify_signature(key)?;
                self.validation.check_typ(header.typ.as_deref())
            })?,
        }
        let claims = Claims::from_payload(payload)?;
        self.validation.check_claims(&claims, now)?;
        Ok(claims)
    }

    /// The key for a header segment byte-identical to one proven at construction.
    fn known_key(&self, header_b64: &str) -> Option<&Key> {
        let index = self
            .known_headers
            .binary_search_by(|(known, _)| known.as_str().cmp(header_b64))
            .ok()?;
        let (_, key) = self.known_headers.get(index)?;
        self.keys.at(*key)
    }

    /// [`verify`](Self::verify), then refuses a token that `revoked` revokes.
    ///
    /// # Errors
    ///
    /// As [`verify`](Self::verify), and [`TokenError::Revoked`].
    pub fn verify_unrevoked(
        &self,
        token: &str,
        now: u64,
        revoked: &RevocationSet,
    ) -> Result<Claims, TokenError> {
        let claims = self.verify(token, now)?;
        revoked.check(&claims)?;
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use serde_json::{Value, json};

    use crate::key::Key;

    const NOW: u64 = 1_000_000;

    /// Claims of a token for `iss`/`api` expiring at `exp`, with `changes` applied
    /// (`null` removes a claim).
    fn claims_with(exp: u64, changes: Value) -> Claims {
        let mut claims = json!({"iss": "iss", "sub": "usr_1", "aud": "api", "exp": exp});
        for (name, value) in changes.as_object().unwrap() {
            claims[name] = value.clone();
        }
        claims
            .as_object_mut()
            .unwrap()
            .retain(|_, value| !value.is_null());
        serde_json::from_value(claims).unwrap()
    }

    fn claims(exp: u64) -> Claims {
        claims_with(exp, json!({}))
    }

    fn validation() -> Validation {
        Validation::new("iss", "api")
    }

    const SECRET: [u8; 32] = [3u8; 32];

    fn sign(header: &str, payload: &str) -> String {
        use hmac::Mac as _;
        let input = format!("{}.{}", BASE64URL.encode(header), BASE64URL.encode(payload));
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&SECRET).unwrap();
        mac.update(input.as_bytes());
        let signature = BASE64URL.encode(mac.finalize().into_bytes());
        format!("{input}.{signature}")
    }

    fn verifiers(validation: Validation) -> (Verifier, Verifier) {
        let mut keys = KeySet::new();
        keys.insert(Key::hs256("k1", &SECRET).unwrap()).unwrap();
        keys.insert(Key::hs256("k\"2", &SECRET).unwrap()).unwrap();
        keys.insert(
            Key::ed25519(
                "e1",
                &[
                    0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9,
                    0x64, 0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02,
                    0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
                ],
            )
            .unwrap(),
        )
        .unwrap();
        let fast = Verifier::new(keys.clone(), validation.clone());
        let slow = Verifier {
            keys,
            validation,
            known_headers: Vec::new(),
        };
        (fast, slow)
    }

    #[test]
    fn known_headers_cover_each_key_in_issuer_order() {
        let (fast, _) = verifiers(validation());
        let issuer_order = BASE64URL.encode(br#"{"typ":"at+jwt","alg":"HS256","kid":"k1"}"#);
        assert!(
            fast.known_key(&issuer_order)
                .is_some_and(|key| key.kid() == "k1")
        );
        let ed = BASE64URL.encode(br#"{"alg":"EdDSA","kid":"e1","typ":"at+jwt"}"#);
        assert!(fast.known_key(&ed).is_some_and(|key| key.kid() == "e1"));
        // A `kid` that would need escaping is never precomputed; it takes the ordinary path.
        assert!(
            fast.known_headers
                .iter()
                .all(|(_, index)| fast.keys.at(*index).is_some())
        );
        assert_eq!(fast.known_headers.len(), 6);
        let (untyped, _) = verifiers(validation().with_typ(None));
        assert_eq!(untyped.known_headers.len(), 2);
    }

    #[test]
    fn known_headers_verdicts_equal_ordinary_path() {
        let payload = r#"{"iss":"iss","sub":"usr_1","aud":"api","exp":2000000}"#;
        let headers = [
            r#"{"typ":"at+jwt","alg":"HS256","kid":"k1"}"#,
            r#"{"alg":"HS256","kid":"k1","typ":"at+jwt"}"#,
            r#"{"kid":"k1","alg":"HS256","typ":"at+jwt"}"#,
            r#"{"alg":"HS256","kid":"k\"2","typ":"at+jwt"}"#,
            r#"{"alg":"HS256","kid":"k1","typ":"JWT"}"#,
            r#"{"alg":"HS256","kid":"k1"}"#,
            r#"{"alg":"EdDSA","kid":"k1","typ":"at+jwt"}"#,
            r#"{"alg":"HS256","kid":"e1","typ":"at+jwt"}"#,
            r#"{"alg":"EdDSA","kid":"e1","typ":"at+jwt"}"#,
            r#"{"alg":"none","kid":"k1","typ":"at+jwt"}"#,
            r#"{"alg":"HS256","kid":"k9","typ":"at+jwt"}"#,
            r#"{"alg":"HS256","kid":"k1","typ":"at+jwt","crit":[]}"#,
        ];
        for validation in [validation(), validation().with_typ(None)] {
            let (fast, slow) = verifiers(validation);
            for header in headers {
                let token = sign(header, payload);
                assert_eq!(
                    fast.verify(&token, NOW),
                    slow.verify(&token, NOW),
                    "{header}"
                );
                let (input, _) = token.rsplit_once('.').unwrap();
                let forged = format!("{input}.{}", BASE64URL.encode([0u8; 32]));
                assert_eq!(
                    fast.verify(&forged, NOW),
                    slow.verify(&forged, NOW),
                    "{header}"
                );
            }
        }
        let (fast, _) = verifiers(validation());
        let token = sign(headers[0], payload);
        assert!(fast.verify(&token, NOW).is_ok());
        let token = sign(headers[3], payload);
        assert!(
            fast.verify(&token, NOW).is_ok(),
            "escaped kid verifies on the ordinary path"
        );
    }

    #[test]
    fn with_leeway_above_max_is_refused() {
        assert_eq!(
            validation().with_leeway(61),
            Err(ConfigError::LeewayTooLarge)
        );
        assert_eq!(validation().with_leeway(60).unwrap().leeway(), 60);
        assert_eq!(validation().leeway(), DEFAULT_LEEWAY);
        assert_eq!(validation().typ(), Some("at+jwt"));
    }

    #[test]
    fn check_claims_exp_leeway_edges() {
        let v = validation();
        assert_eq!(v.check_claims(&claims(NOW - 29), NOW), Ok(()));
        assert_eq!(
            v.check_claims(&claims(NOW - 30), NOW),
            Err(TokenError::Expired)
        );
        let strict = validation().with_leeway(0).unwrap();
        assert_eq!(strict.check_claims(&claims(NOW + 1), NOW), Ok(()));
        assert_eq!(
            strict.check_claims(&claims(NOW), NOW),
            Err(TokenError::Expired)
        );
        assert_eq!(
            v.check_claims(&claims(crate::jwt::claims::MAX_TIME), u64::MAX),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn check_claims_nbf_and_iat_leeway_edges() {
        let v = validation();
        let c = claims_with(NOW + 100, json!({"nbf": NOW + 30}));
        assert_eq!(v.check_claims(&c, NOW), Ok(()));
        let c = claims_with(NOW + 100, json!({"nbf": NOW + 31}));
        assert_eq!(v.check_claims(&c, NOW), Err(TokenError::NotYetValid));
        let c = claims_with(NOW + 100, json!({"iat": NOW + 30}));
        assert_eq!(v.check_claims(&c, NOW), Ok(()));
        let c = claims_with(NOW + 100, json!({"iat": NOW + 31}));
        assert_eq!(v.check_claims(&c, NOW), Err(TokenError::NotYetValid));
    }

    #[test]
    fn check_claims_issuer_and_audience_exact() {
        let c = claims_with(NOW + 100, json!({"iss": "ISS"}));
        assert_eq!(
            validation().check_claims(&c, NOW),
            Err(TokenError::InvalidIssuer)
        );
        let c = claims_with(NOW + 100, json!({"aud": ["other", "api"]}));
        assert_eq!(validation().check_claims(&c, NOW), Ok(()));
        let c = claims_with(NOW + 100, json!({"aud": []}));
        assert_eq!(
            validation().check_claims(&c, NOW),
            Err(TokenError::InvalidAudience)
        );
        let c = claims_with(NOW + 100, json!({"aud": "api "}));
        assert_eq!(
            validation().check_claims(&c, NOW),
            Err(TokenError::InvalidAudience)
        );
    }

    #[test]
    fn check_claims_empty_expectations_fail_closed() {
        let c = claims_with(NOW + 100, json!({"iss": "", "aud": ""}));
        assert_eq!(
            Validation::new("", "api").check_claims(&c, NOW),
            Err(TokenError::InvalidIssuer)
        );
        let c = claims_with(NOW + 100, json!({"aud": ""}));
        assert_eq!(
            Validation::new("iss", "").check_claims(&c, NOW),
            Err(TokenError::InvalidAudience)
        );
    }

    #[test]
    fn check_typ_prefix_and_case_are_ignored() {
        let v = validation();
        for ok in [
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "Application/At+Jwt",
        ] {
            assert_eq!(v.check_typ(Some(ok)), Ok(()), "{ok}");
        }
        for bad in [
            "JWT",
            "jwt",
            "application/jwt",
            "at+jwt ",
            "application/",
            "",
        ] {
            assert_eq!(
                v.check_typ(Some(bad)),
                Err(TokenError::InvalidType),
                "{bad}"
            );
        }
        assert_eq!(v.check_typ(None), Err(TokenError::InvalidType));
        let any = validation().with_typ(None);
        assert_eq!(any.check_typ(None), Ok(()));
        assert_eq!(any.check_typ(Some("JWT")), Ok(()));
        let prefixed = validation().with_typ(Some("application/at+jwt"));
        assert_eq!(prefixed.check_typ(Some("at+jwt")), Ok(()));
    }
}
