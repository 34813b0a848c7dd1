//! The data directory of the embedded backend (design note 0003): the SQLite database, the
//! generated master key, and a lock that keeps a second issuer off the same files.
//!
//! The embedded backend is single-node: its blacklist lives in the process, so a second
//! process on the same database would never hear of the first one's revocations. The lock
//! turns that mistake into a clear refusal at start instead of a silent hole.

use std::fs::{self, DirBuilder, File, OpenOptions, TryLockError};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tracing::{info, warn};
use zeroize::Zeroizing;

use crate::crypto::keys::{MasterKey, random_bytes};

/// The generated master key, base64url without padding, as `master_key` takes it.
pub(crate) const MASTER_KEY_FILE: &str = "master.key";
/// Held (advisory `flock`) for the life of the process.
const LOCK_FILE: &str = "portcullis.lock";

/// An open data directory, locked for this process until it is dropped.
#[derive(Debug)]
pub(crate) struct DataDir {
    path: PathBuf,
    /// Never read: holding the open file is what holds the lock.
    _lock: File,
}

impl DataDir {
    /// Creates the directory if needed (mode 0700: it holds the database and the master key)
    /// and locks it.
    ///
    /// # Errors
    ///
    /// If the directory cannot be created, or another issuer holds its lock.
    pub(crate) fn open(path: &Path) -> anyhow::Result<Self> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .with_context(|| format!("creating the data directory {}", path.display()))?;
        let path = fs::canonicalize(path)
            .with_context(|| format!("resolving the data directory {}", path.display()))?;
        let lock_path = path.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .with_context(|| format!("opening {}", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => bail!(
                "another issuer is already using the data directory {}: the embedded backend \
                 is single-node, so run one process per data directory (or set \
                 PORTCULLIS_DATABASE_URL to run many replicas on PostgreSQL)",
                path.display()
            ),
            Err(TryLockError::Error(err)) => {
                return Err(err).with_context(|| format!("locking {}", lock_path.display()));
            }
        }
        Ok(Self { path, _lock: lock })
    }

    /// The directory, absolute.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The master key kept in the directory; `None` if there is none yet.
    ///
    /// # Errors
    ///
    /// If the file cannot be read or does not hold a master key.
    pub(crate) fn stored_master_key(&self) -> anyhow::Result<Option<MasterKey>> {
        let path = self.master_key_path();
        match fs::read_to_string(&path) {
            Ok(text) => {
                let text = Zeroizing::new(text);
                warn_if_readable_by_others(&path);
                let key = MasterKey::from_base64url(&text)
                    .map_err(|err| anyhow!("{} {err}", path.display()))?;
                Ok(Some(key))
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Where the generated master key is kept.
    pub(crate) fn master_key_path(&self) -> PathBuf {
        self.path.join(MASTER_KEY_FILE)
    }

    /// Generates the master key, for a directory whose [`stored_master_key`] is `None` and
    /// whose database holds nothing sealed with an earlier key (the caller checks both; the
    /// lock keeps other issuers from writing a key meanwhile).
    ///
    /// The key goes to a temporary file first and is then renamed into place, so a crash
    /// leaves either no key file or a complete one, never a truncated key.
    ///
    /// [`stored_master_key`]: Self::stored_master_key
    ///
    /// # Errors
    ///
    /// If the key cannot be written.
    pub(crate) fn generate_master_key(&self) -> anyhow::Result<MasterKey> {
        let path = self.master_key_path();
        let encoded = Zeroizing::new(URL_SAFE_NO_PAD.encode(random_bytes::<32>().as_slice()));
        let partial = self.path.join(format!("{MASTER_KEY_FILE}.partial"));
        match fs::remove_file(&partial) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err).with_context(|| format!("removing {}", partial.display())),
        }
        let write = || -> io::Result<()> {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&partial)?;
            file.write_all(encoded.as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            fs::rename(&partial, &path)?;
            // The rename itself is durable only once the directory is synced.
            File::open(&self.path)?.sync_all()
        };
        write().with_context(|| format!("writing a new master key to {}", path.display()))?;
        info!(
            target: "security",
            path = %path.display(),
            "generated a master key for the embedded backend"
        );
        MasterKey::from_base64url(&encoded).map_err(|err| anyhow!("generated master key {err}"))
    }
}

/// The key file is created 0600 inside a 0700 directory; a copy restored with looser
/// permissions still works, but the operator should know.
fn warn_if_readable_by_others(path: &Path) {
    match fs::metadata(path) {
        Ok(metadata) if metadata.permissions().mode() & 0o077 != 0 => warn!(
            target: "security",
            path = %path.display(),
            "the master key file is accessible to other users; restrict it with chmod 600"
        ),
        Ok(_) => {}
        Err(err) => warn!(path = %path.display(), error = %err, "cannot check the master key file"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn open_creates_the_directory_private() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("nested/data");
        let dir = DataDir::open(&path).unwrap();
        assert!(dir.path().is_absolute());
        assert_eq!(mode(&path), 0o700);
    }

    #[test]
    fn master_key_is_generated_private_and_then_read_back() {
        let root = tempfile::tempdir().unwrap();
        let dir = DataDir::open(root.path()).unwrap();
        assert!(dir.stored_master_key().unwrap().is_none());
        let first = dir.generate_master_key().unwrap();
        let file = root.path().join(MASTER_KEY_FILE);
        assert_eq!(dir.master_key_path(), file);
        assert_eq!(mode(&file), 0o600);
        let text = fs::read_to_string(&file).unwrap();
        assert_eq!(text.trim().len(), 43, "32 bytes of unpadded base64url");
        assert!(!root.path().join("master.key.partial").exists());

        let again = dir
            .stored_master_key()
            .unwrap()
            .expect("the key just generated");
        let (first, again) = (first.refresh_key().unwrap(), again.refresh_key().unwrap());
        assert_eq!(*first, *again);
    }

    #[test]
    fn a_damaged_master_key_file_is_refused_without_echoing_it() {
        let root = tempfile::tempdir().unwrap();
        let dir = DataDir::open(root.path()).unwrap();
        fs::write(root.path().join(MASTER_KEY_FILE), "c2hvcnQ\n").unwrap();
        let err = dir.stored_master_key().unwrap_err().to_string();
        assert!(
            err.contains(MASTER_KEY_FILE) && err.contains("32 bytes"),
            "{err}"
        );
        assert!(!err.contains("c2hvcnQ"), "{err}");
    }

    #[test]
    fn a_second_process_on_the_same_directory_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let held = DataDir::open(root.path()).unwrap();
        let err = DataDir::open(root.path()).unwrap_err().to_string();
        assert!(err.contains("single-node"), "{err}");
        drop(held);
        assert!(
            DataDir::open(root.path()).is_ok(),
            "the lock goes with its holder"
        );
    }
}
