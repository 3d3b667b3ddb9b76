-- The attempt that settles a step is kept in the step's own row. The step's row is rewritten
-- by that same statement anyway, so most steps, which settle at their first attempt, write
-- one row fewer per attempt (a heap tuple and its primary-key entry).
-- Every other attempt goes to `earlier_attempts`: a failure that was retried, a lost attempt
-- before a retry, and a result that came after its step had moved on.
-- `step_attempts` becomes a view over both, so readers see every attempt, as before.
ALTER TABLE step_attempts RENAME TO earlier_attempts;
ALTER INDEX step_attempts_pkey RENAME TO earlier_attempts_pkey;

-- Set only by `crm_store::runs::write_changes`, with the step's final status, and only
-- when the step's attempt settled it. `error` and `finished_at` are the attempt's error
-- and the time its result was recorded. Existing steps keep their attempts where they are.
-- The checks hold for every existing row, whose new columns are all NULL. NOT VALID skips
-- scanning them under this statement's exclusive lock, which on a large installation would
-- stop every run for as long as the scan takes. New and updated rows are checked.
ALTER TABLE run_steps
    ADD COLUMN settled_by TEXT,
    ADD COLUMN worker TEXT,
    ADD COLUMN logs JSONB,
    ADD COLUMN usage JSONB,
    ADD CONSTRAINT run_steps_settled_by CHECK (settled_by IN ('succeeded', 'failed', 'lost')) NOT VALID,
    ADD CONSTRAINT run_steps_settling_attempt_whole
        CHECK ((settled_by IS NULL) = (worker IS NULL)
               AND (settled_by IS NULL) = (logs IS NULL)
               AND (settled_by IS NULL) = (usage IS NULL)) NOT VALID,
    ADD CONSTRAINT run_steps_settled_when_finished CHECK (settled_by IS NULL OR finished_at IS NOT NULL) NOT VALID;

CREATE VIEW step_attempts AS
    SELECT run_id, step, attempt, settled_by AS status, worker, error, logs, usage,
           true AS applied, finished_at AS received_at
      FROM run_steps WHERE settled_by IS NOT NULL
    UNION ALL
    SELECT run_id, step, attempt, status, worker, error, logs, usage, applied, received_at
      FROM earlier_attempts;

-- What the primary key of `step_attempts` caught before: a step's settling attempt applied
-- again (two engines applying one result). `write_changes` calls it only then; it raises
-- rather than keep one of the two.
CREATE FUNCTION crm_attempt_applied_twice(run UUID, step TEXT, attempt INT) RETURNS TEXT
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'attempt % of step % of run % was applied twice', attempt, step, run
        USING ERRCODE = 'unique_violation', CONSTRAINT = 'attempt_applied_once';
END
$$;
