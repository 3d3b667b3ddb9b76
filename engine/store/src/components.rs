//! Step components, content-addressed by the SHA-256 of their bytes (lowercase hex).

use sha2::{Digest as _, Sha256};
use sqlx::Row;

use crate::{Db, StoreError};

/// Largest component accepted: a Rust step is ~100 KB, a componentize-py one ~18 MB.
pub const MAX_COMPONENT_BYTES: usize = 64 << 20;

pub fn digest_of(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Stores the bytes under their digest (a no-op when already stored) and returns it.
pub async fn put(db: &Db, bytes: &[u8]) -> Result<String, StoreError> {
    if bytes.len() > MAX_COMPONENT_BYTES {
        return Err(StoreError::validation(
            "component",
            format!("{} bytes is over the {MAX_COMPONENT_BYTES} byte limit", bytes.len()),
        ));
    }
    let digest = digest_of(bytes);
    let size = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
    sqlx::query("INSERT INTO components (digest, bytes, size) VALUES ($1, $2, $3) ON CONFLICT (digest) DO NOTHING")
        .bind(&digest)
        .bind(bytes)
        .bind(size)
        .execute(&db.pool)
        .await?;
    Ok(digest)
}

/// The bytes stored under `digest`, if any.
pub async fn get(db: &Db, digest: &str) -> Result<Option<Vec<u8>>, StoreError> {
    let row =
        sqlx::query("SELECT bytes FROM components WHERE digest = $1").bind(digest).fetch_optional(&db.pool).await?;
    Ok(match row {
        Some(r) => Some(r.try_get("bytes")?),
        None => None,
    })
}

pub async fn exists(db: &Db, digest: &str) -> Result<bool, StoreError> {
    let row =
        sqlx::query("SELECT 1 AS one FROM components WHERE digest = $1").bind(digest).fetch_optional(&db.pool).await?;
    Ok(row.is_some())
}
