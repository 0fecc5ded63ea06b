//! `POST/PATCH/DELETE /v1/events`: writing events to a user's provider calendar on request.
//! The provider is the truth; the written item is also applied to what Kairos holds at once
//! (by making the connection due), so the events API and availability see it at the next sync.

use kairos_core::calendar::{Calendar, Event};
use kairos_providers::{Credentials, DraftAttendee, EventDraft, Provider, ProviderError, RemoteItem};
use kairos_store::{CalendarConnection, CalendarItem, CalendarRecord, StoreError, Tenant};

use crate::parsed::item_calendar_text;
use crate::provider_sync::{CredentialError, ProviderSync};

/// Why an event write could not be made, in the categories the API answers with.
#[derive(Debug, thiserror::Error)]
pub enum EventWriteError {
    /// `param` names no calendar or event of the user.
    #[error("{message}")]
    NotFound { param: &'static str, message: String },
    /// The calendar cannot be written (an ICS feed, or read-only on the provider).
    #[error("{0}")]
    ReadOnly(String),
    /// The user must connect the account again.
    #[error("the provider refused the connection's grant; connect the account again: {0}")]
    NeedsReauth(String),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<CredentialError> for EventWriteError {
    fn from(e: CredentialError) -> Self {
        match e {
            CredentialError::Reauth(why) => Self::NeedsReauth(why),
            CredentialError::Failed(why) => Self::Provider(ProviderError::Transport(why)),
            CredentialError::Store(e) => Self::Store(e),
        }
    }
}

/// A calendar to write to, with its connection.
pub struct Target {
    pub connection: CalendarConnection,
    pub calendar: CalendarRecord,
    remote_calendar: String,
}

/// One event as stored: the item it lives in and its reading.
pub struct Found {
    pub item: CalendarItem,
    pub event: Event,
}

impl ProviderSync {
    /// The calendar an event goes to: `calendar_id` (the user's, on a provider account), or
    /// the user's primary writable provider calendar.
    pub async fn event_target(
        &self,
        t: &Tenant,
        user_id: &str,
        calendar_id: Option<&str>,
    ) -> Result<Target, EventWriteError> {
        let calendars = self.store().calendars(t, Some(user_id)).await?;
        let calendar = match calendar_id {
            Some(id) => calendars.into_iter().find(|c| c.id == id).ok_or_else(|| EventWriteError::NotFound {
                param: "calendar_id",
                message: "The user has no calendar with this id; list them with GET /v1/calendars?user=….".into(),
            })?,
            None => {
                let mut writable: Vec<CalendarRecord> =
                    calendars.into_iter().filter(|c| c.writable && c.provider != "ics").collect();
                writable.sort_by_key(|c| (!c.primary, !c.selected, c.created_at));
                writable.into_iter().next().ok_or_else(|| EventWriteError::NotFound {
                    param: "user",
                    message: "The user has no writable calendar; connect Google, Microsoft or CalDAV first.".into(),
                })?
            }
        };
        if calendar.provider == "ics" || !calendar.writable {
            return Err(EventWriteError::ReadOnly(format!(
                "Calendar `{}` is read-only ({}); write to a Google, Microsoft or CalDAV calendar.",
                calendar.id,
                if calendar.provider == "ics" { "an ICS feed" } else { "the provider says so" }
            )));
        }
        let connection = self
            .store()
            .calendar_connections(t, Some(user_id))
            .await?
            .into_iter()
            .find(|c| c.id == calendar.connection_id)
            .ok_or(StoreError::NotFound)?;
        let remote_calendar = calendar.remote_id.clone().ok_or(StoreError::NotFound)?;
        Ok(Target { connection, calendar, remote_calendar })
    }

    /// The stored event with this UID in the calendar (its master, for a series).
    pub async fn find_event(&self, t: &Tenant, target: &Target, uid: &str) -> Result<Found, EventWriteError> {
        let needle = format!("UID:{uid}");
        for item in self.store().calendar_items(t, &target.calendar.id).await? {
            if !item.ical.contains(&needle) {
                continue;
            }
            let Ok(parsed) = Calendar::parse(&item_calendar_text(&item.ical)) else { continue };
            if let Some(event) = parsed.events.into_iter().find(|e| e.uid == uid && e.recurrence_id.is_none()) {
                return Ok(Found { item, event });
            }
        }
        Err(EventWriteError::NotFound {
            param: "id",
            message: "No such event in this calendar (it may not be synced yet); list events with GET /v1/events."
                .into(),
        })
    }

    /// Runs `write` with the connection's credentials, refreshing them once if the provider
    /// refuses them; then makes the connection due so Kairos reads the change back.
    pub async fn write_event<T, F, Fut>(&self, t: &Tenant, target: &Target, write: F) -> Result<T, EventWriteError>
    where
        F: Fn(std::sync::Arc<dyn Provider>, Credentials, String) -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let adapter = self.adapter(&target.connection).map_err(EventWriteError::ReadOnly)?;
        let mut credentials = self.credentials(t, &target.connection, false).await?;
        let mut refreshed = false;
        let result = loop {
            match write(adapter.clone(), credentials.clone(), target.remote_calendar.clone()).await {
                Err(ProviderError::Unauthorized(_)) if !refreshed && target.connection.provider != "caldav" => {
                    refreshed = true;
                    credentials = self.credentials(t, &target.connection, true).await?;
                }
                other => break other?,
            }
        };
        self.store().request_calendar_sync(t, &target.connection.id, self.clock().now()).await?;
        Ok(result)
    }
}

/// The draft of an event as stored, to change and write back.
pub fn draft_of_event(event: &Event, timezone: &str, floating: &jiff::tz::TimeZone) -> Option<EventDraft> {
    use kairos_core::calendar::EventTime;
    use kairos_core::calendar::event::EventEnd;
    let instant = |t: &EventTime| match t {
        EventTime::Zoned(z, _) => Some(z.timestamp()),
        EventTime::Floating(dt) => floating.to_ambiguous_zoned(*dt).compatible().ok().map(|z| z.timestamp()),
        EventTime::Date(_) => None,
    };
    let start = instant(&event.start)?;
    let end = match &event.end {
        Some(EventEnd::At(t)) => instant(t)?,
        Some(EventEnd::For(d)) if !d.negative => {
            start.checked_add(jiff::SignedDuration::from_hours(24 * d.days) + d.exact).ok()?
        }
        _ => start,
    };
    Some(EventDraft {
        uid: event.uid.clone(),
        title: event.summary.clone().unwrap_or_default(),
        description: event.description.clone(),
        start,
        end,
        timezone: match &event.start {
            EventTime::Zoned(z, _) => z.time_zone().iana_name().unwrap_or(timezone).to_string(),
            _ => timezone.to_string(),
        },
        attendees: event
            .attendees
            .iter()
            .map(|a| DraftAttendee { email: a.email.clone(), name: a.name.clone() })
            .collect(),
    })
}

/// The item a provider returned, read.
pub fn read_item(item: &RemoteItem) -> Option<Event> {
    Calendar::parse(&item_calendar_text(&item.ical)).ok()?.events.into_iter().find(|e| e.recurrence_id.is_none())
}
