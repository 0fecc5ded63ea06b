//! The public booking pages of a link, spoken to as a browser without JavaScript would: the
//! week of open times in the visitor's zone, the form, the price and the booking (or Stripe
//! Checkout), the signed confirmation, and the guards (CSRF, rate limits per client, behind a
//! trusted proxy too, and on the payment return pages). Nothing here sends an API key to
//! `/l/…`.

use kairos::config::StripeConfig;
use kairos_emulators::stripe::StripeEmulator;
use kairos_store::keys;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

/// A visitor's browser, one step at a time: no redirects followed, cookies carried by hand.
pub(crate) struct Visitor {
    client: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

/// A page as received.
pub(crate) struct Page {
    pub status: StatusCode,
    pub html: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Visitor {
    pub fn new(app: &TestApp) -> Self {
        Self { client: no_redirects(), base: app.base.clone(), cookie: None }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            req = req.header("cookie", cookie);
        }
        let page = Self::read(req.send().await.unwrap()).await;
        if let Some(set) = page.headers.get("set-cookie") {
            self.cookie = Some(set.to_str().unwrap().split(';').next().unwrap().to_string());
        }
        page
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(cookie) = &self.cookie {
            req = req.header("cookie", cookie);
        }
        Self::read(req.send().await.unwrap()).await
    }

    async fn read(res: reqwest::Response) -> Page {
        let (status, headers) = (res.status(), res.headers().clone());
        Page { status, html: res.text().await.unwrap(), headers }
    }
}

impl Page {
    pub fn location(&self) -> String {
        self.headers.get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
    }

    fn is_html(&self) -> bool {
        self.headers.get("content-type").is_some_and(|v| v.to_str().unwrap().starts_with("text/html"))
    }

    /// The slot links: (href, aria-label, text), unescaped.
    fn slots(&self) -> Vec<(String, String, String)> {
        self.html
            .split(r#"<a class="slot" href=""#)
            .skip(1)
            .map(|rest| {
                let (href, rest) = rest.split_once('"').unwrap();
                let aria = rest.split_once(r#"aria-label=""#).unwrap().1.split_once('"').unwrap().0;
                let text = rest.split_once('>').unwrap().1.split_once('<').unwrap().0;
                (unescape(href), unescape(aria), unescape(text))
            })
            .collect()
    }

    /// The slot starting at `start` (RFC 3339 UTC): its href, aria-label and text.
    fn slot(&self, start: &str) -> Option<(String, String, String)> {
        self.slots().into_iter().find(|(href, _, _)| href.contains(&format!("start={start}&")))
    }

    /// The value of the hidden input `name`.
    pub fn hidden(&self, name: &str) -> String {
        let at = self.html.split_once(&format!(r#"name="{name}" value=""#)).unwrap().1;
        unescape(at.split_once('"').unwrap().0)
    }
}

pub(crate) fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn hours(start: &str, end: &str) -> Value {
    let day = json!([{"start": start, "end": end}]);
    json!({"monday": day, "tuesday": day, "wednesday": day, "thursday": day, "friday": day, "saturday": day, "sunday": day})
}

/// Alice (a named host in New York) and a business open 09:00–12:00 New York time every day.
async fn host_and_business(app: &TestApp, extra: Value) -> (String, String) {
    let r = app
        .post(
            "/v1/users",
            json!({"email": "alice@example.com", "name": "Alice Host", "timezone": "America/New_York",
                "working_hours": all_week()}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let alice = r.body["id"].as_str().unwrap().to_string();
    let mut body = json!({"name": "Acme Consulting", "timezone": "America/New_York", "hosts": [alice],
        "working_hours": hours("09:00", "12:00"), "buffer_after_minutes": 5});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    (alice, app.business(body).await)
}

async fn link(app: &TestApp, body: Value) {
    let r = app.post("/v1/links", body).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

async fn bookings(app: &TestApp) -> Vec<Value> {
    app.get("/v1/bookings").await.body["data"].as_array().unwrap().clone()
}

/// Opens the form of the slot at `start` (in Berlin time) and returns it.
async fn open_form(visitor: &mut Visitor, start: &str) -> Page {
    let week = visitor.get("/l/intro-call?tz=Europe/Berlin").await;
    let (href, _, _) = week.slot(start).unwrap_or_else(|| panic!("a slot at {start}"));
    let form = visitor.get(&href).await;
    assert_eq!(form.status, 200, "{}", form.html);
    form
}

fn details(form: &Page, token: &str, name: &str, email: &str) -> Vec<(&'static str, String)> {
    vec![
        ("start", form.hidden("start")),
        ("tz", form.hidden("tz")),
        ("csrf", token.to_string()),
        ("name", name.to_string()),
        ("email", email.to_string()),
        ("notes", "Looking forward".to_string()),
    ]
}

fn pairs<'a>(fields: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    fields.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn the_page_lists_open_times_in_the_visitors_zone_dst_correct_and_shows_only_display_names() {
    let app = TestApp::start().await;
    let (alice, business) = host_and_business(&app, json!({})).await;
    link(&app, json!({"business_id": business, "duration_minutes": 30, "title": "Intro call", "slug": "intro-call"}))
        .await;
    let mut visitor = Visitor::new(&app);

    // New York moves to EDT on March 10, 2030; Berlin stays on CET until March 31. 9:00 in New
    // York is 15:00 in Berlin before the change and 14:00 after it.
    let page = visitor.get("/l/intro-call?week=2030-03-08&tz=Europe/Berlin").await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.is_html());
    let (href, aria, text) = page.slot("2030-03-08T14:00:00Z").expect("9:00 New York on March 8");
    assert_eq!(text, "3:00 PM");
    assert_eq!(aria, "Friday, March 8 at 3:00 PM CET");
    assert_eq!(href, "/l/intro-call/book?start=2030-03-08T14:00:00Z&tz=Europe/Berlin");
    let (_, aria, text) = page.slot("2030-03-11T13:00:00Z").expect("9:00 New York on March 11 (EDT)");
    assert_eq!((text.as_str(), aria.as_str()), ("2:00 PM", "Monday, March 11 at 2:00 PM CET"));
    assert!(page.slot("2030-03-11T14:00:00Z").unwrap().2 == "3:00 PM");
    assert!(page.slot("2030-03-11T16:00:00Z").is_none(), "12:00 New York is closing time");
    assert_eq!(page.slots().len(), 7 * 6, "six half hours on each of seven days");
    let html = unescape(&page.html);
    assert!(html.contains("<h3 id=\"day-1\">Friday, March 8</h3>"), "days are grouped in the visitor's zone");
    assert!(html.contains(r#"<option value="Europe/Berlin" selected>"#));
    assert!(html.contains("March 8 – 14, 2030"));
    assert!(html.contains("/l/intro-call?week=2030-03-15&tz=Europe/Berlin"), "a next week link");
    assert!(html.contains("/l/intro-call?week=2030-03-01&tz=Europe/Berlin"), "a previous week link");

    // What a visitor may see: the title, the host's display name, the duration. Never an
    // email, an id, the account or the business's rules.
    assert!(html.contains("<h1>Intro call</h1>") && html.contains("with Alice Host") && html.contains("30 minutes"));
    let t = app.store.tenant_for_key(&keys::hash(&app.key)).await.unwrap().unwrap();
    let lowercase = html.to_lowercase();
    for secret in ["alice@example.com", &alice, &business, &t.account_id, "acme", "buffer", "usr_", "biz_", "acct_"] {
        assert!(!lowercase.contains(&secret.to_lowercase()), "the page must not show {secret}");
    }

    // Accessible structure, one stylesheet, no external assets.
    for needle in [
        r#"<html lang="en">"#,
        r#"<meta name="viewport""#,
        "<main id=\"main\">",
        r#"<label for="tz">Time zone</label>"#,
        r#"<select id="tz" name="tz">"#,
        r#"<form method="get" action="/l/intro-call""#,
        "prefers-reduced-motion",
    ] {
        assert!(html.contains(needle), "{needle}");
    }
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("<link"), "no external assets");
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");

    // No zone named: the business's, and a script that reloads with the browser's (only
    // then: a page whose address names a zone is left alone).
    assert!(!html.contains("<script>"));
    let page = visitor.get("/l/intro-call").await;
    assert!(page.html.contains("Intl.DateTimeFormat().resolvedOptions().timeZone"));
    assert_eq!(page.slot("2030-01-01T14:00:00Z").unwrap().2, "9:00 AM");
    assert!(unescape(&page.html).contains("Times are in America/New York."));
    assert!(!page.html.contains("not a time zone we know"));
    // An unknown one: the business's, with a notice.
    let page = visitor.get("/l/intro-call?tz=Mars/Olympus_Mons").await;
    assert_eq!(page.status, 200);
    assert!(unescape(&page.html).contains("“Mars/Olympus_Mons” is not a time zone we know"), "{}", page.html);
    assert_eq!(page.slot("2030-01-01T14:00:00Z").unwrap().2, "9:00 AM");

    // Never before today (January 1, 2030 in the visitor's zone), and no way back before it.
    let page = visitor.get("/l/intro-call?week=2029-06-01&tz=UTC").await;
    let html = unescape(&page.html);
    assert!(html.contains("January 1 – 7, 2030"), "{html}");
    assert!(!html.contains("Previous week"));
    assert!(page.slots().iter().all(|(href, _, _)| href.as_str() > "/l/intro-call/book?start=2030-01-01T08"));
}

#[tokio::test]
async fn booking_through_the_form_confirms_and_the_signed_page_shows_it() {
    let app = TestApp::start().await;
    let (_, business) = host_and_business(&app, json!({})).await;
    link(&app, json!({"business_id": business, "duration_minutes": 30, "title": "Intro call", "slug": "intro-call"}))
        .await;
    let mut visitor = Visitor::new(&app);
    let form = open_form(&mut visitor, "2030-01-01T14:00:00Z").await;

    // The form: the chosen time in the visitor's zone, labelled fields, a CSRF token that is
    // also an HttpOnly, strict cookie for /l/.
    let html = unescape(&form.html);
    assert!(html.contains("Tuesday, January 1, 2030, 3:00 – 3:30 PM CET"), "{html}");
    for needle in [
        r#"<form method="post" action="/l/intro-call/book""#,
        r#"<label for="name">Your name</label>"#,
        r#"<input id="name" name="name" required autocomplete="name""#,
        r#"<label for="email">Email</label>"#,
        r#"<input id="email" name="email" type="email" required autocomplete="email""#,
        r#"<label for="notes">Notes</label>"#,
        r#"<textarea id="notes" name="notes""#,
        r#"<button id="book" type="submit">Book</button>"#,
    ] {
        assert!(html.contains(needle), "{needle}");
    }
    let set_cookie = form.headers["set-cookie"].to_str().unwrap();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict") && set_cookie.contains("Path=/l/")
    );
    assert!(!set_cookie.contains("Secure"), "the server is reached over http here");
    let token = form.hidden("csrf");
    assert_eq!(visitor.cookie.as_deref(), Some(format!("kairos_csrf={token}").as_str()));
    assert_eq!(form.hidden("start"), "2030-01-01T14:00:00Z");

    // Mistakes: 422, the form again with what was typed and a message next to each field.
    let fields = details(&form, &token, "", "not-an-email");
    let wrong = visitor.post("/l/intro-call/book", &pairs(&fields)).await;
    assert_eq!(wrong.status, 422, "{}", wrong.html);
    assert!(wrong.html.contains(r#"<p class="error" id="name-error">Enter your name.</p>"#));
    assert!(wrong.html.contains("Enter an email address like name@example.com."));
    assert!(wrong.html.contains(r#"value="not-an-email" aria-invalid="true" aria-describedby="email-error""#));
    assert!(wrong.html.contains("Looking forward</textarea>"), "notes kept");
    assert!(bookings(&app).await.is_empty());

    let fields = details(&form, &token, "Jane Doe", "Jane@Example.com");
    let done = visitor.post("/l/intro-call/book", &pairs(&fields)).await;
    assert_eq!(done.status, 303, "{}", done.html);
    let confirmation = done.location();
    assert!(confirmation.starts_with("/l/intro-call/booked/bkg_"), "{confirmation}");
    let booked = bookings(&app).await;
    assert_eq!(booked.len(), 1);
    let b = &booked[0];
    assert_eq!(
        (b["status"].as_str(), b["customer_name"].as_str(), b["customer_email"].as_str(), b["title"].as_str()),
        (Some("confirmed"), Some("Jane Doe"), Some("jane@example.com"), Some("Intro call"))
    );
    assert_eq!(
        (b["start_time"].as_str(), b["end_time"].as_str()),
        (Some("2030-01-01T14:00:00Z"), Some("2030-01-01T14:30:00Z"))
    );
    assert_eq!((b["business_id"].as_str(), b["notes"].as_str()), (Some(business.as_str()), Some("Looking forward")));

    let page = visitor.get(&confirmation).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains(r#"<h1 id="confirmation">You're booked</h1>"#));
    assert!(page.html.contains("Intro call") && page.html.contains("with Alice Host"));
    assert!(page.html.contains("Tuesday, January 1, 2030, 3:00 – 3:30 PM CET"));
    assert!(page.html.to_lowercase().contains("a confirmation email is on its way"));
    assert!(!page.html.contains("alice@example.com") && !page.html.contains("jane@example.com"));

    // Without the right signature there is nothing to see.
    let (path, query) = confirmation.split_once('?').unwrap();
    let sig = query.split('&').find_map(|p| p.strip_prefix("sig=")).unwrap();
    for bad in [
        path.to_string(),
        format!("{path}?tz=Europe/Berlin&sig=AAAA{}", &sig[4..]),
        format!("{path}?tz=UTC&sig={sig}"),
        format!("/l/intro-call/booked/bkg_01jd3k5v7w8x9y0z1a2b3c4d5e?tz=Europe/Berlin&sig={sig}"),
    ] {
        let page = visitor.get(&bad).await;
        assert_eq!(page.status, 404, "{bad}");
        assert!(page.is_html());
    }
}

#[tokio::test]
async fn a_form_without_its_csrf_token_is_refused_and_nothing_is_written() {
    let app = TestApp::start().await;
    let (_, business) = host_and_business(&app, json!({})).await;
    link(&app, json!({"business_id": business, "duration_minutes": 30, "title": "Intro call", "slug": "intro-call"}))
        .await;
    let mut visitor = Visitor::new(&app);
    let form = open_form(&mut visitor, "2030-01-01T14:00:00Z").await;
    let token = form.hidden("csrf");

    let other = "0123456789abcdef0123456789abcdef";
    let forged = details(&form, other, "Jane Doe", "jane@example.com");
    let page = visitor.post("/l/intro-call/book", &pairs(&forged)).await;
    assert_eq!(page.status, 403, "a token that is not the cookie's");
    assert!(page.is_html() && page.html.contains("This form has expired"));
    let mut missing = details(&form, "", "Jane Doe", "jane@example.com");
    missing.retain(|(k, _)| *k != "csrf");
    assert_eq!(visitor.post("/l/intro-call/book", &pairs(&missing)).await.status, 403, "no token");
    let cookieless = Visitor { cookie: None, client: no_redirects(), base: app.base.clone() };
    let right = details(&form, &token, "Jane Doe", "jane@example.com");
    assert_eq!(cookieless.post("/l/intro-call/book", &pairs(&right)).await.status, 403, "no cookie");
    assert!(bookings(&app).await.is_empty(), "nothing was booked");
    assert_eq!(visitor.post("/l/intro-call/book", &pairs(&right)).await.status, 303, "the real form still works");
}

#[tokio::test]
async fn a_time_taken_meanwhile_shows_the_week_again_with_409_and_what_is_still_open() {
    let app = TestApp::start().await;
    let (_, business) = host_and_business(&app, json!({})).await;
    link(&app, json!({"business_id": business, "duration_minutes": 30, "title": "Intro call", "slug": "intro-call"}))
        .await;
    let (mut first, mut second) = (Visitor::new(&app), Visitor::new(&app));
    let form_1 = open_form(&mut first, "2030-01-01T14:00:00Z").await;
    let form_2 = open_form(&mut second, "2030-01-01T14:00:00Z").await;
    let fields_1 = details(&form_1, &form_1.hidden("csrf"), "Jane Doe", "jane@example.com");
    assert_eq!(first.post("/l/intro-call/book", &pairs(&fields_1)).await.status, 303);

    let fields_2 = details(&form_2, &form_2.hidden("csrf"), "Joe Bloggs", "joe@example.com");
    let taken = second.post("/l/intro-call/book", &pairs(&fields_2)).await;
    assert_eq!(taken.status, 409, "{}", taken.html);
    assert!(taken.html.contains(
        r#"<p id="taken" role="alert" class="notice alert">Sorry — that time was just taken. Here are the times still open.</p>"#
    ));
    assert!(taken.slot("2030-01-01T14:00:00Z").is_none(), "the taken time is gone");
    // The booking holds a 5-minute buffer after it, so 9:30 New York is gone too.
    assert!(taken.slot("2030-01-01T14:30:00Z").is_none());
    assert_eq!(taken.slot("2030-01-01T15:00:00Z").unwrap().2, "4:00 PM", "fresh slots, in the visitor's zone");
    assert!(!taken.html.contains("<script>"), "shown at the form's address: no reload with the zone");
    assert_eq!(bookings(&app).await.len(), 1);
    // The form of a time already taken says so too.
    let again = second.get("/l/intro-call/book?start=2030-01-01T14:00:00Z&tz=Europe/Berlin").await;
    assert_eq!(again.status, 409);
    assert!(again.html.contains(r#"id="taken""#));
}

#[tokio::test]
async fn a_people_link_books_the_visitor_with_those_people() {
    let app = TestApp::start().await;
    let mut ids = Vec::new();
    for (email, name) in [("bo@example.com", "Bo Berg"), ("cy@example.com", "Cy Chen")] {
        let r = app
            .post(
                "/v1/users",
                json!({"email": email, "name": name, "timezone": "UTC", "working_hours": hours("10:00", "11:00")}),
            )
            .await;
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    link(&app, json!({"participants": ids, "duration_minutes": 60, "title": "Team sync", "slug": "team-sync"})).await;
    let mut visitor = Visitor::new(&app);
    let page = visitor.get("/l/team-sync").await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("with Bo Berg and Cy Chen") && page.html.contains("1 hour"));
    assert!(unescape(&page.html).contains("Times are in UTC."), "no business: UTC");
    assert!(!page.html.contains("bo@example.com") && !page.html.contains(&ids[0]));
    let (href, _, text) = page.slot("2030-01-01T10:00:00Z").unwrap();
    assert_eq!(text, "10:00 AM");
    let form = visitor.get(&href).await;
    let fields = details(&form, &form.hidden("csrf"), "Dee Visitor", "dee@example.com");
    let done = visitor.post("/l/team-sync/book", &pairs(&fields)).await;
    assert_eq!(done.status, 303, "{}", done.html);
    let b = &bookings(&app).await[0];
    assert_eq!((b["customer_email"].as_str(), b["title"].as_str()), (Some("dee@example.com"), Some("Team sync")));
    let mut held: Vec<&str> = b["participants"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    held.sort();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(held, expected);
    assert!(visitor.get(&done.location()).await.html.contains("with Bo Berg and Cy Chen"));
}

#[tokio::test]
async fn an_unknown_link_is_a_404_page() {
    let app = TestApp::start().await;
    let mut visitor = Visitor::new(&app);
    for path in ["/l/no-such-link", "/l/no-such-link/book?start=2030-01-01T14:00:00Z", "/l/NOPE%20x"] {
        let page = visitor.get(path).await;
        assert_eq!(page.status, 404, "{path}");
        assert!(page.is_html(), "{path}: an HTML page, not JSON");
        assert!(page.html.contains("<h1>Page not found</h1>"));
    }
}

#[tokio::test]
async fn public_pages_are_rate_limited_per_client_with_retry_after() {
    let app = TestApp::start().await;
    let mut visitor = Visitor::new(&app);
    // Bookings: a burst of 5, then 10 a minute.
    for _ in 0..5 {
        assert_eq!(visitor.post("/l/nope/book", &[("name", "x")]).await.status, 404);
    }
    let limited = visitor.post("/l/nope/book", &[("name", "x")]).await;
    assert_eq!(limited.status, 429);
    let wait: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=6).contains(&wait), "{wait}");
    assert!(limited.is_html() && limited.html.contains("Too many requests"));
    // Pages: a burst of 60, then 120 a minute (one every half second), counted apart.
    let mut served = 0;
    let page = loop {
        let page = visitor.get("/l/nope").await;
        if page.status != 404 {
            break page;
        }
        served += 1;
        assert!(served < 100, "never limited");
    };
    assert_eq!(page.status, 429);
    assert!(served >= 60, "the burst is served: {served}");
    assert!(page.headers.contains_key("retry-after"));
    // The API is not limited by the pages' quota.
    assert_eq!(app.get("/v1/bookings").await.status, 200);
}

/// A booking form POSTed to a link that does not exist (404, or 429 once over the quota),
/// with `X-Forwarded-For: forwarded`.
async fn book_forwarded_for(app: &TestApp, forwarded: &str) -> StatusCode {
    let res = no_redirects()
        .post(format!("{}/l/nope/book", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-forwarded-for", forwarded)
        .body("name=x")
        .send()
        .await
        .unwrap();
    res.status()
}

#[tokio::test]
async fn without_trusted_proxies_a_forged_x_forwarded_for_does_not_change_the_clients_quota() {
    let app = TestApp::start().await;
    // Five bookings at once is the quota; each request claims to be someone else.
    for n in 1..=5 {
        assert_eq!(book_forwarded_for(&app, &format!("203.0.113.{n}")).await, 404);
    }
    assert_eq!(book_forwarded_for(&app, "203.0.113.99").await, 429, "still the same client: its TCP peer");
    assert_eq!(book_forwarded_for(&app, "198.51.100.7, 203.0.113.100").await, 429);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_quota() {
    let app = TestApp::start_with(|config| config.trusted_proxies = "127.0.0.1, 10.0.0.0/8".parse().unwrap()).await;
    for _ in 0..5 {
        assert_eq!(book_forwarded_for(&app, "203.0.113.1").await, 404);
    }
    assert_eq!(book_forwarded_for(&app, "203.0.113.1").await, 429);
    // Another client behind the same proxy is not held back by the first one's quota.
    assert_eq!(book_forwarded_for(&app, "203.0.113.2").await, 404);
    // What a client writes into the header itself stays left of what the proxy saw (and
    // trusted hops, such as an inner proxy at 10.1.2.3, are walked past).
    assert_eq!(book_forwarded_for(&app, "203.0.113.77, 203.0.113.1").await, 429);
    assert_eq!(book_forwarded_for(&app, "203.0.113.77, 203.0.113.1, 10.1.2.3").await, 429);
}

#[tokio::test]
async fn the_payment_return_pages_are_rate_limited_per_client_too() {
    let app = TestApp::start().await;
    let client = no_redirects();
    let mut served = 0;
    let limited = loop {
        let res = client.get(format!("{}/pay/done?session_id=cs_test_x", app.base)).send().await.unwrap();
        if res.status() != 200 {
            break res;
        }
        served += 1;
        assert!(served < 100, "never limited");
    };
    assert_eq!(limited.status(), 429);
    assert!(served >= 60, "a burst of pages is served: {served}");
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(client.get(format!("{}/healthz", app.base)).send().await.unwrap().status(), 200, "only /pay/ pages");
}

#[tokio::test]
async fn a_priced_link_shows_its_price_and_asks_to_continue_to_payment() {
    let app = TestApp::start().await;
    let (alice, euros) = host_and_business(&app, json!({"price_amount": 2500, "price_currency": "EUR"})).await;
    let priced = |amount: i64, currency: &str| {
        json!({"name": format!("Acme {currency}"), "timezone": "America/New_York", "hosts": [alice],
            "working_hours": hours("09:00", "12:00"), "price_amount": amount, "price_currency": currency})
    };
    let dollars = app.business(priced(4000, "usd")).await;
    let yen = app.business(priced(4500, "jpy")).await;
    let free = app
        .business(json!({"name": "Acme free", "timezone": "America/New_York", "hosts": [alice],
            "working_hours": hours("09:00", "12:00")}))
        .await;
    for (business, slug, shown) in [
        (&euros, "euros", Some("€25.00")),
        (&dollars, "dollars", Some("$40.00")),
        (&yen, "yen", Some("¥4,500")),
        (&free, "free", None),
    ] {
        link(&app, json!({"business_id": business, "duration_minutes": 30, "title": "Intro call", "slug": slug})).await;
        let mut visitor = Visitor::new(&app);
        let week = visitor.get(&format!("/l/{slug}?tz=UTC")).await;
        assert_eq!(week.status, 200, "{}", week.html);
        let (href, _, _) = week.slot("2030-01-01T14:00:00Z").expect("9:00 New York");
        let form = visitor.get(&href).await;
        assert_eq!(form.status, 200, "{}", form.html);
        let (week_html, form_html) = (unescape(&week.html), unescape(&form.html));
        match shown {
            Some(price) => {
                assert!(week_html.contains(&format!(r#"<span id="price">{price}</span>"#)), "{slug}: {week_html}");
                assert!(form_html.contains(&format!(r#"<strong id="price">{price}</strong>"#)), "{slug}: {form_html}");
                assert!(form_html.contains(r#"<button id="book" type="submit">Continue to payment</button>"#));
            }
            None => {
                assert!(!week_html.contains(r#"id="price""#) && !form_html.contains(r#"id="price""#), "{slug}");
                assert!(form_html.contains(r#"<button id="book" type="submit">Book</button>"#));
            }
        }
        // The price, and still nothing else of the business or the account.
        for html in [&week_html, &form_html] {
            for secret in
                ["Acme", "alice@example.com", business.as_str(), "biz_", "usr_", "price_amount", "2500", "4000"]
            {
                assert!(!html.contains(secret), "{slug}: the page must not show {secret}");
            }
        }
    }
}

/// A server taking payments through the Stripe emulator, with a 30-minute link to a business
/// charging €50.00.
async fn priced_link_app() -> (TestApp, StripeEmulator) {
    const WEBHOOK_SECRET: &str = "whsec_kairos_test_endpoint_secret_0123456789";
    let stripe = StripeEmulator::start().await.unwrap();
    let api_base = url::Url::parse(&stripe.base_url()).unwrap();
    let app = TestApp::start_with(|config| {
        config.stripe = Some(StripeConfig {
            secret_key: StripeEmulator::SECRET_KEY.into(),
            webhook_secret: Some(WEBHOOK_SECRET.into()),
            api_base,
        });
    })
    .await;
    let (_, business) = host_and_business(&app, json!({"price_amount": 5000, "price_currency": "EUR"})).await;
    link(&app, json!({"business_id": business, "duration_minutes": 30, "title": "Intro call", "slug": "intro-call"}))
        .await;
    (app, stripe)
}

#[tokio::test]
async fn a_priced_link_sends_the_visitor_to_stripe_checkout() {
    let (app, stripe) = priced_link_app().await;
    let mut visitor = Visitor::new(&app);
    let form = open_form(&mut visitor, "2030-01-01T14:00:00Z").await;
    let fields = details(&form, &form.hidden("csrf"), "Jane Doe", "jane@example.com");
    let paid = visitor.post("/l/intro-call/book", &pairs(&fields)).await;
    assert_eq!(paid.status, 303, "{}", paid.html);
    assert!(paid.location().starts_with(&stripe.base_url()), "Stripe's hosted page: {}", paid.location());
    let b = &bookings(&app).await[0];
    assert_eq!(b["status"], "pending_payment");
    assert_eq!(b["checkout_url"].as_str(), Some(paid.location().as_str()));
    let create = stripe.requests().into_iter().find(|r| r.path == "/v1/checkout/sessions").unwrap();
    assert_eq!(create.param("metadata[booking_id]"), b["id"].as_str());
    assert_eq!(create.param("customer_email"), Some("jane@example.com"));
}

#[tokio::test]
async fn a_visitor_back_from_checkout_can_release_the_time_and_pick_another_on_the_link() {
    let (app, stripe) = priced_link_app().await;
    let mut visitor = Visitor::new(&app);
    let form = open_form(&mut visitor, "2030-01-01T14:00:00Z").await;
    let fields = details(&form, &form.hidden("csrf"), "Jane Doe", "jane@example.com");
    let to_stripe = visitor.post("/l/intro-call/book", &pairs(&fields)).await;
    assert_eq!(to_stripe.status, 303, "{}", to_stripe.html);
    let create = stripe.requests().into_iter().find(|r| r.path == "/v1/checkout/sessions").unwrap();
    let cancel_url = create.param("cancel_url").unwrap();
    assert!(!cancel_url.contains("intro-call"), "the link is sealed in the token: {cancel_url}");

    // "Back" on Stripe's page: the time is held, in Berlin time as the visitor saw it.
    let back = cancel_url.strip_prefix(&app.base).unwrap().to_string();
    let page = visitor.get(&back).await;
    assert_eq!(page.status, 200, "{}", page.html);
    let html = unescape(&page.html);
    assert!(html.contains(&format!(r#"href="{}">Return to payment"#, to_stripe.location())), "{html}");
    assert!(html.contains("Intro call") && html.contains("with Alice Host") && html.contains("€50.00"));
    assert!(html.contains("Tuesday, January 1, 2030, 3:00 – 3:30 PM CET"), "{html}");
    assert!(!html.contains("Pick another time"), "not while the time is held");

    let released = visitor.post("/pay/cancelled", &[("t", &page.hidden("t")), ("csrf", &page.hidden("csrf"))]).await;
    assert_eq!(released.status, 303, "{}", released.html);
    let page = visitor.get(&released.location()).await;
    let html = unescape(&page.html);
    assert!(html.contains("The time was released"), "{html}");
    assert!(
        html.contains(r#"<a class="button" id="rebook" href="/l/intro-call?tz=Europe/Berlin">Pick another time</a>"#)
    );
    // The link offers the time again.
    let week = visitor.get("/l/intro-call?tz=Europe/Berlin").await;
    assert!(week.slot("2030-01-01T14:00:00Z").is_some(), "the released time is open again");
    assert_eq!(bookings(&app).await[0]["status"], "cancelled");
}

#[tokio::test]
async fn a_priced_link_without_stripe_says_so_and_books_nothing() {
    let app = TestApp::start().await;
    let (_, business) = host_and_business(&app, json!({"price_amount": 5000, "price_currency": "EUR"})).await;
    link(&app, json!({"business_id": business, "duration_minutes": 30, "title": "Intro call", "slug": "intro-call"}))
        .await;
    let mut visitor = Visitor::new(&app);
    let form = open_form(&mut visitor, "2030-01-01T14:00:00Z").await;
    let fields = details(&form, &form.hidden("csrf"), "Jane Doe", "jane@example.com");
    let page = visitor.post("/l/intro-call/book", &pairs(&fields)).await;
    assert_eq!(page.status, 409, "{}", page.html);
    assert!(page.html.contains("online payment is not set up"));
    assert!(bookings(&app).await.is_empty());
}
