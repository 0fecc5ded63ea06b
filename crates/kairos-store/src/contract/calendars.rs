//! The contract's calendar cases: connections with their calendars and busy time, syncs that
//! replace it, selection, disconnection, and what falls due.

use super::*;

fn connection(user: &User, url: &str, next_sync_at: Timestamp) -> CalendarConnection {
    CalendarConnection {
        id: ids::new_id("conn"),
        user_id: user.id.clone(),
        provider: "ics".into(),
        url: url.into(),
        status: "active".into(),
        etag: Some("\"1\"".into()),
        last_modified: None,
        last_sync: Some(now()),
        last_error: None,
        next_sync_at,
        created_at: now(),
        updated_at: now(),
    }
}

fn calendar(conn: &CalendarConnection) -> CalendarRecord {
    CalendarRecord {
        id: ids::new_id("cal"),
        connection_id: conn.id.clone(),
        user_id: conn.user_id.clone(),
        name: "Work".into(),
        provider: "ics".into(),
        primary: false,
        selected: true,
        event_count: 1,
        created_at: now(),
        updated_at: now(),
        remote_id: None,
        cursor: None,
        writable: false,
    }
}

pub(super) async fn busy_at(store: &S, t: &Tenant, email: &str, interval: Interval) -> bool {
    let who = Who { participants: vec![UserRef::Email(email.into())], ..Who::default() };
    let party = store.load_party(t, &who, interval, now()).await.unwrap();
    party.check(interval, now(), SearchMode::Collective).is_err()
}

pub async fn a_connected_calendar_holds_time_until_deselected_or_disconnected(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let globex = tenant(&store, "globex", Mode::Test).await;
    let alice = user("alice@example.com");
    store.insert_user(&a, &alice).await.unwrap();
    let conn = connection(&alice, "https://example.com/a.ics", now() + SignedDuration::from_mins(15));
    let cal = calendar(&conn);
    let meeting = iv("2030-01-02T10:00:00Z", "2030-01-02T11:00:00Z");
    store.insert_calendar_connection(&a, &conn, &cal, "BEGIN:VCALENDAR", &[meeting]).await.unwrap();
    assert!(busy_at(&store, &a, "alice@example.com", meeting).await, "the calendar's busy time holds");
    assert!(matches!(
        store.insert_calendar_connection(&a, &conn.clone(), &calendar(&conn), "x", &[]).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.calendars(&a, Some(&alice.id)).await.unwrap(), vec![cal.clone()]);
    assert_eq!(store.calendar_connections(&a, None).await.unwrap(), vec![conn.clone()]);
    assert_eq!(store.calendar_sources(&a, &alice.id).await.unwrap()[0].1, "BEGIN:VCALENDAR");
    assert!(store.calendars(&globex, None).await.unwrap().is_empty(), "tenants see their own");
    assert!(matches!(store.select_calendar(&globex, &cal.id, false, now()).await, Err(StoreError::NotFound)));

    let off = store.select_calendar(&a, &cal.id, false, now()).await.unwrap();
    assert!(!off.selected);
    assert!(!busy_at(&store, &a, "alice@example.com", meeting).await, "deselected: free at once");
    store.select_calendar(&a, &cal.id, true, now()).await.unwrap();
    let due = store.due_calendar_syncs(now(), 10).await.unwrap();
    assert_eq!(due.iter().map(|(_, c)| c.id.as_str()).collect::<Vec<_>>(), [conn.id.as_str()], "selected: due now");
    assert_eq!(due[0].1.etag, None, "and fetched whole, not conditionally");

    assert_eq!(store.delete_calendar_connections(&globex, None, "ics", now()).await.unwrap(), 0);
    assert_eq!(store.delete_calendar_connections(&a, Some(&alice.id), "ics", now()).await.unwrap(), 1);
    assert!(store.calendars(&a, None).await.unwrap().is_empty());
    assert!(store.due_calendar_syncs(now(), 10).await.unwrap().is_empty());
}

pub async fn a_sync_replaces_busy_time_and_records_its_outcome(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let alice = user("alice@example.com");
    store.insert_user(&a, &alice).await.unwrap();
    let conn = connection(&alice, "https://example.com/a.ics", now());
    let cal = calendar(&conn);
    let old = iv("2030-01-02T10:00:00Z", "2030-01-02T11:00:00Z");
    let new = iv("2030-01-03T10:00:00Z", "2030-01-03T11:00:00Z");
    store.insert_calendar_connection(&a, &conn, &cal, "v1", &[old]).await.unwrap();
    let later = now() + SignedDuration::from_mins(15);
    let changed = SyncOutcome::Changed {
        source: "v2".into(),
        name: Some("Renamed".into()),
        etag: Some("\"2\"".into()),
        last_modified: None,
        events: 3,
        busy: vec![new],
    };
    let record = |outcome| SyncRecord { connection_id: conn.id.clone(), at: now(), next_sync_at: later, outcome };
    store.record_calendar_sync(&a, &record(changed)).await.unwrap();
    assert!(
        !busy_at(&store, &a, "alice@example.com", old).await && busy_at(&store, &a, "alice@example.com", new).await
    );
    let (synced, source) = store.calendar_sources(&a, &alice.id).await.unwrap().remove(0);
    assert_eq!((synced.name.as_str(), synced.event_count, source.as_str()), ("Renamed", 3, "v2"));
    assert_eq!(store.calendar_connections(&a, None).await.unwrap()[0].etag.as_deref(), Some("\"2\""));
    assert!(store.due_calendar_syncs(now(), 10).await.unwrap().is_empty(), "next due in 15 minutes");

    store
        .record_calendar_sync(&a, &record(SyncOutcome::Failed("the feed's server answered 500".into())))
        .await
        .unwrap();
    let failed = store.calendar_connections(&a, None).await.unwrap().remove(0);
    assert_eq!(
        (failed.status.as_str(), failed.last_error.as_deref()),
        ("error", Some("the feed's server answered 500"))
    );
    assert!(busy_at(&store, &a, "alice@example.com", new).await, "a failed sync keeps what was synced");
    store.record_calendar_sync(&a, &record(SyncOutcome::Unchanged)).await.unwrap();
    let back = store.calendar_connections(&a, None).await.unwrap().remove(0);
    assert_eq!((back.status.as_str(), back.last_error), ("active", None));
    assert_eq!(store.due_calendar_syncs(later, 10).await.unwrap().len(), 1);
}
