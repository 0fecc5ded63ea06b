-- Leases: cross-process mutual exclusion for work that calls out (a calendar sync, a token
-- refresh, a push renewal). A row is its holder's until expires_at.
CREATE TABLE leases (
    key         TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;
