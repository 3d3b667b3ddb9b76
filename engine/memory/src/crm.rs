//! The in-memory CRM and its `apply`: one generic path for every record kind (rows are
//! the records' JSON, as in the store), with the kind-specific parts in `kinds.rs`.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};
use crm_concepts::custom_fields::{self, FieldDefinition};
use crm_concepts::fields::Checked;
use crm_concepts::host_call::{HostCall, HostCallError, HostReply};
use crm_concepts::records::{Activity, Id, RecordKind};
use crm_runtime::{CallContext, HostCalls};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::fixture::{self, Fixture, FixtureError};
use crate::kinds::{self, Kind, Match};

/// A chat message a step sent through `notify`.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub user_id: i64,
    pub text: String,
    pub buttons: Vec<crm_concepts::message_button::Button>,
}

#[derive(Default)]
struct Data {
    rows: BTreeMap<RecordKind, BTreeMap<Id, Value>>,
    activity: Vec<Activity>,
    secrets: BTreeMap<String, String>,
    users: BTreeMap<Id, crm_concepts::user::UserProfile>,
    state: BTreeMap<String, Value>,
    notifications: Vec<Notification>,
    /// `ensure_task` keys (per workflow) of open tasks
    task_keys: BTreeMap<(String, String), Id>,
    next_id: Id,
    /// custom field definitions; a write of `custom` is checked against its kind's
    fields: Vec<FieldDefinition>,
}

#[derive(Default)]
pub struct MemoryCrm {
    data: Mutex<Data>,
}

type Answer = Result<HostReply, HostCallError>;

fn invalid(e: impl std::fmt::Display) -> HostCallError {
    HostCallError::Invalid(e.to_string())
}

fn typed<T: DeserializeOwned>(v: Value) -> Result<T, HostCallError> {
    serde_json::from_value(v).map_err(invalid)
}

fn fields_of<T: Serialize>(input: &T) -> Result<Map<String, Value>, HostCallError> {
    match serde_json::to_value(input).map_err(invalid)? {
        Value::Object(m) => Ok(m),
        other => Err(invalid(format!("expected an object, got {other}"))),
    }
}

fn time_of(v: Option<&Value>) -> Option<DateTime<Utc>> {
    v.and_then(|v| serde_json::from_value(v.clone()).ok())
}

fn matches(kind: &Kind, row: &Value, filter: &Map<String, Value>) -> bool {
    filter.iter().filter(|(_, want)| !want.is_null()).all(|(name, want)| {
        let rule = kind.filters.iter().find(|(n, _)| n == name).map(|(_, m)| m);
        match rule {
            Some(Match::Eq(field)) => row.get(*field) == Some(want),
            Some(Match::Tag) => row.get("tags").and_then(Value::as_array).is_some_and(|t| t.contains(want)),
            Some(Match::Text(fields)) => {
                let q = want.as_str().unwrap_or_default().trim().to_lowercase();
                q.is_empty()
                    || fields
                        .iter()
                        .any(|f| row.get(*f).and_then(Value::as_str).is_some_and(|v| v.to_lowercase().contains(&q)))
            }
            Some(Match::Before(field)) => match (time_of(row.get(*field)), time_of(Some(want))) {
                (Some(have), Some(cutoff)) => have < cutoff,
                _ => false,
            },
            // A filter field this table does not know matches nothing rather than everything.
            None => false,
        }
    })
}

impl MemoryCrm {
    /// A CRM with no records.
    pub fn empty() -> MemoryCrm {
        MemoryCrm::default()
    }

    /// A CRM holding the records of a fixture document (format in [`crate::fixture`]).
    pub fn from_json(text: &str) -> Result<MemoryCrm, FixtureError> {
        let mut f: Fixture = serde_json::from_str(text)?;
        let mut d = Data::default();
        for (kind, rows) in f.sections() {
            let table = d.rows.entry(kind.kind).or_default();
            for given in rows {
                let row = fixture::record(kind, given)?;
                let id = row.get("id").and_then(Value::as_i64).unwrap_or_default();
                table.insert(id, row);
            }
        }
        for (i, a) in f.activity.into_iter().enumerate() {
            let at = match &a.at {
                Some(v) => {
                    fixture::parse_time(v).map_err(|m| FixtureError::Invalid(format!("activity[{i}].at: {m}")))?
                }
                None => Utc::now(),
            };
            d.activity.push(Activity {
                id: i as Id + 1,
                at,
                actor_id: a.actor_id,
                origin_run: None,
                token_id: None,
                record_kind: a.record_kind,
                record_id: a.record_id,
                action: a.action,
                before: None,
                after: None,
            });
        }
        d.secrets = f.secrets;
        // Zones as the store keeps them: known, and spelled the IANA way.
        for (i, u) in f.users.iter_mut().enumerate() {
            let zone = crm_concepts::local_time::zone(&u.time_zone)
                .map_err(|e| FixtureError::Invalid(format!("users[{i}].time_zone: {e}")))?;
            u.time_zone = zone.name().to_string();
        }
        d.users = f.users.into_iter().map(|u| (u.id, u)).collect();
        d.state = f.state;
        for (i, new) in f.fields.into_iter().enumerate() {
            new.check().map_err(|e| FixtureError::Invalid(format!("fields[{i}]: {}: {}", e.field, e.message)))?;
            if d.fields.iter().any(|f| f.kind == new.kind && f.key == new.key) {
                return Err(FixtureError::Invalid(format!("fields[{i}]: {} {} is defined twice", new.kind, new.key)));
            }
            d.fields.push(FieldDefinition {
                id: i as Id + 1,
                kind: new.kind,
                key: new.key,
                label: new.label.trim().to_string(),
                field_type: new.field_type,
                required: new.required,
                choices: new.choices,
                created_at: Utc::now(),
            });
        }
        d.next_id = d.rows.values().flat_map(|t| t.keys()).max().copied().unwrap_or(0) + 1;
        Ok(MemoryCrm { data: Mutex::new(d) })
    }

    fn lock(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The messages steps sent through `notify`, oldest first.
    pub fn notifications(&self) -> Vec<Notification> {
        self.lock().notifications.clone()
    }

    /// The workflow state as it is now.
    pub fn state(&self) -> BTreeMap<String, Value> {
        self.lock().state.clone()
    }

    /// Every record of a kind, as JSON, by id.
    pub fn records(&self, kind: RecordKind) -> Vec<Value> {
        self.lock().rows.get(&kind).map(|t| t.values().cloned().collect()).unwrap_or_default()
    }

    /// Answers one host call as the engine would, without journaling: a local run has
    /// nothing to repeat.
    pub fn apply(&self, workflow: &str, acting_user: Option<Id>, call: HostCall) -> Answer {
        call.check()?;
        let mut d = self.lock();
        let d = &mut *d;
        use HostCall::*;
        match call {
            GetContact { id } => d.get(&kinds::CONTACT, id).and_then(typed).map(HostReply::Contact),
            GetCompany { id } => d.get(&kinds::COMPANY, id).and_then(typed).map(HostReply::Company),
            GetDeal { id } => d.get(&kinds::DEAL, id).and_then(typed).map(HostReply::Deal),
            GetTask { id } => d.get(&kinds::TASK, id).and_then(typed).map(HostReply::Task),
            GetNote { id } => d.get(&kinds::NOTE, id).and_then(typed).map(HostReply::Note),
            FindContacts { filter, limit } => d.find(&kinds::CONTACT, &filter, limit).map(HostReply::Contacts),
            FindCompanies { filter, limit } => d.find(&kinds::COMPANY, &filter, limit).map(HostReply::Companies),
            FindDeals { filter, limit } => {
                let oldest_first = filter.stage_changed_before.is_some();
                let mut deals: Vec<crm_concepts::records::Deal> = d.find(&kinds::DEAL, &filter, u32::MAX)?;
                if oldest_first {
                    deals.sort_by_key(|x| x.stage_changed_at);
                }
                deals.truncate(limit as usize);
                Ok(HostReply::Deals(deals))
            }
            FindTasks { filter, limit } => d.find(&kinds::TASK, &filter, limit).map(HostReply::Tasks),
            FindNotes { filter, limit } => d.find(&kinds::NOTE, &filter, limit).map(HostReply::Notes),
            CreateContact { fields } => {
                fields.check()?;
                if let Some(email) = &fields.email {
                    let taken = d.rows.get(&RecordKind::Contact).is_some_and(|t| {
                        t.values().any(|c| {
                            c.get("email").and_then(Value::as_str).is_some_and(|e| e.eq_ignore_ascii_case(email))
                        })
                    });
                    if taken {
                        return Err(HostCallError::Conflict("a contact with this email already exists".into()));
                    }
                }
                d.create(&kinds::CONTACT, fields_of(&fields)?, acting_user).and_then(typed).map(HostReply::Contact)
            }
            CreateCompany { fields } => {
                fields.check()?;
                d.create(&kinds::COMPANY, fields_of(&fields)?, acting_user).and_then(typed).map(HostReply::Company)
            }
            CreateDeal { fields } => {
                fields.check()?;
                let mut row = fields_of(&fields)?;
                row.retain(|_, v| !v.is_null());
                row.insert("stage_changed_at".into(), json!(Utc::now()));
                d.create(&kinds::DEAL, row, acting_user).and_then(typed).map(HostReply::Deal)
            }
            CreateTask { fields } => {
                fields.check()?;
                d.create(&kinds::TASK, fields_of(&fields)?, acting_user).and_then(typed).map(HostReply::Task)
            }
            EnsureTask { key, fields } => {
                fields.check()?;
                let slot = (workflow.to_string(), key);
                let open = d.task_keys.get(&slot).and_then(|id| d.get(&kinds::TASK, *id).ok());
                if let Some(task) = open.filter(|t| t.get("done") == Some(&Value::Bool(false))) {
                    return typed(task).map(HostReply::Task);
                }
                let task = d.create(&kinds::TASK, fields_of(&fields)?, acting_user)?;
                if let Some(id) = task.get("id").and_then(Value::as_i64) {
                    d.task_keys.insert(slot, id);
                }
                typed(task).map(HostReply::Task)
            }
            CreateNote { fields } => {
                fields.check()?;
                let mut row = fields_of(&fields)?;
                row.insert("author_id".into(), json!(acting_user));
                d.create(&kinds::NOTE, row, acting_user).and_then(typed).map(HostReply::Note)
            }
            UpdateContact { id, patch } => {
                patch.check()?;
                d.update(&kinds::CONTACT, id, fields_of(&patch)?, acting_user).and_then(typed).map(HostReply::Contact)
            }
            UpdateCompany { id, patch } => {
                patch.check()?;
                d.update(&kinds::COMPANY, id, fields_of(&patch)?, acting_user).and_then(typed).map(HostReply::Company)
            }
            UpdateDeal { id, patch } => {
                patch.check()?;
                d.update(&kinds::DEAL, id, fields_of(&patch)?, acting_user).and_then(typed).map(HostReply::Deal)
            }
            UpdateTask { id, patch } => {
                patch.check()?;
                d.update(&kinds::TASK, id, fields_of(&patch)?, acting_user).and_then(typed).map(HostReply::Task)
            }
            UpdateNote { id, patch } => {
                patch.check()?;
                d.update(&kinds::NOTE, id, fields_of(&patch)?, acting_user).and_then(typed).map(HostReply::Note)
            }
            RecordActivity { kind, id, limit } => {
                let mut found: Vec<Activity> =
                    d.activity.iter().filter(|a| a.record_kind == kind && a.record_id == id).cloned().collect();
                found.sort_by_key(|a| std::cmp::Reverse(a.at));
                found.truncate(limit as usize);
                Ok(HostReply::Activity(found))
            }
            StateGet { key } => Ok(HostReply::State(d.state.get(&key).cloned())),
            StateSet { key, value } => {
                d.state.insert(key, value);
                Ok(HostReply::Done)
            }
            StateDelete { key } => {
                d.state.remove(&key);
                Ok(HostReply::Done)
            }
            Secret { name } => d
                .secrets
                .get(&name)
                .cloned()
                .map(HostReply::Secret)
                .ok_or_else(|| HostCallError::NotFound(format!("no secret named {name}"))),
            // The engine's answers, word for word: a user is a row, and a message needs one.
            GetUser { id } => d
                .users
                .get(&id)
                .cloned()
                .map(HostReply::User)
                .ok_or_else(|| HostCallError::NotFound(format!("user {id} not found"))),
            Notify { user_id, text, buttons } => {
                if !d.users.contains_key(&user_id) {
                    return Err(HostCallError::NotFound(format!("user {user_id} does not exist")));
                }
                d.notifications.push(Notification { user_id, text, buttons });
                Ok(HostReply::Done)
            }
        }
    }
}

impl Data {
    fn get(&self, kind: &Kind, id: Id) -> Result<Value, HostCallError> {
        self.rows
            .get(&kind.kind)
            .and_then(|t| t.get(&id))
            .cloned()
            .ok_or_else(|| HostCallError::NotFound(format!("{} {id} not found", kind.kind)))
    }

    /// Newest first, like the store's default sort.
    fn find<F: Serialize, T: DeserializeOwned>(
        &self,
        kind: &Kind,
        filter: &F,
        limit: u32,
    ) -> Result<Vec<T>, HostCallError> {
        let filter = fields_of(filter)?;
        let Some(table) = self.rows.get(&kind.kind) else { return Ok(Vec::new()) };
        table
            .values()
            .rev()
            .filter(|row| matches(kind, row, &filter))
            .take(limit as usize)
            .map(|row| typed(row.clone()))
            .collect()
    }

    fn check_refs(&self, kind: &Kind, row: &Map<String, Value>) -> Result<(), HostCallError> {
        for (field, target) in kind.refs {
            if let Some(id) = row.get(*field).and_then(Value::as_i64)
                && !self.rows.get(target).is_some_and(|t| t.contains_key(&id))
            {
                return Err(invalid(format!("{field}: {target} {id} does not exist")));
            }
        }
        Ok(())
    }

    fn record(&mut self, kind: RecordKind, id: Id, action: &str, actor: Option<Id>) {
        let next = self.activity.len() as Id + 1;
        self.activity.push(Activity {
            id: next,
            at: Utc::now(),
            actor_id: actor,
            origin_run: None,
            token_id: None,
            record_kind: kind,
            record_id: id,
            action: action.to_string(),
            before: None,
            after: None,
        });
    }

    /// The row's `custom` checked against its kind's definitions and put in stored form,
    /// as the store does on every write that sets it.
    fn check_custom(&self, kind: RecordKind, row: &mut Map<String, Value>) -> Result<(), HostCallError> {
        let definitions: Vec<FieldDefinition> = self.fields.iter().filter(|f| f.kind == kind).cloned().collect();
        if definitions.is_empty() {
            return Ok(());
        }
        if let Some(Value::Object(custom)) = row.get_mut("custom") {
            custom_fields::check_custom(&definitions, custom)
                .map_err(|e| HostCallError::Invalid(format!("{}: {}", e.field, e.message)))?;
        }
        Ok(())
    }

    fn create(&mut self, kind: &Kind, fields: Map<String, Value>, actor: Option<Id>) -> Result<Value, HostCallError> {
        self.check_refs(kind, &fields)?;
        let now = Utc::now();
        let id = self.next_id.max(1);
        let sets_custom = fields.get("custom").is_some_and(Value::is_object);
        let mut row = fixture::defaults(kind.kind, now);
        row.extend(fields.into_iter().filter(|(_, v)| !v.is_null()));
        if sets_custom {
            self.check_custom(kind.kind, &mut row)?;
        }
        row.insert("id".into(), json!(id));
        row.insert("updated_at".into(), json!(now));
        let row = fixture::typed_row(kind.kind, row).map_err(invalid)?;
        self.next_id = id + 1;
        self.rows.entry(kind.kind).or_default().insert(id, row.clone());
        self.record(kind.kind, id, "created", actor);
        Ok(row)
    }

    /// A patch as the store applies it: present fields replace (`null` clears), `custom`
    /// merges key by key (`null` removes a key).
    fn update(
        &mut self,
        kind: &Kind,
        id: Id,
        patch: Map<String, Value>,
        actor: Option<Id>,
    ) -> Result<Value, HostCallError> {
        self.check_refs(kind, &patch)?;
        let Value::Object(mut row) = self.get(kind, id)? else {
            return Err(invalid("a stored record is not an object"));
        };
        let now = Utc::now();
        let sets_custom = patch.get("custom").is_some_and(Value::is_object);
        for (field, value) in patch {
            match field.as_str() {
                "custom" => {
                    let custom = row.entry("custom").or_insert_with(|| json!({}));
                    if let (Some(have), Value::Object(changes)) = (custom.as_object_mut(), value) {
                        for (k, v) in changes {
                            if v.is_null() {
                                have.remove(&k);
                            } else {
                                have.insert(k, v);
                            }
                        }
                    }
                }
                "done" => {
                    let done = value.as_bool().unwrap_or(false);
                    row.insert("done_at".into(), if done { json!(now) } else { Value::Null });
                    row.insert(field, value);
                }
                // Stage kinds live in Postgres; in memory a stage move only restarts the clock.
                "stage_id" if row.get("stage_id") != Some(&value) => {
                    row.insert("stage_changed_at".into(), json!(now));
                    row.insert(field, value);
                }
                _ => {
                    row.insert(field, value);
                }
            }
        }
        if sets_custom {
            self.check_custom(kind.kind, &mut row)?;
        }
        row.insert("updated_at".into(), json!(now));
        let row = fixture::typed_row(kind.kind, row).map_err(invalid)?;
        self.rows.entry(kind.kind).or_default().insert(id, row.clone());
        self.record(kind.kind, id, "updated", actor);
        Ok(row)
    }
}

impl HostCalls for MemoryCrm {
    async fn call(&self, cx: &CallContext, _write_seq: Option<u32>, call: HostCall) -> Answer {
        self.apply(&cx.workflow, cx.acting_user, call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_concepts::message_button::{Button, ButtonAction};
    use crm_concepts::records::{ContactPatch, NewContact, NewNote, TaskFilter};

    fn crm() -> MemoryCrm {
        MemoryCrm::from_json(
            r#"{"contacts": [{"id": 1, "name": "Ann Lee", "email": "ann@x.io", "custom": {"a": 1}}],
                "tasks": [{"id": 2, "title": "Call", "contact_id": 1, "due_at": "-1d"}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn creates_and_patches_like_the_store() {
        let crm = crm();
        let HostReply::Contact(c) = crm
            .apply(
                "w",
                Some(7),
                HostCall::CreateContact { fields: NewContact { name: "Bo".into(), ..Default::default() } },
            )
            .unwrap()
        else {
            panic!("a contact")
        };
        assert_eq!(c.id, 3);
        let mut custom = Map::new();
        custom.insert("a".into(), Value::Null);
        custom.insert("b".into(), json!(2));
        let patch = ContactPatch { email: Some(None), custom: Some(custom), ..Default::default() };
        let HostReply::Contact(ann) = crm.apply("w", None, HostCall::UpdateContact { id: 1, patch }).unwrap() else {
            panic!("a contact")
        };
        assert_eq!(ann.email, None);
        assert_eq!(Value::Object(ann.custom), json!({"b": 2}));
    }

    #[test]
    fn applies_the_same_field_rules() {
        let crm = crm();
        let dup = NewContact { name: "Ann".into(), email: Some("ANN@x.io".into()), ..Default::default() };
        assert!(matches!(
            crm.apply("w", None, HostCall::CreateContact { fields: dup }),
            Err(HostCallError::Conflict(_))
        ));
        let orphan = NewNote { body: "hi".into(), deal_id: Some(99), ..Default::default() };
        let e = crm.apply("w", None, HostCall::CreateNote { fields: orphan }).unwrap_err();
        assert_eq!(e, HostCallError::Invalid("deal_id: deal 99 does not exist".into()));
    }

    #[test]
    fn checks_custom_writes_against_the_fixture_fields() {
        let crm = MemoryCrm::from_json(
            r#"{"contacts": [{"id": 1, "name": "Ann Lee", "custom": {"tier": "tin"}}],
                "fields": [{"kind": "contact", "key": "tier", "label": "Tier", "type": "choice",
                            "choices": ["gold", "silver"], "required": true}]}"#,
        )
        .unwrap();
        let mut custom = Map::new();
        custom.insert("tier".into(), json!("bronze"));
        let patch = ContactPatch { custom: Some(custom), ..Default::default() };
        let e = crm.apply("w", None, HostCall::UpdateContact { id: 1, patch }).unwrap_err();
        assert_eq!(e, HostCallError::Invalid("custom.tier: Tier must be one of gold, silver".into()));
        let e = crm
            .apply(
                "w",
                None,
                HostCall::CreateContact { fields: NewContact { name: "Bo".into(), ..Default::default() } },
            )
            .unwrap_err();
        assert_eq!(e, HostCallError::Invalid("custom.tier: Tier is required".into()));
        // A patch that leaves `custom` alone is not held up by the stored value.
        let patch = ContactPatch { email: Some(Some("ann@x.io".into())), ..Default::default() };
        assert!(crm.apply("w", None, HostCall::UpdateContact { id: 1, patch }).is_ok());
        let dup = r#"{"fields": [{"kind": "deal", "key": "k", "label": "K", "type": "text"},
                                 {"kind": "deal", "key": "k", "label": "K", "type": "number"}]}"#;
        assert!(MemoryCrm::from_json(dup).err().expect("refused").to_string().contains("defined twice"));
    }

    #[test]
    fn looking_up_or_messaging_an_unknown_user_is_not_found_as_in_the_engine() {
        let crm = MemoryCrm::from_json(
            r#"{"users": [{"id": 2, "name": "Sam", "time_zone": "asia/tokyo", "remind_before_minutes": 15}]}"#,
        )
        .unwrap();
        let HostReply::User(sam) = crm.apply("w", None, HostCall::GetUser { id: 2 }).unwrap() else { panic!("a user") };
        assert_eq!((sam.name.as_str(), sam.time_zone.as_str(), sam.remind_before_minutes), ("Sam", "Asia/Tokyo", 15));
        assert_eq!(
            crm.apply("w", None, HostCall::GetUser { id: 9 }),
            Err(HostCallError::NotFound("user 9 not found".into()))
        );
        let done = Button { label: "✅ Done".into(), action: ButtonAction::CompleteTask { task_id: 5 } };
        let to = |user_id| HostCall::Notify { user_id, text: "Call Ann".into(), buttons: vec![done.clone()] };
        assert_eq!(crm.apply("w", None, to(9)), Err(HostCallError::NotFound("user 9 does not exist".into())));
        assert_eq!(crm.apply("w", None, to(2)), Ok(HostReply::Done));
        assert_eq!(crm.notifications(), [Notification { user_id: 2, text: "Call Ann".into(), buttons: vec![done] }]);
    }

    #[test]
    fn buttons_are_refused_as_the_engine_refuses_them() {
        let crm = MemoryCrm::from_json(r#"{"users": [{"id": 2, "name": "Sam"}]}"#).unwrap();
        let later = |workflow: &str, input: Value| Button {
            label: "⏰ Later".into(),
            action: ButtonAction::StartRun { workflow: workflow.into(), input },
        };
        let send =
            |buttons: Vec<Button>| crm.apply("w", None, HostCall::Notify { user_id: 2, text: "hi".into(), buttons });
        assert!(
            matches!(send(vec![later("task-reminder", json!({"task_id": 1})); 9]), Err(HostCallError::Invalid(m)) if m.contains("at most 8"))
        );
        assert!(
            matches!(send(vec![later("Task Reminder", json!({}))]), Err(HostCallError::Invalid(m)) if m.contains("workflow name"))
        );
        assert!(
            matches!(send(vec![later("task-reminder", json!([1]))]), Err(HostCallError::Invalid(m)) if m.contains("JSON object"))
        );
        assert!(crm.notifications().is_empty(), "a refused message is not kept");
        assert!(matches!(
            MemoryCrm::from_json(r#"{"users": [{"id": 2, "name": "Sam", "time_zone": "Mars/Olympus"}]}"#),
            Err(FixtureError::Invalid(m)) if m.starts_with("users[0].time_zone")
        ));
    }

    #[test]
    fn filters_by_time() {
        let crm = crm();
        let filter = TaskFilter { due_before: Some(Utc::now()), ..Default::default() };
        let HostReply::Tasks(t) = crm.apply("w", None, HostCall::FindTasks { filter, limit: 10 }).unwrap() else {
            panic!("tasks")
        };
        assert_eq!(t.len(), 1);
    }
}
