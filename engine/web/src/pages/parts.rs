//! Pieces several pages share: the pager, the people of the CRM as names and choices,
//! and a record's notes, tasks, deals and activity log.

use std::collections::HashMap;

use chrono_tz::Tz;
use crm_concepts::records::{Activity, Deal, Id, Note, PageRequest, RecordKind, Task};
use crm_concepts::user::User;
use crm_store::Db;
use maud::{Markup, html};

use crate::auth::Me;
use crate::display;
use crate::error::WebError;
use crate::forms;

/// Everyone who can own or be assigned records (a CRM has few users: one page).
pub struct People {
    pub users: Vec<User>,
    names: HashMap<Id, String>,
}

impl People {
    pub async fn load(db: &Db) -> Result<People, WebError> {
        let page = PageRequest { limit: Some(PageRequest::MAX_LIMIT), cursor: None, sort: Some("name".into()) };
        let users = crm_store::users::list(db, &page).await?.items;
        let names = users.iter().map(|u| (u.id, u.name.clone())).collect();
        Ok(People { users, names })
    }

    pub fn name(&self, id: Option<Id>) -> String {
        match id {
            Some(id) => self.names.get(&id).cloned().unwrap_or_else(|| format!("user {id}")),
            None => String::new(),
        }
    }

    /// (id, name) choices for an owner or assignee field.
    pub fn options(&self) -> Vec<(String, String)> {
        self.users.iter().filter(|u| u.disabled_at.is_none()).map(|u| (u.id.to_string(), u.name.clone())).collect()
    }
}

/// "Next page" (cursor paging) and "first page" links that keep the current filters.
pub fn pager(path: &str, params: &[(&str, Option<&str>)], next_cursor: Option<&str>, on_later_page: bool) -> Markup {
    let mut next_params: Vec<(&str, Option<&str>)> = params.iter().filter(|(k, _)| *k != "cursor").cloned().collect();
    let first = display::link(path, &next_params);
    next_params.push(("cursor", next_cursor));
    html! {
        nav.pager aria-label="Pages" {
            @if on_later_page { a href=(first) { "← First page" } }
            @if next_cursor.is_some() { a rel="next" href=(display::link(path, &next_params)) { "Next page →" } }
        }
    }
}

/// Names of records of `kind` by id, for links in a table.
pub async fn names(
    db: &Db,
    kind: RecordKind,
    ids: impl IntoIterator<Item = Option<Id>>,
) -> Result<HashMap<Id, String>, WebError> {
    let ids: Vec<Id> = ids.into_iter().flatten().collect();
    Ok(crm_store::labels::names(db, kind, &ids).await?)
}

/// A link to a record by id, named when the name is known.
pub fn record_link(kind: RecordKind, id: Option<Id>, names: &HashMap<Id, String>) -> Markup {
    html! {
        @if let Some(id) = id {
            a href=(display::record_path(kind, id)) { (names.get(&id).cloned().unwrap_or_else(|| format!("{} #{id}", kind))) }
        }
    }
}

pub fn tags(tags: &[String]) -> Markup {
    html! { @for t in tags { span.tag { (t) } " " } }
}

/// Custom fields as a definition list: the defined ones under their labels (money
/// formatted, yes/no as words), then free-form keys as they are.
pub fn custom_fields(
    custom: &crm_concepts::records::CustomFields,
    defined: &[crm_concepts::custom_fields::FieldDefinition],
) -> Markup {
    let free = custom.iter().filter(|(k, _)| !defined.iter().any(|d| &d.key == *k));
    let shown = defined.iter().filter_map(|d| custom.get(&d.key).map(|v| (d.label.as_str(), d.display(v))));
    let rows: Vec<(&str, String)> =
        shown.chain(free.map(|(k, v)| (k.as_str(), crm_concepts::custom_fields::display(v)))).collect();
    html! {
        @if rows.is_empty() { p.muted { "No custom fields." } } @else {
            dl.custom {
                @for (k, v) in rows {
                    dt { (k) }
                    dd { (v) }
                }
            }
        }
    }
}

pub fn notes(me: &Me, kind: RecordKind, id: Id, notes: &[Note], people: &People, zone: Tz) -> Markup {
    html! {
        section.notes {
            h2 { "Notes" }
            @if notes.is_empty() { p.muted { "No notes yet." } }
            @for n in notes {
                article.note {
                    p.meta { (people.name(n.author_id)) " · " (display::when(n.created_at, zone)) }
                    p.body { (n.body) }
                }
            }
            @if me.can_write() {
                form method="post" action="/notes" {
                    (forms::csrf(me.csrf()))
                    input type="hidden" name="kind" value=(kind.as_str());
                    input type="hidden" name="record_id" value=(id);
                    div.field {
                        label for="note-body" { "Add a note" }
                        textarea id="note-body" name="body" rows="3" required {}
                    }
                    button type="submit" { "Add note" }
                }
            }
        }
    }
}

pub fn tasks(me: &Me, tasks: &[Task], people: &People, zone: Tz) -> Markup {
    html! {
        section.tasks {
            h2 { "Open tasks" }
            @if tasks.is_empty() { p.muted { "No open tasks." } }
            ul.task-list {
                @for t in tasks { (task_item(me, t, people, zone)) }
            }
        }
    }
}

/// One task with its one-click "Done" button.
pub fn task_item(me: &Me, t: &Task, people: &People, zone: Tz) -> Markup {
    let overdue = !t.done && t.due_at.is_some_and(|d| d < chrono::Utc::now());
    html! {
        li.task.done[t.done].overdue[overdue] id={"task-" (t.id)} {
            @if me.can_write() && !t.done {
                form.inline.complete method="post" action={"/tasks/" (t.id) "/complete"} {
                    (forms::csrf(me.csrf()))
                    button.done-button type="submit" title="Mark done" aria-label={"Mark done: " (t.title)} { "✓ Done" }
                }
            }
            a href={"/tasks/" (t.id)} { (t.title) }
            @if let Some(due) = t.due_at { span.due { " due " (display::when(due, zone)) } }
            @if t.assignee_id.is_some() { span.muted { " · " (people.name(t.assignee_id)) } }
        }
    }
}

pub fn deals(deals: &[Deal], stages: &HashMap<Id, String>) -> Markup {
    html! {
        section.deals {
            h2 { "Deals" }
            @if deals.is_empty() { p.muted { "No deals." } }
            ul {
                @for d in deals {
                    li {
                        a href={"/deals/" (d.id)} { (d.title) }
                        " · " (display::money(d.amount_minor, &d.currency))
                        " · " span.stage { (stages.get(&d.stage_id).cloned().unwrap_or_default()) }
                    }
                }
            }
        }
    }
}

/// Who changed what: each change with the fields it changed, before and after.
pub fn activity(entries: &[Activity], people: &People, zone: Tz) -> Markup {
    html! {
        section.activity {
            h2 { "Activity" }
            @if entries.is_empty() { p.muted { "Nothing recorded." } }
            ol.activity-log {
                @for a in entries {
                    li {
                        p.meta {
                            (display::when(a.at, zone)) " · "
                            strong { (a.action) }
                            " by "
                            @if a.actor_id.is_some() { (people.name(a.actor_id)) } @else { "the system" }
                            @if let Some(run) = a.origin_run { " (run " a href={"/runs/" (run)} { (run.to_string()[..8]) } ")" }
                        }
                        @let changes = changes(a);
                        @if !changes.is_empty() {
                            table.changes {
                                thead { tr { th { "field" } th { "before" } th { "after" } } }
                                tbody {
                                    @for (field, before, after) in changes {
                                        tr { td { (field) } td.before { (before) } td.after { (after) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn show(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "—".into(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// (field, before, after) of an activity entry; a creation lists the fields it set.
fn changes(a: &Activity) -> Vec<(String, String, String)> {
    let null = serde_json::Value::Null;
    match (&a.before, &a.after) {
        (Some(before), Some(after)) => crm_store::audit::diff(before, after)
            .into_iter()
            .filter(|(k, _)| k != "updated_at" && k != "stage_changed_at")
            .map(|(k, v)| {
                let old = v.get(0).unwrap_or(&null);
                let new = v.get(1).unwrap_or(&null);
                (k, show(old), show(new))
            })
            .collect(),
        (None, Some(serde_json::Value::Object(after))) => after
            .iter()
            .filter(|(k, v)| {
                !v.is_null() && !matches!(k.as_str(), "id" | "created_at" | "updated_at" | "stage_changed_at")
            })
            .filter(|(_, v)| !matches!(v, serde_json::Value::Array(a) if a.is_empty()))
            .filter(|(_, v)| !matches!(v, serde_json::Value::Object(o) if o.is_empty()))
            .map(|(k, v)| (k.clone(), "—".into(), show(v)))
            .collect(),
        _ => Vec::new(),
    }
}
