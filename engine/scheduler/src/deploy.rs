//! Deploying a workflow: the manifest and the components its steps name. Components are
//! stored content-addressed (the same bytes twice are stored once), the manifest as the
//! workflow's next version. Every problem comes back at once, located by field.

use std::collections::{BTreeMap, BTreeSet};

use crm_concepts::manifest::{FieldError, Manifest, ManifestError};
use crm_store::Db;
use crm_store::components;
use crm_store::workflow_error::WorkflowError;
use crm_store::workflows::{self, Deployed};

/// Refers to a component the engine already stores, instead of uploading it again.
pub const DIGEST_PREFIX: &str = "sha256:";

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Store(#[from] WorkflowError),
    #[error("storing a component: {0}")]
    Component(#[from] crm_store::StoreError),
}

/// `uploads` maps a component reference used in the manifest to the component's bytes.
pub async fn deploy(
    db: &Db,
    source: &str,
    uploads: &BTreeMap<String, Vec<u8>>,
    deployed_by: Option<i64>,
) -> Result<Deployed, DeployError> {
    let manifest = Manifest::from_toml(source)?;
    let mut problems = Vec::new();
    let mut known = BTreeSet::new();
    let mut digests = BTreeMap::new();
    for (reference, bytes) in uploads {
        if let Err(why) = crm_concepts::wasm::require_component(bytes) {
            problems.push(FieldError { field: format!("components.{reference}"), message: why.to_string() });
            continue;
        }
        if !manifest.steps.iter().any(|s| &s.component == reference) {
            problems.push(FieldError {
                field: format!("components.{reference}"),
                message: "uploaded but no step uses it".into(),
            });
            continue;
        }
        known.insert(reference.clone());
    }
    for step in &manifest.steps {
        if let Some(digest) = step.component.strip_prefix(DIGEST_PREFIX)
            && !uploads.contains_key(&step.component)
            && components::exists(db, digest).await?
        {
            known.insert(step.component.clone());
            digests.insert(step.component.clone(), digest.to_string());
        }
    }
    let validation = manifest.validate(|c| known.contains(c));
    if let Err(e) = validation {
        problems.extend(e.errors);
    }
    if !problems.is_empty() {
        return Err(ManifestError { errors: problems }.into());
    }
    for reference in &known {
        if let Some(bytes) = uploads.get(reference) {
            digests.insert(reference.clone(), components::put(db, bytes).await?);
        }
    }
    Ok(workflows::deploy(&db.pool, &manifest, source, &digests, deployed_by).await?)
}
