//! A scratch database per test, and deploys of small manifests straight through the store.

#![allow(dead_code)]

use std::collections::BTreeMap;

use crm_concepts::manifest::Manifest;
use crm_store::Db;

pub struct Scratch {
    pub db: Db,
    admin: String,
    name: String,
}

impl Scratch {
    pub async fn new(purpose: &str) -> Scratch {
        let admin =
            std::env::var("CRM_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("crm_t_{purpose}_{}", uuid::Uuid::new_v4().simple());
        let url = Db::create_scratch(&admin, &name).await.expect("scratch database");
        let db = Db::connect(&url, 10).await.expect("connect to scratch database");
        Scratch { db, admin, name }
    }

    pub async fn pool(&self, max: u32) -> sqlx::PgPool {
        let url = crm_store::database::with_database(&self.admin, &self.name);
        Db::connect(&url, max).await.expect("second pool").pool
    }

    pub async fn drop(self) {
        self.db.pool.close().await;
        Db::drop_scratch(&self.admin, &self.name).await;
    }
}

/// Deploys a manifest (steps point at a made-up component digest: nothing executes here).
pub async fn deploy(db: &Db, toml: &str) {
    let manifest = Manifest::parse(toml).expect("test manifest is valid");
    let components: BTreeMap<String, String> =
        manifest.steps.iter().map(|s| (s.component.clone(), "0".repeat(64))).collect();
    crm_store::workflows::deploy(&db.pool, &manifest, toml, &components, None).await.expect("deploy");
}

pub fn one_step(name: &str, triggers: &str) -> String {
    format!("name = \"{name}\"\nversion = \"1\"\n{triggers}\n[[steps]]\nid = \"only\"\ncomponent = \"echo\"\n")
}
