//! A workflow manifest (`workflows/<name>/workflow.toml`): what starts a run, which WASM
//! steps it has and how they depend on each other, what each step may do, and how the
//! result reads in a chat. Parsing is strict (unknown keys are errors) and validation
//! collects every problem at once, each with the field it concerns, so an author fixes a
//! manifest in one pass.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::capability::{Capability, Grants};
use crate::step::StepLimits;
use crate::template::Template;
use crate::wait::{ApprovalSpec, MAX_WAIT, StepKind, WaitEventSpec, WaitSpec};

/// The longest a step may be allowed to run; beyond this a workflow should be split.
pub const MAX_STEP_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// More attempts than this only hides a broken step.
pub const MAX_ATTEMPTS: u32 = 20;
pub const MAX_STEPS: usize = 64;
/// A hundred years: past this a retention is "forever" (leave `retention_days` out).
pub const MAX_RETENTION_DAYS: u32 = 36_500;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    /// the author's version label (e.g. `1.2.0`); deploys also get a sequence number
    pub version: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub triggers: Vec<Trigger>,
    pub steps: Vec<StepSpec>,
    #[serde(default)]
    pub result: ResultSpec,
    /// days a finished run of this workflow is kept (with its steps, attempts, logs and
    /// delivered notifications) before the engine prunes it; overrides
    /// `CRM_RUN_RETENTION_DAYS` for this workflow
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// `/command arg…` in the Telegram bot
    BotCommand {
        command: String,
        #[serde(default)]
        description: String,
        #[serde(default)]
        args: Vec<ArgSpec>,
    },
    /// a schedule with seconds: `sec min hour day-of-month month day-of-week [year]`
    Cron {
        schedule: String,
        #[serde(default = "utc")]
        timezone: String,
        /// the run's input for every firing
        #[serde(default = "empty_object")]
        input: serde_json::Value,
    },
    /// a change of a CRM record, optionally narrowed by a filter
    RecordEvent {
        record: String,
        /// `created`, `updated`, `deleted`; empty means all three
        #[serde(default)]
        actions: Vec<String>,
        #[serde(default)]
        filter: EventFilter,
    },
    /// `POST /hooks/<path>`, signed with HMAC-SHA256 by the named webhook key (the path
    /// when none is named). Keys live apart from step secrets (`crm webhook key NAME`); `secret`
    /// is accepted as the key's old name.
    Webhook {
        path: String,
        #[serde(default, alias = "secret", skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
}

/// One argument of a bot command, in order: `/qualify 42` fills the first argument.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArgSpec {
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: ArgKind,
    #[serde(default = "yes")]
    pub required: bool,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ArgKind {
    #[default]
    String,
    Integer,
    Number,
    Boolean,
    /// the rest of the message, spaces included; only valid as the last argument
    Text,
}

/// Narrows a record-event trigger: every listed field must have changed, and every
/// `equals` field must hold the given value after the change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventFilter {
    #[serde(default)]
    pub changed: Vec<String>,
    #[serde(default)]
    pub equals: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    pub id: String,
    /// a component crate of `workflows/` or a cargo package beside the manifest (e.g.
    /// `lead-score`), a `.py` or `.js` step or a `.wasm` file relative to the manifest, or
    /// `sha256:<hex>` of a component the engine already stores. A step has a component or
    /// one of `wait`, `wait_event`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub component: String,
    /// hold the run for a time (no worker, no Redis entry: a row with a wake time)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<WaitSpec>,
    /// hold the run until a record changes as the filter says, or a timeout
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_event: Option<WaitEventSpec>,
    /// hold the run until a person allowed to decide approves or rejects, or a timeout
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalSpec>,
    #[serde(default)]
    pub needs: Vec<String>,
    #[serde(default = "empty_object")]
    pub config: serde_json::Value,
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// e.g. `"5s"`, `"250ms"`, `"2m"`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    #[serde(default)]
    pub retry: RetryPolicy,
    /// runs only when the run fails (and then whatever step failed), with the failure as
    /// its input (`deps.failure`: `step`, `code`, `message`); e.g. tell the owner. A
    /// component step that needs nothing and that no step needs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_failure: bool,
}

/// Retries apply to retryable errors only; the delay before attempt n+1 is
/// `min(backoff * 2^(n-1), max_backoff)`, scaled by a random factor in [0.5, 1.0] so a
/// burst of failures does not come back as a burst.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_backoff")]
    pub backoff: String,
    #[serde(default = "default_max_backoff")]
    pub max_backoff: String,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: default_attempts(), backoff: default_backoff(), max_backoff: default_max_backoff() }
    }
}

impl RetryPolicy {
    /// The delay before the attempt after `attempt` (1-based); `jitter` in [0, 1].
    pub fn delay_after(&self, attempt: u32, jitter: f64) -> Duration {
        let base = parse_duration(&self.backoff).unwrap_or(Duration::from_millis(200));
        let cap = parse_duration(&self.max_backoff).unwrap_or(Duration::from_secs(30));
        let exp = attempt.saturating_sub(1).min(30);
        let raw = base.saturating_mul(1u32 << exp).min(cap);
        raw.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }
}

/// How a finished run reads in a chat. Templates use `{{path}}` into
/// `{workflow, run_id, status, input, result, error, steps: {<id>: {output, status}}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResultSpec {
    /// the step whose output is the run's result; default: the only step nothing depends
    /// on, or an object of all such steps' outputs
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_template: Option<String>,
}

impl ResultSpec {
    /// Whether a run that ended as `status` reads in the workflow's own words. Without a
    /// template of its own the chat gets the bot's status line, in the reader's language.
    pub fn has_own_template(&self, status: crate::run::RunStatus) -> bool {
        match status {
            crate::run::RunStatus::Succeeded => self.template.is_some(),
            crate::run::RunStatus::Failed => self.failure_template.is_some(),
            _ => false,
        }
    }
}

pub const DEFAULT_SUCCESS_TEMPLATE: &str = "✅ {{workflow}} finished.";
pub const DEFAULT_FAILURE_TEMPLATE: &str = "❌ {{workflow}} failed at step {{error.step}}: {{error.message}}";

fn utc() -> String {
    "UTC".into()
}
fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}
fn yes() -> bool {
    true
}
fn default_attempts() -> u32 {
    3
}
fn default_backoff() -> String {
    "200ms".into()
}
fn default_max_backoff() -> String {
    "30s".into()
}

/// One problem in a manifest is located by a path such as `steps[2].needs[0]`.
pub use crate::fields::FieldError;

/// Everything wrong with a manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ManifestError {
    pub errors: Vec<FieldError>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid workflow manifest")?;
        for e in &self.errors {
            write!(f, "\n  {}: {}", e.field, e.message)?;
        }
        Ok(())
    }
}

impl ManifestError {
    fn one(field: &str, message: impl Into<String>) -> Self {
        ManifestError { errors: vec![FieldError { field: field.into(), message: message.into() }] }
    }
}

impl Manifest {
    /// Parses TOML and validates everything that does not need the component store.
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let manifest = Manifest::from_toml(text)?;
        manifest.validate(|_| true)?;
        Ok(manifest)
    }

    /// Parses TOML without validating; call [`Manifest::validate`] next.
    pub fn from_toml(text: &str) -> Result<Manifest, ManifestError> {
        toml::from_str(text).map_err(|e| {
            let field = e.span().map(|s| line_col(text, s.start)).unwrap_or_else(|| "manifest".into());
            ManifestError::one(&field, e.message().to_string())
        })
    }

    /// Checks the manifest; `component_known` says whether a step's component reference
    /// can be resolved (the deploy passes what was uploaded or is stored).
    pub fn validate(&self, component_known: impl Fn(&str) -> bool) -> Result<(), ManifestError> {
        let mut v = Vec::new();
        let mut err = |field: String, message: String| v.push(FieldError { field, message });

        if self.retention_days.is_some_and(|d| d == 0 || d > MAX_RETENTION_DAYS) {
            err("retention_days".into(), format!("must be between 1 and {MAX_RETENTION_DAYS} days"));
        }
        if !is_name(&self.name) {
            err(
                "name".into(),
                format!(
                    "{:?} is not a valid workflow name: use 1-63 lowercase letters, digits, '-' or '_', starting with a letter",
                    self.name
                ),
            );
        }
        if self.version.trim().is_empty() || self.version.len() > 64 {
            err("version".into(), "must be a non-empty label of at most 64 characters, e.g. \"1.0.0\"".into());
        }
        if self.description.len() > 2000 {
            err("description".into(), "must be at most 2000 characters".into());
        }
        self.validate_triggers(&mut err);

        if self.steps.iter().all(|s| s.on_failure) {
            err("steps".into(), "a workflow needs at least one step (besides on_failure steps)".into());
        }
        if self.steps.len() > MAX_STEPS {
            err("steps".into(), format!("at most {MAX_STEPS} steps are allowed"));
        }
        let mut ids = HashMap::new();
        for (i, s) in self.steps.iter().enumerate() {
            if !is_name(&s.id) {
                err(
                    format!("steps[{i}].id"),
                    format!(
                        "{:?} is not a valid step id: use 1-63 lowercase letters, digits, '-' or '_', starting with a letter",
                        s.id
                    ),
                );
            } else if ids.insert(s.id.as_str(), i).is_some() {
                err(format!("steps[{i}].id"), format!("duplicate step id {:?}", s.id));
            }
        }
        for (i, s) in self.steps.iter().enumerate() {
            let kinds = usize::from(!s.component.trim().is_empty())
                + usize::from(s.wait.is_some())
                + usize::from(s.wait_event.is_some());
            if kinds > 1 {
                err(format!("steps[{i}]"), "a step has one of `component`, `wait` or `wait_event`, not several".into());
            }
            if s.on_failure {
                if s.kind().holds() || s.component.trim().is_empty() {
                    err(format!("steps[{i}].on_failure"), "an on_failure step runs a component; it cannot wait".into());
                }
                if !s.needs.is_empty() {
                    err(
                        format!("steps[{i}].needs"),
                        "an on_failure step needs nothing: it runs when any step fails, with the failure as input"
                            .into(),
                    );
                }
                if let Some(d) = self.dependents(&s.id).next() {
                    err(
                        format!("steps[{i}].on_failure"),
                        format!(
                            "step {:?} needs {:?}, but an on_failure step runs only when the run fails",
                            d.id, s.id
                        ),
                    );
                }
                if self.result.output.as_deref() == Some(s.id.as_str()) {
                    err(
                        "result.output".into(),
                        format!("{:?} is an on_failure step; it has no output on success", s.id),
                    );
                }
            }
            if s.kind().holds() {
                self.validate_hold(i, s, &ids, &mut err);
            } else if s.component.trim().is_empty() {
                err(
                    format!("steps[{i}].component"),
                    "missing component (or declare the step a `wait`, `wait_event` or `approval`)".into(),
                );
            } else if !component_known(&s.component) {
                err(
                    format!("steps[{i}].component"),
                    format!(
                        "unknown component {:?}: name a cargo package, a .py or .js step or a .wasm file beside the manifest",
                        s.component
                    ),
                );
            }
            let mut seen = BTreeSet::new();
            for (j, n) in s.needs.iter().enumerate() {
                if !ids.contains_key(n.as_str()) {
                    err(
                        format!("steps[{i}].needs[{j}]"),
                        format!("step {:?} needs {:?}, which is not a step of this workflow", s.id, n),
                    );
                } else if n == &s.id {
                    err(format!("steps[{i}].needs[{j}]"), format!("step {:?} cannot depend on itself", s.id));
                } else if !seen.insert(n) {
                    err(format!("steps[{i}].needs[{j}]"), format!("{n:?} is listed twice"));
                }
            }
            if !s.config.is_object() {
                err(format!("steps[{i}].config"), "must be a table".into());
            }
            for (j, c) in s.capabilities.iter().enumerate() {
                if let Err(e) = c.parse::<Capability>() {
                    err(format!("steps[{i}].capabilities[{j}]"), e.to_string());
                }
            }
            if let Some(t) = &s.timeout {
                match parse_duration(t) {
                    Ok(d) if d.is_zero() || d > MAX_STEP_TIMEOUT => err(
                        format!("steps[{i}].timeout"),
                        format!("must be between 1ms and {}s", MAX_STEP_TIMEOUT.as_secs()),
                    ),
                    Ok(_) => {}
                    Err(e) => err(format!("steps[{i}].timeout"), e),
                }
            }
            if let Some(m) = s.memory_mb
                && !(1..=4096).contains(&m)
            {
                err(format!("steps[{i}].memory_mb"), "must be between 1 and 4096".into());
            }
            if !(1..=MAX_ATTEMPTS).contains(&s.retry.max_attempts) {
                err(format!("steps[{i}].retry.max_attempts"), format!("must be between 1 and {MAX_ATTEMPTS}"));
            }
            for (name, value) in [("backoff", &s.retry.backoff), ("max_backoff", &s.retry.max_backoff)] {
                if let Err(e) = parse_duration(value) {
                    err(format!("steps[{i}].retry.{name}"), e);
                }
            }
        }
        if let Some(cycle) = self.find_cycle() {
            err("steps".into(), format!("dependency cycle: {}", cycle.join(" -> ")));
        }

        if let Some(out) = &self.result.output
            && !ids.contains_key(out.as_str())
        {
            err("result.output".into(), format!("{out:?} is not a step of this workflow"));
        }
        for (field, t) in
            [("result.template", &self.result.template), ("result.failure_template", &self.result.failure_template)]
        {
            let Some(t) = t else { continue };
            match Template::parse(t) {
                Ok(tpl) => {
                    for path in tpl.paths() {
                        if let Some(msg) = check_template_path(&path, &ids) {
                            err(field.into(), msg);
                        }
                    }
                }
                Err(e) => err(field.into(), e.to_string()),
            }
        }
        if v.is_empty() { Ok(()) } else { Err(ManifestError { errors: v }) }
    }

    /// A waiting step: its time, template, record and branch, and nothing a worker would use.
    fn validate_hold(&self, i: usize, s: &StepSpec, ids: &HashMap<&str, usize>, err: &mut impl FnMut(String, String)) {
        let at = |f: &str| format!("steps[{i}].{f}");
        let check_wait = |field: String, d: &str, err: &mut dyn FnMut(String, String)| match parse_duration(d) {
            Ok(d) if d.is_zero() || d > MAX_WAIT => {
                err(field, format!("must be between 1ms and {} days", MAX_WAIT.as_secs() / 86_400))
            }
            Ok(_) => {}
            Err(e) => err(field, e),
        };
        let check_template = |field: String, t: &str, err: &mut dyn FnMut(String, String)| match Template::parse(t) {
            Ok(tpl) => {
                for path in tpl.paths() {
                    if let Some(msg) = check_step_template_path(&path, &s.id, &s.needs, ids) {
                        err(field.clone(), msg);
                    }
                }
            }
            Err(e) => err(field, e.to_string()),
        };
        let check_successor = |field: String, t: Option<&String>, err: &mut dyn FnMut(String, String)| {
            if let Some(t) = t
                && !self.dependents(&s.id).any(|d| &d.id == t)
            {
                err(field, format!("{t:?} is not a step that needs {:?}: name one of its successors", s.id));
            }
        };
        if !s.capabilities.is_empty() {
            err(at("capabilities"), "a waiting step runs no code, so it has no capabilities".into());
        }
        if s.config.as_object().is_some_and(|c| !c.is_empty()) {
            err(at("config"), "a waiting step runs no code, so it has no config".into());
        }
        if s.timeout.is_some() || s.memory_mb.is_some() {
            err(
                at("timeout"),
                "`timeout` and `memory_mb` limit components; a `wait_event` sets its own `timeout`".into(),
            );
        }
        if let Some(w) = &s.wait {
            match (&w.duration, &w.until) {
                (Some(d), None) => check_wait(at("wait.duration"), d, err),
                (None, Some(u)) => check_template(at("wait.until"), u, err),
                _ => err(
                    at("wait"),
                    "give `duration` (e.g. \"3d\") or `until` (a template of a time), one of them".into(),
                ),
            }
            if let Some(Err(e)) = w.business_hours.as_ref().map(|b| b.opening()) {
                err(at("wait.business_hours"), e);
            }
        }
        if let Some(w) = &s.wait_event {
            if !RECORD_KINDS.contains(&w.record.as_str()) {
                err(
                    at("wait_event.record"),
                    format!("unknown record kind {:?}: expected one of {}", w.record, RECORD_KINDS.join(", ")),
                );
            }
            check_template(at("wait_event.id"), &w.id, err);
            for (j, a) in w.actions.iter().enumerate() {
                if !["created", "updated", "deleted"].contains(&a.as_str()) {
                    err(
                        at(&format!("wait_event.actions[{j}]")),
                        format!("unknown action {a:?}: expected created, updated or deleted"),
                    );
                }
            }
            for f in w.filter.changed.iter().chain(w.filter.equals.keys()) {
                if !is_field(f) {
                    err(at("wait_event.filter"), format!("{f:?} is not a field name"));
                }
            }
            check_wait(at("wait_event.timeout"), &w.timeout, err);
            check_successor(at("wait_event.on_timeout"), w.on_timeout.as_ref(), err);
        }
        if let Some(a) = &s.approval {
            if !["manager", "admin"].contains(&a.role.as_str()) {
                err(at("approval.role"), format!("{:?} cannot decide: use manager or admin", a.role));
            }
            check_template(at("approval.text"), &a.text, err);
            check_wait(at("approval.timeout"), &a.timeout, err);
            check_successor(at("approval.on_reject"), a.on_reject.as_ref(), err);
            if let Some(o) = &a.owner_of {
                if !["deal", "contact", "company"].contains(&o.record.as_str()) {
                    err(
                        at("approval.owner_of.record"),
                        format!("{:?} has no owner: use deal, contact or company", o.record),
                    );
                }
                check_template(at("approval.owner_of.id"), &o.id, err);
            }
        }
    }

    fn validate_triggers(&self, err: &mut impl FnMut(String, String)) {
        let mut commands = BTreeSet::new();
        for (i, t) in self.triggers.iter().enumerate() {
            let at = |f: &str| format!("triggers[{i}].{f}");
            match t {
                Trigger::BotCommand { command, description, args } => {
                    let ok = !command.is_empty()
                        && command.len() <= 32
                        && command.starts_with(|c: char| c.is_ascii_lowercase())
                        && command.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                    if !ok {
                        err(
                            at("command"),
                            format!(
                                "{command:?} is not a valid bot command: 1-32 lowercase letters, digits or '_', starting with a letter (Telegram's rule)"
                            ),
                        );
                    } else if !commands.insert(command.as_str()) {
                        err(at("command"), format!("command {command:?} is declared twice"));
                    }
                    if description.len() > 256 {
                        err(at("description"), "must be at most 256 characters (Telegram's limit)".into());
                    }
                    let mut names = BTreeSet::new();
                    let mut optional_seen = false;
                    for (j, a) in args.iter().enumerate() {
                        if !is_name(&a.name) {
                            err(at(&format!("args[{j}].name")), format!("{:?} is not a valid argument name", a.name));
                        } else if !names.insert(a.name.as_str()) {
                            err(at(&format!("args[{j}].name")), format!("argument {:?} is declared twice", a.name));
                        }
                        if a.kind == ArgKind::Text && j + 1 != args.len() {
                            err(
                                at(&format!("args[{j}].type")),
                                "a `text` argument takes the rest of the message, so it must come last".into(),
                            );
                        }
                        if a.required && optional_seen {
                            err(
                                at(&format!("args[{j}].required")),
                                "a required argument cannot follow an optional one".into(),
                            );
                        }
                        optional_seen |= !a.required;
                    }
                }
                Trigger::Cron { schedule, timezone, input } => {
                    if let Err(e) = parse_cron(schedule) {
                        err(at("schedule"), e);
                    }
                    if timezone.parse::<chrono_tz::Tz>().is_err() {
                        err(
                            at("timezone"),
                            format!(
                                "unknown time zone {timezone:?}: use an IANA name such as \"Europe/Berlin\" or \"UTC\""
                            ),
                        );
                    }
                    if !input.is_object() {
                        err(at("input"), "must be a table".into());
                    }
                }
                Trigger::RecordEvent { record, actions, filter } => {
                    if !RECORD_KINDS.contains(&record.as_str()) {
                        err(
                            at("record"),
                            format!("unknown record kind {record:?}: expected one of {}", RECORD_KINDS.join(", ")),
                        );
                    }
                    for (j, a) in actions.iter().enumerate() {
                        if !["created", "updated", "deleted"].contains(&a.as_str()) {
                            err(
                                at(&format!("actions[{j}]")),
                                format!("unknown action {a:?}: expected created, updated or deleted"),
                            );
                        }
                    }
                    for (j, f) in filter.changed.iter().enumerate() {
                        if !is_field(f) {
                            err(at(&format!("filter.changed[{j}]")), format!("{f:?} is not a field name"));
                        }
                    }
                    for f in filter.equals.keys() {
                        if !is_field(f) {
                            err(at(&format!("filter.equals.{f}")), format!("{f:?} is not a field name"));
                        }
                    }
                }
                Trigger::Webhook { path, key } => {
                    let ok = !path.is_empty()
                        && path.len() <= 100
                        && path.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
                    if !ok {
                        err(
                            at("path"),
                            format!("{path:?} is not a valid webhook path: 1-100 letters, digits, '-' or '_'"),
                        );
                    }
                    if let Some(k) = key
                        && format!("secret:{k}").parse::<Capability>().is_err()
                    {
                        err(at("key"), format!("{k:?} is not a valid key name"));
                    }
                }
            }
        }
    }

    /// The first dependency cycle found, as step ids with the first repeated at the end.
    pub fn find_cycle(&self) -> Option<Vec<String>> {
        let index: HashMap<&str, usize> = self.steps.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
        // 0 = unvisited, 1 = on the current path, 2 = done
        let mut state = vec![0u8; self.steps.len()];
        let mut path = Vec::new();
        fn visit(
            i: usize,
            m: &Manifest,
            index: &HashMap<&str, usize>,
            state: &mut [u8],
            path: &mut Vec<usize>,
        ) -> Option<Vec<String>> {
            state[i] = 1;
            path.push(i);
            for n in &m.steps[i].needs {
                let Some(&j) = index.get(n.as_str()) else {
                    continue;
                };
                if state[j] == 1 {
                    let from = path.iter().position(|&p| p == j).unwrap_or(0);
                    let mut cycle: Vec<String> = path[from..].iter().map(|&p| m.steps[p].id.clone()).collect();
                    cycle.push(m.steps[j].id.clone());
                    return Some(cycle);
                }
                if state[j] == 0
                    && let Some(c) = visit(j, m, index, state, path)
                {
                    return Some(c);
                }
            }
            path.pop();
            state[i] = 2;
            None
        }
        for i in 0..self.steps.len() {
            if state[i] == 0
                && let Some(c) = visit(i, self, &index, &mut state, &mut path)
            {
                return Some(c);
            }
        }
        None
    }

    pub fn step(&self, id: &str) -> Option<&StepSpec> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// Steps that list `id` in their `needs`.
    pub fn dependents<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a StepSpec> + 'a {
        self.steps.iter().filter(move |s| s.needs.iter().any(|n| n == id))
    }

    /// Steps no other step depends on: their outputs make the default result.
    pub fn sinks(&self) -> Vec<&StepSpec> {
        self.steps.iter().filter(|s| !s.on_failure && self.dependents(&s.id).next().is_none()).collect()
    }

    pub fn bot_commands(&self) -> impl Iterator<Item = &Trigger> {
        self.triggers.iter().filter(|t| matches!(t, Trigger::BotCommand { .. }))
    }
}

impl StepSpec {
    /// What the step does: run its component, or hold the run.
    pub fn kind(&self) -> StepKind<'_> {
        if let Some(w) = &self.wait {
            StepKind::Wait(w)
        } else if let Some(w) = &self.wait_event {
            StepKind::WaitEvent(w)
        } else if let Some(a) = &self.approval {
            StepKind::Approval(a)
        } else {
            StepKind::Component(&self.component)
        }
    }

    /// The granted capabilities (validated manifests only hold valid strings).
    pub fn grants(&self) -> Grants {
        Grants::new(self.capabilities.iter().filter_map(|c| c.parse().ok()))
    }

    pub fn limits(&self) -> StepLimits {
        let mut l = StepLimits::default();
        if let Some(t) = self.timeout.as_deref().and_then(|t| parse_duration(t).ok()) {
            l.timeout_ms = t.as_millis() as u64;
        }
        if let Some(m) = self.memory_mb {
            l.memory_bytes = m << 20;
        }
        l
    }
}

pub const RECORD_KINDS: [&str; 5] = ["contact", "company", "deal", "task", "note"];

/// `2s`, `250ms`, `1m`, `1h`, `3d`, `1500us`: an integer followed by a unit.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(digits);
    let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a duration: write e.g. \"500ms\", \"5s\" or \"2m\""))?;
    let d = match unit.trim() {
        "us" => Duration::from_micros(n),
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        "d" => Duration::from_secs(n.saturating_mul(86_400)),
        _ => return Err(format!("{s:?} has no known unit: use us, ms, s, m, h or d")),
    };
    Ok(d)
}

/// Parses a seconds-level cron expression (six or seven fields), with a message that
/// shows the expected shape, since the most common mistake is a five-field Unix line.
pub fn parse_cron(expr: &str) -> Result<cron::Schedule, String> {
    let fields = expr.split_whitespace().count();
    if fields == 5 {
        return Err(format!(
            "{expr:?} has 5 fields; crm schedules have seconds: \"sec min hour day-of-month month day-of-week [year]\", e.g. \"0 {expr}\""
        ));
    }
    cron::Schedule::from_str(expr).map_err(|e| {
        format!("{expr:?} is not a valid cron expression ({e}); expected \"sec min hour day-of-month month day-of-week [year]\", e.g. \"0 0 9 * * Mon-Fri\"")
    })
}

/// A workflow (or step) name: 1-63 lowercase letters, digits, `-` or `_`, starting with a letter.
pub fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn is_field(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

fn check_template_path(path: &[String], steps: &HashMap<&str, usize>) -> Option<String> {
    const ROOTS: [&str; 7] = ["workflow", "run_id", "status", "input", "result", "error", "steps"];
    let root = path.first()?;
    if !ROOTS.contains(&root.as_str()) {
        return Some(format!("unknown template variable {:?}: use one of {}", path.join("."), ROOTS.join(", ")));
    }
    if root == "steps" {
        let Some(step) = path.get(1) else {
            return Some("`steps` needs a step id, e.g. {{steps.score.output}}".into());
        };
        if !steps.contains_key(step.as_str()) {
            return Some(format!("template refers to step {step:?}, which is not a step of this workflow"));
        }
        if let Some(f) = path.get(2)
            && f != "output"
            && f != "status"
        {
            return Some(format!("{:?}: a step has `output` and `status`", path.join(".")));
        }
    }
    None
}

/// A waiting step's template sees `input`, `run_id`, `workflow` and the outputs of the
/// steps it needs (the only ones sure to have run before it).
fn check_step_template_path(
    path: &[String],
    step: &str,
    needs: &[String],
    steps: &HashMap<&str, usize>,
) -> Option<String> {
    const ROOTS: [&str; 4] = ["workflow", "run_id", "input", "steps"];
    let root = path.first()?;
    if !ROOTS.contains(&root.as_str()) {
        return Some(format!("unknown template variable {:?}: use one of {}", path.join("."), ROOTS.join(", ")));
    }
    if root == "steps" {
        let Some(dep) = path.get(1) else {
            return Some("`steps` needs a step id, e.g. {{steps.score.output}}".into());
        };
        if !steps.contains_key(dep.as_str()) {
            return Some(format!("template refers to step {dep:?}, which is not a step of this workflow"));
        }
        if !needs.iter().any(|n| n == dep) {
            return Some(format!("step {step:?} reads {dep:?}, so it must list {dep:?} in `needs`"));
        }
        if path.get(2).is_some_and(|f| f != "output") {
            return Some(format!("{:?}: a waiting step reads a step's `output`", path.join(".")));
        }
    }
    None
}

fn line_col(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    format!("line {line}, column {col}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every trigger kind and step field; the spec folder runs it too.
    const GOOD: &str = include_str!("../tests/manifests/valid/every-field.toml");

    #[test]
    fn parses_every_trigger_kind_and_step_field() {
        let m = Manifest::parse(GOOD).unwrap();
        assert_eq!(m.triggers.len(), 4);
        assert_eq!(m.steps[1].needs, vec!["score"]);
        assert_eq!(m.steps[0].limits().timeout_ms, 5000);
        assert_eq!(m.steps[0].retry.max_attempts, 4);
        assert!(m.steps[0].grants().has(&Capability::RecordsRead));
        assert_eq!(m.sinks().iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), vec!["compose"]);
        assert_eq!(m.steps[1].config["days"], 3);
    }

    /// Which components exist is the caller's to say (the spec folder's cases know none).
    #[test]
    fn rejects_a_component_the_caller_does_not_know() {
        let m: Manifest = toml::from_str(GOOD).unwrap();
        let e = m.validate(|c| c != "compose.wasm").unwrap_err().errors;
        assert_eq!(e[0].field, "steps[2].component");
        assert!(e[0].message.contains("unknown component \"compose.wasm\""));
    }

    #[test]
    fn backoff_grows_exponentially_up_to_the_cap_with_jitter() {
        let p = RetryPolicy { max_attempts: 5, backoff: "100ms".into(), max_backoff: "1s".into() };
        assert_eq!(p.delay_after(1, 1.0), Duration::from_millis(100));
        assert_eq!(p.delay_after(3, 1.0), Duration::from_millis(400));
        assert_eq!(p.delay_after(9, 1.0), Duration::from_secs(1));
        assert_eq!(p.delay_after(3, 0.0), Duration::from_millis(200));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }
}

#[cfg(test)]
mod examples {
    use super::*;

    /// Every manifest shipped in `workflows/` parses and validates.
    #[test]
    fn shipped_manifests_are_valid() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path().join("workflow.toml");
            if let Ok(text) = std::fs::read_to_string(&path) {
                let m = Manifest::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert_eq!(
                    Some(m.name.as_str()),
                    entry.file_name().to_str(),
                    "{}: name matches its folder",
                    path.display()
                );
                checked += 1;
            }
        }
        assert!(checked >= 3, "found only {checked} manifests in {}", dir.display());
    }
}
