-- Proposals: multi-party scheduling. A proposal is one aggregate (its slots, participants'
-- responses and votes) changed only by the core's state machine inside a write transaction,
-- so it is kept as one JSON document; the columns beside it are what queries select on.
CREATE TABLE proposals (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL,
    mode        TEXT NOT NULL,
    status      TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    document    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
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

-- Invitation emails, one per participant. `link_sealed` is the response link sealed with the
-- server's keyring; it is erased when the email reaches a final state.
CREATE TABLE proposal_emails (
    proposal_id      TEXT NOT NULL REFERENCES proposals (id) ON DELETE CASCADE,
    recipient        TEXT NOT NULL,
    account_id       TEXT NOT NULL,
    mode             TEXT NOT NULL,
    name             TEXT,
    link_sealed      TEXT,
    status           TEXT NOT NULL
                     CHECK (status = 'pending' OR status = 'sent' OR status = 'skipped' OR status = 'failed'),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    leased_until     INTEGER,
    last_error       TEXT,
    sent_at          INTEGER,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (proposal_id, recipient)
);
CREATE INDEX proposal_emails_due ON proposal_emails (next_attempt_at) WHERE status = 'pending';
