-- A run's row is updated every time one of its steps settles (its revision, then its status
-- and result). Postgres makes such an update in place, a HOT update that writes no index
-- entry, only when no indexed column changes and the row's page has room for the new
-- version. `runs_finished` indexed `finished_at`, which every finishing update sets, so each
-- one wrote a new entry into all four of the runs' indexes; and a full page left no room
-- anyway. In `crm bench runs` 0.8 % of the runs' updates were HOT.
--   * Without `runs_finished` and with pages filled to 30 % on insert, all of them were
--     (measured: fill factor 75 gave 35 %, 50 gave 59 %, 40 gave 77 %, 30 gave 100 %), and
--     the table was 29 MB instead of 22 MB for the same 56,000 runs, since a version pruned
--     on its page leaves room for the next one.
--   * Retention walks `runs_created` instead: a run that finished before a cutoff was
--     created before it (`crm_store::retention`).
--   * Republishing recent completions finds the runs through their steps: a run finishes
--     in the statement that finishes its last open step, with the same `now()`
--     (`crm_store::runs::finished_since`). Step rows are never updated in place (their
--     status is in the outbox's index predicate), so this index adds one entry per
--     finished step and nothing else.
DROP INDEX runs_finished;
CREATE INDEX run_steps_finished ON run_steps (finished_at) WHERE finished_at IS NOT NULL;
ALTER TABLE runs SET (fillfactor = 30);
