//! Runs held at a waiting step: one `run_waits` row each, with its wake time and, for
//! `wait_event`, the record whose change wakes it. Every write here happens under the
//! run's lock (`runs::lock_runs`), so a row and its step never disagree.

use chrono::{DateTime, Utc};
use crm_concepts::user::Role;
use serde::Serialize;
use sqlx::{PgConnection, Row};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::workflow_error::WorkflowError;

/// A step that starts holding its run.
#[derive(Debug, Clone, PartialEq)]
pub struct NewWait {
    pub run_id: Uuid,
    pub step: String,
    /// `wait`, `wait_event` or `approval`
    pub kind: String,
    pub wake_at: DateTime<Utc>,
    /// what it waits for, as people read it after "<step> waits": `until 2026-12-24
    /// 09:00:00 UTC`, `for a change of deal 7 (stage_id changed) until …`
    pub what: String,
    /// `wait_event`: the record kind and id whose change wakes it
    pub record: Option<(String, i64)>,
    pub detail: serde_json::Value,
}

/// What a waiting run waits for, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, ToSchema)]
pub struct WaitView {
    pub step: String,
    pub kind: String,
    /// when it ends: the time of a `wait`, the timeout of the others
    pub until: DateTime<Utc>,
    pub what: String,
}

/// A wait whose time has come, claimed by one engine.
#[derive(Debug, Clone)]
pub struct DueWait {
    pub run_id: Uuid,
    pub step: String,
    pub kind: String,
}

/// A `wait_event` subscription on a record.
#[derive(Debug, Clone)]
pub struct RecordWait {
    pub run_id: Uuid,
    pub step: String,
    pub record_kind: String,
    pub record_id: i64,
    pub detail: serde_json::Value,
}

pub async fn insert(conn: &mut PgConnection, waits: &[NewWait]) -> Result<(), WorkflowError> {
    if waits.is_empty() {
        return Ok(());
    }
    let runs: Vec<Uuid> = waits.iter().map(|w| w.run_id).collect();
    let steps: Vec<&str> = waits.iter().map(|w| w.step.as_str()).collect();
    let kinds: Vec<&str> = waits.iter().map(|w| w.kind.as_str()).collect();
    let wake: Vec<DateTime<Utc>> = waits.iter().map(|w| w.wake_at).collect();
    let what: Vec<&str> = waits.iter().map(|w| w.what.as_str()).collect();
    let rkind: Vec<Option<&str>> = waits.iter().map(|w| w.record.as_ref().map(|r| r.0.as_str())).collect();
    let rid: Vec<Option<i64>> = waits.iter().map(|w| w.record.as_ref().map(|r| r.1)).collect();
    let detail: Vec<&serde_json::Value> = waits.iter().map(|w| &w.detail).collect();
    sqlx::query(
        "INSERT INTO run_waits (run_id, step, kind, wake_at, what, record_kind, record_id, detail)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::int8[], $8::jsonb[])
         ON CONFLICT DO NOTHING",
    )
    .bind(&runs)
    .bind(&steps)
    .bind(&kinds)
    .bind(&wake)
    .bind(&what)
    .bind(&rkind)
    .bind(&rid)
    .bind(&detail)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Removes the waits of steps that stopped holding (woken, cancelled).
pub async fn delete(conn: &mut PgConnection, keys: &[(Uuid, String)]) -> Result<(), WorkflowError> {
    if keys.is_empty() {
        return Ok(());
    }
    let runs: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
    let steps: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
    sqlx::query(
        "DELETE FROM run_waits w USING UNNEST($1::uuid[], $2::text[]) AS u (r, s)
         WHERE w.run_id = u.r AND w.step = u.s",
    )
    .bind(&runs)
    .bind(&steps)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Claims up to `limit` waits due at `now`, oldest first, with their runs: one query on
/// `run_waits_due`. Rows another engine holds are skipped, so no wait fires twice; the
/// locks last until the caller commits.
pub async fn claim_due(conn: &mut PgConnection, now: DateTime<Utc>, limit: i64) -> Result<Vec<DueWait>, WorkflowError> {
    let rows = sqlx::query(
        "SELECT w.run_id, w.step, w.kind FROM run_waits w JOIN runs r ON r.id = w.run_id
         WHERE w.wake_at <= $1
         ORDER BY w.wake_at
         LIMIT $2
         FOR UPDATE OF w, r SKIP LOCKED",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok(DueWait { run_id: r.try_get("run_id")?, step: r.try_get("step")?, kind: r.try_get("kind")? }))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// The soonest wake time after `now` (one probe of `run_waits_due`). Waits due already are
/// left out: when none were claimable, they are held by another engine firing them.
pub async fn next_due_after(pool: &sqlx::PgPool, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, WorkflowError> {
    Ok(sqlx::query_scalar("SELECT min(wake_at) FROM run_waits WHERE wake_at > $1").bind(now).fetch_one(pool).await?)
}

/// The `wait_event` subscriptions on these records.
pub async fn on_records(conn: &mut PgConnection, records: &[(String, i64)]) -> Result<Vec<RecordWait>, WorkflowError> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let kinds: Vec<&str> = records.iter().map(|r| r.0.as_str()).collect();
    let ids: Vec<i64> = records.iter().map(|r| r.1).collect();
    let rows = sqlx::query(
        "SELECT w.run_id, w.step, w.record_kind, w.record_id, w.detail FROM run_waits w
         JOIN (SELECT DISTINCT * FROM UNNEST($1::text[], $2::int8[])) AS u (k, i)
           ON w.record_kind = u.k AND w.record_id = u.i",
    )
    .bind(&kinds)
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(RecordWait {
                run_id: r.try_get("run_id")?,
                step: r.try_get("step")?,
                record_kind: r.try_get("record_kind")?,
                record_id: r.try_get("record_id")?,
                detail: r.try_get("detail")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// An `approval` step waiting for a decision.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PendingApproval {
    /// the short id the bot's buttons carry (`POST /api/approvals/{id}`)
    #[schema(required)]
    pub id: Option<i64>,
    pub run_id: Uuid,
    pub step: String,
    pub workflow: String,
    /// the question, rendered
    pub text: String,
    /// who may decide: `manager` (managers and admins) or `admin`
    pub role: String,
    /// when the timeout decides
    pub until: DateTime<Utc>,
    /// the decision the timeout makes
    pub on_timeout: String,
    /// only the owner of this record (`{"record", "id"}`) may decide, besides admins
    #[schema(required)]
    pub owner_of: Option<serde_json::Value>,
}

/// Pending approvals, soonest timeout first; `one` narrows to one step of one run, and
/// `decider` (a user id and role) to those that user may decide: of their role (admins
/// decide all) and, where the step names a record, of a record they own.
pub async fn approvals(
    pool: &sqlx::PgPool,
    one: Option<(Uuid, &str)>,
    decider: Option<(i64, &str)>,
    limit: i64,
) -> Result<Vec<PendingApproval>, WorkflowError> {
    let rows = sqlx::query(
        "SELECT a.id, w.run_id, w.step, r.workflow, w.wake_at, w.detail
         FROM run_waits w JOIN runs r ON r.id = w.run_id
         LEFT JOIN approvals a ON a.run_id = w.run_id AND a.step = w.step
         WHERE w.kind = 'approval' AND ($1::uuid IS NULL OR (w.run_id = $1 AND w.step = $2))
           AND ($4::bigint IS NULL OR $5 = 'admin' OR ($5 = 'manager' AND w.detail->>'role' = 'manager'
                AND (w.detail->'owner_of' IS NULL
                     OR (CASE w.detail->'owner_of'->>'record'
                           WHEN 'deal' THEN (SELECT owner_id FROM deals WHERE id = (w.detail->'owner_of'->>'id')::bigint)
                           WHEN 'contact' THEN (SELECT owner_id FROM contacts WHERE id = (w.detail->'owner_of'->>'id')::bigint)
                           WHEN 'company' THEN (SELECT owner_id FROM companies WHERE id = (w.detail->'owner_of'->>'id')::bigint)
                         END) = $4)))
         ORDER BY w.wake_at LIMIT $3",
    )
    .bind(one.map(|o| o.0))
    .bind(one.map(|o| o.1))
    .bind(limit)
    .bind(decider.map(|d| d.0))
    .bind(decider.map(|d| d.1))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let detail: serde_json::Value = r.try_get("detail")?;
            let s = |k: &str| detail[k].as_str().unwrap_or_default().to_string();
            Ok(PendingApproval {
                id: r.try_get("id")?,
                run_id: r.try_get("run_id")?,
                step: r.try_get("step")?,
                workflow: r.try_get("workflow")?,
                text: s("text"),
                role: s("role"),
                until: r.try_get("wake_at")?,
                on_timeout: s("on_timeout"),
                owner_of: Some(detail["owner_of"].clone()).filter(|o| !o.is_null()),
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// The owner of a deal, contact or company (`None`: no such record, or no owner).
pub async fn owner_of(pool: &sqlx::PgPool, record: &str, id: i64) -> Result<Option<i64>, WorkflowError> {
    // The table comes from this fixed list, never from the caller's text.
    let sql = match record {
        "deal" => "SELECT owner_id FROM deals WHERE id = $1",
        "contact" => "SELECT owner_id FROM contacts WHERE id = $1",
        "company" => "SELECT owner_id FROM companies WHERE id = $1",
        _ => return Ok(None),
    };
    let owner: Option<Option<i64>> = sqlx::query_scalar(sql).bind(id).fetch_optional(pool).await?;
    Ok(owner.flatten())
}

/// Why `user` (of `role`) may not decide `pending`, or `None` when they may: only the role
/// the step names (`manager`: managers and admins; `admin`: admins), and where the step
/// names a record, only its owner besides admins. The API (and through it the bot) and the
/// web app decide under this one rule.
pub async fn refusal(
    pool: &sqlx::PgPool,
    pending: &PendingApproval,
    user: i64,
    role: Role,
) -> Result<Option<String>, WorkflowError> {
    if role == Role::Admin {
        return Ok(None);
    }
    if !(role == Role::Manager && pending.role == "manager") {
        let who = if pending.role == "admin" { "an admin" } else { "a manager" };
        return Ok(Some(format!("only {who} may decide this approval")));
    }
    if let Some(o) = &pending.owner_of {
        let record = o["record"].as_str().unwrap_or_default();
        let id = o["id"].as_i64().unwrap_or_default();
        if owner_of(pool, record, id).await? != Some(user) {
            return Ok(Some(format!("only the owner of {record} {id} (or an admin) may decide this approval")));
        }
    }
    Ok(None)
}
