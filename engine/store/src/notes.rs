//! Notes: free text attached to exactly one record, written by the acting user.

use crm_concepts::fields::Checked;
use crm_concepts::records::{Actor, Id, NewNote, Note, NoteFilter, NotePatch, Page, PageRequest, RecordKind};
use serde_json::{Value, json};
use sqlx::PgConnection;

use crate::Db;
use crate::error::StoreError;
use crate::table::{self, CREATED_AT, ID, Table, UPDATED_AT, ensure_exists};
use crate::{companies, contacts, deals, tasks};

pub(crate) const TABLE: Table = Table {
    name: "notes",
    kind: RecordKind::Note,
    soft_delete: true,
    has_updated_at: true,
    sorts: &[CREATED_AT, UPDATED_AT, ID],
    default_sort: "-created_at",
};

pub async fn create(db: &Db, actor: &Actor, new: NewNote) -> Result<Note, StoreError> {
    let mut tx = db.pool.begin().await?;
    let note = create_in(&mut tx, actor, new).await?;
    tx.commit().await?;
    Ok(note)
}

/// [`create`] inside the caller's transaction.
pub async fn create_in(conn: &mut PgConnection, actor: &Actor, new: NewNote) -> Result<Note, StoreError> {
    new.check()?;
    ensure_exists(conn, &contacts::TABLE, new.contact_id, "contact_id").await?;
    ensure_exists(conn, &companies::TABLE, new.company_id, "company_id").await?;
    ensure_exists(conn, &deals::TABLE, new.deal_id, "deal_id").await?;
    ensure_exists(conn, &tasks::TABLE, new.task_id, "task_id").await?;
    let mut fields = table::to_fields(&new)?;
    fields.insert("author_id".into(), json!(actor.user_id));
    table::to_record(TABLE.create_audited(conn, actor, &fields).await?)
}

pub async fn get(db: &Db, id: Id) -> Result<Note, StoreError> {
    get_in(&mut *db.pool.acquire().await?, id).await
}

pub async fn get_in(conn: &mut PgConnection, id: Id) -> Result<Note, StoreError> {
    table::to_record(TABLE.get(conn, id).await?)
}

pub async fn update(db: &Db, actor: &Actor, id: Id, patch: NotePatch) -> Result<Note, StoreError> {
    let mut tx = db.pool.begin().await?;
    let (before, after) = patch_row(&mut tx, actor, id, patch).await?;
    table::finish_update(tx, before, after).await
}

/// [`update`] inside the caller's transaction.
pub async fn update_in(conn: &mut PgConnection, actor: &Actor, id: Id, patch: NotePatch) -> Result<Note, StoreError> {
    let (before, after) = patch_row(conn, actor, id, patch).await?;
    table::to_record(after.unwrap_or(before))
}

async fn patch_row(
    conn: &mut PgConnection,
    actor: &Actor,
    id: Id,
    patch: NotePatch,
) -> Result<(Value, Option<Value>), StoreError> {
    patch.check()?;
    let before = TABLE.lock(conn, id).await?;
    let after = TABLE.update_audited(conn, actor, &before, &table::to_fields(&patch)?, "updated").await?;
    Ok((before, after))
}

pub async fn delete(db: &Db, actor: &Actor, id: Id) -> Result<(), StoreError> {
    let mut tx = db.pool.begin().await?;
    TABLE.delete_audited(&mut tx, actor, id).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn list(db: &Db, filter: &NoteFilter, page: &PageRequest) -> Result<Page<Note>, StoreError> {
    list_in(&mut *db.pool.acquire().await?, filter, page).await
}

pub async fn list_in(
    conn: &mut PgConnection,
    filter: &NoteFilter,
    page: &PageRequest,
) -> Result<Page<Note>, StoreError> {
    let rows = TABLE
        .list(conn, page, |qb| {
            let mut eq = |col: &str, v: Option<Id>| {
                if let Some(v) = v {
                    qb.push(format!(" AND t.{col} = ")).push_bind(v);
                }
            };
            eq("contact_id", filter.contact_id);
            eq("company_id", filter.company_id);
            eq("deal_id", filter.deal_id);
            eq("task_id", filter.task_id);
        })
        .await?;
    table::to_records(rows)
}
