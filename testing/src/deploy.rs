//! Deploys of small manifests straight through the store, for tests about what starts runs
//! (triggers, intake): their steps point at a made-up component digest, nothing executes.

use std::collections::BTreeMap;

use crm_concepts::manifest::Manifest;
use crm_store::Db;

/// The digest every step of a [`deploy`]ed manifest points at; no component has it.
pub const MADE_UP_DIGEST: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub async fn deploy(db: &Db, toml: &str) {
    let manifest = Manifest::parse(toml).expect("the test manifest is valid");
    let components: BTreeMap<String, String> =
        manifest.steps.iter().map(|s| (s.component.clone(), MADE_UP_DIGEST.to_string())).collect();
    crm_store::workflows::deploy(&db.pool, &manifest, toml, &components, None).await.expect("deploy");
}

/// A workflow `name` with `triggers` (TOML tables) and one step, `only`.
pub fn one_step(name: &str, triggers: &str) -> String {
    format!("name = \"{name}\"\nversion = \"1\"\n{triggers}\n[[steps]]\nid = \"only\"\ncomponent = \"echo\"\n")
}
