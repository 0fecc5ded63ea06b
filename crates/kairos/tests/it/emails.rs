//! Booking emails through a real SMTP server (aiosmtpd, started by the test): the
//! confirmation with its invitation, the update after a reschedule, the cancellation, each
//! parsed back from what the server received; and the record of each on the booking. Also
//! over STARTTLS and over TLS from the first byte, each with a login, to a server whose
//! certificate an authority made for the test issued (trusted through `KAIROS_SMTP_CA_FILE`),
//! and what a wrong password or an unknown authority leaves on the booking.

use std::time::Duration;

use kairos_core::calendar::ical;
use kairos_emulators::smtp::SmtpServer;
use mail_parser::{MessageParser, MimeHeaders, PartType};
use serde_json::{Value, json};

use crate::support::*;

/// One received email: its recipient, subject, plain text and the invitation's properties.
#[derive(Debug)]
pub(crate) struct Received {
    pub to: String,
    pub subject: String,
    pub text: String,
    /// The `method=` of the text/calendar part.
    pub method: String,
    /// The VEVENT's properties as (name, value) with parameters dropped, plus METHOD.
    pub ics: Vec<(String, String)>,
    pub raw_ics: String,
}

impl Received {
    pub fn prop(&self, name: &str) -> &str {
        self.ics.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap_or_default()
    }
}

pub(crate) fn parse(raw: &str) -> Received {
    let message = MessageParser::default().parse(raw.as_bytes()).expect("a MIME message");
    let to = message.to().and_then(|a| a.first()).and_then(|a| a.address()).unwrap().to_string();
    let subject = message.subject().unwrap().to_string();
    let text = message.body_text(0).unwrap().to_string();
    let calendar = message
        .parts
        .iter()
        .find(|p| p.content_type().is_some_and(|t| t.ctype() == "text" && t.subtype() == Some("calendar")))
        .expect("a text/calendar part");
    let method = calendar.content_type().unwrap().attribute("method").unwrap().to_string();
    let raw_ics = match &calendar.body {
        PartType::Text(t) => t.to_string(),
        PartType::Binary(b) | PartType::InlineBinary(b) => String::from_utf8(b.to_vec()).unwrap(),
        other => panic!("{other:?}"),
    };
    let top = ical::parse(&raw_ics).expect("the invitation parses");
    let vcalendar = &top[0];
    let mut ics = vec![("METHOD".to_string(), vcalendar.text("METHOD").unwrap_or_default())];
    let event = vcalendar.components.iter().find(|c| c.name == "VEVENT").expect("a VEVENT");
    for p in &event.properties {
        ics.push((p.name.clone(), p.value.clone()));
    }
    Received { to, subject, text, method, ics, raw_ics }
}

/// The first `n` emails the server receives (within 20 s), parsed, by SEQUENCE then recipient.
pub(crate) async fn wait_for(server: &SmtpServer, n: usize) -> Vec<Received> {
    let messages = tokio::task::block_in_place(|| server.wait_for(n, Duration::from_secs(20)));
    assert!(messages.len() >= n, "expected {n} emails, got {}", messages.len());
    let mut received: Vec<Received> = messages.iter().map(|m| parse(m)).collect();
    received.sort_by(|a, b| a.prop("SEQUENCE").cmp(b.prop("SEQUENCE")).then(a.to.cmp(&b.to)));
    received
}

/// A booking's `emails`: (recipient, kind, status, sequence).
pub(crate) fn emails_of(booking: &Value) -> Vec<(String, String, String, i64)> {
    booking["emails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["recipient"].as_str().unwrap().to_string(),
                e["kind"].as_str().unwrap().to_string(),
                e["status"].as_str().unwrap().to_string(),
                e["sequence"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmations_updates_and_cancellations_reach_an_smtp_server_with_invitations() {
    let Some(smtp) = SmtpServer::start() else { return };
    let url = smtp.url();
    let app = TestApp::start_with(move |config| {
        config.email.smtp_url = Some(url);
        config.email.from = Some("Kairos Bookings <bookings@kairos.test>".into());
    })
    .await;
    app.post("/v1/users", json!({"email": "alice@example.com", "name": "Alice Host", "timezone": "America/New_York"}))
        .await;
    let biz = app
        .business(json!({"name": "Consulting", "timezone": "Europe/Paris", "hosts": ["alice@example.com"], "working_hours": all_week()}))
        .await;
    let booked = app
        .post(
            "/v1/bookings",
            json!({"business_id": biz, "customer_email": "Jane@Example.com", "customer_name": "Jane Doe",
                "start_time": "2030-01-02T14:00:00Z", "end_time": "2030-01-02T14:30:00Z", "notes": "Bring the contract"}),
        )
        .await;
    assert_eq!(booked.status, 201, "{}", booked.body);
    let id = booked.body["id"].as_str().unwrap().to_string();

    let first = wait_for(&smtp, 2).await;
    assert_eq!(first.iter().map(|r| r.to.as_str()).collect::<Vec<_>>(), ["alice@example.com", "jane@example.com"]);
    for r in &first {
        assert_eq!(
            (r.method.as_str(), r.prop("METHOD"), r.prop("SEQUENCE")),
            ("REQUEST", "REQUEST", "0"),
            "{}",
            r.raw_ics
        );
        assert_eq!(r.prop("UID"), format!("{id}@kairos"));
        assert_eq!((r.prop("DTSTART"), r.prop("DTEND")), ("20300102T140000Z", "20300102T143000Z"));
        assert_eq!(r.prop("STATUS"), "CONFIRMED");
        assert_eq!(r.prop("ORGANIZER"), "mailto:bookings@kairos.test");
    }
    let attendees = |r: &Received| -> Vec<String> {
        r.ics.iter().filter(|(n, _)| n == "ATTENDEE").map(|(_, v)| v.clone()).collect()
    };
    assert_eq!(attendees(&first[0]), ["mailto:jane@example.com", "mailto:alice@example.com"], "the host sees everyone");
    // The customer (who may be anyone filling in a public page) sees no host address, and no
    // echo of what they typed: a booking form must not be a way to mail anything anywhere.
    assert_eq!(attendees(&first[1]), ["mailto:jane@example.com"]);
    assert!(!first[1].raw_ics.contains("alice@example.com") && !first[1].text.contains("alice@example.com"));
    assert!(first[1].text.contains("Alice Host"), "hosts by name: {}", first[1].text);
    // Each in their own zone: Alice in New York (9:00 EST), Jane in the business's (15:00 CET).
    assert!(first[0].subject.contains("9:00") && first[0].subject.contains("EST"), "{}", first[0].subject);
    assert!(first[1].text.contains("3:00") && first[1].text.contains("CET"), "{}", first[1].text);
    assert!(first[0].text.contains("Bring the contract"), "{}", first[0].text);
    assert!(!first[1].text.contains("Bring the contract"), "{}", first[1].text);

    eventually("both confirmations recorded as sent", || async {
        let b = app.get(&format!("/v1/bookings/{id}")).await.body;
        emails_of(&b).iter().all(|(_, kind, status, seq)| kind == "confirmation" && status == "sent" && *seq == 0)
    })
    .await;

    let moved = app
        .post(
            &format!("/v1/bookings/{id}/reschedule"),
            json!({"start_time": "2030-01-02T15:00:00Z", "end_time": "2030-01-02T15:30:00Z"}),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    let updates = wait_for(&smtp, 4).await;
    for r in &updates[2..] {
        assert_eq!((r.method.as_str(), r.prop("SEQUENCE"), r.prop("DTSTART")), ("REQUEST", "1", "20300102T150000Z"));
        assert_eq!(r.prop("UID"), format!("{id}@kairos"), "the same event, updated");
    }
    // Each update says what it replaces, in the recipient's zone.
    assert!(updates[2].text.contains("Was: ") && updates[2].text.contains("9:00"), "{}", updates[2].text);
    assert!(updates[3].text.contains("Was: ") && updates[3].text.contains("3:00"), "{}", updates[3].text);
    eventually("updates recorded as sent", || async {
        let b = app.get(&format!("/v1/bookings/{id}")).await.body;
        emails_of(&b).iter().all(|(_, kind, status, seq)| kind == "updated" && status == "sent" && *seq == 1)
    })
    .await;

    let cancelled = app.post(&format!("/v1/bookings/{id}/cancel"), json!({"reason": "Alice is ill"})).await;
    assert_eq!(cancelled.status, 200);
    let all = wait_for(&smtp, 6).await;
    for r in &all[4..] {
        assert_eq!((r.method.as_str(), r.prop("METHOD"), r.prop("SEQUENCE")), ("CANCEL", "CANCEL", "2"));
        assert_eq!((r.prop("UID"), r.prop("STATUS")), (format!("{id}@kairos").as_str(), "CANCELLED"));
    }
    assert!(all[5].text.contains("Alice is ill"), "{}", all[5].text);
    eventually("cancellations recorded as sent", || async {
        let b = app.get(&format!("/v1/bookings/{id}")).await.body;
        emails_of(&b).iter().all(|(_, kind, status, seq)| kind == "cancelled" && status == "sent" && *seq == 2)
    })
    .await;
    assert_eq!(smtp.messages().len(), 6, "nothing sent twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customers_own_time_zone_is_used_when_the_booking_has_one() {
    let Some(smtp) = SmtpServer::start() else { return };
    let url = smtp.url();
    let app = TestApp::start_with(move |config| config.email.smtp_url = Some(url)).await;
    app.post("/v1/users", json!({"email": "alice@example.com", "timezone": "America/New_York"})).await;
    let biz = app
        .business(json!({"name": "Consulting", "timezone": "Europe/Paris", "hosts": ["alice@example.com"], "working_hours": all_week()}))
        .await;
    let booked = app
        .post(
            "/v1/bookings",
            json!({"business_id": biz, "customer_email": "jane@example.com", "customer_name": "Jane Doe",
                "customer_timezone": "Asia/Tokyo", "start_time": "2030-01-02T14:00:00Z", "end_time": "2030-01-02T14:30:00Z"}),
        )
        .await;
    assert_eq!(booked.status, 201, "{}", booked.body);
    let sent = wait_for(&smtp, 2).await;
    let jane = sent.iter().find(|r| r.to == "jane@example.com").unwrap();
    // 14:00 UTC is 23:00 in Tokyo (JST, no DST), not the business's 15:00 CET; the host still
    // gets New York time.
    assert!(jane.text.contains("11:00") && jane.text.contains("JST"), "{}", jane.text);
    assert!(!jane.text.contains("CET"), "{}", jane.text);
    let alice = sent.iter().find(|r| r.to == "alice@example.com").unwrap();
    assert!(alice.subject.contains("9:00") && alice.subject.contains("EST"), "{}", alice.subject);
}

#[tokio::test]
async fn without_smtp_emails_are_recorded_as_skipped() {
    let app = TestApp::start().await;
    app.user("alice@example.com", "UTC").await;
    let booked = app
        .post(
            "/v1/bookings",
            json!({"participants": ["user:alice@example.com"], "start": "2030-01-02T14:00:00Z", "end": "2030-01-02T14:30:00Z", "title": "Sync"}),
        )
        .await;
    assert_eq!(booked.status, 201, "{}", booked.body);
    let id = booked.body["id"].as_str().unwrap().to_string();
    eventually("the email recorded as skipped", || async {
        let b = app.get(&format!("/v1/bookings/{id}")).await.body;
        b["emails"][0]["status"] == "skipped"
            && b["emails"][0]["last_error"].as_str().is_some_and(|e| e.contains("KAIROS_SMTP_URL"))
    })
    .await;
}

const SMTP_USER: &str = "kairos-mailer";
const SMTP_PASSWORD: &str = "s3cret-Pass_1";

/// A server sending its emails to `url`, trusting `ca_file` for the SMTP server's certificate.
async fn app_sending_to(url: String, ca_file: Option<std::path::PathBuf>) -> TestApp {
    TestApp::start_with(move |config| {
        config.email.smtp_url = Some(url);
        config.email.from = Some("Kairos Bookings <bookings@kairos.test>".into());
        config.email.ca_file = ca_file;
    })
    .await
}

/// Books Jane with Alice's business (two emails: Alice's and Jane's); the booking's id.
async fn book_jane(app: &TestApp) -> String {
    app.user("alice@example.com", "UTC").await;
    let biz = app
        .business(json!({"name": "Consulting", "timezone": "UTC", "hosts": ["alice@example.com"], "working_hours": all_week()}))
        .await;
    let booked = app
        .post(
            "/v1/bookings",
            json!({"business_id": biz, "customer_email": "jane@example.com", "customer_name": "Jane Doe",
                "start_time": "2030-01-02T14:00:00Z", "end_time": "2030-01-02T14:30:00Z"}),
        )
        .await;
    assert_eq!(booked.status, 201, "{}", booked.body);
    booked.body["id"].as_str().unwrap().to_string()
}

/// Both emails of a booking arrived, Jane's with its invitation, and both are recorded as sent.
async fn assert_delivered(app: &TestApp, smtp: &SmtpServer, id: &str) {
    let received = wait_for(smtp, 2).await;
    assert_eq!(received.iter().map(|r| r.to.as_str()).collect::<Vec<_>>(), ["alice@example.com", "jane@example.com"]);
    let jane = &received[1];
    assert_eq!((jane.method.as_str(), jane.prop("METHOD"), jane.prop("SEQUENCE")), ("REQUEST", "REQUEST", "0"));
    assert_eq!(jane.prop("UID"), format!("{id}@kairos"));
    assert_eq!((jane.prop("DTSTART"), jane.prop("DTEND")), ("20300102T140000Z", "20300102T143000Z"));
    assert_eq!(jane.prop("ORGANIZER"), "mailto:bookings@kairos.test");
    eventually("both emails recorded as sent", || async {
        let b = app.get(&format!("/v1/bookings/{id}")).await.body;
        let emails = emails_of(&b);
        emails.len() == 2 && emails.iter().all(|(_, _, status, _)| status == "sent")
    })
    .await;
}

/// The booking's emails once each has been tried and refused (waiting to be retried, never
/// sent): their `last_error`s.
async fn refused(app: &TestApp, id: &str) -> Vec<String> {
    let tried = |b: &Value| {
        let emails = b["emails"].as_array().cloned().unwrap_or_default();
        emails.len() == 2 && emails.iter().all(|e| e["attempts"].as_u64() >= Some(1))
    };
    eventually("each email tried and refused", || async { tried(&app.get(&format!("/v1/bookings/{id}")).await.body) })
        .await;
    let b = app.get(&format!("/v1/bookings/{id}")).await.body;
    let emails = b["emails"].as_array().unwrap();
    for e in emails {
        assert_eq!((e["status"].as_str(), e["sent_at"].as_str()), (Some("pending"), None), "{e}");
        assert!(e["next_attempt_at"].is_string(), "retried later: {e}");
    }
    emails.iter().map(|e| e["last_error"].as_str().unwrap_or_default().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_go_over_starttls_with_a_login_to_a_server_an_internal_ca_vouches_for() {
    let Some(smtp) = SmtpServer::start_starttls(SMTP_USER, SMTP_PASSWORD) else { return };
    // The server takes no message before STARTTLS and a login: a delivery proves both.
    let url = smtp.url();
    assert!(url.starts_with(&format!("smtp://{SMTP_USER}:{SMTP_PASSWORD}@127.0.0.1:")), "{url}");
    let app = app_sending_to(url, smtp.ca_file()).await;
    let id = book_jane(&app).await;
    assert_delivered(&app, &smtp, &id).await;
    assert_eq!(smtp.messages().len(), 2, "nothing sent twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_go_over_implicit_tls_with_a_login_to_a_server_an_internal_ca_vouches_for() {
    let Some(smtp) = SmtpServer::start_tls(SMTP_USER, SMTP_PASSWORD) else { return };
    let url = smtp.url();
    assert!(url.starts_with(&format!("smtps://{SMTP_USER}:{SMTP_PASSWORD}@127.0.0.1:")), "{url}");
    let app = app_sending_to(url, smtp.ca_file()).await;
    let id = book_jane(&app).await;
    assert_delivered(&app, &smtp, &id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_or_an_unknown_certificate_authority_is_recorded_as_a_failure_and_nothing_is_sent() {
    let Some(smtp) = SmtpServer::start_starttls(SMTP_USER, SMTP_PASSWORD) else { return };
    let wrong = app_sending_to(smtp.url_with_password(SMTP_USER, "not-the-password"), smtp.ca_file()).await;
    let id = book_jane(&wrong).await;
    for error in refused(&wrong, &id).await {
        assert!(error.contains("refused the login"), "{error}");
        assert!(!error.contains("not-the-password"), "the password is never shown: {error}");
    }
    // The right password, but the server's certificate vouched for by nobody this server
    // trusts (no KAIROS_SMTP_CA_FILE): refused before the password is sent.
    let untrusted = app_sending_to(smtp.url(), None).await;
    let id = book_jane(&untrusted).await;
    for error in refused(&untrusted, &id).await {
        assert!(error.to_lowercase().contains("certificate"), "{error}");
        assert!(!error.contains(SMTP_PASSWORD), "{error}");
    }
    assert!(smtp.messages().is_empty(), "nothing was sent:\n{}", smtp.log());
}
