//! What one isolate keeps between requests: the validated configuration, the key cache and the
//! revocation list copy.
//!
//! An isolate runs one request's Rust code at a time, but requests interleave at every
//! `await`, so the mutable parts sit in `RefCell`s that are only ever borrowed between awaits,
//! never across one.

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;

use wasm_bindgen::{JsCast as _, JsValue};
use worker::{Env, console_error, js_sys};

use crate::config::{Config, ConfigError, HS256_KEYS};
use crate::keys::KeyCache;
use crate::revocation::IsolateCopy;

/// The isolate's state, created on first use.
#[derive(Debug)]
pub(crate) struct Isolate {
    pub(crate) config: Config,
    pub(crate) keys: RefCell<KeyCache>,
    pub(crate) revocations: RefCell<IsolateCopy>,
}

thread_local! {
    /// Built once per isolate: the variables cannot change while it lives.
    static ISOLATE: OnceCell<Result<Rc<Isolate>, ConfigError>> = const { OnceCell::new() };
}

/// This isolate's state, reading and validating the configuration on first use.
///
/// # Errors
///
/// The first missing or invalid variable; logged once, with its reason, when first found.
pub(crate) fn get(env: &Env) -> Result<Rc<Isolate>, ConfigError> {
    ISOLATE.with(|cell| cell.get_or_init(|| build(env)).clone())
}

fn build(env: &Env) -> Result<Rc<Isolate>, ConfigError> {
    let built = Config::parse(|name| var(env, name)).and_then(|config| {
        let keys = KeyCache::new(
            config.validation.clone(),
            config.hs256_keys.clone(),
            config.jwks_url.is_some(),
        )
        .map_err(|_| ConfigError {
            variable: HS256_KEYS,
            reason: "two keys have the same kid",
        })?;
        Ok(Rc::new(Isolate {
            config,
            keys: RefCell::new(keys),
            revocations: RefCell::new(IsolateCopy::default()),
        }))
    });
    if let Err(error) = &built {
        console_error!("edge misconfigured: {error}");
    }
    built
}

/// A variable or secret as text. `[vars]` may hold TOML numbers, arrays or tables, which
/// reach the worker as JSON values; they are read back as their JSON text, so
/// `PORTCULLIS_LEEWAY_SECS = 30` and `= "30"` mean the same.
pub(crate) fn var(env: &Env, name: &str) -> Option<String> {
    let value = js_sys::Reflect::get(env.as_ref(), &JsValue::from_str(name)).ok()?;
    if value.is_undefined() || value.is_null() {
        return None;
    }
    if let Some(text) = value.as_string() {
        return Some(text);
    }
    if value.is_instance_of::<js_sys::Function>() {
        return None;
    }
    js_sys::JSON::stringify(&value).ok()?.as_string()
}
