//! The display names of records referred to by id (a contact's company, a deal's owner),
//! fetched for a whole page in one query per kind instead of one per row.

use std::collections::HashMap;

use crm_concepts::records::{Id, RecordKind};

use crate::Db;
use crate::error::StoreError;

/// Names of the live records of `kind` among `ids` (contacts, companies, deals, users).
pub async fn names(db: &Db, kind: RecordKind, ids: &[Id]) -> Result<HashMap<Id, String>, StoreError> {
    let mut ids: Vec<Id> = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = match kind {
        RecordKind::Contact => "SELECT id, name FROM contacts WHERE id = ANY($1) AND deleted_at IS NULL",
        RecordKind::Company => "SELECT id, name FROM companies WHERE id = ANY($1) AND deleted_at IS NULL",
        RecordKind::Deal => "SELECT id, title FROM deals WHERE id = ANY($1) AND deleted_at IS NULL",
        RecordKind::User => "SELECT id, name FROM users WHERE id = ANY($1)",
        RecordKind::Task => "SELECT id, title FROM tasks WHERE id = ANY($1) AND deleted_at IS NULL",
        RecordKind::Pipeline => "SELECT id, name FROM pipelines WHERE id = ANY($1)",
        RecordKind::Note => "SELECT id, left(body, 80) FROM notes WHERE id = ANY($1) AND deleted_at IS NULL",
    };
    let rows: Vec<(Id, String)> = sqlx::query_as(sql).bind(&ids).fetch_all(&db.pool).await?;
    Ok(rows.into_iter().collect())
}
