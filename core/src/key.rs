//! Verification keys and key sets.
//!
//! A [`Key`] owns its algorithm. The token header never chooses how a signature is checked: it
//! only names a key by `kid`, and its `alg` must then agree with that key. This closes the
//! classic algorithm-confusion attacks (an Ed25519 public key used as an HMAC secret, or
//! `alg: none`) by construction rather than by a check someone could forget.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use base64::Engine as _;
use ed25519_dalek::{Signature, VerifyingKey};
use hmac::{Hmac, Mac as _};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

use crate::error::{KeyError, TokenError};
use crate::jws::BASE64URL;

/// The longest accepted `kid`, in bytes.
pub const MAX_KID_LEN: usize = 256;

/// The shortest accepted HS256 secret, in bytes (RFC 7518 section 3.2: at least the hash size).
pub const MIN_HS256_SECRET_LEN: usize = 32;

/// A signature algorithm this crate verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// HMAC with SHA-256 (RFC 7518 section 3.2).
    Hs256,
    /// Ed25519 signatures (RFC 8037), checked with strict verification.
    EdDsa,
}

impl Algorithm {
    /// The JOSE name of the algorithm, exactly as it must appear in a header `alg`.
    ///
    /// ```
    /// use portcullis_core::Algorithm;
    /// assert_eq!(Algorithm::Hs256.as_str(), "HS256");
    /// assert_eq!(Algorithm::EdDsa.as_str(), "EdDSA");
    /// ```
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// The algorithm whose JOSE name is exactly `name` (case-sensitive, as RFC 7515 requires).
    ///
    /// `none`, in any spelling, and every algorithm not implemented here give `None`.
    #[must_use]
    pub fn from_jose(name: &str) -> Option<Self> {
        match name {
            "HS256" => Some(Self::Hs256),
            "EdDSA" => Some(Self::EdDsa),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The key material, typed so that an Ed25519 public key can never reach the HMAC code path.
#[derive(Clone)]
enum Material {
    /// The HMAC state already keyed with the secret (inner and outer pads absorbed), so each
    /// verification clones it instead of hashing the key again. The raw secret is not kept.
    Hs256(Hmac<Sha256>),
    /// A decompressed, non-weak Ed25519 public key.
    Ed25519(VerifyingKey),
}

/// One verification key: a `kid`, an algorithm and the key material.
///
/// `Debug` shows only the `kid` and the algorithm, never key material.
///
/// ```
/// use portcullis_core::{Algorithm, Key};
/// let key = Key::hs256("k1", &[7u8; 32])?;
/// assert_eq!(key.kid(), "k1");
/// assert_eq!(key.algorithm(), Algorithm::Hs256);
/// # Ok::<(), portcullis_core::KeyError>(())
/// ```
#[derive(Clone)]
pub struct Key {
    kid: String,
    material: Material,
}

impl Key {
    /// An HS256 key from a shared secret of at least [`MIN_HS256_SECRET_LEN`] bytes.
    ///
    /// The secret is absorbed into a keyed HMAC state at once; the bytes themselves are not
    /// retained (the keyed state is secret-equivalent and is not wiped on drop, as `hmac` 0.12
    /// offers no zeroization).
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidKid`] for an empty, overlong or control-character `kid`;
    /// [`KeyError::SecretTooShort`] for a secret under 32 bytes.
    pub fn hs256(kid: &str, secret: &[u8]) -> Result<Self, KeyError> {
        let kid = checked_kid(kid)?;
        if secret.len() < MIN_HS256_SECRET_LEN {
            return Err(KeyError::SecretTooShort);
        }
        let mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| KeyError::SecretTooShort)?;
        Ok(Self {
            kid,
            material: Material::Hs256(mac),
        })
    }

    /// An EdDSA key from a 32-byte Ed25519 public key (RFC 8032 encoding).
    ///
    /// ```
    /// use portcullis_core::Key;
    /// // Not the canonical encoding of a curve point.
    /// assert!(Key::ed25519("k1", &[0xffu8; 32]).is_err());
    /// // The identity: a small-order point, for which forged signatures could verify.
    /// let mut identity = [0u8; 32];
    /// identity[0] = 1;
    /// assert!(Key::ed25519("k1", &identity).is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidKid`] for a bad `kid`; [`KeyError::InvalidPublicKey`] if the bytes are
    /// not 32 long, are not the canonical encoding of a curve point, or encode a small-order
    /// (weak) point, for which forged signatures could verify.
    pub fn ed25519(kid: &str, public: &[u8]) -> Result<Self, KeyError> {
        let kid = checked_kid(kid)?;
        let bytes: &[u8; 32] = public.try_into().map_err(|_| KeyError::InvalidPublicKey)?;
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::InvalidPublicKey)?;
        // Refuse small-order points and non-canonical encodings (a `y` of `p` or more, which
        // decompression silently reduces), so each key has exactly one accepted encoding.
        if key.is_weak() || key.to_edwards().compress().as_bytes() != bytes {
            return Err(KeyError::InvalidPublicKey);
        }
        Ok(Self {
            kid,
            material: Material::Ed25519(key),
        })
    }

    /// The key identifier a token names in its header `kid`.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The only algorithm this key verifies.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        match self.material {
            Material::Hs256(_) => Algorithm::Hs256,
            Material::Ed25519(_) => Algorithm::EdDsa,
        }
    }

    /// Checks `signature` over `signing_input` with this key's own algorithm.
    ///
    /// Every failure, including a signature of the wrong length, is the single opaque
    /// [`TokenError::BadSignature`]. The HMAC comparison is constant-time.
    pub(crate) fn verify_signature(
        &self,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<(), TokenError> {
        match &self.material {
            Material::Hs256(keyed) => {
                let mut mac = keyed.clone();
                mac.update(signing_input);
                let tag = mac.finalize().into_bytes();
                if constant_time_eq(&tag, signature) {
                    Ok(())
                } else {
                    Err(TokenError::BadSignature)
                }
            }
            Material::Ed25519(public) => {
                let signature =
                    Signature::from_slice(signature).map_err(|_| TokenError::BadSignature)?;
                // Strict verification refuses non-canonical `S`, small-order `R` and keys, so a
                // token has exactly one valid signature and cannot be malleated.
                public
                    .verify_strict(signing_input, &signature)
                    .map_err(|_| TokenError::BadSignature)
            }
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

/// Compares two MACs without data-dependent branches or early exit.
///
/// The lengths are public (the algorithm fixes them). The bytes are folded into one
/// difference word, and only that word goes through `subtle`'s optimisation barrier: one
/// barrier instead of one per byte, with the same guarantee as `Mac::verify_slice`.
fn constant_time_eq(expected: &[u8], actual: &[u8]) -> bool {
    if expected.len() != actual.len() {
        return false;
    }
    let difference = expected
        .iter()
        .zip(actual)
        .fold(0u8, |acc, (e, a)| acc | (e ^ a));
    bool::from(difference.ct_eq(&0))
}

fn checked_kid(kid: &str) -> Result<String, KeyError> {
    if kid.is_empty() || kid.len() > MAX_KID_LEN || kid.chars().any(char::is_control) {
        return Err(KeyError::InvalidKid);
    }
    Ok(String::from(kid))
}

/// The keys a verifier trusts, looked up by `kid`.
///
/// Kept sorted by `kid` so a lookup is a binary search: no hashing of attacker-chosen `kid`
/// strings, and deterministic cost on every target.
///
/// ```
/// use portcullis_core::{Key, KeyError, KeySet};
/// let mut keys = KeySet::new();
/// keys.insert(Key::hs256("k1", &[7u8; 32])?)?;
/// assert!(keys.get("k1").is_some());
/// assert_eq!(keys.insert(Key::hs256("k1", &[8u8; 32])?), Err(KeyError::DuplicateKid));
/// # Ok::<(), KeyError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    keys: Vec<Key>,
}

impl KeySet {
    /// An empty set, which verifies nothing.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key.
    ///
    /// # Errors
    ///
    /// [`KeyError::DuplicateKid`] if a key with the same `kid` is already present: silently
    /// replacing a key would make rotation mistakes invisible.
    pub fn insert(&mut self, key: Key) -> Result<(), KeyError> {
        match self
            .keys
            .binary_search_by(|probe| probe.kid.as_str().cmp(key.kid()))
        {
            Ok(_) => Err(KeyError::DuplicateKid),
            Err(position) => {
                self.keys.insert(position, key);
                Ok(())
            }
        }
    }

    /// The key with this `kid`, if any.
    #[must_use]
    pub fn get(&self, kid: &str) -> Option<&Key> {
        let index = self
            .keys
            .binary_search_by(|probe| probe.kid.as_str().cmp(kid))
            .ok()?;
        self.keys.get(index)
    }

    /// The position of the key with this `kid`, stable while the set is not modified.
    pub(crate) fn position(&self, kid: &str) -> Option<usize> {
        self.keys
            .binary_search_by(|probe| probe.kid.as_str().cmp(kid))
            .ok()
    }

    /// The key at a position returned by [`position`](Self::position).
    pub(crate) fn at(&self, index: usize) -> Option<&Key> {
        self.keys.get(index)
    }

    /// The number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set has no keys.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys, in `kid` order.
    pub fn iter(&self) -> impl Iterator<Item = &Key> {
        self.keys.iter()
    }

    /// Parses a JWKS document (RFC 7517) holding Ed25519 public keys (RFC 8037).
    ///
    /// Every key must have `"kty": "OKP"`, `"crv": "Ed25519"`, a `kid` and `x`; `alg`, when
    /// present, must be `EdDSA` and `use`, when present, `sig`. A key of any other type
    /// (`oct` included) is an error rather than skipped: a set that silently lost keys would
    /// fail later and far from the cause. Other members are ignored.
    ///
    /// ```
    /// use portcullis_core::KeySet;
    /// let jwks = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1",
    ///     "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
    /// let keys = KeySet::from_jwks(jwks)?;
    /// assert_eq!(keys.len(), 1);
    /// # Ok::<(), portcullis_core::KeyError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`KeyError::MalformedJwks`] for invalid JSON, a missing `keys` array or a duplicate
    /// member; [`KeyError::UnsupportedKey`] for another `kty`, `crv`, `alg` or `use`;
    /// [`KeyError::PrivateKeyMaterial`] if a key carries `d`; [`KeyError::InvalidKid`],
    /// [`KeyError::InvalidPublicKey`] and [`KeyError::DuplicateKid`] as for [`Key::ed25519`]
    /// and [`KeySet::insert`].
    pub fn from_jwks(json: &str) -> Result<Self, KeyError> {
        let document: JwksIn = serde_json::from_str(json).map_err(|_| KeyError::MalformedJwks)?;
        let mut set = Self::new();
        for jwk in document.keys {
            set.insert(jwk.into_key()?)?;
        }
        Ok(set)
    }
}

/// The wire shape of a JWKS document. Duplicate known members are refused by the derive.
#[derive(Deserialize)]
struct JwksIn {
    keys: Vec<JwkIn>,
}

#[derive(Deserialize)]
struct JwkIn {
    kty: String,
    crv: Option<String>,
    kid: Option<String>,
    x: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    #[serde(default)]
    d: Present,
}

/// Records that a member was present, whatever its value (`null` included).
#[derive(Default)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer)?;
        Ok(Self(true))
    }
}

impl JwkIn {
    fn into_key(self) -> Result<Key, KeyError> {
        if self.d.0 {
            return Err(KeyError::PrivateKeyMaterial);
        }
        if self.kty != "OKP" || self.crv.as_deref() != Some("Ed25519") {
            return Err(KeyError::UnsupportedKey);
        }
        if self.alg.as_deref().is_some_and(|alg| alg != "EdDSA")
            || self.usage.as_deref().is_some_and(|usage| usage != "sig")
        {
            return Err(KeyError::UnsupportedKey);
        }
        let kid = self.kid.ok_or(KeyError::InvalidKid)?;
        let x = self.x.ok_or(KeyError::InvalidPublicKey)?;
        // Canonical base64url without padding only, as for token segments.
        let public = BASE64URL
            .decode(x)
            .map_err(|_| KeyError::InvalidPublicKey)?;
        Key::ed25519(&kid, &public)
    }
}

#[cfg(test)]
mod tests {
    use alloc::format;

    use super::*;

    /// RFC 8037 appendix A public key.
    const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    fn jwk(members: &str) -> String {
        format!(r#"{{"keys":[{{{members}}}]}}"#)
    }

    #[test]
    fn constant_time_eq_compares_every_byte_and_length() {
        let tag = [0x5au8; 32];
        assert!(constant_time_eq(&tag, &tag));
        for index in 0..32 {
            for bit in 0..8 {
                let mut other = tag;
                other[index] ^= 1 << bit;
                assert!(!constant_time_eq(&tag, &other));
            }
        }
        assert!(!constant_time_eq(&tag, &tag[..31]));
        assert!(!constant_time_eq(&tag, &[]));
    }

    #[test]
    fn hs256_short_secret_is_refused() {
        assert_eq!(
            Key::hs256("k", &[1u8; 31]).err(),
            Some(KeyError::SecretTooShort)
        );
        assert!(Key::hs256("k", &[1u8; 32]).is_ok());
        assert!(Key::hs256("k", &[1u8; 131]).is_ok());
    }

    #[test]
    fn kid_invalid_is_refused() {
        let long = "k".repeat(MAX_KID_LEN + 1);
        for kid in ["", "a\nb", "\u{0}", long.as_str()] {
            assert_eq!(
                Key::hs256(kid, &[1u8; 32]).err(),
                Some(KeyError::InvalidKid)
            );
        }
    }

    #[test]
    fn ed25519_wrong_length_or_weak_point_is_refused() {
        assert_eq!(
            Key::ed25519("k", &[1u8; 31]).err(),
            Some(KeyError::InvalidPublicKey)
        );
        assert_eq!(
            Key::ed25519("k", &[1u8; 33]).err(),
            Some(KeyError::InvalidPublicKey)
        );
        // Small-order points: the identity and a point of order 2 (y = -1).
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            Key::ed25519("k", &identity).err(),
            Some(KeyError::InvalidPublicKey)
        );
        let mut minus_one = [0xffu8; 32];
        minus_one[0] = 0xec;
        minus_one[31] = 0x7f;
        assert_eq!(
            Key::ed25519("k", &minus_one).err(),
            Some(KeyError::InvalidPublicKey)
        );
    }

    #[test]
    fn ed25519_non_canonical_encoding_is_refused() {
        // y = p + 2 reduces to the valid y = 2 if decompression is lenient.
        let mut non_canonical = [0xffu8; 32];
        non_canonical[0] = 0xef;
        non_canonical[31] = 0x7f;
        assert_eq!(
            Key::ed25519("k", &non_canonical).err(),
            Some(KeyError::InvalidPublicKey)
        );
    }

    #[test]
    fn debug_shows_no_key_material() {
        let key = Key::hs256("k1", &[0xabu8; 32]).unwrap();
        let text = format!("{key:?}");
        assert_eq!(text, "Key { kid: \"k1\", algorithm: Hs256, .. }");
    }

    #[test]
    fn key_set_lookup_is_by_exact_kid() {
        let mut set = KeySet::new();
        for kid in ["b", "a", "c"] {
            set.insert(Key::hs256(kid, &[1u8; 32]).unwrap()).unwrap();
        }
        assert_eq!(set.len(), 3);
        assert!(set.get("a").is_some() && set.get("c").is_some());
        assert!(set.get("A").is_none() && set.get("").is_none());
        let kids: Vec<&str> = set.iter().map(Key::kid).collect();
        assert_eq!(kids, ["a", "b", "c"]);
    }

    #[test]
    fn from_jwks_okp_key_is_accepted() {
        let json = jwk(&format!(
            r#""kty":"OKP","crv":"Ed25519","kid":"k1","x":"{RFC8037_X}","alg":"EdDSA","use":"sig","key_ops":["verify"]"#
        ));
        let set = KeySet::from_jwks(&json).unwrap();
        assert_eq!(set.get("k1").map(Key::algorithm), Some(Algorithm::EdDsa));
    }

    #[test]
    fn from_jwks_bad_keys_are_refused_not_skipped() {
        let ok = format!(r#""kty":"OKP","crv":"Ed25519","kid":"k1","x":"{RFC8037_X}""#);
        let cases = [
            (
                jwk(r#""kty":"oct","kid":"k1","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ""#),
                KeyError::UnsupportedKey,
            ),
            (
                jwk(r#""kty":"RSA","kid":"k1","n":"AQAB","e":"AQAB""#),
                KeyError::UnsupportedKey,
            ),
            (
                jwk(&format!(
                    r#""kty":"OKP","crv":"X25519","kid":"k1","x":"{RFC8037_X}""#
                )),
                KeyError::UnsupportedKey,
            ),
            (
                jwk(&format!(r#"{ok},"alg":"HS256""#)),
                KeyError::UnsupportedKey,
            ),
            (
                jwk(&format!(r#"{ok},"use":"enc""#)),
                KeyError::UnsupportedKey,
            ),
            (
                jwk(&format!(
                    r#"{ok},"d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A""#
                )),
                KeyError::PrivateKeyMaterial,
            ),
            (
                jwk(&format!(r#"{ok},"d":null"#)),
                KeyError::PrivateKeyMaterial,
            ),
            (
                jwk(&format!(r#""kty":"OKP","crv":"Ed25519","x":"{RFC8037_X}""#)),
                KeyError::InvalidKid,
            ),
            (
                jwk(r#""kty":"OKP","crv":"Ed25519","kid":"k1""#),
                KeyError::InvalidPublicKey,
            ),
            (
                jwk(&format!(
                    r#""kty":"OKP","crv":"Ed25519","kid":"k1","x":"{RFC8037_X}=""#
                )),
                KeyError::InvalidPublicKey,
            ),
            (
                jwk(r#""kty":"OKP","crv":"Ed25519","kid":"k1","x":"AAAA""#),
                KeyError::InvalidPublicKey,
            ),
            (jwk(&format!(r#"{ok},"kid":"k2""#)), KeyError::MalformedJwks),
            (
                format!(r#"{{"keys":[{{{ok}}},{{{ok}}}]}}"#),
                KeyError::DuplicateKid,
            ),
            (String::from(r#"{"keys":{}}"#), KeyError::MalformedJwks),
            (String::from("[]"), KeyError::MalformedJwks),
        ];
        for (json, error) in cases {
            assert_eq!(KeySet::from_jwks(&json).err(), Some(error), "{json}");
        }
        assert!(KeySet::from_jwks(r#"{"keys":[]}"#).unwrap().is_empty());
    }
}
