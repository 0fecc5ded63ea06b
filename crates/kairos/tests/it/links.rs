//! `/v1/links`: creating, reading, renaming and deleting booking links, and the errors that
//! name the field at fault. (The public page itself is tested in pages.rs and browser.rs.)

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn links_are_created_read_renamed_and_deleted() {
    let app = TestApp::start().await;
    app.user("alice@example.com", "UTC").await;
    let bob = app.user("bob@example.com", "Europe/Paris").await;
    let biz = app.business(json!({"name": "Consulting", "timezone": "UTC", "hosts": ["alice@example.com"]})).await;

    let made = app.post("/v1/links", json!({"business_id": biz, "duration_minutes": 45, "slug": "consult"})).await;
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(made.body["url"], format!("{}/l/consult", app.base));
    assert_eq!((made.body["title"].as_str(), made.body["duration_minutes"].as_u64()), (Some("Consulting"), Some(45)));
    let id = made.body["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("link_"));

    let people =
        app.post("/v1/links", json!({"participants": ["user:alice@example.com", bob], "title": "Team sync"})).await;
    assert_eq!(people.status, 201, "{}", people.body);
    let slug = people.body["slug"].as_str().unwrap();
    assert_eq!(slug.len(), 10, "a generated slug: {slug}");
    assert_eq!(people.body["participants"].as_array().unwrap().len(), 2);
    assert_eq!(people.body["duration_minutes"], 30);

    let listed = app.get("/v1/links").await;
    let ids: Vec<&str> = listed.body["data"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [people.body["id"].as_str().unwrap(), id.as_str()], "newest first");
    assert_eq!(app.get(&format!("/v1/links/{id}")).await.body["slug"], "consult");

    let renamed = app.patch(&format!("/v1/links/{id}"), json!({"slug": "advice", "title": "Advice"})).await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(
        (renamed.body["url"].as_str(), renamed.body["title"].as_str()),
        (Some(format!("{}/l/advice", app.base).as_str()), Some("Advice"))
    );
    assert_error(&app.patch(&format!("/v1/links/{id}"), json!({"slug": slug})).await, 409, "slug_taken", Some("slug"));

    // Another account sees nothing and cannot take the slug either (pages are server-wide).
    let other = app.new_key("globex", kairos_store::Mode::Test).await;
    let theirs = app.send(reqwest::Method::GET, &format!("/v1/links/{id}"), Some(&other), None, &[]).await;
    assert_eq!(theirs.status, 404);
    let body = json!({"participants": ["user:x@example.com"], "title": "x", "slug": "advice"}).to_string();
    let taken = app.send(reqwest::Method::POST, "/v1/links", Some(&other), Some(&body), &[]).await;
    assert_eq!(taken.status, 404, "their user does not exist first: {}", taken.body);

    let deleted = app.delete(&format!("/v1/links/{id}")).await;
    assert_eq!((deleted.status.as_u16(), deleted.body["deleted"].as_bool()), (200, Some(true)));
    assert_eq!(app.get(&format!("/v1/links/{id}")).await.status, 404);
}

#[tokio::test]
async fn bad_link_requests_name_the_field_and_write_nothing() {
    let app = TestApp::start().await;
    app.user("alice@example.com", "UTC").await;
    let biz = app.business(json!({"name": "Consulting", "timezone": "UTC", "hosts": ["alice@example.com"]})).await;
    app.post("/v1/links", json!({"business_id": biz, "slug": "taken"})).await;
    let cases = [
        (json!({"title": "x"}), 422, "parameter_missing", "business_id"),
        (
            json!({"business_id": biz, "participants": ["user:alice@example.com"]}),
            422,
            "parameter_invalid",
            "participants",
        ),
        (json!({"business_id": "biz_nope"}), 404, "resource_missing", "business_id"),
        (
            json!({"participants": ["user:nobody@example.com"], "title": "x"}),
            404,
            "resource_missing",
            "participants[0]",
        ),
        (json!({"participants": ["not a user"], "title": "x"}), 422, "parameter_invalid", "participants[0]"),
        (json!({"participants": ["user:alice@example.com"]}), 422, "parameter_missing", "title"),
        (json!({"business_id": biz, "duration_minutes": 1}), 422, "parameter_invalid", "duration_minutes"),
        (json!({"business_id": biz, "slug": "No Spaces"}), 422, "parameter_invalid", "slug"),
        (json!({"business_id": biz, "slug": "-edge"}), 422, "parameter_invalid", "slug"),
        (json!({"business_id": biz, "slug": "taken"}), 409, "slug_taken", "slug"),
        (json!({"business_id": biz, "colour": "red"}), 422, "parameter_invalid", "colour"),
    ];
    for (body, status, code, param) in cases {
        let r = app.post("/v1/links", body.clone()).await;
        assert_error(&r, status, code, Some(param));
    }
    assert_eq!(app.get("/v1/links").await.body["data"].as_array().unwrap().len(), 1, "nothing else written");
}
