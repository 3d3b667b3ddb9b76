//! In-memory services for running a step without Postgres (`crm component run`, tests):
//! records, state and secrets come from a JSON fixture; writes change the in-memory copy;
//! notifications are collected for the caller to print.
//!
//! Fixture format (every section optional; see `workflows/lead-score/fixtures.json`):
//!
//! ```json
//! {
//!   "contacts":  [{"id": 1, "name": "Ann Lee", "email": "ann@x.io", "company_id": 1, "created_at": "-40d"}],
//!   "companies": [{"id": 1, "name": "Acme"}],
//!   "deals":     [{"id": 1, "title": "Pilot", "amount_minor": 500000, "contact_id": 1, "status": "open"}],
//!   "tasks":     [{"id": 1, "title": "Call", "contact_id": 1, "due_at": "-2d"}],
//!   "notes":     [{"id": 1, "body": "Met at a fair", "contact_id": 1}],
//!   "activity":  [{"record_kind": "contact", "record_id": 1, "action": "updated", "at": "-1d"}],
//!   "secrets":   {"SLACK_TOKEN": "xoxb-..."},
//!   "state":     {"cursor": 42}
//! }
//! ```
//!
//! Times are RFC 3339 (`2026-01-31T09:00:00Z`), `now`, or relative to now: `-3d`, `-12h`,
//! `-30m`, `+2d` — so a fixture stays meaningful whenever it is run. The text search is a
//! case-insensitive substring match, a stand-in for Postgres' trigram search.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::Deserialize;
use serde::de::Error as _;

use crate::bindings::{
    Activity, Company, CompanyFilter, CompanyPatch, Contact, ContactFilter, ContactPatch, Deal, DealFilter, DealPatch,
    DealStatus, HostError, NewCompany, NewContact, NewDeal, NewNote, NewTask, Note, NoteFilter, NotePatch, RecordKind,
    Task, TaskFilter, TaskPatch,
};
use crate::services::{CallContext, HostResult, RecordsHost, WorkflowHost, list_limit};

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("the fixture is not valid: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the fixture is not valid: {0}")]
    Invalid(String),
}

/// A chat message a step sent through `notify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub user_id: i64,
    pub text: String,
}

#[derive(Default)]
struct Data {
    contacts: BTreeMap<i64, Contact>,
    companies: BTreeMap<i64, Company>,
    deals: BTreeMap<i64, Deal>,
    tasks: BTreeMap<i64, Task>,
    notes: BTreeMap<i64, Note>,
    activity: Vec<Activity>,
    secrets: BTreeMap<String, String>,
    state: BTreeMap<String, String>,
    notifications: Vec<Notification>,
    next_id: i64,
}

#[derive(Default)]
pub struct MemoryServices {
    data: Mutex<Data>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// RFC 3339, `now`, or `-3d` / `+12h` / `-30m` relative to now.
fn parse_time(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if text == "now" {
        return Ok(now_ms());
    }
    if let Some(sign) = text.chars().next().filter(|c| *c == '-' || *c == '+') {
        let body = &text[1..];
        let (num, unit) = body.split_at(body.len().saturating_sub(1));
        let n: i64 = num.parse().map_err(|_| format!("{text:?} is not a time"))?;
        let unit_ms = match unit {
            "d" => 86_400_000,
            "h" => 3_600_000,
            "m" => 60_000,
            _ => return Err(format!("{text:?}: relative times end in d, h or m")),
        };
        let delta = n.saturating_mul(unit_ms);
        return Ok(if sign == '-' { now_ms() - delta } else { now_ms() + delta });
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))
}

#[derive(Debug, Clone, Copy)]
struct Time(i64);

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Time, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Millis(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Millis(ms) => Ok(Time(ms)),
            Raw::Text(t) => parse_time(&t).map(Time).map_err(D::Error::custom),
        }
    }
}

fn now_time() -> Time {
    Time(now_ms())
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FContact {
    id: i64,
    name: String,
    email: Option<String>,
    phone: Option<String>,
    company_id: Option<i64>,
    owner_id: Option<i64>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default = "empty_object")]
    custom: serde_json::Value,
    #[serde(default = "now_time")]
    created_at: Time,
    updated_at: Option<Time>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FCompany {
    id: i64,
    name: String,
    domain: Option<String>,
    phone: Option<String>,
    owner_id: Option<i64>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default = "empty_object")]
    custom: serde_json::Value,
    #[serde(default = "now_time")]
    created_at: Time,
    updated_at: Option<Time>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum FStatus {
    Open,
    Won,
    Lost,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FDeal {
    id: i64,
    title: String,
    #[serde(default)]
    amount_minor: i64,
    #[serde(default = "usd")]
    currency: String,
    #[serde(default = "one")]
    pipeline_id: i64,
    #[serde(default = "one")]
    stage_id: i64,
    contact_id: Option<i64>,
    company_id: Option<i64>,
    owner_id: Option<i64>,
    expected_close: Option<String>,
    #[serde(default = "open")]
    status: FStatus,
    closed_at: Option<Time>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default = "empty_object")]
    custom: serde_json::Value,
    #[serde(default = "now_time")]
    created_at: Time,
    updated_at: Option<Time>,
    stage_changed_at: Option<Time>,
}

fn usd() -> String {
    "USD".into()
}
fn one() -> i64 {
    1
}
fn open() -> FStatus {
    FStatus::Open
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FTask {
    id: i64,
    title: String,
    due_at: Option<Time>,
    #[serde(default)]
    done: bool,
    done_at: Option<Time>,
    assignee_id: Option<i64>,
    contact_id: Option<i64>,
    company_id: Option<i64>,
    deal_id: Option<i64>,
    #[serde(default = "now_time")]
    created_at: Time,
    updated_at: Option<Time>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FNote {
    id: i64,
    body: String,
    author_id: Option<i64>,
    contact_id: Option<i64>,
    company_id: Option<i64>,
    deal_id: Option<i64>,
    task_id: Option<i64>,
    #[serde(default = "now_time")]
    created_at: Time,
    updated_at: Option<Time>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum FKind {
    Contact,
    Company,
    Deal,
    Task,
    Note,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FActivity {
    record_kind: FKind,
    record_id: i64,
    action: String,
    #[serde(default = "now_time")]
    at: Time,
    actor_id: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct Fixture {
    contacts: Vec<FContact>,
    companies: Vec<FCompany>,
    deals: Vec<FDeal>,
    tasks: Vec<FTask>,
    notes: Vec<FNote>,
    activity: Vec<FActivity>,
    secrets: BTreeMap<String, String>,
    state: BTreeMap<String, serde_json::Value>,
}

fn kind(k: FKind) -> RecordKind {
    match k {
        FKind::Contact => RecordKind::Contact,
        FKind::Company => RecordKind::Company,
        FKind::Deal => RecordKind::Deal,
        FKind::Task => RecordKind::Task,
        FKind::Note => RecordKind::Note,
    }
}

fn custom_text(v: serde_json::Value, what: &str) -> Result<String, FixtureError> {
    if !v.is_object() {
        return Err(FixtureError::Invalid(format!("{what}: `custom` must be an object")));
    }
    Ok(v.to_string())
}

impl MemoryServices {
    /// Services over an empty CRM.
    pub fn empty() -> MemoryServices {
        MemoryServices::default()
    }

    /// Services over the records of a fixture document (format in the module docs).
    pub fn from_json(text: &str) -> Result<MemoryServices, FixtureError> {
        let f: Fixture = serde_json::from_str(text)?;
        let mut d = Data::default();
        for c in f.contacts {
            let what = format!("contact {}", c.id);
            let custom = custom_text(c.custom, &what)?;
            let updated = c.updated_at.unwrap_or(c.created_at).0;
            d.contacts.insert(
                c.id,
                Contact {
                    id: c.id,
                    name: c.name,
                    email: c.email,
                    phone: c.phone,
                    company_id: c.company_id,
                    owner_id: c.owner_id,
                    tags: c.tags,
                    custom,
                    created_at: c.created_at.0,
                    updated_at: updated,
                },
            );
        }
        for c in f.companies {
            let custom = custom_text(c.custom, &format!("company {}", c.id))?;
            let updated = c.updated_at.unwrap_or(c.created_at).0;
            d.companies.insert(
                c.id,
                Company {
                    id: c.id,
                    name: c.name,
                    domain: c.domain,
                    phone: c.phone,
                    owner_id: c.owner_id,
                    tags: c.tags,
                    custom,
                    created_at: c.created_at.0,
                    updated_at: updated,
                },
            );
        }
        for x in f.deals {
            let custom = custom_text(x.custom, &format!("deal {}", x.id))?;
            let updated = x.updated_at.unwrap_or(x.created_at).0;
            let status = match x.status {
                FStatus::Open => DealStatus::Open,
                FStatus::Won => DealStatus::Won,
                FStatus::Lost => DealStatus::Lost,
            };
            let closed_at = match status {
                DealStatus::Open => None,
                _ => Some(x.closed_at.map_or(updated, |t| t.0)),
            };
            d.deals.insert(
                x.id,
                Deal {
                    id: x.id,
                    title: x.title,
                    amount_minor: x.amount_minor,
                    currency: x.currency,
                    pipeline_id: x.pipeline_id,
                    stage_id: x.stage_id,
                    contact_id: x.contact_id,
                    company_id: x.company_id,
                    owner_id: x.owner_id,
                    expected_close: x.expected_close,
                    status,
                    closed_at,
                    tags: x.tags,
                    custom,
                    created_at: x.created_at.0,
                    updated_at: updated,
                    stage_changed_at: x.stage_changed_at.unwrap_or(x.created_at).0,
                },
            );
        }
        for t in f.tasks {
            let done_at = if t.done { Some(t.done_at.unwrap_or(t.created_at).0) } else { None };
            d.tasks.insert(
                t.id,
                Task {
                    id: t.id,
                    title: t.title,
                    due_at: t.due_at.map(|x| x.0),
                    done: t.done,
                    done_at,
                    assignee_id: t.assignee_id,
                    contact_id: t.contact_id,
                    company_id: t.company_id,
                    deal_id: t.deal_id,
                    created_at: t.created_at.0,
                    updated_at: t.updated_at.unwrap_or(t.created_at).0,
                },
            );
        }
        for n in f.notes {
            d.notes.insert(
                n.id,
                Note {
                    id: n.id,
                    body: n.body,
                    author_id: n.author_id,
                    contact_id: n.contact_id,
                    company_id: n.company_id,
                    deal_id: n.deal_id,
                    task_id: n.task_id,
                    created_at: n.created_at.0,
                    updated_at: n.updated_at.unwrap_or(n.created_at).0,
                },
            );
        }
        for a in f.activity {
            d.activity.push(Activity {
                at: a.at.0,
                actor_id: a.actor_id,
                record_kind: kind(a.record_kind),
                record_id: a.record_id,
                action: a.action,
            });
        }
        d.secrets = f.secrets;
        d.state = f.state.into_iter().map(|(k, v)| (k, v.to_string())).collect();
        let max_id = [
            d.contacts.keys().max(),
            d.companies.keys().max(),
            d.deals.keys().max(),
            d.tasks.keys().max(),
            d.notes.keys().max(),
        ]
        .into_iter()
        .flatten()
        .max()
        .copied()
        .unwrap_or(0);
        d.next_id = max_id + 1;
        Ok(MemoryServices { data: Mutex::new(d) })
    }

    fn lock(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The messages steps sent through `notify`, oldest first.
    pub fn notifications(&self) -> Vec<Notification> {
        self.lock().notifications.clone()
    }

    /// The workflow state as it is now (values are JSON text).
    pub fn state(&self) -> BTreeMap<String, String> {
        self.lock().state.clone()
    }
}

fn not_found(what: &str, id: i64) -> HostError {
    HostError::NotFound(format!("{what} {id} does not exist"))
}

fn matches_query(query: &Option<String>, fields: &[Option<&str>]) -> bool {
    let Some(q) = query.as_deref().map(str::trim).filter(|q| !q.is_empty()) else {
        return true;
    };
    let q = q.to_lowercase();
    fields.iter().flatten().any(|f| f.to_lowercase().contains(&q))
}

fn check_name(name: &str, what: &str) -> Result<(), HostError> {
    let len = name.trim().chars().count();
    if len == 0 || len > 300 {
        return Err(HostError::Invalid(format!("{what}: must be 1 to 300 characters")));
    }
    Ok(())
}

/// Merges a JSON object patch into a JSON object text: `null` values remove keys.
fn merge_custom(current: &str, patch: &str) -> String {
    let mut base: serde_json::Map<String, serde_json::Value> = serde_json::from_str(current).unwrap_or_default();
    let patch: serde_json::Map<String, serde_json::Value> = serde_json::from_str(patch).unwrap_or_default();
    for (k, v) in patch {
        if v.is_null() {
            base.remove(&k);
        } else {
            base.insert(k, v);
        }
    }
    serde_json::Value::Object(base).to_string()
}

impl Data {
    fn record(&mut self, cx: &CallContext, kind: RecordKind, id: i64, action: &str) {
        self.activity.push(Activity {
            at: now_ms(),
            actor_id: cx.acting_user,
            record_kind: kind,
            record_id: id,
            action: action.to_string(),
        });
    }

    fn take_id(&mut self) -> i64 {
        let id = self.next_id.max(1);
        self.next_id = id + 1;
        id
    }
}

impl RecordsHost for MemoryServices {
    async fn get_contact(&self, _cx: &CallContext, id: i64) -> HostResult<Contact> {
        self.lock().contacts.get(&id).cloned().ok_or_else(|| not_found("contact", id))
    }

    async fn find_contacts(&self, _cx: &CallContext, f: ContactFilter) -> HostResult<Vec<Contact>> {
        let d = self.lock();
        Ok(d.contacts
            .values()
            .rev()
            .filter(|c| matches_query(&f.query, &[Some(&c.name), c.email.as_deref(), c.phone.as_deref()]))
            .filter(|c| f.owner_id.is_none_or(|o| c.owner_id == Some(o)))
            .filter(|c| f.company_id.is_none_or(|o| c.company_id == Some(o)))
            .filter(|c| f.tag.as_ref().is_none_or(|t| c.tags.contains(t)))
            .take(list_limit(f.limit))
            .cloned()
            .collect())
    }

    async fn create_contact(&self, cx: &CallContext, new: NewContact) -> HostResult<Contact> {
        check_name(&new.name, "name")?;
        let mut d = self.lock();
        if let Some(email) = &new.email
            && d.contacts.values().any(|c| c.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(email)))
        {
            return Err(HostError::Conflict(format!("a contact with email {email} exists")));
        }
        let id = d.take_id();
        let now = now_ms();
        let c = Contact {
            id,
            name: new.name,
            email: new.email,
            phone: new.phone,
            company_id: new.company_id,
            owner_id: new.owner_id,
            tags: new.tags,
            custom: new.custom,
            created_at: now,
            updated_at: now,
        };
        d.contacts.insert(id, c.clone());
        d.record(cx, RecordKind::Contact, id, "created");
        Ok(c)
    }

    async fn update_contact(&self, cx: &CallContext, id: i64, p: ContactPatch) -> HostResult<Contact> {
        if let Some(name) = &p.name {
            check_name(name, "name")?;
        }
        let mut d = self.lock();
        let c = d.contacts.get_mut(&id).ok_or_else(|| not_found("contact", id))?;
        if let Some(v) = p.name {
            c.name = v;
        }
        if let Some(v) = p.email {
            c.email = v;
        }
        if let Some(v) = p.phone {
            c.phone = v;
        }
        if let Some(v) = p.company_id {
            c.company_id = v;
        }
        if let Some(v) = p.owner_id {
            c.owner_id = v;
        }
        if let Some(v) = p.tags {
            c.tags = v;
        }
        if let Some(v) = p.custom {
            c.custom = merge_custom(&c.custom, &v);
        }
        c.updated_at = now_ms();
        let c = c.clone();
        d.record(cx, RecordKind::Contact, id, "updated");
        Ok(c)
    }

    async fn get_company(&self, _cx: &CallContext, id: i64) -> HostResult<Company> {
        self.lock().companies.get(&id).cloned().ok_or_else(|| not_found("company", id))
    }

    async fn find_companies(&self, _cx: &CallContext, f: CompanyFilter) -> HostResult<Vec<Company>> {
        let d = self.lock();
        Ok(d.companies
            .values()
            .rev()
            .filter(|c| matches_query(&f.query, &[Some(&c.name), c.domain.as_deref()]))
            .filter(|c| f.owner_id.is_none_or(|o| c.owner_id == Some(o)))
            .filter(|c| f.tag.as_ref().is_none_or(|t| c.tags.contains(t)))
            .take(list_limit(f.limit))
            .cloned()
            .collect())
    }

    async fn create_company(&self, cx: &CallContext, new: NewCompany) -> HostResult<Company> {
        check_name(&new.name, "name")?;
        let mut d = self.lock();
        let id = d.take_id();
        let now = now_ms();
        let c = Company {
            id,
            name: new.name,
            domain: new.domain,
            phone: new.phone,
            owner_id: new.owner_id,
            tags: new.tags,
            custom: new.custom,
            created_at: now,
            updated_at: now,
        };
        d.companies.insert(id, c.clone());
        d.record(cx, RecordKind::Company, id, "created");
        Ok(c)
    }

    async fn update_company(&self, cx: &CallContext, id: i64, p: CompanyPatch) -> HostResult<Company> {
        if let Some(name) = &p.name {
            check_name(name, "name")?;
        }
        let mut d = self.lock();
        let c = d.companies.get_mut(&id).ok_or_else(|| not_found("company", id))?;
        if let Some(v) = p.name {
            c.name = v;
        }
        if let Some(v) = p.domain {
            c.domain = v;
        }
        if let Some(v) = p.phone {
            c.phone = v;
        }
        if let Some(v) = p.owner_id {
            c.owner_id = v;
        }
        if let Some(v) = p.tags {
            c.tags = v;
        }
        if let Some(v) = p.custom {
            c.custom = merge_custom(&c.custom, &v);
        }
        c.updated_at = now_ms();
        let c = c.clone();
        d.record(cx, RecordKind::Company, id, "updated");
        Ok(c)
    }

    async fn get_deal(&self, _cx: &CallContext, id: i64) -> HostResult<Deal> {
        self.lock().deals.get(&id).cloned().ok_or_else(|| not_found("deal", id))
    }

    async fn find_deals(&self, _cx: &CallContext, f: DealFilter) -> HostResult<Vec<Deal>> {
        let d = self.lock();
        Ok(d.deals
            .values()
            .rev()
            .filter(|x| matches_query(&f.query, &[Some(&x.title)]))
            .filter(|x| f.pipeline_id.is_none_or(|v| x.pipeline_id == v))
            .filter(|x| f.stage_id.is_none_or(|v| x.stage_id == v))
            .filter(|x| f.status.is_none_or(|v| x.status == v))
            .filter(|x| f.owner_id.is_none_or(|v| x.owner_id == Some(v)))
            .filter(|x| f.contact_id.is_none_or(|v| x.contact_id == Some(v)))
            .filter(|x| f.company_id.is_none_or(|v| x.company_id == Some(v)))
            .filter(|x| f.stage_changed_before.is_none_or(|v| x.stage_changed_at < v))
            .take(list_limit(f.limit))
            .cloned()
            .collect())
    }

    async fn create_deal(&self, cx: &CallContext, new: NewDeal) -> HostResult<Deal> {
        check_name(&new.title, "title")?;
        if new.amount_minor < 0 {
            return Err(HostError::Invalid("amount_minor: must not be negative".into()));
        }
        let mut d = self.lock();
        let id = d.take_id();
        let now = now_ms();
        let x = Deal {
            id,
            title: new.title,
            amount_minor: new.amount_minor,
            currency: new.currency,
            pipeline_id: new.pipeline_id,
            stage_id: new.stage_id,
            contact_id: new.contact_id,
            company_id: new.company_id,
            owner_id: new.owner_id,
            expected_close: new.expected_close,
            status: DealStatus::Open,
            closed_at: None,
            tags: new.tags,
            custom: new.custom,
            created_at: now,
            updated_at: now,
            stage_changed_at: now,
        };
        d.deals.insert(id, x.clone());
        d.record(cx, RecordKind::Deal, id, "created");
        Ok(x)
    }

    async fn update_deal(&self, cx: &CallContext, id: i64, p: DealPatch) -> HostResult<Deal> {
        if let Some(t) = &p.title {
            check_name(t, "title")?;
        }
        let mut d = self.lock();
        let x = d.deals.get_mut(&id).ok_or_else(|| not_found("deal", id))?;
        let now = now_ms();
        if let Some(v) = p.title {
            x.title = v;
        }
        if let Some(v) = p.amount_minor {
            x.amount_minor = v;
        }
        if let Some(v) = p.currency {
            x.currency = v;
        }
        // Stage kinds live in Postgres; in memory a stage move only restarts the clock.
        if let Some(v) = p.stage_id
            && v != x.stage_id
        {
            x.stage_id = v;
            x.stage_changed_at = now;
        }
        if let Some(v) = p.contact_id {
            x.contact_id = v;
        }
        if let Some(v) = p.company_id {
            x.company_id = v;
        }
        if let Some(v) = p.owner_id {
            x.owner_id = v;
        }
        if let Some(v) = p.expected_close {
            x.expected_close = v;
        }
        if let Some(v) = p.tags {
            x.tags = v;
        }
        if let Some(v) = p.custom {
            x.custom = merge_custom(&x.custom, &v);
        }
        x.updated_at = now;
        let x = x.clone();
        d.record(cx, RecordKind::Deal, id, "updated");
        Ok(x)
    }

    async fn get_task(&self, _cx: &CallContext, id: i64) -> HostResult<Task> {
        self.lock().tasks.get(&id).cloned().ok_or_else(|| not_found("task", id))
    }

    async fn find_tasks(&self, _cx: &CallContext, f: TaskFilter) -> HostResult<Vec<Task>> {
        let d = self.lock();
        Ok(d.tasks
            .values()
            .rev()
            .filter(|t| f.assignee_id.is_none_or(|v| t.assignee_id == Some(v)))
            .filter(|t| f.done.is_none_or(|v| t.done == v))
            .filter(|t| f.due_before.is_none_or(|v| t.due_at.is_some_and(|due| due < v)))
            .filter(|t| f.contact_id.is_none_or(|v| t.contact_id == Some(v)))
            .filter(|t| f.company_id.is_none_or(|v| t.company_id == Some(v)))
            .filter(|t| f.deal_id.is_none_or(|v| t.deal_id == Some(v)))
            .take(list_limit(f.limit))
            .cloned()
            .collect())
    }

    async fn create_task(&self, cx: &CallContext, new: NewTask) -> HostResult<Task> {
        check_name(&new.title, "title")?;
        let links = [new.contact_id, new.company_id, new.deal_id].iter().flatten().count();
        if links > 1 {
            return Err(HostError::Invalid("a task links to at most one of contact, company, deal".into()));
        }
        let mut d = self.lock();
        if let Some(deal) = new.deal_id
            && !d.deals.contains_key(&deal)
        {
            return Err(not_found("deal", deal));
        }
        if let Some(contact) = new.contact_id
            && !d.contacts.contains_key(&contact)
        {
            return Err(not_found("contact", contact));
        }
        let id = d.take_id();
        let now = now_ms();
        let t = Task {
            id,
            title: new.title,
            due_at: new.due_at,
            done: false,
            done_at: None,
            assignee_id: new.assignee_id,
            contact_id: new.contact_id,
            company_id: new.company_id,
            deal_id: new.deal_id,
            created_at: now,
            updated_at: now,
        };
        d.tasks.insert(id, t.clone());
        d.record(cx, RecordKind::Task, id, "created");
        Ok(t)
    }

    async fn update_task(&self, cx: &CallContext, id: i64, p: TaskPatch) -> HostResult<Task> {
        if let Some(t) = &p.title {
            check_name(t, "title")?;
        }
        let mut d = self.lock();
        let t = d.tasks.get_mut(&id).ok_or_else(|| not_found("task", id))?;
        let now = now_ms();
        if let Some(v) = p.title {
            t.title = v;
        }
        if let Some(v) = p.due_at {
            t.due_at = v;
        }
        if let Some(v) = p.done {
            t.done = v;
            t.done_at = v.then_some(now);
        }
        if let Some(v) = p.assignee_id {
            t.assignee_id = v;
        }
        t.updated_at = now;
        let t = t.clone();
        d.record(cx, RecordKind::Task, id, "updated");
        Ok(t)
    }

    async fn get_note(&self, _cx: &CallContext, id: i64) -> HostResult<Note> {
        self.lock().notes.get(&id).cloned().ok_or_else(|| not_found("note", id))
    }

    async fn find_notes(&self, _cx: &CallContext, f: NoteFilter) -> HostResult<Vec<Note>> {
        let d = self.lock();
        Ok(d.notes
            .values()
            .rev()
            .filter(|n| f.contact_id.is_none_or(|v| n.contact_id == Some(v)))
            .filter(|n| f.company_id.is_none_or(|v| n.company_id == Some(v)))
            .filter(|n| f.deal_id.is_none_or(|v| n.deal_id == Some(v)))
            .filter(|n| f.task_id.is_none_or(|v| n.task_id == Some(v)))
            .take(list_limit(f.limit))
            .cloned()
            .collect())
    }

    async fn create_note(&self, cx: &CallContext, new: NewNote) -> HostResult<Note> {
        if new.body.trim().is_empty() || new.body.chars().count() > 20_000 {
            return Err(HostError::Invalid("body: must be 1 to 20000 characters".into()));
        }
        let links = [new.contact_id, new.company_id, new.deal_id, new.task_id].iter().flatten().count();
        if links != 1 {
            return Err(HostError::Invalid("a note belongs to exactly one of contact, company, deal, task".into()));
        }
        let mut d = self.lock();
        let id = d.take_id();
        let now = now_ms();
        let n = Note {
            id,
            body: new.body,
            author_id: cx.acting_user,
            contact_id: new.contact_id,
            company_id: new.company_id,
            deal_id: new.deal_id,
            task_id: new.task_id,
            created_at: now,
            updated_at: now,
        };
        d.notes.insert(id, n.clone());
        d.record(cx, RecordKind::Note, id, "created");
        Ok(n)
    }

    async fn update_note(&self, cx: &CallContext, id: i64, p: NotePatch) -> HostResult<Note> {
        let mut d = self.lock();
        let n = d.notes.get_mut(&id).ok_or_else(|| not_found("note", id))?;
        if let Some(body) = p.body {
            if body.trim().is_empty() || body.chars().count() > 20_000 {
                return Err(HostError::Invalid("body: must be 1 to 20000 characters".into()));
            }
            n.body = body;
        }
        n.updated_at = now_ms();
        let n = n.clone();
        d.record(cx, RecordKind::Note, id, "updated");
        Ok(n)
    }

    async fn record_activity(
        &self,
        _cx: &CallContext,
        kind: RecordKind,
        id: i64,
        limit: usize,
    ) -> HostResult<Vec<Activity>> {
        let d = self.lock();
        let mut found: Vec<Activity> =
            d.activity.iter().filter(|a| a.record_kind == kind && a.record_id == id).cloned().collect();
        found.sort_by_key(|a| std::cmp::Reverse(a.at));
        found.truncate(limit);
        Ok(found)
    }
}

impl WorkflowHost for MemoryServices {
    async fn state_get(&self, _cx: &CallContext, key: &str) -> HostResult<Option<String>> {
        Ok(self.lock().state.get(key).cloned())
    }

    async fn state_set(&self, _cx: &CallContext, key: &str, value: &str) -> HostResult<()> {
        self.lock().state.insert(key.to_string(), value.to_string());
        Ok(())
    }

    async fn state_delete(&self, _cx: &CallContext, key: &str) -> HostResult<()> {
        self.lock().state.remove(key);
        Ok(())
    }

    async fn secret(&self, _cx: &CallContext, name: &str) -> HostResult<String> {
        self.lock().secrets.get(name).cloned().ok_or_else(|| HostError::NotFound(format!("no secret named {name}")))
    }

    async fn notify(&self, _cx: &CallContext, user_id: i64, text: &str) -> HostResult<()> {
        self.lock().notifications.push(Notification { user_id, text: text.to_string() });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn reads_absolute_and_relative_times() {
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Ok(1000));
        let now = chrono::Utc::now().timestamp_millis();
        let three_days_ago = parse_time("-3d").unwrap();
        assert!((now - 3 * 86_400_000 - three_days_ago).abs() < 5_000);
        assert!(parse_time("-3w").is_err());
        assert!(parse_time("yesterday").is_err());
    }
}
