//! One email as MIME: the text and HTML bodies as alternatives, and the invitation twice.
//!
//! ```text
//! multipart/mixed
//! ├── multipart/alternative
//! │   ├── text/plain; charset=utf-8
//! │   ├── text/html; charset=utf-8
//! │   └── text/calendar; charset=utf-8; method=REQUEST   ← the RSVP card
//! └── application/ics; name="invite.ics"                 ← attachment, same text
//! ```
//!
//! The `text/calendar` alternative with its `method=` parameter is what Gmail and Outlook
//! read to show an invitation with answer buttons (RFC 6047 §2.4 puts the iTIP method there);
//! the `.ics` attachment is for every other client, which can at least import it. An email
//! without an invitation is the `multipart/alternative` alone.

use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};

use super::smtp::SendError;
use super::{InviteMethod, Person};

/// An email ready to send: rendered bodies and, for a booking, its invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    pub to: Person,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The iTIP method and the VCALENDAR text ([`kairos_core::calendar::Invitation::to_ics`]).
    pub invite: Option<(InviteMethod, String)>,
}

/// The attachment's file name.
const ATTACHMENT: &str = "invite.ics";

impl OutgoingEmail {
    /// The MIME message from `from`. An address that is not one, or a type lettre refuses, is
    /// permanent: the same email would fail again.
    pub(crate) fn to_message(&self, from: Mailbox) -> Result<Message, SendError> {
        let address = self.to.email.trim().parse().map_err(|e| {
            SendError::Permanent(format!("the recipient `{}` is not an email address: {e}", self.to.email))
        })?;
        // A display name is one header line: control characters (a line break) are dropped.
        let name = self.to.name.as_deref().map(|n| n.chars().filter(|c| !c.is_control()).collect::<String>());
        let to = Mailbox::new(name.filter(|n| !n.trim().is_empty()), address);
        let subject: String = self.subject.split_whitespace().collect::<Vec<_>>().join(" ");
        let content_type = |value: &str| {
            ContentType::parse(value).map_err(|e| SendError::Permanent(format!("content type `{value}`: {e}")))
        };
        let alternative = MultiPart::alternative()
            .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(self.text.clone()))
            .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(self.html.clone()));
        // A Message-ID in the sender's own domain: spam filters distrust a missing one, and
        // one naming the host (often a container's random name) looks forged.
        let message_id = format!("<{:032x}@{}>", rand::random::<u128>(), from.email.domain());
        let builder = Message::builder().from(from).to(to).subject(subject).message_id(Some(message_id));
        let message = match &self.invite {
            None => builder.multipart(alternative),
            Some((method, ics)) => {
                let calendar = content_type(&format!("text/calendar; charset=utf-8; method={}", method.as_str()))?;
                let alternative = alternative.singlepart(SinglePart::builder().header(calendar).body(ics.clone()));
                let attachment = Attachment::new(ATTACHMENT.to_string())
                    .body(ics.clone(), content_type(&format!("application/ics; name=\"{ATTACHMENT}\""))?);
                builder.multipart(MultiPart::mixed().multipart(alternative).singlepart(attachment))
            }
        };
        message.map_err(|e| SendError::Permanent(format!("the email cannot be written: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(invite: Option<(InviteMethod, String)>) -> OutgoingEmail {
        OutgoingEmail {
            to: Person { email: "ana@example.com".into(), name: Some("Ana\r\nBcc: evil@example.com".into()) },
            subject: "Confirmed:\r\n Intro call".into(),
            text: "Hello".into(),
            html: "<p>Hello</p>".into(),
            invite,
        }
    }

    fn formatted(e: &OutgoingEmail) -> String {
        let from: Mailbox = "Bookings <bookings@example.com>".parse().unwrap();
        String::from_utf8(e.to_message(from).unwrap().formatted()).unwrap()
    }

    #[test]
    fn an_invitation_is_an_alternative_and_an_attachment() {
        let ics = "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n".to_string();
        let text = formatted(&email(Some((InviteMethod::Request, ics))));
        assert!(text.contains("Content-Type: multipart/mixed"), "{text}");
        assert!(text.contains("Content-Type: multipart/alternative"), "{text}");
        assert!(text.contains("Content-Type: text/calendar; charset=utf-8; method=REQUEST"), "{text}");
        assert!(text.contains("Content-Disposition: attachment; filename=\"invite.ics\""), "{text}");
        assert!(text.contains("Content-Type: application/ics; name=\"invite.ics\""), "{text}");
        assert!(text.contains("Message-ID: <") && text.contains("@example.com>\r\n"), "{text}");
    }

    #[test]
    fn without_an_invitation_it_is_text_and_html_only() {
        let text = formatted(&email(None));
        assert!(text.contains("Content-Type: multipart/alternative"), "{text}");
        assert!(!text.contains("multipart/mixed") && !text.contains("text/calendar"), "{text}");
    }

    #[test]
    fn names_and_subjects_cannot_add_headers() {
        let text = formatted(&email(None));
        assert!(!text.contains("\r\nBcc:"), "{text}");
        assert!(text.contains("Subject: Confirmed: Intro call\r\n"), "{text}");
    }

    #[test]
    fn a_bad_recipient_is_permanent() {
        let mut e = email(None);
        e.to.email = "not an address".into();
        let from: Mailbox = "bookings@example.com".parse().unwrap();
        assert!(matches!(e.to_message(from), Err(SendError::Permanent(_))));
    }
}
