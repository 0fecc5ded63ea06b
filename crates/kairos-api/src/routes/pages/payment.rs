//! Where Stripe Checkout sends a visitor back: `GET /pay/done` after paying, `GET
//! /pay/cancelled` after leaving checkout (with the way back to it), and `POST /pay/cancelled`,
//! which gives a held time up at once instead of keeping it from everyone for 30 minutes.
//!
//! Both addresses carry `t`, a token sealed with the server's keyring (encrypted and
//! authenticated, [`return_urls`]) naming the booking, its tenant and the booking link it was
//! made on: nobody can read an id from it, change it, or make one for another booking. A token
//! that does not open is a 404. The pages show what the booking pages show: the booking's
//! title, the hosts' display names, its time (in the customer's zone, else the business's) and
//! its price; never emails, ids or the account. Neither page changes a payment: only Stripe's
//! signed webhook confirms (`routes::payments`).

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use jiff::Timestamp;
use kairos_core::describe::describe;
use kairos_core::{Booking, BookingStatus, Zone};
use kairos_providers::sealed::Keyring;
use kairos_store::{Mode, Tenant};
use serde::{Deserialize, Serialize};

use super::{encode, param, price, view, week, week_href};
use crate::AppState;
use crate::public;

/// What a return token is sealed for (bound into the seal, so no other sealed value opens
/// as one, nor one as anything else).
const PURPOSE: &str = "payment_return";
const ROW: &str = "v1";
/// Longer than any token this server seals; longer input is not even opened.
const TOKEN_MAX: usize = 1024;
/// The release form is two short fields.
const FORM_LIMIT: usize = 8 * 1024;
/// What a released hold is cancelled with: the reason of a lapsed hold, under which a payment
/// that still lands (when the Checkout Session could not be expired) confirms the booking if
/// the time is still free, and is otherwise reported for a refund.
const RELEASED: &str = "payment_not_completed";
/// The reasons a payment hold ends with, all shown as "the time was released".
const HOLD_ENDED: [&str; 4] = [RELEASED, "checkout_expired", "checkout_failed", "payment_failed"];
/// The reason a payment that came after the time was taken leaves.
const TOO_LATE: &str = "payment_too_late";

/// The sealed content of a return token (short keys: it travels in two URLs).
#[derive(Debug, Serialize, Deserialize)]
struct Sealed {
    #[serde(rename = "a")]
    account_id: String,
    #[serde(rename = "m")]
    mode: String,
    #[serde(rename = "b")]
    booking_id: String,
    /// The slug of the booking link the booking was made on; none for the API's bookings.
    #[serde(rename = "l", default, skip_serializing_if = "Option::is_none")]
    link: Option<String>,
}

/// What a return token names.
struct ReturnTo {
    tenant: Tenant,
    booking_id: String,
    link: Option<String>,
}

fn seal(keyring: &Keyring, t: &Tenant, booking_id: &str, link: Option<&str>) -> String {
    let sealed = Sealed {
        account_id: t.account_id.clone(),
        mode: t.mode.as_str().to_string(),
        booking_id: booking_id.to_string(),
        link: link.map(str::to_string),
    };
    // Serializing strings into JSON cannot fail.
    let plain = serde_json::to_vec(&sealed).unwrap_or_default();
    keyring.seal(PURPOSE, ROW, &plain)
}

fn open(keyring: &Keyring, token: &str) -> Option<ReturnTo> {
    if token.len() > TOKEN_MAX {
        return None;
    }
    let plain = keyring.open(PURPOSE, ROW, token).ok()?;
    let sealed: Sealed = serde_json::from_slice(&plain).ok()?;
    Some(ReturnTo {
        tenant: Tenant { account_id: sealed.account_id, mode: Mode::parse(&sealed.mode)? },
        booking_id: sealed.booking_id,
        link: sealed.link,
    })
}

/// Stripe's `success_url` and `cancel_url` for a booking's checkout, each with the same
/// sealed token. `link` is the slug of the booking link it was made on, if any.
///
/// Neither carries `{CHECKOUT_SESSION_ID}` (Stripe documents that placeholder for
/// `success_url` only, and the token already names the booking).
pub(crate) fn return_urls(state: &AppState, t: &Tenant, booking_id: &str, link: Option<&str>) -> (String, String) {
    let token = seal(&state.sync.providers.providers().keyring, t, booking_id, link);
    let public = state.public_url.as_str().trim_end_matches('/');
    (format!("{public}/pay/done?t={}", encode(&token)), format!("{public}/pay/cancelled?t={}", encode(&token)))
}

/// Which of the two pages.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Returned {
    Paid,
    Left,
}

/// Where Stripe sends the customer after paying (`success_url`).
///
/// It says what Stripe has told us so far; the booking is confirmed by Stripe's webhook, never
/// by this visit (which anyone holding the address can make).
#[utoipa::path(get, path = "/pay/done", tag = crate::routes::BOOKINGS, security(()),
    params(("t" = Option<String>, Query, description = "The sealed token Kairos put in the address it gave Stripe")),
    responses((status = 200, description = "HTML: the payment received, or being confirmed"),
        (status = 404, description = "HTML: a token this server did not make")))]
pub async fn done(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let Some(token) = param(&query, "t") else { return without_token(Returned::Paid) };
    match find(&state, &token).await {
        Ok((to, booking)) => show(&state, Returned::Paid, &to, &booking, &token, None).await,
        Err(response) => response,
    }
}

/// Where Stripe sends the customer who leaves checkout unpaid (`cancel_url`).
///
/// While the hold lasts: until when the time stays reserved, the way back to payment, and a
/// form to release the time now. Afterwards: what became of the booking.
#[utoipa::path(get, path = "/pay/cancelled", tag = crate::routes::BOOKINGS, security(()),
    params(("t" = Option<String>, Query, description = "The sealed token Kairos put in the address it gave Stripe")),
    responses((status = 200, description = "HTML: the hold and a way back to payment, or what became of it"),
        (status = 404, description = "HTML: a token this server did not make")))]
pub async fn cancelled(State(state): State<AppState>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    let Some(token) = param(&query, "t") else { return without_token(Returned::Left) };
    match find(&state, &token).await {
        Ok((to, booking)) => {
            let csrf = public::csrf_token(&headers);
            show(&state, Returned::Left, &to, &booking, &token, Some(&csrf)).await
        }
        Err(response) => response,
    }
}

/// The release form as posted.
#[derive(Debug, Default, Deserialize)]
struct ReleaseForm {
    #[serde(default)]
    t: String,
    #[serde(default)]
    csrf: String,
}

/// Releases the held time, from the page Stripe sends a customer who leaves checkout.
///
/// `t` and `csrf`: cancels a hold still awaiting payment and closes its Checkout Session, then
/// shows the page again (303). Sending it again, or for a booking paid or ended meanwhile,
/// changes nothing.
#[utoipa::path(post, path = "/pay/cancelled", tag = crate::routes::BOOKINGS, security(()), operation_id = "release_payment_hold",
    request_body(content = String, description = "`t` (the page's token) and `csrf` (its form token, matching the page's cookie)",
        content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Released (or nothing to release): back to the page"),
        (status = 403, description = "HTML: the form's CSRF token does not match its cookie"),
        (status = 404, description = "HTML: a token this server did not make")))]
pub async fn release(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let form = match axum::body::to_bytes(body, FORM_LIMIT).await {
        Ok(bytes) => serde_urlencoded::from_bytes::<ReleaseForm>(&bytes).unwrap_or_default(),
        Err(_) => ReleaseForm::default(),
    };
    let page = format!("/pay/cancelled?t={}", encode(&form.t));
    if !public::csrf_matches(&headers, Some(&form.csrf)) {
        return view::message(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "For your security, the time can only be released from its own page. Open the page again and \
             press the button once more.",
            Some((&page, "Back to the page")),
        );
    }
    let (_, booking) = match find(&state, &form.t).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if booking.status == BookingStatus::PendingPayment
        && let Err(response) = end_hold(&state, &booking).await
    {
        return response;
    }
    let mut response = Redirect::to(&page).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    response
}

/// Cancels `booking`'s hold with [`RELEASED`] and closes its Checkout Session at Stripe, so
/// the customer cannot pay for time they gave up.
async fn end_hold(state: &AppState, booking: &Booking) -> Result<(), Response> {
    let now = state.clock.now();
    let session = booking.checkout_url.as_deref().and_then(session_in);
    let ended = match &session {
        // Only the booking's own session ends it, and only while it is still unpaid: a payment
        // confirmed meanwhile is kept.
        Some(id) => state.store.end_payment_hold(&booking.id, id, RELEASED, now).await.map_err(view::internal)?,
        None => None,
    };
    // `end_payment_hold` answers with the booking whatever it did: only one it cancelled now,
    // with this page's reason, was released here.
    let released = ended
        .filter(|(_, b)| b.status == BookingStatus::Cancelled && b.cancellation_reason.as_deref() == Some(RELEASED));
    match (released, session) {
        (Some(_), Some(id)) => {
            // After the booking is cancelled, as the hold sweep does: a payment racing this
            // finds a lapsed hold and confirms only if the time is still free. Best effort:
            // Stripe refuses a session that completed or expired meanwhile.
            if let Some(payments) = &state.payments
                && let Err(e) = payments.client.expire_checkout_session(&id).await
            {
                tracing::warn!(error = %e, booking = %booking.id, "expiring a released hold's Checkout Session");
            }
        }
        // Paid (or ended) since the page was read: nothing was released, and a paid booking is
        // never cancelled from here.
        (None, Some(_)) => return Ok(()),
        (_, None) => {
            // The session id is not stored on the booking and its checkout URL did not name it
            // (Stripe does not promise the URL's shape). Nothing is cancelled: only the store's
            // check against the session keeps a payment confirmed meanwhile from being undone.
            // The hold then ends on its own when it lapses (the page says when).
            tracing::warn!(booking = %booking.id, "a hold could not be released: its Checkout Session is unknown");
            return Ok(());
        }
    }
    tracing::info!(booking = %booking.id, "the customer released an unpaid hold");
    Ok(())
}

/// The Checkout Session id in a session's hosted URL (`https://checkout.stripe.com/c/pay/
/// cs_test_…#…`): only a candidate, since Stripe does not document that shape; the store ends
/// the hold only if it is the session the booking was opened with.
fn session_in(checkout_url: &str) -> Option<String> {
    let url = url::Url::parse(checkout_url).ok()?;
    let last = url.path_segments()?.rfind(|s| !s.is_empty())?;
    let id = last.strip_prefix("cs_")?;
    let plausible = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    plausible.then(|| last.to_string())
}

/// The token's booking, or the page to answer with: 404 for a token that does not open or a
/// booking that is gone.
async fn find(state: &AppState, token: &str) -> Result<(ReturnTo, Booking), Response> {
    let Some(to) = open(&state.sync.providers.providers().keyring, token) else { return Err(view::not_found()) };
    match state.store.booking(&to.tenant, &to.booking_id).await {
        Ok(Some(booking)) => Ok((to, booking)),
        Ok(None) => Err(view::not_found()),
        Err(e) => Err(view::internal(e)),
    }
}

/// Where a booking stands, as the page says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Standing {
    /// Awaiting payment, the time still held.
    Held,
    /// Paid at Stripe (the visitor came back from paying), not yet confirmed by its webhook.
    Confirming,
    Paid,
    /// The hold ended unpaid (released, expired, lapsed).
    Released,
    /// A payment came after the time had gone to someone else.
    TooLate,
    /// Cancelled for another reason (by the organiser).
    Cancelled,
}

fn standing(returned: Returned, booking: &Booking, now: Timestamp) -> Standing {
    match booking.status {
        BookingStatus::Confirmed => Standing::Paid,
        BookingStatus::PendingPayment if returned == Returned::Paid => Standing::Confirming,
        BookingStatus::PendingPayment if booking.holds_time(now) => Standing::Held,
        BookingStatus::PendingPayment => Standing::Released,
        BookingStatus::Cancelled => match booking.cancellation_reason.as_deref() {
            Some(TOO_LATE) => Standing::TooLate,
            // Stripe sends the customer to the success page only after they paid: a hold that
            // ended meanwhile is being confirmed (if its time is still free) or marked too late.
            Some(reason) if returned == Returned::Paid && HOLD_ENDED.contains(&reason) => Standing::Confirming,
            Some(reason) if HOLD_ENDED.contains(&reason) => Standing::Released,
            _ => Standing::Cancelled,
        },
    }
}

#[derive(Serialize)]
struct ReleaseFields<'a> {
    token: &'a str,
    csrf: &'a str,
}

#[derive(Serialize)]
struct PaymentPage<'a> {
    page_title: String,
    heading: &'static str,
    standing: Standing,
    title: &'a str,
    hosts: Option<String>,
    when: String,
    price: Option<String>,
    /// Until when a held time stays reserved.
    held_until: Option<String>,
    checkout_url: Option<&'a str>,
    release: Option<ReleaseFields<'a>>,
    /// This page again, to check on a payment being confirmed.
    again_url: Option<String>,
    /// The booking link's page, to pick another time.
    rebook_url: Option<String>,
}

/// The page for `booking` as it stands; `csrf` (on the cancelled page) lets a held time be
/// released.
async fn show(
    state: &AppState,
    returned: Returned,
    to: &ReturnTo,
    booking: &Booking,
    token: &str,
    csrf: Option<&str>,
) -> Response {
    let zone = match zone(state, &to.tenant, booking).await {
        Ok(zone) => zone,
        Err(e) => return view::internal(e),
    };
    let standing = standing(returned, booking, state.clock.now());
    let held = standing == Standing::Held;
    // Only ever Stripe's page: an address of another scheme is not offered as a link.
    let checkout_url = booking
        .checkout_url
        .as_deref()
        .filter(|u| held && url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "https" | "http")));
    let release_csrf = csrf.filter(|_| held);
    let names: Vec<String> = booking.participants.iter().filter_map(|p| p.name.clone()).collect();
    let unnamed = booking.participants.len() - names.len();
    let heading = match standing {
        Standing::Held => "Payment not completed",
        Standing::Confirming => "We are confirming your payment",
        Standing::Paid => "Payment received",
        Standing::Released => "The time was released",
        Standing::TooLate => "This time is no longer available",
        Standing::Cancelled => "This booking was cancelled",
    };
    let again = match returned {
        Returned::Paid => "done",
        Returned::Left => "cancelled",
    };
    let ended = matches!(standing, Standing::Released | Standing::TooLate | Standing::Cancelled);
    let mut response = view::page(
        StatusCode::OK,
        "payment.html",
        PaymentPage {
            page_title: format!("{heading} — {}", booking.title),
            heading,
            standing,
            title: &booking.title,
            hosts: week::people(&names, unnamed),
            when: kairos_jobs::mail::when(booking.start_time, booking.end_time, &zone),
            price: booking
                .payment_amount
                .zip(booking.payment_currency.as_deref())
                .map(|(amount, currency)| price::price(amount, currency)),
            held_until: booking.hold_expires_at.filter(|_| held).map(|at| describe(at, &zone)),
            checkout_url,
            release: release_csrf.map(|csrf| ReleaseFields { token, csrf }),
            again_url: (standing == Standing::Confirming).then(|| format!("/pay/{again}?t={}", encode(token))),
            rebook_url: to.link.as_deref().filter(|_| ended).map(|slug| week_href(slug, None, Some(zone.name()))),
        },
    );
    if let Some(csrf) = release_csrf {
        let secure = state.public_url.scheme() == "https";
        response.headers_mut().append(header::SET_COOKIE, public::csrf_cookie(csrf, "/pay/", secure));
    }
    response
}

/// The zone the customer sees times in: theirs when known, else the business's, else UTC.
async fn zone(state: &AppState, t: &Tenant, booking: &Booking) -> Result<Zone, kairos_store::StoreError> {
    if let Some(zone) = booking.customer_timezone.as_deref().and_then(|name| Zone::parse(name).ok()) {
        return Ok(zone);
    }
    Ok(match &booking.business_id {
        Some(id) => state.store.business(t, id).await?.map(|b| b.schedule.timezone),
        None => None,
    }
    .unwrap_or_else(Zone::utc))
}

/// An address without a token: a checkout opened before return addresses carried one. Says
/// what happens in general, naming no booking.
fn without_token(returned: Returned) -> Response {
    match returned {
        Returned::Paid => view::message(
            StatusCode::OK,
            "Thank you",
            "Your booking is confirmed as soon as Stripe tells us the payment went through; a confirmation email \
             with a calendar invitation follows.",
            None,
        ),
        Returned::Left => view::message(
            StatusCode::OK,
            "Payment not completed",
            "No payment was taken. The time stays reserved for you for 30 minutes after you booked; after that it \
             is released.",
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    #[test]
    fn a_token_names_its_booking_unreadably_and_opens_only_intact() {
        let keyring = Keyring::parse(KEY).unwrap();
        let t = Tenant { account_id: "acct_123".into(), mode: Mode::Live };
        let token = seal(&keyring, &t, "bkg_456", Some("intro-call"));
        for id in ["acct_123", "bkg_456", "intro-call"] {
            assert!(!token.contains(id), "{token}");
        }
        assert_eq!(encode(&token), token, "URL-safe as it is");
        let to = open(&keyring, &token).unwrap();
        assert_eq!((to.tenant, to.booking_id.as_str(), to.link.as_deref()), (t.clone(), "bkg_456", Some("intro-call")));
        assert!(open(&keyring, &seal(&keyring, &t, "bkg_456", None)).unwrap().link.is_none());
        // Altered, from another key, sealed for another purpose, or junk: nothing.
        let mut altered = token.clone().into_bytes();
        let at = altered.len() - 3;
        altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
        assert!(open(&keyring, &String::from_utf8(altered).unwrap()).is_none());
        let other = Keyring::parse("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb").unwrap();
        assert!(open(&other, &token).is_none());
        assert!(open(&keyring, &keyring.seal("calendar_connections.secret", ROW, b"{}")).is_none());
        assert!(open(&keyring, "").is_none() && open(&keyring, &"k".repeat(5000)).is_none());
    }

    #[test]
    fn the_session_id_is_read_from_stripes_hosted_url_only() {
        assert_eq!(
            session_in("https://checkout.stripe.com/c/pay/cs_test_a1B2c3#fidkdWxOYHwnPyd1blpxYHZxWjA0").as_deref(),
            Some("cs_test_a1B2c3")
        );
        assert_eq!(session_in("http://127.0.0.1:9/c/pay/cs_test_XyZ").as_deref(), Some("cs_test_XyZ"));
        assert_eq!(session_in("https://pay.example.com/session/abc"), None);
        assert_eq!(session_in("https://checkout.stripe.com/c/pay/cs_"), None);
        assert_eq!(session_in("https://checkout.stripe.com/c/pay/cs_test%2F..%2Fx"), None);
        assert_eq!(session_in("not a url"), None);
    }

    #[test]
    fn what_the_page_says_follows_the_booking() {
        let now: Timestamp = "2030-01-01T08:00:00Z".parse().unwrap();
        let booking = |status: BookingStatus, hold: Option<&str>, reason: Option<&str>| Booking {
            id: "bkg_1".into(),
            status,
            business_id: None,
            participants: vec![],
            customer_name: None,
            customer_email: None,
            customer_timezone: None,
            title: "Call".into(),
            notes: None,
            description: None,
            metadata: serde_json::Map::new(),
            start_time: now,
            end_time: now,
            created_at: now,
            updated_at: now,
            checkout_url: None,
            payment_amount: None,
            payment_currency: None,
            hold_expires_at: hold.map(|h| h.parse().unwrap()),
            cancelled_at: None,
            cancellation_reason: reason.map(str::to_string),
        };
        let held = booking(BookingStatus::PendingPayment, Some("2030-01-01T08:30:00Z"), None);
        let lapsed = booking(BookingStatus::PendingPayment, Some("2030-01-01T08:00:00Z"), None);
        assert_eq!(standing(Returned::Left, &held, now), Standing::Held);
        assert_eq!(standing(Returned::Paid, &held, now), Standing::Confirming);
        assert_eq!(standing(Returned::Left, &lapsed, now), Standing::Released);
        assert_eq!(standing(Returned::Paid, &lapsed, now), Standing::Confirming, "a late payment may still land");
        assert_eq!(standing(Returned::Left, &booking(BookingStatus::Confirmed, None, None), now), Standing::Paid);
        let cancelled = |reason| standing(Returned::Left, &booking(BookingStatus::Cancelled, None, reason), now);
        assert_eq!(cancelled(Some(RELEASED)), Standing::Released);
        assert_eq!(cancelled(Some("checkout_expired")), Standing::Released);
        assert_eq!(cancelled(Some(TOO_LATE)), Standing::TooLate);
        assert_eq!(cancelled(Some("client asked")), Standing::Cancelled);
        assert_eq!(cancelled(None), Standing::Cancelled);
        // Back from paying (Stripe's success page) after the hold ended: the payment is being
        // applied, so never "nothing was booked".
        let paid_after = |reason| standing(Returned::Paid, &booking(BookingStatus::Cancelled, None, reason), now);
        assert_eq!(paid_after(Some(RELEASED)), Standing::Confirming);
        assert_eq!(paid_after(Some("checkout_expired")), Standing::Confirming);
        assert_eq!(paid_after(Some(TOO_LATE)), Standing::TooLate);
        assert_eq!(paid_after(Some("client asked")), Standing::Cancelled);
    }
}
