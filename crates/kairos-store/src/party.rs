//! The rules for who a [`Who`] names, shared by every way a store assembles a party (from its
//! database, from a cache), so they cannot drift apart.

use jiff::SignedDuration;

use crate::{PartyError, Who};

/// How far a local calendar day can reach past a UTC instant (26 hours: the widest offset
/// difference plus a DST hour). Daily caps look this far beyond a window.
pub const DAY_REACH: SignedDuration = SignedDuration::from_hours(26);

/// Checks that `who` names anyone at all.
pub fn check_named(who: &Who) -> Result<(), PartyError> {
    if who.business_id.is_none() && who.participants.is_empty() { Err(PartyError::Nobody) } else { Ok(()) }
}

/// The members of a party, in order: the business's hosts that still exist (unless
/// `who.named_only`), then every named participant — an unknown one is an error naming its
/// index — each person once. `id` reads a member's user id.
///
/// Also says who is required in any mode: when there are hosts, they are the pool and the
/// people named explicitly are required (a named host too); with no hosts, the named people
/// are the pool.
pub fn members<U>(
    who: &Who,
    hosts: impl IntoIterator<Item = Option<U>>,
    participants: impl IntoIterator<Item = Option<U>>,
    id: impl Fn(&U) -> &str,
) -> Result<(Vec<U>, Vec<bool>), PartyError> {
    let mut members: Vec<U> = Vec::new();
    if !who.named_only {
        members.extend(hosts.into_iter().flatten());
    }
    let pool = members.len();
    let mut required = vec![false; pool];
    for (index, user) in participants.into_iter().enumerate() {
        let user = user.ok_or(PartyError::UnknownParticipant(index))?;
        match members.iter().position(|m| id(m) == id(&user)) {
            Some(at) => required[at] = true,
            None => {
                members.push(user);
                required.push(pool > 0);
            }
        }
    }
    Ok((members, required))
}

/// Refuses a booking of a priced business when `new` may not make payment holds (no payment
/// provider is configured), before anything is written.
pub fn refuse_unpayable(party: &kairos_core::plan::Party, new: &crate::NewBooking) -> Result<(), crate::BookingError> {
    if !new.payment_holds && party.business.as_ref().is_some_and(|b| b.is_paid()) {
        return Err(crate::BookingError::Store(crate::StoreError::Refused {
            code: PAYMENTS_NOT_CONFIGURED,
            message: "This business has a price, but no payment provider is configured to take it.".into(),
        }));
    }
    Ok(())
}

/// The refusal code of [`refuse_unpayable`].
pub const PAYMENTS_NOT_CONFIGURED: &str = "payments_not_configured";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UserRef;

    #[test]
    fn hosts_come_first_participants_must_exist_and_nobody_repeats() {
        let who = Who {
            business_id: Some("biz".into()),
            participants: vec![UserRef::Id("b".into()), UserRef::Id("c".into())],
            ..Who::default()
        };
        let got = members(&who, [Some("a"), None, Some("b")], [Some("b"), Some("c")], |s| s).unwrap();
        assert_eq!(
            got,
            (vec!["a", "b", "c"], vec![false, true, true]),
            "hosts pool; named people required, a named host too"
        );
        assert_eq!(members(&who, [Some("a")], [Some("b"), None], |s| s), Err(PartyError::UnknownParticipant(1)));
        let named = Who { named_only: true, ..who.clone() };
        assert_eq!(
            members(&named, [Some("a")], [Some("b"), Some("c")], |s| s).unwrap(),
            (vec!["b", "c"], vec![false, false]),
            "no hosts: the named people are the pool"
        );
        assert_eq!(check_named(&Who::default()), Err(PartyError::Nobody));
    }
}
