//! Tasks: things to do by a time, for an assignee, optionally about one record.

use chrono::Utc;
use crm_concepts::records::{Actor, Id, NewTask, Page, PageRequest, RecordKind, Task, TaskFilter, TaskPatch};
use serde_json::json;

use crate::Db;
use crate::error::StoreError;
use crate::table::{self, CREATED_AT, ID, SortKey, Table, UPDATED_AT, ensure_exists};
use crate::{companies, contacts, deals, users, validate};

pub(crate) const TABLE: Table = Table {
    name: "tasks",
    kind: RecordKind::Task,
    soft_delete: true,
    has_updated_at: true,
    sorts: &[
        CREATED_AT,
        UPDATED_AT,
        ID,
        SortKey { name: "title", expr: "t.title", sql_type: "text" },
        SortKey { name: "due_at", expr: "COALESCE(t.due_at, 'infinity'::timestamptz)", sql_type: "timestamptz" },
    ],
    default_sort: "due_at",
};

const LINKS_MESSAGE: &str = "a task links to at most one record: give only one of contact_id, company_id, deal_id";

pub async fn create(db: &Db, actor: &Actor, new: NewTask) -> Result<Task, StoreError> {
    validate::text("title", &new.title, 300)?;
    let links = [new.contact_id, new.company_id, new.deal_id].iter().filter(|l| l.is_some()).count();
    if links > 1 {
        return Err(StoreError::validation("contact_id", LINKS_MESSAGE));
    }
    let mut tx = db.pool.begin().await?;
    ensure_exists(&mut tx, &users::TABLE, new.assignee_id, "assignee_id").await?;
    ensure_exists(&mut tx, &contacts::TABLE, new.contact_id, "contact_id").await?;
    ensure_exists(&mut tx, &companies::TABLE, new.company_id, "company_id").await?;
    ensure_exists(&mut tx, &deals::TABLE, new.deal_id, "deal_id").await?;
    let after = TABLE.create_audited(&mut tx, actor, &table::to_fields(&new)?).await?;
    tx.commit().await?;
    table::to_record(after)
}

pub async fn get(db: &Db, id: Id) -> Result<Task, StoreError> {
    let mut conn = db.pool.acquire().await?;
    table::to_record(TABLE.get(&mut conn, id).await?)
}

pub async fn update(db: &Db, actor: &Actor, id: Id, patch: TaskPatch) -> Result<Task, StoreError> {
    apply(db, actor, id, patch, "updated").await
}

/// Marks a task done; completing a done task changes nothing.
pub async fn complete(db: &Db, actor: &Actor, id: Id) -> Result<Task, StoreError> {
    apply(db, actor, id, TaskPatch { done: Some(true), ..TaskPatch::default() }, "completed").await
}

pub async fn delete(db: &Db, actor: &Actor, id: Id) -> Result<(), StoreError> {
    let mut tx = db.pool.begin().await?;
    TABLE.delete_audited(&mut tx, actor, id).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn list(db: &Db, filter: &TaskFilter, page: &PageRequest) -> Result<Page<Task>, StoreError> {
    let mut conn = db.pool.acquire().await?;
    let rows = TABLE
        .list(&mut conn, page, |qb| {
            let mut eq = |col: &str, v: Option<Id>| {
                if let Some(v) = v {
                    qb.push(format!(" AND t.{col} = ")).push_bind(v);
                }
            };
            eq("assignee_id", filter.assignee_id);
            eq("deal_id", filter.deal_id);
            eq("contact_id", filter.contact_id);
            eq("company_id", filter.company_id);
            if let Some(done) = filter.done {
                qb.push(" AND t.done = ").push_bind(done);
            }
            if let Some(before) = filter.due_before {
                qb.push(" AND t.due_at < ").push_bind(before);
            }
        })
        .await?;
    table::to_records(rows)
}

async fn apply(db: &Db, actor: &Actor, id: Id, patch: TaskPatch, action: &str) -> Result<Task, StoreError> {
    if let Some(t) = &patch.title {
        validate::text("title", t, 300)?;
    }
    let mut tx = db.pool.begin().await?;
    let before = TABLE.lock(&mut tx, id).await?;
    let current: Task = table::to_record(before.clone())?;
    ensure_exists(&mut tx, &users::TABLE, patch.assignee_id.flatten(), "assignee_id").await?;
    ensure_exists(&mut tx, &contacts::TABLE, patch.contact_id.flatten(), "contact_id").await?;
    ensure_exists(&mut tx, &companies::TABLE, patch.company_id.flatten(), "company_id").await?;
    ensure_exists(&mut tx, &deals::TABLE, patch.deal_id.flatten(), "deal_id").await?;
    let links = [
        patch.contact_id.unwrap_or(current.contact_id),
        patch.company_id.unwrap_or(current.company_id),
        patch.deal_id.unwrap_or(current.deal_id),
    ];
    if links.iter().filter(|l| l.is_some()).count() > 1 {
        return Err(StoreError::validation("contact_id", LINKS_MESSAGE));
    }
    let mut fields = table::to_fields(&patch)?;
    match patch.done {
        Some(true) if !current.done => {
            fields.insert("done_at".into(), json!(Utc::now()));
        }
        Some(false) if current.done => {
            fields.insert("done_at".into(), json!(null));
        }
        _ => {}
    }
    let after = TABLE.update_audited(&mut tx, actor, &before, &fields, action).await?;
    table::finish_update(tx, before, after).await
}
