//! `EmailWorker`: sends the booking emails the booking transactions queue (see
//! `Store::claim_emails`) — a confirmation with a `METHOD:REQUEST` invitation, an update with
//! a higher `SEQUENCE` after a move, a `METHOD:CANCEL` after a cancellation — each rendered
//! from the templates in the recipient's own time zone, never inside a request.
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
use kairos_core::{Booking, Zone};
use kairos_store::{BookingEmail, Clock, EmailKind, EmailOutcome, Store, StoreResult, Tenant};

use crate::mail::{self, EmailContext, EmailTemplates, Mailer, OutgoingEmail, SendError};

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

#[derive(Clone)]
pub struct EmailWorker {
    store: Arc<dyn Store>,
    clock: Clock,
    mailer: Option<Mailer>,
    templates: Arc<EmailTemplates>,
    poll: Duration,
}

impl EmailWorker {
    /// `mailer` is `None` when no SMTP server is configured.
    pub fn new(store: Arc<dyn Store>, clock: Clock, mailer: Option<Mailer>, templates: EmailTemplates) -> Self {
        Self { store, clock, mailer, templates: Arc::new(templates), poll: Duration::from_secs(1) }
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
            let busy = match self.tick().await {
                Ok(n) => n == BATCH,
                Err(e) => {
                    tracing::warn!(error = %e, "could not claim booking emails");
                    false
                }
            };
            if busy {
                continue;
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    /// Claims the due emails and sends them, concurrently; returns how many were claimed.
    pub async fn tick(&self) -> StoreResult<usize> {
        if self.mailer.is_none() {
            // Nothing can be attempted: one statement records every due email as skipped,
            // instead of a claim and a record per email.
            let skipped = self.store.skip_due_emails(self.clock.now(), NO_SMTP).await?;
            metrics::counter!("kairos_emails_total", "outcome" => "skipped").increment(skipped as u64);
            return Ok(0);
        }
        let claimed = self.store.claim_emails(self.clock.now(), LEASE, BATCH).await?;
        let n = claimed.len();
        let mut sends = tokio::task::JoinSet::new();
        for (t, email) in claimed {
            let this = self.clone();
            sends.spawn(async move {
                let outcome = this.attempt(&t, &email).await;
                this.record(&t, &email, &outcome).await;
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
        if let Err(e) = self.store.record_email(t, email, outcome, self.clock.now()).await {
            // The lease lapses and the email is tried again: at least once.
            tracing::warn!(error = %e, booking = %email.booking_id, "could not record a booking email");
        }
    }

    /// One attempt at one email, as an outcome to record.
    async fn attempt(&self, t: &Tenant, email: &BookingEmail) -> EmailOutcome {
        let Some(mailer) = &self.mailer else { return EmailOutcome::Skipped(NO_SMTP.into()) };
        if email.kind == EmailKind::Cancelled && email.sent_version.is_none() {
            return EmailOutcome::Skipped("cancelled before any invitation was sent".into());
        }
        let message = match self.compose(t, email, mailer).await {
            Ok(Some(message)) => message,
            Ok(None) => return EmailOutcome::Skipped("the booking no longer exists".into()),
            Err(e) => return self.retry(email, format!("could not read the booking: {e}")),
        };
        match mailer.send(&message).await {
            Ok(()) => EmailOutcome::Sent,
            Err(SendError::Transient(why)) => self.retry(email, why),
            Err(SendError::Permanent(why)) => EmailOutcome::Failed { error: why, retry_at: None },
        }
    }

    fn retry(&self, email: &BookingEmail, error: String) -> EmailOutcome {
        let wait = BACKOFF.get(email.attempts as usize);
        EmailOutcome::Failed {
            error,
            retry_at: wait.map(|w| self.clock.now().saturating_add(*w).unwrap_or(Timestamp::MAX)),
        }
    }

    /// The email for `email`'s recipient from the booking as it is now; `None` when the
    /// booking is gone.
    async fn compose(&self, t: &Tenant, email: &BookingEmail, mailer: &Mailer) -> StoreResult<Option<OutgoingEmail>> {
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
        Ok(Some(OutgoingEmail {
            to: Person { email: email.recipient.clone(), name: email.name.clone() },
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
            invite: Some((method, invitation.to_ics(self.clock.now()))),
        }))
    }

    /// The recipient's zone: a participant's own; the customer's is the business's, else the
    /// first participant's, else UTC.
    async fn zone_of(
        &self,
        t: &Tenant,
        email: &BookingEmail,
        booking: &Booking,
        business_zone: Option<&Zone>,
    ) -> StoreResult<Zone> {
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

fn outcome_label(outcome: &EmailOutcome) -> &'static str {
    match outcome {
        EmailOutcome::Sent => "sent",
        EmailOutcome::Skipped(_) => "skipped",
        EmailOutcome::Failed { retry_at: Some(_), .. } => "retry",
        EmailOutcome::Failed { retry_at: None, .. } => "failed",
    }
}
