//! Calendars and events: listing with OData paging (`$top`, `$skip`, `@odata.nextLink`),
//! `calendarView`, `instances`, reading and writing events (`transactionId` idempotence,
//! `If-Match` against the change key), and `getSchedule`.

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::errors::GraphError;
use super::state::{Query, State};
use super::view::{self, OutZone};
use super::zones;

/// Paging parameters of a list request.
pub(crate) struct Paging<'a> {
    pub query: &'a Query,
    /// The path after `/v1.0/` that links repeat.
    pub link_path: &'a str,
    pub default_top: usize,
}

/// One page of `items` with `@odata.nextLink` when more follow.
pub(crate) fn page(st: &State, paging: &Paging<'_>, context: &str, items: Vec<Value>) -> Value {
    let top =
        paging.query.get("$top").and_then(|t| t.parse::<usize>().ok()).unwrap_or(paging.default_top).clamp(1, 1000);
    let skip = paging.query.get("$skip").and_then(|t| t.parse::<usize>().ok()).unwrap_or(0);
    let total = items.len();
    let value: Vec<Value> = items.into_iter().skip(skip).take(top).map(|v| select(v, paging.query)).collect();
    let mut body = json!({"@odata.context": format!("{}/v1.0/$metadata#{context}", st.base_url), "value": value});
    if skip + top < total {
        let mut pairs: Vec<(String, String)> =
            paging.query.0.iter().filter(|(k, _)| k.as_str() != "$skip").map(|(k, v)| (k.clone(), v.clone())).collect();
        pairs.sort();
        pairs.push(("$skip".to_string(), (skip + top).to_string()));
        let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        // Graph writes `$` raw in its links.
        body["@odata.nextLink"] =
            json!(format!("{}/v1.0/{}?{}", st.base_url, paging.link_path, query.replace("%24", "$")));
    }
    body
}

/// Applies `$select` (Graph always keeps `id` and the etag).
pub(crate) fn select(v: Value, query: &Query) -> Value {
    let Some(fields) = query.get("$select") else { return v };
    let keep: Vec<&str> = fields.split(',').map(str::trim).collect();
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| k == "id" || k.starts_with("@odata") || keep.iter().any(|f| f.eq_ignore_ascii_case(k)))
                .collect(),
        ),
        other => other,
    }
}

pub(crate) fn entity_context(st: &State) -> String {
    format!("{}/v1.0/$metadata#users('{}')/events/$entity", st.base_url, st.user_id)
}

/// The window a `calendarView` or `instances` request names.
pub(crate) fn window(query: &Query) -> Result<(Timestamp, Timestamp), GraphError> {
    let invalid = || {
        GraphError::bad_request(
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters StartDateTime and \
             EndDateTime.",
        )
    };
    let start = query.get("startDateTime").and_then(zones::parse_instant).ok_or_else(invalid)?;
    let end = query.get("endDateTime").and_then(zones::parse_instant).ok_or_else(invalid)?;
    if end <= start {
        return Err(GraphError::bad_request(
            "ErrorInvalidParameter",
            "The parameter 'EndDateTime' must be later than 'StartDateTime'.",
        ));
    }
    Ok((start, end))
}

pub(crate) fn calendar_view(
    st: &State,
    calendar: &str,
    paging: &Paging<'_>,
    zone: &OutZone,
) -> Result<Value, GraphError> {
    let window = window(paging.query)?;
    let items = st.instances(calendar, window).iter().map(|e| view::render(e, zone)).collect();
    Ok(page(st, paging, &format!("users('{}')/calendarView", st.user_id), items))
}

pub(crate) fn list_events(st: &State, calendar: &str, paging: &Paging<'_>, zone: &OutZone) -> Value {
    let items = st.events.values().filter(|e| e.calendar == calendar).map(|e| view::render(&e.json, zone)).collect();
    page(st, paging, &format!("users('{}')/events", st.user_id), items)
}

pub(crate) fn instances(st: &State, id: &str, paging: &Paging<'_>, zone: &OutZone) -> Result<Value, GraphError> {
    let window = window(paging.query)?;
    let stored = st.events.get(id).ok_or_else(GraphError::item_not_found)?;
    let items = view::instances(stored, window).iter().map(|e| view::render(e, zone)).collect();
    Ok(page(st, paging, &format!("users('{}')/events('{id}')/instances", st.user_id), items))
}

pub(crate) fn get_event(st: &State, id: &str, zone: &OutZone, query: &Query) -> Result<Value, GraphError> {
    let (_, event) = st.find(id).ok_or_else(GraphError::item_not_found)?;
    let mut out = select(view::render(&event, zone), query);
    out["@odata.context"] = json!(entity_context(st));
    Ok(out)
}

fn parse_body(body: &[u8]) -> Result<Value, GraphError> {
    serde_json::from_slice::<Value>(body).ok().filter(Value::is_object).ok_or_else(|| {
        GraphError::bad_request("BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")
    })
}

fn check_times(event: &Value, require: bool) -> Result<(), GraphError> {
    if !require && event.get("start").is_none() && event.get("end").is_none() {
        return Ok(());
    }
    State::validate_times(event).map_err(|m| {
        let code = if m.contains("TimeZone") { "TimeZoneNotSupportedException" } else { "ErrorInvalidRequest" };
        GraphError::bad_request(code, m)
    })?;
    let (start, end) =
        view::span_of(event).ok_or_else(|| GraphError::bad_request("ErrorInvalidRequest", "Invalid times."))?;
    let raw_end = event.get("end").and_then(view::instant_of);
    if raw_end.is_some_and(|e| e < start) || end < start {
        return Err(GraphError::bad_request(
            "ErrorInvalidRequest",
            "Your request can't be completed. The end time must be after the start time.",
        ));
    }
    Ok(())
}

/// `POST …/events`: 201 with the event. A repeated `transactionId` returns the event created
/// the first time instead of a duplicate (the create answers 201 again).
pub(crate) fn create_event(st: &mut State, calendar: &str, body: &[u8], zone: &OutZone) -> Result<Value, GraphError> {
    let mut event = parse_body(body)?;
    check_times(&event, true)?;
    let transaction = event.get("transactionId").and_then(Value::as_str).map(str::to_string);
    let id = match transaction.as_deref().and_then(|t| st.by_transaction(t)) {
        Some(existing) => existing,
        None => {
            if let Some(m) = event.as_object_mut() {
                for k in ["id", "@odata.etag", "changeKey", "iCalUId", "createdDateTime", "lastModifiedDateTime"] {
                    m.remove(k);
                }
            }
            st.put(calendar, &event)
        }
    };
    get_event(st, &id, zone, &Query::default())
}

fn if_match_ok(current: &Value, if_match: Option<&str>) -> bool {
    let Some(wanted) = if_match.map(str::trim) else { return true };
    if wanted == "*" {
        return true;
    }
    let ck = current.get("changeKey").and_then(Value::as_str).unwrap_or("");
    let bare = wanted.trim_start_matches("W/").trim_matches('"');
    bare == ck
}

/// `PATCH …/events/{id}`: on a single event or master, or on an occurrence (which becomes an
/// exception).
pub(crate) fn patch_event(
    st: &mut State,
    id: &str,
    if_match: Option<&str>,
    body: &[u8],
    zone: &OutZone,
) -> Result<Value, GraphError> {
    let patch = parse_body(body)?;
    let (_, current) = st.find(id).ok_or_else(GraphError::item_not_found)?;
    if !if_match_ok(&current, if_match) {
        return Err(GraphError::change_key_conflict());
    }
    let mut merged = current.clone();
    if let (Some(m), Some(p)) = (merged.as_object_mut(), patch.as_object()) {
        m.extend(p.clone());
    }
    check_times(&merged, false)?;
    if st.events.contains_key(id) {
        st.patch(id, &patch);
    } else {
        let (master, original) = view::parse_occurrence_id(id).ok_or_else(GraphError::item_not_found)?;
        st.modify_occurrence(&master, original, &patch).ok_or_else(GraphError::item_not_found)?;
    }
    get_event(st, id, zone, &Query::default())
}

/// `DELETE …/events/{id}`: 204; deleting an occurrence cancels it.
pub(crate) fn delete_event(st: &mut State, id: &str, if_match: Option<&str>) -> Result<(), GraphError> {
    let (_, current) = st.find(id).ok_or_else(GraphError::item_not_found)?;
    if !if_match_ok(&current, if_match) {
        return Err(GraphError::change_key_conflict());
    }
    if st.delete(id) {
        return Ok(());
    }
    let (master, original) = view::parse_occurrence_id(id).ok_or_else(GraphError::item_not_found)?;
    if st.cancel_occurrence(&master, original) { Ok(()) } else { Err(GraphError::item_not_found()) }
}

fn status_rank(status: &str) -> (u8, char) {
    match status {
        "tentative" => (1, '1'),
        "workingElsewhere" => (2, '4'),
        "busy" => (3, '2'),
        "oof" => (4, '3'),
        _ => (0, '0'),
    }
}

/// `POST /me/calendar/getSchedule`: the mailbox owner's default calendar; other addresses get
/// the per-schedule error Graph gives for unknown recipients.
pub(crate) fn get_schedule(st: &State, body: &[u8], zone: &OutZone) -> Result<Value, GraphError> {
    let req = parse_body(body)?;
    let bound = |k: &str| {
        req.get(k)
            .and_then(view::instant_of)
            .ok_or_else(|| GraphError::bad_request("ErrorInvalidParameter", format!("{k} must be a dateTimeTimeZone.")))
    };
    let (start, end) = (bound("startTime")?, bound("endTime")?);
    if end <= start {
        return Err(GraphError::bad_request("ErrorInvalidParameter", "endTime must be after startTime."));
    }
    let interval = req.get("availabilityViewInterval").and_then(Value::as_i64).unwrap_or(30).clamp(5, 1440);
    let schedules: Vec<String> = req
        .get("schedules")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    let working_hours = json!({"daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                               "startTime": "08:00:00.0000000", "endTime": "17:00:00.0000000",
                               "timeZone": {"name": "UTC"}});
    let value: Vec<Value> = schedules
        .into_iter()
        .map(|address| {
            if !address.eq_ignore_ascii_case(&st.email) {
                return json!({"scheduleId": address, "availabilityView": "", "scheduleItems": [],
                              "error": {"message": "The specified SMTP address is not found.",
                                        "responseCode": "ErrorMailRecipientNotFound"}});
            }
            let busy: Vec<(Timestamp, Timestamp, String, Value)> = st
                .instances(st.default_calendar(), (start, end))
                .into_iter()
                .filter(|e| !e.get("isCancelled").and_then(Value::as_bool).unwrap_or(false))
                .filter_map(|e| {
                    let status = e.get("showAs").and_then(Value::as_str).unwrap_or("busy").to_string();
                    let (s, t) = view::span_of(&e)?;
                    (status != "free").then_some((s, t, status, e))
                })
                .collect();
            let mut availability = String::new();
            let mut slot = start;
            while slot < end {
                let slot_end = slot.checked_add(SignedDuration::from_mins(interval)).unwrap_or(end).min(end);
                let best = busy
                    .iter()
                    .filter(|(s, e, _, _)| *s < slot_end && *e > slot)
                    .map(|(_, _, status, _)| status_rank(status))
                    .max()
                    .unwrap_or((0, '0'));
                availability.push(best.1);
                slot = slot_end;
            }
            let items: Vec<Value> = busy
                .iter()
                .map(|(_, _, status, e)| {
                    let r = view::render(e, zone);
                    json!({"isPrivate": e.get("sensitivity").and_then(Value::as_str) == Some("private"),
                           "status": status, "subject": r["subject"], "location": r["location"]["displayName"],
                           "start": r["start"], "end": r["end"]})
                })
                .collect();
            json!({"scheduleId": address, "availabilityView": availability, "scheduleItems": items,
                   "workingHours": working_hours})
        })
        .collect();
    Ok(json!({
        "@odata.context": format!("{}/v1.0/$metadata#Collection(microsoft.graph.scheduleInformation)", st.base_url),
        "value": value,
    }))
}
