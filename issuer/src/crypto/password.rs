//! Argon2id password hashing, off the async runtime and bounded in memory.
//!
//! One Argon2id hash with the default parameters needs 19 MiB and tens of milliseconds of CPU.
//! Running it on the async workers would stall every other request, and running an unbounded
//! number at once would let a burst of logins exhaust memory. So every hash runs on a
//! [`HashPool`] of `password.max_concurrent_hashes` dedicated threads; a request that finds no
//! free thread within `password.queue_timeout_ms` is refused with 503 `server_busy` instead of
//! queueing forever.

use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use super::hash_pool::HashPool;
use super::keys::random_bytes;
use super::secret::SecretString;

/// Argon2id cost parameters and how many hashes may run at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HashSettings {
    pub(crate) memory_kib: u32,
    pub(crate) iterations: u32,
    pub(crate) parallelism: u32,
    pub(crate) max_concurrent: usize,
    pub(crate) queue_timeout: Duration,
}

impl HashSettings {
    /// The Argon2id parameters; fails only for values config validation already refuses.
    pub(crate) fn params(&self) -> Result<Params, argon2::Error> {
        Params::new(self.memory_kib, self.iterations, self.parallelism, None)
    }
}

/// Why hashing or verifying did not produce an answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PasswordError {
    /// No hashing slot became free within the queue timeout.
    #[error("all password-hashing slots stayed busy for the queue timeout")]
    Busy,
    /// Argon2 failed, the stored hash is unreadable, or the blocking task died.
    #[error("password hashing failed: {0}")]
    Internal(String),
}

/// Hashes and verifies passwords with bounded concurrency.
#[derive(Debug)]
pub(crate) struct PasswordHasher {
    argon2: Argon2<'static>,
    pool: HashPool,
    /// A hash of a random password with the configured parameters. Logins for unknown emails
    /// verify against it, so they cost the same as logins for known ones.
    dummy_hash: String,
}

impl PasswordHasher {
    /// Builds the hasher and computes the dummy hash once.
    pub(crate) async fn new(settings: HashSettings) -> Result<Self, PasswordError> {
        let params = settings
            .params()
            .map_err(|err| PasswordError::Internal(err.to_string()))?;
        let mut hasher = Self {
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            pool: HashPool::new(settings.max_concurrent, settings.queue_timeout)?,
            dummy_hash: String::new(),
        };
        let random = random_bytes::<24>();
        let unguessable = SecretString::new(format!("{:x?}", random.as_slice()));
        hasher.dummy_hash = hasher.hash(unguessable).await?;
        Ok(hasher)
    }

    /// A PHC string (`$argon2id$v=19$m=…`) with a fresh random salt.
    pub(crate) async fn hash(&self, password: SecretString) -> Result<String, PasswordError> {
        let argon2 = self.argon2.clone();
        self.pool
            .run(move || {
                let salt = SaltString::generate(&mut OsRng);
                argon2
                    .hash_password(password.expose().as_bytes(), &salt)
                    .map(|hash| hash.to_string())
                    .map_err(|err| PasswordError::Internal(err.to_string()))
            })
            .await
    }

    /// Whether `password` matches `stored`; with `None` (no such account) it verifies against
    /// the dummy hash and answers `false`, taking the same time as a real mismatch.
    pub(crate) async fn verify(
        &self,
        password: SecretString,
        stored: Option<String>,
    ) -> Result<bool, PasswordError> {
        let account_exists = stored.is_some();
        let phc = stored.unwrap_or_else(|| self.dummy_hash.clone());
        let argon2 = self.argon2.clone();
        let matches = self
            .pool
            .run(move || {
                let parsed = PasswordHash::new(&phc)
                    .map_err(|err| PasswordError::Internal(format!("stored hash: {err}")))?;
                match argon2.verify_password(password.expose().as_bytes(), &parsed) {
                    Ok(()) => Ok(true),
                    Err(argon2::password_hash::Error::Password) => Ok(false),
                    Err(err) => Err(PasswordError::Internal(err.to_string())),
                }
            })
            .await?;
        Ok(matches && account_exists)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest parameters Argon2 accepts, to keep the tests fast; production floors are
    /// enforced by config validation.
    fn cheap(max_concurrent: usize, queue_timeout: Duration) -> HashSettings {
        HashSettings {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1,
            max_concurrent,
            queue_timeout,
        }
    }

    fn secret(text: &str) -> SecretString {
        SecretString::new(text.to_owned())
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let hasher = PasswordHasher::new(cheap(2, Duration::from_secs(5)))
            .await
            .unwrap();
        let phc = hasher.hash(secret("correct horse")).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
        assert!(
            hasher
                .verify(secret("correct horse"), Some(phc.clone()))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(secret("correct horsE"), Some(phc))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn unknown_accounts_never_verify() {
        let hasher = PasswordHasher::new(cheap(1, Duration::from_secs(5)))
            .await
            .unwrap();
        assert!(!hasher.verify(secret(""), None).await.unwrap());
        assert!(hasher.dummy_hash.starts_with("$argon2id$"));
    }

    #[tokio::test]
    async fn a_busy_pool_answers_busy() {
        let hasher = PasswordHasher::new(cheap(1, Duration::from_millis(20)))
            .await
            .unwrap();
        let hold = hasher.pool.run(|| {
            std::thread::sleep(Duration::from_millis(300));
            Ok(())
        });
        let (held, refused) = tokio::join!(hold, hasher.hash(secret("x")));
        assert!(held.is_ok());
        assert!(matches!(refused, Err(PasswordError::Busy)));
        assert!(hasher.hash(secret("x")).await.is_ok());
    }

    #[test]
    fn default_parameters_are_the_owasp_minimum() {
        let settings = HashSettings {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
            max_concurrent: 1,
            queue_timeout: Duration::from_secs(1),
        };
        assert!(settings.params().is_ok());
    }
}
