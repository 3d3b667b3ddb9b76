//! A step's host calls, applied over the store: the one engine-side `apply` behind every
//! `crm:automation` import that touches CRM data, workflow state, secrets or messages.
//! Writes go through the same record functions as the API (validated, attributed to the
//! run's acting user and the run itself, with activity and outbox rows), and every call
//! runs inside the caller's transaction so [`serve`] can journal a write with it.

use crm_concepts::host_call::{HostCall, HostCallError, HostReply};
use crm_concepts::records::{Actor, PageRequest};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::StoreError;
use crate::{activity, companies, contacts, deals, journal, notes, notifications, secrets, tasks, workflow_state};

/// Who a call is made for, and the key that opens the secrets it may read.
#[derive(Debug, Clone)]
pub struct Caller<'a> {
    pub run_id: Uuid,
    pub step: &'a str,
    pub attempt: i32,
    pub workflow: &'a str,
    pub acting_user: Option<i64>,
    pub vault: &'a crm_vault::Vault,
}

impl Caller<'_> {
    fn reader(&self) -> secrets::Reader<'_> {
        secrets::Reader { acting_user: self.acting_user, run_id: self.run_id, workflow: self.workflow, step: self.step }
    }

    fn actor(&self) -> Actor {
        Actor { user_id: self.acting_user, origin_run: Some(self.run_id), token_id: None }
    }
}

fn page(limit: u32) -> PageRequest {
    PageRequest { limit: Some(limit), cursor: None, sort: None }
}

/// Applies one call in `conn`'s transaction.
pub async fn apply(conn: &mut PgConnection, caller: &Caller<'_>, call: HostCall) -> Result<HostReply, StoreError> {
    let actor = caller.actor();
    use HostCall::*;
    Ok(match call {
        GetContact { id } => HostReply::Contact(contacts::get_in(conn, id).await?),
        FindContacts { filter, limit } => {
            HostReply::Contacts(contacts::list_in(conn, &filter, &page(limit)).await?.items)
        }
        CreateContact { fields } => HostReply::Contact(contacts::create_in(conn, &actor, fields).await?),
        UpdateContact { id, patch } => HostReply::Contact(contacts::update_in(conn, &actor, id, patch).await?),
        GetCompany { id } => HostReply::Company(companies::get_in(conn, id).await?),
        FindCompanies { filter, limit } => {
            HostReply::Companies(companies::list_in(conn, &filter, &page(limit)).await?.items)
        }
        CreateCompany { fields } => HostReply::Company(companies::create_in(conn, &actor, fields).await?),
        UpdateCompany { id, patch } => HostReply::Company(companies::update_in(conn, &actor, id, patch).await?),
        GetDeal { id } => HostReply::Deal(deals::get_in(conn, id).await?),
        FindDeals { filter, limit } => {
            // Staleness: the oldest stage changes first, so the page holds exactly the deals
            // past the cutoff rather than an arbitrary sample of them.
            let mut req = page(limit);
            if filter.stage_changed_before.is_some() {
                req.sort = Some("stage_changed_at".into());
            }
            HostReply::Deals(deals::list_in(conn, &filter, &req).await?.items)
        }
        CreateDeal { fields } => HostReply::Deal(deals::create_in(conn, &actor, fields).await?),
        UpdateDeal { id, patch } => HostReply::Deal(deals::update_in(conn, &actor, id, patch).await?),
        GetTask { id } => HostReply::Task(tasks::get_in(conn, id).await?),
        FindTasks { filter, limit } => HostReply::Tasks(tasks::list_in(conn, &filter, &page(limit)).await?.items),
        CreateTask { fields } => HostReply::Task(tasks::create_in(conn, &actor, fields).await?),
        EnsureTask { key, fields } => {
            HostReply::Task(tasks::ensure_in(conn, &actor, caller.workflow, &key, fields).await?)
        }
        UpdateTask { id, patch } => HostReply::Task(tasks::update_in(conn, &actor, id, patch).await?),
        GetNote { id } => HostReply::Note(notes::get_in(conn, id).await?),
        FindNotes { filter, limit } => HostReply::Notes(notes::list_in(conn, &filter, &page(limit)).await?.items),
        CreateNote { fields } => HostReply::Note(notes::create_in(conn, &actor, fields).await?),
        UpdateNote { id, patch } => HostReply::Note(notes::update_in(conn, &actor, id, patch).await?),
        RecordActivity { kind, id, limit } => {
            HostReply::Activity(activity::list_in(conn, kind, id, &page(limit)).await?.items)
        }
        StateGet { key } => HostReply::State(workflow_state::get(conn, caller.workflow, &key).await?),
        StateSet { key, value } => {
            workflow_state::set(conn, caller.workflow, &key, &value).await?;
            HostReply::Done
        }
        StateDelete { key } => {
            workflow_state::delete(conn, caller.workflow, &key).await?;
            HostReply::Done
        }
        Secret { name } => match secrets::read_for_step(conn, caller.vault, &name, caller.reader()).await? {
            Some(value) => HostReply::Secret(value),
            None => return Err(StoreError::Missing(format!("no secret named {name}"))),
        },
        GetUser { id } => HostReply::User(crate::users::get_in(conn, id).await?.into()),
        Notify { user_id, text, buttons } => {
            let origin = notifications::Origin {
                run_id: Some(caller.run_id),
                step: Some(caller.step),
                workflow: Some(caller.workflow),
            };
            notifications::add_in(conn, user_id, &text, &buttons, origin).await.map_err(|e| match e {
                // the only foreign key of a notification is its user
                StoreError::Validation { .. } if is_foreign_key(&e) => {
                    StoreError::Missing(format!("user {user_id} does not exist"))
                }
                other => other,
            })?;
            HostReply::Done
        }
    })
}

fn is_foreign_key(e: &StoreError) -> bool {
    matches!(e, StoreError::Validation { message, .. } if message.starts_with("refers to a record that does not exist"))
}

/// Whether `call` can be served by [`read`]: it changes nothing, not even the audit trail
/// (a secret's read is recorded in the activity log, so it goes through [`serve`]).
pub fn is_plain_read(call: &HostCall) -> bool {
    !call.is_write() && !matches!(call, HostCall::Secret { .. })
}

/// Serves a plain read (see [`is_plain_read`]) on a connection of `pool` with no transaction
/// around it: one round trip to Postgres rather than three (`BEGIN`, the read, `COMMIT`).
/// Inside a transaction at READ COMMITTED each statement would take its own snapshot all
/// the same, so the reply is what it would have been. `pool`'s connections must carry a
/// `statement_timeout` that stops a runaway read; the step's own deadline (`timeout_ms`) is
/// kept here, so the step hears of it on time.
pub async fn read(
    pool: &sqlx::PgPool,
    caller: &Caller<'_>,
    call: HostCall,
    timeout_ms: u64,
) -> Result<HostReply, HostCallError> {
    debug_assert!(is_plain_read(&call), "{} is not a plain read", call.name());
    let work = async {
        let mut conn = pool.acquire().await.map_err(StoreError::from)?;
        apply(&mut conn, caller, call).await.map_err(HostCallError::from)
    };
    match tokio::time::timeout(std::time::Duration::from_millis(timeout_ms.max(1)), work).await {
        Ok(reply) => reply,
        Err(_) => Err(HostCallError::Unavailable("the read did not finish before the step's deadline".into())),
    }
}

/// Serves one call for an attempt: in its own transaction, bounded by `timeout_ms` (the
/// step's remaining deadline, as Postgres' `statement_timeout`), and for a write, through
/// the journal: the `write_seq`-th write of a step is applied once, and every later attempt
/// that makes it again gets the journaled reply.
pub async fn serve(
    pool: &sqlx::PgPool,
    caller: &Caller<'_>,
    write_seq: Option<u32>,
    call: HostCall,
    timeout_ms: u64,
) -> Result<HostReply, HostCallError> {
    let timeout_ms = timeout_ms.clamp(1, 15 * 60 * 1000);
    let mut tx = pool
        // An integer we formatted ourselves: nothing from the caller reaches the SQL text.
        .begin_with(sqlx::AssertSqlSafe(format!("BEGIN; SET LOCAL statement_timeout = {timeout_ms}")))
        .await
        .map_err(StoreError::from)?;
    let reply = match write_seq {
        None => apply(&mut tx, caller, call).await?,
        Some(seq) => match journal::serve(&mut tx, caller, seq, call.clone()).await? {
            journal::Journaled::Applied(reply) => reply,
            // Nothing of this transaction may stand: it only read the journal, or its write
            // lost the race to a concurrent attempt's.
            journal::Journaled::Recorded(reply) => {
                tx.rollback().await.map_err(StoreError::from)?;
                return reply;
            }
            journal::Journaled::Raced => {
                tx.rollback().await.map_err(StoreError::from)?;
                let mut conn = pool.acquire().await.map_err(StoreError::from)?;
                return journal::lookup(&mut conn, caller, seq, &call)
                    .await?
                    .unwrap_or_else(|| Err(HostCallError::Unavailable("a concurrent write vanished; retry".into())));
            }
        },
    };
    tx.commit().await.map_err(StoreError::from)?;
    Ok(reply)
}

/// Errors as a step sees them.
impl From<StoreError> for HostCallError {
    fn from(e: StoreError) -> HostCallError {
        match e {
            StoreError::NotFound { .. } | StoreError::Missing(_) => HostCallError::NotFound(e.to_string()),
            StoreError::Validation { .. } | StoreError::InvalidQuery(_) => HostCallError::Invalid(e.to_string()),
            StoreError::Conflict(m) => HostCallError::Conflict(m),
            // A database failure is not the step's fault: retrying the step may succeed.
            StoreError::Db(_) => {
                tracing::warn!("a step's host call failed in the database: {e}");
                HostCallError::Unavailable("the CRM database is unavailable".into())
            }
        }
    }
}
