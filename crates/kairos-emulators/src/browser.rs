//! Drives a real headless Chromium for browser tests: starts `chromedriver` (Debian
//! `chromium-driver`) on 127.0.0.1, opens a WebDriver session through `fantoccini`, and kills
//! the driver and its browser on drop.
//!
//! Chromium runs with `--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage`, a
//! fixed window (1280×900 on the desktop, a 390 px wide phone screen for
//! [`BrowserOptions::mobile`]), `--lang=en-US`, and a profile in a temporary folder. The
//! browser's time zone is the `TZ` of the driver's process (Chromium inherits it and honours
//! it), so [`BrowserOptions::timezone`] makes `Intl.DateTimeFormat().resolvedOptions().timeZone`
//! deterministic whatever the machine's zone.
//!
//! When Chromium or chromedriver is not installed [`Browser::start`] says SKIP and returns
//! `None`, unless `KAIROS_REQUIRE_PEERS=1` (CI), where a skipped browser test must fail instead.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
pub use fantoccini::{self, Client, Locator, elements::Element, key::Key};
use serde_json::json;

/// Where Debian's `chromium` package puts the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Where Debian's `chromium-driver` package puts the driver.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long the driver and the browser may take to start.
const STARTUP: Duration = Duration::from_secs(30);
/// How long [`Browser::wait_for`] and [`Browser::wait_until_url`] wait by default.
pub const WAIT: Duration = Duration::from_secs(20);

/// The flags every session's Chromium starts with (the window size is added per session).
const FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--no-first-run",
    "--lang=en-US",
];

fn installed() -> bool {
    Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists()
}

fn peers_required() -> bool {
    std::env::var("KAIROS_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// How a session's browser looks to the page: its viewport and its time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserOptions {
    /// The viewport's width in CSS pixels.
    pub width: u32,
    /// The viewport's height in CSS pixels.
    pub height: u32,
    /// A phone: touch, the `viewport` meta tag honoured, a mobile user agent's layout rules.
    pub mobile: bool,
    /// The browser's IANA time zone (`TZ` of the driver's process); `None` keeps the host's.
    pub timezone: Option<String>,
}

impl BrowserOptions {
    /// A 1280×900 desktop window.
    pub fn desktop() -> Self {
        BrowserOptions { width: 1280, height: 900, mobile: false, timezone: None }
    }

    /// A 390×844 phone screen (an iPhone 12–15's CSS size) with device emulation.
    pub fn mobile() -> Self {
        BrowserOptions { width: 390, height: 844, mobile: true, timezone: None }
    }

    /// The same, with the browser in `zone` (an IANA name such as `America/New_York`).
    pub fn timezone(mut self, zone: &str) -> Self {
        self.timezone = Some(zone.to_string());
        self
    }

    /// The WebDriver capabilities asking chromedriver for this browser.
    fn capabilities(&self, profile: &Path) -> serde_json::Map<String, serde_json::Value> {
        let mut args: Vec<String> = FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--window-size={},{}", self.width, self.height));
        args.push(format!("--user-data-dir={}", profile.display()));
        let mut options = json!({"binary": CHROMIUM, "args": args});
        if self.mobile {
            options["mobileEmulation"] = json!({
                "deviceMetrics": {"width": self.width, "height": self.height, "pixelRatio": 1.0, "touch": true, "mobile": true}
            });
        }
        serde_json::Map::from_iter([
            ("browserName".to_string(), json!("chrome")),
            ("goog:chromeOptions".to_string(), options),
        ])
    }
}

impl Default for BrowserOptions {
    fn default() -> Self {
        Self::desktop()
    }
}

/// A running chromedriver with one open session of headless Chromium. Derefs to the
/// [`fantoccini::Client`] for everything WebDriver offers; the helpers here add explicit waits
/// with a deadline and screenshots. The driver, its browser and the profile go on drop (or on
/// [`Browser::close`], which ends the session politely first).
pub struct Browser {
    client: Client,
    driver: Child,
    _dir: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on 127.0.0.1:<free port> and opens a session with `options`. `None`
    /// (after a loud SKIP on stderr) when Chromium or chromedriver is not installed; panics then
    /// under `KAIROS_REQUIRE_PEERS=1`, and whenever an installed browser does not start.
    pub async fn start(options: BrowserOptions) -> Option<Self> {
        if !installed() {
            assert!(
                !peers_required(),
                "KAIROS_REQUIRE_PEERS=1 but {CHROMIUM} or {CHROMEDRIVER} is missing: apt-get install chromium chromium-driver"
            );
            eprintln!(
                "SKIPPED: this test needs headless Chromium: `apt-get install chromium chromium-driver` (CI installs them)"
            );
            return None;
        }
        let mut last = String::new();
        // Another process may take the free port between its discovery and the driver's bind.
        for _ in 0..3 {
            match Self::launch(&options).await {
                Ok(browser) => return Some(browser),
                Err(e) => last = e.to_string(),
            }
        }
        panic!("chromium and chromedriver are installed but did not start: {last}");
    }

    async fn launch(options: &BrowserOptions) -> std::io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let log = dir.path().join("chromedriver.log");
        let mut command = Command::new(CHROMEDRIVER);
        command
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(dir.path().join("chromedriver.stderr"))?)
            // Its own process group, so that drop can end the browser's processes with it.
            .process_group(0);
        if let Some(zone) = &options.timezone {
            command.env("TZ", zone);
        }
        let mut driver = command.spawn()?;
        let url = format!("http://127.0.0.1:{port}");
        if let Err(e) = wait_until_ready(&mut driver, &url).await {
            kill_group(&mut driver);
            return Err(std::io::Error::other(format!("{e}\n{}", read_log(dir.path()))));
        }
        let connected = fantoccini::ClientBuilder::rustls()?
            .capabilities(options.capabilities(&dir.path().join("profile")))
            .connect(&url)
            .await;
        match connected {
            Ok(client) => Ok(Browser { client, driver, _dir: dir }),
            Err(e) => {
                kill_group(&mut driver);
                Err(std::io::Error::other(format!("no WebDriver session: {e}\n{}", read_log(dir.path()))))
            }
        }
    }

    /// The WebDriver client (also reachable through `Deref`).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// Waits at most [`WAIT`] for an element matching `css`; panics naming the page and what
    /// it shows otherwise.
    pub async fn wait_for(&self, css: &str) -> Element {
        self.wait_for_within(css, WAIT).await
    }

    /// [`Browser::wait_for`] with another deadline.
    pub async fn wait_for_within(&self, css: &str, timeout: Duration) -> Element {
        match self.client.wait().at_most(timeout).every(Duration::from_millis(25)).for_element(Locator::Css(css)).await
        {
            Ok(element) => element,
            Err(e) => panic!("no `{css}` within {timeout:?} ({e}); {}", self.describe().await),
        }
    }

    /// Every element matching `css` now (no waiting).
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        self.client.find_all(Locator::Css(css)).await.unwrap_or_else(|e| panic!("find `{css}`: {e}"))
    }

    /// Waits at most [`WAIT`] until the page's URL satisfies `check` (`what` names the
    /// condition in the panic); returns that URL.
    pub async fn wait_until_url(&self, what: &str, mut check: impl FnMut(&url::Url) -> bool) -> url::Url {
        let started = Instant::now();
        loop {
            let url = self.client.current_url().await.unwrap_or_else(|e| panic!("current URL: {e}"));
            if check(&url) {
                return url;
            }
            if started.elapsed() > WAIT {
                panic!("the URL is still {url} after {WAIT:?}, expected {what}; {}", self.describe().await);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Presses and releases `key` (a character or a [`Key`]) on the keyboard, wherever the
    /// focus is.
    pub async fn press(&self, key: impl Into<char>) {
        let key = key.into();
        let keyboard =
            KeyActions::new("keyboard".into()).then(KeyAction::Down { value: key }).then(KeyAction::Up { value: key });
        self.client.perform_actions(keyboard).await.unwrap_or_else(|e| panic!("press {key:?}: {e}"));
        let _ = self.client.release_actions().await;
    }

    /// Presses Tab (at most `max_presses` times) until the focused element matches `css`, as
    /// a keyboard user would; returns it. Panics when it is not reachable so.
    pub async fn tab_to(&self, css: &str, max_presses: usize) -> Element {
        for _ in 0..max_presses {
            self.press(Key::Tab).await;
            let focused = self
                .client
                .execute(
                    "return !!document.activeElement && document.activeElement.matches(arguments[0]);",
                    vec![json!(css)],
                )
                .await
                .unwrap_or_else(|e| panic!("read the focus: {e}"));
            if focused == json!(true) {
                return self.client.active_element().await.unwrap_or_else(|e| panic!("the focused element: {e}"));
            }
        }
        panic!("`{css}` is not reached by {max_presses} Tab presses; {}", self.describe().await);
    }

    /// Saves a PNG of the viewport to `path` (creating its folder); returns the path.
    pub async fn screenshot(&self, path: impl AsRef<Path>) -> PathBuf {
        let path = path.as_ref();
        let png = self.client.screenshot().await.unwrap_or_else(|e| panic!("screenshot: {e}"));
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "the screenshot is not a PNG ({} bytes)", png.len());
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).unwrap_or_else(|e| panic!("create {}: {e}", folder.display()));
        }
        std::fs::write(path, &png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path.to_path_buf()
    }

    /// The page's URL and the start of its text, for failure messages.
    pub async fn describe(&self) -> String {
        let url = self.client.current_url().await.map(|u| u.to_string()).unwrap_or_else(|e| format!("<{e}>"));
        let text = match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => self.client.source().await.unwrap_or_default(),
        };
        let text: String = text.chars().take(2000).collect();
        format!("page {url} shows:\n{text}")
    }

    /// Ends the session (closing the browser) and the driver.
    pub async fn close(mut self) {
        let client = self.client.clone();
        let _ = client.close().await;
        kill_group(&mut self.driver);
    }
}

impl std::ops::Deref for Browser {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The driver and every browser process it started (they share its process group), killed
        // and reaped before the profile folder goes (the TempDir drops after this).
        kill_group(&mut self.driver);
    }
}

/// Polls the driver's `/status` until it says ready.
async fn wait_until_ready(driver: &mut Child, url: &str) -> std::io::Result<()> {
    let client = reqwest::Client::builder().no_proxy().build().map_err(std::io::Error::other)?;
    let started = Instant::now();
    loop {
        if let Some(status) = driver.try_wait()? {
            return Err(std::io::Error::other(format!("chromedriver exited ({status})")));
        }
        if let Ok(response) = client.get(format!("{url}/status")).send().await
            && let Ok(body) = response.json::<serde_json::Value>().await
            && body["value"]["ready"] == true
        {
            return Ok(());
        }
        if started.elapsed() > STARTUP {
            return Err(std::io::Error::other(format!("chromedriver did not answer within {STARTUP:?}")));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Kills the driver's process group (the driver, Chromium and its helpers) and reaps the driver.
fn kill_group(driver: &mut Child) {
    if let Ok(Some(_)) = driver.try_wait() {
        return;
    }
    let group = format!("-{}", driver.id());
    let killed = Command::new("kill")
        .args(["-KILL", "--", &group])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !killed {
        let _ = driver.kill();
    }
    let _ = driver.wait();
}

fn read_log(dir: &Path) -> String {
    let stderr = std::fs::read_to_string(dir.join("chromedriver.stderr")).unwrap_or_default();
    let log = std::fs::read_to_string(dir.join("chromedriver.log")).unwrap_or_default();
    let tail: String = log.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    format!("chromedriver stderr:\n{stderr}\nchromedriver log (end):\n{tail}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    async fn page_server(html: &'static str) -> String {
        let app = axum::Router::new().route("/", axum::routing::get(move || async move { axum::response::Html(html) }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        base
    }

    const PAGE: &str = r#"<!doctype html><html><head><meta name="viewport" content="width=device-width, initial-scale=1"><title>t</title></head>
<body><p id="zone"></p><p id="width"></p><a id="go" href="/?clicked=1">go</a>
<script>
document.getElementById('zone').textContent = Intl.DateTimeFormat().resolvedOptions().timeZone;
document.getElementById('width').textContent = String(window.innerWidth);
</script></body></html>"#;

    #[tokio::test]
    async fn browser_reports_the_chosen_zone_and_viewport_and_takes_screenshots() {
        let Some(browser) = Browser::start(BrowserOptions::desktop().timezone("Europe/Paris")).await else {
            return;
        };
        let base = page_server(PAGE).await;
        browser.goto(&format!("{base}/")).await;
        assert_eq!(browser.wait_for("#zone").await.text().await.unwrap(), "Europe/Paris");
        assert_eq!(browser.wait_for("#width").await.text().await.unwrap(), "1280");
        // Keyboard only: Tab to the link, Enter follows it.
        browser.tab_to("#go", 5).await;
        browser.press(Key::Enter).await;
        let url = browser.wait_until_url("?clicked=1", |u| u.query() == Some("clicked=1")).await;
        assert_eq!(url.path(), "/");
        let dir = tempfile::tempdir().unwrap();
        let path = browser.screenshot(dir.path().join("shots/desktop.png")).await;
        assert!(std::fs::read(&path).unwrap().starts_with(b"\x89PNG"));
        browser.close().await;

        let Some(phone) = Browser::start(BrowserOptions::mobile().timezone("America/New_York")).await else {
            return;
        };
        phone.goto(&format!("{base}/")).await;
        assert_eq!(phone.wait_for("#zone").await.text().await.unwrap(), "America/New_York");
        assert_eq!(phone.wait_for("#width").await.text().await.unwrap(), "390");
        let png = std::fs::read(phone.screenshot(dir.path().join("phone.png")).await).unwrap();
        // The PNG's IHDR width (bytes 16..20, big-endian) is the viewport's.
        assert_eq!(u32::from_be_bytes([png[16], png[17], png[18], png[19]]), 390);
    }

    #[tokio::test]
    async fn waiting_for_a_missing_element_fails_naming_it() {
        let Some(browser) = Browser::start(BrowserOptions::desktop()).await else {
            return;
        };
        browser.goto("data:text/html,<p>hello</p>").await;
        let waited = tokio::spawn(async move {
            browser.wait_for_within("#absent", Duration::from_millis(300)).await;
        })
        .await;
        let panic = waited.unwrap_err().into_panic();
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(message.contains("#absent") && message.contains("hello"), "{message}");
    }
}
