//! Steps that wait instead of running a component: `wait` (a duration, or until a time a
//! template computes), `wait_event` (until a change of one record matches a filter, or a
//! timeout) and `approval` (until a person allowed to decide does, or a timeout). A run held at such a step is a row in Postgres with a wake time; no worker,
//! Redis entry or open transaction is spent on it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::manifest::EventFilter;

/// The longest comment a decision on an approval may carry.
pub const MAX_COMMENT_CHARS: usize = 1000;

/// The longest a run may wait at one step.
pub const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(366 * 24 * 3600);

/// `wait`: resume after `duration`, or at the time `until` renders to. Exactly one of them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitSpec {
    /// how long, e.g. `"90s"`, `"3d"`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// a template over `input` and earlier steps' outputs rendering an RFC 3339 time, e.g.
    /// `"{{steps.score.output.follow_up_at}}"`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// wake at that time only when it falls inside these hours, else at their next opening
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_hours: Option<crate::business_hours::BusinessHours>,
}

/// `wait_event`: resume when a change of one record matches, as a record-event trigger
/// would match it; or after `timeout`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitEventSpec {
    /// the record kind: contact, company, deal, task or note
    pub record: String,
    /// a template rendering the record's id, e.g. `"{{input.deal_id}}"`
    pub id: String,
    /// `created`, `updated`, `deleted`; empty means all three
    #[serde(default)]
    pub actions: Vec<String>,
    #[serde(default)]
    pub filter: EventFilter,
    /// how long to wait for the change, e.g. `"3d"`
    pub timeout: String,
    /// the successor that runs when the timeout comes first (the others are skipped); when
    /// the change comes first, every successor but this one runs. Unset: all successors
    /// run either way and read `timed_out` from the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_timeout: Option<String>,
}

/// `approval`: hold the run until a person allowed to decide approves or rejects, or the
/// timeout decides `on_timeout`. The decision, who made it and when are the output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalSpec {
    /// who may decide: `manager` (managers and admins) or `admin`
    pub role: String,
    /// the question, a template over `input` and the needed steps' outputs
    pub text: String,
    /// how long to wait for a decision, e.g. `"2d"`
    pub timeout: String,
    /// the decision the timeout makes: `approved` or `rejected`
    pub on_timeout: Decision,
    /// besides the role, only the owner of this deal, contact or company may decide (admins
    /// always may): a template of its id, e.g. `{ record = "deal", id = "{{input.deal_id}}" }`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_of: Option<OwnedRecord>,
    /// the successor that runs on a rejection (the others are skipped); on an approval
    /// every successor but this one runs. Unset: all run and read `decision`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_reject: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OwnedRecord {
    /// deal, contact or company
    pub record: String,
    /// a template rendering its id
    pub id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approved,
    Rejected,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approved => "approved",
            Decision::Rejected => "rejected",
        }
    }
}

/// What a step does: run a component, or wait.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StepKind<'a> {
    Component(&'a str),
    Wait(&'a WaitSpec),
    WaitEvent(&'a WaitEventSpec),
    Approval(&'a ApprovalSpec),
}

impl StepKind<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Component(_) => "component",
            StepKind::Wait(_) => "wait",
            StepKind::WaitEvent(_) => "wait_event",
            StepKind::Approval(_) => "approval",
        }
    }

    /// Whether the step holds the run instead of going to a worker.
    pub fn holds(&self) -> bool {
        !matches!(self, StepKind::Component(_))
    }
}
