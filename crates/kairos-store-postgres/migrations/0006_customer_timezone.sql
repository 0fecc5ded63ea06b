-- The customer's own time zone, when known: their emails show times in it.
ALTER TABLE bookings ADD COLUMN customer_timezone TEXT;
