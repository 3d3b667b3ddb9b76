-- A person's own settings (issue 12): the IANA time zone their due times are typed and shown
-- in and their "today" is counted in, and how long before a task's due time they want its
-- reminder. Zone names are checked by the engine (chrono-tz) before they are written.

-- Installation-wide values the engine is configured with, kept where every writer sees them:
-- `default_time_zone` is written by `crm serve` / `crm up` from CRM_TIME_ZONE at start.
CREATE TABLE installation_settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

ALTER TABLE users
    ADD COLUMN time_zone             TEXT CHECK (time_zone IS NULL OR length(time_zone) BETWEEN 1 AND 64),
    ADD COLUMN remind_before_minutes INT NOT NULL DEFAULT 0 CHECK (remind_before_minutes BETWEEN 0 AND 10080);
UPDATE users SET time_zone = 'UTC';
ALTER TABLE users ALTER COLUMN time_zone SET NOT NULL;

-- Every way a user comes to be (the API, the web admin page, an invite redeemed in the chat,
-- `crm user add`, `crm up`) gets the installation's default zone unless it names one, without
-- each of them having to know it.
CREATE FUNCTION users_default_time_zone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.time_zone IS NULL THEN
        NEW.time_zone := COALESCE(
            (SELECT value FROM installation_settings WHERE key = 'default_time_zone'), 'UTC');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER users_default_time_zone BEFORE INSERT ON users
    FOR EACH ROW EXECUTE FUNCTION users_default_time_zone();
