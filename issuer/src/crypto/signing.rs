//! Signing-key material: generation, the `jsonwebtoken` signing key, the `portcullis-core`
//! verification key and the public JWK.
//!
//! Each key yields both a signer (jsonwebtoken) and a verifier key (portcullis-core) from the
//! same bytes, so every token the issuer accepts has crossed both implementations.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use serde::{Deserialize, Serialize};

use super::keys::random_bytes;
use super::secret::SecretBytes;

/// Length of a generated HS256 secret; RFC 7518 asks for at least the hash output size.
const HS256_SECRET_LEN: usize = 32;
/// Length of an Ed25519 seed.
pub(crate) const ED25519_SEED_LEN: usize = 32;

/// The algorithms the issuer signs with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum SigningAlgorithm {
    /// HMAC-SHA256: one shared secret; the default.
    #[default]
    #[serde(rename = "HS256")]
    Hs256,
    /// Ed25519: verifiers need only the public key from the JWKS.
    #[serde(rename = "EdDSA")]
    EdDsa,
}

impl SigningAlgorithm {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::EdDsa => "EdDSA",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "HS256" => Some(Self::Hs256),
            "EdDSA" => Some(Self::EdDsa),
            _ => None,
        }
    }
}

/// Why key material could not be turned into a usable key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MaterialError {
    #[error("an HS256 secret must be at least 32 bytes")]
    SecretTooShort,
    #[error("an Ed25519 private key must be a 32-byte seed")]
    SeedLength,
    #[error("the key id is empty, too long or contains control characters")]
    Kid,
    #[error("the key could not be encoded for signing")]
    Encoding,
}

/// One signing key: its kid, algorithm and secret material.
#[derive(Clone)]
pub(crate) struct KeyMaterial {
    kid: String,
    algorithm: SigningAlgorithm,
    /// HS256: the shared secret. EdDSA: the 32-byte seed.
    secret: SecretBytes,
}

impl KeyMaterial {
    /// Checks lengths, so every later conversion works on well-formed material.
    pub(crate) fn new(
        kid: String,
        algorithm: SigningAlgorithm,
        secret: SecretBytes,
    ) -> Result<Self, MaterialError> {
        match algorithm {
            SigningAlgorithm::Hs256 if secret.expose().len() < HS256_SECRET_LEN => {
                return Err(MaterialError::SecretTooShort);
            }
            SigningAlgorithm::EdDsa if secret.expose().len() != ED25519_SEED_LEN => {
                return Err(MaterialError::SeedLength);
            }
            SigningAlgorithm::Hs256 | SigningAlgorithm::EdDsa => {}
        }
        Ok(Self {
            kid,
            algorithm,
            secret,
        })
    }

    /// Fresh random material for a new key.
    pub(crate) fn generate(
        kid: String,
        algorithm: SigningAlgorithm,
    ) -> Result<Self, MaterialError> {
        let secret = match algorithm {
            SigningAlgorithm::Hs256 => random_bytes::<HS256_SECRET_LEN>().to_vec(),
            SigningAlgorithm::EdDsa => random_bytes::<ED25519_SEED_LEN>().to_vec(),
        };
        Self::new(kid, algorithm, SecretBytes::new(secret))
    }

    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    pub(crate) fn algorithm(&self) -> SigningAlgorithm {
        self.algorithm
    }

    pub(crate) fn secret(&self) -> &SecretBytes {
        &self.secret
    }

    /// The key `jsonwebtoken` signs with (Ed25519 as PKCS#8 DER, which it expects).
    pub(crate) fn encoding_key(&self) -> Result<jsonwebtoken::EncodingKey, MaterialError> {
        match self.algorithm {
            SigningAlgorithm::Hs256 => {
                Ok(jsonwebtoken::EncodingKey::from_secret(self.secret.expose()))
            }
            SigningAlgorithm::EdDsa => {
                let der = self
                    .ed25519()?
                    .to_pkcs8_der()
                    .map_err(|_| MaterialError::Encoding)?;
                Ok(jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()))
            }
        }
    }

    /// The key `portcullis-core` verifies with: the same secret, or the public half.
    pub(crate) fn verification_key(&self) -> Result<portcullis_core::Key, MaterialError> {
        let key = match self.algorithm {
            SigningAlgorithm::Hs256 => portcullis_core::Key::hs256(&self.kid, self.secret.expose()),
            SigningAlgorithm::EdDsa => {
                let public = self.ed25519()?.verifying_key().to_bytes();
                portcullis_core::Key::ed25519(&self.kid, &public)
            }
        };
        key.map_err(|err| match err {
            portcullis_core::KeyError::SecretTooShort => MaterialError::SecretTooShort,
            _ => MaterialError::Kid,
        })
    }

    /// The public JWK (RFC 8037) for EdDSA keys; HS256 secrets are never published.
    pub(crate) fn public_jwk(&self) -> Option<PublicJwk> {
        let signing = match self.algorithm {
            SigningAlgorithm::Hs256 => return None,
            SigningAlgorithm::EdDsa => self.ed25519().ok()?,
        };
        Some(PublicJwk {
            kty: "OKP",
            crv: "Ed25519",
            alg: "EdDSA",
            key_use: "sig",
            kid: self.kid.clone(),
            x: URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes()),
        })
    }

    fn ed25519(&self) -> Result<ed25519_dalek::SigningKey, MaterialError> {
        let seed: &[u8; ED25519_SEED_LEN] = self
            .secret
            .expose()
            .try_into()
            .map_err(|_| MaterialError::SeedLength)?;
        Ok(ed25519_dalek::SigningKey::from_bytes(seed))
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// One entry of `/.well-known/jwks.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct PublicJwk {
    kty: &'static str,
    crv: &'static str,
    alg: &'static str,
    #[serde(rename = "use")]
    key_use: &'static str,
    kid: String,
    x: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_checked() {
        let short = SecretBytes::new(vec![1; 31]);
        assert_eq!(
            KeyMaterial::new("k".into(), SigningAlgorithm::Hs256, short).unwrap_err(),
            MaterialError::SecretTooShort
        );
        let seed = SecretBytes::new(vec![1; 33]);
        assert_eq!(
            KeyMaterial::new("k".into(), SigningAlgorithm::EdDsa, seed).unwrap_err(),
            MaterialError::SeedLength
        );
    }

    #[test]
    fn hs256_keys_are_never_published() {
        let key = KeyMaterial::generate("k1".into(), SigningAlgorithm::Hs256).unwrap();
        assert!(key.public_jwk().is_none());
        assert!(key.verification_key().is_ok());
        assert!(key.encoding_key().is_ok());
        assert!(!format!("{key:?}").contains("secret"));
    }

    #[test]
    fn eddsa_keys_publish_their_public_half() {
        let key = KeyMaterial::generate("k2".into(), SigningAlgorithm::EdDsa).unwrap();
        let jwk = serde_json::to_value(key.public_jwk().unwrap()).unwrap();
        assert_eq!(jwk["kty"], "OKP");
        assert_eq!(jwk["crv"], "Ed25519");
        assert_eq!(jwk["kid"], "k2");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["x"].as_str().unwrap().len(), 43);
        assert!(key.encoding_key().is_ok());
        assert_eq!(key.verification_key().unwrap().kid(), "k2");
    }
}
