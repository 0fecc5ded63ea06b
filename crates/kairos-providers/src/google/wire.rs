//! Calendar API v3 resources as they travel, in the fields Kairos reads or writes
//! (developers.google.com/workspace/calendar/api/v3/reference). int64 values come as JSON
//! strings in Google's discovery format; [`Int64`] takes strings and numbers alike.

use std::collections::HashMap;

use serde::{Deserialize, Deserializer, Serialize};

/// An int64 sent as a JSON string (Google's way) or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Int64(pub i64);

impl<'de> Deserialize<'de> for Int64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(i64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) => Ok(Int64(n)),
            Raw::Text(s) => s.parse().map(Int64).map_err(serde::de::Error::custom),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CalendarList {
    #[serde(default)]
    pub items: Vec<CalendarListEntry>,
    pub next_page_token: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CalendarListEntry {
    pub id: String,
    pub summary: Option<String>,
    pub summary_override: Option<String>,
    pub time_zone: Option<String>,
    #[serde(default)]
    pub primary: bool,
    pub access_role: Option<String>,
}

/// One page of `events.list`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Events {
    #[serde(default)]
    pub items: Vec<Event>,
    pub next_page_token: Option<String>,
    pub next_sync_token: Option<String>,
    /// The calendar's zone: what floating times and all-day dates mean.
    pub time_zone: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Event {
    pub id: String,
    pub etag: Option<String>,
    pub status: Option<String>,
    pub summary: Option<String>,
    pub description: Option<String>,
    pub location: Option<String>,
    pub start: Option<EventDateTime>,
    pub end: Option<EventDateTime>,
    #[serde(default)]
    pub recurrence: Vec<String>,
    pub recurring_event_id: Option<String>,
    pub original_start_time: Option<EventDateTime>,
    pub transparency: Option<String>,
    #[serde(default)]
    pub attendees: Vec<Attendee>,
    pub organizer: Option<Person>,
    pub hangout_link: Option<String>,
    pub conference_data: Option<ConferenceData>,
    pub sequence: Option<i64>,
    pub updated: Option<String>,
}

impl Event {
    pub fn cancelled(&self) -> bool {
        self.status.as_deref() == Some("cancelled")
    }
}

/// `{dateTime, timeZone?}` for timed events, `{date}` for all-day ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventDateTime {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Attendee {
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub response_status: Option<String>,
    #[serde(default)]
    pub resource: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Person {
    pub email: Option<String>,
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConferenceData {
    #[serde(default)]
    pub entry_points: Vec<EntryPoint>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EntryPoint {
    pub entry_point_type: Option<String>,
    pub uri: Option<String>,
}

/// The body of an insert, update or patch. `description: None` is sent as `null`, which
/// clears it on a patch.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventWrite {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub summary: String,
    pub description: Option<String>,
    pub start: EventDateTime,
    pub end: EventDateTime,
    pub attendees: Vec<AttendeeWrite>,
    /// `confirmed`: an update of a deleted event restores it.
    pub status: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AttendeeWrite {
    pub email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FreeBusyRequest {
    pub time_min: String,
    pub time_max: String,
    pub items: Vec<FreeBusyItem>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct FreeBusyItem {
    pub id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct FreeBusyResponse {
    #[serde(default)]
    pub calendars: HashMap<String, FreeBusyCalendar>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct FreeBusyCalendar {
    #[serde(default)]
    pub busy: Vec<TimePeriod>,
    #[serde(default)]
    pub errors: Vec<ErrorItem>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TimePeriod {
    pub start: String,
    pub end: String,
}

/// `events.watch` request.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WatchRequest {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub address: String,
    pub token: String,
    /// Milliseconds since the epoch, as an int64 string.
    pub expiration: String,
}

/// An `api#channel`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChannelResource {
    pub id: String,
    pub resource_id: Option<String>,
    pub expiration: Option<Int64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StopRequest {
    pub id: String,
    pub resource_id: String,
}

/// Google's error body: `{"error":{"code","message","errors":[{"domain","reason","message"}],"status"?}}`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ErrorDetail {
    pub message: Option<String>,
    #[serde(default)]
    pub errors: Vec<ErrorItem>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ErrorItem {
    pub domain: Option<String>,
    pub reason: Option<String>,
}

/// Google's client-chosen event ids use base32hex (`0-9a-v`), 5 to 1024 characters. The id of
/// an event Kairos writes is derived from the draft's uid, so a retried create meets its first
/// attempt (409) instead of duplicating it.
pub(crate) fn event_id_for(uid: &str) -> String {
    let direct = base32hex(uid.as_bytes());
    if (5..=1024).contains(&direct.len()) {
        return direct;
    }
    use sha2::Digest;
    base32hex(&sha2::Sha256::digest(uid.as_bytes()))
}

fn base32hex(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32hex_matches_rfc4648_vectors() {
        // RFC 4648 §10 (lower-cased, without padding).
        assert_eq!(base32hex(b"f"), "co");
        assert_eq!(base32hex(b"fo"), "cpng");
        assert_eq!(base32hex(b"foobar"), "cpnmuoj1e8");
    }

    #[test]
    fn event_ids_are_valid_and_stable() {
        let id = event_id_for("01JBOOKING7Q9");
        assert_eq!(id, event_id_for("01JBOOKING7Q9"));
        assert!(id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'v').contains(&b)));
        assert!((5..=1024).contains(&event_id_for("a").len()));
        assert!((5..=1024).contains(&event_id_for(&"x".repeat(2000)).len()));
    }

    #[test]
    fn int64_reads_strings_and_numbers() {
        let c: ChannelResource = serde_json::from_str(r#"{"id":"a","expiration":"1426325213000"}"#).unwrap();
        assert_eq!(c.expiration, Some(Int64(1_426_325_213_000)));
        let c: ChannelResource = serde_json::from_str(r#"{"id":"a","expiration":1426325213000}"#).unwrap();
        assert_eq!(c.expiration, Some(Int64(1_426_325_213_000)));
    }
}
