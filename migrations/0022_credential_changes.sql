-- Engines keep the API tokens, users and worker credentials they verified lately, so a
-- request does not cost a database round trip for its credential. Whatever could withdraw
-- or narrow what one grants (a revoke, an expiry, a scope, a user's role or settings, a
-- disabled user) announces itself here at commit, and every engine forgets what it kept
-- (crm_store::credential_changes). Touching `last_used_at` grants nothing and stays quiet.
CREATE FUNCTION credentials_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('crm_credentials', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER api_tokens_changed
    AFTER UPDATE OF user_id, token_hash, revoked_at, scope, expires_at OR DELETE OR TRUNCATE ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION credentials_changed();
CREATE TRIGGER users_changed AFTER UPDATE OR DELETE OR TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION credentials_changed();
CREATE TRIGGER worker_credentials_changed
    AFTER UPDATE OF secret_hash, revoked_at OR DELETE OR TRUNCATE ON worker_credentials
    FOR EACH STATEMENT EXECUTE FUNCTION credentials_changed();
