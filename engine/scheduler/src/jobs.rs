//! Building the job a worker receives for one attempt of one step: what the deployed
//! version says the step may do, the attempt's ticket, and the engine's signature over all
//! of it (one for each batch of jobs sent together).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use crm_concepts::step::{AttemptKey, StepInput, StepJob};
use crm_queue::SignedJob;
use crm_store::workflows::WorkflowVersion;
use crm_trust::{SentAhead, Ticket};
use serde_json::Value;
use uuid::Uuid;

use crate::confirmer::Key;
use crate::core::Core;

/// How long past its step's timeout and the lost-step margin a ticket stays valid, for
/// the time its job may wait on Redis.
const TICKET_QUEUE_ALLOWANCE: chrono::Duration = chrono::Duration::hours(6);

/// What a job needs from its run.
pub struct RunContext<'a> {
    pub run_id: Uuid,
    pub input: &'a Value,
    pub acting_user: Option<i64>,
}

/// A job ready to sign and send, and the attempt it is for.
pub(crate) struct Dispatch {
    pub key: Key,
    pub payload: Vec<u8>,
    /// the id of a dispatch sent ahead of the write that records its attempt
    /// (see `crate::provisional`)
    pub provisional: Option<u64>,
}

/// Signs jobs sent together under one signature: their attempts, and the jobs as they go
/// onto Redis, in order.
pub(crate) fn sign(core: &Core, jobs: Vec<Dispatch>) -> (Vec<Key>, Vec<SignedJob>) {
    let proofs = core.key.sign_jobs(&jobs.iter().map(|j| j.payload.as_slice()).collect::<Vec<_>>());
    jobs.into_iter().zip(proofs).map(|(j, signature)| (j.key, SignedJob { payload: j.payload, signature })).unzip()
}

/// `None` when the version has no such step or its component is missing, which a
/// validated deploy rules out. `provisional` is the dispatch's id when the job leaves
/// before the write that records its attempt has committed.
pub(crate) fn build(
    core: &Core,
    version: &WorkflowVersion,
    run: &RunContext<'_>,
    step: &str,
    attempt: i32,
    deps: BTreeMap<String, Arc<Value>>,
    provisional: Option<u64>,
) -> Option<Dispatch> {
    let spec = version.manifest.step(step)?;
    let component = version.components.get(&spec.component)?;
    let limits = spec.limits();
    let attempt = attempt.max(1);
    // Long enough for the job to wait out a backlog and run: a ticket that expired in the
    // queue would make its step fail for no fault of its own. What a stale attempt can do
    // with a live ticket is bounded anyway: its step's grants, and writes the journal
    // answers once.
    let lifetime = chrono::Duration::milliseconds(i64::try_from(limits.timeout_ms).unwrap_or(i64::MAX / 4))
        + chrono::Duration::from_std(core.config.lost_after).unwrap_or_default()
        + TICKET_QUEUE_ALLOWANCE;
    let now = Utc::now();
    let ticket = Ticket {
        run_id: run.run_id,
        step: step.to_string(),
        attempt: attempt as u32,
        workflow: version.workflow.clone(),
        version: version.version,
        acting_user: run.acting_user,
        expires_at_ms: (now + lifetime).timestamp_millis(),
        provisional: provisional.map(|dispatch| SentAhead { dispatch, sent_at_ms: now.timestamp_millis() }),
    };
    // The dispatch span ends with this function; its context travels in the signed job.
    let span = if crm_traces::exporting() {
        let span = tracing::info_span!("step.dispatch", crm.run_id = %run.run_id, crm.step = step, crm.attempt = attempt, crm.workflow = %version.workflow);
        crm_traces::in_run(&span, run.run_id);
        span
    } else {
        tracing::Span::none()
    };
    let job = StepJob {
        key: AttemptKey { run_id: run.run_id, step: step.to_string(), attempt: attempt as u32 },
        workflow: version.workflow.clone(),
        component: component.clone(),
        input: StepInput { run_input: run.input.clone(), deps, config: spec.config.clone() },
        grants: spec.grants(),
        limits,
        acting_user: run.acting_user,
        ticket: core.key.mint(&ticket),
        trace: crm_traces::traceparent(&span),
        provisional: provisional.is_some(),
    };
    // Written into room for a typical job (about 1 KB): grown from empty, the buffer was
    // copied over eight times for each job.
    let mut payload = Vec::with_capacity(1536);
    serde_json::to_writer(&mut payload, &job).ok()?;
    Some(Dispatch { key: (run.run_id, step.to_string(), attempt), payload, provisional })
}
