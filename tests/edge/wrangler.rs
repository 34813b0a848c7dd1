//! The shipped configuration: the Miniflare options the other tests run with mirror the
//! repository's wrangler.toml, and `wrangler dev --local` with that very file (variables given
//! with `--var`, as an operator would) serves a public route and refuses a missing token.
//! Offline, with telemetry off.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::origin::Origin;
use crate::harness::{
    ROUTES, Signing, Stack, assert_passed, assert_refusal, edge_tools, repo_root, skip_or_fail,
};

/// `wrangler dev` first runs the `[build]` command of wrangler.toml, which may compile the
/// worker: a liveness bound for a busy machine, not a check.
const WRANGLER_READY: Duration = Duration::from_secs(600);

/// The environment every wrangler run gets: no telemetry, no interactive prompts, and none of
/// the suite's `PORTCULLIS_*` settings.
fn wrangler_command(root: &Path, scratch: &Path) -> Command {
    let mut command = Command::new("node");
    command
        .arg(root.join("edge/node_modules/wrangler/bin/wrangler.js"))
        .current_dir(root)
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CI", "true")
        .env("WRANGLER_LOG_PATH", scratch.join("wrangler-logs"))
        .stdin(Stdio::null());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PORTCULLIS_") {
            command.env_remove(name);
        }
    }
    command
}

/// The edge's tools, and wrangler among them; `None` as [`edge_tools`] says.
fn wrangler_tools() -> Option<()> {
    edge_tools()?;
    if !repo_root()
        .join("edge/node_modules/wrangler/bin/wrangler.js")
        .is_file()
    {
        return skip_or_fail("no edge/node_modules/wrangler (run `bash scripts/edge-tools`)");
    }
    Some(())
}

#[test]
fn the_launcher_mirrors_wrangler_toml() {
    if wrangler_tools().is_none() {
        return;
    }
    let root = repo_root();
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let output = Command::new("node")
        .arg(root.join("edge/test/serve.mjs"))
        .arg("--check-wrangler")
        .current_dir(&root)
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CI", "true")
        .env("WRANGLER_LOG_PATH", scratch.path().join("wrangler-logs"))
        .stdin(Stdio::null())
        .output()
        .expect("run serve.mjs --check-wrangler");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.trim() == "mirrored",
        "edge/test/worker.mjs no longer mirrors wrangler.toml:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A running `wrangler dev`, in its own process group; dropping it stops the whole group.
#[derive(Debug)]
struct WranglerDev {
    child: Child,
    log: std::path::PathBuf,
}

impl WranglerDev {
    fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }
}

impl Drop for WranglerDev {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        for signal in ["-TERM", "-KILL"] {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            drop(
                Command::new("kill")
                    .args([signal, "--", &group])
                    .stderr(Stdio::null())
                    .status(),
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && !matches!(self.child.try_wait(), Ok(Some(_))) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        // workerd may outlive wrangler's Node process.
        drop(
            Command::new("kill")
                .args(["-KILL", "--", &group])
                .stderr(Stdio::null())
                .status(),
        );
        if std::thread::panicking() {
            eprintln!("--- wrangler dev output ---\n{}", self.log());
        }
    }
}

/// A port nothing listens on right now (wrangler takes a port number, not a socket).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address").port()
}

#[tokio::test]
async fn wrangler_dev_serves_the_shipped_configuration() {
    if wrangler_tools().is_none() {
        return;
    }
    let Some((issuer, _keys)) = Stack::issuer(Signing::EdDsa).await else {
        return;
    };
    let origin = Origin::start().await;
    let root = repo_root();
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let port = free_port();
    let log = scratch.path().join("wrangler.log");
    let log_file = std::fs::File::create(&log).expect("create the wrangler log");

    let vars = [
        ("PORTCULLIS_ORIGIN_URL", origin.url()),
        ("PORTCULLIS_ISSUER_URL", issuer.base_url().to_owned()),
        ("PORTCULLIS_ROUTES", ROUTES.replace('\n', " ")),
    ];
    let mut command = wrangler_command(&root, scratch.path());
    command
        .args(["dev", "--local", "--config"])
        .arg(root.join("wrangler.toml"))
        .args(["--ip", "127.0.0.1", "--port", &port.to_string()])
        .args(["--inspector-port", &free_port().to_string()])
        .arg("--show-interactive-dev-session=false")
        .arg("--persist-to")
        .arg(scratch.path().join("state"));
    for (name, value) in &vars {
        command.arg("--var").arg(format!("{name}:{value}"));
    }
    command
        .stdout(log_file.try_clone().expect("share the log"))
        .stderr(log_file)
        .process_group(0);
    let mut wrangler = WranglerDev {
        child: command.spawn().expect("spawn wrangler dev"),
        log,
    };

    // Wait for the port; wrangler holds requests until the worker is up.
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if let Ok(Some(status)) = wrangler.child.try_wait() {
            panic!("wrangler dev exited with {status}\n{}", wrangler.log());
        }
        assert!(
            started.elapsed() < WRANGLER_READY,
            "wrangler dev not listening after {WRANGLER_READY:?}\n{}",
            wrangler.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(WRANGLER_READY)
        .build()
        .expect("an HTTP client");
    let base = format!("http://127.0.0.1:{port}");
    let healthz = crate::support::send(http.get(format!("{base}/healthz"))).await;
    assert_passed(&healthz);
    assert_eq!(origin.last().path, "/healthz");

    let refused = crate::support::send(http.get(format!("{base}/api/orders"))).await;
    assert_refusal(&refused, 401, "unauthenticated");
    assert_eq!(
        origin.count(),
        1,
        "only the health check: {}",
        origin.summary()
    );
    drop(wrangler);
}
