//! The state machine of one run: what a step's result does to the run. Pure logic over the
//! rows the applier locked, so every rule (dependencies, branching, retries, dead letters,
//! completion) is tested without a database.
//!
//! Rules:
//! - A step is ready when every step it needs is final and none of them failed, and at
//!   least one of them *took the edge* to it: succeeded without a `next`, or with a `next`
//!   that names it. Otherwise it is skipped (and so may its successors be). A join after a
//!   branch therefore runs with whichever branch ran.
//! - A retryable error is retried with backoff until `max_attempts`, then the step is
//!   dead-lettered; a permanent error fails the step at once. Either fails the run, and
//!   the run's other unfinished steps are cancelled.
//! - `on_failure` steps run only then, all of them, with the run's error as input; the
//!   run stays `running` (its error set) until they are done, then is `failed`. On a run
//!   that succeeds they are skipped.
//! - A run succeeds when every other step is final and none failed.
//! - A failed run can be retried: every step that did not succeed waits again, at the
//!   attempt after its last; the succeeded ones keep their outputs.
//! - A ready `wait`, `wait_event` or `approval` step is `held` instead of sent: it gets a
//!   `run_waits` row ([`crate::hold`]) and succeeds when the waker, a record event or a
//!   decision ends the wait. A run with no step in flight and one held is `waiting`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use crm_concepts::manifest::{DEFAULT_FAILURE_TEMPLATE, DEFAULT_SUCCESS_TEMPLATE};
use crm_concepts::run::{Completion, RunError, RunStatus, StepStatus};
use crm_concepts::step::{StepError, StepErrorCode};
use crm_concepts::template::{Lookup, Template, walk};
use crm_concepts::wait::StepKind;
use crm_store::approvals::Ended;
use crm_store::run_waits::NewWait;
use crm_store::runs::{RunState, RunUpdate, StepState, StepUpdate};
use crm_store::workflows::WorkflowVersion;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::hold::{self, Wake};

/// A step the machine made ready: send it to Redis once the transaction commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    pub run_id: Uuid,
    pub step: String,
    pub attempt: i32,
    /// `None`: send now; `Some(t)`: a retry that waits out its backoff until `t`
    pub not_before: Option<DateTime<Utc>>,
}

pub struct RunMachine {
    pub version: Arc<WorkflowVersion>,
    pub run: RunState,
    steps: BTreeMap<String, StepState>,
    changed: std::collections::BTreeSet<String>,
    /// the error of each step's latest failed attempt in this batch
    last_errors: BTreeMap<String, Value>,
    run_changed: bool,
    error: Option<RunError>,
    ready: Vec<Ready>,
    /// the engine's time, for wake times
    now: DateTime<Utc>,
    /// steps that started holding the run: their `run_waits` rows to insert
    holds: Vec<NewWait>,
    /// steps that stopped holding it: their `run_waits` rows to delete
    released: Vec<(Uuid, String)>,
    /// approval steps that stopped holding it: how each ended, for its chat messages
    approvals_ended: Vec<Ended>,
}

/// A new run's steps, its status and the waits of the steps that hold it from the start.
#[derive(Debug, Clone)]
pub struct Initial {
    pub steps: Vec<(String, StepStatus)>,
    pub status: RunStatus,
    pub waits: Vec<NewWait>,
}

/// What happened to one result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// the result moved the run on
    Yes,
    /// a duplicate or late delivery, or a run that is over: recorded, not applied
    Stale,
}

impl RunMachine {
    pub fn new(version: Arc<WorkflowVersion>, run: RunState, steps: impl IntoIterator<Item = StepState>) -> Self {
        // a failing run whose on_failure steps are running carries its failure
        let error = run.error.clone();
        RunMachine {
            version,
            run,
            steps: steps.into_iter().map(|s| (s.step.clone(), s)).collect(),
            changed: Default::default(),
            last_errors: Default::default(),
            run_changed: false,
            error,
            ready: Vec::new(),
            now: Utc::now(),
            holds: Vec::new(),
            released: Vec::new(),
            approvals_ended: Vec::new(),
        }
    }

    /// The machine on the engine's clock (a test clock may be ahead of the wall).
    pub fn at(mut self, now: DateTime<Utc>) -> Self {
        self.now = now;
        self
    }

    /// A new run's step rows: steps without dependencies start queued, or held when they
    /// wait. `Err` names a waiting step that cannot wait on this input.
    pub fn initial(
        version: &WorkflowVersion,
        run_id: Uuid,
        input: &Value,
        now: DateTime<Utc>,
    ) -> Result<Initial, (String, String)> {
        // Only a step that waits from the start renders a template here: most runs never
        // build the context (a copy of the whole input).
        let mut ctx = None;
        let mut steps = Vec::with_capacity(version.manifest.steps.len());
        let mut waits = Vec::new();
        for spec in &version.manifest.steps {
            let status = if spec.on_failure || !spec.needs.is_empty() {
                StepStatus::Waiting
            } else if spec.kind().holds() {
                let ctx = ctx.get_or_insert_with(
                    || json!({"workflow": version.workflow, "run_id": run_id, "input": input, "steps": {}}),
                );
                waits.push(hold::hold(run_id, spec, ctx, now).map_err(|e| (spec.id.clone(), e))?);
                StepStatus::Held
            } else {
                StepStatus::Queued
            };
            steps.push((spec.id.clone(), status));
        }
        let status = if steps.iter().any(|(_, s)| *s == StepStatus::Queued) || waits.is_empty() {
            RunStatus::Queued
        } else {
            RunStatus::Waiting
        };
        Ok(Initial { steps, status, waits })
    }

    fn current(&self, step: &str, attempt: i32) -> bool {
        !self.run.status.is_final()
            && self.steps.get(step).is_some_and(|s| s.status == StepStatus::Queued && s.attempt == attempt)
    }

    fn touch_run(&mut self) {
        if matches!(self.run.status, RunStatus::Queued | RunStatus::Waiting) {
            self.run.status = RunStatus::Running;
            self.run_changed = true;
        }
    }

    /// `waiting` while nothing is in flight and a step holds the run; `running` otherwise.
    fn settle(&mut self) {
        if self.run.status.is_final() || self.run.status == RunStatus::Queued {
            return;
        }
        let in_flight = self.steps.values().any(|s| s.status == StepStatus::Queued);
        let held = self.steps.values().any(|s| s.status == StepStatus::Held);
        let status = if !in_flight && held { RunStatus::Waiting } else { RunStatus::Running };
        if status != self.run.status {
            self.run.status = status;
            self.run_changed = true;
        }
    }

    /// Ends the wait of a held step: it succeeds with what ended it, and its successors
    /// follow (the timeout's branch or the others, see [`hold::woken`]).
    pub fn wake(&mut self, step: &str, wake: &Wake) -> Applied {
        if self.run.status.is_final() || self.steps.get(step).is_none_or(|s| s.status != StepStatus::Held) {
            return Applied::Stale;
        }
        let version = self.version.clone();
        let Some(spec) = version.manifest.step(step) else {
            return Applied::Stale;
        };
        let successors: Vec<&str> = version.manifest.dependents(step).map(|s| s.id.as_str()).collect();
        let (output, next) = hold::woken(spec, &successors, wake, self.now);
        self.touch_run();
        if let StepKind::Approval(_) = spec.kind() {
            let at = output["decided_at"].as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok());
            self.approvals_ended.push(Ended {
                run_id: self.run.id,
                step: step.to_string(),
                decision: output["decision"].as_str().map(str::to_string),
                decided_by: output["decided_by"].as_i64(),
                at: at.map_or(self.now, |t| t.with_timezone(&Utc)),
                comment: output["comment"].as_str().map(str::to_string),
            });
        }
        let s = self.steps.get_mut(step).expect("checked above");
        s.status = StepStatus::Succeeded;
        s.output = Some(Arc::new(output));
        s.next = next;
        self.changed.insert(step.to_string());
        self.released.push((self.run.id, step.to_string()));
        self.advance();
        Applied::Yes
    }

    /// The attempt a held step is at (what its wake is recorded as).
    pub fn attempt_of(&self, step: &str) -> i32 {
        self.steps.get(step).map(|s| s.attempt).unwrap_or(1).max(1)
    }

    /// Waits to insert and to delete for what this machine did.
    pub fn take_waits(&mut self) -> (Vec<NewWait>, Vec<(Uuid, String)>) {
        (std::mem::take(&mut self.holds), std::mem::take(&mut self.released))
    }

    /// The approvals that ended (decided, timed out, or their run ended first).
    pub fn take_approvals_ended(&mut self) -> Vec<Ended> {
        std::mem::take(&mut self.approvals_ended)
    }

    fn template_context(&self) -> Value {
        let steps: serde_json::Map<String, Value> = self
            .steps
            .values()
            .filter(|s| s.status == StepStatus::Succeeded)
            .map(|s| (s.step.clone(), step_view(s)))
            .collect();
        json!({"workflow": self.run.workflow, "run_id": self.run.id, "input": self.run.input, "steps": steps})
    }

    pub fn succeed(&mut self, step: &str, attempt: i32, output: Arc<Value>, next: Option<Vec<String>>) -> Applied {
        if !self.current(step, attempt) {
            return Applied::Stale;
        }
        if let Some(chosen) = &next {
            let successors: Vec<&str> = self.version.manifest.dependents(step).map(|s| s.id.as_str()).collect();
            if let Some(bad) = chosen.iter().find(|c| !successors.contains(&c.as_str())) {
                let err = StepError::permanent(
                    StepErrorCode::BadNext,
                    format!("step chose {bad:?} as its next step, but its successors are [{}]", successors.join(", ")),
                );
                return self.fail(step, attempt, &err, Utc::now(), 0.0);
            }
        }
        self.touch_run();
        let s = self.steps.get_mut(step).expect("checked by current()");
        s.status = StepStatus::Succeeded;
        s.output = Some(output);
        s.next = next;
        self.changed.insert(step.to_string());
        self.advance();
        Applied::Yes
    }

    /// `jitter` in [0, 1] scales the backoff (the caller draws it, so tests are exact).
    pub fn fail(&mut self, step: &str, attempt: i32, error: &StepError, now: DateTime<Utc>, jitter: f64) -> Applied {
        if !self.current(step, attempt) {
            return Applied::Stale;
        }
        self.touch_run();
        let version = self.version.clone();
        let Some(spec) = version.manifest.step(step) else {
            return Applied::Stale;
        };
        let max = spec.retry.max_attempts as i32;
        let err_json = serde_json::to_value(error).unwrap_or(Value::Null);
        let s = self.steps.get_mut(step).expect("checked by current()");
        if error.is_retryable() && attempt < max {
            let delay = spec.retry.delay_after(attempt as u32, jitter);
            let at = now + chrono::Duration::from_std(delay).unwrap_or_default();
            s.attempt = attempt + 1;
            s.status = StepStatus::Queued;
            self.ready.push(Ready {
                run_id: self.run.id,
                step: step.to_string(),
                attempt: attempt + 1,
                not_before: Some(at),
            });
            // remembered for the row update: the error of the last attempt
            self.changed.insert(step.to_string());
            self.last_errors.insert(step.to_string(), err_json);
            return Applied::Yes;
        }
        s.status = if error.is_retryable() { StepStatus::DeadLetter } else { StepStatus::Failed };
        self.changed.insert(step.to_string());
        self.last_errors.insert(step.to_string(), err_json);
        let message = if error.is_retryable() {
            format!("{} (gave up after {attempt} attempts)", error.message)
        } else {
            error.message.clone()
        };
        let failure = RunError { step: Some(step.to_string()), code: error.code.to_string(), message };
        if spec.on_failure {
            // The failure it was handling stays the run's error.
            self.error.get_or_insert(failure);
            self.finish_if_done();
        } else {
            self.error = Some(failure);
            self.finish_failed();
        }
        Applied::Yes
    }

    /// Runs a failed run again from where it failed: every step that did not succeed waits
    /// again and goes when its dependencies allow, at the attempt after its last; the
    /// succeeded steps keep their outputs and do not run again. False for a run that is
    /// not failed.
    pub fn retry(&mut self) -> bool {
        if self.run.status != RunStatus::Failed {
            return false;
        }
        let version = self.version.clone();
        for s in self.steps.values_mut() {
            // on_failure steps that ran are ready to handle the next failure
            if s.status != StepStatus::Succeeded || version.manifest.step(&s.step).is_some_and(|spec| spec.on_failure) {
                s.status = StepStatus::Waiting;
                s.next = None;
                self.changed.insert(s.step.clone());
            }
        }
        self.error = None;
        self.run.status = RunStatus::Running;
        self.run_changed = true;
        self.advance();
        true
    }

    /// Ends the run as cancelled (no-op on a finished run).
    pub fn cancel(&mut self) -> bool {
        if self.run.status.is_final() {
            return false;
        }
        self.cancel_open_steps(false);
        self.run.status = RunStatus::Cancelled;
        self.error = Some(RunError { step: None, code: "cancelled".into(), message: "the run was cancelled".into() });
        self.run_changed = true;
        true
    }

    /// `keep_handlers`: the on_failure steps are left to run.
    fn cancel_open_steps(&mut self, keep_handlers: bool) {
        let version = self.version.clone();
        let handler = |id: &str| version.manifest.step(id).is_some_and(|s| s.on_failure);
        for s in self.steps.values_mut() {
            if keep_handlers && handler(&s.step) {
                continue;
            }
            if s.status == StepStatus::Held {
                self.released.push((s.run_id, s.step.clone()));
                if let Some(StepKind::Approval(_)) = version.manifest.step(&s.step).map(|spec| spec.kind()) {
                    self.approvals_ended.push(Ended {
                        run_id: s.run_id,
                        step: s.step.clone(),
                        decision: None,
                        decided_by: None,
                        at: self.now,
                        comment: None,
                    });
                }
            }
            if !s.status.is_final() {
                s.status = StepStatus::Cancelled;
                self.changed.insert(s.step.clone());
            }
        }
        self.ready.clear();
        self.holds.clear();
    }

    /// A step failed for good: the steps still open are cancelled and the on_failure steps
    /// start, with the failure as input; the run is failed once they are done (at once
    /// when there are none).
    fn finish_failed(&mut self) {
        self.cancel_open_steps(true);
        let version = self.version.clone();
        let mut started = false;
        for spec in version.manifest.steps.iter().filter(|s| s.on_failure) {
            if let Some(s) = self.steps.get_mut(&spec.id)
                && s.status == StepStatus::Waiting
            {
                s.status = StepStatus::Queued;
                s.attempt += 1;
                let attempt = s.attempt;
                self.ready.push(Ready { run_id: self.run.id, step: spec.id.clone(), attempt, not_before: None });
                self.changed.insert(spec.id.clone());
                started = true;
            }
        }
        self.run.status = if started { RunStatus::Running } else { RunStatus::Failed };
        self.run_changed = true;
    }

    /// Ends the run when nothing is left to do: failed when a step failed (its on_failure
    /// steps done), else succeeded (its on_failure steps skipped).
    fn finish_if_done(&mut self) {
        let version = self.version.clone();
        let handler = |id: &str| version.manifest.step(id).is_some_and(|s| s.on_failure);
        if self.error.is_some() {
            if self.steps.values().all(|s| s.status.is_final()) {
                self.run.status = RunStatus::Failed;
                self.run_changed = true;
            } else {
                self.settle();
            }
            return;
        }
        if self.steps.values().filter(|s| !handler(&s.step)).all(|s| s.status.is_final()) {
            for s in self.steps.values_mut().filter(|s| handler(&s.step) && !s.status.is_final()) {
                s.status = StepStatus::Skipped;
                self.changed.insert(s.step.clone());
            }
            self.run.status = RunStatus::Succeeded;
            self.run_changed = true;
        } else {
            self.settle();
        }
    }

    /// Settles waiting steps whose dependencies are final, until nothing changes (a skip
    /// can settle the steps after it), then finishes the run if every step is final.
    fn advance(&mut self) {
        let version = self.version.clone();
        let mut cannot_wait: Option<(String, String)> = None;
        loop {
            let mut progressed = false;
            for spec in version.manifest.steps.iter().filter(|s| !s.on_failure) {
                let Some(s) = self.steps.get(&spec.id) else {
                    continue;
                };
                if s.status != StepStatus::Waiting {
                    continue;
                }
                let mut all_final = true;
                let mut taken = false;
                for n in &spec.needs {
                    match self.steps.get(n) {
                        Some(d) if d.status == StepStatus::Succeeded => {
                            taken |= d.next.as_ref().is_none_or(|next| next.iter().any(|x| x == &spec.id));
                        }
                        Some(d) if d.status.is_final() => {}
                        _ => all_final = false,
                    }
                }
                if !all_final {
                    continue;
                }
                if taken && spec.kind().holds() {
                    let held = hold::hold(self.run.id, spec, &self.template_context(), self.now);
                    let s = self.steps.get_mut(&spec.id).expect("present");
                    // 1 on a run's first pass; after a retry, the attempt after its last
                    s.attempt += 1;
                    match held {
                        Ok(wait) => {
                            s.status = StepStatus::Held;
                            self.holds.push(wait);
                        }
                        Err(message) => {
                            s.status = StepStatus::Failed;
                            let err = StepError::permanent(StepErrorCode::BadWait, message.clone());
                            self.last_errors.insert(spec.id.clone(), serde_json::to_value(&err).unwrap_or(Value::Null));
                            cannot_wait.get_or_insert((spec.id.clone(), message));
                        }
                    }
                    self.changed.insert(spec.id.clone());
                    progressed = true;
                    continue;
                }
                let s = self.steps.get_mut(&spec.id).expect("present");
                if taken {
                    s.status = StepStatus::Queued;
                    s.attempt += 1;
                    let attempt = s.attempt;
                    self.ready.push(Ready { run_id: self.run.id, step: spec.id.clone(), attempt, not_before: None });
                } else {
                    s.status = StepStatus::Skipped;
                }
                self.changed.insert(spec.id.clone());
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        if let Some((step, message)) = cannot_wait {
            self.error = Some(RunError { step: Some(step), code: StepErrorCode::BadWait.to_string(), message });
            self.finish_failed();
            return;
        }
        self.finish_if_done();
    }

    /// The outputs of the succeeded steps a step needs: its `deps`.
    /// An on_failure step's is the run's failure, as `failure`.
    pub fn deps_of(&self, step: &str) -> BTreeMap<String, Arc<Value>> {
        let Some(spec) = self.version.manifest.step(step) else {
            return BTreeMap::new();
        };
        if spec.on_failure {
            let failure = serde_json::to_value(&self.error).unwrap_or(Value::Null);
            return BTreeMap::from([("failure".to_string(), Arc::new(failure))]);
        }
        spec.needs
            .iter()
            .filter_map(|n| {
                let d = self.steps.get(n)?;
                (d.status == StepStatus::Succeeded).then(|| (n.clone(), d.output.clone().unwrap_or_default()))
            })
            .collect()
    }

    /// Whether this batch started or ended a wait: its `run_waits` and approval rows are
    /// written only by a transaction that holds the run's lock.
    pub fn touches_waits(&self) -> bool {
        !self.holds.is_empty() || !self.released.is_empty() || !self.approvals_ended.is_empty()
    }

    /// The run and its steps as the rows written from [`RunMachine::updates`] hold them.
    pub fn into_state(self) -> (RunState, Vec<StepState>) {
        let mut run = self.run;
        run.error = self.error;
        (run, self.steps.into_values().collect())
    }

    pub fn take_ready(&mut self) -> Vec<Ready> {
        std::mem::take(&mut self.ready)
    }

    /// Row updates for everything that changed, and the run's update if it changed.
    /// Steps the caller sends at once get `fallback` as the dispatcher's due time.
    pub fn updates(&mut self, ready: &[Ready], fallback: DateTime<Utc>) -> (Vec<StepUpdate>, Option<RunUpdate>) {
        let mut steps = Vec::new();
        for id in std::mem::take(&mut self.changed) {
            let s = &self.steps[&id];
            let dispatch_after =
                ready.iter().find(|r| r.step == id && r.attempt == s.attempt).map(|r| r.not_before.unwrap_or(fallback));
            steps.push(StepUpdate {
                run_id: self.run.id,
                step: id.clone(),
                status: s.status,
                attempt: s.attempt,
                output: if s.status == StepStatus::Succeeded { s.output.clone() } else { None },
                error: self.last_errors.get(&id).cloned(),
                next: s.next.clone(),
                dispatch_after,
            });
        }
        if !std::mem::take(&mut self.run_changed) {
            return (steps, None);
        }
        let (result, rendered) = if self.run.status.is_final() {
            let result = (self.run.status == RunStatus::Succeeded).then(|| self.result());
            let rendered = self.render(result.as_deref());
            (result, Some(rendered))
        } else {
            (None, None)
        };
        let update =
            RunUpdate { id: self.run.id, status: self.run.status, result, rendered, error: self.error.clone() };
        (steps, Some(update))
    }

    /// The run's result: the chosen step's output, else the only final step's output,
    /// else an object of every final step's output.
    fn result(&self) -> Arc<Value> {
        let m = &self.version.manifest;
        let output = |id: &str| {
            self.steps
                .get(id)
                .filter(|s| s.status == StepStatus::Succeeded)
                .and_then(|s| s.output.clone())
                .unwrap_or_default()
        };
        if let Some(id) = &m.result.output {
            return output(id);
        }
        let sinks = m.sinks();
        if sinks.len() == 1 {
            return output(&sinks[0].id);
        }
        Arc::new(Value::Object(sinks.iter().map(|s| (s.id.clone(), Value::clone(&output(&s.id)))).collect()))
    }

    fn render(&self, result: Option<&Value>) -> String {
        let m = &self.version.manifest;
        let own = match self.run.status {
            RunStatus::Succeeded => m.result.template.as_deref(),
            RunStatus::Cancelled => None,
            _ => m.result.failure_template.as_deref(),
        };
        let context = RenderContext { machine: self, result };
        let Some(src) = own else {
            return defaults().for_status(self.run.status).render(&context);
        };
        // Validated at deploy; an unparsable template here would be a bug, so fall back to
        // the plain default rather than lose the completion.
        match Template::parse(src) {
            Ok(t) => t.render(&context),
            Err(_) => format!("{} {}", self.run.workflow, self.run.status),
        }
    }

    /// The run's completion for the bot. It carries the rendering only when the workflow
    /// has a template of its own: otherwise the bot writes the status line in the reader's
    /// language (the run's row keeps the English default for the API and the web app).
    pub fn completion(&self, rendered: String, result: Option<Arc<Value>>) -> Completion {
        let own = self.version.manifest.result.has_own_template(self.run.status);
        Completion {
            run_id: self.run.id,
            workflow: self.run.workflow.clone(),
            status: self.run.status,
            rendered: if own { rendered } else { String::new() },
            notify: self.run.notify.clone(),
            acting_user: self.run.acting_user,
            result,
            error: self.error.clone(),
            language: None,
        }
    }
}

/// A step as a template sees it under `steps.<id>`.
fn step_view(s: &StepState) -> Value {
    json!({"status": s.status, "output": s.output})
}

/// The templates a workflow without its own renders its run's end with, parsed once.
struct Defaults {
    succeeded: Template,
    failed: Template,
    cancelled: Template,
}

impl Defaults {
    fn for_status(&self, status: RunStatus) -> &Template {
        match status {
            RunStatus::Succeeded => &self.succeeded,
            RunStatus::Cancelled => &self.cancelled,
            _ => &self.failed,
        }
    }
}

fn defaults() -> &'static Defaults {
    static DEFAULTS: std::sync::LazyLock<Defaults> = std::sync::LazyLock::new(|| Defaults {
        succeeded: Template::parse(DEFAULT_SUCCESS_TEMPLATE).expect("a valid template"),
        failed: Template::parse(DEFAULT_FAILURE_TEMPLATE).expect("a valid template"),
        cancelled: Template::parse("{{workflow}} was cancelled.").expect("a valid template"),
    });
    &DEFAULTS
}

/// What a run's end renders with: `workflow`, `run_id`, `status`, `input`, `result`,
/// `error` and `steps.<id>.status` / `steps.<id>.output`, read from the machine where a
/// template names them (every run renders one, mostly a default naming one or two).
struct RenderContext<'a> {
    machine: &'a RunMachine,
    result: Option<&'a Value>,
}

impl Lookup for RenderContext<'_> {
    fn lookup(&self, path: &[String]) -> Option<Cow<'_, Value>> {
        let (first, rest) = path.split_first()?;
        let m = self.machine;
        let owned = |v: Value| walk(&v, rest).cloned().map(Cow::Owned);
        match first.as_str() {
            "workflow" => owned(Value::String(m.run.workflow.clone())),
            "run_id" => owned(Value::String(m.run.id.to_string())),
            "status" => owned(json!(m.run.status)),
            "input" => walk(&m.run.input, rest).map(Cow::Borrowed),
            "result" => walk(self.result?, rest).map(Cow::Borrowed),
            "error" => owned(json!(m.error)),
            "steps" => {
                let Some((id, rest)) = rest.split_first() else {
                    let all = m.steps.values().map(|s| (s.step.clone(), step_view(s)));
                    return Some(Cow::Owned(Value::Object(all.collect())));
                };
                let s = m.steps.get(id)?;
                match rest.split_first() {
                    None => Some(Cow::Owned(step_view(s))),
                    Some((field, rest)) if field == "status" => walk(&json!(s.status), rest).cloned().map(Cow::Owned),
                    Some((field, rest)) if field == "output" => walk(s.output.as_ref()?, rest).map(Cow::Borrowed),
                    Some(_) => None,
                }
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_concepts::manifest::Manifest;

    fn version(toml: &str) -> Arc<WorkflowVersion> {
        let manifest = Manifest::parse(toml).unwrap();
        Arc::new(WorkflowVersion {
            workflow: manifest.name.clone(),
            version: 1,
            label: manifest.version.clone(),
            components: manifest.steps.iter().map(|s| (s.component.clone(), "d".repeat(64))).collect(),
            manifest,
            deployed_by: None,
            deployed_at: Utc::now(),
        })
    }

    fn start(v: &Arc<WorkflowVersion>) -> RunMachine {
        let id = Uuid::now_v7();
        let run = RunState {
            id,
            workflow: v.workflow.clone(),
            version: 1,
            status: RunStatus::Queued,
            input: json!({"contact_id": 7}),
            acting_user: None,
            notify: None,
            error: None,
        };
        let initial = RunMachine::initial(v, id, &run.input, Utc::now()).unwrap();
        let run = RunState { status: initial.status, ..run };
        let steps = initial.steps.into_iter().map(|(step, status)| StepState {
            run_id: id,
            step,
            status,
            attempt: i32::from(status != StepStatus::Waiting),
            output: None,
            next: None,
        });
        RunMachine::new(v.clone(), run, steps)
    }

    const DRIP: &str = r#"
name = "drip"
version = "1"
[[steps]]
id = "welcome"
component = "c"
[[steps]]
id = "pause"
needs = ["welcome"]
wait = { until = "{{steps.welcome.output.at}}" }
[[steps]]
id = "ask"
component = "c"
needs = ["pause"]
"#;

    #[test]
    fn a_wait_holds_the_run_without_sending_anything_until_woken() {
        let v = version(DRIP);
        let mut m = start(&v);
        m.succeed("welcome", 1, json!({"at": "2030-01-01T00:00:00Z"}).into(), None);
        assert!(m.take_ready().is_empty(), "a wait goes to no worker");
        assert_eq!(status(&m, "pause"), StepStatus::Held);
        assert_eq!(m.run.status, RunStatus::Waiting);
        let (holds, released) = m.take_waits();
        assert_eq!(holds[0].wake_at.to_rfc3339(), "2030-01-01T00:00:00+00:00");
        assert!(released.is_empty());
        assert_eq!(m.wake("pause", &Wake::Time), Applied::Yes);
        assert_eq!(m.wake("pause", &Wake::Time), Applied::Stale, "a wait ends once");
        assert_eq!(m.take_ready()[0].step, "ask");
        assert_eq!(m.run.status, RunStatus::Running);
        assert_eq!(m.take_waits().1, vec![(m.run.id, "pause".to_string())]);
    }

    #[test]
    fn a_wait_that_cannot_tell_its_time_fails_the_run_and_cancel_releases_a_held_step() {
        let v = version(DRIP);
        let mut m = start(&v);
        m.succeed("welcome", 1, json!({"at": "soon"}).into(), None);
        assert_eq!(status(&m, "pause"), StepStatus::Failed);
        assert_eq!(m.run.status, RunStatus::Failed);
        assert_eq!(m.error.as_ref().unwrap().code, "bad_wait");

        let mut m = start(&v);
        m.succeed("welcome", 1, json!({"at": "2030-01-01T00:00:00Z"}).into(), None);
        m.take_waits();
        assert!(m.cancel());
        assert_eq!(status(&m, "pause"), StepStatus::Cancelled);
        assert_eq!(m.take_waits().1.len(), 1, "its run_waits row goes");
    }

    fn status(m: &RunMachine, step: &str) -> StepStatus {
        m.steps[step].status
    }

    const CHAIN: &str = r#"
name = "chain"
version = "1"
[[steps]]
id = "a"
component = "c"
retry = { max_attempts = 3, backoff = "100ms", max_backoff = "1s" }
[[steps]]
id = "b"
component = "c"
needs = ["a"]
[[steps]]
id = "c"
component = "c"
needs = ["b"]
[result]
template = "got {{steps.c.output.n}} from {{input.contact_id}}"
failure_template = "{{error.step}} broke: {{error.code}}"
"#;

    #[test]
    fn outputs_flow_along_the_chain_and_the_run_succeeds_with_rendered_text() {
        let v = version(CHAIN);
        let mut m = start(&v);
        assert_eq!(m.succeed("a", 1, json!({"n": 1}).into(), None), Applied::Yes);
        let ready = m.take_ready();
        assert_eq!(ready.iter().map(|r| r.step.as_str()).collect::<Vec<_>>(), vec!["b"]);
        assert_eq!(m.deps_of("b"), BTreeMap::from([("a".to_string(), Arc::new(json!({"n": 1})))]));
        assert_eq!(m.run.status, RunStatus::Running);
        m.succeed("b", 1, json!({"n": 2}).into(), None);
        m.succeed("c", 1, json!({"n": 3}).into(), None);
        let (steps, run) = m.updates(&[], Utc::now());
        assert_eq!(steps.len(), 3);
        let run = run.unwrap();
        assert_eq!(run.status, RunStatus::Succeeded);
        assert_eq!(run.result, Some(Arc::new(json!({"n": 3}))));
        assert_eq!(run.rendered.as_deref(), Some("got 3 from 7"));
    }

    #[test]
    fn a_runs_end_renders_what_the_whole_context_as_one_json_tree_would() {
        let v = version(CHAIN);
        let mut m = start(&v);
        m.succeed("a", 1, json!({"n": 1, "tags": ["x", "y"]}).into(), None);
        m.succeed("b", 1, json!("two").into(), None);
        m.fail("c", 1, &StepError::permanent(StepErrorCode::Trap, "no deal"), Utc::now(), 0.0);
        let result = json!({"n": 3});
        let steps: serde_json::Map<String, Value> =
            m.steps.values().map(|s| (s.step.clone(), json!({"status": s.status, "output": s.output}))).collect();
        let whole = json!({
            "workflow": m.run.workflow, "run_id": m.run.id, "status": m.run.status, "input": m.run.input,
            "result": result, "error": m.error, "steps": steps,
        });
        let every = "{{workflow}} {{run_id}} {{status}} {{input}} {{input.contact_id}} {{result}} {{result.n}} \
            {{error}} {{error.message}} {{error.step}} {{steps}} {{steps.a}} {{steps.a.status}} {{steps.a.output}} \
            {{steps.a.output.tags.1}} {{steps.b.output}} {{steps.c.output}} {{steps.c.status}} {{steps.zz.output}} \
            {{steps.a.other}} {{workflow.name}} {{nothing.here}} {{input.contact_id.more}}";
        let t = Template::parse(every).unwrap();
        let lazily = t.render(&RenderContext { machine: &m, result: Some(&result) });
        assert_eq!(lazily, t.render(&whole));
        assert!(lazily.contains("no deal") && lazily.contains(" y "), "{lazily}");
    }

    #[test]
    fn duplicate_and_late_results_are_stale() {
        let v = version(CHAIN);
        let mut m = start(&v);
        assert_eq!(m.succeed("a", 1, json!(1).into(), None), Applied::Yes);
        assert_eq!(m.succeed("a", 1, json!(2).into(), None), Applied::Stale);
        assert_eq!(m.succeed("b", 2, json!(2).into(), None), Applied::Stale);
        assert_eq!(m.steps["a"].output, Some(Arc::new(json!(1))));
    }

    #[test]
    fn retryable_errors_back_off_then_dead_letter_and_fail_the_run() {
        let v = version(CHAIN);
        let mut m = start(&v);
        let now = Utc::now();
        let err = StepError::retryable(StepErrorCode::Unavailable, "db down");
        assert_eq!(m.fail("a", 1, &err, now, 1.0), Applied::Yes);
        let r = m.take_ready();
        assert_eq!((r[0].attempt, r[0].not_before), (2, Some(now + chrono::Duration::milliseconds(100))));
        m.fail("a", 2, &err, now, 1.0);
        assert_eq!(m.take_ready()[0].not_before, Some(now + chrono::Duration::milliseconds(200)));
        m.fail("a", 3, &err, now, 1.0);
        assert!(m.take_ready().is_empty());
        assert_eq!(status(&m, "a"), StepStatus::DeadLetter);
        assert_eq!(status(&m, "b"), StepStatus::Cancelled);
        let (_, run) = m.updates(&[], now);
        let run = run.unwrap();
        assert_eq!(run.status, RunStatus::Failed);
        assert!(run.error.unwrap().message.contains("gave up after 3 attempts"));
        assert_eq!(run.rendered.as_deref(), Some("a broke: unavailable"));
    }

    #[test]
    fn a_retried_run_goes_on_from_its_failed_step_with_the_outputs_it_had() {
        let v = version(CHAIN);
        let mut m = start(&v);
        assert!(!m.retry(), "only a failed run is retried");
        m.succeed("a", 1, json!({"n": 1}).into(), None);
        m.take_ready();
        m.fail("b", 1, &StepError::permanent(StepErrorCode::Guest, "no contact"), Utc::now(), 0.5);
        assert_eq!((m.run.status, status(&m, "c")), (RunStatus::Failed, StepStatus::Cancelled));
        m.updates(&[], Utc::now());
        assert!(m.retry());
        assert_eq!(m.run.status, RunStatus::Running);
        let ready = m.take_ready();
        assert_eq!(ready.iter().map(|r| (r.step.as_str(), r.attempt)).collect::<Vec<_>>(), vec![("b", 2)]);
        assert_eq!(m.deps_of("b"), BTreeMap::from([("a".to_string(), Arc::new(json!({"n": 1})))]));
        assert_eq!(status(&m, "c"), StepStatus::Waiting);
        let (_, run) = m.updates(&ready, Utc::now());
        let run = run.unwrap();
        assert_eq!((run.status, run.error), (RunStatus::Running, None));
        assert!(!m.retry(), "a running run is not retried");
        m.succeed("b", 2, json!({"n": 2}).into(), None);
        assert_eq!(m.take_ready()[0].attempt, 1, "c never ran: its first attempt");
        m.succeed("c", 1, json!({"n": 3}).into(), None);
        assert_eq!(m.run.status, RunStatus::Succeeded);
    }

    const HANDLED: &str = r#"
name = "handled"
version = "1"
[[steps]]
id = "a"
component = "c"
[[steps]]
id = "b"
component = "c"
needs = ["a"]
[[steps]]
id = "tell"
component = "c"
on_failure = true
"#;

    #[test]
    fn on_failure_steps_run_with_the_failure_when_a_step_fails_and_are_skipped_otherwise() {
        let v = version(HANDLED);
        let mut m = start(&v);
        assert_eq!(m.take_ready().len(), 0, "the first ready steps go out with the insert");
        assert_eq!(status(&m, "tell"), StepStatus::Waiting);
        m.fail("a", 1, &StepError::permanent(StepErrorCode::Guest, "no deal 9"), Utc::now(), 0.5);
        assert_eq!((status(&m, "b"), status(&m, "tell")), (StepStatus::Cancelled, StepStatus::Queued));
        assert_eq!(m.run.status, RunStatus::Running, "failing, while its on_failure step runs");
        assert_eq!(m.take_ready()[0].step, "tell");
        assert_eq!(m.deps_of("tell")["failure"]["message"], "no deal 9");
        let (_, run) = m.updates(&[], Utc::now());
        assert_eq!(run.unwrap().error.unwrap().step.as_deref(), Some("a"), "the failure is kept meanwhile");
        m.succeed("tell", 1, json!({"told": true}).into(), None);
        assert_eq!(m.run.status, RunStatus::Failed);
        let (_, run) = m.updates(&[], Utc::now());
        assert_eq!(run.unwrap().error.unwrap().message, "no deal 9");

        let mut m = start(&v);
        m.succeed("a", 1, json!(1).into(), None);
        m.succeed("b", 1, json!(2).into(), None);
        assert_eq!((m.run.status, status(&m, "tell")), (RunStatus::Succeeded, StepStatus::Skipped));
        assert_eq!(*m.result(), json!(2), "an on_failure step is not a result");
    }

    #[test]
    fn permanent_errors_are_not_retried() {
        let v = version(CHAIN);
        let mut m = start(&v);
        m.fail("a", 1, &StepError::permanent(StepErrorCode::Guest, "no contact"), Utc::now(), 0.5);
        assert_eq!(status(&m, "a"), StepStatus::Failed);
        assert_eq!(m.run.status, RunStatus::Failed);
    }

    const BRANCH: &str = r#"
name = "branch"
version = "1"
[[steps]]
id = "score"
component = "c"
[[steps]]
id = "hot"
component = "c"
needs = ["score"]
[[steps]]
id = "cold"
component = "c"
needs = ["score"]
[[steps]]
id = "after_cold"
component = "c"
needs = ["cold"]
[[steps]]
id = "join"
component = "c"
needs = ["hot", "cold"]
"#;

    #[test]
    fn branching_skips_untaken_successors_and_joins_run_with_the_taken_branch() {
        let v = version(BRANCH);
        let mut m = start(&v);
        m.succeed("score", 1, json!({"grade": "hot"}).into(), Some(vec!["hot".into()]));
        assert_eq!(status(&m, "hot"), StepStatus::Queued);
        assert_eq!(status(&m, "cold"), StepStatus::Skipped);
        assert_eq!(status(&m, "after_cold"), StepStatus::Skipped);
        assert_eq!(status(&m, "join"), StepStatus::Waiting);
        m.succeed("hot", 1, json!("h").into(), None);
        assert_eq!(status(&m, "join"), StepStatus::Queued);
        assert_eq!(m.deps_of("join"), BTreeMap::from([("hot".to_string(), Arc::new(json!("h")))]));
        m.succeed("join", 1, json!("done").into(), None);
        assert_eq!(m.run.status, RunStatus::Succeeded);
    }

    #[test]
    fn choosing_a_step_that_is_not_a_successor_fails_the_step() {
        let v = version(BRANCH);
        let mut m = start(&v);
        m.succeed("score", 1, json!({}).into(), Some(vec!["join".into()]));
        assert_eq!(status(&m, "score"), StepStatus::Failed);
        assert_eq!(m.error.as_ref().unwrap().code, "bad_next");
    }

    #[test]
    fn cancel_ends_open_steps_and_ignores_later_results() {
        let v = version(CHAIN);
        let mut m = start(&v);
        assert!(m.cancel());
        assert!(!m.cancel());
        assert_eq!(status(&m, "a"), StepStatus::Cancelled);
        assert_eq!(m.succeed("a", 1, json!(1).into(), None), Applied::Stale);
        let (_, run) = m.updates(&[], Utc::now());
        assert_eq!(run.unwrap().status, RunStatus::Cancelled);
    }
}
