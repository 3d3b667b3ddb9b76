-- Workers hold no database credentials: they authenticate to the engine with a worker
-- credential, and everything a step writes is applied by the engine and journaled.

-- Worker credentials (`crm worker credential create`). Only the SHA-256 of the secret is
-- stored; a credential lets a worker take jobs and make host calls for the attempts it was
-- handed, nothing else: it is not a user and holds no role.
CREATE TABLE worker_credentials (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         TEXT NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    secret_hash  BYTEA NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);

-- The engine's signing key: jobs on Redis are signed with it (Ed25519), and the
-- credential bound to each attempt is a MAC under a key derived from it. Every engine
-- replica reads the same row; the first one to start creates it.
CREATE TABLE engine_keys (
    id         SMALLINT PRIMARY KEY CHECK (id = 1),
    seed       BYTEA NOT NULL CHECK (length(seed) = 32),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Every write a step made, by (run, step, write number). A repeated attempt that makes its
-- n-th write again gets the journaled reply instead of writing twice; `target` is what
-- makes two writes "the same write" (the function and the record, key or user it names).
CREATE TABLE host_call_journal (
    run_id      UUID NOT NULL,
    step        TEXT NOT NULL,
    seq         INT NOT NULL CHECK (seq > 0),
    attempt     INT NOT NULL CHECK (attempt > 0),
    target      TEXT NOT NULL,
    call        JSONB NOT NULL,
    reply       JSONB NOT NULL,
    at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, step, seq),
    FOREIGN KEY (run_id, step) REFERENCES run_steps (run_id, step) ON DELETE CASCADE
);

-- `ensure_task`: one open task per workflow and key, whoever races for it.
ALTER TABLE tasks ADD COLUMN dedupe_key TEXT CHECK (length(dedupe_key) BETWEEN 1 AND 300);
CREATE UNIQUE INDEX tasks_dedupe_open ON tasks (dedupe_key)
    WHERE dedupe_key IS NOT NULL AND NOT done AND deleted_at IS NULL;
