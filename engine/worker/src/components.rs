//! Where a worker finds component bytes it has not compiled yet.

use std::future::Future;

use crm_store::{Db, StoreError};

pub trait ComponentSource: Send + Sync + 'static {
    /// The bytes stored under `digest`, `Ok(None)` when no such component exists.
    fn fetch(&self, digest: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;
}

/// The `components` table, filled by deploys.
pub struct PgComponents {
    db: Db,
}

impl PgComponents {
    pub fn new(db: Db) -> PgComponents {
        PgComponents { db }
    }
}

impl ComponentSource for PgComponents {
    async fn fetch(&self, digest: &str) -> Result<Option<Vec<u8>>, StoreError> {
        crm_store::components::get(&self.db, digest).await
    }
}
