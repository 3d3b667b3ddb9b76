//! Changes to what credentials grant. An engine may keep the API tokens, users and worker
//! credentials it verified lately (`crm_api::token_cache`, the workers' routes) only while
//! it hears of every change to them: a change made by this process is counted here at once,
//! and a change made anywhere else (another engine, the CLI, an operator's SQL) is announced
//! by Postgres on [`CHANNEL`] when it commits (migration `0022_credential_changes.sql`).

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::postgres::PgListener;

use crate::{Db, StoreError};

/// Postgres' channel for changes to tokens, users and worker credentials.
pub const CHANNEL: &str = "crm_credentials";

static HERE: AtomicU64 = AtomicU64::new(0);

/// How many changes to tokens, users and worker credentials this process has made: a cache
/// entry taken before the count moved may describe a credential as it no longer is.
pub fn made_here() -> u64 {
    HERE.load(Ordering::Acquire)
}

/// Called once a change to a token, a user or a worker credential has committed.
pub(crate) fn changed() {
    HERE.fetch_add(1, Ordering::AcqRel);
}

/// A listener on [`CHANNEL`]. It holds one connection of the pool while it lives.
pub async fn listener(db: &Db) -> Result<PgListener, StoreError> {
    let mut listener = PgListener::connect_with(&db.pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}
