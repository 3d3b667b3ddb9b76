//! The shared mechanics of a record table: read one row as JSON, insert or update the
//! columns named by a JSON object (through `jsonb_populate_record`, so every column keeps
//! its SQL type), soft-delete, and list with filters and keyset pagination.
//!
//! Rows travel as `to_jsonb(row)` minus the search columns derived from them ([`DERIVED`]):
//! the same value is the API's record, the activity log's
//! before/after and the outbox payload, so the three never disagree.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use crm_concepts::records::{Actor, Id, Page, PageRequest, RecordKind};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};

use crate::audit;
use crate::cursor::Cursor;
use crate::custom_fields;
use crate::error::StoreError;

/// A field a list can be sorted by: `expr` must be non-null for keyset pagination.
pub struct SortKey {
    pub name: &'static str,
    pub expr: &'static str,
    pub sql_type: &'static str,
}

pub struct Table {
    pub name: &'static str,
    pub kind: RecordKind,
    /// rows are hidden with `deleted_at` rather than removed
    pub soft_delete: bool,
    pub has_updated_at: bool,
    pub sorts: &'static [SortKey],
    pub default_sort: &'static str,
}

/// Generated search columns: not part of a record, and not news when they change.
const DERIVED: &str = "'{words,phone_digits}'::text[]";

/// The JSON of row `alias` without the derived columns.
pub(crate) fn row_json(alias: &str) -> String {
    format!("(to_jsonb({alias}.*) - {DERIVED})")
}

pub const CREATED_AT: SortKey = SortKey { name: "created_at", expr: "t.created_at", sql_type: "timestamptz" };
pub const UPDATED_AT: SortKey = SortKey { name: "updated_at", expr: "t.updated_at", sql_type: "timestamptz" };
pub const ID: SortKey = SortKey { name: "id", expr: "t.id", sql_type: "bigint" };

impl Table {
    fn live(&self) -> &'static str {
        if self.soft_delete { "t.deleted_at IS NULL" } else { "TRUE" }
    }

    pub async fn get(&self, conn: &mut PgConnection, id: Id) -> Result<Value, StoreError> {
        self.fetch(conn, id, "").await
    }

    /// Reads the row and locks it until the transaction ends, so concurrent changes to the
    /// same record serialize and each activity entry's `before` is exact.
    pub async fn lock(&self, conn: &mut PgConnection, id: Id) -> Result<Value, StoreError> {
        self.fetch(conn, id, " FOR UPDATE").await
    }

    async fn fetch(&self, conn: &mut PgConnection, id: Id, suffix: &str) -> Result<Value, StoreError> {
        let sql = format!("SELECT {} FROM {} t WHERE t.id = $1 AND {}{suffix}", row_json("t"), self.name, self.live());
        let row: Option<(Value,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(conn).await?;
        row.map(|r| r.0).ok_or(StoreError::not_found(self.kind, id))
    }

    pub async fn insert(&self, conn: &mut PgConnection, fields: &Map<String, Value>) -> Result<Value, StoreError> {
        let fields = custom_fields::typed(conn, self.kind, fields).await?;
        let cols = column_list(&fields)?;
        let sql = format!(
            "INSERT INTO {t} ({cols}) SELECT {cols} FROM jsonb_populate_record(NULL::{t}, $1) RETURNING {json}",
            t = self.name,
            json = row_json(self.name)
        );
        let (v,): (Value,) =
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(Value::Object(fields.into_owned())).fetch_one(conn).await?;
        Ok(v)
    }

    pub async fn update(
        &self,
        conn: &mut PgConnection,
        id: Id,
        fields: &Map<String, Value>,
    ) -> Result<Value, StoreError> {
        let fields = custom_fields::typed(conn, self.kind, fields).await?;
        let cols = column_list(&fields)?;
        let (targets, sources) = if self.has_updated_at {
            (format!("{cols}, updated_at"), format!("{}, now()", prefixed(&fields)))
        } else {
            (cols.clone(), prefixed(&fields))
        };
        let sql = format!(
            "UPDATE {t} SET ({targets}) = (SELECT {sources} FROM jsonb_populate_record(NULL::{t}, $2) r)
             WHERE id = $1 RETURNING {json}",
            t = self.name,
            json = row_json(self.name)
        );
        let row: Option<(Value,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(Value::Object(fields.into_owned()))
            .fetch_optional(conn)
            .await?;
        row.map(|r| r.0).ok_or(StoreError::not_found(self.kind, id))
    }

    /// Inserts and logs the creation.
    pub async fn create_audited(
        &self,
        conn: &mut PgConnection,
        actor: &Actor,
        fields: &Map<String, Value>,
    ) -> Result<Value, StoreError> {
        let after = self.insert(conn, fields).await?;
        let id = record_id(&after)?;
        audit::record_change(conn, actor, self.kind, id, "created", None, Some(&after)).await?;
        Ok(after)
    }

    /// Applies `fields` to a row the caller has locked. Returns `None` when nothing would
    /// change, so that an empty or idempotent patch writes no activity and no event.
    pub async fn update_audited(
        &self,
        conn: &mut PgConnection,
        actor: &Actor,
        before: &Value,
        fields: &Map<String, Value>,
        action: &str,
    ) -> Result<Option<Value>, StoreError> {
        let fields = merge_custom(fields, Some(before));
        let fields = fields.as_ref();
        let unchanged = fields.iter().all(|(k, v)| before.get(k) == Some(v));
        if fields.is_empty() || unchanged {
            return Ok(None);
        }
        let id = record_id(before)?;
        let after = self.update(conn, id, fields).await?;
        if audit::diff(before, &after).is_empty() {
            // e.g. a timestamp given in another notation for the same instant
            return Ok(None);
        }
        audit::record_change(conn, actor, self.kind, id, action, Some(before), Some(&after)).await?;
        Ok(Some(after))
    }

    pub async fn delete_audited(&self, conn: &mut PgConnection, actor: &Actor, id: Id) -> Result<(), StoreError> {
        let before = self.lock(conn, id).await?;
        let sql = if self.soft_delete {
            format!("UPDATE {} SET deleted_at = now() WHERE id = $1", self.name)
        } else {
            format!("DELETE FROM {} WHERE id = $1", self.name)
        };
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).execute(&mut *conn).await?;
        audit::record_change(conn, actor, self.kind, id, "deleted", Some(&before), None).await?;
        Ok(())
    }

    /// The ids among `ids` of rows that exist (and are live): [`ensure_exists`] for a batch.
    pub async fn live_ids(&self, conn: &mut PgConnection, ids: Vec<Id>) -> Result<HashSet<Id>, StoreError> {
        let sql = format!("SELECT t.id FROM {} t WHERE t.id = ANY($1) AND {}", self.name, self.live());
        let found: Vec<Id> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(ids).fetch_all(conn).await?;
        Ok(found.into_iter().collect())
    }

    /// [`Table::create_audited`] for many rows: one statement per set of columns inserts
    /// them and writes their activity entries and outbox events. Returns how many were
    /// inserted.
    pub async fn create_audited_many(
        &self,
        conn: &mut PgConnection,
        actor: &Actor,
        rows: &[&Map<String, Value>],
    ) -> Result<u64, StoreError> {
        let typed = custom_fields::typed_many(conn, self.kind, rows).await?;
        let rows: Vec<&Map<String, Value>> = typed.iter().map(|r| r.as_ref()).collect();
        let mut inserted = 0;
        for (cols, group) in by_columns(&rows)? {
            let sql = format!(
                "WITH new AS (
                     INSERT INTO {t} ({cols}) SELECT {cols} FROM jsonb_populate_recordset(NULL::{t}, $1)
                     RETURNING id, {json} AS rec
                 ), {log}
                 SELECT count(*) FROM new",
                t = self.name,
                json = row_json(self.name),
                log = audit::LOG_NEW_ROWS,
            );
            let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(Value::Array(group.into_iter().map(|m| Value::Object(m.clone())).collect()))
                .bind(actor.user_id)
                .bind(actor.origin_run)
                .bind(self.kind.as_str())
                .bind(actor.token_id)
                .fetch_one(&mut *conn)
                .await?;
            inserted += u64::try_from(n).unwrap_or_default();
        }
        Ok(inserted)
    }

    /// [`Table::update_audited`] for many rows: each of `patches` holds the row's `id` and
    /// the columns to set. The rows are locked and read in one statement, the ones that
    /// change are written in one statement per set of columns, and logged in one more.
    /// A patch that changes nothing writes nothing. A row that is not there fails the
    /// whole call. Returns how many patches were applied.
    pub async fn update_audited_many(
        &self,
        conn: &mut PgConnection,
        actor: &Actor,
        patches: &[&Map<String, Value>],
    ) -> Result<u64, StoreError> {
        let ids: Vec<Id> = patches.iter().filter_map(|p| p.get("id").and_then(Value::as_i64)).collect();
        if ids.len() != patches.len() {
            return Err(StoreError::InvalidQuery("a patch without an id".into()));
        }
        let sql = format!(
            "SELECT t.id, {} FROM {} t WHERE t.id = ANY($1) AND {} ORDER BY t.id FOR UPDATE",
            row_json("t"),
            self.name,
            self.live()
        );
        let before: HashMap<Id, Value> =
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(&ids).fetch_all(&mut *conn).await?.into_iter().collect();
        let merged: Vec<Cow<'_, Map<String, Value>>> =
            patches.iter().zip(&ids).map(|(p, id)| merge_custom(p, before.get(id))).collect();
        let merged: Vec<&Map<String, Value>> = merged.iter().map(|m| m.as_ref()).collect();
        let typed = custom_fields::typed_many(conn, self.kind, &merged).await?;
        let patches: Vec<&Map<String, Value>> = typed.iter().map(|r| r.as_ref()).collect();
        let mut changing = Vec::new();
        for (patch, id) in patches.iter().zip(&ids) {
            let Some(row) = before.get(id) else {
                return Err(StoreError::not_found(self.kind, *id));
            };
            if !patch.iter().all(|(k, v)| row.get(k) == Some(v)) {
                changing.push(*patch);
            }
        }
        let mut logged = Vec::new();
        for (cols, group) in by_columns(&changing)? {
            let set_cols = cols.split(", ").filter(|c| *c != "id").collect::<Vec<_>>();
            if set_cols.is_empty() {
                continue;
            }
            let (targets, sources) = {
                let sources = set_cols.iter().map(|c| format!("r.{c}")).collect::<Vec<_>>().join(", ");
                if self.has_updated_at {
                    (format!("{}, updated_at", set_cols.join(", ")), format!("{sources}, now()"))
                } else {
                    (set_cols.join(", "), sources)
                }
            };
            let sql = format!(
                "UPDATE {t} t SET ({targets}) = ({sources}) FROM jsonb_populate_recordset(NULL::{t}, $1) r
                 WHERE t.id = r.id RETURNING t.id, {json}",
                t = self.name,
                json = row_json("t")
            );
            let after: Vec<(Id, Value)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(Value::Array(group.into_iter().map(|m| Value::Object(m.clone())).collect()))
                .fetch_all(&mut *conn)
                .await?;
            for (id, after) in after {
                let Some(before) = before.get(&id) else { continue };
                // e.g. a timestamp given in another notation for the same instant
                if !audit::diff(before, &after).is_empty() {
                    logged.push((id, before.clone(), after));
                }
            }
        }
        audit::record_updates(conn, actor, self.kind, &logged).await?;
        Ok(patches.len() as u64)
    }

    /// One page of live rows. `filter` appends ` AND …` conditions on alias `t`.
    pub async fn list(
        &self,
        conn: &mut PgConnection,
        page: &PageRequest,
        filter: impl FnOnce(&mut QueryBuilder<Postgres>),
    ) -> Result<Page<Value>, StoreError> {
        let limit = page.limit.unwrap_or(PageRequest::DEFAULT_LIMIT);
        if !(1..=PageRequest::MAX_LIMIT).contains(&limit) {
            return Err(StoreError::InvalidQuery(format!("limit must be 1 to {}", PageRequest::MAX_LIMIT)));
        }
        let sort_text = page.sort.clone().unwrap_or_else(|| self.default_sort.to_string());
        let (desc, sort_name) = match sort_text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, sort_text.as_str()),
        };
        let key = self.sorts.iter().find(|s| s.name == sort_name).ok_or_else(|| {
            let names: Vec<&str> = self.sorts.iter().map(|s| s.name).collect();
            StoreError::InvalidQuery(format!("cannot sort by {sort_name:?}: expected one of {}", names.join(", ")))
        })?;
        let cursor = page.cursor.as_deref().map(Cursor::decode).transpose()?;
        if let Some(c) = &cursor
            && c.sort != sort_text
        {
            return Err(StoreError::InvalidQuery("cursor belongs to a different sort".into()));
        }

        let mut qb = QueryBuilder::<Postgres>::new(format!(
            "SELECT {} AS rec, ({})::text AS k, t.id AS id FROM {} t WHERE {}",
            row_json("t"),
            key.expr,
            self.name,
            self.live()
        ));
        filter(&mut qb);
        if let Some(c) = &cursor {
            qb.push(format!(" AND ({}, t.id) {} (CAST(", key.expr, if desc { "<" } else { ">" }));
            qb.push_bind(c.key.clone());
            qb.push(format!(" AS {}), ", key.sql_type));
            qb.push_bind(c.id);
            qb.push(")");
        }
        let dir = if desc { "DESC" } else { "ASC" };
        qb.push(format!(" ORDER BY {} {dir}, t.id {dir} LIMIT ", key.expr));
        qb.push_bind(i64::from(limit) + 1);

        let rows = qb.build().fetch_all(conn).await?;
        let mut items = Vec::with_capacity(rows.len());
        let mut last = None;
        for row in rows.iter().take(limit as usize) {
            items.push(row.try_get::<Value, _>("rec")?);
            last = Some((row.try_get::<String, _>("k")?, row.try_get::<i64, _>("id")?));
        }
        let next_cursor = match last {
            Some((key, id)) if rows.len() > limit as usize => {
                Some(Cursor { sort: sort_text.clone(), key, id }.encode())
            }
            _ => None,
        };
        Ok(Page { items, next_cursor })
    }
}

/// Fails with a validation error naming `field` unless the referenced row exists (and,
/// for soft-deleted tables, is live): a deal cannot point at a deleted contact.
pub async fn ensure_exists(
    conn: &mut PgConnection,
    table: &Table,
    id: Option<Id>,
    field: &str,
) -> Result<(), StoreError> {
    let Some(id) = id else { return Ok(()) };
    let sql = format!("SELECT EXISTS (SELECT 1 FROM {} t WHERE t.id = $1 AND {})", table.name, table.live());
    let (exists,): (bool,) = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_one(conn).await?;
    if exists { Ok(()) } else { Err(StoreError::validation(field, format!("{} {id} does not exist", table.kind))) }
}

/// Ends an update transaction: commits when the update changed something; otherwise rolls
/// back, so a patch that changes nothing leaves even `updated_at` as it was. Returns the
/// record as it now stands.
pub async fn finish_update<T: DeserializeOwned>(
    tx: sqlx::Transaction<'_, Postgres>,
    before: Value,
    after: Option<Value>,
) -> Result<T, StoreError> {
    if after.is_some() {
        tx.commit().await?;
    } else {
        tx.rollback().await?;
    }
    to_record(after.unwrap_or(before))
}

pub fn to_record<T: DeserializeOwned>(v: Value) -> Result<T, StoreError> {
    serde_json::from_value(v).map_err(|e| StoreError::Db(sqlx::Error::Decode(Box::new(e))))
}

pub fn to_records<T: DeserializeOwned>(page: Page<Value>) -> Result<Page<T>, StoreError> {
    let items = page.items.into_iter().map(to_record).collect::<Result<Vec<T>, _>>()?;
    Ok(Page { items, next_cursor: page.next_cursor })
}

/// A serializable input as a JSON object of columns.
pub fn to_fields<T: serde::Serialize>(input: &T) -> Result<Map<String, Value>, StoreError> {
    match serde_json::to_value(input) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(StoreError::InvalidQuery("input must be an object".into())),
        Err(e) => Err(StoreError::Db(sqlx::Error::Encode(Box::new(e)))),
    }
}

/// A patch's `custom` is merged into the record's, as the WIT interface and the in-memory
/// CRM promise: keys given are set, a `null` removes one, the others stay. So a step that
/// writes `lead_score` leaves an admin's typed fields (and their required ones) alone.
fn merge_custom<'f>(fields: &'f Map<String, Value>, before: Option<&Value>) -> Cow<'f, Map<String, Value>> {
    let (Some(Value::Object(changes)), Some(Value::Object(had))) =
        (fields.get("custom"), before.and_then(|b| b.get("custom")))
    else {
        return Cow::Borrowed(fields);
    };
    let mut custom = had.clone();
    for (k, v) in changes {
        if v.is_null() {
            custom.remove(k);
        } else {
            custom.insert(k.clone(), v.clone());
        }
    }
    let mut merged = fields.clone();
    merged.insert("custom".into(), Value::Object(custom));
    Cow::Owned(merged)
}

fn record_id(v: &Value) -> Result<Id, StoreError> {
    v.get("id").and_then(Value::as_i64).ok_or_else(|| StoreError::Db(sqlx::Error::Protocol("row without an id".into())))
}

/// Column names come from our own input structs, never from request keys, but they are
/// spliced into SQL, so refuse anything that is not a plain identifier.
fn column_list(fields: &Map<String, Value>) -> Result<String, StoreError> {
    for k in fields.keys() {
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            return Err(StoreError::InvalidQuery(format!("not a column name: {k:?}")));
        }
    }
    Ok(fields.keys().map(String::as_str).collect::<Vec<_>>().join(", "))
}

fn prefixed(fields: &Map<String, Value>) -> String {
    fields.keys().map(|k| format!("r.{k}")).collect::<Vec<_>>().join(", ")
}

/// Rows grouped by the columns they set (a statement names its columns once), with the
/// column list of each group.
type Group<'m> = (String, Vec<&'m Map<String, Value>>);

fn by_columns<'m>(rows: &[&'m Map<String, Value>]) -> Result<Vec<Group<'m>>, StoreError> {
    let mut groups: Vec<Group<'m>> = Vec::new();
    for row in rows {
        let cols = column_list(row)?;
        match groups.iter_mut().find(|(c, _)| *c == cols) {
            Some((_, group)) => group.push(row),
            None => groups.push((cols, vec![row])),
        }
    }
    Ok(groups)
}
