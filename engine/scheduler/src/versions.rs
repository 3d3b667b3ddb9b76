//! Workflow versions, cached: a version never changes once deployed, so the cache needs no
//! invalidation, and the hot path reads a manifest without touching Postgres.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crm_store::workflow_error::WorkflowError;
use crm_store::workflows::{self, WorkflowVersion};
use sqlx::PgPool;

pub struct Versions {
    pool: PgPool,
    cache: RwLock<HashMap<(String, i32), Arc<WorkflowVersion>>>,
}

impl Versions {
    pub fn new(pool: PgPool) -> Versions {
        Versions { pool, cache: RwLock::new(HashMap::new()) }
    }

    pub async fn get(&self, workflow: &str, version: i32) -> Result<Arc<WorkflowVersion>, WorkflowError> {
        let key = (workflow.to_string(), version);
        if let Some(v) = self.cache.read().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(v.clone());
        }
        let v = Arc::new(workflows::version(&self.pool, workflow, version).await?);
        self.cache.write().unwrap_or_else(|p| p.into_inner()).insert(key, v.clone());
        Ok(v)
    }
}
