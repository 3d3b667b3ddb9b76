//! Tasks: things to do by a time, for an assignee, optionally about one record.

use chrono::Utc;
use crm_concepts::fields::{Checked, TASK_LINKS};
use crm_concepts::records::{Actor, Id, NewTask, Page, PageRequest, RecordKind, Task, TaskFilter, TaskPatch};
use serde_json::{Value, json};
use sqlx::PgConnection;

use crate::Db;
use crate::error::StoreError;
use crate::table::{self, CREATED_AT, ID, SortKey, Table, UPDATED_AT, ensure_exists};
use crate::{companies, contacts, deals, users};

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

pub async fn create(db: &Db, actor: &Actor, new: NewTask) -> Result<Task, StoreError> {
    let mut tx = db.pool.begin().await?;
    let task = create_in(&mut tx, actor, new).await?;
    tx.commit().await?;
    Ok(task)
}

/// [`create`] inside the caller's transaction.
pub async fn create_in(conn: &mut PgConnection, actor: &Actor, new: NewTask) -> Result<Task, StoreError> {
    insert(conn, actor, new, None).await
}

/// The open task that `workflow` keeps under `key`, created from `new` when there is none.
/// The key is unique among open tasks (a partial unique index), so concurrent runs that
/// ensure the same key create one task: the losers' inserts do nothing and they read the
/// winner's row.
pub async fn ensure_in(
    conn: &mut PgConnection,
    actor: &Actor,
    workflow: &str,
    key: &str,
    new: NewTask,
) -> Result<Task, StoreError> {
    let dedupe = format!("{workflow}:{key}");
    if let Some(task) = open_with_key(conn, &dedupe).await? {
        return Ok(task);
    }
    sqlx::query("SAVEPOINT ensure_task").execute(&mut *conn).await?;
    match insert(conn, actor, new, Some(&dedupe)).await {
        Ok(task) => {
            sqlx::query("RELEASE SAVEPOINT ensure_task").execute(&mut *conn).await?;
            Ok(task)
        }
        Err(StoreError::Conflict(_)) => {
            // Another run inserted it between our look and our insert: theirs stands.
            sqlx::query("ROLLBACK TO SAVEPOINT ensure_task").execute(&mut *conn).await?;
            open_with_key(conn, &dedupe)
                .await?
                .ok_or_else(|| StoreError::Conflict("the task was removed meanwhile; retry".into()))
        }
        Err(e) => Err(e),
    }
}

async fn open_with_key(conn: &mut PgConnection, dedupe: &str) -> Result<Option<Task>, StoreError> {
    let sql = format!(
        "SELECT {} FROM tasks t WHERE t.dedupe_key = $1 AND NOT t.done AND t.deleted_at IS NULL",
        table::row_json("t")
    );
    let row: Option<(Value,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(dedupe).fetch_optional(conn).await?;
    row.map(|(v,)| table::to_record(v)).transpose()
}

async fn insert(
    conn: &mut PgConnection,
    actor: &Actor,
    new: NewTask,
    dedupe: Option<&str>,
) -> Result<Task, StoreError> {
    new.check()?;
    ensure_exists(conn, &users::TABLE, new.assignee_id, "assignee_id").await?;
    ensure_exists(conn, &contacts::TABLE, new.contact_id, "contact_id").await?;
    ensure_exists(conn, &companies::TABLE, new.company_id, "company_id").await?;
    ensure_exists(conn, &deals::TABLE, new.deal_id, "deal_id").await?;
    let mut fields = table::to_fields(&new)?;
    if let Some(key) = dedupe {
        fields.insert("dedupe_key".into(), json!(key));
    }
    table::to_record(TABLE.create_audited(conn, actor, &fields).await?)
}

pub async fn get(db: &Db, id: Id) -> Result<Task, StoreError> {
    get_in(&mut *db.pool.acquire().await?, id).await
}

pub async fn get_in(conn: &mut PgConnection, id: Id) -> Result<Task, StoreError> {
    table::to_record(TABLE.get(conn, id).await?)
}

pub async fn update(db: &Db, actor: &Actor, id: Id, patch: TaskPatch) -> Result<Task, StoreError> {
    apply(db, actor, id, patch, "updated").await
}

/// [`update`] inside the caller's transaction.
pub async fn update_in(conn: &mut PgConnection, actor: &Actor, id: Id, patch: TaskPatch) -> Result<Task, StoreError> {
    let (before, after) = patch_row(conn, actor, id, patch, "updated").await?;
    table::to_record(after.unwrap_or(before))
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
    list_in(&mut *db.pool.acquire().await?, filter, page).await
}

pub async fn list_in(
    conn: &mut PgConnection,
    filter: &TaskFilter,
    page: &PageRequest,
) -> Result<Page<Task>, StoreError> {
    let custom = crate::custom_fields::conditions(conn, RecordKind::Task, &filter.fields).await?;
    let rows = TABLE
        .list(conn, page, |qb| {
            crate::custom_fields::push(qb, &custom);
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
    let mut tx = db.pool.begin().await?;
    let (before, after) = patch_row(&mut tx, actor, id, patch, action).await?;
    table::finish_update(tx, before, after).await
}

async fn patch_row(
    conn: &mut PgConnection,
    actor: &Actor,
    id: Id,
    patch: TaskPatch,
    action: &str,
) -> Result<(Value, Option<Value>), StoreError> {
    patch.check()?;
    let before = TABLE.lock(conn, id).await?;
    let current: Task = table::to_record(before.clone())?;
    ensure_exists(conn, &users::TABLE, patch.assignee_id.flatten(), "assignee_id").await?;
    ensure_exists(conn, &contacts::TABLE, patch.contact_id.flatten(), "contact_id").await?;
    ensure_exists(conn, &companies::TABLE, patch.company_id.flatten(), "company_id").await?;
    ensure_exists(conn, &deals::TABLE, patch.deal_id.flatten(), "deal_id").await?;
    let links = [
        patch.contact_id.unwrap_or(current.contact_id),
        patch.company_id.unwrap_or(current.company_id),
        patch.deal_id.unwrap_or(current.deal_id),
    ];
    if links.iter().filter(|l| l.is_some()).count() > 1 {
        return Err(StoreError::validation("contact_id", TASK_LINKS));
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
    let after = TABLE.update_audited(conn, actor, &before, &fields, action).await?;
    Ok((before, after))
}
