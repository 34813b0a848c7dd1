//! Route rules: which access level a method and path need (design note 0004, *Route rules*).
//!
//! The rules document is parsed once per isolate into typed rules. Anything that does not
//! parse, including an unknown member, a malformed pattern or permission, is an error rather
//! than a skipped rule: a rule that silently vanished would turn into whatever rule comes
//! next, usually a wider one.

use portcullis_core::rbac::Permission;
use serde::Deserialize;

use crate::path::NormalPath;

/// The access level a matching rule grants or demands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Anyone; forwarded without identity headers.
    Public,
    /// Any valid, unrevoked token.
    Authenticated,
    /// A valid, unrevoked token whose `perms` grant this permission.
    Permission(Permission),
}

/// One pattern segment.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    /// Matches exactly this decoded segment (case-sensitive).
    Literal(String),
    /// `*`: one non-empty segment.
    One,
    /// `**`, last only: zero or more segments.
    Rest,
}

/// A path pattern such as `/reports/*/download` or `/admin/**`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pattern {
    segments: Vec<Segment>,
}

impl Pattern {
    /// Parses a pattern; `/` alone matches only the root.
    pub(crate) fn parse(text: &str) -> Result<Self, &'static str> {
        let rest = text
            .strip_prefix('/')
            .ok_or("a path pattern must start with `/`")?;
        if rest.is_empty() {
            return Ok(Self {
                segments: Vec::new(),
            });
        }
        let parts: Vec<&str> = rest.split('/').collect();
        let last = parts.len().saturating_sub(1);
        let mut segments = Vec::with_capacity(parts.len());
        for (index, part) in parts.into_iter().enumerate() {
            segments.push(match part {
                "*" => Segment::One,
                "**" if index == last => Segment::Rest,
                "**" => return Err("`**` is only allowed as the last segment of a pattern"),
                literal => Segment::Literal(literal_segment(literal)?),
            });
        }
        Ok(Self { segments })
    }

    /// Whether the pattern matches the path's decoded segments.
    pub(crate) fn matches(&self, path: &NormalPath) -> bool {
        let mut actual = path.segments().iter();
        for segment in &self.segments {
            match segment {
                Segment::Rest => return true,
                Segment::One => {
                    if actual.next().is_none_or(String::is_empty) {
                        return false;
                    }
                }
                Segment::Literal(literal) => {
                    if actual.next() != Some(literal) {
                        return false;
                    }
                }
            }
        }
        actual.next().is_none()
    }
}

/// A literal segment must be something a normal-form path can contain, or the rule could
/// never match and would only look like protection.
fn literal_segment(text: &str) -> Result<String, &'static str> {
    if text.is_empty() {
        return Err("a path pattern has an empty segment");
    }
    if text == "." || text == ".." {
        return Err("a path pattern has a `.` or `..` segment");
    }
    if text.contains('*') {
        return Err("`*` and `**` must be whole segments of a pattern");
    }
    if text
        .chars()
        .any(|c| c.is_control() || matches!(c, '%' | '\\' | ';' | '?' | '#'))
    {
        return Err(
            "a path pattern segment contains `%`, `\\`, `;`, `?`, `#` or a control character",
        );
    }
    Ok(text.to_owned())
}

/// One route rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pattern: Pattern,
    /// `None`: every method.
    methods: Option<Vec<String>>,
    access: Access,
}

impl Rule {
    fn matches(&self, method: &str, path: &NormalPath) -> bool {
        let method_matches = self.methods.as_ref().is_none_or(|methods| {
            // Case-insensitive, because the runtime upper-cases only some methods (not
            // `patch`) and a lenient origin may upper-case the rest. HEAD is GET without the
            // body: a rule about GET also decides HEAD, so HEAD can never reach a resource
            // through a weaker rule further down.
            let head = method.eq_ignore_ascii_case("HEAD");
            methods
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(method) || (head && allowed == "GET"))
        });
        method_matches && self.pattern.matches(path)
    }
}

/// The ordered rules of `PORTCULLIS_ROUTES`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Routes {
    rules: Vec<Rule>,
}

/// The wire shape of a rule. Unknown members are refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleIn {
    path: String,
    methods: Option<Vec<String>>,
    access: Option<String>,
    permission: Option<String>,
}

impl Routes {
    /// Parses the rules document.
    ///
    /// # Errors
    ///
    /// A reason that names no value from the document (the document is configuration, but
    /// the reason ends up in a client-visible `edge_misconfigured` detail).
    pub(crate) fn parse(json: &str) -> Result<Self, &'static str> {
        let rules: Vec<RuleIn> = serde_json::from_str(json).map_err(|_| {
            "must be a JSON array of rules with `path`, optional `methods`, and `access` or \
             `permission` (no other members)"
        })?;
        let rules = rules
            .into_iter()
            .map(RuleIn::into_rule)
            .collect::<Result<_, _>>()?;
        Ok(Self { rules })
    }

    /// The access level of the first rule matching `method` and `path`; `None` (deny) if no
    /// rule matches.
    pub(crate) fn access(&self, method: &str, path: &NormalPath) -> Option<&Access> {
        self.rules
            .iter()
            .find(|rule| rule.matches(method, path))
            .map(|rule| &rule.access)
    }
}

impl RuleIn {
    fn into_rule(self) -> Result<Rule, &'static str> {
        let pattern = Pattern::parse(&self.path)?;
        let methods = self.methods.map(parse_methods).transpose()?;
        let access = match (self.access.as_deref(), self.permission) {
            (Some("public"), None) => Access::Public,
            (Some("authenticated"), None) => Access::Authenticated,
            (None, Some(permission)) => Access::Permission(
                Permission::parse(&permission)
                    .map_err(|_| "a rule has a malformed `permission` (`resource:action`)")?,
            ),
            (Some(_), None) => {
                return Err("a rule's `access` must be `public` or `authenticated`");
            }
            (Some(_), Some(_)) | (None, None) => {
                return Err("a rule needs exactly one of `access` and `permission`");
            }
        };
        Ok(Rule {
            pattern,
            methods,
            access,
        })
    }
}

fn parse_methods(methods: Vec<String>) -> Result<Vec<String>, &'static str> {
    if methods.is_empty() {
        return Err("a rule's `methods` must not be empty (omit it for every method)");
    }
    if !methods.iter().all(|method| is_method(method)) {
        return Err("a rule's `methods` must be upper-case HTTP method names");
    }
    Ok(methods)
}

/// An upper-case HTTP method token, as browsers and the runtime send the standard methods.
pub(crate) fn is_method(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"[
        {"path": "/healthz", "access": "public"},
        {"path": "/admin/**", "methods": ["POST", "PUT", "DELETE"], "permission": "users:write"},
        {"path": "/reports/*/download", "permission": "reports:read"},
        {"path": "/**", "access": "authenticated"}
    ]"#;

    fn path(raw: &str) -> NormalPath {
        NormalPath::parse(raw).unwrap()
    }

    fn matches(pattern: &str, raw: &str) -> bool {
        Pattern::parse(pattern).unwrap().matches(&path(raw))
    }

    fn permission(text: &str) -> Access {
        Access::Permission(Permission::parse(text).unwrap())
    }

    #[test]
    fn access_first_matching_rule_wins() {
        let routes = Routes::parse(EXAMPLE).unwrap();
        let access = |method: &str, raw: &str| routes.access(method, &path(raw)).cloned();
        assert_eq!(access("GET", "/healthz"), Some(Access::Public));
        assert_eq!(access("POST", "/healthz"), Some(Access::Public));
        assert_eq!(
            access("POST", "/admin/users"),
            Some(permission("users:write"))
        );
        assert_eq!(access("DELETE", "/admin"), Some(permission("users:write")));
        assert_eq!(access("GET", "/admin/users"), Some(Access::Authenticated));
        assert_eq!(
            access("GET", "/reports/42/download"),
            Some(permission("reports:read"))
        );
        assert_eq!(
            access("GET", "/reports/42/view"),
            Some(Access::Authenticated)
        );
        assert_eq!(access("GET", "/"), Some(Access::Authenticated));
        assert_eq!(
            access("GET", "/%61dmin/x"),
            Some(Access::Authenticated),
            "GET is not in the admin rule's methods"
        );
        assert_eq!(access("PUT", "/%61dmin/x"), Some(permission("users:write")));
    }

    #[test]
    fn access_no_matching_rule_denies() {
        let routes = Routes::parse(r#"[{"path": "/healthz", "access": "public"}]"#).unwrap();
        assert_eq!(routes.access("GET", &path("/other")), None);
        assert_eq!(routes.access("GET", &path("/healthz/x")), None);
        assert_eq!(Routes::parse("[]").unwrap().access("GET", &path("/")), None);
    }

    #[test]
    fn access_head_follows_get_rules() {
        let routes = Routes::parse(
            r#"[{"path": "/secret", "methods": ["GET"], "permission": "secret:read"},
                {"path": "/**", "access": "public"}]"#,
        )
        .unwrap();
        assert_eq!(
            routes.access("HEAD", &path("/secret")),
            Some(&permission("secret:read"))
        );
        assert_eq!(
            routes.access("POST", &path("/secret")),
            Some(&Access::Public)
        );
        assert_eq!(
            routes.access("get", &path("/secret")),
            Some(&permission("secret:read")),
            "methods compare case-insensitively"
        );
        assert_eq!(
            routes.access("head", &path("/secret")),
            Some(&permission("secret:read"))
        );
    }

    #[test]
    fn matches_single_star_is_one_non_empty_segment() {
        assert!(matches("/reports/*/download", "/reports/42/download"));
        assert!(!matches("/reports/*/download", "/reports/download"));
        assert!(!matches("/reports/*/download", "/reports/1/2/download"));
        assert!(matches("/*", "/x"));
        assert!(!matches("/*", "/"));
        assert!(!matches("/*", "/x/y"));
    }

    #[test]
    fn matches_double_star_is_zero_or_more_segments() {
        assert!(matches("/admin/**", "/admin"));
        assert!(matches("/admin/**", "/admin/"));
        assert!(matches("/admin/**", "/admin/a/b/c"));
        assert!(!matches("/admin/**", "/administrator"));
        assert!(matches("/**", "/"));
        assert!(matches("/**", "/any/thing"));
    }

    #[test]
    fn matches_literals_exactly_and_case_sensitively() {
        assert!(matches("/", "/"));
        assert!(!matches("/", "/x"));
        assert!(matches("/healthz", "/healthz"));
        assert!(matches("/healthz", "/healthz/"));
        assert!(!matches("/healthz", "/Healthz"));
        assert!(!matches("/healthz", "/healthz/x"));
        assert!(matches("/a b", "/a%20b"));
    }

    #[test]
    fn parse_malformed_documents_are_refused() {
        let bad = [
            "",
            "{}",
            "[{}]",
            r#"[{"path": "/a"}]"#,
            r#"[{"path": "/a", "access": "public", "extra": 1}]"#,
            r#"[{"path": "/a", "access": "private"}]"#,
            r#"[{"path": "/a", "access": "public", "permission": "a:b"}]"#,
            r#"[{"path": "/a", "permission": "Users:Write"}]"#,
            r#"[{"path": "/a", "permission": "users"}]"#,
            r#"[{"path": "/a", "methods": [], "access": "public"}]"#,
            r#"[{"path": "/a", "methods": ["get"], "access": "public"}]"#,
            r#"[{"path": "/a", "methods": "GET", "access": "public"}]"#,
            r#"[{"path": "/a", "path": "/b", "access": "public"}]"#,
            r#"[{"path": "a", "access": "public"}]"#,
            r#"[{"path": "/a//b", "access": "public"}]"#,
            r#"[{"path": "/a/", "access": "public"}]"#,
            r#"[{"path": "/**/a", "access": "public"}]"#,
            r#"[{"path": "/a*", "access": "public"}]"#,
            r#"[{"path": "/../a", "access": "public"}]"#,
            r#"[{"path": "/a%2Fb", "access": "public"}]"#,
            r#"[{"path": "/a\\b", "access": "public"}]"#,
        ];
        for document in bad {
            assert!(Routes::parse(document).is_err(), "{document}");
        }
    }

    #[test]
    fn parse_example_document_is_accepted() {
        let routes = Routes::parse(EXAMPLE).unwrap();
        assert_eq!(routes.rules.len(), 4);
        assert_eq!(
            routes.rules[1].methods.as_deref().map(<[String]>::len),
            Some(3)
        );
    }
}
