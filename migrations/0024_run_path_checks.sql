-- Three foreign keys on the rows every run writes are checked by the statements that write
-- those rows instead. Postgres checks a foreign key with a trigger that looks the parent
-- row up and locks it (FOR KEY SHARE) once per inserted row; auto_explain during
-- `crm bench runs` timed these three at about 30 µs per one-step run (its own timing
-- overhead included), and every concurrent admission share-locked the same version and
-- user rows. Without them the bench's Postgres CPU per run fell by a median of 16 µs
-- (92–101 to 78–86 µs, four rounds).
--   * runs → workflow_versions and runs → users: `crm_store::runs::insert_runs`, the one
--     writer of runs, inserts a run only where its version is its workflow's current one
--     and its acting user is active, in the same statement. Neither versions nor users are
--     ever deleted.
--   * step_attempts → run_steps: `crm_store::runs::write_changes`, the one writer of
--     attempts, writes them only for runs it updated in the same statement, for steps the
--     engine signed a ticket for. Retention deletes a run's attempts with the run
--     (`crm_store::retention`), as the cascade did.
ALTER TABLE runs DROP CONSTRAINT runs_workflow_version_fkey;
ALTER TABLE runs DROP CONSTRAINT runs_acting_user_fkey;
ALTER TABLE step_attempts DROP CONSTRAINT step_attempts_run_id_step_fkey;
