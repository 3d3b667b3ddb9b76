//! Named secrets steps read once granted `secret:NAME`.

use sqlx::{PgConnection, Row};

use crate::{Db, StoreError};

pub async fn get(db: &Db, name: &str) -> Result<Option<String>, StoreError> {
    get_in(&mut *db.pool.acquire().await?, name).await
}

pub async fn get_in(conn: &mut PgConnection, name: &str) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT value FROM secrets WHERE name = $1").bind(name).fetch_optional(conn).await?;
    Ok(match row {
        Some(r) => Some(r.try_get("value")?),
        None => None,
    })
}

pub async fn set(db: &Db, name: &str, value: &str) -> Result<(), StoreError> {
    set_in(&mut *db.pool.acquire().await?, name, value).await
}

pub async fn set_in(conn: &mut PgConnection, name: &str, value: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO secrets (name, value) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
    )
    .bind(name)
    .bind(value)
    .execute(conn)
    .await?;
    Ok(())
}
