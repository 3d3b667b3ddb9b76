//! Changes to what credentials grant. An engine may keep the API tokens and users it
//! verified lately (`crm_api::token_cache`) only while it hears of every change to them:
//! a change made by this process is counted here at once, and a change made anywhere else
//! (another engine, the CLI, an operator's SQL) is announced by Postgres on [`CHANNEL`]
//! when it commits (migration `0022_credential_changes.sql`).

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::postgres::PgListener;

use crate::{Db, StoreError};

/// Postgres' channel for changes to tokens and users.
pub const CHANNEL: &str = "crm_credentials";

static HERE: AtomicU64 = AtomicU64::new(0);

/// How many changes to tokens and users this process has made: a cache entry taken before
/// the count moved may describe a credential as it no longer is.
pub fn made_here() -> u64 {
    HERE.load(Ordering::Acquire)
}

/// Called once a change to a token or a user has committed.
pub(crate) fn changed() {
    HERE.fetch_add(1, Ordering::AcqRel);
}

/// A listener on [`CHANNEL`]. It holds one connection of the pool while it lives.
pub async fn listener(db: &Db) -> Result<PgListener, StoreError> {
    let mut listener = PgListener::connect_with(&db.pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}
