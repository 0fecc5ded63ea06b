-- The core schema: accounts and keys, users and businesses, busy time, bookings, the
-- webhook outbox and idempotency keys. Times are Unix milliseconds (INTEGER), UTC.

CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    mode        TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    key_hash    TEXT NOT NULL UNIQUE,
    key_prefix  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
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
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
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
    buffer_before_minutes   INTEGER NOT NULL,
    buffer_after_minutes    INTEGER NOT NULL,
    minimum_notice_minutes  INTEGER NOT NULL,
    max_bookings_per_day    INTEGER,
    slot_step_minutes       INTEGER,
    price_amount            INTEGER,
    price_currency          TEXT,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL
);
CREATE INDEX businesses_by_tenant ON businesses (account_id, mode, id);

CREATE TABLE business_hosts (
    business_id  TEXT NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    PRIMARY KEY (business_id, user_id)
);
CREATE INDEX business_hosts_by_user ON business_hosts (user_id);

-- Busy time from users' calendars (written by calendar sync).
CREATE TABLE busy_blocks (
    id          INTEGER PRIMARY KEY,
    account_id  TEXT NOT NULL,
    mode        TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    source      TEXT NOT NULL,
    start_at    INTEGER NOT NULL,
    end_at      INTEGER NOT NULL
);
-- Blocks are stored at most 7 days long (longer ones as several rows), so "what overlaps
-- [a, b)" is the bounded range start_at in (a - 7 days, b) of this index.
CREATE INDEX busy_blocks_by_user_start ON busy_blocks (user_id, start_at, end_at);

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
    start_at             INTEGER NOT NULL,
    end_at               INTEGER NOT NULL,
    -- The time the booking keeps from others: its own times widened by its business's
    -- buffers when it was made or moved.
    held_from            INTEGER NOT NULL,
    held_until           INTEGER NOT NULL,
    -- 1 when the booking holds no person's time (a business without hosts): then it holds
    -- the business's own time, even after hosts are added.
    holds_business       INTEGER NOT NULL,
    hold_expires_at      INTEGER,
    payment_amount       INTEGER,
    payment_currency     TEXT,
    checkout_url         TEXT,
    cancelled_at         INTEGER,
    cancellation_reason  TEXT,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    CHECK (end_at > start_at)
);
CREATE INDEX bookings_by_tenant ON bookings (account_id, mode, id);
-- A held span is at most 72 hours (24 h booking, 24 h buffers each side): overlap queries
-- are bounded ranges of held_from.
CREATE INDEX bookings_by_business_held
    ON bookings (business_id, held_from, held_until, status, hold_expires_at, start_at, holds_business);

-- The people a booking holds. Times and the holding state are copied here so that one
-- index answers "what holds this person's time" without touching `bookings`.
CREATE TABLE booking_participants (
    booking_id       TEXT NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL,
    email            TEXT NOT NULL,
    name             TEXT,
    position         INTEGER NOT NULL,
    held_from        INTEGER NOT NULL,
    held_until       INTEGER NOT NULL,
    holds            INTEGER NOT NULL,
    hold_expires_at  INTEGER,
    PRIMARY KEY (booking_id, user_id)
);
-- Covering: overlap queries read everything they need from the index itself.
CREATE INDEX booking_participants_holding ON booking_participants (user_id, held_from, held_until, hold_expires_at, booking_id)
    WHERE holds = 1;

-- Webhook events, written in the same transaction as the change that caused them.
CREATE TABLE outbox_events (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL,
    mode        TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX outbox_events_by_tenant ON outbox_events (account_id, mode, id);

CREATE TABLE idempotency_keys (
    account_id    TEXT NOT NULL,
    mode          TEXT NOT NULL,
    key           TEXT NOT NULL,
    fingerprint   TEXT NOT NULL,
    status        INTEGER,
    body          TEXT,
    created_at    INTEGER NOT NULL,
    locked_until  INTEGER NOT NULL,
    -- Who holds an unfinished claim: only they may complete or release it.
    token         TEXT NOT NULL,
    PRIMARY KEY (account_id, mode, key)
);
