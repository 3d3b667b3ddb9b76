//! Contacts: people, optionally at a company, owned by a CRM user.

use crm_concepts::records::{
    Actor, Contact, ContactFilter, ContactPatch, Id, NewContact, Page, PageRequest, RecordKind,
};

use crate::Db;
use crate::error::StoreError;
use crate::table::{self, CREATED_AT, ID, SortKey, Table, UPDATED_AT, ensure_exists};
use crate::{companies, search, users, validate};

pub(crate) const TABLE: Table = Table {
    name: "contacts",
    kind: RecordKind::Contact,
    soft_delete: true,
    has_updated_at: true,
    sorts: &[CREATED_AT, UPDATED_AT, ID, SortKey { name: "name", expr: "t.name", sql_type: "text" }],
    default_sort: "-created_at",
};

pub async fn create(db: &Db, actor: &Actor, new: NewContact) -> Result<Contact, StoreError> {
    validate::text("name", &new.name, 300)?;
    validate::email("email", new.email.as_deref())?;
    validate::phone("phone", new.phone.as_deref())?;
    validate::tags("tags", &new.tags)?;
    validate::custom("custom", &new.custom)?;
    let mut tx = db.pool.begin().await?;
    ensure_exists(&mut tx, &companies::TABLE, new.company_id, "company_id").await?;
    ensure_exists(&mut tx, &users::TABLE, new.owner_id, "owner_id").await?;
    let after = TABLE.create_audited(&mut tx, actor, &table::to_fields(&new)?).await?;
    tx.commit().await?;
    table::to_record(after)
}

pub async fn get(db: &Db, id: Id) -> Result<Contact, StoreError> {
    let mut conn = db.pool.acquire().await?;
    table::to_record(TABLE.get(&mut conn, id).await?)
}

pub async fn update(db: &Db, actor: &Actor, id: Id, patch: ContactPatch) -> Result<Contact, StoreError> {
    if let Some(name) = &patch.name {
        validate::text("name", name, 300)?;
    }
    if let Some(email) = &patch.email {
        validate::email("email", email.as_deref())?;
    }
    if let Some(phone) = &patch.phone {
        validate::phone("phone", phone.as_deref())?;
    }
    if let Some(tags) = &patch.tags {
        validate::tags("tags", tags)?;
    }
    if let Some(custom) = &patch.custom {
        validate::custom("custom", custom)?;
    }
    let mut tx = db.pool.begin().await?;
    let before = TABLE.lock(&mut tx, id).await?;
    ensure_exists(&mut tx, &companies::TABLE, patch.company_id.flatten(), "company_id").await?;
    ensure_exists(&mut tx, &users::TABLE, patch.owner_id.flatten(), "owner_id").await?;
    let after = TABLE.update_audited(&mut tx, actor, &before, &table::to_fields(&patch)?, "updated").await?;
    table::finish_update(tx, before, after).await
}

pub async fn delete(db: &Db, actor: &Actor, id: Id) -> Result<(), StoreError> {
    let mut tx = db.pool.begin().await?;
    TABLE.delete_audited(&mut tx, actor, id).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn list(db: &Db, filter: &ContactFilter, page: &PageRequest) -> Result<Page<Contact>, StoreError> {
    let mut conn = db.pool.acquire().await?;
    let q = filter.q.as_deref().map(search::normalize).filter(|q| !q.is_empty());
    let matcher = match q {
        Some(q) => Some(search::Matcher::new(&mut conn, q).await?),
        None => None,
    };
    let rows = TABLE
        .list(&mut conn, page, |qb| {
            if let Some(v) = filter.owner_id {
                qb.push(" AND t.owner_id = ").push_bind(v);
            }
            if let Some(v) = filter.company_id {
                qb.push(" AND t.company_id = ").push_bind(v);
            }
            if let Some(v) = &filter.tag {
                qb.push(" AND ").push_bind(v.clone()).push(" = ANY(t.tags)");
            }
            if let Some(m) = &matcher {
                m.push_filter(qb, RecordKind::Contact, search::Pass::Loose);
            }
        })
        .await?;
    table::to_records(rows)
}
