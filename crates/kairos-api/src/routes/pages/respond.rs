//! Proposal response links, `/p/{token}`: no key, the token is the credential (looked up by
//! its SHA-256; an unknown one is a plain 404). `GET` is the page for people (the booking
//! page's look); `POST` with JSON is for programs (`{"action": "accept", "slot_id"}`,
//! `reject`, `counter` with `slots`, `vote` with `slot_ids` and, on an open poll's link,
//! `name`); `POST` of the page's form (CSRF-checked) answers with the page again.
//!
//! The page and the JSON show the proposal's title, organiser's name, slots and outcome, and
//! the responder's own answer: never other participants' addresses or the account.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use kairos_core::describe::describe;
use kairos_core::proposal::{
    self, Action, PollVariant, Proposal, ProposalMode, ProposalStatus, Responder, ResponseStatus, Tally,
};
use kairos_core::{Interval, Zone};
use kairos_store::{Tenant, TokenHolder, ids, keys};
use serde::{Deserialize, Serialize};

use super::view;
use crate::AppState;
use crate::error::ApiError;
use crate::public;
use crate::routes::proposals::{new_token, proposal_error};
use crate::wire;

/// The largest response body read.
const BODY_LIMIT: usize = 64 * 1024;

/// A countered slot, its times as given (read here so that a bad one is a 422 naming it).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonSlot {
    start: String,
    end: String,
}

/// A program's response.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResponseIn {
    action: String,
    slot_id: Option<String>,
    slot_ids: Option<Vec<String>>,
    slots: Option<Vec<JsonSlot>>,
    name: Option<String>,
    reason: Option<String>,
    /// An open poll: the key a vote under `name` was given, to change that vote.
    voter_key: Option<String>,
}

/// A slot as a link shows it: when, not who offered it.
#[derive(Debug, Serialize)]
struct PublicSlot {
    id: String,
    start: Timestamp,
    end: Timestamp,
}

/// What a response link shows of its proposal.
#[derive(Debug, Serialize)]
struct PublicProposal {
    id: String,
    title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    organiser: String,
    duration_minutes: u32,
    mode: ProposalMode,
    #[serde(skip_serializing_if = "Option::is_none")]
    poll_variant: Option<PollVariant>,
    status: ProposalStatus,
    expires_at: Timestamp,
    slots: Vec<PublicSlot>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accepted_slot_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Tally>,
    /// The responder's own answer (personal links only).
    #[serde(skip_serializing_if = "Option::is_none")]
    you: Option<You>,
    /// An open poll's vote: keep it to change the vote later (send it as `voter_key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    voter_key: Option<String>,
}

#[derive(Debug, Serialize)]
struct You {
    email: String,
    required: bool,
    status: ResponseStatus,
    slot_ids: Vec<String>,
}

fn organiser_name(p: &Proposal) -> String {
    p.organiser.name.clone().unwrap_or_else(|| p.organiser.email.clone())
}

fn public_view(p: Proposal, holder: TokenHolder) -> PublicProposal {
    let you = match holder {
        TokenHolder::Participant(i) => p.participants.get(i).map(|r| You {
            email: r.email.clone(),
            required: r.required,
            status: r.status,
            slot_ids: r.slot_ids.clone(),
        }),
        TokenHolder::OpenPoll => None,
    };
    PublicProposal {
        organiser: organiser_name(&p),
        id: p.id,
        title: p.title,
        description: p.description,
        duration_minutes: p.duration_minutes,
        mode: p.mode,
        poll_variant: p.poll_variant,
        status: p.status,
        expires_at: p.expires_at,
        slots: p.slots.into_iter().map(|s| PublicSlot { id: s.id, start: s.start, end: s.end }).collect(),
        accepted_slot_id: p.accepted_slot_id,
        result: p.result,
        you,
        voter_key: None,
    }
}

async fn find(state: &AppState, token: &str) -> Result<Option<(Tenant, Proposal, TokenHolder)>, ApiError> {
    // Tokens are 43 URL-safe characters; anything else cannot be one (and is not looked up).
    if token.len() != 43 || !token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Ok(None);
    }
    Ok(state.store.proposal_by_token(&keys::hash(token)).await?)
}

fn link_not_found() -> ApiError {
    ApiError::not_found("proposal response link", "this link")
}

/// Turns a response into the state machine's action for whoever holds the link. An open
/// poll's vote also yields the voter key in effect (the one given, or a new one).
fn action(holder: TokenHolder, body: ResponseIn) -> Result<(Action, Option<String>), ApiError> {
    let by = match (holder, body.action.as_str()) {
        (TokenHolder::OpenPoll, "vote") => {
            let name = wire::line("name", body.name, proposal::MAX_NAME_CHARS)?
                .ok_or_else(|| ApiError::missing("name", "Give your `name` with a vote on an open poll."))?;
            let voter_key = body.voter_key.filter(|k| !k.trim().is_empty()).unwrap_or_else(new_token);
            let by = Responder::OpenVoter { name, key_hash: keys::hash(&voter_key) };
            return Ok((Action::Vote { by, slot_ids: body.slot_ids.unwrap_or_default() }, Some(voter_key)));
        }
        (TokenHolder::OpenPoll, _) => {
            return Err(ApiError::invalid(
                "action",
                "This is an open poll's vote link: send {\"action\": \"vote\", \"slot_ids\": [...], \"name\": \"…\"}.",
            ));
        }
        (TokenHolder::Participant(by), _) => by,
    };
    let action = match body.action.as_str() {
        "accept" => {
            let slot_id = body
                .slot_id
                .ok_or_else(|| ApiError::missing("slot_id", "Say which slot you accept: give `slot_id`."))?;
            Action::Accept { by, slot_id }
        }
        "reject" => Action::Reject { by, reason: wire::text("reason", body.reason, 500)? },
        "counter" => {
            let slots = body
                .slots
                .ok_or_else(|| ApiError::missing("slots", "Give the `slots` you can do: [{\"start\", \"end\"}]."))?;
            let slots = slots
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    let time = |field: &str, text: &str| {
                        wire::parse_time(text).map_err(|e| ApiError::invalid(format!("slots[{i}].{field}"), e))
                    };
                    let (start, end) = (time("start", &s.start)?, time("end", &s.end)?);
                    Interval::new(start, end).map(|iv| (ids::new_id("slot"), iv)).map_err(|_| {
                        ApiError::invalid(format!("slots[{i}].end"), "Each slot's end must be after its start.")
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Action::Counter { by, slots }
        }
        "vote" => {
            let slot_ids = body.slot_ids.ok_or_else(|| {
                ApiError::missing("slot_ids", "Give the `slot_ids` you vote for (an empty list means none work).")
            })?;
            Action::Vote { by: Responder::Participant(by), slot_ids }
        }
        other => {
            return Err(ApiError::invalid(
                "action",
                format!("`action` must be `accept`, `reject`, `counter` or `vote`, not `{other}`."),
            ));
        }
    };
    Ok((action, None))
}

/// `POST /p/{token}`: a program's JSON response, or the page's form.
pub async fn respond(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/json"));
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return ApiError::too_large(BODY_LIMIT).into_response();
    };
    if json {
        // A link's answer carries that person's view (and an open poll's voter key): never cache it.
        let mut response = respond_json(&state, &token, &bytes).await.into_response();
        response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
        response
    } else {
        respond_form(&state, &token, &headers, &bytes).await
    }
}

async fn respond_json(state: &AppState, token: &str, bytes: &[u8]) -> Result<Json<PublicProposal>, ApiError> {
    let (t, p, holder) = find(state, token).await?.ok_or_else(link_not_found)?;
    let body: ResponseIn = crate::extract::json_body(bytes)?;
    let (action, voter_key) = action(holder, body)?;
    let now = state.clock.now();
    let p = state.store.act_on_proposal(&t, &p.id, action, now).await.map_err(proposal_error(&p.id))?;
    Ok(Json(PublicProposal { voter_key, ..public_view(p, holder) }))
}

async fn respond_form(state: &AppState, token: &str, headers: &HeaderMap, bytes: &[u8]) -> Response {
    let (t, p, holder) = match find(state, token).await {
        Ok(Some(found)) => found,
        Ok(None) => return not_found(),
        Err(e) => return view::internal(format!("{e:?}")),
    };
    let fields: Vec<(String, String)> =
        form_urlencoded::parse(bytes).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let zone = zone_of(field("tz").as_deref());
    if !public::csrf_matches(headers, field("csrf").as_deref()) {
        return view::message(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "For your security, answers must be sent from the page of your link. Open your link again and answer once more.",
            Some((&format!("/p/{token}"), "Back to the proposal")),
        );
    }
    let body = ResponseIn {
        action: field("action").unwrap_or_default(),
        slot_id: field("slot_id"),
        slot_ids: Some(fields.iter().filter(|(k, _)| k == "slot_ids").map(|(_, v)| v.clone()).collect()),
        slots: None,
        name: field("name"),
        reason: field("reason").filter(|r| !r.trim().is_empty()),
        // A browser keeps its open-poll voter key in a cookie scoped to this link.
        voter_key: voter_cookie(headers),
    };
    let name = body.name.clone().unwrap_or_default();
    let now = state.clock.now();
    let mut voter_key = None;
    let outcome = match action(holder, body) {
        Ok((action, key)) => {
            voter_key = key;
            state.store.act_on_proposal(&t, &p.id, action, now).await.map_err(proposal_error(&p.id))
        }
        Err(e) => Err(e),
    };
    let csrf = public::csrf_token(headers);
    match outcome {
        Ok(after) => {
            let saved = Some(("Thank you — your answer is saved.", false));
            let mut page = render(token, after, holder, &zone, false, saved, &csrf, &name);
            if let Some(key) = voter_key {
                let secure = if state.public_url.scheme() == "https" { "; Secure" } else { "" };
                let cookie = format!(
                    "{VOTER_COOKIE}={key}; Path=/p/{token}; Max-Age=7776000; HttpOnly; SameSite=Strict{secure}"
                );
                if let Ok(value) = header::HeaderValue::from_str(&cookie) {
                    page.headers_mut().append(header::SET_COOKIE, value);
                }
            }
            page
        }
        Err(e) => {
            let status = e.status;
            let message = e.body().error.message;
            let current = state.store.proposal(&t, &p.id).await.ok().flatten().unwrap_or(p);
            let mut page = render(token, current, holder, &zone, false, Some((&message, true)), &csrf, &name);
            *page.status_mut() = status;
            page
        }
    }
}

/// `GET /p/{token}?tz=Area/City`: the proposal, in the visitor's zone.
pub async fn page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let (_, p, holder) = match find(&state, &token).await {
        Ok(Some(found)) => found,
        Ok(None) => return not_found(),
        Err(e) => return view::internal(format!("{e:?}")),
    };
    let asked = query
        .as_deref()
        .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "tz").map(|(_, v)| v.into_owned()));
    let zone = zone_of(asked.as_deref());
    let csrf = public::csrf_token(&headers);
    let mut response = render(&token, p, holder, &zone, asked.is_none(), None, &csrf, "");
    response
        .headers_mut()
        .append(header::SET_COOKIE, public::csrf_cookie(&csrf, "/p/", state.public_url.scheme() == "https"));
    response
}

/// The cookie holding a browser's open-poll voter key.
const VOTER_COOKIE: &str = "kairos_voter";

fn voter_cookie(headers: &HeaderMap) -> Option<String> {
    public::cookies(headers, VOTER_COOKIE).next().map(str::to_string)
}

fn not_found() -> Response {
    view::message(
        StatusCode::NOT_FOUND,
        "Link not found",
        "This response link is not valid. Check that you opened the whole link from your invitation.",
        None,
    )
}

fn zone_of(asked: Option<&str>) -> Zone {
    asked.map(str::trim).filter(|a| !a.is_empty()).and_then(|a| Zone::parse(a).ok()).unwrap_or_else(Zone::utc)
}

#[derive(Serialize)]
struct SlotView {
    id: String,
    label: String,
    chosen: bool,
    votes: Option<u32>,
}

#[derive(Serialize)]
struct ProposalView {
    title: String,
    description: Option<String>,
    organiser: String,
    duration: String,
    status_text: Option<String>,
    open: bool,
    poll: bool,
    needs_name: bool,
    can_reject: bool,
    slots: Vec<SlotView>,
}

#[derive(Serialize)]
struct PageView<'a> {
    page_title: &'a str,
    p: ProposalView,
    notice: Option<&'a str>,
    notice_alert: bool,
    zones: &'static [String],
    zone: &'a str,
    action: String,
    csrf: &'a str,
    name: &'a str,
    script: Option<&'static str>,
}

#[allow(clippy::too_many_arguments)]
fn render(
    token: &str,
    p: Proposal,
    holder: TokenHolder,
    zone: &Zone,
    detect_zone: bool,
    notice: Option<(&str, bool)>,
    csrf: &str,
    name: &str,
) -> Response {
    let label = |id: &str| p.slot(id).map(|s| describe(s.start, zone)).unwrap_or_default();
    let me = match holder {
        TokenHolder::Participant(i) => p.participants.get(i),
        TokenHolder::OpenPoll => None,
    };
    let poll = p.mode == ProposalMode::Poll;
    let votes = |id: &str| {
        let named =
            p.participants.iter().filter(|r| r.status == ResponseStatus::Voted && r.slot_ids.iter().any(|s| s == id));
        let open = p.open_votes.iter().filter(|v| v.slot_ids.iter().any(|s| s == id));
        (named.count() + open.count()) as u32
    };
    let status_text = match p.status {
        ProposalStatus::Open => me.and_then(|r| match r.status {
            ResponseStatus::Pending => None,
            ResponseStatus::Accepted => Some(format!("Your answer: {} works for you.", label(&r.slot_ids[0]))),
            ResponseStatus::Rejected => Some("Your answer: none of these times work for you.".to_string()),
            ResponseStatus::Countered => Some("Your answer: you suggested other times.".to_string()),
            ResponseStatus::Voted => Some(format!("Your vote is in, for {} time(s).", r.slot_ids.len())),
        }),
        ProposalStatus::Accepted => {
            let slot_id = p.accepted_slot_id.as_deref().unwrap_or_default();
            // Whoever can come is in the booking (a Kairos user) or is sent its invitation.
            let invited = me.is_some_and(|r| r.required || r.slot_ids.iter().any(|s| s == slot_id));
            let follows = if invited { " A calendar invitation follows by email." } else { "" };
            Some(format!("Everyone agreed on {}.{follows}", label(slot_id)))
        }
        ProposalStatus::Resolved => Some(format!(
            "The poll is closed. The chosen time: {}.",
            p.result.as_ref().map(|r| label(&r.winning_slot.id)).unwrap_or_default()
        )),
        ProposalStatus::Rejected => Some("This proposal was declined.".to_string()),
        ProposalStatus::Cancelled => Some("The organiser cancelled this proposal.".to_string()),
        ProposalStatus::Expired => Some("This proposal has expired.".to_string()),
    };
    let chosen = |id: &str| me.is_some_and(|r| r.slot_ids.iter().any(|s| s == id));
    let view = ProposalView {
        title: p.title.clone(),
        description: p.description.clone(),
        organiser: organiser_name(&p),
        duration: format!("{} minutes", p.duration_minutes),
        status_text,
        open: p.status == ProposalStatus::Open,
        poll,
        needs_name: holder == TokenHolder::OpenPoll,
        can_reject: me.is_some(),
        slots: p
            .slots
            .iter()
            .map(|s| SlotView {
                id: s.id.clone(),
                label: describe(s.start, zone),
                chosen: chosen(&s.id),
                votes: poll.then(|| votes(&s.id)),
            })
            .collect(),
    };
    let (notice, notice_alert) = notice.map_or((None, false), |(text, alert)| (Some(text), alert));
    view::page(
        StatusCode::OK,
        "respond.html",
        PageView {
            page_title: &p.title,
            p: view,
            notice,
            notice_alert,
            zones: view::zone_names(),
            zone: zone.name(),
            action: format!("/p/{token}"),
            csrf,
            name,
            script: detect_zone.then_some(view::ZONE_SCRIPT),
        },
    )
}
