//! The contract every [`Store`] implementation must pass, written once against the trait.
//! A backend runs it with [`store_contract_tests!`](crate::store_contract_tests), which
//! expands to one `#[tokio::test]` per case, each given a fresh, empty store.

// This module is test code shipped in the library so that every backend can run it; panicking
// on a failed expectation is its job.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use kairos_core::availability::Mode as SearchMode;
use kairos_core::schedule::{DateOverrides, Schedule, WorkingHours};
use kairos_core::{Booking, BookingStatus, Business, Interval, Link, Unavailable, User, Zone};

use crate::*;

mod calendars;
mod emails;
mod proposals;
mod providers;
mod webhooks;
pub use calendars::*;
pub use emails::*;
pub use proposals::*;
pub use providers::*;
pub use webhooks::*;

/// Expands to the whole contract suite for a backend. `$make` is an async expression that
/// yields a fresh `Arc<dyn Store>` (plus anything that must live as long as the test, such
/// as a temporary directory), e.g. `store_contract_tests!(async { fresh_store().await })`;
/// with `optional` first it yields an `Option` of that, and `None` skips the case.
#[macro_export]
macro_rules! store_contract_tests {
    ($make:expr) => {
        $crate::store_contract_tests!(optional async { Some($make.await) });
    };
    // `$make` yields `Option<(store, guard)>`; `None` skips the case (the backend's server is
    // missing, and whoever returned `None` has said so loudly).
    (optional $make:expr) => {
        $crate::store_contract_tests!(@cases $make;
            keys_resolve_to_their_own_tenant,
            objects_are_invisible_to_other_tenants_and_modes,
            user_emails_are_unique_within_a_tenant,
            lists_are_newest_first_with_cursors,
            business_hosts_must_exist_and_follow_their_users,
            a_booking_and_its_event_are_written_together,
            a_host_is_one_person_across_businesses_and_shapes,
            concurrent_bookings_of_one_slot_admit_exactly_one,
            busy_blocks_hold_time,
            cancel_frees_time_and_is_idempotent,
            reschedule_ignores_its_own_time_and_respects_others,
            payment_holds_expire,
            booking_filters_select_and_paginate,
            the_daily_cap_is_enforced_in_the_transaction,
            any_mode_books_one_free_host,
            a_refused_booking_writes_nothing,
            idempotency_keys_claim_replay_and_expire,
            unknown_parties_are_reported,
            buffers_keep_time_around_bookings,
            long_holds_reach_as_far_as_they_last,
            a_business_without_hosts_keeps_its_bookings_time,
            a_booking_sees_the_business_and_people_as_they_are_now,
            any_mode_books_named_people_and_one_free_host,
            events_fan_out_once_to_the_subscriptions_that_want_them,
            a_subscription_hears_only_events_from_its_creation_on,
            claims_are_exclusive_until_their_lease_lapses,
            claims_keep_each_subscription_within_its_limit,
            failed_attempts_retry_when_due_then_fail,
            disabling_a_subscription_fails_what_waits_for_it,
            nothing_is_queued_for_a_disabled_subscription,
            subscriptions_to_one_endpoint_share_its_limit,
            redelivery_and_pings_queue_new_deliveries_of_one_tenant,
            a_rotated_secret_signs_beside_the_new_one_for_a_day,
            deleting_a_subscription_deletes_its_history,
            the_sweep_removes_only_old_finished_history,
            expired_idempotency_keys_are_swept,
            a_connected_calendar_holds_time_until_deselected_or_disconnected,
            a_sync_replaces_busy_time_and_records_its_outcome,
            a_provider_reconnects_in_place_with_its_lifecycle_events,
            provider_syncs_apply_items_cursors_and_busy_time,
            oauth_authorizations_are_taken_once_before_they_expire,
            push_channels_are_found_by_id_and_expiry_and_go_with_their_connection,
            booking_changes_queue_their_calendar_writes,
            leases_exclude_other_holders_until_they_lapse,
            booking_changes_queue_one_email_per_recipient,
            email_failures_retry_then_fail_and_skips_stick,
            emails_without_a_mail_server_end_skipped,
            payments_confirm_holds_once,
            unpaid_holds_end_and_late_payments_take_free_time_only,
            links_have_server_wide_slugs_and_go_with_their_business,
            proposals_are_stored_with_links_and_found_by_token,
            an_agreement_books_in_the_same_transaction,
            a_conflicting_agreement_changes_nothing_but_its_report,
            the_sweep_expires_consensus_and_resolves_polls_once,
            proposal_emails_are_claimed_once_and_forget_their_links,
            proposal_outcomes_queue_emails_in_the_same_transaction,
            calendar_writes_are_recorded_only_under_their_current_lease,
            booking_emails_are_recorded_only_under_their_current_lease,
            emails_keep_the_times_they_gave,
            proposal_emails_are_recorded_only_under_their_current_lease,
        );
    };
    (@cases $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some((store, _guard)) = $make.await else { return };
                $crate::contract::$name(store).await;
            }
        )*
    };
}

type S = Arc<dyn Store>;

fn at(s: &str) -> Timestamp {
    s.parse().expect("a valid timestamp in a test")
}

fn iv(a: &str, b: &str) -> Interval {
    Interval::new(at(a), at(b)).expect("a valid interval in a test")
}

/// "Now" for every case: a Wednesday, well before the booked times.
fn now() -> Timestamp {
    at("2030-01-01T08:00:00Z")
}

async fn tenant(store: &S, account: &str, mode: Mode) -> Tenant {
    let (_, hashed) = keys::generate(mode);
    let acct = store.create_api_key(account, mode, &hashed, now()).await.expect("create key");
    Tenant { account_id: acct.id, mode }
}

fn always_open() -> WorkingHours {
    WorkingHours::always()
}

fn user(email: &str) -> User {
    User {
        id: ids::new_id("usr"),
        email: email.to_string(),
        name: Some(email.split('@').next().unwrap_or(email).to_string()),
        schedule: Schedule::new(Zone::utc(), always_open(), DateOverrides::default()),
        created_at: now(),
        updated_at: now(),
    }
}

fn business(hosts: &[&User]) -> Business {
    Business {
        id: ids::new_id("biz"),
        name: "Clinic".to_string(),
        schedule: Schedule::new(Zone::utc(), always_open(), DateOverrides::default()),
        buffer_before_minutes: 0,
        buffer_after_minutes: 0,
        minimum_notice_minutes: 0,
        max_bookings_per_day: None,
        slot_step_minutes: None,
        price_amount: None,
        price_currency: None,
        hosts: hosts.iter().map(|u| u.id.clone()).collect(),
        created_at: now(),
        updated_at: now(),
    }
}

fn for_business(b: &Business, interval: Interval) -> NewBooking {
    NewBooking {
        who: Who { business_id: Some(b.id.clone()), ..Who::default() },
        mode: SearchMode::Collective,
        interval,
        customer_name: Some("Jane Doe".to_string()),
        customer_email: Some("jane@example.com".to_string()),
        customer_timezone: None,
        title: None,
        notes: None,
        description: None,
        metadata: Default::default(),
        payment_holds: true,
    }
}

fn for_people(emails: &[&str], interval: Interval) -> NewBooking {
    NewBooking {
        who: Who { participants: emails.iter().map(|e| UserRef::Email(e.to_string())).collect(), ..Who::default() },
        mode: SearchMode::Collective,
        interval,
        customer_name: None,
        customer_email: None,
        customer_timezone: None,
        title: Some("Sync".to_string()),
        notes: None,
        description: None,
        metadata: Default::default(),
        payment_holds: true,
    }
}

async fn all_events(store: &S, t: &Tenant) -> Vec<OutboxEvent> {
    store.outbox_events(t, &PageRequest { limit: 100, cursor: None }).await.expect("outbox").data
}

/// The busy intervals that overlap `window`, in order: stores may hand out more than the
/// window, never less.
fn within(busy: &[Interval], window: Interval) -> Vec<Interval> {
    busy.iter().filter(|b| b.overlaps(&window)).copied().collect()
}

fn refused(result: Result<Booking, BookingError>) -> Refusal {
    match result {
        Err(BookingError::Unavailable(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

pub async fn keys_resolve_to_their_own_tenant(store: S) {
    let (_, a_test) = keys::generate(Mode::Test);
    let (_, a_live) = keys::generate(Mode::Live);
    let (_, b_test) = keys::generate(Mode::Test);
    let a1 = store.create_api_key("acme", Mode::Test, &a_test, now()).await.unwrap();
    let a2 = store.create_api_key("acme", Mode::Live, &a_live, now()).await.unwrap();
    let b = store.create_api_key("globex", Mode::Test, &b_test, now()).await.unwrap();
    assert_eq!(a1.id, a2.id, "one account per name");
    assert_ne!(a1.id, b.id);
    assert_eq!(
        store.tenant_for_key(&a_test.hash).await.unwrap(),
        Some(Tenant { account_id: a1.id.clone(), mode: Mode::Test })
    );
    assert_eq!(store.tenant_for_key(&a_live.hash).await.unwrap(), Some(Tenant { account_id: a1.id, mode: Mode::Live }));
    assert_eq!(store.tenant_for_key(&b_test.hash).await.unwrap().map(|t| t.account_id), Some(b.id));
    assert_eq!(store.tenant_for_key(&keys::hash("sk_test_nope")).await.unwrap(), None);
}

pub async fn objects_are_invisible_to_other_tenants_and_modes(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let a_live = tenant(&store, "acme", Mode::Live).await;
    let b = tenant(&store, "globex", Mode::Test).await;
    let alice = user("alice@example.com");
    store.insert_user(&a, &alice).await.unwrap();
    let biz = business(&[&alice]);
    store.insert_business(&a, &biz).await.unwrap();
    let booking = store
        .create_booking(&a, &for_business(&biz, iv("2030-01-02T10:00:00Z", "2030-01-02T10:30:00Z")), now())
        .await
        .unwrap();
    for other in [&a_live, &b] {
        assert_eq!(store.user(other, &alice.id).await.unwrap(), None);
        assert_eq!(store.business(other, &biz.id).await.unwrap(), None);
        assert_eq!(store.booking(other, &booking.id).await.unwrap(), None);
        assert!(store.users(other, &PageRequest::default()).await.unwrap().data.is_empty());
        assert!(
            store.bookings(other, &BookingFilter::default(), &PageRequest::default()).await.unwrap().data.is_empty()
        );
        assert!(all_events(&store, other).await.is_empty());
        assert!(!store.delete_user(other, &alice.id).await.unwrap());
        assert!(matches!(
            store.cancel_booking(other, &booking.id, None, now()).await,
            Err(BookingError::Store(StoreError::NotFound))
        ));
        // Another tenant cannot host someone else's user either.
        assert!(matches!(store.insert_business(other, &business(&[&alice])).await, Err(StoreError::NotFound)));
    }
    assert_eq!(store.user(&a, &alice.id).await.unwrap().map(|u| u.email), Some(alice.email));
}

pub async fn user_emails_are_unique_within_a_tenant(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let b = tenant(&store, "globex", Mode::Test).await;
    store.insert_user(&a, &user("alice@example.com")).await.unwrap();
    assert!(matches!(store.insert_user(&a, &user("alice@example.com")).await, Err(StoreError::Conflict("email"))));
    store.insert_user(&b, &user("alice@example.com")).await.unwrap();
    let bob = user("bob@example.com");
    store.insert_user(&a, &bob).await.unwrap();
    let taken = store
        .update_user(
            &a,
            &bob.id,
            Box::new(|u| {
                u.email = "alice@example.com".into();
                Ok(())
            }),
        )
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict("email"))));
    let edited = store
        .update_user(
            &a,
            &bob.id,
            Box::new(|u| {
                u.email = "robert@example.com".into();
                u.schedule.timezone = Zone::parse("Europe/Berlin").unwrap();
                Ok(())
            }),
        )
        .await
        .unwrap();
    let got = store.user(&a, &bob.id).await.unwrap().unwrap();
    assert_eq!(got, edited);
    assert_eq!((got.email.as_str(), got.schedule.timezone.name()), ("robert@example.com", "Europe/Berlin"));
    // An edit may refuse; then nothing changes.
    let refusal = store
        .update_user(
            &a,
            &bob.id,
            Box::new(|u| {
                u.email = "changed@example.com".into();
                Err(StoreError::Invalid { param: "email".into(), message: "no".into(), missing: false })
            }),
        )
        .await;
    assert!(matches!(refusal, Err(StoreError::Invalid { .. })));
    assert_eq!(store.user(&a, &bob.id).await.unwrap().unwrap(), got);
    assert!(matches!(store.update_user(&a, "usr_missing", Box::new(|_| Ok(()))).await, Err(StoreError::NotFound)));
    let found = store
        .resolve_users(
            &a,
            &[
                UserRef::Email("robert@example.com".into()),
                UserRef::Id("usr_missing".into()),
                UserRef::Id(bob.id.clone()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        found.iter().map(|u| u.as_ref().map(|u| u.id.clone())).collect::<Vec<_>>(),
        vec![Some(bob.id.clone()), None, Some(bob.id)]
    );
}

pub async fn lists_are_newest_first_with_cursors(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let mut made = Vec::new();
    for i in 0..5 {
        let u = user(&format!("u{i}@example.com"));
        store.insert_user(&a, &u).await.unwrap();
        made.push(u.id);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    made.reverse();
    let first = store.users(&a, &PageRequest { limit: 2, cursor: None }).await.unwrap();
    assert_eq!(first.data.iter().map(|u| u.id.clone()).collect::<Vec<_>>(), made[..2]);
    let second = store.users(&a, &PageRequest { limit: 2, cursor: first.next_cursor.clone() }).await.unwrap();
    assert_eq!(second.data.iter().map(|u| u.id.clone()).collect::<Vec<_>>(), made[2..4]);
    let third = store.users(&a, &PageRequest { limit: 2, cursor: second.next_cursor.clone() }).await.unwrap();
    assert_eq!(third.data.iter().map(|u| u.id.clone()).collect::<Vec<_>>(), made[4..]);
    assert_eq!(third.next_cursor, None);
    let exact = store.users(&a, &PageRequest { limit: 5, cursor: None }).await.unwrap();
    assert_eq!((exact.data.len(), exact.next_cursor), (5, None));
}

pub async fn business_hosts_must_exist_and_follow_their_users(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let alice = user("alice@example.com");
    let bob = user("bob@example.com");
    store.insert_user(&a, &alice).await.unwrap();
    assert!(matches!(store.insert_business(&a, &business(&[&alice, &bob])).await, Err(StoreError::NotFound)));
    assert!(store.businesses(&a, &PageRequest::default()).await.unwrap().data.is_empty(), "nothing written");
    store.insert_user(&a, &bob).await.unwrap();
    let biz = business(&[&bob, &alice]);
    store.insert_business(&a, &biz).await.unwrap();
    assert_eq!(
        store.business(&a, &biz.id).await.unwrap().unwrap().hosts,
        vec![bob.id.clone(), alice.id.clone()],
        "host order kept"
    );
    let only_alice = vec![alice.id.clone()];
    store
        .update_business(
            &a,
            &biz.id,
            Box::new(move |b| {
                b.name = "Renamed".into();
                b.max_bookings_per_day = Some(3);
                b.hosts = only_alice;
                Ok(())
            }),
        )
        .await
        .unwrap();
    let got = store.business(&a, &biz.id).await.unwrap().unwrap();
    assert_eq!(
        (got.name.as_str(), got.max_bookings_per_day, got.hosts.clone()),
        ("Renamed", Some(3), vec![alice.id.clone()])
    );
    assert!(store.delete_user(&a, &alice.id).await.unwrap());
    assert!(store.business(&a, &biz.id).await.unwrap().unwrap().hosts.is_empty());
    assert!(store.delete_business(&a, &biz.id).await.unwrap());
    assert!(!store.delete_business(&a, &biz.id).await.unwrap());
    assert!(matches!(store.update_business(&a, &biz.id, Box::new(|_| Ok(()))).await, Err(StoreError::NotFound)));
}

pub async fn a_booking_and_its_event_are_written_together(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let alice = user("alice@example.com");
    store.insert_user(&a, &alice).await.unwrap();
    let biz = business(&[&alice]);
    store.insert_business(&a, &biz).await.unwrap();
    let b = store
        .create_booking(&a, &for_business(&biz, iv("2030-01-02T10:00:00Z", "2030-01-02T10:30:00Z")), now())
        .await
        .unwrap();
    assert_eq!(b.status, BookingStatus::Confirmed);
    assert_eq!(b.participants.iter().map(|p| p.email.as_str()).collect::<Vec<_>>(), ["alice@example.com"]);
    assert_eq!(store.booking(&a, &b.id).await.unwrap().as_ref(), Some(&b));
    let events = all_events(&store, &a).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "booking.created");
    let envelope: serde_json::Value = serde_json::from_str(&events[0].payload).unwrap();
    assert_eq!(envelope["id"], events[0].id.as_str());
    assert!(events[0].id.starts_with("evt_"));
    assert_eq!(envelope["type"], "booking.created");
    assert_eq!(envelope["data"]["booking"]["id"], b.id.as_str());
    assert_eq!(envelope["data"]["booking"]["start_time"], "2030-01-02T10:00:00Z");
}

pub async fn a_host_is_one_person_across_businesses_and_shapes(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let alice = user("alice@example.com");
    store.insert_user(&a, &alice).await.unwrap();
    let one = business(&[&alice]);
    let two = business(&[&alice]);
    store.insert_business(&a, &one).await.unwrap();
    store.insert_business(&a, &two).await.unwrap();
    let slot = iv("2030-01-02T10:00:00Z", "2030-01-02T11:00:00Z");
    store.create_booking(&a, &for_business(&one, slot), now()).await.unwrap();
    let r = refused(
        store.create_booking(&a, &for_business(&two, iv("2030-01-02T10:30:00Z", "2030-01-02T11:30:00Z")), now()).await,
    );
    assert_eq!(r, Refusal { reason: Unavailable::Busy { member: Some(0) }, who: Some("alice@example.com".into()) });
    refused(
        store
            .create_booking(
                &a,
                &for_people(&["alice@example.com"], iv("2030-01-02T09:30:00Z", "2030-01-02T10:01:00Z")),
                now(),
            )
            .await,
    );
    // Touching is not overlapping.
    store
        .create_booking(
            &a,
            &for_people(&["alice@example.com"], iv("2030-01-02T11:00:00Z", "2030-01-02T11:30:00Z")),
            now(),
        )
        .await
        .unwrap();
    let party = store
        .load_party(
            &a,
            &Who { business_id: Some(two.id.clone()), ..Who::default() },
            iv("2030-01-02T00:00:00Z", "2030-01-03T00:00:00Z"),
            now(),
        )
        .await
        .unwrap();
    let day = iv("2030-01-02T00:00:00Z", "2030-01-03T00:00:00Z");
    assert_eq!(within(&party.busy[0], day), vec![slot, iv("2030-01-02T11:00:00Z", "2030-01-02T11:30:00Z")]);
}

pub async fn concurrent_bookings_of_one_slot_admit_exactly_one(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let alice = user("alice@example.com");
    store.insert_user(&a, &alice).await.unwrap();
    let biz = business(&[&alice]);
    store.insert_business(&a, &biz).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..24 {
        let (store, a, new) =
            (store.clone(), a.clone(), for_business(&biz, iv("2030-01-02T10:00:00Z", "2030-01-02T10:30:00Z")));
        // Half of them come through the participants shape: still one person.
        let new = if i % 2 == 0 { new } else { for_people(&["alice@example.com"], new.interval) };
        tasks.push(tokio::spawn(async move { store.create_booking(&a, &new, now()).await }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(BookingError::Unavailable(_)) => {}
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(store.bookings(&a, &BookingFilter::default(), &PageRequest::default()).await.unwrap().data.len(), 1);
    assert_eq!(all_events(&store, &a).await.len(), 1);
}

pub async fn busy_blocks_hold_time(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let alice = user("alice@example.com");
    store.insert_user(&a, &alice).await.unwrap();
    let blocks = [
        NewBusyBlock { interval: iv("2030-01-02T12:00:00Z", "2030-01-02T13:00:00Z"), source: "manual".into() },
        NewBusyBlock { interval: iv("2030-01-02T09:00:00Z", "2030-01-02T10:00:00Z"), source: "manual".into() },
        NewBusyBlock { interval: iv("2030-01-05T09:00:00Z", "2030-01-05T10:00:00Z"), source: "manual".into() },
    ];
    store.add_busy_blocks(&a, &alice.id, &blocks).await.unwrap();
    assert!(matches!(store.add_busy_blocks(&a, "usr_nobody", &blocks).await, Err(StoreError::NotFound)));
    let who = Who { participants: vec![UserRef::Id(alice.id.clone())], ..Who::default() };
    let party = store.load_party(&a, &who, iv("2030-01-02T00:00:00Z", "2030-01-03T00:00:00Z"), now()).await.unwrap();
    assert_eq!(party.busy.len(), 1);
    assert_eq!(
        within(&party.busy[0], iv("2030-01-02T00:00:00Z", "2030-01-03T00:00:00Z")),
        vec![blocks[1].interval, blocks[0].interval]
    );
    assert!(party.busy[0].is_sorted_by_key(|b| b.start()), "sorted by start");
    refused(
        store
            .create_booking(
                &a,
                &for_people(&["alice@example.com"], iv("2030-01-02T12:30:00Z", "2030-01-02T13:30:00Z")),
                now(),
            )
            .await,
    );
    // A three-week absence blocks every day of it, and a window deep inside it sees it.
    let away = NewBusyBlock { interval: iv("2030-02-01T00:00:00Z", "2030-02-22T00:00:00Z"), source: "manual".into() };
    store.add_busy_blocks(&a, &alice.id, &[away]).await.unwrap();
    let deep_day = iv("2030-02-18T00:00:00Z", "2030-02-19T00:00:00Z");
    refused(
        store
            .create_booking(
                &a,
                &for_people(&["alice@example.com"], iv("2030-02-18T10:00:00Z", "2030-02-18T11:00:00Z")),
                now(),
            )
            .await,
    );
    let deep = store.load_party(&a, &who, deep_day, now()).await.unwrap();
    let merged = kairos_core::interval::merge(deep.busy[0].to_vec());
    assert!(merged.iter().any(|b| b.contains(&deep_day)), "the absence covers the whole day: {merged:?}");
    store
        .create_booking(
            &a,
            &for_people(&["alice@example.com"], iv("2030-02-22T00:00:00Z", "2030-02-22T01:00:00Z")),
            now(),
        )
        .await
        .unwrap();
}
pub async fn cancel_frees_time_and_is_idempotent(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let alice = user("alice@example.com");
    store.insert_user(&a, &alice).await.unwrap();
    let slot = iv("2030-01-02T10:00:00Z", "2030-01-02T10:30:00Z");
    let b = store.create_booking(&a, &for_people(&["alice@example.com"], slot), now()).await.unwrap();
    let later = now() + SignedDuration::from_mins(5);
    let c1 = store.cancel_booking(&a, &b.id, Some("ill"), later).await.unwrap();
    assert_eq!(
        (c1.status, c1.cancellation_reason.as_deref(), c1.cancelled_at),
        (BookingStatus::Cancelled, Some("ill"), Some(later))
    );
    let c2 = store.cancel_booking(&a, &b.id, Some("again"), later + SignedDuration::from_mins(1)).await.unwrap();
    assert_eq!(c1, c2, "the second cancel changes nothing");
    let types: Vec<String> = all_events(&store, &a).await.into_iter().map(|e| e.event_type).collect();
    assert_eq!(types, ["booking.cancelled", "booking.created"]);
    store.create_booking(&a, &for_people(&["alice@example.com"], slot), now()).await.unwrap();
    assert!(matches!(
        store.cancel_booking(&a, "bkg_missing", None, now()).await,
        Err(BookingError::Store(StoreError::NotFound))
    ));
}

pub async fn reschedule_ignores_its_own_time_and_respects_others(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let alice = user("alice@example.com");
    store.insert_user(&a, &alice).await.unwrap();
    let b = store
        .create_booking(
            &a,
            &for_people(&["alice@example.com"], iv("2030-01-02T10:00:00Z", "2030-01-02T11:00:00Z")),
            now(),
        )
        .await
        .unwrap();
    store
        .create_booking(
            &a,
            &for_people(&["alice@example.com"], iv("2030-01-02T12:00:00Z", "2030-01-02T13:00:00Z")),
            now(),
        )
        .await
        .unwrap();
    let moved =
        store.reschedule_booking(&a, &b.id, iv("2030-01-02T10:30:00Z", "2030-01-02T11:30:00Z"), now()).await.unwrap();
    assert_eq!((moved.start_time, moved.end_time), (at("2030-01-02T10:30:00Z"), at("2030-01-02T11:30:00Z")));
    refused(store.reschedule_booking(&a, &b.id, iv("2030-01-02T11:30:00Z", "2030-01-02T12:30:00Z"), now()).await);
    assert_eq!(
        store.booking(&a, &b.id).await.unwrap().unwrap().start_time,
        at("2030-01-02T10:30:00Z"),
        "a refused move changes nothing"
    );
    let events = all_events(&store, &a).await;
    assert_eq!(events.iter().filter(|e| e.event_type == "booking.updated").count(), 1);
    store.cancel_booking(&a, &b.id, None, now()).await.unwrap();
    assert!(matches!(
        store.reschedule_booking(&a, &b.id, iv("2030-01-03T10:00:00Z", "2030-01-03T11:00:00Z"), now()).await,
        Err(BookingError::Cancelled)
    ));
}

pub async fn payment_holds_expire(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let alice = user("alice@example.com");
    store.insert_user(&a, &alice).await.unwrap();
    let mut biz = business(&[&alice]);
    biz.price_amount = Some(5000);
    biz.price_currency = Some("usd".into());
    store.insert_business(&a, &biz).await.unwrap();
    let slot = iv("2030-01-02T10:00:00Z", "2030-01-02T10:30:00Z");
    let held = store.create_booking(&a, &for_business(&biz, slot), now()).await.unwrap();
    assert_eq!(held.status, BookingStatus::PendingPayment);
    assert_eq!(held.hold_expires_at, Some(now() + PAYMENT_HOLD));
    assert_eq!((held.payment_amount, held.payment_currency.as_deref()), (Some(5000), Some("usd")));
    refused(store.create_booking(&a, &for_business(&biz, slot), now() + SignedDuration::from_mins(29)).await);
    store.create_booking(&a, &for_business(&biz, slot), now() + SignedDuration::from_mins(31)).await.unwrap();
}

pub async fn booking_filters_select_and_paginate(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let alice = user("alice@example.com");
    store.insert_user(&a, &alice).await.unwrap();
    let one = business(&[&alice]);
    let two = business(&[]);
    store.insert_business(&a, &one).await.unwrap();
    store.insert_business(&a, &two).await.unwrap();
    let b1 = store
        .create_booking(&a, &for_business(&one, iv("2030-01-02T10:00:00Z", "2030-01-02T10:30:00Z")), now())
        .await
        .unwrap();
    let mut other = for_business(&two, iv("2030-01-03T10:00:00Z", "2030-01-03T10:30:00Z"));
    other.customer_email = Some("max@example.com".into());
    let b2 = store.create_booking(&a, &other, now()).await.unwrap();
    let b3 = store
        .create_booking(&a, &for_business(&one, iv("2030-01-04T10:00:00Z", "2030-01-04T10:30:00Z")), now())
        .await
        .unwrap();
    store.cancel_booking(&a, &b3.id, None, now()).await.unwrap();
    let ids = |page: Page<Booking>| page.data.into_iter().map(|b| b.id).collect::<Vec<_>>();
    let all = PageRequest { limit: 10, cursor: None };
    let list = |f: BookingFilter| {
        let (store, a, all) = (store.clone(), a.clone(), all.clone());
        async move { ids(store.bookings(&a, &f, &all).await.unwrap()) }
    };
    assert_eq!(list(BookingFilter::default()).await, [b3.id.clone(), b2.id.clone(), b1.id.clone()]);
    assert_eq!(
        list(BookingFilter { business_id: Some(one.id.clone()), ..Default::default() }).await,
        [b3.id.clone(), b1.id.clone()]
    );
    assert_eq!(
        list(BookingFilter { status: Some(BookingStatus::Cancelled), ..Default::default() }).await,
        vec![b3.id.clone()]
    );
    assert_eq!(
        list(BookingFilter { customer_email: Some("max@example.com".into()), ..Default::default() }).await,
        vec![b2.id.clone()]
    );
    assert_eq!(
        list(BookingFilter {
            from: Some(at("2030-01-02T10:15:00Z")),
            to: Some(at("2030-01-03T10:00:00Z")),
            ..Default::default()
        })
        .await,
        vec![b1.id.clone()]
    );
    let page = store.bookings(&a, &BookingFilter::default(), &PageRequest { limit: 2, cursor: None }).await.unwrap();
    assert_eq!(page.next_cursor.as_deref(), Some(b2.id.as_str()));
    let rest = store
        .bookings(&a, &BookingFilter::default(), &PageRequest { limit: 2, cursor: page.next_cursor })
        .await
        .unwrap();
    assert_eq!((ids(rest.clone()), rest.next_cursor), (vec![b1.id], None));
}

pub async fn the_daily_cap_is_enforced_in_the_transaction(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let mut biz = business(&[]);
    biz.max_bookings_per_day = Some(2);
    biz.schedule.timezone = Zone::parse("America/New_York").unwrap();
    store.insert_business(&a, &biz).await.unwrap();
    // 2030-01-02 in New York runs from 05:00Z to 05:00Z the next day.
    store
        .create_booking(&a, &for_business(&biz, iv("2030-01-02T06:00:00Z", "2030-01-02T06:30:00Z")), now())
        .await
        .unwrap();
    store
        .create_booking(&a, &for_business(&biz, iv("2030-01-03T04:00:00Z", "2030-01-03T04:30:00Z")), now())
        .await
        .unwrap();
    let r = refused(
        store.create_booking(&a, &for_business(&biz, iv("2030-01-02T15:00:00Z", "2030-01-02T15:30:00Z")), now()).await,
    );
    assert_eq!(r.reason, Unavailable::DailyLimitReached { max: 2 });
    store
        .create_booking(&a, &for_business(&biz, iv("2030-01-03T05:00:00Z", "2030-01-03T05:30:00Z")), now())
        .await
        .unwrap();
}

pub async fn any_mode_books_one_free_host(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let alice = user("alice@example.com");
    let bob = user("bob@example.com");
    store.insert_user(&a, &alice).await.unwrap();
    store.insert_user(&a, &bob).await.unwrap();
    let biz = business(&[&alice, &bob]);
    store.insert_business(&a, &biz).await.unwrap();
    let slot = iv("2030-01-02T10:00:00Z", "2030-01-02T10:30:00Z");
    let mut any = for_business(&biz, slot);
    any.mode = SearchMode::Any;
    let first = store.create_booking(&a, &any, now()).await.unwrap();
    let second = store.create_booking(&a, &any, now()).await.unwrap();
    let hosts = |b: &Booking| b.participants.iter().map(|p| p.email.clone()).collect::<Vec<_>>();
    assert_eq!(
        (hosts(&first), hosts(&second)),
        (vec!["alice@example.com".to_string()], vec!["bob@example.com".to_string()])
    );
    refused(store.create_booking(&a, &any, now()).await);
}

pub async fn a_refused_booking_writes_nothing(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let mut biz = business(&[]);
    biz.minimum_notice_minutes = 120;
    biz.schedule.working_hours = WorkingHours::business_days_nine_to_five();
    store.insert_business(&a, &biz).await.unwrap();
    let cases = [
        (iv("2029-12-31T10:00:00Z", "2029-12-31T10:30:00Z"), Unavailable::InPast),
        (
            iv("2030-01-01T09:00:00Z", "2030-01-01T09:30:00Z"),
            Unavailable::TooSoon { minimum_notice: SignedDuration::from_mins(120) },
        ),
        (iv("2030-01-02T16:45:00Z", "2030-01-02T17:15:00Z"), Unavailable::OutsideWorkingHours { member: None }),
        (iv("2030-01-05T10:00:00Z", "2030-01-05T10:30:00Z"), Unavailable::OutsideWorkingHours { member: None }),
    ];
    for (slot, reason) in cases {
        assert_eq!(refused(store.create_booking(&a, &for_business(&biz, slot), now()).await).reason, reason);
    }
    assert!(store.bookings(&a, &BookingFilter::default(), &PageRequest::default()).await.unwrap().data.is_empty());
    assert!(all_events(&store, &a).await.is_empty());
}

pub async fn idempotency_keys_claim_replay_and_expire(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let b = tenant(&store, "globex", Mode::Test).await;
    let t0 = now();
    let claimed = |c: IdempotencyClaim| match c {
        IdempotencyClaim::Claimed(token) => token,
        other => panic!("expected a claim, got {other:?}"),
    };
    let k1 = claimed(store.claim_idempotency_key(&a, "k1", "f1", t0).await.unwrap());
    assert_eq!(store.claim_idempotency_key(&a, "k1", "f1", t0).await.unwrap(), IdempotencyClaim::InProgress);
    claimed(store.claim_idempotency_key(&b, "k1", "f1", t0).await.unwrap());
    let response = StoredResponse { status: 201, body: "{\"id\":\"bkg_1\"}".into() };
    assert!(
        !store.complete_idempotency_key(&a, "k1", "not-the-token", &response).await.unwrap(),
        "only the owner completes"
    );
    assert!(store.complete_idempotency_key(&a, "k1", &k1, &response).await.unwrap());
    assert_eq!(store.claim_idempotency_key(&a, "k1", "f1", t0).await.unwrap(), IdempotencyClaim::Completed(response));
    assert_eq!(store.claim_idempotency_key(&a, "k1", "f2", t0).await.unwrap(), IdempotencyClaim::Mismatch);
    claimed(
        store.claim_idempotency_key(&a, "k1", "f2", t0 + IDEMPOTENCY_TTL + SignedDuration::from_secs(1)).await.unwrap(),
    );
    // A claim whose owner vanished can be taken over after the lease; the old owner then
    // cannot complete or release the new claim.
    let old = claimed(store.claim_idempotency_key(&a, "k2", "f", t0).await.unwrap());
    let new = claimed(
        store
            .claim_idempotency_key(&a, "k2", "f", t0 + IDEMPOTENCY_LEASE + SignedDuration::from_secs(1))
            .await
            .unwrap(),
    );
    assert_ne!(old, new);
    store.release_idempotency_key(&a, "k2", &old).await.unwrap();
    assert_eq!(
        store.claim_idempotency_key(&a, "k2", "f", t0 + IDEMPOTENCY_LEASE).await.unwrap(),
        IdempotencyClaim::InProgress
    );
    assert!(
        !store
            .complete_idempotency_key(&a, "k2", &old, &StoredResponse { status: 200, body: String::new() })
            .await
            .unwrap()
    );
    // A released claim can be claimed again at once.
    let k3 = claimed(store.claim_idempotency_key(&a, "k3", "f", t0).await.unwrap());
    store.release_idempotency_key(&a, "k3", &k3).await.unwrap();
    claimed(store.claim_idempotency_key(&a, "k3", "f", t0).await.unwrap());
}

pub async fn unknown_parties_are_reported(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    store.insert_user(&a, &user("alice@example.com")).await.unwrap();
    let window = iv("2030-01-02T00:00:00Z", "2030-01-03T00:00:00Z");
    let who = Who { business_id: Some("biz_missing".into()), ..Who::default() };
    assert!(matches!(
        store.load_party(&a, &who, window, now()).await,
        Err(BookingError::Party(PartyError::UnknownBusiness))
    ));
    let who = Who {
        participants: vec![UserRef::Email("alice@example.com".into()), UserRef::Email("zed@example.com".into())],
        ..Who::default()
    };
    assert!(matches!(
        store.load_party(&a, &who, window, now()).await,
        Err(BookingError::Party(PartyError::UnknownParticipant(1)))
    ));
    assert!(matches!(
        store.load_party(&a, &Who::default(), window, now()).await,
        Err(BookingError::Party(PartyError::Nobody))
    ));
    let r = store.create_booking(&a, &for_people(&["zed@example.com"], window), now()).await;
    assert!(matches!(r, Err(BookingError::Party(PartyError::UnknownParticipant(0)))));
}

/// Short bookings first, then a long one, then short ones reaching into the long one's end
/// from far after its start: stores that bound their overlap scans by the longest hold seen
/// must have raised it.
pub async fn long_holds_reach_as_far_as_they_last(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let alice = user("alice@example.com");
    store.insert_user(&a, &alice).await.unwrap();
    let mut biz = business(&[&alice]);
    biz.buffer_after_minutes = 60;
    store.insert_business(&a, &biz).await.unwrap();
    let bob = user("bob@example.com");
    store.insert_user(&a, &bob).await.unwrap();
    for hour in ["01", "03", "05"] {
        let start = format!("2030-01-02T{hour}:00:00Z");
        let end = format!("2030-01-02T{hour}:30:00Z");
        store.create_booking(&a, &for_business(&biz, iv(&start, &end)), now()).await.unwrap();
    }
    // 22 hours and its hour of buffer: held until 2030-01-04T05:00.
    store
        .create_booking(&a, &for_business(&biz, iv("2030-01-03T06:00:00Z", "2030-01-04T04:00:00Z")), now())
        .await
        .unwrap();
    let late = iv("2030-01-04T04:30:00Z", "2030-01-04T04:45:00Z");
    refused(store.create_booking(&a, &for_business(&biz, late), now()).await);
    refused(store.create_booking(&a, &for_people(&["alice@example.com"], late), now()).await);
    // Bob's long booking, moved later by a reschedule, holds his time the same way.
    let long = store
        .create_booking(
            &a,
            &for_people(&["bob@example.com"], iv("2030-01-05T01:00:00Z", "2030-01-05T01:30:00Z")),
            now(),
        )
        .await
        .unwrap();
    store.reschedule_booking(&a, &long.id, iv("2030-01-05T02:00:00Z", "2030-01-05T23:00:00Z"), now()).await.unwrap();
    refused(
        store
            .create_booking(
                &a,
                &for_people(&["bob@example.com"], iv("2030-01-05T22:30:00Z", "2030-01-05T23:30:00Z")),
                now(),
            )
            .await,
    );
    store
        .create_booking(
            &a,
            &for_people(&["bob@example.com"], iv("2030-01-05T23:00:00Z", "2030-01-05T23:30:00Z")),
            now(),
        )
        .await
        .unwrap();
}

pub async fn buffers_keep_time_around_bookings(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let alice = user("alice@example.com");
    store.insert_user(&a, &alice).await.unwrap();
    let mut biz = business(&[&alice]);
    biz.buffer_before_minutes = 5;
    biz.buffer_after_minutes = 10;
    store.insert_business(&a, &biz).await.unwrap();
    store
        .create_booking(&a, &for_business(&biz, iv("2030-01-02T10:00:00Z", "2030-01-02T10:30:00Z")), now())
        .await
        .unwrap();
    // After it: its 10 minutes after plus the next booking's 5 before.
    refused(
        store.create_booking(&a, &for_business(&biz, iv("2030-01-02T10:40:00Z", "2030-01-02T11:00:00Z")), now()).await,
    );
    store
        .create_booking(&a, &for_business(&biz, iv("2030-01-02T10:45:00Z", "2030-01-02T11:00:00Z")), now())
        .await
        .unwrap();
    // Before it: the new booking's 10 after plus its 5 before.
    refused(
        store.create_booking(&a, &for_business(&biz, iv("2030-01-02T09:30:00Z", "2030-01-02T09:50:00Z")), now()).await,
    );
    store
        .create_booking(&a, &for_business(&biz, iv("2030-01-02T09:15:00Z", "2030-01-02T09:45:00Z")), now())
        .await
        .unwrap();
    // Calendar busy time only meets the new booking's own buffers.
    store
        .add_busy_blocks(
            &a,
            &alice.id,
            &[NewBusyBlock { interval: iv("2030-01-02T13:00:00Z", "2030-01-02T14:00:00Z"), source: "manual".into() }],
        )
        .await
        .unwrap();
    refused(
        store.create_booking(&a, &for_business(&biz, iv("2030-01-02T14:00:00Z", "2030-01-02T14:30:00Z")), now()).await,
    );
    store
        .create_booking(&a, &for_business(&biz, iv("2030-01-02T14:05:00Z", "2030-01-02T14:30:00Z")), now())
        .await
        .unwrap();
    // A booking made through the participants shape meets the business's bookings' buffers too.
    refused(
        store
            .create_booking(
                &a,
                &for_people(&["alice@example.com"], iv("2030-01-02T11:00:00Z", "2030-01-02T11:05:00Z")),
                now(),
            )
            .await,
    );
}

/// A store may keep what bookings read between writes (the SQLite writer does); every change to
/// a business or a person must reach the next booking all the same.
pub async fn a_booking_sees_the_business_and_people_as_they_are_now(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let (alice, bob) = (user("alice@example.com"), user("bob@example.com"));
    store.insert_user(&a, &alice).await.unwrap();
    store.insert_user(&a, &bob).await.unwrap();
    let biz = business(&[&alice]);
    store.insert_business(&a, &biz).await.unwrap();
    let ten = iv("2030-01-02T10:00:00Z", "2030-01-02T10:30:00Z");
    let first = store.create_booking(&a, &for_business(&biz, ten), now()).await.unwrap();
    assert_eq!(first.participants[0].id, alice.id);
    let bob_id = bob.id.clone();
    store
        .update_business(
            &a,
            &biz.id,
            Box::new(move |b| {
                b.hosts = vec![bob_id];
                b.buffer_after_minutes = 30;
                Ok(())
            }),
        )
        .await
        .unwrap();
    let second = store.create_booking(&a, &for_business(&biz, ten), now()).await.unwrap();
    assert_eq!(second.participants[0].id, bob.id, "the new host is booked");
    // Bob's 10:00 booking now keeps 30 minutes after it.
    refused(
        store.create_booking(&a, &for_business(&biz, iv("2030-01-02T10:45:00Z", "2030-01-02T11:00:00Z")), now()).await,
    );
    store
        .update_user(
            &a,
            &bob.id,
            Box::new(|u| {
                u.email = "robert@example.com".into();
                u.schedule =
                    Schedule::new(Zone::utc(), WorkingHours::business_days_nine_to_five(), DateOverrides::default());
                Ok(())
            }),
        )
        .await
        .unwrap();
    refused(
        store.create_booking(&a, &for_business(&biz, iv("2030-01-02T18:00:00Z", "2030-01-02T18:30:00Z")), now()).await,
    );
    let third = store
        .create_booking(&a, &for_business(&biz, iv("2030-01-02T14:00:00Z", "2030-01-02T14:30:00Z")), now())
        .await
        .unwrap();
    assert_eq!(third.participants[0].email, "robert@example.com", "the host's new email is booked");
    assert!(store.delete_user(&a, &bob.id).await.unwrap());
    let fourth = store
        .create_booking(&a, &for_business(&biz, iv("2030-01-02T16:00:00Z", "2030-01-02T16:30:00Z")), now())
        .await
        .unwrap();
    assert!(fourth.participants.is_empty(), "a deleted host is no longer booked");
}

pub async fn a_business_without_hosts_keeps_its_bookings_time(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let mut room = business(&[]);
    store.insert_business(&a, &room).await.unwrap();
    store
        .create_booking(&a, &for_business(&room, iv("2030-01-02T10:00:00Z", "2030-01-02T11:00:00Z")), now())
        .await
        .unwrap();
    let later = store
        .create_booking(&a, &for_business(&room, iv("2030-01-02T12:00:00Z", "2030-01-02T13:00:00Z")), now())
        .await
        .unwrap();
    // Moving a booking onto another one of the same room is refused.
    refused(store.reschedule_booking(&a, &later.id, iv("2030-01-02T10:30:00Z", "2030-01-02T11:30:00Z"), now()).await);
    // Hosts added later do not release what the room already holds.
    let alice = user("alice@example.com");
    store.insert_user(&a, &alice).await.unwrap();
    let host = alice.id.clone();
    room = store
        .update_business(
            &a,
            &room.id,
            Box::new(move |b| {
                b.hosts = vec![host];
                Ok(())
            }),
        )
        .await
        .unwrap();
    let r = refused(
        store.create_booking(&a, &for_business(&room, iv("2030-01-02T10:30:00Z", "2030-01-02T11:00:00Z")), now()).await,
    );
    assert_eq!(r.reason, Unavailable::Busy { member: None });
    let party = store
        .load_party(
            &a,
            &Who { business_id: Some(room.id.clone()), ..Who::default() },
            iv("2030-01-02T00:00:00Z", "2030-01-03T00:00:00Z"),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(within(&party.base_busy, iv("2030-01-02T00:00:00Z", "2030-01-03T00:00:00Z")).len(), 2);
    // Bookings made with the host hold the host, not the room.
    let with_host = store
        .create_booking(&a, &for_business(&room, iv("2030-01-02T14:00:00Z", "2030-01-02T15:00:00Z")), now())
        .await
        .unwrap();
    assert_eq!(with_host.participants.len(), 1);
}

pub async fn any_mode_books_named_people_and_one_free_host(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let (alice, bob, carol) = (user("alice@example.com"), user("bob@example.com"), user("carol@example.com"));
    for u in [&alice, &bob, &carol] {
        store.insert_user(&a, u).await.unwrap();
    }
    let biz = business(&[&alice, &bob]);
    store.insert_business(&a, &biz).await.unwrap();
    let slot = iv("2030-01-02T10:00:00Z", "2030-01-02T10:30:00Z");
    store.create_booking(&a, &for_people(&["alice@example.com"], slot), now()).await.unwrap();
    let mut any = for_business(&biz, slot);
    any.mode = SearchMode::Any;
    any.who.participants = vec![UserRef::Email("carol@example.com".into())];
    let booked = store.create_booking(&a, &any, now()).await.unwrap();
    let emails: Vec<&str> = booked.participants.iter().map(|p| p.email.as_str()).collect();
    assert_eq!(emails, ["bob@example.com", "carol@example.com"], "a free host and the named guest");
    // Carol is now busy: no host can take her place.
    let mut again = any.clone();
    again.interval = iv("2030-01-02T10:15:00Z", "2030-01-02T10:45:00Z");
    let r = refused(store.create_booking(&a, &again, now()).await);
    assert_eq!(r.who.as_deref(), Some("carol@example.com"));
}

/// A lease is one holder's until it lapses or is released; its holder may extend it.
pub async fn leases_exclude_other_holders_until_they_lapse(store: S) {
    let (t0, minute) = (now(), SignedDuration::from_mins(1));
    let until = t0 + minute;
    assert!(store.try_lease("sync:conn_1", "node_a", until, t0).await.unwrap());
    assert!(!store.try_lease("sync:conn_1", "node_b", until, t0).await.unwrap(), "held by another");
    assert!(store.try_lease("sync:conn_2", "node_b", until, t0).await.unwrap(), "keys are independent");
    assert!(store.try_lease("sync:conn_1", "node_a", until + minute, t0).await.unwrap(), "its holder extends it");
    // Lapsed: anyone may take it.
    assert!(!store.try_lease("sync:conn_1", "node_b", until + minute, until).await.unwrap(), "extended");
    assert!(store.try_lease("sync:conn_1", "node_b", until + minute * 3, until + minute).await.unwrap());
    // Only the holder releases.
    store.release_lease("sync:conn_1", "node_a").await.unwrap();
    assert!(!store.try_lease("sync:conn_1", "node_c", until + minute * 3, until + minute).await.unwrap());
    store.release_lease("sync:conn_1", "node_b").await.unwrap();
    assert!(store.try_lease("sync:conn_1", "node_c", until + minute * 3, until + minute).await.unwrap());
}
