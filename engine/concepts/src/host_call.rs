//! A step's calls into the CRM, as data. The runtime turns every `crm:automation` import
//! that reaches outside the sandbox (records, state, secrets, notify) into a [`HostCall`],
//! after checking the step's grant, and whoever serves the step answers it with a
//! [`HostReply`]: the engine over Postgres, with every write journaled so that a repeated
//! write is answered from the journal instead of being made again; the in-memory CRM of
//! `crm component run` over a fixture. Calls travel from a worker to the engine as JSON.
//!
//! `log` and `http` are not host calls: the log is collected with the step's result, and
//! outbound HTTP leaves from the worker itself (to the hosts the step is granted).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::capability::Capability;
use crate::message_button::Button;
use crate::records::{
    Activity, Company, CompanyFilter, CompanyPatch, Contact, ContactFilter, ContactPatch, Deal, DealFilter, DealPatch,
    Id, NewCompany, NewContact, NewDeal, NewNote, NewTask, Note, NoteFilter, NotePatch, RecordKind, Task, TaskFilter,
    TaskPatch,
};
use crate::user::UserProfile;

/// Most records one search may return; also the cap on `record_activity`.
pub const MAX_LIST: u32 = 200;
/// What a search returns when it does not say.
pub const DEFAULT_LIST: u32 = 50;
/// State keys are short names, values small JSON documents: a place for cursors and
/// counters, not a database.
pub const MAX_STATE_KEY: usize = 200;
pub const MAX_STATE_VALUE: usize = 64 * 1024;
/// Telegram's message limit; longer texts would be split by the bot anyway.
pub const MAX_NOTIFY_TEXT: usize = 4096;
/// `ensure_task` keys name a task among a workflow's open tasks.
pub const MAX_TASK_KEY: usize = 200;

/// Clamps a search's `limit` to 1..=MAX_LIST, DEFAULT_LIST when absent.
pub fn list_limit(limit: Option<u32>) -> u32 {
    limit.unwrap_or(DEFAULT_LIST).clamp(1, MAX_LIST)
}

/// One call, one variant per function of the WIT interfaces `records`, `state`, `secrets`
/// and `notify`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum HostCall {
    GetContact {
        id: Id,
    },
    FindContacts {
        filter: ContactFilter,
        limit: u32,
    },
    CreateContact {
        fields: NewContact,
    },
    UpdateContact {
        id: Id,
        patch: ContactPatch,
    },
    GetCompany {
        id: Id,
    },
    FindCompanies {
        filter: CompanyFilter,
        limit: u32,
    },
    CreateCompany {
        fields: NewCompany,
    },
    UpdateCompany {
        id: Id,
        patch: CompanyPatch,
    },
    GetDeal {
        id: Id,
    },
    /// with `filter.stage_changed_before` set, the oldest stage changes come first
    FindDeals {
        filter: DealFilter,
        limit: u32,
    },
    CreateDeal {
        fields: NewDeal,
    },
    UpdateDeal {
        id: Id,
        patch: DealPatch,
    },
    GetTask {
        id: Id,
    },
    FindTasks {
        filter: TaskFilter,
        limit: u32,
    },
    CreateTask {
        fields: NewTask,
    },
    /// the workflow's open task with this key, created from `fields` when there is none
    EnsureTask {
        key: String,
        fields: NewTask,
    },
    UpdateTask {
        id: Id,
        patch: TaskPatch,
    },
    GetNote {
        id: Id,
    },
    FindNotes {
        filter: NoteFilter,
        limit: u32,
    },
    CreateNote {
        fields: NewNote,
    },
    UpdateNote {
        id: Id,
        patch: NotePatch,
    },
    RecordActivity {
        kind: RecordKind,
        id: Id,
        limit: u32,
    },
    GetUser {
        id: Id,
    },
    StateGet {
        key: String,
    },
    StateSet {
        key: String,
        value: Value,
    },
    StateDelete {
        key: String,
    },
    Secret {
        name: String,
    },
    Notify {
        user_id: Id,
        text: String,
        /// under the message; older workers send none
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        buttons: Vec<Button>,
    },
}

/// The successful answer to a [`HostCall`]; each call has exactly one reply shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "reply", content = "value", rename_all = "snake_case")]
pub enum HostReply {
    Contact(Contact),
    Contacts(Vec<Contact>),
    Company(Company),
    Companies(Vec<Company>),
    Deal(Deal),
    Deals(Vec<Deal>),
    Task(Task),
    Tasks(Vec<Task>),
    Note(Note),
    Notes(Vec<Note>),
    Activity(Vec<Activity>),
    User(UserProfile),
    State(Option<Value>),
    Secret(String),
    Done,
}

/// A call that was allowed but did not succeed; the guest sees the same four cases
/// (`host-error` in `wit/step.wit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error, ToSchema)]
#[serde(tag = "error", content = "message", rename_all = "snake_case")]
pub enum HostCallError {
    /// the record (or secret, or key) does not exist
    #[error("{0}")]
    NotFound(String),
    /// the arguments break a rule (a validation message)
    #[error("{0}")]
    Invalid(String),
    /// a clash with existing data, e.g. a duplicate email
    #[error("{0}")]
    Conflict(String),
    /// a transient failure (database, network, the engine restarting): retrying may help
    #[error("{0}")]
    Unavailable(String),
    /// a retry made a different write than an earlier attempt at the same position: never
    /// shown to the guest, it ends the step with `replay_diverged`
    #[error("{0}")]
    Diverged(String),
}

impl HostCall {
    /// The grant a step needs to make this call.
    pub fn capability(&self) -> Capability {
        use HostCall::*;
        match self {
            GetContact { .. }
            | FindContacts { .. }
            | GetCompany { .. }
            | FindCompanies { .. }
            | GetDeal { .. }
            | FindDeals { .. }
            | GetTask { .. }
            | FindTasks { .. }
            | GetNote { .. }
            | FindNotes { .. }
            | RecordActivity { .. }
            | GetUser { .. } => Capability::RecordsRead,
            CreateContact { .. }
            | UpdateContact { .. }
            | CreateCompany { .. }
            | UpdateCompany { .. }
            | CreateDeal { .. }
            | UpdateDeal { .. }
            | CreateTask { .. }
            | EnsureTask { .. }
            | UpdateTask { .. }
            | CreateNote { .. }
            | UpdateNote { .. } => Capability::RecordsWrite,
            StateGet { .. } | StateSet { .. } | StateDelete { .. } => Capability::State,
            Secret { name } => Capability::Secret(name.clone()),
            Notify { .. } => Capability::Notify,
        }
    }

    /// Whether the call changes anything. Writes are journaled and answered from the
    /// journal when a step's attempt repeats them; reads always see the current data.
    pub fn is_write(&self) -> bool {
        use HostCall::*;
        !matches!(
            self,
            GetContact { .. }
                | FindContacts { .. }
                | GetCompany { .. }
                | FindCompanies { .. }
                | GetDeal { .. }
                | FindDeals { .. }
                | GetTask { .. }
                | FindTasks { .. }
                | GetNote { .. }
                | FindNotes { .. }
                | RecordActivity { .. }
                | GetUser { .. }
                | StateGet { .. }
                | Secret { .. }
        )
    }

    /// The function's name as the journal and error messages show it (`create_task`).
    pub fn name(&self) -> &'static str {
        use HostCall::*;
        match self {
            GetContact { .. } => "get_contact",
            FindContacts { .. } => "find_contacts",
            CreateContact { .. } => "create_contact",
            UpdateContact { .. } => "update_contact",
            GetCompany { .. } => "get_company",
            FindCompanies { .. } => "find_companies",
            CreateCompany { .. } => "create_company",
            UpdateCompany { .. } => "update_company",
            GetDeal { .. } => "get_deal",
            FindDeals { .. } => "find_deals",
            CreateDeal { .. } => "create_deal",
            UpdateDeal { .. } => "update_deal",
            GetTask { .. } => "get_task",
            FindTasks { .. } => "find_tasks",
            CreateTask { .. } => "create_task",
            EnsureTask { .. } => "ensure_task",
            UpdateTask { .. } => "update_task",
            GetNote { .. } => "get_note",
            FindNotes { .. } => "find_notes",
            CreateNote { .. } => "create_note",
            UpdateNote { .. } => "update_note",
            RecordActivity { .. } => "record_activity",
            GetUser { .. } => "get_user",
            StateGet { .. } => "state_get",
            StateSet { .. } => "state_set",
            StateDelete { .. } => "state_delete",
            Secret { .. } => "secret",
            Notify { .. } => "notify",
        }
    }

    /// What makes two writes "the same write" when an attempt repeats one: the function
    /// and what it targets (the record for an update, the key for state and `ensure_task`,
    /// the user for a message), not the values written. A retry that computes a slightly
    /// different due date or message text is still repeating the write it made before, and
    /// gets the journaled reply; `docs/workflows.md` states the whole rule.
    pub fn target(&self) -> String {
        use HostCall::*;
        let name = self.name();
        match self {
            UpdateContact { id, .. }
            | UpdateCompany { id, .. }
            | UpdateDeal { id, .. }
            | UpdateTask { id, .. }
            | UpdateNote { id, .. } => format!("{name}:{id}"),
            EnsureTask { key, .. } | StateSet { key, .. } | StateDelete { key } => format!("{name}:{key}"),
            Notify { user_id, .. } => format!("{name}:{user_id}"),
            _ => name.to_string(),
        }
    }

    /// Rules on the call's own arguments that hold wherever it is served.
    pub fn check(&self) -> Result<(), HostCallError> {
        use HostCall::*;
        let key_rule = |key: &str, max: usize, what: &str| {
            if key.is_empty() || key.len() > max {
                Err(HostCallError::Invalid(format!("{what} are 1 to {max} bytes")))
            } else {
                Ok(())
            }
        };
        match self {
            StateGet { key } | StateDelete { key } => key_rule(key, MAX_STATE_KEY, "state keys"),
            StateSet { key, value } => {
                key_rule(key, MAX_STATE_KEY, "state keys")?;
                let size = serde_json::to_string(value).map(|s| s.len()).unwrap_or(usize::MAX);
                if size > MAX_STATE_VALUE {
                    return Err(HostCallError::Invalid(format!("state values are at most {MAX_STATE_VALUE} bytes")));
                }
                Ok(())
            }
            EnsureTask { key, .. } => key_rule(key, MAX_TASK_KEY, "task keys"),
            Notify { text, buttons, .. } => {
                if text.trim().is_empty() || text.chars().count() > MAX_NOTIFY_TEXT {
                    return Err(HostCallError::Invalid(format!("a message is 1 to {MAX_NOTIFY_TEXT} characters")));
                }
                crate::message_button::check(buttons).map_err(HostCallError::Invalid)
            }
            FindContacts { limit, .. }
            | FindCompanies { limit, .. }
            | FindDeals { limit, .. }
            | FindTasks { limit, .. }
            | FindNotes { limit, .. }
            | RecordActivity { limit, .. } => {
                if (1..=MAX_LIST).contains(limit) {
                    Ok(())
                } else {
                    Err(HostCallError::Invalid(format!("limit must be 1 to {MAX_LIST}")))
                }
            }
            _ => Ok(()),
        }
    }
}

impl From<crate::fields::FieldError> for HostCallError {
    fn from(e: crate::fields::FieldError) -> HostCallError {
        HostCallError::Invalid(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn travels_as_tagged_json() {
        let call = HostCall::UpdateTask { id: 7, patch: TaskPatch { done: Some(true), ..Default::default() } };
        let json = serde_json::to_value(&call).unwrap();
        assert_eq!(json, serde_json::json!({"call": "update_task", "id": 7, "patch": {"done": true}}));
        assert_eq!(serde_json::from_value::<HostCall>(json).unwrap(), call);
        let reply = serde_json::to_value(HostReply::State(None)).unwrap();
        assert_eq!(reply, serde_json::json!({"reply": "state", "value": null}));
    }

    #[test]
    fn writes_are_the_same_write_by_function_and_target() {
        let a = HostCall::Notify { user_id: 3, text: "hi".into(), buttons: vec![] };
        let b = HostCall::Notify { user_id: 3, text: "hello".into(), buttons: vec![] };
        let c = HostCall::Notify { user_id: 4, text: "hi".into(), buttons: vec![] };
        assert!(a.is_write());
        assert_eq!(a.target(), b.target());
        assert_ne!(a.target(), c.target());
        assert!(!HostCall::GetTask { id: 1 }.is_write());
        assert_eq!(HostCall::Secret { name: "X".into() }.capability(), Capability::Secret("X".into()));
    }

    #[test]
    fn checks_its_own_arguments() {
        assert!(HostCall::StateGet { key: String::new() }.check().is_err());
        assert!(HostCall::Notify { user_id: 1, text: " ".into(), buttons: vec![] }.check().is_err());
        assert!(HostCall::FindTasks { filter: TaskFilter::default(), limit: 0 }.check().is_err());
        assert!(HostCall::FindTasks { filter: TaskFilter::default(), limit: 200 }.check().is_ok());
    }
}
