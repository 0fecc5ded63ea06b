//! Finding an account's calendars (RFC 4791 §6, RFC 5397, RFC 6764): from the URL the person
//! gave — a server root, a principal, a calendar home or one calendar — or from the server's
//! `/.well-known/caldav`, to the current user's principal, its calendar homes, and the event
//! calendars in them.

use url::Url;

use super::http::{Dav, as_collection, canonical_path, resolve};
use super::xml::{self, CALDAV, DAV, Response};
use crate::{ProviderError, ProviderResult, RemoteCalendar};

/// Everything asked of a candidate URL at once: enough to tell a calendar, a home or a
/// principal, and to describe a calendar.
const PROBE: [xml::Prop; 10] = [
    xml::RESOURCETYPE,
    xml::PRINCIPAL,
    xml::HOME_SET,
    xml::DISPLAYNAME,
    xml::CTAG,
    xml::SYNC_TOKEN,
    xml::PRIVILEGES,
    xml::COMPONENTS,
    xml::TIMEZONE,
    xml::TIMEZONE_ID,
];

const COLLECTION: [xml::Prop; 8] = [
    xml::RESOURCETYPE,
    xml::DISPLAYNAME,
    xml::CTAG,
    xml::SYNC_TOKEN,
    xml::PRIVILEGES,
    xml::COMPONENTS,
    xml::TIMEZONE,
    xml::TIMEZONE_ID,
];

/// What a candidate URL turned out to be.
enum Found {
    Calendar(RemoteCalendar),
    Homes(Vec<Url>),
    Nothing,
}

/// The account's event calendars. The first writable one is marked primary: CalDAV has no
/// such notion, and Kairos needs a default for new events.
pub(crate) async fn list(dav: &Dav<'_>, account: &Url) -> ProviderResult<Vec<RemoteCalendar>> {
    let well_known = account
        .join("/.well-known/caldav")
        .map_err(|e| ProviderError::Protocol(format!("{account} cannot be a CalDAV URL: {e}")))?;
    // A bare server root is most likely not the DAV root itself (RFC 6764 §5).
    let candidates = if account.path() == "/" { [well_known, account.clone()] } else { [account.clone(), well_known] };
    let mut why = Vec::new();
    for candidate in candidates {
        let found = match probe(dav, &candidate).await {
            Ok(found) => found,
            Err(
                e @ (ProviderError::Unauthorized(_) | ProviderError::Transport(_) | ProviderError::RateLimited { .. }),
            ) => {
                return Err(e);
            }
            Err(e) => {
                why.push(format!("{candidate}: {e}"));
                continue;
            }
        };
        match found {
            Found::Calendar(calendar) => return Ok(vec![RemoteCalendar { primary: calendar.writable, ..calendar }]),
            Found::Homes(homes) => return calendars(dav, &homes).await,
            Found::Nothing => why.push(format!("{candidate}: no calendar, calendar home or principal")),
        }
    }
    Err(ProviderError::Protocol(format!("{account} is not a CalDAV server ({})", why.join("; "))))
}

async fn probe(dav: &Dav<'_>, candidate: &Url) -> ProviderResult<Found> {
    let (url, answer) = dav.propfind(candidate, "0", &PROBE).await?;
    let own = answer
        .responses
        .iter()
        .find(|r| resolve(&url, &r.href).is_some_and(|u| canonical_path(&u) == canonical_path(&url)))
        .or(answer.responses.first());
    let Some(own) = own else { return Ok(Found::Nothing) };
    if is_calendar(own) {
        return Ok(calendar(&url, own).map_or(Found::Nothing, Found::Calendar));
    }
    let own_homes = homes(&url, own)?;
    if !own_homes.is_empty() {
        return Ok(Found::Homes(own_homes));
    }
    let Some(principal) = own.prop(DAV, "current-user-principal").and_then(|p| p.href()) else {
        return Ok(Found::Nothing);
    };
    let principal = same_origin_href(&url, &principal)?;
    let (url, answer) = dav.propfind(&principal, "0", &[xml::HOME_SET]).await?;
    let found = match answer.responses.first() {
        Some(response) => homes(&url, response)?,
        None => Vec::new(),
    };
    Ok(if found.is_empty() { Found::Nothing } else { Found::Homes(found) })
}

fn same_origin_href(base: &Url, href: &str) -> ProviderResult<Url> {
    resolve(base, href).ok_or_else(|| {
        ProviderError::Protocol(format!("{base} points to {href}, on another origin: only one origin is followed"))
    })
}

fn homes(base: &Url, response: &Response) -> ProviderResult<Vec<Url>> {
    let Some(set) = response.prop(CALDAV, "calendar-home-set") else { return Ok(Vec::new()) };
    set.children_named(DAV, "href").map(|h| same_origin_href(base, h.text.trim()).map(as_collection)).collect()
}

fn is_calendar(response: &Response) -> bool {
    response.prop(DAV, "resourcetype").is_some_and(|t| t.child(CALDAV, "calendar").is_some())
}

/// The event calendars of the homes, in the servers' order, each once.
async fn calendars(dav: &Dav<'_>, homes: &[Url]) -> ProviderResult<Vec<RemoteCalendar>> {
    let mut out: Vec<RemoteCalendar> = Vec::new();
    for home in homes {
        let (url, answer) = dav.propfind(home, "1", &COLLECTION).await?;
        for response in answer.responses.iter().filter(|r| is_calendar(r)) {
            let Some(calendar) = calendar(&url, response) else { continue };
            if !out.iter().any(|c| c.id == calendar.id) {
                out.push(calendar);
            }
        }
    }
    if let Some(first) = out.iter_mut().find(|c| c.writable) {
        first.primary = true;
    }
    Ok(out)
}

/// A calendar collection as Kairos lists it; `None` when it cannot hold events or lives
/// elsewhere.
fn calendar(base: &Url, response: &Response) -> Option<RemoteCalendar> {
    let url = as_collection(resolve(base, &response.href)?);
    if let Some(set) = response.prop(CALDAV, "supported-calendar-component-set") {
        let events = set
            .children_named(CALDAV, "comp")
            .any(|c| c.attr("name").is_some_and(|n| n.eq_ignore_ascii_case("VEVENT")));
        if !events {
            return None;
        }
    }
    let name = response.text(DAV, "displayname").unwrap_or_else(|| {
        let last = url.path_segments().and_then(|mut s| s.rfind(|s| !s.is_empty())).unwrap_or_default();
        percent_encoding::percent_decode_str(last).decode_utf8_lossy().into_owned()
    });
    // Without the property the server does not say; writes will tell.
    let writable = response.prop(DAV, "current-user-privilege-set").is_none_or(|set| {
        set.children_named(DAV, "privilege")
            .flat_map(|p| p.children.iter())
            .any(|p| p.ns == DAV && matches!(p.name.as_str(), "all" | "write" | "write-content" | "bind"))
    });
    Some(RemoteCalendar { id: url.to_string(), name, primary: false, writable, timezone: timezone(response) })
}

/// The calendar's zone: RFC 7809's `calendar-timezone-id`, else the TZID of the VTIMEZONE in
/// `calendar-timezone`, when it names a zone Kairos knows.
pub(crate) fn timezone(response: &Response) -> Option<String> {
    let known = |name: &str| kairos_core::Zone::parse(name.trim()).ok().map(|z| z.name().to_string());
    if let Some(id) = response.text(CALDAV, "calendar-timezone-id").and_then(|id| known(&id)) {
        return Some(id);
    }
    let text = response.text(CALDAV, "calendar-timezone")?;
    kairos_core::calendar::ical::unfold(&text)
        .into_iter()
        .find_map(|(_, line)| line.strip_prefix("TZID:").map(str::to_string))
        .and_then(|tzid| known(&tzid))
}
