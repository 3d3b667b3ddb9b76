-- An attempt's timeline (when it passed each point of its path: `crm_concepts::timeline`)
-- moves out of its usage's JSON into an `int8[]` of its own, in `StepTimeline::path`'s
-- order. As JSON it was most of what Postgres spent turning the usage into jsonb on every
-- step: seven keys and seven 16-digit numbers, 2.6 µs a cast against 0.65 for the rest of
-- the usage (200,000 casts in psql), and about 150 bytes of every step's row and its WAL.
-- Bound as an array of int8 it arrives as binary and is copied, not parsed.
--
-- Rows written before keep their timeline inside `usage`, with this column NULL; readers
-- take the column when it is there (`crm_store::run_history`). Adding nullable columns and
-- NOT VALID checks rewrites and scans nothing, so this takes its locks only for a moment.
ALTER TABLE run_steps
    ADD COLUMN timeline INT8[],
    ADD CONSTRAINT run_steps_timeline_whole CHECK (cardinality(timeline) = 7) NOT VALID,
    -- like the rest of the settling attempt: none while nothing settled the step
    ADD CONSTRAINT run_steps_timeline_settled CHECK (timeline IS NULL OR settled_by IS NOT NULL) NOT VALID;
ALTER TABLE earlier_attempts
    ADD COLUMN timeline INT8[],
    ADD CONSTRAINT earlier_attempts_timeline_whole CHECK (cardinality(timeline) = 7) NOT VALID;

CREATE OR REPLACE VIEW step_attempts AS
    SELECT run_id, step, attempt, settled_by AS status, worker, error, logs, usage,
           true AS applied, finished_at AS received_at, timeline
      FROM run_steps WHERE settled_by IS NOT NULL
    UNION ALL
    SELECT run_id, step, attempt, status, worker, error, logs, usage, applied, received_at, timeline
      FROM earlier_attempts;

-- The `k`th (from 1) of the timelines laid end to end in `timelines`, seven points apiece:
-- `crm_store::runs::write_changes` binds a batch's that way, since Postgres has no array
-- of arrays to unnest. One with no point seen (an attempt the engine ended) is NULL. A
-- plain SQL expression, so the planner inlines it.
CREATE FUNCTION crm_timeline_at(timelines INT8[], k BIGINT) RETURNS INT8[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT NULLIF(timelines[k * 7 - 6 : k * 7], '{0,0,0,0,0,0,0}') $$;
