//! Tests that exist only with the embedded backend (0003): what it creates in its data directory,
//! the generated master key, the fresh-machine start, and the combination it refuses.

use std::io::{Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _};

use crate::restart::with_public_url;
use crate::startup::{RUN_TIMEOUT, assert_refused};
use crate::support::{
    EMBEDDED_BACKEND_TEXT, Issuer, MASTER_KEY_FILE, Options, PASSWORD, SQLITE_FILE, Sandbox,
    assert_problem,
};

/// The permission bits of `path` (without the file type).
fn mode(path: &Path) -> u32 {
    let metadata =
        std::fs::metadata(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    metadata.permissions().mode() & 0o7777
}

/// Asserts the secret in `key` (raw bytes or text) appears in none of `outputs`, in any of the
/// spellings a careless log line would use.
fn assert_key_not_printed(key: &[u8], outputs: &[&str]) {
    let mut spellings = vec![
        URL_SAFE_NO_PAD.encode(key),
        STANDARD.encode(key),
        key.iter().map(|byte| format!("{byte:02x}")).collect(),
    ];
    if let Ok(text) = std::str::from_utf8(key) {
        let text = text.trim();
        if text.len() >= 16 {
            spellings.push(text.to_owned());
        }
    }
    for output in outputs {
        for spelling in &spellings {
            assert!(
                !output.contains(spelling.as_str()),
                "the master key is printed: {output}"
            );
        }
    }
}

/// 0003 "Embedded storage", "Master key": the first start in an empty data directory creates it
/// (mode 0700) with `portcullis.db` and a generated `master.key` (mode 0600), says so without
/// printing the key, and names the backend and the directory; a restart reuses the key, so
/// tokens issued before it still verify.
#[tokio::test]
async fn first_start_creates_data_dir_master_key_and_database_reused_after_restart() {
    let sandbox = Arc::new(Sandbox::new().await.expect("embedded needs no service"));
    let data_dir = sandbox.data_dir().to_owned();
    assert!(!data_dir.exists(), "the harness must not create it");
    let options = with_public_url(Options::new());

    let first = Issuer::start_in(&sandbox, options.clone()).await;
    let stdout = first.stdout();
    assert!(
        first.start_line().contains(EMBEDDED_BACKEND_TEXT),
        "{stdout}"
    );
    let data_dir_text = data_dir.to_str().expect("UTF-8 temp dir");
    assert!(
        stdout.contains(data_dir_text),
        "stdout must name the data directory {data_dir_text}: {stdout}"
    );
    assert!(
        stdout.to_ascii_lowercase().contains("master"),
        "stdout must say the master key was generated: {stdout}"
    );

    assert!(data_dir.is_dir());
    assert_eq!(mode(&data_dir), 0o700, "data directory mode");
    let database = data_dir.join(SQLITE_FILE);
    assert!(database.is_file(), "no {}", database.display());
    let key_path = data_dir.join(MASTER_KEY_FILE);
    assert!(key_path.is_file(), "no {}", key_path.display());
    assert_eq!(mode(&key_path), 0o600, "master.key mode");
    let key = std::fs::read(&key_path).expect("read master.key");
    assert!(
        key.len() >= 32,
        "a 32-byte key at least: {} bytes",
        key.len()
    );

    let alice = first.signup().await;
    let first_logs = first.logs();
    let stopped = first.stop().await;
    assert!(stopped.success(), "graceful shutdown on SIGTERM: {stopped}");

    let second = Issuer::start_in(&sandbox, options).await;
    assert_eq!(
        std::fs::read(&key_path).expect("read master.key"),
        key,
        "the restart must reuse the master key"
    );
    assert_eq!(mode(&key_path), 0o600, "master.key mode after restart");
    let me = second.me(&alice.tokens.access_token).await;
    assert_eq!(me.status, 200, "a token from before the restart: {me:?}");
    assert_eq!(me.body["user_id"], alice.user_id.as_str(), "{me:?}");
    let renewed = second.refresh_ok(&alice.tokens.refresh_token).await;
    assert_eq!(second.me(&renewed.access_token).await.status, 200);

    assert_key_not_printed(
        &key,
        &[&first_logs, &second.logs()], // stdout and stderr of both runs
    );
}

/// The fresh machine: nothing in the environment at all (no `PATH`, no `HOME`) but the listen
/// address and the data directory, and the whole token lifecycle works.
#[tokio::test]
async fn fresh_machine_with_only_listen_and_data_dir_serves_the_lifecycle() {
    let Some(issuer) = Issuer::start_with(Options::new().clear_env()).await else {
        return;
    };
    assert!(issuer.start_line().contains(EMBEDDED_BACKEND_TEXT));
    let data_dir = issuer.sandbox().data_dir();
    assert!(data_dir.join(SQLITE_FILE).is_file());
    assert!(data_dir.join(MASTER_KEY_FILE).is_file());

    let alice = issuer.signup().await;
    let me = issuer.me(&alice.tokens.access_token).await;
    assert_eq!(me.status, 200, "{me:?}");
    let renewed = issuer.refresh_ok(&alice.tokens.refresh_token).await;
    let logout = issuer.logout(&renewed.access_token, None).await;
    assert_eq!(logout.status, 204, "{logout:?}");
    assert_problem(
        &issuer.me(&renewed.access_token).await,
        401,
        "token_revoked",
    );
    let jwks = issuer.get("/.well-known/jwks.json").await;
    assert_eq!(jwks.status, 200, "{jwks:?}");
}

/// Not even the data directory: the default `./data` in the working directory (0002
/// "Configuration"), as for `cargo run -p issuer` in a fresh checkout.
#[tokio::test]
async fn fresh_machine_without_data_dir_uses_dot_data() {
    let options = Options::new()
        .clear_env()
        .without_env("PORTCULLIS_DATA_DIR");
    let Some(issuer) = Issuer::start_with(options).await else {
        return;
    };
    // The harness's data directory is `{working directory}/data`.
    let data_dir = issuer.sandbox().data_dir();
    assert_eq!(data_dir, issuer.sandbox().dir().join("data"));
    assert!(data_dir.join(SQLITE_FILE).is_file(), "{}", issuer.logs());
    assert!(
        data_dir.join(MASTER_KEY_FILE).is_file(),
        "{}",
        issuer.logs()
    );
    let alice = issuer.signup().await;
    assert_eq!(issuer.me(&alice.tokens.access_token).await.status, 200);
    let again = issuer.login(&alice.email, PASSWORD).await;
    assert_eq!(issuer.me(&again.access_token).await.status, 200);
}

/// 0003 "Selection": Redis without a database is refused at start (SQLite is single-node; a
/// shared Redis would suggest otherwise), with a message naming the setting, nothing silent.
#[tokio::test]
async fn redis_without_database_url_exits_naming_the_setting() {
    let sandbox = Sandbox::new().await.expect("embedded needs no service");
    let options = Options::new().env("PORTCULLIS_REDIS_URL", "redis://127.0.0.1:6379");
    let output = sandbox.run(&["serve"], &options, RUN_TIMEOUT).await;
    assert_refused(&output, "redis_url");
}

/// 0003: the embedded backend is single-node. A second process on a data directory in use would
/// serve with its own in-process blacklist, blind to the first one's revocations, so it must not
/// start, and must say why (nothing refused silently); the first keeps serving.
#[tokio::test]
async fn second_process_on_a_data_dir_in_use_is_refused() {
    let Some(first) = Issuer::start().await else {
        return;
    };
    let sandbox = first.shared_sandbox();
    let output = sandbox
        .run(&["serve"], &Options::new(), Duration::from_secs(20))
        .await;
    let status = output.status.unwrap_or_else(|| {
        panic!("a second embedded issuer serves the same data directory: {output:?}")
    });
    assert!(!status.success(), "{output:?}");
    assert!(
        !output.stdout.contains("listening on") && !output.stderr.contains("panicked"),
        "{output:?}"
    );
    let data_dir = std::fs::canonicalize(sandbox.data_dir()).expect("the data directory");
    let data_dir = data_dir.to_str().expect("UTF-8 temp dir");
    assert!(
        output.stderr.contains(data_dir),
        "stderr should name the data directory {data_dir}: {output:?}"
    );

    let alice = first.signup().await;
    assert_eq!(first.me(&alice.tokens.access_token).await.status, 200);
}

/// Starts an issuer on a fresh data directory, lets it create its database, signing key and
/// master key, and stops it gracefully; the sandbox is then ready for a second start.
async fn used_data_dir() -> Arc<Sandbox> {
    let sandbox = Arc::new(Sandbox::new().await.expect("embedded needs no service"));
    let first = Issuer::start_in(&sandbox, Options::new()).await;
    first.signup().await;
    let stopped = first.stop().await;
    assert!(stopped.success(), "graceful shutdown on SIGTERM: {stopped}");
    sandbox
}

/// A database whose master key is gone (restored without it, the file deleted) holds signing
/// keys no new key can unwrap. The issuer must refuse before generating a key, naming both
/// files, and leave no new `master.key` behind that would hide what was lost.
#[tokio::test]
async fn database_without_its_master_key_is_refused_before_a_key_is_generated() {
    let sandbox = used_data_dir().await;
    let key_path = sandbox.data_dir().join(MASTER_KEY_FILE);
    std::fs::remove_file(&key_path).expect("remove master.key");

    let output = sandbox.run(&["serve"], &Options::new(), RUN_TIMEOUT).await;
    assert_refused(&output, SQLITE_FILE);
    assert!(
        output.stderr.contains(MASTER_KEY_FILE) && output.stderr.contains("backup"),
        "stderr should name {MASTER_KEY_FILE} and how to recover: {output:?}"
    );
    assert!(
        !key_path.exists(),
        "a new master key was generated: {output:?}"
    );
    let partial = sandbox
        .data_dir()
        .join(format!("{MASTER_KEY_FILE}.partial"));
    assert!(!partial.exists(), "{output:?}");
}

/// `issuer migrate` on a fresh data directory creates the database but no master key, and
/// nothing is sealed yet: the `serve` after it generates the key instead of taking the
/// database for one whose key was lost.
#[tokio::test]
async fn serve_after_migrate_on_a_fresh_data_dir_generates_the_master_key() {
    let sandbox = Arc::new(Sandbox::new().await.expect("embedded needs no service"));
    let migrate = sandbox
        .run(&["migrate"], &Options::new(), RUN_TIMEOUT)
        .await;
    assert!(migrate.status.is_some_and(|s| s.success()), "{migrate:?}");
    let data_dir = sandbox.data_dir();
    assert!(data_dir.join(SQLITE_FILE).is_file(), "{migrate:?}");
    assert!(!data_dir.join(MASTER_KEY_FILE).exists(), "{migrate:?}");

    let issuer = Issuer::start_in(&sandbox, Options::new()).await;
    assert!(
        data_dir.join(MASTER_KEY_FILE).is_file(),
        "{}",
        issuer.logs()
    );
    let alice = issuer.signup().await;
    assert_eq!(issuer.me(&alice.tokens.access_token).await.status, 200);
}

/// Makes every SQLite, whoever runs it, treat the database as read-only, as a process that
/// may not write the file does (`chmod 444`, a read-only directory). `chmod` cannot be used
/// here: the suite may run as root, which writes through it. A file format write version
/// above 2 (header offset 18) means "readable, never write" to SQLite; the read version
/// (offset 19) stays 2, WAL. The WAL is folded into the file first, so that the header
/// patched is the one SQLite reads.
async fn make_read_only_for_sqlite(path: &Path) {
    let mut connection = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .connect()
        .await
        .unwrap_or_else(|error| panic!("open {}: {error}", path.display()));
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut connection)
        .await
        .expect("checkpoint the WAL");
    connection.close().await.expect("close the database");

    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open the database file");
    file.seek(SeekFrom::Start(18))
        .expect("seek to the write version");
    file.write_all(&[3]).expect("patch the write version");
    file.sync_all().expect("sync the database file");
}

/// A database SQLite may only read opens, migrates (nothing pending) and answers every read
/// at start, so the issuer used to report ready and then fail each register with a 500. It
/// must refuse at start, naming the file and saying it is read-only.
#[tokio::test]
async fn read_only_database_is_refused_at_start() {
    let sandbox = used_data_dir().await;
    let database =
        std::fs::canonicalize(sandbox.data_dir().join(SQLITE_FILE)).expect("the database file");
    make_read_only_for_sqlite(&database).await;

    let output = sandbox.run(&["serve"], &Options::new(), RUN_TIMEOUT).await;
    assert_refused(&output, "read-only");
    let database = database.to_str().expect("UTF-8 temp dir");
    assert!(
        output.stderr.contains(database),
        "stderr should name the database {database}: {output:?}"
    );
}
