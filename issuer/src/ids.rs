//! Wire identifiers: a type prefix over a UUIDv7 in lowercase hex without dashes
//! (`tnt_…`, `usr_…`, `ses_…`, design note 0001).
//!
//! Parsing is strict (exact prefix, 32 lowercase hex digits), so an identifier has exactly one
//! spelling and one kind of id can never be passed off as another.

use std::fmt;

use uuid::Uuid;

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub(crate) struct $name(Uuid);

        impl $name {
            pub(crate) const PREFIX: &'static str = $prefix;

            pub(crate) const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub(crate) const fn as_uuid(&self) -> Uuid {
                self.0
            }

            /// The id in its wire form, or `None` for anything else.
            pub(crate) fn parse(text: &str) -> Option<Self> {
                parse_hex(text.strip_prefix(Self::PREFIX)?).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", Self::PREFIX, self.0.simple())
            }
        }
    };
}

prefixed_id!(
    /// A tenant.
    TenantId,
    "tnt_"
);
prefixed_id!(
    /// A user (the `sub` of their tokens).
    UserId,
    "usr_"
);
prefixed_id!(
    /// A session, which is also a refresh-token family (the `sid` of its tokens).
    SessionId,
    "ses_"
);

/// The id of the tenant every installation starts with (slug `default`).
pub(crate) const DEFAULT_TENANT: TenantId = TenantId::from_uuid(Uuid::from_u128(1));

fn parse_hex(hex: &str) -> Option<Uuid> {
    let canonical = hex.len() == 32
        && hex
            .bytes()
            .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'));
    canonical.then(|| Uuid::try_parse(hex).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tenant_has_the_documented_wire_form() {
        assert_eq!(
            DEFAULT_TENANT.to_string(),
            "tnt_00000000000000000000000000000001"
        );
        assert_eq!(
            TenantId::parse("tnt_00000000000000000000000000000001"),
            Some(DEFAULT_TENANT)
        );
    }

    #[test]
    fn round_trip() {
        let uuid = Uuid::now_v7();
        let id = UserId::from_uuid(uuid);
        let text = id.to_string();
        assert!(text.starts_with("usr_"));
        assert_eq!(text.len(), 36);
        assert_eq!(UserId::parse(&text), Some(id));
        assert_eq!(UserId::parse(&text).map(|id| id.as_uuid()), Some(uuid));
    }

    #[test]
    fn parse_is_strict() {
        let hex = Uuid::now_v7().simple().to_string();
        assert!(SessionId::parse(&format!("ses_{hex}")).is_some());
        for bad in [
            format!("usr_{hex}"),
            format!("SES_{hex}"),
            format!("ses_{}", hex.to_uppercase()),
            format!("ses_{}", Uuid::now_v7().hyphenated()),
            format!("ses_{hex}0"),
            format!("ses_{}", &hex[1..]),
            hex.clone(),
            String::new(),
        ] {
            assert_eq!(SessionId::parse(&bad), None, "{bad}");
        }
    }
}
