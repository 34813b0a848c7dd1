//! The signing-key ring: configured keys, or one generated on first start and stored wrapped.

use std::sync::Arc;

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use portcullis_core::MAX_LEEWAY;
use tracing::info;

use crate::clock::Clock;
use crate::config::TokenSettings;
use crate::crypto::keys::MasterKey;
use crate::crypto::signing::{KeyMaterial, SigningAlgorithm};
use crate::store::{SigningKeyStore, StoredKey};

/// Prefix of generated key ids.
const KID_PREFIX: &str = "sk_";

/// Every key that verifies, the one that signs first.
#[derive(Clone, Debug)]
pub(crate) struct KeyRing {
    keys: Vec<KeyMaterial>,
}

impl KeyRing {
    /// The key new tokens are signed with.
    pub(crate) fn active(&self) -> Option<&KeyMaterial> {
        self.keys.first()
    }

    /// Every key that verifies.
    pub(crate) fn keys(&self) -> &[KeyMaterial] {
        &self.keys
    }

    /// Configured keys if there are any; otherwise the stored keys, generating the first one
    /// if there is none yet.
    pub(crate) async fn load(
        settings: &TokenSettings,
        store: &Arc<dyn SigningKeyStore>,
        master_key: &MasterKey,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        if !settings.keys.is_empty() {
            let ring = Self {
                keys: settings.keys.clone(),
            };
            if let Some(active) = ring.active() {
                info!(
                    keys = ring.keys.len(),
                    active_kid = active.kid(),
                    "using configured signing keys"
                );
            }
            return Ok(ring);
        }
        let mut stored = store
            .signing_keys()
            .await
            .context("reading stored signing keys")?;
        let configured = settings.algorithm;
        if !stored
            .iter()
            .any(|key| key.active && key.algorithm == configured)
        {
            // First start, or `token.algorithm` changed since the active key was generated:
            // a new key of the configured algorithm takes over, the old ones keep verifying
            // until their tokens expire.
            stored = generate(configured, store, master_key, clock).await?;
        }
        // A retired key verifies for as long as a token it signed can still be accepted.
        let window = i64::try_from(settings.access_ttl_secs.saturating_add(MAX_LEEWAY))
            .ok()
            .and_then(chrono::TimeDelta::try_seconds)
            .unwrap_or(chrono::TimeDelta::MAX);
        let replaced_by = clock
            .now()
            .checked_sub_signed(window)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let ring = unwrap_all(&stored, master_key, replaced_by)?;
        if let Some(active) = ring.active() {
            info!(
                keys = ring.keys.len(),
                active_kid = active.kid(),
                algorithm = active.algorithm().as_str(),
                "using signing keys stored in the database"
            );
        }
        Ok(ring)
    }
}

/// Generates a key of `algorithm` and offers it to the store as the active key, which keeps
/// it only if no replica got there first; returns whatever the store holds afterwards.
async fn generate(
    algorithm: SigningAlgorithm,
    store: &Arc<dyn SigningKeyStore>,
    master_key: &MasterKey,
    clock: Clock,
) -> anyhow::Result<Vec<StoredKey>> {
    let kid = format!("{KID_PREFIX}{}", clock.new_uuid_v7().simple());
    let material =
        KeyMaterial::generate(kid.clone(), algorithm).context("generating a signing key")?;
    let wrapping = master_key
        .wrapping_key()
        .context("deriving the key-wrapping key")?;
    let wrapped = wrapping
        .wrap(
            wrap_context(&kid, algorithm).as_bytes(),
            material.secret().expose(),
        )
        .context("wrapping the new signing key")?;
    let candidate = StoredKey {
        kid: kid.clone(),
        algorithm,
        wrapped,
        active: true,
        created_at: clock.now(),
    };
    let stored = store
        .install_key(&candidate)
        .await
        .context("storing the new signing key")?;
    if stored.iter().any(|key| key.kid == kid) {
        let retired = stored.len().saturating_sub(1);
        info!(
            target: "security",
            kid = %kid,
            algorithm = algorithm.as_str(),
            retired,
            "generated a signing key and stored it in the database, wrapped with the master key"
        );
    }
    Ok(stored)
}

/// The authenticated context of a wrapped key: a row cannot be relabelled as another key.
fn wrap_context(kid: &str, algorithm: SigningAlgorithm) -> String {
    format!("signing-key/{kid}/{}", algorithm.as_str())
}

/// Unwraps stored keys, active ones first (the store lists newest first).
///
/// A retired key is left out once it was replaced before `replaced_by`: every token it signed
/// has expired by then, and a key that no longer verifies cannot be abused if it leaks. A key
/// was replaced when the next newer key was created.
fn unwrap_all(
    stored: &[StoredKey],
    master_key: &MasterKey,
    replaced_by: DateTime<Utc>,
) -> anyhow::Result<KeyRing> {
    let wrapping = master_key
        .wrapping_key()
        .context("deriving the key-wrapping key")?;
    let mut active = Vec::new();
    let mut retired = Vec::new();
    let mut successor: Option<&StoredKey> = None;
    for key in stored {
        let replaced_at = successor.map(|newer| newer.created_at);
        successor = Some(key);
        if !key.active && replaced_at.is_some_and(|at| at < replaced_by) {
            info!(kid = %key.kid, "retired signing key no longer verifies: its tokens expired");
            continue;
        }
        let secret = wrapping
            .unwrap(
                wrap_context(&key.kid, key.algorithm).as_bytes(),
                &key.wrapped,
            )
            .with_context(|| {
                format!(
                    "stored signing key {} does not unwrap: is PORTCULLIS_MASTER_KEY the one \
                     it was generated with?",
                    key.kid
                )
            })?;
        let material = KeyMaterial::new(key.kid.clone(), key.algorithm, secret)
            .with_context(|| format!("stored signing key {} is malformed", key.kid))?;
        if key.active {
            active.push(material)
        } else {
            retired.push(material)
        }
    }
    if active.is_empty() {
        bail!("no stored signing key is active");
    }
    active.extend(retired);
    Ok(KeyRing { keys: active })
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;
    use crate::crypto::keys::Wrapped;

    fn master(byte: u8) -> MasterKey {
        MasterKey::from_base64url(&URL_SAFE_NO_PAD.encode([byte; 32])).unwrap()
    }

    fn stored(
        kid: &str,
        algorithm: SigningAlgorithm,
        active: bool,
        master: &MasterKey,
    ) -> StoredKey {
        let material = KeyMaterial::generate(kid.into(), algorithm).unwrap();
        let wrapped = master
            .wrapping_key()
            .unwrap()
            .wrap(
                wrap_context(kid, algorithm).as_bytes(),
                material.secret().expose(),
            )
            .unwrap();
        StoredKey {
            kid: kid.into(),
            algorithm,
            wrapped,
            active,
            created_at: DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn stored_keys_unwrap_active_first() {
        let master = master(1);
        let keys = [
            stored("old", SigningAlgorithm::Hs256, false, &master),
            stored("new", SigningAlgorithm::EdDsa, true, &master),
        ];
        let ring = unwrap_all(&keys, &master, DateTime::UNIX_EPOCH).unwrap();
        let kids: Vec<_> = ring.keys().iter().map(KeyMaterial::kid).collect();
        assert_eq!(kids, ["new", "old"]);
        assert_eq!(ring.active().unwrap().algorithm(), SigningAlgorithm::EdDsa);
    }

    #[test]
    fn a_wrong_master_key_is_a_clear_startup_error() {
        let keys = [stored("k", SigningAlgorithm::Hs256, true, &master(1))];
        let err = unwrap_all(&keys, &master(2), DateTime::UNIX_EPOCH).unwrap_err();
        assert!(
            format!("{err:#}").contains("PORTCULLIS_MASTER_KEY"),
            "{err:#}"
        );
    }

    #[test]
    fn a_relabelled_row_does_not_unwrap() {
        let master = master(1);
        let mut key = stored("k", SigningAlgorithm::Hs256, true, &master);
        key.kid = "other".into();
        assert!(unwrap_all(&[key.clone()], &master, DateTime::UNIX_EPOCH).is_err());
        key.kid = "k".into();
        key.wrapped = Wrapped {
            nonce: vec![0; 12],
            ciphertext: key.wrapped.ciphertext,
        };
        assert!(unwrap_all(&[key], &master, DateTime::UNIX_EPOCH).is_err());
    }

    #[test]
    fn retired_keys_stop_verifying_once_their_tokens_expired() {
        let master = master(1);
        let at = |secs| DateTime::UNIX_EPOCH + chrono::TimeDelta::seconds(secs);
        // Newest first: `new` replaced `middle` at 2000, which replaced `old` at 1000.
        let mut keys = [
            stored("new", SigningAlgorithm::EdDsa, true, &master),
            stored("middle", SigningAlgorithm::Hs256, false, &master),
            stored("old", SigningAlgorithm::Hs256, false, &master),
        ];
        keys[0].created_at = at(2_000);
        keys[1].created_at = at(1_000);
        keys[2].created_at = at(0);
        let kids = |replaced_by| {
            let ring = unwrap_all(&keys, &master, replaced_by).unwrap();
            ring.keys()
                .iter()
                .map(|key| key.kid().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(kids(at(1_000)), ["new", "middle", "old"]);
        assert_eq!(kids(at(1_001)), ["new", "middle"]);
        assert_eq!(kids(at(2_001)), ["new"]);
    }
}
