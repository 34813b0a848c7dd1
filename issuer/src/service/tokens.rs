//! Access tokens: minted with `jsonwebtoken`, verified with `portcullis-core`.
//!
//! The two libraries are independent on purpose (design note 0001): every bearer token the
//! issuer accepts was signed by one and checked by the other, so a disagreement between them
//! shows up on the first request instead of at an edge. A self-test at start makes the same
//! check before the issuer serves anything.

use std::sync::Arc;

use portcullis_core::{Claim, Claims, KeySet, TokenError, Validation, Verifier};
use serde::Serialize;

use super::keys::KeyRing;
use super::revocation::RevocationService;
use crate::clock::{Clock, unix_secs};
use crate::crypto::secret::SecretString;
use crate::crypto::signing::{MaterialError, PublicJwk, SigningAlgorithm};
use crate::error::{ApiError, FailureClass};
use crate::ids::{SessionId, TenantId, UserId};
use crate::store::{Grants, RevocationProbe, StoreError, Tenant};

/// The `typ` of access tokens (RFC 9068).
const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Why a bearer token does not authenticate a request.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AuthError {
    /// The token is invalid, expired, revoked or for another tenant.
    #[error("token refused: {0}")]
    Token(TokenError),
    /// The revocation check could not be made.
    #[error("revocation check failed")]
    Store(#[from] StoreError),
}

/// The authenticated caller of one request.
#[derive(Clone, Debug)]
pub(crate) struct Principal {
    pub(crate) tenant: Tenant,
    pub(crate) user: UserId,
    pub(crate) session: SessionId,
    pub(crate) jti: String,
    pub(crate) claims: Claims,
}

/// Whom an access token speaks for.
#[derive(Debug)]
pub(crate) struct AccessGrant<'a> {
    pub(crate) tenant: TenantId,
    pub(crate) user: UserId,
    pub(crate) session: SessionId,
    pub(crate) grants: &'a Grants,
    pub(crate) amr: &'a [String],
}

/// A freshly minted access token.
#[derive(Debug)]
pub(crate) struct AccessToken {
    pub(crate) token: SecretString,
    pub(crate) expires_in: u64,
}

/// The claims as minted, in the order of API.md.
#[derive(Serialize)]
struct MintedClaims<'a> {
    iss: &'a str,
    sub: String,
    aud: &'a str,
    exp: u64,
    iat: u64,
    nbf: u64,
    jti: String,
    tid: String,
    sid: String,
    roles: &'a [String],
    perms: &'a [String],
    amr: &'a [String],
}

/// The key new tokens are signed with.
struct Signer {
    header: jsonwebtoken::Header,
    key: jsonwebtoken::EncodingKey,
}

/// Mints and verifies access tokens.
pub(crate) struct TokenService {
    issuer: String,
    audience: String,
    access_ttl_secs: u64,
    signer: Signer,
    verifier: Verifier,
    jwks: Vec<PublicJwk>,
    revocations: Arc<RevocationService>,
    clock: Clock,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("issuer", &self.issuer)
            .field("kid", &self.signer.header.kid)
            .field("verifier", &self.verifier)
            .finish_non_exhaustive()
    }
}

/// What the token service is built from.
#[derive(Debug)]
pub(crate) struct TokenSetup<'a> {
    pub(crate) ring: &'a KeyRing,
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) access_ttl_secs: u64,
    pub(crate) revocations: Arc<RevocationService>,
    pub(crate) clock: Clock,
}

impl TokenService {
    /// Builds the signer from the active key and the verifier from every key of the ring.
    pub(crate) fn new(setup: TokenSetup<'_>) -> Result<Self, MaterialError> {
        let active = setup.ring.active().ok_or(MaterialError::Kid)?;
        let mut header = jsonwebtoken::Header::new(match active.algorithm() {
            SigningAlgorithm::Hs256 => jsonwebtoken::Algorithm::HS256,
            SigningAlgorithm::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        });
        header.typ = Some(ACCESS_TOKEN_TYP.to_owned());
        header.kid = Some(active.kid().to_owned());
        let signer = Signer {
            header,
            key: active.encoding_key()?,
        };
        let mut keys = KeySet::new();
        for material in setup.ring.keys() {
            keys.insert(material.verification_key()?)
                .map_err(|_| MaterialError::Kid)?;
        }
        let validation = Validation::new(&setup.issuer, &setup.audience);
        Ok(Self {
            verifier: Verifier::new(keys, validation),
            jwks: setup
                .ring
                .keys()
                .iter()
                .filter_map(|key| key.public_jwk())
                .collect(),
            signer,
            issuer: setup.issuer,
            audience: setup.audience,
            access_ttl_secs: setup.access_ttl_secs,
            revocations: setup.revocations,
            clock: setup.clock,
        })
    }

    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The public keys for `/.well-known/jwks.json` (EdDSA only).
    pub(crate) fn jwks(&self) -> &[PublicJwk] {
        &self.jwks
    }

    /// Signs a new access token.
    pub(crate) fn mint(&self, grant: &AccessGrant<'_>) -> Result<AccessToken, ApiError> {
        let now = unix_secs(self.clock.now());
        let claims = MintedClaims {
            iss: &self.issuer,
            sub: grant.user.to_string(),
            aud: &self.audience,
            exp: now.saturating_add(self.access_ttl_secs),
            iat: now,
            nbf: now,
            jti: self.clock.new_uuid_v7().to_string(),
            tid: grant.tenant.to_string(),
            sid: grant.session.to_string(),
            roles: &grant.grants.roles,
            perms: &grant.grants.permissions,
            amr: grant.amr,
        };
        let token = jsonwebtoken::encode(&self.signer.header, &claims, &self.signer.key)
            .map_err(|err| ApiError::internal(FailureClass::Fault, err))?;
        Ok(AccessToken {
            token: SecretString::new(token),
            expires_in: self.access_ttl_secs,
        })
    }

    /// Checks signature, claims and tenant, but not revocation.
    pub(crate) fn verify(&self, tenant: &Tenant, token: &str) -> Result<Principal, TokenError> {
        let claims = self.verifier.verify(token, unix_secs(self.clock.now()))?;
        let tid = claims.tid().ok_or(TokenError::MissingClaim(Claim::Tid))?;
        if tid != tenant.id.to_string() {
            return Err(TokenError::InvalidClaim(Claim::Tid));
        }
        let user = UserId::parse(claims.sub()).ok_or(TokenError::InvalidClaim(Claim::Sub))?;
        let sid = claims.sid().ok_or(TokenError::MissingClaim(Claim::Sid))?;
        let session = SessionId::parse(sid).ok_or(TokenError::InvalidClaim(Claim::Sid))?;
        let jti = claims
            .jti()
            .map(String::from)
            .ok_or(TokenError::MissingClaim(Claim::Jti))?;
        Ok(Principal {
            tenant: tenant.clone(),
            user,
            session,
            jti,
            claims,
        })
    }

    /// Verifies a bearer token and checks it is not revoked.
    pub(crate) async fn authenticate(
        &self,
        tenant: &Tenant,
        token: &str,
    ) -> Result<Principal, AuthError> {
        let principal = self.verify(tenant, token).map_err(AuthError::Token)?;
        let session = principal.session.to_string();
        let probe = RevocationProbe {
            jti: &principal.jti,
            session: &session,
            subject: principal.claims.sub(),
        };
        self.revocations.check(probe, &principal.claims).await?;
        Ok(principal)
    }

    /// Mints a token and verifies it with the core, before serving: a disagreement between
    /// the two libraries, or a key the core refuses, stops the start-up.
    pub(crate) fn self_test(&self) -> Result<(), TokenError> {
        let tenant = Tenant {
            id: crate::ids::DEFAULT_TENANT,
            slug: "default".to_owned(),
        };
        let grants = Grants::default();
        let grant = AccessGrant {
            tenant: tenant.id,
            user: UserId::from_uuid(self.clock.new_uuid_v7()),
            session: SessionId::from_uuid(self.clock.new_uuid_v7()),
            grants: &grants,
            amr: &[],
        };
        let minted = self.mint(&grant).map_err(|_| TokenError::Malformed)?;
        self.verify(&tenant, minted.token.expose()).map(drop)
    }
}
