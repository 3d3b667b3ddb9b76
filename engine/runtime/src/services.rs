//! What the host needs from the outside world to serve a step's imports: CRM records, the
//! workflow's key-value state, secrets and chat notifications. The worker implements these
//! over Postgres; `crm component run` over an in-memory fixture.
//!
//! Capabilities are checked before any of these is called, and `custom` fields arrive as
//! validated JSON objects: implementations only store and fetch.

use std::future::Future;

use crm_concepts::step::AttemptKey;

use crate::bindings::{
    Activity, Company, CompanyFilter, CompanyPatch, Contact, ContactFilter, ContactPatch, Deal, DealFilter, DealPatch,
    HostError, NewCompany, NewContact, NewDeal, NewNote, NewTask, Note, NoteFilter, NotePatch, RecordKind, Task,
    TaskFilter, TaskPatch,
};

pub type HostResult<T> = Result<T, HostError>;

/// Who a host call is made for: writes are attributed to the acting user and the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallContext {
    pub key: AttemptKey,
    pub workflow: String,
    pub acting_user: Option<i64>,
}

/// Largest `limit` a search may ask for; also the default cap on what one call returns.
pub const MAX_LIST: u32 = 200;
/// `limit` when a filter leaves it out.
pub const DEFAULT_LIST: u32 = 50;

/// Clamps a filter's `limit` to 1..=MAX_LIST.
pub fn list_limit(limit: Option<u32>) -> usize {
    limit.unwrap_or(DEFAULT_LIST).clamp(1, MAX_LIST) as usize
}

pub trait RecordsHost: Send + Sync + 'static {
    fn get_contact(&self, cx: &CallContext, id: i64) -> impl Future<Output = HostResult<Contact>> + Send;
    fn find_contacts(
        &self,
        cx: &CallContext,
        f: ContactFilter,
    ) -> impl Future<Output = HostResult<Vec<Contact>>> + Send;
    fn create_contact(&self, cx: &CallContext, new: NewContact) -> impl Future<Output = HostResult<Contact>> + Send;
    fn update_contact(
        &self,
        cx: &CallContext,
        id: i64,
        patch: ContactPatch,
    ) -> impl Future<Output = HostResult<Contact>> + Send;

    fn get_company(&self, cx: &CallContext, id: i64) -> impl Future<Output = HostResult<Company>> + Send;
    fn find_companies(
        &self,
        cx: &CallContext,
        f: CompanyFilter,
    ) -> impl Future<Output = HostResult<Vec<Company>>> + Send;
    fn create_company(&self, cx: &CallContext, new: NewCompany) -> impl Future<Output = HostResult<Company>> + Send;
    fn update_company(
        &self,
        cx: &CallContext,
        id: i64,
        patch: CompanyPatch,
    ) -> impl Future<Output = HostResult<Company>> + Send;

    fn get_deal(&self, cx: &CallContext, id: i64) -> impl Future<Output = HostResult<Deal>> + Send;
    fn find_deals(&self, cx: &CallContext, f: DealFilter) -> impl Future<Output = HostResult<Vec<Deal>>> + Send;
    fn create_deal(&self, cx: &CallContext, new: NewDeal) -> impl Future<Output = HostResult<Deal>> + Send;
    fn update_deal(&self, cx: &CallContext, id: i64, patch: DealPatch)
    -> impl Future<Output = HostResult<Deal>> + Send;

    fn get_task(&self, cx: &CallContext, id: i64) -> impl Future<Output = HostResult<Task>> + Send;
    fn find_tasks(&self, cx: &CallContext, f: TaskFilter) -> impl Future<Output = HostResult<Vec<Task>>> + Send;
    fn create_task(&self, cx: &CallContext, new: NewTask) -> impl Future<Output = HostResult<Task>> + Send;
    fn update_task(&self, cx: &CallContext, id: i64, patch: TaskPatch)
    -> impl Future<Output = HostResult<Task>> + Send;

    fn get_note(&self, cx: &CallContext, id: i64) -> impl Future<Output = HostResult<Note>> + Send;
    fn find_notes(&self, cx: &CallContext, f: NoteFilter) -> impl Future<Output = HostResult<Vec<Note>>> + Send;
    fn create_note(&self, cx: &CallContext, new: NewNote) -> impl Future<Output = HostResult<Note>> + Send;
    fn update_note(&self, cx: &CallContext, id: i64, patch: NotePatch)
    -> impl Future<Output = HostResult<Note>> + Send;

    /// Newest first, at most `limit` (already clamped to 1..=MAX_LIST).
    fn record_activity(
        &self,
        cx: &CallContext,
        kind: RecordKind,
        id: i64,
        limit: usize,
    ) -> impl Future<Output = HostResult<Vec<Activity>>> + Send;
}

/// The workflow-scoped services: key-value state, secrets, chat notifications.
pub trait WorkflowHost: Send + Sync + 'static {
    fn state_get(&self, cx: &CallContext, key: &str) -> impl Future<Output = HostResult<Option<String>>> + Send;
    /// `value` is a JSON document.
    fn state_set(&self, cx: &CallContext, key: &str, value: &str) -> impl Future<Output = HostResult<()>> + Send;
    fn state_delete(&self, cx: &CallContext, key: &str) -> impl Future<Output = HostResult<()>> + Send;
    fn secret(&self, cx: &CallContext, name: &str) -> impl Future<Output = HostResult<String>> + Send;
    /// Records a chat message for a CRM user; the bot delivers it.
    fn notify(&self, cx: &CallContext, user_id: i64, text: &str) -> impl Future<Output = HostResult<()>> + Send;
}

/// Everything a step's imports can reach.
pub trait Services: RecordsHost + WorkflowHost {}

impl<T: RecordsHost + WorkflowHost> Services for T {}
