//! Workflows and their versions; admins enable, disable and roll back (the store calls of
//! `/api/workflows/{name}/…`).

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use crm_concepts::manifest::Trigger;
use crm_store::run_history::{self, RunQuery};
use crm_store::workflows;
use maud::{Markup, html};
use serde::Deserialize;

use super::parts::People;
use crate::auth::{self, Me};
use crate::error::WebError;
use crate::layout::{self, Section};
use crate::{WebState, display, forms, today};

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/workflows", get(list))
        .route("/workflows/{name}", get(show))
        .route("/workflows/{name}/enable", post(enable))
        .route("/workflows/{name}/disable", post(disable))
        .route("/workflows/{name}/rollback", post(rollback))
}

/// How a trigger reads in a list.
pub fn trigger(t: &Trigger) -> Markup {
    match t {
        Trigger::BotCommand { command, .. } => html! { span.trigger { "bot " code { "/" (command) } } },
        Trigger::Cron { schedule, timezone, .. } => {
            html! { span.trigger { "cron " code { (schedule) } " " (timezone) } }
        }
        Trigger::RecordEvent { record, actions, .. } => {
            let actions = if actions.is_empty() { "any change".to_string() } else { actions.join("/") };
            html! { span.trigger { (record) " " (actions) } }
        }
        Trigger::Webhook { path, .. } => html! { span.trigger { "webhook " code { "/hooks/" (path) } } },
    }
}

async fn list(State(s): State<WebState>, me: Me) -> Result<Response, WebError> {
    let all = workflows::list(&s.db.pool).await?;
    let body = html! {
        h1 { "Workflows" }
        @if all.is_empty() { p.muted { "No workflow is deployed. " code { "crm workflow deploy DIR" } " deploys one." } }
        table.records id="workflows" {
            thead { tr { th { "Name" } th { "Version" } th { "State" } th { "Triggers" } th { "Steps" } } }
            tbody {
                @for w in &all {
                    tr {
                        td { a href={"/workflows/" (w.name)} { (w.name) } br; span.muted { (w.description) } }
                        td { (w.current_version) " (" (w.label) ")" }
                        td { @if w.enabled { span.status.status-succeeded { "enabled" } } @else { span.status.status-cancelled { "disabled" } } }
                        td { @for t in &w.triggers { (trigger(t)) br; } }
                        td { (w.steps.join(" → ")) }
                    }
                }
            }
        }
    };
    Ok(layout::page(&me, "Workflows", Section::Workflows, body))
}

async fn show(State(s): State<WebState>, me: Me, Path(name): Path<String>) -> Result<Response, WebError> {
    let w = workflows::get(&s.db.pool, &name).await?;
    let people = People::load(&s.db).await?;
    let (runs, _) =
        run_history::list(&s.db.pool, &RunQuery { workflow: Some(name.clone()), limit: 10, ..RunQuery::default() })
            .await?;
    let zone = today::zone_of(me.user());
    let path = format!("/workflows/{}", w.summary.name);
    let body = html! {
        div.title-row {
            h1 { (w.summary.name) }
            @if w.summary.enabled { span.status.status-succeeded { "enabled" } } @else { span.status.status-cancelled { "disabled" } }
        }
        p { (w.summary.description) }
        @if me.is_admin() {
            div.actions {
                form.inline method="post" action={(path) (if w.summary.enabled { "/disable" } else { "/enable" })} {
                    (forms::csrf(me.csrf()))
                    button type="submit" { @if w.summary.enabled { "Disable" } @else { "Enable" } }
                }
            }
        }
        h2 { "Triggers" }
        ul { @for t in &w.summary.triggers { li { (trigger(t)) } } }
        h2 { "Versions" }
        table.records id="versions" {
            thead { tr { th { "Version" } th { "Label" } th { "Deployed" } th { "By" } th {} } }
            tbody {
                @for v in w.versions.iter().rev() {
                    tr.current[v.version == w.summary.current_version] {
                        td { (v.version) }
                        td { (v.label) }
                        td { (display::when(v.deployed_at, zone)) }
                        td { (people.name(v.deployed_by)) }
                        td {
                            @if v.version == w.summary.current_version { "current" }
                            @else if me.is_admin() {
                                form.inline method="post" action={(path) "/rollback"} {
                                    (forms::csrf(me.csrf()))
                                    input type="hidden" name="version" value=(v.version);
                                    button type="submit" { "Make current" }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Latest runs" }
        ul.runs {
            @for r in &runs {
                li { span.{"status status-" (r.status)} { (r.status) } " " a href={"/runs/" (r.id)} { (display::when(r.created_at, zone)) } }
            }
        }
        p { a href={"/runs?workflow=" (w.summary.name)} { "All runs of this workflow →" } }
        h2 { "Manifest" }
        pre.source { (w.source) }
    };
    Ok(layout::page(&me, &w.summary.name, Section::Workflows, body))
}

async fn enable(State(s): State<WebState>, me: Me, Path(name): Path<String>) -> Result<Response, WebError> {
    me.require_admin()?;
    workflows::set_enabled(&s.db.pool, &name, true).await?;
    Ok(auth::see_other(&format!("/workflows/{name}"), Some("Enabled: new runs start again.")))
}

async fn disable(State(s): State<WebState>, me: Me, Path(name): Path<String>) -> Result<Response, WebError> {
    me.require_admin()?;
    workflows::set_enabled(&s.db.pool, &name, false).await?;
    Ok(auth::see_other(&format!("/workflows/{name}"), Some("Disabled: no new runs start.")))
}

#[derive(Debug, Deserialize)]
struct RollbackForm {
    version: Option<i32>,
}

async fn rollback(
    State(s): State<WebState>,
    me: Me,
    Path(name): Path<String>,
    Form(f): Form<RollbackForm>,
) -> Result<Response, WebError> {
    me.require_admin()?;
    let w = workflows::rollback(&s.db.pool, &name, f.version).await?;
    Ok(auth::see_other(&format!("/workflows/{name}"), Some(&format!("Version {} is current now.", w.current_version))))
}
