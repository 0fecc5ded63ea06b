//! The public booking page (`/l/{slug}`) in a real headless Chromium: the browser's own zone
//! picked up by the page's script, a slot chosen with the keyboard, the form filled in and
//! booked, a slot taken by someone else while the form was open, and the page on a phone-sized
//! screen. Screenshots land in `target/screenshots/booking-page*.png`.
//!
//! Skipped (loudly) without `chromium` and `chromium-driver`, unless `KAIROS_REQUIRE_PEERS=1`.
//! The API's clock is the suite's fixed "now" (Tuesday 2030-01-01 08:00 UTC), so the week
//! shown and its first slot are known; the browser's zone comes from its `TZ`.

use std::path::{Path, PathBuf};

use jiff::{SignedDuration, Timestamp};
use kairos_emulators::browser::{Browser, BrowserOptions, Element, Key};
use serde_json::json;

use crate::support::*;

/// Ana (named, so the page says "with Ana Lima"), hosting a business open all week in UTC,
/// and a 30-minute link to it; returns the business id and the link's slug.
async fn booking_link(app: &TestApp) -> (String, String) {
    let r = app
        .post(
            "/v1/users",
            json!({"email": "ana@example.com", "name": "Ana Lima", "timezone": "UTC", "working_hours": all_week()}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let business = app
        .business(
            json!({"name": "Clinic", "timezone": "UTC", "hosts": ["ana@example.com"], "working_hours": all_week()}),
        )
        .await;
    let r = app
        .post(
            "/v1/links",
            json!({"business_id": business, "duration_minutes": 30, "title": "Intro call", "slug": "intro-call"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.body["url"].as_str().unwrap().ends_with("/l/intro-call"), "{}", r.body);
    (business, r.body["slug"].as_str().unwrap().to_string())
}

/// The value of `name` in the URL's query.
fn param(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// The start a slot link books (its `start` parameter).
async fn slot_start(slot: &Element) -> Timestamp {
    let href = slot.prop("href").await.unwrap().expect("a slot link has an href");
    let url = url::Url::parse(&href).unwrap();
    let start = param(&url, "start").unwrap_or_else(|| panic!("no start in {href}"));
    start.parse().unwrap_or_else(|e| panic!("start {start:?} of {href}: {e}"))
}

/// The starts of every slot link on the page.
async fn slot_starts(browser: &Browser) -> Vec<Timestamp> {
    let mut starts = Vec::new();
    for slot in browser.find_all("a.slot").await {
        starts.push(slot_start(&slot).await);
    }
    starts
}

/// The HTTP status of the page on screen (Navigation Timing's `responseStatus`).
async fn response_status(browser: &Browser) -> u64 {
    let status =
        browser.execute("return performance.getEntriesByType('navigation')[0].responseStatus;", vec![]).await.unwrap();
    status.as_u64().unwrap_or_else(|| panic!("no response status: {status}"))
}

/// `target/screenshots/{name}` of this workspace (or of `CARGO_TARGET_DIR`).
fn screenshot_path(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("screenshots").join(name)
}

/// Saves a screenshot and checks it is a non-empty PNG `width` pixels wide.
async fn screenshot(browser: &Browser, name: &str, width: u32) {
    let path = browser.screenshot(screenshot_path(name)).await;
    let png = std::fs::read(&path).unwrap();
    assert!(png.len() > 1000 && png.starts_with(b"\x89PNG\r\n\x1a\n"), "{} is not a PNG", path.display());
    // IHDR: the width is bytes 16..20, big-endian.
    assert_eq!(u32::from_be_bytes([png[16], png[17], png[18], png[19]]), width, "{}", path.display());
}

#[tokio::test]
async fn a_visitor_books_a_slot_in_their_own_zone_with_the_keyboard() {
    let Some(browser) = Browser::start(BrowserOptions::desktop().timezone("America/New_York")).await else {
        return;
    };
    let app = TestApp::start().await;
    let (business, slug) = booking_link(&app).await;

    // No zone in the address: the page's script reloads it with the browser's.
    browser.goto(&format!("{}/l/{slug}", app.base)).await;
    let url =
        browser.wait_until_url("tz=America/New_York", |u| param(u, "tz").as_deref() == Some("America/New_York")).await;
    assert_eq!(url.path(), format!("/l/{slug}"));
    let first = browser.wait_for("a.slot").await;
    assert_eq!(browser.wait_for("#tz").await.prop("value").await.unwrap().as_deref(), Some("America/New_York"));
    assert!(browser.wait_for("main").await.text().await.unwrap().contains("with Ana Lima"));
    // 08:00 UTC is 3:00 AM in New York: the week starts on its Tuesday, January 1.
    assert_eq!(browser.wait_for("main h3").await.text().await.unwrap(), "Tuesday, January 1");
    assert_eq!(first.text().await.unwrap(), "3:00 AM");
    assert_eq!(first.attr("aria-label").await.unwrap().as_deref(), Some("Tuesday, January 1 at 3:00 AM EST"));
    let start = slot_start(&first).await;
    assert_eq!(start, "2030-01-01T08:00:00Z".parse::<Timestamp>().unwrap());
    screenshot(&browser, "booking-page.png", 1280).await;

    // Tab to the first slot and follow it with Enter, as a keyboard user would.
    let focused = browser.tab_to("a.slot", 20).await;
    assert_eq!(focused.prop("href").await.unwrap(), first.prop("href").await.unwrap(), "the first slot first");
    browser.press(Key::Enter).await;
    browser.wait_until_url("the booking form", |u| u.path() == format!("/l/{slug}/book")).await;
    browser.wait_for("#name").await.send_keys("Jane Doe").await.unwrap();
    browser.wait_for("#email").await.send_keys("jane@example.com").await.unwrap();
    browser.wait_for("#notes").await.send_keys("Please call on arrival.").await.unwrap();
    let when = browser.wait_for("main").await.text().await.unwrap();
    // "Tuesday, January 1, 2030, 3:00 – 3:30 AM EST"
    assert!(
        when.contains("January 1, 2030, 3:00") && when.contains("AM EST"),
        "the form names the time in the visitor's zone: {when}"
    );
    screenshot(&browser, "booking-page-form.png", 1280).await;
    browser.wait_for("button#book").await.click().await.unwrap();

    let confirmation = browser.wait_for("#confirmation").await;
    assert!(confirmation.text().await.unwrap().contains("booked"), "{}", browser.describe().await);
    assert_eq!(response_status(&browser).await, 200);
    screenshot(&browser, "booking-page-confirmation.png", 1280).await;

    let r = app.get("/v1/bookings?customer_email=jane@example.com").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let bookings = r.body["data"].as_array().unwrap();
    assert_eq!(bookings.len(), 1, "{}", r.body);
    let booking = &bookings[0];
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(booking["business_id"], business.as_str());
    assert_eq!(booking["customer_name"], "Jane Doe");
    assert_eq!(booking["customer_email"], "jane@example.com");
    assert_eq!(booking["notes"], "Please call on arrival.");
    assert_eq!(booking["start_time"].as_str().unwrap().parse::<Timestamp>().unwrap(), start);
    assert_eq!(
        booking["end_time"].as_str().unwrap().parse::<Timestamp>().unwrap(),
        start + SignedDuration::from_mins(30)
    );
    browser.close().await;
}

#[tokio::test]
async fn a_slot_taken_while_the_form_is_open_is_refused_with_the_times_still_free() {
    let Some(browser) = Browser::start(BrowserOptions::desktop().timezone("Europe/Paris")).await else {
        return;
    };
    let app = TestApp::start().await;
    let (business, slug) = booking_link(&app).await;

    browser.goto(&format!("{}/l/{slug}?tz=Europe/Paris", app.base)).await;
    browser.wait_for("a.slot").await;
    let slots = browser.find_all("a.slot").await;
    assert!(slots.len() > 2, "{}", browser.describe().await);
    let (kept, chosen) = (slot_start(&slots[0]).await, slot_start(&slots[1]).await);
    slots[1].click().await.unwrap();
    browser.wait_for("#name").await.send_keys("Late Comer").await.unwrap();
    browser.wait_for("#email").await.send_keys("late@example.com").await.unwrap();

    // Meanwhile someone else books that very time.
    let r = app
        .post(
            "/v1/bookings",
            json!({"business_id": business, "customer_name": "Early Bird", "customer_email": "early@example.com",
                   "start_time": chosen.to_string(), "end_time": (chosen + SignedDuration::from_mins(30)).to_string()}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    browser.wait_for("button#book").await.click().await.unwrap();

    let taken = browser.wait_for("#taken").await;
    assert_eq!(taken.attr("role").await.unwrap().as_deref(), Some("alert"));
    assert!(taken.text().await.unwrap().contains("taken"), "{}", browser.describe().await);
    assert_eq!(response_status(&browser).await, 409);
    browser.wait_for("a.slot").await;
    let starts = slot_starts(&browser).await;
    assert!(!starts.contains(&chosen), "the taken time {chosen} is still offered");
    assert!(starts.contains(&kept), "the other times are still offered: {starts:?}");
    screenshot(&browser, "booking-page-taken.png", 1280).await;

    let r = app.get("/v1/bookings?customer_email=late@example.com").await;
    assert_eq!(r.body["data"], json!([]), "nothing booked for the late visitor: {}", r.body);
    browser.close().await;
}

#[tokio::test]
async fn the_booking_page_fits_a_phone_screen() {
    let Some(phone) = Browser::start(BrowserOptions::mobile().timezone("America/New_York")).await else {
        return;
    };
    let app = TestApp::start().await;
    let (_, slug) = booking_link(&app).await;

    phone.goto(&format!("{}/l/{slug}?tz=America/New_York", app.base)).await;
    phone.wait_for("a.slot").await;
    let widths =
        phone.execute("return [window.innerWidth, document.documentElement.scrollWidth];", vec![]).await.unwrap();
    assert_eq!(widths, json!([390, 390]), "[viewport, page] widths: nothing wider than the phone");
    screenshot(&phone, "booking-page-mobile.png", 390).await;

    phone.wait_for("a.slot").await.click().await.unwrap();
    phone.wait_for("#name").await;
    let widths =
        phone.execute("return [window.innerWidth, document.documentElement.scrollWidth];", vec![]).await.unwrap();
    assert_eq!(widths, json!([390, 390]), "[viewport, form] widths");
    screenshot(&phone, "booking-page-mobile-form.png", 390).await;
    phone.close().await;
}
