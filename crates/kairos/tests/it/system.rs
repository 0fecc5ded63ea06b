//! Health, readiness, metrics, request ids and the OpenAPI document.

use reqwest::Method;

use crate::support::*;

#[tokio::test]
async fn health_readiness_and_metrics_need_no_key() {
    let app = TestApp::start().await;
    let health = app.send(Method::GET, "/healthz", None, None, &[]).await;
    assert_eq!((health.status.as_u16(), health.body["status"].as_str()), (200, Some("ok")));
    let ready = app.send(Method::GET, "/readyz", None, None, &[]).await;
    assert_eq!(ready.status, 200);
    app.get("/v1/users").await;
    let res = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap();
    let text = res.text().await.unwrap();
    assert!(text.contains(r#"kairos_http_requests_total{method="GET",route="/v1/users",status="200"}"#), "{text}");
    assert!(text.contains("kairos_http_request_duration_seconds_bucket"), "{text}");
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_keeps_the_callers() {
    let app = TestApp::start().await;
    let r = app.send(Method::GET, "/healthz", None, None, &[]).await;
    assert!(r.headers["x-request-id"].to_str().unwrap().starts_with("req_"));
    let r = app.send(Method::GET, "/v1/users", None, None, &[("x-request-id", "trace-123")]).await;
    assert_eq!(r.headers["x-request-id"], "trace-123");
}

#[tokio::test]
async fn the_served_openapi_document_is_the_committed_one() {
    let app = TestApp::start().await;
    let res = app.client.get(format!("{}/v1/openapi.json", app.base)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let served = res.text().await.unwrap();
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json")).expect(
        "docs/openapi.json exists; regenerate it with `cargo run -p kairos-api --example openapi > docs/openapi.json`",
    );
    assert!(
        served == committed,
        "docs/openapi.json is stale; regenerate it with `cargo run -p kairos-api --example openapi > docs/openapi.json`"
    );
    let doc: serde_json::Value = serde_json::from_str(&served).unwrap();
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..3]), Some("3.1"));
    for path in [
        "/v1/users",
        "/v1/businesses/{id}",
        "/v1/availability/slots",
        "/v1/availability",
        "/v1/bookings",
        "/v1/bookings/{id}/cancel",
        "/healthz",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
}

#[tokio::test]
async fn unknown_routes_are_json_404s() {
    let app = TestApp::start().await;
    let r = app.get("/v1/nothing-here").await;
    assert_error(&r, 404, "route_not_found", None);
}

#[tokio::test]
async fn shutdown_finishes_cleanly() {
    let app = TestApp::start().await;
    assert_eq!(app.get("/v1/users").await.status, 200);
    app.stop().await;
}
