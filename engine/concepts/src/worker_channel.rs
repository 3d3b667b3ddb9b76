//! What a worker and the engine say to each other over the workers' channel (HTTP, the
//! worker authenticated by its worker credential). A worker has no other way in: no
//! database, no user token.
//!
//! - `GET  /worker/v1/hello` → [`Hello`]: the key jobs are signed with;
//! - `GET  /worker/v1/components` → [`CurrentComponents`]: what the current versions run,
//!   for a worker to compile before their first job;
//! - `GET  /worker/v1/components/{digest}` → the component's bytes;
//! - `POST /worker/v1/calls` [`CallRequest`] → [`CallAnswer`]: one host call of an attempt;
//! - `POST /worker/v1/results` [`ResultsRequest`] → [`ResultsAnswer`] once the results are
//!   committed: the steps they made ready that the engine handed to this worker.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::host_call::{HostCall, HostCallError, HostReply};
use crate::step::TicketedResult;

pub const HELLO: &str = "/worker/v1/hello";
pub const COMPONENTS: &str = "/worker/v1/components";
pub const CALLS: &str = "/worker/v1/calls";
pub const RESULTS: &str = "/worker/v1/results";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Hello {
    /// the engine's Ed25519 public key, hex: a job whose signature does not verify under
    /// it is refused
    pub public_key: String,
}

/// The components of every enabled workflow's current version: a worker compiles (or
/// reloads from its disk cache) each one it has not prepared yet, so no run waits for a
/// compile after a deploy or a worker restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CurrentComponents {
    /// SHA-256 digests, sorted
    pub digests: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallRequest {
    pub ticket: String,
    /// the call's position among the attempt's writes; absent for reads
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_seq: Option<u32>,
    /// what is left of the step's deadline: the engine's work for the call is bounded by it
    pub remaining_ms: u64,
    pub call: HostCall,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallAnswer {
    Ok(HostReply),
    Err(HostCallError),
}

impl From<Result<HostReply, HostCallError>> for CallAnswer {
    fn from(r: Result<HostReply, HostCallError>) -> CallAnswer {
        match r {
            Ok(reply) => CallAnswer::Ok(reply),
            Err(e) => CallAnswer::Err(e),
        }
    }
}

impl From<CallAnswer> for Result<HostReply, HostCallError> {
    fn from(a: CallAnswer) -> Self {
        match a {
            CallAnswer::Ok(reply) => Ok(reply),
            CallAnswer::Err(e) => Err(e),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResultsRequest {
    pub results: Vec<TicketedResult>,
    /// how many of the steps these results make ready the worker will start at once;
    /// absent: none, every next step goes through the shared jobs stream
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub take: Option<Take>,
}

/// A worker's offer to run next steps straight away, in its consumer's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Take {
    /// the worker's consumer name in the jobs group: a handed step is pending in that name,
    /// so that another worker takes it over if this one dies
    pub consumer: String,
    /// most steps to hand over (the worker's free slots)
    pub most: u32,
}

/// Longest consumer name a worker may give.
pub const MAX_CONSUMER_LEN: usize = 200;
/// Most steps one answer hands over, whatever a worker offers.
pub const MAX_TAKE: u32 = 4096;

impl Take {
    /// Why the engine will not hand steps to this offer, if it will not.
    pub fn check(&self) -> Result<(), String> {
        if self.consumer.is_empty() || self.consumer.len() > MAX_CONSUMER_LEN {
            return Err(format!("a consumer name has 1 to {MAX_CONSUMER_LEN} bytes, not {}", self.consumer.len()));
        }
        if self.consumer.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(format!("the consumer name {:?} has a space or control character", self.consumer));
        }
        if self.most > MAX_TAKE {
            return Err(format!("a worker may take at most {MAX_TAKE} steps at once, not {}", self.most));
        }
        Ok(())
    }
}

/// The answer to handed-in results, once they are committed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ResultsAnswer {
    /// steps the results made ready, handed to this worker (at most what it offered to
    /// take): already pending in its name on the handed jobs stream
    pub jobs: Vec<HandedJob>,
}

/// A job as the engine hands it over: what it put on the handed stream, so the worker
/// checks it exactly as a job it read there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HandedJob {
    /// the entry on the handed stream, which the worker acks
    pub entry: String,
    /// the signed job (JSON)
    pub payload: String,
    pub signature: String,
    /// when the engine handed it, µs since the Unix epoch
    pub sent_us: u64,
}
