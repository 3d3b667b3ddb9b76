//! Shared helpers: a runtime over in-memory services and a one-call step runner.

#![allow(dead_code, reason = "each test file uses a different subset")]

use std::sync::Arc;

use crm_concepts::capability::{Capability, Grants};
use crm_concepts::step::{AttemptKey, StepError, StepInput, StepLimits, StepOutcome};
use crm_runtime::memory::MemoryServices;
use crm_runtime::{CallContext, Runtime, RuntimeConfig, StepCall, StepRun, digest_of};

pub fn runtime() -> Runtime<MemoryServices> {
    Runtime::new(RuntimeConfig { max_instances: 16, ..RuntimeConfig::default() }).expect("runtime starts")
}

pub fn grants(caps: &[&str]) -> Arc<Grants> {
    Arc::new(Grants::new(caps.iter().map(|c| c.parse::<Capability>().expect("valid capability"))))
}

pub fn cx(step: &str) -> CallContext {
    CallContext {
        key: AttemptKey { run_id: uuid::Uuid::now_v7(), step: step.into(), attempt: 1 },
        workflow: "test".into(),
        acting_user: Some(7),
    }
}

pub async fn run(
    rt: &Runtime<MemoryServices>,
    path: &str,
    input: StepInput,
    caps: &[&str],
    limits: StepLimits,
    services: Arc<MemoryServices>,
) -> StepRun {
    let bytes = std::fs::read(path).expect("the component was built");
    let component = rt.load(&digest_of(&bytes), Arc::new(bytes)).await.expect("the component loads");
    rt.run(&component, StepCall { cx: cx("s"), input: &input, grants: grants(caps), limits: &limits }, services).await
}

pub fn input(run_input: serde_json::Value, config: serde_json::Value) -> StepInput {
    StepInput { run_input, deps: Default::default(), config }
}

pub fn failure(run: &StepRun) -> &StepError {
    match &run.outcome {
        StepOutcome::Failed { error } => error,
        StepOutcome::Ok { output, .. } => panic!("expected a failure, got output {output}"),
    }
}

pub fn output(run: &StepRun) -> &serde_json::Value {
    match &run.outcome {
        StepOutcome::Ok { output, .. } => output,
        StepOutcome::Failed { error } => {
            panic!("expected output, got {error}; logs {:?}", run.logs)
        }
    }
}
