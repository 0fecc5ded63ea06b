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
pub fn members<U>(
    who: &Who,
    hosts: impl IntoIterator<Item = Option<U>>,
    participants: impl IntoIterator<Item = Option<U>>,
    id: impl Fn(&U) -> &str,
) -> Result<Vec<U>, PartyError> {
    let mut members: Vec<U> = Vec::new();
    if !who.named_only {
        members.extend(hosts.into_iter().flatten());
    }
    for (index, user) in participants.into_iter().enumerate() {
        let user = user.ok_or(PartyError::UnknownParticipant(index))?;
        if !members.iter().any(|m| id(m) == id(&user)) {
            members.push(user);
        }
    }
    Ok(members)
}

/// Whether the business's own bookings hold its time: only when it has no hosts (then it is
/// the one resource), and not when only named people count.
pub fn business_holds_time(who: &Who, hosts: usize) -> bool {
    hosts == 0 && !who.named_only
}

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
        assert_eq!(got, ["a", "b", "c"]);
        assert_eq!(members(&who, [Some("a")], [Some("b"), None], |s| s), Err(PartyError::UnknownParticipant(1)));
        let named = Who { named_only: true, ..who.clone() };
        assert_eq!(members(&named, [Some("a")], [Some("b"), Some("c")], |s| s).unwrap(), ["b", "c"]);
        assert_eq!(check_named(&Who::default()), Err(PartyError::Nobody));
        assert!(business_holds_time(&who, 0) && !business_holds_time(&who, 1) && !business_holds_time(&named, 0));
    }
}
