//! The start page: my tasks for today (and overdue), the board's open stages at a glance,
//! and the latest runs.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use chrono::Utc;
use crm_concepts::records::{PageRequest, TaskFilter};
use crm_store::run_history::{self, RunQuery};
use crm_store::tasks;
use maud::html;

use super::parts::{self, People};
use crate::auth::Me;
use crate::error::WebError;
use crate::layout::{self, Section};
use crate::{WebState, display, today};

pub fn routes() -> Router<WebState> {
    Router::new().route("/", get(show))
}

async fn show(State(s): State<WebState>, me: Me) -> Result<Response, WebError> {
    let zone = today::zone_of(me.user());
    let (_, end_of_day) = today::day_bounds(zone, Utc::now());
    let filter = TaskFilter {
        assignee_id: Some(me.user().id),
        done: Some(false),
        due_before: Some(end_of_day),
        ..TaskFilter::default()
    };
    let due = tasks::list(&s.db, &filter, &PageRequest { limit: Some(20), ..PageRequest::default() }).await?;
    let people = People::load(&s.db).await?;
    let (runs, _) = run_history::list(&s.db.pool, &RunQuery { limit: 8, ..RunQuery::default() }).await?;
    let body = html! {
        h1 { "Hello, " (me.user().name) }
        form.search-box method="get" action="/search" role="search" {
            input type="search" name="q" placeholder="Find contacts, companies and deals (typos are fine)" aria-label="Search" autofocus;
            button type="submit" { "Search" }
        }
        div.columns {
            section {
                h2 { "Due today (and overdue)" }
                @if due.items.is_empty() { p.muted { "Nothing due today. 🎉" } }
                ul.task-list { @for t in &due.items { (parts::task_item(&me, t, &people, zone)) } }
                p { a href="/tasks" { "All my tasks →" } }
            }
            section {
                h2 { "Latest runs" }
                @if runs.is_empty() { p.muted { "No workflow has run yet." } }
                ul.runs {
                    @for r in &runs {
                        li {
                            span.{"status status-" (r.status)} { (r.status) } " "
                            a href={"/runs/" (r.id)} { (r.workflow) } " · " (display::when(r.created_at, zone))
                        }
                    }
                }
                p { a href="/board" { "The pipeline board →" } }
            }
        }
    };
    Ok(layout::page(&me, "Today", Section::Home, body))
}
