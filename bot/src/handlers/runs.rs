//! Workflows from the chat: `/run NAME ARGS`, the commands deployed workflows declare, and
//! `/runs`. The bot answers "running…" at once; the completion stream later edits that
//! message into the result (see `completions`).

use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use crm_concepts::manifest::{ArgKind, ArgSpec, Trigger};
use crm_concepts::records::Page;
use crm_concepts::run::{Notify, RunError, RunRequest, RunStatus};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use teloxide::Bot;
use teloxide::payloads::SetMyCommandsSetters;
use teloxide::prelude::Requester;
use teloxide::types::BotCommand;
use uuid::Uuid;

use super::{BUILTIN, Req};
use crate::command::split_args;
use crate::engine::{EngineClient, EngineError};
use crate::t;
use crate::texts::{self, Language};

/// A bot command a deployed workflow declares in its manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowCommand {
    pub command: String,
    pub workflow: String,
    pub description: String,
    pub args: Vec<ArgSpec>,
}

impl WorkflowCommand {
    pub fn usage(&self) -> String {
        let mut usage = format!("/{}", self.command);
        for a in &self.args {
            let name = a.name.to_uppercase();
            usage.push(' ');
            usage.push_str(&if a.required { name } else { format!("[{name}]") });
        }
        usage
    }

    pub fn usage_line(&self) -> String {
        let desc =
            if self.description.is_empty() { format!("runs {}", self.workflow) } else { self.description.clone() };
        format!("{} — {desc}", self.usage())
    }
}

#[derive(Deserialize)]
struct WorkflowItem {
    name: String,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    triggers: Vec<Value>,
}

fn yes() -> bool {
    true
}

/// The least time between two refreshes an unknown command asks for, so a chat sending
/// nonsense commands cannot turn each one into a request to the engine.
const ON_DEMAND_EVERY: Duration = Duration::from_secs(1);

/// The workflows' bot commands, refreshed from `GET /api/workflows` periodically and
/// whenever a chat sends a command the bot does not know (a workflow deployed since).
#[derive(Default)]
pub struct WorkflowCatalog {
    commands: RwLock<Vec<WorkflowCommand>>,
    names: RwLock<Vec<String>>,
    last_on_demand: Mutex<Option<Instant>>,
}

impl WorkflowCatalog {
    /// Refreshes now for a command the list lacks (at most once per [`ON_DEMAND_EVERY`]),
    /// registering the commands with Telegram when they changed; false when it did not look.
    async fn refresh_on_demand(&self, engine: &EngineClient, bot: &Bot) -> bool {
        {
            let mut last = self.last_on_demand.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|at| at.elapsed() < ON_DEMAND_EVERY) {
                return false;
            }
            *last = Some(Instant::now());
        }
        match self.refresh(engine).await {
            Ok(changed) => {
                if changed {
                    self.register(bot).await;
                }
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "workflow refresh failed");
                false
            }
        }
    }

    /// Tells Telegram the command menu: the built-in commands, then the workflows'.
    /// English is the menu for every app language the bot does not speak; each other
    /// language gets its own (Telegram picks by the app's language).
    pub async fn register(&self, bot: &Bot) {
        for lang in Language::ALL {
            let mut commands: Vec<BotCommand> = BUILTIN
                .iter()
                .map(|(name, _)| BotCommand::new(*name, texts::command_description(lang, name)))
                .collect();
            for w in self.commands() {
                let desc = if w.description.chars().count() >= 3 {
                    w.description.clone()
                } else {
                    t!(lang, "workflow-run", workflow = w.workflow.as_str())
                };
                commands.push(BotCommand::new(w.command.clone(), crate::text::ellipsize(&desc, 256)));
            }
            commands.truncate(100);
            let mut call = bot.set_my_commands(commands);
            if lang != Language::En {
                call = call.language_code(lang.code());
            }
            if let Err(e) = call.await {
                tracing::warn!(error = %e, language = %lang, "setMyCommands failed");
            }
        }
    }

    pub fn commands(&self) -> Vec<WorkflowCommand> {
        self.commands.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn find(&self, command: &str) -> Option<WorkflowCommand> {
        self.commands.read().unwrap_or_else(|p| p.into_inner()).iter().find(|c| c.command == command).cloned()
    }

    fn for_workflow(&self, workflow: &str) -> Option<WorkflowCommand> {
        self.commands.read().unwrap_or_else(|p| p.into_inner()).iter().find(|c| c.workflow == workflow).cloned()
    }

    /// Reloads the list; returns whether the commands changed (so `setMyCommands` is
    /// called only then). Built-in names win over a workflow declaring the same command.
    pub async fn refresh(&self, engine: &EngineClient) -> Result<bool, EngineError> {
        let list: Page<WorkflowItem> = engine.get(None, "/api/workflows", &[("limit", "200".to_string())]).await?;
        let mut commands: Vec<WorkflowCommand> = Vec::new();
        let mut names = Vec::new();
        for w in list.items.into_iter().filter(|w| w.enabled) {
            names.push(w.name.clone());
            for t in w.triggers {
                let Ok(Trigger::BotCommand { command, description, args }) = serde_json::from_value::<Trigger>(t)
                else {
                    continue;
                };
                let command = command.trim_start_matches('/').to_lowercase();
                if !crate::command::is_valid_name(&command)
                    || BUILTIN.iter().any(|(b, _)| *b == command)
                    || commands.iter().any(|c| c.command == command)
                {
                    tracing::warn!(workflow = %w.name, %command, "workflow bot command skipped (invalid or taken)");
                    continue;
                }
                commands.push(WorkflowCommand { command, workflow: w.name.clone(), description, args });
            }
        }
        commands.sort_by(|a, b| a.command.cmp(&b.command));
        let mut current = self.commands.write().unwrap_or_else(|p| p.into_inner());
        let changed = *current != commands;
        *current = commands;
        *self.names.write().unwrap_or_else(|p| p.into_inner()) = names;
        Ok(changed)
    }
}

/// Maps the words after a command onto the declared arguments, typed.
pub fn build_input(args: &[ArgSpec], text: &str, usage: &str, lang: Language) -> Result<Value, String> {
    let tokens = split_args(text)
        .map_err(|_| t!(lang, "args-unreadable", error = t!(lang, "args-quote-open"), usage = usage))?;
    let mut input = Map::new();
    let mut rest = tokens.into_iter();
    for (i, spec) in args.iter().enumerate() {
        let token = if spec.kind == ArgKind::Text && i + 1 == args.len() {
            let all: Vec<String> = rest.by_ref().collect();
            if all.is_empty() { None } else { Some(all.join(" ")) }
        } else {
            rest.next()
        };
        let Some(token) = token else {
            if spec.required {
                return Err(t!(lang, "args-missing", name = spec.name.to_uppercase(), usage = usage));
            }
            continue;
        };
        let bad = |what: String| {
            t!(
                lang,
                "args-bad",
                name = spec.name.to_uppercase(),
                what = what,
                value = crate::text::ellipsize(&token, 40),
                usage = usage
            )
        };
        let value = match spec.kind {
            ArgKind::String | ArgKind::Text => json!(token),
            ArgKind::Integer => {
                json!(token.trim_start_matches('#').parse::<i64>().map_err(|_| bad(t!(lang, "args-integer")))?)
            }
            ArgKind::Number => {
                let n = token
                    .replace(',', ".")
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite())
                    .ok_or_else(|| bad(t!(lang, "args-number")))?;
                json!(n)
            }
            ArgKind::Boolean => match token.to_lowercase().as_str() {
                "yes" | "true" | "1" | "on" => json!(true),
                "no" | "false" | "0" | "off" => json!(false),
                word if word == t!(lang, "yes").to_lowercase() => json!(true),
                word if word == t!(lang, "no").to_lowercase() => json!(false),
                _ => return Err(bad(t!(lang, "args-yes-no"))),
            },
        };
        input.insert(spec.name.clone(), value);
    }
    let extra: Vec<String> = rest.collect();
    if !extra.is_empty() {
        let extra = crate::text::ellipsize(&extra.join(" "), 40);
        return Err(t!(lang, "args-too-many", extra = extra, usage = usage));
    }
    Ok(Value::Object(input))
}

/// `/run WORKFLOW ARGS`
pub async fn run_command(req: &Req<'_>, args: &str) {
    let args = args.trim();
    let (workflow, rest) = match args.find(char::is_whitespace) {
        Some(i) => (&args[..i], args[i..].trim()),
        None => (args, ""),
    };
    if workflow.is_empty() {
        let known = req.ctx.workflows.names.read().unwrap_or_else(|p| p.into_inner()).join(", ");
        let known = if known.is_empty() { t!(req.lang, "run-none-deployed") } else { known };
        req.reply(&t!(req.lang, "run-usage", workflows = known));
        return;
    }
    let input = match req.ctx.workflows.for_workflow(workflow) {
        Some(cmd) => build_input(
            &cmd.args,
            rest,
            &format!("/run {workflow} {}", cmd.usage().split_once(' ').map_or("", |x| x.1)),
            req.lang,
        ),
        None => split_args(rest)
            .map(|a| if a.is_empty() { json!({}) } else { json!({ "args": a }) })
            .map_err(|_| t!(req.lang, "args-quote-open")),
    };
    match input {
        Ok(input) => start_run(req, workflow, input).await,
        Err(msg) => req.reply(&msg),
    }
}

/// A command declared by a workflow; false when no workflow declares `name`.
pub async fn workflow_command(req: &Req<'_>, name: &str, args: &str) -> bool {
    let workflows = &req.ctx.workflows;
    let cmd = match workflows.find(name) {
        Some(cmd) => cmd,
        // Perhaps deployed since the list was read: look again before calling it unknown.
        None if workflows.refresh_on_demand(&req.ctx.engine, &req.ctx.bot).await => match workflows.find(name) {
            Some(cmd) => cmd,
            None => return false,
        },
        None => return false,
    };
    match build_input(&cmd.args, args, &cmd.usage(), req.lang) {
        Ok(input) => start_run(req, &cmd.workflow, input).await,
        Err(msg) => req.reply(&msg),
    }
    true
}

#[derive(Deserialize)]
struct RunCreated {
    id: Uuid,
}

async fn start_run(req: &Req<'_>, workflow: &str, input: Value) {
    let out = &req.ctx.out;
    let shown = crate::text::ellipsize(workflow, 60);
    let message_id =
        match out.send_and_wait(req.chat, &t!(req.lang, "run-running", workflow = shown.as_str()), None).await {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(error = %e, "could not send the running message");
                return;
            }
        };
    let request = RunRequest {
        workflow: workflow.to_string(),
        input,
        acting_user: Some(req.user.id),
        notify: Some(Notify { chat_id: req.chat.0, message_id: Some(i64::from(message_id.0)) }),
        // One run per running-message, even if this request is retried.
        idempotency_key: Some(format!("tg:{}:{}", req.chat.0, message_id.0)),
        trigger: Some("bot".into()),
    };
    let created: Result<RunCreated, EngineError> = req.ctx.engine.post(req.acting(), "/api/runs", &request).await;
    match created {
        Ok(run) => tracing::info!(run = %run.id, workflow, "run started from chat"),
        Err(e) => {
            super::log_engine_error(&e);
            let why = if e.is_not_found() {
                t!(req.lang, "run-no-such-workflow", workflow = shown.as_str())
            } else {
                e.for_chat(req.lang)
            };
            let text = t!(req.lang, "run-not-started", workflow = shown.as_str(), why = why);
            out.edit(req.chat, message_id, &text, None, true);
        }
    }
}

/// A run as `GET /api/runs` lists it (the fields the chat shows).
#[derive(Deserialize)]
struct RunLine {
    id: Uuid,
    workflow: String,
    status: RunStatus,
    created_at: DateTime<Utc>,
    #[serde(default)]
    error: Option<RunError>,
    /// what a `waiting` run waits for
    #[serde(default)]
    waiting_for: Vec<WaitLine>,
}

#[derive(Deserialize)]
struct WaitLine {
    step: String,
    what: String,
}

/// `/runs`: the ten most recent runs this user may see.
pub async fn recent(req: &Req<'_>) {
    let page: Result<Page<RunLine>, EngineError> =
        req.ctx.engine.get(req.acting(), "/api/runs", &[("limit", "10".to_string())]).await;
    match page {
        Ok(page) => req.reply(&recent_text(&page.items, req.zone(), req.lang)),
        Err(e) => req.fail(&e),
    }
}

fn recent_text(runs: &[RunLine], zone: chrono_tz::Tz, lang: Language) -> String {
    if runs.is_empty() {
        return t!(lang, "runs-none");
    }
    let mut lines = vec![t!(lang, "runs-title")];
    for r in runs {
        let icon = match r.status {
            RunStatus::Succeeded => "✅",
            RunStatus::Failed => "❌",
            RunStatus::Cancelled => "🚫",
            RunStatus::Running => "⏳",
            RunStatus::Queued => "🕒",
            RunStatus::Waiting => "⏸",
        };
        let id: String = r.id.to_string().chars().take(8).collect();
        let when = r.created_at.with_timezone(&zone).format("%Y-%m-%dT%H:%M");
        let error =
            r.error.as_ref().map(|e| format!(" — {}", crate::text::ellipsize(&e.message, 80))).unwrap_or_default();
        let waits: String = r
            .waiting_for
            .iter()
            .map(|w| {
                format!(
                    " — {}",
                    t!(lang, "runs-waits", step = w.step.as_str(), what = crate::text::ellipsize(&w.what, 80))
                )
            })
            .collect();
        let status = t!(lang, "run-status", status = r.status.to_string());
        lines.push(format!("{icon} {} · {status} · {when} · {id}{error}{waits}", r.workflow));
    }
    lines.join("\n")
}

/// The Retry button under a failed run's message: runs it again from its failed step, as
/// the user who pressed it. The message is left as it is: the run's new result replaces it
/// (the completion of a run started from the chat edits the message it started in), and
/// an edit from here could land after that one.
pub async fn retry(req: &Req<'_>, run: Uuid) -> Option<String> {
    let retried: Result<Value, EngineError> =
        req.ctx.engine.post(req.acting(), &format!("/api/runs/{run}/retry"), &json!({})).await;
    match retried {
        Ok(_) => Some(t!(req.lang, "run-retrying")),
        Err(EngineError::Api { code, message, .. }) if code == "conflict" => Some(message),
        Err(e) => {
            super::log_engine_error(&e);
            Some(e.for_chat(req.lang))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(name: &str, kind: ArgKind, required: bool) -> ArgSpec {
        ArgSpec { name: name.into(), kind, required, description: String::new() }
    }

    #[test]
    fn arguments_are_typed_and_checked() {
        let spec = vec![arg("deal_id", ArgKind::Integer, true), arg("note", ArgKind::Text, false)];
        assert_eq!(
            build_input(&spec, "42 call them back", "u", Language::En).unwrap(),
            json!({"deal_id": 42, "note": "call them back"})
        );
        assert_eq!(build_input(&spec, "#7", "u", Language::En).unwrap(), json!({"deal_id": 7}));
        assert!(build_input(&spec, "", "u", Language::En).unwrap_err().contains("Missing DEAL_ID"));
        assert!(build_input(&spec, "forty", "u", Language::En).unwrap_err().contains("whole number"));
        let flags = vec![arg("force", ArgKind::Boolean, true)];
        assert_eq!(build_input(&flags, "yes", "u", Language::En).unwrap(), json!({"force": true}));
        assert!(build_input(&flags, "yes no", "u", Language::En).unwrap_err().contains("Too many"));
        assert_eq!(build_input(&flags, "\"yes", "/x", Language::En).unwrap_err(), "A quote is not closed. Usage: /x");
        assert_eq!(
            build_input(&flags, "\"yes", "/x", Language::Ru).unwrap_err(),
            "Кавычка не закрыта. Использование: /x"
        );
    }

    #[test]
    fn recent_runs_read_the_page_the_engine_lists() {
        let page: Page<RunLine> = serde_json::from_value(json!({
            "items": [
                {"id": "0190a5b2-0000-7000-8000-000000000001", "workflow": "qualify", "version": 3,
                 "status": "failed", "trigger": "bot", "acting_user": 2,
                 "created_at": "2026-11-26T10:04:59.123456Z", "started_at": null, "finished_at": null,
                 "duration_ms": null, "error": {"step": "score", "code": "step_failed", "message": "deal 9 not found"}},
                {"id": "0190a5b2-0000-7000-8000-000000000002", "workflow": "digest", "version": 1,
                 "status": "queued", "trigger": "cron", "acting_user": null,
                 "created_at": "2026-11-26T10:05:00Z", "error": null},
                {"id": "0190a5b2-0000-7000-8000-000000000003", "workflow": "drip", "version": 1,
                 "status": "waiting", "trigger": "api", "acting_user": 2,
                 "created_at": "2026-11-26T10:06:00Z", "error": null,
                 "waiting_for": [{"step": "pause", "kind": "wait", "until": "2026-11-29T10:06:00Z",
                                  "what": "until 2026-11-29 10:06:00 UTC"}]}
            ],
            "next_cursor": "abc"
        }))
        .unwrap();
        assert_eq!(
            recent_text(&page.items, chrono_tz::Tz::UTC, Language::En),
            "Recent runs:\n\
             ❌ qualify · failed · 2026-11-26T10:04 · 0190a5b2 — deal 9 not found\n\
             🕒 digest · queued · 2026-11-26T10:05 · 0190a5b2\n\
             ⏸ drip · waiting · 2026-11-26T10:06 · 0190a5b2 — pause waits until 2026-11-29 10:06:00 UTC"
        );
        assert!(recent_text(&[], chrono_tz::Tz::UTC, Language::En).contains("No workflow runs yet"));
    }
}
