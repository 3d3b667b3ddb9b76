//! `crm component check`: is this file a step component this host can run, and what does
//! it import?

use std::sync::Arc;

use crm_concepts::step::StepError;

use crate::host_calls::HostCalls;
use crate::loading::check_kind;
use crate::runtime::{Runtime, digest_of};

#[derive(Debug, Clone)]
pub struct ComponentReport {
    pub digest: String,
    pub size: usize,
    /// every interface the component imports (`crm:automation/records@0.1.0`, `wasi:…`)
    pub imports: Vec<String>,
    /// the `crm:automation` interfaces among them: what its manifest may need to grant
    pub crm_imports: Vec<String>,
}

/// Checks the bytes are a component of the `crm:automation/step` world that links
/// against this host; the error says what is wrong in the terms of the author.
pub async fn check<H: HostCalls>(rt: &Runtime<H>, bytes: Vec<u8>) -> Result<ComponentReport, StepError> {
    check_kind(&bytes)?;
    let digest = digest_of(&bytes);
    let size = bytes.len();
    let prepared = rt.load(&digest, Arc::new(bytes)).await?;
    let component = prepared.pre.instance_pre().component();
    let imports: Vec<String> = component.component_type().imports(rt.engine()).map(|(n, _)| n.to_string()).collect();
    let crm_imports = imports.iter().filter(|n| n.starts_with("crm:automation/")).cloned().collect();
    Ok(ComponentReport { digest, size, imports, crm_imports })
}
