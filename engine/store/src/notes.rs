//! Notes: free text attached to exactly one record, written by the acting user.

use crm_concepts::records::{Actor, Id, NewNote, Note, NoteFilter, NotePatch, Page, PageRequest, RecordKind};
use serde_json::json;

use crate::Db;
use crate::error::StoreError;
use crate::table::{self, CREATED_AT, ID, Table, UPDATED_AT, ensure_exists};
use crate::{companies, contacts, deals, tasks, validate};

pub(crate) const TABLE: Table = Table {
    name: "notes",
    kind: RecordKind::Note,
    soft_delete: true,
    has_updated_at: true,
    sorts: &[CREATED_AT, UPDATED_AT, ID],
    default_sort: "-created_at",
};

const MAX_BODY: usize = 20_000;

pub async fn create(db: &Db, actor: &Actor, new: NewNote) -> Result<Note, StoreError> {
    validate::text("body", &new.body, MAX_BODY)?;
    let links = [new.contact_id, new.company_id, new.deal_id, new.task_id].iter().filter(|l| l.is_some()).count();
    if links != 1 {
        return Err(StoreError::validation(
            "contact_id",
            "a note belongs to exactly one record: give one of contact_id, company_id, deal_id, task_id",
        ));
    }
    let mut tx = db.pool.begin().await?;
    ensure_exists(&mut tx, &contacts::TABLE, new.contact_id, "contact_id").await?;
    ensure_exists(&mut tx, &companies::TABLE, new.company_id, "company_id").await?;
    ensure_exists(&mut tx, &deals::TABLE, new.deal_id, "deal_id").await?;
    ensure_exists(&mut tx, &tasks::TABLE, new.task_id, "task_id").await?;
    let mut fields = table::to_fields(&new)?;
    fields.insert("author_id".into(), json!(actor.user_id));
    let after = TABLE.create_audited(&mut tx, actor, &fields).await?;
    tx.commit().await?;
    table::to_record(after)
}

pub async fn get(db: &Db, id: Id) -> Result<Note, StoreError> {
    let mut conn = db.pool.acquire().await?;
    table::to_record(TABLE.get(&mut conn, id).await?)
}

pub async fn update(db: &Db, actor: &Actor, id: Id, patch: NotePatch) -> Result<Note, StoreError> {
    if let Some(b) = &patch.body {
        validate::text("body", b, MAX_BODY)?;
    }
    let mut tx = db.pool.begin().await?;
    let before = TABLE.lock(&mut tx, id).await?;
    let after = TABLE.update_audited(&mut tx, actor, &before, &table::to_fields(&patch)?, "updated").await?;
    table::finish_update(tx, before, after).await
}

pub async fn delete(db: &Db, actor: &Actor, id: Id) -> Result<(), StoreError> {
    let mut tx = db.pool.begin().await?;
    TABLE.delete_audited(&mut tx, actor, id).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn list(db: &Db, filter: &NoteFilter, page: &PageRequest) -> Result<Page<Note>, StoreError> {
    let mut conn = db.pool.acquire().await?;
    let rows = TABLE
        .list(&mut conn, page, |qb| {
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
