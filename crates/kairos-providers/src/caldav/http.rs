//! The HTTP side of WebDAV over the caller's reqwest client: custom methods, Basic
//! credentials, bounded bodies, same-origin redirects and hrefs, and the mapping of statuses
//! onto [`ProviderError`].

use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use reqwest::Method;
use url::Url;

use super::xml::{self, Multistatus};
use crate::{Credentials, ProviderError, ProviderResult};

/// The largest answer read (a multiget of 100 events is far below): beyond it the server is
/// misbehaving and the call fails rather than exhausting memory.
const MAX_BODY: usize = 32 * 1024 * 1024;
/// Redirects followed for one read (PROPFIND / REPORT), all within the origin.
const MAX_REDIRECTS: usize = 5;
/// Each request's own limit, on top of whatever the caller's client sets.
const TIMEOUT: Duration = Duration::from_secs(60);

/// What a path keeps unencoded in a canonical href: RFC 3986 unreserved characters plus the
/// few sub-delimiters servers write raw. `,` and `;` are encoded so that an href is also a
/// plain iCalendar TEXT value.
const HREF_SEGMENT: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b'@').remove(b':').remove(b'+');

/// One answer, its body read.
#[derive(Debug)]
pub(crate) struct Reply {
    /// Where the answer came from (after redirects).
    pub url: Url,
    pub status: u16,
    pub etag: Option<String>,
    pub retry_after: Option<Duration>,
    pub location: Option<String>,
    pub body: String,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The multistatus of a 207; any other status is the call's error.
    pub fn multistatus(&self) -> ProviderResult<Multistatus> {
        if self.status != 207 {
            return Err(failure(self));
        }
        xml::multistatus(&self.body)
            .map_err(|e| ProviderError::Protocol(format!("{} answered an unreadable multistatus: {e}", self.url)))
    }

    /// Whether the error body names precondition `ns`:`name` (with the hrefs it carries).
    pub fn precondition(&self, ns: &str, name: &str) -> Option<Vec<String>> {
        xml::precondition(&self.body, ns, name)
    }
}

/// The error for an unsuccessful answer.
pub(crate) fn failure(reply: &Reply) -> ProviderError {
    let message = || {
        let text = match xml::parse(&reply.body) {
            Ok(root) if root.is(xml::DAV, "error") => {
                root.children.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
            }
            _ => reply.body.trim().chars().take(300).collect(),
        };
        format!("{} ({})", text, reply.url)
    };
    match reply.status {
        401 => ProviderError::Unauthorized(message()),
        404 | 410 => ProviderError::NotFound(reply.url.to_string()),
        412 => ProviderError::Conflict,
        429 | 503 => ProviderError::RateLimited { retry_after: reply.retry_after },
        status => ProviderError::Http { status, message: message() },
    }
}

fn transport(e: &reqwest::Error) -> ProviderError {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    ProviderError::Transport(text)
}

/// `Retry-After` as delay-seconds or an HTTP-date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let wait = jiff::Timestamp::now().duration_until(at);
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// Refuses what reqwest would refuse less clearly: only http and https are spoken.
pub(crate) fn check_scheme(url: &Url) -> ProviderResult<()> {
    match url.scheme() {
        "http" | "https" => Ok(()),
        other => Err(ProviderError::Transport(format!("unsupported URL scheme `{other}` in {url}: use http or https"))),
    }
}

/// Whether two URLs share scheme, host and port.
pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    a.origin() == b.origin()
}

/// Resolves an href from a multistatus (an absolute path, a relative reference or a full URL)
/// against the URL it answered, keeping only hrefs of the same origin: a server must not send
/// this client elsewhere.
pub(crate) fn resolve(base: &Url, href: &str) -> Option<Url> {
    let url = base.join(href).ok()?;
    same_origin(base, &url).then_some(url)
}

/// The canonical form of a URL's path, used as the id of a resource: every segment
/// percent-decoded then encoded one way, so that the `/a%40b.ics` of one answer and the
/// `/a@b.ics` of another name the same object.
pub(crate) fn canonical_path(url: &Url) -> String {
    url.path()
        .split('/')
        .map(|segment| {
            let bytes: Vec<u8> = percent_decode_str(segment).collect();
            percent_encoding::percent_encode(&bytes, HREF_SEGMENT).to_string()
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A name for a new resource: the text itself when it is a plain file name.
pub(crate) fn encode_segment(text: &str) -> String {
    utf8_percent_encode(text, HREF_SEGMENT).to_string()
}

/// A collection URL with its trailing slash (joining member names needs it).
pub(crate) fn as_collection(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

/// WebDAV requests with one set of credentials.
pub(crate) struct Dav<'a> {
    pub client: &'a reqwest::Client,
    pub auth: &'a Credentials,
}

/// Request headers this adapter sends.
#[derive(Debug, Default)]
pub(crate) struct Headers<'h> {
    pub depth: Option<&'static str>,
    pub if_match: Option<&'h str>,
    pub if_none_match: Option<&'h str>,
}

pub(crate) fn method(name: &'static str) -> Method {
    // The names are constants of this module's callers and always valid tokens.
    Method::from_bytes(name.as_bytes()).unwrap_or(Method::GET)
}

impl Dav<'_> {
    /// One request, no redirects followed.
    pub async fn send(
        &self,
        method: Method,
        url: &Url,
        headers: &Headers<'_>,
        body: Option<(&'static str, String)>,
    ) -> ProviderResult<Reply> {
        check_scheme(url)?;
        let mut request = self.client.request(method.clone(), url.clone()).timeout(TIMEOUT);
        request = match self.auth {
            Credentials::Basic { username, password } => request.basic_auth(username, Some(password)),
            Credentials::Bearer(token) => request.bearer_auth(token),
        };
        if let Some(depth) = headers.depth {
            request = request.header("Depth", depth);
        }
        if let Some(tag) = headers.if_match {
            request = request.header(reqwest::header::IF_MATCH, tag);
        }
        if let Some(tag) = headers.if_none_match {
            request = request.header(reqwest::header::IF_NONE_MATCH, tag);
        }
        if let Some((content_type, body)) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type).body(body);
        }
        let mut response = request.send().await.map_err(|e| transport(&e))?;
        let status = response.status().as_u16();
        tracing::debug!(%method, %url, status, "caldav");
        let etag = response.headers().get(reqwest::header::ETAG).and_then(|v| v.to_str().ok()).map(str::to_string);
        let retry_after = retry_after(response.headers());
        let location =
            response.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| transport(&e))? {
            if bytes.len() + chunk.len() > MAX_BODY {
                return Err(ProviderError::Protocol(format!("{url} answered more than {MAX_BODY} bytes")));
            }
            bytes.extend_from_slice(&chunk);
        }
        let body = String::from_utf8_lossy(&bytes).into_owned();
        Ok(Reply { url: url.clone(), status, etag, retry_after, location, body })
    }

    /// A PROPFIND or REPORT with an XML body, following redirects within the origin (a
    /// well-known URL, or a collection asked for without its trailing slash).
    pub async fn read(
        &self,
        method_name: &'static str,
        url: &Url,
        depth: Option<&'static str>,
        body: &str,
    ) -> ProviderResult<Reply> {
        let mut url = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let headers = Headers { depth, ..Headers::default() };
            let reply = self
                .send(method(method_name), &url, &headers, Some(("application/xml; charset=utf-8", body.to_string())))
                .await?;
            if !matches!(reply.status, 301 | 302 | 303 | 307 | 308) {
                return Ok(reply);
            }
            let Some(next) = reply.location.as_deref().and_then(|l| url.join(l).ok()) else {
                return Err(ProviderError::Protocol(format!("{url} redirected to an unreadable location")));
            };
            if !same_origin(&url, &next) {
                return Err(ProviderError::Protocol(format!(
                    "{url} redirected to another origin ({next}); only same-origin redirects are followed"
                )));
            }
            url = next;
        }
        Err(ProviderError::Protocol(format!("{url}: more than {MAX_REDIRECTS} redirects")))
    }

    pub async fn propfind(
        &self,
        url: &Url,
        depth: &'static str,
        props: &[xml::Prop],
    ) -> ProviderResult<(Url, Multistatus)> {
        let reply = self.read("PROPFIND", url, Some(depth), &xml::propfind(props)).await?;
        Ok((reply.url.clone(), reply.multistatus()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hrefs_resolve_relative_absolute_and_full_forms_to_one_canonical_path() {
        let base = Url::parse("https://dav.example.com/cal/alice/work/").unwrap();
        let forms = [
            "/cal/alice/work/a%40b%20c.ics",
            "/cal/alice/work/a@b%20c.ics",
            "a@b%20c.ics",
            "https://dav.example.com/cal/alice/work/a%40b%20c.ics",
            "https://dav.example.com:443/cal/alice/./work/a@b%20c.ics",
        ];
        for form in forms {
            let url = resolve(&base, form).unwrap();
            assert_eq!(canonical_path(&url), "/cal/alice/work/a@b%20c.ics", "{form}");
        }
        assert_eq!(resolve(&base, "https://evil.example.net/x.ics"), None);
        assert_eq!(resolve(&base, "//evil.example.net/x.ics"), None);
        assert_eq!(resolve(&base, "http://dav.example.com/cal/"), None, "another scheme is another origin");
    }

    #[test]
    fn canonical_paths_encode_commas_and_semicolons_so_they_are_plain_ical_text() {
        let url = Url::parse("http://h/c/a,b;c%2Cd é.ics").unwrap();
        assert_eq!(canonical_path(&url), "/c/a%2Cb%3Bc%2Cd%20%C3%A9.ics");
        assert_eq!(encode_segment("x/y z.ics"), "x%2Fy%20z.ics");
    }

    #[test]
    fn only_http_and_https_are_spoken() {
        assert!(check_scheme(&Url::parse("https://h/").unwrap()).is_ok());
        let err = check_scheme(&Url::parse("ftp://h/").unwrap()).unwrap_err();
        assert!(matches!(err, ProviderError::Transport(m) if m.contains("ftp")));
    }

    #[test]
    fn statuses_map_to_the_errors_callers_act_on() {
        let reply = |status, body: &str| Reply {
            url: Url::parse("http://h/c/").unwrap(),
            status,
            etag: None,
            retry_after: Some(Duration::from_secs(7)),
            location: None,
            body: body.to_string(),
        };
        assert!(matches!(failure(&reply(401, "")), ProviderError::Unauthorized(_)));
        assert_eq!(failure(&reply(412, "")), ProviderError::Conflict);
        assert_eq!(failure(&reply(429, "")), ProviderError::RateLimited { retry_after: Some(Duration::from_secs(7)) });
        assert!(matches!(failure(&reply(404, "")), ProviderError::NotFound(_)));
        let forbidden = failure(&reply(403, r#"<error xmlns="DAV:"><need-privileges/></error>"#));
        assert!(
            matches!(forbidden, ProviderError::Http { status: 403, message } if message.contains("need-privileges"))
        );
    }
}
