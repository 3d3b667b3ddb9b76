//! The two rows every change writes next to itself, in the caller's transaction: an
//! activity entry (who, what, before/after) and an outbox event for trigger consumers.
//! Because they share the transaction, a rolled-back change leaves neither behind.

use crm_concepts::records::{Actor, Id, RecordKind};
use serde_json::{Map, Value};
use sqlx::PgConnection;

use crate::error::StoreError;

/// Fields whose change alone is not news: they move on every write.
const NOISE: [&str; 1] = ["updated_at"];

/// `action` is what the activity log says (created, updated, deleted, moved, completed);
/// the outbox uses the coarser created/updated/deleted that triggers match on.
pub async fn record_change(
    conn: &mut PgConnection,
    actor: &Actor,
    kind: RecordKind,
    id: Id,
    action: &str,
    before: Option<&Value>,
    after: Option<&Value>,
) -> Result<(), StoreError> {
    let outbox_action = match (before, after) {
        (None, Some(_)) => "created",
        (Some(_), None) => "deleted",
        _ => "updated",
    };
    let changes = match (before, after) {
        (Some(b), Some(a)) => Value::Object(diff(b, a)),
        _ => Value::Object(Map::new()),
    };
    let record = after.or(before);
    sqlx::query(
        "WITH a AS (
             INSERT INTO activity (actor_id, origin_run, record_kind, record_id, action, before, after, token_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $11)
         )
         INSERT INTO outbox (actor_id, origin_run, record_kind, record_id, action, changes, record)
         VALUES ($1, $2, $3, $4, $8, $9, $10)",
    )
    .bind(actor.user_id)
    .bind(actor.origin_run)
    .bind(kind.as_str())
    .bind(id)
    .bind(action)
    .bind(before)
    .bind(after)
    .bind(outbox_action)
    .bind(&changes)
    .bind(record)
    .bind(actor.token_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Two CTEs that log every row of a preceding CTE `new (id, rec)` as created, as
/// [`record_change`] does for one: binds `$2` actor id, `$3` origin run, `$4` record kind,
/// `$5` token id.
pub(crate) const LOG_NEW_ROWS: &str = "logged AS (
         INSERT INTO activity (actor_id, origin_run, record_kind, record_id, action, before, after, token_id)
         SELECT $2, $3, $4, new.id, 'created', NULL, new.rec, $5 FROM new
     ), announced AS (
         INSERT INTO outbox (actor_id, origin_run, record_kind, record_id, action, changes, record)
         SELECT $2, $3, $4, new.id, 'created', '{}', new.rec FROM new
     )";

/// [`record_change`] for many updates `(id, before, after)` in one statement.
pub async fn record_updates(
    conn: &mut PgConnection,
    actor: &Actor,
    kind: RecordKind,
    updates: &[(Id, Value, Value)],
) -> Result<(), StoreError> {
    if updates.is_empty() {
        return Ok(());
    }
    let entries: Vec<Value> = updates
        .iter()
        .map(|(id, before, after)| {
            serde_json::json!({"id": id, "before": before, "after": after, "changes": Value::Object(diff(before, after))})
        })
        .collect();
    sqlx::query(
        "WITH e AS (
             SELECT (x->>'id')::bigint AS id, x->'before' AS before, x->'after' AS after, x->'changes' AS changes
             FROM jsonb_array_elements($1) x
         ), a AS (
             INSERT INTO activity (actor_id, origin_run, record_kind, record_id, action, before, after, token_id)
             SELECT $2, $3, $4, e.id, 'updated', e.before, e.after, $5 FROM e
         )
         INSERT INTO outbox (actor_id, origin_run, record_kind, record_id, action, changes, record)
         SELECT $2, $3, $4, e.id, 'updated', e.changes, e.after FROM e",
    )
    .bind(Value::Array(entries))
    .bind(actor.user_id)
    .bind(actor.origin_run)
    .bind(kind.as_str())
    .bind(actor.token_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// `{"field": [old, new]}` for every top-level field that differs.
pub fn diff(before: &Value, after: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    let (Value::Object(b), Value::Object(a)) = (before, after) else {
        return out;
    };
    for (k, new) in a {
        if NOISE.contains(&k.as_str()) {
            continue;
        }
        let old = b.get(k).unwrap_or(&Value::Null);
        if old != new {
            out.insert(k.clone(), Value::Array(vec![old.clone(), new.clone()]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_names_changed_fields_only() {
        let b = json!({"id": 1, "stage_id": 3, "updated_at": "a", "name": "x"});
        let a = json!({"id": 1, "stage_id": 4, "updated_at": "b", "name": "x"});
        assert_eq!(Value::Object(diff(&b, &a)), json!({"stage_id": [3, 4]}));
    }
}
