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

/// `\0asm` and the layer/version of the component-model binary format (a core module has
/// version 1, layer 0).
fn is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && &bytes[..4] == b"\0asm" && bytes[6..8] == [0x01, 0x00] && bytes[4..6] != [0x01, 0x00]
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
        if !is_component(bytes) {
            let what = if bytes.starts_with(b"\0asm") { "a core WebAssembly module" } else { "not WebAssembly" };
            problems.push(FieldError {
                field: format!("components.{reference}"),
                message: format!(
                    "{what}: build the step as a component for wasm32-wasip2 (`cargo build --target wasm32-wasip2`)"
                ),
            });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_components_from_modules_and_junk() {
        assert!(is_component(b"\0asm\x0d\x00\x01\x00rest"));
        assert!(!is_component(b"\0asm\x01\x00\x00\x00rest"));
        assert!(!is_component(b"hello world"));
        assert!(!is_component(b"\0asm"));
    }
}
