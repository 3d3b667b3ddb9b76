//! A step's host calls, answered by the engine over the worker's channel. A call that
//! cannot reach the engine is tried again until the step's deadline: an engine restart
//! costs a step some seconds, not its run. Writes are safe to send twice: the engine
//! journals them by the attempt's write number.

use std::future::Future;
use std::time::{Duration, Instant};

use crm_concepts::host_call::{HostCall, HostCallError, HostReply};
use crm_concepts::worker_channel::{CallRequest, ConfirmRequest};
use crm_runtime::{CallContext, HostCalls};

use crate::channel::{ChannelError, EngineChannel};

pub struct EngineHost {
    channel: EngineChannel,
}

impl EngineHost {
    pub fn new(channel: EngineChannel) -> EngineHost {
        EngineHost { channel }
    }
}

/// Sends a request to the engine until it answers or the step's deadline passes; `send`
/// gets what is left of the deadline.
async fn until_answered<T, F>(cx: &CallContext, what: &str, send: impl Fn(Duration) -> F) -> Result<T, HostCallError>
where
    F: Future<Output = Result<T, ChannelError>>,
{
    let mut backoff = Duration::from_millis(20);
    loop {
        let left = cx.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HostCallError::Unavailable(format!(
                "the step's deadline passed waiting for the engine ({what})"
            )));
        }
        match send(left).await {
            Ok(answer) => return Ok(answer),
            Err(e) if e.is_retryable() => {
                tracing::debug!(step = %cx.key.step, "{what} failed, retrying in {backoff:?}: {e}");
                tokio::time::sleep(backoff.min(left)).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
            }
            Err(e @ (ChannelError::Refused(_) | ChannelError::NoComponent(_))) => {
                tracing::warn!(run = %cx.key.run_id, step = %cx.key.step, "the engine refused {what}: {e}");
                return Err(HostCallError::Unavailable(e.to_string()));
            }
            Err(e) => return Err(HostCallError::Unavailable(e.to_string())),
        }
    }
}

fn remaining_ms(left: Duration) -> u64 {
    u64::try_from(left.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl HostCalls for EngineHost {
    async fn call(&self, cx: &CallContext, write_seq: Option<u32>, call: HostCall) -> Result<HostReply, HostCallError> {
        until_answered(cx, "a host call", |left| {
            let request = CallRequest {
                ticket: cx.ticket.clone(),
                write_seq,
                remaining_ms: remaining_ms(left),
                call: call.clone(),
            };
            async move { self.channel.call(&request, left).await }
        })
        .await?
    }

    async fn confirm(&self, cx: &CallContext) -> Result<(), HostCallError> {
        until_answered(cx, "the attempt's confirmation", |left| {
            let request = ConfirmRequest { ticket: cx.ticket.clone(), remaining_ms: remaining_ms(left) };
            async move { self.channel.confirm(&request, left).await }
        })
        .await
    }
}
