//! A real SMTP server for the mail tests: `smtp_sink.py` (aiosmtpd, beside this file) on ports
//! of its own, in clear, with STARTTLS or with TLS from the first byte, its certificate signed
//! by a throwaway CA made with the `openssl` CLI. The test reads what arrived as JSON.
//!
//! A sink can be prepared without running ([`SmtpSink::reserve`]), so an issuer can be pointed
//! at an SMTP server that is down and the server started later ([`SmtpSink::up`]), or stopped
//! and started again on the same port ([`SmtpSink::down`]).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use super::Options;

/// The sink script, next to this file.
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/e2e/support/smtp_sink.py"
);
/// How long the sink may take to listen, and a message to arrive. Generous: they bound loops on
/// a busy machine, they are not checks.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(60);
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Ports [`SmtpSink::start`] tries.
const START_TRIES: usize = 5;

/// How the sink protects its SMTP port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SinkTls {
    /// No TLS (`smtp://`).
    Plain,
    /// STARTTLS required before any mail (`smtp://…?tls=required`).
    StartTls,
    /// TLS from the first byte (`smtps://`).
    Implicit,
}

/// One received message as the sink reports it.
#[derive(Debug, Clone)]
pub(crate) struct Mail {
    pub(crate) envelope_from: String,
    pub(crate) envelope_to: Vec<String>,
    pub(crate) from: String,
    pub(crate) subject: String,
    pub(crate) text: String,
    pub(crate) html: String,
}

impl Mail {
    fn from_json(value: &Value) -> Mail {
        let text = |key: &str| value[key].as_str().unwrap_or_default().to_owned();
        Mail {
            envelope_from: text("mail_from"),
            envelope_to: value["rcpt_tos"]
                .as_array()
                .expect("rcpt_tos")
                .iter()
                .map(|to| to.as_str().expect("a recipient").to_owned())
                .collect(),
            from: text("from"),
            subject: text("subject"),
            text: text("text"),
            html: text("html"),
        }
    }

    /// Whether the message went to `email`.
    pub(crate) fn is_to(&self, email: &str) -> bool {
        self.envelope_to.iter().any(|to| to == email)
    }

    /// The link in the text body that starts with `prefix` (e.g. the public URL and path).
    pub(crate) fn link(&self, prefix: &str) -> String {
        let start = self
            .text
            .find(prefix)
            .unwrap_or_else(|| panic!("no link {prefix:?} in {:?}", self.text));
        self.text[start..]
            .split_whitespace()
            .next()
            .expect("a link")
            .to_owned()
    }

    /// The `token` query parameter of the first link in the text body.
    pub(crate) fn token(&self) -> String {
        let start = self
            .text
            .find("token=")
            .unwrap_or_else(|| panic!("no token in {:?}", self.text))
            + "token=".len();
        self.text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect()
    }
}

/// An aiosmtpd sink; killed when dropped.
#[derive(Debug)]
pub(crate) struct SmtpSink {
    tls: SinkTls,
    smtp_port: u16,
    http_port: u16,
    /// The CA certificate and the server's key pair, for the TLS modes.
    dir: tempfile::TempDir,
    child: Option<Child>,
    http: reqwest::Client,
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address").port()
}

fn openssl(args: &[&str], dir: &Path) {
    let output = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA (`ca.pem`) and a server certificate it signed for 127.0.0.1 (`server.pem`,
/// `server.key`), as a private CA would issue.
fn make_certificates(dir: &Path) {
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("write the extensions");
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=portcullis e2e CA",
        ],
        dir,
    );
    openssl(
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
        dir,
    );
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
        dir,
    );
}

impl SmtpSink {
    /// A running sink. The SMTP port is picked free, then bound by the sink: should another
    /// process take it in between, another port is tried.
    pub(crate) async fn start(tls: SinkTls) -> SmtpSink {
        let mut sink = SmtpSink::reserve(tls);
        for _ in 0..START_TRIES {
            if sink.try_up().await {
                return sink;
            }
            sink.smtp_port = free_port();
        }
        panic!("the sink did not start on {START_TRIES} ports");
    }

    /// A sink with its ports and certificates chosen but not running: SMTP is down.
    pub(crate) fn reserve(tls: SinkTls) -> SmtpSink {
        let dir = tempfile::tempdir().expect("a directory for the sink");
        if tls != SinkTls::Plain {
            make_certificates(dir.path());
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("build the HTTP client");
        SmtpSink {
            tls,
            smtp_port: free_port(),
            http_port: 0,
            dir,
            child: None,
            http,
        }
    }

    /// Starts the sink on its reserved SMTP port and waits until it listens.
    pub(crate) async fn up(&mut self) {
        assert!(
            self.try_up().await,
            "the sink did not start on port {}",
            self.smtp_port
        );
    }

    /// Starts the sink; `false` when it could not listen (the port was taken meanwhile).
    async fn try_up(&mut self) -> bool {
        assert!(self.child.is_none(), "the sink is already running");
        let mut command = Command::new("python3");
        command.arg(SCRIPT).arg(self.smtp_port.to_string());
        let mode = match self.tls {
            SinkTls::Plain => None,
            SinkTls::StartTls => Some("starttls"),
            SinkTls::Implicit => Some("implicit"),
        };
        if let Some(mode) = mode {
            command
                .arg(mode)
                .arg(self.dir.path().join("server.pem"))
                .arg(self.dir.path().join("server.key"));
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn smtp_sink.py (is aiosmtpd installed? see scripts/py-tools)");
        let stdout = child.stdout.take().expect("the sink's stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(START_TIMEOUT, lines.next_line())
            .await
            .expect("the sink did not start in time")
            .expect("read the sink's stdout");
        let Some(http_port) = ready
            .as_deref()
            .and_then(|line| line.strip_prefix("ready "))
        else {
            return false;
        };
        self.http_port = http_port.parse().expect("the sink's HTTP port");
        self.child = Some(child);
        true
    }

    /// Stops the sink (SIGKILL): SMTP is down again, and what it received is forgotten.
    pub(crate) async fn down(&mut self) {
        let mut child = self.child.take().expect("the sink is running");
        child.kill().await.expect("kill the sink");
    }

    /// The SMTP port, reserved or listening.
    pub(crate) fn smtp_port(&self) -> u16 {
        self.smtp_port
    }

    /// The `mail.smtp_url` of this sink.
    pub(crate) fn smtp_url(&self) -> String {
        let port = self.smtp_port;
        match self.tls {
            SinkTls::Plain => format!("smtp://127.0.0.1:{port}"),
            SinkTls::StartTls => format!("smtp://127.0.0.1:{port}?tls=required"),
            SinkTls::Implicit => format!("smtps://127.0.0.1:{port}"),
        }
    }

    /// The CA that signed the sink's certificate (`mail.tls_root_cert`).
    pub(crate) fn root_cert(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Every message received so far.
    pub(crate) async fn messages(&self) -> Vec<Mail> {
        let url = format!("http://127.0.0.1:{}/messages", self.http_port);
        let response = self.http.get(url).send().await.expect("ask the sink");
        let body: Value = response.json().await.expect("the sink answers JSON");
        body.as_array()
            .expect("a list of messages")
            .iter()
            .map(Mail::from_json)
            .collect()
    }

    /// Waits for the `count`-th message to `email` whose subject is `subject`.
    pub(crate) async fn nth_to(&self, email: &str, subject: &str, count: usize) -> Mail {
        let deadline = Instant::now() + ARRIVAL_TIMEOUT;
        loop {
            let matching: Vec<Mail> = self
                .messages()
                .await
                .into_iter()
                .filter(|mail| mail.is_to(email) && mail.subject == subject)
                .collect();
            if let Some(mail) = matching.get(count - 1) {
                return mail.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no message {count} {subject:?} to {email} within {ARRIVAL_TIMEOUT:?}; got {:#?}",
                self.messages().await
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Waits for the first message to `email` with `subject`.
    pub(crate) async fn first_to(&self, email: &str, subject: &str) -> Mail {
        self.nth_to(email, subject, 1).await
    }
}

impl Options {
    /// Points the issuer's outbox worker at `sink` (trusting the sink's CA) and makes it retry
    /// and poll often, so a test waits seconds rather than the production backoff.
    pub(crate) fn smtp(self, sink: &SmtpSink) -> Options {
        let options = self
            .env("PORTCULLIS_MAIL__SMTP_URL", &sink.smtp_url())
            .env("PORTCULLIS_MAIL__RETRY_INITIAL_SECS", "1")
            .env("PORTCULLIS_MAIL__RETRY_MAX_SECS", "1")
            .env("PORTCULLIS_MAIL__POLL_INTERVAL_MS", "100")
            .env("PORTCULLIS_MAIL__MAX_ATTEMPTS", "100");
        match sink.tls {
            SinkTls::Plain => options,
            SinkTls::StartTls | SinkTls::Implicit => options.env(
                "PORTCULLIS_MAIL__TLS_ROOT_CERT",
                sink.root_cert().to_str().expect("a UTF-8 path"),
            ),
        }
    }
}
