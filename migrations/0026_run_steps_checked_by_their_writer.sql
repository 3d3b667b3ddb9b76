-- The last foreign key on the rows every run writes, checked by its writer instead (as
-- 0024 did for three others): Postgres checked it with a trigger that looked the run up and
-- share-locked it once per step row, about 8 µs per row by auto_explain's timing.
--   * run_steps → runs: `crm_store::runs::insert_runs`, the one writer of step rows,
--     inserts a run's steps in the statement that inserts the run, joined to the rows that
--     statement inserted.
--   * Retention deletes a run's steps with the run (`crm_store::retention`), as this
--     cascade did; the steps' own cascades (journal, waits, approvals) are unchanged.
ALTER TABLE run_steps DROP CONSTRAINT run_steps_run_id_fkey;
