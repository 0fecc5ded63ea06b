-- Proposal outcome emails: the row of each proposal and recipient, first the invitation, is
-- re-wanted in the transaction of the change with the outcome ('accepted' to the participants
-- who are not Kairos users and can come, 'resolved' to every named participant) and, when an
-- accepted or resolved proposal is cancelled, with the cancellation. `version` is bumped by
-- every re-want and `sent_version` is the one that last went out, as for booking emails: a
-- send that finishes after a newer re-want never marks the newer email sent.
ALTER TABLE proposal_emails ADD COLUMN kind TEXT NOT NULL DEFAULT 'invitation'
    CHECK (kind = 'invitation' OR kind = 'accepted' OR kind = 'resolved' OR kind = 'cancelled');
ALTER TABLE proposal_emails ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE proposal_emails ADD COLUMN sent_version INTEGER;
UPDATE proposal_emails SET sent_version = 0 WHERE status = 'sent';
