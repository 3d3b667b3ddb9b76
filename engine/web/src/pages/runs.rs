//! Runs: the list with workflow and status filters, and a run's page: the graph of its
//! steps coloured by status, and per step its input, output, attempts, logs and resource
//! use. While the run is in progress the page follows `GET /api/runs/{id}/events` (the
//! API's stream, which accepts the session cookie) and recolours the steps as they
//! finish, without reloading.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use crm_concepts::run::RunStatus;
use crm_store::run_history::{self, RunQuery, StepDetail};
use crm_store::workflows;
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use super::parts::{self, People};
use crate::auth::{self, Me};
use crate::error::WebError;
use crate::layout::{self, Section};
use crate::{WebState, display, forms, today};

pub fn routes() -> Router<WebState> {
    Router::new().route("/runs", get(list)).route("/runs/{id}", get(show)).route("/runs/{id}/cancel", post(cancel))
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    workflow: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
}

async fn list(State(s): State<WebState>, me: Me, Query(q): Query<ListQuery>) -> Result<Response, WebError> {
    let status = match forms::text(&q.status) {
        Some(st) => Some(st.parse::<RunStatus>().map_err(WebError::BadRequest)?),
        None => None,
    };
    let query = RunQuery { workflow: forms::text(&q.workflow), status, limit: 50, cursor: forms::text(&q.cursor) };
    let (runs, next) = run_history::list(&s.db.pool, &query).await?;
    let names: Vec<String> = workflows::list(&s.db.pool).await?.into_iter().map(|w| w.name).collect();
    let people = People::load(&s.db).await?;
    let zone = today::zone_of(me.user());
    let params = [("workflow", q.workflow.as_deref()), ("status", q.status.as_deref())];
    let body = html! {
        h1 { "Runs" }
        form.filters method="get" action="/runs" {
            select name="workflow" aria-label="Workflow" {
                option value="" { "Any workflow" }
                @for n in &names { option value=(n) selected[q.workflow.as_deref() == Some(n.as_str())] { (n) } }
            }
            select name="status" aria-label="Status" {
                option value="" { "Any status" }
                @for st in RunStatus::ALL { option value=(st.as_str()) selected[q.status.as_deref() == Some(st.as_str())] { (st.as_str()) } }
            }
            button type="submit" { "Show" }
        }
        @if runs.is_empty() { p.muted { "No runs match." } }
        table.records id="runs" {
            thead { tr { th { "Started" } th { "Workflow" } th { "Status" } th { "Trigger" } th { "For" } th.num { "Took" } } }
            tbody {
                @for r in &runs {
                    tr {
                        td { a href={"/runs/" (r.id)} { (display::when(r.created_at, zone)) } }
                        td { (r.workflow) " v" (r.version) }
                        td { span.{"status status-" (r.status)} { (r.status) } }
                        td { (r.trigger) }
                        td { (people.name(r.acting_user)) }
                        td.num { (r.duration_ms.map(|d| format!("{d:.0} ms")).unwrap_or_default()) }
                    }
                }
            }
        }
        (parts::pager("/runs", &params, next.as_deref(), q.cursor.is_some()))
    };
    Ok(layout::page(&me, "Runs", Section::Runs, body))
}

async fn show(State(s): State<WebState>, me: Me, Path(id): Path<Uuid>) -> Result<Response, WebError> {
    let detail = run_history::run_detail(&s.db.pool, id).await?;
    let people = People::load(&s.db).await?;
    let zone = today::zone_of(me.user());
    let run = &detail.run.summary;
    let live = !run.status.is_final();
    let body = html! {
        div.title-row {
            h1 { "Run of " a href={"/workflows/" (run.workflow)} { (run.workflow) } " v" (run.version) }
            span.{"status status-" (run.status)} id="run-status" { (run.status) }
        }
        div #run data-run-id=(id) data-events=[live.then(|| format!("/api/runs/{id}/events"))] {
            @if live && me.can_write() && s.scheduler.is_some() {
                form.inline method="post" action={"/runs/" (id) "/cancel"} {
                    (forms::csrf(me.csrf()))
                    button.danger type="submit" { "Cancel run" }
                }
            }
            dl.fields {
                dt { "Id" } dd { code { (id) } }
                dt { "Trigger" } dd { (run.trigger) }
                dt { "For" } dd { (people.name(run.acting_user)) }
                dt { "Queued" } dd { (display::when(run.created_at, zone)) }
                dt { "Finished" } dd #run-finished { (display::when_opt(run.finished_at, zone)) }
                dt { "Took" } dd { (run.duration_ms.map(|d| format!("{d:.1} ms")).unwrap_or_default()) }
            }
            @if let Some(e) = &run.error {
                p.error-message { (e.code) ": " (e.message) @if let Some(step) = &e.step { " (step " (step) ")" } }
            }
            h2 { "Steps" }
            (graph(&detail.steps))
            h2 { "Input" }
            (display::json(&detail.run.input))
            @if let Some(result) = &detail.run.result { h2 { "Result" } (display::json(result)) }
            @if let Some(text) = &detail.run.rendered { h2 { "Message" } pre.message { (text) } }
            @for step in &detail.steps { (step_section(step, zone)) }
        }
    };
    Ok(layout::page(&me, &format!("Run of {}", run.workflow), Section::Runs, body))
}

/// The steps as a left-to-right graph: a step's column is one past its deepest
/// dependency. Plain SVG (no script, no inline style): colours come from the status class.
fn graph(steps: &[StepDetail]) -> Markup {
    const W: i32 = 170;
    const H: i32 = 46;
    const GAP_X: i32 = 60;
    const GAP_Y: i32 = 18;
    let mut depth: BTreeMap<&str, i32> = BTreeMap::new();
    // Steps come in manifest order, where dependencies come first; a second pass settles
    // any that do not.
    for _ in 0..2 {
        for s in steps {
            let d = s.needs.iter().filter_map(|n| depth.get(n.as_str())).max().map_or(0, |d| d + 1);
            depth.insert(&s.record.step, d);
        }
    }
    let mut rows: BTreeMap<i32, i32> = BTreeMap::new();
    let mut at: BTreeMap<&str, (i32, i32)> = BTreeMap::new();
    for s in steps {
        let col = depth[s.record.step.as_str()];
        let row = rows.entry(col).or_insert(0);
        at.insert(&s.record.step, (10 + col * (W + GAP_X), 10 + *row * (H + GAP_Y)));
        *row += 1;
    }
    let width = at.values().map(|(x, _)| x + W + 10).max().unwrap_or(100);
    let height = at.values().map(|(_, y)| y + H + 10).max().unwrap_or(60);
    html! {
        svg.graph id="graph" xmlns="http://www.w3.org/2000/svg" viewBox={"0 0 " (width) " " (height)} width=(width) height=(height) role="img" aria-label="The steps of this run" {
            @for s in steps {
                @for need in &s.needs {
                    @if let (Some((x1, y1)), Some((x2, y2))) = (at.get(need.as_str()), at.get(s.record.step.as_str())) {
                        path.edge d={"M" (x1 + W) " " (y1 + H / 2) " C" (x1 + W + GAP_X / 2) " " (y1 + H / 2) " " (x2 - GAP_X / 2) " " (y2 + H / 2) " " (x2) " " (y2 + H / 2)} {}
                    }
                }
            }
            @for s in steps {
                @let (x, y) = at[s.record.step.as_str()];
                a href={"#step-" (s.record.step)} {
                    g.node.{"status-" (s.record.status)} id={"node-" (s.record.step)} data-step=(s.record.step) {
                        rect x=(x) y=(y) width=(W) height=(H) rx="8" {}
                        text.node-name x=(x + 12) y=(y + 19) { (s.record.step) }
                        text.node-status x=(x + 12) y=(y + 36) { (s.record.status) @if s.record.attempt > 1 { " · attempt " (s.record.attempt) } }
                    }
                }
            }
        }
    }
}

fn step_section(s: &StepDetail, zone: chrono_tz::Tz) -> Markup {
    let r = &s.record;
    html! {
        section.step id={"step-" (r.step)} data-step=(r.step) {
            h3 {
                (r.step) " "
                span.step-status.{"status status-" (r.status)} { (r.status) }
            }
            p.muted {
                "component " code { (s.component.get(..12).unwrap_or(&s.component)) }
                @if !s.needs.is_empty() { " · needs " (s.needs.join(", ")) }
                " · attempts " (r.attempt)
                @if let Some(d) = r.duration_ms { " · " (format!("{d:.1} ms")) }
                @if let Some(f) = r.finished_at { " · finished " (display::when(f, zone)) }
            }
            div.columns {
                div { h4 { "Input" } @match &s.input { Some(v) => (display::json(v)), None => p.muted { "Not started yet." } } }
                div {
                    h4 { "Output" }
                    div.step-output { @match &r.output { Some(v) => (display::json(v)), None => p.muted { "None yet." } } }
                    @if let Some(e) = &r.error { h4 { "Error" } (display::json(e)) }
                }
            }
            @if !r.attempts.is_empty() {
                h4 { "Attempts" }
                table.records.attempts {
                    thead { tr { th { "#" } th { "Result" } th { "Worker" } th { "At" } th { "Resource use" } th { "Logs" } } }
                    tbody {
                        @for a in &r.attempts {
                            tr {
                                td { (a.attempt) }
                                td { span.{"status status-" (a.status)} { (a.status) } @if let Some(e) = &a.error { (display::json(e)) } }
                                td { (a.worker) }
                                td { (display::when(a.received_at, zone)) }
                                td { (display::json(&a.usage)) }
                                td { (logs(&a.logs)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A step's log lines: `{"level", "message", "fields"}` each, or whatever it holds.
fn logs(v: &serde_json::Value) -> Markup {
    match v.as_array() {
        Some(lines) if lines.is_empty() => html! { span.muted { "none" } },
        Some(lines) => html! {
            ol.logs {
                @for l in lines {
                    li {
                        @if let Some(level) = l.get("level").and_then(|x| x.as_str()) { span.level { (level) } " " }
                        @if let Some(m) = l.get("message").and_then(|x| x.as_str()) { (m) } @else { (l.to_string()) }
                        @if let Some(f) = l.get("fields").filter(|f| !f.is_null() && f.as_object().is_none_or(|o| !o.is_empty())) { " " code { (f.to_string()) } }
                    }
                }
            }
        },
        None => display::json(v),
    }
}

async fn cancel(State(s): State<WebState>, me: Me, Path(id): Path<Uuid>) -> Result<Response, WebError> {
    me.require_write()?;
    let scheduler =
        s.scheduler.as_ref().ok_or_else(|| WebError::Unavailable("This engine runs without a scheduler.".into()))?;
    let run = scheduler.cancel(id).await?;
    Ok(auth::see_other(&format!("/runs/{id}"), Some(&format!("The run is {} now.", run.status))))
}
