//! Step 7: what reaches the origin. Identity headers are the origin's only source of truth
//! about the caller, so every incoming `X-Portcullis-*` header is dropped before the edge sets
//! its own, and a claim that cannot be carried in a header unambiguously refuses the request
//! instead of being mangled on the way.

use portcullis_core::{Claim, Claims, TokenError};

/// The prefix of every header the edge owns.
const IDENTITY_PREFIX: &str = "x-portcullis-";

pub(crate) const SUBJECT_HEADER: &str = "X-Portcullis-Subject";
pub(crate) const TENANT_HEADER: &str = "X-Portcullis-Tenant";
pub(crate) const ROLES_HEADER: &str = "X-Portcullis-Roles";

/// Hop-by-hop headers (RFC 9110 section 7.6.1) and the ones the runtime derives from the
/// forwarded request itself; none of them describes the request end to end.
const NOT_FORWARDED: [&str; 11] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// Whether an incoming header goes to the origin. `connection` is the incoming `Connection`
/// header, whose listed names are hop-by-hop too.
pub(crate) fn is_forwarded(name: &str, connection: Option<&str>) -> bool {
    let name = name.trim();
    let owned = name
        .get(..IDENTITY_PREFIX.len())
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(IDENTITY_PREFIX));
    let hop = NOT_FORWARDED
        .iter()
        .any(|hop| hop.eq_ignore_ascii_case(name));
    let listed = connection.is_some_and(|list| {
        list.split(',')
            .any(|token| token.trim().eq_ignore_ascii_case(name))
    });
    !owned && !hop && !listed
}

/// Who the caller is, as the origin will read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    subject: String,
    tenant: Option<String>,
    roles: String,
}

impl Identity {
    /// The identity of verified claims.
    ///
    /// # Errors
    ///
    /// [`TokenError::InvalidClaim`] for a `sub` or `tid` that is not visible ASCII, or a role
    /// with a comma, control or non-ASCII character or surrounding spaces: header values are
    /// trimmed and re-encoded in transit, and a comma inside a role would split it into two
    /// roles at the origin.
    pub(crate) fn from_claims(claims: &Claims) -> Result<Self, TokenError> {
        let subject = claims.sub();
        if !is_visible_ascii(subject) {
            return Err(TokenError::InvalidClaim(Claim::Sub));
        }
        let tenant = claims.tid();
        if tenant.is_some_and(|tenant| !is_visible_ascii(tenant)) {
            return Err(TokenError::InvalidClaim(Claim::Tid));
        }
        if !claims.roles().all(is_role) {
            return Err(TokenError::InvalidClaim(Claim::Roles));
        }
        Ok(Self {
            subject: subject.to_owned(),
            tenant: tenant.map(str::to_owned),
            roles: claims.roles().collect::<Vec<_>>().join(","),
        })
    }

    /// The headers to set, in order. A token without `tid` gets no tenant header, which
    /// cannot be confused with one the client sent because those were all removed.
    pub(crate) fn headers(&self) -> Vec<(&'static str, &str)> {
        let mut headers = vec![(SUBJECT_HEADER, self.subject.as_str())];
        if let Some(tenant) = &self.tenant {
            headers.push((TENANT_HEADER, tenant.as_str()));
        }
        headers.push((ROLES_HEADER, self.roles.as_str()));
        headers
    }
}

fn is_visible_ascii(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic())
}

fn is_role(role: &str) -> bool {
    !role.is_empty()
        && role.trim() == role
        && role
            .bytes()
            .all(|b| (b.is_ascii_graphic() || b == b' ') && b != b',')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(sub: &str, tid: Option<&str>, roles: &[&str]) -> Claims {
        let mut value = json!({"iss": "i", "sub": sub, "aud": "a", "exp": 1, "roles": roles});
        if let Some(tid) = tid {
            value["tid"] = tid.into();
        }
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn is_forwarded_strips_identity_headers_any_case() {
        for name in [
            "X-Portcullis-Subject",
            "x-portcullis-tenant",
            "X-PORTCULLIS-ROLES",
            "x-Portcullis-Anything-Else",
            "x-portcullis-",
        ] {
            assert!(!is_forwarded(name, None), "{name}");
        }
        for name in [
            "x-portcullis",
            "x-request-id",
            "authorization",
            "cookie",
            "accept",
        ] {
            assert!(is_forwarded(name, None), "{name}");
        }
    }

    #[test]
    fn is_forwarded_drops_hop_by_hop_and_connection_listed() {
        for name in [
            "Connection",
            "keep-alive",
            "Transfer-Encoding",
            "Upgrade",
            "TE",
            "Host",
        ] {
            assert!(!is_forwarded(name, None), "{name}");
        }
        assert!(!is_forwarded(
            "x-secret-hop",
            Some("keep-alive, X-Secret-Hop")
        ));
        assert!(is_forwarded("x-other", Some("keep-alive, X-Secret-Hop")));
    }

    #[test]
    fn identity_headers_carry_subject_tenant_and_roles() {
        let identity = Identity::from_claims(&claims(
            "usr_1",
            Some("tnt_1"),
            &["admin", "billing viewer"],
        ))
        .unwrap();
        assert_eq!(
            identity.headers(),
            [
                (SUBJECT_HEADER, "usr_1"),
                (TENANT_HEADER, "tnt_1"),
                (ROLES_HEADER, "admin,billing viewer"),
            ]
        );
        let bare = Identity::from_claims(&claims("usr_1", None, &[])).unwrap();
        assert_eq!(
            bare.headers(),
            [(SUBJECT_HEADER, "usr_1"), (ROLES_HEADER, "")]
        );
    }

    #[test]
    fn identity_unrepresentable_claims_are_refused() {
        let cases = [
            (claims("usr 1", None, &[]), Claim::Sub),
            (claims("usr_\u{e9}", None, &[]), Claim::Sub),
            (claims("usr_1", Some("t\n1"), &[]), Claim::Tid),
            (claims("usr_1", None, &["admin,root"]), Claim::Roles),
            (claims("usr_1", None, &[" admin"]), Claim::Roles),
            (claims("usr_1", None, &[""]), Claim::Roles),
            (claims("usr_1", None, &["r\u{0}"]), Claim::Roles),
        ];
        for (claims, claim) in cases {
            assert_eq!(
                Identity::from_claims(&claims),
                Err(TokenError::InvalidClaim(claim))
            );
        }
    }
}
