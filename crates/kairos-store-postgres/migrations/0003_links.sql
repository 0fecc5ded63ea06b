-- Booking links: public pages at /l/{slug}. The slug is unique across the server (the page
-- carries no key); a link goes with its business.
CREATE TABLE links (
    id                TEXT PRIMARY KEY,
    account_id        TEXT NOT NULL,
    mode              TEXT NOT NULL,
    slug              TEXT NOT NULL UNIQUE,
    title             TEXT NOT NULL,
    business_id       TEXT REFERENCES businesses (id) ON DELETE CASCADE,
    participants      JSONB NOT NULL DEFAULT '[]',
    duration_minutes  INTEGER NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX links_by_tenant ON links (account_id, mode, id);
