//! A run as people read it afterwards: the run list, one run with its steps in manifest
//! order, each with the input it received, its output, and every attempt (worker, error,
//! logs, resource use).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use crm_concepts::run::{AttemptStatus, Notify, RunError, RunStatus, StepStatus};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::run_waits::WaitView;
use crate::runs::{status_of, step_status_of, timeline_from_column};
use crate::workflow_error::WorkflowError;
use crate::workflows;

// Sent with every field, `null` when unset: `#[schema(required)]` keeps the `Option`s
// required in the OpenAPI document, which would otherwise make them optional.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunSummary {
    pub id: Uuid,
    pub workflow: String,
    pub version: i32,
    pub status: RunStatus,
    pub trigger: String,
    #[schema(required)]
    pub acting_user: Option<i64>,
    pub created_at: DateTime<Utc>,
    #[schema(required)]
    pub started_at: Option<DateTime<Utc>>,
    #[schema(required)]
    pub finished_at: Option<DateTime<Utc>>,
    /// submit to finish, when finished
    #[schema(required)]
    pub duration_ms: Option<f64>,
    #[schema(required)]
    pub error: Option<RunError>,
    /// what a `waiting` run waits for: one entry per held step (empty otherwise)
    pub waiting_for: Vec<WaitView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunRecord {
    #[serde(flatten)]
    pub summary: RunSummary,
    pub input: serde_json::Value,
    #[schema(required)]
    pub notify: Option<Notify>,
    #[schema(required)]
    pub idempotency_key: Option<String>,
    #[schema(required)]
    pub result: Option<serde_json::Value>,
    #[schema(required)]
    pub rendered: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StepRecord {
    pub step: String,
    pub status: StepStatus,
    pub attempt: i32,
    #[schema(required)]
    pub output: Option<serde_json::Value>,
    #[schema(required)]
    pub error: Option<serde_json::Value>,
    #[schema(required)]
    pub next: Option<Vec<String>>,
    #[schema(required)]
    pub queued_at: Option<DateTime<Utc>>,
    #[schema(required)]
    pub enqueued_at: Option<DateTime<Utc>>,
    #[schema(required)]
    pub finished_at: Option<DateTime<Utc>>,
    #[schema(required)]
    pub duration_ms: Option<f64>,
    pub attempts: Vec<AttemptView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttemptView {
    pub attempt: i32,
    pub status: AttemptStatus,
    pub worker: String,
    #[schema(required)]
    pub error: Option<serde_json::Value>,
    pub logs: serde_json::Value,
    pub usage: serde_json::Value,
    pub applied: bool,
    pub received_at: DateTime<Utc>,
}

fn summary_of(r: &PgRow) -> Result<RunSummary, sqlx::Error> {
    let created_at: DateTime<Utc> = r.try_get("created_at")?;
    let finished_at: Option<DateTime<Utc>> = r.try_get("finished_at")?;
    Ok(RunSummary {
        id: r.try_get("id")?,
        workflow: r.try_get("workflow")?,
        version: r.try_get("version")?,
        status: status_of(r)?,
        trigger: r.try_get("trigger")?,
        acting_user: r.try_get("acting_user")?,
        created_at,
        started_at: r.try_get("started_at")?,
        finished_at,
        duration_ms: finished_at.map(|f| millis(f - created_at)),
        error: r.try_get::<Option<serde_json::Value>, _>("error")?.and_then(|e| serde_json::from_value(e).ok()),
        waiting_for: r
            .try_get::<Option<serde_json::Value>, _>("waiting_for")?
            .and_then(|w| serde_json::from_value(w).ok())
            .unwrap_or_default(),
    })
}

/// The `waiting_for` column of a run query: only a waiting run looks at `run_waits`. A
/// macro, so the statements stay literals.
macro_rules! waiting_for {
    () => {
        "CASE WHEN status = 'waiting' THEN (
            SELECT jsonb_agg(jsonb_build_object('step', w.step, 'kind', w.kind, 'until', w.wake_at, 'what', w.what)
                             ORDER BY w.wake_at)
            FROM run_waits w WHERE w.run_id = runs.id) END AS waiting_for"
    };
}

fn millis(d: chrono::TimeDelta) -> f64 {
    d.num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0
}

/// Filters and page of a run list; runs come newest first.
#[derive(Debug, Clone, Default)]
pub struct RunQuery {
    pub workflow: Option<String>,
    pub status: Option<RunStatus>,
    pub limit: i64,
    pub cursor: Option<String>,
}

pub async fn list(pool: &PgPool, q: &RunQuery) -> Result<(Vec<RunSummary>, Option<String>), WorkflowError> {
    let after = match &q.cursor {
        Some(c) => Some(decode_cursor(c)?),
        None => None,
    };
    let limit = q.limit.clamp(1, 200);
    let rows = sqlx::query(concat!(
        "SELECT id, workflow, version, status, trigger, acting_user, created_at, started_at, finished_at, error, ",
        waiting_for!(),
        " FROM runs
         WHERE ($1::text IS NULL OR workflow = $1)
           AND ($2::text IS NULL OR status = $2)
           AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
         ORDER BY created_at DESC, id DESC
         LIMIT $5"
    ))
    .bind(q.workflow.as_deref())
    .bind(q.status.map(|s| s.as_str()))
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    let mut items = rows.iter().map(summary_of).collect::<Result<Vec<_>, _>>()?;
    let next = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|l| encode_cursor(l.created_at, l.id))
    } else {
        None
    };
    Ok((items, next))
}

fn encode_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    format!("{}_{}", at.timestamp_micros(), id.simple())
}

fn decode_cursor(c: &str) -> Result<(DateTime<Utc>, Uuid), WorkflowError> {
    let bad = || WorkflowError::InvalidQuery("cursor is not one this API handed out".into());
    let (t, id) = c.split_once('_').ok_or_else(bad)?;
    let t = DateTime::from_timestamp_micros(t.parse().map_err(|_| bad())?).ok_or_else(bad)?;
    Ok((t, Uuid::parse_str(id).map_err(|_| bad())?))
}

pub async fn get(pool: &PgPool, id: Uuid) -> Result<RunRecord, WorkflowError> {
    let r = sqlx::query(concat!(
        "SELECT id, workflow, version, status, trigger, acting_user, created_at, started_at, finished_at, error,
                input, notify, idempotency_key, result, rendered, ",
        waiting_for!(),
        " FROM runs WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or(WorkflowError::RunNotFound(id))?;
    Ok(RunRecord {
        summary: summary_of(&r)?,
        input: r.try_get("input")?,
        notify: r.try_get::<Option<serde_json::Value>, _>("notify")?.and_then(|n| serde_json::from_value(n).ok()),
        idempotency_key: r.try_get("idempotency_key")?,
        result: r.try_get("result")?,
        rendered: r.try_get("rendered")?,
    })
}

/// An attempt's usage as the API shows it, its timeline inside. Postgres keeps the timeline
/// in a column of its own; an attempt recorded before that has it inside the usage already.
fn usage_of(a: &PgRow) -> Result<Value, sqlx::Error> {
    let mut usage: Value = a.try_get("usage")?;
    let timeline: Option<Vec<i64>> = a.try_get("timeline")?;
    if let Some(points) = timeline {
        let timeline = timeline_from_column(&points)
            .ok_or_else(|| sqlx::Error::Decode(format!("a timeline of {} points", points.len()).into()))?;
        if let Some(fields) = usage.as_object_mut() {
            fields.insert("timeline".into(), serde_json::to_value(timeline).unwrap_or_default());
        }
    }
    Ok(usage)
}

/// A run's steps with every attempt, in no particular order (the caller orders them by
/// the manifest).
pub async fn steps(pool: &PgPool, id: Uuid) -> Result<Vec<StepRecord>, WorkflowError> {
    let attempts = sqlx::query(
        "SELECT step, attempt, status, worker, error, logs, usage, timeline, applied, received_at
         FROM step_attempts WHERE run_id = $1 ORDER BY step, attempt",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    let mut by_step: std::collections::HashMap<String, Vec<AttemptView>> = Default::default();
    for a in &attempts {
        let s: String = a.try_get("status")?;
        by_step.entry(a.try_get("step")?).or_default().push(AttemptView {
            attempt: a.try_get("attempt")?,
            status: s.parse().map_err(|e: String| sqlx::Error::Decode(e.into()))?,
            worker: a.try_get("worker")?,
            error: a.try_get("error")?,
            logs: a.try_get("logs")?,
            usage: usage_of(a)?,
            applied: a.try_get("applied")?,
            received_at: a.try_get("received_at")?,
        });
    }
    let rows = sqlx::query(
        "SELECT step, status, attempt, output, error, next, queued_at, enqueued_at, finished_at
         FROM run_steps WHERE run_id = $1",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let step: String = r.try_get("step")?;
            let queued_at: Option<DateTime<Utc>> = r.try_get("queued_at")?;
            let finished_at: Option<DateTime<Utc>> = r.try_get("finished_at")?;
            Ok(StepRecord {
                attempts: by_step.remove(&step).unwrap_or_default(),
                step,
                status: step_status_of(r)?,
                attempt: r.try_get("attempt")?,
                output: r.try_get("output")?,
                error: r.try_get("error")?,
                next: r.try_get("next")?,
                queued_at,
                enqueued_at: r.try_get("enqueued_at")?,
                finished_at,
                duration_ms: queued_at.zip(finished_at).map(|(q, f)| millis(f - q)),
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: RunRecord,
    pub steps: Vec<StepDetail>,
}

// Sent with every field, `null` when unset: `#[schema(required)]` keeps the `Option`s
// required in the OpenAPI document, which would otherwise make them optional.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StepDetail {
    /// `component`, `wait` or `wait_event`
    pub kind: String,
    /// the component's digest (empty for a waiting step)
    pub component: String,
    pub needs: Vec<String>,
    /// what the step received: the run input, its dependencies' outputs, its config
    /// (absent until it ran)
    #[schema(required)]
    pub input: Option<Value>,
    #[serde(flatten)]
    pub record: StepRecord,
}

pub async fn run_detail(pool: &PgPool, id: Uuid) -> Result<RunDetail, WorkflowError> {
    let run = get(pool, id).await?;
    let version = workflows::version(pool, &run.summary.workflow, run.summary.version).await?;
    let mut records: BTreeMap<String, StepRecord> =
        steps(pool, id).await?.into_iter().map(|s| (s.step.clone(), s)).collect();
    let outputs: BTreeMap<String, Value> = records
        .values()
        .filter(|s| s.status == crm_concepts::run::StepStatus::Succeeded)
        .map(|s| (s.step.clone(), s.output.clone().unwrap_or(Value::Null)))
        .collect();
    let mut steps = Vec::with_capacity(records.len());
    for spec in &version.manifest.steps {
        let Some(record) = records.remove(&spec.id) else {
            continue;
        };
        let started = record.attempt > 0;
        let deps: BTreeMap<&String, &Value> =
            spec.needs.iter().filter_map(|n| outputs.get(n).map(|o| (n, o))).collect();
        steps.push(StepDetail {
            kind: spec.kind().name().to_string(),
            component: version.components.get(&spec.component).cloned().unwrap_or_else(|| spec.component.clone()),
            needs: spec.needs.clone(),
            input: started.then(|| json!({"run_input": run.input, "deps": deps, "config": spec.config})),
            record,
        });
    }
    Ok(RunDetail { run, steps })
}

/// Where each of `ids` stands: the run's status and every step's (status, attempt), in one
/// query for all of them. What the run event streams compare between looks.
pub async fn progress(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<RunProgress>, WorkflowError> {
    let rows = sqlx::query(
        "SELECT r.id, r.status, s.step, s.status AS step_status, s.attempt
         FROM runs r LEFT JOIN run_steps s ON s.run_id = r.id
         WHERE r.id = ANY($1) ORDER BY r.id, s.step",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?;
    let mut out: Vec<RunProgress> = Vec::new();
    for r in &rows {
        let id: Uuid = r.try_get("id")?;
        if out.last().is_none_or(|p| p.id != id) {
            out.push(RunProgress { id, status: status_of(r)?, steps: Vec::new() });
        }
        let Some(step) = r.try_get::<Option<String>, _>("step")? else { continue };
        let status: String = r.try_get("step_status")?;
        let status = status.parse().map_err(|e: String| sqlx::Error::Decode(e.into()))?;
        let progress = out.last_mut().expect("pushed above");
        progress.steps.push((step, status, r.try_get("attempt")?));
    }
    Ok(out)
}

/// A run's status and its steps' (name, status, attempt), ordered by step name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunProgress {
    pub id: Uuid,
    pub status: RunStatus,
    pub steps: Vec<(String, StepStatus, i32)>,
}
