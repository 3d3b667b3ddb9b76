//! Who answers a step's host calls. The runtime checks the step's grants and turns each
//! import into a [`HostCall`]; a [`HostCalls`] implementation answers it: in a worker, the
//! engine over its authenticated channel (which re-checks the grant and journals writes);
//! in `crm component run`, the in-memory CRM of a fixture.

use std::future::Future;
use std::time::Instant;

use crm_concepts::host_call::{HostCall, HostCallError, HostReply};
use crm_concepts::step::AttemptKey;

/// Which attempt a call is made for, and until when it may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallContext {
    pub key: AttemptKey,
    pub workflow: String,
    /// the CRM user the run acts for; writes are attributed to them
    pub acting_user: Option<i64>,
    /// the engine's credential for this attempt, sent back with every call (empty when a
    /// step runs locally)
    pub ticket: String,
    /// the step's wall-clock deadline: no call outlives it
    pub deadline: Instant,
    /// the attempt may not be recorded yet: [`HostCalls::confirm`] it before anything
    /// leaves the sandbox other than through [`HostCalls::call`] (which the engine holds
    /// back itself)
    pub provisional: bool,
}

pub trait HostCalls: Send + Sync + 'static {
    /// Answers one call. `write_seq` is the call's 1-based position among the attempt's
    /// writes (`None` for reads): the engine journals writes under it, so a repeated
    /// attempt that makes the same write again gets the first reply back.
    fn call(
        &self,
        cx: &CallContext,
        write_seq: Option<u32>,
        call: HostCall,
    ) -> impl Future<Output = Result<HostReply, HostCallError>> + Send;

    /// Returns once the attempt is recorded, so its step may act outside its sandbox; an
    /// error when it never will be (its run changed before the record was written). Asked
    /// only for a [`CallContext::provisional`] attempt; a local host records nothing and
    /// has nothing to wait for.
    fn confirm(&self, cx: &CallContext) -> impl Future<Output = Result<(), HostCallError>> + Send {
        let _ = cx;
        async { Ok(()) }
    }
}
