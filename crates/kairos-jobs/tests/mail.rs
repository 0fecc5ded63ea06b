//! Booking emails end to end: rendered, written as MIME, sent through `Mailer` to a real SMTP
//! server (aiosmtpd) and read back byte for byte with an independent MIME parser
//! (`mail-parser`); the invitation inside is read back with the core's own iCalendar reader.
//! Failures are classified against a stub server that answers what a test tells it to.
//!
//! The aiosmtpd tests print a loud SKIP without aiosmtpd, and fail instead when
//! `KAIROS_REQUIRE_PEERS=1` (as CI sets).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed expectation should fail the test loudly

use std::time::Duration;

use jiff::Timestamp;
use kairos_core::Zone;
use kairos_core::calendar::event::EventStatus;
use kairos_core::calendar::{Calendar, Invitation, InviteMethod, Person, ical};
use kairos_emulators::smtp::SmtpServer;
use kairos_jobs::mail::{EmailContext, EmailKind, EmailTemplates, Mailer, OutgoingEmail, SendError};
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const FROM: &str = "Example Studio <bookings@example.com>";

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn invitation(method: InviteMethod, sequence: u32) -> Invitation {
    Invitation {
        uid: "bk_01JMAILTEST@kairos.example.com".into(),
        sequence,
        method,
        summary: "Intro call".into(),
        description: Some("Booked through Kairos".into()),
        start: ts("2026-05-01T13:00:00Z"),
        end: ts("2026-05-01T13:30:00Z"),
        organizer: Person { email: "host@example.com".into(), name: Some("Hana Host".into()) },
        attendees: vec![Person { email: "ana@example.com".into(), name: Some("Ana Ruiz, PhD".into()) }],
        url: Some("https://book.example.com/manage/bk_01".into()),
    }
}

/// The email `kind` for Ana, who lives in Berlin, with the invitation attached.
fn email(kind: EmailKind, invite: &Invitation) -> OutgoingEmail {
    let berlin = Zone::parse("Europe/Berlin").unwrap();
    let context = EmailContext {
        recipient_name: Some("Ana Ruiz, PhD".into()),
        host_names: vec!["Hana Host".into()],
        business_name: Some("Example Studio".into()),
        cancellation_reason: Some("The host is ill".into()),
        manage_url: Some("https://book.example.com/manage/bk_01".into()),
        ..EmailContext::new(&invite.summary, invite.start, invite.end, &berlin)
    };
    let rendered = EmailTemplates::builtin().unwrap().render(kind, &context).unwrap();
    OutgoingEmail {
        to: Person { email: "ana@example.com".into(), name: Some("Ana Ruiz, PhD".into()) },
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
        invite: Some((invite.method, invite.to_ics(ts("2026-04-20T08:00:00Z")))),
    }
}

/// The part of `message` with content type `ctype/subtype`, and its index.
fn part<'a>(message: &'a Message<'a>, ctype: &str, subtype: &str) -> (usize, &'a mail_parser::MessagePart<'a>) {
    message
        .parts
        .iter()
        .enumerate()
        .find(|(_, p)| {
            p.content_type().is_some_and(|t| {
                t.ctype().eq_ignore_ascii_case(ctype) && t.subtype().is_some_and(|s| s.eq_ignore_ascii_case(subtype))
            })
        })
        .unwrap_or_else(|| panic!("no {ctype}/{subtype} part"))
}

fn text_of(p: &mail_parser::MessagePart<'_>) -> String {
    match &p.body {
        PartType::Text(t) | PartType::Html(t) => t.to_string(),
        PartType::Binary(b) | PartType::InlineBinary(b) => String::from_utf8(b.to_vec()).unwrap(),
        other => panic!("not a leaf part: {other:?}"),
    }
}

/// Everything a mail client needs from one received message; returns its `.ics`.
fn check_message(raw: &str, subject_prefix: &str, method: &str) -> String {
    let message = MessageParser::default().parse(raw.as_bytes()).expect("a MIME message");

    let to = message.to().and_then(|a| a.first()).expect("To");
    assert_eq!(to.address(), Some("ana@example.com"));
    assert_eq!(to.name(), Some("Ana Ruiz, PhD"));
    let from = message.from().and_then(|a| a.first()).expect("From");
    assert_eq!(from.address(), Some("bookings@example.com"));
    assert_eq!(from.name(), Some("Example Studio"));
    let subject = message.subject().expect("Subject");
    assert!(subject.starts_with(subject_prefix), "{subject}");
    // In Ana's zone, not the server's or UTC.
    assert!(subject.ends_with("Friday, May 1, 2026, 3:00 – 3:30 PM CEST"), "{subject}");

    // multipart/mixed › multipart/alternative › text/plain, text/html, text/calendar.
    let root = message.root_part().content_type().unwrap();
    assert_eq!((root.ctype(), root.subtype()), ("multipart", Some("mixed")));
    let (_, alternative) = part(&message, "multipart", "alternative");
    let children = alternative.sub_parts().expect("alternative has parts").to_vec();
    let (plain_id, plain) = part(&message, "text", "plain");
    let (html_id, html) = part(&message, "text", "html");
    let (calendar_id, calendar) = part(&message, "text", "calendar");
    assert_eq!(children, vec![plain_id as u32, html_id as u32, calendar_id as u32]);
    assert_eq!(plain.content_type().unwrap().attribute("charset"), Some("utf-8"));
    assert_eq!(html.content_type().unwrap().attribute("charset"), Some("utf-8"));
    assert_eq!(calendar.content_type().unwrap().attribute("charset"), Some("utf-8"));
    assert_eq!(calendar.content_type().unwrap().attribute("method"), Some(method));

    let text = message.body_text(0).expect("a text body");
    assert!(text.contains("Hello Ana Ruiz, PhD,"), "{text}");
    assert!(text.contains("When: Friday, May 1, 2026, 3:00 – 3:30 PM CEST"), "{text}");
    let html_body = message.body_html(0).expect("an HTML body");
    assert!(html_body.contains("<title>Intro call</title>"), "{html_body}");
    assert!(html_body.contains("Friday, May 1, 2026, 3:00 – 3:30 PM CEST"), "{html_body}");

    // The same calendar again as an attachment, for clients that do not read the part.
    // (mail-parser also lists the text/calendar alternative among attachments: it is neither
    // the text nor the HTML body. Only one part is marked as an attachment.)
    let attachments: Vec<_> =
        message.attachments().filter(|p| p.content_disposition().is_some_and(|d| d.is_attachment())).collect();
    assert_eq!(attachments.len(), 1);
    let attachment = attachments[0];
    assert_eq!(attachment.attachment_name(), Some("invite.ics"));
    let t = attachment.content_type().unwrap();
    assert_eq!((t.ctype(), t.subtype()), ("application", Some("ics")));
    let ics = text_of(attachment);
    let normalise = |s: &str| s.replace("\r\n", "\n");
    assert_eq!(normalise(&ics), normalise(&text_of(calendar)));
    ics
}

#[tokio::test]
async fn a_confirmation_and_its_cancellation_arrive_as_invitations() {
    let Some(server) = SmtpServer::start() else { return };
    let mailer = Mailer::from_url(&server.url(), FROM).unwrap();

    let request = invitation(InviteMethod::Request, 0);
    mailer.send(&email(EmailKind::Confirmation, &request)).await.unwrap();
    let cancel = invitation(InviteMethod::Cancel, 1);
    mailer.send(&email(EmailKind::Cancelled, &cancel)).await.unwrap();

    let raw = server.wait_for(2, Duration::from_secs(10));
    assert_eq!(raw.len(), 2, "{raw:?}");
    // aiosmtpd records the envelope it was given.
    assert!(raw[0].contains("X-RcptTo: ana@example.com"), "{}", raw[0]);
    assert!(raw[0].contains("X-MailFrom: bookings@example.com"), "{}", raw[0]);

    let first = check_message(&raw[0], "Confirmed: Intro call", "REQUEST");
    let second = check_message(&raw[1], "Cancelled: Intro call", "CANCEL");
    assert!(raw[1].contains("The host is ill"), "{}", raw[1]);

    let read = |ics: &str| {
        let top = ical::parse(ics).unwrap();
        let method = top[0].property("METHOD").map(|p| p.value.clone());
        let organizer_cn = top[0].components[0].property("ORGANIZER").and_then(|p| p.param("CN")).map(str::to_string);
        let calendar = Calendar::parse(ics).unwrap();
        assert!(calendar.skipped.is_empty(), "{:?}", calendar.skipped);
        assert_eq!(calendar.events.len(), 1);
        (method, organizer_cn, calendar.events[0].clone())
    };
    let (method, organizer_cn, confirmed) = read(&first);
    assert_eq!(method.as_deref(), Some("REQUEST"));
    assert_eq!(organizer_cn.as_deref(), Some("Hana Host"));
    assert_eq!(confirmed.status, EventStatus::Confirmed);
    assert_eq!(confirmed.organizer.as_deref(), Some("host@example.com"));
    assert_eq!(confirmed.attendees.len(), 1);
    assert_eq!(confirmed.attendees[0].email, "ana@example.com");
    assert_eq!(confirmed.attendees[0].name.as_deref(), Some("Ana Ruiz, PhD"));
    assert_eq!(confirmed.attendees[0].partstat, "NEEDS-ACTION");

    let (method, _, cancelled) = read(&second);
    assert_eq!(method.as_deref(), Some("CANCEL"));
    assert_eq!(cancelled.uid, confirmed.uid);
    assert!(cancelled.sequence > confirmed.sequence);
    assert_eq!(cancelled.status, EventStatus::Cancelled);
    assert_eq!(cancelled.organizer, confirmed.organizer);
    assert_eq!(cancelled.attendees, confirmed.attendees);
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mailer = Mailer::from_url(&format!("smtp://127.0.0.1:{port}"), FROM).unwrap();
    let error = mailer.send(&email(EmailKind::Confirmation, &invitation(InviteMethod::Request, 0))).await.unwrap_err();
    assert!(matches!(error, SendError::Transient(_)), "{error:?}");
}

/// An SMTP server for one conversation that answers MAIL FROM and RCPT TO as told and
/// everything else as a happy server would.
async fn stub_server(mail_reply: &'static str, rcpt_reply: &'static str) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read).lines();
        write.write_all(b"220 stub ESMTP\r\n").await.unwrap();
        while let Ok(Some(line)) = lines.next_line().await {
            let verb = line.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
            let reply = match verb.as_str() {
                "EHLO" | "HELO" => "250 stub",
                "MAIL" => mail_reply,
                "RCPT" => rcpt_reply,
                "DATA" => "354 go ahead",
                "QUIT" => "221 bye",
                _ => "250 ok",
            };
            if write.write_all(format!("{reply}\r\n").as_bytes()).await.is_err() || verb == "QUIT" {
                break;
            }
        }
    });
    port
}

#[tokio::test]
async fn an_unknown_mailbox_is_permanent() {
    let port = stub_server("250 ok", "550 5.1.1 <ana@example.com>: no such user").await;
    let mailer = Mailer::from_url(&format!("smtp://127.0.0.1:{port}"), FROM).unwrap();
    let error = mailer.send(&email(EmailKind::Confirmation, &invitation(InviteMethod::Request, 0))).await.unwrap_err();
    let SendError::Permanent(text) = &error else { panic!("{error:?}") };
    assert!(text.contains("no such user"), "{text}");
}

#[tokio::test]
async fn a_4xx_reply_is_transient() {
    let port = stub_server("451 4.7.1 greylisted, try again later", "250 ok").await;
    let mailer = Mailer::from_url(&format!("smtp://127.0.0.1:{port}"), FROM).unwrap();
    let error = mailer.send(&email(EmailKind::Confirmation, &invitation(InviteMethod::Request, 0))).await.unwrap_err();
    let SendError::Transient(text) = &error else { panic!("{error:?}") };
    assert!(text.contains("greylisted"), "{text}");
}
