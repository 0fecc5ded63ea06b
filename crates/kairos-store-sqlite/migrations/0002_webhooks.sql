-- Webhook subscriptions, their deliveries and every attempt. Times are Unix milliseconds.

-- 0 until the delivery worker has fanned the event out to its subscriptions.
ALTER TABLE outbox_events ADD COLUMN dispatched INTEGER NOT NULL DEFAULT 0;
CREATE INDEX outbox_events_undispatched ON outbox_events (id) WHERE dispatched = 0;
-- The retention sweep's range.
CREATE INDEX outbox_events_dispatched ON outbox_events (created_at) WHERE dispatched = 1;

CREATE TABLE webhooks (
    id                          TEXT PRIMARY KEY,
    account_id                  TEXT NOT NULL,
    mode                        TEXT NOT NULL,
    url                         TEXT NOT NULL,
    -- scheme://host:port of the URL: attempts in flight are limited per endpoint.
    endpoint                    TEXT NOT NULL,
    events                      TEXT NOT NULL,   -- JSON array of event types, or ["*"]
    description                 TEXT,
    enabled                     INTEGER NOT NULL,
    secret                      TEXT NOT NULL,
    -- The secret a rotation replaced; it signs beside the new one until it expires.
    previous_secret             TEXT,
    previous_secret_expires_at  INTEGER,
    created_at                  INTEGER NOT NULL,
    updated_at                  INTEGER NOT NULL
);
CREATE INDEX webhooks_by_tenant ON webhooks (account_id, mode, id);
CREATE INDEX webhooks_by_endpoint ON webhooks (endpoint);

CREATE TABLE webhook_deliveries (
    id                TEXT PRIMARY KEY,
    webhook_id        TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id          TEXT NOT NULL REFERENCES outbox_events (id),
    event_type        TEXT NOT NULL,
    event_created_at  INTEGER NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    -- Null once finished.
    next_attempt_at   INTEGER,
    -- A worker's claim on the next attempt: who (lease) and until when.
    lease             TEXT,
    locked_until      INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_by_event ON webhook_deliveries (event_id);
-- A subscription's waiting work, oldest due first: claims read a few rows per subscription.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (webhook_id, next_attempt_at) WHERE status = 'pending';
-- Attempts in flight (unexpired claims), per subscription.
CREATE INDEX webhook_deliveries_claimed ON webhook_deliveries (webhook_id, locked_until) WHERE status = 'pending';
-- When the next attempt falls due, and how much is due (metrics).
CREATE INDEX webhook_deliveries_next ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (updated_at) WHERE status != 'pending';

CREATE TABLE webhook_attempts (
    id             INTEGER PRIMARY KEY,
    delivery_id    TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempted_at   INTEGER NOT NULL,
    status_code    INTEGER,
    duration_ms    INTEGER NOT NULL,
    error          TEXT,
    response_body  TEXT
);
CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (delivery_id, id);

CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
