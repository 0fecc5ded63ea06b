//! The public pages of a booking link, for visitors without a key: `GET /l/{slug}` (a week of
//! open times in the visitor's zone), `GET /l/{slug}/book` (the form for a name and email),
//! `POST /l/{slug}/book` (the booking, or Stripe Checkout for a priced business) and
//! `GET /l/{slug}/booked/{id}` (the confirmation, behind a signature); `payment` is where
//! Stripe sends the visitor back (`/pay/done`, `/pay/cancelled`).
//!
//! Slots come from the same search as `GET /v1/availability/slots` and bookings from the same
//! `Store::create_booking` as `POST /v1/bookings`, so a page never offers or takes a time the
//! API would refuse. A page shows the link's title, its duration, the hosts' display names,
//! the price of a priced business (before the visitor is sent to pay) and the open times:
//! never emails, ids, the account or the business's rules. Rate limits and the CSRF cookie
//! live in [`crate::public`]; the templates in `templates/pages/`.

mod form;
pub mod payment;
mod price;
pub mod respond;
mod view;
mod week;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use jiff::{SignedDuration, Timestamp};
use kairos_core::availability::Mode;
use kairos_core::plan::{Ask, Party};
use kairos_core::{BookingStatus, Interval, Link, Zone};
use kairos_store::{BookingError, NewBooking, Tenant, UserRef, Who};
use serde::Serialize;

use crate::AppState;
use crate::public;
use week::{Day, Week};

/// 429, for the rate limiter.
pub(crate) fn too_many_requests(seconds: u64) -> Response {
    view::message(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many requests",
        &format!("That was a lot of requests in a short time. Please wait {seconds} seconds, then try again."),
        None,
    )
}

/// `GET /l/{slug}?week=YYYY-MM-DD&tz=Area/City`: the week's open times.
pub async fn week_page(State(state): State<AppState>, Path(slug): Path<String>, RawQuery(query): RawQuery) -> Response {
    let (t, link) = match open(&state, &slug).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let (zone, notice) = match visitor_zone(&state, &t, &link, param(&query, "tz").as_deref()).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let detect_zone = param(&query, "tz").is_none();
    let shown = Shown { zone_notice: notice, detect_zone, taken: false };
    show_week(&state, &t, &link, &zone, param(&query, "week").as_deref(), shown).await
}

/// `GET /l/{slug}/book?start=…&tz=…`: the form for one open time.
pub async fn form(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let (t, link) = match open(&state, &slug).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let (zone, _) = match visitor_zone(&state, &t, &link, param(&query, "tz").as_deref()).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Some(slot) = param(&query, "start").and_then(|s| slot(&link, &s)) else { return unreadable_time(&link) };
    let now = state.clock.now();
    let party = match state.store.load_party(&t, &who(&link), slot, now).await {
        Ok(party) => party,
        Err(e) => return party_failed(e),
    };
    if !offered(&party, &link, slot, now) {
        return show_week(&state, &t, &link, &zone, Some(&local_date(slot, &zone)), Shown::TAKEN).await;
    }
    let csrf = public::csrf_token(&headers);
    let mut response = form::page(
        StatusCode::OK,
        &link,
        &party,
        &zone,
        slot,
        &csrf,
        &form::BookForm::default(),
        &form::FieldErrors::default(),
    );
    response
        .headers_mut()
        .append(header::SET_COOKIE, public::csrf_cookie(&csrf, "/l/", state.public_url.scheme() == "https"));
    response
}

/// `POST /l/{slug}/book`: books the time, then sends the visitor on to the confirmation (or
/// to Stripe to pay); a time taken meanwhile shows the week again with what is still open.
pub async fn book(State(state): State<AppState>, Path(slug): Path<String>, headers: HeaderMap, body: Body) -> Response {
    let (t, link) = match open(&state, &slug).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let back = week_href(&link.slug, None, None);
    let form = match form::read(body, &back).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    if !public::csrf_matches(&headers, Some(&form.csrf)) {
        return view::message(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "For your security, a booking has to be sent from the booking page it was started on. \
             Open the booking page again, pick a time, and send the form once more.",
            Some((&back, "Back to the booking page")),
        );
    }
    let (zone, _) = match visitor_zone(&state, &t, &link, Some(&form.tz)).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Some(slot) = slot(&link, &form.start) else { return unreadable_time(&link) };
    let now = state.clock.now();
    let party = match state.store.load_party(&t, &who(&link), slot, now).await {
        Ok(party) => party,
        Err(e) => return party_failed(e),
    };
    let business = party.business.clone();
    if state.payments.is_none() && business.as_ref().is_some_and(|b| b.price_amount.is_some()) {
        // As the API does (409 payments_not_configured): a hold nobody can pay would only
        // block the time.
        return view::message(
            StatusCode::CONFLICT,
            "Online booking is not available",
            "This booking needs a payment, and online payment is not set up yet. Please contact the organiser to book.",
            None,
        );
    }
    if !offered(&party, &link, slot, now) {
        return show_week(&state, &t, &link, &zone, Some(&local_date(slot, &zone)), Shown::TAKEN).await;
    }
    let visitor = match form::check(&form) {
        Ok(visitor) => visitor,
        Err(errors) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return form::page(status, &link, &party, &zone, slot, &form.csrf, &form, &errors);
        }
    };
    let new = NewBooking {
        who: who(&link),
        mode: Mode::Collective,
        interval: slot,
        customer_name: Some(visitor.name),
        customer_email: Some(visitor.email),
        // The zone the visitor chose (detected or picked) and saw the times in: their emails
        // show the same. Without one, the default applies (not a guess stored as a choice).
        customer_timezone: Zone::parse(&form.tz).ok().map(|z| z.name().to_string()),
        title: Some(link.title.clone()),
        notes: visitor.notes,
        description: None,
        metadata: serde_json::Map::new(),
        payment_holds: state.payments.is_some(),
    };
    let booking = match state.store.create_booking(&t, &new, now).await {
        Ok(booking) => booking,
        Err(BookingError::Unavailable(_)) => {
            return show_week(&state, &t, &link, &zone, Some(&local_date(slot, &zone)), Shown::TAKEN).await;
        }
        Err(e) => return party_failed(e),
    };
    metrics::counter!("kairos_bookings_created_total").increment(1);
    let business_name = business.as_ref().map(|b| b.name.as_str());
    next_step(&state, &t, &link, booking, business_name, &zone).await
}

/// Where a new booking sends the visitor: Stripe Checkout for a payment hold (as
/// `POST /v1/bookings` opens it), else the confirmation.
async fn next_step(
    state: &AppState,
    t: &Tenant,
    link: &Link,
    booking: kairos_core::Booking,
    business_name: Option<&str>,
    zone: &Zone,
) -> Response {
    let booking = match (&state.payments, booking.status) {
        (Some(payments), BookingStatus::PendingPayment) => {
            match super::payments::open_checkout_from(state, payments, t, booking, business_name, Some(&link.slug))
                .await
            {
                Ok(held) => held,
                // The hold was released; the visitor may try again.
                Err(_) => {
                    return view::message(
                        StatusCode::BAD_GATEWAY,
                        "The payment page could not be opened",
                        "We could not reach the payment provider, so nothing was booked. Please try again in a moment.",
                        Some((&week_href(&link.slug, None, None), "Back to the booking page")),
                    );
                }
            }
        }
        _ => booking,
    };
    match booking.checkout_url {
        Some(url) if booking.status == BookingStatus::PendingPayment => Redirect::to(&url).into_response(),
        _ => Redirect::to(&booked_href(state, &link.slug, &booking.id, zone.name())).into_response(),
    }
}

#[derive(Serialize)]
struct BookedPage {
    page_title: String,
    status: &'static str,
    title: String,
    hosts: Option<String>,
    when: String,
}

/// `GET /l/{slug}/booked/{id}?tz=…&sig=…`: the confirmation. The signature (made by this
/// server's key over the booking id and zone) is what lets only the visitor who booked read
/// it; anything else is 404.
pub async fn booked(
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let (t, _) = match open(&state, &slug).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let tz = param(&query, "tz").unwrap_or_default();
    let sig = param(&query, "sig").unwrap_or_default();
    if !state.sync.providers.providers().keyring.verify(&confirmation_message(&id, &tz), &sig) {
        return view::not_found();
    }
    let booking = match state.store.booking(&t, &id).await {
        Ok(Some(booking)) => booking,
        Ok(None) => return view::not_found(),
        Err(e) => return view::internal(e),
    };
    let zone = Zone::parse(&tz).unwrap_or_else(|_| Zone::utc());
    let names: Vec<String> = booking.participants.iter().filter_map(|p| p.name.clone()).collect();
    let unnamed = booking.participants.len() - names.len();
    let heading = match booking.status {
        BookingStatus::Confirmed => "You're booked",
        BookingStatus::PendingPayment => "Waiting for your payment",
        BookingStatus::Cancelled => "Booking cancelled",
    };
    view::page(
        StatusCode::OK,
        "booked.html",
        BookedPage {
            page_title: format!("{heading} — {}", booking.title),
            status: booking.status.as_str(),
            hosts: week::people(&names, unnamed),
            when: kairos_jobs::mail::when(booking.start_time, booking.end_time, &zone),
            title: booking.title,
        },
    )
}

/// The link a page names and its tenant, or the 404 (or 500) page.
async fn open(state: &AppState, slug: &str) -> Result<(Tenant, Link), Response> {
    if slug.is_empty() || slug.len() > 128 || !slug.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(view::not_found());
    }
    match state.store.link_by_slug(slug).await {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(view::not_found()),
        Err(e) => Err(view::internal(e)),
    }
}

/// Whose time a link books: its business (collectively: every host), or its people.
fn who(link: &Link) -> Who {
    Who {
        business_id: link.business_id.clone(),
        participants: link.participants.iter().map(|id| UserRef::Id(id.clone())).collect(),
        ..Who::default()
    }
}

fn ask(link: &Link, window: Interval, now: Timestamp, limit: Option<usize>) -> Ask {
    let duration = SignedDuration::from_mins(i64::from(link.duration_minutes.max(1)));
    Ask { window, duration, now, mode: Mode::Collective, limit }
}

/// The slot of the link's length starting at `start` (RFC 3339).
fn slot(link: &Link, start: &str) -> Option<Interval> {
    let start = crate::wire::parse_time(start).ok()?;
    let end = start.checked_add(SignedDuration::from_mins(i64::from(link.duration_minutes.max(1)))).ok()?;
    Interval::new(start, end).ok()
}

/// Whether the page would offer `slot` now: free, and on the slot grid (a booking through the
/// page cannot pick 9:07 when the times offered are 9:00 and 9:30).
fn offered(party: &Party, link: &Link, slot: Interval, now: Timestamp) -> bool {
    party.slots(ask(link, slot, now, Some(1))).first().is_some_and(|s| s.interval == slot)
}

/// The zone to show times in: `asked` when it is an IANA zone; otherwise the business's (UTC
/// without a business), with a notice when `asked` named something unknown.
async fn visitor_zone(
    state: &AppState,
    t: &Tenant,
    link: &Link,
    asked: Option<&str>,
) -> Result<(Zone, Option<String>), Response> {
    let asked = asked.map(str::trim).filter(|a| !a.is_empty());
    if let Some(zone) = asked.and_then(|a| Zone::parse(a).ok()) {
        return Ok((zone, None));
    }
    let default = match &link.business_id {
        Some(id) => state.store.business(t, id).await.map_err(view::internal)?.map(|b| b.schedule.timezone),
        None => None,
    }
    .unwrap_or_else(Zone::utc);
    let notice = asked.map(|a| {
        let shown: String = a.chars().take(64).collect();
        format!("“{shown}” is not a time zone we know, so times are shown in {}.", default.name().replace('_', " "))
    });
    Ok((default, notice))
}

#[derive(Serialize)]
struct LinkView {
    title: String,
    slug: String,
    hosts: Option<String>,
    duration: String,
    /// What booking costs (`€25.00`), for a priced business: the visitor pays before the
    /// booking is confirmed.
    price: Option<String>,
}

impl LinkView {
    fn new(link: &Link, party: &Party) -> Self {
        let names: Vec<String> = party.members.iter().filter_map(|u| u.name.clone()).collect();
        let unnamed = party.members.len() - names.len();
        let price = party
            .business
            .as_deref()
            .filter(|b| b.is_paid())
            .and_then(|b| Some(price::price(b.price_amount?, b.price_currency.as_deref()?)));
        Self {
            title: link.title.clone(),
            slug: link.slug.clone(),
            hosts: week::people(&names, unnamed),
            duration: week::duration(link.duration_minutes),
            price,
        }
    }
}

#[derive(Serialize)]
struct WeekNav {
    /// The week's first day, when it is not today (kept when the zone changes).
    param: Option<String>,
    label: String,
    prev: Option<String>,
    next: Option<String>,
}

#[derive(Serialize)]
struct WeekPage<'a> {
    page_title: &'a str,
    link: LinkView,
    zone: &'a str,
    zone_notice: Option<String>,
    taken: bool,
    week: WeekNav,
    days: Vec<Day>,
    any_slots: bool,
    zones: Vec<&'a str>,
    script: Option<&'static str>,
}

/// What a week page says besides its times.
struct Shown {
    /// Why the zone is not the one asked for.
    zone_notice: Option<String>,
    /// The address names no zone: the page reloads itself with the browser's (a page shown
    /// at another address, such as a refused booking's, must not).
    detect_zone: bool,
    /// The time the visitor chose was just taken (409).
    taken: bool,
}

impl Shown {
    const TAKEN: Shown = Shown { zone_notice: None, detect_zone: false, taken: true };
}

/// The week page.
async fn show_week(
    state: &AppState,
    t: &Tenant,
    link: &Link,
    zone: &Zone,
    asked_week: Option<&str>,
    shown: Shown,
) -> Response {
    let now = state.clock.now();
    let Some(week) = Week::starting(asked_week, zone, now) else { return view::not_found() };
    let party = match state.store.load_party(t, &who(link), week.window, now).await {
        Ok(party) => party,
        Err(e) => return party_failed(e),
    };
    let slots: Vec<Interval> = party.slots(ask(link, week.window, now, None)).into_iter().map(|s| s.interval).collect();
    let days = week::days(&week, &slots, zone, |start| book_href(&link.slug, start, zone.name()));
    let today = now.to_zoned(zone.tz().clone()).date();
    let nav = WeekNav {
        param: (week.first > today).then(|| week.first.to_string()),
        label: week.label(),
        prev: week.previous(zone, now).map(|d| week_href(&link.slug, Some(&d.to_string()), Some(zone.name()))),
        next: week.next().map(|d| week_href(&link.slug, Some(&d.to_string()), Some(zone.name()))),
    };
    let mut zones: Vec<&str> = view::zone_names().iter().map(String::as_str).collect();
    if !zones.contains(&zone.name()) {
        zones.insert(0, zone.name());
    }
    let status = if shown.taken { StatusCode::CONFLICT } else { StatusCode::OK };
    view::page(
        status,
        "link.html",
        WeekPage {
            page_title: &link.title,
            link: LinkView::new(link, &party),
            zone: zone.name(),
            zone_notice: shown.zone_notice,
            taken: shown.taken,
            week: nav,
            any_slots: !slots.is_empty(),
            days,
            zones,
            script: shown.detect_zone.then_some(view::ZONE_SCRIPT),
        },
    )
}

/// A refused party load: the link's business or people are gone (404), or the store failed.
fn party_failed(e: BookingError) -> Response {
    match e {
        BookingError::Party(_) => view::not_found(),
        other => view::internal(other),
    }
}

fn unreadable_time(link: &Link) -> Response {
    view::message(
        StatusCode::BAD_REQUEST,
        "That time could not be read",
        "The address does not name a time we can book. Please pick a time from the booking page.",
        Some((&week_href(&link.slug, None, None), "See the open times")),
    )
}

/// The first value of `name` in a query string.
fn param(query: &Option<String>, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_deref().unwrap_or_default().as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// A query value, percent-encoded, keeping what reads well and needs no escape (`:` and `/`,
/// as in `2030-01-01T09:00:00Z` and `America/New_York`).
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn local_date(slot: Interval, zone: &Zone) -> String {
    slot.start().to_zoned(zone.tz().clone()).date().to_string()
}

fn week_href(slug: &str, week: Option<&str>, tz: Option<&str>) -> String {
    let mut query: Vec<String> = Vec::new();
    if let Some(week) = week {
        query.push(format!("week={}", encode(week)));
    }
    if let Some(tz) = tz {
        query.push(format!("tz={}", encode(tz)));
    }
    let path = format!("/l/{}", encode(slug));
    if query.is_empty() { path } else { format!("{path}?{}", query.join("&")) }
}

fn book_href(slug: &str, start: Timestamp, tz: &str) -> String {
    format!("/l/{}/book?start={}&tz={}", encode(slug), encode(&start.to_string()), encode(tz))
}

/// What a confirmation page's signature covers.
fn confirmation_message(booking_id: &str, tz: &str) -> String {
    format!("link-booking:{booking_id}\u{1f}{tz}")
}

fn booked_href(state: &AppState, slug: &str, booking_id: &str, tz: &str) -> String {
    let sig = state.sync.providers.providers().keyring.sign(&confirmation_message(booking_id, tz));
    format!("/l/{}/booked/{}?tz={}&sig={}", encode(slug), encode(booking_id), encode(tz), encode(&sig))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_keep_times_and_zones_readable() {
        assert_eq!(encode("2030-01-01T09:00:00Z"), "2030-01-01T09:00:00Z");
        assert_eq!(encode("America/New_York"), "America/New_York");
        assert_eq!(encode("Etc/GMT+5"), "Etc/GMT%2B5");
        assert_eq!(encode("a b&c"), "a%20b%26c");
        let start: Timestamp = "2030-01-01T09:00:00Z".parse().unwrap();
        assert_eq!(book_href("intro", start, "Etc/GMT+5"), "/l/intro/book?start=2030-01-01T09:00:00Z&tz=Etc/GMT%2B5");
        assert_eq!(week_href("intro", Some("2030-01-08"), Some("UTC")), "/l/intro?week=2030-01-08&tz=UTC");
        assert_eq!(param(&Some("tz=Etc%2FGMT%2B5&tz=UTC".into()), "tz").as_deref(), Some("Etc/GMT+5"));
        assert_eq!(param(&None, "tz"), None);
    }
}
