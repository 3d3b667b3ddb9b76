//! The host side of every `crm:automation` import. Each checks the step's grant first;
//! those that reach outside the sandbox become one [`HostCall`] through [`StepState::serve`].

pub mod http;
mod records;
mod workflow;

use crm_concepts::host_call::{HostCall, HostCallError, HostReply};

use crate::bindings::HostError;
use crate::convert;
use crate::error::Diverged;
use crate::host_calls::HostCalls;
use crate::state::StepState;

impl<H: HostCalls> StepState<H> {
    /// Checks the grant (a missing one traps, so the guest cannot carry on), then the call's
    /// own arguments, then asks the host; `read` picks the reply shape the import returns.
    pub(crate) async fn serve<T>(
        &mut self,
        call: HostCall,
        read: impl FnOnce(HostReply) -> Option<T>,
    ) -> wasmtime::Result<Result<T, HostError>> {
        self.require(call.capability())?;
        if let Err(e) = call.check() {
            return Ok(Err(convert::host_error(e)));
        }
        let write_seq = call.is_write().then(|| {
            self.writes += 1;
            self.writes
        });
        let name = call.name();
        let reply = self.host.call(&self.cx, write_seq, call).await;
        Ok(match reply {
            Ok(reply) => read(reply)
                .ok_or_else(|| HostError::Unavailable(format!("the host sent the wrong kind of reply to {name}"))),
            // Not the guest's to handle: carrying on after a refused repeat could write twice.
            Err(HostCallError::Diverged(why)) => return Err(Diverged(why).into()),
            Err(e) => Err(convert::host_error(e)),
        })
    }
}
