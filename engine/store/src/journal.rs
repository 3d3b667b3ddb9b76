//! The host-call journal: every write a step made, by (run, step, write number). It is what
//! makes step effects exactly once without the component's help: a worker killed after a
//! write and before its result, a redelivered job, a retry after a transient failure all
//! make the same writes again, and each gets the reply of the first time instead of
//! writing twice. The rule, as `docs/workflows.md` states it:
//!
//! - a step's writes are numbered 1, 2, 3… in the order each attempt makes them; reads are
//!   not numbered and always see the current data;
//! - the n-th write of an attempt is *the same write* as a journaled n-th write when it
//!   calls the same function on the same target (`HostCall::target`); its arguments may
//!   differ (a due date computed from the clock), and the journaled reply is returned;
//! - a different function or target at a journaled position means the retry diverged: the
//!   step fails with `replay_diverged` and nothing is written;
//! - a write that failed wrote nothing and is not journaled: a repeat tries it again.

use crm_concepts::host_call::{HostCall, HostCallError, HostReply};
use serde_json::Value;
use sqlx::PgConnection;

use crate::error::StoreError;
use crate::host_calls::{Caller, apply};

pub(crate) enum Journaled {
    /// the write was made before; this is its reply (or why the repeat is refused)
    Recorded(Result<HostReply, HostCallError>),
    /// the write was made now, in the caller's transaction, together with its entry
    Applied(HostReply),
    /// another attempt journaled this write while this one made it: roll back and read
    /// theirs
    Raced,
}

pub(crate) async fn lookup(
    conn: &mut PgConnection,
    caller: &Caller<'_>,
    seq: u32,
    call: &HostCall,
) -> Result<Option<Result<HostReply, HostCallError>>, StoreError> {
    let row: Option<(String, Value)> =
        sqlx::query_as("SELECT target, reply FROM host_call_journal WHERE run_id = $1 AND step = $2 AND seq = $3")
            .bind(caller.run_id)
            .bind(caller.step)
            .bind(seq as i32)
            .fetch_optional(conn)
            .await?;
    let Some((target, reply)) = row else { return Ok(None) };
    if target != call.target() {
        return Ok(Some(Err(HostCallError::Diverged(format!(
            "write #{seq} of this step was `{target}` in an earlier attempt, and is `{}` now; a retried step must \
             make its writes in the same order",
            call.target()
        )))));
    }
    let reply: HostReply = serde_json::from_value(reply)
        .map_err(|e| StoreError::Db(sqlx::Error::Decode(format!("a journaled reply: {e}").into())))?;
    Ok(Some(Ok(reply)))
}

pub(crate) async fn serve(
    conn: &mut PgConnection,
    caller: &Caller<'_>,
    seq: u32,
    call: HostCall,
) -> Result<Journaled, StoreError> {
    if let Some(recorded) = lookup(conn, caller, seq, &call).await? {
        return Ok(Journaled::Recorded(recorded));
    }
    let target = call.target();
    let call_json = serde_json::to_value(&call).unwrap_or(Value::Null);
    let reply = apply(conn, caller, call).await?;
    // ON CONFLICT waits for a concurrent attempt's entry to commit and then does nothing:
    // that attempt made this write first, and this transaction's copy must be undone.
    let inserted = sqlx::query(
        "INSERT INTO host_call_journal (run_id, step, seq, attempt, target, call, reply)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(caller.run_id)
    .bind(caller.step)
    .bind(seq as i32)
    .bind(caller.attempt)
    .bind(&target)
    .bind(&call_json)
    .bind(serde_json::to_value(&reply).unwrap_or(Value::Null))
    .execute(conn)
    .await?
    .rows_affected();
    Ok(if inserted == 1 { Journaled::Applied(reply) } else { Journaled::Raced })
}
