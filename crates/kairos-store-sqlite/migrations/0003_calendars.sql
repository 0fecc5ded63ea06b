-- Calendar connections (ICS feeds now; Google, Microsoft and CalDAV later) and their calendars.
-- A calendar's busy time lives in busy_blocks with source = the calendar's id.

CREATE TABLE calendar_connections (
    id             TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL,
    mode           TEXT NOT NULL,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider       TEXT NOT NULL,
    url            TEXT NOT NULL,
    status         TEXT NOT NULL,
    etag           TEXT,
    last_modified  TEXT,
    last_sync      INTEGER,
    last_error     TEXT,
    next_sync_at   INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
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
    is_primary     INTEGER NOT NULL,
    selected       INTEGER NOT NULL,
    -- The calendar's iCalendar text as last fetched (the events API expands it).
    source         TEXT NOT NULL,
    event_count    INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX calendars_by_connection ON calendars (connection_id);
CREATE INDEX calendars_by_user ON calendars (account_id, mode, user_id);
CREATE INDEX busy_blocks_by_source ON busy_blocks (source);
