//! An attempt's ticket: what the engine dispatched, bound under its MAC.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The claims of one attempt's ticket. The grants are not among them on purpose: the
/// engine looks them up in the deployed version for every call, so a ticket can only ever
/// do what the manifest of `workflow` version `version` grants to `step`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub run_id: Uuid,
    pub step: String,
    pub attempt: u32,
    pub workflow: String,
    pub version: i32,
    pub acting_user: Option<i64>,
    /// milliseconds since the epoch after which no host call is served for the attempt
    pub expires_at_ms: i64,
    /// set when the job left before the statement recording its attempt had committed. The
    /// attempt's host calls, outbound requests and result wait for the engine's word that
    /// the statement committed (and are refused if it never does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisional: Option<SentAhead>,
}

/// A dispatch that left ahead of the statement recording its attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentAhead {
    /// tells this dispatch from another of the same attempt
    pub dispatch: u64,
    /// milliseconds since the epoch when it left: an engine that did not send it reads the
    /// attempt's record from Postgres, and takes "not recorded" as final only once no
    /// statement could still be on its way
    pub sent_at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("the attempt ticket is malformed")]
    Malformed,
    #[error("the attempt ticket was not issued by this engine")]
    Forged,
    #[error("the attempt ticket has expired")]
    Expired,
    #[error("the attempt ticket belongs to another attempt")]
    Mismatch,
}
