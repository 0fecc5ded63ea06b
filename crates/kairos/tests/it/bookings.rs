//! Booking flows over HTTP: the README walkthrough, double booking under concurrency,
//! idempotency, rescheduling, cancelling, holds, lists and busy time.

use futures::future::join_all;
use jiff::SignedDuration;
use kairos_core::Interval;
use kairos_store::{NewBusyBlock, PageRequest, keys};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

async fn tenant(app: &TestApp) -> kairos_store::Tenant {
    app.store.tenant_for_key(&keys::hash(&app.key)).await.unwrap().unwrap()
}

async fn event_types(app: &TestApp) -> Vec<String> {
    let page = app.store.outbox_events(&tenant(app).await, &PageRequest { limit: 100, cursor: None }).await.unwrap();
    page.data.into_iter().rev().map(|e| e.event_type).collect()
}

fn booking_body(business: &str, start: &str, end: &str) -> Value {
    json!({"business_id": business, "customer_email": "jane@example.com", "customer_name": "Jane Doe", "start_time": start, "end_time": end})
}

#[tokio::test]
async fn the_readme_walkthrough_books_and_cancels() {
    let app = TestApp::start().await;
    let alice = app
        .post("/v1/users", json!({"email": "alice@example.com", "name": "Alice", "timezone": "America/New_York"}))
        .await;
    assert_eq!(alice.status, 201, "{}", alice.body);
    let biz = app
        .post(
            "/v1/businesses",
            json!({"name": "Consulting", "timezone": "America/New_York", "hosts": ["alice@example.com"]}),
        )
        .await;
    assert_eq!(biz.status, 201, "{}", biz.body);
    assert_eq!(biz.body["hosts"], json!([alice.body["id"]]));
    let biz_id = biz.body["id"].as_str().unwrap();

    // Wednesday 2030-01-02 in New York (EST): 9:00 is 14:00Z.
    let slots = app.get(&format!("/v1/availability/slots?business_id={biz_id}&from=2030-01-02T00:00:00Z&to=2030-01-03T00:00:00Z&duration=30&timezone=America/New_York")).await;
    assert_eq!(slots.status, 200, "{}", slots.body);
    assert_eq!(slots.body["timezone"], "America/New_York");
    let list = slots.body["slots"].as_array().unwrap();
    assert_eq!(list.len(), 16, "09:00–17:00 in half hours");
    assert_eq!(
        list[0],
        json!({"start": "2030-01-02T09:00:00-05:00", "end": "2030-01-02T09:30:00-05:00", "description": "Wednesday, January 2 at 9:00 AM EST"})
    );

    let booked = app.post("/v1/bookings", booking_body(biz_id, "2030-01-02T14:00:00Z", "2030-01-02T14:30:00Z")).await;
    assert_eq!(booked.status, 201, "{}", booked.body);
    assert_eq!(booked.body["status"], "confirmed");
    assert_eq!(booked.body["business_id"], biz_id);
    assert_eq!(booked.body["participants"][0]["email"], "alice@example.com");
    assert_eq!(booked.body["start_time"], "2030-01-02T14:00:00Z");
    let id = booked.body["id"].as_str().unwrap();
    assert!(id.starts_with("bkg_"));

    let after = app
        .get(&format!("/v1/availability/slots?business_id={biz_id}&from=2030-01-02T00:00:00Z&to=2030-01-03T00:00:00Z"))
        .await;
    let starts: Vec<&str> =
        after.body["slots"].as_array().unwrap().iter().map(|s| s["start"].as_str().unwrap()).collect();
    assert_eq!(starts.len(), 15);
    assert!(!starts.contains(&"2030-01-02T14:00:00Z"));

    let cancelled = app.post(&format!("/v1/bookings/{id}/cancel"), json!({"reason": "changed plans"})).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled");
    let again = app.send(Method::POST, &format!("/v1/bookings/{id}/cancel"), Some(&app.key), None, &[]).await;
    assert_eq!((again.status.as_u16(), &again.body), (200, &cancelled.body), "cancelling twice is a no-op");
    let mut fetched = app.get(&format!("/v1/bookings/{id}")).await.body;
    // GET adds where the booking's calendar events stand (none: no calendars connected).
    assert_eq!(fetched.as_object_mut().unwrap().remove("calendar_events"), Some(json!([])));
    // …and where its emails stand: one per recipient, now a cancellation (tested in emails.rs).
    let emails = fetched.as_object_mut().unwrap().remove("emails").unwrap();
    assert_eq!(emails.as_array().unwrap().len(), 2, "the customer and the host: {emails}");
    assert_eq!(fetched, cancelled.body);
    assert_eq!(event_types(&app).await, ["booking.created", "booking.cancelled"]);
    app.stop().await;
}

#[tokio::test]
async fn forty_concurrent_requests_for_one_slot_make_exactly_one_booking() {
    let app = TestApp::start().await;
    app.user("alice@example.com", "UTC").await;
    let biz = app
        .business(
            json!({"name": "Clinic", "timezone": "UTC", "hosts": ["alice@example.com"], "working_hours": all_week()}),
        )
        .await;
    let body = booking_body(&biz, "2030-01-02T10:00:00Z", "2030-01-02T10:30:00Z").to_string();
    let people = json!({"participants": ["user:alice@example.com"], "start": "2030-01-02T10:15:00Z", "end": "2030-01-02T10:45:00Z", "title": "1:1"}).to_string();
    let requests = (0..40).map(|i| {
        // A quarter of them come through the participants shape at an overlapping time.
        let body = if i % 4 == 0 { people.clone() } else { body.clone() };
        let app = &app;
        async move { app.send(Method::POST, "/v1/bookings", Some(&app.key), Some(&body), &[]).await }
    });
    let replies = join_all(requests).await;
    let created = replies.iter().filter(|r| r.status == 201).count();
    let conflicts: Vec<&Reply> = replies.iter().filter(|r| r.status == 409).collect();
    assert_eq!((created, conflicts.len()), (1, 39), "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    assert!(conflicts.iter().all(|r| r.body["error"]["code"] == "slot_unavailable"));
    let list = app.get("/v1/bookings").await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(event_types(&app).await, ["booking.created"]);
    let metrics = app.send(Method::GET, "/metrics", None, None, &[]).await;
    assert_eq!(metrics.status, 200);
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_response_and_refuses_another_body() {
    let app = TestApp::start().await;
    app.user("alice@example.com", "UTC").await;
    let biz = app
        .business(
            json!({"name": "Clinic", "timezone": "UTC", "hosts": ["alice@example.com"], "working_hours": all_week()}),
        )
        .await;
    let body = booking_body(&biz, "2030-01-02T10:00:00Z", "2030-01-02T10:30:00Z").to_string();
    let key = [("Idempotency-Key", "order-42")];
    let first = app.send(Method::POST, "/v1/bookings", Some(&app.key), Some(&body), &key).await;
    assert_eq!(first.status, 201);
    assert_eq!(first.headers["idempotent-replayed"], "false");
    app.clock.advance(SignedDuration::from_hours(2));
    let second = app.send(Method::POST, "/v1/bookings", Some(&app.key), Some(&body), &key).await;
    assert_eq!((second.status, &second.body), (first.status, &first.body));
    assert_eq!(second.headers["idempotent-replayed"], "true");

    let other = booking_body(&biz, "2030-01-02T11:00:00Z", "2030-01-02T11:30:00Z").to_string();
    let reused = app.send(Method::POST, "/v1/bookings", Some(&app.key), Some(&other), &key).await;
    assert_error(&reused, 422, "idempotency_key_reused", Some("Idempotency-Key"));
    assert_eq!(app.get("/v1/bookings").await.body["data"].as_array().unwrap().len(), 1, "the work was done once");

    // Keys belong to one tenant: another account may use the same key string.
    let other_key = app.new_key("globex", kairos_store::Mode::Test).await;
    let user = app
        .send(Method::POST, "/v1/users", Some(&other_key), Some(r#"{"email":"x@example.com","timezone":"UTC"}"#), &key)
        .await;
    assert_eq!(user.status, 201);

    // After 24 hours the key is forgotten.
    app.clock.advance(SignedDuration::from_hours(23));
    let later = app.send(Method::POST, "/v1/bookings", Some(&app.key), Some(&other), &key).await;
    assert_eq!(later.status, 201, "{}", later.body);
}

#[tokio::test]
async fn concurrent_requests_with_one_idempotency_key_do_the_work_once() {
    let app = TestApp::start().await;
    let body = r#"{"email": "same@example.com", "timezone": "UTC"}"#;
    let replies = join_all(
        (0..10).map(|_| app.send(Method::POST, "/v1/users", Some(&app.key), Some(body), &[("Idempotency-Key", "k-1")])),
    )
    .await;
    assert!(
        replies.iter().all(|r| r.status == 201),
        "{:?}",
        replies.iter().map(|r| (r.status, r.body.clone())).collect::<Vec<_>>()
    );
    assert!(replies.iter().all(|r| r.body == replies[0].body), "every caller sees the one user");
    assert_eq!(app.get("/v1/users").await.body["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_failed_request_releases_its_idempotency_key() {
    let app = TestApp::start().await;
    let key = [("Idempotency-Key", "retry-me")];
    let bad = app
        .send(
            Method::POST,
            "/v1/users",
            Some(&app.key),
            Some(r#"{"email": "x@example.com", "timezone": "Nowhere"}"#),
            &key,
        )
        .await;
    assert_eq!(bad.status, 422);
    let fixed = app
        .send(Method::POST, "/v1/users", Some(&app.key), Some(r#"{"email": "x@example.com", "timezone": "UTC"}"#), &key)
        .await;
    assert_eq!(fixed.status, 201, "a corrected retry may reuse the key: {}", fixed.body);
}

#[tokio::test]
async fn a_host_is_one_person_across_businesses_and_the_participants_shape() {
    let app = TestApp::start().await;
    app.user("alice@example.com", "Europe/Berlin").await;
    let one = app
        .business(
            json!({"name": "One", "timezone": "UTC", "hosts": ["alice@example.com"], "working_hours": all_week()}),
        )
        .await;
    let two = app
        .business(
            json!({"name": "Two", "timezone": "UTC", "hosts": ["user:alice@example.com"], "working_hours": all_week()}),
        )
        .await;
    assert_eq!(
        app.post("/v1/bookings", booking_body(&one, "2030-01-02T10:00:00Z", "2030-01-02T11:00:00Z")).await.status,
        201
    );
    let clash = app.post("/v1/bookings", booking_body(&two, "2030-01-02T10:30:00Z", "2030-01-02T11:30:00Z")).await;
    assert_error(&clash, 409, "slot_unavailable", None);
    assert!(clash.body["error"]["message"].as_str().unwrap().contains("alice@example.com"));
    let people = app.post("/v1/bookings", json!({"participants": ["user:alice@example.com"], "start": "2030-01-02T10:59:00Z", "end": "2030-01-02T11:30:00Z", "title": "x"})).await;
    assert_error(&people, 409, "slot_unavailable", None);
    let slots = app
        .get(&format!(
            "/v1/availability/slots?business_id={two}&from=2030-01-02T09:00:00Z&to=2030-01-02T12:00:00Z&duration=60"
        ))
        .await;
    let starts: Vec<&str> =
        slots.body["slots"].as_array().unwrap().iter().map(|s| s["start"].as_str().unwrap()).collect();
    assert_eq!(starts, ["2030-01-02T09:00:00Z", "2030-01-02T11:00:00Z"]);
}

#[tokio::test]
async fn busy_blocks_from_the_store_remove_slots_and_show_in_free_busy() {
    let app = TestApp::start().await;
    let alice = app.user("alice@example.com", "UTC").await;
    let bob = app.user("bob@example.com", "UTC").await;
    let t = tenant(&app).await;
    let iv = |a: &str, b: &str| Interval::new(a.parse().unwrap(), b.parse().unwrap()).unwrap();
    let blocks = [
        NewBusyBlock { interval: iv("2030-01-02T09:00:00Z", "2030-01-02T10:00:00Z"), source: "test".into() },
        NewBusyBlock { interval: iv("2030-01-02T09:30:00Z", "2030-01-02T10:30:00Z"), source: "test".into() },
    ];
    app.store.add_busy_blocks(&t, &alice, &blocks).await.unwrap();
    app.store
        .add_busy_blocks(
            &t,
            &bob,
            &[NewBusyBlock { interval: iv("2030-01-02T11:00:00Z", "2030-01-02T11:30:00Z"), source: "test".into() }],
        )
        .await
        .unwrap();

    let window = "from=2030-01-02T09:00:00Z&to=2030-01-02T12:00:00Z&duration=30";
    let slots = app.get(&format!("/v1/availability/slots?participants=user:alice@example.com,{bob}&{window}")).await;
    let starts: Vec<&str> =
        slots.body["slots"].as_array().unwrap().iter().map(|s| s["start"].as_str().unwrap()).collect();
    assert_eq!(starts, ["2030-01-02T10:30:00Z", "2030-01-02T11:30:00Z"]);

    let any = app.get(&format!("/v1/availability/slots?participants={alice},{bob}&mode=any&{window}")).await;
    let first = &any.body["slots"][0];
    assert_eq!(first["start"], "2030-01-02T09:00:00Z");
    assert_eq!(first["participants"], json!([{"id": bob, "email": "bob@example.com", "name": null}]));

    let fb = app.post("/v1/availability", json!({"time_min": "2030-01-02T09:45:00Z", "time_max": "2030-01-03T00:00:00Z", "attendees": [{"email": "alice@example.com"}, {"email": "BOB@example.com"}]})).await;
    assert_eq!(fb.status, 200, "{}", fb.body);
    assert_eq!(
        fb.body,
        json!({"result": [
            {"email": "alice@example.com", "busy": [{"start": "2030-01-02T09:45:00Z", "end": "2030-01-02T10:30:00Z"}]},
            {"email": "bob@example.com", "busy": [{"start": "2030-01-02T11:00:00Z", "end": "2030-01-02T11:30:00Z"}]}
        ]})
    );
}

#[tokio::test]
async fn reschedule_moves_a_booking_under_the_same_rules() {
    let app = TestApp::start().await;
    app.user("alice@example.com", "UTC").await;
    let biz = app
        .business(
            json!({"name": "Clinic", "timezone": "UTC", "hosts": ["alice@example.com"], "working_hours": all_week()}),
        )
        .await;
    let a = app.post("/v1/bookings", booking_body(&biz, "2030-01-02T10:00:00Z", "2030-01-02T10:30:00Z")).await.body;
    app.post("/v1/bookings", booking_body(&biz, "2030-01-02T12:00:00Z", "2030-01-02T12:30:00Z")).await;
    let id = a["id"].as_str().unwrap();
    let moved = app
        .post(
            &format!("/v1/bookings/{id}/reschedule"),
            json!({"start_time": "2030-01-02T10:15:00Z", "end_time": "2030-01-02T10:45:00Z"}),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(moved.body["start_time"], "2030-01-02T10:15:00Z");
    let clash = app
        .post(
            &format!("/v1/bookings/{id}/reschedule"),
            json!({"start": "2030-01-02T12:15:00Z", "end": "2030-01-02T12:45:00Z"}),
        )
        .await;
    assert_error(&clash, 409, "slot_unavailable", None);
    assert_eq!(app.get(&format!("/v1/bookings/{id}")).await.body["start_time"], "2030-01-02T10:15:00Z");
    app.post(&format!("/v1/bookings/{id}/cancel"), json!({})).await;
    let dead = app
        .post(
            &format!("/v1/bookings/{id}/reschedule"),
            json!({"start_time": "2030-01-03T10:00:00Z", "end_time": "2030-01-03T10:30:00Z"}),
        )
        .await;
    assert_error(&dead, 409, "booking_cancelled", None);
    assert_eq!(event_types(&app).await, ["booking.created", "booking.created", "booking.updated", "booking.cancelled"]);
}

#[tokio::test]
async fn the_customers_time_zone_stays_with_the_booking() {
    let app = TestApp::start().await;
    app.user("alice@example.com", "UTC").await;
    let biz = app
        .business(
            json!({"name": "Clinic", "timezone": "UTC", "hosts": ["alice@example.com"], "working_hours": all_week()}),
        )
        .await;
    let mut body = booking_body(&biz, "2030-01-02T10:00:00Z", "2030-01-02T10:30:00Z");
    body["customer_timezone"] = json!("Asia/Kolkata");
    let made = app.post("/v1/bookings", body).await;
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(made.body["customer_timezone"], "Asia/Kolkata");
    let id = made.body["id"].as_str().unwrap();
    let moved = app
        .post(
            &format!("/v1/bookings/{id}/reschedule"),
            json!({"start_time": "2030-01-02T11:00:00Z", "end_time": "2030-01-02T11:30:00Z"}),
        )
        .await;
    assert_eq!(moved.body["customer_timezone"], "Asia/Kolkata", "{}", moved.body);
    assert_eq!(app.get(&format!("/v1/bookings/{id}")).await.body["customer_timezone"], "Asia/Kolkata");
    let page = app.store.outbox_events(&tenant(&app).await, &PageRequest { limit: 10, cursor: None }).await.unwrap();
    for event in page.data {
        let envelope: Value = serde_json::from_str(&event.payload).unwrap();
        assert_eq!(envelope["data"]["booking"]["customer_timezone"], "Asia/Kolkata", "{}", event.event_type);
    }
    // Without one, the field is absent rather than null.
    let plain = app.post("/v1/bookings", booking_body(&biz, "2030-01-02T13:00:00Z", "2030-01-02T13:30:00Z")).await;
    assert!(plain.body.get("customer_timezone").is_none(), "{}", plain.body);
}

#[tokio::test]
async fn bookings_list_filters_and_pages_newest_first() {
    let app = TestApp::start().await;
    let biz = app.business(json!({"name": "Room", "timezone": "UTC", "working_hours": all_week()})).await;
    let mut ids = Vec::new();
    for hour in 10..15 {
        let r = app
            .post(
                "/v1/bookings",
                booking_body(&biz, &format!("2030-01-02T{hour}:00:00Z"), &format!("2030-01-02T{hour}:30:00Z")),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        ids.push(r.body["id"].as_str().unwrap().to_string());
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    app.post(&format!("/v1/bookings/{}/cancel", ids[1]), json!({})).await;
    ids.reverse();
    let page = app.get("/v1/bookings?limit=2").await;
    let got: Vec<&str> = page.body["data"].as_array().unwrap().iter().map(|b| b["id"].as_str().unwrap()).collect();
    assert_eq!(got, [ids[0].as_str(), ids[1].as_str()]);
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let next = app.get(&format!("/v1/bookings?limit=2&cursor={cursor}")).await;
    assert_eq!(next.body["data"][0]["id"], ids[2].as_str());
    let last = app.get(&format!("/v1/bookings?limit=2&cursor={}", next.body["next_cursor"].as_str().unwrap())).await;
    assert_eq!((last.body["data"].as_array().unwrap().len(), &last.body["next_cursor"]), (1, &Value::Null));
    let cancelled = app.get("/v1/bookings?status=cancelled").await;
    assert_eq!(cancelled.body["data"].as_array().unwrap().len(), 1);
    let window = app.get("/v1/bookings?from=2030-01-02T11:15:00Z&to=2030-01-02T13:00:00Z&status=confirmed").await;
    assert_eq!(window.body["data"].as_array().unwrap().len(), 1, "11:00 is cancelled, 12:00 is in the window");
    let by_customer = app.get(&format!("/v1/bookings?customer_email=JANE@example.com&business_id={biz}")).await;
    assert_eq!(by_customer.body["data"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn slots_in_a_display_zone_carry_that_zones_offset_on_a_dst_day() {
    let app = TestApp::start().await;
    app.clock.set("2027-03-01T00:00:00Z".parse().unwrap());
    let biz = app.business(json!({"name": "NY", "timezone": "America/New_York", "working_hours": all_week()})).await;
    let r = app.get(&format!("/v1/availability/slots?business_id={biz}&from=2027-03-14T05:00:00Z&to=2027-03-15T04:00:00Z&duration=60&timezone=America/New_York")).await;
    let slots = r.body["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 23, "the spring-forward day has 23 hours");
    assert_eq!(slots[1]["start"], "2027-03-14T01:00:00-05:00");
    assert_eq!(slots[2]["start"], "2027-03-14T03:00:00-04:00");
    assert_eq!(slots[2]["description"], "Sunday, March 14 at 3:00 AM EDT");
}

#[tokio::test]
async fn an_override_time_the_clocks_skip_is_refused_and_changes_nothing() {
    let app = TestApp::start().await;
    let gap = json!({"2027-03-14": [{"start": "09:00", "end": "12:00"}, {"start": "02:30", "end": "04:00"}]});
    let r = app
        .post("/v1/users", json!({"email": "a@example.com", "timezone": "America/New_York", "date_overrides": gap}))
        .await;
    assert_error(&r, 422, "parameter_invalid", Some("date_overrides.2027-03-14[1].start"));
    assert!(r.body["error"]["message"].as_str().unwrap().contains("does not exist"));
    // The same hours are fine in a zone without that gap, until the zone changes under them.
    let ok = app
        .post("/v1/users", json!({"email": "a@example.com", "timezone": "Europe/Berlin", "date_overrides": gap}))
        .await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    let id = ok.body["id"].as_str().unwrap();
    let moved = app.patch(&format!("/v1/users/{id}"), json!({"timezone": "America/New_York"})).await;
    assert_error(&moved, 422, "parameter_invalid", Some("date_overrides.2027-03-14[1].start"));
    assert_eq!(app.get(&format!("/v1/users/{id}")).await.body, ok.body, "the refused PATCH changed nothing");
}

#[tokio::test]
async fn concurrent_patches_keep_each_others_changes() {
    let app = TestApp::start().await;
    app.user("a@example.com", "UTC").await;
    app.user("b@example.com", "UTC").await;
    for round in 0..10 {
        let biz = app.business(json!({"name": "Old", "timezone": "UTC", "hosts": ["a@example.com"]})).await;
        let path = format!("/v1/businesses/{biz}");
        let name = format!("New {round}");
        let (r1, r2) = tokio::join!(
            app.patch(&path, json!({"name": name})),
            app.patch(&path, json!({"hosts": ["b@example.com"]}))
        );
        assert_eq!((r1.status.as_u16(), r2.status.as_u16()), (200, 200));
        let now = app.get(&path).await.body;
        assert_eq!(now["name"], name.as_str());
        assert_eq!(now["hosts"], r2.body["hosts"], "the hosts change survived the name change");
    }
}
