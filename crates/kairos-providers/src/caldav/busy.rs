//! Busy time straight from the server: a calendar-query for the VEVENTs that overlap the
//! window (the server evaluates recurrence for the filter), expanded and judged here by the
//! calendar core's rules, so CalDAV busy time means what every other provider's does.
//!
//! RFC 4791's free-busy-query REPORT is not used: support for it is uneven, and its answer
//! cannot tell a declined or transparent event from a busy one the way the core's rules do.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use kairos_core::Interval;
use kairos_core::calendar::{BusyRules, Calendar, busy_intervals};
use url::Url;

use super::discovery::timezone;
use super::http::{Dav, canonical_path, resolve};
use super::item::item;
use super::xml::{self, CALDAV, DAV};
use crate::{ProviderError, ProviderResult};

fn utc(t: Timestamp) -> String {
    t.to_zoned(TimeZone::UTC).strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// The zone that places the calendar's all-day and floating events: its own, else UTC.
async fn zone_of(dav: &Dav<'_>, calendar: &Url) -> ProviderResult<TimeZone> {
    let (_, answer) = dav.propfind(calendar, "0", &[xml::TIMEZONE, xml::TIMEZONE_ID]).await?;
    let zone = answer
        .responses
        .first()
        .and_then(timezone)
        .and_then(|name| kairos_core::Zone::parse(&name).ok())
        .map(|z| z.tz().clone());
    Ok(zone.unwrap_or(TimeZone::UTC))
}

/// The merged busy intervals of `calendars` within `window`. `me` is the account's address,
/// so that events it declined do not count.
pub(crate) async fn busy(
    dav: &Dav<'_>,
    calendars: &[Url],
    window: Interval,
    me: Option<&str>,
) -> ProviderResult<Vec<Interval>> {
    let query = xml::calendar_query_time_range(&utc(window.start()), &utc(window.end()));
    // Tentative events hold time, as in Google's and Graph's own free/busy answers.
    let rules = BusyRules { email: me, tentative_is_busy: true };
    let mut all = Vec::new();
    for calendar in calendars {
        let zone = zone_of(dav, calendar).await?;
        let reply = dav.read("REPORT", calendar, Some("1"), &query).await?;
        let answer = reply.multistatus()?;
        let mut text = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n");
        for response in &answer.responses {
            let Some(url) = resolve(&reply.url, &response.href) else { continue };
            let Some(data) = response.prop(CALDAV, "calendar-data") else { continue };
            if let Some(item) = item(&canonical_path(&url), response.text(DAV, "getetag"), &data.text) {
                text.push_str(&item.ical);
            }
        }
        text.push_str("END:VCALENDAR\r\n");
        let parsed = Calendar::parse(&text)
            .map_err(|e| ProviderError::Protocol(format!("{calendar} answered unreadable calendar data: {e}")))?;
        for skipped in &parsed.skipped {
            tracing::warn!(%calendar, uid = ?skipped.uid, reason = %skipped.reason, "an event was skipped");
        }
        all.extend(busy_intervals(&parsed, window, &zone, &rules));
    }
    Ok(kairos_core::interval::merge(all))
}
