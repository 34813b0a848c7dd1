//! Error types, one small enum per concern.
//!
//! Every error here is `Copy`, never allocates and has a lowercase `Display`, so it can cross
//! the WASM boundary or be logged without touching the heap. A failed signature or MAC check is
//! deliberately a single opaque variant: telling a caller *why* a signature failed would only
//! help an attacker probe the verifier.

use core::fmt;

/// A registered claim, named by [`TokenError::MissingClaim`] and [`TokenError::InvalidClaim`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Claim {
    /// `iss`, the issuer.
    Iss,
    /// `sub`, the subject.
    Sub,
    /// `aud`, the audience (a string or an array of strings).
    Aud,
    /// `exp`, the expiry time in unix seconds.
    Exp,
    /// `nbf`, the time before which the token must not be accepted.
    Nbf,
    /// `iat`, the time the token was issued.
    Iat,
    /// `jti`, the unique token identifier.
    Jti,
    /// `tid`, the tenant identifier.
    Tid,
    /// `sid`, the session identifier.
    Sid,
    /// `roles`, an array of role names.
    Roles,
    /// `perms`, an array of permission strings.
    Perms,
    /// `amr`, an array of authentication method references.
    Amr,
}

impl Claim {
    /// The claim's JSON member name, e.g. `"exp"`.
    ///
    /// ```
    /// assert_eq!(portcullis_core::Claim::Exp.as_str(), "exp");
    /// ```
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Iss => "iss",
            Self::Sub => "sub",
            Self::Aud => "aud",
            Self::Exp => "exp",
            Self::Nbf => "nbf",
            Self::Iat => "iat",
            Self::Jti => "jti",
            Self::Tid => "tid",
            Self::Sid => "sid",
            Self::Roles => "roles",
            Self::Perms => "perms",
            Self::Amr => "amr",
        }
    }
}

impl fmt::Display for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a token was refused.
///
/// The variants are checked in a fixed order: structure, header, key, signature, type, then
/// claims. Claims are only looked at once the signature is known to be good, so the claim
/// variants never describe unauthenticated data. Use [`TokenError::code`] for the stable wire
/// code shared by every Portcullis component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenError {
    /// Not three canonical base64url segments, header or payload not a JSON object, a
    /// duplicate JSON member, a forbidden header (`crit`, `jku`, `jwk`, `x5u`, `x5c`, `b64`)
    /// or a header member of the wrong type.
    Malformed,
    /// The token is longer than [`MAX_TOKEN_LEN`](crate::jws::MAX_TOKEN_LEN) bytes.
    TooLarge,
    /// The header `alg` is not one this crate implements (`none`, in any spelling, included).
    UnsupportedAlgorithm,
    /// The header has no `kid`, or no configured key has that `kid`.
    UnknownKey,
    /// The header `alg` differs from the algorithm of the key chosen by `kid`.
    AlgorithmMismatch,
    /// The signature or MAC does not verify. Deliberately carries no detail.
    BadSignature,
    /// The header `typ` is absent or differs from the expected type.
    InvalidType,
    /// A required claim is absent.
    MissingClaim(Claim),
    /// A claim is present but has the wrong JSON type or an impossible value.
    InvalidClaim(Claim),
    /// The current time is at or past `exp` plus the leeway.
    Expired,
    /// The current time is before `nbf` (or `iat`) minus the leeway.
    NotYetValid,
    /// `iss` differs from the expected issuer.
    InvalidIssuer,
    /// `aud` does not contain the expected audience.
    InvalidAudience,
    /// The token matches an entry of the revocation set.
    Revoked,
}

impl TokenError {
    /// The stable machine code shared by core, issuer, edge and SDK (design note 0001).
    ///
    /// The codes are public API: they never change meaning and a retired code is never reused.
    ///
    /// ```
    /// use portcullis_core::TokenError;
    /// assert_eq!(TokenError::BadSignature.code(), "token_signature_invalid");
    /// assert_eq!(TokenError::TooLarge.code(), "token_malformed");
    /// ```
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::Malformed | Self::TooLarge => "token_malformed",
            Self::UnsupportedAlgorithm => "token_algorithm_unsupported",
            Self::UnknownKey => "token_key_unknown",
            Self::AlgorithmMismatch => "token_algorithm_mismatch",
            Self::BadSignature => "token_signature_invalid",
            Self::InvalidType => "token_type_invalid",
            Self::MissingClaim(_) | Self::InvalidClaim(_) => "token_claim_invalid",
            Self::Expired => "token_expired",
            Self::NotYetValid => "token_not_yet_valid",
            Self::InvalidIssuer => "token_issuer_invalid",
            Self::InvalidAudience => "token_audience_invalid",
            Self::Revoked => "token_revoked",
        }
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => f.write_str("malformed token"),
            Self::TooLarge => f.write_str("token too large"),
            Self::UnsupportedAlgorithm => f.write_str("unsupported token algorithm"),
            Self::UnknownKey => f.write_str("unknown token key"),
            Self::AlgorithmMismatch => f.write_str("token algorithm does not match its key"),
            Self::BadSignature => f.write_str("invalid token signature"),
            Self::InvalidType => f.write_str("invalid token type"),
            Self::MissingClaim(claim) => write!(f, "missing claim `{claim}`"),
            Self::InvalidClaim(claim) => write!(f, "invalid claim `{claim}`"),
            Self::Expired => f.write_str("token expired"),
            Self::NotYetValid => f.write_str("token not yet valid"),
            Self::InvalidIssuer => f.write_str("invalid token issuer"),
            Self::InvalidAudience => f.write_str("invalid token audience"),
            Self::Revoked => f.write_str("token revoked"),
        }
    }
}

impl core::error::Error for TokenError {}

/// Why a key or key set was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyError {
    /// The `kid` is empty, longer than [`MAX_KID_LEN`](crate::MAX_KID_LEN) bytes or contains
    /// control characters.
    InvalidKid,
    /// An HS256 secret is shorter than 32 bytes (RFC 7518 section 3.2).
    SecretTooShort,
    /// An Ed25519 public key is not 32 bytes, not a valid curve point, or of small order.
    InvalidPublicKey,
    /// A key with the same `kid` is already in the set.
    DuplicateKid,
    /// The JWKS document is not valid JSON of the expected shape.
    MalformedJwks,
    /// A JWK has a `kty`, `crv`, `alg` or `use` this crate does not accept (`oct` included:
    /// shared secrets are never distributed in a JWKS).
    UnsupportedKey,
    /// A JWK carries private key material (`d`), which a public key set must never contain.
    PrivateKeyMaterial,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidKid => "invalid key id",
            Self::SecretTooShort => "hmac secret shorter than 32 bytes",
            Self::InvalidPublicKey => "invalid ed25519 public key",
            Self::DuplicateKid => "duplicate key id",
            Self::MalformedJwks => "malformed jwks",
            Self::UnsupportedKey => "unsupported jwk",
            Self::PrivateKeyMaterial => "jwk contains private key material",
        })
    }
}

impl core::error::Error for KeyError {}

/// Why a [`Validation`](crate::Validation) setting was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigError {
    /// The leeway exceeds [`MAX_LEEWAY`](crate::MAX_LEEWAY) seconds.
    LeewayTooLarge,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::LeewayTooLarge => "leeway too large",
        })
    }
}

impl core::error::Error for ConfigError {}

/// Why a permission string was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PolicyError {
    /// Not `*` and not `resource:action` with segments of `*` or `[a-z0-9_.-]+`.
    MalformedPermission,
    /// A role name is empty, longer than [`MAX_ROLE_LEN`](crate::rbac::MAX_ROLE_LEN) bytes or
    /// contains control characters.
    MalformedRole,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MalformedPermission => "malformed permission",
            Self::MalformedRole => "malformed role name",
        })
    }
}

impl core::error::Error for PolicyError {}

#[cfg(test)]
mod tests {
    use alloc::string::ToString;

    use super::*;

    #[test]
    fn code_every_variant_matches_design_table() {
        let table = [
            (TokenError::Malformed, "token_malformed"),
            (
                TokenError::UnsupportedAlgorithm,
                "token_algorithm_unsupported",
            ),
            (TokenError::UnknownKey, "token_key_unknown"),
            (TokenError::AlgorithmMismatch, "token_algorithm_mismatch"),
            (TokenError::BadSignature, "token_signature_invalid"),
            (TokenError::InvalidType, "token_type_invalid"),
            (TokenError::MissingClaim(Claim::Exp), "token_claim_invalid"),
            (TokenError::InvalidClaim(Claim::Aud), "token_claim_invalid"),
            (TokenError::Expired, "token_expired"),
            (TokenError::NotYetValid, "token_not_yet_valid"),
            (TokenError::InvalidIssuer, "token_issuer_invalid"),
            (TokenError::InvalidAudience, "token_audience_invalid"),
            (TokenError::Revoked, "token_revoked"),
            (TokenError::TooLarge, "token_malformed"),
        ];
        for (error, code) in table {
            assert_eq!(error.code(), code, "{error:?}");
        }
    }

    #[test]
    fn display_every_variant_is_lowercase() {
        let errors = [
            TokenError::Malformed,
            TokenError::MissingClaim(Claim::Exp),
            TokenError::InvalidClaim(Claim::Iat),
            TokenError::AlgorithmMismatch,
        ];
        for error in errors {
            let text = error.to_string();
            assert_eq!(text, text.to_lowercase());
        }
        assert_eq!(
            TokenError::InvalidClaim(Claim::Exp).to_string(),
            "invalid claim `exp`"
        );
        assert_eq!(
            KeyError::SecretTooShort.to_string(),
            "hmac secret shorter than 32 bytes"
        );
    }
}
