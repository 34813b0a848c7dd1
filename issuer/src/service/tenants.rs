//! Which tenant a request belongs to (API.md, Tenancy).
//!
//! The `Host` header wins when it names a mapped domain; otherwise `X-Tenant-ID` (slug or
//! `tnt_…` id); otherwise the default tenant. An `X-Tenant-ID` that names no tenant is an error
//! rather than a silent fall-back, so a misconfigured client never writes into `default`.

use std::sync::Arc;

use crate::error::{ApiError, ErrorCode};
use crate::ids::{DEFAULT_TENANT, TenantId};
use crate::store::{Tenant, TenantStore};

/// Resolves request tenants.
#[derive(Debug)]
pub(crate) struct TenantService {
    store: Arc<dyn TenantStore>,
}

impl TenantService {
    pub(crate) fn new(store: Arc<dyn TenantStore>) -> Self {
        Self { store }
    }

    /// The tenant of a request with these `Host` and `X-Tenant-ID` values.
    pub(crate) async fn resolve(
        &self,
        host: Option<&str>,
        tenant_header: Option<&str>,
    ) -> Result<Tenant, ApiError> {
        if let Some(domain) = host.and_then(domain_of)
            && let Some(tenant) = self.store.tenant_by_domain(&domain).await?
        {
            return Ok(tenant);
        }
        let Some(requested) = tenant_header else {
            return Ok(Tenant {
                id: DEFAULT_TENANT,
                slug: "default".to_owned(),
            });
        };
        let requested = requested.trim();
        let found = if requested.starts_with(TenantId::PREFIX) {
            match TenantId::parse(requested) {
                Some(id) => self.store.tenant_by_id(id).await?,
                None => None,
            }
        } else {
            let slug = requested.to_ascii_lowercase();
            if is_slug(&slug) {
                self.store.tenant_by_slug(&slug).await?
            } else {
                None
            }
        };
        found.ok_or_else(|| ApiError::new(ErrorCode::TenantNotFound, "X-Tenant-ID names no tenant"))
    }
}

/// The lookup form of a `Host` value: lowercase, without port or trailing dot; `None` for
/// anything that cannot be a DNS name.
fn domain_of(host: &str) -> Option<String> {
    let host = host.trim().to_ascii_lowercase();
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        Some(_) => return None,
        None => host.as_str(),
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    valid.then(|| name.to_owned())
}

/// The slug rule of the `tenants` table.
fn is_slug(slug: &str) -> bool {
    let mut bytes = slug.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    first_ok
        && slug.len() <= 63
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_values_are_reduced_to_domains() {
        assert_eq!(
            domain_of("Auth.Example.com"),
            Some("auth.example.com".into())
        );
        assert_eq!(
            domain_of("auth.example.com:8443"),
            Some("auth.example.com".into())
        );
        assert_eq!(
            domain_of("auth.example.com."),
            Some("auth.example.com".into())
        );
        assert_eq!(domain_of("127.0.0.1:8080"), Some("127.0.0.1".into()));
        assert_eq!(domain_of("[::1]:8080"), None);
        assert_eq!(domain_of("evil.com/x"), None);
        assert_eq!(domain_of(""), None);
    }

    #[test]
    fn slugs_follow_the_table_rule() {
        assert!(is_slug("default"));
        assert!(is_slug("acme-2"));
        assert!(!is_slug("-acme"));
        assert!(!is_slug("Acme"));
        assert!(!is_slug(""));
        assert!(!is_slug(&"a".repeat(64)));
    }
}
