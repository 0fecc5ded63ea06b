//! The MCP server: six tools, each one REST call. A 2xx answer is the tool's result (the API's
//! JSON as text and as structured content); any other status is a tool error (`isError`)
//! whose text carries the API's `error.message`, `code` and `param`, so an agent can correct
//! itself. Nothing here knows scheduling rules: the API decides, the tools relay.

use std::sync::Arc;

use http::Method;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Extensions};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use serde::Serialize;
use serde_json::Value;

use crate::api::{Api, ApiRequest, ApiResponse};
use crate::inputs::{
    CancelBooking, CreateBooking, CreateProposal, FindSlots, ListBookings, RescheduleBooking, wire_name,
};

/// What a query value may keep unencoded (RFC 3986's unreserved characters).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
/// What a path segment may keep unencoded: as a query value, less `.`, so that an id can never
/// be a `..` segment.
const PATH_SEGMENT: &AsciiSet = &QUERY_VALUE.add(b'.');

/// Kairos's scheduling tools, answered through an [`Api`].
#[derive(Clone)]
pub struct KairosMcp {
    api: Arc<dyn Api>,
}

impl KairosMcp {
    pub fn new(api: Arc<dyn Api>) -> Self {
        Self { api }
    }

    /// Makes the call and turns the answer into the tool's result.
    async fn call(&self, request: ApiRequest, extensions: &Extensions) -> CallToolResult {
        let caller = extensions.get::<http::request::Parts>();
        match self.api.call(request, caller).await {
            Ok(response) => tool_result(response),
            Err(unreachable) => CallToolResult::error(vec![ContentBlock::text(unreachable.0)]),
        }
    }
}

#[tool_router]
impl KairosMcp {
    /// Open slots for a business and/or participants.
    #[tool(
        description = "Find open times to meet. Give `business_id` (its hosts, hours and booking rules), `participants` \
            (user ids or `user:email`), or both, and optionally a window (`from`, `to`), a length \
            (`duration_minutes`) and a display `timezone`. Returns `{slots: [{start, end, description}], timezone}`; \
            book a slot by passing its `start` and `end` to create_booking.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn find_slots(
        &self,
        Parameters(input): Parameters<FindSlots>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        let participants = input.participants.map(|p| p.join(","));
        let query = Query::default()
            .text("business_id", input.business_id.as_deref())
            .text("participants", participants.as_deref())
            .enumerated("mode", input.mode)
            .text("from", input.from.as_deref())
            .text("to", input.to.as_deref())
            .number("duration_minutes", input.duration_minutes)
            .text("timezone", input.timezone.as_deref())
            .number("limit", input.limit);
        Ok(self.call(get(query.after("/v1/availability/slots")), &extensions).await)
    }

    /// Books a slot.
    #[tool(
        description = "Book a time. Either for a business's customer (`business_id`, `customer_email`, `customer_name`, \
            `start_time`, `end_time`) or for named people (`participants`, `start`, `end`, `title`). The time is \
            re-checked when booking: if it was taken meanwhile the result is an error with code `slot_unavailable` \
            (find another slot). Returns the booking; `status` is `confirmed`, or `pending_payment` with a \
            `checkout_url` when the business takes payment. Pass an `idempotency_key` to retry safely.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn create_booking(
        &self,
        Parameters(input): Parameters<CreateBooking>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        let key = input.idempotency_key.clone();
        Ok(self.call(post("/v1/bookings".into(), &input, key), &extensions).await)
    }

    /// Moves a booking.
    #[tool(
        description = "Move a booking to a new time (`start_time`, `end_time`, RFC 3339). The same rules as booking \
            apply: a taken time is an error with code `slot_unavailable`. Returns the updated booking.",
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false)
    )]
    async fn reschedule_booking(
        &self,
        Parameters(input): Parameters<RescheduleBooking>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        let id = match segment("booking_id", &input.booking_id) {
            Ok(id) => id,
            Err(refusal) => return Ok(refusal),
        };
        let path = format!("/v1/bookings/{id}/reschedule");
        let body = serde_json::json!({"start_time": input.start_time, "end_time": input.end_time});
        Ok(self.call(post(path, &body, None), &extensions).await)
    }

    /// Cancels a booking.
    #[tool(
        description = "Cancel a booking, with an optional `reason`. Its time becomes free again and the people booked \
            are told. Cancelling a cancelled booking changes nothing. Returns the cancelled booking.",
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn cancel_booking(
        &self,
        Parameters(input): Parameters<CancelBooking>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        let id = match segment("booking_id", &input.booking_id) {
            Ok(id) => id,
            Err(refusal) => return Ok(refusal),
        };
        let path = format!("/v1/bookings/{id}/cancel");
        let body = match input.reason {
            Some(reason) => serde_json::json!({"reason": reason}),
            None => serde_json::json!({}),
        };
        Ok(self.call(post(path, &body, None), &extensions).await)
    }

    /// Lists bookings.
    #[tool(
        description = "List bookings, newest first, optionally filtered by `business_id`, `status`, a time window \
            (`from`, `to`) or `customer_email`. Returns `{data: [booking…], next_cursor}`; pass `next_cursor` as \
            `cursor` for the next page.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn list_bookings(
        &self,
        Parameters(input): Parameters<ListBookings>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        let query = Query::default()
            .text("business_id", input.business_id.as_deref())
            .enumerated("status", input.status)
            .text("from", input.from.as_deref())
            .text("to", input.to.as_deref())
            .text("customer_email", input.customer_email.as_deref())
            .number("limit", input.limit)
            .text("cursor", input.cursor.as_deref());
        Ok(self.call(get(query.after("/v1/bookings")), &extensions).await)
    }

    /// Starts a multi-party proposal.
    #[tool(
        description = "Ask several people to agree on a time. `mode: consensus` (default) books the slot every \
            required participant accepts; `mode: poll` lets them vote (`poll_variant`: `named` or `open`). Offer \
            `slots` or let Kairos pick the best 3 from availability. Returns the proposal with its `slots` and each \
            participant's `response_url` (an open poll also has a `vote_url`); Kairos emails the links too.",
        annotations(read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = true)
    )]
    async fn create_proposal(
        &self,
        Parameters(input): Parameters<CreateProposal>,
        extensions: Extensions,
    ) -> Result<CallToolResult, ErrorData> {
        let key = input.idempotency_key.clone();
        Ok(self.call(post("/v1/proposals".into(), &input, key), &extensions).await)
    }
}

#[tool_handler(
    name = "kairos",
    instructions = "Kairos schedules meetings. Use find_slots to see when a business or a group of people is free, \
        then create_booking with one of the returned slots. list_bookings, reschedule_booking and cancel_booking \
        manage existing bookings; create_proposal asks several people to agree on a time. Times are RFC 3339. \
        Errors carry the API's message, code and the parameter at fault."
)]
impl ServerHandler for KairosMcp {}

/// The API's answer as a tool result.
fn tool_result(response: ApiResponse) -> CallToolResult {
    let ApiResponse { status, body } = response;
    if (200..300).contains(&status) {
        return match body {
            Value::Object(_) => CallToolResult::structured(body),
            Value::Null => CallToolResult::success(vec![ContentBlock::text("{}")]),
            other => CallToolResult::success(vec![ContentBlock::text(other.to_string())]),
        };
    }
    let error = &body["error"];
    let mut text = format!("The Kairos API refused the request ({status}");
    if let Some(code) = error["code"].as_str() {
        text.push_str(&format!(" {code}"));
    }
    text.push_str("): ");
    match (error["message"].as_str(), &body) {
        (Some(message), _) => text.push_str(message),
        (None, Value::String(raw)) => text.push_str(raw),
        (None, _) => text.push_str("no details were given."),
    }
    if let Some(param) = error["param"].as_str() {
        text.push_str(&format!(" (param: {param})"));
    }
    let mut result = match body {
        Value::Object(_) => CallToolResult::structured_error(body),
        _ => CallToolResult::error(Vec::new()),
    };
    result.content = vec![ContentBlock::text(text)];
    result
}

fn get(path_and_query: String) -> ApiRequest {
    ApiRequest { method: Method::GET, path_and_query, body: None, idempotency_key: None }
}

fn post(path: String, body: &impl Serialize, idempotency_key: Option<String>) -> ApiRequest {
    ApiRequest {
        method: Method::POST,
        path_and_query: path,
        body: Some(serde_json::to_value(body).unwrap_or(Value::Null)),
        idempotency_key: idempotency_key.filter(|k| !k.is_empty()),
    }
}

/// An id as one path segment, percent-encoded; an empty one is refused as a tool error (as
/// rmcp refuses input that does not fit the schema).
fn segment(name: &str, id: &str) -> Result<String, CallToolResult> {
    let id = id.trim();
    if id.is_empty() {
        return Err(CallToolResult::error(vec![ContentBlock::text(format!("`{name}` must not be empty."))]));
    }
    Ok(utf8_percent_encode(id, PATH_SEGMENT).to_string())
}

/// A query string built from the fields that are present.
#[derive(Default)]
struct Query(Vec<String>);

impl Query {
    fn text(mut self, name: &str, value: Option<&str>) -> Self {
        if let Some(value) = value {
            self.0.push(format!("{name}={}", utf8_percent_encode(value, QUERY_VALUE)));
        }
        self
    }

    fn number(self, name: &str, value: Option<u32>) -> Self {
        let value = value.map(|n| n.to_string());
        self.text(name, value.as_deref())
    }

    fn enumerated(self, name: &str, value: Option<impl Serialize>) -> Self {
        let value = value.map(wire_name);
        self.text(name, value.as_deref())
    }

    fn after(self, path: &str) -> String {
        if self.0.is_empty() { path.to_string() } else { format!("{path}?{}", self.0.join("&")) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        let q = Query::default()
            .text("from", Some("2026-05-01T00:00:00+02:00"))
            .text("participants", Some("user:a@example.com,usr_1"))
            .text("absent", None)
            .number("limit", Some(5));
        assert_eq!(
            q.after("/v1/x"),
            "/v1/x?from=2026-05-01T00%3A00%3A00%2B02%3A00&participants=user%3Aa%40example.com%2Cusr_1&limit=5"
        );
        assert_eq!(Query::default().after("/v1/x"), "/v1/x");
    }

    #[test]
    fn an_id_stays_one_path_segment() {
        assert_eq!(segment("booking_id", "bkg_01ABC").unwrap(), "bkg_01ABC");
        assert_eq!(segment("booking_id", "../../businesses").unwrap(), "%2E%2E%2F%2E%2E%2Fbusinesses");
        assert!(segment("booking_id", " ").is_err());
    }

    #[test]
    fn an_api_error_becomes_a_tool_error_with_its_message_code_and_param() {
        let body = serde_json::json!({"error": {"type": "invalid_request_error", "code": "slot_unavailable",
            "message": "That time is no longer free.", "param": "start_time"}});
        let result = tool_result(ApiResponse { status: 409, body: body.clone() });
        assert_eq!(result.is_error, Some(true));
        let text = &result.content[0].as_text().unwrap().text;
        assert_eq!(
            text,
            "The Kairos API refused the request (409 slot_unavailable): That time is no longer free. (param: start_time)"
        );
        assert_eq!(result.structured_content, Some(body));

        let raw = tool_result(ApiResponse { status: 502, body: Value::String("Bad Gateway".into()) });
        assert_eq!(raw.is_error, Some(true));
        assert_eq!(raw.content[0].as_text().unwrap().text, "The Kairos API refused the request (502): Bad Gateway");
    }

    #[test]
    fn a_success_is_the_apis_json_as_text_and_structured_content() {
        let body = serde_json::json!({"id": "bkg_1", "status": "confirmed"});
        let result = tool_result(ApiResponse { status: 201, body: body.clone() });
        assert_eq!(result.is_error, Some(false));
        assert_eq!(result.structured_content, Some(body.clone()));
        let text: Value = serde_json::from_str(&result.content[0].as_text().unwrap().text).unwrap();
        assert_eq!(text, body);
    }
}
