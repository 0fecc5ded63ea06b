//! The contract's email and payment cases: booking changes queue one email per recipient with
//! the newest state, claims are exclusive, outcomes of stale versions do not stick; payments
//! confirm holds once, and unpaid holds end.

use super::*;

fn paid_business(hosts: &[&User]) -> Business {
    let mut biz = business(hosts);
    biz.price_amount = Some(5000);
    biz.price_currency = Some("usd".into());
    biz
}

async fn claim_all(store: &S, at: Timestamp) -> Vec<(Tenant, BookingEmail)> {
    store.claim_emails(at, SignedDuration::from_mins(2), 100).await.unwrap()
}

pub async fn booking_changes_queue_one_email_per_recipient(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let alice = user("alice@example.com");
    store.insert_user(&a, &alice).await.unwrap();
    let biz = business(&[&alice]);
    store.insert_business(&a, &biz).await.unwrap();
    let mut new = for_business(&biz, iv("2030-01-02T10:00:00Z", "2030-01-02T10:30:00Z"));
    new.customer_email = Some("Jane@Example.com".into());
    let booking = store.create_booking(&a, &new, now()).await.unwrap();

    let queued = store.booking_emails(&a, &booking.id).await.unwrap();
    let who: Vec<(&str, Option<&str>)> = queued.iter().map(|e| (e.recipient.as_str(), e.user_id.as_deref())).collect();
    assert_eq!(who, [("jane@example.com", None), ("alice@example.com", Some(alice.id.as_str()))], "customer first");
    assert!(queued.iter().all(|e| e.kind == EmailKind::Confirmation && e.version == 0 && e.status == "pending"));
    let globex = tenant(&store, "globex", Mode::Test).await;
    assert!(store.booking_emails(&globex, &booking.id).await.unwrap().is_empty(), "tenants see their own");

    // Claimed once until the lease lapses.
    let claimed = claim_all(&store, now()).await;
    assert_eq!(claimed.len(), 2);
    assert_eq!(claimed[0].0, a);
    assert!(claim_all(&store, now() + SignedDuration::from_mins(1)).await.is_empty(), "leased");
    for (t, e) in &claimed {
        store.record_email(t, e, &EmailOutcome::Sent, now()).await.unwrap();
    }
    let sent = store.booking_emails(&a, &booking.id).await.unwrap();
    assert!(sent.iter().all(|e| e.status == "sent" && e.sent_version == Some(0) && e.sent_at == Some(now())));
    assert!(claim_all(&store, now() + SignedDuration::from_hours(1)).await.is_empty(), "nothing left");

    // A reschedule wants an update with a higher sequence; a cancel, a cancellation.
    let later = iv("2030-01-02T11:00:00Z", "2030-01-02T11:30:00Z");
    store.reschedule_booking(&a, &booking.id, later, now()).await.unwrap();
    let moved = store.booking_emails(&a, &booking.id).await.unwrap();
    assert!(moved.iter().all(|e| e.kind == EmailKind::Updated && e.version == 1 && e.status == "pending"));
    let (t, update) = claim_all(&store, now()).await.remove(0);
    // The booking is cancelled while the update is being sent: the update's outcome does not
    // end the row, the cancellation still goes.
    store.cancel_booking(&a, &booking.id, Some("ill"), now()).await.unwrap();
    store.record_email(&t, &update, &EmailOutcome::Sent, now()).await.unwrap();
    let after = store.booking_emails(&a, &booking.id).await.unwrap();
    let row = after.iter().find(|e| e.recipient == update.recipient).unwrap();
    assert_eq!(
        (row.kind, row.version, row.sent_version, row.status.as_str()),
        (EmailKind::Cancelled, 2, Some(1), "pending")
    );
    assert_eq!(claim_all(&store, now() + SignedDuration::from_mins(5)).await.len(), 2, "both cancellations are due");
}

/// Without a mail server every booking email ends skipped for the reason given: at once in the
/// booking's transaction where the backend says it does that, else after the sweep. Versions
/// still count up.
pub async fn emails_without_a_mail_server_end_skipped(store: S) {
    const WHY: &str = "no mail server";
    let a = tenant(&store, "acme", Mode::Test).await;
    let alice = user("alice@example.com");
    store.insert_user(&a, &alice).await.unwrap();
    let biz = business(&[&alice]);
    store.insert_business(&a, &biz).await.unwrap();
    let at_once = store.skip_emails_as_queued(WHY);
    store.skip_emails_as_queued("a later reason does not replace the first");
    let booking = store
        .create_booking(&a, &for_business(&biz, iv("2030-01-02T10:00:00Z", "2030-01-02T10:30:00Z")), now())
        .await
        .unwrap();
    let ended = |kind: EmailKind, version: i64| {
        move |emails: Vec<BookingEmail>| {
            assert_eq!(emails.len(), 2, "one per recipient");
            for e in emails {
                assert_eq!(
                    (e.kind, e.version, e.status.as_str(), e.last_error.as_deref(), e.sent_version),
                    (kind, version, "skipped", Some(WHY), None)
                );
            }
        }
    };
    // Where the backend skips as it queues, the sweep finds nothing left.
    let sweep = || async {
        let swept = store.skip_due_emails(now(), WHY).await.unwrap();
        assert!(!at_once || swept == 0, "{swept} emails were left pending");
    };
    sweep().await;
    ended(EmailKind::Confirmation, 0)(store.booking_emails(&a, &booking.id).await.unwrap());
    assert!(claim_all(&store, now() + SignedDuration::from_hours(1)).await.is_empty(), "nothing to send");

    let later = iv("2030-01-02T11:00:00Z", "2030-01-02T11:30:00Z");
    store.reschedule_booking(&a, &booking.id, later, now()).await.unwrap();
    sweep().await;
    ended(EmailKind::Confirmation, 1)(store.booking_emails(&a, &booking.id).await.unwrap());
    store.cancel_booking(&a, &booking.id, None, now()).await.unwrap();
    sweep().await;
    ended(EmailKind::Cancelled, 2)(store.booking_emails(&a, &booking.id).await.unwrap());
    assert!(claim_all(&store, now() + SignedDuration::from_hours(1)).await.is_empty(), "nothing to send");
}

pub async fn email_failures_retry_then_fail_and_skips_stick(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let (alice, bob) = (user("alice@example.com"), user("bob@example.com"));
    store.insert_user(&a, &alice).await.unwrap();
    store.insert_user(&a, &bob).await.unwrap();
    let booking = store
        .create_booking(
            &a,
            &for_people(&["alice@example.com", "bob@example.com"], iv("2030-01-02T10:00:00Z", "2030-01-02T11:00:00Z")),
            now(),
        )
        .await
        .unwrap();
    let mut claimed = claim_all(&store, now()).await;
    assert_eq!(claimed.len(), 2, "one per participant; no customer");
    claimed.sort_by(|x, y| x.1.recipient.cmp(&y.1.recipient));
    let (t, skipped) = claimed.remove(1);
    store
        .record_email(&t, &skipped, &EmailOutcome::Skipped("no SMTP server is configured".into()), now())
        .await
        .unwrap();
    let (t, failing) = claimed.remove(0);
    let retry = now() + SignedDuration::from_mins(1);
    let failure = EmailOutcome::Failed { error: "451 try later".into(), retry_at: Some(retry) };
    store.record_email(&t, &failing, &failure, now()).await.unwrap();
    assert!(claim_all(&store, now()).await.is_empty(), "not before its retry time");
    let again = claim_all(&store, retry).await;
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].1.attempts, again[0].1.last_error.as_deref()), (1, Some("451 try later")));
    let gave_up = EmailOutcome::Failed { error: "550 no such mailbox".into(), retry_at: None };
    store.record_email(&t, &again[0].1, &gave_up, retry).await.unwrap();
    let rows = store.booking_emails(&a, &booking.id).await.unwrap();
    let status =
        |email: &str| rows.iter().find(|e| e.recipient == email).map(|e| (e.status.clone(), e.last_error.clone()));
    assert_eq!(status("alice@example.com"), Some(("failed".into(), Some("550 no such mailbox".into()))));
    assert_eq!(status("bob@example.com"), Some(("skipped".into(), Some("no SMTP server is configured".into()))));

    // Without SMTP, every due email is skipped at once; leased ones and later ones wait.
    let moved = iv("2030-01-02T12:00:00Z", "2030-01-02T13:00:00Z");
    store.reschedule_booking(&a, &booking.id, moved, retry).await.unwrap();
    let leased = store.claim_emails(retry, SignedDuration::from_mins(2), 1).await.unwrap().remove(0);
    assert_eq!(store.skip_due_emails(retry - SignedDuration::from_secs(1), "no SMTP").await.unwrap(), 0, "not due yet");
    assert_eq!(store.skip_due_emails(retry, "no SMTP").await.unwrap(), 1, "the one not leased");
    let rows = store.booking_emails(&a, &booking.id).await.unwrap();
    let other = rows.iter().find(|e| e.recipient != leased.1.recipient).unwrap();
    assert_eq!((other.status.as_str(), other.last_error.as_deref()), ("skipped", Some("no SMTP")));
}

pub async fn booking_emails_are_recorded_only_under_their_current_lease(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let alice = user("alice@example.com");
    store.insert_user(&a, &alice).await.unwrap();
    let b = store
        .create_booking(
            &a,
            &for_people(&["alice@example.com"], iv("2030-01-02T10:00:00Z", "2030-01-02T10:30:00Z")),
            now(),
        )
        .await
        .unwrap();
    let lease = SignedDuration::from_mins(2);
    let lapsed = now() + lease;
    let row = async || store.booking_emails(&a, &b.id).await.unwrap().remove(0);

    // Claimed once until its lease lapses; the claim carries the lease it wrote.
    let (t, first) = store.claim_emails(now(), lease, 10).await.unwrap().remove(0);
    assert_eq!(first.lease, Some(lapsed));
    assert!(claim_all(&store, lapsed - SignedDuration::from_millis(1)).await.is_empty(), "leased");

    // The first worker's SMTP server stalls past its lease and a second worker claims the
    // email: the first one's outcome then changes nothing, and the row stays the second's.
    let (_, second) = store.claim_emails(lapsed, lease, 10).await.unwrap().remove(0);
    assert_ne!(second.lease, first.lease);
    assert!(!store.record_email(&t, &first, &EmailOutcome::Sent, lapsed).await.unwrap());
    let gave_up = EmailOutcome::Failed { error: "550 no such mailbox".into(), retry_at: None };
    assert!(!store.record_email(&t, &first, &gave_up, lapsed).await.unwrap());
    let held = row().await;
    assert_eq!((held.status.as_str(), held.sent_version, held.attempts, held.sent_at), ("pending", None, 0, None));
    assert_eq!(held.lease, second.lease);
    assert!(claim_all(&store, lapsed).await.is_empty(), "still the second's");
    // The booking moves while the second sends: its send counts for the version it sent, and
    // the new time still wants its email (an invitation: none had gone out when it moved).
    let moved = iv("2030-01-02T11:00:00Z", "2030-01-02T11:30:00Z");
    store.reschedule_booking(&a, &b.id, moved, lapsed).await.unwrap();
    assert!(store.record_email(&t, &second, &EmailOutcome::Sent, lapsed).await.unwrap());
    let after = row().await;
    assert_eq!(
        (after.kind, after.version, after.sent_version, after.status.as_str(), after.lease),
        (EmailKind::Confirmation, 1, Some(0), "pending", None)
    );
    assert!(!store.record_email(&t, &second, &gave_up, lapsed).await.unwrap(), "its record released it");

    // The usual path: the update is claimed and recorded.
    let (_, update) = store.claim_emails(lapsed, lease, 10).await.unwrap().remove(0);
    assert!(store.record_email(&t, &update, &EmailOutcome::Sent, lapsed).await.unwrap());
    let sent = row().await;
    assert_eq!((sent.status.as_str(), sent.sent_version, sent.lease), ("sent", Some(1), None));

    // Even a claim with no lease to speak of fences the one before it.
    store.cancel_booking(&a, &b.id, None, lapsed).await.unwrap();
    let (_, brief) = store.claim_emails(lapsed, SignedDuration::ZERO, 10).await.unwrap().remove(0);
    let (_, next) = store.claim_emails(lapsed, SignedDuration::ZERO, 10).await.unwrap().remove(0);
    assert_ne!(next.lease, brief.lease);
    assert!(!store.record_email(&t, &brief, &EmailOutcome::Sent, lapsed).await.unwrap());
    assert!(store.record_email(&t, &next, &EmailOutcome::Sent, lapsed).await.unwrap());
    assert_eq!((row().await.kind, row().await.status.as_str()), (EmailKind::Cancelled, "sent"));
}

pub async fn emails_keep_the_times_they_gave(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    store.insert_user(&a, &user("alice@example.com")).await.unwrap();
    let first = iv("2030-01-02T10:00:00Z", "2030-01-02T10:30:00Z");
    let b = store.create_booking(&a, &for_people(&["alice@example.com"], first), now()).await.unwrap();
    let row = async || store.booking_emails(&a, &b.id).await.unwrap().remove(0);
    assert_eq!(row().await.sent_times, None, "nothing sent yet");
    // The worker sends the invitation and records the times it gave.
    let (t, mut sent) = store.claim_emails(now(), SignedDuration::from_mins(2), 10).await.unwrap().remove(0);
    sent.sent_times = Some(first);
    assert!(store.record_email(&t, &sent, &EmailOutcome::Sent, now()).await.unwrap());
    assert_eq!(row().await.sent_times, Some(first));
    // A move re-wants the email (an update) and keeps what the recipient was last told.
    let moved = iv("2030-01-02T11:00:00Z", "2030-01-02T11:30:00Z");
    store.reschedule_booking(&a, &b.id, moved, now()).await.unwrap();
    let (t, update) = store.claim_emails(now(), SignedDuration::from_mins(2), 10).await.unwrap().remove(0);
    assert_eq!((update.kind, update.sent_times), (EmailKind::Updated, Some(first)));
    // A failure keeps them too; the next send replaces them.
    let failed = EmailOutcome::Failed { error: "421 busy".into(), retry_at: Some(now()) };
    assert!(store.record_email(&t, &update, &failed, now()).await.unwrap());
    assert_eq!(row().await.sent_times, Some(first));
    let (t, mut update) = store.claim_emails(now(), SignedDuration::from_mins(2), 10).await.unwrap().remove(0);
    update.sent_times = Some(moved);
    assert!(store.record_email(&t, &update, &EmailOutcome::Sent, now()).await.unwrap());
    assert_eq!(row().await.sent_times, Some(moved));
}

pub async fn payments_confirm_holds_once(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let alice = user("alice@example.com");
    store.insert_user(&a, &alice).await.unwrap();
    let biz = paid_business(&[&alice]);
    store.insert_business(&a, &biz).await.unwrap();
    let mut unpayable = for_business(&biz, iv("2030-01-02T10:00:00Z", "2030-01-02T10:30:00Z"));
    unpayable.payment_holds = false;
    assert!(matches!(
        store.create_booking(&a, &unpayable, now()).await,
        Err(BookingError::Store(StoreError::Refused { code: "payments_not_configured", .. }))
    ));
    assert!(all_events(&store, &a).await.is_empty(), "refused before anything is written");
    let held = store
        .create_booking(&a, &for_business(&biz, iv("2030-01-02T10:00:00Z", "2030-01-02T10:30:00Z")), now())
        .await
        .unwrap();
    assert!(store.booking_emails(&a, &held.id).await.unwrap().is_empty(), "an unpaid hold sends nothing");
    let with_url = store.set_checkout(&a, &held.id, "cs_test_1", "https://pay.example/cs_test_1", now()).await.unwrap();
    assert_eq!(with_url.checkout_url.as_deref(), Some("https://pay.example/cs_test_1"));
    let globex = tenant(&store, "globex", Mode::Test).await;
    assert!(matches!(
        store.set_checkout(&globex, &held.id, "cs_x", "https://x", now()).await,
        Err(StoreError::NotFound)
    ));

    assert!(
        store.complete_payment(&held.id, "cs_test_other", 5000, "usd", now()).await.unwrap().is_none(),
        "wrong session"
    );
    let short = store.complete_payment(&held.id, "cs_test_1", 4000, "usd", now()).await.unwrap().unwrap().1;
    assert!(matches!(short, PaymentApplied::Mismatch(ref b) if b.status == BookingStatus::PendingPayment), "{short:?}");
    let other = store.complete_payment(&held.id, "cs_test_1", 5000, "eur", now()).await.unwrap().unwrap().1;
    assert!(matches!(other, PaymentApplied::Mismatch(_)), "another currency");
    let paid_at = now() + SignedDuration::from_mins(5);
    let (t, applied) = store.complete_payment(&held.id, "cs_test_1", 5000, "usd", paid_at).await.unwrap().unwrap();
    assert_eq!(t, a);
    let PaymentApplied::Confirmed(booking) = applied else { panic!("confirmed, got {applied:?}") };
    assert_eq!((booking.status, booking.hold_expires_at), (BookingStatus::Confirmed, None));
    assert_eq!((booking.payment_amount, booking.payment_currency.as_deref()), (Some(5000), Some("usd")));
    assert_eq!(store.booking(&a, &held.id).await.unwrap().unwrap(), booking, "stored as returned");
    let again = store.complete_payment(&held.id, "cs_test_1", 5000, "usd", paid_at).await.unwrap().unwrap().1;
    assert!(matches!(again, PaymentApplied::AlreadyConfirmed(_)), "a duplicate notice changes nothing");
    let confirmed: Vec<String> = all_events(&store, &a)
        .await
        .into_iter()
        .filter(|e| e.event_type == "booking.confirmed")
        .map(|e| e.id)
        .collect();
    assert_eq!(confirmed.len(), 1, "booking.confirmed once");
    assert_eq!(store.booking_emails(&a, &held.id).await.unwrap().len(), 2, "the invitations are queued on payment");
    // Confirmed, the time is held for good: past the old hold's expiry it is still taken.
    refused(
        store
            .create_booking(
                &a,
                &for_business(&biz, iv("2030-01-02T10:00:00Z", "2030-01-02T10:30:00Z")),
                now() + SignedDuration::from_hours(1),
            )
            .await,
    );
}

pub async fn unpaid_holds_end_and_late_payments_take_free_time_only(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let alice = user("alice@example.com");
    store.insert_user(&a, &alice).await.unwrap();
    let biz = paid_business(&[&alice]);
    store.insert_business(&a, &biz).await.unwrap();
    let slot = |h: u32| iv(&format!("2030-01-02T{h:02}:00:00Z"), &format!("2030-01-02T{h:02}:30:00Z"));
    let expired = store.create_booking(&a, &for_business(&biz, slot(10)), now()).await.unwrap();
    store.set_checkout(&a, &expired.id, "cs_1", "https://pay/1", now()).await.unwrap();
    let lapsed = store.create_booking(&a, &for_business(&biz, slot(11)), now()).await.unwrap();
    store.set_checkout(&a, &lapsed.id, "cs_2", "https://pay/2", now()).await.unwrap();
    let taken = store.create_booking(&a, &for_business(&biz, slot(12)), now()).await.unwrap();
    store.set_checkout(&a, &taken.id, "cs_3", "https://pay/3", now()).await.unwrap();

    // Stripe says the checkout expired: the hold ends at once.
    let (_, ended) = store.end_payment_hold(&expired.id, "cs_1", "checkout_expired", now()).await.unwrap().unwrap();
    assert_eq!(
        (ended.status, ended.cancellation_reason.as_deref()),
        (BookingStatus::Cancelled, Some("checkout_expired"))
    );
    assert!(store.end_payment_hold(&expired.id, "cs_wrong", "checkout_expired", now()).await.unwrap().is_none());

    // The sweep ends the others once they lapse, and only then.
    assert!(store.expire_payment_holds(now() + SignedDuration::from_mins(29), 10).await.unwrap().is_empty());
    let swept_at = now() + SignedDuration::from_mins(31);
    let swept = store.expire_payment_holds(swept_at, 10).await.unwrap();
    let mut sessions: Vec<Option<String>> = swept.iter().map(|(_, _, s)| s.clone()).collect();
    sessions.sort();
    assert_eq!(sessions, [Some("cs_2".to_string()), Some("cs_3".to_string())]);
    assert!(swept.iter().all(|(t, b, _)| *t == a && b.status == BookingStatus::Cancelled));
    assert!(store.expire_payment_holds(swept_at, 10).await.unwrap().is_empty(), "each once");

    // Someone books 12:00 meanwhile; then both late payments arrive.
    let free = business_free_of_price(&biz);
    store.insert_business(&a, &free).await.unwrap();
    store.create_booking(&a, &for_business(&free, slot(12)), swept_at).await.unwrap();
    let (_, late) = store.complete_payment(&lapsed.id, "cs_2", 5000, "usd", swept_at).await.unwrap().unwrap();
    assert!(
        matches!(late, PaymentApplied::Confirmed(ref b) if b.status == BookingStatus::Confirmed),
        "11:00 was free: {late:?}"
    );
    let (_, too_late) = store.complete_payment(&taken.id, "cs_3", 5000, "usd", swept_at).await.unwrap().unwrap();
    assert!(matches!(too_late, PaymentApplied::TooLate(ref b) if b.status == BookingStatus::Cancelled), "{too_late:?}");
    // Charged for a time that is gone: the booking says so (a refund is owed), in the answer
    // and as stored.
    let PaymentApplied::TooLate(answered) = too_late else { unreachable!() };
    assert_eq!(answered.cancellation_reason.as_deref(), Some("payment_too_late"));
    let stored = store.booking(&a, &taken.id).await.unwrap().unwrap();
    assert_eq!(stored.cancellation_reason.as_deref(), Some("payment_too_late"));
    // A booking the customer cancelled stays cancelled whatever arrives.
    let (_, cancelled) = store.complete_payment(&expired.id, "cs_1", 5000, "usd", swept_at).await.unwrap().unwrap();
    assert!(matches!(cancelled, PaymentApplied::Cancelled(_)));
}

/// The same hosts without a price, for a booking that confirms at once.
fn business_free_of_price(paid: &Business) -> Business {
    let mut free = paid.clone();
    free.id = ids::new_id("biz");
    free.price_amount = None;
    free.price_currency = None;
    free
}

fn link(slug: &str, business: Option<&Business>) -> Link {
    Link {
        id: ids::new_id("link"),
        slug: slug.into(),
        title: "Intro call".into(),
        business_id: business.map(|b| b.id.clone()),
        participants: Vec::new(),
        duration_minutes: 30,
        created_at: now(),
        updated_at: now(),
    }
}

pub async fn links_have_server_wide_slugs_and_go_with_their_business(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let globex = tenant(&store, "globex", Mode::Test).await;
    let alice = user("alice@example.com");
    store.insert_user(&a, &alice).await.unwrap();
    let biz = business(&[&alice]);
    store.insert_business(&a, &biz).await.unwrap();
    let intro = link("intro", Some(&biz));
    store.insert_link(&a, &intro).await.unwrap();
    let mut people = link("team-sync", None);
    people.participants = vec![alice.id.clone()];
    store.insert_link(&a, &people).await.unwrap();
    assert!(matches!(store.insert_link(&globex, &link("intro", None)).await, Err(StoreError::Conflict("slug"))));

    assert_eq!(store.link(&a, &intro.id).await.unwrap(), Some(intro.clone()));
    assert_eq!(store.link(&globex, &intro.id).await.unwrap(), None, "tenants see their own");
    assert_eq!(store.link_by_slug("team-sync").await.unwrap(), Some((a.clone(), people.clone())));
    assert_eq!(store.link_by_slug("nobody").await.unwrap(), None);
    let first = store.links(&a, &PageRequest { limit: 1, cursor: None }).await.unwrap();
    assert_eq!(first.data, vec![people.clone()], "newest first");
    let rest = store.links(&a, &PageRequest { limit: 1, cursor: first.next_cursor }).await.unwrap();
    assert_eq!((rest.data, rest.next_cursor), (vec![intro.clone()], None));

    let renamed = store
        .update_link(
            &a,
            &intro.id,
            Box::new(|l| {
                l.slug = "hello".into();
                l.duration_minutes = 45;
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert_eq!((renamed.slug.as_str(), renamed.duration_minutes), ("hello", 45));
    assert_eq!(store.link_by_slug("intro").await.unwrap(), None, "the old slug is free");
    let taken = store
        .update_link(
            &a,
            &intro.id,
            Box::new(|l| {
                l.slug = "team-sync".into();
                Ok(())
            }),
        )
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict("slug"))));
    assert!(matches!(store.update_link(&globex, &intro.id, Box::new(|_| Ok(()))).await, Err(StoreError::NotFound)));

    assert!(!store.delete_link(&globex, &people.id).await.unwrap());
    assert!(store.delete_link(&a, &people.id).await.unwrap());
    assert_eq!(store.link_by_slug("team-sync").await.unwrap(), None);
    store.delete_business(&a, &biz.id).await.unwrap();
    assert_eq!(store.link(&a, &intro.id).await.unwrap(), None, "a link goes with its business");
}
