//! The JWS compact serialization layer (RFC 7515 section 7.1): structure, header rules and
//! signatures, with no notion of claims.
//!
//! [`Verifier`](crate::Verifier) builds on this layer; it is public so known-answer vectors
//! (RFC 7515 A.1, RFC 8037 A.4) can be checked at the level they are published at, including
//! ones whose payload is not a JWT.
//!
//! Decoding is strict: base64url without padding, and canonical, so the unused low bits of
//! the last character must be zero. Without that rule several encodings of one signature
//! would verify, and a token would not be a unique string (which matters to anything that
//! caches or deduplicates tokens by their text). The decoding itself is the `base64` crate's
//! `GeneralPurpose` engine, configured to refuse padding and stray trailing bits.

use alloc::vec::Vec;
use core::fmt;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::error::TokenError;
use crate::jwt::header::Header;
use crate::key::{Algorithm, Key};

/// The longest token accepted, in bytes. Longer input is refused before any decoding, which
/// bounds the work an attacker can cause per request.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The longest signature of a supported algorithm (Ed25519), in bytes.
const MAX_SIGNATURE_LEN: usize = 64;

/// The base64url codec of every token segment and JWK member (RFC 7515 section 2): the
/// URL-safe alphabet, no padding on output, padding refused on input, and stray bits in the
/// last character refused, so every byte string has exactly one accepted encoding.
pub(crate) const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// Headers up to this many decoded bytes are parsed from the stack, without allocating.
const HEADER_STACK_LEN: usize = 256;

/// A compact JWS split into its parts, borrowing the token text.
///
/// [`parse`](Self::parse) checks the size, the three segments and the signature encoding;
/// the header and payload encodings are checked when they are decoded. `Debug` shows only
/// segment lengths: a token is a bearer credential and must not end up in logs.
///
/// ```
/// use portcullis_core::Key;
/// use portcullis_core::jws::CompactJws;
///
/// // RFC 8037 appendix A.4.
/// let public = [
///     0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64,
///     0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68,
///     0xf7, 0x07, 0x51, 0x1a,
/// ];
/// let token = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG\
///     1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
/// let jws = CompactJws::parse(token)?;
/// let payload = jws.verify(&Key::ed25519("a4", &public)?)?;
/// assert_eq!(payload, b"Example of Ed25519 signing");
/// # Ok::<(), Box<dyn core::error::Error>>(())
/// ```
#[derive(Clone, Copy)]
pub struct CompactJws<'a> {
    signing_input: &'a str,
    header: &'a str,
    payload: &'a str,
    signature: [u8; MAX_SIGNATURE_LEN],
    /// The decoded signature length, or `None` when it is longer than any supported
    /// signature (such a token can never verify).
    signature_len: Option<usize>,
}

impl<'a> CompactJws<'a> {
    /// Splits a compact JWS and decodes its signature.
    ///
    /// # Errors
    ///
    /// [`TokenError::TooLarge`] above [`MAX_TOKEN_LEN`] bytes; [`TokenError::Malformed`]
    /// unless there are exactly three segments, the first two non-empty, and the signature
    /// is canonical base64url without padding (it may be empty, as in an unsecured JWS, which
    /// then fails verification).
    pub fn parse(token: &'a str) -> Result<Self, TokenError> {
        let jws = Self::split(token)?;
        if jws.payload.contains('.') {
            return Err(TokenError::Malformed);
        }
        Ok(jws)
    }

    /// [`parse`](Self::parse) without looking for a `.` inside the payload segment, for
    /// callers that decode the payload anyway: the decoder refuses the `.` as `Malformed`,
    /// and scanning the payload twice is a measurable share of verification time.
    pub(crate) fn split(token: &'a str) -> Result<Self, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLarge);
        }
        let (signing_input, signature_b64) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let (header, payload) = signing_input.split_once('.').ok_or(TokenError::Malformed)?;
        if header.is_empty() || payload.is_empty() {
            return Err(TokenError::Malformed);
        }
        let mut signature = [0u8; MAX_SIGNATURE_LEN];
        let signature_len = match decode_into(signature_b64, &mut signature)? {
            Some(len) => Some(len),
            None => {
                // Longer than any supported signature. Still insist on a valid encoding, so
                // `parse` means the same for every token.
                decode_vec(signature_b64)?;
                None
            }
        };
        Ok(Self {
            signing_input,
            header,
            payload,
            signature,
            signature_len,
        })
    }

    /// The ASCII text the signature covers: `header.payload`, still encoded.
    #[must_use]
    pub fn signing_input(&self) -> &'a str {
        self.signing_input
    }

    /// The encoded protected header segment.
    #[must_use]
    pub fn header_b64(&self) -> &'a str {
        self.header
    }

    /// The encoded payload segment.
    #[must_use]
    pub fn payload_b64(&self) -> &'a str {
        self.payload
    }

    /// The decoded signature; empty if it is longer than any supported signature.
    #[must_use]
    pub fn signature(&self) -> &[u8] {
        self.signature
            .get(..self.signature_len.unwrap_or(0))
            .unwrap_or_default()
    }

    /// Decodes the payload. It has not been authenticated unless a verification of this
    /// token has succeeded.
    ///
    /// # Errors
    ///
    /// [`TokenError::Malformed`] if the payload is not canonical base64url without padding.
    pub fn decode_payload(&self) -> Result<Vec<u8>, TokenError> {
        decode_vec(self.payload)
    }

    /// Verifies the token with one given key and returns the authenticated payload.
    ///
    /// The header must parse under the same rules as for a JWT (no `crit`, `jku`, `jwk`,
    /// `x5u`, `x5c`, no duplicates); its `alg` must be the key's algorithm; and a `kid`, which
    /// is optional at this layer, must name this key. The payload need not be JSON.
    ///
    /// # Errors
    ///
    /// [`TokenError::Malformed`] for a bad header or payload encoding;
    /// [`TokenError::UnsupportedAlgorithm`] for an `alg` not implemented here (`none`
    /// included); [`TokenError::UnknownKey`] for a `kid` naming another key;
    /// [`TokenError::AlgorithmMismatch`] when `alg` is not the key's algorithm;
    /// [`TokenError::BadSignature`] when the signature does not verify.
    pub fn verify(&self, key: &Key) -> Result<Vec<u8>, TokenError> {
        self.with_header(|header| {
            let alg = algorithm(header)?;
            if header.kid.as_deref().is_some_and(|kid| kid != key.kid()) {
                return Err(TokenError::UnknownKey);
            }
            if alg != key.algorithm() {
                return Err(TokenError::AlgorithmMismatch);
            }
            self.verify_signature(key)
        })?;
        self.decode_payload()
    }

    /// Checks the signature alone with the key's own algorithm.
    pub(crate) fn verify_signature(&self, key: &Key) -> Result<(), TokenError> {
        if self.signature_len.is_none() {
            return Err(TokenError::BadSignature);
        }
        key.verify_signature(self.signing_input.as_bytes(), self.signature())
    }

    /// Decodes and parses the header, then runs `check` on it, without allocating for
    /// headers up to [`HEADER_STACK_LEN`] decoded bytes.
    pub(crate) fn with_header<R>(
        &self,
        check: impl FnOnce(&Header<'_>) -> Result<R, TokenError>,
    ) -> Result<R, TokenError> {
        with_decoded::<HEADER_STACK_LEN, R>(self.header, |json| check(&Header::parse(json)?))
    }
}

impl fmt::Debug for CompactJws<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompactJws")
            .field("header_len", &self.header.len())
            .field("payload_len", &self.payload.len())
            .field("signature_len", &self.signature_len)
            .finish()
    }
}

/// The algorithm named by the header, if this crate implements it.
pub(crate) fn algorithm(header: &Header<'_>) -> Result<Algorithm, TokenError> {
    // Exact, case-sensitive names: "none", "None", "NONE", "hs256"... are all refused here.
    Algorithm::from_jose(&header.alg).ok_or(TokenError::UnsupportedAlgorithm)
}

/// Decodes `encoded` into the start of `out`: the decoded length, or `None` if `out` is too
/// small (the input may then still be invalid).
///
/// Token segments are decoded by `base64-simd` (SIMD where the CPU has it, chosen at run
/// time with `std`): decoding the payload was the largest cost of verification after the MAC.
/// Its `URL_SAFE_NO_PAD` is as strict as [`BASE64URL`]: padding and stray trailing bits are
/// refused (the test `base64url_engine_is_canonical_only` holds both to that).
fn decode_into(encoded: &str, out: &mut [u8]) -> Result<Option<usize>, TokenError> {
    let codec = base64_simd::URL_SAFE_NO_PAD;
    let len = codec
        .decoded_length(encoded.as_bytes())
        .map_err(|_| TokenError::Malformed)?;
    let Some(out) = out.get_mut(..len) else {
        return Ok(None);
    };
    codec
        .decode(encoded.as_bytes(), base64_simd::Out::from_slice(out))
        .map(|decoded| Some(decoded.len()))
        .map_err(|_| TokenError::Malformed)
}

fn decode_vec(encoded: &str) -> Result<Vec<u8>, TokenError> {
    base64_simd::URL_SAFE_NO_PAD
        .decode_to_vec(encoded)
        .map_err(|_| TokenError::Malformed)
}

/// Decodes `encoded` into a stack buffer of `N` bytes (or the heap when it is too small) and
/// hands the bytes to `use_bytes`.
fn with_decoded<const N: usize, R>(
    encoded: &str,
    use_bytes: impl FnOnce(&[u8]) -> Result<R, TokenError>,
) -> Result<R, TokenError> {
    let mut stack = [0u8; N];
    match decode_into(encoded, &mut stack)? {
        Some(written) => use_bytes(stack.get(..written).ok_or(TokenError::Malformed)?),
        None => use_bytes(&decode_vec(encoded)?),
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    const SECRET: [u8; 32] = [7u8; 32];

    fn hs256_token(header: &str, payload: &str) -> alloc::string::String {
        use hmac::Mac as _;
        let signing_input = alloc::format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&SECRET).unwrap();
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        alloc::format!("{signing_input}.{signature}")
    }

    fn key() -> Key {
        Key::hs256("k1", &SECRET).unwrap()
    }

    #[test]
    fn parse_segment_count_other_than_three_is_malformed() {
        for token in ["", ".", "..", "a.b", "a.b.c.d", "a..c", ".b.c", "abc"] {
            assert_eq!(
                CompactJws::parse(token).err(),
                Some(TokenError::Malformed),
                "{token}"
            );
        }
    }

    #[test]
    fn parse_over_max_len_is_too_large() {
        let token = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(CompactJws::parse(&token).err(), Some(TokenError::TooLarge));
    }

    #[test]
    fn parse_signature_padding_or_stray_bits_is_malformed() {
        // "AB" decodes to one byte, but 'B' leaves a non-zero unused bit.
        for signature in ["AA==", "AB", "A", "A+", "A/", "A A"] {
            let token = alloc::format!("eyJ9.e30.{signature}");
            assert_eq!(
                CompactJws::parse(&token).err(),
                Some(TokenError::Malformed),
                "{signature}"
            );
        }
        assert!(CompactJws::parse("eyJ9.e30.AA").is_ok());
    }

    #[test]
    fn base64url_engine_is_canonical_only() {
        for bad in [
            "A", "AB", "AAB", "AA=", "AA==", "AAA=", "+AAA", "/AAA", "AA A", "AA.A", "é",
        ] {
            assert!(decode_vec(bad).is_err(), "{bad}");
        }
        assert_eq!(decode_vec("AA"), Ok(vec![0]));
        assert_eq!(decode_vec("AAA"), Ok(vec![0, 0]));
        assert_eq!(decode_vec(""), Ok(vec![]));
        let data: Vec<u8> = (0..=255u8).collect();
        for len in 0..data.len() {
            let encoded = BASE64URL.encode(&data[..len]);
            assert_eq!(encoded, URL_SAFE_NO_PAD.encode(&data[..len]));
            assert_eq!(decode_vec(&encoded).as_deref(), Ok(&data[..len]));
        }
    }

    #[test]
    fn decode_into_reports_small_buffer_apart_from_bad_input() {
        let mut out = [0u8; 2];
        assert_eq!(decode_into("AAAA", &mut out), Ok(None));
        assert_eq!(decode_into("AB", &mut out), Err(TokenError::Malformed));
        let mut out = [0u8; 3];
        assert_eq!(decode_into("AAAA", &mut out), Ok(Some(3)));
    }

    #[test]
    fn verify_valid_hs256_returns_payload() {
        let token = hs256_token(r#"{"alg":"HS256","kid":"k1"}"#, "hello");
        let jws = CompactJws::parse(&token).unwrap();
        assert_eq!(jws.verify(&key()).unwrap(), b"hello");
    }

    #[test]
    fn verify_alg_none_any_case_is_unsupported() {
        for alg in [
            "none", "None", "NONE", "nOnE", "hs256", "HS384", "RS256", "",
        ] {
            let header = alloc::format!(r#"{{"alg":"{alg}"}}"#);
            let token = hs256_token(&header, "x");
            let jws = CompactJws::parse(&token).unwrap();
            assert_eq!(
                jws.verify(&key()).err(),
                Some(TokenError::UnsupportedAlgorithm),
                "{alg}"
            );
        }
    }

    #[test]
    fn verify_other_kid_is_unknown_key() {
        let token = hs256_token(r#"{"alg":"HS256","kid":"k2"}"#, "x");
        let jws = CompactJws::parse(&token).unwrap();
        assert_eq!(jws.verify(&key()).err(), Some(TokenError::UnknownKey));
    }

    #[test]
    fn verify_eddsa_header_with_hmac_key_is_mismatch() {
        let token = hs256_token(r#"{"alg":"EdDSA"}"#, "x");
        let jws = CompactJws::parse(&token).unwrap();
        assert_eq!(
            jws.verify(&key()).err(),
            Some(TokenError::AlgorithmMismatch)
        );
    }

    #[test]
    fn verify_truncated_or_overlong_signature_is_bad_signature() {
        let token = hs256_token(r#"{"alg":"HS256"}"#, "x");
        let (input, signature) = token.rsplit_once('.').unwrap();
        let short = alloc::format!("{input}.{}", &signature[..40]);
        let long = alloc::format!("{input}.{signature}{}", "A".repeat(100));
        let empty = alloc::format!("{input}.");
        for token in [short, long, empty] {
            if let Ok(jws) = CompactJws::parse(&token) {
                assert_eq!(jws.verify(&key()).err(), Some(TokenError::BadSignature));
            }
        }
    }

    #[test]
    fn verify_large_header_uses_heap_path() {
        let padding = "x".repeat(HEADER_STACK_LEN * 2);
        let header = alloc::format!(r#"{{"alg":"HS256","pad":"{padding}"}}"#);
        let token = hs256_token(&header, "x");
        assert_eq!(
            CompactJws::parse(&token).unwrap().verify(&key()).unwrap(),
            b"x"
        );
    }

    #[test]
    fn debug_never_shows_token_text() {
        let token = hs256_token(r#"{"alg":"HS256"}"#, "secret-payload");
        let text = alloc::format!("{:?}", CompactJws::parse(&token).unwrap());
        assert!(!text.contains("ey"), "{text}");
    }
}
