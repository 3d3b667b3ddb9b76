//! Deals move through the stages of one pipeline; their status follows the stage's kind
//! (a won/lost stage closes the deal and stamps `closed_at`).

use std::collections::HashMap;

use chrono::Utc;
use crm_concepts::fields::Checked;
use crm_concepts::records::{
    Actor, Deal, DealFilter, DealPatch, DealStatus, Id, NewDeal, Page, PageRequest, RecordKind, Stage,
};
use serde_json::{Map, Value, json};
use sqlx::PgConnection;

use crate::Db;
use crate::error::StoreError;
use crate::table::{self, CREATED_AT, ID, SortKey, Table, UPDATED_AT, ensure_exists};
use crate::{companies, contacts, pipelines, search, users};

pub(crate) const TABLE: Table = Table {
    name: "deals",
    kind: RecordKind::Deal,
    soft_delete: true,
    has_updated_at: true,
    sorts: &[
        CREATED_AT,
        UPDATED_AT,
        ID,
        SortKey { name: "title", expr: "t.title", sql_type: "text" },
        SortKey { name: "amount_minor", expr: "t.amount_minor", sql_type: "bigint" },
        SortKey { name: "stage_changed_at", expr: "t.stage_changed_at", sql_type: "timestamptz" },
        SortKey { name: "expected_close", expr: "COALESCE(t.expected_close, 'infinity'::date)", sql_type: "date" },
    ],
    default_sort: "-created_at",
};

pub async fn create(db: &Db, actor: &Actor, new: NewDeal) -> Result<Deal, StoreError> {
    let mut tx = db.pool.begin().await?;
    let deal = create_in(&mut tx, actor, new).await?;
    tx.commit().await?;
    Ok(deal)
}

/// [`create`] inside the caller's transaction.
pub async fn create_in(conn: &mut PgConnection, actor: &Actor, new: NewDeal) -> Result<Deal, StoreError> {
    let fields = creation_fields(conn, &new, &mut StageCache::new()).await?;
    ensure_exists(conn, &contacts::TABLE, new.contact_id, "contact_id").await?;
    ensure_exists(conn, &companies::TABLE, new.company_id, "company_id").await?;
    ensure_exists(conn, &users::TABLE, new.owner_id, "owner_id").await?;
    table::to_record(TABLE.create_audited(conn, actor, &fields).await?)
}

/// Stages looked up for new deals, by the (pipeline_id, stage_id) a new deal names: an
/// import of many deals asks once per pair.
pub(crate) type StageCache = HashMap<(Option<Id>, Option<Id>), Stage>;

/// The columns of a new deal after its checks: its currency and the stage it starts in
/// (the one named, or the first of its pipeline, or of the oldest pipeline). References to
/// other records are the caller's to check.
pub(crate) async fn creation_fields(
    conn: &mut PgConnection,
    new: &NewDeal,
    stages: &mut StageCache,
) -> Result<Map<String, Value>, StoreError> {
    new.check()?;
    let currency = new.currency.clone().unwrap_or_else(|| "USD".to_string());
    let key = (new.pipeline_id, new.stage_id);
    let stage = match stages.get(&key) {
        Some(stage) => stage.clone(),
        None => {
            let stage = match key {
                (pipeline_id, Some(stage_id)) => {
                    let stage = pipelines::find_stage(conn, stage_id).await?.ok_or_else(|| {
                        StoreError::validation("stage_id", format!("stage {stage_id} does not exist"))
                    })?;
                    if let Some(p) = pipeline_id {
                        check_stage_in(&stage, p)?;
                    }
                    stage
                }
                (Some(p), None) => pipelines::first_stage(conn, Some(p))
                    .await?
                    .ok_or_else(|| StoreError::validation("pipeline_id", format!("pipeline {p} does not exist")))?,
                (None, None) => pipelines::first_stage(conn, None)
                    .await?
                    .ok_or_else(|| StoreError::validation("pipeline_id", "no pipeline exists yet: create one first"))?,
            };
            stages.insert(key, stage.clone());
            stage
        }
    };
    let mut fields = table::to_fields(new)?;
    fields.insert("currency".into(), json!(currency));
    enter_stage(&mut fields, &stage, None);
    Ok(fields)
}

pub async fn get(db: &Db, id: Id) -> Result<Deal, StoreError> {
    get_in(&mut *db.pool.acquire().await?, id).await
}

pub async fn get_in(conn: &mut PgConnection, id: Id) -> Result<Deal, StoreError> {
    table::to_record(TABLE.get(conn, id).await?)
}

pub async fn update(db: &Db, actor: &Actor, id: Id, patch: DealPatch) -> Result<Deal, StoreError> {
    apply(db, actor, id, patch, "updated").await
}

/// [`update`] inside the caller's transaction.
pub async fn update_in(conn: &mut PgConnection, actor: &Actor, id: Id, patch: DealPatch) -> Result<Deal, StoreError> {
    let (before, after) = patch_row(conn, actor, id, patch, "updated").await?;
    table::to_record(after.unwrap_or(before))
}

/// Moves a deal to another stage of its pipeline.
pub async fn move_stage(db: &Db, actor: &Actor, id: Id, stage_id: Id) -> Result<Deal, StoreError> {
    apply(db, actor, id, DealPatch { stage_id: Some(stage_id), ..DealPatch::default() }, "moved").await
}

pub async fn delete(db: &Db, actor: &Actor, id: Id) -> Result<(), StoreError> {
    let mut tx = db.pool.begin().await?;
    TABLE.delete_audited(&mut tx, actor, id).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn list(db: &Db, filter: &DealFilter, page: &PageRequest) -> Result<Page<Deal>, StoreError> {
    list_in(&mut *db.pool.acquire().await?, filter, page).await
}

pub async fn list_in(
    conn: &mut PgConnection,
    filter: &DealFilter,
    page: &PageRequest,
) -> Result<Page<Deal>, StoreError> {
    let q = filter.q.as_deref().map(search::normalize).filter(|q| !q.is_empty());
    let matcher = match q {
        Some(q) => Some(search::Matcher::new(conn, q).await?),
        None => None,
    };
    let custom = crate::custom_fields::conditions(conn, RecordKind::Deal, &filter.fields).await?;
    let rows = TABLE
        .list(conn, page, |qb| {
            crate::custom_fields::push(qb, &custom);
            let mut eq = |col: &str, v: Option<Id>| {
                if let Some(v) = v {
                    qb.push(format!(" AND t.{col} = ")).push_bind(v);
                }
            };
            eq("pipeline_id", filter.pipeline_id);
            eq("stage_id", filter.stage_id);
            eq("owner_id", filter.owner_id);
            eq("contact_id", filter.contact_id);
            eq("company_id", filter.company_id);
            if let Some(s) = filter.status {
                qb.push(" AND t.status = ").push_bind(s.as_str());
            }
            if let Some(before) = filter.stage_changed_before {
                qb.push(" AND t.stage_changed_at < ").push_bind(before);
            }
            if let Some(m) = &matcher {
                m.push_filter(qb, RecordKind::Deal, search::Pass::Loose);
            }
        })
        .await?;
    table::to_records(rows)
}

async fn apply(db: &Db, actor: &Actor, id: Id, patch: DealPatch, action: &str) -> Result<Deal, StoreError> {
    let mut tx = db.pool.begin().await?;
    let (before, after) = patch_row(&mut tx, actor, id, patch, action).await?;
    table::finish_update(tx, before, after).await
}

async fn patch_row(
    conn: &mut PgConnection,
    actor: &Actor,
    id: Id,
    patch: DealPatch,
    action: &str,
) -> Result<(Value, Option<Value>), StoreError> {
    patch.check()?;
    let before = TABLE.lock(conn, id).await?;
    let current: Deal = table::to_record(before.clone())?;
    ensure_exists(conn, &contacts::TABLE, patch.contact_id.flatten(), "contact_id").await?;
    ensure_exists(conn, &companies::TABLE, patch.company_id.flatten(), "company_id").await?;
    ensure_exists(conn, &users::TABLE, patch.owner_id.flatten(), "owner_id").await?;

    let mut fields = table::to_fields(&patch)?;
    fields.remove("pipeline_id");
    fields.remove("stage_id");
    if patch.pipeline_id.is_some() || patch.stage_id.is_some() {
        let stage = target_stage(conn, &current, patch.pipeline_id, patch.stage_id).await?;
        if stage.id != current.stage_id {
            enter_stage(&mut fields, &stage, Some(&current));
        }
    }
    let after = TABLE.update_audited(conn, actor, &before, &fields, action).await?;
    Ok((before, after))
}

/// The stage a patch asks for: the named stage (which must be in the target pipeline), or
/// the first stage of a newly named pipeline, or the current stage.
async fn target_stage(
    conn: &mut PgConnection,
    current: &Deal,
    pipeline_id: Option<Id>,
    stage_id: Option<Id>,
) -> Result<Stage, StoreError> {
    let pipeline = pipeline_id.unwrap_or(current.pipeline_id);
    match stage_id {
        Some(s) => {
            let stage = pipelines::find_stage(conn, s)
                .await?
                .ok_or_else(|| StoreError::validation("stage_id", format!("stage {s} does not exist")))?;
            check_stage_in(&stage, pipeline)?;
            Ok(stage)
        }
        None => pipelines::first_stage(conn, Some(pipeline))
            .await?
            .ok_or_else(|| StoreError::validation("pipeline_id", format!("pipeline {pipeline} does not exist"))),
    }
}

fn check_stage_in(stage: &Stage, pipeline_id: Id) -> Result<(), StoreError> {
    if stage.pipeline_id == pipeline_id {
        Ok(())
    } else {
        Err(StoreError::validation(
            "stage_id",
            format!("stage {} belongs to pipeline {}, not to pipeline {pipeline_id}", stage.id, stage.pipeline_id),
        ))
    }
}

/// Sets the columns that entering `stage` implies. A deal that stays closed with the same
/// outcome keeps its original `closed_at`.
fn enter_stage(fields: &mut Map<String, Value>, stage: &Stage, current: Option<&Deal>) {
    let status = stage.kind.deal_status();
    let now = Utc::now();
    let closed_at = match (status, current) {
        (DealStatus::Open, _) => None,
        (s, Some(c)) if c.status == s => c.closed_at,
        _ => Some(now),
    };
    fields.insert("pipeline_id".into(), json!(stage.pipeline_id));
    fields.insert("stage_id".into(), json!(stage.id));
    fields.insert("status".into(), json!(status));
    fields.insert("closed_at".into(), json!(closed_at));
    // a new deal takes the database's now() like its created_at
    if current.is_some() {
        fields.insert("stage_changed_at".into(), json!(now));
    }
}
