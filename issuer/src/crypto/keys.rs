//! The master key and the keys derived from it.
//!
//! The master key never signs or encrypts anything itself. HKDF-SHA256 derives one key per
//! purpose, each bound to its own `info` string, so a weakness in one use cannot spill into
//! another and a purpose can be re-keyed by changing its label.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use rand::RngCore as _;
use rand::rngs::OsRng;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::secret::SecretBytes;

/// HKDF `info` of the key that wraps stored signing keys (design note 0002).
const WRAP_INFO: &[u8] = b"portcullis signing-key wrap v1";
/// HKDF `info` of the key that derives refresh-token successors (design note 0001).
const REFRESH_INFO: &[u8] = b"portcullis refresh v1";
/// HKDF `info` of the key that seals stored TOTP secrets (design note 0005).
const TOTP_INFO: &[u8] = b"portcullis totp seal v1";
/// Length of a ChaCha20-Poly1305 nonce.
pub(crate) const NONCE_LEN: usize = 12;

/// A key-handling failure. Deliberately opaque: which step failed is no business of a caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KeyError {
    /// The master key is not 32 bytes of base64url without padding.
    #[error("must be 32 bytes encoded as base64url without padding")]
    MasterKeyFormat,
    /// Wrapped key material did not decrypt: wrong master key, or tampered data.
    #[error("wrapped key material does not decrypt with this master key")]
    Unwrap,
    /// Encryption or key derivation failed.
    #[error("key derivation or encryption failed")]
    Crypto,
}

/// The installation secret (`master_key`), 32 bytes.
#[derive(Clone)]
pub(crate) struct MasterKey(Zeroizing<[u8; 32]>);

impl MasterKey {
    /// Decodes the configured value: 32 bytes, base64url, no padding.
    pub(crate) fn from_base64url(encoded: &str) -> Result<Self, KeyError> {
        let decoded = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(encoded.trim())
                .map_err(|_| KeyError::MasterKeyFormat)?,
        );
        let bytes: [u8; 32] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::MasterKeyFormat)?;
        Ok(Self(Zeroizing::new(bytes)))
    }

    fn derive(&self, info: &[u8]) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        let mut okm = Zeroizing::new([0_u8; 32]);
        Hkdf::<Sha256>::new(None, self.0.as_slice())
            .expand(info, okm.as_mut_slice())
            .map_err(|_| KeyError::Crypto)?;
        Ok(okm)
    }

    /// The key that wraps signing keys stored in the database.
    pub(crate) fn wrapping_key(&self) -> Result<WrappingKey, KeyError> {
        self.derive(WRAP_INFO).map(WrappingKey)
    }

    /// The key that seals TOTP secrets stored in the database: its own key, so a TOTP row
    /// can never be unwrapped as a signing key or the other way round.
    pub(crate) fn totp_key(&self) -> Result<WrappingKey, KeyError> {
        self.derive(TOTP_INFO).map(WrappingKey)
    }

    /// The key that derives refresh-token successors.
    pub(crate) fn refresh_key(&self) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        self.derive(REFRESH_INFO)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

/// Key material sealed with ChaCha20-Poly1305.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Wrapped {
    pub(crate) nonce: Vec<u8>,
    pub(crate) ciphertext: Vec<u8>,
}

/// Encrypts and authenticates key material for storage.
pub(crate) struct WrappingKey(Zeroizing<[u8; 32]>);

impl WrappingKey {
    /// Seals `plaintext` under a fresh random nonce. `context` (e.g. the kid and algorithm) is
    /// authenticated too, so a stored row cannot be passed off as another key.
    pub(crate) fn wrap(&self, context: &[u8], plaintext: &[u8]) -> Result<Wrapped, KeyError> {
        let mut nonce = [0_u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .map_err(|_| KeyError::Crypto)?;
        Ok(Wrapped {
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// Opens what [`wrap`](Self::wrap) sealed with the same `context`.
    pub(crate) fn unwrap(
        &self,
        context: &[u8],
        wrapped: &Wrapped,
    ) -> Result<SecretBytes, KeyError> {
        if wrapped.nonce.len() != NONCE_LEN {
            return Err(KeyError::Unwrap);
        }
        self.cipher()
            .decrypt(
                Nonce::from_slice(&wrapped.nonce),
                Payload {
                    msg: &wrapped.ciphertext,
                    aad: context,
                },
            )
            .map(SecretBytes::new)
            .map_err(|_| KeyError::Unwrap)
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(self.0.as_slice()))
    }
}

impl fmt::Debug for WrappingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WrappingKey([redacted])")
    }
}

/// Fills a fresh buffer of `N` random bytes from the operating system.
pub(crate) fn random_bytes<const N: usize>() -> Zeroizing<[u8; N]> {
    let mut bytes = Zeroizing::new([0_u8; N]);
    OsRng.fill_bytes(bytes.as_mut_slice());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master() -> MasterKey {
        MasterKey::from_base64url(&URL_SAFE_NO_PAD.encode([7_u8; 32])).unwrap()
    }

    #[test]
    fn master_key_must_be_32_bytes_of_unpadded_base64url() {
        assert!(MasterKey::from_base64url(&URL_SAFE_NO_PAD.encode([1_u8; 31])).is_err());
        assert!(MasterKey::from_base64url(&URL_SAFE_NO_PAD.encode([1_u8; 33])).is_err());
        let padded = base64::engine::general_purpose::URL_SAFE.encode([1_u8; 32]);
        assert!(MasterKey::from_base64url(&padded).is_err());
        assert!(MasterKey::from_base64url("not base64 at all!").is_err());
    }

    #[test]
    fn wrap_round_trips_and_binds_the_context() {
        let key = master().wrapping_key().unwrap();
        let wrapped = key.wrap(b"kid-1/HS256", b"key material").unwrap();
        assert_eq!(wrapped.nonce.len(), NONCE_LEN);
        assert_ne!(wrapped.ciphertext.as_slice(), b"key material");
        assert_eq!(
            key.unwrap(b"kid-1/HS256", &wrapped).unwrap().expose(),
            b"key material"
        );
        assert_eq!(
            key.unwrap(b"kid-2/HS256", &wrapped).unwrap_err(),
            KeyError::Unwrap
        );
    }

    #[test]
    fn unwrap_refuses_tampering_and_other_master_keys() {
        let key = master().wrapping_key().unwrap();
        let mut wrapped = key.wrap(b"ctx", b"key material").unwrap();
        let other = MasterKey::from_base64url(&URL_SAFE_NO_PAD.encode([8_u8; 32])).unwrap();
        assert!(
            other
                .wrapping_key()
                .unwrap()
                .unwrap(b"ctx", &wrapped)
                .is_err()
        );
        wrapped.ciphertext[0] ^= 1;
        assert!(key.unwrap(b"ctx", &wrapped).is_err());
    }

    #[test]
    fn purposes_get_different_keys() {
        let master = master();
        let refresh = master.refresh_key().unwrap();
        let wrap = master.derive(WRAP_INFO).unwrap();
        assert_ne!(*refresh, *wrap);
        assert_ne!(*refresh, [7_u8; 32]);
        // Deterministic: every replica with the same master key derives the same key.
        assert_eq!(*master.refresh_key().unwrap(), *refresh);
    }
}
