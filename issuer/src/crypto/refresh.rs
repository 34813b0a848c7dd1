//! Refresh tokens: `prt_` + 43 base64url characters (256 bits), stored only as SHA-256.
//!
//! A token's successor is not random but `HMAC-SHA256(refresh key, parent)`: two concurrent
//! presentations of the same parent derive the same successor, so a duplicate inside the grace
//! window can be handed the token the winner already stored instead of a second live one
//! (design note 0001).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::keys::random_bytes;
use super::secret::SecretString;

/// The prefix that makes a leaked refresh token recognisable to secret scanners.
pub(crate) const PREFIX: &str = "prt_";
/// Base64url characters of 32 bytes without padding.
const BODY_LEN: usize = 43;

/// SHA-256 of a refresh token, the only form ever stored.
pub(crate) type TokenHash = [u8; 32];

/// A refresh token in clear. Only the client and this process's memory ever hold it.
#[derive(Clone, Debug)]
pub(crate) struct RefreshToken(SecretString);

impl RefreshToken {
    /// A fresh token from 256 bits of operating-system randomness.
    pub(crate) fn generate() -> Self {
        Self::from_bytes(random_bytes::<32>().as_slice())
    }

    /// Accepts only the exact shape this issuer mints; anything else cannot be one of ours.
    pub(crate) fn parse(presented: &str) -> Option<Self> {
        let body = presented.strip_prefix(PREFIX)?;
        let canonical = body.len() == BODY_LEN
            && URL_SAFE_NO_PAD
                .decode(body)
                .is_ok_and(|bytes| URL_SAFE_NO_PAD.encode(bytes) == body);
        canonical.then(|| Self(SecretString::new(presented.to_owned())))
    }

    fn from_bytes(bytes: &[u8]) -> Self {
        let mut encoded = Zeroizing::new(String::with_capacity(PREFIX.len() + BODY_LEN));
        encoded.push_str(PREFIX);
        URL_SAFE_NO_PAD.encode_string(bytes, &mut encoded);
        Self(SecretString::new(encoded.to_string()))
    }

    /// What the database stores and looks tokens up by.
    pub(crate) fn hash(&self) -> TokenHash {
        Sha256::digest(self.0.expose().as_bytes()).into()
    }

    pub(crate) fn secret(&self) -> &SecretString {
        &self.0
    }
}

/// Derives successors; the key comes from the master key (HKDF, "portcullis refresh v1").
pub(crate) struct SuccessorKey(Zeroizing<[u8; 32]>);

impl SuccessorKey {
    pub(crate) fn new(key: Zeroizing<[u8; 32]>) -> Self {
        Self(key)
    }

    /// The one successor `parent` can ever have.
    pub(crate) fn successor(&self, parent: &RefreshToken) -> RefreshToken {
        // HMAC accepts keys of any length, so this cannot fail for a 32-byte key; the fallback
        // keeps the code panic-free and would only ever produce an unusable random token.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.0.as_slice()) else {
            return RefreshToken::generate();
        };
        mac.update(parent.0.expose().as_bytes());
        RefreshToken::from_bytes(&mac.finalize().into_bytes())
    }
}

impl fmt::Debug for SuccessorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SuccessorKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_have_the_documented_shape() {
        let token = RefreshToken::generate();
        let text = token.secret().expose();
        assert!(text.starts_with("prt_"));
        assert_eq!(text.len(), 4 + 43);
        assert!(RefreshToken::parse(text).is_some());
        assert_ne!(text, RefreshToken::generate().secret().expose());
    }

    #[test]
    fn parse_refuses_anything_else() {
        let good = RefreshToken::generate().secret().expose().to_owned();
        for bad in [
            "",
            "prt_",
            &good[4..],
            &format!("PRT_{}", &good[4..]),
            &format!("{good}A"),
            &good[..good.len() - 1],
            &format!("prt_{}", "+".repeat(43)),
            &format!("prt_{}", "=".repeat(43)),
            // Non-canonical: the last character carries stray low bits.
            &format!("prt_{}B", "A".repeat(42)),
        ] {
            assert!(RefreshToken::parse(bad).is_none(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn successor_is_deterministic_per_parent_and_key() {
        let key = SuccessorKey::new(Zeroizing::new([3_u8; 32]));
        let other_key = SuccessorKey::new(Zeroizing::new([4_u8; 32]));
        let parent = RefreshToken::generate();
        let first = key.successor(&parent);
        let again = key.successor(&RefreshToken::parse(parent.secret().expose()).unwrap());
        assert_eq!(first.secret().expose(), again.secret().expose());
        assert_eq!(first.hash(), again.hash());
        assert!(RefreshToken::parse(first.secret().expose()).is_some());
        assert_ne!(first.secret().expose(), parent.secret().expose());
        assert_ne!(
            first.hash(),
            key.successor(&RefreshToken::generate()).hash()
        );
        assert_ne!(first.hash(), other_key.successor(&parent).hash());
    }

    #[test]
    fn successor_matches_the_documented_construction() {
        let key = [9_u8; 32];
        let parent = RefreshToken::parse(&format!("prt_{}", "A".repeat(43))).unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(parent.secret().expose().as_bytes());
        let expected = format!(
            "prt_{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        );
        let successor = SuccessorKey::new(Zeroizing::new(key)).successor(&parent);
        assert_eq!(successor.secret().expose(), expected);
        assert_eq!(
            successor.hash(),
            <[u8; 32]>::from(Sha256::digest(expected.as_bytes()))
        );
    }
}
