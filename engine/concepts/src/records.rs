//! CRM records as the API, the store and workflow steps see them, plus the input shapes
//! that create and change them. Input types refuse unknown fields so a typo in a request
//! is an error rather than a silently ignored key.
//!
//! Patches distinguish "absent" (leave as is) from `null` (clear) with `Option<Option<T>>`.
//!
//! A record always carries every field, `null` when unset. The OpenAPI derive takes an
//! `Option` field for an optional one, so record fields say `#[schema(required)]`.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::custom_fields::FieldMatch;

/// Record ids are database identities.
pub type Id = i64;

/// Free-form custom fields: always a JSON object. `ToSchema` cannot see through the alias,
/// so fields of this type carry `#[schema(value_type = Object)]`.
pub type CustomFields = Map<String, Value>;

/// Who makes a change: the CRM user (if any) and, for changes made by a workflow step,
/// the run. Triggers use `origin_run` to avoid reacting to their own writes in a loop.
/// `token_id` is the API token behind a change made over the API, which tells who really
/// acted when an admin token or the bot's delegate token acted for `user_id`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub user_id: Option<Id>,
    pub origin_run: Option<Uuid>,
    #[serde(default)]
    pub token_id: Option<Id>,
}

impl Actor {
    pub fn user(user_id: Id) -> Actor {
        Actor { user_id: Some(user_id), origin_run: None, token_id: None }
    }
    /// Changes made by the system itself (demo data, migrations of data).
    pub fn system() -> Actor {
        Actor::default()
    }
}

/// The kinds of record that have activity, outbox events and search hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Contact,
    Company,
    Pipeline,
    Deal,
    Task,
    Note,
    User,
}

impl RecordKind {
    pub const ALL: [RecordKind; 7] = [
        RecordKind::Contact,
        RecordKind::Company,
        RecordKind::Pipeline,
        RecordKind::Deal,
        RecordKind::Task,
        RecordKind::Note,
        RecordKind::User,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Contact => "contact",
            RecordKind::Company => "company",
            RecordKind::Pipeline => "pipeline",
            RecordKind::Deal => "deal",
            RecordKind::Task => "task",
            RecordKind::Note => "note",
            RecordKind::User => "user",
        }
    }

    /// The plural used in URLs and in `kinds=contacts,deals`.
    pub fn plural(self) -> &'static str {
        match self {
            RecordKind::Contact => "contacts",
            RecordKind::Company => "companies",
            RecordKind::Pipeline => "pipelines",
            RecordKind::Deal => "deals",
            RecordKind::Task => "tasks",
            RecordKind::Note => "notes",
            RecordKind::User => "users",
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown record kind {0:?}: expected contact, company, pipeline, deal, task, note or user")]
pub struct UnknownRecordKind(pub String);

impl FromStr for RecordKind {
    type Err = UnknownRecordKind;
    /// Accepts the singular and the plural form.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RecordKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s || k.plural() == s)
            .ok_or_else(|| UnknownRecordKind(s.to_string()))
    }
}

/// Deserializes a present field (even `null`) as `Some(..)`, so that with `#[serde(default)]`
/// an absent field stays `None`: the difference between "leave it" and "clear it".
pub fn nullable<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

// ---------------------------------------------------------------------------------------
// Companies

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Company {
    pub id: Id,
    pub name: String,
    #[schema(required)]
    pub domain: Option<String>,
    #[schema(required)]
    pub phone: Option<String>,
    #[schema(required)]
    pub owner_id: Option<Id>,
    pub tags: Vec<String>,
    #[schema(value_type = Object)]
    pub custom: CustomFields,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCompany {
    pub name: String,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub owner_id: Option<Id>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub custom: CustomFields,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompanyPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub domain: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<Option<Id>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// merged into the record's custom fields: keys given are set, a `null` removes one
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub custom: Option<CustomFields>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompanyFilter {
    pub owner_id: Option<Id>,
    pub tag: Option<String>,
    /// fuzzy text over the name
    pub q: Option<String>,
    /// custom fields to match (`?field.KEY=VALUE`)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldMatch>,
}

// ---------------------------------------------------------------------------------------
// Contacts

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Contact {
    pub id: Id,
    pub name: String,
    #[schema(required)]
    pub email: Option<String>,
    #[schema(required)]
    pub phone: Option<String>,
    #[schema(required)]
    pub company_id: Option<Id>,
    #[schema(required)]
    pub owner_id: Option<Id>,
    pub tags: Vec<String>,
    #[schema(value_type = Object)]
    pub custom: CustomFields,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContact {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub company_id: Option<Id>,
    #[serde(default)]
    pub owner_id: Option<Id>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub custom: CustomFields,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub company_id: Option<Option<Id>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<Option<Id>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// merged into the record's custom fields: keys given are set, a `null` removes one
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub custom: Option<CustomFields>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactFilter {
    pub owner_id: Option<Id>,
    pub company_id: Option<Id>,
    pub tag: Option<String>,
    /// fuzzy text over name, email and phone
    pub q: Option<String>,
    /// custom fields to match (`?field.KEY=VALUE`)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldMatch>,
}

// ---------------------------------------------------------------------------------------
// Pipelines and stages

/// What reaching a stage means for a deal: `won`/`lost` close it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    #[default]
    Open,
    Won,
    Lost,
}

impl StageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StageKind::Open => "open",
            StageKind::Won => "won",
            StageKind::Lost => "lost",
        }
    }
    /// The status a deal takes when it enters a stage of this kind.
    pub fn deal_status(self) -> DealStatus {
        match self {
            StageKind::Open => DealStatus::Open,
            StageKind::Won => DealStatus::Won,
            StageKind::Lost => DealStatus::Lost,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Stage {
    pub id: Id,
    pub pipeline_id: Id,
    pub name: String,
    pub position: i32,
    pub kind: StageKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Pipeline {
    pub id: Id,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// ordered by position
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStage {
    pub name: String,
    #[serde(default)]
    pub kind: StageKind,
}

/// Stages are positioned in the order given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPipeline {
    pub name: String,
    pub stages: Vec<NewStage>,
}

// ---------------------------------------------------------------------------------------
// Deals

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DealStatus {
    #[default]
    Open,
    Won,
    Lost,
}

impl DealStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DealStatus::Open => "open",
            DealStatus::Won => "won",
            DealStatus::Lost => "lost",
        }
    }
}

impl FromStr for DealStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "open" => Ok(DealStatus::Open),
            "won" => Ok(DealStatus::Won),
            "lost" => Ok(DealStatus::Lost),
            other => Err(format!("unknown deal status {other:?}: expected open, won or lost")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Deal {
    pub id: Id,
    pub title: String,
    /// money in minor units (cents) of `currency`
    pub amount_minor: i64,
    pub currency: String,
    pub pipeline_id: Id,
    pub stage_id: Id,
    #[schema(required)]
    pub contact_id: Option<Id>,
    #[schema(required)]
    pub company_id: Option<Id>,
    #[schema(required)]
    pub owner_id: Option<Id>,
    #[schema(required)]
    pub expected_close: Option<NaiveDate>,
    /// follows the kind of the current stage
    pub status: DealStatus,
    #[schema(required)]
    pub closed_at: Option<DateTime<Utc>>,
    pub tags: Vec<String>,
    #[schema(value_type = Object)]
    pub custom: CustomFields,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub stage_changed_at: DateTime<Utc>,
}

/// Without `stage_id` the deal starts in the first stage of `pipeline_id`; without either,
/// in the first stage of the oldest pipeline. With only `stage_id`, the pipeline is the
/// stage's own.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeal {
    pub title: String,
    #[serde(default)]
    pub amount_minor: i64,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub pipeline_id: Option<Id>,
    #[serde(default)]
    pub stage_id: Option<Id>,
    #[serde(default)]
    pub contact_id: Option<Id>,
    #[serde(default)]
    pub company_id: Option<Id>,
    #[serde(default)]
    pub owner_id: Option<Id>,
    #[serde(default)]
    pub expected_close: Option<NaiveDate>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub custom: CustomFields,
}

/// `stage_id` here moves the deal like `move_stage` does (it must be a stage of the deal's
/// pipeline, or of `pipeline_id` when that is given too).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DealPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_id: Option<Id>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<Option<Id>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub company_id: Option<Option<Id>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<Option<Id>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub expected_close: Option<Option<NaiveDate>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// merged into the record's custom fields: keys given are set, a `null` removes one
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub custom: Option<CustomFields>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveDeal {
    pub stage_id: Id,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DealFilter {
    pub pipeline_id: Option<Id>,
    pub stage_id: Option<Id>,
    pub status: Option<DealStatus>,
    pub owner_id: Option<Id>,
    pub contact_id: Option<Id>,
    pub company_id: Option<Id>,
    /// fuzzy text over the title
    pub q: Option<String>,
    /// only deals whose stage last changed before this instant (stale deals)
    #[serde(default)]
    pub stage_changed_before: Option<DateTime<Utc>>,
    /// custom fields to match (`?field.KEY=VALUE`)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldMatch>,
}

// ---------------------------------------------------------------------------------------
// Tasks

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Task {
    pub id: Id,
    pub title: String,
    #[schema(required)]
    pub due_at: Option<DateTime<Utc>>,
    pub done: bool,
    #[schema(required)]
    pub done_at: Option<DateTime<Utc>>,
    #[schema(required)]
    pub assignee_id: Option<Id>,
    /// the one record the task is about, if any
    #[schema(required)]
    pub contact_id: Option<Id>,
    #[schema(required)]
    pub company_id: Option<Id>,
    #[schema(required)]
    pub deal_id: Option<Id>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub custom: CustomFields,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    pub title: String,
    #[serde(default)]
    pub due_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub assignee_id: Option<Id>,
    #[serde(default)]
    pub contact_id: Option<Id>,
    #[serde(default)]
    pub company_id: Option<Id>,
    #[serde(default)]
    pub deal_id: Option<Id>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub custom: CustomFields,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub due_at: Option<Option<DateTime<Utc>>>,
    /// `true` completes the task (sets done_at), `false` reopens it
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done: Option<bool>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub assignee_id: Option<Option<Id>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<Option<Id>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub company_id: Option<Option<Id>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub deal_id: Option<Option<Id>>,
    /// merged into the record's custom fields: keys given are set, a `null` removes one
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub custom: Option<CustomFields>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskFilter {
    pub assignee_id: Option<Id>,
    pub done: Option<bool>,
    pub due_before: Option<DateTime<Utc>>,
    pub deal_id: Option<Id>,
    pub contact_id: Option<Id>,
    pub company_id: Option<Id>,
    /// custom fields to match (`?field.KEY=VALUE`)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldMatch>,
}

// ---------------------------------------------------------------------------------------
// Notes

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Note {
    pub id: Id,
    pub body: String,
    #[schema(required)]
    pub author_id: Option<Id>,
    /// exactly one of these is set
    #[schema(required)]
    pub contact_id: Option<Id>,
    #[schema(required)]
    pub company_id: Option<Id>,
    #[schema(required)]
    pub deal_id: Option<Id>,
    #[schema(required)]
    pub task_id: Option<Id>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The author is the acting user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    pub body: String,
    #[serde(default)]
    pub contact_id: Option<Id>,
    #[serde(default)]
    pub company_id: Option<Id>,
    #[serde(default)]
    pub deal_id: Option<Id>,
    #[serde(default)]
    pub task_id: Option<Id>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotePatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteFilter {
    pub contact_id: Option<Id>,
    pub company_id: Option<Id>,
    pub deal_id: Option<Id>,
    pub task_id: Option<Id>,
}

// ---------------------------------------------------------------------------------------
// Lists, activity, search

/// One page request. `sort` is a field name, `-field` for descending; `cursor` is the
/// opaque `next_cursor` of the previous page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    pub sort: Option<String>,
}

impl PageRequest {
    pub const DEFAULT_LIMIT: u32 = 50;
    pub const MAX_LIMIT: u32 = 200;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    #[schema(required)]
    pub next_cursor: Option<String>,
}

/// One change to one record, with the record before and after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Activity {
    pub id: Id,
    pub at: DateTime<Utc>,
    #[schema(required)]
    pub actor_id: Option<Id>,
    #[schema(required)]
    pub origin_run: Option<Uuid>,
    /// the API token that made the change (an admin's or the bot's when acting for
    /// `actor_id`); null for changes by runs, triggers and the command line
    #[serde(default)]
    #[schema(required)]
    pub token_id: Option<Id>,
    pub record_kind: RecordKind,
    pub record_id: Id,
    /// created, updated, deleted, moved, completed
    pub action: String,
    #[schema(required)]
    pub before: Option<Value>,
    #[schema(required)]
    pub after: Option<Value>,
}

/// A record-change event from the outbox, as trigger consumers see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordEvent {
    pub id: Id,
    pub at: DateTime<Utc>,
    pub actor_id: Option<Id>,
    pub origin_run: Option<Uuid>,
    pub record_kind: RecordKind,
    pub record_id: Id,
    /// created, updated or deleted
    pub action: String,
    /// changed fields: `{"stage_id": [3, 4]}` (old, new)
    pub changes: Value,
    /// the record after the change (before it, for a deletion)
    pub record: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchHit {
    pub kind: RecordKind,
    pub id: Id,
    pub title: String,
    #[schema(required)]
    pub subtitle: Option<String>,
    /// 0..=1, higher is closer
    pub score: f32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_tells_absent_from_null() {
        let p: ContactPatch = serde_json::from_str(r#"{"email": null}"#).unwrap();
        assert_eq!(p.email, Some(None));
        assert_eq!(p.phone, None);
        assert_eq!(serde_json::to_value(&p).unwrap(), serde_json::json!({"email": null}));
    }

    #[test]
    fn inputs_refuse_unknown_fields() {
        let err = serde_json::from_str::<NewContact>(r#"{"name": "A", "nmae": "B"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `nmae`"), "{err}");
    }

    #[test]
    fn record_kind_parses_both_forms() {
        assert_eq!("contacts".parse::<RecordKind>().unwrap(), RecordKind::Contact);
        assert_eq!("company".parse::<RecordKind>().unwrap(), RecordKind::Company);
        assert!("people".parse::<RecordKind>().is_err());
    }
}
