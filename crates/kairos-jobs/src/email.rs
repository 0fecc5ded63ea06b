//! `EmailWorker`: sends the booking emails the booking transactions queue (see
//! `Store::claim_emails`) — a confirmation with a `METHOD:REQUEST` invitation, an update with
//! a higher `SEQUENCE` after a move, a `METHOD:CANCEL` after a cancellation — each rendered
//! from the templates in the recipient's own time zone, never inside a request — and the
//! proposal emails (see `Store::claim_proposal_emails`): the invitation a new proposal queues
//! (who invites, the times on offer in UTC and the participant's personal response link, which
//! the row keeps sealed with the server's keyring until the email is sent, skipped or given up
//! on), then the outcome the change queues: `accepted` (the agreed time with a `METHOD:REQUEST`
//! invitation whose UID is the booking's, so it is the same event the users were sent),
//! `resolved` (a poll's chosen time) and `cancelled` (a `METHOD:CANCEL` of that invitation).
//!
//! Each row is claimed under a lease, so on many nodes one sends it; an attempt cut short by
//! a crash is sent again after the lease lapses (at least once, like webhooks). A failure the
//! SMTP server calls temporary is retried on a backoff; a permanent one (an unknown mailbox)
//! is recorded as `failed`. Without `KAIROS_SMTP_URL` every email is recorded as `skipped`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kairos_core::calendar::{Invitation, InviteMethod, Person};
use kairos_core::proposal::{Proposal, ProposalStatus};
use kairos_core::{Booking, Interval, Zone};
use kairos_providers::sealed::Keyring;
use kairos_store::{
    BookingEmail, Clock, EmailKind, EmailOutcome, ProposalEmail, ProposalEmailKind, Store, StoreResult, Tenant,
};

use crate::mail::{self, EmailContext, EmailTemplates, Mailer, OutgoingEmail, ProposalOutcome, SendError};

/// How long a claim is this worker's: well past an SMTP exchange's timeouts.
const LEASE: SignedDuration = SignedDuration::from_mins(2);
/// Waits before each retry of a temporary failure; after the last, the email is `failed`.
const BACKOFF: [SignedDuration; 7] = [
    SignedDuration::from_secs(30),
    SignedDuration::from_mins(2),
    SignedDuration::from_mins(10),
    SignedDuration::from_mins(30),
    SignedDuration::from_hours(1),
    SignedDuration::from_hours(3),
    SignedDuration::from_hours(6),
];
/// Emails claimed at once.
const BATCH: usize = 20;

/// Why an email was recorded as skipped without SMTP.
pub const NO_SMTP: &str = "no SMTP server is configured (set KAIROS_SMTP_URL)";
/// The keyring purpose a proposal email's response link is sealed under; the row is
/// `{proposal_id}:{recipient}`.
pub const PROPOSAL_LINK_PURPOSE: &str = "proposal_emails.link";

#[derive(Clone)]
pub struct EmailWorker {
    store: Arc<dyn Store>,
    clock: Clock,
    mailer: Option<Mailer>,
    templates: Arc<EmailTemplates>,
    /// Opens proposal emails' sealed response links: the keyring the API sealed them with.
    keyring: Arc<Keyring>,
    poll: Duration,
}

impl EmailWorker {
    /// `mailer` is `None` when no SMTP server is configured; `keyring` is the server's (the
    /// one the API seals proposal response links with).
    pub fn new(
        store: Arc<dyn Store>,
        clock: Clock,
        mailer: Option<Mailer>,
        templates: EmailTemplates,
        keyring: Arc<Keyring>,
    ) -> Self {
        Self { store, clock, mailer, templates: Arc::new(templates), keyring, poll: Duration::from_secs(1) }
    }

    /// Looks for due emails every `poll` (default one second).
    pub fn polling_every(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Sends due emails until `stop` resolves; an attempt under way when it does is finished.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let (bookings, proposals) = tokio::join!(self.tick(), self.tick_proposals());
            let bookings = bookings.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "could not claim booking emails");
                0
            });
            let proposals = proposals.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "could not claim proposal emails");
                0
            });
            if bookings == BATCH || proposals == BATCH {
                continue;
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    /// Claims the due booking emails and sends them, concurrently; returns how many were
    /// claimed. Without SMTP, records every due email as skipped, proposal emails included.
    pub async fn tick(&self) -> StoreResult<usize> {
        if self.mailer.is_none() {
            // Nothing can be attempted: one statement records every due email (booking and
            // proposal emails alike) as skipped, instead of a claim and a record per email.
            let skipped = self.store.skip_due_emails(self.clock.now(), NO_SMTP).await?;
            metrics::counter!("kairos_emails_total", "outcome" => "skipped").increment(skipped as u64);
            return Ok(0);
        }
        let claimed = self.store.claim_emails(self.clock.now(), LEASE, BATCH).await?;
        let n = claimed.len();
        let mut sends = tokio::task::JoinSet::new();
        for (t, mut email) in claimed {
            let this = self.clone();
            sends.spawn(async move {
                let (outcome, times) = this.attempt(&t, &email).await;
                if outcome == EmailOutcome::Sent {
                    email.sent_times = times;
                }
                this.record(&t, &email, &outcome).await;
            });
        }
        while sends.join_next().await.is_some() {}
        Ok(n)
    }

    /// Claims the due proposal emails and sends them, concurrently; returns how many were
    /// claimed. Without SMTP there is nothing to claim ([`Self::tick`] skips them).
    pub async fn tick_proposals(&self) -> StoreResult<usize> {
        if self.mailer.is_none() {
            return Ok(0);
        }
        let claimed = self.store.claim_proposal_emails(self.clock.now(), LEASE, BATCH).await?;
        let n = claimed.len();
        let mut sends = tokio::task::JoinSet::new();
        for (t, email) in claimed {
            let this = self.clone();
            sends.spawn(async move {
                let outcome = this.attempt_proposal(&t, &email).await;
                this.record_proposal(&t, &email, &outcome).await;
            });
        }
        while sends.join_next().await.is_some() {}
        Ok(n)
    }

    async fn record(&self, t: &Tenant, email: &BookingEmail, outcome: &EmailOutcome) {
        match outcome {
            EmailOutcome::Sent => tracing::info!(booking = %email.booking_id, kind = email.kind.as_str(),
                sequence = email.version, "booking email sent"),
            EmailOutcome::Skipped(why) => tracing::debug!(booking = %email.booking_id, why, "booking email skipped"),
            EmailOutcome::Failed { error, retry_at } => tracing::warn!(booking = %email.booking_id, error,
                retry_at = ?retry_at, "booking email failed"),
        }
        metrics::counter!("kairos_emails_total", "outcome" => outcome_label(outcome)).increment(1);
        match self.store.record_email(t, email, outcome, self.clock.now()).await {
            Ok(true) => {}
            // The lease lapsed and another worker claimed the email meanwhile: its outcome will
            // stand, not this one.
            Ok(false) => tracing::warn!(booking = %email.booking_id,
                "a booking email outlived its lease; its outcome was not recorded"),
            // The lease lapses and the email is tried again: at least once.
            Err(e) => tracing::warn!(error = %e, booking = %email.booking_id, "could not record a booking email"),
        }
    }

    /// One attempt at one email, as an outcome to record, with the booking's times the email
    /// gave.
    async fn attempt(&self, t: &Tenant, email: &BookingEmail) -> (EmailOutcome, Option<Interval>) {
        let Some(mailer) = &self.mailer else { return (EmailOutcome::Skipped(NO_SMTP.into()), None) };
        if email.kind == EmailKind::Cancelled && email.sent_version.is_none() {
            return (EmailOutcome::Skipped("cancelled before any invitation was sent".into()), None);
        }
        let (message, times) = match self.compose(t, email, mailer).await {
            Ok(Some(composed)) => composed,
            Ok(None) => return (EmailOutcome::Skipped("the booking no longer exists".into()), None),
            Err(e) => return (self.retry(email.attempts, format!("could not read the booking: {e}")), None),
        };
        (self.send(mailer, &message, email.attempts).await, Some(times))
    }

    /// Sends `message`: sent, retried on a temporary failure (after `attempts` earlier
    /// ones), failed on a permanent one.
    async fn send(&self, mailer: &Mailer, message: &OutgoingEmail, attempts: u32) -> EmailOutcome {
        match mailer.send(message).await {
            Ok(()) => EmailOutcome::Sent,
            Err(SendError::Transient(why)) => self.retry(attempts, why),
            Err(SendError::Permanent(why)) => EmailOutcome::Failed { error: why, retry_at: None },
        }
    }

    /// A failure after `attempts` earlier ones: retried on the backoff, or given up.
    fn retry(&self, attempts: u32, error: String) -> EmailOutcome {
        let wait = BACKOFF.get(attempts as usize);
        EmailOutcome::Failed {
            error,
            retry_at: wait.map(|w| self.clock.now().saturating_add(*w).unwrap_or(Timestamp::MAX)),
        }
    }

    async fn record_proposal(&self, t: &Tenant, email: &ProposalEmail, outcome: &EmailOutcome) {
        // Never the link: it lets anyone answer for the recipient.
        let kind = email.kind.as_str();
        match outcome {
            EmailOutcome::Sent => tracing::info!(proposal = %email.proposal_id, kind, "proposal email sent"),
            EmailOutcome::Skipped(why) => {
                tracing::debug!(proposal = %email.proposal_id, kind, why, "proposal email skipped");
            }
            EmailOutcome::Failed { error, retry_at } => tracing::warn!(proposal = %email.proposal_id, kind, error,
                retry_at = ?retry_at, "proposal email failed"),
        }
        metrics::counter!("kairos_emails_total", "outcome" => outcome_label(outcome)).increment(1);
        match self.store.record_proposal_email(t, email, outcome, self.clock.now()).await {
            Ok(true) => {}
            // As for booking emails.
            Ok(false) => tracing::warn!(proposal = %email.proposal_id, kind,
                "a proposal email outlived its lease; its outcome was not recorded"),
            // The lease lapses and the email is tried again: at least once.
            Err(e) => {
                tracing::warn!(error = %e, proposal = %email.proposal_id, kind, "could not record a proposal email")
            }
        }
    }

    /// One attempt at one proposal email, as an outcome to record.
    async fn attempt_proposal(&self, t: &Tenant, email: &ProposalEmail) -> EmailOutcome {
        let Some(mailer) = &self.mailer else { return EmailOutcome::Skipped(NO_SMTP.into()) };
        // A cancellation directly follows the outcome it calls off (one re-want later): it is
        // news only to someone that outcome went out to.
        if email.kind == ProposalEmailKind::Cancelled && email.sent_version != Some(email.version - 1) {
            return EmailOutcome::Skipped("cancelled before the outcome was sent".into());
        }
        let proposal = match self.store.proposal(t, &email.proposal_id).await {
            Ok(Some(proposal)) => proposal,
            Ok(None) => return EmailOutcome::Skipped("the proposal no longer exists".into()),
            Err(e) => return self.retry(email.attempts, format!("could not read the proposal: {e}")),
        };
        let kind = match email.kind {
            ProposalEmailKind::Invitation => return self.invite(mailer, &proposal, email).await,
            ProposalEmailKind::Accepted => ProposalOutcome::Accepted,
            ProposalEmailKind::Resolved => ProposalOutcome::Resolved,
            ProposalEmailKind::Cancelled => ProposalOutcome::Cancelled,
        };
        // An outcome is sent whatever the proposal became since (a later change re-wants the
        // row), and needs no response link.
        let message = match self.compose_outcome(kind, &proposal, email) {
            Ok(message) => message,
            Err(outcome) => return outcome,
        };
        self.send(mailer, &message, email.attempts).await
    }

    /// The invitation to respond to an open proposal, with the recipient's own link.
    async fn invite(&self, mailer: &Mailer, proposal: &Proposal, email: &ProposalEmail) -> EmailOutcome {
        if proposal.status != ProposalStatus::Open {
            return EmailOutcome::Skipped(format!("the proposal is {}, no longer open", proposal.status.as_str()));
        }
        if proposal.expires_at <= self.clock.now() {
            return EmailOutcome::Skipped("the proposal expired before its invitation was sent".into());
        }
        let link = match open_link(&self.keyring, email) {
            Ok(link) => link,
            Err(why) => return EmailOutcome::Skipped(why),
        };
        let rendered = match self.templates.render_proposal_invitation(proposal, email.name.as_deref(), &link) {
            Ok(rendered) => rendered,
            // A template the operator broke: every invitation would fail alike.
            Err(e) => return self.retry(email.attempts, format!("the proposal_invitation template failed: {e}")),
        };
        let message = OutgoingEmail {
            to: Person { email: email.recipient.clone(), name: email.name.clone() },
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
            // Nothing is booked yet: no calendar invitation.
            invite: None,
        };
        self.send(mailer, &message, email.attempts).await
    }

    /// An outcome email: the agreed (or chosen) time in UTC and who organises; for an accepted
    /// proposal the booking's invitation (`METHOD:REQUEST`, `SEQUENCE` 0, the booking's UID,
    /// the organiser as ORGANIZER and the recipient as its one ATTENDEE), for a cancelled one
    /// that invitation's `METHOD:CANCEL` (`SEQUENCE` 1) when a booking was made. `Err` is the
    /// outcome to record instead of sending.
    fn compose_outcome(
        &self,
        kind: ProposalOutcome,
        proposal: &Proposal,
        email: &ProposalEmail,
    ) -> Result<OutgoingEmail, EmailOutcome> {
        let agreed = proposal.accepted_slot_id.as_deref().and_then(|id| proposal.slot(id)).map(|s| (s.start, s.end));
        let chosen = proposal.result.as_ref().map(|r| (r.winning_slot.start, r.winning_slot.end));
        let time = match kind {
            ProposalOutcome::Accepted => agreed,
            ProposalOutcome::Resolved => chosen,
            ProposalOutcome::Cancelled => agreed.or(chosen),
        };
        let Some((start, end)) = time else {
            return Err(EmailOutcome::Skipped("the proposal has no agreed or chosen time".into()));
        };
        let method = match kind {
            ProposalOutcome::Accepted => Some((InviteMethod::Request, 0)),
            ProposalOutcome::Cancelled => Some((InviteMethod::Cancel, 1)),
            // A poll books nothing: no calendar invitation.
            ProposalOutcome::Resolved => None,
        };
        let to = Person { email: email.recipient.clone(), name: email.name.clone() };
        let invite = match (method, proposal.booking_id.as_deref()) {
            (Some((method, sequence)), Some(booking_id)) => {
                let invitation = Invitation {
                    // The booking's UID: the same event as the invitations its users were sent.
                    uid: format!("{booking_id}@kairos"),
                    sequence,
                    method,
                    summary: proposal.title.clone(),
                    description: proposal.description.clone(),
                    start,
                    end,
                    organizer: Person {
                        email: proposal.organiser.email.clone(),
                        name: proposal.organiser.name.clone(),
                    },
                    attendees: vec![to.clone()],
                    url: None,
                };
                Some((method, invitation.to_ics(self.clock.now())))
            }
            _ => None,
        };
        let rendered = self
            .templates
            .render_proposal_outcome(kind, proposal, email.name.as_deref(), (start, end), invite.is_some())
            // A template the operator broke: every email of this kind would fail alike.
            .map_err(|e| self.retry(email.attempts, format!("the {} template failed: {e}", kind.name())))?;
        Ok(OutgoingEmail { to, subject: rendered.subject, text: rendered.text, html: rendered.html, invite })
    }

    /// The email for `email`'s recipient from the booking as it is now; `None` when the
    /// booking is gone.
    /// The email for `email`'s row as the booking now stands, and the booking's times it gives.
    async fn compose(
        &self,
        t: &Tenant,
        email: &BookingEmail,
        mailer: &Mailer,
    ) -> StoreResult<Option<(OutgoingEmail, Interval)>> {
        let Some(booking) = self.store.booking(t, &email.booking_id).await? else { return Ok(None) };
        let business = match &booking.business_id {
            Some(id) => self.store.business(t, id).await?,
            None => None,
        };
        let zone = self.zone_of(t, email, &booking, business.as_ref().map(|b| &b.schedule.timezone)).await?;
        let kind = match email.kind {
            EmailKind::Confirmation => mail::EmailKind::Confirmation,
            EmailKind::Updated => mail::EmailKind::Updated,
            EmailKind::Cancelled => mail::EmailKind::Cancelled,
        };
        // The customer may be anyone who filled in a public booking page: their copy names the
        // hosts by display name only (never an address), and does not echo their own notes (a
        // form that mails what it is given, to any address, would be a spam relay).
        let customer = email.user_id.is_none();
        let shown = |address: &str, name: &Option<String>| match (name, customer) {
            (Some(name), _) => Some(name.clone()),
            (None, true) => None,
            (None, false) => Some(address.to_string()),
        };
        let mut context = EmailContext::new(&booking.title, booking.start_time, booking.end_time, &zone);
        let times = Interval::new(booking.start_time, booking.end_time)
            .map_err(|e| kairos_store::StoreError::Backend(format!("booking times: {e}")))?;
        // An update says what the recipient was last told, when that was another time.
        if email.kind == EmailKind::Updated {
            context.previous_when =
                email.sent_times.filter(|sent| *sent != times).map(|sent| mail::when(sent.start(), sent.end(), &zone));
        }
        context.recipient_name = email.name.clone();
        context.host_names = booking.participants.iter().filter_map(|p| shown(&p.email, &p.name)).collect();
        context.participant_names = kairos_store::email_recipients(&booking)
            .iter()
            .filter_map(|(address, name, _)| shown(address, name))
            .collect();
        context.notes = if customer { None } else { booking.notes.clone() };
        context.cancellation_reason = booking.cancellation_reason.clone();
        context.business_name = business.as_ref().map(|b| b.name.clone());
        let rendered = match self.templates.render(kind, &context) {
            Ok(rendered) => rendered,
            // A template the operator broke: every email of this kind would fail alike.
            Err(e) => {
                return Err(kairos_store::StoreError::Backend(format!("the {} template failed: {e}", kind.name())));
            }
        };
        let invitation = Invitation {
            uid: format!("{}@kairos", booking.id),
            sequence: u32::try_from(email.version).unwrap_or(u32::MAX),
            method: if email.kind == EmailKind::Cancelled { InviteMethod::Cancel } else { InviteMethod::Request },
            summary: booking.title.clone(),
            description: if customer {
                booking.description.clone()
            } else {
                booking.notes.clone().or_else(|| booking.description.clone())
            },
            start: booking.start_time,
            end: booking.end_time,
            organizer: Person {
                email: mailer.from().email.to_string(),
                name: business.as_ref().map(|b| b.name.clone()).or_else(|| mailer.from().name.clone()),
            },
            // The customer's invitation lists only them: the hosts' addresses stay private.
            attendees: if customer {
                vec![Person { email: email.recipient.clone(), name: email.name.clone() }]
            } else {
                attendees(&booking)
            },
            url: None,
        };
        let method = invitation.method;
        let message = OutgoingEmail {
            to: Person { email: email.recipient.clone(), name: email.name.clone() },
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
            invite: Some((method, invitation.to_ics(self.clock.now()))),
        };
        Ok(Some((message, times)))
    }

    /// The recipient's zone: a participant's own; the customer's is their own when the booking
    /// has it (given at booking, or chosen on the booking page), else the business's, else the
    /// first participant's, else UTC.
    async fn zone_of(
        &self,
        t: &Tenant,
        email: &BookingEmail,
        booking: &Booking,
        business_zone: Option<&Zone>,
    ) -> StoreResult<Zone> {
        if email.user_id.is_none()
            && let Some(zone) = booking.customer_timezone.as_deref().and_then(|name| Zone::parse(name).ok())
        {
            return Ok(zone);
        }
        let first = booking.participants.first().map(|p| p.id.as_str());
        let user = match (email.user_id.as_deref(), business_zone) {
            (Some(id), _) => Some(id),
            (None, Some(zone)) => return Ok(zone.clone()),
            (None, None) => first,
        };
        Ok(match user {
            Some(id) => self.store.user(t, id).await?.map(|u| u.schedule.timezone).unwrap_or_else(Zone::utc),
            None => Zone::utc(),
        })
    }
}

/// Everyone the booking's emails go to, as the invitation's attendees.
fn attendees(booking: &Booking) -> Vec<Person> {
    kairos_store::email_recipients(booking).into_iter().map(|(email, name, _)| Person { email, name }).collect()
}

/// The recipient's personal response link, unsealed; why not when it cannot be.
fn open_link(keyring: &Keyring, email: &ProposalEmail) -> Result<String, String> {
    let Some(sealed) = email.link_sealed.as_deref() else {
        return Err("the response link is no longer kept".into());
    };
    let row = format!("{}:{}", email.proposal_id, email.recipient);
    let plain = keyring
        .open(PROPOSAL_LINK_PURPOSE, &row, sealed)
        .map_err(|e| format!("the response link cannot be opened: {e}"))?;
    String::from_utf8(plain).map_err(|_| "the response link is not text".to_string())
}

fn outcome_label(outcome: &EmailOutcome) -> &'static str {
    match outcome {
        EmailOutcome::Sent => "sent",
        EmailOutcome::Skipped(_) => "skipped",
        EmailOutcome::Failed { retry_at: Some(_), .. } => "retry",
        EmailOutcome::Failed { retry_at: None, .. } => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(proposal_id: &str, recipient: &str, link_sealed: Option<String>) -> ProposalEmail {
        let now: Timestamp = "2026-04-20T08:00:00Z".parse().unwrap();
        ProposalEmail {
            proposal_id: proposal_id.into(),
            recipient: recipient.into(),
            name: None,
            link_sealed,
            kind: ProposalEmailKind::Invitation,
            version: 0,
            sent_version: None,
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            sent_at: None,
            updated_at: now,
            lease: None,
        }
    }

    #[test]
    fn a_response_link_opens_only_for_its_own_row_and_key() {
        let keyring = Keyring::parse(&Keyring::generate_secret()).unwrap();
        let url = "https://kairos.example.com/p/prop_1/respond?token=abc";
        let sealed = keyring.seal(PROPOSAL_LINK_PURPOSE, "prop_1:ana@example.com", url.as_bytes());
        assert_eq!(open_link(&keyring, &row("prop_1", "ana@example.com", Some(sealed.clone()))).unwrap(), url);

        // Moved to another recipient's row, or another proposal's: it does not open.
        let moved = open_link(&keyring, &row("prop_1", "bo@example.com", Some(sealed.clone()))).unwrap_err();
        assert!(moved.starts_with("the response link cannot be opened"), "{moved}");
        assert!(open_link(&keyring, &row("prop_2", "ana@example.com", Some(sealed.clone()))).is_err());
        // Another server key.
        let other = Keyring::parse(&Keyring::generate_secret()).unwrap();
        assert!(open_link(&other, &row("prop_1", "ana@example.com", Some(sealed))).is_err());
        // Already forgotten (sent, skipped or failed).
        let gone = open_link(&keyring, &row("prop_1", "ana@example.com", None)).unwrap_err();
        assert_eq!(gone, "the response link is no longer kept");
    }
}
