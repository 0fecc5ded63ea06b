//! Microsoft Graph's JSON, as far as the adapter reads and writes it
//! (learn.microsoft.com/graph/api/resources/event, …/calendar, …/subscription,
//! …/patternedrecurrence). Reading is lenient: absent and `null` properties are `None`.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use kairos_core::calendar::timezone::windows_to_iana;
use serde::{Deserialize, Serialize};

/// A page of a collection: `value`, and `@odata.nextLink` / `@odata.deltaLink`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Page<T> {
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    pub next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink")]
    pub delta_link: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Calendar {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub is_default_calendar: Option<bool>,
    #[serde(default)]
    pub can_edit: Option<bool>,
}

/// `dateTimeTimeZone`: a wall-clock time and the zone (Windows or IANA name) it is in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DateTimeTimeZone {
    pub date_time: String,
    #[serde(default)]
    pub time_zone: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ItemBody {
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub content: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct EmailAddress {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ResponseStatus {
    #[serde(default)]
    pub response: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Attendee {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub status: Option<ResponseStatus>,
    #[serde(default)]
    pub email_address: Option<EmailAddress>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Recipient {
    #[serde(default)]
    pub email_address: Option<EmailAddress>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Location {
    #[serde(default)]
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OnlineMeeting {
    #[serde(default)]
    pub join_url: Option<String>,
}

/// `recurrencePattern`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RecurrencePattern {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub interval: Option<i64>,
    #[serde(default)]
    pub days_of_week: Option<Vec<String>>,
    #[serde(default)]
    pub day_of_month: Option<i64>,
    #[serde(default)]
    pub month: Option<i64>,
    #[serde(default)]
    pub first_day_of_week: Option<String>,
    #[serde(default)]
    pub index: Option<String>,
}

/// `recurrenceRange`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RecurrenceRange {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub start_date: Option<String>,
    #[serde(default)]
    pub end_date: Option<String>,
    #[serde(default)]
    pub number_of_occurrences: Option<i64>,
    #[serde(default)]
    pub recurrence_time_zone: Option<String>,
}

/// `patternedRecurrence`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct PatternedRecurrence {
    #[serde(default)]
    pub pattern: Option<RecurrencePattern>,
    #[serde(default)]
    pub range: Option<RecurrenceRange>,
}

/// An event, an instance of a calendar view, or a `@removed` stub from a delta query.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Event {
    #[serde(default)]
    pub id: String,
    #[serde(default, rename = "@odata.etag")]
    pub etag: Option<String>,
    #[serde(default, rename = "@removed")]
    pub removed: Option<serde_json::Value>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub body: Option<ItemBody>,
    #[serde(default)]
    pub body_preview: Option<String>,
    #[serde(default)]
    pub start: Option<DateTimeTimeZone>,
    #[serde(default)]
    pub end: Option<DateTimeTimeZone>,
    #[serde(default)]
    pub original_start_time_zone: Option<String>,
    #[serde(default)]
    pub original_start: Option<String>,
    #[serde(default)]
    pub is_all_day: Option<bool>,
    #[serde(default)]
    pub is_cancelled: Option<bool>,
    #[serde(default)]
    pub show_as: Option<String>,
    #[serde(default)]
    pub series_master_id: Option<String>,
    #[serde(default)]
    pub recurrence: Option<PatternedRecurrence>,
    #[serde(default)]
    pub attendees: Option<Vec<Attendee>>,
    #[serde(default)]
    pub organizer: Option<Recipient>,
    #[serde(default)]
    pub location: Option<Location>,
    #[serde(default)]
    pub online_meeting: Option<OnlineMeeting>,
    #[serde(default)]
    pub online_meeting_url: Option<String>,
    #[serde(default)]
    pub last_modified_date_time: Option<String>,
}

impl Event {
    pub fn all_day(&self) -> bool {
        self.is_all_day.unwrap_or(false)
    }
}

/// A subscription as Graph answers it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Subscription {
    pub id: String,
    pub expiration_date_time: String,
}

/// Graph's error body `{"error":{"code","message"}}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub error: Option<ErrorDetail>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ErrorDetail {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// A zone as Graph names it: IANA first, then Windows names (CLDR's table in kairos-core).
pub(crate) fn zone(name: &str) -> Option<TimeZone> {
    let name = name.trim();
    if let Ok(z) = kairos_core::Zone::parse(name) {
        return Some(z.tz().clone());
    }
    windows_to_iana(name).and_then(|iana| kairos_core::Zone::parse(iana).ok()).map(|z| z.tz().clone())
}

/// Graph's `dateTime` (`2026-03-15T12:00:00.0000000`; a stray `Z` is tolerated).
pub(crate) fn local(value: &str) -> Option<DateTime> {
    let v = value.trim().trim_end_matches(['Z', 'z']);
    v.parse::<DateTime>().ok()
}

/// The instant a `dateTimeTimeZone` stands for (`UTC` when no zone is given).
pub(crate) fn instant(t: &DateTimeTimeZone) -> Option<Timestamp> {
    let tz = zone(t.time_zone.as_deref().unwrap_or("UTC"))?;
    tz.to_ambiguous_zoned(local(&t.date_time)?).compatible().ok().map(|z| z.timestamp())
}

/// A `DateTimeOffset` property (`2026-03-15T12:00:00Z`, fractional seconds allowed).
pub(crate) fn offset_instant(value: &str) -> Option<Timestamp> {
    value.trim().parse::<Timestamp>().ok()
}
