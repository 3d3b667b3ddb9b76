//! Deals: the table (fuzzy search, owner, stage and status filters, sorting, cursor
//! paging), a deal's page, the forms, and moving a deal to another stage — the same store
//! call as `POST /api/deals/{id}/move`, so the move writes activity and an outbox event
//! and fires record-event automations.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use chrono::NaiveDate;
use crm_concepts::records::{
    Deal, DealFilter, DealPatch, DealStatus, Id, NewDeal, NoteFilter, PageRequest, Pipeline, RecordKind, TaskFilter,
};
use crm_store::{activity, deals, notes, pipelines, tasks};
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
        .route("/deals", get(list).post(create))
        .route("/deals/new", get(new_form))
        .route("/deals/{id}", get(show).post(update))
        .route("/deals/{id}/edit", get(edit_form))
        .route("/deals/{id}/move", post(move_stage))
}

const SORTS: &[(&str, &str)] = &[
    ("-created_at", "Newest"),
    ("-amount_minor", "Largest"),
    ("expected_close", "Closing soonest"),
    ("-stage_changed_at", "Recently moved"),
    ("title", "Title A–Z"),
];

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    q: Option<String>,
    owner_id: Option<String>,
    stage_id: Option<String>,
    status: Option<String>,
    sort: Option<String>,
    cursor: Option<String>,
}

/// (stage id, "Pipeline › Stage") for every stage.
fn stage_options(pipelines: &[Pipeline]) -> Vec<(String, String)> {
    pipelines
        .iter()
        .flat_map(|p| {
            let many = pipelines.len() > 1;
            p.stages.iter().map(move |s| {
                let label = if many { format!("{} › {}", p.name, s.name) } else { s.name.clone() };
                (s.id.to_string(), label)
            })
        })
        .collect()
}

async fn list(State(s): State<WebState>, me: Me, Query(q): Query<ListQuery>) -> Result<Response, WebError> {
    let mut problems = Problems::default();
    let status = match forms::text(&q.status) {
        Some(st) => match st.parse::<DealStatus>() {
            Ok(st) => Some(st),
            Err(e) => {
                problems.add("status", e);
                None
            }
        },
        None => None,
    };
    let filter = DealFilter {
        owner_id: forms::id("owner_id", &q.owner_id, &mut problems),
        stage_id: forms::id("stage_id", &q.stage_id, &mut problems),
        status,
        q: forms::text(&q.q),
        ..DealFilter::default()
    };
    let page = PageRequest { limit: Some(50), cursor: forms::text(&q.cursor), sort: forms::text(&q.sort) };
    let page = deals::list(&s.db, &filter, &page).await?;
    let people = People::load(&s.db).await?;
    let all_pipelines = pipelines::list(&s.db).await?;
    let stages = super::stage_names(&s.db).await?;
    let companies = parts::names(&s.db, RecordKind::Company, page.items.iter().map(|d| d.company_id)).await?;
    let contacts = parts::names(&s.db, RecordKind::Contact, page.items.iter().map(|d| d.contact_id)).await?;
    let params = [
        ("q", q.q.as_deref()),
        ("owner_id", q.owner_id.as_deref()),
        ("stage_id", q.stage_id.as_deref()),
        ("status", q.status.as_deref()),
        ("sort", q.sort.as_deref()),
    ];
    let body = html! {
        div.title-row {
            h1 { "Deals" }
            @if me.can_write() { a.button href="/deals/new" { "New deal" } }
            a.button.secondary href="/board" { "Board" }
        }
        form.filters method="get" action="/deals" role="search" {
            input type="search" name="q" value=(q.q.as_deref().unwrap_or_default()) placeholder="Search titles (typos are fine)" aria-label="Search deals";
            select name="owner_id" aria-label="Owner" {
                option value="" { "Any owner" }
                @for (id, name) in people.options() { option value=(id) selected[q.owner_id.as_deref() == Some(id.as_str())] { (name) } }
            }
            select name="stage_id" aria-label="Stage" {
                option value="" { "Any stage" }
                @for (id, name) in stage_options(&all_pipelines) { option value=(id) selected[q.stage_id.as_deref() == Some(id.as_str())] { (name) } }
            }
            select name="status" aria-label="Status" {
                option value="" { "Any status" }
                @for st in ["open", "won", "lost"] { option value=(st) selected[q.status.as_deref() == Some(st)] { (st) } }
            }
            select name="sort" aria-label="Sort" {
                @for (value, label) in SORTS { option value=(value) selected[q.sort.as_deref() == Some(*value)] { (label) } }
            }
            button type="submit" { "Show" }
        }
        (problems.summary(&[]))
        @if page.items.is_empty() { p.muted { "No deals match." } } @else {
            table.records id="deals" {
                thead { tr { th { "Title" } th.num { "Amount" } th { "Stage" } th { "Contact" } th { "Company" } th { "Owner" } th { "Expected close" } } }
                tbody {
                    @for d in &page.items {
                        tr {
                            td { a href={"/deals/" (d.id)} { (d.title) } }
                            td.num { (display::money(d.amount_minor, &d.currency)) }
                            td { span.{"status status-" (d.status.as_str())} { (stages.get(&d.stage_id).cloned().unwrap_or_default()) } }
                            td { (parts::record_link(RecordKind::Contact, d.contact_id, &contacts)) }
                            td { (parts::record_link(RecordKind::Company, d.company_id, &companies)) }
                            td { (people.name(d.owner_id)) }
                            td { (d.expected_close.map(|c| c.to_string()).unwrap_or_default()) }
                        }
                    }
                }
            }
        }
        (parts::pager("/deals", &params, page.next_cursor.as_deref(), q.cursor.is_some()))
    };
    Ok(layout::page(&me, "Deals", Section::Deals, body))
}

async fn show(State(s): State<WebState>, me: Me, Path(id): Path<Id>) -> Result<Response, WebError> {
    let deal = deals::get(&s.db, id).await?;
    let people = People::load(&s.db).await?;
    let pipeline = pipelines::get(&s.db, deal.pipeline_id).await?;
    let recent = PageRequest { limit: Some(50), ..PageRequest::default() };
    let open_tasks =
        tasks::list(&s.db, &TaskFilter { deal_id: Some(id), done: Some(false), ..TaskFilter::default() }, &recent)
            .await?;
    let newest_first = PageRequest { sort: Some("-created_at".into()), ..recent.clone() };
    let deal_notes =
        notes::list(&s.db, &NoteFilter { deal_id: Some(id), ..NoteFilter::default() }, &newest_first).await?;
    let log = activity::list(&s.db, RecordKind::Deal, id, &recent).await?;
    let contacts = parts::names(&s.db, RecordKind::Contact, [deal.contact_id]).await?;
    let companies = parts::names(&s.db, RecordKind::Company, [deal.company_id]).await?;
    let zone = today::zone_of(me.user());
    let stage = pipeline.stages.iter().find(|st| st.id == deal.stage_id).map(|st| st.name.clone()).unwrap_or_default();
    let defined = crm_store::custom_fields::list(&s.db, Some(RecordKind::Deal)).await?;
    let body = html! {
        div.title-row {
            h1 { (deal.title) }
            @if me.can_write() { a.button href={"/deals/" (id) "/edit"} { "Edit" } }
        }
        dl.fields {
            dt { "Amount" } dd { (display::money(deal.amount_minor, &deal.currency)) }
            dt { "Stage" } dd { (pipeline.name) " › " span.{"status status-" (deal.status.as_str())} id="deal-stage" { (stage) } }
            dt { "Status" } dd { (deal.status.as_str()) @if let Some(c) = deal.closed_at { " since " (display::when(c, zone)) } }
            dt { "Contact" } dd { (parts::record_link(RecordKind::Contact, deal.contact_id, &contacts)) }
            dt { "Company" } dd { (parts::record_link(RecordKind::Company, deal.company_id, &companies)) }
            dt { "Owner" } dd { (people.name(deal.owner_id)) }
            dt { "Expected close" } dd { (deal.expected_close.map(|c| c.to_string()).unwrap_or_else(|| "—".into())) }
            dt { "Tags" } dd { (parts::tags(&deal.tags)) }
            dt { "In this stage since" } dd { (display::when(deal.stage_changed_at, zone)) }
            dt { "Id" } dd { (deal.id) }
        }
        @if me.can_write() {
            form.inline.move method="post" action={"/deals/" (id) "/move"} {
                (forms::csrf(me.csrf()))
                input type="hidden" name="back" value={"/deals/" (id)};
                label for="move-stage" { "Move to " }
                select id="move-stage" name="stage_id" {
                    @for st in &pipeline.stages { option value=(st.id) selected[st.id == deal.stage_id] { (st.name) } }
                }
                " "
                button type="submit" { "Move" }
            }
        }
        h2 { "Custom fields" }
        (parts::custom_fields(&deal.custom, &defined))
        div.columns {
            div {
                (parts::tasks(&me, &open_tasks.items, &people, zone))
                (parts::notes(&me, RecordKind::Deal, id, &deal_notes.items, &people, zone))
            }
            div { (parts::activity(&log.items, &people, zone)) }
        }
    };
    Ok(layout::page(&me, &deal.title, Section::Deals, body))
}

#[derive(Debug, Deserialize)]
struct MoveForm {
    stage_id: Id,
    back: Option<String>,
}

/// Moves a deal. A script (the board) gets JSON; a plain form post goes back where it came from.
async fn move_stage(
    State(s): State<WebState>,
    me: Me,
    headers: HeaderMap,
    Path(id): Path<Id>,
    Form(f): Form<MoveForm>,
) -> Result<Response, WebError> {
    me.require_write()?;
    let deal = match deals::move_stage(&s.db, &me.actor(), id, f.stage_id).await {
        Ok(d) => d,
        Err(crm_store::StoreError::Validation { field, message }) => {
            return Err(WebError::BadRequest(format!("{field}: {message}")));
        }
        Err(e) => return Err(e.into()),
    };
    let stage = pipelines::stage(&s.db, deal.stage_id).await?;
    let wants_json = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.starts_with("application/json"));
    if wants_json {
        return Ok(Json(
            serde_json::json!({"id": deal.id, "stage_id": deal.stage_id, "stage": stage.name, "status": deal.status}),
        )
        .into_response());
    }
    let back = auth::safe_next(f.back.as_deref());
    Ok(auth::see_other(&back, Some(&format!("“{}” moved to {}.", deal.title, stage.name))))
}

#[derive(Debug, Default, Deserialize)]
struct DealForm {
    title: Option<String>,
    amount: Option<String>,
    stage_id: Option<String>,
    contact_id: Option<String>,
    company_id: Option<String>,
    owner_id: Option<String>,
    expected_close: Option<String>,
    tags: Option<String>,
    custom: Option<String>,
}

impl DealForm {
    fn of(d: &Deal) -> DealForm {
        DealForm {
            title: Some(d.title.clone()),
            amount: Some(format!("{} {}", crm_concepts::money::plain(d.amount_minor, &d.currency), d.currency)),
            stage_id: Some(d.stage_id.to_string()),
            contact_id: d.contact_id.map(|i| i.to_string()),
            company_id: d.company_id.map(|i| i.to_string()),
            owner_id: d.owner_id.map(|i| i.to_string()),
            expected_close: d.expected_close.map(|c| c.to_string()),
            tags: Some(d.tags.join(", ")),
            custom: Some(forms::custom_text(&d.custom)),
        }
    }

    fn parse(&self, problems: &mut Problems, default_currency: &str) -> NewDeal {
        let (amount_minor, currency) = match forms::text(&self.amount) {
            Some(text) => match crm_concepts::money::parse(&text, default_currency) {
                Ok((minor, currency)) => (minor, Some(currency)),
                Err(e) => {
                    problems.add("amount_minor", e.to_string());
                    (0, None)
                }
            },
            None => (0, None),
        };
        let expected_close = forms::text(&self.expected_close).and_then(|t| match t.parse::<NaiveDate>() {
            Ok(d) => Some(d),
            Err(_) => {
                problems.add("expected_close", "must be a date like 2026-12-31");
                None
            }
        });
        NewDeal {
            title: self.title.clone().unwrap_or_default(),
            amount_minor,
            currency,
            pipeline_id: None,
            stage_id: forms::id("stage_id", &self.stage_id, problems),
            contact_id: forms::id("contact_id", &self.contact_id, problems),
            company_id: forms::id("company_id", &self.company_id, problems),
            owner_id: forms::id("owner_id", &self.owner_id, problems),
            expected_close,
            tags: forms::tags(&self.tags),
            custom: forms::custom(&self.custom, problems),
        }
    }
}

fn form(
    me: &Me,
    action: &str,
    f: &DealForm,
    problems: &Problems,
    people: &People,
    stages: &[(String, String)],
    submit: &str,
) -> Markup {
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    let shown = [
        "title",
        "amount_minor",
        "currency",
        "stage_id",
        "contact_id",
        "company_id",
        "owner_id",
        "expected_close",
        "tags",
        "custom",
    ];
    html! {
        (problems.summary(&shown))
        form.record method="post" action=(action) novalidate {
            (forms::csrf(me.csrf()))
            (forms::input("Title", "title", "text", &v(&f.title), problems, true))
            (forms::input("Amount (e.g. 12 500.00 or 900 EUR)", "amount", "text", &v(&f.amount), problems, false))
            @if let Some(p) = problems.get("amount_minor").or(problems.get("currency")) { p.field-error { "Amount: " (p) } }
            (forms::select("Stage", "stage_id", stages, &v(&f.stage_id), None, problems))
            (forms::input("Contact (id)", "contact_id", "text", &v(&f.contact_id), problems, false))
            (forms::input("Company (id)", "company_id", "text", &v(&f.company_id), problems, false))
            (forms::select("Owner", "owner_id", &people.options(), &v(&f.owner_id), Some("— nobody —"), problems))
            (forms::input("Expected close", "expected_close", "date", &v(&f.expected_close), problems, false))
            (forms::input("Tags (comma-separated)", "tags", "text", &v(&f.tags), problems, false))
            (forms::textarea("Custom fields", "custom", &v(&f.custom), problems, "A JSON object"))
            button type="submit" { (submit) }
        }
    }
}

async fn new_form(State(s): State<WebState>, me: Me) -> Result<Response, WebError> {
    me.require_write()?;
    let people = People::load(&s.db).await?;
    let stages = stage_options(&pipelines::list(&s.db).await?);
    let f = DealForm { owner_id: Some(me.user().id.to_string()), ..DealForm::default() };
    let body =
        html! { h1 { "New deal" } (form(&me, "/deals", &f, &Problems::default(), &people, &stages, "Create deal")) };
    Ok(layout::page(&me, "New deal", Section::Deals, body))
}

async fn create(State(s): State<WebState>, me: Me, Form(f): Form<DealForm>) -> Result<Response, WebError> {
    me.require_write()?;
    let mut problems = Problems::default();
    let new = f.parse(&mut problems, &s.default_currency);
    if problems.is_empty() {
        match deals::create(&s.db, &me.actor(), new).await {
            Ok(d) => return Ok(auth::see_other(&format!("/deals/{}", d.id), Some("Deal created."))),
            Err(e) => problems = Problems::from_store(e)?,
        }
    }
    let people = People::load(&s.db).await?;
    let stages = stage_options(&pipelines::list(&s.db).await?);
    let body = html! { h1 { "New deal" } (form(&me, "/deals", &f, &problems, &people, &stages, "Create deal")) };
    Ok(super::invalid(layout::page(&me, "New deal", Section::Deals, body)))
}

async fn edit_form(State(s): State<WebState>, me: Me, Path(id): Path<Id>) -> Result<Response, WebError> {
    me.require_write()?;
    let d = deals::get(&s.db, id).await?;
    let people = People::load(&s.db).await?;
    let stages = stage_options(&pipelines::list(&s.db).await?);
    let body = html! {
        h1 { "Edit " (d.title) }
        (form(&me, &format!("/deals/{id}"), &DealForm::of(&d), &Problems::default(), &people, &stages, "Save"))
    };
    Ok(layout::page(&me, "Edit deal", Section::Deals, body))
}

async fn update(
    State(s): State<WebState>,
    me: Me,
    Path(id): Path<Id>,
    Form(f): Form<DealForm>,
) -> Result<Response, WebError> {
    me.require_write()?;
    let mut problems = Problems::default();
    let new = f.parse(&mut problems, &s.default_currency);
    let patch = DealPatch {
        title: Some(new.title),
        amount_minor: Some(new.amount_minor),
        currency: new.currency,
        pipeline_id: None,
        stage_id: new.stage_id,
        contact_id: Some(new.contact_id),
        company_id: Some(new.company_id),
        owner_id: Some(new.owner_id),
        expected_close: Some(new.expected_close),
        tags: Some(new.tags),
        custom: Some(new.custom),
    };
    if problems.is_empty() {
        match deals::update(&s.db, &me.actor(), id, patch).await {
            Ok(d) => return Ok(auth::see_other(&format!("/deals/{}", d.id), Some("Deal saved."))),
            Err(e) => problems = Problems::from_store(e)?,
        }
    }
    let people = People::load(&s.db).await?;
    let stages = stage_options(&pipelines::list(&s.db).await?);
    let body =
        html! { h1 { "Edit deal" } (form(&me, &format!("/deals/{id}"), &f, &problems, &people, &stages, "Save")) };
    Ok(super::invalid(layout::page(&me, "Edit deal", Section::Deals, body)))
}
