//! Named secrets, sealed at rest with the engine's [`Vault`] key (see migrations/0008).
//!
//! Two namespaces that never mix: [`Namespace::Step`] secrets are what a step granted
//! `secret:NAME` may read (each read is recorded in the activity log); [`Namespace::Webhook`]
//! keys sign requests to webhook triggers and no step can read them. Values are never listed:
//! only names, when they changed, and how often steps read them.

use chrono::{DateTime, Utc};
use crm_vault::Vault;
use serde::Serialize;
use sqlx::{PgConnection, Row};
use utoipa::ToSchema;

use crate::{Db, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    /// read by steps granted `secret:NAME`
    Step,
    /// signing keys of webhook triggers
    Webhook,
}

impl Namespace {
    pub fn as_str(self) -> &'static str {
        match self {
            Namespace::Step => "step",
            Namespace::Webhook => "webhook",
        }
    }
}

/// A secret as listed: never its value.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SecretInfo {
    pub name: String,
    pub updated_at: DateTime<Utc>,
    /// how many times steps read it
    pub reads: i64,
    #[schema(required)]
    pub last_read_at: Option<DateTime<Utc>>,
}

/// Who read a step secret, for the activity log.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    pub acting_user: Option<i64>,
    pub run_id: uuid::Uuid,
    pub workflow: &'a str,
    pub step: &'a str,
}

/// Names: letters, digits, '-', '.', '_' (what the table's CHECK allows).
pub fn check_name(name: &str) -> Result<(), StoreError> {
    let ok =
        !name.is_empty() && name.len() <= 253 && name.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
    if ok {
        Ok(())
    } else {
        Err(StoreError::validation("name", format!("{name:?} is not a valid name: letters, digits, '-', '.' or '_'")))
    }
}

/// Sets `name` to `value`, sealed.
pub async fn put(db: &Db, vault: &Vault, ns: Namespace, name: &str, value: &str) -> Result<(), StoreError> {
    check_name(name)?;
    if value.is_empty() || value.len() > 64 * 1024 {
        return Err(StoreError::validation("value", "a secret is 1 byte to 64 KiB"));
    }
    sqlx::query(
        "INSERT INTO secrets (namespace, name, sealed, key_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT (namespace, name)
         DO UPDATE SET sealed = EXCLUDED.sealed, key_id = EXCLUDED.key_id, value = NULL, updated_at = now()",
    )
    .bind(ns.as_str())
    .bind(name)
    .bind(vault.seal(ns.as_str(), name, value.as_bytes()))
    .bind(vault.id())
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// The value of `name`, opened; `None` when it is not set.
pub async fn reveal_in(
    conn: &mut PgConnection,
    vault: &Vault,
    ns: Namespace,
    name: &str,
) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT value, sealed, key_id FROM secrets WHERE namespace = $1 AND name = $2")
        .bind(ns.as_str())
        .bind(name)
        .fetch_optional(conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    open_row(vault, ns, name, &row).map(Some)
}

/// The values of those of `names` that are set, for redacting them; nothing is recorded.
pub async fn reveal_many(
    pool: &sqlx::PgPool,
    vault: &Vault,
    ns: Namespace,
    names: &[String],
) -> Result<Vec<(String, String)>, StoreError> {
    let rows = sqlx::query("SELECT name, value, sealed, key_id FROM secrets WHERE namespace = $1 AND name = ANY($2)")
        .bind(ns.as_str())
        .bind(names)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            let name: String = row.try_get("name")?;
            let value = open_row(vault, ns, &name, row)?;
            Ok((name, value))
        })
        .collect()
}

fn open_row(vault: &Vault, ns: Namespace, name: &str, row: &sqlx::postgres::PgRow) -> Result<String, StoreError> {
    if let Some(plain) = row.try_get::<Option<String>, _>("value")? {
        return Ok(plain);
    }
    let sealed: Vec<u8> = row.try_get("sealed")?;
    let key_id: String = row.try_get("key_id")?;
    let bytes = vault
        .open(&key_id, ns.as_str(), name, &sealed)
        .map_err(|e| StoreError::Missing(format!("the {} secret {name} cannot be opened: {e}", ns.as_str())))?;
    String::from_utf8(bytes).map_err(|_| StoreError::Missing(format!("the secret {name} is not text")))
}

/// A step reads `name`: the value, and a row in the activity log saying which run read it.
pub async fn read_for_step(
    conn: &mut PgConnection,
    vault: &Vault,
    name: &str,
    reader: Reader<'_>,
) -> Result<Option<String>, StoreError> {
    let Some(value) = reveal_in(conn, vault, Namespace::Step, name).await? else {
        return Ok(None);
    };
    sqlx::query(
        "INSERT INTO activity (actor_id, origin_run, record_kind, record_id, action, after)
         SELECT $1, $2, 'secret', id, 'read', jsonb_build_object('name', name, 'workflow', $3::text, 'step', $4::text)
         FROM secrets WHERE namespace = 'step' AND name = $5",
    )
    .bind(reader.acting_user)
    .bind(reader.run_id)
    .bind(reader.workflow)
    .bind(reader.step)
    .bind(name)
    .execute(conn)
    .await?;
    Ok(Some(value))
}

/// Every secret of `ns`, by name, with how often steps read it.
pub async fn list(db: &Db, ns: Namespace) -> Result<Vec<SecretInfo>, StoreError> {
    let rows = sqlx::query(
        "SELECT s.name, s.updated_at, count(a.id) AS reads, max(a.at) AS last_read_at
         FROM secrets s
         LEFT JOIN activity a ON a.record_kind = 'secret' AND a.record_id = s.id AND a.action = 'read'
         WHERE s.namespace = $1 GROUP BY s.namespace, s.name ORDER BY s.name",
    )
    .bind(ns.as_str())
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(SecretInfo {
                name: r.try_get("name")?,
                updated_at: r.try_get("updated_at")?,
                reads: r.try_get("reads")?,
                last_read_at: r.try_get("last_read_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Removes `name`; false when it was not set.
pub async fn remove(db: &Db, ns: Namespace, name: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM secrets WHERE namespace = $1 AND name = $2")
        .bind(ns.as_str())
        .bind(name)
        .execute(&db.pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Readies the secrets table for `vault` when the engine starts: values written before
/// sealing existed are sealed now; a value sealed with another key is an error that names
/// both keys (an engine started without the installation's key file would otherwise seal
/// new secrets with a key nobody else has).
pub async fn prepare(db: &Db, vault: &Vault) -> Result<usize, StoreError> {
    let foreign: Option<String> =
        sqlx::query_scalar("SELECT key_id FROM secrets WHERE key_id IS NOT NULL AND key_id <> $1 LIMIT 1")
            .bind(vault.id())
            .fetch_optional(&db.pool)
            .await?;
    if let Some(other) = foreign {
        return Err(StoreError::Conflict(format!(
            "secrets in this database are sealed with key {other}, but this engine has key {}: \
             give it the installation's key (CRM_SECRET_KEY or CRM_SECRET_KEY_FILE)",
            vault.id()
        )));
    }
    let plain: Vec<(String, String, String)> =
        sqlx::query_as("SELECT namespace, name, value FROM secrets WHERE value IS NOT NULL")
            .fetch_all(&db.pool)
            .await?;
    for (ns, name, value) in &plain {
        sqlx::query(
            "UPDATE secrets SET sealed = $3, key_id = $4, value = NULL WHERE namespace = $1 AND name = $2 AND value = $5",
        )
        .bind(ns)
        .bind(name)
        .bind(vault.seal(ns, name, value.as_bytes()))
        .bind(vault.id())
        .bind(value)
        .execute(&db.pool)
        .await?;
    }
    Ok(plain.len())
}
