//! A record's card: what a person works from. A contact, company or deal shows its fields,
//! the records linked to it, its open tasks, its last notes and its recent changes (the
//! activity log), with buttons that open the linked records and tasks and act on the record
//! (note, edit, delete). A task's card shows the record it is about.
//!
//! The parts are separate engine calls made together; a part the engine cannot give (an
//! engine error, a linked record deleted since) is left out rather than failing the card.
//! Each part shows only its newest few entries, so a busy record's card stays within one
//! Telegram message and its keyboard within what fits on a phone.

use std::collections::HashMap;

use crm_concepts::custom_fields::FieldDefinition;
use crm_concepts::records::{Activity, Company, Contact, Deal, Id, Note, Page, Pipeline, RecordKind, Task};
use crm_concepts::user::User;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Req, log_engine_error};
use crate::callback::Callback;
use crate::engine::EngineError;
use crate::render::{self, Rows, View};
use crate::t;
use crate::text::ellipsize;
use crate::texts::Language;

/// Linked records of one kind shown (and given buttons).
const LINKED: usize = 5;
const OPEN_TASKS: usize = 5;
const NOTES: usize = 3;
const ACTIVITY: usize = 5;
/// A note is cut to this many characters on a card; the whole note is in the web app.
const NOTE_CHARS: usize = 150;
const TITLE_CHARS: usize = 60;
/// Users looked up to name who made a change; past this, a change names the user's id.
const USERS: usize = 200;
/// Record fields that change with every write: not news in "changed …".
const NOISE: [&str; 4] = ["updated_at", "created_at", "stage_changed_at", "closed_at"];

/// Sends a record's card; returns the notice for the button press.
pub async fn show(req: &Req<'_>, kind: RecordKind, id: Id) -> Option<String> {
    match card(req, kind, id).await {
        Ok((text, rows)) => {
            req.reply_with(&text, render::keyboard(rows));
            None
        }
        Err(e) if e.is_not_found() => Some(t!(req.lang, "record-gone", kind = kind.as_str())),
        Err(e) => {
            log_engine_error(&e);
            Some(e.for_chat(req.lang))
        }
    }
}

/// A record's card and its buttons. Fails only when the record itself cannot be read.
pub async fn card(req: &Req<'_>, kind: RecordKind, id: Id) -> Result<View, EngineError> {
    match kind {
        RecordKind::Contact => contact(req, id).await,
        RecordKind::Company => company(req, id).await,
        RecordKind::Deal => deal(req, id).await,
        _ => task(req, id).await,
    }
}

/// One engine read that a card can do without: `None` when it fails (logged).
async fn optional<T: DeserializeOwned>(req: &Req<'_>, path: &str, query: &[(&str, String)]) -> Option<T> {
    match req.ctx.engine.get(req.acting(), path, query).await {
        Ok(v) => Some(v),
        Err(e) => {
            if !e.is_not_found() {
                log_engine_error(&e);
            }
            None
        }
    }
}

async fn linked<T: DeserializeOwned>(req: &Req<'_>, kind: RecordKind, id: Option<Id>) -> Option<T> {
    optional(req, &format!("/api/{}/{}", kind.plural(), id?), &[]).await
}

/// Records of `kind` linked to the card's record by `key` (`contact_id`, …), newest first.
async fn linked_list<T: DeserializeOwned>(req: &Req<'_>, kind: RecordKind, key: &str, id: Id) -> Option<Page<T>> {
    let query = [(key, id.to_string()), ("limit", LINKED.to_string()), ("sort", "-created_at".into())];
    optional(req, &format!("/api/{}", kind.plural()), &query).await
}

/// What every contact, company and deal card shows below its fields.
struct History {
    tasks: Option<Page<Task>>,
    notes: Option<Page<Note>>,
    activity: Option<Page<Activity>>,
}

async fn history(req: &Req<'_>, kind: RecordKind, id: Id) -> History {
    let key = format!("{}_id", kind.as_str());
    let tasks_query = [(key.as_str(), id.to_string()), ("done", "false".into()), ("limit", OPEN_TASKS.to_string())];
    let notes_query = [(key.as_str(), id.to_string()), ("limit", NOTES.to_string())];
    let activity_query =
        [("record_kind", kind.as_str().to_string()), ("record_id", id.to_string()), ("limit", ACTIVITY.to_string())];
    let (tasks, notes, activity) = tokio::join!(
        optional(req, "/api/tasks", &tasks_query),
        optional(req, "/api/notes", &notes_query),
        optional(req, "/api/activity", &activity_query),
    );
    History { tasks, notes, activity }
}

/// The names of the users who wrote the notes and made the changes shown.
async fn names(req: &Req<'_>, h: &History) -> HashMap<Id, String> {
    let notes = h.notes.iter().flat_map(|p| &p.items).filter_map(|n| n.author_id);
    let actors = h.activity.iter().flat_map(|p| &p.items).filter_map(|a| a.actor_id);
    let wanted: Vec<Id> = notes.chain(actors).collect();
    if wanted.is_empty() {
        return HashMap::new();
    }
    let users: Option<Page<User>> = optional(req, "/api/users", &[("limit", USERS.to_string())]).await;
    users.map(|p| p.items.into_iter().map(|u| (u.id, u.name)).collect()).unwrap_or_default()
}

/// A titled list of lines, with `…` when the engine has more than are shown.
fn section(text: &mut String, title: &str, lines: Vec<String>, more: bool) {
    if lines.is_empty() {
        return;
    }
    text.push_str("\n\n");
    text.push_str(title);
    for line in lines {
        text.push_str("\n• ");
        text.push_str(&line);
    }
    if more {
        text.push_str("\n• …");
    }
}

fn has_more<T>(page: &Page<T>) -> bool {
    page.next_cursor.is_some()
}

fn deal_line(d: &Deal, lang: Language) -> String {
    format!(
        "{} — {} · {}",
        ellipsize(&d.title, TITLE_CHARS),
        render::money(d.amount_minor, &d.currency),
        render::deal_status(d.status, lang)
    )
}

/// A contact's or a company's deals: their lines in `text`, a button each in `links`.
fn deals_section(text: &mut String, links: &mut Vec<(String, Callback)>, deals: &Page<Deal>, lang: Language) {
    let lines = deals.items.iter().map(|d| deal_line(d, lang)).collect();
    section(text, &t!(lang, "card-deals"), lines, has_more(deals));
    links.extend(deals.items.iter().map(|d| (format!("💼 {}", d.title), Callback::Open(RecordKind::Deal, d.id))));
}

/// Buttons two to a row.
fn pairs(buttons: Vec<(String, Callback)>) -> Rows {
    buttons.chunks(2).map(<[_]>::to_vec).collect()
}

/// Appends the open tasks, last notes and recent changes to `text`; returns the tasks'
/// buttons.
fn history_sections(
    req: &Req<'_>,
    text: &mut String,
    h: &History,
    names: &HashMap<Id, String>,
    fields: &[FieldDefinition],
    pipelines: &[Pipeline],
) -> Vec<(String, Callback)> {
    let (zone, lang) = (req.zone(), req.lang);
    let mut buttons = Vec::new();
    if let Some(tasks) = &h.tasks {
        let lines = tasks.items.iter().map(|t| task_text(t, zone, lang)).collect();
        section(text, &t!(lang, "card-open-tasks"), lines, has_more(tasks));
        buttons.extend(tasks.items.iter().map(|t| (format!("⬜ {}", t.title), Callback::Open(RecordKind::Task, t.id))));
    }
    if let Some(notes) = &h.notes {
        let lines = notes
            .items
            .iter()
            .map(|n| {
                let by = n.author_id.map_or_else(String::new, |a| format!(" {}", who(Some(a), false, names, lang)));
                format!("{}{by}: {}", render::when(n.created_at, zone), ellipsize(&n.body, NOTE_CHARS))
            })
            .collect();
        section(text, &t!(lang, "card-last-notes"), lines, has_more(notes));
    }
    if let Some(activity) = &h.activity {
        let lines = activity.items.iter().map(|a| activity_line(a, req, names, fields, pipelines)).collect();
        section(text, &t!(lang, "card-recent-activity"), lines, has_more(activity));
    }
    buttons
}

fn task_text(task: &Task, zone: chrono_tz::Tz, lang: Language) -> String {
    let title = ellipsize(&task.title, TITLE_CHARS);
    match task.due_at {
        Some(due) => t!(lang, "card-task-due", title = title, due = render::when(due, zone)),
        None => title,
    }
}

fn who(actor: Option<Id>, by_run: bool, names: &HashMap<Id, String>, lang: Language) -> String {
    match actor {
        Some(id) => names.get(&id).cloned().unwrap_or_else(|| t!(lang, "ref-user", id = id)),
        None if by_run => t!(lang, "actor-workflow"),
        None => t!(lang, "actor-system"),
    }
}

/// `2026-12-04 10:00 changed email, Tier — Max Manager`
fn activity_line(
    a: &Activity,
    req: &Req<'_>,
    names: &HashMap<Id, String>,
    fields: &[FieldDefinition],
    pipelines: &[Pipeline],
) -> String {
    let stage = a.after.as_ref().and_then(|v| v.get("stage_id")).and_then(Value::as_i64);
    let lang = req.lang;
    let what = match (a.action.as_str(), stage) {
        ("moved", Some(stage)) if !pipelines.is_empty() => {
            t!(lang, "activity-moved-to", stage = render::stage_name(pipelines, stage, lang))
        }
        ("updated", _) => {
            let changed = changed_fields(a.before.as_ref(), a.after.as_ref(), fields);
            if changed.is_empty() {
                t!(lang, "activity-action", action = "updated")
            } else {
                t!(lang, "activity-changed", fields = changed.join(", "))
            }
        }
        (action, _) => t!(lang, "activity-action", action = action),
    };
    let by = who(a.actor_id, a.origin_run.is_some(), names, lang);
    format!("{} {what} — {by}", render::when(a.at, req.zone()))
}

/// The fields a change touched, as a person calls them: `company` for `company_id`, a
/// custom field by its label.
fn changed_fields(before: Option<&Value>, after: Option<&Value>, fields: &[FieldDefinition]) -> Vec<String> {
    let (Some(Value::Object(before)), Some(Value::Object(after))) = (before, after) else { return Vec::new() };
    let mut out: Vec<String> = Vec::new();
    let mut push = |name: String| {
        if !out.contains(&name) {
            out.push(name);
        }
    };
    let keys = after.keys().chain(before.keys().filter(|k| !after.contains_key(*k)));
    for key in keys {
        if NOISE.contains(&key.as_str()) || before.get(key) == after.get(key) {
            continue;
        }
        if key == "custom" {
            let empty = serde_json::Map::new();
            let b = before.get(key).and_then(Value::as_object).unwrap_or(&empty);
            let a = after.get(key).and_then(Value::as_object).unwrap_or(&empty);
            for k in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
                if b.get(k) != a.get(k) {
                    push(fields.iter().find(|f| &f.key == k).map_or_else(|| k.clone(), |f| f.label.clone()));
                }
            }
            continue;
        }
        let name = key.strip_suffix("_id").or_else(|| key.strip_suffix("_minor")).unwrap_or(key);
        push(name.replace('_', " "));
    }
    out
}

/// 📝 Note, ✏️ Edit and, for those whose role may delete, 🗑 Delete.
fn actions(req: &Req<'_>, kind: RecordKind, id: Id) -> Vec<(String, Callback)> {
    let mut row = vec![
        (t!(req.lang, "button-note"), Callback::Note(kind, id)),
        (t!(req.lang, "button-edit"), Callback::Edit(kind, id)),
    ];
    if req.user.role.can_write() {
        row.push((t!(req.lang, "button-delete"), Callback::Delete(kind, id)));
    }
    row
}

async fn contact(req: &Req<'_>, id: Id) -> Result<View, EngineError> {
    let c: Contact = req.ctx.engine.get(req.acting(), &format!("/api/contacts/{id}"), &[]).await?;
    let (company, deals, history, fields) = tokio::join!(
        linked::<Company>(req, RecordKind::Company, c.company_id),
        linked_list::<Deal>(req, RecordKind::Deal, "contact_id", id),
        history(req, RecordKind::Contact, id),
        super::custom_fields::definitions(req, RecordKind::Contact),
    );
    let names = names(req, &history).await;
    let mut text = render::contact_card(&c, company.as_ref(), &fields, req.lang);
    let mut links = Vec::new();
    if let Some(co) = &company {
        links.push((format!("🏢 {}", co.name), Callback::Open(RecordKind::Company, co.id)));
    }
    if let Some(deals) = &deals {
        deals_section(&mut text, &mut links, deals, req.lang);
    }
    let tasks = history_sections(req, &mut text, &history, &names, &fields, &[]);
    let mut rows = pairs(links);
    rows.extend(pairs(tasks));
    rows.push(actions(req, RecordKind::Contact, id));
    Ok((text, rows))
}

async fn company(req: &Req<'_>, id: Id) -> Result<View, EngineError> {
    let c: Company = req.ctx.engine.get(req.acting(), &format!("/api/companies/{id}"), &[]).await?;
    let (people, deals, history, fields) = tokio::join!(
        linked_list::<Contact>(req, RecordKind::Contact, "company_id", id),
        linked_list::<Deal>(req, RecordKind::Deal, "company_id", id),
        history(req, RecordKind::Company, id),
        super::custom_fields::definitions(req, RecordKind::Company),
    );
    let names = names(req, &history).await;
    let mut text = render::company_card(&c, &fields, req.lang);
    let mut links = Vec::new();
    if let Some(people) = &people {
        let lines = people.items.iter().map(|p| ellipsize(&p.name, TITLE_CHARS)).collect();
        section(&mut text, &t!(req.lang, "card-people-title"), lines, has_more(people));
        links
            .extend(people.items.iter().map(|p| (format!("👤 {}", p.name), Callback::Open(RecordKind::Contact, p.id))));
    }
    if let Some(deals) = &deals {
        deals_section(&mut text, &mut links, deals, req.lang);
    }
    let tasks = history_sections(req, &mut text, &history, &names, &fields, &[]);
    let mut rows = pairs(links);
    rows.extend(pairs(tasks));
    rows.push(actions(req, RecordKind::Company, id));
    Ok((text, rows))
}

/// A deal's card; its first buttons move it to the other stages of its pipeline.
async fn deal(req: &Req<'_>, id: Id) -> Result<View, EngineError> {
    let d: Deal = req.ctx.engine.get(req.acting(), &format!("/api/deals/{id}"), &[]).await?;
    let (pipelines, contact, company, history, fields) = tokio::join!(
        super::deal_view::pipelines(req),
        linked::<Contact>(req, RecordKind::Contact, d.contact_id),
        linked::<Company>(req, RecordKind::Company, d.company_id),
        history(req, RecordKind::Deal, id),
        super::custom_fields::definitions(req, RecordKind::Deal),
    );
    let pipelines = pipelines?;
    let names = names(req, &history).await;
    let mut text = render::deal_card(&d, &pipelines, contact.as_ref(), company.as_ref(), &fields, req.lang);
    let mut links = Vec::new();
    if let Some(c) = &contact {
        links.push((format!("👤 {}", c.name), Callback::Open(RecordKind::Contact, c.id)));
    }
    if let Some(c) = &company {
        links.push((format!("🏢 {}", c.name), Callback::Open(RecordKind::Company, c.id)));
    }
    let tasks = history_sections(req, &mut text, &history, &names, &fields, &pipelines);
    let mut rows = super::deal_view::move_rows(&d, &pipelines);
    rows.extend(pairs(links));
    rows.extend(pairs(tasks));
    rows.push(actions(req, RecordKind::Deal, id));
    Ok((text, rows))
}

/// A task's card: the task, the record it is about, and Done / Note / Delete.
async fn task(req: &Req<'_>, id: Id) -> Result<View, EngineError> {
    let t: Task = req.ctx.engine.get(req.acting(), &format!("/api/tasks/{id}"), &[]).await?;
    let mut text = format!(
        "{}\n({})",
        render::task_line(&t, req.zone(), req.lang),
        render::record_ref(RecordKind::Task, t.id, req.lang)
    );
    let about: Option<(String, Callback)> =
        if let Some(c) = linked::<Contact>(req, RecordKind::Contact, t.contact_id).await {
            Some((format!("👤 {}", c.name), Callback::Open(RecordKind::Contact, c.id)))
        } else if let Some(c) = linked::<Company>(req, RecordKind::Company, t.company_id).await {
            Some((format!("🏢 {}", c.name), Callback::Open(RecordKind::Company, c.id)))
        } else if let Some(d) = linked::<Deal>(req, RecordKind::Deal, t.deal_id).await {
            Some((format!("💼 {}", d.title), Callback::Open(RecordKind::Deal, d.id)))
        } else {
            None
        };
    let mut rows = Vec::new();
    if let Some((label, open)) = about {
        text.push('\n');
        text.push_str(&t!(req.lang, "card-about", record = ellipsize(&label, TITLE_CHARS)));
        rows.push(vec![(label, open)]);
    }
    let mut row = Vec::new();
    if !t.done {
        row.push((t!(req.lang, "button-done"), Callback::TaskDone(t.id)));
    }
    row.push((t!(req.lang, "button-note"), Callback::Note(RecordKind::Task, t.id)));
    if req.user.role.can_write() {
        row.push((t!(req.lang, "button-delete"), Callback::Delete(RecordKind::Task, t.id)));
    }
    rows.push(row);
    Ok((text, rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_change_names_the_fields_a_person_knows() {
        let tier: FieldDefinition = serde_json::from_value(json!({
            "id": 1, "kind": "contact", "key": "tier", "label": "Tier", "type": "choice", "choices": ["gold"],
            "required": false, "created_at": "2026-12-01T00:00:00Z"
        }))
        .expect("a field definition");
        let before = json!({"name": "Ann", "company_id": 1, "amount_minor": 5, "custom": {"tier": null, "x": 1},
                            "updated_at": "a"});
        let after = json!({"name": "Ann", "company_id": 2, "amount_minor": 6, "custom": {"tier": "gold", "x": 1},
                           "updated_at": "b"});
        assert_eq!(changed_fields(Some(&before), Some(&after), &[tier]), ["amount", "company", "Tier"]);
        assert!(changed_fields(None, Some(&after), &[]).is_empty());
    }
}
