//! The signing keys a test gives its issuer (through the config file), so the test can also
//! mint tokens the edge must judge: the issuer's own tokens re-signed with changed claims
//! (expired, another audience, a permission the user lacks), or signed under a `kid` nobody
//! published. Signing is done here with the primitives, not with the issuer's or core's code.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer as _;
use serde_json::{Value, json};

use crate::support::jwt;

/// Which of the two keys signs the issuer's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signing {
    /// EdDSA: published in the issuer's JWKS, which the edge fetches.
    EdDsa,
    /// HS256: the secret given to the edge as `PORTCULLIS_HS256_KEYS`, JWKS off.
    Hs256,
}

/// One random EdDSA key and one random HS256 secret, with their `kid`s.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    pub(crate) signing: Signing,
    pub(crate) ed_kid: String,
    ed_seed: [u8; 32],
    pub(crate) hs_kid: String,
    hs_secret: [u8; 32],
}

impl Keys {
    pub(crate) fn random(signing: Signing) -> Keys {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Keys {
            signing,
            ed_kid: format!("ed-{}", &id[..8]),
            ed_seed: rand::random(),
            hs_kid: format!("hs-{}", &id[..8]),
            hs_secret: rand::random(),
        }
    }

    /// The issuer's `[[token.keys]]`: both keys, the one named by `signing` active.
    pub(crate) fn issuer_toml(&self) -> String {
        let ed_active = self.signing == Signing::EdDsa;
        format!(
            "[[token.keys]]\nkid = \"{}\"\nalg = \"EdDSA\"\nprivate_key = \"{}\"\nactive = {}\n\n\
             [[token.keys]]\nkid = \"{}\"\nalg = \"HS256\"\nsecret = \"{}\"\nactive = {}\n",
            self.ed_kid,
            URL_SAFE_NO_PAD.encode(self.ed_seed),
            ed_active,
            self.hs_kid,
            self.hs_secret_base64url(),
            !ed_active,
        )
    }

    /// The edge's `PORTCULLIS_HS256_KEYS` secret.
    pub(crate) fn hs256_keys_json(&self) -> String {
        json!([{"kid": self.hs_kid, "secret": self.hs_secret_base64url()}]).to_string()
    }

    /// The HS256 secret as it is configured (base64url), to look for it where it must not be.
    pub(crate) fn hs_secret_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.hs_secret)
    }

    /// The EdDSA public key's 32 raw bytes, which anyone can read from the JWKS: the key of
    /// the classic algorithm-confusion forgery (HS256 keyed with a public key).
    pub(crate) fn ed_public_key(&self) -> [u8; 32] {
        ed25519_dalek::SigningKey::from_bytes(&self.ed_seed)
            .verifying_key()
            .to_bytes()
    }

    /// A compact JWS over `header` and `claims`, signed with the key its `alg` names (EdDSA
    /// or HS256), whatever its `kid` says.
    pub(crate) fn sign(&self, header: &Value, claims: &Value) -> String {
        match header["alg"].as_str() {
            Some("EdDSA") => {
                let input = format!("{}.{}", encode(header), encode(claims));
                let key = ed25519_dalek::SigningKey::from_bytes(&self.ed_seed);
                let signature = key.sign(input.as_bytes()).to_bytes();
                format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
            }
            Some("HS256") => jwt::sign_hs256(header, claims, &self.hs_secret),
            other => panic!("no key for alg {other:?}"),
        }
    }

    /// `token` with its claims changed by `change` and signed again with the right key: as
    /// valid as the original in every respect the change leaves alone.
    pub(crate) fn resign(&self, token: &str, change: impl FnOnce(&mut Value)) -> String {
        let header = jwt::header(token);
        let mut claims = jwt::payload(token);
        change(&mut claims);
        self.sign(&header, &claims)
    }

    /// `token` with its header changed by `change` and signed again with the key its `alg`
    /// names.
    pub(crate) fn resign_header(&self, token: &str, change: impl FnOnce(&mut Value)) -> String {
        let mut header = jwt::header(token);
        change(&mut header);
        self.sign(&header, &jwt::payload(token))
    }
}

fn encode(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("serialize"))
}

/// `token` with its claims replaced (`sub` changed) but the original signature kept: the
/// classic tampering an edge that skipped the signature check would let through.
pub(crate) fn tamper_claims(token: &str) -> String {
    let mut parts = token.split('.');
    let (header, _, signature) = (
        parts.next().expect("header"),
        parts.next().expect("payload"),
        parts.next().expect("signature"),
    );
    let mut claims = jwt::payload(token);
    claims["sub"] = json!("usr_0190000000007000800000000000beef");
    format!("{header}.{}.{signature}", encode(&claims))
}

/// `token` with one bit of its signature flipped.
pub(crate) fn flip_signature_bit(token: &str) -> String {
    let (signing_input, signature) = token.rsplit_once('.').expect("a compact JWS");
    let mut bytes = URL_SAFE_NO_PAD
        .decode(signature)
        .expect("base64url signature");
    bytes[0] ^= 0x01;
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(bytes))
}
