//! How the public pages are drawn: the minijinja templates shipped in the binary
//! (`templates/pages/`, each extending `layout.html`), the headers every page carries, and
//! the shared message page (not found, expired form, too many requests, …).
//!
//! Values are HTML-escaped automatically; the two inline scripts are constants of this file,
//! allowed by their hashes in the Content-Security-Policy (no other script can run).

use std::sync::OnceLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The templates, by name.
const TEMPLATES: [(&str, &str); 7] = [
    ("layout.html", include_str!("../../../templates/pages/layout.html")),
    ("link.html", include_str!("../../../templates/pages/link.html")),
    ("book.html", include_str!("../../../templates/pages/book.html")),
    ("booked.html", include_str!("../../../templates/pages/booked.html")),
    ("message.html", include_str!("../../../templates/pages/message.html")),
    ("respond.html", include_str!("../../../templates/pages/respond.html")),
    ("payment.html", include_str!("../../../templates/pages/payment.html")),
];

/// On the week page, when its address names no zone: reload it with the browser's own
/// (without JavaScript the zone form does the same). Never on a page served at another
/// address (a refused booking's week), which this would reload without its query.
pub const ZONE_SCRIPT: &str = "(function(){var p=new URLSearchParams(location.search);if(p.has('tz'))return;\
var z;try{z=Intl.DateTimeFormat().resolvedOptions().timeZone}catch(e){return}\
if(!z)return;p.set('tz',z);location.replace(location.pathname+'?'+p.toString())})();";

/// On the booking form: one submission only (a double click would otherwise book, then be
/// told the time was just taken — by the first click).
pub const SUBMIT_ONCE_SCRIPT: &str = "(function(){var f=document.getElementById('booking-form');if(!f)return;\
f.addEventListener('submit',function(){var b=document.getElementById('book');\
setTimeout(function(){b.disabled=true},0)})})();";

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // `.html` templates are HTML-escaped by default.
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        for (name, source) in TEMPLATES {
            if let Err(e) = env.add_template(name, source) {
                // Shipped templates are checked by this module's tests; a broken one still
                // must not take the server down: its pages fail with 500.
                tracing::error!(template = name, error = %e, "a built-in page template does not compile");
            }
        }
        env
    })
}

/// The Content-Security-Policy of every page: nothing external, inline styles, and only the
/// scripts above.
fn content_security_policy() -> &'static HeaderValue {
    static CSP: OnceLock<HeaderValue> = OnceLock::new();
    CSP.get_or_init(|| {
        let hash = |script: &str| {
            format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script.as_bytes())))
        };
        let policy = format!(
            "default-src 'none'; style-src 'unsafe-inline'; script-src {} {}; base-uri 'none'; frame-ancestors 'none'",
            hash(ZONE_SCRIPT),
            hash(SUBMIT_ONCE_SCRIPT)
        );
        HeaderValue::from_str(&policy).unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
    })
}

/// Renders `template` with `context` as a page with `status` and the pages' headers.
pub fn page(status: StatusCode, template: &str, context: impl Serialize) -> Response {
    match environment().get_template(template).and_then(|t| t.render(minijinja::value::Serde(context))) {
        Ok(body) => with_headers(status, body),
        Err(e) => {
            tracing::error!(template, error = %e, "a page could not be rendered");
            with_headers(
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!DOCTYPE html><html lang=\"en\"><title>Error</title><main><h1>Something went wrong</h1>\
                 <p>Please try again in a moment.</p></main></html>"
                    .to_string(),
            )
        }
    }
}

fn with_headers(status: StatusCode, body: String) -> Response {
    let mut response = (status, Html(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, content_security_policy().clone());
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Confirmation addresses carry a signature: never hand them to another site.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // Slots and form tokens go stale: always ask again.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Serialize)]
struct Message<'a> {
    page_title: &'a str,
    heading: &'a str,
    message: &'a str,
    back_url: Option<&'a str>,
    back_label: &'a str,
}

/// A page that only says something: a heading, a sentence, and a way back.
pub fn message(status: StatusCode, heading: &str, message: &str, back: Option<(&str, &str)>) -> Response {
    let (back_url, back_label) = back.map_or((None, ""), |(url, label)| (Some(url), label));
    page(status, "message.html", Message { page_title: heading, heading, message, back_url, back_label })
}

/// 404: no such link (or booking).
pub fn not_found() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is no booking page at this address. Check the link you were given.",
        None,
    )
}

/// 500, the detail logged (never shown).
pub fn internal(detail: impl std::fmt::Display) -> Response {
    tracing::error!(error = %detail, "a public page failed");
    message(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Something went wrong on our side. Please try again in a moment.",
        None,
    )
}

/// The IANA zones offered in the zone picker: the canonical `Area/City` names of the bundled
/// database (not legacy aliases such as `US/Eastern`), UTC first.
pub fn zone_names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        const AREAS: [&str; 9] = [
            "Africa/",
            "America/",
            "Antarctica/",
            "Asia/",
            "Atlantic/",
            "Australia/",
            "Europe/",
            "Indian/",
            "Pacific/",
        ];
        let mut names: Vec<String> = jiff::tz::TimeZoneDatabase::bundled()
            .available()
            .map(|name| name.as_str().to_string())
            .filter(|name| AREAS.iter().any(|area| name.starts_with(area)))
            .collect();
        names.sort();
        names.dedup();
        names.insert(0, "UTC".to_string());
        names
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        for (name, _) in TEMPLATES {
            environment().get_template(name).unwrap();
        }
    }

    #[test]
    fn the_zone_list_holds_canonical_names_only() {
        let names = zone_names();
        assert_eq!(names[0], "UTC");
        assert!(names.iter().any(|n| n == "America/New_York"));
        assert!(names.iter().any(|n| n == "Asia/Kathmandu"));
        assert!(!names.iter().any(|n| n == "US/Eastern" || n == "EST5EDT"));
        assert!(names.len() > 300, "{}", names.len());
    }

    #[tokio::test]
    async fn pages_escape_what_visitors_type_and_carry_a_strict_policy() {
        let r = message(StatusCode::OK, "<b>x</b>", "a & b", Some(("/l/x?a=1&b=2", "Back")));
        let csp = r.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_string();
        assert!(csp.contains("default-src 'none'") && csp.contains("'sha256-"), "{csp}");
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        let html = String::from_utf8(body.to_vec()).unwrap();
        assert!(html.contains("<h1>&lt;b&gt;x&lt;&#x2f;b&gt;</h1>") && html.contains("a &amp; b"), "{html}");
        assert!(html.contains(r#"<html lang="en">"#) && html.contains("<main id=\"main\">"));
    }
}
