//! Custom field definitions, and the check a record's `custom` object passes on every
//! write. `table` calls [`typed`] before any insert or update that sets `custom`, so the
//! API, the bot, workflow steps and CSV import all meet the same rules.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use crm_concepts::custom_fields::{
    self, FieldDefinition, FieldDefinitionChange, FieldMatch, FieldType, NewFieldDefinition,
};
use crm_concepts::fields::Checked;
use crm_concepts::money::Locale;
use crm_concepts::records::{Id, RecordKind};
use serde_json::{Map, Value};
use sqlx::{PgConnection, Postgres, QueryBuilder};

use crate::Db;
use crate::error::StoreError;

type Row = (Id, String, String, String, String, bool, Vec<String>, DateTime<Utc>);

const COLUMNS: &str = "id, kind, key, label, type, required, choices, created_at";

fn definition(row: Row) -> Result<FieldDefinition, StoreError> {
    let (id, kind, key, label, field_type, required, choices, created_at) = row;
    let broken = |what: String| StoreError::Db(sqlx::Error::Protocol(what));
    Ok(FieldDefinition {
        id,
        kind: kind.parse().map_err(|e: crm_concepts::records::UnknownRecordKind| broken(e.to_string()))?,
        key,
        label,
        field_type: field_type.parse::<FieldType>().map_err(broken)?,
        required,
        choices,
        created_at,
    })
}

/// Adds a definition. A required one is refused while live records of its kind lack the
/// field, as [`change`] refuses making a field required: a definition never starts out
/// broken by records that were written before it.
pub async fn create(db: &Db, new: &NewFieldDefinition) -> Result<FieldDefinition, StoreError> {
    new.check()?;
    let mut tx = db.pool.begin().await?;
    if new.required {
        // as in `change`: no write may slip a record past the check
        sqlx::query("LOCK TABLE custom_fields IN ACCESS EXCLUSIVE MODE").execute(&mut *tx).await?;
        let (count, ids) = in_the_way(&mut tx, new.kind, LACKING, &new.key, &[]).await?;
        if count > 0 {
            return Err(StoreError::Conflict(lacking(new.kind, new.label.trim(), count, &ids)));
        }
    }
    let sql = format!(
        "INSERT INTO custom_fields (kind, key, label, type, required, choices) VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING {COLUMNS}"
    );
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(new.kind.as_str())
        .bind(&new.key)
        .bind(new.label.trim())
        .bind(new.field_type.as_str())
        .bind(new.required)
        .bind(&new.choices)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    definition(row)
}

/// The definitions of one kind (or of all kinds), in the order they were made.
pub async fn list(db: &Db, kind: Option<RecordKind>) -> Result<Vec<FieldDefinition>, StoreError> {
    list_in(&mut *db.pool.acquire().await?, kind).await
}

pub async fn list_in(conn: &mut PgConnection, kind: Option<RecordKind>) -> Result<Vec<FieldDefinition>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM custom_fields WHERE $1::text IS NULL OR kind = $1 ORDER BY kind, id");
    let rows: Vec<Row> =
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(kind.map(RecordKind::as_str)).fetch_all(conn).await?;
    rows.into_iter().map(definition).collect()
}

/// Removes a definition. Records keep their values, which become free-form again.
pub async fn remove(db: &Db, kind: RecordKind, key: &str) -> Result<FieldDefinition, StoreError> {
    let sql = format!("DELETE FROM custom_fields WHERE kind = $1 AND key = $2 RETURNING {COLUMNS}");
    let row: Option<Row> =
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(kind.as_str()).bind(key).fetch_optional(&db.pool).await?;
    match row {
        Some(row) => definition(row),
        None => Err(StoreError::Missing(format!("{kind} has no custom field {key:?}"))),
    }
}

/// How many ids a refusal names: enough to find the records, few enough to read.
const IDS_SHOWN: usize = 5;

/// Changes a definition's label, required flag or choices (never its type). The records of
/// its kind are re-checked in the same transaction: making the field required while live
/// records lack it, or dropping a choice that live records still hold, is refused with how
/// many there are and the first ids, and nothing changes.
pub async fn change(
    db: &Db,
    kind: RecordKind,
    key: &str,
    change: &FieldDefinitionChange,
) -> Result<FieldDefinition, StoreError> {
    let mut tx = db.pool.begin().await?;
    // Every write of `custom` reads its kind's definitions and so holds a share lock on this
    // table until it commits. Taking it exclusively waits for those writes to finish and
    // holds new ones back until this change commits: the re-check below sees every record,
    // and no write can slip a record past it under the old definition.
    sqlx::query("LOCK TABLE custom_fields IN ACCESS EXCLUSIVE MODE").execute(&mut *tx).await?;
    let sql = format!("SELECT {COLUMNS} FROM custom_fields WHERE kind = $1 AND key = $2");
    let row: Option<Row> =
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(kind.as_str()).bind(key).fetch_optional(&mut *tx).await?;
    let Some(row) = row else {
        return Err(StoreError::Missing(format!("{kind} has no custom field {key:?}")));
    };
    let current = definition(row)?;
    let new = current.changed(change)?;
    if new.required && !current.required {
        let (count, ids) = in_the_way(&mut tx, kind, LACKING, key, &[]).await?;
        if count > 0 {
            return Err(StoreError::Conflict(lacking(kind, &new.label, count, &ids)));
        }
    }
    let dropped: Vec<String> = current.choices.iter().filter(|c| !new.choices.contains(c)).cloned().collect();
    if !dropped.is_empty() {
        let condition = "jsonb_typeof(t.custom -> $1) = 'string' AND t.custom ->> $1 = ANY($2)";
        let (count, ids) = in_the_way(&mut tx, kind, condition, key, &dropped).await?;
        if count > 0 {
            return Err(StoreError::Conflict(format!(
                "{} {} still {} {} {} ({}): change {} before dropping the choice",
                count,
                noun(kind, count),
                if count == 1 { "holds" } else { "hold" },
                current.label,
                dropped.iter().map(|c| format!("“{c}”")).collect::<Vec<_>>().join(" or "),
                id_list(&ids, count),
                if count == 1 { "it" } else { "them" }
            )));
        }
    }
    let sql =
        format!("UPDATE custom_fields SET label = $2, required = $3, choices = $4 WHERE id = $1 RETURNING {COLUMNS}");
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(current.id)
        .bind(&new.label)
        .bind(new.required)
        .bind(&new.choices)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    definition(row)
}

/// How many live records of `kind` meet `condition` (on alias `t`, with the key as `$1`
/// and `choices` as `$2`), and the first few ids.
async fn in_the_way(
    conn: &mut PgConnection,
    kind: RecordKind,
    condition: &str,
    key: &str,
    choices: &[String],
) -> Result<(i64, Vec<Id>), StoreError> {
    let sql = format!(
        "SELECT count(*) OVER (), t.id FROM {table} t WHERE t.deleted_at IS NULL AND {condition}
         ORDER BY t.id LIMIT {IDS_SHOWN}",
        table = kind.plural()
    );
    let rows: Vec<(i64, Id)> =
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(key).bind(choices).fetch_all(&mut *conn).await?;
    Ok((rows.first().map_or(0, |r| r.0), rows.into_iter().map(|r| r.1).collect()))
}

/// The records without a value for the key (`$1`).
const LACKING: &str = "coalesce(t.custom -> $1, 'null'::jsonb) = 'null'::jsonb";

/// Why a field cannot be required yet.
fn lacking(kind: RecordKind, label: &str, count: i64, ids: &[Id]) -> String {
    format!(
        "{} {} {} {} ({}): give {} a value first, then make it required",
        count,
        noun(kind, count),
        if count == 1 { "lacks" } else { "lack" },
        label,
        id_list(ids, count),
        if count == 1 { "it" } else { "them" }
    )
}

fn noun(kind: RecordKind, count: i64) -> &'static str {
    if count == 1 { kind.as_str() } else { kind.plural() }
}

/// `#4, #7, #9` (and `…` when there are more).
fn id_list(ids: &[Id], count: i64) -> String {
    let mut out = ids.iter().map(|id| format!("#{id}")).collect::<Vec<_>>().join(", ");
    if count > ids.len() as i64 {
        out.push_str(", …");
    }
    out
}

/// The CSV column of a custom field: `custom.tier`.
pub fn column(key: &str) -> String {
    format!("custom.{key}")
}

/// `fields` (the columns of an insert or update) with their `custom` object checked
/// against the kind's definitions and put in stored form; borrowed as it is when it sets
/// no `custom` or the kind has no definitions.
pub(crate) async fn typed<'f>(
    conn: &mut PgConnection,
    kind: RecordKind,
    fields: &'f Map<String, Value>,
) -> Result<Cow<'f, Map<String, Value>>, StoreError> {
    Ok(typed_many(conn, kind, &[fields]).await?.pop().unwrap_or(Cow::Borrowed(fields)))
}

/// [`typed`] for many rows, with one look-up of the definitions.
pub(crate) async fn typed_many<'f>(
    conn: &mut PgConnection,
    kind: RecordKind,
    rows: &[&'f Map<String, Value>],
) -> Result<Vec<Cow<'f, Map<String, Value>>>, StoreError> {
    let sets_custom = rows.iter().any(|r| r.contains_key("custom"));
    if !custom_fields::KINDS.contains(&kind) || !sets_custom {
        return Ok(rows.iter().map(|r| Cow::Borrowed(*r)).collect());
    }
    let definitions = list_in(conn, Some(kind)).await?;
    if definitions.is_empty() {
        return Ok(rows.iter().map(|r| Cow::Borrowed(*r)).collect());
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(Value::Object(custom)) = row.get("custom") else {
            out.push(Cow::Borrowed(*row));
            continue;
        };
        let mut custom = custom.clone();
        custom_fields::check_custom(&definitions, &mut custom)?;
        let mut typed = (*row).clone();
        typed.insert("custom".into(), Value::Object(custom));
        out.push(Cow::Owned(typed));
    }
    Ok(out)
}

/// A list condition on `custom`: a defined field matches its typed value (so `5` finds
/// `5.0` and `gold` must be one of the choices), a free-form key its text.
pub(crate) enum Condition {
    Contains(Value),
    Text(String, String),
}

pub(crate) async fn conditions(
    conn: &mut PgConnection,
    kind: RecordKind,
    matches: &[FieldMatch],
) -> Result<Vec<Condition>, StoreError> {
    if matches.is_empty() {
        return Ok(Vec::new());
    }
    let definitions = list_in(conn, Some(kind)).await?;
    matches
        .iter()
        .map(|m| match definitions.iter().find(|d| d.key == m.key) {
            Some(def) => {
                let value = def.parse_text(&m.value, Locale::DecimalPoint, "USD").map_err(|e| {
                    StoreError::InvalidQuery(format!("{}{}: {}", custom_fields::FILTER_PREFIX, m.key, e.message))
                })?;
                let mut object = Map::new();
                object.insert(m.key.clone(), value);
                Ok(Condition::Contains(Value::Object(object)))
            }
            None => Ok(Condition::Text(m.key.clone(), m.value.clone())),
        })
        .collect()
}

/// Appends ` AND …` for each condition on alias `t`.
pub(crate) fn push(qb: &mut QueryBuilder<Postgres>, conditions: &[Condition]) {
    for c in conditions {
        match c {
            Condition::Contains(v) => {
                qb.push(" AND t.custom @> ").push_bind(v.clone());
            }
            Condition::Text(key, text) => {
                qb.push(" AND t.custom ->> ").push_bind(key.clone()).push(" = ").push_bind(text.clone());
            }
        }
    }
}
