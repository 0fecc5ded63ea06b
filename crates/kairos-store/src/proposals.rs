//! What both backends do the same way when a proposal changes: the booking an agreement
//! makes, and how a failed one is reported on the proposal.

use kairos_core::Interval;
use kairos_core::availability::Mode as SearchMode;
use kairos_core::proposal::Proposal;

use crate::{BookingError, NewBooking, PartyError, UserRef, Who};

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
