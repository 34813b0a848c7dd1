//! `issuer migrate` and configuration validation at start (0002, "Start-up", "Configuration").

use std::time::Duration;

use crate::support::{Issuer, Options, RunOutput, Sandbox};

/// Long enough for a slow start; a rejected configuration exits long before.
pub(crate) const RUN_TIMEOUT: Duration = Duration::from_secs(60);

async fn table_count(sandbox: &Sandbox) -> i64 {
    sandbox.database().await.table_count().await
}

#[tokio::test]
async fn migrate_fresh_database_exits_zero_and_is_idempotent() {
    let Some(sandbox) = Sandbox::new().await else {
        return;
    };

    let first = sandbox
        .run(&["migrate"], &Options::new(), RUN_TIMEOUT)
        .await;
    assert!(
        first.status.is_some_and(|s| s.success()),
        "first migrate: {first:?}"
    );
    let tables = table_count(&sandbox).await;
    assert!(tables > 0, "migrate created no tables");

    let second = sandbox
        .run(&["migrate"], &Options::new(), RUN_TIMEOUT)
        .await;
    assert!(
        second.status.is_some_and(|s| s.success()),
        "second migrate: {second:?}"
    );
    assert_eq!(table_count(&sandbox).await, tables);
    for output in [&first, &second] {
        assert!(!output.stderr.contains("panicked"), "{output:?}");
    }
}

/// Asserts the issuer refused to start: a non-zero exit, no panic, and a message naming
/// `setting` on stderr.
pub(crate) fn assert_refused(output: &RunOutput, setting: &str) {
    let status = output
        .status
        .unwrap_or_else(|| panic!("still running: accepted? {output:?}"));
    assert!(
        !status.success(),
        "exited 0 with an invalid setting: {output:?}"
    );
    assert!(
        !output.stderr.contains("panicked") && !output.stdout.contains("panicked"),
        "panicked instead of a clean error: {output:?}"
    );
    assert!(
        !output.stdout.contains("listening on"),
        "it started: {output:?}"
    );
    assert!(
        output
            .stderr
            .to_ascii_lowercase()
            .contains(&setting.to_ascii_lowercase()),
        "stderr should name {setting:?}: {output:?}"
    );
}

pub(crate) async fn serve_with(options: Options) -> Option<RunOutput> {
    let sandbox = Sandbox::new().await?;
    Some(sandbox.run(&["serve"], &options, RUN_TIMEOUT).await)
}

#[tokio::test]
async fn serve_refresh_grace_out_of_range_exits_naming_the_setting() {
    let options = Options::new().env("PORTCULLIS_TOKEN__REFRESH_GRACE_SECS", "999");
    let Some(output) = serve_with(options).await else {
        return;
    };
    assert_refused(&output, "refresh_grace_secs");
}

#[tokio::test]
async fn serve_access_ttl_out_of_range_exits_naming_the_setting() {
    let options = Options::new().env("PORTCULLIS_TOKEN__ACCESS_TTL_SECS", "10");
    let Some(output) = serve_with(options).await else {
        return;
    };
    assert_refused(&output, "access_ttl_secs");
}

#[tokio::test]
async fn serve_weak_argon2_memory_exits_naming_the_setting() {
    let options = Options::new().env("PORTCULLIS_PASSWORD__ARGON2_MEMORY_KIB", "1024");
    let Some(output) = serve_with(options).await else {
        return;
    };
    assert_refused(&output, "argon2_memory_kib");
}

#[tokio::test]
async fn serve_unknown_config_file_key_exits_naming_the_key() {
    let options = Options::new().config("bogus_setting = 1\n");
    let Some(output) = serve_with(options).await else {
        return;
    };
    assert_refused(&output, "bogus_setting");
}

#[tokio::test]
async fn serve_unknown_nested_config_file_key_exits_naming_the_key() {
    let options = Options::new().config("[token]\nrefresh_grace = 5\n");
    let Some(output) = serve_with(options).await else {
        return;
    };
    assert_refused(&output, "refresh_grace");
}

#[tokio::test]
async fn serve_unknown_environment_key_exits_naming_the_key() {
    let options = Options::new().env("PORTCULLIS_BOGUS_SETTING", "1");
    let Some(output) = serve_with(options).await else {
        return;
    };
    assert_refused(&output, "bogus_setting");
}

#[tokio::test]
async fn serve_short_master_key_exits_naming_the_setting() {
    let options = Options::new().env("PORTCULLIS_MASTER_KEY", "c2hvcnQ");
    let Some(output) = serve_with(options).await else {
        return;
    };
    assert_refused(&output, "master_key");
}

#[tokio::test]
async fn serve_short_hs256_secret_exits_naming_the_setting() {
    let config = "[[token.keys]]\nkid = \"k1\"\nalg = \"HS256\"\nsecret = \"c2hvcnQ\"\n";
    let Some(output) = serve_with(Options::new().config(config)).await else {
        return;
    };
    assert_refused(&output, "secret");
}

#[tokio::test]
async fn serve_unparsable_config_file_exits_without_panic() {
    let options = Options::new().config("[token\nthis is not toml");
    let Some(output) = serve_with(options).await else {
        return;
    };
    let status = output
        .status
        .unwrap_or_else(|| panic!("still running: {output:?}"));
    assert!(!status.success(), "{output:?}");
    assert!(!output.stderr.contains("panicked"), "{output:?}");
}

/// The lines of `text` that warn about `public_url` and name `address`.
fn public_url_warnings<'a>(text: &'a str, address: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|line| line.contains("public_url") && line.contains(address))
        .collect()
}

/// Without `public_url`, an issuer listening on every interface names itself
/// `http://0.0.0.0:PORT` in `iss` and every published URL, which no client can use. It keeps
/// serving, but says so once in the log and once under the start line, where a newcomer looks.
#[tokio::test]
async fn listen_on_an_unspecified_address_without_public_url_warns_once() {
    let options = Options::new().env("PORTCULLIS_LISTEN", "0.0.0.0:0");
    let Some(issuer) = Issuer::start_with(options).await else {
        return;
    };
    let address = issuer
        .base_url()
        .strip_prefix("http://")
        .expect("an http URL")
        .to_owned();
    assert!(address.starts_with("0.0.0.0:"), "{}", issuer.start_line());

    let stdout = issuer.stdout();
    let printed = public_url_warnings(&stdout, &address);
    assert_eq!(
        printed.len(),
        1,
        "one warning under the start line: {stdout}"
    );
    let stderr = issuer.stderr();
    let logged = public_url_warnings(&stderr, &address);
    assert_eq!(logged.len(), 1, "one warning in the log: {stderr}");
    assert!(logged[0].contains("WARN"), "logged as a warning: {stderr}");

    let alice = issuer.signup().await;
    assert_eq!(issuer.me(&alice.tokens.access_token).await.status, 200);
}

/// With `public_url` set, listening on every interface is what a deployment behind a proxy or
/// in a container does: nothing to warn about.
#[tokio::test]
async fn listen_on_an_unspecified_address_with_public_url_does_not_warn() {
    let options =
        crate::restart::with_public_url(Options::new().env("PORTCULLIS_LISTEN", "0.0.0.0:0"));
    let Some(issuer) = Issuer::start_with(options).await else {
        return;
    };
    let logs = issuer.logs();
    assert!(
        public_url_warnings(&logs, "0.0.0.0").is_empty(),
        "a warning with public_url set: {logs}"
    );
}
