//! Starts a real Radicale CalDAV server (PyPI `radicale`) on 127.0.0.1 for tests, with its
//! storage in a temporary folder, and plays "another client" against it: making calendars,
//! putting and deleting resources, reading back what Kairos wrote.
//!
//! Radicale runs with `--auth-type none` (since 3.5 the default is `denyall`): any Basic user
//! name is accepted and owns `/<user>/`. The helpers authenticate as the first path segment of
//! the URL they are given, so they may touch any user's collections.

use std::fs::File;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};

/// How long Radicale may take to answer its first request (it imports a few modules).
const STARTUP: Duration = Duration::from_secs(30);

/// A running Radicale, killed and its storage removed on drop.
pub struct Radicale {
    child: Child,
    port: u16,
    client: reqwest::Client,
    dir: tempfile::TempDir,
}

fn installed() -> bool {
    Command::new("python3")
        .args(["-c", "import radicale"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The user a URL belongs to in Radicale's layout (`/<user>/<calendar>/…`).
fn owner(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.path_segments().and_then(|mut s| s.next().map(|user| user.replace("%40", "@"))))
        .unwrap_or_default()
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

impl Radicale {
    /// Starts `python3 -m radicale` on 127.0.0.1:<free port> with a temporary storage folder
    /// and `--auth-type none`, and waits until it answers. `Ok(None)` when radicale is not
    /// installed (callers skip loudly unless `KAIROS_REQUIRE_PEERS=1`).
    pub async fn start() -> std::io::Result<Option<Self>> {
        if !installed() {
            return Ok(None);
        }
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(std::io::Error::other)?;
        let mut last = None;
        // Another process may take the free port between its discovery and Radicale's bind.
        for _ in 0..3 {
            let dir = tempfile::tempdir()?;
            let port = free_port()?;
            let log = File::create(dir.path().join("radicale.log"))?;
            let storage = dir.path().join("collections");
            let child = Command::new("python3")
                .args(["-m", "radicale", "--config", ""])
                .args(["--server-hosts", &format!("127.0.0.1:{port}")])
                .args(["--auth-type", "none", "--web-type", "none", "--logging-level", "warning"])
                .arg("--storage-filesystem-folder")
                .arg(&storage)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()?;
            let mut server = Radicale { child, port, client: client.clone(), dir };
            match server.wait_until_ready().await {
                Ok(()) => return Ok(Some(server)),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("radicale did not start")))
    }

    async fn wait_until_ready(&mut self) -> std::io::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                let log = std::fs::read_to_string(self.dir.path().join("radicale.log")).unwrap_or_default();
                return Err(std::io::Error::other(format!("radicale exited ({status}):\n{log}")));
            }
            if self.client.get(format!("{}/.well-known/caldav", self.base_url())).send().await.is_ok() {
                return Ok(());
            }
            if started.elapsed() > STARTUP {
                return Err(std::io::Error::other(format!("radicale did not answer within {STARTUP:?}")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn send(&self, method: Method, url: &str, body: Option<(&str, String)>) -> reqwest::Response {
        let mut request = self.client.request(method.clone(), url).basic_auth(owner(url), Some("radicale"));
        if let Some((content_type, body)) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type).body(body);
        }
        request.send().await.unwrap_or_else(|e| panic!("{method} {url}: {e}"))
    }

    /// `MKCALENDAR /user/name/`; returns the collection URL.
    pub async fn make_calendar(&self, user: &str, name: &str, display_name: &str) -> String {
        self.make_collection(user, name, display_name, &["VEVENT", "VTODO"]).await
    }

    /// A calendar that holds only `components` (e.g. `["VTODO"]` for a task list).
    pub async fn make_collection(&self, user: &str, name: &str, display_name: &str, components: &[&str]) -> String {
        let url = format!("{}/{user}/{name}/", self.base_url());
        let comps: String = components.iter().map(|c| format!("<C:comp name=\"{c}\"/>")).collect();
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><C:mkcalendar xmlns:D=\"DAV:\" xmlns:C=\"urn:ietf:params:xml:ns:caldav\">\
             <D:set><D:prop><D:displayname>{}</D:displayname><C:supported-calendar-component-set>{comps}</C:supported-calendar-component-set>\
             </D:prop></D:set></C:mkcalendar>",
            xml_escape(display_name)
        );
        let method = Method::from_bytes(b"MKCALENDAR").unwrap_or(Method::PUT);
        let response = self.send(method, &url, Some(("application/xml; charset=utf-8", body))).await;
        assert_eq!(response.status(), StatusCode::CREATED, "MKCALENDAR {url}: {:?}", response.text().await);
        url
    }

    /// Sets the collection's `C:calendar-timezone` (a VCALENDAR holding one VTIMEZONE).
    pub async fn set_timezone(&self, collection_url: &str, vcalendar: &str) {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><D:propertyupdate xmlns:D=\"DAV:\" xmlns:C=\"urn:ietf:params:xml:ns:caldav\">\
             <D:set><D:prop><C:calendar-timezone>{}</C:calendar-timezone></D:prop></D:set></D:propertyupdate>",
            xml_escape(vcalendar)
        );
        let method = Method::from_bytes(b"PROPPATCH").unwrap_or(Method::PUT);
        let response = self.send(method, collection_url, Some(("application/xml; charset=utf-8", body))).await;
        assert_eq!(response.status(), StatusCode::MULTI_STATUS, "PROPPATCH {collection_url}");
        let text = response.text().await.unwrap_or_default();
        assert!(text.contains("200 OK") && !text.contains("403"), "PROPPATCH {collection_url}: {text}");
    }

    /// Puts `file` into the collection, as another client would; returns its URL.
    pub async fn put_ics(&self, collection_url: &str, file: &str, ics: &str) -> String {
        let url = format!("{collection_url}{file}");
        let response = self.send(Method::PUT, &url, Some(("text/calendar; charset=utf-8", ics.to_string()))).await;
        assert!(response.status().is_success(), "PUT {url}: {} {:?}", response.status(), response.text().await);
        url
    }

    /// Deletes a resource (or a collection), as another client would.
    pub async fn delete(&self, url: &str) {
        let response = self.send(Method::DELETE, url, None).await;
        assert!(response.status().is_success(), "DELETE {url}: {} {:?}", response.status(), response.text().await);
    }

    /// A resource's raw text, `None` when it does not exist.
    pub async fn get(&self, url: &str) -> Option<String> {
        let response = self.send(Method::GET, url, None).await;
        if response.status() == StatusCode::NOT_FOUND {
            return None;
        }
        assert!(response.status().is_success(), "GET {url}: {}", response.status());
        Some(response.text().await.unwrap_or_else(|e| panic!("GET {url}: {e}")))
    }
}

impl Drop for Radicale {
    fn drop(&mut self) {
        // Killed and reaped before the storage folder goes (the TempDir drops after this).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
