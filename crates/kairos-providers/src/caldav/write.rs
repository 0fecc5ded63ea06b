//! Writing events back: PUT with preconditions (RFC 4791 §5.3.2, RFC 7232) so that a write
//! never silently replaces someone else's change, and DELETE.

use jiff::Timestamp;
use url::Url;

use super::draft::{self, resource_name, vcalendar};
use super::http::{Dav, Headers, canonical_path, encode_segment, failure, method, resolve};
use super::item::item;
use super::xml::{self, CALDAV, DAV};
use crate::{EventDraft, ProviderError, ProviderResult, RemoteItem};

const ICALENDAR: &str = "text/calendar; charset=utf-8";

/// An ETag as a precondition needs it: quoted (callers may hold it bare).
fn quoted(etag: &str) -> String {
    let etag = etag.trim();
    if etag.starts_with('"') || etag.starts_with("W/") { etag.to_string() } else { format!("\"{etag}\"") }
}

/// Creates the event under a name derived from its UID. A retried create finds its earlier
/// attempt (412 on `If-None-Match: *`) and updates it instead; an event with that UID stored
/// under another name (RFC 4791's `no-uid-conflict`) is updated where it is.
pub(crate) async fn create(
    dav: &Dav<'_>,
    collection: &Url,
    draft: &EventDraft,
    organizer: Option<&str>,
) -> ProviderResult<RemoteItem> {
    let url = collection
        .join(&encode_segment(&resource_name(&draft.uid)))
        .map_err(|e| ProviderError::Protocol(format!("no resource URL for the event: {e}")))?;
    let body = vcalendar(draft, organizer, 0, Timestamp::now());
    let headers = Headers { if_none_match: Some("*"), ..Headers::default() };
    let reply = dav.send(method("PUT"), &url, &headers, Some((ICALENDAR, body.clone()))).await?;
    if reply.is_success() {
        return finish(dav, &url, reply.etag, &body).await;
    }
    match reply.status {
        412 => {
            tracing::info!(%url, uid = %draft.uid, "the event exists already (a retried create?): updating it");
            update_at(dav, &url, draft, None, organizer, true).await
        }
        403 | 409 => {
            let Some(hrefs) = reply.precondition(CALDAV, "no-uid-conflict") else { return Err(failure(&reply)) };
            let existing = match hrefs.first().and_then(|h| resolve(collection, h)) {
                Some(url) => Some(url),
                None => find_by_uid(dav, collection, &draft.uid).await?,
            };
            let Some(existing) = existing else { return Err(failure(&reply)) };
            tracing::info!(url = %existing, uid = %draft.uid, "the event's UID is stored under another name: updating it");
            update_at(dav, &existing, draft, None, organizer, true).await
        }
        _ => Err(failure(&reply)),
    }
}

/// Replaces the event at `url`. With `expected`, only that version is replaced (else
/// [`ProviderError::Conflict`]); without it, whatever is there. `same_uid` refuses to replace
/// a resource that holds another event.
pub(crate) async fn update_at(
    dav: &Dav<'_>,
    url: &Url,
    draft: &EventDraft,
    expected: Option<&str>,
    organizer: Option<&str>,
    same_uid: bool,
) -> ProviderResult<RemoteItem> {
    // The stored version gives the SEQUENCE to raise (RFC 5545 §3.8.7.4) and the ETag that
    // makes the PUT conditional even when the caller has none.
    let current = dav.send(method("GET"), url, &Headers::default(), None).await?;
    if !current.is_success() {
        return Err(failure(&current));
    }
    if same_uid && draft::uid(&current.body).as_deref() != Some(draft.uid.as_str()) {
        tracing::warn!(%url, uid = %draft.uid, "a different event is stored under this event's name");
        return Err(ProviderError::Conflict);
    }
    let condition = match (expected, &current.etag) {
        (Some(expected), Some(now)) if quoted(expected) != quoted(now) => return Err(ProviderError::Conflict),
        (Some(expected), _) => quoted(expected),
        (None, Some(now)) => quoted(now),
        (None, None) => "*".to_string(),
    };
    let sequence = draft::sequence(&current.body).map_or(1, |s| s.saturating_add(1));
    let body = vcalendar(draft, organizer, sequence, Timestamp::now());
    let headers = Headers { if_match: Some(&condition), ..Headers::default() };
    let reply = dav.send(method("PUT"), url, &headers, Some((ICALENDAR, body.clone()))).await?;
    if !reply.is_success() {
        return Err(failure(&reply));
    }
    finish(dav, url, reply.etag, &body).await
}

/// Deletes the event; with `etag`, only that version. Already gone is not an error.
pub(crate) async fn delete(dav: &Dav<'_>, url: &Url, etag: Option<&str>) -> ProviderResult<()> {
    let condition = etag.map(quoted);
    let headers = Headers { if_match: condition.as_deref(), ..Headers::default() };
    let reply = dav.send(method("DELETE"), url, &headers, None).await?;
    match reply.status {
        200..=299 | 404 | 410 => Ok(()),
        _ => Err(failure(&reply)),
    }
}

/// The written item, with the ETag the PUT answered or, when the server did not send one
/// (RFC 4791 §5.3.4: it changed what it stored), the one it lists.
async fn finish(dav: &Dav<'_>, url: &Url, etag: Option<String>, body: &str) -> ProviderResult<RemoteItem> {
    let etag = match etag {
        Some(etag) => Some(etag),
        None => {
            let (base, answer) = dav.propfind(url, "0", &[xml::GETETAG]).await?;
            answer
                .responses
                .iter()
                .find(|r| resolve(&base, &r.href).is_some_and(|u| canonical_path(&u) == canonical_path(url)))
                .and_then(|r| r.text(DAV, "getetag"))
        }
    };
    item(&canonical_path(url), etag, body)
        .ok_or_else(|| ProviderError::Protocol("the written event has no VEVENT".to_string()))
}

/// The resource holding the VEVENT with `uid`, by calendar-query.
async fn find_by_uid(dav: &Dav<'_>, collection: &Url, uid: &str) -> ProviderResult<Option<Url>> {
    let reply = dav.read("REPORT", collection, Some("1"), &xml::calendar_query_uid(uid)).await?;
    let answer = reply.multistatus()?;
    Ok(answer
        .responses
        .iter()
        .filter(|r| r.status.is_none_or(|s| s == 200))
        .find_map(|r| resolve(&reply.url, &r.href))
        .filter(|u| canonical_path(u) != canonical_path(collection)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn etags_are_quoted_once() {
        assert_eq!(super::quoted("abc"), "\"abc\"");
        assert_eq!(super::quoted("\"abc\""), "\"abc\"");
        assert_eq!(super::quoted("W/\"abc\""), "W/\"abc\"");
    }
}
