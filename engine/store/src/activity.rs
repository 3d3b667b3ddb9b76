//! The activity log of one record, newest first.

use crm_concepts::records::{Activity, Id, Page, PageRequest, RecordKind};

use sqlx::PgConnection;

use crate::Db;
use crate::error::StoreError;
use crate::table::{self, ID, Table};

const TABLE: Table = Table {
    name: "activity",
    // only used in not-found messages, which listing never produces
    kind: RecordKind::Contact,
    soft_delete: false,
    has_updated_at: false,
    sorts: &[ID],
    default_sort: "-id",
};

pub async fn list(db: &Db, kind: RecordKind, record_id: Id, page: &PageRequest) -> Result<Page<Activity>, StoreError> {
    list_in(&mut *db.pool.acquire().await?, kind, record_id, page).await
}

pub async fn list_in(
    conn: &mut PgConnection,
    kind: RecordKind,
    record_id: Id,
    page: &PageRequest,
) -> Result<Page<Activity>, StoreError> {
    let rows = TABLE
        .list(conn, page, |qb| {
            qb.push(" AND t.record_kind = ").push_bind(kind.as_str());
            qb.push(" AND t.record_id = ").push_bind(record_id);
        })
        .await?;
    table::to_records(rows)
}
