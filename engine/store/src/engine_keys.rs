//! The engine's key: a 32-byte seed every engine replica reads from Postgres (the only
//! place the engine keeps state). Jobs are signed with the Ed25519 key it seeds, attempt
//! credentials are MACs under a key derived from it. Workers never see it; they hold the
//! public key, which the engine hands out over the workers' authenticated channel.

use rand::RngCore;

use crate::Db;
use crate::error::StoreError;

/// The seed, created by the first engine that asks.
pub async fn seed(db: &Db) -> Result<[u8; 32], StoreError> {
    let mut fresh = [0u8; 32];
    rand::rng().fill_bytes(&mut fresh);
    sqlx::query("INSERT INTO engine_keys (id, seed) VALUES (1, $1) ON CONFLICT (id) DO NOTHING")
        .bind(fresh.as_slice())
        .execute(&db.pool)
        .await?;
    let stored: Vec<u8> = sqlx::query_scalar("SELECT seed FROM engine_keys WHERE id = 1").fetch_one(&db.pool).await?;
    stored.try_into().map_err(|_| StoreError::Db(sqlx::Error::Decode("the engine key is not 32 bytes".into())))
}
