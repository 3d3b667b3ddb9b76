//! Shared helpers: a runtime over in-memory services and a one-call step runner.

#![allow(dead_code, reason = "each test file uses a different subset")]

use std::sync::Arc;

use crm_concepts::capability::{Capability, Grants};
use crm_concepts::step::{AttemptKey, StepError, StepInput, StepLimits, StepOutcome};
use crm_memory::MemoryCrm;
use crm_runtime::{Runtime, RuntimeConfig, StepCall, StepRun, digest_of};

pub fn runtime() -> Runtime<MemoryCrm> {
    Runtime::new(RuntimeConfig { max_instances: 16, ..RuntimeConfig::default() }).expect("runtime starts")
}

pub fn grants(caps: &[&str]) -> Arc<Grants> {
    Arc::new(Grants::new(caps.iter().map(|c| c.parse::<Capability>().expect("valid capability"))))
}

/// A step call of a test run that acts for user 7.
pub fn call<'a>(step: &str, input: &'a StepInput, grants: Arc<Grants>, limits: &'a StepLimits) -> StepCall<'a> {
    StepCall {
        key: AttemptKey { run_id: uuid::Uuid::now_v7(), step: step.into(), attempt: 1 },
        workflow: "test".into(),
        acting_user: Some(7),
        ticket: String::new(),
        provisional: false,
        input,
        grants,
        limits,
    }
}

pub async fn run(
    rt: &Runtime<MemoryCrm>,
    path: &str,
    input: StepInput,
    caps: &[&str],
    limits: StepLimits,
    services: Arc<MemoryCrm>,
) -> StepRun {
    let bytes = std::fs::read(path).expect("the component was built");
    let component = rt.load(&digest_of(&bytes), Arc::new(bytes)).await.expect("the component loads");
    rt.run(&component, call("s", &input, grants(caps), &limits), services).await
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
