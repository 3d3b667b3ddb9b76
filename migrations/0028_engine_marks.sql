-- How far each running engine has published the completions of the runs it finished.
-- An engine commits a run's end, then puts its completion on the Redis stream; one that
-- dies in between leaves a completion no listener sees. Each engine holds a session-level
-- advisory lock on (hashtext('crm.engine_marks'), lock_key) for as long as it runs, so any
-- other engine can tell a row of a dead one (its lock is free) and publish again only what
-- was finished after that row's mark. A clean stop deletes the engine's row: it leaves
-- nothing behind. Until now every engine read back two minutes of finished runs at its start.
CREATE SEQUENCE engine_marks_lock_key AS integer CYCLE;

CREATE TABLE engine_marks (
    engine            UUID PRIMARY KEY,
    lock_key          INTEGER NOT NULL UNIQUE DEFAULT nextval('engine_marks_lock_key'),
    -- every run this engine finished at or before this time (Postgres' clock, the
    -- `finished_at` of its runs and steps) has its completion on the stream
    published_through TIMESTAMPTZ NOT NULL,
    beat_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
ALTER SEQUENCE engine_marks_lock_key OWNED BY engine_marks.lock_key;

-- The engines that ran before this migration kept no mark: one row that nobody holds
-- stands for them, and the first engine to start publishes again the two minutes before
-- it, as every engine did at its start until now.
INSERT INTO engine_marks (engine, published_through) VALUES (gen_random_uuid(), now() - interval '2 minutes');
