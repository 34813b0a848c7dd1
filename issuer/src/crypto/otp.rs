//! One-time codes of the second factor (design note 0005, "TOTP MFA"): RFC 6238 TOTP codes,
//! backup codes, and the `mfa_token` of a half-done login.
//!
//! TOTP is SHA-1, 6 digits, 30 s steps, and a code of the step before or after the current one
//! is accepted too (clock drift, RFC 6238 section 5.2). `totp-rs` computes the codes; the
//! comparison here looks at every step of the window and compares in constant time with
//! `subtle`, so the answer time does not say which step (if any) matched. Refusing a replayed
//! step is the store's job: the step returned here is spent there, once.
//!
//! Backup codes carry 80 random bits, shown as `xxxx-xxxx-xxxx-xxxx` in lowercase RFC 4648
//! base32, so a fast hash (SHA-256) is enough to store them. `mfa_token`s are `pmt_` + 256
//! random bits in base64url, stored as SHA-256 like refresh tokens.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};
use subtle::{Choice, ConstantTimeEq as _};
use totp_rs::{Builder, Totp};
use zeroize::Zeroizing;

use super::keys::random_bytes;
use super::refresh::TokenHash;
use super::secret::{SecretBytes, SecretString};

/// Bytes of a TOTP secret: 160 bits, as RFC 4226 section 4 recommends.
pub(crate) const SECRET_LEN: usize = 20;
/// Seconds per RFC 6238 time step.
pub(crate) const STEP_SECS: u64 = 30;
/// Steps accepted either side of the current one.
const SKEW_STEPS: u64 = 1;
/// Digits of a code.
pub(crate) const DIGITS: usize = 6;
/// Backup codes per set.
pub(crate) const BACKUP_CODE_COUNT: usize = 10;
/// Random bytes per backup code (80 bits), 16 base32 characters.
const BACKUP_CODE_BYTES: usize = 10;
const BACKUP_CODE_CHARS: usize = 16;
/// RFC 4648 base32, lowercase for backup codes (easier to read back and type).
const BASE32_LOWER: base32::Alphabet = base32::Alphabet::Rfc4648Lower { padding: false };
/// The prefix of an `mfa_token`, recognisable to secret scanners.
const MFA_TOKEN_PREFIX: &str = "pmt_";
/// Base64url characters of 32 bytes without padding.
const MFA_TOKEN_BODY_LEN: usize = 43;

/// A TOTP secret could not be turned into a generator or a URI.
#[derive(Debug, thiserror::Error)]
#[error("TOTP setup failed: {0}")]
pub(crate) struct OtpError(String);

/// A user's TOTP secret in clear; only this process's memory and the user's authenticator
/// hold it.
#[derive(Clone, Debug)]
pub(crate) struct TotpSecret(SecretBytes);

impl TotpSecret {
    /// 160 fresh bits from the operating system.
    pub(crate) fn generate() -> Self {
        Self(SecretBytes::new(random_bytes::<SECRET_LEN>().to_vec()))
    }

    /// A secret unsealed from storage.
    pub(crate) fn from_bytes(bytes: SecretBytes) -> Self {
        Self(bytes)
    }

    /// The raw secret, to seal it for storage.
    pub(crate) fn bytes(&self) -> &SecretBytes {
        &self.0
    }

    /// Unpadded uppercase base32, what authenticator apps take when typed in.
    pub(crate) fn base32(&self) -> SecretString {
        let alphabet = base32::Alphabet::Rfc4648 { padding: false };
        SecretString::new(base32::encode(alphabet, self.0.expose()))
    }

    fn generator(&self, issuer: Option<&str>, account: &str) -> Result<Totp, OtpError> {
        Builder::new()
            .with_secret(self.0.expose())
            .with_digits(6)
            .with_step_duration(STEP_SECS)
            .with_skew(0)
            .with_issuer(issuer)
            .with_account_name(account)
            .build()
            .map_err(|err| OtpError(err.to_string()))
    }

    /// The Key URI (`otpauth://totp/Issuer:account?secret=…&issuer=…`) that authenticator
    /// apps read from a QR code. Neither name may contain `:`.
    pub(crate) fn otpauth_uri(
        &self,
        issuer: &str,
        account: &str,
    ) -> Result<SecretString, OtpError> {
        self.generator(Some(issuer), account)?
            .to_url()
            .map(SecretString::new)
            .map_err(|err| OtpError(err.to_string()))
    }

    /// The code of RFC 6238 time step `step`.
    pub(crate) fn code_at_step(&self, step: u64) -> Result<Zeroizing<String>, OtpError> {
        let totp = self.generator(None, "")?;
        Ok(Zeroizing::new(
            totp.generate(step.saturating_mul(STEP_SECS)).to_string(),
        ))
    }

    /// The step of the window around `unix_secs` whose code is `code`, or `None`. Every step
    /// of the window is computed and compared, in constant time; should two steps share the
    /// code, the later one is taken (spending it also spends the earlier one).
    pub(crate) fn matching_step(&self, code: &TotpCode, unix_secs: u64) -> Option<u64> {
        let current = unix_secs / STEP_SECS;
        let first = current.saturating_sub(SKEW_STEPS);
        let mut matched = None;
        for step in first..=current.saturating_add(SKEW_STEPS) {
            let Ok(expected) = self.code_at_step(step) else {
                return None;
            };
            let equal: Choice = expected.as_bytes().ct_eq(code.0.expose().as_bytes());
            if bool::from(equal) {
                matched = Some(step);
            }
        }
        matched
    }
}

/// A presented TOTP code: exactly six ASCII digits.
#[derive(Debug)]
pub(crate) struct TotpCode(SecretString);

impl TotpCode {
    /// Six ASCII digits, with any spaces dropped: authenticator apps show codes as
    /// `123 456`, and people paste them with a space on either side. `None` for anything else.
    pub(crate) fn parse(presented: &str) -> Option<Self> {
        if presented.len() > 2 * DIGITS {
            return None;
        }
        let digits: Zeroizing<String> =
            Zeroizing::new(presented.chars().filter(|&c| c != ' ').collect());
        let valid = digits.len() == DIGITS && digits.bytes().all(|b| b.is_ascii_digit());
        valid.then(|| Self(SecretString::new(digits.to_string())))
    }
}

/// A backup code as presented, in canonical form (lowercase, no separators).
#[derive(Debug)]
pub(crate) struct BackupCode(SecretString);

impl BackupCode {
    /// A fresh code of 80 random bits.
    pub(crate) fn generate() -> Self {
        let bytes = random_bytes::<BACKUP_CODE_BYTES>();
        Self(SecretString::new(base32::encode(
            BASE32_LOWER,
            bytes.as_slice(),
        )))
    }

    /// Accepts a code as shown (`xxxx-xxxx-xxxx-xxxx`) or typed without the dashes or spaces,
    /// in either case; `None` for anything that cannot be a backup code.
    pub(crate) fn parse(presented: &str) -> Option<Self> {
        if presented.len() > 2 * BACKUP_CODE_CHARS {
            return None;
        }
        let canonical: Zeroizing<String> = Zeroizing::new(
            presented
                .chars()
                .filter(|c| !matches!(c, '-' | ' '))
                .map(|c| c.to_ascii_lowercase())
                .collect(),
        );
        let valid = canonical.len() == BACKUP_CODE_CHARS
            && canonical
                .bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b));
        valid.then(|| Self(SecretString::new(canonical.to_string())))
    }

    /// How the code is shown to its owner: four groups of four.
    pub(crate) fn display(&self) -> SecretString {
        let text = self.0.expose();
        let groups: Vec<&str> = (0..BACKUP_CODE_CHARS)
            .step_by(4)
            .filter_map(|start| text.get(start..start + 4))
            .collect();
        SecretString::new(groups.join("-"))
    }

    /// What the database stores.
    pub(crate) fn hash(&self) -> TokenHash {
        Sha256::digest(self.0.expose().as_bytes()).into()
    }
}

/// The `mfa_token` of a half-done login or of a required enrolment.
#[derive(Debug)]
pub(crate) struct MfaToken(SecretString);

impl MfaToken {
    /// 256 fresh bits.
    pub(crate) fn generate() -> Self {
        let mut encoded = Zeroizing::new(String::from(MFA_TOKEN_PREFIX));
        URL_SAFE_NO_PAD.encode_string(random_bytes::<32>().as_slice(), &mut encoded);
        Self(SecretString::new(encoded.to_string()))
    }

    /// Only the exact shape this issuer mints.
    pub(crate) fn parse(presented: &str) -> Option<Self> {
        let body = presented.strip_prefix(MFA_TOKEN_PREFIX)?;
        let canonical = body.len() == MFA_TOKEN_BODY_LEN
            && URL_SAFE_NO_PAD
                .decode(body)
                .is_ok_and(|bytes| URL_SAFE_NO_PAD.encode(bytes) == body);
        canonical.then(|| Self(SecretString::new(presented.to_owned())))
    }

    /// What the database stores and looks tokens up by.
    pub(crate) fn hash(&self) -> TokenHash {
        Sha256::digest(self.0.expose().as_bytes()).into()
    }

    pub(crate) fn secret(&self) -> &SecretString {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    /// The RFC 6238 Appendix B SHA-1 rows of `../shared/vectors/public.json`: seed, and
    /// (time, 6-digit code) pairs.
    fn rfc6238_sha1() -> (TotpSecret, Vec<(u64, String)>) {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/vectors/public.json"
        );
        let text = std::fs::read_to_string(path).expect("the shared vectors");
        let vectors: Value = serde_json::from_str(&text).unwrap();
        let totp = vectors["vectors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|vector| vector["id"] == "totp-rfc6238-appendix-b")
            .expect("the RFC 6238 vector");
        let seed = hex(totp["seeds"]["SHA1"]["hex"].as_str().unwrap());
        let rows = totp["table"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|row| row["algorithm"] == "SHA1")
            .map(|row| {
                (
                    row["unix_time"].as_u64().unwrap(),
                    row["totp_6_digits_derived"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        (TotpSecret::from_bytes(SecretBytes::new(seed)), rows)
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc6238_vectors_are_reproduced_and_accepted() {
        let (secret, rows) = rfc6238_sha1();
        assert!(rows.len() >= 6, "{rows:?}");
        for (time, code) in rows {
            let step = time / STEP_SECS;
            assert_eq!(*secret.code_at_step(step).unwrap(), code, "t = {time}");
            let presented = TotpCode::parse(&code).unwrap();
            assert_eq!(
                secret.matching_step(&presented, time),
                Some(step),
                "t = {time}"
            );
        }
    }

    #[test]
    fn the_window_is_one_step_either_side() {
        let (secret, _) = rfc6238_sha1();
        let now = 1_111_111_109;
        let current = now / STEP_SECS;
        for (offset, accepted) in [
            (-2_i64, false),
            (-1, true),
            (0, true),
            (1, true),
            (2, false),
        ] {
            let step = current.checked_add_signed(offset).unwrap();
            let code = TotpCode::parse(&secret.code_at_step(step).unwrap()).unwrap();
            let expected = accepted.then_some(step);
            assert_eq!(
                secret.matching_step(&code, now),
                expected,
                "offset {offset}"
            );
        }
    }

    #[test]
    fn codes_must_be_six_digits() {
        for bad in [
            "",
            "12345",
            "1234567",
            "12345a",
            "+12345",
            "\t123456",
            "123-456",
            "1 2 3 4 5 6 7",
            "１２３４５６",
        ] {
            assert!(TotpCode::parse(bad).is_none(), "{bad:?}");
        }
        for good in ["012345", "012 345", " 012345 "] {
            let code = TotpCode::parse(good).unwrap();
            assert_eq!(code.0.expose(), "012345", "{good:?}");
        }
    }

    #[test]
    fn the_otpauth_uri_names_issuer_account_and_secret() {
        let (secret, _) = rfc6238_sha1();
        let uri = secret.otpauth_uri("Portcullis", "ada@example.com").unwrap();
        assert_eq!(
            uri.expose(),
            "otpauth://totp/Portcullis:ada%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Portcullis"
        );
        assert_eq!(secret.base32().expose(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert!(secret.otpauth_uri("Port:cullis", "ada").is_err());
    }

    #[test]
    fn backup_codes_are_80_bits_shown_in_groups_and_parsed_leniently() {
        let code = BackupCode::generate();
        let shown = code.display();
        let text = shown.expose();
        assert_eq!(text.len(), 19, "{text}");
        assert_eq!(text.matches('-').count(), 3, "{text}");
        let again = BackupCode::parse(text).unwrap();
        assert_eq!(again.hash(), code.hash());
        let loose = text.replace('-', " ").to_ascii_uppercase();
        assert_eq!(BackupCode::parse(&loose).unwrap().hash(), code.hash());
        assert_ne!(BackupCode::generate().hash(), code.hash());
        for bad in [
            "",
            "abcd-efgh-ijkl-mno",
            "abcd-efgh-ijkl-mnop1",
            "abcd-efgh-ijkl-mn0p",
        ] {
            assert!(BackupCode::parse(bad).is_none(), "{bad:?}");
        }
        assert!(BackupCode::parse(&"a".repeat(1000)).is_none());
    }

    #[test]
    fn mfa_tokens_have_one_shape() {
        let token = MfaToken::generate();
        let text = token.secret().expose();
        assert!(text.starts_with("pmt_") && text.len() == 4 + 43, "{text}");
        assert_eq!(MfaToken::parse(text).unwrap().hash(), token.hash());
        for bad in [
            "",
            "pmt_",
            &text[4..],
            &format!("{text}A"),
            &text.replace("pmt_", "prt_"),
        ] {
            assert!(MfaToken::parse(bad).is_none(), "{bad:?}");
        }
    }
}
