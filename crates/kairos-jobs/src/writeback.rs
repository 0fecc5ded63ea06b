//! Write-back: a confirmed booking becomes an event on each participant's own calendar
//! (their primary writable one), a reschedule updates it, a cancellation deletes it. The
//! booking transaction queued the write (so a crash cannot lose it); this worker claims due
//! writes under a lease, calls the provider, and records the outcome, retrying failures on a
//! backoff. Kairos's booking is the source of truth: a conflicting edit on the provider's side
//! is overwritten.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jiff::SignedDuration;
use kairos_core::Booking;
use kairos_providers::{Credentials, DraftAttendee, EventDraft, Provider, ProviderError, RemoteItem};
use kairos_store::{CalendarWrite, Clock, Store, StoreError, Tenant, WriteOutcome};

use crate::provider_sync::{CredentialError, ProviderSync};

/// Delays before the 2nd, 3rd, … attempt; then the write is `failed`.
pub const BACKOFF: [SignedDuration; 5] = [
    SignedDuration::from_secs(60),
    SignedDuration::from_secs(5 * 60),
    SignedDuration::from_secs(30 * 60),
    SignedDuration::from_secs(2 * 3600),
    SignedDuration::from_secs(6 * 3600),
];
const LEASE: SignedDuration = SignedDuration::from_secs(120);
const BATCH: usize = 16;

/// The write-back worker.
#[derive(Clone)]
pub struct WriteBack {
    sync: ProviderSync,
    store: Arc<dyn Store>,
    clock: Clock,
    poll: Duration,
}

impl WriteBack {
    pub fn new(sync: ProviderSync, store: Arc<dyn Store>, clock: Clock) -> Self {
        Self { sync, store, clock, poll: Duration::from_millis(500) }
    }

    /// Claims and writes what is due until `shutdown`.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(self.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.drain().await {
                tracing::error!(error = %e, "calendar write-back failed");
            }
        }
    }

    /// Writes everything due now; returns how many writes were attempted.
    pub async fn drain(&self) -> Result<usize, StoreError> {
        let mut done = 0;
        loop {
            let claimed = self.store.claim_calendar_writes(self.clock.now(), LEASE, BATCH).await?;
            if claimed.is_empty() {
                return Ok(done);
            }
            done += claimed.len();
            let tasks: Vec<_> = claimed
                .into_iter()
                .map(|(t, w)| {
                    let this = self.clone();
                    tokio::spawn(async move { this.write(&t, &w).await })
                })
                .collect();
            for task in tasks {
                match task.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "recording a calendar write failed"),
                    Err(e) => tracing::error!(error = %e, "a calendar write panicked"),
                }
            }
        }
    }

    async fn write(&self, t: &Tenant, w: &CalendarWrite) -> Result<(), StoreError> {
        let outcome = match self.attempt(t, w).await {
            Ok(written) => written,
            Err(Attempt::Store(e)) => return Err(e),
            Err(Attempt::Retry { error, after }) => {
                let now = self.clock.now();
                let after = after.or_else(|| BACKOFF.get(w.attempts as usize).copied());
                WriteOutcome::Failed { error, retry_at: after.and_then(|d| now.checked_add(d).ok()) }
            }
            Err(Attempt::GiveUp(error)) => WriteOutcome::Failed { error, retry_at: None },
        };
        let label = match &outcome {
            WriteOutcome::Written { .. } => "written",
            WriteOutcome::Failed { retry_at: Some(_), .. } => "retry",
            WriteOutcome::Failed { retry_at: None, .. } => "failed",
        };
        metrics::counter!("kairos_calendar_writes_total", "outcome" => label).increment(1);
        if !self.store.record_calendar_write(t, w, &outcome, self.clock.now()).await? {
            // The lease lapsed and another worker claimed the write meanwhile: its outcome will
            // stand, not this one.
            tracing::warn!(booking = %w.booking_id, user = %w.user_id, outcome = label,
                "a calendar write outlived its lease; its outcome was not recorded");
        }
        Ok(())
    }

    async fn attempt(&self, t: &Tenant, w: &CalendarWrite) -> Result<WriteOutcome, Attempt> {
        let conn =
            self.store.calendar_connections(t, Some(&w.user_id)).await?.into_iter().find(|c| c.id == w.connection_id);
        let Some(conn) = conn else { return Err(Attempt::GiveUp("the calendar was disconnected".into())) };
        let calendar = self.store.calendars(t, Some(&w.user_id)).await?.into_iter().find(|c| c.id == w.calendar_id);
        let Some(remote_calendar) = calendar.and_then(|c| c.remote_id) else {
            return Err(Attempt::GiveUp("the calendar is gone".into()));
        };
        let adapter = self.sync.adapter(&conn).map_err(Attempt::GiveUp)?;
        let mut credentials = self.sync.credentials(t, &conn, false).await?;
        if !w.present {
            let Some(remote_id) = &w.remote_id else {
                return Ok(WriteOutcome::Written { remote_id: None, etag: None });
            };
            let mut refreshed = false;
            loop {
                match adapter.delete_event(&credentials, &remote_calendar, remote_id, None).await {
                    Ok(()) | Err(ProviderError::NotFound(_)) => {
                        return Ok(WriteOutcome::Written { remote_id: None, etag: None });
                    }
                    Err(ProviderError::Unauthorized(_)) if !refreshed && conn.provider != "caldav" => {
                        refreshed = true;
                        credentials = self.sync.credentials(t, &conn, true).await?;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let Some(booking) = self.store.booking(t, &w.booking_id).await? else {
            return Err(Attempt::GiveUp("the booking is gone".into()));
        };
        let Some(user) = self.store.user(t, &w.user_id).await? else {
            return Err(Attempt::GiveUp("the user is gone".into()));
        };
        let draft = draft_of(&booking, &w.user_id, user.schedule.timezone.name());
        let mut refreshed = false;
        loop {
            match upsert(&*adapter, &credentials, &remote_calendar, w, &draft).await {
                Ok(item) => return Ok(WriteOutcome::Written { remote_id: Some(item.id), etag: item.etag }),
                Err(ProviderError::Unauthorized(_)) if !refreshed && conn.provider != "caldav" => {
                    refreshed = true;
                    credentials = self.sync.credentials(t, &conn, true).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Creates the event, or updates the one written before (ours wins over edits made on the
/// provider; an event deleted there is made again).
async fn upsert(
    adapter: &dyn Provider,
    credentials: &Credentials,
    calendar: &str,
    w: &CalendarWrite,
    draft: &EventDraft,
) -> Result<RemoteItem, ProviderError> {
    let Some(remote_id) = &w.remote_id else { return adapter.create_event(credentials, calendar, draft).await };
    match adapter.update_event(credentials, calendar, remote_id, w.etag.as_deref(), draft).await {
        Err(ProviderError::Conflict) => adapter.update_event(credentials, calendar, remote_id, None, draft).await,
        Err(ProviderError::NotFound(_)) => adapter.create_event(credentials, calendar, draft).await,
        other => other,
    }
}

/// The event a booking becomes on `owner`'s calendar: the other participants and the
/// customer are its attendees.
pub fn draft_of(booking: &Booking, owner: &str, timezone: &str) -> EventDraft {
    let mut attendees: Vec<DraftAttendee> = booking
        .participants
        .iter()
        .filter(|p| p.id != owner)
        .map(|p| DraftAttendee { email: p.email.clone(), name: p.name.clone() })
        .collect();
    if let Some(email) = &booking.customer_email
        && !attendees.iter().any(|a| a.email.eq_ignore_ascii_case(email))
    {
        attendees.push(DraftAttendee { email: email.clone(), name: booking.customer_name.clone() });
    }
    let description = match (&booking.description, &booking.notes) {
        (Some(d), Some(n)) => Some(format!("{d}\n\n{n}")),
        (d, n) => d.clone().or_else(|| n.clone()),
    };
    EventDraft {
        uid: format!("{}@kairos", booking.id),
        title: booking.title.clone(),
        description,
        start: booking.start_time,
        end: booking.end_time,
        timezone: timezone.to_string(),
        attendees,
    }
}

enum Attempt {
    Retry { error: String, after: Option<SignedDuration> },
    GiveUp(String),
    Store(StoreError),
}

impl From<StoreError> for Attempt {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<CredentialError> for Attempt {
    fn from(e: CredentialError) -> Self {
        match e {
            // Retried on the backoff: a reconnection within it lets the write through.
            CredentialError::Reauth(why) => {
                Self::Retry { error: format!("the user must reconnect: {why}"), after: None }
            }
            CredentialError::Failed(why) => Self::Retry { error: why, after: None },
            CredentialError::Store(e) => Self::Store(e),
        }
    }
}

impl From<ProviderError> for Attempt {
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::RateLimited { retry_after } => {
                Self::Retry { error: e.to_string(), after: retry_after.and_then(|d| SignedDuration::try_from(d).ok()) }
            }
            other => Self::Retry { error: other.to_string(), after: None },
        }
    }
}
