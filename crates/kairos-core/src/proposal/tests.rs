use super::*;
use proptest::prelude::*;

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const NOW: &str = "2027-03-01T12:00:00Z";

fn iv(start: &str, minutes: i64) -> Interval {
    Interval::starting_at(at(start), SignedDuration::from_mins(minutes)).unwrap()
}

fn organiser() -> Organiser {
    Organiser { user_id: "usr_org".into(), email: "org@example.com".into(), name: Some("Olga".into()) }
}

fn invitee(email: &str, required: bool) -> Invitee {
    Invitee { email: email.into(), name: None, required, user_id: Some(format!("usr_{email}")) }
}

fn new(mode: ProposalMode, variant: Option<PollVariant>) -> NewProposal {
    NewProposal {
        id: "prop_1".into(),
        thread_id: "thr_1".into(),
        title: "Planning".into(),
        description: None,
        duration_minutes: 30,
        organiser: organiser(),
        mode,
        poll_variant: variant,
        participants: vec![
            invitee("a@example.com", true),
            invitee("b@example.com", true),
            invitee("c@example.com", false),
        ],
        slots: vec![
            ("slot_1".into(), iv("2027-03-03T15:00:00Z", 30)),
            ("slot_2".into(), iv("2027-03-02T15:00:00Z", 30)),
            ("slot_3".into(), iv("2027-03-04T15:00:00Z", 30)),
        ],
        expires_at: None,
    }
}

fn consensus() -> Proposal {
    Proposal::new(new(ProposalMode::Consensus, None), at(NOW)).unwrap()
}

fn poll(variant: PollVariant) -> Proposal {
    Proposal::new(new(ProposalMode::Poll, Some(variant)), at(NOW)).unwrap()
}

fn now() -> Timestamp {
    at(NOW)
}

fn accept(by: usize, slot: &str) -> Action {
    Action::Accept { by, slot_id: slot.into() }
}

fn vote(by: usize, slots: &[&str]) -> Action {
    Action::Vote { by: Responder::Participant(by), slot_ids: slots.iter().map(|s| s.to_string()).collect() }
}

/// An open vote under `name`, by the voter who holds that name's key.
fn open_vote(name: &str, slots: &[&str]) -> Action {
    let key_hash = format!("key-{}", name.trim().to_lowercase());
    Action::Vote {
        by: Responder::OpenVoter { name: name.into(), key_hash },
        slot_ids: slots.iter().map(|s| s.to_string()).collect(),
    }
}

// ---- creation ----------------------------------------------------------------------------

#[test]
fn a_new_proposal_is_open_and_expires_by_its_last_slot_or_a_week() {
    let p = consensus();
    assert_eq!(p.status, ProposalStatus::Open);
    assert_eq!(p.expires_at, at("2027-03-04T15:00:00Z"), "the last slot starts before a week has passed");
    assert!(p.participants.iter().all(|r| r.status == ResponseStatus::Pending));
    let mut far = new(ProposalMode::Consensus, None);
    far.slots = vec![("slot_9".into(), iv("2027-05-01T15:00:00Z", 30))];
    assert_eq!(Proposal::new(far, now()).unwrap().expires_at, now() + DEFAULT_LIFETIME);
    assert_eq!(poll(PollVariant::Named).poll_variant, Some(PollVariant::Named));
    assert_eq!(Proposal::new(new(ProposalMode::Poll, None), now()).unwrap().poll_variant, Some(PollVariant::Named));
}

/// An edit that breaks a new proposal, and the field it should be blamed on.
type BadCase = (Box<dyn Fn(&mut NewProposal)>, &'static str);

#[test]
fn bad_new_proposals_name_the_field() {
    let cases: Vec<BadCase> = vec![
        (Box::new(|n| n.title = "  ".into()), "title"),
        (Box::new(|n| n.duration_minutes = 0), "duration_minutes"),
        (Box::new(|n| n.duration_minutes = 24 * 60 + 1), "duration_minutes"),
        (Box::new(|n| n.poll_variant = Some(PollVariant::Open)), "poll_variant"),
        (Box::new(|n| n.participants.clear()), "participants"),
        (Box::new(|n| n.participants.iter_mut().for_each(|p| p.required = false)), "participants"),
        (Box::new(|n| n.participants[1].email = "A@example.com".into()), "participants[1].email"),
        (Box::new(|n| n.participants[0].email = "ORG@example.com".into()), "participants[0].email"),
        (Box::new(|n| n.slots.clear()), "slots"),
        (Box::new(|n| n.slots[1].1 = iv("2027-03-02T15:00:00Z", 45)), "slots[1].end"),
        (Box::new(|n| n.slots[2].1 = iv("2027-03-01T11:00:00Z", 30)), "slots[2].start"),
        (Box::new(|n| n.slots[2].1 = n.slots[0].1), "slots[2].start"),
        (Box::new(|n| n.expires_at = Some(at("2027-03-01T11:59:59Z"))), "expires_at"),
        (Box::new(|n| n.expires_at = Some(at("2027-06-01T12:00:00Z"))), "expires_at"),
        (
            Box::new(|n| {
                n.slots = (0..=MAX_SLOTS as i64).map(|i| (format!("s{i}"), iv("2027-03-02T00:00:00Z", 30))).collect()
            }),
            "slots",
        ),
    ];
    for (edit, param) in cases {
        let mut n = new(ProposalMode::Consensus, None);
        edit(&mut n);
        let err = Proposal::new(n, now()).unwrap_err();
        assert_eq!(err.param, param, "{err}");
        assert!(!err.message.is_empty());
    }
    // An open poll may have nobody named.
    let mut open = new(ProposalMode::Poll, Some(PollVariant::Open));
    open.participants.clear();
    assert!(Proposal::new(open, now()).is_ok());
}

// ---- every action from every state -------------------------------------------------------

/// A proposal of `mode` brought to `status` through its own transitions.
fn in_status(mode: ProposalMode, status: ProposalStatus) -> Proposal {
    let mut p = match mode {
        ProposalMode::Consensus => consensus(),
        ProposalMode::Poll => poll(PollVariant::Open),
    };
    let n = now();
    match (mode, status) {
        (_, ProposalStatus::Open) => {}
        (ProposalMode::Consensus, ProposalStatus::Accepted) => {
            p.apply(accept(0, "slot_1"), n).unwrap();
            p.apply(accept(1, "slot_1"), n).unwrap();
            p.booked("bkg_1".into());
        }
        (ProposalMode::Poll, ProposalStatus::Accepted) => return in_status(ProposalMode::Consensus, status),
        (ProposalMode::Consensus, ProposalStatus::Rejected) => {
            p.apply(Action::Reject { by: 0, reason: None }, n).unwrap();
        }
        (ProposalMode::Poll, ProposalStatus::Rejected) => return in_status(ProposalMode::Consensus, status),
        (_, ProposalStatus::Cancelled) => {
            p.apply(Action::Cancel { reason: None }, n).unwrap();
        }
        (_, ProposalStatus::Expired) => {
            p.apply(Action::Expire, p.expires_at).unwrap();
        }
        (ProposalMode::Poll, ProposalStatus::Resolved) => {
            p.apply(open_vote("Zed", &["slot_1"]), n).unwrap();
            p.apply(Action::Close, n).unwrap();
        }
        (ProposalMode::Consensus, ProposalStatus::Resolved) => return in_status(ProposalMode::Poll, status),
    }
    assert_eq!(p.status, status);
    p
}

fn every_action() -> Vec<Action> {
    vec![
        accept(0, "slot_1"),
        Action::Reject { by: 0, reason: Some("away".into()) },
        Action::Counter { by: 0, slots: vec![("slot_new".into(), iv("2027-03-05T09:00:00Z", 30))] },
        vote(0, &["slot_1"]),
        open_vote("Zed", &["slot_2"]),
        Action::Close,
        Action::Cancel { reason: None },
        Action::Expire,
    ]
}

/// What `action` on a proposal of `mode` in `status` must do, stated independently of the
/// implementation: the status after it and the events, or the refusal's code.
fn expected(
    mode: ProposalMode,
    status: ProposalStatus,
    action: &Action,
) -> Result<(ProposalStatus, Vec<&'static str>), &'static str> {
    use ProposalStatus::*;
    let name = action.name();
    match status {
        Cancelled if name == "cancel" => Ok((Cancelled, vec![])),
        Accepted | Resolved if name == "cancel" => Ok((Cancelled, vec!["proposal.cancelled"])),
        Open if name == "cancel" => Ok((Cancelled, vec!["proposal.cancelled"])),
        Open if name == "expire" => Err("not_expired"),
        Open => match (mode, name) {
            (ProposalMode::Consensus, "accept") => Ok((Open, vec![])),
            (ProposalMode::Consensus, "reject") => Ok((Rejected, vec!["proposal.rejected"])),
            (ProposalMode::Consensus, "counter") => Ok((Open, vec!["proposal.countered"])),
            (ProposalMode::Consensus, _) => Err("action_not_allowed"),
            (ProposalMode::Poll, "vote") => Ok((Open, vec![])),
            (ProposalMode::Poll, "close") => Err("no_votes"),
            (ProposalMode::Poll, _) => Err("action_not_allowed"),
        },
        _ => Err("proposal_closed"),
    }
}

#[test]
fn every_action_from_every_state_does_what_the_table_says() {
    let mut checked = 0;
    for mode in [ProposalMode::Consensus, ProposalMode::Poll] {
        for status in ProposalStatus::ALL {
            for action in every_action() {
                let mut p = in_status(mode, status);
                if p.mode != mode {
                    continue; // e.g. a poll is never `accepted`: covered under its own mode
                }
                let before = p.clone();
                let got = p.apply(action.clone(), now());
                match expected(mode, status, &action) {
                    Ok((after, events)) => {
                        let t = got.unwrap_or_else(|r| panic!("{mode:?} {status:?} {action:?}: refused {r:?}"));
                        assert_eq!(p.status, after, "{mode:?} {status:?} {action:?}");
                        let names: Vec<&str> = t.events.iter().map(|e| e.as_str()).collect();
                        assert_eq!(names, events, "{mode:?} {status:?} {action:?}");
                    }
                    Err(code) => {
                        let r = got.expect_err(&format!("{mode:?} {status:?} {action:?} should be refused"));
                        assert_eq!(r.code(), code, "{mode:?} {status:?} {action:?}");
                        assert_eq!(p, before, "a refusal changes nothing");
                    }
                }
                checked += 1;
            }
        }
    }
    // Consensus: 5 statuses it can reach; poll: 4 (open, cancelled, expired, resolved).
    assert_eq!(checked, (5 + 4) * every_action().len());
}

#[test]
fn responses_after_expiry_are_refused_until_the_sweep_expires_it() {
    let mut p = consensus();
    let late = p.expires_at;
    assert_eq!(p.apply(accept(0, "slot_3"), late).unwrap_err(), Refusal::Expired);
    assert_eq!(p.apply(Action::Expire, late).unwrap().events, vec![ProposalEvent::Expired]);
    assert_eq!(p.status, ProposalStatus::Expired);
    assert_eq!(p.apply(Action::Expire, late).unwrap_err(), Refusal::Closed(ProposalStatus::Expired));
}

// ---- consensus ---------------------------------------------------------------------------

#[test]
fn consensus_books_when_every_required_participant_accepts_one_slot() {
    let mut p = consensus();
    let t = p.apply(accept(0, "slot_1"), now()).unwrap();
    assert_eq!(t, Transition::default());
    // Different slots: no agreement yet.
    assert_eq!(p.apply(accept(1, "slot_2"), now()).unwrap(), Transition::default());
    assert_eq!(p.status, ProposalStatus::Open);
    // B changes their mind; the optional participant never answers.
    let t = p.apply(accept(1, "slot_1"), now()).unwrap();
    assert_eq!(t.events, vec![ProposalEvent::Accepted]);
    assert_eq!(t.effect, Some(Effect::Book { slot_id: "slot_1".into() }));
    assert_eq!(p.status, ProposalStatus::Accepted);
    assert_eq!(p.accepted_slot_id.as_deref(), Some("slot_1"));
    let attendees: Vec<&str> = p.attendees("slot_1").iter().map(|r| r.email.as_str()).collect();
    assert_eq!(attendees, ["a@example.com", "b@example.com"]);
    p.booked("bkg_9".into());
    let t = p.apply(Action::Cancel { reason: Some("moved".into()) }, now()).unwrap();
    assert_eq!(t.effect, Some(Effect::CancelBooking { booking_id: "bkg_9".into() }));
    assert_eq!(p.cancellation_reason.as_deref(), Some("moved"));
}

#[test]
fn an_optional_participants_answer_neither_blocks_nor_rejects() {
    let mut p = consensus();
    assert_eq!(p.apply(Action::Reject { by: 2, reason: None }, now()).unwrap(), Transition::default());
    assert_eq!(p.status, ProposalStatus::Open);
    p.apply(accept(2, "slot_3"), now()).unwrap();
    p.apply(accept(0, "slot_3"), now()).unwrap();
    let t = p.apply(accept(1, "slot_3"), now()).unwrap();
    assert_eq!(t.effect, Some(Effect::Book { slot_id: "slot_3".into() }));
    assert_eq!(p.attendees("slot_3").len(), 3, "the optional participant who can come is booked too");
}

#[test]
fn a_counter_adds_slots_and_can_complete_agreement() {
    let mut p = consensus();
    p.apply(accept(0, "slot_1"), now()).unwrap();
    let offered =
        vec![("slot_x".into(), iv("2027-03-05T09:00:00Z", 30)), ("slot_y".into(), iv("2027-03-03T15:00:00Z", 30))];
    let t = p.apply(Action::Counter { by: 1, slots: offered }, now()).unwrap();
    // slot_y is slot_1's time: it keeps slot_1's id, and A already accepted it.
    assert_eq!(
        t.events,
        vec![
            ProposalEvent::Countered { by: 1, slot_ids: vec!["slot_x".into(), "slot_1".into()] },
            ProposalEvent::Accepted
        ]
    );
    assert_eq!(t.effect, Some(Effect::Book { slot_id: "slot_1".into() }));
    assert_eq!(p.slots.len(), 4);
    assert_eq!(p.slot("slot_x").unwrap().proposed_by.as_deref(), Some("b@example.com"));
    let data = p.event_data(&t.events[0]);
    assert_eq!(data["participant"], "b@example.com");
    assert_eq!(data["slots"].as_array().unwrap().len(), 2);
}

#[test]
fn counters_must_fit_the_duration_and_the_future() {
    let mut p = consensus();
    let before = p.clone();
    let bad = p.apply(Action::Counter { by: 0, slots: vec![("s".into(), iv("2027-03-05T09:00:00Z", 60))] }, now());
    assert_eq!(bad.unwrap_err().param(), Some("slots[0].end"));
    let past = p.apply(Action::Counter { by: 0, slots: vec![("s".into(), iv("2027-03-01T09:00:00Z", 30))] }, now());
    assert_eq!(past.unwrap_err().param(), Some("slots[0].start"));
    assert_eq!(p.apply(Action::Counter { by: 0, slots: vec![] }, now()).unwrap_err().param(), Some("slots"));
    assert_eq!(p, before);
}

#[test]
fn accepting_an_unknown_or_started_slot_is_refused() {
    let mut p = consensus();
    assert_eq!(p.apply(accept(0, "slot_zz"), now()).unwrap_err().code(), "unknown_slot");
    let started = at("2027-03-02T15:00:01Z");
    assert_eq!(p.apply(accept(0, "slot_2"), started).unwrap_err().code(), "slot_passed");
}

#[test]
fn agreement_skips_common_slots_that_have_started() {
    let mut p = consensus();
    p.apply(
        Action::Counter {
            by: 0,
            slots: vec![("a".into(), iv("2027-03-02T15:00:00Z", 30)), ("b".into(), iv("2027-03-04T15:00:00Z", 30))],
        },
        now(),
    )
    .unwrap();
    // B accepts slot_2 (the earlier one) only after it started: refused; slot_3 is agreed.
    let later = at("2027-03-02T16:00:00Z");
    assert_eq!(p.apply(accept(1, "slot_2"), later).unwrap_err().code(), "slot_passed");
    let t = p.apply(accept(1, "slot_3"), later).unwrap();
    assert_eq!(t.effect, Some(Effect::Book { slot_id: "slot_3".into() }));
}

#[test]
fn a_required_rejection_rejects_and_names_who() {
    let mut p = consensus();
    let t = p.apply(Action::Reject { by: 1, reason: Some("on leave".into()) }, now()).unwrap();
    assert_eq!(t.events, vec![ProposalEvent::Rejected { by: 1 }]);
    let data = p.event_data(&t.events[0]);
    assert_eq!(data["participant"], "b@example.com");
    assert_eq!(data["reason"], "on leave");
    assert_eq!(data["status"], "rejected");
    assert_eq!(data["proposal"]["id"], "prop_1");
}

#[test]
fn a_conflict_is_recorded_and_cleared_by_a_later_agreement() {
    let mut p = consensus();
    p.apply(accept(0, "slot_1"), now()).unwrap();
    p.conflicted("slot_1", "slot_unavailable", "b is busy", now());
    assert_eq!(p.conflict.as_ref().unwrap().slot_id, "slot_1");
    p.apply(accept(0, "slot_3"), now()).unwrap();
    p.apply(accept(1, "slot_3"), now()).unwrap();
    assert_eq!(p.conflict, None);
}

// ---- polls -------------------------------------------------------------------------------

#[test]
fn a_named_poll_resolves_when_everyone_has_voted_and_votes_can_change() {
    let mut p = poll(PollVariant::Named);
    p.apply(vote(0, &["slot_1", "slot_2"]), now()).unwrap();
    p.apply(vote(1, &["slot_3"]), now()).unwrap();
    p.apply(vote(1, &["slot_1"]), now()).unwrap(); // changed
    assert_eq!(p.status, ProposalStatus::Open);
    assert_eq!(p.apply(open_vote("Zed", &["slot_1"]), now()).unwrap_err().code(), "not_a_voter");
    let t = p.apply(vote(2, &[]), now()).unwrap();
    assert_eq!(t.events, vec![ProposalEvent::Resolved]);
    let result = p.result.clone().unwrap();
    assert_eq!(result.winning_slot.id, "slot_1");
    assert_eq!((result.vote_count, result.total_votes, result.tie_count), (2, 3, 1));
    let data = p.event_data(&ProposalEvent::Resolved);
    let keys: Vec<&String> = data.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 7, "exactly the reference's fields: {keys:?}");
    assert_eq!(data["poll_variant"], "named");
    assert_eq!(data["winning_slot"]["id"], "slot_1");
    assert_eq!(data["winning_slot"]["start"], "2027-03-03T15:00:00Z");
    assert_eq!(data["thread_id"], "thr_1");
}

#[test]
fn an_open_poll_takes_votes_by_name_until_closed() {
    let mut p = poll(PollVariant::Open);
    p.apply(open_vote("Zed", &["slot_3"]), now()).unwrap();
    p.apply(open_vote("Amy", &["slot_1", "slot_3"]), now()).unwrap();
    p.apply(open_vote(" zed ", &["slot_1"]), now()).unwrap(); // the same voter, changing
    assert_eq!(p.open_votes.len(), 2);
    let impostor = Action::Vote {
        by: Responder::OpenVoter { name: "ZED".into(), key_hash: "someone-else".into() },
        slot_ids: vec!["slot_2".into()],
    };
    assert_eq!(p.apply(impostor, now()).unwrap_err().code(), "name_taken", "only Zed changes Zed's vote");
    assert_eq!(p.apply(open_vote(" ", &["slot_1"]), now()).unwrap_err().param(), Some("name"));
    assert_eq!(p.apply(open_vote("Al", &["nope"]), now()).unwrap_err().param(), Some("slot_ids[0]"));
    // Every named participant voting does not end an open poll.
    for i in 0..3 {
        p.apply(vote(i, &["slot_3"]), now()).unwrap();
    }
    assert_eq!(p.status, ProposalStatus::Open);
    let t = p.apply(Action::Close, now()).unwrap();
    assert_eq!(t.events, vec![ProposalEvent::Resolved]);
    let r = p.result.clone().unwrap();
    assert_eq!((r.winning_slot.id.as_str(), r.vote_count, r.total_votes, r.tie_count), ("slot_3", 4, 5, 1));
}

#[test]
fn a_poll_resolves_at_expiry_with_votes_and_expires_without() {
    let mut p = poll(PollVariant::Named);
    p.apply(vote(0, &["slot_3", "slot_1"]), now()).unwrap();
    let t = p.apply(Action::Expire, p.expires_at).unwrap();
    assert_eq!(t.events, vec![ProposalEvent::Resolved]);
    let r = p.result.unwrap();
    // slot_1 and slot_3 tie on one vote; slot_1 starts first.
    assert_eq!((r.winning_slot.id.as_str(), r.tie_count), ("slot_1", 2));
    let mut empty = poll(PollVariant::Named);
    assert_eq!(empty.apply(Action::Expire, empty.expires_at).unwrap().events, vec![ProposalEvent::Expired]);
}

// ---- tallies (properties) ----------------------------------------------------------------

fn slots_from(starts: &[i64]) -> Vec<ProposalSlot> {
    starts
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let start = at("2027-03-02T00:00:00Z") + SignedDuration::from_mins(*m * 15);
            ProposalSlot { id: format!("s{i}"), start, end: start + SignedDuration::from_mins(30), proposed_by: None }
        })
        .collect()
}

proptest! {
    #[test]
    fn the_tally_picks_the_most_voted_then_the_earliest(
        starts in proptest::collection::vec(0i64..200, 1..8),
        ballots in proptest::collection::vec(proptest::collection::vec(0usize..8, 0..6), 0..12),
    ) {
        let slots = slots_from(&starts);
        let ballots: Vec<Vec<String>> = ballots
            .into_iter()
            .map(|b| {
                let mut ids: Vec<String> = b.into_iter().filter(|i| *i < slots.len()).map(|i| format!("s{i}")).collect();
                ids.dedup();
                ids
            })
            .collect();
        let count = |id: &str| ballots.iter().filter(|b| b.iter().any(|s| s == id)).count() as u32;
        let max = slots.iter().map(|s| count(&s.id)).max().unwrap();
        let Some(t) = tally(&slots, ballots.iter().map(Vec::as_slice)) else {
            prop_assert_eq!(max, 0, "no winner only when no slot has a vote");
            return Ok(());
        };
        prop_assert_eq!(t.vote_count, max);
        prop_assert_eq!(t.vote_count, count(&t.winning_slot.id));
        prop_assert_eq!(t.total_votes, ballots.len() as u32);
        prop_assert_eq!(t.tie_count, slots.iter().filter(|s| count(&s.id) == max).count() as u32);
        prop_assert!(t.tie_count >= 1);
        // No slot with as many votes starts earlier.
        for s in &slots {
            if count(&s.id) == max {
                prop_assert!(s.start >= t.winning_slot.start);
            }
        }
    }

    #[test]
    fn the_tally_does_not_depend_on_ballot_order(
        ballots in proptest::collection::vec(proptest::collection::vec(0usize..5, 0..5), 0..10),
    ) {
        let slots = slots_from(&[4, 1, 9, 1, 3]);
        let ids: Vec<Vec<String>> = ballots.iter().map(|b| b.iter().map(|i| format!("s{i}")).collect()).collect();
        let forward = tally(&slots, ids.iter().map(Vec::as_slice));
        let backward = tally(&slots, ids.iter().rev().map(Vec::as_slice));
        prop_assert_eq!(forward, backward);
    }

    #[test]
    fn a_changed_vote_counts_once(changes in proptest::collection::vec(proptest::collection::vec(0usize..3, 0..3), 1..6)) {
        let mut p = poll(PollVariant::Open);
        let ids = ["slot_1", "slot_2", "slot_3"];
        for change in &changes {
            let chosen: Vec<&str> = change.iter().map(|i| ids[*i]).collect();
            p.apply(open_vote("Sam", &chosen), now()).unwrap();
        }
        prop_assert_eq!(p.ballots(), 1);
        let last: Vec<&str> = changes.last().unwrap().iter().map(|i| ids[*i]).collect();
        if last.is_empty() {
            prop_assert_eq!(p.apply(Action::Close, now()).unwrap_err(), Refusal::NoVotes);
        } else {
            p.apply(Action::Close, now()).unwrap();
            let r = p.result.unwrap();
            prop_assert_eq!((r.total_votes, r.vote_count), (1, 1));
        }
    }

    /// Whatever the sequence of actions, a refused one changes nothing and the invariants hold:
    /// only an open proposal changes responses, an accepted one has an agreed slot every
    /// required participant can do, and a resolved one has a result.
    #[test]
    fn random_action_sequences_keep_the_invariants(
        poll_mode in any::<bool>(),
        script in proptest::collection::vec((0usize..8, 0usize..4, 0usize..4, 0i64..6000), 0..25),
    ) {
        let mut p = if poll_mode { poll(PollVariant::Open) } else { consensus() };
        for (kind, who, slot, minutes) in script {
            let when = now() + SignedDuration::from_mins(minutes);
            let slot_id = p.slots.get(slot).map(|s| s.id.clone()).unwrap_or_else(|| "slot_none".into());
            let action = match kind {
                0 => Action::Accept { by: who.min(2), slot_id },
                1 => Action::Reject { by: who.min(2), reason: None },
                2 => Action::Counter { by: who.min(2), slots: vec![(format!("c{minutes}"), iv("2027-03-06T10:00:00Z", 30))] },
                3 => Action::Vote { by: Responder::Participant(who.min(2)), slot_ids: vec![slot_id] },
                4 => Action::Vote {
                    by: Responder::OpenVoter { name: format!("v{who}"), key_hash: format!("k{who}") },
                    slot_ids: vec![slot_id],
                },
                5 => Action::Close,
                6 => Action::Cancel { reason: None },
                _ => Action::Expire,
            };
            let before = p.clone();
            match p.apply(action, when) {
                Err(_) => prop_assert_eq!(&p, &before),
                Ok(t) => {
                    if before.status != ProposalStatus::Open {
                        prop_assert_eq!(p.slots.len(), before.slots.len());
                        prop_assert_eq!(&p.participants, &before.participants);
                    }
                    if let Some(Effect::Book { slot_id }) = &t.effect {
                        prop_assert_eq!(p.status, ProposalStatus::Accepted);
                        for r in p.participants.iter().filter(|r| r.required) {
                            prop_assert!(r.slot_ids.contains(slot_id));
                        }
                        p.booked("bkg".into());
                    }
                }
            }
            if p.status == ProposalStatus::Resolved {
                prop_assert!(p.result.is_some());
            }
        }
    }
}

#[test]
fn a_poll_without_a_vote_for_any_upcoming_slot_expires_instead_of_resolving() {
    // Everyone votes "none of these": nothing to resolve to.
    let mut p = poll(PollVariant::Named);
    for i in 0..3 {
        p.apply(vote(i, &[]), now()).unwrap();
    }
    assert_eq!((p.status, p.result.clone()), (ProposalStatus::Expired, None));
    // Votes only for a slot that has since started do not win either.
    let mut open = new(ProposalMode::Poll, Some(PollVariant::Open));
    open.expires_at = Some(at("2027-03-03T00:00:00Z"));
    let mut p = Proposal::new(open, now()).unwrap();
    p.apply(open_vote("Amy", &["slot_2"]), now()).unwrap();
    let later = at("2027-03-02T15:00:00Z");
    assert_eq!(p.apply(open_vote("Bo", &["slot_2"]), later).unwrap_err().code(), "slot_passed");
    assert_eq!(p.apply(Action::Close, later).unwrap_err(), Refusal::NoVotes);
    p.apply(open_vote("Bo", &["slot_3"]), later).unwrap();
    p.apply(Action::Close, later).unwrap();
    assert_eq!(p.result.unwrap().winning_slot.id, "slot_3", "slot_2 had more votes but has started");
    // A poll expires by default when its first slot starts.
    assert_eq!(poll(PollVariant::Named).expires_at, at("2027-03-02T15:00:00Z"));
}
