//! Starts a real SMTP server (PyPI `aiosmtpd`) on 127.0.0.1 for tests, storing every message
//! it accepts in a maildir, so a test can read back the exact bytes a client sent.
//!
//! It speaks plain SMTP without authentication (`smtp://127.0.0.1:PORT`), as a local relay
//! would. When aiosmtpd is not installed [`SmtpServer::start`] says SKIP and returns `None`,
//! unless `KAIROS_REQUIRE_PEERS=1` (CI), where a skipped SMTP test must fail instead.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// How long aiosmtpd may take to greet its first client (Python imports asyncio first).
const STARTUP: Duration = Duration::from_secs(30);

/// A running aiosmtpd, killed and its maildir removed on drop.
pub struct SmtpServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

fn installed() -> bool {
    Command::new("python3")
        .args(["-c", "import aiosmtpd"])
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
    /// Starts `python3 -m aiosmtpd -n -l 127.0.0.1:<free port> -c aiosmtpd.handlers.Mailbox
    /// <maildir>` and waits until it greets a client. `None` (after a loud SKIP on stderr)
    /// when aiosmtpd is not installed; panics then under `KAIROS_REQUIRE_PEERS=1`, and
    /// whenever an installed aiosmtpd does not start.
    pub fn start() -> Option<Self> {
        if !installed() {
            assert!(
                !peers_required(),
                "KAIROS_REQUIRE_PEERS=1 but aiosmtpd is missing: python3 -m pip install aiosmtpd"
            );
            eprintln!("SKIPPED: this test needs aiosmtpd: `python3 -m pip install aiosmtpd` (CI installs it)");
            return None;
        }
        let mut last = String::new();
        // Another process may take the free port between its discovery and aiosmtpd's bind.
        for _ in 0..3 {
            match Self::launch() {
                Ok(server) => return Some(server),
                Err(e) => last = e.to_string(),
            }
        }
        panic!("aiosmtpd is installed but did not start: {last}");
    }

    fn launch() -> std::io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let log = File::create(dir.path().join("aiosmtpd.log"))?;
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("maildir"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let mut server = SmtpServer { child, port, dir };
        server.wait_until_ready()?;
        Ok(server)
    }

    /// Polls until the server sends its 220 greeting (then says QUIT), or gives up.
    fn wait_until_ready(&mut self) -> std::io::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                let log = std::fs::read_to_string(self.dir.path().join("aiosmtpd.log")).unwrap_or_default();
                return Err(std::io::Error::other(format!("aiosmtpd exited ({status}):\n{log}")));
            }
            if self.greets() {
                return Ok(());
            }
            if started.elapsed() > STARTUP {
                return Err(std::io::Error::other(format!("aiosmtpd did not greet within {STARTUP:?}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn greets(&self) -> bool {
        let Ok(stream) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut line = String::new();
        let greeted = BufReader::new(&stream).read_line(&mut line).is_ok() && line.starts_with("220");
        let _ = (&stream).write_all(b"QUIT\r\n");
        greeted
    }

    /// `smtp://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
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
