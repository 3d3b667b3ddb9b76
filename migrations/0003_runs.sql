-- Workflows and their runs. Postgres is the truth about every run; Redis only carries step
-- jobs and results, and the scheduler rebuilds whatever Redis loses from these tables.

-- A deployed workflow. Deploys append versions; `current_version` is what new runs use,
-- and a run pins the version it started with.
CREATE TABLE workflows (
    name            TEXT PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]{0,62}$'),
    current_version INT NOT NULL,
    enabled         BOOLEAN NOT NULL DEFAULT true,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE workflow_versions (
    workflow    TEXT NOT NULL REFERENCES workflows (name) ON DELETE CASCADE,
    -- 1, 2, 3… per workflow, in deploy order
    version     INT NOT NULL CHECK (version > 0),
    -- the author's label from the manifest, e.g. "1.2.0"
    label       TEXT NOT NULL,
    -- the validated manifest (crm_concepts::manifest::Manifest) and the TOML it came from
    manifest    JSONB NOT NULL,
    source      TEXT NOT NULL,
    -- component reference in the manifest -> SHA-256 of the stored component
    components  JSONB NOT NULL CHECK (jsonb_typeof(components) = 'object'),
    deployed_by BIGINT REFERENCES users (id),
    deployed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow, version)
);

ALTER TABLE workflows ADD FOREIGN KEY (name, current_version)
    REFERENCES workflow_versions (workflow, version) DEFERRABLE INITIALLY DEFERRED;

CREATE TABLE runs (
    id              UUID PRIMARY KEY,
    workflow        TEXT NOT NULL,
    version         INT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    input           JSONB NOT NULL,
    acting_user     BIGINT REFERENCES users (id),
    -- {"chat_id": …, "message_id": …}: the chat that asked and gets the completion
    notify          JSONB,
    idempotency_key TEXT CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    -- api, bot, cron, record_event, webhook
    trigger         TEXT NOT NULL DEFAULT 'api',
    result          JSONB,
    -- the result as the chat reads it (the manifest's template)
    rendered        TEXT,
    -- {"step": …, "code": …, "message": …}
    error           JSONB,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at      TIMESTAMPTZ,
    finished_at     TIMESTAMPTZ,
    FOREIGN KEY (workflow, version) REFERENCES workflow_versions (workflow, version),
    CHECK ((finished_at IS NOT NULL) = (status IN ('succeeded', 'failed', 'cancelled')))
);
CREATE UNIQUE INDEX runs_idempotency ON runs (workflow, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX runs_created ON runs (created_at DESC, id DESC);
CREATE INDEX runs_workflow_created ON runs (workflow, created_at DESC, id DESC);
CREATE INDEX runs_finished ON runs (finished_at) WHERE finished_at IS NOT NULL;

-- One row per step of a run, created with the run. A `queued` row with no `enqueued_at` is
-- the outbox: the dispatcher moves it to Redis once `dispatch_after` has passed. The engine
-- that made a step ready sends it at once after commit and confirms `enqueued_at` lazily;
-- `dispatch_after` gives it that head start before the dispatcher sends it again.
CREATE TABLE run_steps (
    run_id         UUID NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step           TEXT NOT NULL,
    status         TEXT NOT NULL
                   CHECK (status IN ('waiting', 'queued', 'succeeded', 'failed', 'dead_letter', 'skipped', 'cancelled')),
    -- the current attempt, 1-based; 0 until the step is first queued
    attempt        INT NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    dispatch_after TIMESTAMPTZ,
    enqueued_at    TIMESTAMPTZ,
    output         JSONB,
    error          JSONB,
    -- the successors this step chose (branching); NULL means all of them
    next           TEXT[],
    queued_at      TIMESTAMPTZ,
    finished_at    TIMESTAMPTZ,
    PRIMARY KEY (run_id, step)
);
CREATE INDEX run_steps_outbox ON run_steps (dispatch_after) WHERE status = 'queued' AND enqueued_at IS NULL;
CREATE INDEX run_steps_in_flight ON run_steps (enqueued_at) WHERE status = 'queued' AND enqueued_at IS NOT NULL;

-- Every attempt's result, as it came back. The primary key makes results idempotent by
-- (run, step, attempt): a redelivered result finds its row and changes nothing.
CREATE TABLE step_attempts (
    run_id      UUID NOT NULL,
    step        TEXT NOT NULL,
    attempt     INT NOT NULL CHECK (attempt > 0),
    status      TEXT NOT NULL CHECK (status IN ('succeeded', 'failed', 'lost')),
    worker      TEXT NOT NULL,
    error       JSONB,
    logs        JSONB NOT NULL DEFAULT '[]',
    -- crm_concepts::step::StepUsage: duration, epochs, peak memory, log lines
    usage       JSONB NOT NULL DEFAULT '{}',
    -- false when the result came after the step had moved on (a late delivery after a retry)
    applied     BOOLEAN NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, step, attempt),
    FOREIGN KEY (run_id, step) REFERENCES run_steps (run_id, step) ON DELETE CASCADE
);

-- Which Redis the scheduler last saw (a marker key's value). A different marker means Redis
-- lost its data, and every in-flight step is sent again.
CREATE TABLE scheduler_state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
