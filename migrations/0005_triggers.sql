-- Triggers: what starts workflow runs by itself. Cron schedules fire each tick exactly once
-- across engine replicas, record events are consumed from the outbox exactly once, and
-- webhooks are signed and cannot be replayed.

-- Cron schedules, synced from the manifests of enabled workflows. A schedule is identified by
-- its workflow, expression and time zone: changing the expression makes a new schedule that
-- starts counting from the deploy, rather than catching up on ticks of the old one.
CREATE TABLE trigger_schedules (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workflow     TEXT NOT NULL,
    expression   TEXT NOT NULL,
    timezone     TEXT NOT NULL,
    -- merged into each run's input next to the tick
    input        JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(input) = 'object'),
    enabled      BOOLEAN NOT NULL DEFAULT true,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- the latest tick claimed (or the moment the schedule was enabled): ticks after it are due
    last_tick_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (workflow, expression, timezone)
);

-- One row per fired tick. The primary key is what makes a tick fire once: every replica tries
-- INSERT ... ON CONFLICT DO NOTHING and only the one whose row went in starts the run, in the
-- same transaction. Rows older than a day are pruned; last_tick_at carries the state.
CREATE TABLE cron_ticks (
    schedule_id BIGINT NOT NULL REFERENCES trigger_schedules (id) ON DELETE CASCADE,
    tick_at     TIMESTAMPTZ NOT NULL,
    claimed_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    claimed_by  TEXT NOT NULL,
    -- earlier ticks this one stands in for (missed while no engine ran)
    missed      INT NOT NULL DEFAULT 0,
    run_id      UUID,
    PRIMARY KEY (schedule_id, tick_at)
);
CREATE INDEX cron_ticks_claimed_at ON cron_ticks (claimed_at);

-- Runs started by a trigger, with the chain of workflows that led to them. The event consumer
-- refuses to start a workflow that is already in the chain of the run whose write caused the
-- change, and stops chains deeper than a limit: a workflow's own writes never retrigger it.
CREATE TABLE triggered_runs (
    run_id     UUID PRIMARY KEY,
    workflow   TEXT NOT NULL,
    source     TEXT NOT NULL CHECK (source IN ('cron', 'event', 'webhook')),
    -- the outbox event (record events) that started the run
    outbox_id  BIGINT,
    -- the run whose write produced that event, if any
    origin_run UUID,
    -- workflows upstream of this run, oldest first
    chain      TEXT[] NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- one run per workflow per change, even if a consumer were to see an event twice
    UNIQUE (outbox_id, workflow)
);

-- Firings whose run could not be started even on its own (after the batch failed
-- repeatedly): kept for an operator instead of blocking every later event.
CREATE TABLE trigger_failures (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workflow  TEXT NOT NULL,
    source    TEXT NOT NULL CHECK (source IN ('cron', 'event', 'webhook')),
    outbox_id BIGINT,
    error     TEXT NOT NULL,
    at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Record-event consumers sleep on LISTEN crm_outbox and wake at each committed write.
CREATE FUNCTION crm_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('crm_outbox', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION crm_outbox_notify();

-- Webhook secrets are named secrets of the `secrets` table (0002): a webhook trigger names
-- its secret (`secret = "NAME"`, the path when absent), set with `crm webhook secret NAME`.

-- Signatures already accepted, kept for twice the replay window: the same signed request
-- sent again inside the window hits the primary key and is refused.
CREATE TABLE webhook_deliveries (
    path        TEXT NOT NULL,
    signature   BYTEA NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    run_id      UUID NOT NULL,
    PRIMARY KEY (path, signature)
);
CREATE INDEX webhook_deliveries_received_at ON webhook_deliveries (received_at);
