//! The edge harness: per test, a real issuer (the e2e harness's [`Issuer`], embedded backend),
//! an origin that echoes what it receives ([`Origin`]) and the built worker under workerd
//! through Miniflare 4 ([`Edge`], started by `edge/test/serve.mjs`), all on 127.0.0.1 with
//! ports chosen by the system, so tests run in parallel.
//!
//! What the edge needs beyond the issuer: Node.js (≥ 20), the npm tools in `edge/node_modules`
//! (`bash scripts/edge-tools`) and the built worker in `edge/build/` (`bash scripts/build-edge`).
//! Without one of them a test prints `skipped: <why>` and passes, unless
//! `PORTCULLIS_REQUIRE_SERVICES=1`, under which it fails.
//!
//! `PORTCULLIS_TEST_EDGE_SCRIPT=<path>` runs the Miniflare tests against another worker script
//! than `edge/build/index.js` (an older build, to compare); the wrangler tests always use
//! wrangler.toml's.

pub(crate) mod keys;
pub(crate) mod origin;
pub(crate) mod raw;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, RequestBuilder};
use serde_json::json;

use self::origin::Origin;
use crate::support::{self, Issuer, Options, Response};

pub(crate) use self::keys::{Keys, Signing, flip_signature_bit, tamper_claims};

/// How long a worker may take to print `ready`: generous, because the machine may be busy
/// compiling; a liveness bound, not a check.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// How long `serve.mjs` may take to stop workerd after its stdin closed, before the harness
/// kills the whole process group.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// The route rules most tests run with: every access level, a method-restricted rule and no
/// catch-all, so an unmatched path shows the deny-by-default.
pub(crate) const ROUTES: &str = r#"[
  {"path": "/healthz", "access": "public"},
  {"path": "/public/**", "access": "public"},
  {"path": "/admin/**", "methods": ["POST", "PUT", "DELETE"], "permission": "users:write"},
  {"path": "/profile/**", "permission": "profile:read"},
  {"path": "/api/**", "access": "authenticated"}
]"#;

/// The rate limit a test gets unless it asks for one: high enough that no test reaches it by
/// accident (wrangler.toml's production value could).
const DEFAULT_RATE_LIMIT: u32 = 100_000;

// ---------------------------------------------------------------------------------------------
// Tools
// ---------------------------------------------------------------------------------------------

/// Reads a setting of the test suite itself.
#[allow(clippy::disallowed_methods)] // the suite's own settings, not issuer configuration
pub(crate) fn suite_setting(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// The repository root (the issuer package is `<root>/issuer`).
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the issuer package sits in the repository root")
        .to_path_buf()
}

/// Skips (prints `skipped: <why>`, `None`) or, under `PORTCULLIS_REQUIRE_SERVICES=1`, fails.
pub(crate) fn skip_or_fail<T>(problem: &str) -> Option<T> {
    if suite_setting("PORTCULLIS_REQUIRE_SERVICES").as_deref() == Some("1") {
        panic!("PORTCULLIS_REQUIRE_SERVICES=1 but {problem}");
    }
    println!("skipped: {problem}");
    None
}

/// Node.js, the edge's npm tools and the built worker; `None` (skipped or failed, see
/// [`skip_or_fail`]) when one is missing.
pub(crate) fn edge_tools() -> Option<()> {
    let root = repo_root();
    let node = Command::new("node")
        .args([
            "-e",
            "process.exit(+process.versions.node.split('.')[0] >= 20 ? 0 : 1)",
        ])
        .stdin(Stdio::null())
        .output();
    match node {
        Ok(output) if output.status.success() => {}
        Ok(_) => return skip_or_fail("Node.js >= 20 is required for the edge tests"),
        Err(error) => return skip_or_fail(&format!("no Node.js for the edge tests: {error}")),
    }
    let miniflare = root.join("edge/node_modules/miniflare/package.json");
    if !miniflare.is_file() {
        return skip_or_fail("no edge/node_modules/miniflare (run `bash scripts/edge-tools`)");
    }
    let build = worker_script();
    if !build.is_file() {
        return skip_or_fail(&format!(
            "no built worker {} (run `bash scripts/build-edge`)",
            build.display()
        ));
    }
    Some(())
}

/// The worker script the Miniflare tests run: the build, unless the suite says otherwise.
fn worker_script() -> PathBuf {
    suite_setting("PORTCULLIS_TEST_EDGE_SCRIPT")
        .map_or_else(|| repo_root().join("edge/build/index.js"), PathBuf::from)
}

// ---------------------------------------------------------------------------------------------
// The worker
// ---------------------------------------------------------------------------------------------

/// How to start one worker: its variables and secrets over wrangler.toml's `[vars]` (as
/// `wrangler dev --var` lays them), and the rate limit.
#[derive(Debug, Clone)]
pub(crate) struct EdgeConfig {
    /// `None`: removed, so the worker runs without it (`null` to `serve.mjs`).
    vars: BTreeMap<String, Option<String>>,
    rate_limit: u32,
}

impl EdgeConfig {
    /// wrangler.toml's `[vars]` alone; the default rate limit.
    pub(crate) fn empty() -> EdgeConfig {
        EdgeConfig {
            vars: BTreeMap::new(),
            rate_limit: DEFAULT_RATE_LIMIT,
        }
    }

    /// Sets a variable (or secret).
    pub(crate) fn var(mut self, name: &str, value: &str) -> EdgeConfig {
        self.vars.insert(name.to_owned(), Some(value.to_owned()));
        self
    }

    /// Removes a variable, wrangler.toml's value included.
    pub(crate) fn without(mut self, name: &str) -> EdgeConfig {
        self.vars.insert(name.to_owned(), None);
        self
    }

    /// Allows `limit` requests per client per minute.
    pub(crate) fn rate_limit(mut self, limit: u32) -> EdgeConfig {
        self.rate_limit = limit;
        self
    }
}

/// A running worker (`node edge/test/serve.mjs` and its workerd, in their own process group).
/// Dropping it closes the launcher's stdin, which disposes Miniflare; if that takes longer
/// than [`STOP_TIMEOUT`], the group is killed.
#[derive(Debug)]
pub(crate) struct Edge {
    child: Child,
    stdin: Option<ChildStdin>,
    url: String,
    http: reqwest::Client,
    stderr_path: PathBuf,
    _scratch: tempfile::TempDir,
}

impl Edge {
    /// Starts a worker with `config`; panics when it does not report ready.
    pub(crate) async fn start(config: &EdgeConfig) -> Edge {
        let root = repo_root();
        let scratch = tempfile::Builder::new()
            .prefix("pc_edge_")
            .tempdir()
            .expect("a scratch directory");
        let stderr_path = scratch.path().join("worker.stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("create the worker log");
        let vars = serde_json::to_string(&config.vars).expect("serialize the variables");

        let mut command = Command::new("node");
        command
            .arg(root.join("edge/test/serve.mjs"))
            .arg(vars)
            .arg(format!("--rate-limit={}", config.rate_limit))
            .arg("--rate-period=60")
            .arg(format!("--script={}", worker_script().display()))
            .current_dir(&root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            // Its own group, so the clean-up can reach workerd even if Node is gone.
            .process_group(0);
        // Only what the test sets reaches the worker, never the suite's own settings.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PORTCULLIS_") {
                command.env_remove(name);
            }
        }
        let mut child = command.spawn().expect("spawn node edge/test/serve.mjs");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("the launcher's stdout");

        let (sender, receiver) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next().and_then(Result::ok);
            drop(sender.send(first));
            // Drain whatever else comes, so the launcher never blocks on a full pipe.
            for _ in lines {}
        });

        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .expect("build the HTTP client");
        let mut edge = Edge {
            child,
            stdin,
            url: String::new(),
            http,
            stderr_path,
            _scratch: scratch,
        };
        let line = tokio::time::timeout(READY_TIMEOUT, receiver).await;
        let line = match line {
            Ok(Ok(Some(line))) => line,
            Ok(_) => panic!("the worker exited before ready\n{}", edge.logs()),
            Err(_) => panic!("no `ready` within {READY_TIMEOUT:?}\n{}", edge.logs()),
        };
        let url = line
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("want `ready <url>`, got {line:?}\n{}", edge.logs()));
        assert!(url.starts_with("http://127.0.0.1:"), "{line:?}");
        edge.url = url.to_owned();
        edge
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// `127.0.0.1:<port>`, for raw requests.
    pub(crate) fn address(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// Everything workerd and Miniflare wrote to stderr so far.
    pub(crate) fn logs(&self) -> String {
        let log = std::fs::read(&self.stderr_path).unwrap_or_default();
        format!(
            "--- worker stderr ---\n{}",
            String::from_utf8_lossy(&log).trim_end()
        )
    }

    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    pub(crate) async fn send(&self, request: RequestBuilder) -> Response {
        support::send(request).await
    }

    pub(crate) async fn get(&self, path: &str) -> Response {
        self.send(self.request(Method::GET, path)).await
    }

    pub(crate) async fn get_bearer(&self, path: &str, token: &str) -> Response {
        self.send(self.request(Method::GET, path).bearer_auth(token))
            .await
    }

    /// A raw request (see [`raw`]): `request` is sent exactly as given.
    pub(crate) async fn raw(&self, request: Vec<u8>) -> Response {
        raw::exchange(self.address(), request).await
    }

    /// `GET <target>` written byte for byte, with these extra header lines.
    pub(crate) async fn raw_get(&self, target: &str, headers: &[(&str, &str)]) -> Response {
        self.raw(raw::get(target, self.address(), headers)).await
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // The whole group: Node if it hangs, and a workerd that outlived it.
        let group = format!("-{}", self.child.id());
        if let Err(error) = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status()
        {
            eprintln!("edge clean-up: kill -KILL -- {group}: {error}");
        }
        drop(self.child.wait());
        if std::thread::panicking() {
            eprintln!("edge test failed; worker at {}\n{}", self.url, self.logs());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A whole stack
// ---------------------------------------------------------------------------------------------

/// How to start an issuer, an origin and a worker that gates it.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    signing: Signing,
    edge: EdgeConfig,
}

impl Setup {
    /// EdDSA tokens, which the edge verifies through the issuer's JWKS; the [`ROUTES`].
    pub(crate) fn new() -> Setup {
        Setup {
            signing: Signing::EdDsa,
            edge: EdgeConfig::empty(),
        }
    }

    /// HS256 tokens; the edge gets the secret and no JWKS.
    pub(crate) fn hs256() -> Setup {
        Setup {
            signing: Signing::Hs256,
            ..Setup::new()
        }
    }

    /// Sets a worker variable (wins over the harness's own).
    pub(crate) fn var(mut self, name: &str, value: &str) -> Setup {
        self.edge = self.edge.var(name, value);
        self
    }

    /// Runs the worker without a variable, wrangler.toml's value included.
    pub(crate) fn without(mut self, name: &str) -> Setup {
        self.edge = self.edge.without(name);
        self
    }

    pub(crate) fn rate_limit(mut self, limit: u32) -> Setup {
        self.edge = self.edge.rate_limit(limit);
        self
    }
}

/// An issuer with the test's keys, an origin, and a worker between clients and the origin.
#[derive(Debug)]
pub(crate) struct Stack {
    pub(crate) edge: Edge,
    pub(crate) origin: Origin,
    pub(crate) issuer: Issuer,
    pub(crate) keys: Keys,
}

impl Stack {
    /// Starts everything; `None` when a tool is missing (see [`edge_tools`]).
    pub(crate) async fn start(setup: Setup) -> Option<Stack> {
        let (issuer, keys) = Stack::issuer(setup.signing).await?;
        let origin = Origin::start().await;
        let config = Stack::edge_config(&setup, &issuer, &origin, &keys);
        let edge = Edge::start(&config).await;
        Some(Stack {
            edge,
            origin,
            issuer,
            keys,
        })
    }

    /// The issuer alone, with fresh keys (for tests that start the worker later).
    pub(crate) async fn issuer(signing: Signing) -> Option<(Issuer, Keys)> {
        edge_tools()?;
        let keys = Keys::random(signing);
        let options = Options::new().config(&keys.issuer_toml());
        let issuer = Issuer::start_with(options).await?;
        Some((issuer, keys))
    }

    /// The worker's variables: origin, issuer, routes, keys, then the setup's own.
    pub(crate) fn edge_config(
        setup: &Setup,
        issuer: &Issuer,
        origin: &Origin,
        keys: &Keys,
    ) -> EdgeConfig {
        let mut config = EdgeConfig::empty()
            .var("PORTCULLIS_ORIGIN_URL", &origin.url())
            .var("PORTCULLIS_ISSUER_URL", issuer.base_url())
            .var("PORTCULLIS_ROUTES", ROUTES);
        if setup.signing == Signing::Hs256 {
            config = config
                .var("PORTCULLIS_HS256_KEYS", &keys.hs256_keys_json())
                .var("PORTCULLIS_JWKS_URL", "off");
        }
        for (name, value) in &setup.edge.vars {
            config.vars.insert(name.clone(), value.clone());
        }
        config.rate_limit = setup.edge.rate_limit;
        config
    }

    /// A fresh user's token response from the issuer.
    pub(crate) async fn login(&self) -> support::Tokens {
        self.issuer.signup().await.tokens
    }

    /// Asserts the access token passes the edge on an authenticated route; the first such
    /// request also loads the worker's keys and revocation list while the issuer is up.
    pub(crate) async fn assert_token_passes(&self, tokens: &support::Tokens) {
        assert_passed(
            &self
                .edge
                .get_bearer("/api/orders", &tokens.access_token)
                .await,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------------------------

/// Asserts an edge refusal: the status and code, the problem shape the issuer uses, and
/// `Cache-Control: no-store` (0004, "What it does").
pub(crate) fn assert_refusal(response: &Response, status: u16, code: &str) {
    support::assert_problem(response, status, code);
    let cache = response.header("cache-control").unwrap_or_default();
    assert!(
        cache.to_ascii_lowercase().contains("no-store"),
        "want Cache-Control: no-store on a refusal, got {response:?}"
    );
}

/// Asserts a 401 `invalid_token`-family refusal with `WWW-Authenticate: Bearer
/// error="invalid_token"`.
pub(crate) fn assert_invalid_token(response: &Response, code: &str) {
    assert_refusal(response, 401, code);
    let challenge = response.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains(r#"error="invalid_token""#),
        "want WWW-Authenticate: Bearer error=\"invalid_token\", got {response:?}"
    );
}

/// Asserts the request went through: 200 with the origin's echo.
pub(crate) fn assert_passed(response: &Response) {
    assert_eq!(
        response.status, 200,
        "want the origin's answer, got {response:?}"
    );
    assert!(
        response.body["path"].is_string(),
        "want the origin's echo, got {response:?}"
    );
}

/// The problem document's `detail`, for checks on what it names.
pub(crate) fn detail(response: &Response) -> &str {
    response.body["detail"].as_str().unwrap_or_default()
}

/// The JSON for a route-rules document made of `rules`.
pub(crate) fn routes(rules: &[serde_json::Value]) -> String {
    json!(rules).to_string()
}
