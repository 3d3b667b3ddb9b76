//! Building the job a worker receives for one attempt of one step.

use std::collections::BTreeMap;

use crm_concepts::step::{AttemptKey, StepInput, StepJob};
use crm_store::workflows::WorkflowVersion;
use serde_json::Value;
use uuid::Uuid;

/// What a job needs from its run.
pub struct RunContext<'a> {
    pub run_id: Uuid,
    pub input: &'a Value,
    pub acting_user: Option<i64>,
}

/// `None` when the version has no such step or its component is missing, which a
/// validated deploy rules out.
pub fn build(
    version: &WorkflowVersion,
    run: &RunContext<'_>,
    step: &str,
    attempt: i32,
    deps: BTreeMap<String, Value>,
) -> Option<StepJob> {
    let spec = version.manifest.step(step)?;
    let component = version.components.get(&spec.component)?;
    Some(StepJob {
        key: AttemptKey { run_id: run.run_id, step: step.to_string(), attempt: attempt.max(1) as u32 },
        workflow: version.workflow.clone(),
        component: component.clone(),
        input: StepInput { run_input: run.input.clone(), deps, config: spec.config.clone() },
        grants: spec.grants(),
        limits: spec.limits(),
        acting_user: run.acting_user,
    })
}
