//! Runs, their steps and every attempt's result. The scheduler's writes are set-based
//! (one statement per batch, arrays bound with UNNEST), so a batch of a thousand results
//! costs a handful of round trips, not thousands.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use crm_concepts::run::{AttemptStatus, Notify, RunError, RunStatus, StepStatus};
use crm_concepts::timeline::StepTimeline;
use serde_json::value::RawValue;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::workflow_error::WorkflowError;

/// A run to insert, with all its steps (`ready` ones start queued at attempt 1).
#[derive(Debug, Clone)]
pub struct NewRun {
    pub id: Uuid,
    pub workflow: String,
    pub version: i32,
    pub input: serde_json::Value,
    pub acting_user: Option<i64>,
    pub notify: Option<Notify>,
    pub idempotency_key: Option<String>,
    pub trigger: String,
    /// `queued` (ready), `waiting` (for dependencies) or `held` (a waiting step at the start)
    pub steps: Vec<(String, StepStatus)>,
    /// `queued`, or `waiting` when a waiting step is all that starts
    pub status: RunStatus,
    /// the `run_waits` rows of the held steps
    pub waits: Vec<crate::run_waits::NewWait>,
    /// when the dispatcher may send the ready steps (the inserting engine sends them at
    /// once; this is the dispatcher's fallback)
    pub dispatch_after: DateTime<Utc>,
}

/// What inserting one [`NewRun`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Inserted {
    Created,
    /// nothing was written: its version is no longer the workflow's current one, the
    /// workflow is disabled, or its acting user is no longer active (the admission read
    /// these facts before the insert, maybe from memory)
    Stale,
    /// an earlier run holds the idempotency key
    Existing {
        id: Uuid,
        status: RunStatus,
        same_input: bool,
    },
}

/// [`insert_runs`]'s statement, a macro so that both forms stay literals: `$conflict` is
/// what the runs' insert does about an idempotency key already taken.
macro_rules! insert_runs {
    ($conflict:literal) => {
        concat!(
            "WITH ok AS (
                SELECT u.* FROM UNNEST($1::uuid[], $2::text[], $3::int[], $4::jsonb[], $5::int8[], $6::jsonb[], $7::text[], $8::text[], $14::text[])
                    AS u (id, workflow, version, input, acting_user, notify, idempotency_key, trigger, status)
                JOIN workflows w ON w.name = u.workflow AND w.current_version = u.version AND w.enabled
                WHERE u.acting_user IS NULL
                   OR EXISTS (SELECT 1 FROM users a WHERE a.id = u.acting_user AND a.disabled_at IS NULL)
             ), r AS (
                INSERT INTO runs (id, workflow, version, input, acting_user, notify, idempotency_key, trigger, status)
                SELECT * FROM ok ",
            $conflict,
            " RETURNING id
             ), s AS (
                INSERT INTO run_steps (run_id, step, status, attempt, dispatch_after, queued_at)
                SELECT u.r, u.s, u.st, u.a, u.d, CASE WHEN u.st IN ('queued', 'held') THEN now() END
                FROM UNNEST($9::uuid[], $10::text[], $11::text[], $12::int[], $13::timestamptz[]) AS u (r, s, st, a, d)
                JOIN r ON r.id = u.r
             )
             SELECT ok.id, r.id IS NOT NULL FROM ok LEFT JOIN r ON r.id = ok.id"
        )
    };
}

/// [`insert_runs`] when some run has an idempotency key: one whose key an earlier run of its
/// workflow holds is not inserted.
const INSERT_RUNS_KEYED: &str =
    insert_runs!("ON CONFLICT (workflow, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING");

/// [`insert_runs`] when no run has an idempotency key, as the API's and the bot's runs
/// mostly do: none can clash on one (the unique index holds only keyed runs), and without
/// `ON CONFLICT` Postgres inserts each row outright instead of speculatively (a token, a
/// lock and one more WAL record per row; `docs/performance.md`).
const INSERT_RUNS: &str = insert_runs!("");

/// Inserts runs and their steps in the caller's transaction; the result matches `runs`
/// one to one. Callers that start runs inside their own transaction (triggers) use this
/// directly; the dispatcher picks their ready steps up once `dispatch_after` passes.
pub async fn insert_runs(conn: &mut PgConnection, runs: &[NewRun]) -> Result<Vec<Inserted>, WorkflowError> {
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let n = runs.len();
    let mut ids = Vec::with_capacity(n);
    let mut workflows = Vec::with_capacity(n);
    let mut versions = Vec::with_capacity(n);
    let mut inputs = Vec::with_capacity(n);
    let mut users = Vec::with_capacity(n);
    let mut notifies = Vec::with_capacity(n);
    let mut keys = Vec::with_capacity(n);
    let mut triggers = Vec::with_capacity(n);
    let mut statuses = Vec::with_capacity(n);
    for r in runs {
        statuses.push(r.status.as_str());
        ids.push(r.id);
        workflows.push(r.workflow.as_str());
        versions.push(r.version);
        inputs.push(&r.input);
        users.push(r.acting_user);
        notifies.push(r.notify.as_ref().map(|n| serde_json::to_value(n).unwrap_or_default()));
        keys.push(r.idempotency_key.as_deref());
        triggers.push(r.trigger.as_str());
    }
    let mut s_runs = Vec::new();
    let mut s_steps = Vec::new();
    let mut s_status = Vec::new();
    let mut s_attempt = Vec::new();
    let mut s_after: Vec<Option<DateTime<Utc>>> = Vec::new();
    for r in runs {
        for (step, status) in &r.steps {
            s_runs.push(r.id);
            s_steps.push(step.as_str());
            s_status.push(status.as_str());
            s_attempt.push(first_attempt(*status));
            s_after.push((*status == StepStatus::Queued).then_some(r.dispatch_after));
        }
    }
    // One statement: the runs whose facts still hold (`ok`: the version is current, the
    // workflow enabled, the acting user active), and the steps of those that went in (a
    // run whose idempotency key is taken inserts nothing). Atomic on its own, one round
    // trip. It answers each run that passed the guard, and whether it was inserted.
    let statement = if keys.iter().any(Option::is_some) { INSERT_RUNS_KEYED } else { INSERT_RUNS };
    let passed: Vec<(Uuid, bool)> = sqlx::query_as(statement)
        .bind(&ids)
        .bind(&workflows)
        .bind(&versions)
        .bind(&inputs)
        .bind(&users)
        .bind(&notifies)
        .bind(&keys)
        .bind(&triggers)
        .bind(&s_runs)
        .bind(&s_steps)
        .bind(&s_status)
        .bind(&s_attempt)
        .bind(&s_after)
        .bind(&statuses)
        .fetch_all(&mut *conn)
        .await?;
    // Each run that passed the guard, and whether it went in; one missing failed the guard.
    let passed: std::collections::HashMap<Uuid, bool> = passed.into_iter().collect();
    let created = |r: &NewRun| passed.get(&r.id) == Some(&true);
    let waits: Vec<crate::run_waits::NewWait> =
        runs.iter().filter(|r| created(r)).flat_map(|r| r.waits.iter().cloned()).collect();
    crate::run_waits::insert(conn, &waits).await?;

    let clashed: Vec<&NewRun> = runs.iter().filter(|r| passed.get(&r.id) == Some(&false)).collect();
    let mut existing = std::collections::HashMap::new();
    if !clashed.is_empty() {
        let wf: Vec<&str> = clashed.iter().map(|r| r.workflow.as_str()).collect();
        let key: Vec<&str> = clashed.iter().map(|r| r.idempotency_key.as_deref().unwrap_or_default()).collect();
        let rows = sqlx::query(
            "SELECT r.id, r.workflow, r.idempotency_key, r.status, r.input FROM runs r
             JOIN UNNEST($1::text[], $2::text[]) AS u (w, k) ON r.workflow = u.w AND r.idempotency_key = u.k",
        )
        .bind(&wf)
        .bind(&key)
        .fetch_all(&mut *conn)
        .await?;
        for row in rows {
            let k: (String, String) = (row.try_get("workflow")?, row.try_get("idempotency_key")?);
            existing.insert(
                k,
                (row.try_get::<Uuid, _>("id")?, status_of(&row)?, row.try_get::<serde_json::Value, _>("input")?),
            );
        }
    }
    runs.iter()
        .map(|r| {
            match passed.get(&r.id) {
                Some(true) => return Ok(Inserted::Created),
                None => return Ok(Inserted::Stale),
                Some(false) => {}
            }
            let k = (r.workflow.clone(), r.idempotency_key.clone().unwrap_or_default());
            // A run without a key always inserts, so a clash always has a key and a row;
            // if it is gone (deleted meanwhile), say so rather than guess.
            let (id, status, input) = existing.get(&k).ok_or_else(|| {
                WorkflowError::Conflict("the run holding this idempotency key was removed; retry".into())
            })?;
            Ok(Inserted::Existing { id: *id, status: *status, same_input: input == &r.input })
        })
        .collect()
}

/// The attempt a new run's step starts at: 1 for one that starts (queued or held), 0 for
/// one waiting for others (it counts up when it becomes ready).
pub fn first_attempt(status: StepStatus) -> i32 {
    i32::from(status != StepStatus::Waiting)
}

pub(crate) fn status_of(row: &PgRow) -> Result<RunStatus, sqlx::Error> {
    let s: String = row.try_get("status")?;
    s.parse().map_err(|e: String| sqlx::Error::Decode(e.into()))
}

pub(crate) fn step_status_of(row: &PgRow) -> Result<StepStatus, sqlx::Error> {
    let s: String = row.try_get("status")?;
    s.parse().map_err(|e: String| sqlx::Error::Decode(e.into()))
}

/// A run as the scheduler needs it to apply results.
#[derive(Debug, Clone)]
pub struct RunState {
    pub id: Uuid,
    pub workflow: String,
    pub version: i32,
    pub status: RunStatus,
    pub input: serde_json::Value,
    pub acting_user: Option<i64>,
    pub notify: Option<Notify>,
    /// set while a failing run's on_failure steps run, and on a failed run
    pub error: Option<RunError>,
}

#[derive(Debug, Clone)]
pub struct StepState {
    pub run_id: Uuid,
    pub step: String,
    pub status: StepStatus,
    pub attempt: i32,
    pub output: Option<Arc<serde_json::Value>>,
    pub next: Option<Vec<String>>,
}

/// Whether attempt `attempt` of the step was ever recorded as queued: the step is at that
/// attempt or past it. A cancelled run's steps keep the attempt they reached.
pub async fn attempt_recorded(
    pool: &sqlx::PgPool,
    run_id: Uuid,
    step: &str,
    attempt: i32,
) -> Result<bool, WorkflowError> {
    let recorded =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM run_steps WHERE run_id = $1 AND step = $2 AND attempt >= $3)")
            .bind(run_id)
            .bind(step)
            .bind(attempt)
            .fetch_one(pool)
            .await?;
    Ok(recorded)
}

/// Locks the runs (in id order, so two appliers never deadlock) and reads them with their
/// steps. Everything that changes a run's state takes this lock first.
pub async fn lock_runs(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<(Vec<RunState>, Vec<StepState>), WorkflowError> {
    // Lock first, read second. A single `SELECT … JOIN … FOR UPDATE OF r` is wrong under
    // READ COMMITTED: when it waits for another applier's lock, Postgres re-checks only
    // the locked run row and keeps the joined step rows from its old snapshot, so a step
    // that the other applier just finished would look unfinished and the run would never
    // close. The second statement takes a fresh snapshot after the locks are held.
    sqlx::query("SELECT id FROM runs WHERE id = ANY($1) ORDER BY id FOR UPDATE").bind(ids).execute(&mut *conn).await?;
    read_locked(conn, ids).await
}

/// Reads runs whose locks this transaction already holds (taken by [`lock_runs`] or by a
/// claim that locked them with its own rows), with their steps, in a statement of its own
/// so it sees what committed before the locks were granted.
pub async fn read_locked(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<(Vec<RunState>, Vec<StepState>), WorkflowError> {
    // Each run's columns come once per step, which costs less than a third query. LATERAL
    // keeps the steps on their primary key: a plain join lets the planner hash-join a seq
    // scan of run_steps, which grows with every run ever made.
    let rows = sqlx::query(
        "SELECT r.id, r.workflow, r.version, r.status, r.input, r.acting_user, r.notify, r.error,
                s.step, s.status AS step_status, s.attempt, s.output, s.next
         FROM runs r
         CROSS JOIN LATERAL (
            -- OFFSET 0 keeps the planner from flattening this into a join again
            SELECT step, status, attempt, output, next FROM run_steps WHERE run_id = r.id OFFSET 0
         ) s
         WHERE r.id = ANY($1) ORDER BY r.id",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut runs: Vec<RunState> = Vec::with_capacity(ids.len());
    let mut steps = Vec::with_capacity(rows.len());
    for r in &rows {
        let id: Uuid = r.try_get("id")?;
        if runs.last().is_none_or(|last| last.id != id) {
            runs.push(RunState {
                id,
                workflow: r.try_get("workflow")?,
                version: r.try_get("version")?,
                status: status_of(r)?,
                input: r.try_get("input")?,
                acting_user: r.try_get("acting_user")?,
                notify: r
                    .try_get::<Option<serde_json::Value>, _>("notify")?
                    .and_then(|n| serde_json::from_value(n).ok()),
                error: r.try_get::<Option<serde_json::Value>, _>("error")?.and_then(|e| serde_json::from_value(e).ok()),
            });
        }
        let st: String = r.try_get("step_status")?;
        steps.push(StepState {
            run_id: id,
            step: r.try_get("step")?,
            status: st.parse().map_err(|e: String| sqlx::Error::Decode(e.into()))?,
            attempt: r.try_get("attempt")?,
            output: r.try_get::<Option<serde_json::Value>, _>("output")?.map(Arc::new),
            next: r.try_get("next")?,
        });
    }
    Ok((runs, steps))
}

/// A step's new state, written by the applier.
#[derive(Debug, Clone)]
pub struct StepUpdate {
    pub run_id: Uuid,
    pub step: String,
    pub status: StepStatus,
    pub attempt: i32,
    pub output: Option<Arc<serde_json::Value>>,
    pub error: Option<serde_json::Value>,
    pub next: Option<Vec<String>>,
    /// for queued steps: when the dispatcher may send it (after a backoff, or as fallback)
    pub dispatch_after: Option<DateTime<Utc>>,
}

/// One attempt's result as it came back (or `lost` when it never did).
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub run_id: Uuid,
    pub step: String,
    pub attempt: i32,
    pub status: AttemptStatus,
    pub worker: String,
    pub error: Option<serde_json::Value>,
    /// the log lines and the usage as JSON text, bound as they are: written from the
    /// worker's types straight to text, never held as a JSON tree
    pub logs: Box<RawValue>,
    /// without its timeline, which goes in a column of its own
    pub usage: Box<RawValue>,
    /// where the attempt's time went; an empty one (an attempt the engine ended) is kept
    /// as NULL. In a column of its own since as JSON it cost Postgres three times the rest
    /// of the usage to parse (`migrations/0029_timeline_beside_usage.sql`).
    pub timeline: StepTimeline,
    /// false when the result came after the step had moved on
    pub applied: bool,
}

/// A run's new state, written by the applier.
#[derive(Debug, Clone)]
pub struct RunUpdate {
    pub id: Uuid,
    pub status: RunStatus,
    pub result: Option<Arc<serde_json::Value>>,
    pub rendered: Option<String>,
    pub error: Option<RunError>,
}

/// What a [`write_changes`] may assume about the runs it writes.
#[derive(Debug, Clone, Copy)]
pub enum Expect<'a> {
    /// the caller's transaction holds the runs' locks ([`lock_runs`]): every run is written
    Locked,
    /// each run must still be at this revision, or nothing of it is written; the statement
    /// commits on its own when the connection has no transaction open
    Revisions(&'a std::collections::HashMap<Uuid, i64>),
}

/// The pieces of [`write_changes`]'s statement, macros so the two statements stay literals.
/// The guard is the runs' UPDATE: under READ COMMITTED a run changed by a transaction that
/// committed meanwhile is re-checked against its new revision, fails it, and drops out of
/// `g`; everything else joins `g`, so nothing of that run is written.
macro_rules! changes_guard {
    () => {
        "WITH g AS (
            UPDATE runs r SET rev = r.rev + 1,
                status = COALESCE(u.st, r.status),
                result = CASE WHEN u.st IS NULL THEN r.result ELSE u.res END,
                rendered = CASE WHEN u.st IS NULL THEN r.rendered ELSE u.ren END,
                error = CASE WHEN u.st IS NULL THEN r.error ELSE u.e END,
                started_at = CASE WHEN u.st IS NULL THEN r.started_at ELSE COALESCE(r.started_at, now()) END,
                finished_at = CASE
                    WHEN u.st IS NULL THEN r.finished_at
                    WHEN u.st IN ('succeeded', 'failed', 'cancelled') THEN statement_timestamp()
                END
            FROM UNNEST($18::uuid[], $19::int8[], $20::text[], $21::jsonb[], $22::text[], $23::jsonb[])
                 AS u (id, rev, st, res, ren, e)
            WHERE r.id = u.id AND (u.rev IS NULL OR r.rev = u.rev)
            RETURNING r.id, r.rev
         )"
    };
}

/// The attempts kept outside their step's row (`$1`–`$9`, their timelines `$28`).
macro_rules! changes_attempts {
    () => {
        ", u AS (
            SELECT u.r, u.s, u.a, u.st, u.w, u.e, u.l, u.us, u.ap, crm_timeline_at($28::int8[], u.k) AS t
            FROM UNNEST($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[], $8::jsonb[], $9::bool[])
                WITH ORDINALITY AS u (r, s, a, st, w, e, l, us, ap, k)
            WHERE u.r IN (SELECT id FROM g)
         ), applied AS (
            -- no ON CONFLICT: an applied attempt recorded before is an error, not a no-op
            INSERT INTO earlier_attempts (run_id, step, attempt, status, worker, error, logs, usage, applied, timeline)
            SELECT * FROM u WHERE u.ap
         ), late AS (
            INSERT INTO earlier_attempts (run_id, step, attempt, status, worker, error, logs, usage, applied, timeline)
            SELECT * FROM u WHERE NOT u.ap
              -- a repeat of the attempt that settled its step, kept in the step's row
              AND NOT EXISTS (SELECT FROM run_steps s
                              WHERE s.run_id = u.r AND s.step = u.s AND s.attempt = u.a AND s.settled_by IS NOT NULL)
            ON CONFLICT DO NOTHING
         )"
    };
}

/// The steps' new states (`$10`–`$17`, `$24`–`$27`, the settling attempts' timelines `$29`).
macro_rules! changes_steps {
    () => {
        ", su AS (
            SELECT u.r, u.s, u.st, u.a, u.o, u.e, u.n, u.d, u.sb, u.w, u.l, u.us, crm_timeline_at($29::int8[], u.k) AS t
            FROM UNNEST($10::uuid[], $11::text[], $12::text[], $13::int[], $14::jsonb[], $15::jsonb[], $16::jsonb[], $17::timestamptz[],
                        $24::text[], $25::text[], $26::jsonb[], $27::jsonb[])
                WITH ORDINALITY AS u (r, s, st, a, o, e, n, d, sb, w, l, us, k)
            WHERE u.r IN (SELECT id FROM g)
         ), moved AS (
            -- the statement's snapshot: the settling attempt as it was before this update
            INSERT INTO earlier_attempts (run_id, step, attempt, status, worker, error, logs, usage, applied, received_at, timeline)
            SELECT s.run_id, s.step, s.attempt, s.settled_by, s.worker, s.error, s.logs, s.usage, true, s.finished_at, s.timeline
            FROM su u JOIN run_steps s ON s.run_id = u.r AND s.step = u.s
            WHERE s.settled_by IS NOT NULL AND u.st IN ('waiting', 'queued', 'held')
         ), s AS (
            UPDATE run_steps s SET
                status = u.st, attempt = u.a, output = COALESCE(u.o, s.output), error = u.e,
                next = CASE WHEN u.n IS NULL THEN s.next ELSE ARRAY(SELECT jsonb_array_elements_text(u.n)) END,
                dispatch_after = u.d,
                enqueued_at = NULL,
                queued_at = CASE WHEN u.st IN ('queued', 'held') AND s.status <> u.st THEN now() ELSE s.queued_at END,
                finished_at = CASE WHEN u.st IN ('waiting', 'queued', 'held') THEN NULL ELSE statement_timestamp() END,
                settled_by = CASE
                    WHEN u.sb IS NOT NULL AND s.settled_by IS NOT NULL THEN crm_attempt_applied_twice(u.r, u.s, u.a)
                    WHEN u.sb IS NOT NULL THEN u.sb
                    WHEN u.st IN ('waiting', 'queued', 'held') THEN NULL
                    ELSE s.settled_by
                END,
                worker = CASE WHEN u.sb IS NOT NULL THEN u.w WHEN u.st IN ('waiting', 'queued', 'held') THEN NULL ELSE s.worker END,
                logs = CASE WHEN u.sb IS NOT NULL THEN u.l WHEN u.st IN ('waiting', 'queued', 'held') THEN NULL ELSE s.logs END,
                usage = CASE WHEN u.sb IS NOT NULL THEN u.us WHEN u.st IN ('waiting', 'queued', 'held') THEN NULL ELSE s.usage END,
                timeline = CASE WHEN u.sb IS NOT NULL THEN u.t WHEN u.st IN ('waiting', 'queued', 'held') THEN NULL ELSE s.timeline END
            FROM su u
            WHERE s.run_id = u.r AND s.step = u.s
         )"
    };
}

/// What the statement returns: the runs written. Data-modifying CTEs always run to
/// completion, read or not.
macro_rules! changes_written {
    () => {
        " SELECT id, rev FROM g"
    };
}

/// [`write_changes`] with attempts to keep outside their steps' rows.
const WRITE_CHANGES: &str = concat!(changes_guard!(), changes_attempts!(), changes_steps!(), changes_written!());

/// [`write_changes`] when every attempt settles its step, as a batch of results in order
/// does: without the attempts' three CTEs, which unnest nothing then and still cost about
/// 8 % of a batch of one's statement (`docs/performance.md`). `$1`–`$9` and `$28` go unread.
const WRITE_CHANGES_SETTLING: &str = concat!(changes_guard!(), changes_steps!(), changes_written!());

/// Writes a batch's changes in one statement: the attempt records, the steps' and the runs'
/// new states, and a new revision for every run it touches. Returns the runs written, each
/// with its new revision; under [`Expect::Revisions`] a run that moved on since is left
/// out, with nothing of it written.
///
/// The attempt that settles its step (applied, with the step's final update at the same
/// attempt) is kept in the step's row; the others go to `earlier_attempts`, and a step made
/// to wait again (a retried run) moves its settling attempt there first. A record of an
/// attempt that was not applied (a late or repeated delivery) is skipped when its key is
/// there already; an applied attempt whose key is there means two engines applied it, and
/// the whole statement fails with [`WorkflowError::Conflict`].
pub async fn write_changes(
    conn: &mut PgConnection,
    attempts: &[AttemptRecord],
    steps: &[StepUpdate],
    runs: &[RunUpdate],
    expect: Expect<'_>,
) -> Result<Vec<(Uuid, i64)>, WorkflowError> {
    // Which step update each settling attempt goes with. Its error must be the one the
    // step records, since the folded attempt reads its error from the step's row.
    let settles = |a: &AttemptRecord, u: &StepUpdate| {
        a.applied && u.status.is_final() && u.attempt == a.attempt && u.error == a.error
    };
    let step_at: std::collections::HashMap<(Uuid, &str), &StepUpdate> =
        steps.iter().map(|u| ((u.run_id, u.step.as_str()), u)).collect();
    let (settling, attempts): (Vec<&AttemptRecord>, Vec<&AttemptRecord>) =
        attempts.iter().partition(|a| step_at.get(&(a.run_id, a.step.as_str())).is_some_and(|u| settles(a, u)));
    let settled_by: std::collections::HashMap<(Uuid, &str), &AttemptRecord> =
        settling.iter().map(|a| ((a.run_id, a.step.as_str()), *a)).collect();

    let a_run: Vec<Uuid> = attempts.iter().map(|a| a.run_id).collect();
    let a_step: Vec<&str> = attempts.iter().map(|a| a.step.as_str()).collect();
    let a_attempt: Vec<i32> = attempts.iter().map(|a| a.attempt).collect();
    let a_status: Vec<&str> = attempts.iter().map(|a| a.status.as_str()).collect();
    let a_worker: Vec<&str> = attempts.iter().map(|a| a.worker.as_str()).collect();
    let a_error: Vec<Option<&serde_json::Value>> = attempts.iter().map(|a| a.error.as_ref()).collect();
    let a_logs: Vec<Json<&RawValue>> = attempts.iter().map(|a| Json(&*a.logs)).collect();
    let a_usage: Vec<Json<&RawValue>> = attempts.iter().map(|a| Json(&*a.usage)).collect();
    let a_applied: Vec<bool> = attempts.iter().map(|a| a.applied).collect();
    let a_timeline: Vec<i64> = attempts.iter().flat_map(|a| path_of(&a.timeline)).collect();

    let s_run: Vec<Uuid> = steps.iter().map(|u| u.run_id).collect();
    let s_step: Vec<&str> = steps.iter().map(|u| u.step.as_str()).collect();
    let s_status: Vec<&str> = steps.iter().map(|u| u.status.as_str()).collect();
    let s_attempt: Vec<i32> = steps.iter().map(|u| u.attempt).collect();
    let s_output: Vec<Option<&serde_json::Value>> = steps.iter().map(|u| u.output.as_deref()).collect();
    let s_error: Vec<Option<&serde_json::Value>> = steps.iter().map(|u| u.error.as_ref()).collect();
    // Postgres has no array of arrays of varying length: `next` travels as JSON.
    let s_next: Vec<Option<serde_json::Value>> =
        steps.iter().map(|u| u.next.as_ref().map(|n| serde_json::json!(n))).collect();
    let s_after: Vec<Option<DateTime<Utc>>> = steps.iter().map(|u| u.dispatch_after).collect();
    let settling_of = |u: &StepUpdate| settled_by.get(&(u.run_id, u.step.as_str())).copied();
    let s_settled_by: Vec<Option<&str>> = steps.iter().map(|u| settling_of(u).map(|a| a.status.as_str())).collect();
    let s_worker: Vec<Option<&str>> = steps.iter().map(|u| settling_of(u).map(|a| a.worker.as_str())).collect();
    let s_logs: Vec<Option<Json<&RawValue>>> = steps.iter().map(|u| settling_of(u).map(|a| Json(&*a.logs))).collect();
    let s_usage: Vec<Option<Json<&RawValue>>> = steps.iter().map(|u| settling_of(u).map(|a| Json(&*a.usage))).collect();
    let s_timeline: Vec<i64> =
        steps.iter().flat_map(|u| path_of(&settling_of(u).map(|a| a.timeline).unwrap_or_default())).collect();

    // Every run the batch touches gets a row here, whether or not its own columns change:
    // its revision moves with any change to its steps.
    let mut touched: Vec<Uuid> = a_run.iter().chain(&s_run).chain(runs.iter().map(|u| &u.id)).copied().collect();
    touched.sort_unstable();
    touched.dedup();
    let updates: std::collections::HashMap<Uuid, &RunUpdate> = runs.iter().map(|u| (u.id, u)).collect();
    let r_rev: Vec<Option<i64>> = touched
        .iter()
        .map(|id| match expect {
            Expect::Locked => None,
            // a run the caller gave no revision for matches none, and is not written
            Expect::Revisions(revs) => Some(revs.get(id).copied().unwrap_or(-1)),
        })
        .collect();
    // A run with an update of its own has a status; one without keeps its columns.
    let r_status: Vec<Option<&str>> = touched.iter().map(|id| updates.get(id).map(|u| u.status.as_str())).collect();
    let r_result: Vec<Option<&serde_json::Value>> =
        touched.iter().map(|id| updates.get(id).and_then(|u| u.result.as_deref())).collect();
    let r_rendered: Vec<Option<&str>> =
        touched.iter().map(|id| updates.get(id).and_then(|u| u.rendered.as_deref())).collect();
    let r_error: Vec<Option<serde_json::Value>> = touched
        .iter()
        .map(|id| updates.get(id).and_then(|u| u.error.as_ref()).and_then(|e| serde_json::to_value(e).ok()))
        .collect();

    let statement = if attempts.is_empty() { WRITE_CHANGES_SETTLING } else { WRITE_CHANGES };
    let written = sqlx::query_as::<_, (Uuid, i64)>(statement)
        .bind(&a_run)
        .bind(&a_step)
        .bind(&a_attempt)
        .bind(&a_status)
        .bind(&a_worker)
        .bind(&a_error)
        .bind(&a_logs)
        .bind(&a_usage)
        .bind(&a_applied)
        .bind(&s_run)
        .bind(&s_step)
        .bind(&s_status)
        .bind(&s_attempt)
        .bind(&s_output)
        .bind(&s_error)
        .bind(&s_next)
        .bind(&s_after)
        .bind(&touched)
        .bind(&r_rev)
        .bind(&r_status)
        .bind(&r_result)
        .bind(&r_rendered)
        .bind(&r_error)
        .bind(&s_settled_by)
        .bind(&s_worker)
        .bind(&s_logs)
        .bind(&s_usage)
        .bind(&a_timeline)
        .bind(&s_timeline)
        .fetch_all(&mut *conn)
        .await;
    match written {
        Ok(w) => Ok(w),
        Err(sqlx::Error::Database(e))
            if matches!(e.constraint(), Some("earlier_attempts_pkey" | "attempt_applied_once")) =>
        {
            Err(WorkflowError::Conflict(
                "an attempt was applied twice (two engines applied the same result); batch rolled back".into(),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// A timeline as its column holds it: `crm_timeline_at` cuts each row's out of one array of
/// them all, [`StepTimeline::POINTS`] apiece, since Postgres has no array of arrays to unnest.
fn path_of(t: &StepTimeline) -> [i64; StepTimeline::POINTS] {
    t.path().map(|us| i64::try_from(us).unwrap_or(i64::MAX))
}

/// A timeline read back from its column, or `None` if `points` is not one.
pub fn timeline_from_column(points: &[i64]) -> Option<StepTimeline> {
    let points: Vec<u64> = points.iter().map(|&us| u64::try_from(us).unwrap_or(0)).collect();
    StepTimeline::from_path(&points)
}

/// A step ready to go to Redis, with what its job needs from the run.
#[derive(Debug, Clone)]
pub struct DueStep {
    pub run_id: Uuid,
    pub step: String,
    pub attempt: i32,
    pub workflow: String,
    pub version: i32,
    pub input: serde_json::Value,
    pub acting_user: Option<i64>,
}

/// Claims up to `limit` steps of the outbox whose time has come. The rows stay locked
/// (SKIP LOCKED keeps other engines off them) until the caller marks them enqueued and
/// commits, so each is sent by one engine at a time.
pub async fn claim_due(conn: &mut PgConnection, limit: i64) -> Result<Vec<DueStep>, WorkflowError> {
    let rows = sqlx::query(
        "SELECT s.run_id, s.step, s.attempt, r.workflow, r.version, r.input, r.acting_user
         FROM run_steps s JOIN runs r ON r.id = s.run_id
         WHERE s.status = 'queued' AND s.enqueued_at IS NULL AND s.dispatch_after <= now()
         ORDER BY s.dispatch_after
         LIMIT $1
         FOR UPDATE OF s SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(DueStep {
                run_id: r.try_get("run_id")?,
                step: r.try_get("step")?,
                attempt: r.try_get("attempt")?,
                workflow: r.try_get("workflow")?,
                version: r.try_get("version")?,
                input: r.try_get("input")?,
                acting_user: r.try_get("acting_user")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// The failures of these runs that have one: what their on_failure steps get.
pub async fn errors_of(
    conn: &mut PgConnection,
    run_ids: &[Uuid],
) -> Result<Vec<(Uuid, serde_json::Value)>, WorkflowError> {
    Ok(sqlx::query_as("SELECT id, error FROM runs WHERE id = ANY($1) AND error IS NOT NULL")
        .bind(run_ids)
        .fetch_all(&mut *conn)
        .await?)
}

/// Outputs of the succeeded steps of these runs: the inputs of their successors.
pub async fn outputs_of(
    conn: &mut PgConnection,
    run_ids: &[Uuid],
) -> Result<Vec<(Uuid, String, Arc<serde_json::Value>)>, WorkflowError> {
    let rows =
        sqlx::query("SELECT run_id, step, output FROM run_steps WHERE run_id = ANY($1) AND status = 'succeeded'")
            .bind(run_ids)
            .fetch_all(&mut *conn)
            .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("run_id")?,
                r.try_get("step")?,
                Arc::new(r.try_get::<Option<serde_json::Value>, _>("output")?.unwrap_or(serde_json::Value::Null)),
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Records that these attempts are on Redis. Only the attempt still queued is marked:
/// a step that finished or moved on meanwhile is left alone.
pub async fn mark_enqueued(conn: &mut PgConnection, keys: &[(Uuid, String, i32)]) -> Result<u64, WorkflowError> {
    if keys.is_empty() {
        return Ok(0);
    }
    let runs: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
    let steps: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
    let attempts: Vec<i32> = keys.iter().map(|k| k.2).collect();
    // Rows another transaction holds (an applier finishing that very step) are skipped
    // rather than waited for: waiting in arbitrary order is how deadlocks start, and the
    // applier is about to settle the step anyway.
    let n = sqlx::query(
        "UPDATE run_steps s SET enqueued_at = now()
         FROM (
            SELECT t.run_id, t.step FROM run_steps t
            JOIN UNNEST($1::uuid[], $2::text[], $3::int[]) AS u (r, s, a)
              ON t.run_id = u.r AND t.step = u.s AND t.attempt = u.a
            WHERE t.status = 'queued' AND t.enqueued_at IS NULL
            FOR UPDATE OF t SKIP LOCKED
         ) k
         WHERE s.run_id = k.run_id AND s.step = k.step",
    )
    .bind(&runs)
    .bind(&steps)
    .bind(&attempts)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n)
}

/// After Redis lost its data: every queued step goes back to the outbox, due now, except
/// those still waiting out a retry backoff longer than `keep_backoff_beyond`.
pub async fn requeue_in_flight(pool: &PgPool, keep_backoff_beyond: DateTime<Utc>) -> Result<u64, WorkflowError> {
    let n = sqlx::query(
        "UPDATE run_steps SET enqueued_at = NULL, dispatch_after = now()
         WHERE status = 'queued' AND (enqueued_at IS NOT NULL OR dispatch_after <= $1)",
    )
    .bind(keep_backoff_beyond)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(n)
}

/// Steps on Redis for longer than their deadline allows: `(run, step, attempt)`.
/// `timeouts` maps nothing here; the caller filters by each step's own timeout.
pub async fn in_flight_since(
    pool: &PgPool,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(Uuid, String, i32, DateTime<Utc>, String, i32)>, WorkflowError> {
    let rows = sqlx::query(
        "SELECT s.run_id, s.step, s.attempt, s.enqueued_at, r.workflow, r.version
         FROM run_steps s JOIN runs r ON r.id = s.run_id
         WHERE s.status = 'queued' AND s.enqueued_at IS NOT NULL AND s.enqueued_at < $1
         ORDER BY s.enqueued_at LIMIT $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("run_id")?,
                r.try_get("step")?,
                r.try_get("attempt")?,
                r.try_get("enqueued_at")?,
                r.try_get("workflow")?,
                r.try_get("version")?,
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Runs that finished after `since`, for republishing completions Redis may have lost.
///
/// Found through their steps: `runs.finished_at` has no index, so that finishing a run can
/// update its row in place (migration 0025). A run finishes in the [`write_changes`] that
/// settles its last open step (a result, a cancel, a failure), and both rows take that
/// statement's start (`statement_timestamp()`, not the transaction's `now()`): an engine
/// marks how far it has published by times it read before such statements
/// ([`crate::engine_marks`]), so a run must not finish at a time older than its statement.
pub async fn finished_since(pool: &PgPool, since: DateTime<Utc>) -> Result<Vec<Uuid>, WorkflowError> {
    let ids = sqlx::query_scalar(
        "SELECT r.id FROM runs r
         WHERE r.id IN (SELECT s.run_id FROM run_steps s WHERE s.finished_at > $1) AND r.finished_at > $1
         ORDER BY r.finished_at",
    )
    .bind(since)
    .fetch_all(pool)
    .await?;
    Ok(ids)
}

/// Reads and replaces a value in `scheduler_state`, returning the previous one.
pub async fn swap_state(pool: &PgPool, key: &str, value: &str) -> Result<Option<String>, WorkflowError> {
    let mut tx = pool.begin().await?;
    let old: Option<String> = sqlx::query_scalar("SELECT value FROM scheduler_state WHERE key = $1 FOR UPDATE")
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO scheduler_state (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = $2, at = now()",
    )
    .bind(key)
    .bind(value)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(old)
}
