-- Step components, content-addressed: the digest is the SHA-256 of the bytes, so storing
-- the same component twice is a no-op and a digest always names the same code.
CREATE TABLE components (
    digest     TEXT PRIMARY KEY CHECK (digest ~ '^[0-9a-f]{64}$'),
    bytes      BYTEA NOT NULL,
    size       INT NOT NULL CHECK (size = length(bytes)),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- A small key-value store per workflow, kept across runs (the `state` capability).
CREATE TABLE workflow_state (
    workflow   TEXT NOT NULL,
    key        TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    value      JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow, key)
);

-- Secrets a step may read by name once its manifest grants `secret:NAME`.
CREATE TABLE secrets (
    name       TEXT PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9._-]{1,253}$'),
    value      TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Chat messages steps sent to CRM users (the `notify` capability). The bot delivers them
-- to the user's linked chat and marks them; claim with FOR UPDATE SKIP LOCKED.
CREATE TABLE notifications (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id),
    text         TEXT NOT NULL CHECK (length(btrim(text)) BETWEEN 1 AND 4096),
    run_id       UUID,
    step         TEXT,
    workflow     TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivered_at TIMESTAMPTZ
);
CREATE INDEX notifications_pending ON notifications (id) WHERE delivered_at IS NULL;
