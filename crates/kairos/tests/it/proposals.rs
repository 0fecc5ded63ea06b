//! Proposals over HTTP: consensus (accept, counter, reject, a conflict at agreement), Kairos
//! picking the slots, polls (named and open, close, tie-breaks), the expiry sweep, forged
//! tokens, the response page, and bad input.

use kairos_store::{Mode, PageRequest, Tenant};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

const A: &str = "2030-01-02T10:00:00Z";
const B: &str = "2030-01-02T11:00:00Z";
const C: &str = "2030-01-03T10:00:00Z";

fn slots(starts: &[&str]) -> Value {
    Value::Array(
        starts
            .iter()
            .map(|s| {
                let start: jiff::Timestamp = s.parse().unwrap();
                json!({"start": s, "end": (start + jiff::SignedDuration::from_mins(30)).to_string()})
            })
            .collect(),
    )
}

async fn three_people(app: &TestApp) {
    for email in ["org@example.com", "ann@example.com", "ben@example.com"] {
        app.user(email, "UTC").await;
    }
}

/// The path of a response URL (`http://…/p/{token}` → `/p/{token}`).
fn path_of(url: &Value) -> String {
    let url = url.as_str().expect("a response url");
    url[url.find("/p/").expect("a /p/ link")..].to_string()
}

async fn respond(app: &TestApp, link: &str, body: Value) -> Reply {
    app.send(Method::POST, link, None, Some(&body.to_string()), &[]).await
}

async fn event_types(app: &TestApp) -> Vec<(String, Value)> {
    let t = tenant(app).await;
    let mut events = app.store.outbox_events(&t, &PageRequest { limit: 100, cursor: None }).await.unwrap().data;
    events.reverse();
    events.into_iter().map(|e| (e.event_type, serde_json::from_str(&e.payload).unwrap())).collect()
}

async fn tenant(app: &TestApp) -> Tenant {
    let hash = kairos_store::keys::hash(&app.key);
    app.store.tenant_for_key(&hash).await.unwrap().expect("the test key's tenant")
}

fn slot_id(p: &Value, start: &str) -> String {
    p["slots"].as_array().unwrap().iter().find(|s| s["start"] == start).expect("slot")["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn consensus_counters_then_books_when_every_required_participant_agrees() {
    let app = TestApp::start().await;
    three_people(&app).await;
    let made = app
        .post(
            "/v1/proposals",
            json!({"title": "Roadmap", "duration_minutes": 30, "organiser": "user:org@example.com",
                "participants": [{"email": "ann@example.com", "required": true}, {"email": "Ben@Example.com"},
                                 {"email": "carol@outside.example", "required": false}],
                "slots": slots(&[A, B]), "mode": "consensus"}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let p = made.body.clone();
    let id = p["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("prop_") && p["thread_id"].as_str().unwrap().starts_with("thr_"));
    assert_eq!(p["status"], "open");
    let people = p["participants"].as_array().unwrap();
    assert_eq!(people[1]["email"], "ben@example.com");
    assert_eq!((people[1]["required"].as_bool(), people[2]["required"].as_bool()), (Some(true), Some(false)));
    assert!(people[0]["user_id"].as_str().is_some() && people[2].get("user_id").is_none(), "carol is no Kairos user");
    let (ann, ben) = (path_of(&people[0]["response_url"]), path_of(&people[1]["response_url"]));
    assert_eq!(ann.len(), "/p/".len() + 43, "256-bit tokens");
    assert_ne!(ann, ben);
    // Links are shown once: they are stored only as hashes.
    let read = app.get(&format!("/v1/proposals/{id}")).await;
    assert_eq!(read.status, 200);
    assert!(read.body["participants"][0].get("response_url").is_none());
    assert_eq!(read.body["slots"], p["slots"]);

    let accepted = respond(&app, &ann, json!({"action": "accept", "slot_id": slot_id(&p, A)})).await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    assert_eq!(accepted.body["you"]["status"], "accepted");
    assert!(accepted.body.get("participants").is_none(), "a link shows nobody else's address");
    let later = "2030-01-04T15:00:00Z";
    let countered = respond(&app, &ben, json!({"action": "counter", "slots": slots(&[later])})).await;
    assert_eq!(countered.status, 200, "{}", countered.body);
    assert_eq!(countered.body["status"], "open");
    let offered = slot_id(&countered.body, later);
    let seen_by_ann = respond(&app, &ann, json!({"action": "accept", "slot_id": slot_id(&p, A)})).await;
    assert!(
        !seen_by_ann.body.to_string().contains("ben@example.com"),
        "who countered stays private: {}",
        seen_by_ann.body
    );
    let bad_time =
        respond(&app, &ben, json!({"action": "counter", "slots": [{"start": "tomorrow", "end": later}]})).await;
    assert_error(&bad_time, 422, "parameter_invalid", Some("slots[0].start"));
    let long = respond(&app, &ben, json!({"action": "reject", "reason": "x".repeat(501)})).await;
    assert_error(&long, 422, "parameter_invalid", Some("reason"));
    let agreed = respond(&app, &ann, json!({"action": "accept", "slot_id": offered})).await;
    assert_eq!(agreed.status, 200, "{}", agreed.body);
    assert_eq!(agreed.body["status"], "accepted");

    let p = app.get(&format!("/v1/proposals/{id}")).await.body;
    let booking_id = p["booking_id"].as_str().expect("booked").to_string();
    let booking = app.get(&format!("/v1/bookings/{booking_id}")).await.body;
    assert_eq!((booking["start_time"].as_str(), booking["status"].as_str()), (Some(later), Some("confirmed")));
    let mut who: Vec<&str> =
        booking["participants"].as_array().unwrap().iter().map(|x| x["email"].as_str().unwrap()).collect();
    who.sort();
    assert_eq!(who, ["ann@example.com", "ben@example.com", "org@example.com"]);

    let events = event_types(&app).await;
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["proposal.created", "proposal.countered", "booking.created", "proposal.accepted"]);
    assert_eq!(events[1].1["data"]["participant"], "ben@example.com");
    assert_eq!(events[3].1["data"]["booking_id"], booking_id.as_str());
    assert_eq!(events[3].1["data"]["accepted_slot"]["start"], later);

    // Closed to further answers; cancelling cancels the booking too.
    let late = respond(&app, &ben, json!({"action": "reject"})).await;
    assert_error(&late, 409, "proposal_closed", None);
    let cancelled = app.post(&format!("/v1/proposals/{id}/cancel"), json!({"reason": "Plans changed"})).await;
    assert_eq!((cancelled.status.as_u16(), cancelled.body["status"].as_str()), (200, Some("cancelled")));
    assert_eq!(app.get(&format!("/v1/bookings/{booking_id}")).await.body["status"], "cancelled");
    let again = app.post(&format!("/v1/proposals/{id}/cancel"), json!({})).await;
    assert_eq!(again.status, 200, "cancelling twice changes nothing");
    let types: Vec<String> = event_types(&app).await.into_iter().map(|(t, _)| t).collect();
    assert_eq!(types[4..], ["booking.cancelled", "proposal.cancelled"]);
}

#[tokio::test]
async fn an_agreement_on_a_taken_slot_is_a_409_and_the_proposal_reports_it() {
    let app = TestApp::start().await;
    three_people(&app).await;
    let p = app
        .post(
            "/v1/proposals",
            json!({"title": "Sync", "duration_minutes": 30, "organiser": "org@example.com",
                "participants": [{"email": "ann@example.com"}, {"email": "ben@example.com"}], "slots": slots(&[A, B])}),
        )
        .await
        .body;
    let id = p["id"].as_str().unwrap();
    let (ann, ben) = (path_of(&p["participants"][0]["response_url"]), path_of(&p["participants"][1]["response_url"]));
    // Ben is booked at A meanwhile.
    let taken = app
        .post("/v1/bookings", json!({"participants": ["user:ben@example.com"], "start": A, "end": "2030-01-02T10:30:00Z", "title": "Dentist"}))
        .await;
    assert_eq!(taken.status, 201, "{}", taken.body);
    assert_eq!(respond(&app, &ann, json!({"action": "accept", "slot_id": slot_id(&p, A)})).await.status, 200);
    let conflict = respond(&app, &ben, json!({"action": "accept", "slot_id": slot_id(&p, A)})).await;
    assert_error(&conflict, 409, "slot_unavailable", None);
    assert!(conflict.body["error"]["message"].as_str().unwrap().contains("ben@example.com"));
    let now = app.get(&format!("/v1/proposals/{id}")).await.body;
    assert_eq!(now["status"], "open");
    assert_eq!(now["conflict"]["code"], "slot_unavailable");
    assert_eq!(now["participants"][1]["status"], "pending", "Ben's answer was not kept");
    let types: Vec<String> = event_types(&app).await.into_iter().map(|(t, _)| t).collect();
    assert_eq!(types, ["proposal.created", "booking.created"], "no proposal event for what did not happen");
    // B still works.
    respond(&app, &ann, json!({"action": "accept", "slot_id": slot_id(&p, B)})).await;
    let ok = respond(&app, &ben, json!({"action": "accept", "slot_id": slot_id(&p, B)})).await;
    assert_eq!(ok.body["status"], "accepted", "{}", ok.body);
}

#[tokio::test]
async fn a_required_rejection_rejects_and_closes_the_proposal() {
    let app = TestApp::start().await;
    three_people(&app).await;
    let p = app
        .post(
            "/v1/proposals",
            json!({"title": "Offsite", "duration_minutes": 30, "organiser": "org@example.com",
                "participants": [{"email": "ann@example.com"}, {"email": "ben@example.com", "required": false}],
                "slots": slots(&[A])}),
        )
        .await
        .body;
    let (ann, ben) = (path_of(&p["participants"][0]["response_url"]), path_of(&p["participants"][1]["response_url"]));
    let optional = respond(&app, &ben, json!({"action": "reject"})).await;
    assert_eq!(optional.body["status"], "open", "an optional participant's no decides nothing");
    let wrong = respond(&app, &ann, json!({"action": "vote", "slot_ids": []})).await;
    assert_error(&wrong, 409, "action_not_allowed", None);
    let unknown = respond(&app, &ann, json!({"action": "accept", "slot_id": "slot_nope"})).await;
    assert_error(&unknown, 422, "parameter_invalid", Some("slot_id"));
    let rejected = respond(&app, &ann, json!({"action": "reject", "reason": "On leave"})).await;
    assert_eq!(rejected.body["status"], "rejected", "{}", rejected.body);
    let events = event_types(&app).await;
    assert_eq!(events.last().unwrap().0, "proposal.rejected");
    assert_eq!(events.last().unwrap().1["data"]["reason"], "On leave");
    assert_error(
        &respond(&app, &ann, json!({"action": "accept", "slot_id": slot_id(&p, A)})).await,
        409,
        "proposal_closed",
        None,
    );
}

#[tokio::test]
async fn kairos_picks_three_common_free_slots_when_none_are_given() {
    let app = TestApp::start().await;
    app.user("org@example.com", "UTC").await;
    // Ann works 14:00–17:00 New York time on weekdays; Ben is busy on the first of those days.
    let hours = json!([{"start": "14:00", "end": "17:00"}]);
    let week = json!({"monday": hours, "tuesday": hours, "wednesday": hours, "thursday": hours, "friday": hours});
    let r = app
        .post("/v1/users", json!({"email": "ann@example.com", "timezone": "America/New_York", "working_hours": week}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    app.user("ben@example.com", "UTC").await;
    let busy = app
        .post("/v1/bookings", json!({"participants": ["user:ben@example.com"], "start": "2030-01-01T19:00:00Z", "end": "2030-01-01T22:00:00Z", "title": "Busy"}))
        .await;
    assert_eq!(busy.status, 201, "{}", busy.body);
    let made = app
        .post(
            "/v1/proposals",
            json!({"title": "Pick for us", "duration_minutes": 60, "organiser": "org@example.com",
                "participants": [{"email": "ann@example.com"}, {"email": "ben@example.com"}, {"email": "zoe@outside.example"}]}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let picked = made.body["slots"].as_array().unwrap();
    assert_eq!(picked.len(), 3);
    let starts: Vec<&str> = picked.iter().map(|s| s["start"].as_str().unwrap()).collect();
    // 14:00 New York is 19:00 UTC in January; Jan 1 is Ben's busy day, so Jan 2, 3 and 4.
    assert_eq!(starts, ["2030-01-02T19:00:00Z", "2030-01-03T19:00:00Z", "2030-01-04T19:00:00Z"]);
    // Nobody is free: a clear 409.
    let nobody = app
        .post(
            "/v1/proposals",
            json!({"title": "Never", "duration_minutes": 1440, "organiser": "org@example.com",
                "participants": [{"email": "ann@example.com"}]}),
        )
        .await;
    assert_error(&nobody, 409, "no_common_availability", None);
}

#[tokio::test]
async fn a_named_poll_resolves_when_everyone_has_voted_with_the_reference_event() {
    let app = TestApp::start().await;
    three_people(&app).await;
    let p = app
        .post(
            "/v1/proposals",
            json!({"title": "Team dinner", "duration_minutes": 120, "organiser": "org@example.com", "mode": "poll",
                "participants": [{"email": "ann@example.com"}, {"email": "ben@example.com"}],
                "slots": [{"start": A, "end": "2030-01-02T12:00:00Z"}, {"start": C, "end": "2030-01-03T12:00:00Z"}]}),
        )
        .await
        .body;
    assert_eq!(p["poll_variant"], "named");
    assert!(p.get("vote_url").is_none(), "named polls have no shared link");
    let (ann, ben) = (path_of(&p["participants"][0]["response_url"]), path_of(&p["participants"][1]["response_url"]));
    let (a, c) = (slot_id(&p, A), slot_id(&p, C));
    assert_eq!(respond(&app, &ann, json!({"action": "vote", "slot_ids": [a]})).await.body["status"], "open");
    respond(&app, &ann, json!({"action": "vote", "slot_ids": [c]})).await; // changed her mind
    let last = respond(&app, &ben, json!({"action": "vote", "slot_ids": [a, c]})).await;
    assert_eq!(last.body["status"], "resolved", "{}", last.body);
    assert_eq!(last.body["result"]["winning_slot"]["id"], c.as_str());
    let (kind, event) = event_types(&app).await.pop().unwrap();
    assert_eq!(kind, "proposal.resolved");
    let data = event["data"].as_object().unwrap();
    let mut keys: Vec<&str> = data.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["poll_variant", "proposal_id", "thread_id", "tie_count", "total_votes", "vote_count", "winning_slot"]
    );
    assert_eq!(
        (data["vote_count"].as_u64(), data["total_votes"].as_u64(), data["tie_count"].as_u64()),
        (Some(2), Some(2), Some(1))
    );
    assert_eq!(data["winning_slot"], json!({"id": c, "start": C, "end": "2030-01-03T12:00:00Z"}));
    assert_eq!(data["poll_variant"], "named");
    assert_eq!(data["thread_id"], p["thread_id"]);
}

#[tokio::test]
async fn an_open_poll_takes_votes_by_name_and_ties_go_to_the_earliest_when_closed() {
    let app = TestApp::start().await;
    app.user("org@example.com", "UTC").await;
    let p = app
        .post(
            "/v1/proposals",
            json!({"title": "Book club", "duration_minutes": 60, "organiser": "org@example.com", "mode": "poll",
                "poll_variant": "open", "slots": [{"start": C, "end": "2030-01-03T11:00:00Z"}, {"start": A, "end": "2030-01-02T11:00:00Z"}]}),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.body);
    let p = p.body;
    let id = p["id"].as_str().unwrap();
    let vote = path_of(&p["vote_url"]);
    let (a, c) = (slot_id(&p, A), slot_id(&p, C));
    assert_error(&app.post(&format!("/v1/proposals/{id}/close"), json!({})).await, 409, "no_votes", None);
    assert_error(
        &respond(&app, &vote, json!({"action": "vote", "slot_ids": [a]})).await,
        422,
        "parameter_missing",
        Some("name"),
    );
    assert_error(
        &respond(&app, &vote, json!({"action": "accept", "slot_id": a})).await,
        422,
        "parameter_invalid",
        Some("action"),
    );
    respond(&app, &vote, json!({"action": "vote", "slot_ids": [c], "name": "Mia"})).await;
    respond(&app, &vote, json!({"action": "vote", "slot_ids": [a], "name": "Leo"})).await;
    let sam = respond(&app, &vote, json!({"action": "vote", "slot_ids": [a, c], "name": "Sam"})).await;
    let sam_key = sam.body["voter_key"].as_str().expect("a voter key for Sam").to_string();
    // Only Sam can change Sam's vote.
    let impostor = respond(&app, &vote, json!({"action": "vote", "slot_ids": [a], "name": "SAM"})).await;
    assert_error(&impostor, 409, "name_taken", Some("name"));
    let changed =
        respond(&app, &vote, json!({"action": "vote", "slot_ids": [c], "name": "sam", "voter_key": sam_key})).await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(changed.body["status"], "open");
    let closed = app.post(&format!("/v1/proposals/{id}/close"), json!({})).await;
    assert_eq!(closed.status, 200, "{}", closed.body);
    // C has Mia and Sam (2), A has Leo (1).
    assert_eq!(closed.body["result"]["winning_slot"]["id"], c.as_str());
    assert_eq!(closed.body["result"]["total_votes"], 3);
    assert_eq!(closed.body["open_votes"].as_array().unwrap().len(), 3);

    // A tie: the earliest start wins.
    let tie = app
        .post(
            "/v1/proposals",
            json!({"title": "Tie", "duration_minutes": 60, "organiser": "org@example.com", "mode": "poll",
                "poll_variant": "open", "slots": [{"start": C, "end": "2030-01-03T11:00:00Z"}, {"start": A, "end": "2030-01-02T11:00:00Z"}]}),
        )
        .await
        .body;
    let vote = path_of(&tie["vote_url"]);
    respond(&app, &vote, json!({"action": "vote", "slot_ids": [slot_id(&tie, C)], "name": "Mia"})).await;
    respond(&app, &vote, json!({"action": "vote", "slot_ids": [slot_id(&tie, A)], "name": "Leo"})).await;
    let closed = app.post(&format!("/v1/proposals/{}/close", tie["id"].as_str().unwrap()), json!({})).await.body;
    assert_eq!(closed["result"]["winning_slot"]["start"], A);
    assert_eq!(closed["result"]["tie_count"], 2);
}

#[tokio::test]
async fn the_sweep_expires_proposals_and_resolves_polls_at_expiry() {
    let app = TestApp::start().await;
    three_people(&app).await;
    // The background clock runs from NOW; these expire two seconds in.
    let soon = "2030-01-01T08:00:02Z";
    let consensus = app
        .post(
            "/v1/proposals",
            json!({"title": "Soon", "duration_minutes": 30, "organiser": "org@example.com",
                "participants": [{"email": "ann@example.com"}], "slots": slots(&[A]), "expires_at": soon}),
        )
        .await
        .body;
    let poll = app
        .post(
            "/v1/proposals",
            json!({"title": "Soon poll", "duration_minutes": 30, "organiser": "org@example.com", "mode": "poll",
                "participants": [{"email": "ann@example.com"}, {"email": "ben@example.com"}], "slots": slots(&[A, B]), "expires_at": soon}),
        )
        .await
        .body;
    let ann = path_of(&poll["participants"][0]["response_url"]);
    respond(&app, &ann, json!({"action": "vote", "slot_ids": [slot_id(&poll, B)]})).await;
    let (c_id, p_id) = (consensus["id"].as_str().unwrap(), poll["id"].as_str().unwrap());
    eventually("both proposals are swept", || async {
        app.get(&format!("/v1/proposals/{c_id}")).await.body["status"] == "expired"
            && app.get(&format!("/v1/proposals/{p_id}")).await.body["status"] == "resolved"
    })
    .await;
    let types: Vec<String> = event_types(&app).await.into_iter().map(|(t, _)| t).collect();
    assert!(
        types.contains(&"proposal.expired".to_string()) && types.contains(&"proposal.resolved".to_string()),
        "{types:?}"
    );
    let expired = app.get("/v1/proposals?status=expired").await.body;
    assert_eq!(expired["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn forged_and_foreign_links_and_ids_are_404() {
    let app = TestApp::start().await;
    three_people(&app).await;
    let p = app
        .post(
            "/v1/proposals",
            json!({"title": "Secret", "duration_minutes": 30, "organiser": "org@example.com",
                "participants": [{"email": "ann@example.com"}], "slots": slots(&[A])}),
        )
        .await
        .body;
    let real = path_of(&p["participants"][0]["response_url"]);
    // A forged token of the right shape, one character changed, and nonsense.
    let mut forged = real.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    for link in [forged.as_str(), "/p/not-a-token", "/p/"] {
        let r = respond(&app, link, json!({"action": "reject"})).await;
        assert_eq!(r.status, 404, "{link}: {}", r.body);
    }
    let page = app.client.get(format!("{}{forged}", app.base)).send().await.unwrap();
    assert_eq!(page.status(), 404);
    assert_eq!(app.get(&format!("/v1/proposals/{}", p["id"].as_str().unwrap())).await.body["status"], "open");
    // Another account cannot see or act on it.
    let other = app.new_key("globex", Mode::Test).await;
    let id = p["id"].as_str().unwrap();
    let seen = app.send(Method::GET, &format!("/v1/proposals/{id}"), Some(&other), None, &[]).await;
    assert_error(&seen, 404, "resource_missing", None);
    let cancel = app.send(Method::POST, &format!("/v1/proposals/{id}/cancel"), Some(&other), Some("{}"), &[]).await;
    assert_eq!(cancel.status, 404);
    assert_eq!(app.send(Method::GET, "/v1/proposals", None, None, &[]).await.status, 401);
}

#[tokio::test]
async fn the_response_page_shows_the_proposal_and_takes_a_form_answer() {
    let app = TestApp::start().await;
    three_people(&app).await;
    let p = app
        .post(
            "/v1/proposals",
            json!({"title": "Design review", "duration_minutes": 30, "organiser": "org@example.com",
                "participants": [{"email": "ann@example.com"}, {"email": "ben@example.com"}], "slots": slots(&[A, B])}),
        )
        .await
        .body;
    let ann = path_of(&p["participants"][0]["response_url"]);
    let page = app.client.get(format!("{}{ann}?tz=America/New_York", app.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let set_cookie = page.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(set_cookie.contains("Path=/p/"), "a browser sends the form's cookie back to /p/: {set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let html = page.text().await.unwrap();
    assert!(html.contains("Design review") && html.contains("Wednesday, January 2 at 5:00 AM EST"), "{html}");
    assert!(!html.contains("ben@example.com"), "no other participant's address");
    let csrf = cookie.split('=').nth(1).unwrap().to_string();
    let form = format!("csrf={csrf}&tz=America%2FNew_York&action=accept&slot_id={}", slot_id(&p, B));
    let answered = app
        .client
        .post(format!("{}{ann}", app.base))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), 200);
    assert!(answered.text().await.unwrap().contains("your answer is saved"));
    let id = p["id"].as_str().unwrap();
    assert_eq!(app.get(&format!("/v1/proposals/{id}")).await.body["participants"][0]["status"], "accepted");
    // Without the cookie the form is refused.
    let forged = app
        .client
        .post(format!("{}{ann}", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
}

#[tokio::test]
async fn bad_proposals_name_the_field_and_write_nothing() {
    let app = TestApp::start().await;
    three_people(&app).await;
    let ok = json!({"title": "T", "duration_minutes": 30, "organiser": "org@example.com",
        "participants": [{"email": "ann@example.com"}], "slots": slots(&[A])});
    let with = |key: &str, value: Value| {
        let mut body = ok.clone();
        body[key] = value;
        body
    };
    let cases = [
        (with("title", json!("")), 422, "title"),
        (with("duration_minutes", json!(2)), 422, "duration_minutes"),
        (with("mode", json!("vote")), 422, "mode"),
        (with("poll_variant", json!("open")), 422, "poll_variant"),
        (with("organiser", json!("nobody@example.com")), 404, "organiser"),
        (with("participants", json!([{"email": "not-an-email"}])), 422, "participants[0].email"),
        (with("participants", json!([])), 422, "participants"),
        (with("participants", json!([{"email": "org@example.com"}])), 422, "participants[0].email"),
        (with("slots", json!([{"start": A, "end": "2030-01-02T10:45:00Z"}])), 422, "slots[0].end"),
        (
            with("slots", json!([{"start": "2029-12-31T10:00:00Z", "end": "2029-12-31T10:30:00Z"}])),
            422,
            "slots[0].start",
        ),
        (with("expires_at", json!("2029-12-31T10:00:00Z")), 422, "expires_at"),
    ];
    for (body, status, param) in cases {
        let r = app.post("/v1/proposals", body.clone()).await;
        assert_eq!(r.status.as_u16(), status, "{body}: {}", r.body);
        assert_eq!(r.body["error"]["param"], param, "{body}: {}", r.body);
    }
    let malformed = app.send(Method::POST, "/v1/proposals", Some(&app.key), Some("{not json"), &[]).await;
    assert_eq!(malformed.status, 400);
    assert!(app.get("/v1/proposals").await.body["data"].as_array().unwrap().is_empty(), "nothing was written");
    assert!(event_types(&app).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_participant_is_emailed_their_own_working_link() {
    let Some(smtp) = kairos_emulators::smtp::SmtpServer::start() else { return };
    let url = smtp.url();
    let app = TestApp::start_with(move |config| {
        config.email.smtp_url = Some(url);
        config.email.from = Some("Kairos <proposals@kairos.test>".into());
    })
    .await;
    three_people(&app).await;
    let p = app
        .post(
            "/v1/proposals",
            json!({"title": "Hiring panel", "duration_minutes": 30, "organiser": "org@example.com",
                "participants": [{"email": "ann@example.com"}, {"email": "dan@outside.example", "name": "Dan"}],
                "slots": slots(&[A, B])}),
        )
        .await
        .body;
    let messages = tokio::task::block_in_place(|| smtp.wait_for(2, std::time::Duration::from_secs(20)));
    assert_eq!(messages.len(), 2);
    let mut links = Vec::new();
    for raw in &messages {
        let message = mail_parser::MessageParser::default().parse(raw.as_bytes()).unwrap();
        let to = message.to().and_then(|a| a.first()).and_then(|a| a.address()).unwrap().to_string();
        let text = message.body_text(0).unwrap().to_string();
        assert!(message.subject().unwrap().contains("Hiring panel"), "{:?}", message.subject());
        let at = text.find("/p/").expect("the link is in the email");
        let link: String = text[at..].chars().take_while(|c| !c.is_whitespace()).collect();
        let mine = p["participants"].as_array().unwrap().iter().find(|r| r["email"] == to.as_str()).unwrap();
        assert_eq!(link, path_of(&mine["response_url"]), "{to} gets their own link");
        links.push(link);
    }
    assert_ne!(links[0], links[1]);
    let answered = respond(&app, &links[0], json!({"action": "accept", "slot_id": slot_id(&p, A)})).await;
    assert_eq!(answered.status, 200, "{}", answered.body);
    let t = tenant(&app).await;
    let id = p["id"].as_str().unwrap();
    eventually("both invitations are recorded as sent, their links erased", || async {
        let rows = app.store.proposal_emails(&t, id).await.unwrap();
        rows.len() == 2 && rows.iter().all(|e| e.status == "sent" && e.link_sealed.is_none())
    })
    .await;
}

#[tokio::test]
async fn response_links_are_not_kept_in_the_clear_even_for_idempotent_replays() {
    let app = TestApp::start().await;
    three_people(&app).await;
    let body = json!({"title": "Keyed", "duration_minutes": 30, "organiser": "org@example.com",
        "participants": [{"email": "ann@example.com"}], "slots": slots(&[A]), "mode": "poll", "poll_variant": "open"})
    .to_string();
    let headers = [("Idempotency-Key", "proposal-1")];
    let first = app.send(Method::POST, "/v1/proposals", Some(&app.key), Some(&body), &headers).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let replay = app.send(Method::POST, "/v1/proposals", Some(&app.key), Some(&body), &headers).await;
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    assert_eq!(replay.body, first.body, "the replay is the first response, links included");
    // Nothing stored holds a link's token: not the idempotency row, not the events, not the proposal.
    let tokens: Vec<String> = [&first.body["participants"][0]["response_url"], &first.body["vote_url"]]
        .iter()
        .map(|u| path_of(u).trim_start_matches("/p/").to_string())
        .collect();
    if !on_postgres() {
        let db = rusqlite::Connection::open(&app.db_path).unwrap();
        let dump: Vec<String> = db
            .prepare("SELECT body FROM idempotency_keys UNION ALL SELECT payload FROM outbox_events UNION ALL SELECT document FROM proposals")
            .unwrap()
            .query_map([], |r| r.get::<_, Option<String>>(0))
            .unwrap()
            .filter_map(|r| r.unwrap())
            .collect();
        assert!(dump.len() >= 3);
        for token in &tokens {
            assert!(dump.iter().all(|row| !row.contains(token.as_str())), "a token at rest");
        }
    }
}

/// A received email's recipient, subject, text, and its calendar part's `method=` with the
/// VEVENT's properties (METHOD included) when it has one.
struct Mail {
    to: String,
    subject: String,
    text: String,
    invite: Option<(String, Vec<(String, String)>)>,
}

impl Mail {
    fn parse(raw: &str) -> Mail {
        use mail_parser::{MimeHeaders, PartType};
        let message = mail_parser::MessageParser::default().parse(raw.as_bytes()).unwrap();
        let to = message.to().and_then(|a| a.first()).and_then(|a| a.address()).unwrap().to_string();
        let calendar = message
            .parts
            .iter()
            .find(|p| p.content_type().is_some_and(|t| t.ctype() == "text" && t.subtype() == Some("calendar")));
        let invite = calendar.map(|part| {
            let method = part.content_type().unwrap().attribute("method").unwrap().to_string();
            let ics = match &part.body {
                PartType::Text(t) => t.to_string(),
                PartType::Binary(b) | PartType::InlineBinary(b) => String::from_utf8(b.to_vec()).unwrap(),
                other => panic!("{other:?}"),
            };
            let top = kairos_core::calendar::ical::parse(&ics).expect("the invitation parses");
            let mut props = vec![("METHOD".to_string(), top[0].text("METHOD").unwrap_or_default())];
            let event = top[0].components.iter().find(|c| c.name == "VEVENT").expect("a VEVENT");
            props.extend(event.properties.iter().map(|p| (p.name.clone(), p.value.clone())));
            (method, props)
        });
        Mail {
            to,
            subject: message.subject().unwrap().to_string(),
            text: message.body_text(0).unwrap().to_string(),
            invite,
        }
    }

    /// The calendar part's `method=` and the value of each property `names` lists.
    fn invite(&self, names: &[&str]) -> (String, Vec<String>) {
        let (method, props) = self.invite.as_ref().expect("a text/calendar part");
        let value = |name: &str| props.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap_or_default();
        (method.clone(), names.iter().map(|n| value(n)).collect())
    }
}

/// Waits for `n` emails, then those sent to `to`, oldest first.
fn mails_to(smtp: &kairos_emulators::smtp::SmtpServer, n: usize, to: &str) -> Vec<Mail> {
    let messages = tokio::task::block_in_place(|| smtp.wait_for(n, std::time::Duration::from_secs(20)));
    assert!(messages.len() >= n, "expected {n} emails, got {}", messages.len());
    messages.iter().map(|m| Mail::parse(m)).filter(|m| m.to == to).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outsider_is_sent_the_agreed_time_with_the_bookings_invitation() {
    let Some(smtp) = kairos_emulators::smtp::SmtpServer::start() else { return };
    let url = smtp.url();
    let app = TestApp::start_with(move |config| {
        config.email.smtp_url = Some(url);
        config.email.from = Some("Kairos <proposals@kairos.test>".into());
    })
    .await;
    three_people(&app).await;
    let p = app
        .post(
            "/v1/proposals",
            json!({"title": "Design review", "duration_minutes": 30, "organiser": "org@example.com",
                "participants": [{"email": "ann@example.com", "required": true},
                                 {"email": "dan@outside.example", "name": "Dan", "required": true}],
                "slots": slots(&[A, B]), "mode": "consensus"}),
        )
        .await;
    assert_eq!(p.status, 201, "{}", p.body);
    let p = p.body;
    let id = p["id"].as_str().unwrap().to_string();
    let invited = mails_to(&smtp, 2, "dan@outside.example");
    assert_eq!(invited.len(), 1);
    assert!(invited[0].invite.is_none(), "an invitation to respond books nothing");
    for who in &p["participants"].as_array().unwrap()[..] {
        let answered =
            respond(&app, &path_of(&who["response_url"]), json!({"action": "accept", "slot_id": slot_id(&p, B)})).await;
        assert_eq!(answered.status, 200, "{}", answered.body);
    }
    let booking_id =
        app.get(&format!("/v1/proposals/{id}")).await.body["booking_id"].as_str().expect("booked").to_string();
    let uid = format!("{booking_id}@kairos");

    // Ann and the organiser get the booking's confirmations, Dan the proposal's: 2 + 3 emails.
    let dan = mails_to(&smtp, 5, "dan@outside.example");
    assert_eq!(dan.len(), 2, "Dan gets one confirmation");
    let confirmed = &dan[1];
    assert_eq!(confirmed.subject, "Confirmed: Design review");
    assert!(confirmed.text.starts_with("Hello Dan,"), "{}", confirmed.text);
    assert!(confirmed.text.contains("When: Wednesday, January 2, 2030, 11:00 – 11:30 AM UTC"), "{}", confirmed.text);
    assert!(confirmed.text.contains("Organised by: org@example.com"), "{}", confirmed.text);
    let (method, props) = confirmed.invite(&["METHOD", "UID", "SEQUENCE", "DTSTART", "ORGANIZER", "ATTENDEE"]);
    assert_eq!(method, "REQUEST");
    assert_eq!(
        props,
        ["REQUEST", uid.as_str(), "0", "20300102T110000Z", "mailto:org@example.com", "mailto:dan@outside.example"]
    );
    // The same event as the users' invitations.
    let ann = mails_to(&smtp, 5, "ann@example.com");
    let (_, ann_uid) = ann.last().unwrap().invite(&["UID"]);
    assert_eq!(ann_uid, [uid.as_str()]);
    let t = tenant(&app).await;
    eventually("Dan's confirmation is recorded as sent", || async {
        let rows = app.store.proposal_emails(&t, &id).await.unwrap();
        rows.iter().any(|e| {
            e.recipient == "dan@outside.example"
                && e.kind == kairos_store::ProposalEmailKind::Accepted
                && e.status == "sent"
        })
    })
    .await;

    // Cancelling the proposal cancels that event for Dan too: 5 + 3 emails.
    let cancelled = app.post(&format!("/v1/proposals/{id}/cancel"), json!({"reason": "Plans changed"})).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    let dan = mails_to(&smtp, 8, "dan@outside.example");
    assert_eq!(dan.len(), 3);
    assert_eq!(dan[2].subject, "Cancelled: Design review");
    assert!(dan[2].text.contains("Plans changed"), "{}", dan[2].text);
    let (method, props) = dan[2].invite(&["METHOD", "UID", "SEQUENCE", "STATUS"]);
    assert_eq!((method.as_str(), props), ("CANCEL", vec![s("CANCEL"), uid.clone(), s("1"), s("CANCELLED")]));
    eventually("Dan's cancellation is recorded as sent", || async {
        let rows = app.store.proposal_emails(&t, &id).await.unwrap();
        rows.iter().any(|e| e.recipient == "dan@outside.example" && e.status == "sent" && e.version == 2)
    })
    .await;
    assert_eq!(smtp.messages().len(), 8, "nothing sent twice");
}

fn s(v: &str) -> String {
    v.to_string()
}

#[tokio::test]
async fn the_organisers_actions_and_late_answers_are_refused_by_state() {
    let app = TestApp::start().await;
    three_people(&app).await;
    let make = |title: &str| {
        json!({"title": title, "duration_minutes": 30, "organiser": "org@example.com",
            "participants": [{"email": "ann@example.com"}], "slots": slots(&[A]), "expires_at": "2030-01-01T12:00:00Z"})
    };
    let p = app.post("/v1/proposals", make("Late")).await.body;
    let (id, ann) = (p["id"].as_str().unwrap().to_string(), path_of(&p["participants"][0]["response_url"]));
    // Closing is for polls.
    assert_error(&app.post(&format!("/v1/proposals/{id}/close"), json!({})).await, 409, "action_not_allowed", None);
    // Past expires_at an answer is refused even before the sweep has run (API clock moved on).
    app.clock.set("2030-01-01T12:00:00Z".parse().unwrap());
    let late = respond(&app, &ann, json!({"action": "accept", "slot_id": slot_id(&p, A)})).await;
    assert_error(&late, 409, "proposal_expired", None);
    // A rejected proposal cannot be cancelled; an open one's answers are not cached.
    app.clock.set(NOW.parse().unwrap());
    let q = app.post("/v1/proposals", make("Declined")).await.body;
    let ann_q = path_of(&q["participants"][0]["response_url"]);
    let answered = respond(&app, &ann_q, json!({"action": "reject"})).await;
    assert_eq!(answered.headers["cache-control"], "no-store");
    let qid = q["id"].as_str().unwrap();
    assert_error(&app.post(&format!("/v1/proposals/{qid}/cancel"), json!({})).await, 409, "proposal_closed", None);
    assert_eq!(app.get(&format!("/v1/proposals/{qid}")).await.body["status"], "rejected");
    // Unknown proposals and unknown statuses.
    assert_error(&app.post("/v1/proposals/prop_nope/close", json!({})).await, 404, "resource_missing", None);
    assert_error(&app.get("/v1/proposals?status=done").await, 422, "parameter_invalid", Some("status"));
}
