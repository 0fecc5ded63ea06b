//! `/v1/proposals`: multi-party scheduling. Creating one resolves the organiser and which
//! participants are Kairos users, picks slots from availability when none are given, makes
//! each participant's response link (a 256-bit token, stored only as its SHA-256) and queues
//! their invitation emails. Responses arrive through the links (`routes::respond`); the
//! organiser closes polls and cancels here. Every change goes through the core's state machine
//! inside one store transaction (`Store::act_on_proposal`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use base64::Engine;
use jiff::{SignedDuration, Timestamp};
use kairos_core::Interval;
use kairos_core::availability::Mode;
use kairos_core::plan::Ask;
use kairos_core::proposal::{
    Action, Invitee, NewProposal, Organiser, PollVariant, Proposal, ProposalMode, ProposalStatus,
};
use kairos_store::{ProposalEmail, ProposalEmailKind, ProposalError, ProposalToken, TokenHolder, UserRef, Who, ids};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ErrorBody, booking_error};
use crate::extract::{ApiJson, ApiQuery, Auth};
use crate::idempotency::SealReplay;
use crate::wire::{self, Pagination, Time};

/// How far ahead Kairos looks when it picks the slots itself.
const PICK_WINDOW: SignedDuration = SignedDuration::from_hours(14 * 24);
/// How many slots Kairos picks.
const PICKED: usize = 3;
/// The sealing purpose of a response link kept for its invitation email.
pub const LINK_PURPOSE: &str = "proposal_emails.link";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposalParticipantIn {
    #[schema(example = "bob@example.com")]
    pub email: String,
    pub name: Option<String>,
    /// Whether their answer decides (consensus). Default true.
    pub required: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlotIn {
    #[schema(value_type = String, example = "2026-05-01T14:00:00Z")]
    pub start: Time,
    #[schema(value_type = String, example = "2026-05-01T14:30:00Z")]
    pub end: Time,
}

/// `{title, duration_minutes, organiser, participants, slots?, mode, poll_variant?, expires_at?}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProposal {
    #[schema(example = "Quarterly planning")]
    pub title: Option<String>,
    pub description: Option<String>,
    /// 5 to 1440.
    #[schema(example = 30)]
    pub duration_minutes: Option<u32>,
    /// The Kairos user organising it: a user id, `user:alice@example.com`, or an email.
    #[schema(example = "user:alice@example.com")]
    pub organiser: Option<String>,
    pub participants: Option<Vec<ProposalParticipantIn>>,
    /// The times on offer; when absent Kairos picks the best 3 common free slots of the
    /// organiser and the participants who are Kairos users, in the next 14 days.
    pub slots: Option<Vec<SlotIn>>,
    /// `consensus` (default) or `poll`.
    #[schema(example = "consensus")]
    pub mode: Option<String>,
    /// Polls: `named` (default; only the participants vote) or `open` (anyone with `vote_url`).
    pub poll_variant: Option<String>,
    /// When it closes unresolved; default a week, or the last slot's start if sooner.
    #[schema(value_type = Option<String>)]
    pub expires_at: Option<Time>,
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CancelProposal {
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProposalsQuery {
    /// `open`, `accepted`, `rejected`, `cancelled`, `expired` or `resolved`.
    status: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ProposalList {
    pub data: Vec<Proposal>,
    pub next_cursor: Option<String>,
}

/// Maps a refused or failed proposal action.
pub fn proposal_error(id: &str) -> impl FnOnce(ProposalError) -> ApiError + '_ {
    move |e| match e {
        ProposalError::NotFound => ApiError::not_found("proposal", id),
        ProposalError::Refused(r) if r.is_invalid_input() => {
            ApiError::invalid(r.param().unwrap_or("action"), r.message())
        }
        ProposalError::Refused(r) => {
            let error = ApiError::conflict(r.code(), r.message());
            match r.param() {
                Some(param) => error.with_param(param),
                None => error,
            }
        }
        ProposalError::Booking { error, .. } => {
            let (code, message) = kairos_store::proposals::conflict_text(&error);
            ApiError::conflict(code, format!("{message} The proposal stays open."))
        }
        ProposalError::Store(e) => e.into(),
    }
}

/// A response link's token: 256 random bits, URL-safe.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn response_url(state: &AppState, token: &str) -> String {
    format!("{}/p/{token}", state.public_url.as_str().trim_end_matches('/'))
}

fn mode(value: Option<&str>) -> Result<ProposalMode, ApiError> {
    match value {
        None | Some("consensus") => Ok(ProposalMode::Consensus),
        Some("poll") => Ok(ProposalMode::Poll),
        Some(other) => Err(ApiError::invalid("mode", format!("`mode` must be `consensus` or `poll`, not `{other}`."))),
    }
}

fn variant(value: Option<&str>) -> Result<Option<PollVariant>, ApiError> {
    match value {
        None => Ok(None),
        Some("named") => Ok(Some(PollVariant::Named)),
        Some("open") => Ok(Some(PollVariant::Open)),
        Some(other) => {
            Err(ApiError::invalid("poll_variant", format!("`poll_variant` must be `named` or `open`, not `{other}`.")))
        }
    }
}

/// The earliest free slots of everyone who is a Kairos user, preferring different days.
async fn pick_slots(
    state: &AppState,
    t: &kairos_store::Tenant,
    people: Vec<String>,
    duration: SignedDuration,
    now: Timestamp,
) -> Result<Vec<(String, Interval)>, ApiError> {
    let window = Interval::new(now, now + PICK_WINDOW).map_err(ApiError::internal)?;
    let who = Who { participants: people.into_iter().map(UserRef::Id).collect(), ..Who::default() };
    let party = state
        .store
        .load_party(t, &who, window, now)
        .await
        .map_err(|e| booking_error(e, ("organiser", "participants")))?;
    // A proposal's slots must start after now (the engine allows a start at now itself).
    let found: Vec<_> = party
        .slots(Ask { window, duration, now, mode: Mode::Collective, limit: None })
        .into_iter()
        .filter(|s| s.interval.start() > now)
        .collect();
    let mut picked: Vec<Interval> = Vec::with_capacity(PICKED);
    let day = |i: &Interval| i.start().as_second().div_euclid(86_400);
    for slot in &found {
        if picked.len() < PICKED && !picked.iter().any(|p| day(p) == day(&slot.interval)) {
            picked.push(slot.interval);
        }
    }
    for slot in &found {
        if picked.len() < PICKED && !picked.contains(&slot.interval) {
            picked.push(slot.interval);
        }
    }
    if picked.is_empty() {
        return Err(ApiError::conflict(
            "no_common_availability",
            "No time in the next 14 days is free for the organiser and every participant who is a Kairos user; give `slots` yourself.",
        ));
    }
    picked.sort_by_key(|i| i.start());
    Ok(picked.into_iter().map(|i| (ids::new_id("slot"), i)).collect())
}

#[utoipa::path(post, path = "/v1/proposals", tag = super::PROPOSALS, request_body = CreateProposal,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for 24 hours")),
    responses((status = 201, body = Proposal, description = "The proposal; each participant carries their `response_url`, an open poll its `vote_url` (shown only here)"),
        (status = 404, body = ErrorBody, description = "Unknown organiser"),
        (status = 409, body = ErrorBody, description = "no_common_availability"), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(t): Auth,
    ApiJson(body): ApiJson<CreateProposal>,
) -> Result<(StatusCode, Extension<SealReplay>, Json<Proposal>), ApiError> {
    let now = state.clock.now();
    let title = wire::line("title", body.title, 200)?
        .ok_or_else(|| ApiError::missing("title", "`title` is required: what is the meeting about?"))?;
    let description = wire::text("description", body.description, 5000)?;
    let duration_minutes = body
        .duration_minutes
        .ok_or_else(|| ApiError::missing("duration_minutes", "`duration_minutes` is required (5 to 1440)."))?;
    if !(5..=1440).contains(&duration_minutes) {
        return Err(ApiError::invalid("duration_minutes", "`duration_minutes` must be 5 to 1440."));
    }
    let mode = mode(body.mode.as_deref())?;
    let poll_variant = variant(body.poll_variant.as_deref())?;
    let organiser_ref = body
        .organiser
        .as_deref()
        .ok_or_else(|| ApiError::missing("organiser", "`organiser` is required: the Kairos user who organises it."))
        .and_then(|o| wire::user_ref("organiser", o))?;
    let given = body.participants.unwrap_or_default();
    let mut emails = Vec::with_capacity(given.len());
    let mut names = Vec::with_capacity(given.len());
    for (i, p) in given.iter().enumerate() {
        emails.push(wire::email(&format!("participants[{i}].email"), &p.email)?);
        names.push(wire::line(&format!("participants[{i}].name"), p.name.clone(), 200)?);
    }
    let mut refs = vec![organiser_ref];
    refs.extend(emails.iter().map(|e| UserRef::Email(e.clone())));
    let mut users = state.store.resolve_users(&t, &refs).await?.into_iter();
    let organiser = users.next().flatten().ok_or_else(|| {
        ApiError::missing_reference(
            "organiser",
            "No user matches `organiser`; create the user first or fix the reference.",
        )
    })?;
    let participants: Vec<Invitee> = given
        .into_iter()
        .zip(emails.into_iter().zip(names))
        .zip(users)
        .map(|((p, (email, name)), user)| Invitee {
            email,
            name: name.or_else(|| user.as_ref().and_then(|u| u.name.clone())),
            required: p.required.unwrap_or(true),
            user_id: user.map(|u| u.id),
        })
        .collect();
    let length = SignedDuration::from_mins(i64::from(duration_minutes));
    let slots = match body.slots {
        Some(slots) => slots
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                Interval::new(s.start.0, s.end.0).map(|iv| (ids::new_id("slot"), iv)).map_err(|_| {
                    ApiError::invalid(format!("slots[{i}].end"), "Each slot's end must be after its start.")
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => {
            let mut people = vec![organiser.id.clone()];
            people.extend(participants.iter().filter_map(|p| p.user_id.clone()));
            pick_slots(&state, &t, people, length, now).await?
        }
    };
    let mut proposal = Proposal::new(
        NewProposal {
            id: ids::new_id("prop"),
            thread_id: ids::new_id("thr"),
            title,
            description,
            duration_minutes,
            organiser: Organiser { user_id: organiser.id, email: organiser.email, name: organiser.name },
            mode,
            poll_variant,
            participants,
            slots,
            expires_at: body.expires_at.map(|t| t.0),
        },
        now,
    )
    .map_err(|e| ApiError::invalid(e.param, e.message))?;

    let keyring = state.sync.providers.providers().keyring.clone();
    let mut tokens = Vec::with_capacity(proposal.participants.len() + 1);
    let mut invitations = Vec::with_capacity(proposal.participants.len());
    let mut urls = Vec::with_capacity(proposal.participants.len());
    for (i, r) in proposal.participants.iter().enumerate() {
        let token = new_token();
        let url = response_url(&state, &token);
        tokens.push(ProposalToken { hash: kairos_store::keys::hash(&token), holder: TokenHolder::Participant(i) });
        invitations.push(ProposalEmail {
            proposal_id: proposal.id.clone(),
            recipient: r.email.clone(),
            name: r.name.clone(),
            link_sealed: Some(keyring.seal(LINK_PURPOSE, &format!("{}:{}", proposal.id, r.email), url.as_bytes())),
            kind: ProposalEmailKind::Invitation,
            version: 0,
            sent_version: None,
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            sent_at: None,
            updated_at: now,
            lease: None,
        });
        urls.push(url);
    }
    let vote_token = (proposal.poll_variant == Some(PollVariant::Open)).then(new_token);
    if let Some(token) = &vote_token {
        tokens.push(ProposalToken { hash: kairos_store::keys::hash(token), holder: TokenHolder::OpenPoll });
    }
    state.store.insert_proposal(&t, &proposal, &tokens, &invitations, now).await?;
    for (r, url) in proposal.participants.iter_mut().zip(urls) {
        r.response_url = Some(url);
    }
    proposal.vote_url = vote_token.map(|token| response_url(&state, &token));
    // The links are credentials: an idempotent replay copy of this response is kept sealed.
    Ok((StatusCode::CREATED, Extension(SealReplay), Json(proposal)))
}

#[utoipa::path(get, path = "/v1/proposals", tag = super::PROPOSALS, params(ProposalsQuery),
    responses((status = 200, body = ProposalList), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(t): Auth,
    ApiQuery(q): ApiQuery<ProposalsQuery>,
) -> Result<Json<ProposalList>, ApiError> {
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(ProposalStatus::parse(s).ok_or_else(|| {
            ApiError::invalid(
                "status",
                format!("`status` must be one of open, accepted, rejected, cancelled, expired, resolved; not `{s}`."),
            )
        })?),
    };
    let page = Pagination { limit: q.limit, cursor: q.cursor }.page()?;
    let page = state.store.proposals(&t, status, &page).await?;
    Ok(Json(ProposalList { data: page.data, next_cursor: page.next_cursor }))
}

#[utoipa::path(get, path = "/v1/proposals/{id}", tag = super::PROPOSALS, params(("id" = String, Path)),
    responses((status = 200, body = Proposal), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Json<Proposal>, ApiError> {
    let proposal = state.store.proposal(&t, &id).await?.ok_or_else(|| ApiError::not_found("proposal", &id))?;
    Ok(Json(proposal))
}

#[utoipa::path(post, path = "/v1/proposals/{id}/close", tag = super::PROPOSALS, params(("id" = String, Path)),
    responses((status = 200, body = Proposal, description = "The poll, resolved"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Not an open poll, or nobody voted")))]
pub async fn close(
    State(state): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Json<Proposal>, ApiError> {
    let now = state.clock.now();
    let proposal = state.store.act_on_proposal(&t, &id, Action::Close, now).await.map_err(proposal_error(&id))?;
    Ok(Json(proposal))
}

#[utoipa::path(post, path = "/v1/proposals/{id}/cancel", tag = super::PROPOSALS, params(("id" = String, Path)), request_body = CancelProposal,
    responses((status = 200, body = Proposal, description = "Cancelled (again: unchanged); an accepted proposal's booking is cancelled too"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "Already rejected or expired")))]
pub async fn cancel(
    State(state): State<AppState>,
    Auth(t): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CancelProposal>,
) -> Result<Json<Proposal>, ApiError> {
    let reason = wire::text("reason", body.reason, 500)?;
    let now = state.clock.now();
    let proposal =
        state.store.act_on_proposal(&t, &id, Action::Cancel { reason }, now).await.map_err(proposal_error(&id))?;
    Ok(Json(proposal))
}
