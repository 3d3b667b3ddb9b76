-- Hardening at the edges: tokens that say what they may do, the token behind every
-- change, secrets sealed with a key that is not in the database, webhook keys apart from
-- the secrets steps read.

-- A `full` token is its user. A `delegate` token (the bot's) acts for the CRM user each
-- request names, with that user's role, and is refused the operator's powers (deploying,
-- secrets and webhook keys, users and roles). Either may expire.
ALTER TABLE api_tokens
    ADD COLUMN scope      TEXT NOT NULL DEFAULT 'full' CHECK (scope IN ('full', 'delegate')),
    ADD COLUMN expires_at TIMESTAMPTZ;

-- The token that made a change: with `actor_id` (whom it acted for) it says who really
-- acted when an admin token or the bot acted for someone. NULL for changes made by runs,
-- triggers and the command line.
ALTER TABLE activity ADD COLUMN token_id BIGINT REFERENCES api_tokens (id);

-- Secrets are sealed (XChaCha20-Poly1305) with a key kept outside Postgres
-- (CRM_SECRET_KEY or the key file): `sealed` is nonce || ciphertext, bound to its namespace
-- and name, so a sealed value copied into another row does not open; `key_id` names the key
-- that sealed it. Rows written before sealing keep their plain `value` until the engine,
-- which holds the key, seals them when it starts; no row has both.
--
-- Namespaces: `step` secrets are what a step granted `secret:NAME` may read; `webhook`
-- keys sign requests to webhook triggers and no step can read them.
ALTER TABLE secrets DROP CONSTRAINT secrets_pkey;
ALTER TABLE secrets
    ADD COLUMN id        BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    ADD COLUMN namespace TEXT NOT NULL DEFAULT 'step' CHECK (namespace IN ('step', 'webhook')),
    ADD COLUMN sealed    BYTEA,
    ADD COLUMN key_id    TEXT,
    ALTER COLUMN value DROP NOT NULL,
    ADD PRIMARY KEY (namespace, name),
    ADD CHECK ((value IS NULL) <> (sealed IS NULL)),
    ADD CHECK ((sealed IS NULL) = (key_id IS NULL));

-- The secrets that webhook triggers of current versions name (or their paths, when they
-- name none) were webhook keys all along: move them out of the steps' reach.
UPDATE secrets SET namespace = 'webhook'
WHERE name IN (
    SELECT COALESCE(t ->> 'secret', t ->> 'key', t ->> 'path')
    FROM workflows w
    JOIN workflow_versions v ON v.workflow = w.name AND v.version = w.current_version,
         jsonb_array_elements(v.manifest -> 'triggers') AS t
    WHERE t ->> 'kind' = 'webhook'
);
