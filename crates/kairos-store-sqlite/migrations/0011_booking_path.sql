-- The longest time one booking holds, per person and per business: an upper bound that every
-- booking write keeps (it only grows), so that the overlap queries of the booking path look
-- back only as far as a booking of that person or business can reach, not the 72 hours any
-- booking could (at one booking an hour, that was 72 rows read per query instead of one).
ALTER TABLE users ADD COLUMN longest_hold_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE businesses ADD COLUMN longest_hold_ms INTEGER NOT NULL DEFAULT 0;
UPDATE users SET longest_hold_ms =
    coalesce((SELECT max(held_until - held_from) FROM booking_participants WHERE user_id = users.id), 0);
UPDATE businesses SET longest_hold_ms =
    coalesce((SELECT max(held_until - held_from) FROM bookings WHERE business_id = businesses.id), 0);

-- A business's hosts in their order straight from an index (each booking reads them; the
-- primary key's order made SQLite sort them every time).
CREATE INDEX business_hosts_in_order ON business_hosts (business_id, position, user_id);
