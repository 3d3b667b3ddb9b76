//! A step's host calls, answered by the engine over the worker's channel. A call that
//! cannot reach the engine is tried again until the step's deadline: an engine restart
//! costs a step some seconds, not its run. Writes are safe to send twice: the engine
//! journals them by the attempt's write number.

use std::time::{Duration, Instant};

use crm_concepts::host_call::{HostCall, HostCallError, HostReply};
use crm_concepts::worker_channel::CallRequest;
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

impl HostCalls for EngineHost {
    async fn call(&self, cx: &CallContext, write_seq: Option<u32>, call: HostCall) -> Result<HostReply, HostCallError> {
        let mut request = CallRequest { ticket: cx.ticket.clone(), write_seq, remaining_ms: 0, call };
        let mut backoff = Duration::from_millis(20);
        loop {
            let left = cx.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(HostCallError::Unavailable("the step's deadline passed waiting for the engine".into()));
            }
            request.remaining_ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX).max(1);
            match self.channel.call(&request, left).await {
                Ok(answer) => return answer,
                Err(e) if e.is_retryable() => {
                    tracing::debug!(step = %cx.key.step, "host call failed, retrying in {backoff:?}: {e}");
                    tokio::time::sleep(backoff.min(left)).await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                }
                Err(e @ (ChannelError::Refused(_) | ChannelError::NoComponent(_))) => {
                    tracing::warn!(run = %cx.key.run_id, step = %cx.key.step, "the engine refused a host call: {e}");
                    return Err(HostCallError::Unavailable(e.to_string()));
                }
                Err(e) => return Err(HostCallError::Unavailable(e.to_string())),
            }
        }
    }
}
