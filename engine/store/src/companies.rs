//! Companies: organisations contacts work at and deals are made with.

use crm_concepts::fields::Checked;
use crm_concepts::records::{
    Actor, Company, CompanyFilter, CompanyPatch, Id, NewCompany, Page, PageRequest, RecordKind,
};
use serde_json::Value;
use sqlx::PgConnection;

use crate::Db;
use crate::error::StoreError;
use crate::table::{self, CREATED_AT, ID, SortKey, Table, UPDATED_AT, ensure_exists};
use crate::{search, users};

pub(crate) const TABLE: Table = Table {
    name: "companies",
    kind: RecordKind::Company,
    soft_delete: true,
    has_updated_at: true,
    sorts: &[CREATED_AT, UPDATED_AT, ID, SortKey { name: "name", expr: "t.name", sql_type: "text" }],
    default_sort: "-created_at",
};

pub async fn create(db: &Db, actor: &Actor, new: NewCompany) -> Result<Company, StoreError> {
    let mut tx = db.pool.begin().await?;
    let company = create_in(&mut tx, actor, new).await?;
    tx.commit().await?;
    Ok(company)
}

/// [`create`] inside the caller's transaction.
pub async fn create_in(conn: &mut PgConnection, actor: &Actor, new: NewCompany) -> Result<Company, StoreError> {
    new.check()?;
    ensure_exists(conn, &users::TABLE, new.owner_id, "owner_id").await?;
    table::to_record(TABLE.create_audited(conn, actor, &table::to_fields(&new)?).await?)
}

pub async fn get(db: &Db, id: Id) -> Result<Company, StoreError> {
    get_in(&mut *db.pool.acquire().await?, id).await
}

pub async fn get_in(conn: &mut PgConnection, id: Id) -> Result<Company, StoreError> {
    table::to_record(TABLE.get(conn, id).await?)
}

pub async fn update(db: &Db, actor: &Actor, id: Id, patch: CompanyPatch) -> Result<Company, StoreError> {
    let mut tx = db.pool.begin().await?;
    let (before, after) = patch_row(&mut tx, actor, id, patch).await?;
    table::finish_update(tx, before, after).await
}

/// [`update`] inside the caller's transaction.
pub async fn update_in(
    conn: &mut PgConnection,
    actor: &Actor,
    id: Id,
    patch: CompanyPatch,
) -> Result<Company, StoreError> {
    let (before, after) = patch_row(conn, actor, id, patch).await?;
    table::to_record(after.unwrap_or(before))
}

async fn patch_row(
    conn: &mut PgConnection,
    actor: &Actor,
    id: Id,
    patch: CompanyPatch,
) -> Result<(Value, Option<Value>), StoreError> {
    patch.check()?;
    let before = TABLE.lock(conn, id).await?;
    ensure_exists(conn, &users::TABLE, patch.owner_id.flatten(), "owner_id").await?;
    let after = TABLE.update_audited(conn, actor, &before, &table::to_fields(&patch)?, "updated").await?;
    Ok((before, after))
}

pub async fn delete(db: &Db, actor: &Actor, id: Id) -> Result<(), StoreError> {
    let mut tx = db.pool.begin().await?;
    TABLE.delete_audited(&mut tx, actor, id).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn list(db: &Db, filter: &CompanyFilter, page: &PageRequest) -> Result<Page<Company>, StoreError> {
    list_in(&mut *db.pool.acquire().await?, filter, page).await
}

pub async fn list_in(
    conn: &mut PgConnection,
    filter: &CompanyFilter,
    page: &PageRequest,
) -> Result<Page<Company>, StoreError> {
    let q = filter.q.as_deref().map(search::normalize).filter(|q| !q.is_empty());
    let matcher = match q {
        Some(q) => Some(search::Matcher::new(conn, q).await?),
        None => None,
    };
    let custom = crate::custom_fields::conditions(conn, RecordKind::Company, &filter.fields).await?;
    let rows = TABLE
        .list(conn, page, |qb| {
            crate::custom_fields::push(qb, &custom);
            if let Some(v) = filter.owner_id {
                qb.push(" AND t.owner_id = ").push_bind(v);
            }
            if let Some(v) = &filter.tag {
                qb.push(" AND ").push_bind(v.clone()).push(" = ANY(t.tags)");
            }
            if let Some(m) = &matcher {
                m.push_filter(qb, RecordKind::Company, search::Pass::Loose);
            }
        })
        .await?;
    table::to_records(rows)
}
