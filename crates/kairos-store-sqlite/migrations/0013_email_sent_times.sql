-- What the last email to each recipient said the booking's times were: an update then says
-- "Was: …".
ALTER TABLE booking_emails ADD COLUMN sent_start_at INTEGER;
ALTER TABLE booking_emails ADD COLUMN sent_end_at INTEGER;
