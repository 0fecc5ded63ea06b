//! Booking and proposal emails: templates rendered into subject, text and HTML
//! ([`EmailTemplates`]), a MIME message carrying the invitation the way mail clients show it
//! ([`OutgoingEmail`]), and delivery over SMTP ([`Mailer`]) with failures sorted into "try
//! again later" and "give up".
//!
//! The invitation's calendar text itself is the core's ([`kairos_core::calendar::Invitation`]);
//! queueing, storage and retries are the caller's.

mod message;
mod smtp;
mod templates;

pub use kairos_core::calendar::{InviteMethod, Person};
pub use message::OutgoingEmail;
pub use smtp::{Mailer, MailerError, Security, SendError, SmtpUrl};
pub use templates::{EmailContext, EmailKind, EmailTemplates, ProposalOutcome, Rendered, TemplateError, when};
