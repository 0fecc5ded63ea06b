-- Booking emails: one row per booking and recipient, re-wanted by every change of the
-- booking in its own transaction and claimed under a lease by the email workers (FOR UPDATE
-- SKIP LOCKED). `version` is the invitation's SEQUENCE.
CREATE TABLE booking_emails (
    booking_id       TEXT NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    recipient        TEXT NOT NULL,
    account_id       TEXT NOT NULL,
    mode             TEXT NOT NULL,
    name             TEXT,
    user_id          TEXT,
    position         INTEGER NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('confirmation', 'updated', 'cancelled')),
    version          BIGINT NOT NULL,
    sent_version     BIGINT,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'skipped', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    leased_until     BIGINT,
    last_error       TEXT,
    sent_at          BIGINT,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (booking_id, recipient)
);
CREATE INDEX booking_emails_due ON booking_emails (next_attempt_at) WHERE status = 'pending';

-- The Stripe Checkout Session a payment hold is paid through; unpaid holds are swept.
ALTER TABLE bookings ADD COLUMN checkout_session_id TEXT;
CREATE INDEX bookings_payment_holds ON bookings (hold_expires_at) WHERE status = 'pending_payment';
