//! The contract's proposal cases: a proposal is stored with its links and emails and its
//! `proposal.created`; actions change it through the state machine with their events in the
//! same transaction; an agreement books through the booking path (a conflict changes nothing
//! but the proposal's report of it); the sweep expires and resolves; links open across tenants.

use kairos_core::proposal::{
    Action, Invitee, NewProposal, Organiser, PollVariant, Proposal, ProposalMode, ProposalStatus, Responder,
};

use super::*;

fn slot(start: &str) -> (String, Interval) {
    let at = at(start);
    (ids::new_id("slot"), Interval::new(at, at + SignedDuration::from_mins(30)).unwrap())
}

fn proposal(organiser: &User, people: &[(&User, bool)], mode: ProposalMode, variant: Option<PollVariant>) -> Proposal {
    let participants = people
        .iter()
        .map(|(u, required)| Invitee {
            email: u.email.clone(),
            name: u.name.clone(),
            required: *required,
            user_id: Some(u.id.clone()),
        })
        .collect();
    proposal_of(organiser, participants, mode, variant)
}

fn proposal_of(
    organiser: &User,
    participants: Vec<Invitee>,
    mode: ProposalMode,
    variant: Option<PollVariant>,
) -> Proposal {
    Proposal::new(
        NewProposal {
            id: ids::new_id("prop"),
            thread_id: ids::new_id("thr"),
            title: "Roadmap".into(),
            description: None,
            duration_minutes: 30,
            organiser: Organiser { user_id: organiser.id.clone(), email: organiser.email.clone(), name: None },
            mode,
            poll_variant: variant,
            participants,
            slots: vec![slot("2030-01-02T10:00:00Z"), slot("2030-01-02T11:00:00Z"), slot("2030-01-03T10:00:00Z")],
            expires_at: Some(at("2030-01-01T20:00:00Z")),
        },
        now(),
    )
    .unwrap()
}

fn tokens(p: &Proposal) -> Vec<ProposalToken> {
    let mut out: Vec<ProposalToken> = (0..p.participants.len())
        .map(|i| ProposalToken { hash: format!("hash-{}-{i}", p.id), holder: TokenHolder::Participant(i) })
        .collect();
    if p.poll_variant == Some(PollVariant::Open) {
        out.push(ProposalToken { hash: format!("hash-{}-open", p.id), holder: TokenHolder::OpenPoll });
    }
    out
}

fn invitations(p: &Proposal) -> Vec<ProposalEmail> {
    p.participants
        .iter()
        .map(|r| ProposalEmail {
            proposal_id: p.id.clone(),
            recipient: r.email.clone(),
            name: r.name.clone(),
            link_sealed: Some(format!("sealed:{}", r.email)),
            kind: ProposalEmailKind::Invitation,
            version: 0,
            sent_version: None,
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: now(),
            last_error: None,
            sent_at: None,
            updated_at: now(),
            lease: None,
        })
        .collect()
}

async fn people(store: &S, t: &Tenant) -> (User, User, User) {
    let (org, a, b) = (user("org@example.com"), user("ann@example.com"), user("ben@example.com"));
    for u in [&org, &a, &b] {
        store.insert_user(t, u).await.unwrap();
    }
    (org, a, b)
}

fn types(events: &[OutboxEvent]) -> Vec<&str> {
    let mut out: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    out.reverse(); // oldest first
    out
}

fn accept(by: usize, p: &Proposal, slot: usize) -> Action {
    Action::Accept { by, slot_id: p.slots[slot].id.clone() }
}

pub async fn proposals_are_stored_with_links_and_found_by_token(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let (org, ann, ben) = people(&store, &a).await;
    let p = proposal(&org, &[(&ann, true), (&ben, false)], ProposalMode::Poll, Some(PollVariant::Open));
    store.insert_proposal(&a, &p, &tokens(&p), &invitations(&p), now()).await.unwrap();

    assert_eq!(store.proposal(&a, &p.id).await.unwrap(), Some(p.clone()));
    let globex = tenant(&store, "globex", Mode::Test).await;
    assert_eq!(store.proposal(&globex, &p.id).await.unwrap(), None, "other tenants see nothing");
    let live = Tenant { account_id: a.account_id.clone(), mode: Mode::Live };
    assert_eq!(store.proposal(&live, &p.id).await.unwrap(), None, "nor the other mode");

    let (t, found, holder) = store.proposal_by_token(&format!("hash-{}-1", p.id)).await.unwrap().unwrap();
    assert_eq!((t, found.id.as_str(), holder), (a.clone(), p.id.as_str(), TokenHolder::Participant(1)));
    let (_, _, open) = store.proposal_by_token(&format!("hash-{}-open", p.id)).await.unwrap().unwrap();
    assert_eq!(open, TokenHolder::OpenPoll);
    assert!(store.proposal_by_token("hash-unknown").await.unwrap().is_none());

    let events = all_events(&store, &a).await;
    assert_eq!(types(&events), ["proposal.created"]);
    let payload: serde_json::Value = serde_json::from_str(&events[0].payload).unwrap();
    assert_eq!(payload["data"]["proposal_id"], p.id.as_str());

    // Lists: newest first, filtered by status.
    let q = proposal(&org, &[(&ann, true)], ProposalMode::Consensus, None);
    store.insert_proposal(&a, &q, &tokens(&q), &[], now()).await.unwrap();
    let page = PageRequest { limit: 1, cursor: None };
    let first = store.proposals(&a, None, &page).await.unwrap();
    assert_eq!(first.data[0].id, q.id);
    let second = store.proposals(&a, None, &PageRequest { limit: 1, cursor: first.next_cursor }).await.unwrap();
    assert_eq!(second.data[0].id, p.id);
    assert_eq!(second.next_cursor, None);
    store.act_on_proposal(&a, &q.id, Action::Cancel { reason: None }, now()).await.unwrap();
    let open = store.proposals(&a, Some(ProposalStatus::Open), &PageRequest { limit: 10, cursor: None }).await.unwrap();
    assert_eq!(open.data.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), [p.id.as_str()]);
}

pub async fn an_agreement_books_in_the_same_transaction(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let (org, ann, ben) = people(&store, &a).await;
    let p = proposal(&org, &[(&ann, true), (&ben, true)], ProposalMode::Consensus, None);
    store.insert_proposal(&a, &p, &tokens(&p), &[], now()).await.unwrap();

    let after = store.act_on_proposal(&a, &p.id, accept(0, &p, 1), now()).await.unwrap();
    assert_eq!(after.status, ProposalStatus::Open);
    let accepted = store.act_on_proposal(&a, &p.id, accept(1, &p, 1), now()).await.unwrap();
    assert_eq!(accepted.status, ProposalStatus::Accepted);
    let booking_id = accepted.booking_id.clone().expect("booked");
    let booking = store.booking(&a, &booking_id).await.unwrap().unwrap();
    assert_eq!((booking.start_time, booking.status), (p.slots[1].start, BookingStatus::Confirmed));
    let mut who: Vec<&str> = booking.participants.iter().map(|x| x.email.as_str()).collect();
    who.sort();
    assert_eq!(who, ["ann@example.com", "ben@example.com", "org@example.com"]);
    assert_eq!(booking.metadata.get("proposal_id").and_then(|v| v.as_str()), Some(p.id.as_str()));
    assert_eq!(store.proposal(&a, &p.id).await.unwrap(), Some(accepted.clone()));
    let events = all_events(&store, &a).await;
    assert_eq!(types(&events), ["proposal.created", "booking.created", "proposal.accepted"]);
    let payload: serde_json::Value = serde_json::from_str(&events[0].payload).unwrap();
    assert_eq!(payload["data"]["booking_id"], booking_id.as_str());

    // Refusals change nothing.
    let refused = store.act_on_proposal(&a, &p.id, accept(0, &p, 0), now()).await;
    assert!(matches!(refused, Err(ProposalError::Refused(_))), "{refused:?}");
    assert!(matches!(store.act_on_proposal(&a, "prop_nope", Action::Close, now()).await, Err(ProposalError::NotFound)));
    let globex = tenant(&store, "globex", Mode::Test).await;
    assert!(matches!(
        store.act_on_proposal(&globex, &p.id, Action::Cancel { reason: None }, now()).await,
        Err(ProposalError::NotFound)
    ));
    assert_eq!(all_events(&store, &a).await.len(), 3);

    // Cancelling the accepted proposal cancels its booking, with both events.
    let cancelled =
        store.act_on_proposal(&a, &p.id, Action::Cancel { reason: Some("moved".into()) }, now()).await.unwrap();
    assert_eq!(cancelled.status, ProposalStatus::Cancelled);
    let booking = store.booking(&a, &booking_id).await.unwrap().unwrap();
    assert_eq!(booking.status, BookingStatus::Cancelled);
    assert_eq!(types(&all_events(&store, &a).await)[3..], ["booking.cancelled", "proposal.cancelled"]);
}

pub async fn a_conflicting_agreement_changes_nothing_but_its_report(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let (org, ann, ben) = people(&store, &a).await;
    let p = proposal(&org, &[(&ann, true), (&ben, true)], ProposalMode::Consensus, None);
    store.insert_proposal(&a, &p, &tokens(&p), &[], now()).await.unwrap();
    // Ben is booked at slot 0 meanwhile.
    let slot0 = Interval::new(p.slots[0].start, p.slots[0].end).unwrap();
    store.create_booking(&a, &for_people(&["ben@example.com"], slot0), now()).await.unwrap();
    store.act_on_proposal(&a, &p.id, accept(0, &p, 0), now()).await.unwrap();
    let before = all_events(&store, &a).await.len();

    let err = store.act_on_proposal(&a, &p.id, accept(1, &p, 0), now()).await.unwrap_err();
    let ProposalError::Booking { slot_id, error } = err else { panic!("expected a booking conflict, got {err:?}") };
    assert_eq!(slot_id, p.slots[0].id);
    assert!(matches!(error, BookingError::Unavailable(_)), "{error:?}");
    let now_p = store.proposal(&a, &p.id).await.unwrap().unwrap();
    assert_eq!(now_p.status, ProposalStatus::Open);
    assert_eq!(
        now_p.participants[1].status,
        kairos_core::proposal::ResponseStatus::Pending,
        "Ben's answer rolled back"
    );
    let conflict = now_p.conflict.expect("the conflict is reported");
    assert_eq!((conflict.slot_id.as_str(), conflict.code.as_str()), (p.slots[0].id.as_str(), "slot_unavailable"));
    assert_eq!(all_events(&store, &a).await.len(), before, "no event for what did not happen");
    let bookings =
        store.bookings(&a, &BookingFilter::default(), &PageRequest { limit: 10, cursor: None }).await.unwrap();
    assert_eq!(bookings.data.len(), 1, "no second booking");

    // Another slot still works, and clears the report.
    store.act_on_proposal(&a, &p.id, accept(0, &p, 2), now()).await.unwrap();
    let done = store.act_on_proposal(&a, &p.id, accept(1, &p, 2), now()).await.unwrap();
    assert_eq!((done.status, done.conflict), (ProposalStatus::Accepted, None));
}

pub async fn the_sweep_expires_consensus_and_resolves_polls_once(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let (org, ann, ben) = people(&store, &a).await;
    let consensus = proposal(&org, &[(&ann, true)], ProposalMode::Consensus, None);
    let poll = proposal(&org, &[(&ann, true), (&ben, true)], ProposalMode::Poll, Some(PollVariant::Named));
    let quiet = proposal(&org, &[(&ann, true)], ProposalMode::Poll, Some(PollVariant::Named));
    for p in [&consensus, &poll, &quiet] {
        store.insert_proposal(&a, p, &tokens(p), &[], now()).await.unwrap();
    }
    let vote = Action::Vote { by: Responder::Participant(0), slot_ids: vec![poll.slots[2].id.clone()] };
    store.act_on_proposal(&a, &poll.id, vote, now()).await.unwrap();

    assert!(store.expire_proposals(now(), 10).await.unwrap().is_empty(), "nothing is due yet");
    let due = consensus.expires_at;
    let swept = store.expire_proposals(due, 10).await.unwrap();
    let mut outcome: Vec<(String, &str)> = swept
        .iter()
        .map(|(t, p)| {
            assert_eq!(t, &a);
            (p.id.clone(), p.status.as_str())
        })
        .collect();
    outcome.sort();
    let mut expected =
        vec![(consensus.id.clone(), "expired"), (poll.id.clone(), "resolved"), (quiet.id.clone(), "expired")];
    expected.sort();
    assert_eq!(outcome, expected);
    assert!(store.expire_proposals(due, 10).await.unwrap().is_empty(), "once");
    let resolved = store.proposal(&a, &poll.id).await.unwrap().unwrap();
    assert_eq!(resolved.result.unwrap().winning_slot.id, poll.slots[2].id);
    let events = all_events(&store, &a).await;
    let mut swept_types: Vec<&str> = types(&events)[3..].to_vec();
    swept_types.sort();
    assert_eq!(swept_types, ["proposal.expired", "proposal.expired", "proposal.resolved"]);
}

pub async fn proposal_emails_are_claimed_once_and_forget_their_links(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let (org, ann, ben) = people(&store, &a).await;
    let p = proposal(&org, &[(&ann, true), (&ben, false)], ProposalMode::Consensus, None);
    store.insert_proposal(&a, &p, &tokens(&p), &invitations(&p), now()).await.unwrap();
    let queued = store.proposal_emails(&a, &p.id).await.unwrap();
    assert_eq!(queued.iter().map(|e| e.recipient.as_str()).collect::<Vec<_>>(), ["ann@example.com", "ben@example.com"]);

    let lease = SignedDuration::from_mins(2);
    let claimed = store.claim_proposal_emails(now(), lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert_eq!(claimed[0].1.link_sealed.as_deref(), Some("sealed:ann@example.com"));
    assert!(store.claim_proposal_emails(now(), lease, 10).await.unwrap().is_empty(), "leased");

    let (t, ann_email) = &claimed[0];
    store.record_proposal_email(t, ann_email, &EmailOutcome::Sent, now()).await.unwrap();
    let retry = now() + SignedDuration::from_mins(1);
    let (t, ben_email) = &claimed[1];
    store
        .record_proposal_email(
            t,
            ben_email,
            &EmailOutcome::Failed { error: "451".into(), retry_at: Some(retry) },
            now(),
        )
        .await
        .unwrap();
    let rows = store.proposal_emails(&a, &p.id).await.unwrap();
    assert_eq!((rows[0].status.as_str(), rows[0].link_sealed.as_deref(), rows[0].sent_at), ("sent", None, Some(now())));
    assert_eq!((rows[1].status.as_str(), rows[1].attempts), ("pending", 1));
    assert!(rows[1].link_sealed.is_some(), "kept for the retry");

    // With no SMTP server the retry is skipped, and its link erased too.
    assert_eq!(store.skip_due_emails(retry, "no SMTP server is configured").await.unwrap(), 1);
    let rows = store.proposal_emails(&a, &p.id).await.unwrap();
    assert_eq!((rows[1].status.as_str(), rows[1].link_sealed.as_deref()), ("skipped", None));
    assert!(store.claim_proposal_emails(retry, lease, 10).await.unwrap().is_empty());
    let globex = tenant(&store, "globex", Mode::Test).await;
    assert!(store.proposal_emails(&globex, &p.id).await.unwrap().is_empty());
}

pub async fn proposal_emails_are_recorded_only_under_their_current_lease(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let (org, ann, _) = people(&store, &a).await;
    let p = proposal(&org, &[(&ann, true)], ProposalMode::Consensus, None);
    store.insert_proposal(&a, &p, &tokens(&p), &invitations(&p), now()).await.unwrap();
    let lease = SignedDuration::from_mins(2);
    let lapsed = now() + lease;
    let row = async || store.proposal_emails(&a, &p.id).await.unwrap().remove(0);

    // Claimed once until its lease lapses; the claim carries the lease it wrote.
    let (t, first) = store.claim_proposal_emails(now(), lease, 10).await.unwrap().remove(0);
    assert_eq!(first.lease, Some(lapsed));
    let almost = lapsed - SignedDuration::from_millis(1);
    assert!(store.claim_proposal_emails(almost, lease, 10).await.unwrap().is_empty(), "leased");

    // The first worker stalls past its lease and a second one claims the invitation: the
    // first one's outcome then changes nothing (the link is kept), and the row stays the
    // second's.
    let (_, second) = store.claim_proposal_emails(lapsed, lease, 10).await.unwrap().remove(0);
    assert_ne!(second.lease, first.lease);
    assert!(!store.record_proposal_email(&t, &first, &EmailOutcome::Sent, lapsed).await.unwrap());
    let skipped = EmailOutcome::Skipped("no SMTP server is configured".into());
    assert!(!store.record_proposal_email(&t, &first, &skipped, lapsed).await.unwrap());
    let held = row().await;
    assert_eq!((held.status.as_str(), held.sent_version, held.last_error.as_deref()), ("pending", None, None));
    assert_eq!((held.link_sealed.as_deref(), held.lease), (Some("sealed:ann@example.com"), second.lease));
    assert!(store.claim_proposal_emails(lapsed, lease, 10).await.unwrap().is_empty(), "still the second's");
    let retry = lapsed + SignedDuration::from_mins(1);
    let failed = EmailOutcome::Failed { error: "451".into(), retry_at: Some(retry) };
    assert!(store.record_proposal_email(&t, &second, &failed, lapsed).await.unwrap());
    let after = row().await;
    assert_eq!((after.status.as_str(), after.attempts, after.lease), ("pending", 1, None));
    assert!(!store.record_proposal_email(&t, &second, &skipped, lapsed).await.unwrap(), "its record released it");

    // Even a claim with no lease to speak of fences the one before it; then the usual path.
    let (_, brief) = store.claim_proposal_emails(retry, SignedDuration::ZERO, 10).await.unwrap().remove(0);
    let (_, next) = store.claim_proposal_emails(retry, SignedDuration::ZERO, 10).await.unwrap().remove(0);
    assert_ne!(next.lease, brief.lease);
    assert!(!store.record_proposal_email(&t, &brief, &skipped, retry).await.unwrap());
    assert_eq!(row().await.status, "pending");
    assert!(store.record_proposal_email(&t, &next, &EmailOutcome::Sent, retry).await.unwrap());
    let sent = row().await;
    assert_eq!((sent.status.as_str(), sent.link_sealed.as_deref(), sent.lease), ("sent", None, None));
}

/// A participant who is not a Kairos user.
fn outsider(email: &str, required: bool) -> Invitee {
    Invitee { email: email.into(), name: None, required, user_id: None }
}

/// Each proposal email as (recipient, kind, version, status), in the participants' order.
async fn outcome_rows(store: &S, t: &Tenant, p: &Proposal) -> Vec<(String, ProposalEmailKind, i64, String)> {
    let mut rows: Vec<ProposalEmail> = store.proposal_emails(t, &p.id).await.unwrap();
    rows.sort_by_key(|e| p.participants.iter().position(|r| r.email == e.recipient));
    rows.into_iter().map(|e| (e.recipient, e.kind, e.version, e.status)).collect()
}

pub async fn proposal_outcomes_queue_emails_in_the_same_transaction(store: S) {
    use ProposalEmailKind::{Accepted, Cancelled, Invitation, Resolved};
    let a = tenant(&store, "acme", Mode::Test).await;
    let (org, ann, _) = people(&store, &a).await;
    let with = |participants: Vec<Invitee>, mode, variant| proposal_of(&org, participants, mode, variant);
    let user_invitee =
        Invitee { email: ann.email.clone(), name: ann.name.clone(), required: true, user_id: Some(ann.id.clone()) };
    let s = |v: &str| v.to_string();

    // Consensus: Ann (a user) and Cat are required; Dan may come and picks the agreed slot, Eve
    // declines.
    let people = vec![
        user_invitee.clone(),
        outsider("cat@outside.example", true),
        outsider("dan@outside.example", false),
        outsider("eve@outside.example", false),
    ];
    let p = with(people, ProposalMode::Consensus, None);
    store.insert_proposal(&a, &p, &tokens(&p), &invitations(&p), now()).await.unwrap();
    let lease = SignedDuration::from_mins(2);
    let claimed = store.claim_proposal_emails(now(), lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 4);
    assert!(claimed.iter().all(|(_, e)| (e.kind, e.version) == (Invitation, 0)));
    // Every invitation goes out but Cat's, still being sent when the proposal is accepted.
    let (cat_claim, others): (Vec<_>, Vec<_>) =
        claimed.into_iter().partition(|(_, e)| e.recipient == "cat@outside.example");
    for (t, e) in &others {
        store.record_proposal_email(t, e, &EmailOutcome::Sent, now()).await.unwrap();
    }
    store.act_on_proposal(&a, &p.id, accept(2, &p, 1), now()).await.unwrap();
    store.act_on_proposal(&a, &p.id, Action::Reject { by: 3, reason: None }, now()).await.unwrap();
    store.act_on_proposal(&a, &p.id, accept(0, &p, 1), now()).await.unwrap();
    let accepted = store.act_on_proposal(&a, &p.id, accept(1, &p, 1), now()).await.unwrap();
    assert_eq!(accepted.status, ProposalStatus::Accepted);
    // The outsiders who can come hear of it; Ann is in the booking and gets its emails.
    assert_eq!(
        outcome_rows(&store, &a, &p).await,
        [
            (s("ann@example.com"), Invitation, 0, s("sent")),
            (s("cat@outside.example"), Accepted, 1, s("pending")),
            (s("dan@outside.example"), Accepted, 1, s("pending")),
            (s("eve@outside.example"), Invitation, 0, s("sent")),
        ]
    );
    let booking_id = accepted.booking_id.clone().unwrap();
    let mut booked: Vec<String> =
        store.booking_emails(&a, &booking_id).await.unwrap().into_iter().map(|e| e.recipient).collect();
    booked.sort();
    assert_eq!(booked, ["ann@example.com", "org@example.com"]);

    // Cat's invitation finishing late does not mark the outcome sent.
    let (t, cat_invitation) = &cat_claim[0];
    store.record_proposal_email(t, cat_invitation, &EmailOutcome::Sent, now()).await.unwrap();
    let cat = &store.proposal_emails(&a, &p.id).await.unwrap()[1];
    assert_eq!((cat.kind, cat.status.as_str(), cat.sent_version), (Accepted, "pending", Some(0)));
    let outcomes = store.claim_proposal_emails(now(), lease, 10).await.unwrap();
    assert_eq!(outcomes.len(), 2);
    assert!(outcomes.iter().all(|(_, e)| e.kind == Accepted && e.link_sealed.is_none()), "no link is kept");
    for (t, e) in &outcomes {
        store.record_proposal_email(t, e, &EmailOutcome::Sent, now()).await.unwrap();
    }

    // Cancelling it re-wants a cancellation from whoever the outcome went to.
    store.act_on_proposal(&a, &p.id, Action::Cancel { reason: Some("moved".into()) }, now()).await.unwrap();
    let rows = store.proposal_emails(&a, &p.id).await.unwrap();
    assert_eq!(
        outcome_rows(&store, &a, &p).await,
        [
            (s("ann@example.com"), Invitation, 0, s("sent")),
            (s("cat@outside.example"), Cancelled, 2, s("pending")),
            (s("dan@outside.example"), Cancelled, 2, s("pending")),
            (s("eve@outside.example"), Invitation, 0, s("sent")),
        ]
    );
    assert!(rows.iter().filter(|e| e.kind == Cancelled).all(|e| e.sent_version == Some(1) && e.attempts == 0));

    // A named poll resolving tells every named participant, users included; Cat had no
    // invitation row (the outcome makes one).
    let people = vec![user_invitee.clone(), outsider("cat@outside.example", true)];
    let poll = with(people.clone(), ProposalMode::Poll, Some(PollVariant::Named));
    store.insert_proposal(&a, &poll, &tokens(&poll), &invitations(&poll)[..1], now()).await.unwrap();
    for by in 0..2 {
        let vote = Action::Vote { by: Responder::Participant(by), slot_ids: vec![poll.slots[2].id.clone()] };
        store.act_on_proposal(&a, &poll.id, vote, now()).await.unwrap();
    }
    assert_eq!(store.proposal(&a, &poll.id).await.unwrap().unwrap().status, ProposalStatus::Resolved);
    assert_eq!(
        outcome_rows(&store, &a, &poll).await,
        [(s("ann@example.com"), Resolved, 1, s("pending")), (s("cat@outside.example"), Resolved, 0, s("pending"))]
    );
    // Cancelled before the result went out: re-wanted all the same (the worker skips it).
    store.act_on_proposal(&a, &poll.id, Action::Cancel { reason: None }, now()).await.unwrap();
    assert_eq!(
        outcome_rows(&store, &a, &poll).await,
        [(s("ann@example.com"), Cancelled, 2, s("pending")), (s("cat@outside.example"), Cancelled, 1, s("pending"))]
    );

    // The sweep resolving a poll at expiry tells them too.
    let swept = with(people.clone(), ProposalMode::Poll, Some(PollVariant::Named));
    store.insert_proposal(&a, &swept, &tokens(&swept), &invitations(&swept), now()).await.unwrap();
    let vote = Action::Vote { by: Responder::Participant(1), slot_ids: vec![swept.slots[0].id.clone()] };
    store.act_on_proposal(&a, &swept.id, vote, now()).await.unwrap();
    assert_eq!(store.expire_proposals(swept.expires_at, 10).await.unwrap().len(), 1);
    assert_eq!(
        outcome_rows(&store, &a, &swept).await,
        [(s("ann@example.com"), Resolved, 1, s("pending")), (s("cat@outside.example"), Resolved, 1, s("pending"))]
    );

    // Cancelling an open proposal, or one that expired, wants nothing more.
    let open = with(people, ProposalMode::Consensus, None);
    store.insert_proposal(&a, &open, &tokens(&open), &invitations(&open), now()).await.unwrap();
    store.act_on_proposal(&a, &open.id, Action::Cancel { reason: None }, now()).await.unwrap();
    assert!(store.proposal_emails(&a, &open.id).await.unwrap().iter().all(|e| (e.kind, e.version) == (Invitation, 0)));
    let globex = tenant(&store, "globex", Mode::Test).await;
    assert!(store.proposal_emails(&globex, &p.id).await.unwrap().is_empty());
}
