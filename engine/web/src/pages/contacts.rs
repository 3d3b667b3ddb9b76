//! Contacts: the table (fuzzy search, owner, company and tag filters, sorting, cursor
//! paging), a contact's page, and the create and edit forms.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use crm_concepts::records::{
    Contact, ContactFilter, ContactPatch, DealFilter, Id, NewContact, NoteFilter, PageRequest, RecordKind, TaskFilter,
};
use crm_store::{activity, contacts, deals, notes, tasks};
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
        .route("/contacts", get(list).post(create))
        .route("/contacts/new", get(new_form))
        .route("/contacts/{id}", get(show).post(update))
        .route("/contacts/{id}/edit", get(edit_form))
}

const SORTS: &[(&str, &str)] = &[
    ("-created_at", "Newest"),
    ("created_at", "Oldest"),
    ("name", "Name A–Z"),
    ("-name", "Name Z–A"),
    ("-updated_at", "Recently changed"),
];

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    owner_id: Option<String>,
    company_id: Option<String>,
    tag: Option<String>,
    sort: Option<String>,
    cursor: Option<String>,
}

pub async fn list(State(s): State<WebState>, me: Me, Query(q): Query<ListQuery>) -> Result<Response, WebError> {
    let markup = table(&s, &me, &q).await?;
    Ok(layout::page(&me, "Contacts", Section::Contacts, markup))
}

/// The whole contacts page body (the benchmark renders it too).
pub async fn table(s: &WebState, me: &Me, q: &ListQuery) -> Result<Markup, WebError> {
    let mut problems = Problems::default();
    let filter = ContactFilter {
        owner_id: forms::id("owner_id", &q.owner_id, &mut problems),
        company_id: forms::id("company_id", &q.company_id, &mut problems),
        tag: forms::text(&q.tag),
        q: forms::text(&q.q),
        fields: Vec::new(),
    };
    let page = PageRequest { limit: Some(50), cursor: forms::text(&q.cursor), sort: forms::text(&q.sort) };
    let (page, people) = tokio::try_join!(
        async { Ok::<_, WebError>(contacts::list(&s.db, &filter, &page).await?) },
        People::load(&s.db)
    )?;
    let companies = parts::names(&s.db, RecordKind::Company, page.items.iter().map(|c| c.company_id)).await?;
    let zone = today::zone_of(me.user());
    let params = [
        ("q", q.q.as_deref()),
        ("owner_id", q.owner_id.as_deref()),
        ("company_id", q.company_id.as_deref()),
        ("tag", q.tag.as_deref()),
        ("sort", q.sort.as_deref()),
    ];
    Ok(html! {
        div.title-row {
            h1 { "Contacts" }
            @if me.can_write() { a.button href="/contacts/new" { "New contact" } }
        }
        form.filters method="get" action="/contacts" role="search" {
            input type="search" name="q" value=(q.q.as_deref().unwrap_or_default()) placeholder="Search name, email or phone (typos are fine)" aria-label="Search contacts";
            select name="owner_id" aria-label="Owner" {
                option value="" { "Any owner" }
                @for (id, name) in people.options() { option value=(id) selected[q.owner_id.as_deref() == Some(id.as_str())] { (name) } }
            }
            input type="text" name="tag" value=(q.tag.as_deref().unwrap_or_default()) placeholder="Tag" aria-label="Tag";
            select name="sort" aria-label="Sort" {
                @for (value, label) in SORTS { option value=(value) selected[q.sort.as_deref() == Some(*value)] { (label) } }
            }
            @if let Some(c) = &q.company_id { input type="hidden" name="company_id" value=(c); }
            button type="submit" { "Show" }
        }
        (problems.summary(&[]))
        @if page.items.is_empty() { p.muted { "No contacts match." } } @else {
            table.records id="contacts" {
                thead { tr { th { "Name" } th { "Email" } th { "Phone" } th { "Company" } th { "Owner" } th { "Tags" } th { "Added" } } }
                tbody {
                    @for c in &page.items {
                        tr {
                            td { a href={"/contacts/" (c.id)} { (c.name) } }
                            td { (c.email.as_deref().unwrap_or_default()) }
                            td { (c.phone.as_deref().unwrap_or_default()) }
                            td { (parts::record_link(RecordKind::Company, c.company_id, &companies)) }
                            td { (people.name(c.owner_id)) }
                            td { (parts::tags(&c.tags)) }
                            td { (display::when(c.created_at, zone)) }
                        }
                    }
                }
            }
        }
        (parts::pager("/contacts", &params, page.next_cursor.as_deref(), q.cursor.is_some()))
    })
}

async fn show(State(s): State<WebState>, me: Me, Path(id): Path<Id>) -> Result<Response, WebError> {
    let contact = contacts::get(&s.db, id).await?;
    let people = People::load(&s.db).await?;
    let recent = PageRequest { limit: Some(50), ..PageRequest::default() };
    let linked_deals =
        deals::list(&s.db, &DealFilter { contact_id: Some(id), ..DealFilter::default() }, &recent).await?;
    let open_tasks =
        tasks::list(&s.db, &TaskFilter { contact_id: Some(id), done: Some(false), ..TaskFilter::default() }, &recent)
            .await?;
    let contact_notes = notes::list(
        &s.db,
        &NoteFilter { contact_id: Some(id), ..NoteFilter::default() },
        &PageRequest { sort: Some("-created_at".into()), ..recent.clone() },
    )
    .await?;
    let log = activity::list(&s.db, RecordKind::Contact, id, &recent).await?;
    let companies = parts::names(&s.db, RecordKind::Company, [contact.company_id]).await?;
    let stages = super::stage_names(&s.db).await?;
    let zone = today::zone_of(me.user());
    let defined = crm_store::custom_fields::list(&s.db, Some(RecordKind::Contact)).await?;
    let body = html! {
        div.title-row {
            h1 { (contact.name) }
            @if me.can_write() { a.button href={"/contacts/" (id) "/edit"} { "Edit" } }
        }
        dl.fields {
            dt { "Email" } dd { (contact.email.as_deref().unwrap_or("—")) }
            dt { "Phone" } dd { (contact.phone.as_deref().unwrap_or("—")) }
            dt { "Company" } dd { (parts::record_link(RecordKind::Company, contact.company_id, &companies)) }
            dt { "Owner" } dd { (people.name(contact.owner_id)) }
            dt { "Tags" } dd { (parts::tags(&contact.tags)) }
            dt { "Added" } dd { (display::when(contact.created_at, zone)) }
            dt { "Changed" } dd { (display::when(contact.updated_at, zone)) }
            dt { "Id" } dd { (contact.id) }
        }
        h2 { "Custom fields" }
        (parts::custom_fields(&contact.custom, &defined))
        div.columns {
            div {
                (parts::deals(&linked_deals.items, &stages))
                (parts::tasks(&me, &open_tasks.items, &people, zone))
                (parts::notes(&me, RecordKind::Contact, id, &contact_notes.items, &people, zone))
            }
            div { (parts::activity(&log.items, &people, zone)) }
        }
    };
    Ok(layout::page(&me, &contact.name, Section::Contacts, body))
}

#[derive(Debug, Default, Deserialize)]
struct ContactForm {
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    company_id: Option<String>,
    owner_id: Option<String>,
    tags: Option<String>,
    custom: Option<String>,
}

impl ContactForm {
    fn of(c: &Contact) -> ContactForm {
        ContactForm {
            name: Some(c.name.clone()),
            email: c.email.clone(),
            phone: c.phone.clone(),
            company_id: c.company_id.map(|i| i.to_string()),
            owner_id: c.owner_id.map(|i| i.to_string()),
            tags: Some(c.tags.join(", ")),
            custom: Some(forms::custom_text(&c.custom)),
        }
    }
}

fn form(me: &Me, action: &str, f: &ContactForm, problems: &Problems, people: &People, submit: &str) -> Markup {
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    html! {
        (problems.summary(&["name", "email", "phone", "company_id", "owner_id", "tags", "custom"]))
        form.record method="post" action=(action) novalidate {
            (forms::csrf(me.csrf()))
            (forms::input("Name", "name", "text", &v(&f.name), problems, true))
            (forms::input("Email", "email", "email", &v(&f.email), problems, false))
            (forms::input("Phone", "phone", "tel", &v(&f.phone), problems, false))
            (forms::input("Company (id)", "company_id", "text", &v(&f.company_id), problems, false))
            (forms::select("Owner", "owner_id", &people.options(), &v(&f.owner_id), Some("— nobody —"), problems))
            (forms::input("Tags (comma-separated)", "tags", "text", &v(&f.tags), problems, false))
            (forms::textarea("Custom fields", "custom", &v(&f.custom), problems, "A JSON object, e.g. {\"source\": \"fair\"}"))
            button type="submit" { (submit) }
        }
    }
}

async fn new_form(State(s): State<WebState>, me: Me) -> Result<Response, WebError> {
    me.require_write()?;
    let people = People::load(&s.db).await?;
    let f = ContactForm { owner_id: Some(me.user().id.to_string()), ..ContactForm::default() };
    let body =
        html! { h1 { "New contact" } (form(&me, "/contacts", &f, &Problems::default(), &people, "Create contact")) };
    Ok(layout::page(&me, "New contact", Section::Contacts, body))
}

fn new_contact(f: &ContactForm, problems: &mut Problems) -> NewContact {
    NewContact {
        name: f.name.clone().unwrap_or_default(),
        email: forms::text(&f.email),
        phone: forms::text(&f.phone),
        company_id: forms::id("company_id", &f.company_id, problems),
        owner_id: forms::id("owner_id", &f.owner_id, problems),
        tags: forms::tags(&f.tags),
        custom: forms::custom(&f.custom, problems),
    }
}

async fn create(State(s): State<WebState>, me: Me, Form(f): Form<ContactForm>) -> Result<Response, WebError> {
    me.require_write()?;
    let mut problems = Problems::default();
    let new = new_contact(&f, &mut problems);
    if problems.is_empty() {
        match contacts::create(&s.db, &me.actor(), new).await {
            Ok(c) => return Ok(auth::see_other(&format!("/contacts/{}", c.id), Some("Contact created."))),
            Err(e) => problems = Problems::from_store(e)?,
        }
    }
    let people = People::load(&s.db).await?;
    let body = html! { h1 { "New contact" } (form(&me, "/contacts", &f, &problems, &people, "Create contact")) };
    Ok(super::invalid(layout::page(&me, "New contact", Section::Contacts, body)))
}

async fn edit_form(State(s): State<WebState>, me: Me, Path(id): Path<Id>) -> Result<Response, WebError> {
    me.require_write()?;
    let c = contacts::get(&s.db, id).await?;
    let people = People::load(&s.db).await?;
    let body = html! {
        h1 { "Edit " (c.name) }
        (form(&me, &format!("/contacts/{id}"), &ContactForm::of(&c), &Problems::default(), &people, "Save"))
    };
    Ok(layout::page(&me, "Edit contact", Section::Contacts, body))
}

async fn update(
    State(s): State<WebState>,
    me: Me,
    Path(id): Path<Id>,
    Form(f): Form<ContactForm>,
) -> Result<Response, WebError> {
    me.require_write()?;
    let mut problems = Problems::default();
    let new = new_contact(&f, &mut problems);
    // Every field is on the form: an emptied one is cleared.
    let patch = ContactPatch {
        name: Some(new.name),
        email: Some(new.email),
        phone: Some(new.phone),
        company_id: Some(new.company_id),
        owner_id: Some(new.owner_id),
        tags: Some(new.tags),
        custom: Some(new.custom),
    };
    if problems.is_empty() {
        match contacts::update(&s.db, &me.actor(), id, patch).await {
            Ok(c) => return Ok(auth::see_other(&format!("/contacts/{}", c.id), Some("Contact saved."))),
            Err(e) => problems = Problems::from_store(e)?,
        }
    }
    let people = People::load(&s.db).await?;
    let body = html! { h1 { "Edit contact" } (form(&me, &format!("/contacts/{id}"), &f, &problems, &people, "Save")) };
    Ok(super::invalid(layout::page(&me, "Edit contact", Section::Contacts, body)))
}
