-- A run's revision: every statement that changes a run's state (its row or its steps'
-- rows, `crm_store::runs::write_changes`) adds one. An engine that remembers the state it
-- last wrote applies the next result with a guard on the revision instead of locking the
-- run and reading it again; a run changed anywhere else in between fails the guard and
-- takes the locking path.
ALTER TABLE runs ADD COLUMN rev BIGINT NOT NULL DEFAULT 0;
