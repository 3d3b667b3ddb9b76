-- Time in workflows (issue 12): steps that wait. A run that waits holds no worker, no Redis
-- entry and no open transaction: its waiting step is `held`, and one `run_waits` row says
-- until when (and, for `wait_event`, for which record's change). The engine's waker fires
-- due rows with one indexed query (`run_waits_due`), taking them with SKIP LOCKED so two
-- engines never fire one twice.

-- `waiting`: no step is in flight and at least one is held.
ALTER TABLE runs DROP CONSTRAINT runs_status_check;
ALTER TABLE runs ADD CONSTRAINT runs_status_check
    CHECK (status IN ('queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled'));

-- `held`: a wait, wait_event or approval step waiting for its time, event or decision.
ALTER TABLE run_steps DROP CONSTRAINT run_steps_status_check;
ALTER TABLE run_steps ADD CONSTRAINT run_steps_status_check
    CHECK (status IN ('waiting', 'queued', 'held', 'succeeded', 'failed', 'dead_letter', 'skipped', 'cancelled'));

CREATE TABLE run_waits (
    run_id      UUID NOT NULL,
    step        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('wait', 'wait_event', 'approval')),
    -- when the wait ends: the time of a `wait`, the timeout of the others
    wake_at     TIMESTAMPTZ NOT NULL,
    -- what it waits for, as people read it (the API, `crm run show`, the bot's /runs)
    what        TEXT NOT NULL,
    -- wait_event: the record whose change wakes the step, and the filter it must match
    -- ({"actions": [...], "filter": {...}})
    record_kind TEXT,
    record_id   BIGINT,
    detail      JSONB NOT NULL DEFAULT '{}',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, step),
    FOREIGN KEY (run_id, step) REFERENCES run_steps (run_id, step) ON DELETE CASCADE,
    CHECK ((kind = 'wait_event') = (record_kind IS NOT NULL AND record_id IS NOT NULL))
);
CREATE INDEX run_waits_due ON run_waits (wake_at);
CREATE INDEX run_waits_records ON run_waits (record_kind, record_id) WHERE record_kind IS NOT NULL;
