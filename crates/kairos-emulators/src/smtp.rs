//! Starts a real SMTP server (PyPI `aiosmtpd`) on 127.0.0.1 for tests, storing every message
//! it accepts in a maildir, so a test can read back the exact bytes a client sent.
//!
//! [`SmtpServer::start`] speaks plain SMTP without authentication (`smtp://127.0.0.1:PORT`),
//! as a local relay would. [`SmtpServer::start_starttls`] requires STARTTLS and then a login
//! (`smtp://user:pass@127.0.0.1:PORT`), [`SmtpServer::start_tls`] is TLS from the first byte
//! with a login (`smtps://…`); both present a certificate for 127.0.0.1 and localhost issued by
//! a certificate authority made for the server (Python's `cryptography`), whose certificate is
//! at [`SmtpServer::ca_file`]. The server itself is `smtp/aiosmtpd_server.py`.
//!
//! When aiosmtpd (or, for TLS, `cryptography`) is not installed the `start` functions say SKIP
//! and return `None`, unless `KAIROS_REQUIRE_PEERS=1` (CI), where a skipped SMTP test must
//! fail instead.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// How long aiosmtpd may take to listen (Python imports asyncio first; TLS modes also make
/// keys and certificates).
const STARTUP: Duration = Duration::from_secs(30);

/// The server program.
const SERVER: &str = include_str!("smtp/aiosmtpd_server.py");

/// How clients reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    StartTls,
    Tls,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Plain => "plain",
            Mode::StartTls => "starttls",
            Mode::Tls => "tls",
        }
    }
}

/// A running aiosmtpd, killed and its maildir removed on drop.
pub struct SmtpServer {
    child: Child,
    port: u16,
    mode: Mode,
    /// The one user name and password a TLS mode accepts.
    login: Option<(String, String)>,
    dir: tempfile::TempDir,
}

/// Whether python3 can import every module of `modules`.
fn installed(modules: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn peers_required() -> bool {
    std::env::var("KAIROS_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl SmtpServer {
    /// A plain SMTP server without authentication (`smtp://127.0.0.1:PORT`). `None` (after a
    /// loud SKIP on stderr) when aiosmtpd is not installed; panics then under
    /// `KAIROS_REQUIRE_PEERS=1`, and whenever an installed aiosmtpd does not start.
    pub fn start() -> Option<Self> {
        Self::start_as(Mode::Plain, None)
    }

    /// A server that requires STARTTLS, then a login as `user` with `password` (AUTH PLAIN or
    /// LOGIN, offered only once the connection is encrypted), before it takes a message.
    pub fn start_starttls(user: &str, password: &str) -> Option<Self> {
        Self::start_as(Mode::StartTls, Some((user.to_string(), password.to_string())))
    }

    /// A server that speaks TLS from the first byte (SMTPS) and requires a login as `user`
    /// with `password` before it takes a message.
    pub fn start_tls(user: &str, password: &str) -> Option<Self> {
        Self::start_as(Mode::Tls, Some((user.to_string(), password.to_string())))
    }

    fn start_as(mode: Mode, login: Option<(String, String)>) -> Option<Self> {
        let (modules, install) = match mode {
            Mode::Plain => ("aiosmtpd", "aiosmtpd"),
            Mode::StartTls | Mode::Tls => ("aiosmtpd, cryptography", "aiosmtpd cryptography"),
        };
        if !installed(modules) {
            assert!(
                !peers_required(),
                "KAIROS_REQUIRE_PEERS=1 but {install} is missing: python3 -m pip install {install}"
            );
            eprintln!("SKIPPED: this test needs {install}: `python3 -m pip install {install}` (CI installs it)");
            return None;
        }
        let mut last = String::new();
        // Another process may take the free port between its discovery and aiosmtpd's bind.
        for _ in 0..3 {
            match Self::launch(mode, login.clone()) {
                Ok(server) => return Some(server),
                Err(e) => last = e.to_string(),
            }
        }
        panic!("aiosmtpd is installed but did not start: {last}");
    }

    fn launch(mode: Mode, login: Option<(String, String)>) -> std::io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let script = dir.path().join("aiosmtpd_server.py");
        std::fs::write(&script, SERVER)?;
        let log = File::create(dir.path().join("aiosmtpd.log"))?;
        let mut command = Command::new("python3");
        command.arg(&script).args(["--port", &port.to_string(), "--mode", mode.name()]).arg("--dir").arg(dir.path());
        if let Some((user, password)) = &login {
            command.args(["--user", user, "--password", password]);
        }
        let child = command.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log).spawn()?;
        let mut server = SmtpServer { child, port, mode, login, dir };
        server.wait_until_ready()?;
        Ok(server)
    }

    /// Polls until the server says it listens (it writes `ready` once aiosmtpd has greeted
    /// its own first client), or gives up.
    fn wait_until_ready(&mut self) -> std::io::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                let log = std::fs::read_to_string(self.dir.path().join("aiosmtpd.log")).unwrap_or_default();
                return Err(std::io::Error::other(format!("aiosmtpd exited ({status}):\n{log}")));
            }
            if self.dir.path().join("ready").exists() {
                return Ok(());
            }
            if started.elapsed() > STARTUP {
                return Err(std::io::Error::other(format!("aiosmtpd did not listen within {STARTUP:?}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The URL a client uses: `smtp://127.0.0.1:PORT` (plain), or with the login,
    /// `smtp://user:password@127.0.0.1:PORT` (STARTTLS) or `smtps://user:password@…` (TLS).
    pub fn url(&self) -> String {
        match &self.login {
            Some((user, password)) => self.url_with_password(user, password),
            None => format!("smtp://127.0.0.1:{}", self.port),
        }
    }

    /// [`Self::url`] with another login (which the server refuses unless it is its own).
    pub fn url_with_password(&self, user: &str, password: &str) -> String {
        let scheme = if self.mode == Mode::Tls { "smtps" } else { "smtp" };
        format!("{scheme}://{user}:{password}@127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PEM certificate of the authority that issued the server's certificate, for a
    /// client to trust; `None` for a plain server.
    pub fn ca_file(&self) -> Option<PathBuf> {
        (self.mode != Mode::Plain).then(|| self.dir.path().join("ca.pem"))
    }

    /// What aiosmtpd logged so far (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("aiosmtpd.log")).unwrap_or_default()
    }

    /// Every message received so far, raw (RFC 5322 as stored in the maildir, with the
    /// `X-Peer`, `X-MailFrom` and `X-RcptTo` headers aiosmtpd adds), oldest first.
    pub fn messages(&self) -> Vec<String> {
        let maildir = self.dir.path().join("maildir");
        let mut files: Vec<(SystemTime, PathBuf)> = Vec::new();
        // Delivered messages are renamed into `new/` whole; `tmp/` holds ones being written.
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(maildir.join(sub)) else { continue };
            for entry in entries.flatten() {
                let modified = entry.metadata().and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH);
                files.push((modified, entry.path()));
            }
        }
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, path)| std::fs::read(path).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect()
    }

    /// The messages once there are at least `n`, or what there is when `timeout` passes.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<String> {
        let started = Instant::now();
        loop {
            let messages = self.messages();
            if messages.len() >= n || started.elapsed() > timeout {
                return messages;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        // Killed and reaped before the maildir goes (the TempDir drops after this).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
