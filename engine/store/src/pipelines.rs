//! Pipelines and their ordered stages. A stage's kind decides what entering it means for
//! a deal (won/lost close it).

use crm_concepts::records::{Actor, Id, NewPipeline, Pipeline, RecordKind, Stage};
use sqlx::PgConnection;

use crate::Db;
use crate::audit;
use crate::error::StoreError;
use crate::table;
use crm_concepts::fields;

const PIPELINE_JSON: &str = "jsonb_build_object('id', p.id, 'name', p.name, 'created_at', p.created_at,
    'stages', COALESCE((SELECT jsonb_agg(to_jsonb(s.*) ORDER BY s.position) FROM stages s WHERE s.pipeline_id = p.id), '[]'::jsonb))";

pub async fn create(db: &Db, actor: &Actor, new: NewPipeline) -> Result<Pipeline, StoreError> {
    fields::text("name", &new.name, 200)?;
    if new.stages.is_empty() {
        return Err(StoreError::validation("stages", "a pipeline needs at least one stage"));
    }
    if new.stages.len() > 50 {
        return Err(StoreError::validation("stages", "at most 50 stages"));
    }
    for (i, s) in new.stages.iter().enumerate() {
        fields::text(&format!("stages[{i}].name"), &s.name, 200)?;
    }
    let mut tx = db.pool.begin().await?;
    let (id,): (Id,) = sqlx::query_as("INSERT INTO pipelines (name) VALUES ($1) RETURNING id")
        .bind(&new.name)
        .fetch_one(&mut *tx)
        .await?;
    for (position, s) in new.stages.iter().enumerate() {
        sqlx::query("INSERT INTO stages (pipeline_id, name, position, kind) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(&s.name)
            .bind(position as i32)
            .bind(s.kind.as_str())
            .execute(&mut *tx)
            .await?;
    }
    let after = fetch_json(&mut tx, id).await?;
    audit::record_change(&mut tx, actor, RecordKind::Pipeline, id, "created", None, Some(&after)).await?;
    tx.commit().await?;
    table::to_record(after)
}

pub async fn get(db: &Db, id: Id) -> Result<Pipeline, StoreError> {
    let mut conn = db.pool.acquire().await?;
    table::to_record(fetch_json(&mut conn, id).await?)
}

/// All pipelines, oldest first: there are few, so no pagination.
pub async fn list(db: &Db) -> Result<Vec<Pipeline>, StoreError> {
    let rows: Vec<(serde_json::Value,)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {PIPELINE_JSON} FROM pipelines p ORDER BY p.id")))
            .fetch_all(&db.pool)
            .await?;
    rows.into_iter().map(|r| table::to_record(r.0)).collect()
}

pub async fn stage(db: &Db, stage_id: Id) -> Result<Stage, StoreError> {
    let mut conn = db.pool.acquire().await?;
    find_stage(&mut conn, stage_id)
        .await?
        .ok_or_else(|| StoreError::validation("stage_id", format!("stage {stage_id} does not exist")))
}

pub(crate) async fn find_stage(conn: &mut PgConnection, stage_id: Id) -> Result<Option<Stage>, StoreError> {
    let row: Option<(serde_json::Value,)> = sqlx::query_as("SELECT to_jsonb(s.*) FROM stages s WHERE s.id = $1")
        .bind(stage_id)
        .fetch_optional(conn)
        .await?;
    row.map(|r| table::to_record(r.0)).transpose()
}

/// The first stage of a pipeline, or of the oldest pipeline when none is named.
pub(crate) async fn first_stage(conn: &mut PgConnection, pipeline_id: Option<Id>) -> Result<Option<Stage>, StoreError> {
    let row: Option<(serde_json::Value,)> = sqlx::query_as(
        "SELECT to_jsonb(s.*) FROM stages s
         WHERE s.pipeline_id = COALESCE($1, (SELECT min(id) FROM pipelines))
         ORDER BY s.position LIMIT 1",
    )
    .bind(pipeline_id)
    .fetch_optional(conn)
    .await?;
    row.map(|r| table::to_record(r.0)).transpose()
}

async fn fetch_json(conn: &mut PgConnection, id: Id) -> Result<serde_json::Value, StoreError> {
    let row: Option<(serde_json::Value,)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {PIPELINE_JSON} FROM pipelines p WHERE p.id = $1")))
            .bind(id)
            .fetch_optional(conn)
            .await?;
    row.map(|r| r.0).ok_or(StoreError::not_found(RecordKind::Pipeline, id))
}
