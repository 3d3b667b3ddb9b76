//! Companies: the table (fuzzy search, owner and tag filters, sorting, cursor paging), a
//! company's page with its people, deals, tasks, notes and activity, and the forms.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use crm_concepts::records::{
    Company, CompanyFilter, CompanyPatch, ContactFilter, DealFilter, Id, NewCompany, NoteFilter, PageRequest,
    RecordKind, TaskFilter,
};
use crm_store::{activity, companies, contacts, deals, notes, tasks};
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
        .route("/companies", get(list).post(create))
        .route("/companies/new", get(new_form))
        .route("/companies/{id}", get(show).post(update))
        .route("/companies/{id}/edit", get(edit_form))
}

const SORTS: &[(&str, &str)] = &[("-created_at", "Newest"), ("name", "Name A–Z"), ("-updated_at", "Recently changed")];

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    q: Option<String>,
    owner_id: Option<String>,
    tag: Option<String>,
    sort: Option<String>,
    cursor: Option<String>,
}

async fn list(State(s): State<WebState>, me: Me, Query(q): Query<ListQuery>) -> Result<Response, WebError> {
    let mut problems = Problems::default();
    let filter = CompanyFilter {
        owner_id: forms::id("owner_id", &q.owner_id, &mut problems),
        tag: forms::text(&q.tag),
        q: forms::text(&q.q),
        fields: Vec::new(),
    };
    let page = PageRequest { limit: Some(50), cursor: forms::text(&q.cursor), sort: forms::text(&q.sort) };
    let page = companies::list(&s.db, &filter, &page).await?;
    let people = People::load(&s.db).await?;
    let zone = today::zone_of(me.user());
    let params = [
        ("q", q.q.as_deref()),
        ("owner_id", q.owner_id.as_deref()),
        ("tag", q.tag.as_deref()),
        ("sort", q.sort.as_deref()),
    ];
    let body = html! {
        div.title-row {
            h1 { "Companies" }
            @if me.can_write() { a.button href="/companies/new" { "New company" } }
        }
        form.filters method="get" action="/companies" role="search" {
            input type="search" name="q" value=(q.q.as_deref().unwrap_or_default()) placeholder="Search by name (typos are fine)" aria-label="Search companies";
            select name="owner_id" aria-label="Owner" {
                option value="" { "Any owner" }
                @for (id, name) in people.options() { option value=(id) selected[q.owner_id.as_deref() == Some(id.as_str())] { (name) } }
            }
            input type="text" name="tag" value=(q.tag.as_deref().unwrap_or_default()) placeholder="Tag" aria-label="Tag";
            select name="sort" aria-label="Sort" {
                @for (value, label) in SORTS { option value=(value) selected[q.sort.as_deref() == Some(*value)] { (label) } }
            }
            button type="submit" { "Show" }
        }
        (problems.summary(&[]))
        @if page.items.is_empty() { p.muted { "No companies match." } } @else {
            table.records id="companies" {
                thead { tr { th { "Name" } th { "Domain" } th { "Phone" } th { "Owner" } th { "Tags" } th { "Added" } } }
                tbody {
                    @for c in &page.items {
                        tr {
                            td { a href={"/companies/" (c.id)} { (c.name) } }
                            td { (c.domain.as_deref().unwrap_or_default()) }
                            td { (c.phone.as_deref().unwrap_or_default()) }
                            td { (people.name(c.owner_id)) }
                            td { (parts::tags(&c.tags)) }
                            td { (display::when(c.created_at, zone)) }
                        }
                    }
                }
            }
        }
        (parts::pager("/companies", &params, page.next_cursor.as_deref(), q.cursor.is_some()))
    };
    Ok(layout::page(&me, "Companies", Section::Companies, body))
}

async fn show(State(s): State<WebState>, me: Me, Path(id): Path<Id>) -> Result<Response, WebError> {
    let company = companies::get(&s.db, id).await?;
    let people = People::load(&s.db).await?;
    let recent = PageRequest { limit: Some(50), ..PageRequest::default() };
    let staff =
        contacts::list(&s.db, &ContactFilter { company_id: Some(id), ..ContactFilter::default() }, &recent).await?;
    let linked_deals =
        deals::list(&s.db, &DealFilter { company_id: Some(id), ..DealFilter::default() }, &recent).await?;
    let open_tasks =
        tasks::list(&s.db, &TaskFilter { company_id: Some(id), done: Some(false), ..TaskFilter::default() }, &recent)
            .await?;
    let newest_first = PageRequest { sort: Some("-created_at".into()), ..recent.clone() };
    let company_notes =
        notes::list(&s.db, &NoteFilter { company_id: Some(id), ..NoteFilter::default() }, &newest_first).await?;
    let log = activity::list(&s.db, RecordKind::Company, id, &recent).await?;
    let stages = super::stage_names(&s.db).await?;
    let zone = today::zone_of(me.user());
    let defined = crm_store::custom_fields::list(&s.db, Some(RecordKind::Company)).await?;
    let body = html! {
        div.title-row {
            h1 { (company.name) }
            @if me.can_write() { a.button href={"/companies/" (id) "/edit"} { "Edit" } }
        }
        dl.fields {
            dt { "Domain" } dd { (company.domain.as_deref().unwrap_or("—")) }
            dt { "Phone" } dd { (company.phone.as_deref().unwrap_or("—")) }
            dt { "Owner" } dd { (people.name(company.owner_id)) }
            dt { "Tags" } dd { (parts::tags(&company.tags)) }
            dt { "Added" } dd { (display::when(company.created_at, zone)) }
            dt { "Id" } dd { (company.id) }
        }
        h2 { "Custom fields" }
        (parts::custom_fields(&company.custom, &defined))
        div.columns {
            div {
                section {
                    h2 { "People" }
                    @if staff.items.is_empty() { p.muted { "No contacts at this company." } }
                    ul { @for c in &staff.items { li { a href={"/contacts/" (c.id)} { (c.name) } } } }
                }
                (parts::deals(&linked_deals.items, &stages))
                (parts::tasks(&me, &open_tasks.items, &people, zone))
                (parts::notes(&me, RecordKind::Company, id, &company_notes.items, &people, zone))
            }
            div { (parts::activity(&log.items, &people, zone)) }
        }
    };
    Ok(layout::page(&me, &company.name, Section::Companies, body))
}

#[derive(Debug, Default, Deserialize)]
struct CompanyForm {
    name: Option<String>,
    domain: Option<String>,
    phone: Option<String>,
    owner_id: Option<String>,
    tags: Option<String>,
    custom: Option<String>,
}

impl CompanyForm {
    fn of(c: &Company) -> CompanyForm {
        CompanyForm {
            name: Some(c.name.clone()),
            domain: c.domain.clone(),
            phone: c.phone.clone(),
            owner_id: c.owner_id.map(|i| i.to_string()),
            tags: Some(c.tags.join(", ")),
            custom: Some(forms::custom_text(&c.custom)),
        }
    }

    fn parse(&self, problems: &mut Problems) -> NewCompany {
        NewCompany {
            name: self.name.clone().unwrap_or_default(),
            domain: forms::text(&self.domain),
            phone: forms::text(&self.phone),
            owner_id: forms::id("owner_id", &self.owner_id, problems),
            tags: forms::tags(&self.tags),
            custom: forms::custom(&self.custom, problems),
        }
    }
}

fn form(me: &Me, action: &str, f: &CompanyForm, problems: &Problems, people: &People, submit: &str) -> Markup {
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    html! {
        (problems.summary(&["name", "domain", "phone", "owner_id", "tags", "custom"]))
        form.record method="post" action=(action) novalidate {
            (forms::csrf(me.csrf()))
            (forms::input("Name", "name", "text", &v(&f.name), problems, true))
            (forms::input("Domain", "domain", "text", &v(&f.domain), problems, false))
            (forms::input("Phone", "phone", "tel", &v(&f.phone), problems, false))
            (forms::select("Owner", "owner_id", &people.options(), &v(&f.owner_id), Some("— nobody —"), problems))
            (forms::input("Tags (comma-separated)", "tags", "text", &v(&f.tags), problems, false))
            (forms::textarea("Custom fields", "custom", &v(&f.custom), problems, "A JSON object, e.g. {\"tier\": \"gold\"}"))
            button type="submit" { (submit) }
        }
    }
}

async fn new_form(State(s): State<WebState>, me: Me) -> Result<Response, WebError> {
    me.require_write()?;
    let people = People::load(&s.db).await?;
    let f = CompanyForm { owner_id: Some(me.user().id.to_string()), ..CompanyForm::default() };
    let body =
        html! { h1 { "New company" } (form(&me, "/companies", &f, &Problems::default(), &people, "Create company")) };
    Ok(layout::page(&me, "New company", Section::Companies, body))
}

async fn create(State(s): State<WebState>, me: Me, Form(f): Form<CompanyForm>) -> Result<Response, WebError> {
    me.require_write()?;
    let mut problems = Problems::default();
    let new = f.parse(&mut problems);
    if problems.is_empty() {
        match companies::create(&s.db, &me.actor(), new).await {
            Ok(c) => return Ok(auth::see_other(&format!("/companies/{}", c.id), Some("Company created."))),
            Err(e) => problems = Problems::from_store(e)?,
        }
    }
    let people = People::load(&s.db).await?;
    let body = html! { h1 { "New company" } (form(&me, "/companies", &f, &problems, &people, "Create company")) };
    Ok(super::invalid(layout::page(&me, "New company", Section::Companies, body)))
}

async fn edit_form(State(s): State<WebState>, me: Me, Path(id): Path<Id>) -> Result<Response, WebError> {
    me.require_write()?;
    let c = companies::get(&s.db, id).await?;
    let people = People::load(&s.db).await?;
    let body = html! {
        h1 { "Edit " (c.name) }
        (form(&me, &format!("/companies/{id}"), &CompanyForm::of(&c), &Problems::default(), &people, "Save"))
    };
    Ok(layout::page(&me, "Edit company", Section::Companies, body))
}

async fn update(
    State(s): State<WebState>,
    me: Me,
    Path(id): Path<Id>,
    Form(f): Form<CompanyForm>,
) -> Result<Response, WebError> {
    me.require_write()?;
    let mut problems = Problems::default();
    let new = f.parse(&mut problems);
    let patch = CompanyPatch {
        name: Some(new.name),
        domain: Some(new.domain),
        phone: Some(new.phone),
        owner_id: Some(new.owner_id),
        tags: Some(new.tags),
        custom: Some(new.custom),
    };
    if problems.is_empty() {
        match companies::update(&s.db, &me.actor(), id, patch).await {
            Ok(c) => return Ok(auth::see_other(&format!("/companies/{}", c.id), Some("Company saved."))),
            Err(e) => problems = Problems::from_store(e)?,
        }
    }
    let people = People::load(&s.db).await?;
    let body = html! { h1 { "Edit company" } (form(&me, &format!("/companies/{id}"), &f, &problems, &people, "Save")) };
    Ok(super::invalid(layout::page(&me, "Edit company", Section::Companies, body)))
}
