//! What both backends do the same way when a proposal changes: the booking an agreement
//! makes, how a failed one is reported on the proposal, and who is emailed the outcome.

use kairos_core::Interval;
use kairos_core::availability::Mode as SearchMode;
use kairos_core::proposal::{Proposal, ProposalEvent, Respondent};

use crate::{BookingError, NewBooking, PartyError, ProposalEmailKind, UserRef, Who};

/// The booking that carries out an agreement on `slot_id`: the organiser and every
/// participant who is a Kairos user and can do the slot, through the normal booking path (so
/// every rule is re-checked and a conflict is the usual `slot_unavailable`). `None` when the
/// slot is not the proposal's.
pub fn booking_for(p: &Proposal, slot_id: &str) -> Option<NewBooking> {
    let slot = p.slot(slot_id)?;
    let interval = Interval::new(slot.start, slot.end).ok()?;
    let mut participants = vec![UserRef::Id(p.organiser.user_id.clone())];
    participants.extend(p.attendees(slot_id).into_iter().filter_map(|r| r.user_id.clone().map(UserRef::Id)));
    participants.dedup();
    let mut metadata = serde_json::Map::new();
    metadata.insert("proposal_id".into(), p.id.clone().into());
    Some(NewBooking {
        who: Who { business_id: None, participants, ignore_booking: None, named_only: false },
        mode: SearchMode::Collective,
        interval,
        customer_name: None,
        customer_email: None,
        customer_timezone: None,
        title: Some(p.title.clone()),
        notes: None,
        description: p.description.clone(),
        metadata,
        payment_holds: false,
    })
}

/// The code and message a proposal keeps when its agreed slot could not be booked.
pub fn conflict_text(e: &BookingError) -> (&'static str, String) {
    match e {
        BookingError::Unavailable(refusal) => (
            "slot_unavailable",
            match &refusal.who {
                Some(who) => {
                    format!("{who} is no longer free at the agreed time; accept or counter with another slot.")
                }
                None => "The agreed time is no longer free; accept or counter with another slot.".to_string(),
            },
        ),
        BookingError::Party(PartyError::UnknownParticipant(_) | PartyError::UnknownBusiness | PartyError::Nobody) => (
            "participant_missing",
            "A participant's Kairos user no longer exists, so the time cannot be booked.".to_string(),
        ),
        BookingError::Cancelled => ("booking_cancelled", "The booking was cancelled.".to_string()),
        // Stores report their own failures as such, never as a conflict; kept for totality.
        BookingError::Store(_) => ("booking_failed", "The booking could not be written.".to_string()),
    }
}

/// The proposal emails an event wants, in the transaction that records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutcomeEmails<'a> {
    /// Re-want an email of this kind to each of these participants (with their index, the
    /// row's position), upserting on the proposal and recipient.
    Want(ProposalEmailKind, Vec<(usize, &'a Respondent)>),
    /// Re-want every outcome email of the proposal (`accepted`, `resolved`) as a cancellation.
    CancelOutcomes,
}

/// Who hears of `event` by a proposal email, `p` being the proposal after it:
///
/// - `proposal.accepted`: every participant who is not a Kairos user and can come (required,
///   or their answer holds the accepted slot). Users, and the organiser, are in the booking
///   and get its own emails, with the same invitation UID.
/// - `proposal.resolved`: every named participant, users included: a poll books nothing.
/// - `proposal.cancelled` of an accepted or resolved proposal: those the outcome went to.
pub fn outcome_emails<'a>(p: &'a Proposal, event: &ProposalEvent) -> Option<OutcomeEmails<'a>> {
    match event {
        ProposalEvent::Accepted => {
            let slot_id = p.accepted_slot_id.as_deref()?;
            let outsiders: Vec<(usize, &Respondent)> = p
                .participants
                .iter()
                .enumerate()
                .filter(|(_, r)| r.user_id.is_none() && (r.required || r.slot_ids.iter().any(|s| s == slot_id)))
                .collect();
            (!outsiders.is_empty()).then_some(OutcomeEmails::Want(ProposalEmailKind::Accepted, outsiders))
        }
        ProposalEvent::Resolved if !p.participants.is_empty() => {
            Some(OutcomeEmails::Want(ProposalEmailKind::Resolved, p.participants.iter().enumerate().collect()))
        }
        // Only an accepted or resolved proposal has an outcome to call off.
        ProposalEvent::Cancelled if p.accepted_slot_id.is_some() || p.result.is_some() => {
            Some(OutcomeEmails::CancelOutcomes)
        }
        _ => None,
    }
}
