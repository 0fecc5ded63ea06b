//! The tools through a real MCP client (rmcp, in memory) against a recording fake API: the
//! REST requests each tool makes, and how answers and failures come back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use kairos_mcp::{Api, ApiRequest, ApiResponse, KairosMcp, Unreachable};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

/// How the fake answers a request.
type Reply = Box<dyn Fn(&ApiRequest) -> Result<ApiResponse, Unreachable> + Send + Sync>;

/// Records requests; answers each with `reply`.
struct FakeApi {
    requests: Mutex<Vec<ApiRequest>>,
    reply: Reply,
}

impl FakeApi {
    /// The requests so far.
    fn seen(&self) -> Vec<ApiRequest> {
        self.requests.lock().unwrap().clone()
    }
}

#[async_trait]
impl Api for FakeApi {
    async fn call(
        &self,
        request: ApiRequest,
        _caller: Option<&http::request::Parts>,
    ) -> Result<ApiResponse, Unreachable> {
        let reply = (self.reply)(&request);
        self.requests.lock().unwrap().push(request);
        reply
    }
}

async fn connect(
    reply: impl Fn(&ApiRequest) -> Result<ApiResponse, Unreachable> + Send + Sync + 'static,
) -> (RunningService<RoleClient, ()>, Arc<FakeApi>) {
    let api = Arc::new(FakeApi { requests: Mutex::new(Vec::new()), reply: Box::new(reply) });
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server = KairosMcp::new(api.clone());
    tokio::spawn(async move {
        let running = server.serve(server_io).await.unwrap();
        let _ = running.waiting().await;
    });
    let client = ().serve(client_io).await.unwrap();
    (client, api)
}

fn ok(body: Value) -> impl Fn(&ApiRequest) -> Result<ApiResponse, Unreachable> {
    move |_| Ok(ApiResponse { status: 200, body: body.clone() })
}

async fn call(client: &RunningService<RoleClient, ()>, tool: &'static str, args: Value) -> CallToolResult {
    let Value::Object(args) = args else { panic!("arguments are an object") };
    client.call_tool(CallToolRequestParams::new(tool).with_arguments(args)).await.unwrap()
}

fn text(result: &CallToolResult) -> &str {
    &result.content[0].as_text().unwrap().text
}

#[tokio::test]
async fn six_tools_are_listed_with_described_object_schemas() {
    let (client, _) = connect(ok(json!({}))).await;
    let tools = client.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["cancel_booking", "create_booking", "create_proposal", "find_slots", "list_bookings", "reschedule_booking"]
    );
    for tool in &tools {
        assert_eq!(tool.input_schema.get("type"), Some(&json!("object")), "{}", tool.name);
        assert!(tool.description.as_ref().is_some_and(|d| d.len() > 40), "{} is described", tool.name);
        let properties = tool.input_schema["properties"].as_object().unwrap();
        for (name, schema) in properties {
            let described = schema.get("description").is_some()
                || schema.get("$ref").is_some()
                || schema.get("anyOf").is_some_and(|any| any.to_string().contains("$ref"));
            assert!(described, "{}.{name} has a description: {schema}", tool.name);
        }
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn find_slots_asks_the_slots_endpoint_with_an_encoded_query() {
    let (client, api) = connect(ok(json!({"slots": [], "timezone": "UTC"}))).await;
    let result = call(
        &client,
        "find_slots",
        json!({"business_id": "biz_1", "participants": ["user:a@example.com", "usr_2"], "mode": "any",
            "from": "2030-01-02T00:00:00+01:00", "duration_minutes": 45, "timezone": "Europe/Paris"}),
    )
    .await;
    assert_eq!(result.is_error, Some(false));
    assert_eq!(result.structured_content, Some(json!({"slots": [], "timezone": "UTC"})));
    let seen = api.seen();
    assert_eq!(seen[0].method, http::Method::GET);
    assert_eq!(
        seen[0].path_and_query,
        "/v1/availability/slots?business_id=biz_1&participants=user%3Aa%40example.com%2Cusr_2&mode=any\
         &from=2030-01-02T00%3A00%3A00%2B01%3A00&duration_minutes=45&timezone=Europe%2FParis"
    );
    assert_eq!(seen[0].body, None);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn create_booking_posts_the_body_and_sends_an_idempotency_key_only_when_given() {
    let (client, api) = connect(|_| Ok(ApiResponse { status: 201, body: json!({"id": "bkg_1"}) })).await;
    let booking = json!({"business_id": "biz_1", "customer_email": "jane@example.com", "customer_name": "Jane",
        "start_time": "2030-01-02T10:00:00Z", "end_time": "2030-01-02T10:30:00Z"});
    call(&client, "create_booking", booking.clone()).await;
    let mut with_key = booking.clone();
    with_key["idempotency_key"] = json!("k-1");
    let result = call(&client, "create_booking", with_key).await;
    assert_eq!(result.structured_content, Some(json!({"id": "bkg_1"})));
    let seen = api.seen();
    assert_eq!((seen[0].method.as_str(), seen[0].path_and_query.as_str()), ("POST", "/v1/bookings"));
    assert_eq!(seen[0].body, Some(booking.clone()), "absent fields are not sent");
    assert_eq!(seen[0].idempotency_key, None);
    assert_eq!(seen[1].body, Some(booking), "the key is a header, not part of the body");
    assert_eq!(seen[1].idempotency_key.as_deref(), Some("k-1"));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn booking_changes_and_lists_map_to_their_endpoints() {
    let (client, api) = connect(ok(json!({"data": [], "next_cursor": null}))).await;
    call(
        &client,
        "reschedule_booking",
        json!({"booking_id": "bkg_1", "start_time": "2030-01-02T11:00:00Z", "end_time": "2030-01-02T11:30:00Z"}),
    )
    .await;
    call(&client, "cancel_booking", json!({"booking_id": "bkg_1", "reason": "ill"})).await;
    call(&client, "cancel_booking", json!({"booking_id": "../users"})).await;
    call(&client, "list_bookings", json!({"status": "pending_payment", "customer_email": "j+1@example.com"})).await;
    call(&client, "list_bookings", json!({})).await;
    let seen = api.seen();
    let calls: Vec<(&str, &str, Option<&Value>)> =
        seen.iter().map(|r| (r.method.as_str(), r.path_and_query.as_str(), r.body.as_ref())).collect();
    assert_eq!(
        calls,
        [
            (
                "POST",
                "/v1/bookings/bkg_1/reschedule",
                Some(&json!({"start_time": "2030-01-02T11:00:00Z", "end_time": "2030-01-02T11:30:00Z"}))
            ),
            ("POST", "/v1/bookings/bkg_1/cancel", Some(&json!({"reason": "ill"}))),
            ("POST", "/v1/bookings/%2E%2E%2Fusers/cancel", Some(&json!({}))),
            ("GET", "/v1/bookings?status=pending_payment&customer_email=j%2B1%40example.com", None),
            ("GET", "/v1/bookings", None),
        ]
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn create_proposal_posts_the_contracts_shape() {
    let (client, api) = connect(|_| Ok(ApiResponse { status: 201, body: json!({"id": "prop_1"}) })).await;
    let result = call(
        &client,
        "create_proposal",
        json!({"title": "Planning", "duration_minutes": 30, "organiser": "olga@example.com",
            "participants": [{"email": "a@example.com", "required": false}, {"email": "b@example.com"}],
            "mode": "poll", "poll_variant": "open", "idempotency_key": "p-1"}),
    )
    .await;
    assert_eq!(result.is_error, Some(false));
    let seen = api.seen();
    assert_eq!(seen[0].path_and_query, "/v1/proposals");
    assert_eq!(seen[0].idempotency_key.as_deref(), Some("p-1"));
    assert_eq!(
        seen[0].body,
        Some(json!({"title": "Planning", "duration_minutes": 30, "organiser": "olga@example.com",
            "participants": [{"email": "a@example.com", "required": false}, {"email": "b@example.com"}],
            "mode": "poll", "poll_variant": "open"}))
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn api_errors_an_unreachable_api_and_bad_input_are_tool_errors() {
    let (client, api) = connect(|request| match request.method {
        http::Method::POST => Ok(ApiResponse {
            status: 409,
            body: json!({"error": {"type": "invalid_request_error", "code": "slot_unavailable",
                "message": "alice@example.com is busy then.", "param": "start_time"}}),
        }),
        _ => Err(Unreachable("could not reach the Kairos API at http://127.0.0.1:9: refused".into())),
    })
    .await;
    let refused = call(&client, "create_booking", json!({"business_id": "biz_1"})).await;
    assert_eq!(refused.is_error, Some(true));
    assert!(text(&refused).contains("409 slot_unavailable"), "{}", text(&refused));
    assert!(text(&refused).contains("alice@example.com is busy then."), "{}", text(&refused));
    assert!(text(&refused).contains("param: start_time"), "{}", text(&refused));
    assert_eq!(refused.structured_content.unwrap()["error"]["code"], "slot_unavailable");

    let down = call(&client, "list_bookings", json!({})).await;
    assert_eq!(down.is_error, Some(true));
    assert!(text(&down).contains("could not reach the Kairos API"), "{}", text(&down));

    let typo = call(&client, "create_booking", json!({"business_id": "biz_1", "start_tme": "x"})).await;
    assert_eq!(typo.is_error, Some(true));
    assert!(text(&typo).contains("unknown field `start_tme`"), "{}", text(&typo));
    let empty = call(&client, "cancel_booking", json!({"booking_id": " "})).await;
    assert_eq!(empty.is_error, Some(true));
    assert!(text(&empty).contains("`booking_id` must not be empty"), "{}", text(&empty));
    assert_eq!(api.seen().len(), 2, "bad input never reaches the API");
    client.cancel().await.unwrap();
}
