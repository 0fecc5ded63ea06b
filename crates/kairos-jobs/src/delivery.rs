//! The webhook delivery worker: fans committed outbox events out to subscriptions, claims
//! due deliveries under a lease, POSTs the exact envelope bytes with both signatures, and
//! records every attempt with what follows it (success, a jittered retry, or `failed`).
//!
//! At least once: a delivery is finished only by recording a 2xx (or its last failure). A
//! worker that dies mid-attempt leaves a claim that lapses after [`DeliveryConfig::lease`];
//! then any worker takes the delivery again. Work is claimed inside one database write, so two
//! workers on one database never send the same attempt twice while a claim stands.

use std::future::Future;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use kairos_core::webhook::{Attempt, Next, RetrySchedule, WebhookSecret, response_excerpt, sign};
use kairos_store::{AttemptRecord, ClaimLimits, ClaimedDelivery, Clock, Store};
use std::sync::Arc;
use tokio::task::JoinSet;

use crate::egress::{self, UrlRefusal};

/// How the worker delivers.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Delays before each retry (`KAIROS_WEBHOOK_RETRY_SCHEDULE`, default 1m,5m,30m).
    pub retry: RetrySchedule,
    /// No answer within this is a failure (`KAIROS_WEBHOOK_TIMEOUT`, default 10 s).
    pub timeout: Duration,
    /// Lets URLs use http and reach private addresses (`KAIROS_ALLOW_PRIVATE_URLS`).
    pub allow_private: bool,
    /// Attempts in flight per endpoint (scheme, host, port) at most, across all workers
    /// (`KAIROS_WEBHOOK_ENDPOINT_CONCURRENCY`).
    pub per_endpoint: usize,
    /// Attempts in flight in this process at most (`KAIROS_WEBHOOK_MAX_IN_FLIGHT`).
    pub max_in_flight: usize,
    /// The longest the worker sleeps without looking at the queue (other nodes' events and
    /// lapsed claims are found this way).
    pub poll: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            retry: RetrySchedule::default(),
            timeout: Duration::from_secs(10),
            allow_private: false,
            per_endpoint: 16,
            max_in_flight: 256,
            poll: Duration::from_secs(1),
        }
    }
}

impl DeliveryConfig {
    /// How long a claim lasts: the timeout and a margin for starting the attempt and
    /// recording it. An attempt still unrecorded after it is presumed lost with its worker;
    /// an attempt that would start too late to finish within it is not made (see `deliver`).
    pub fn lease(&self) -> jiff::SignedDuration {
        jiff::SignedDuration::try_from(self.timeout + LEASE_MARGIN).unwrap_or(jiff::SignedDuration::from_secs(25))
    }
}

/// Events fanned out per write: large enough to keep up with bursts, small enough that one
/// write never holds the writer long.
const DISPATCH_BATCH: usize = 500;

/// Fan-out batches per pass of the worker loop at most, so that claims are not held up
/// while a large backlog of events is fanned out.
const DISPATCH_BATCHES_PER_PASS: usize = 4;

/// What a claim's lease allows beyond the timeout: waiting to start, and recording.
const LEASE_MARGIN: Duration = Duration::from_secs(15);

/// The longest pause after repeated store errors.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The least time between two fan-outs: under a stream of commits, events are fanned out in
/// batches rather than one write per commit (the writer is shared with bookings). It bounds
/// what it adds to the commit-to-attempt lag.
const DISPATCH_GAP: Duration = Duration::from_millis(5);

/// The worker. [`DeliveryWorker::run`] until shutdown.
pub struct DeliveryWorker {
    store: Arc<dyn Store>,
    clock: Clock,
    config: DeliveryConfig,
    client: reqwest::Client,
}

impl DeliveryWorker {
    pub fn new(store: Arc<dyn Store>, clock: Clock, config: DeliveryConfig) -> reqwest::Result<Self> {
        let client = egress::client(config.timeout, config.allow_private)?;
        Ok(Self { store, clock, config, client })
    }

    /// Delivers until `shutdown` resolves, then lets attempts in flight finish (each is
    /// bounded by the timeout) and records them.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let this = Arc::new(self);
        let recorded = this.store.events_recorded();
        let queued = this.store.deliveries_queued();
        let mut in_flight: JoinSet<()> = JoinSet::new();
        // New events are looked for when the store says some were committed and on every
        // timer wake (another node may have committed them), at most once per DISPATCH_GAP.
        let mut look_for_events = true;
        let mut last_dispatch: Option<Instant> = None;
        // Deliveries may be due: some were queued, an attempt finished (freeing a place or
        // scheduling a retry), or a timer fired.
        let mut look_for_due = true;
        let mut next_due: Option<Timestamp> = None;
        let mut last_gauges: Option<Instant> = None;
        let mut store_errors: u32 = 0;
        tokio::pin!(shutdown);
        loop {
            while in_flight.try_join_next().is_some() {
                look_for_due = true;
            }
            let mut sleep_for = this.config.poll;
            let mut failed = false;
            if look_for_events {
                let wait = last_dispatch.map_or(Duration::ZERO, |at| DISPATCH_GAP.saturating_sub(at.elapsed()));
                if wait.is_zero() {
                    last_dispatch = Some(Instant::now());
                    match this.dispatch(this.clock.now()).await {
                        Ok((deliveries, more)) => {
                            look_for_due |= deliveries > 0;
                            look_for_events = more;
                        }
                        Err(()) => failed = true,
                    }
                }
                if look_for_events {
                    sleep_for = sleep_for.min(DISPATCH_GAP);
                }
            }
            let now = this.clock.now();
            if next_due.is_some_and(|due| due <= now) {
                look_for_due = true;
                next_due = None;
            }
            let free = this.config.max_in_flight.saturating_sub(in_flight.len());
            if look_for_due && free > 0 && !failed {
                let limits = ClaimLimits {
                    max: free,
                    per_endpoint: this.config.per_endpoint.max(1),
                    lease: this.config.lease(),
                };
                // "Now" is read right before the claim: the lease is measured from it.
                let claimed_at = this.clock.now();
                match this.store.claim_deliveries(claimed_at, &limits).await {
                    Ok(batch) => {
                        // A full claim may have left more waiting: look again when a place
                        // frees (a finished attempt wakes the loop).
                        look_for_due = batch.len() == free;
                        for delivery in batch {
                            let worker = this.clone();
                            let deadline = Instant::now() + this.config.timeout + LEASE_MARGIN / 2;
                            in_flight.spawn(async move { worker.deliver(delivery, deadline).await });
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "claiming webhook deliveries failed");
                        failed = true;
                    }
                }
                match this.store.next_delivery_due(claimed_at).await {
                    Ok(due) => next_due = due,
                    Err(e) => {
                        tracing::error!(error = %e, "reading the webhook queue failed");
                        failed = true;
                    }
                }
            }
            if last_gauges.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                last_gauges = Some(Instant::now());
                this.update_gauges(now).await;
            }
            if let Some(due) = next_due {
                sleep_for = sleep_for.min(Duration::try_from(due.duration_since(now)).unwrap_or(Duration::ZERO));
            }
            // Repeated store errors back off (capped), rather than retrying at once forever.
            store_errors = if failed { store_errors.saturating_add(1) } else { 0 };
            if store_errors > 0 {
                let backoff = Duration::from_millis(100).saturating_mul(1 << store_errors.min(7));
                sleep_for = backoff.min(MAX_BACKOFF);
            }
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => look_for_due = true,
                () = recorded.notified(), if store_errors == 0 => look_for_events = true,
                () = queued.notified(), if store_errors == 0 => look_for_due = true,
                () = tokio::time::sleep(sleep_for) => {
                    look_for_events = true;
                    look_for_due = true;
                }
            }
        }
        tracing::info!(in_flight = in_flight.len(), "webhook worker stopping; finishing attempts in flight");
        while in_flight.join_next().await.is_some() {}
    }

    async fn update_gauges(&self, now: Timestamp) {
        match self.store.delivery_queue(now).await {
            Ok(stats) => {
                let depth = stats.due_deliveries + stats.undispatched_events;
                metrics::gauge!("kairos_webhook_queue_depth").set(depth as f64);
                metrics::gauge!("kairos_webhook_retries_scheduled").set(stats.scheduled_retries as f64);
                let age = stats.oldest_due.map_or(0.0, |t| now.duration_since(t).as_secs_f64().max(0.0));
                metrics::gauge!("kairos_webhook_oldest_pending_age_seconds").set(age);
            }
            Err(e) => tracing::error!(error = %e, "reading the webhook queue failed"),
        }
    }

    /// Fans out what was committed, a few batches at most; returns the deliveries made and
    /// whether more events may be waiting.
    async fn dispatch(&self, now: Timestamp) -> Result<(usize, bool), ()> {
        let mut deliveries = 0;
        for _ in 0..DISPATCH_BATCHES_PER_PASS {
            match self.store.dispatch_events(now, DISPATCH_BATCH).await {
                Ok(done) => {
                    deliveries += done.deliveries;
                    if done.events < DISPATCH_BATCH {
                        return Ok((deliveries, false));
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "fanning out webhook events failed");
                    return Err(());
                }
            }
        }
        Ok((deliveries, true))
    }

    /// One attempt of one claimed delivery, recorded.
    async fn deliver(&self, d: ClaimedDelivery, deadline: Instant) {
        // Started so late that the attempt might outlive its claim (the process was starved):
        // leave it; the claim lapses and the delivery is taken again, never sent twice at once.
        if Instant::now() + self.config.timeout > deadline {
            tracing::warn!(delivery = %d.id, "skipping an attempt that started too late for its claim");
            return;
        }
        let attempted_at = self.clock.now();
        if d.attempts_made == 0 {
            let lag = attempted_at.duration_since(d.event_created_at).as_secs_f64().max(0.0);
            metrics::histogram!("kairos_webhook_delivery_lag_seconds").record(lag);
        }
        let started = Instant::now();
        let (status_code, error, response_body) = self.send(&d).await;
        let elapsed = started.elapsed();
        let succeeded = status_code.is_some_and(|s| (200..300).contains(&s));
        metrics::histogram!("kairos_webhook_attempt_duration_seconds").record(elapsed.as_secs_f64());
        let outcome = if succeeded { "success" } else { "failure" };
        metrics::counter!("kairos_webhook_attempts_total", "outcome" => outcome).increment(1);
        let attempt_number = d.attempts_made.saturating_add(1);
        let now = self.clock.now();
        let next = self.config.retry.after(attempt_number, succeeded, now, rand::random::<f64>());
        if !succeeded {
            tracing::warn!(
                delivery = %d.id, webhook = %d.webhook_id, event = %d.event_id, attempt = attempt_number,
                status = ?status_code, error = error.as_deref().unwrap_or(""), "webhook attempt failed"
            );
        }
        let record = AttemptRecord {
            delivery_id: d.id.clone(),
            lease: d.lease.clone(),
            attempt: Attempt {
                attempted_at,
                status_code,
                duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
                error,
                response_body,
            },
            next,
        };
        match self.store.record_attempt(&record, now).await {
            Ok(true) => {
                if let Next::Done(status) = next {
                    metrics::counter!("kairos_webhook_deliveries_total", "status" => status.as_str()).increment(1);
                }
            }
            Ok(false) => tracing::warn!(delivery = %d.id, "an attempt finished after its claim lapsed"),
            // The claim lapses and the attempt is made again: at least once, never lost.
            Err(e) => tracing::error!(delivery = %d.id, error = %e, "recording a webhook attempt failed"),
        }
    }

    /// POSTs the envelope; returns the status code, the error, and the response excerpt.
    async fn send(&self, d: &ClaimedDelivery) -> (Option<u16>, Option<String>, Option<String>) {
        let url = match url::Url::parse(&d.url) {
            Ok(url) => url,
            Err(e) => return (None, Some(UrlRefusal::Malformed(e.to_string()).to_string()), None),
        };
        if let Err(refusal) = egress::check_target(&url, self.config.allow_private) {
            return (None, Some(refusal.to_string()), None);
        }
        let secrets: Vec<&WebhookSecret> = d.secrets.iter().collect();
        // `webhook-timestamp` is for receivers to reject replays against their own clock: it
        // is always the system's time, whatever clock schedules the work.
        let signed = sign(&secrets, &d.event_id, Clock::system().now(), d.payload.as_bytes());
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", signed.webhook_id)
            .header("webhook-timestamp", signed.webhook_timestamp)
            .header("webhook-signature", signed.webhook_signature)
            .header("x-webhook-signature", signed.x_webhook_signature)
            .body(d.payload.clone())
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(e) => return (None, Some(self.describe(&e)), None),
        };
        let status = response.status().as_u16();
        let mut body = Vec::new();
        let mut read_error = None;
        // Only the excerpt is kept: stop reading past it.
        while body.len() <= kairos_core::webhook::RESPONSE_EXCERPT_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => {
                    read_error = Some(self.describe(&e));
                    break;
                }
            }
        }
        let error = match (read_error, (200..300).contains(&status)) {
            (Some(e), true) => {
                // The receiver answered 2xx: the event was accepted, whatever became of the body.
                tracing::debug!(error = %e, "reading a 2xx response body failed");
                None
            }
            (Some(e), false) => Some(e),
            (None, true) => None,
            (None, false) if (300..400).contains(&status) => {
                Some(format!("the receiver answered {status}; redirects are not followed, register the final URL"))
            }
            (None, false) => Some(format!("the receiver answered {status}")),
        };
        (Some(status), error, Some(response_excerpt(&body)))
    }

    /// A failed request as a sentence for the delivery history.
    fn describe(&self, e: &reqwest::Error) -> String {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
        let mut deepest = e.to_string();
        while let Some(err) = source {
            if let Some(refusal) = err.downcast_ref::<UrlRefusal>() {
                return refusal.to_string();
            }
            deepest = err.to_string();
            source = err.source();
        }
        if e.is_timeout() {
            format!("no answer within {:?}", self.config.timeout)
        } else if e.is_connect() {
            format!("could not connect: {deepest}")
        } else {
            format!("the request failed: {deepest}")
        }
    }
}
