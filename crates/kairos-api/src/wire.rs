//! Small pieces of the wire format shared by several endpoints: times, emails, user
//! references, pagination, list and deletion shapes, and PATCH's "absent vs null".

use jiff::Timestamp;
use kairos_store::{PageRequest, UserRef};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;

/// An instant given as RFC 3339 with an offset or `Z`; kept to the millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time(pub Timestamp);

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_time(&text).map(Time).map_err(serde::de::Error::custom)
    }
}

/// Parses an RFC 3339 instant (offset or `Z` required), truncated to milliseconds.
pub fn parse_time(text: &str) -> Result<Timestamp, String> {
    let fix = "use RFC 3339 with an offset or Z, e.g. 2026-05-01T09:00:00Z or 2026-05-01T10:00:00-04:00";
    let looks_right = text.len() >= 20 && text.as_bytes().get(10).is_some_and(|b| matches!(b, b'T' | b't'));
    match text.parse::<Timestamp>() {
        Ok(t) if looks_right => {
            Timestamp::from_millisecond(t.as_millisecond()).map_err(|e| format!("`{text}` is out of range ({e})"))
        }
        Ok(_) => Err(format!("`{text}` is not a full date and time: {fix}")),
        Err(_) if text.len() == 19 || text.len() == 16 => {
            Err(format!("`{text}` has no offset, so the instant is ambiguous: {fix}"))
        }
        Err(_) => Err(format!("`{text}` is not a valid time: {fix}")),
    }
}

/// Checks and normalises an email address (lowercased).
pub fn email(param: &str, text: &str) -> Result<String, ApiError> {
    let trimmed = text.trim();
    let ok = trimmed.len() <= 254
        && !trimmed.contains(char::is_whitespace)
        && trimmed.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        });
    if ok {
        Ok(trimmed.to_ascii_lowercase())
    } else {
        Err(ApiError::invalid(param, format!("`{text}` is not an email address; send one like alice@example.com.")))
    }
}

/// Parses a participant: `user:alice@example.com`, a bare email, or a user id `usr_…`.
pub fn user_ref(param: &str, text: &str) -> Result<UserRef, ApiError> {
    let text = text.trim();
    if let Some(address) = text.strip_prefix("user:") {
        return email(param, address).map(UserRef::Email);
    }
    if text.starts_with("usr_") {
        return Ok(UserRef::Id(text.to_string()));
    }
    if text.contains('@') {
        return email(param, text).map(UserRef::Email);
    }
    Err(ApiError::invalid(
        param,
        format!("`{text}` is not a participant: use a user id (usr_…) or user:alice@example.com."),
    ))
}

/// `?limit=&cursor=` on every list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Pagination {
    /// 1 to 100; 20 when absent.
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl Pagination {
    pub fn page(&self) -> Result<PageRequest, ApiError> {
        let limit = match self.limit {
            None => 20,
            Some(n @ 1..=100) => n as usize,
            Some(n) => return Err(ApiError::invalid("limit", format!("limit must be between 1 and 100, not {n}."))),
        };
        Ok(PageRequest { limit, cursor: self.cursor.clone().filter(|c| !c.is_empty()) })
    }
}

/// What a DELETE returns.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    pub id: String,
    pub deleted: bool,
}

/// For PATCH bodies: absent → `None`, `null` → `Some(None)`, a value → `Some(Some(v))`.
pub fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Rejects `null` for a PATCH field that cannot be cleared.
pub fn required<T>(param: &str, value: Option<Option<T>>) -> Result<Option<T>, ApiError> {
    match value {
        Some(None) => {
            Err(ApiError::invalid(param, format!("`{param}` cannot be null; omit it to leave it unchanged.")))
        }
        Some(Some(v)) => Ok(Some(v)),
        None => Ok(None),
    }
}

/// Refuses dated overrides that name a time the clocks skip on that date (see
/// [`Schedule::override_gap`]).
pub fn check_overrides(schedule: &kairos_core::Schedule) -> Result<(), ApiError> {
    match schedule.override_gap() {
        None => Ok(()),
        Some(gap) => Err(ApiError::invalid(
            format!("date_overrides.{}[{}].{}", gap.date, gap.index, gap.field),
            format!("{gap}."),
        )),
    }
}

/// The same check inside a store edit (the merged record is only known there).
pub fn check_overrides_in_edit(schedule: &kairos_core::Schedule) -> kairos_store::StoreResult<()> {
    check_overrides(schedule).map_err(ApiError::into_edit_refusal)
}

/// Checks an optional count of minutes against a range.
pub fn minutes_in(param: &str, value: u32, max: u32) -> Result<u32, ApiError> {
    if value <= max {
        Ok(value)
    } else {
        Err(ApiError::invalid(param, format!("`{param}` must be between 0 and {max} minutes, not {value}.")))
    }
}

/// Trims free text and checks its length; empty becomes absent.
pub fn text(param: &str, value: Option<String>, max: usize) -> Result<Option<String>, ApiError> {
    match value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
        Some(v) if v.chars().count() > max => {
            Err(ApiError::invalid(param, format!("`{param}` is longer than {max} characters; shorten it.")))
        }
        other => Ok(other),
    }
}

/// Like [`text`], for a single line that goes into email subjects and headers too: control
/// characters (line breaks included) are refused.
pub fn line(param: &str, value: Option<String>, max: usize) -> Result<Option<String>, ApiError> {
    let value = text(param, value, max)?;
    if value.as_deref().is_some_and(|v| v.chars().any(char::is_control)) {
        return Err(ApiError::invalid(param, format!("`{param}` must be one line without control characters.")));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_need_an_offset() {
        assert_eq!(parse_time("2026-05-01T10:00:00-04:00").unwrap().to_string(), "2026-05-01T14:00:00Z");
        assert_eq!(parse_time("2026-05-01T10:00:00.123456Z").unwrap().to_string(), "2026-05-01T10:00:00.123Z");
        assert!(parse_time("2026-05-01T10:00:00").unwrap_err().contains("no offset"));
        assert!(parse_time("2026-05-01").is_err());
        assert!(parse_time("tomorrow").is_err());
    }

    #[test]
    fn participants_are_ids_or_emails() {
        assert_eq!(user_ref("p", "user:Alice@Example.com").unwrap(), UserRef::Email("alice@example.com".into()));
        assert_eq!(user_ref("p", "usr_01abc").unwrap(), UserRef::Id("usr_01abc".into()));
        assert_eq!(user_ref("p", "bob@example.com").unwrap(), UserRef::Email("bob@example.com".into()));
        assert!(user_ref("p", "user:nope").is_err());
        assert!(user_ref("p", "alice").is_err());
    }
}
