//! The MCP server as agents meet it, spoken to with rmcp's own client: over streamable HTTP at
//! `POST /v1/mcp`, and over stdio by spawning the real `kairos mcp` binary. Every result is
//! checked against the REST API itself.

use reqwest::Method;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use crate::support::*;

type Client = RunningService<RoleClient, ()>;

const TOOLS: [&str; 6] =
    ["cancel_booking", "create_booking", "create_proposal", "find_slots", "list_bookings", "reschedule_booking"];

/// An MCP client on `/v1/mcp` with `key`.
async fn http_client(app: &TestApp, key: &str) -> Client {
    let config = StreamableHttpClientTransportConfig::with_uri(format!("{}/v1/mcp", app.base)).auth_header(key);
    ().serve(StreamableHttpClientTransport::from_config(config)).await.expect("the MCP handshake over HTTP")
}

async fn call(client: &Client, tool: &'static str, args: Value) -> CallToolResult {
    let Value::Object(args) = args else { panic!("tool arguments are an object") };
    client.call_tool(CallToolRequestParams::new(tool).with_arguments(args)).await.expect("a tools/call answer")
}

fn text(result: &CallToolResult) -> &str {
    &result.content[0].as_text().expect("text content").text
}

/// A successful result's JSON, checked to be in both the text and the structured content.
fn json_of(result: &CallToolResult) -> Value {
    assert_eq!(result.is_error, Some(false), "{}", text(result));
    let structured = result.structured_content.clone().expect("structured content");
    assert_eq!(serde_json::from_str::<Value>(text(result)).unwrap(), structured, "text and structured content agree");
    structured
}

/// Alice (UTC, open all week) hosts a business; returns its id.
async fn clinic(app: &TestApp) -> String {
    app.user("alice@example.com", "UTC").await;
    app.business(
        json!({"name": "Clinic", "timezone": "UTC", "hosts": ["alice@example.com"], "working_hours": all_week()}),
    )
    .await
}

async fn first_slot(client: &Client, business: &str) -> (String, String) {
    let found = call(
        client,
        "find_slots",
        json!({"business_id": business, "from": "2030-01-02T09:00:00Z", "to": "2030-01-02T12:00:00Z", "duration_minutes": 30}),
    )
    .await;
    let slots = json_of(&found);
    assert_eq!(slots["slots"].as_array().unwrap().len(), 6, "{slots}");
    let slot = &slots["slots"][0];
    (slot["start"].as_str().unwrap().to_string(), slot["end"].as_str().unwrap().to_string())
}

fn booking_input(business: &str, start: &str, end: &str) -> Value {
    json!({"business_id": business, "customer_email": "jane@example.com", "customer_name": "Jane Doe",
        "start_time": start, "end_time": end})
}

async fn assert_lists_the_tools(client: &Client) {
    let tools = client.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(names, TOOLS);
    let expected: [(&str, &[&str]); 6] = [
        ("find_slots", &["business_id", "participants", "mode", "from", "to", "duration_minutes", "timezone", "limit"]),
        (
            "create_booking",
            &[
                "business_id",
                "customer_email",
                "customer_name",
                "start_time",
                "end_time",
                "participants",
                "start",
                "end",
                "title",
                "notes",
                "metadata",
                "idempotency_key",
            ],
        ),
        ("reschedule_booking", &["booking_id", "start_time", "end_time"]),
        ("cancel_booking", &["booking_id", "reason"]),
        ("list_bookings", &["business_id", "status", "from", "to", "customer_email", "limit", "cursor"]),
        (
            "create_proposal",
            &[
                "title",
                "duration_minutes",
                "organiser",
                "participants",
                "slots",
                "mode",
                "poll_variant",
                "expires_at",
                "idempotency_key",
            ],
        ),
    ];
    for (name, properties) in expected {
        let tool = tools.iter().find(|t| t.name == name).unwrap();
        let schema = &tool.input_schema;
        assert_eq!(schema["type"], "object", "{name}: {schema:?}");
        let have = schema["properties"].as_object().unwrap();
        for p in properties {
            assert!(have.contains_key(*p), "{name} takes `{p}`: {schema:?}");
        }
    }
    let required = |name: &str| {
        let tool = tools.iter().find(|t| t.name == name).unwrap();
        let mut r: Vec<String> = tool
            .input_schema
            .get("required")
            .map_or_else(Vec::new, |r| r.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect());
        r.sort();
        r
    };
    assert_eq!(required("reschedule_booking"), ["booking_id", "end_time", "start_time"]);
    assert_eq!(required("create_proposal"), ["duration_minutes", "organiser", "participants", "title"]);
    assert!(required("find_slots").is_empty());
}

#[tokio::test]
async fn the_http_endpoint_lists_the_six_tools_with_their_input_schemas() {
    let app = TestApp::start().await;
    let client = http_client(&app, &app.key).await;
    assert_lists_the_tools(&client).await;
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn an_agent_finds_books_reschedules_and_cancels_over_http() {
    let app = TestApp::start().await;
    let business = clinic(&app).await;
    let client = http_client(&app, &app.key).await;

    let (start, end) = first_slot(&client, &business).await;
    assert_eq!((start.as_str(), end.as_str()), ("2030-01-02T09:00:00Z", "2030-01-02T09:30:00Z"));
    let booked = json_of(&call(&client, "create_booking", booking_input(&business, &start, &end)).await);
    let id = booked["id"].as_str().unwrap();
    let stored = app.get(&format!("/v1/bookings/{id}")).await;
    assert_eq!(stored.status, 200, "{}", stored.body);
    assert_eq!(
        (stored.body["status"].as_str(), stored.body["start_time"].as_str()),
        (Some("confirmed"), Some(&*start))
    );

    // The same slot again: the API's 409, its message, code and param, as a tool error.
    let rest = app.post("/v1/bookings", booking_input(&business, &start, &end)).await;
    assert_error(&rest, 409, "slot_unavailable", rest.body["error"]["param"].as_str());
    let twice = call(&client, "create_booking", booking_input(&business, &start, &end)).await;
    assert_eq!(twice.is_error, Some(true));
    assert!(text(&twice).contains("409 slot_unavailable"), "{}", text(&twice));
    assert!(text(&twice).contains(rest.body["error"]["message"].as_str().unwrap()), "{}", text(&twice));
    assert_eq!(twice.structured_content.as_ref(), Some(&rest.body));

    // An unknown business: the API's 404 message.
    let unknown = call(&client, "create_booking", booking_input("biz_nope", &start, &end)).await;
    let rest = app.post("/v1/bookings", booking_input("biz_nope", &start, &end)).await;
    assert_eq!(rest.status, 404, "{}", rest.body);
    assert_eq!(unknown.is_error, Some(true));
    assert!(text(&unknown).contains(rest.body["error"]["message"].as_str().unwrap()), "{}", text(&unknown));

    let moved = call(
        &client,
        "reschedule_booking",
        json!({"booking_id": id, "start_time": "2030-01-02T10:00:00Z", "end_time": "2030-01-02T10:30:00Z"}),
    )
    .await;
    assert_eq!(json_of(&moved)["start_time"], "2030-01-02T10:00:00Z");

    let listed =
        json_of(&call(&client, "list_bookings", json!({"business_id": business, "status": "confirmed"})).await);
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["data"][0]["id"], id);

    let cancelled =
        json_of(&call(&client, "cancel_booking", json!({"booking_id": id, "reason": "agent says no"})).await);
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(app.get(&format!("/v1/bookings/{id}")).await.body["status"], "cancelled");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn tool_calls_use_the_callers_key_and_its_idempotency() {
    let app = TestApp::start().await;
    let business = clinic(&app).await;
    let client = http_client(&app, &app.key).await;
    let mut input = booking_input(&business, "2030-01-02T09:00:00Z", "2030-01-02T09:30:00Z");
    input["idempotency_key"] = json!("agent-retry-1");
    let first = json_of(&call(&client, "create_booking", input.clone()).await);
    let again = json_of(&call(&client, "create_booking", input).await);
    assert_eq!(first, again, "a retry with the same key replays the first booking");
    assert_eq!(app.get("/v1/bookings").await.body["data"].as_array().unwrap().len(), 1);

    // Another account's key sees none of it.
    let other = app.new_key("globex", kairos_store::Mode::Test).await;
    let stranger = http_client(&app, &other).await;
    let listed = json_of(&call(&stranger, "list_bookings", json!({})).await);
    assert_eq!(listed["data"], json!([]));
    let theirs = call(&stranger, "cancel_booking", json!({"booking_id": first["id"]})).await;
    assert_eq!(theirs.is_error, Some(true));
    assert!(text(&theirs).contains("404"), "{}", text(&theirs));
    client.cancel().await.unwrap();
    stranger.cancel().await.unwrap();
}

#[tokio::test]
async fn create_proposal_makes_a_proposal_the_api_then_shows() {
    let app = TestApp::start().await;
    app.user("alice@example.com", "UTC").await;
    app.user("bob@example.com", "UTC").await;
    let client = http_client(&app, &app.key).await;
    let consensus = json!({"title": "Planning", "duration_minutes": 30, "organiser": "user:alice@example.com",
        "participants": [{"email": "bob@example.com", "required": true}, {"email": "carol@example.com", "required": false}],
        "slots": [{"start": "2030-01-02T10:00:00Z", "end": "2030-01-02T10:30:00Z"},
            {"start": "2030-01-03T10:00:00Z", "end": "2030-01-03T10:30:00Z"}],
        "mode": "consensus", "idempotency_key": "proposal-1"});
    let proposal = json_of(&call(&client, "create_proposal", consensus.clone()).await);
    let id = proposal["id"].as_str().unwrap();
    assert!(id.starts_with("prop_"), "{proposal}");
    assert_eq!(proposal["slots"].as_array().unwrap().len(), 2, "{proposal}");
    let people = proposal["participants"].as_array().unwrap();
    assert_eq!(people.len(), 2, "{proposal}");
    assert!(people.iter().all(|p| p["response_url"].as_str().is_some()), "each gets a link: {proposal}");
    let stored = app.get(&format!("/v1/proposals/{id}")).await;
    assert_eq!(stored.status, 200, "{}", stored.body);
    assert_eq!((stored.body["title"].as_str(), stored.body["mode"].as_str()), (Some("Planning"), Some("consensus")));
    let replayed = json_of(&call(&client, "create_proposal", consensus).await);
    assert_eq!(replayed["id"], id, "the idempotency key replays the first proposal");

    // An open poll.
    let poll = json!({"title": "Offsite", "duration_minutes": 60, "organiser": "alice@example.com",
        "participants": [{"email": "bob@example.com"}], "mode": "poll", "poll_variant": "open",
        "slots": [{"start": "2030-01-04T10:00:00Z", "end": "2030-01-04T11:00:00Z"}]});
    let poll = json_of(&call(&client, "create_proposal", poll).await);
    assert_eq!(poll["poll_variant"], "open", "{poll}");
    assert!(poll["vote_url"].as_str().is_some(), "{poll}");
    assert!(!poll["slots"].as_array().unwrap().is_empty(), "{poll}");

    // A refusal is the API's own.
    let bad = json!({"title": "Nope", "duration_minutes": 1, "organiser": "alice@example.com",
        "participants": [{"email": "bob@example.com"}]});
    let rest = app.post("/v1/proposals", bad.clone()).await;
    assert_eq!(rest.status, 422, "{}", rest.body);
    let refused = call(&client, "create_proposal", bad).await;
    assert_eq!(refused.is_error, Some(true));
    assert!(text(&refused).contains(rest.body["error"]["message"].as_str().unwrap()), "{}", text(&refused));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn the_mcp_endpoint_needs_a_key_and_an_allowed_host() {
    let app = TestApp::start().await;
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "curl", "version": "1"}}})
    .to_string();
    let accept = [("accept", "application/json, text/event-stream")];
    let none = app.send(Method::POST, "/v1/mcp", None, Some(&initialize), &accept).await;
    assert_error(&none, 401, "unauthorized", None);
    let wrong = app.send(Method::POST, "/v1/mcp", Some("sk_test_wrong"), Some(&initialize), &accept).await;
    assert_eq!(wrong.status, 401);

    let ok = app.send(Method::POST, "/v1/mcp", Some(&app.key), Some(&initialize), &accept).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["result"]["serverInfo"]["name"], "kairos", "{}", ok.body);
    assert!(ok.headers.get("mcp-session-id").is_none(), "stateless: no session");

    // Stateless: a lone tools/call needs no handshake (the README's curl example).
    let business = clinic(&app).await;
    let find = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "find_slots", "arguments": {"business_id": business, "duration_minutes": 30}}})
    .to_string();
    let found = app.send(Method::POST, "/v1/mcp", Some(&app.key), Some(&find), &accept).await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(found.body["result"]["isError"], false, "{}", found.body);
    assert_eq!(found.body["result"]["structuredContent"]["timezone"], "UTC", "{}", found.body);
    assert!(!found.body["result"]["structuredContent"]["slots"].as_array().unwrap().is_empty(), "{}", found.body);

    let get = app.send(Method::GET, "/v1/mcp", Some(&app.key), None, &[("accept", "text/event-stream")]).await;
    assert_eq!(get.status, 405, "no server-initiated stream: {:?}", get.body);
    let rebound = app
        .send(Method::POST, "/v1/mcp", Some(&app.key), Some(&initialize), &[accept[0], ("host", "evil.example")])
        .await;
    assert_eq!(rebound.status, 403, "a foreign Host is refused (DNS rebinding)");
    let foreign = app
        .send(
            Method::POST,
            "/v1/mcp",
            Some(&app.key),
            Some(&initialize),
            &[accept[0], ("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(foreign.status, 403, "a foreign browser Origin is refused");
}

/// `kairos mcp` as an agent's host starts it: stdin/stdout piped, the API at `base`.
fn kairos_mcp(base: &str, key: Option<&str>) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_kairos"));
    command.arg("mcp").env("KAIROS_URL", base).env("KAIROS_LOG", "info").env_remove("KAIROS_API_KEY");
    if let Some(key) = key {
        command.env("KAIROS_API_KEY", key);
    }
    command
}

#[tokio::test]
async fn the_stdio_server_lists_the_tools_and_books_through_the_api() {
    let app = TestApp::start().await;
    let business = clinic(&app).await;
    let (transport, stderr) = TokioChildProcess::builder(kairos_mcp(&app.base, Some(&app.key)))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = stderr.unwrap();
    let logs = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let client = ().serve(transport).await.expect("the MCP handshake over stdio");
    assert_lists_the_tools(&client).await;

    let (start, end) = first_slot(&client, &business).await;
    let booked = json_of(&call(&client, "create_booking", booking_input(&business, &start, &end)).await);
    let stored = app.get(&format!("/v1/bookings/{}", booked["id"].as_str().unwrap())).await;
    assert_eq!((stored.status.as_u16(), stored.body["status"].as_str()), (200, Some("confirmed")));
    let twice = call(&client, "create_booking", booking_input(&business, &start, &end)).await;
    assert_eq!(twice.is_error, Some(true));
    assert!(text(&twice).contains("slot_unavailable"), "{}", text(&twice));

    client.cancel().await.unwrap();
    let logs = tokio::time::timeout(std::time::Duration::from_secs(10), logs).await.unwrap().unwrap();
    assert!(logs.contains("MCP server on stdio"), "logs go to stderr: {logs}");
}

#[tokio::test]
async fn the_stdio_server_refuses_to_start_without_a_key() {
    let out = kairos_mcp("http://127.0.0.1:9", None).stdin(std::process::Stdio::null()).output().await.unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "nothing on the protocol's stream");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("KAIROS_API_KEY is not set"), "{stderr}");
}

/// Whether a missing peer must fail the test rather than skip it (CI).
fn peers_required() -> bool {
    std::env::var("KAIROS_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

/// The official Python SDK (PyPI `mcp`) against both transports: a second, independent client.
#[tokio::test]
async fn the_official_python_sdk_books_and_cancels_over_http_and_stdio() {
    let has_sdk = tokio::process::Command::new("python3")
        .args(["-c", "import mcp.client.streamable_http"])
        .output()
        .await
        .is_ok_and(|o| o.status.success());
    if !has_sdk {
        assert!(!peers_required(), "KAIROS_REQUIRE_PEERS=1 but the Python `mcp` package is missing: pip install mcp");
        eprintln!(
            "SKIPPED: the MCP fidelity check needs the Python SDK: `python3 -m pip install mcp` (CI installs it)"
        );
        return;
    }
    let app = TestApp::start().await;
    let business = clinic(&app).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/mcp_sdk_check.py");
    let out = tokio::process::Command::new("python3")
        .args([script, &app.base, &app.key, &business, env!("CARGO_BIN_EXE_kairos")])
        .env_remove("KAIROS_API_KEY")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the SDK check failed: {stderr}");
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    for transport in ["http_tools", "legacy_tools", "stdio_tools"] {
        assert_eq!(seen[transport], json!(TOOLS), "{transport}");
    }
    assert_eq!(seen["http_schema_types"], json!(["object"]));
    assert_ne!(seen["http_protocol"], seen["legacy_protocol"], "both lifecycles were spoken: {seen}");
    assert_eq!(seen["slots"]["is_error"], false, "{}", seen["slots"]);
    assert_eq!(seen["booked"]["is_error"], false, "{}", seen["booked"]);
    let id = seen["booked"]["structured"]["id"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(seen["booked"]["text"].as_str().unwrap()).unwrap(),
        seen["booked"]["structured"]
    );
    assert_eq!(seen["booked_again"]["is_error"], true);
    assert!(seen["booked_again"]["text"].as_str().unwrap().contains("slot_unavailable"), "{}", seen["booked_again"]);
    assert_eq!(seen["legacy_list"]["structured"]["data"][0]["id"], id);
    assert_eq!(seen["cancelled"]["structured"]["status"], "cancelled", "{}", seen["cancelled"]);
    let stored = app.get(&format!("/v1/bookings/{id}")).await;
    assert_eq!(
        (stored.body["status"].as_str(), stored.body["customer_email"].as_str()),
        (Some("cancelled"), Some("py@example.com"))
    );
}
