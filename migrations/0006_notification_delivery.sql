-- Delivery of `notifications` to Telegram by the bot (see engine/api/src/routes/notifications.rs).
-- A notification ends either delivered (`delivered_at`) or undeliverable with a reason (the
-- user has no linked Telegram account, Telegram refused the chat); until then it is pending
-- and served to the bot again after every reconnect, so delivery is at least once.
ALTER TABLE notifications
    ADD COLUMN undeliverable_at TIMESTAMPTZ,
    ADD COLUMN undeliverable_reason TEXT
        CHECK (undeliverable_reason IS NULL OR length(btrim(undeliverable_reason)) BETWEEN 1 AND 1000),
    ADD CONSTRAINT notifications_one_outcome
        CHECK ((undeliverable_at IS NULL) = (undeliverable_reason IS NULL)
               AND (delivered_at IS NULL OR undeliverable_at IS NULL));

DROP INDEX notifications_pending;
CREATE INDEX notifications_pending ON notifications (id)
    WHERE delivered_at IS NULL AND undeliverable_at IS NULL;
CREATE INDEX notifications_by_user ON notifications (user_id, id);

-- Wakes the engine's notification stream when a transaction that added notifications
-- commits (NOTIFY is delivered at commit; one per statement, equal payloads coalesce), so
-- the stream waits on a signal instead of polling the table.
CREATE FUNCTION notifications_announce() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('crm_notifications', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER notifications_announce AFTER INSERT ON notifications
    FOR EACH STATEMENT EXECUTE FUNCTION notifications_announce();
