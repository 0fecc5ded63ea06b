//! The contract's webhook cases: fan-out, exclusive leased claims, the per-subscription limit,
//! attempts and their outcomes, redelivery, rotation, and the retention sweep.

use kairos_core::webhook::{Attempt, DeliveryStatus, Next, Webhook, WebhookSecret};

use super::*;

/// A subscription to `events` at an endpoint of its own.
fn hook(events: &[&str], created_at: Timestamp) -> Webhook {
    let id = ids::new_id("wh");
    Webhook {
        url: format!("https://{id}.example.com/hook"),
        id,
        events: events.iter().map(|e| e.to_string()).collect(),
        description: None,
        enabled: true,
        created_at,
        updated_at: created_at,
        secret: Some(WebhookSecret::from_random(rand::random())),
        previous_secret: None,
    }
}

fn limits(per_endpoint: usize) -> ClaimLimits {
    ClaimLimits { max: 100, per_endpoint, lease: SignedDuration::from_secs(30) }
}

fn attempt(at: Timestamp, status: Option<u16>) -> Attempt {
    Attempt {
        attempted_at: at,
        status_code: status,
        duration_ms: 3,
        error: status.filter(|s| *s >= 300).map(|s| format!("the receiver answered {s}")),
        response_body: Some("ok".into()),
    }
}

fn record(d: &ClaimedDelivery, status: Option<u16>, next: Next) -> AttemptRecord {
    AttemptRecord { delivery_id: d.id.clone(), lease: d.lease.clone(), attempt: attempt(now(), status), next }
}

/// A tenant with one user, who makes events by booking half hours.
struct Events {
    store: S,
    tenant: Tenant,
    email: String,
    next: std::sync::atomic::AtomicI64,
}

impl Events {
    async fn new(store: &S, account: &str) -> Self {
        let tenant = tenant(store, account, Mode::Test).await;
        let email = format!("host@{account}.example.com");
        store.insert_user(&tenant, &user(&email)).await.unwrap();
        Self { store: store.clone(), tenant, email, next: std::sync::atomic::AtomicI64::new(0) }
    }

    /// Books the next half hour: one `booking.created` event.
    async fn booking(&self) -> Booking {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let start = at("2030-01-02T00:00:00Z") + SignedDuration::from_hours(n);
        let interval = Interval::new(start, start + SignedDuration::from_mins(30)).unwrap();
        self.store.create_booking(&self.tenant, &for_people(&[&self.email], interval), now()).await.unwrap()
    }
}

async fn claim(store: &S, at: Timestamp, per_endpoint: usize) -> Vec<ClaimedDelivery> {
    store.claim_deliveries(at, &limits(per_endpoint)).await.unwrap()
}

async fn deliveries(store: &S, t: &Tenant, hook: &Webhook) -> Vec<kairos_core::webhook::Delivery> {
    let page = PageRequest { limit: 100, cursor: None };
    store.webhook_deliveries(t, &hook.id, &DeliveryFilter::default(), &page).await.unwrap().data
}

pub async fn events_fan_out_once_to_the_subscriptions_that_want_them(store: S) {
    let acme = Events::new(&store, "acme").await;
    let globex = Events::new(&store, "globex").await;
    let all = hook(&["*"], now());
    let created = hook(&["booking.created"], now());
    let cancelled = hook(&["booking.cancelled"], now());
    let mut disabled = hook(&["*"], now());
    disabled.enabled = false;
    let other_tenant = hook(&["*"], now());
    for h in [&all, &created, &cancelled, &disabled] {
        store.insert_webhook(&acme.tenant, h).await.unwrap();
    }
    store.insert_webhook(&globex.tenant, &other_tenant).await.unwrap();
    let booking = acme.booking().await;
    assert_eq!(store.dispatch_events(now(), 100).await.unwrap(), Dispatched { events: 1, deliveries: 2 });
    assert_eq!(store.dispatch_events(now(), 100).await.unwrap(), Dispatched::default(), "an event fans out once");
    let mut claimed = claim(&store, now(), 10).await;
    claimed.sort_by(|a, b| a.webhook_id.cmp(&b.webhook_id));
    let mut expected = vec![all.id.clone(), created.id.clone()];
    expected.sort();
    assert_eq!(claimed.iter().map(|d| d.webhook_id.clone()).collect::<Vec<_>>(), expected);
    let event = &all_events(&store, &acme.tenant).await[0];
    for d in &claimed {
        assert_eq!(d.event_id, event.id);
        assert_eq!(d.payload, event.payload, "the exact envelope bytes");
        assert_eq!(d.event_type, "booking.created");
        assert_eq!(d.attempts_made, 0);
        assert!(d.url.ends_with(".example.com/hook"));
        assert_eq!(d.secrets.len(), 1);
    }
    assert!(event.payload.contains(&booking.id));
    assert!(deliveries(&store, &globex.tenant, &other_tenant).await.is_empty());
}

pub async fn a_subscription_hears_only_events_from_its_creation_on(store: S) {
    let acme = Events::new(&store, "acme").await;
    acme.booking().await;
    let later = hook(&["*"], now() + SignedDuration::from_secs(1));
    store.insert_webhook(&acme.tenant, &later).await.unwrap();
    assert_eq!(store.dispatch_events(now(), 100).await.unwrap().events, 1);
    assert!(claim(&store, now(), 10).await.is_empty());
}

pub async fn claims_are_exclusive_until_their_lease_lapses(store: S) {
    let acme = Events::new(&store, "acme").await;
    let h = hook(&["*"], now());
    store.insert_webhook(&acme.tenant, &h).await.unwrap();
    for _ in 0..3 {
        acme.booking().await;
    }
    store.dispatch_events(now(), 100).await.unwrap();
    let first = claim(&store, now(), 10).await;
    assert_eq!(first.len(), 3);
    assert!(claim(&store, now(), 10).await.is_empty(), "claimed work is not handed out twice");
    let lapsed = now() + SignedDuration::from_secs(31);
    let second = claim(&store, lapsed, 10).await;
    assert_eq!(second.len(), 3, "a worker that died mid-attempt loses its claim when the lease lapses");
    assert_ne!(first[0].lease, second[0].lease);
    let stale = record(&first[0], Some(200), Next::Done(DeliveryStatus::Succeeded));
    assert!(!store.record_attempt(&stale, lapsed).await.unwrap(), "the lapsed claim no longer decides");
    let same = second.iter().find(|d| d.id == first[0].id).unwrap();
    assert!(
        store.record_attempt(&record(same, Some(200), Next::Done(DeliveryStatus::Succeeded)), lapsed).await.unwrap()
    );
    let listed = deliveries(&store, &acme.tenant, &h).await;
    let done = listed.iter().find(|d| d.id == same.id).unwrap();
    assert_eq!(done.status, DeliveryStatus::Succeeded);
    assert_eq!(done.attempts.len(), 2, "both attempts are history, the lapsed one too");
}

pub async fn claims_keep_each_subscription_within_its_limit(store: S) {
    let acme = Events::new(&store, "acme").await;
    let busy = hook(&["*"], now());
    store.insert_webhook(&acme.tenant, &busy).await.unwrap();
    for _ in 0..5 {
        acme.booking().await;
    }
    store.dispatch_events(now(), 100).await.unwrap();
    let quiet = hook(&["*"], now());
    store.insert_webhook(&acme.tenant, &quiet).await.unwrap();
    acme.booking().await;
    store.dispatch_events(now(), 100).await.unwrap();
    let claimed = claim(&store, now(), 2).await;
    let of = |c: &[ClaimedDelivery], h: &Webhook| c.iter().filter(|d| d.webhook_id == h.id).count();
    assert_eq!((of(&claimed, &busy), of(&claimed, &quiet)), (2, 1), "a busy endpoint does not crowd out others");
    assert!(claim(&store, now(), 2).await.is_empty(), "the busy one has 2 in flight already");
    let done = claimed.iter().find(|d| d.webhook_id == busy.id).unwrap();
    store.record_attempt(&record(done, Some(200), Next::Done(DeliveryStatus::Succeeded)), now()).await.unwrap();
    let more = claim(&store, now(), 2).await;
    assert_eq!(of(&more, &busy), 1, "a finished attempt frees one place");
}

pub async fn failed_attempts_retry_when_due_then_fail(store: S) {
    let acme = Events::new(&store, "acme").await;
    let h = hook(&["*"], now());
    store.insert_webhook(&acme.tenant, &h).await.unwrap();
    acme.booking().await;
    store.dispatch_events(now(), 100).await.unwrap();
    let d = claim(&store, now(), 10).await.remove(0);
    let retry_at = now() + SignedDuration::from_mins(1);
    assert!(store.record_attempt(&record(&d, Some(500), Next::RetryAt(retry_at)), now()).await.unwrap());
    let listed = deliveries(&store, &acme.tenant, &h).await;
    assert_eq!((listed[0].status, listed[0].next_attempt_at), (DeliveryStatus::Pending, Some(retry_at)));
    let stats = store.delivery_queue(now()).await.unwrap();
    assert_eq!(
        (stats.due_deliveries, stats.scheduled_retries, stats.oldest_due),
        (0, 1, None),
        "a retry is not backlog"
    );
    assert_eq!(store.next_delivery_due(now()).await.unwrap(), Some(retry_at));
    let later = store.delivery_queue(retry_at).await.unwrap();
    assert_eq!((later.due_deliveries, later.oldest_due), (1, Some(retry_at)), "once due, it is");
    assert!(claim(&store, retry_at - SignedDuration::from_secs(1), 10).await.is_empty(), "not before it is due");
    let again = claim(&store, retry_at, 10).await.remove(0);
    assert_eq!(again.attempts_made, 1);
    assert!(store.record_attempt(&record(&again, None, Next::Done(DeliveryStatus::Failed)), retry_at).await.unwrap());
    let listed = deliveries(&store, &acme.tenant, &h).await;
    assert_eq!((listed[0].status, listed[0].next_attempt_at), (DeliveryStatus::Failed, None));
    assert_eq!(listed[0].attempts.iter().map(|a| a.status_code).collect::<Vec<_>>(), [Some(500), None]);
    let failed = DeliveryFilter { status: Some(DeliveryStatus::Failed) };
    let page = PageRequest { limit: 10, cursor: None };
    assert_eq!(store.webhook_deliveries(&acme.tenant, &h.id, &failed, &page).await.unwrap().data.len(), 1);
    let ok = DeliveryFilter { status: Some(DeliveryStatus::Succeeded) };
    assert!(store.webhook_deliveries(&acme.tenant, &h.id, &ok, &page).await.unwrap().data.is_empty());
    let stats = store.delivery_queue(now()).await.unwrap();
    assert_eq!((stats.due_deliveries, stats.scheduled_retries), (0, 0));
    assert_eq!(store.next_delivery_due(now()).await.unwrap(), None);
}

pub async fn disabling_a_subscription_fails_what_waits_for_it(store: S) {
    let acme = Events::new(&store, "acme").await;
    let h = hook(&["*"], now());
    store.insert_webhook(&acme.tenant, &h).await.unwrap();
    acme.booking().await;
    store.dispatch_events(now(), 100).await.unwrap();
    let off: Edit<Webhook> = Box::new(|w| {
        w.enabled = false;
        Ok(())
    });
    assert!(!store.update_webhook(&acme.tenant, &h.id, off).await.unwrap().enabled);
    assert_eq!(deliveries(&store, &acme.tenant, &h).await[0].status, DeliveryStatus::Failed);
    assert!(claim(&store, now(), 10).await.is_empty());
    let on: Edit<Webhook> = Box::new(|w| {
        w.enabled = true;
        Ok(())
    });
    store.update_webhook(&acme.tenant, &h.id, on).await.unwrap();
    assert!(claim(&store, now(), 10).await.is_empty(), "re-enabling does not resend old events by itself");
}

pub async fn nothing_is_queued_for_a_disabled_subscription(store: S) {
    let acme = Events::new(&store, "acme").await;
    let h = hook(&["*"], now());
    store.insert_webhook(&acme.tenant, &h).await.unwrap();
    let ping = store.ping_webhook(&acme.tenant, &h.id, now()).await.unwrap();
    let off: Edit<Webhook> = Box::new(|w| {
        w.enabled = false;
        Ok(())
    });
    store.update_webhook(&acme.tenant, &h.id, off).await.unwrap();
    let refused = |r: StoreResult<kairos_core::webhook::Delivery>| {
        matches!(r, Err(StoreError::Refused { code: "webhook_disabled", .. }))
    };
    assert!(refused(store.ping_webhook(&acme.tenant, &h.id, now()).await));
    assert!(refused(store.redeliver(&acme.tenant, &h.id, &ping.id, now()).await));
    assert_eq!(deliveries(&store, &acme.tenant, &h).await.len(), 1, "nothing new was written");
}

pub async fn subscriptions_to_one_endpoint_share_its_limit(store: S) {
    let acme = Events::new(&store, "acme").await;
    let mut first = hook(&["*"], now());
    let mut second = hook(&["*"], now());
    first.url = "https://slow.example.com/a".into();
    second.url = "https://SLOW.example.com:443/b".into();
    let elsewhere = hook(&["*"], now());
    for h in [&first, &second, &elsewhere] {
        store.insert_webhook(&acme.tenant, h).await.unwrap();
    }
    for _ in 0..3 {
        acme.booking().await;
    }
    store.dispatch_events(now(), 100).await.unwrap();
    let claimed = claim(&store, now(), 2).await;
    let slow = claimed.iter().filter(|d| d.url.contains("slow")).count();
    let other = claimed.iter().filter(|d| d.webhook_id == elsewhere.id).count();
    assert_eq!((slow, other), (2, 2), "two subscriptions of one endpoint get 2 places between them");
}

pub async fn redelivery_and_pings_queue_new_deliveries_of_one_tenant(store: S) {
    let acme = Events::new(&store, "acme").await;
    let globex = tenant(&store, "globex", Mode::Test).await;
    let h = hook(&["booking.cancelled"], now());
    store.insert_webhook(&acme.tenant, &h).await.unwrap();
    let ping = store.ping_webhook(&acme.tenant, &h.id, now()).await.unwrap();
    assert_eq!((ping.event_type.as_str(), ping.status), ("ping", DeliveryStatus::Pending));
    let sent = claim(&store, now(), 10).await.remove(0);
    assert_eq!(sent.event_id, ping.event_id);
    let envelope: serde_json::Value = serde_json::from_str(&sent.payload).unwrap();
    assert_eq!(
        (envelope["type"].as_str(), envelope["data"]["webhook_id"].as_str()),
        (Some("ping"), Some(h.id.as_str()))
    );
    store.record_attempt(&record(&sent, Some(200), Next::Done(DeliveryStatus::Succeeded)), now()).await.unwrap();
    let again = store.redeliver(&acme.tenant, &h.id, &ping.id, now()).await.unwrap();
    assert_ne!(again.id, ping.id);
    assert_eq!((again.event_id.as_str(), again.status), (ping.event_id.as_str(), DeliveryStatus::Pending));
    assert_eq!(claim(&store, now(), 10).await.remove(0).payload, sent.payload, "the same event, byte for byte");
    assert!(matches!(store.redeliver(&globex, &h.id, &ping.id, now()).await, Err(StoreError::NotFound)));
    assert!(matches!(store.ping_webhook(&globex, &h.id, now()).await, Err(StoreError::NotFound)));
    assert!(matches!(
        store.webhook_deliveries(&globex, &h.id, &DeliveryFilter::default(), &PageRequest::default()).await,
        Err(StoreError::NotFound)
    ));
    assert!(store.webhook(&globex, &h.id).await.unwrap().is_none());
    assert!(!store.delete_webhook(&globex, &h.id).await.unwrap());
}

pub async fn a_rotated_secret_signs_beside_the_new_one_for_a_day(store: S) {
    let acme = Events::new(&store, "acme").await;
    let h = hook(&["*"], now());
    let old = h.secret.clone().unwrap();
    store.insert_webhook(&acme.tenant, &h).await.unwrap();
    let new = WebhookSecret::from_random([9; 32]);
    let rotate: Edit<Webhook> = {
        let new = new.clone();
        Box::new(move |w| {
            w.rotate(new, now());
            Ok(())
        })
    };
    store.update_webhook(&acme.tenant, &h.id, rotate).await.unwrap();
    let stored = store.webhook(&acme.tenant, &h.id).await.unwrap().unwrap();
    assert_eq!(stored.secret.as_ref(), Some(&new));
    store.ping_webhook(&acme.tenant, &h.id, now()).await.unwrap();
    assert_eq!(claim(&store, now(), 10).await.remove(0).secrets, vec![new.clone(), old]);
    store.ping_webhook(&acme.tenant, &h.id, now()).await.unwrap();
    let day_later = now() + SignedDuration::from_hours(24);
    let late = claim(&store, day_later, 10).await;
    assert!(late.iter().all(|d| d.secrets == vec![new.clone()]), "the old secret retires after 24 h");
}

pub async fn deleting_a_subscription_deletes_its_history(store: S) {
    let acme = Events::new(&store, "acme").await;
    let h = hook(&["*"], now());
    store.insert_webhook(&acme.tenant, &h).await.unwrap();
    acme.booking().await;
    store.dispatch_events(now(), 100).await.unwrap();
    let d = claim(&store, now(), 10).await.remove(0);
    assert!(store.delete_webhook(&acme.tenant, &h.id).await.unwrap());
    let late = record(&d, Some(200), Next::Done(DeliveryStatus::Succeeded));
    assert!(!store.record_attempt(&late, now()).await.unwrap(), "an attempt for a deleted subscription is dropped");
    assert_eq!(store.delivery_queue(now()).await.unwrap(), QueueStats::default());
}

pub async fn the_sweep_removes_only_old_finished_history(store: S) {
    let acme = Events::new(&store, "acme").await;
    let h = hook(&["*"], now());
    store.insert_webhook(&acme.tenant, &h).await.unwrap();
    acme.booking().await;
    acme.booking().await;
    store.dispatch_events(now(), 100).await.unwrap();
    let claimed = claim(&store, now(), 10).await;
    store.record_attempt(&record(&claimed[0], Some(200), Next::Done(DeliveryStatus::Succeeded)), now()).await.unwrap();
    // The other stays pending, however old.
    store.record_attempt(&record(&claimed[1], Some(500), Next::RetryAt(now())), now()).await.unwrap();
    let week = SignedDuration::from_hours(7 * 24);
    let report = store.sweep(now() + SignedDuration::from_hours(1), week).await.unwrap();
    assert_eq!((report.deliveries, report.events), (0, 0), "nothing is old enough yet");
    let report = store.sweep(now() + week + SignedDuration::from_secs(1), week).await.unwrap();
    assert_eq!((report.deliveries, report.events), (1, 1));
    let left = deliveries(&store, &acme.tenant, &h).await;
    assert_eq!(left.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), [claimed[1].id.as_str()]);
    assert_eq!(all_events(&store, &acme.tenant).await.len(), 1, "a pending delivery's event is kept");
}

pub async fn expired_idempotency_keys_are_swept(store: S) {
    let a = tenant(&store, "acme", Mode::Test).await;
    let IdempotencyClaim::Claimed(token) = store.claim_idempotency_key(&a, "k1", "f1", now()).await.unwrap() else {
        panic!("a fresh key is claimed")
    };
    let response = StoredResponse { status: 201, body: "{}".into() };
    store.complete_idempotency_key(&a, "k1", &token, &response).await.unwrap();
    let week = SignedDuration::from_hours(7 * 24);
    assert_eq!(store.sweep(now() + SignedDuration::from_hours(23), week).await.unwrap().idempotency_keys, 0);
    assert_eq!(store.sweep(now() + SignedDuration::from_hours(25), week).await.unwrap().idempotency_keys, 1);
}
