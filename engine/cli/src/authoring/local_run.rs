//! One workflow run on this machine, without Postgres or Redis: every step in graph order
//! through the scheduler's own state machine (`crm_scheduler::machine`: dependencies,
//! branching, retries, the result and its chat message), each step in the same runtime a
//! worker uses, with its manifest's grants and limits, against the in-memory CRM.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use crm_concepts::run::{RunStatus, StepStatus};
use crm_concepts::step::{AttemptKey, LogLevel, StepInput, StepOutcome};
use crm_memory::MemoryCrm;
use crm_runtime::{Prepared, Runtime, StepCall};
use crm_scheduler::hold::Wake;
use crm_scheduler::machine::RunMachine;
use crm_store::runs::{RunState, StepState};
use crm_store::workflows::WorkflowVersion;
use serde_json::Value;
use uuid::Uuid;

use crate::authoring::cases::Outcome;

/// Runs the workflow once and prints each step's output, log and resource use.
pub async fn run(
    rt: &Runtime<MemoryCrm>,
    version: Arc<WorkflowVersion>,
    components: &BTreeMap<String, Arc<Prepared<MemoryCrm>>>,
    input: Value,
    acting_user: Option<i64>,
    crm: Arc<MemoryCrm>,
) -> Outcome {
    let run_id = Uuid::now_v7();
    let run = RunState {
        id: run_id,
        workflow: version.workflow.clone(),
        version: version.version,
        status: RunStatus::Queued,
        input: input.clone(),
        acting_user,
        notify: None,
        error: None,
    };
    let initial = match RunMachine::initial(&version, run_id, &input, Utc::now()) {
        Ok(i) => i,
        Err((step, message)) => {
            println!("── step {step} cannot wait: {message}");
            return Outcome { status: "failed".into(), message, result: None, steps: BTreeMap::new() };
        }
    };
    let mut held: Vec<String> = initial.waits.iter().map(|w| w.step.clone()).collect();
    let steps = initial.steps.iter().map(|(step, status)| StepState {
        run_id,
        step: step.clone(),
        status: *status,
        attempt: i32::from(*status != StepStatus::Waiting),
        output: None,
        next: None,
    });
    let run = RunState { status: initial.status, ..run };
    let mut machine = RunMachine::new(version.clone(), run, steps);
    let mut ready: Vec<(String, i32)> =
        initial.steps.iter().filter(|(_, s)| *s == StepStatus::Queued).map(|(id, _)| (id.clone(), 1)).collect();
    let mut statuses: BTreeMap<String, (String, Option<Value>)> =
        version.manifest.steps.iter().map(|s| (s.id.clone(), ("waiting".to_string(), None))).collect();
    let mut outcome = None;
    while !ready.is_empty() || !held.is_empty() {
        // A local run does not wait: a `wait` passes at once, a `wait_event` times out, an
        // `approval` takes its timeout's decision.
        for step in std::mem::take(&mut held) {
            println!("── step {step} waits: a local run goes on at once, as if its time or timeout came");
            machine.wake(&step, &Wake::Time);
            let taken = machine.take_ready();
            ready.extend(taken.iter().map(|r| (r.step.clone(), r.attempt)));
            held.extend(machine.take_waits().0.into_iter().map(|w| w.step));
            let (updates, run_update) = machine.updates(&taken, Utc::now());
            for u in updates {
                statuses.insert(u.step.clone(), (u.status.to_string(), u.output.as_deref().cloned()));
            }
            if let Some(run) = run_update
                && run.status.is_final()
            {
                outcome = Some(run);
            }
        }
        for (step, attempt) in std::mem::take(&mut ready) {
            let Some(spec) = version.manifest.step(&step) else { continue };
            let Some(component) = components.get(&spec.component) else { continue };
            let step_input =
                StepInput { run_input: input.clone(), deps: machine.deps_of(&step), config: spec.config.clone() };
            let limits = spec.limits();
            let call = StepCall {
                key: AttemptKey { run_id, step: step.clone(), attempt: attempt as u32 },
                workflow: version.workflow.clone(),
                acting_user,
                ticket: String::new(),
                provisional: false,
                input: &step_input,
                grants: Arc::new(spec.grants()),
                limits: &limits,
            };
            let r = rt.run(component, call, crm.clone()).await;
            let u = &r.usage;
            println!(
                "── step {step} (attempt {attempt}) · {:.2} ms · peak memory {:.1} MiB",
                u.duration_us as f64 / 1000.0,
                u.peak_memory_bytes as f64 / f64::from(1 << 20)
            );
            for line in &r.logs {
                let level = match line.level {
                    LogLevel::Trace => "TRACE",
                    LogLevel::Debug => "DEBUG",
                    LogLevel::Info => "INFO ",
                    LogLevel::Warn => "WARN ",
                    LogLevel::Error => "ERROR",
                };
                let fields = if line.fields.is_null() { String::new() } else { format!(" {}", line.fields) };
                println!("   log {level} {}{fields}", line.message);
            }
            match r.outcome {
                StepOutcome::Ok { output, next } => {
                    println!("   output {}", serde_json::to_string(&output).unwrap_or_default());
                    if let Some(next) = &next {
                        println!("   next [{}]", next.join(", "));
                    }
                    machine.succeed(&step, attempt, output, next);
                }
                StepOutcome::Failed { error } => {
                    let kind = if error.is_retryable() { "retryable" } else { "permanent" };
                    println!("   failed ({kind}) {}: {}", error.code, error.message);
                    // A local run does not wait out the backoff.
                    machine.fail(&step, attempt, &error, Utc::now(), 0.0);
                }
            }
            let taken = machine.take_ready();
            ready.extend(taken.iter().map(|r| (r.step.clone(), r.attempt)));
            held.extend(machine.take_waits().0.into_iter().map(|w| w.step));
            let (updates, run_update) = machine.updates(&taken, Utc::now());
            for u in updates {
                statuses.insert(u.step.clone(), (u.status.to_string(), u.output.as_deref().cloned()));
            }
            if let Some(run) = run_update
                && run.status.is_final()
            {
                outcome = Some(run);
            }
        }
    }
    for n in crm.notifications() {
        println!("── notify user {}: {}", n.user_id, n.text);
    }
    let (status, message, result) = match outcome {
        Some(run) => (run.status.to_string(), run.rendered.unwrap_or_default(), run.result.as_deref().cloned()),
        None => ("unfinished".to_string(), String::new(), None),
    };
    println!("── run {status}: {message}");
    Outcome { status, message, result, steps: statuses }
}
