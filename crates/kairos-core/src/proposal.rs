//! Proposals: scheduling among several people, as a pure state machine.
//!
//! A proposal offers slots to participants. In **consensus** mode each participant accepts one
//! slot, rejects, or counters with slots of their own; when every required participant can do
//! one common slot the proposal is `accepted` and the caller books that slot. In **poll** mode
//! participants (the named ones, or in an `open` poll anyone with the vote link) vote for any
//! number of slots; the poll resolves when every named voter has voted, when the organiser
//! closes it, or at expiry: most votes wins, ties go to the earliest start.
//!
//! [`Proposal::apply`] is the only way a proposal changes. It validates the action against the
//! current state and returns the events the change emits and the effect the caller must carry
//! out in the same transaction (book the agreed slot, cancel the booking). It never reads the
//! clock and never makes ids: both come in as arguments, so every transition is testable.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::Interval;

/// The most slots a proposal may carry, counters included.
pub const MAX_SLOTS: usize = 50;
/// The most named participants.
pub const MAX_PARTICIPANTS: usize = 100;
/// The most distinct voters an open poll takes.
pub const MAX_OPEN_VOTERS: usize = 1000;
/// How long a proposal stays open when `expires_at` is not given (it also closes when its
/// last slot starts).
pub const DEFAULT_LIFETIME: SignedDuration = SignedDuration::from_hours(7 * 24);
/// The latest `expires_at` may be.
pub const MAX_LIFETIME: SignedDuration = SignedDuration::from_hours(90 * 24);
/// The longest name an open-poll voter may give.
pub const MAX_NAME_CHARS: usize = 100;

/// How a proposal decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProposalMode {
    /// Every required participant agrees on one slot; it is then booked.
    Consensus,
    /// Participants vote; the slot with the most votes wins.
    Poll,
}

impl ProposalMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Consensus => "consensus",
            Self::Poll => "poll",
        }
    }
}

/// Who may vote in a poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PollVariant {
    /// Only the named participants, each through their own link.
    Named,
    /// Anyone with the poll's vote link, giving a name (named participants' links work too).
    Open,
}

impl PollVariant {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Named => "named",
            Self::Open => "open",
        }
    }
}

/// Where a proposal stands. Every status but `open` is final, except that an `accepted` or
/// `resolved` proposal can still be cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProposalStatus {
    Open,
    /// Consensus reached and booked.
    Accepted,
    /// A required participant declined.
    Rejected,
    Cancelled,
    /// Past `expires_at` without a resolution.
    Expired,
    /// A poll's winning slot is known.
    Resolved,
}

impl ProposalStatus {
    pub const ALL: [ProposalStatus; 6] =
        [Self::Open, Self::Accepted, Self::Rejected, Self::Cancelled, Self::Expired, Self::Resolved];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
            Self::Resolved => "resolved",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Where one participant's response stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ResponseStatus {
    Pending,
    Accepted,
    Rejected,
    /// Offered other slots (and can do those).
    Countered,
    Voted,
}

/// A time on offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProposalSlot {
    #[cfg_attr(feature = "openapi", schema(example = "slot_01jd3k5v7w8x9y0z1a2b3c4d5e"))]
    pub id: String,
    pub start: Timestamp,
    pub end: Timestamp,
    /// The participant who offered it in a counter; absent for the organiser's slots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposed_by: Option<String>,
}

/// A named participant and their response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Respondent {
    /// Lowercase address.
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub required: bool,
    /// The Kairos user with this address, when there is one: their time is considered when
    /// Kairos picks slots, and held by the booking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub status: ResponseStatus,
    /// The slots this participant can do: the one accepted, the ones countered, or the ones
    /// voted for.
    pub slot_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responded_at: Option<Timestamp>,
    /// Why they declined, if they said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Their personal response link. Links are credentials kept only as hashes, so this is
    /// set only in the response that creates the proposal (and sent by email); never stored.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub response_url: Option<String>,
}

/// A vote cast through an open poll's link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OpenVote {
    pub name: String,
    pub slot_ids: Vec<String>,
    pub voted_at: Timestamp,
    /// The SHA-256 of the voter's key: changing this vote needs the key.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub key_hash: String,
}

/// Who organises a proposal: a Kairos user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Organiser {
    pub user_id: String,
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A poll's outcome, in the shape of `proposal.resolved`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tally {
    pub winning_slot: WinningSlot,
    /// Votes for the winning slot.
    pub vote_count: u32,
    /// Ballots cast (each voter counts once, however many slots they chose).
    pub total_votes: u32,
    /// How many slots finished on the winning count: 1 is a clean win, more means the
    /// earliest start broke a tie.
    pub tie_count: u32,
}

/// A slot as `proposal.resolved` names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WinningSlot {
    pub id: String,
    pub start: Timestamp,
    pub end: Timestamp,
}

/// Why the agreed slot could not be booked (the proposal stays open).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Conflict {
    pub slot_id: String,
    pub code: String,
    pub message: String,
    pub at: Timestamp,
}

/// A proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Proposal {
    #[cfg_attr(feature = "openapi", schema(example = "prop_01jd3k5v7w8x9y0z1a2b3c4d5e"))]
    pub id: String,
    /// The conversation this proposal belongs to (one per proposal), as webhook events name it.
    pub thread_id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub duration_minutes: u32,
    pub organiser: Organiser,
    pub mode: ProposalMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_variant: Option<PollVariant>,
    pub status: ProposalStatus,
    pub slots: Vec<ProposalSlot>,
    pub participants: Vec<Respondent>,
    /// Votes cast through an open poll's link.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open_votes: Vec<OpenVote>,
    pub expires_at: Timestamp,
    /// The slot everyone accepted (consensus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_slot_id: Option<String>,
    /// The booking made for the accepted slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking_id: Option<String>,
    /// The poll's outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Tally>,
    /// The last time the agreed slot could not be booked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<Conflict>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation_reason: Option<String>,
    /// An open poll's shared vote link; like `response_url`, only in the creating response.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub vote_url: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A participant as the creator names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitee {
    pub email: String,
    pub name: Option<String>,
    pub required: bool,
    pub user_id: Option<String>,
}

/// Everything a new proposal needs; ids are made by the caller.
#[derive(Debug, Clone)]
pub struct NewProposal {
    pub id: String,
    pub thread_id: String,
    pub title: String,
    pub description: Option<String>,
    pub duration_minutes: u32,
    pub organiser: Organiser,
    pub mode: ProposalMode,
    pub poll_variant: Option<PollVariant>,
    pub participants: Vec<Invitee>,
    /// `(id, interval)` of each slot, in the order given.
    pub slots: Vec<(String, Interval)>,
    pub expires_at: Option<Timestamp>,
}

/// A new proposal's input was invalid: `param` names the field, `message` says the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{param}: {message}")]
pub struct Invalid {
    pub param: String,
    pub message: String,
}

fn invalid(param: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid { param: param.into(), message: message.into() }
}

/// Who acts on a proposal through a response link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Responder {
    /// The named participant at this index (their personal link).
    Participant(usize),
    /// Someone voting through an open poll's link, under this name, with the SHA-256 of the
    /// voter key that lets them (and only them) change that vote later.
    OpenVoter { name: String, key_hash: String },
}

/// Something that happens to a proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A participant can do this slot (consensus).
    Accept { by: usize, slot_id: String },
    /// A participant declines (consensus).
    Reject { by: usize, reason: Option<String> },
    /// A participant offers other slots, `(new id, interval)`; an interval already on offer
    /// keeps its id (consensus).
    Counter { by: usize, slots: Vec<(String, Interval)> },
    /// A vote for any number of slots, replacing the voter's earlier vote (poll).
    Vote { by: Responder, slot_ids: Vec<String> },
    /// The organiser ends a poll now.
    Close,
    /// The organiser calls it off (an accepted proposal's booking is cancelled with it).
    Cancel { reason: Option<String> },
    /// `expires_at` has passed (the sweep).
    Expire,
}

impl Action {
    /// The action's name on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Accept { .. } => "accept",
            Self::Reject { .. } => "reject",
            Self::Counter { .. } => "counter",
            Self::Vote { .. } => "vote",
            Self::Close => "close",
            Self::Cancel { .. } => "cancel",
            Self::Expire => "expire",
        }
    }
}

/// A webhook event a transition emits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProposalEvent {
    Created,
    /// The participant at `by` offered `slot_ids`.
    Countered {
        by: usize,
        slot_ids: Vec<String>,
    },
    Accepted,
    /// The required participant at `by` declined.
    Rejected {
        by: usize,
    },
    Cancelled,
    Expired,
    Resolved,
}

impl ProposalEvent {
    /// The webhook event type.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Created => "proposal.created",
            Self::Countered { .. } => "proposal.countered",
            Self::Accepted => "proposal.accepted",
            Self::Rejected { .. } => "proposal.rejected",
            Self::Cancelled => "proposal.cancelled",
            Self::Expired => "proposal.expired",
            Self::Resolved => "proposal.resolved",
        }
    }
}

/// What the caller must do, in the same transaction as the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Book this slot for the organiser and the participants who can do it, then call
    /// [`Proposal::booked`]. If it cannot be booked, roll the change back and keep
    /// [`Proposal::conflicted`] instead.
    Book { slot_id: String },
    /// Cancel the booking made when the proposal was accepted.
    CancelBooking { booking_id: String },
}

/// What a transition did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transition {
    pub events: Vec<ProposalEvent>,
    pub effect: Option<Effect>,
}

impl Transition {
    fn event(event: ProposalEvent) -> Self {
        Self { events: vec![event], effect: None }
    }
}

/// Why an action was refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the proposal is {0:?}; it takes no more responses")]
    Closed(ProposalStatus),
    #[error("the proposal expired")]
    Expired,
    #[error("{action} does not apply to a {mode} proposal")]
    WrongMode { action: &'static str, mode: &'static str },
    #[error("unknown slot {0}")]
    UnknownSlot(String),
    #[error("slot {0} has already started")]
    SlotPassed(String),
    #[error("invalid {param}: {message}")]
    Invalid { param: String, message: String },
    #[error("nobody has voted")]
    NoVotes,
    #[error("the proposal has not expired")]
    NotExpired,
    #[error("that link cannot vote in this poll")]
    NotAVoter,
    #[error("someone already voted as {0}")]
    NameTaken(String),
}

impl Refusal {
    /// The machine-readable code the API reports.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Closed(_) => "proposal_closed",
            Self::Expired => "proposal_expired",
            Self::WrongMode { .. } => "action_not_allowed",
            Self::UnknownSlot(_) => "unknown_slot",
            Self::SlotPassed(_) => "slot_passed",
            Self::Invalid { .. } => "invalid_request",
            Self::NoVotes => "no_votes",
            Self::NotExpired => "not_expired",
            Self::NotAVoter => "not_a_voter",
            Self::NameTaken(_) => "name_taken",
        }
    }

    /// True when the input was wrong (422) rather than the proposal's state (409).
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, Self::UnknownSlot(_) | Self::Invalid { .. })
    }

    /// The request field at fault, if one is.
    pub fn param(&self) -> Option<&str> {
        match self {
            Self::UnknownSlot(_) => Some("slot_id"),
            Self::Invalid { param, .. } => Some(param),
            Self::SlotPassed(_) => Some("slot_id"),
            Self::NameTaken(_) => Some("name"),
            _ => None,
        }
    }

    /// A message saying what was wrong and what to do.
    pub fn message(&self) -> String {
        match self {
            Self::Closed(status) => format!(
                "This proposal is {} and takes no more responses; create a new proposal to schedule again.",
                status.as_str()
            ),
            Self::Expired => "This proposal has expired and takes no more responses.".to_string(),
            Self::WrongMode { action, mode } => match *mode {
                "poll" => format!(
                    "`{action}` does not apply to a poll; send {{\"action\": \"vote\", \"slot_ids\": [...]}} instead."
                ),
                _ => format!(
                    "`{action}` does not apply to a consensus proposal; send `accept` with a `slot_id`, `reject`, or `counter` with `slots`."
                ),
            },
            Self::UnknownSlot(id) => {
                format!("No slot `{id}` on this proposal; use one of the ids in the proposal's `slots`.")
            }
            Self::SlotPassed(id) => format!("Slot `{id}` has already started; choose a later slot or counter."),
            Self::Invalid { message, .. } => message.clone(),
            Self::NoVotes => {
                "Nobody has voted yet, so there is no winner; wait for votes or cancel the proposal instead."
                    .to_string()
            }
            Self::NotExpired => "The proposal has not reached its expires_at yet.".to_string(),
            Self::NotAVoter => "This link cannot vote in this poll.".to_string(),
            Self::NameTaken(name) => format!(
                "Someone already voted as {name}. To change that vote send the voter_key it was given; otherwise vote under another name."
            ),
        }
    }
}

fn refuse_invalid(param: impl Into<String>, message: impl Into<String>) -> Refusal {
    Refusal::Invalid { param: param.into(), message: message.into() }
}

impl Proposal {
    /// Opens a proposal, checking what the caller could not: slot lengths, duplicates,
    /// required participants, the poll variant and the expiry.
    pub fn new(new: NewProposal, now: Timestamp) -> Result<Proposal, Invalid> {
        let title = new.title.trim();
        if title.is_empty() || title.chars().count() > 200 {
            return Err(invalid("title", "Give a title of 1 to 200 characters."));
        }
        if !(5..=24 * 60).contains(&new.duration_minutes) {
            return Err(invalid("duration_minutes", "Give a duration between 5 and 1440 minutes."));
        }
        let poll_variant = match (new.mode, new.poll_variant) {
            (ProposalMode::Consensus, Some(_)) => {
                return Err(invalid(
                    "poll_variant",
                    "poll_variant applies to polls only; remove it or set mode to \"poll\".",
                ));
            }
            (ProposalMode::Consensus, None) => None,
            (ProposalMode::Poll, variant) => Some(variant.unwrap_or(PollVariant::Named)),
        };
        if new.participants.len() > MAX_PARTICIPANTS {
            return Err(invalid("participants", format!("A proposal takes at most {MAX_PARTICIPANTS} participants.")));
        }
        if new.participants.is_empty() && poll_variant != Some(PollVariant::Open) {
            return Err(invalid("participants", "Name at least one participant (only an open poll can have none)."));
        }
        if new.mode == ProposalMode::Consensus && !new.participants.iter().any(|p| p.required) {
            return Err(invalid(
                "participants",
                "A consensus proposal needs at least one participant with \"required\": true.",
            ));
        }
        let mut participants: Vec<Respondent> = Vec::with_capacity(new.participants.len());
        for (i, p) in new.participants.into_iter().enumerate() {
            let email = p.email.to_lowercase();
            if email == new.organiser.email.to_lowercase() {
                return Err(invalid(
                    format!("participants[{i}].email"),
                    "The organiser is not a participant of their own proposal; remove them from participants.",
                ));
            }
            if participants.iter().any(|q| q.email == email) {
                return Err(invalid(
                    format!("participants[{i}].email"),
                    format!("{email} is listed twice; list each participant once."),
                ));
            }
            participants.push(Respondent {
                email,
                name: p.name,
                required: p.required,
                user_id: p.user_id,
                status: ResponseStatus::Pending,
                slot_ids: Vec::new(),
                responded_at: None,
                reason: None,
                response_url: None,
            });
        }
        if new.slots.is_empty() {
            return Err(invalid("slots", "Give at least one slot, or leave slots out to let Kairos pick them."));
        }
        if new.slots.len() > MAX_SLOTS {
            return Err(invalid("slots", format!("A proposal takes at most {MAX_SLOTS} slots.")));
        }
        let length = SignedDuration::from_mins(i64::from(new.duration_minutes));
        let mut slots: Vec<ProposalSlot> = Vec::with_capacity(new.slots.len());
        for (i, (id, interval)) in new.slots.into_iter().enumerate() {
            check_slot(&format!("slots[{i}]"), interval, length, now).map_err(|r| match r {
                Refusal::Invalid { param, message } => invalid(param, message),
                other => invalid(format!("slots[{i}]"), other.message()),
            })?;
            if slots.iter().any(|s| s.start == interval.start()) {
                return Err(invalid(format!("slots[{i}].start"), "This slot is listed twice; list each slot once."));
            }
            slots.push(ProposalSlot { id, start: interval.start(), end: interval.end(), proposed_by: None });
        }
        // A consensus can still agree on a later slot once an earlier one has passed; a poll
        // is decided before its first slot starts, so that every slot can still win.
        let last_start = match new.mode {
            ProposalMode::Consensus => slots.iter().map(|s| s.start).max(),
            ProposalMode::Poll => slots.iter().map(|s| s.start).min(),
        }
        .unwrap_or(now);
        let expires_at = match new.expires_at {
            Some(at) if at <= now => return Err(invalid("expires_at", "expires_at must be in the future.")),
            Some(at) if at > now + MAX_LIFETIME => {
                return Err(invalid("expires_at", "expires_at may be at most 90 days away."));
            }
            Some(at) => at,
            None => (now + DEFAULT_LIFETIME).min(last_start),
        };
        Ok(Proposal {
            id: new.id,
            thread_id: new.thread_id,
            title: title.to_string(),
            description: new.description,
            duration_minutes: new.duration_minutes,
            organiser: Organiser { email: new.organiser.email.to_lowercase(), ..new.organiser },
            mode: new.mode,
            poll_variant,
            status: ProposalStatus::Open,
            slots,
            participants,
            open_votes: Vec::new(),
            expires_at,
            accepted_slot_id: None,
            booking_id: None,
            result: None,
            conflict: None,
            cancellation_reason: None,
            vote_url: None,
            created_at: now,
            updated_at: now,
        })
    }

    /// The slot with this id.
    pub fn slot(&self, id: &str) -> Option<&ProposalSlot> {
        self.slots.iter().find(|s| s.id == id)
    }

    /// Applies `action` at `now`. On `Ok` the proposal has changed (or, for a repeated cancel,
    /// stayed the same); on `Err` it is exactly as it was.
    pub fn apply(&mut self, action: Action, now: Timestamp) -> Result<Transition, Refusal> {
        let mut next = self.clone();
        let transition = next.step(action, now)?;
        if next != *self {
            next.updated_at = now;
        }
        *self = next;
        Ok(transition)
    }

    /// The booking for the accepted slot was made.
    pub fn booked(&mut self, booking_id: String) {
        self.booking_id = Some(booking_id);
    }

    /// The agreed slot could not be booked: records why, on the proposal as it was before the
    /// response that agreed (the caller rolled that back).
    pub fn conflicted(&mut self, slot_id: &str, code: &str, message: &str, now: Timestamp) {
        self.conflict = Some(Conflict {
            slot_id: slot_id.to_string(),
            code: code.to_string(),
            message: message.to_string(),
            at: now,
        });
        self.updated_at = now;
    }

    /// The participants the booking of `slot_id` holds: the organiser, then each participant
    /// who is a Kairos user and can do the slot (every required one can, by consensus).
    pub fn attendees(&self, slot_id: &str) -> Vec<&Respondent> {
        self.participants
            .iter()
            .filter(|p| p.user_id.is_some() && (p.required || p.slot_ids.iter().any(|s| s == slot_id)))
            .collect()
    }

    fn step(&mut self, action: Action, now: Timestamp) -> Result<Transition, Refusal> {
        match (self.status, action) {
            (ProposalStatus::Cancelled, Action::Cancel { .. }) => Ok(Transition::default()),
            (ProposalStatus::Accepted | ProposalStatus::Resolved, Action::Cancel { reason }) => {
                self.status = ProposalStatus::Cancelled;
                self.cancellation_reason = reason;
                let effect = self.booking_id.clone().map(|booking_id| Effect::CancelBooking { booking_id });
                Ok(Transition { events: vec![ProposalEvent::Cancelled], effect })
            }
            (ProposalStatus::Open, Action::Cancel { reason }) => {
                self.status = ProposalStatus::Cancelled;
                self.cancellation_reason = reason;
                Ok(Transition::event(ProposalEvent::Cancelled))
            }
            (ProposalStatus::Open, Action::Expire) => {
                if now < self.expires_at {
                    return Err(Refusal::NotExpired);
                }
                if self.mode == ProposalMode::Poll {
                    return Ok(Transition::event(self.resolve(now)));
                }
                self.status = ProposalStatus::Expired;
                Ok(Transition::event(ProposalEvent::Expired))
            }
            (ProposalStatus::Open, Action::Close) => {
                if self.mode != ProposalMode::Poll {
                    return Err(Refusal::WrongMode { action: "close", mode: self.mode.as_str() });
                }
                if self.tally(now).is_none() {
                    return Err(Refusal::NoVotes);
                }
                Ok(Transition::event(self.resolve(now)))
            }
            (ProposalStatus::Open, action) => {
                if now >= self.expires_at {
                    return Err(Refusal::Expired);
                }
                self.respond(action, now)
            }
            (status, _) => Err(Refusal::Closed(status)),
        }
    }

    /// A participant's or voter's response to an open proposal.
    fn respond(&mut self, action: Action, now: Timestamp) -> Result<Transition, Refusal> {
        let name = action.name();
        match (self.mode, action) {
            (ProposalMode::Consensus, Action::Accept { by, slot_id }) => {
                let slot = self.slot(&slot_id).ok_or_else(|| Refusal::UnknownSlot(slot_id.clone()))?;
                if slot.start <= now {
                    return Err(Refusal::SlotPassed(slot_id));
                }
                let who = self.respondent(by)?;
                who.status = ResponseStatus::Accepted;
                who.slot_ids = vec![slot_id];
                who.responded_at = Some(now);
                who.reason = None;
                Ok(self.agree(now).unwrap_or_default())
            }
            (ProposalMode::Consensus, Action::Reject { by, reason }) => {
                let who = self.respondent(by)?;
                who.status = ResponseStatus::Rejected;
                who.slot_ids.clear();
                who.responded_at = Some(now);
                who.reason = reason;
                if who.required {
                    self.status = ProposalStatus::Rejected;
                    return Ok(Transition::event(ProposalEvent::Rejected { by }));
                }
                Ok(Transition::default())
            }
            (ProposalMode::Consensus, Action::Counter { by, slots }) => {
                self.respondent(by)?;
                if slots.is_empty() {
                    return Err(refuse_invalid("slots", "Give at least one slot to counter with."));
                }
                let length = SignedDuration::from_mins(i64::from(self.duration_minutes));
                let email = self.participants[by].email.clone();
                let mut offered: Vec<String> = Vec::with_capacity(slots.len());
                for (i, (id, interval)) in slots.into_iter().enumerate() {
                    check_slot(&format!("slots[{i}]"), interval, length, now)?;
                    let id = match self.slots.iter().find(|s| s.start == interval.start()) {
                        Some(existing) => existing.id.clone(),
                        None => {
                            if self.slots.len() >= MAX_SLOTS {
                                return Err(refuse_invalid(
                                    "slots",
                                    format!("A proposal takes at most {MAX_SLOTS} slots; accept one on offer instead."),
                                ));
                            }
                            self.slots.push(ProposalSlot {
                                id: id.clone(),
                                start: interval.start(),
                                end: interval.end(),
                                proposed_by: Some(email.clone()),
                            });
                            id
                        }
                    };
                    if !offered.contains(&id) {
                        offered.push(id);
                    }
                }
                let who = &mut self.participants[by];
                who.status = ResponseStatus::Countered;
                who.slot_ids = offered.clone();
                who.responded_at = Some(now);
                who.reason = None;
                let mut transition = Transition::event(ProposalEvent::Countered { by, slot_ids: offered });
                if let Some(agreed) = self.agree(now) {
                    transition.events.extend(agreed.events);
                    transition.effect = agreed.effect;
                }
                Ok(transition)
            }
            (ProposalMode::Poll, Action::Vote { by, slot_ids }) => {
                let mut chosen: Vec<String> = Vec::with_capacity(slot_ids.len());
                for (i, id) in slot_ids.into_iter().enumerate() {
                    match self.slot(&id) {
                        None => {
                            return Err(Refusal::Invalid {
                                param: format!("slot_ids[{i}]"),
                                message: format!("No slot `{id}` on this poll; use ids from the poll's `slots`."),
                            });
                        }
                        Some(slot) if slot.start <= now => return Err(Refusal::SlotPassed(id)),
                        Some(_) => {}
                    }
                    if !chosen.contains(&id) {
                        chosen.push(id);
                    }
                }
                match by {
                    Responder::Participant(by) => {
                        let who = self.respondent(by)?;
                        who.status = ResponseStatus::Voted;
                        who.slot_ids = chosen;
                        who.responded_at = Some(now);
                    }
                    Responder::OpenVoter { name, key_hash } => {
                        if self.poll_variant != Some(PollVariant::Open) {
                            return Err(Refusal::NotAVoter);
                        }
                        let name = name.trim().to_string();
                        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
                            return Err(refuse_invalid("name", "Give your name (1 to 100 characters) with your vote."));
                        }
                        let key = name.to_lowercase();
                        match self.open_votes.iter().position(|v| v.name.to_lowercase() == key) {
                            // Only whoever cast a vote can change it.
                            Some(i) if self.open_votes[i].key_hash != key_hash => {
                                return Err(Refusal::NameTaken(self.open_votes[i].name.clone()));
                            }
                            Some(i) => {
                                self.open_votes[i].slot_ids = chosen;
                                self.open_votes[i].voted_at = now;
                            }
                            None if self.open_votes.len() >= MAX_OPEN_VOTERS => {
                                return Err(refuse_invalid("name", "This poll has taken all the votes it can."));
                            }
                            None => self.open_votes.push(OpenVote { name, slot_ids: chosen, voted_at: now, key_hash }),
                        }
                    }
                }
                let everyone_voted = self.poll_variant == Some(PollVariant::Named)
                    && self.participants.iter().all(|p| p.status == ResponseStatus::Voted);
                if everyone_voted {
                    return Ok(Transition::event(self.resolve(now)));
                }
                Ok(Transition::default())
            }
            (mode, _) => Err(Refusal::WrongMode { action: name, mode: mode.as_str() }),
        }
    }

    fn respondent(&mut self, by: usize) -> Result<&mut Respondent, Refusal> {
        self.participants.get_mut(by).ok_or(Refusal::NotAVoter)
    }

    /// Consensus: when every required participant can do a common slot that has not started,
    /// the earliest such slot is accepted and must be booked.
    fn agree(&mut self, now: Timestamp) -> Option<Transition> {
        let required: Vec<&Respondent> = self.participants.iter().filter(|p| p.required).collect();
        let ready = required.iter().all(|p| matches!(p.status, ResponseStatus::Accepted | ResponseStatus::Countered));
        if required.is_empty() || !ready {
            return None;
        }
        let slot = self
            .slots
            .iter()
            .filter(|s| s.start > now && required.iter().all(|p| p.slot_ids.contains(&s.id)))
            .min_by_key(|s| s.start)?;
        let slot_id = slot.id.clone();
        self.status = ProposalStatus::Accepted;
        self.accepted_slot_id = Some(slot_id.clone());
        self.conflict = None;
        Some(Transition { events: vec![ProposalEvent::Accepted], effect: Some(Effect::Book { slot_id }) })
    }

    /// Ballots cast: named participants who voted and open votes.
    pub fn ballots(&self) -> usize {
        self.participants.iter().filter(|p| p.status == ResponseStatus::Voted).count() + self.open_votes.len()
    }

    /// The poll's outcome at `now`, over the slots that have not started; `None` when no
    /// such slot has a vote.
    fn tally(&self, now: Timestamp) -> Option<Tally> {
        let ballots = self
            .participants
            .iter()
            .filter(|p| p.status == ResponseStatus::Voted)
            .map(|p| p.slot_ids.as_slice())
            .chain(self.open_votes.iter().map(|v| v.slot_ids.as_slice()));
        let upcoming: Vec<ProposalSlot> = self.slots.iter().filter(|s| s.start > now).cloned().collect();
        tally(&upcoming, ballots)
    }

    /// Ends a poll: resolved to the winner, or expired when no upcoming slot has a vote.
    fn resolve(&mut self, now: Timestamp) -> ProposalEvent {
        self.result = self.tally(now);
        if self.result.is_some() {
            self.status = ProposalStatus::Resolved;
            ProposalEvent::Resolved
        } else {
            self.status = ProposalStatus::Expired;
            ProposalEvent::Expired
        }
    }

    /// The `data` of this proposal's webhook event.
    pub fn event_data(&self, event: &ProposalEvent) -> serde_json::Value {
        use serde_json::json;
        if let ProposalEvent::Resolved = event
            && let Some(result) = &self.result
        {
            // Exactly the reference's shape.
            return json!({
                "proposal_id": self.id,
                "thread_id": self.thread_id,
                "poll_variant": self.poll_variant.unwrap_or(PollVariant::Named),
                "winning_slot": result.winning_slot,
                "vote_count": result.vote_count,
                "total_votes": result.total_votes,
                "tie_count": result.tie_count,
            });
        }
        let mut data = json!({
            "proposal_id": self.id,
            "thread_id": self.thread_id,
            "status": self.status,
        });
        let extra = match event {
            ProposalEvent::Countered { by, slot_ids } => json!({
                "participant": self.participants.get(*by).map(|p| &p.email),
                "slots": slot_ids.iter().filter_map(|id| self.slot(id)).collect::<Vec<_>>(),
            }),
            ProposalEvent::Rejected { by } => json!({
                "participant": self.participants.get(*by).map(|p| &p.email),
                "reason": self.participants.get(*by).and_then(|p| p.reason.as_ref()),
            }),
            ProposalEvent::Accepted => json!({
                "accepted_slot": self.accepted_slot_id.as_deref().and_then(|id| self.slot(id)),
                "booking_id": self.booking_id,
            }),
            ProposalEvent::Cancelled => json!({
                "reason": self.cancellation_reason,
                "booking_id": self.booking_id,
            }),
            _ => json!({}),
        };
        if let (Some(data), serde_json::Value::Object(extra)) = (data.as_object_mut(), extra) {
            data.extend(extra);
            data.insert("proposal".to_string(), serde_json::to_value(self).unwrap_or_default());
        }
        data
    }
}

/// A slot offered at `param` must last exactly the proposal's duration and not have started.
fn check_slot(param: &str, interval: Interval, length: SignedDuration, now: Timestamp) -> Result<(), Refusal> {
    if interval.duration() != length {
        return Err(refuse_invalid(
            format!("{param}.end"),
            format!("Each slot must last exactly duration_minutes ({} minutes).", length.as_mins()),
        ));
    }
    if interval.start() <= now {
        return Err(refuse_invalid(format!("{param}.start"), "Slots must start in the future."));
    }
    Ok(())
}

/// Counts `ballots` (each the slot ids one voter chose) over `slots`: the most votes wins,
/// ties go to the earliest start (then the first offered). `None` when no slot has a vote.
pub fn tally<'a>(slots: &[ProposalSlot], ballots: impl IntoIterator<Item = &'a [String]>) -> Option<Tally> {
    let mut counts = vec![0u32; slots.len()];
    let mut total = 0u32;
    for ballot in ballots {
        total += 1;
        for (i, slot) in slots.iter().enumerate() {
            if ballot.contains(&slot.id) {
                counts[i] += 1;
            }
        }
    }
    let best = counts.iter().copied().max().filter(|&best| best > 0)?;
    let tie_count = counts.iter().filter(|&&c| c == best).count() as u32;
    let (winner, _) = slots
        .iter()
        .zip(&counts)
        .enumerate()
        .filter(|(_, (_, c))| **c == best)
        .min_by_key(|(i, (s, _))| (s.start, *i))
        .map(|(_, pair)| pair)?;
    Some(Tally {
        winning_slot: WinningSlot { id: winner.id.clone(), start: winner.start, end: winner.end },
        vote_count: best,
        total_votes: total,
        tie_count,
    })
}

#[cfg(test)]
mod tests;
