//! The pipeline board: one pipeline's stages as columns, each with its deal count, totals
//! per currency and its most recently moved deals. Open stages show their open deals;
//! won and lost stages show what closed there recently, so the board stays a working view
//! rather than an archive.

use chrono::{DateTime, Utc};
use crm_concepts::records::{Deal, Id, Pipeline, Stage};
use serde_json::Value;

use crate::Db;
use crate::error::StoreError;
use crate::{pipelines, table};

/// One stage of the board.
#[derive(Debug, Clone)]
pub struct Column {
    pub stage: Stage,
    /// deals in the stage (those closed since `closed_since` for won/lost stages)
    pub count: i64,
    /// (currency, sum of amounts in minor units), largest first
    pub totals: Vec<(String, i64)>,
    /// at most `cards_per_stage`, most recently moved first
    pub deals: Vec<Deal>,
}

#[derive(Debug, Clone)]
pub struct Board {
    pub pipeline: Pipeline,
    pub columns: Vec<Column>,
}

/// The board of `pipeline_id`.
pub async fn board(
    db: &Db,
    pipeline_id: Id,
    cards_per_stage: i64,
    closed_since: DateTime<Utc>,
) -> Result<Board, StoreError> {
    let pipeline = pipelines::get(db, pipeline_id).await?;
    let stage_ids: Vec<Id> = pipeline.stages.iter().map(|s| s.id).collect();
    let mut conn = db.pool.acquire().await?;
    let totals: Vec<(Id, String, i64, i64)> = sqlx::query_as(
        "SELECT t.stage_id, t.currency, count(*), COALESCE(sum(t.amount_minor), 0)::bigint
         FROM deals t
         WHERE t.stage_id = ANY($1) AND t.deleted_at IS NULL AND (t.status = 'open' OR t.closed_at >= $2)
         GROUP BY t.stage_id, t.currency",
    )
    .bind(&stage_ids)
    .bind(closed_since)
    .fetch_all(&mut *conn)
    .await?;
    let cards: Vec<(Value,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT c.rec FROM unnest($1::bigint[]) AS s (id)
         CROSS JOIN LATERAL (
             SELECT {} AS rec FROM deals t
             WHERE t.stage_id = s.id AND t.deleted_at IS NULL AND (t.status = 'open' OR t.closed_at >= $2)
             ORDER BY t.stage_changed_at DESC, t.id DESC
             LIMIT $3
         ) c",
        table::row_json("t")
    )))
    .bind(&stage_ids)
    .bind(closed_since)
    .bind(cards_per_stage)
    .fetch_all(&mut *conn)
    .await?;

    let mut columns: Vec<Column> = pipeline
        .stages
        .iter()
        .map(|s| Column { stage: s.clone(), count: 0, totals: Vec::new(), deals: Vec::new() })
        .collect();
    let column_of = |columns: &mut Vec<Column>, stage: Id| columns.iter_mut().position(|c| c.stage.id == stage);
    for (stage, currency, count, sum) in totals {
        if let Some(i) = column_of(&mut columns, stage) {
            columns[i].count += count;
            columns[i].totals.push((currency, sum));
        }
    }
    for (rec,) in cards {
        let deal: Deal = table::to_record(rec)?;
        if let Some(i) = column_of(&mut columns, deal.stage_id) {
            columns[i].deals.push(deal);
        }
    }
    for c in &mut columns {
        c.totals.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    }
    Ok(Board { pipeline, columns })
}
