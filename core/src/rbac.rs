//! Role-based access control: permission strings, wildcard matching and role expansion.
//!
//! A permission is `resource:action`, where each segment is `*` or `[a-z0-9_.-]+`, or the bare
//! `*` that grants everything (it is the same as `*:*`). A granted wildcard segment covers any
//! required segment; a *required* wildcard is only covered by a granted wildcard in the same
//! place, so asking for `users:*` is never satisfied by `users:read` alone.
//!
//! Matching works on borrowed text and never allocates. A malformed granted string grants
//! nothing and a malformed required string is never satisfied: both fail closed.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

use hashbrown::{HashMap, HashSet};

use crate::error::PolicyError;

/// The longest accepted permission string, in bytes.
pub const MAX_PERMISSION_LEN: usize = 256;

/// The longest accepted role name, in bytes.
pub const MAX_ROLE_LEN: usize = 128;

/// The wildcard segment.
const WILDCARD: &str = "*";

/// A parsed, borrowed permission: the two segments, with a bare `*` read as `*:*`.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Parts<'a> {
    resource: &'a str,
    action: &'a str,
}

impl<'a> Parts<'a> {
    fn parse(text: &'a str) -> Option<Self> {
        if text.len() > MAX_PERMISSION_LEN {
            return None;
        }
        if text == WILDCARD {
            return Some(Self {
                resource: WILDCARD,
                action: WILDCARD,
            });
        }
        let (resource, action) = text.split_once(':')?;
        (valid_segment(resource) && valid_segment(action)).then_some(Self { resource, action })
    }

    /// Whether this grant covers `required`.
    fn covers(self, required: Self) -> bool {
        segment_covers(self.resource, required.resource)
            && segment_covers(self.action, required.action)
    }
}

fn segment_covers(granted: &str, required: &str) -> bool {
    granted == WILDCARD || granted == required
}

fn valid_segment(segment: &str) -> bool {
    segment == WILDCARD
        || (!segment.is_empty()
            && segment.bytes().all(|byte| {
                byte.is_ascii_lowercase()
                    || byte.is_ascii_digit()
                    || matches!(byte, b'_' | b'.' | b'-')
            }))
}

/// A validated permission string.
///
/// ```
/// use portcullis_core::rbac::Permission;
/// let granted = Permission::parse("users:*")?;
/// assert!(granted.grants(&Permission::parse("users:read")?));
/// assert!(!Permission::parse("users:read")?.grants(&granted));
/// assert_eq!(granted.to_string(), "users:*");
/// # Ok::<(), portcullis_core::PolicyError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Permission {
    text: String,
}

impl Permission {
    /// Parses `*` or `resource:action`.
    ///
    /// # Errors
    ///
    /// [`PolicyError::MalformedPermission`] for anything else: uppercase, spaces, an empty
    /// segment, a partial wildcard (`user*`), a third segment, or more than
    /// [`MAX_PERMISSION_LEN`] bytes.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        Parts::parse(text).ok_or(PolicyError::MalformedPermission)?;
        Ok(Self {
            text: String::from(text),
        })
    }

    /// The permission exactly as parsed.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The resource segment (`*` for the bare wildcard).
    #[must_use]
    pub fn resource(&self) -> &str {
        self.parts().resource
    }

    /// The action segment (`*` for the bare wildcard).
    #[must_use]
    pub fn action(&self) -> &str {
        self.parts().action
    }

    /// Whether holding `self` satisfies a requirement for `required`.
    #[must_use]
    pub fn grants(&self, required: &Self) -> bool {
        self.parts().covers(required.parts())
    }

    fn parts(&self) -> Parts<'_> {
        // Validated in `parse`; the fallback is unreachable and grants nothing.
        Parts::parse(&self.text).unwrap_or(Parts {
            resource: "",
            action: "",
        })
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Permission {
    type Err = PolicyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl AsRef<str> for Permission {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

/// Whether the `granted` permissions satisfy `required`.
///
/// Malformed entries in `granted` are skipped; a malformed `required` is never satisfied.
///
/// ```
/// use portcullis_core::rbac::has_permission;
/// let granted = ["users:read", "billing:*"];
/// assert!(has_permission(&granted, "billing:refund"));
/// assert!(!has_permission(&granted, "users:delete"));
/// assert!(!has_permission(&granted, "users:*"));
/// ```
#[must_use]
pub fn has_permission<I>(granted: I, required: &str) -> bool
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let Some(required) = Parts::parse(required) else {
        return false;
    };
    granted
        .into_iter()
        .any(|grant| Parts::parse(grant.as_ref()).is_some_and(|grant| grant.covers(required)))
}

/// Whether the `granted` permissions satisfy every one of `required`.
///
/// An empty `required` is satisfied (there is nothing to check).
///
/// ```
/// use portcullis_core::rbac::has_all;
/// assert!(has_all(&["*"], &["users:read", "billing:refund"]));
/// assert!(!has_all(&["users:read"], &["users:read", "users:write"]));
/// ```
#[must_use]
pub fn has_all<I, R>(granted: I, required: &[R]) -> bool
where
    I: IntoIterator + Clone,
    I::Item: AsRef<str>,
    R: AsRef<str>,
{
    required
        .iter()
        .all(|one| has_permission(granted.clone(), one.as_ref()))
}

/// Whether the `granted` permissions satisfy at least one of `required`.
///
/// An empty `required` is never satisfied (fail closed).
///
/// ```
/// use portcullis_core::rbac::has_any;
/// assert!(has_any(&["users:read"], &["users:write", "users:read"]));
/// assert!(!has_any(&["users:read"], &[] as &[&str]));
/// ```
#[must_use]
pub fn has_any<I, R>(granted: I, required: &[R]) -> bool
where
    I: IntoIterator + Clone,
    I::Item: AsRef<str>,
    R: AsRef<str>,
{
    required
        .iter()
        .any(|one| has_permission(granted.clone(), one.as_ref()))
}

/// Maps role names to the permissions they grant.
///
/// ```
/// use portcullis_core::rbac::{has_permission, RoleMap};
/// let mut roles = RoleMap::new();
/// roles.insert("viewer", &["users:read", "billing:read"])?;
/// roles.insert("admin", &["users:*", "users:read"])?;
/// let granted = roles.expand(&["viewer", "admin", "unknown"]);
/// assert_eq!(granted, ["users:read", "billing:read", "users:*"]);
/// assert!(has_permission(&granted, "users:delete"));
/// # Ok::<(), portcullis_core::PolicyError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct RoleMap {
    roles: HashMap<String, Vec<Permission>>,
}

impl RoleMap {
    /// An empty map.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `permissions` to `role` (creating it), ignoring ones it already has.
    ///
    /// Nothing is added unless every permission parses.
    ///
    /// # Errors
    ///
    /// [`PolicyError::MalformedRole`] for an empty role name, one over [`MAX_ROLE_LEN`] bytes
    /// or one with control characters; [`PolicyError::MalformedPermission`] as for
    /// [`Permission::parse`].
    pub fn insert<S: AsRef<str>>(
        &mut self,
        role: &str,
        permissions: &[S],
    ) -> Result<(), PolicyError> {
        if role.is_empty() || role.len() > MAX_ROLE_LEN || role.chars().any(char::is_control) {
            return Err(PolicyError::MalformedRole);
        }
        let parsed = permissions
            .iter()
            .map(|text| Permission::parse(text.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let entry = self.roles.entry(String::from(role)).or_default();
        for permission in parsed {
            if !entry.contains(&permission) {
                entry.push(permission);
            }
        }
        Ok(())
    }

    /// The permissions of `role`, in insertion order; `None` for an unknown role.
    #[must_use]
    pub fn get(&self, role: &str) -> Option<&[Permission]> {
        self.roles.get(role).map(Vec::as_slice)
    }

    /// The permissions granted by `roles`, each once, in first-seen order.
    ///
    /// Unknown roles grant nothing.
    #[must_use]
    pub fn expand<I>(&self, roles: I) -> Vec<String>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut seen: HashSet<&str> = HashSet::new();
        let mut granted: Vec<String> = Vec::new();
        for permission in roles
            .into_iter()
            .filter_map(|role| self.roles.get(role.as_ref()))
            .flatten()
        {
            if seen.insert(permission.as_str()) {
                granted.push(String::from(permission.as_str()));
            }
        }
        granted
    }

    /// The number of roles.
    #[must_use]
    pub fn len(&self) -> usize {
        self.roles.len()
    }

    /// Whether the map has no roles.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.roles.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::ToString;
    use alloc::vec;

    use super::*;

    #[test]
    fn parse_valid_permissions_round_trip() {
        for text in [
            "*",
            "users:read",
            "users:*",
            "*:read",
            "*:*",
            "a.b-c_d:x.y",
            "0:9",
        ] {
            let permission = Permission::parse(text).unwrap();
            assert_eq!(permission.as_str(), text);
            assert_eq!(permission.to_string(), text);
            assert_eq!(text.parse::<Permission>().unwrap(), permission);
        }
    }

    #[test]
    fn parse_malformed_permissions_are_refused() {
        let long = alloc::format!("{}:read", "a".repeat(MAX_PERMISSION_LEN));
        for text in [
            "",
            ":",
            "users",
            "users:",
            ":read",
            "Users:read",
            "users:Read",
            "users:re ad",
            "users:read:own",
            "user*:read",
            "users:**",
            "**",
            " users:read",
            "users:read\n",
            "usérs:read",
            "users;read",
            long.as_str(),
        ] {
            assert_eq!(
                Permission::parse(text),
                Err(PolicyError::MalformedPermission),
                "{text}"
            );
        }
    }

    #[test]
    fn has_permission_granted_wildcards_cover_concrete() {
        assert!(has_permission(&["users:*"], "users:read"));
        assert!(has_permission(&["*:read"], "billing:read"));
        assert!(has_permission(&["*"], "billing:refund"));
        assert!(has_permission(&["*:*"], "billing:refund"));
        assert!(has_permission(&["users:read"], "users:read"));
        assert!(!has_permission(&["users:read"], "users:write"));
        assert!(!has_permission(&["users:*"], "billing:read"));
        assert!(!has_permission(&["*:read"], "billing:write"));
    }

    #[test]
    fn has_permission_required_wildcard_needs_equal_or_broader_grant() {
        assert!(!has_permission(&["users:read", "users:write"], "users:*"));
        assert!(has_permission(&["users:*"], "users:*"));
        assert!(has_permission(&["*"], "users:*"));
        assert!(!has_permission(&["users:*"], "*:*"));
        assert!(!has_permission(&["*:read"], "*"));
        assert!(has_permission(&["*:*"], "*"));
        assert!(has_permission(&["*"], "*"));
    }

    #[test]
    fn has_permission_malformed_input_fails_closed() {
        assert!(!has_permission(
            &["Users:*", "users:read:x", ""],
            "users:read"
        ));
        assert!(!has_permission(&["*"], "Users:read"));
        assert!(!has_permission(&["*"], ""));
        assert!(!has_permission::<&[&str]>(&[], "users:read"));
    }

    #[test]
    fn has_all_and_has_any_work_over_strings() {
        let granted = vec![String::from("users:read"), String::from("billing:*")];
        assert!(has_all(&granted, &["users:read", "billing:refund"]));
        assert!(!has_all(&granted, &["users:read", "users:write"]));
        assert!(has_all(&granted, &[] as &[&str]));
        assert!(has_any(
            &granted,
            &[String::from("users:write"), String::from("billing:x")]
        ));
        assert!(!has_any(&granted, &["users:write"]));
        assert!(!has_any(&granted, &[] as &[&str]));
    }

    #[test]
    fn permission_grants_matches_free_functions() {
        let wide = Permission::parse("users:*").unwrap();
        let narrow = Permission::parse("users:read").unwrap();
        assert!(wide.grants(&narrow) && !narrow.grants(&wide));
        assert_eq!(Permission::parse("*").unwrap().resource(), "*");
        assert_eq!(narrow.resource(), "users");
        assert_eq!(narrow.action(), "read");
    }

    #[test]
    fn role_map_expand_dedups_in_first_seen_order() {
        let mut roles = RoleMap::new();
        roles
            .insert("viewer", &["users:read", "billing:read"])
            .unwrap();
        roles
            .insert("editor", &["users:read", "users:write"])
            .unwrap();
        roles
            .insert("editor", &["users:write", "users:delete"])
            .unwrap();
        assert_eq!(roles.len(), 2);
        assert_eq!(roles.get("editor").unwrap().len(), 3);
        let granted = roles.expand(&["editor", "viewer", "editor", "ghost"]);
        assert_eq!(
            granted,
            ["users:read", "users:write", "users:delete", "billing:read"]
        );
        assert!(roles.expand::<&[&str]>(&[]).is_empty());
    }

    #[test]
    fn role_map_insert_malformed_changes_nothing() {
        let mut roles = RoleMap::new();
        assert_eq!(
            roles.insert("viewer", &["users:read", "BAD"]),
            Err(PolicyError::MalformedPermission)
        );
        assert!(roles.is_empty());
        assert_eq!(
            roles.insert("", &["users:read"]),
            Err(PolicyError::MalformedRole)
        );
        assert_eq!(
            roles.insert("a\u{7}", &["users:read"]),
            Err(PolicyError::MalformedRole)
        );
    }
}
