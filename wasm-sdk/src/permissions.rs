//! Permission matching, exactly the core's `rbac` rules (`resource:action`, `*` wildcards).
//!
//! The lists cross as arrays of separate strings, never as one joined string: a malformed
//! grant such as `"x\n*"` must stay one malformed grant (granting nothing), not become `*`.

use portcullis_core::rbac;
use wasm_bindgen::prelude::*;

/// Whether the `granted` permissions satisfy `required`.
///
/// Malformed grants are skipped; a malformed `required` is never satisfied.
///
/// ```
/// use portcullis_wasm_sdk::has_permission;
/// let granted = vec!["users:read".to_owned(), "billing:*".to_owned()];
/// assert!(has_permission(granted.clone(), "billing:refund"));
/// assert!(!has_permission(granted, "users:*"));
/// ```
#[wasm_bindgen(js_name = hasPermission)]
#[must_use]
pub fn has_permission(granted: Vec<String>, required: &str) -> bool {
    rbac::has_permission(&granted, required)
}

/// Whether the `granted` permissions satisfy every one of `required` (an empty `required` is
/// satisfied).
///
/// ```
/// use portcullis_wasm_sdk::has_all;
/// assert!(has_all(vec!["*".into()], vec!["users:read".into(), "billing:refund".into()]));
/// assert!(!has_all(vec!["users:read".into()], vec!["users:read".into(), "users:write".into()]));
/// ```
#[wasm_bindgen(js_name = hasAll)]
#[must_use]
pub fn has_all(granted: Vec<String>, required: Vec<String>) -> bool {
    rbac::has_all(&granted, &required)
}

/// Whether the `granted` permissions satisfy at least one of `required` (an empty `required`
/// is never satisfied: fail closed).
///
/// ```
/// use portcullis_wasm_sdk::has_any;
/// assert!(has_any(vec!["users:read".into()], vec!["users:write".into(), "users:read".into()]));
/// assert!(!has_any(vec!["users:read".into()], vec![]));
/// ```
#[wasm_bindgen(js_name = hasAny)]
#[must_use]
pub fn has_any(granted: Vec<String>, required: Vec<String>) -> bool {
    rbac::has_any(&granted, &required)
}
