//! Tasks: mine, due today (in my time zone) and overdue, everyone's, and done; completed
//! with one click (the API's `complete` store call); a task's page and its forms.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use crm_concepts::records::{Id, NewTask, NoteFilter, PageRequest, RecordKind, Task, TaskFilter, TaskPatch};
use crm_store::{activity, notes, tasks};
use maud::{Markup, html};
use serde::Deserialize;

use super::parts::{self, People};
use crate::auth::{self, Me};
use crate::error::WebError;
use crate::forms::{self, Problems};
use crate::layout::{self, Section};
use crate::{WebState, display, today};

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/tasks", get(list).post(create))
        .route("/tasks/new", get(new_form))
        .route("/tasks/{id}", get(show).post(update))
        .route("/tasks/{id}/edit", get(edit_form))
        .route("/tasks/{id}/complete", post(complete))
}

/// The lists the tasks page offers.
const VIEWS: &[(&str, &str)] =
    &[("mine", "Mine"), ("today", "Due today"), ("overdue", "Overdue"), ("all", "Everyone's open"), ("done", "Done")];

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    view: Option<String>,
    cursor: Option<String>,
}

async fn list(State(s): State<WebState>, me: Me, Query(q): Query<ListQuery>) -> Result<Response, WebError> {
    let view = q.view.clone().unwrap_or_else(|| "mine".into());
    let zone = today::zone_of(me.user());
    let now = Utc::now();
    let mine = Some(me.user().id);
    let (filter, sort) = match view.as_str() {
        "mine" => (TaskFilter { assignee_id: mine, done: Some(false), ..TaskFilter::default() }, "due_at"),
        "today" => {
            let (_, end) = today::day_bounds(zone, now);
            (
                TaskFilter { assignee_id: mine, done: Some(false), due_before: Some(end), ..TaskFilter::default() },
                "due_at",
            )
        }
        "overdue" => (
            TaskFilter { assignee_id: mine, done: Some(false), due_before: Some(now), ..TaskFilter::default() },
            "due_at",
        ),
        "all" => (TaskFilter { done: Some(false), ..TaskFilter::default() }, "due_at"),
        "done" => (TaskFilter { assignee_id: mine, done: Some(true), ..TaskFilter::default() }, "-updated_at"),
        other => return Err(WebError::BadRequest(format!("unknown task list {other:?}"))),
    };
    let page = PageRequest { limit: Some(50), cursor: forms::text(&q.cursor), sort: Some(sort.into()) };
    let page = tasks::list(&s.db, &filter, &page).await?;
    let people = People::load(&s.db).await?;
    let title = VIEWS.iter().find(|(v, _)| *v == view).map_or("Tasks", |(_, t)| t);
    let body = html! {
        div.title-row {
            h1 { "Tasks" }
            @if me.can_write() { a.button href="/tasks/new" { "New task" } }
        }
        nav.tabs aria-label="Task lists" {
            @for (v, label) in VIEWS {
                a href={"/tasks?view=" (v)} aria-current=[(*v == view).then_some("page")] { (label) }
            }
        }
        @if view == "today" { p.hint { "Due before the end of today (" (zone) "), overdue included." } }
        h2.visually-hidden { (title) }
        @if page.items.is_empty() { p.muted { "Nothing here. 🎉" } }
        ul.task-list id="tasks" { @for t in &page.items { (parts::task_item(&me, t, &people, zone)) } }
        (parts::pager("/tasks", &[("view", Some(view.as_str()))], page.next_cursor.as_deref(), q.cursor.is_some()))
    };
    Ok(layout::page(&me, "Tasks", Section::Tasks, body))
}

async fn complete(
    State(s): State<WebState>,
    me: Me,
    headers: HeaderMap,
    Path(id): Path<Id>,
) -> Result<Response, WebError> {
    me.require_write()?;
    let task = tasks::complete(&s.db, &me.actor(), id).await?;
    let wants_json = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.starts_with("application/json"));
    if wants_json {
        return Ok(Json(serde_json::json!({"id": task.id, "done": task.done})).into_response());
    }
    let back = headers
        .get(axum::http::header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.split_once("://").map(|(_, rest)| rest))
        .and_then(|r| r.find('/').map(|i| r[i..].to_string()));
    Ok(auth::see_other(&auth::safe_next(back.as_deref()), Some(&format!("Done: {}", task.title))))
}

async fn show(State(s): State<WebState>, me: Me, Path(id): Path<Id>) -> Result<Response, WebError> {
    let task = tasks::get(&s.db, id).await?;
    let people = People::load(&s.db).await?;
    let recent = PageRequest { limit: Some(50), ..PageRequest::default() };
    let newest_first = PageRequest { sort: Some("-created_at".into()), ..recent.clone() };
    let task_notes =
        notes::list(&s.db, &NoteFilter { task_id: Some(id), ..NoteFilter::default() }, &newest_first).await?;
    let log = activity::list(&s.db, RecordKind::Task, id, &recent).await?;
    let (kind, about) = link_of(&task);
    let about_names = match kind {
        Some(k) => parts::names(&s.db, k, [about]).await?,
        None => Default::default(),
    };
    let zone = today::zone_of(me.user());
    let body = html! {
        div.title-row {
            h1 { (task.title) }
            @if me.can_write() { a.button href={"/tasks/" (id) "/edit"} { "Edit" } }
        }
        ul.task-list { (parts::task_item(&me, &task, &people, zone)) }
        dl.fields {
            dt { "Due" } dd { (task.due_at.map(|d| display::when(d, zone)).unwrap_or_else(|| "—".into())) }
            dt { "Assignee" } dd { (people.name(task.assignee_id)) }
            dt { "About" } dd { @if let Some(k) = kind { (parts::record_link(k, about, &about_names)) } @else { "—" } }
            dt { "Done" } dd { @if task.done { "yes, " (task.done_at.map(|d| display::when(d, zone)).unwrap_or_default()) } @else { "no" } }
        }
        div.columns {
            div { (parts::notes(&me, RecordKind::Task, id, &task_notes.items, &people, zone)) }
            div { (parts::activity(&log.items, &people, zone)) }
        }
    };
    Ok(layout::page(&me, &task.title, Section::Tasks, body))
}

fn link_of(t: &Task) -> (Option<RecordKind>, Option<Id>) {
    match (t.contact_id, t.company_id, t.deal_id) {
        (Some(id), _, _) => (Some(RecordKind::Contact), Some(id)),
        (_, Some(id), _) => (Some(RecordKind::Company), Some(id)),
        (_, _, Some(id)) => (Some(RecordKind::Deal), Some(id)),
        _ => (None, None),
    }
}

#[derive(Debug, Default, Deserialize)]
struct TaskForm {
    title: Option<String>,
    /// `datetime-local`: a wall-clock time in the user's zone
    due_at: Option<String>,
    assignee_id: Option<String>,
    /// contact, company or deal
    about_kind: Option<String>,
    about_id: Option<String>,
}

impl TaskForm {
    fn of(t: &Task, zone: Tz) -> TaskForm {
        let (kind, about) = link_of(t);
        TaskForm {
            title: Some(t.title.clone()),
            due_at: t.due_at.map(|d| d.with_timezone(&zone).format("%Y-%m-%dT%H:%M").to_string()),
            assignee_id: t.assignee_id.map(|i| i.to_string()),
            about_kind: kind.map(|k| k.as_str().to_string()),
            about_id: about.map(|i| i.to_string()),
        }
    }

    fn parse(&self, zone: Tz, problems: &mut Problems) -> NewTask {
        let due_at = forms::text(&self.due_at).and_then(|t| {
            local_time(&t, zone).or_else(|| {
                problems.add("due_at", "must be a date and time like 2026-12-31T17:00");
                None
            })
        });
        let mut new = NewTask {
            title: self.title.clone().unwrap_or_default(),
            due_at,
            assignee_id: forms::id("assignee_id", &self.assignee_id, problems),
            ..NewTask::default()
        };
        let about = forms::id("about_id", &self.about_id, problems);
        match forms::text(&self.about_kind).as_deref() {
            None | Some("") => {}
            Some("contact") => new.contact_id = about,
            Some("company") => new.company_id = about,
            Some("deal") => new.deal_id = about,
            Some(_) => problems.add("about_kind", "must be contact, company or deal"),
        }
        new
    }
}

/// A `datetime-local` value read in `zone`.
fn local_time(text: &str, zone: Tz) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    zone.from_local_datetime(&naive).earliest().map(|t| t.with_timezone(&Utc))
}

fn form(me: &Me, action: &str, f: &TaskForm, problems: &Problems, people: &People, submit: &str) -> Markup {
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    let kinds: Vec<(String, String)> =
        ["contact", "company", "deal"].iter().map(|k| (k.to_string(), k.to_string())).collect();
    html! {
        (problems.summary(&["title", "due_at", "assignee_id", "about_kind", "about_id"]))
        form.record method="post" action=(action) novalidate {
            (forms::csrf(me.csrf()))
            (forms::input("Title", "title", "text", &v(&f.title), problems, true))
            (forms::input("Due", "due_at", "datetime-local", &v(&f.due_at), problems, false))
            (forms::select("Assignee", "assignee_id", &people.options(), &v(&f.assignee_id), Some("— nobody —"), problems))
            (forms::select("About a", "about_kind", &kinds, &v(&f.about_kind), Some("— nothing —"), problems))
            (forms::input("Its id", "about_id", "text", &v(&f.about_id), problems, false))
            button type="submit" { (submit) }
        }
    }
}

async fn new_form(State(s): State<WebState>, me: Me) -> Result<Response, WebError> {
    me.require_write()?;
    let people = People::load(&s.db).await?;
    let f = TaskForm { assignee_id: Some(me.user().id.to_string()), ..TaskForm::default() };
    let body = html! { h1 { "New task" } (form(&me, "/tasks", &f, &Problems::default(), &people, "Create task")) };
    Ok(layout::page(&me, "New task", Section::Tasks, body))
}

async fn create(State(s): State<WebState>, me: Me, Form(f): Form<TaskForm>) -> Result<Response, WebError> {
    me.require_write()?;
    let mut problems = Problems::default();
    let new = f.parse(today::zone_of(me.user()), &mut problems);
    if problems.is_empty() {
        match tasks::create(&s.db, &me.actor(), new).await {
            Ok(t) => return Ok(auth::see_other(&format!("/tasks/{}", t.id), Some("Task created."))),
            Err(e) => problems = Problems::from_store(e)?,
        }
    }
    let people = People::load(&s.db).await?;
    let body = html! { h1 { "New task" } (form(&me, "/tasks", &f, &problems, &people, "Create task")) };
    Ok(super::invalid(layout::page(&me, "New task", Section::Tasks, body)))
}

async fn edit_form(State(s): State<WebState>, me: Me, Path(id): Path<Id>) -> Result<Response, WebError> {
    me.require_write()?;
    let t = tasks::get(&s.db, id).await?;
    let people = People::load(&s.db).await?;
    let f = TaskForm::of(&t, today::zone_of(me.user()));
    let body = html! { h1 { "Edit " (t.title) } (form(&me, &format!("/tasks/{id}"), &f, &Problems::default(), &people, "Save")) };
    Ok(layout::page(&me, "Edit task", Section::Tasks, body))
}

async fn update(
    State(s): State<WebState>,
    me: Me,
    Path(id): Path<Id>,
    Form(f): Form<TaskForm>,
) -> Result<Response, WebError> {
    me.require_write()?;
    let mut problems = Problems::default();
    let new = f.parse(today::zone_of(me.user()), &mut problems);
    let patch = TaskPatch {
        title: Some(new.title),
        due_at: Some(new.due_at),
        done: None,
        assignee_id: Some(new.assignee_id),
        contact_id: Some(new.contact_id),
        company_id: Some(new.company_id),
        deal_id: Some(new.deal_id),
        custom: None,
    };
    if problems.is_empty() {
        match tasks::update(&s.db, &me.actor(), id, patch).await {
            Ok(t) => return Ok(auth::see_other(&format!("/tasks/{}", t.id), Some("Task saved."))),
            Err(e) => problems = Problems::from_store(e)?,
        }
    }
    let people = People::load(&s.db).await?;
    let body = html! { h1 { "Edit task" } (form(&me, &format!("/tasks/{id}"), &f, &problems, &people, "Save")) };
    Ok(super::invalid(layout::page(&me, "Edit task", Section::Tasks, body)))
}
