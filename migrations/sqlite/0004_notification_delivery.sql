-- When a notification reached its user (live, or at their next login), so it is
-- delivered once; pending ones are found by user.
ALTER TABLE notifications ADD COLUMN delivered_at TEXT;
CREATE INDEX notifications_pending ON notifications (user_id) WHERE delivered_at IS NULL;
