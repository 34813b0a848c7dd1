//! Wrappers for secret values: `Debug` prints `[redacted]` and the memory is wiped on drop.
//!
//! Anything that is a password, a token, a key or a connection string with credentials lives in
//! one of these types from the moment it is deserialized, so a stray `{:?}` in a log line or a
//! derived `Debug` on a request struct cannot leak it.

use std::fmt;

use serde::{Deserialize, Deserializer, Serializer};
use zeroize::Zeroizing;

/// A secret string, such as a password, a token or a database URL.
#[derive(Clone, Default)]
pub(crate) struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Wraps a value.
    pub(crate) fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The secret itself; every call site is a place where the secret leaves its wrapper.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

/// Serializes a secret in clear; only for response bodies that hand the secret to its owner
/// (`#[serde(serialize_with = "expose_secret")]`).
pub(crate) fn expose_secret<S: Serializer>(
    secret: &SecretString,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose())
}

/// Secret bytes, such as key material.
#[derive(Clone)]
pub(crate) struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    pub(crate) fn new(value: Vec<u8>) -> Self {
        Self(Zeroizing::new(value))
    }

    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = SecretString::new("hunter2hunter2".to_owned());
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(
            format!("{:?}", SecretBytes::new(vec![1, 2, 3])),
            "[redacted]"
        );
    }
}
