//! Google's error answers in the categories the caller acts on
//! (developers.google.com/workspace/calendar/api/guides/errors): 401 → credentials refused;
//! 410 `fullSyncRequired` → the sync token expired; 429, 403 `rateLimitExceeded` /
//! `userRateLimitExceeded` / `quotaExceeded` and 503 → rate limited, with `Retry-After`
//! (seconds or an HTTP date); 412 → a conditional write lost.

use std::time::Duration;

use jiff::Timestamp;

use super::wire::ErrorBody;
use crate::ProviderError;

/// The `errors[].reason` values that mean "slow down".
const RATE_LIMIT_REASONS: [&str; 3] = ["rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"];

/// Reads `Retry-After`: delay-seconds, or an HTTP date (a date in the past means now).
pub(crate) fn retry_after(value: &str, now: Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(value).ok()?;
    let wait = now.duration_until(at);
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// The error an unsuccessful answer means.
pub(crate) fn from_response(
    status: u16,
    retry_after_header: Option<&str>,
    body: &str,
    now: Timestamp,
) -> ProviderError {
    let parsed: Option<ErrorBody> = serde_json::from_str(body).ok();
    let reason =
        parsed.as_ref().and_then(|b| b.error.errors.first()).and_then(|e| e.reason.clone()).unwrap_or_default();
    let message = parsed
        .as_ref()
        .and_then(|b| b.error.message.clone())
        .unwrap_or_else(|| body.chars().take(200).collect::<String>());
    let rate_limited =
        || ProviderError::RateLimited { retry_after: retry_after_header.and_then(|v| retry_after(v, now)) };
    match status {
        401 => ProviderError::Unauthorized(message),
        410 if reason == "deleted" => ProviderError::NotFound(message),
        // fullSyncRequired, or updatedMinTooLongAgo: either way the cursor is no good.
        410 => ProviderError::CursorExpired,
        412 => ProviderError::Conflict,
        404 => ProviderError::NotFound(message),
        429 | 503 => rate_limited(),
        403 if RATE_LIMIT_REASONS.contains(&reason.as_str()) => rate_limited(),
        _ => ProviderError::Http { status, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().unwrap()
    }

    fn body(code: u16, domain: &str, reason: &str, message: &str) -> String {
        serde_json::json!({"error": {"errors": [{"domain": domain, "reason": reason, "message": message}],
                                     "code": code, "message": message}})
        .to_string()
    }

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        assert_eq!(retry_after("120", now()), Some(Duration::from_secs(120)));
        assert_eq!(retry_after("Wed, 01 May 2024 12:00:30 GMT", now()), Some(Duration::from_secs(30)));
        assert_eq!(retry_after("Wed, 01 May 2024 11:00:00 GMT", now()), Some(Duration::ZERO));
        assert_eq!(retry_after("soon", now()), None);
    }

    #[test]
    fn googles_errors_map_to_what_the_caller_does() {
        let gone = body(410, "calendar", "fullSyncRequired", "Sync token is no longer valid, a full sync is required.");
        assert_eq!(from_response(410, None, &gone, now()), ProviderError::CursorExpired);
        let deleted = body(410, "global", "deleted", "Resource has been deleted");
        assert!(matches!(from_response(410, None, &deleted, now()), ProviderError::NotFound(_)));
        let limited = body(403, "usageLimits", "userRateLimitExceeded", "User Rate Limit Exceeded");
        assert_eq!(
            from_response(403, Some("7"), &limited, now()),
            ProviderError::RateLimited { retry_after: Some(Duration::from_secs(7)) }
        );
        let forbidden = body(403, "calendar", "forbiddenForNonOrganizer", "Shared properties can only be changed…");
        assert!(matches!(from_response(403, None, &forbidden, now()), ProviderError::Http { status: 403, .. }));
        let rate = body(429, "usageLimits", "rateLimitExceeded", "Rate Limit Exceeded");
        assert_eq!(from_response(429, None, &rate, now()), ProviderError::RateLimited { retry_after: None });
        assert_eq!(
            from_response(503, Some("1"), "", now()),
            ProviderError::RateLimited { retry_after: Some(Duration::from_secs(1)) }
        );
        assert_eq!(from_response(412, None, "", now()), ProviderError::Conflict);
        let auth = body(401, "global", "authError", "Invalid Credentials");
        assert_eq!(from_response(401, None, &auth, now()), ProviderError::Unauthorized("Invalid Credentials".into()));
        assert_eq!(
            from_response(500, None, "oops", now()),
            ProviderError::Http { status: 500, message: "oops".into() }
        );
    }
}
