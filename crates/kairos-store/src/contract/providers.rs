//! The contract's provider-connection cases: reconnection in place with its lifecycle events,
//! item syncs with cursors, pending OAuth authorizations, and push channels.

use super::calendars::busy_at;
use super::*;

fn google(user: &User, account: &str) -> CalendarConnection {
    CalendarConnection {
        id: ids::new_id("conn"),
        user_id: user.id.clone(),
        provider: "google".into(),
        url: account.into(),
        status: "active".into(),
        etag: None,
        last_modified: None,
        last_sync: None,
        last_error: None,
        next_sync_at: now(),
        created_at: now(),
        updated_at: now(),
    }
}

fn remote(conn: &CalendarConnection, remote_id: &str, selected: bool) -> CalendarRecord {
    CalendarRecord {
        id: ids::new_id("cal"),
        connection_id: conn.id.clone(),
        user_id: conn.user_id.clone(),
        name: remote_id.into(),
        provider: conn.provider.clone(),
        primary: selected,
        selected,
        event_count: 0,
        created_at: now(),
        updated_at: now(),
        remote_id: Some(remote_id.into()),
        cursor: None,
        writable: true,
    }
}

async fn event_types(store: &S, t: &Tenant) -> Vec<String> {
    let page = PageRequest { limit: 100, cursor: None };
    let mut types: Vec<String> =
        store.outbox_events(t, &page).await.unwrap().data.into_iter().map(|e| e.event_type).collect();
    types.reverse();
    types
}

fn item(id: &str, text: &str) -> CalendarItem {
    CalendarItem { remote_id: id.into(), etag: Some(format!("\"{text}\"")), ical: text.into() }
}

pub async fn a_provider_reconnects_in_place_with_its_lifecycle_events(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let alice = user("alice@example.com");
    store.insert_user(&a, &alice).await.unwrap();
    let conn = google(&alice, "alice@gmail.com");
    let first = store.connect_provider(&a, &conn, "sealed-1", &[remote(&conn, "primary", true)], now()).await.unwrap();
    assert!(!first.existed && !first.reactivated);
    assert_eq!(first.connection.id, conn.id);
    assert_eq!(first.calendars.len(), 1);
    assert_eq!(store.connection_secret(&a, &conn.id).await.unwrap().as_deref(), Some("sealed-1"));
    assert_eq!(event_types(&store, &a).await, ["consent.granted"]);

    // The grant is refused: needs_reauth, announced once, and no more background syncs.
    let refused = |why: &str| ProviderSyncRecord {
        connection_id: conn.id.clone(),
        at: now(),
        next_sync_at: now(),
        outcome: ProviderSyncOutcome::NeedsReauth(why.into()),
    };
    store.record_provider_sync(&a, &refused("invalid_grant")).await.unwrap();
    store.record_provider_sync(&a, &refused("invalid_grant again")).await.unwrap();
    let waiting = store.calendar_connections(&a, None).await.unwrap().remove(0);
    assert_eq!(waiting.status, "needs_reauth");
    assert_eq!(event_types(&store, &a).await, ["consent.granted", "connection.needs_reauth"]);
    assert!(store.due_calendar_syncs(now(), 10).await.unwrap().is_empty());
    assert!(!store.request_calendar_sync(&a, &conn.id, now()).await.unwrap(), "push does not wake it either");

    // Connecting again: same connection, new secret, new calendars added once.
    // A secret sealed for another id (a racing connect) is refused: the caller seals again.
    let racing = google(&alice, "alice@gmail.com");
    assert!(matches!(
        store.connect_provider(&a, &racing, "sealed-x", &[remote(&racing, "primary", true)], now()).await,
        Err(StoreError::Conflict("id"))
    ));
    assert_eq!(store.connection_secret(&a, &conn.id).await.unwrap().as_deref(), Some("sealed-1"));
    let again = CalendarConnection { id: conn.id.clone(), ..google(&alice, "alice@gmail.com") };
    let calendars = [remote(&again, "primary", true), remote(&again, "team", false)];
    let second = store.connect_provider(&a, &again, "sealed-2", &calendars, now()).await.unwrap();
    assert!(second.existed && second.reactivated);
    assert_eq!(second.connection.id, conn.id, "the earlier connection is kept");
    assert_eq!(second.connection.status, "active");
    assert_eq!(second.calendars.len(), 2);
    assert_eq!(store.connection_secret(&a, &conn.id).await.unwrap().as_deref(), Some("sealed-2"));
    assert_eq!(
        event_types(&store, &a).await,
        ["consent.granted", "connection.needs_reauth", "consent.granted", "connection.reactivated"]
    );
    assert_eq!(store.due_calendar_syncs(now(), 10).await.unwrap().len(), 1, "due at once");
    let other = tenant(&store, "globex", Mode::Test).await;
    assert_eq!(store.connection_secret(&other, &conn.id).await.unwrap(), None, "tenants see their own");

    assert_eq!(store.delete_calendar_connections(&a, Some(&alice.id), "google", now()).await.unwrap(), 1);
    assert_eq!(event_types(&store, &a).await.last().map(String::as_str), Some("consent.revoked"));
    assert!(store.calendars(&a, None).await.unwrap().is_empty());
}

pub async fn provider_syncs_apply_items_cursors_and_busy_time(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let alice = user("alice@example.com");
    store.insert_user(&a, &alice).await.unwrap();
    let conn = google(&alice, "alice@gmail.com");
    let cal = remote(&conn, "primary", true);
    store.connect_provider(&a, &conn, "s", std::slice::from_ref(&cal), now()).await.unwrap();
    let one = iv("2030-01-02T10:00:00Z", "2030-01-02T11:00:00Z");
    let two = iv("2030-01-03T10:00:00Z", "2030-01-03T11:00:00Z");
    let later = now() + SignedDuration::from_mins(15);
    let synced = |sync: CalendarSync| ProviderSyncRecord {
        connection_id: conn.id.clone(),
        at: now(),
        next_sync_at: later,
        outcome: ProviderSyncOutcome::Synced(vec![sync]),
    };
    let full = CalendarSync {
        calendar_id: cal.id.clone(),
        cursor: Some("token-1".into()),
        full: true,
        upserts: vec![item("a", "A1"), item("b", "B1")],
        removed: vec![],
        source: "text-1".into(),
        events: 2,
        busy: vec![one],
        changes: vec![],
    };
    store.record_provider_sync(&a, &synced(full)).await.unwrap();
    assert_eq!(store.calendar_items(&a, &cal.id).await.unwrap(), [item("a", "A1"), item("b", "B1")]);
    let stored = store.calendars(&a, None).await.unwrap().remove(0);
    assert_eq!((stored.cursor.as_deref(), stored.event_count), (Some("token-1"), 2));
    assert!(busy_at(&store, &a, "alice@example.com", one).await);
    let conn_now = store.calendar_connections(&a, None).await.unwrap().remove(0);
    assert_eq!((conn_now.status.as_str(), conn_now.last_sync), ("active", Some(now())));

    let incremental = CalendarSync {
        calendar_id: cal.id.clone(),
        cursor: Some("token-2".into()),
        full: false,
        upserts: vec![item("b", "B2"), item("c", "C1")],
        removed: vec!["a".into()],
        source: "text-2".into(),
        events: 2,
        busy: vec![two],
        changes: vec![
            EventChange { kind: "updated", uid: "b".into(), remote_id: "b".into() },
            EventChange { kind: "created", uid: "c".into(), remote_id: "c".into() },
            EventChange { kind: "deleted", uid: "a".into(), remote_id: "a".into() },
        ],
    };
    store.record_provider_sync(&a, &synced(incremental)).await.unwrap();
    assert_eq!(store.calendar_items(&a, &cal.id).await.unwrap(), [item("b", "B2"), item("c", "C1")]);
    assert!(
        !busy_at(&store, &a, "alice@example.com", one).await && busy_at(&store, &a, "alice@example.com", two).await
    );
    assert_eq!(store.calendar_sources(&a, &alice.id).await.unwrap()[0].1, "text-2");
    let types = event_types(&store, &a).await;
    assert_eq!(
        types[types.len() - 3..],
        ["calendar_event.updated", "calendar_event.created", "calendar_event.deleted"],
        "the changes are announced in the sync's transaction"
    );
    let page = PageRequest { limit: 1, cursor: None };
    let last = store.outbox_events(&a, &page).await.unwrap().data.remove(0);
    let envelope: serde_json::Value = serde_json::from_str(&last.payload).unwrap();
    assert_eq!(envelope["data"]["calendar_event"]["id"], format!("{}:a", cal.id));

    let failed = ProviderSyncRecord {
        connection_id: conn.id.clone(),
        at: now(),
        next_sync_at: later,
        outcome: ProviderSyncOutcome::Failed("the provider answered 500".into()),
    };
    store.record_provider_sync(&a, &failed).await.unwrap();
    assert_eq!(store.calendar_connections(&a, None).await.unwrap()[0].status, "error");
    assert_eq!(store.calendar_items(&a, &cal.id).await.unwrap().len(), 2, "a failed sync keeps what was synced");

    // A full resync replaces everything; a deselected calendar keeps no busy time.
    store.select_calendar(&a, &cal.id, false, now()).await.unwrap();
    let resync = CalendarSync {
        calendar_id: cal.id.clone(),
        cursor: Some("token-3".into()),
        full: true,
        upserts: vec![item("d", "D1")],
        removed: vec![],
        source: "text-3".into(),
        events: 1,
        busy: vec![one],
        changes: vec![],
    };
    store.record_provider_sync(&a, &synced(resync)).await.unwrap();
    assert_eq!(store.calendar_items(&a, &cal.id).await.unwrap(), [item("d", "D1")]);
    assert!(!busy_at(&store, &a, "alice@example.com", one).await);
}

pub async fn oauth_authorizations_are_taken_once_before_they_expire(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let alice = user("alice@example.com");
    store.insert_user(&a, &alice).await.unwrap();
    let pending = |nonce: &str, minutes: i64| OAuthState {
        nonce: nonce.into(),
        provider: "google".into(),
        user_id: alice.id.clone(),
        redirect_uri: "https://app.example.com/done".into(),
        app_state: Some("xyz".into()),
        verifier: "sealed-verifier".into(),
        expires_at: now() + SignedDuration::from_mins(minutes),
        created_at: now(),
    };
    store.insert_oauth_state(&a, &pending("n1", 10)).await.unwrap();
    store.insert_oauth_state(&a, &pending("n2", 10)).await.unwrap();
    let (t, taken) = store.take_oauth_state("n1", now()).await.unwrap().expect("taken");
    assert_eq!(t, a);
    assert_eq!(taken, pending("n1", 10));
    assert_eq!(store.take_oauth_state("n1", now()).await.unwrap(), None, "once only");
    assert_eq!(store.take_oauth_state("unknown", now()).await.unwrap(), None);
    assert_eq!(store.take_oauth_state("n2", now() + SignedDuration::from_mins(11)).await.unwrap(), None, "expired");
}

pub async fn push_channels_are_found_by_id_and_expiry_and_go_with_their_connection(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let alice = user("alice@example.com");
    store.insert_user(&a, &alice).await.unwrap();
    let conn = google(&alice, "alice@gmail.com");
    let cal = remote(&conn, "primary", true);
    store.connect_provider(&a, &conn, "s", std::slice::from_ref(&cal), now()).await.unwrap();
    let channel = |id: &str, days: i64| PushChannel {
        id: id.into(),
        connection_id: conn.id.clone(),
        calendar_id: cal.id.clone(),
        provider: "google".into(),
        resource_id: Some(format!("res-{id}")),
        token_hash: "abc".into(),
        expires_at: now() + SignedDuration::from_hours(24 * days),
        created_at: now(),
    };
    store.save_push_channel(&a, &channel("ch1", 1)).await.unwrap();
    store.save_push_channel(&a, &channel("ch2", 7)).await.unwrap();
    assert_eq!(store.push_channel("ch1").await.unwrap(), Some((a.clone(), channel("ch1", 1))));
    assert_eq!(store.push_channel("nope").await.unwrap(), None);
    let soon = now() + SignedDuration::from_hours(48);
    let expiring = store.expiring_push_channels(soon, 10).await.unwrap();
    assert_eq!(expiring.iter().map(|(_, c)| c.id.as_str()).collect::<Vec<_>>(), ["ch1"]);
    // Renewed: replaced by id.
    store.save_push_channel(&a, &channel("ch1", 5)).await.unwrap();
    assert!(store.expiring_push_channels(soon, 10).await.unwrap().is_empty());
    assert_eq!(store.push_channels(&a, &conn.id).await.unwrap().len(), 2);
    let other = tenant(&store, "globex", Mode::Test).await;
    assert!(!store.delete_push_channel(&other, "ch2").await.unwrap());
    assert!(store.delete_push_channel(&a, "ch2").await.unwrap());
    store.delete_calendar_connections(&a, None, "google", now()).await.unwrap();
    assert_eq!(store.push_channel("ch1").await.unwrap(), None, "channels go with their connection");
}

pub async fn booking_changes_queue_their_calendar_writes(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let alice = user("alice@example.com");
    let bob = user("bob@example.com");
    store.insert_user(&a, &alice).await.unwrap();
    store.insert_user(&a, &bob).await.unwrap();
    // Alice has a Google account (her primary calendar is writable); Bob has none.
    let conn = google(&alice, "alice@gmail.com");
    let mut secondary = remote(&conn, "team", false);
    secondary.primary = false;
    let primary = remote(&conn, "primary", true);
    store.connect_provider(&a, &conn, "s", &[secondary, primary.clone()], now()).await.unwrap();
    let biz = business(&[&alice, &bob]);
    store.insert_business(&a, &biz).await.unwrap();
    let slot = iv("2030-01-02T10:00:00Z", "2030-01-02T10:30:00Z");
    let b = store.create_booking(&a, &for_business(&biz, slot), now()).await.unwrap();
    let lease = SignedDuration::from_secs(60);

    let claimed = store.claim_calendar_writes(now(), lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 1, "only Alice has a calendar to write to");
    let (t, w) = claimed[0].clone();
    assert_eq!(t, a);
    assert_eq!((w.user_id.as_str(), w.calendar_id.as_str()), (alice.id.as_str(), primary.id.as_str()));
    assert!(w.present && w.version == 1 && w.remote_id.is_none());
    assert!(store.claim_calendar_writes(now(), lease, 10).await.unwrap().is_empty(), "leased");

    // A reschedule arrives while version 1 is being written: it stays pending for version 2.
    let moved = iv("2030-01-02T11:00:00Z", "2030-01-02T11:30:00Z");
    store.reschedule_booking(&a, &b.id, moved, now()).await.unwrap();
    let written = WriteOutcome::Written { remote_id: Some("evt-1".into()), etag: Some("\"1\"".into()) };
    store.record_calendar_write(&a, &w, &written, now()).await.unwrap();
    let (_, w2) = store.claim_calendar_writes(now(), lease, 10).await.unwrap().remove(0);
    assert_eq!((w2.version, w2.remote_id.as_deref(), w2.present), (2, Some("evt-1"), true));
    store.record_calendar_write(&a, &w2, &written, now()).await.unwrap();
    assert_eq!(store.calendar_writes(&a, &b.id).await.unwrap()[0].status, "done");
    assert!(store.claim_calendar_writes(now(), lease, 10).await.unwrap().is_empty());

    // Cancelled: the event is no longer wanted; failures retry when due, then give up.
    store.cancel_booking(&a, &b.id, None, now()).await.unwrap();
    let (_, w3) = store.claim_calendar_writes(now(), lease, 10).await.unwrap().remove(0);
    assert!(!w3.present);
    let later = now() + SignedDuration::from_mins(1);
    let failed = WriteOutcome::Failed { error: "503 from Google".into(), retry_at: Some(later) };
    store.record_calendar_write(&a, &w3, &failed, now()).await.unwrap();
    assert!(store.claim_calendar_writes(now(), lease, 10).await.unwrap().is_empty(), "not due yet");
    let (_, w4) = store.claim_calendar_writes(later, lease, 10).await.unwrap().remove(0);
    let given_up = WriteOutcome::Failed { error: "503 again".into(), retry_at: None };
    store.record_calendar_write(&a, &w4, &given_up, later).await.unwrap();
    let seen = store.calendar_writes(&a, &b.id).await.unwrap().remove(0);
    assert_eq!((seen.status.as_str(), seen.attempts, seen.last_error.as_deref()), ("failed", 2, Some("503 again")));
    let other = tenant(&store, "globex", Mode::Test).await;
    assert!(store.calendar_writes(&other, &b.id).await.unwrap().is_empty());
}

pub async fn calendar_writes_are_recorded_only_under_their_current_lease(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let alice = user("alice@example.com");
    store.insert_user(&a, &alice).await.unwrap();
    let conn = google(&alice, "alice@gmail.com");
    store.connect_provider(&a, &conn, "s", &[remote(&conn, "primary", true)], now()).await.unwrap();
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
    let row = async || store.calendar_writes(&a, &b.id).await.unwrap().remove(0);

    // Claimed once until its lease lapses; the claim carries the lease it wrote.
    let (t, first) = store.claim_calendar_writes(now(), lease, 10).await.unwrap().remove(0);
    assert_eq!(first.lease, Some(lapsed));
    let almost = lapsed - SignedDuration::from_millis(1);
    assert!(store.claim_calendar_writes(almost, lease, 10).await.unwrap().is_empty(), "leased");

    // The first worker stalls past its lease and a second one claims the write: whatever the
    // first then records changes nothing, and the row stays the second's.
    let (_, second) = store.claim_calendar_writes(lapsed, lease, 10).await.unwrap().remove(0);
    assert_ne!(second.lease, first.lease);
    let stale = WriteOutcome::Written { remote_id: Some("evt-stale".into()), etag: None };
    assert!(!store.record_calendar_write(&t, &first, &stale, lapsed).await.unwrap());
    let gave_up = WriteOutcome::Failed { error: "503 from Google".into(), retry_at: None };
    assert!(!store.record_calendar_write(&t, &first, &gave_up, lapsed).await.unwrap());
    let held = row().await;
    assert_eq!((held.status.as_str(), held.remote_id.as_deref(), held.attempts), ("pending", None, 0));
    assert_eq!(held.lease, second.lease);
    assert!(store.claim_calendar_writes(lapsed, lease, 10).await.unwrap().is_empty(), "still the second's");
    let written = WriteOutcome::Written { remote_id: Some("evt-1".into()), etag: Some("\"1\"".into()) };
    assert!(store.record_calendar_write(&t, &second, &written, lapsed).await.unwrap());
    let done = row().await;
    assert_eq!((done.status.as_str(), done.remote_id.as_deref(), done.lease), ("done", Some("evt-1"), None));
    assert!(!store.record_calendar_write(&t, &second, &gave_up, lapsed).await.unwrap(), "its record released it");
    assert_eq!(row().await.status, "done");

    // The usual path: a change is claimed and recorded.
    let moved = iv("2030-01-02T11:00:00Z", "2030-01-02T11:30:00Z");
    store.reschedule_booking(&a, &b.id, moved, lapsed).await.unwrap();
    let (_, update) = store.claim_calendar_writes(lapsed, lease, 10).await.unwrap().remove(0);
    assert_eq!((update.version, update.remote_id.as_deref()), (2, Some("evt-1")));
    assert!(store.record_calendar_write(&t, &update, &written, lapsed).await.unwrap());
    assert_eq!((row().await.status.as_str(), row().await.lease), ("done", None));

    // Even a claim with no lease to speak of fences the one before it.
    store.cancel_booking(&a, &b.id, None, lapsed).await.unwrap();
    let (_, brief) = store.claim_calendar_writes(lapsed, SignedDuration::ZERO, 10).await.unwrap().remove(0);
    let (_, next) = store.claim_calendar_writes(lapsed, SignedDuration::ZERO, 10).await.unwrap().remove(0);
    assert_ne!(next.lease, brief.lease);
    let deleted = WriteOutcome::Written { remote_id: None, etag: None };
    assert!(!store.record_calendar_write(&t, &brief, &deleted, lapsed).await.unwrap());
    assert!(store.record_calendar_write(&t, &next, &deleted, lapsed).await.unwrap());
    assert_eq!(row().await.status, "done");
}
