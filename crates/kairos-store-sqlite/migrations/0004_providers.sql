-- Provider connections (Google, Microsoft, CalDAV): sealed credentials, calendars with their
-- provider ids and sync cursors, the items each calendar holds, pending OAuth authorizations
-- and push channels.

ALTER TABLE calendar_connections ADD COLUMN secret TEXT;
-- When a sync was last asked for (push, an event written): a sync that began before it
-- leaves the connection due, so the request is not lost.
ALTER TABLE calendar_connections ADD COLUMN sync_requested_at INTEGER;

ALTER TABLE calendars ADD COLUMN remote_id TEXT;
ALTER TABLE calendars ADD COLUMN sync_cursor TEXT;
ALTER TABLE calendars ADD COLUMN writable INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX calendars_by_remote_id ON calendars (connection_id, remote_id);

-- One provider object (event, series master, changed instance) as iCalendar text.
CREATE TABLE calendar_items (
    calendar_id  TEXT NOT NULL REFERENCES calendars (id) ON DELETE CASCADE,
    remote_id    TEXT NOT NULL,
    etag         TEXT,
    ical         TEXT NOT NULL,
    PRIMARY KEY (calendar_id, remote_id)
) WITHOUT ROWID;

CREATE TABLE oauth_states (
    nonce         TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL,
    mode          TEXT NOT NULL,
    provider      TEXT NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri  TEXT NOT NULL,
    app_state     TEXT,
    verifier      TEXT NOT NULL,
    expires_at    INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
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
    expires_at     INTEGER NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX push_channels_by_connection ON push_channels (connection_id);
CREATE INDEX push_channels_expiry ON push_channels (expires_at);

-- Write-back: each booking's event on each participant's calendar, as it should be
-- (`wanted`) and as last written. Queued in the booking's own transaction; the write-back
-- worker claims due rows under a lease, calls the provider, and records the outcome.
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
    version          INTEGER NOT NULL,
    written_version  INTEGER NOT NULL DEFAULT 0,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    leased_until     INTEGER,
    last_error       TEXT,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (booking_id, user_id)
);
CREATE INDEX calendar_writes_due ON calendar_writes (status, next_attempt_at);
CREATE INDEX calendar_writes_by_calendar ON calendar_writes (calendar_id, remote_id);
CREATE INDEX calendar_writes_by_connection ON calendar_writes (connection_id);
CREATE INDEX push_channels_by_calendar ON push_channels (calendar_id);
