-- The whole schema on PostgreSQL (the SQLite backend reached the same shape in four steps).
-- Times are Unix milliseconds (BIGINT, UTC), exactly as on SQLite, so both backends read
-- and write the same values; ranges over them use int8range.
--
-- No double booking across nodes rests on the database: booking_participants carries an
-- exclusion constraint (no two holding rows of one person overlap), and booking writes take
-- transaction-scoped advisory locks per person and business before re-checking the rules.

CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    mode        TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    key_hash    TEXT NOT NULL UNIQUE,
    key_prefix  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts (id),
    mode            TEXT NOT NULL,
    email           TEXT NOT NULL,
    name            TEXT,
    timezone        TEXT NOT NULL,
    working_hours   TEXT NOT NULL,
    date_overrides  TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (account_id, mode, email)
);
CREATE INDEX users_by_tenant ON users (account_id, mode, id);

CREATE TABLE businesses (
    id                      TEXT PRIMARY KEY,
    account_id              TEXT NOT NULL REFERENCES accounts (id),
    mode                    TEXT NOT NULL,
    name                    TEXT NOT NULL,
    timezone                TEXT NOT NULL,
    working_hours           TEXT NOT NULL,
    date_overrides          TEXT NOT NULL,
    buffer_before_minutes   BIGINT NOT NULL,
    buffer_after_minutes    BIGINT NOT NULL,
    minimum_notice_minutes  BIGINT NOT NULL,
    max_bookings_per_day    BIGINT,
    slot_step_minutes       BIGINT,
    price_amount            BIGINT,
    price_currency          TEXT,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL
);
CREATE INDEX businesses_by_tenant ON businesses (account_id, mode, id);

CREATE TABLE business_hosts (
    business_id  TEXT NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    position     BIGINT NOT NULL,
    PRIMARY KEY (business_id, user_id)
);
CREATE INDEX business_hosts_by_user ON business_hosts (user_id);

-- Busy time from users' calendars (written by calendar sync), at most 7 days per row.
CREATE TABLE busy_blocks (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  TEXT NOT NULL,
    mode        TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    source      TEXT NOT NULL,
    start_at    BIGINT NOT NULL,
    end_at      BIGINT NOT NULL
);
CREATE INDEX busy_blocks_by_user_start ON busy_blocks (user_id, start_at, end_at);
CREATE INDEX busy_blocks_by_source ON busy_blocks (source);

CREATE TABLE bookings (
    id                   TEXT PRIMARY KEY,
    account_id           TEXT NOT NULL,
    mode                 TEXT NOT NULL,
    business_id          TEXT,
    status               TEXT NOT NULL CHECK (status IN ('confirmed', 'pending_payment', 'cancelled')),
    customer_name        TEXT,
    customer_email       TEXT,
    title                TEXT NOT NULL,
    notes                TEXT,
    description          TEXT,
    metadata             TEXT NOT NULL,
    start_at             BIGINT NOT NULL,
    end_at               BIGINT NOT NULL,
    held_from            BIGINT NOT NULL,
    held_until           BIGINT NOT NULL,
    holds_business       BOOLEAN NOT NULL,
    hold_expires_at      BIGINT,
    payment_amount       BIGINT,
    payment_currency     TEXT,
    checkout_url         TEXT,
    cancelled_at         BIGINT,
    cancellation_reason  TEXT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    CHECK (end_at > start_at)
);
CREATE INDEX bookings_by_tenant ON bookings (account_id, mode, id);
CREATE INDEX bookings_by_business_held
    ON bookings (business_id, held_from, held_until, status, hold_expires_at, start_at, holds_business);

-- The people a booking holds, with its held span copied. `holds` is false once the booking
-- is cancelled or its payment hold has lapsed (a booking write clears lapsed holds of the
-- people it involves before inserting, so the constraint below never sees a stale one).
CREATE TABLE booking_participants (
    booking_id       TEXT NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL,
    email            TEXT NOT NULL,
    name             TEXT,
    position         BIGINT NOT NULL,
    held_from        BIGINT NOT NULL,
    held_until       BIGINT NOT NULL,
    holds            BOOLEAN NOT NULL,
    hold_expires_at  BIGINT,
    PRIMARY KEY (booking_id, user_id),
    -- The database's own guarantee: one person's holding spans never overlap, whichever
    -- node wrote them.
    CONSTRAINT booking_participants_no_overlap
        EXCLUDE USING gist (user_id WITH =, int8range(held_from, held_until) WITH &&) WHERE (holds)
);
CREATE INDEX booking_participants_holding ON booking_participants (user_id, held_from, held_until, hold_expires_at, booking_id)
    WHERE holds;

-- Webhook events, written in the same transaction as the change that caused them.
CREATE TABLE outbox_events (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL,
    mode        TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    dispatched  BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX outbox_events_by_tenant ON outbox_events (account_id, mode, id);
CREATE INDEX outbox_events_undispatched ON outbox_events (id) WHERE NOT dispatched;
CREATE INDEX outbox_events_dispatched ON outbox_events (created_at) WHERE dispatched;

CREATE TABLE idempotency_keys (
    account_id    TEXT NOT NULL,
    mode          TEXT NOT NULL,
    key           TEXT NOT NULL,
    fingerprint   TEXT NOT NULL,
    status        BIGINT,
    body          TEXT,
    created_at    BIGINT NOT NULL,
    locked_until  BIGINT NOT NULL,
    token         TEXT NOT NULL,
    PRIMARY KEY (account_id, mode, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

CREATE TABLE webhooks (
    id                          TEXT PRIMARY KEY,
    account_id                  TEXT NOT NULL,
    mode                        TEXT NOT NULL,
    url                         TEXT NOT NULL,
    endpoint                    TEXT NOT NULL,
    events                      TEXT NOT NULL,
    description                 TEXT,
    enabled                     BOOLEAN NOT NULL,
    secret                      TEXT NOT NULL,
    previous_secret             TEXT,
    previous_secret_expires_at  BIGINT,
    created_at                  BIGINT NOT NULL,
    updated_at                  BIGINT NOT NULL
);
CREATE INDEX webhooks_by_tenant ON webhooks (account_id, mode, id);
CREATE INDEX webhooks_by_endpoint ON webhooks (endpoint);

CREATE TABLE webhook_deliveries (
    id                TEXT PRIMARY KEY,
    webhook_id        TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id          TEXT NOT NULL REFERENCES outbox_events (id),
    event_type        TEXT NOT NULL,
    event_created_at  BIGINT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts          BIGINT NOT NULL DEFAULT 0,
    next_attempt_at   BIGINT,
    lease             TEXT,
    locked_until      BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_by_event ON webhook_deliveries (event_id);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (webhook_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_claimed ON webhook_deliveries (webhook_id, locked_until) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_next ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (updated_at) WHERE status <> 'pending';

CREATE TABLE webhook_attempts (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id    TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempted_at   BIGINT NOT NULL,
    status_code    BIGINT,
    duration_ms    BIGINT NOT NULL,
    error          TEXT,
    response_body  TEXT
);
CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (delivery_id, id);

CREATE TABLE calendar_connections (
    id                 TEXT PRIMARY KEY,
    account_id         TEXT NOT NULL,
    mode               TEXT NOT NULL,
    user_id            TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider           TEXT NOT NULL,
    url                TEXT NOT NULL,
    status             TEXT NOT NULL,
    etag               TEXT,
    last_modified      TEXT,
    last_sync          BIGINT,
    last_error         TEXT,
    next_sync_at       BIGINT NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    secret             TEXT,
    sync_requested_at  BIGINT,
    UNIQUE (user_id, provider, url)
);
CREATE INDEX calendar_connections_by_tenant ON calendar_connections (account_id, mode, user_id);
CREATE INDEX calendar_connections_due ON calendar_connections (next_sync_at);

CREATE TABLE calendars (
    id             TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL,
    mode           TEXT NOT NULL,
    connection_id  TEXT NOT NULL REFERENCES calendar_connections (id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL,
    name           TEXT NOT NULL,
    provider       TEXT NOT NULL,
    is_primary     BOOLEAN NOT NULL,
    selected       BOOLEAN NOT NULL,
    source         TEXT NOT NULL,
    event_count    BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    remote_id      TEXT,
    sync_cursor    TEXT,
    writable       BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX calendars_by_connection ON calendars (connection_id);
CREATE INDEX calendars_by_user ON calendars (account_id, mode, user_id);
CREATE UNIQUE INDEX calendars_by_remote_id ON calendars (connection_id, remote_id);

CREATE TABLE calendar_items (
    calendar_id  TEXT NOT NULL REFERENCES calendars (id) ON DELETE CASCADE,
    remote_id    TEXT NOT NULL,
    etag         TEXT,
    ical         TEXT NOT NULL,
    PRIMARY KEY (calendar_id, remote_id)
);

CREATE TABLE oauth_states (
    nonce         TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL,
    mode          TEXT NOT NULL,
    provider      TEXT NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri  TEXT NOT NULL,
    app_state     TEXT,
    verifier      TEXT NOT NULL,
    expires_at    BIGINT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX oauth_states_expiry ON oauth_states (expires_at);

CREATE TABLE push_channels (
    id             TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL,
    mode           TEXT NOT NULL,
    connection_id  TEXT NOT NULL REFERENCES calendar_connections (id) ON DELETE CASCADE,
    calendar_id    TEXT NOT NULL REFERENCES calendars (id) ON DELETE CASCADE,
    provider       TEXT NOT NULL,
    resource_id    TEXT,
    token_hash     TEXT NOT NULL,
    expires_at     BIGINT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX push_channels_by_connection ON push_channels (connection_id);
CREATE INDEX push_channels_by_calendar ON push_channels (calendar_id);
CREATE INDEX push_channels_expiry ON push_channels (expires_at);

CREATE TABLE calendar_writes (
    booking_id       TEXT NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL,
    account_id       TEXT NOT NULL,
    mode             TEXT NOT NULL,
    connection_id    TEXT NOT NULL REFERENCES calendar_connections (id) ON DELETE CASCADE,
    calendar_id      TEXT NOT NULL REFERENCES calendars (id) ON DELETE CASCADE,
    remote_id        TEXT,
    etag             TEXT,
    wanted           TEXT NOT NULL,
    version          BIGINT NOT NULL,
    written_version  BIGINT NOT NULL DEFAULT 0,
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    leased_until     BIGINT,
    last_error       TEXT,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (booking_id, user_id)
);
CREATE INDEX calendar_writes_due ON calendar_writes (status, next_attempt_at);
CREATE INDEX calendar_writes_by_calendar ON calendar_writes (calendar_id, remote_id);
CREATE INDEX calendar_writes_by_connection ON calendar_writes (connection_id);

-- Leases: cross-node mutual exclusion for work that calls out (a calendar sync, a token
-- refresh, a push renewal), where no transaction may be held. A row is its holder's until
-- expires_at.
CREATE TABLE leases (
    key         TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);
