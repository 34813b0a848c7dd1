//! One-time link tokens (design note 0005): `plk_` + 43 base64url characters (256 bits from
//! the operating system), mailed to a user and stored only as SHA-256. The prefix makes a
//! leaked token recognisable to secret scanners, as for refresh tokens.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use super::keys::random_bytes;
use super::secret::SecretString;

/// The prefix of every link token.
pub(crate) const PREFIX: &str = "plk_";
/// Base64url characters of 32 bytes without padding.
const BODY_LEN: usize = 43;

/// A link token in clear: only the mail that carries it and this process's memory hold it.
#[derive(Clone)]
pub(crate) struct LinkToken(SecretString);

impl LinkToken {
    /// A fresh token.
    pub(crate) fn generate() -> Self {
        let mut encoded = Zeroizing::new(String::with_capacity(PREFIX.len() + BODY_LEN));
        encoded.push_str(PREFIX);
        URL_SAFE_NO_PAD.encode_string(random_bytes::<32>().as_slice(), &mut encoded);
        Self(SecretString::new(encoded.to_string()))
    }

    /// Accepts only the exact shape this issuer mints; anything else cannot be a live link,
    /// and is refused before any database work.
    pub(crate) fn parse(presented: &str) -> Option<Self> {
        let body = presented.strip_prefix(PREFIX)?;
        let canonical = body.len() == BODY_LEN
            && URL_SAFE_NO_PAD
                .decode(body)
                .is_ok_and(|bytes| URL_SAFE_NO_PAD.encode(bytes) == body);
        canonical.then(|| Self(SecretString::new(presented.to_owned())))
    }

    /// What the database stores and looks tokens up by.
    pub(crate) fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.expose().as_bytes()).into()
    }

    /// The token itself, for the link in the mail.
    pub(crate) fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl fmt::Debug for LinkToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkToken([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_random_and_parse_back() {
        let one = LinkToken::generate();
        let two = LinkToken::generate();
        assert_ne!(one.expose(), two.expose());
        assert!(one.expose().starts_with(PREFIX));
        assert_eq!(one.expose().len(), PREFIX.len() + BODY_LEN);
        let parsed = LinkToken::parse(one.expose()).unwrap();
        assert_eq!(parsed.hash(), one.hash());
        assert_ne!(one.hash(), two.hash());
        assert_eq!(format!("{one:?}"), "LinkToken([redacted])");
    }

    #[test]
    fn anything_but_the_minted_shape_is_refused() {
        let good = LinkToken::generate();
        let body = &good.expose()[PREFIX.len()..];
        for bad in [
            String::new(),
            body.to_owned(),
            format!("prt_{body}"),
            format!("{PREFIX}{body}A"),
            format!("{PREFIX}{}", &body[1..]),
            format!("{PREFIX}{}+", &body[1..]),
            "x".repeat(100_000),
        ] {
            assert!(LinkToken::parse(&bad).is_none(), "{bad:.60}");
        }
    }
}
