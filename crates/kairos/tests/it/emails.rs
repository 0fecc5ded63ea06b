//! Booking emails through a real SMTP server (aiosmtpd, started by the test): the
//! confirmation with its invitation, the update after a reschedule, the cancellation, each
//! parsed back from what the server received; and the record of each on the booking.

use std::time::Duration;

use kairos_core::calendar::ical;
use kairos_emulators::smtp::SmtpServer;
use mail_parser::{MessageParser, MimeHeaders, PartType};
use serde_json::{Value, json};

use crate::support::*;

/// One received email: its recipient, subject, plain text and the invitation's properties.
#[derive(Debug)]
struct Received {
    to: String,
    subject: String,
    text: String,
    /// The `method=` of the text/calendar part.
    method: String,
    /// The VEVENT's properties as (name, value) with parameters dropped, plus METHOD.
    ics: Vec<(String, String)>,
    raw_ics: String,
}

impl Received {
    fn prop(&self, name: &str) -> &str {
        self.ics.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap_or_default()
    }
}

fn parse(raw: &str) -> Received {
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

async fn wait_for(server: &SmtpServer, n: usize) -> Vec<Received> {
    let messages = tokio::task::block_in_place(|| server.wait_for(n, Duration::from_secs(20)));
    assert!(messages.len() >= n, "expected {n} emails, got {}", messages.len());
    let mut received: Vec<Received> = messages.iter().map(|m| parse(m)).collect();
    received.sort_by(|a, b| a.prop("SEQUENCE").cmp(b.prop("SEQUENCE")).then(a.to.cmp(&b.to)));
    received
}

fn emails_of(booking: &Value) -> Vec<(String, String, String, i64)> {
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
