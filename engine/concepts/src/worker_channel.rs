//! What a worker and the engine say to each other over the workers' channel (HTTP, the
//! worker authenticated by its worker credential). A worker has no other way in: no
//! database, no user token.
//!
//! - `GET  /worker/v1/hello` → [`Hello`]: the key jobs are signed with;
//! - `GET  /worker/v1/components` → [`CurrentComponents`]: what the current versions run,
//!   for a worker to compile before their first job;
//! - `GET  /worker/v1/components/{digest}` → the component's bytes;
//! - `POST /worker/v1/calls` [`CallRequest`] → [`CallAnswer`]: one host call of an attempt;
//! - `POST /worker/v1/confirm` [`ConfirmRequest`] → 204 once the attempt of a provisional
//!   job is recorded (403 if it never will be): asked before its first outbound request;
//! - `POST /worker/v1/results` [`ResultsRequest`] → 204 once the results are committed.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::host_call::{HostCall, HostCallError, HostReply};
use crate::step::TicketedResult;

pub const HELLO: &str = "/worker/v1/hello";
pub const COMPONENTS: &str = "/worker/v1/components";
pub const CALLS: &str = "/worker/v1/calls";
pub const RESULTS: &str = "/worker/v1/results";
pub const CONFIRM: &str = "/worker/v1/confirm";

/// Asks whether a provisional job's attempt is recorded, so its step may act outside its
/// sandbox (see `StepJob::provisional`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    pub ticket: String,
    /// what is left of the step's deadline: the engine waits no longer for the record
    pub remaining_ms: u64,
}

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
}
