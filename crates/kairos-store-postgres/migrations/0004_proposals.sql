-- Proposals: multi-party scheduling. A proposal is one aggregate (its slots, participants'
-- responses and votes) changed only by the core's state machine inside a write transaction
-- that holds its row (SELECT … FOR UPDATE), so it is kept as one JSON document; the columns
-- beside it are what queries select on. The same tables as SQLite's 0008_proposals.sql.
CREATE TABLE proposals (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL,
    mode        TEXT NOT NULL,
    status      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    document    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX proposals_by_tenant ON proposals (account_id, mode, id);
CREATE INDEX proposals_open_by_expiry ON proposals (expires_at) WHERE status = 'open';

-- Response links: only the SHA-256 of each token is kept. `participant` is the index of the
-- named participant the link speaks for; NULL is an open poll's shared vote link.
CREATE TABLE proposal_tokens (
    token_hash   TEXT PRIMARY KEY,
    proposal_id  TEXT NOT NULL REFERENCES proposals (id) ON DELETE CASCADE,
    participant  INTEGER
);
CREATE INDEX proposal_tokens_by_proposal ON proposal_tokens (proposal_id);

-- Invitation emails, one per participant, claimed under a lease by the email workers (FOR
-- UPDATE SKIP LOCKED). `link_sealed` is the response link sealed with the server's keyring;
-- it is erased when the email reaches a final state. `position` keeps the participants' order.
CREATE TABLE proposal_emails (
    proposal_id      TEXT NOT NULL REFERENCES proposals (id) ON DELETE CASCADE,
    recipient        TEXT NOT NULL,
    account_id       TEXT NOT NULL,
    mode             TEXT NOT NULL,
    position         INTEGER NOT NULL,
    name             TEXT,
    link_sealed      TEXT,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'skipped', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    leased_until     BIGINT,
    last_error       TEXT,
    sent_at          BIGINT,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (proposal_id, recipient)
);
CREATE INDEX proposal_emails_due ON proposal_emails (next_attempt_at) WHERE status = 'pending';
