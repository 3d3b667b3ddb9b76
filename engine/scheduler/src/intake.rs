//! What workers send the engine, and the checks it passes before anything is done: every
//! host call and every result names its attempt's ticket, which must be this engine's;
//! a host call must also be within the ticket's lifetime and allowed by what the deployed
//! version grants the step, whatever the worker believed. A worker is trusted to run
//! sandboxed code, never to decide what that code may do.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;
use crm_concepts::host_call::{HostCall, HostCallError, HostReply};
use crm_concepts::step::{LogLine, StepOutcome, StepResult, TicketedResult};
use crm_store::host_calls::{self, Caller};
use crm_store::secrets::Namespace;
use crm_trust::{SentAhead, Ticket, TicketError};
use tokio::sync::oneshot;

use crate::confirmer::Key;
use crate::core::Core;
use crate::provisional::Verdict;
use crate::redaction;

/// Results handed in by one request, and where to say which of them the applier could not
/// take yet (see [`Handed::unseen_since_ms`]); the rest are applied.
pub(crate) struct Arrival {
    pub results: Vec<Handed>,
    pub reply: oneshot::Sender<Result<Vec<Handed>, String>>,
}

/// A result that passed its ticket's checks.
#[derive(Clone)]
pub(crate) struct Handed {
    /// shared between the request that handed it in (which may have to hand it in again)
    /// and the applier
    pub result: Arc<StepResult>,
    /// set when the step was sent ahead of its record by a write this engine did not see
    /// end (another engine's, or its own before a restart): milliseconds since the epoch
    /// when it left. The applier reads the record under the run's lock; until the write
    /// has committed it hands the result back, to be handed in again.
    pub unseen_since_ms: Option<i64>,
}

impl Handed {
    pub fn key(&self) -> Key {
        (self.result.key.run_id, self.result.key.step.clone(), self.result.key.attempt as i32)
    }
}

/// Why the engine did not serve a worker's request.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// the ticket or the call is not one the engine would ever allow: nothing was done
    #[error("refused: {0}")]
    Refused(String),
    /// the engine cannot take it now (shutting down, the database down): send it again
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<TicketError> for IntakeError {
    fn from(e: TicketError) -> IntakeError {
        IntakeError::Refused(e.to_string())
    }
}

/// Most log lines and log bytes the engine stores for one attempt, whatever a worker
/// sends: the runtime caps logs far below this, so only a broken or hostile worker hits it.
const MAX_LOG_LINES: usize = 10_000;
const MAX_LOG_BYTES: usize = 8 << 20;
/// Most output the engine stores for one attempt (the largest `output_bytes` a manifest
/// may set is far below).
const MAX_OUTPUT_BYTES: usize = 16 << 20;

fn ticket_for(core: &Core, ticket: &str) -> Result<Ticket, IntakeError> {
    Ok(core.key.check(ticket)?)
}

/// Longest a call, a confirmation or a result of a provisional attempt waits for the write
/// that records it, which has normally committed by the time they arrive.
const LONGEST_WAIT_FOR_RECORD: Duration = Duration::from_secs(10);

/// What is left of a step's deadline, as long as a call may wait for its record.
fn wait_for_record(remaining_ms: u64) -> Duration {
    Duration::from_millis(remaining_ms.max(1)).min(LONGEST_WAIT_FOR_RECORD)
}

/// What this engine knows, without asking Postgres, of a provisional attempt's record.
enum Standing {
    Recorded,
    Void,
    /// sent by another engine, or by this one before it restarted
    Unseen(SentAhead),
}

/// Whether the attempt a ticket names is recorded, as far as this engine's own writes tell,
/// waiting up to `wait` for one in flight. A ticket not sent provisionally was recorded
/// before it left.
async fn standing(core: &Core, t: &Ticket, wait: Duration) -> Result<Standing, IntakeError> {
    let Some(sent) = t.provisional else { return Ok(Standing::Recorded) };
    let key = (t.run_id, t.step.clone(), t.attempt as i32);
    match core.provisional.verdict(&key, sent.dispatch, wait).await {
        Some(Verdict::Recorded) => Ok(Standing::Recorded),
        Some(Verdict::Void) => Ok(Standing::Void),
        Some(Verdict::Undecided) => Err(still_writing()),
        None => Ok(Standing::Unseen(sent)),
    }
}

fn still_writing() -> IntakeError {
    IntakeError::Unavailable("the attempt's record is still being written".into())
}

/// Pauses between looks at a record another engine is writing: doubling from `first` up
/// to `most`, until `wait` is spent, then "still being written".
struct Patience {
    deadline: tokio::time::Instant,
    pause: Duration,
    most: Duration,
}

impl Patience {
    fn new(wait: Duration, first: Duration, most: Duration) -> Patience {
        Patience { deadline: tokio::time::Instant::now() + wait, pause: first, most }
    }

    async fn pause(&mut self) -> Result<(), IntakeError> {
        if tokio::time::Instant::now() + self.pause > self.deadline {
            return Err(still_writing());
        }
        tokio::time::sleep(self.pause).await;
        self.pause = (self.pause * 2).min(self.most);
        Ok(())
    }
}

/// Whether the attempt a provisional ticket names is recorded, waiting up to `wait` for
/// a write in flight, and asking Postgres about a write this engine did not see.
async fn recorded(core: &Core, t: &Ticket, wait: Duration) -> Result<bool, IntakeError> {
    let sent = match standing(core, t, wait).await? {
        Standing::Recorded => return Ok(true),
        Standing::Void => return Ok(false),
        Standing::Unseen(sent) => sent,
    };
    // Postgres knows once the statement has committed, and "not yet" becomes "never" once
    // it cannot be running.
    let mut patience = Patience::new(wait, Duration::from_millis(1), Duration::from_millis(200));
    loop {
        let recorded = crm_store::runs::attempt_recorded(&core.pool, t.run_id, &t.step, t.attempt as i32)
            .await
            .map_err(|e| IntakeError::Unavailable(format!("reading whether the attempt is recorded: {e}")))?;
        if recorded {
            return Ok(true);
        }
        if crate::provisional::past_its_write(sent.sent_at_ms) {
            return Ok(false);
        }
        patience.pause().await?;
    }
}

const NEVER_RECORDED: &str =
    "the attempt was sent ahead of its record, and its run changed before the record was written: it may do nothing";

/// Returns once the attempt `ticket` names is recorded, so its step may act outside its
/// sandbox.
pub(crate) async fn confirm(core: &Core, ticket: &str, remaining_ms: u64) -> Result<(), IntakeError> {
    let t = ticket_for(core, ticket)?;
    if Utc::now().timestamp_millis() > t.expires_at_ms {
        return Err(TicketError::Expired.into());
    }
    if !recorded(core, &t, wait_for_record(remaining_ms)).await? {
        return Err(IntakeError::Refused(NEVER_RECORDED.into()));
    }
    Ok(())
}

/// Serves one host call for the attempt `ticket` names.
pub(crate) async fn host_call(
    core: &Core,
    ticket: &str,
    write_seq: Option<u32>,
    remaining_ms: u64,
    call: HostCall,
) -> Result<Result<HostReply, HostCallError>, IntakeError> {
    let refuse = |why: String| {
        core.metrics.host_calls_refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("refused a host call: {why}");
        IntakeError::Refused(why)
    };
    let t = ticket_for(core, ticket).map_err(|e| refuse(e.to_string()))?;
    let now = Utc::now().timestamp_millis();
    if now > t.expires_at_ms {
        return Err(refuse(TicketError::Expired.to_string()));
    }
    let version = core
        .versions
        .get(&t.workflow, t.version)
        .await
        .map_err(|e| IntakeError::Unavailable(format!("reading the workflow version: {e}")))?;
    let Some(spec) = version.manifest.step(&t.step) else {
        return Err(refuse(format!("workflow {} v{} has no step {:?}", t.workflow, t.version, t.step)));
    };
    if let Err(missing) = spec.grants().require(call.capability()) {
        return Err(refuse(format!("step {:?} of {}: {missing}", t.step, t.workflow)));
    }
    // Writes are numbered so that a repeated attempt is answered from the journal; a write
    // without its number would escape the journal, and a numbered read means a confused
    // worker.
    match (call.is_write(), write_seq) {
        (true, None) => return Err(refuse(format!("{} is a write and carries no write number", call.name()))),
        (false, Some(_)) => return Err(refuse(format!("{} is a read and carries a write number", call.name()))),
        _ => {}
    }
    if let Err(e) = call.check() {
        return Ok(Err(e));
    }
    if !recorded(core, &t, wait_for_record(remaining_ms)).await? {
        return Err(refuse(NEVER_RECORDED.into()));
    }
    core.metrics.host_calls.fetch_add(1, Ordering::Relaxed);
    let caller = Caller {
        run_id: t.run_id,
        step: &t.step,
        attempt: t.attempt as i32,
        workflow: &t.workflow,
        acting_user: t.acting_user,
        vault: &core.config.vault,
    };
    let budget = remaining_ms.min(u64::try_from(t.expires_at_ms - now).unwrap_or(0)).max(1);
    if host_calls::is_plain_read(&call) {
        return Ok(host_calls::read(&core.reads_pool, &caller, call, budget).await);
    }
    Ok(host_calls::serve(&core.pool, &caller, write_seq, call, budget).await)
}

/// Checks results against their tickets and hands them to an applier; returns once they
/// are applied (committed), so the worker may ack their jobs.
pub(crate) async fn results(core: &Core, batch: Vec<TicketedResult>) -> Result<(), IntakeError> {
    let mut results = Vec::with_capacity(batch.len());
    let received_us = crm_concepts::timeline::now_us();
    for TicketedResult { ticket, mut result } in batch {
        result.usage.timeline.received_us = received_us;
        let t = match ticket_for(core, &ticket) {
            Ok(t) => t,
            Err(e) => {
                core.metrics.results_refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(run = %result.key.run_id, step = %result.key.step, "refused a result: {e}");
                continue;
            }
        };
        // A ticket is bound to one attempt; a result may not borrow another's.
        if (t.run_id, t.step.as_str(), t.attempt) != (result.key.run_id, result.key.step.as_str(), result.key.attempt) {
            core.metrics.results_refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(run = %result.key.run_id, step = %result.key.step, "refused a result: {}", TicketError::Mismatch);
            continue;
        }
        let unseen_since_ms = match standing(core, &t, LONGEST_WAIT_FOR_RECORD).await? {
            Standing::Recorded => None,
            Standing::Void => {
                // Its step runs again as the write that does record it sent it.
                core.metrics.results_stale.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(run = %result.key.run_id, step = %result.key.step, "dropped the result of a voided provisional attempt");
                continue;
            }
            Standing::Unseen(sent) => Some(sent.sent_at_ms),
        };
        result.usage.timeline.recorded_us = crm_concepts::timeline::now_us();
        metrics::histogram!("crm_step_duration_seconds", "workflow" => t.workflow.clone(), "step" => t.step.clone())
            .record(result.usage.duration_us as f64 / 1e6);
        bound(&mut result);
        redact(core, &t, &mut result).await?;
        results.push(Handed { result: Arc::new(result), unseen_since_ms });
    }
    // The applier hands back results whose record another engine's write has not
    // committed yet; they go again, the next time with the batch after.
    let mut patience = Patience::new(LONGEST_WAIT_FOR_RECORD, Duration::from_micros(500), Duration::from_millis(100));
    loop {
        if results.is_empty() {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        core.arrivals
            .send(Arrival { results, reply })
            .await
            .map_err(|_| IntakeError::Unavailable("the engine is shutting down".into()))?;
        results = answer
            .await
            .map_err(|_| IntakeError::Unavailable("the engine is shutting down".into()))?
            .map_err(IntakeError::Unavailable)?;
        if !results.is_empty() {
            core.metrics.results_before_record.fetch_add(results.len() as u64, Ordering::Relaxed);
            patience.pause().await?;
        }
    }
}

/// How long `value` is as compact JSON, without writing it anywhere.
fn json_len(value: &serde_json::Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // writing to a counter cannot fail, and a JSON value always serializes
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// Cuts the values of the step's granted secrets out of its result (see `redaction`).
async fn redact(core: &Core, t: &Ticket, result: &mut StepResult) -> Result<(), IntakeError> {
    let version = core
        .versions
        .get(&t.workflow, t.version)
        .await
        .map_err(|e| IntakeError::Unavailable(format!("reading the workflow version: {e}")))?;
    let names = version.manifest.step(&t.step).map(|s| redaction::granted(&s.capabilities)).unwrap_or_default();
    if names.is_empty() {
        return Ok(());
    }
    let secrets = crm_store::secrets::reveal_many(&core.pool, &core.config.vault, Namespace::Step, &names)
        .await
        .map_err(|e| IntakeError::Unavailable(format!("reading the step's secrets to redact them: {e}")))?;
    let cut = redaction::scrub(result, &secrets);
    if cut > 0 {
        tracing::info!(run = %t.run_id, step = %t.step, cut, "secret values redacted from a step's result");
    }
    Ok(())
}

/// What a worker says is believed only within bounds: an oversized log is cut, an
/// oversized output becomes the step's failure.
fn bound(result: &mut StepResult) {
    let mut bytes = 0;
    let mut keep = 0;
    for line in &result.logs {
        bytes += line.message.len() + json_len(&line.fields);
        if keep >= MAX_LOG_LINES || bytes > MAX_LOG_BYTES {
            break;
        }
        keep += 1;
    }
    if keep < result.logs.len() {
        let dropped = result.logs.len() - keep;
        result.logs.truncate(keep);
        result.logs.push(LogLine {
            level: crm_concepts::step::LogLevel::Warn,
            message: format!("{dropped} log line(s) dropped by the engine: over its cap per attempt"),
            fields: serde_json::Value::Null,
        });
    }
    if let StepOutcome::Ok { output, .. } = &result.outcome
        && json_len(output) > MAX_OUTPUT_BYTES
    {
        result.outcome = StepOutcome::Failed {
            error: crm_concepts::step::StepError::permanent(
                crm_concepts::step::StepErrorCode::OutputTooLarge,
                format!("the worker reported an output over the engine's {MAX_OUTPUT_BYTES} byte cap"),
            ),
        };
    }
}
