//! Driving the field-by-field dialogues: asking, validating each answer, offering choices
//! as buttons, and writing the record with one API call after the last answer.

use crm_concepts::custom_fields::{FieldDefinition, FieldType};
use crm_concepts::fields;
use crm_concepts::records::{
    Company, CompanyPatch, Contact, ContactPatch, Deal, DealPatch, Id, NewCompany, NewContact, NewDeal, NewNote,
    NewTask, Note, Page, RecordKind, StageKind, Task,
};
use serde_json::{Value, json};

use super::Req;
use crate::callback::Callback;
use crate::dialogue::{Choice, ChoiceAction, Dialogue, Field, FormKind};
use crate::engine::EngineError;
use crate::{render, validate};

const LOOKUP_CHOICES: usize = 5;

fn may_write(req: &Req<'_>) -> bool {
    if req.user.role.can_write() {
        return true;
    }
    req.reply(&format!("⛔ Your role ({}) can read the CRM but not change it.", req.user.role));
    false
}

pub async fn start(req: &Req<'_>, kind: FormKind) {
    if !may_write(req) {
        return;
    }
    let mut d = req.ctx.dialogues.start(req.chat.0, req.tg_user, kind);
    match kind.edited() {
        Some((record_kind, id)) => {
            let path = format!("/api/{}/{id}", record_kind.plural());
            let current: Result<Value, EngineError> = req.ctx.engine.get(req.acting(), &path, &[]).await;
            let current = match current {
                Ok(v) => v,
                Err(e) => {
                    req.ctx.dialogues.end(req.chat.0, req.tg_user);
                    return req.fail(&e);
                }
            };
            let title = current
                .get("name")
                .or_else(|| current.get("title"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            d.custom_fields = super::custom_fields::definitions(req, record_kind).await;
            d.custom_before = current.get("custom").and_then(Value::as_object).cloned().unwrap_or_default();
            d.choices = kind
                .editable()
                .iter()
                .map(|f| Choice { label: f.label().to_string(), action: ChoiceAction::PickField(*f) })
                .chain(
                    d.custom_fields
                        .iter()
                        .enumerate()
                        .map(|(i, f)| Choice { label: f.label.clone(), action: ChoiceAction::PickCustom(i) }),
                )
                .collect();
            let rows = choice_rows(&d);
            req.reply_with(&format!("Editing “{title}”. Which field? (/cancel to stop)"), render::keyboard(rows));
            req.ctx.dialogues.put(req.chat.0, req.tg_user, d);
        }
        None => {
            let record_kind = match kind {
                FormKind::AddContact => Some(RecordKind::Contact),
                FormKind::AddCompany => Some(RecordKind::Company),
                FormKind::AddDeal => Some(RecordKind::Deal),
                FormKind::AddTask => Some(RecordKind::Task),
                _ => None,
            };
            if let Some(record_kind) = record_kind {
                // A new record must have its required fields: ask them after the usual ones.
                d.custom_fields = super::custom_fields::definitions(req, record_kind).await;
                d.custom_order = (0..d.custom_fields.len()).filter(|i| d.custom_fields[*i].required).collect();
                d.fields.extend(d.custom_order.iter().map(|_| Field::Custom));
            }
            prompt(req, &mut d, None).await;
            req.ctx.dialogues.put(req.chat.0, req.tg_user, d);
        }
    }
}

/// `/addtask Title` saves at once, or first asks the tasks' required custom fields;
/// `/addtask` asks everything.
pub async fn start_task(req: &Req<'_>, args: &str) {
    if args.trim().is_empty() {
        return start(req, FormKind::AddTask).await;
    }
    if !may_write(req) {
        return;
    }
    match validate::name(args, "task", fields::MAX_NAME) {
        Ok(title) => {
            let custom_fields = super::custom_fields::definitions(req, RecordKind::Task).await;
            if custom_fields.iter().any(|f| f.required) {
                // The title is given; the rest of the add dialogue is just the fields the
                // engine would refuse the task without.
                let mut d = req.ctx.dialogues.start(req.chat.0, req.tg_user, FormKind::AddTask);
                d.custom_order = (0..custom_fields.len()).filter(|i| custom_fields[*i].required).collect();
                d.custom_fields = custom_fields;
                d.fields = d.custom_order.iter().map(|_| Field::Custom).collect();
                d.values.insert("title".into(), json!(title));
                prompt(req, &mut d, Some(&format!("Adding the task “{title}”; it needs its required fields first.")))
                    .await;
                req.ctx.dialogues.put(req.chat.0, req.tg_user, d);
                return;
            }
            let task = NewTask { title, assignee_id: Some(req.user.id), ..Default::default() };
            match req.ctx.engine.post::<_, Task>(req.acting(), "/api/tasks", &task).await {
                Ok(t) => req.reply(&format!("✅ Task added: {}", render::task_line(&t, req.zone()))),
                Err(e) => req.fail(&e),
            }
        }
        Err(msg) => req.reply(&msg),
    }
}

fn note_target(kind: RecordKind, id: Id) -> NewNote {
    let mut note = NewNote::default();
    match kind {
        RecordKind::Contact => note.contact_id = Some(id),
        RecordKind::Company => note.company_id = Some(id),
        RecordKind::Deal => note.deal_id = Some(id),
        _ => note.task_id = Some(id),
    }
    note
}

/// A note on a record: saved at once when `text` is given, else asked for.
pub async fn start_note(req: &Req<'_>, kind: RecordKind, id: Id, text: &str) {
    if !may_write(req) {
        return;
    }
    if text.trim().is_empty() {
        let mut d = req.ctx.dialogues.start(req.chat.0, req.tg_user, FormKind::Note(kind, id));
        prompt(req, &mut d, None).await;
        req.ctx.dialogues.put(req.chat.0, req.tg_user, d);
        return;
    }
    match validate::body(text, fields::MAX_NOTE_BODY) {
        Ok(body) => save_note(req, kind, id, body).await,
        Err(msg) => req.reply(&msg),
    }
}

async fn save_note(req: &Req<'_>, kind: RecordKind, id: Id, body: String) {
    let note = NewNote { body, ..note_target(kind, id) };
    match req.ctx.engine.post::<_, Note>(req.acting(), "/api/notes", &note).await {
        Ok(n) => req.reply(&format!("📝 Note #{} saved on {kind} #{id}.", n.id)),
        Err(e) => req.fail(&e),
    }
}

fn question(kind: FormKind, field: Field) -> &'static str {
    match (field, kind) {
        (Field::Name, FormKind::AddCompany | FormKind::EditCompany(_)) => "What is the company called?",
        (Field::Name, _) => "What is the contact's name?",
        (Field::Domain, _) => "Its website's domain? e.g. acme.com",
        (Field::Email, _) => "Email address?",
        (Field::Phone, _) => "Phone number?",
        (Field::Company, _) => "Which company? Type part of its name.",
        (Field::Title, FormKind::AddTask) => "What is the task?",
        (Field::Title, _) => "What is the deal called?",
        (Field::Amount, _) => "Amount? e.g. 1500, 1 500.50 or 1500 EUR.",
        (Field::Contact, _) => "Which contact is it with? Type part of the name.",
        (Field::Stage, _) => "Which stage?",
        (Field::ExpectedClose, _) => "Expected close date? e.g. 2026-12-01, tomorrow or +30.",
        (Field::Due, _) => {
            "When is it due? e.g. today, tomorrow or 2026-12-01 09:30 (your time; /settings shows your zone)."
        }
        (Field::Body, _) => "Type the note.",
        (Field::Custom, _) => "Which value?",
    }
}

fn custom_question(f: &FieldDefinition) -> String {
    let label = &f.label;
    match f.field_type {
        FieldType::Text => format!("{label}?"),
        FieldType::Number => format!("{label}? A number, e.g. 42 or 3.5."),
        FieldType::Money => format!("{label}? An amount, e.g. 1500, 1 500.50 or 1500 EUR."),
        FieldType::Date => format!("{label}? A date, e.g. 2026-12-01, tomorrow or +30."),
        FieldType::Choice | FieldType::YesNo => format!("{label}? Pick one."),
    }
}

/// A choice field's choices (yes/no's two) as buttons, each carrying the whole `custom`
/// object the patch will send.
fn custom_choices(d: &Dialogue) -> Vec<Choice> {
    let Some(f) = d.custom() else { return Vec::new() };
    let offered: Vec<(String, Value)> = match f.field_type {
        FieldType::Choice => f.choices.iter().map(|c| (c.clone(), json!(c))).collect(),
        FieldType::YesNo => vec![("Yes".into(), json!(true)), ("No".into(), json!(false))],
        _ => Vec::new(),
    };
    offered
        .into_iter()
        .map(|(label, v)| Choice { label, action: ChoiceAction::Value(d.custom_with(Some(v))) })
        .collect()
}

/// A typed answer for a custom field, read by the field's type; `-` clears an optional one.
fn custom_answer(req: &Req<'_>, d: &Dialogue, text: &str) -> Result<Vec<(&'static str, Value)>, String> {
    let Some(f) = d.custom() else { return Err("Please pick a field with the buttons above, or /cancel.".into()) };
    if validate::is_skip(text) {
        if f.required {
            return Err(format!("{} is required: type a value, or /cancel.", f.label));
        }
        return Ok(vec![("custom", d.custom_with(None))]);
    }
    let value = if f.field_type == FieldType::Date {
        let today = crm_concepts::local_time::today(req.zone(), chrono::Utc::now());
        f.check_value(&json!(validate::date(text, today)?.to_string())).map_err(|e| e.message)?
    } else {
        f.parse_text(text, req.locale, &req.ctx.default_currency).map_err(|e| e.message)?
    };
    Ok(vec![("custom", d.custom_with(Some(value)))])
}

fn choice_rows(d: &Dialogue) -> render::Rows {
    d.choices
        .iter()
        .enumerate()
        .map(|(i, c)| {
            vec![(c.label.clone(), Callback::Choice { nonce: d.nonce, choice: u16::try_from(i).unwrap_or(u16::MAX) })]
        })
        .collect()
}

/// Asks for the current field, with `prefix` (an error or an acknowledgement) first.
async fn prompt(req: &Req<'_>, d: &mut Dialogue, prefix: Option<&str>) {
    let Some(field) = d.current() else { return };
    let step = if d.fields.len() > 1 { format!("({}/{}) ", d.pos + 1, d.fields.len()) } else { String::new() };
    let mut text = String::new();
    if let Some(p) = prefix {
        text.push_str(p);
        text.push_str("\n\n");
    }
    text.push_str(&step);
    let required = field == Field::Custom && d.custom().is_some_and(|f| f.required);
    match (field, d.custom()) {
        (Field::Custom, Some(custom)) => {
            text.push_str(&custom_question(custom));
            d.choices = custom_choices(d);
        }
        _ => text.push_str(question(d.kind, field)),
    }
    if field.optional() && !required {
        text.push_str(" Send - to skip.");
    }
    if field == Field::Stage {
        match super::deal_view::pipelines(req).await {
            Ok(pipelines) => {
                d.choices = pipelines
                    .first()
                    .map(|p| {
                        p.stages
                            .iter()
                            .filter(|s| s.kind == StageKind::Open)
                            .map(|s| Choice { label: s.name.clone(), action: ChoiceAction::Value(json!(s.id)) })
                            .collect()
                    })
                    .unwrap_or_default();
            }
            Err(e) => super::log_engine_error(&e),
        }
        if d.choices.is_empty() {
            // No pipeline to offer: let the engine pick its default first stage.
            d.set(vec![("stage_id", Value::Null)]);
            return Box::pin(advance_prompt(req, d, prefix)).await;
        }
    }
    if d.pos == 0 && d.fields.len() > 1 {
        text.push_str("\n(/cancel stops without saving.)");
    }
    req.reply_with(&text, render::keyboard(choice_rows(d)));
}

/// After a skipped prompt: ask the next field, or finish.
async fn advance_prompt(req: &Req<'_>, d: &mut Dialogue, prefix: Option<&str>) {
    if d.is_complete() {
        return;
    }
    prompt(req, d, prefix).await;
}

/// A plain-text answer in a dialogue.
pub async fn answer(req: &Req<'_>, mut d: Dialogue, text: &str) {
    let Some(field) = d.current() else {
        req.reply("Please pick a field with the buttons above, or /cancel.");
        req.ctx.dialogues.put(req.chat.0, req.tg_user, d);
        return;
    };
    let result = if field == Field::Custom {
        custom_answer(req, &d, text)
    } else if validate::is_skip(text) && field.optional() {
        Ok(field.api_keys().iter().map(|k| (*k, Value::Null)).collect())
    } else {
        parse_answer(req, &mut d, field, text).await
    };
    match result {
        Ok(values) if values.is_empty() => {
            // A lookup offered choices; stay on this field.
            req.ctx.dialogues.put(req.chat.0, req.tg_user, d);
        }
        Ok(values) => {
            d.set(values);
            advance(req, d, None).await;
        }
        Err(msg) => {
            req.reply(&msg);
            req.ctx.dialogues.put(req.chat.0, req.tg_user, d);
        }
    }
}

async fn parse_answer(
    req: &Req<'_>,
    d: &mut Dialogue,
    field: Field,
    text: &str,
) -> Result<Vec<(&'static str, Value)>, String> {
    let now = chrono::Utc::now();
    let today = crm_concepts::local_time::today(req.zone(), now);
    Ok(match field {
        Field::Name => vec![("name", json!(validate::name(text, "name", fields::MAX_NAME)?))],
        Field::Title => vec![("title", json!(validate::name(text, "title", fields::MAX_NAME)?))],
        Field::Email => vec![("email", json!(validate::email(text)?))],
        Field::Phone => vec![("phone", json!(validate::phone(text)?))],
        Field::Domain => vec![("domain", json!(validate::domain(text)?))],
        Field::Amount => {
            let (minor, currency) = validate::money(text, &req.ctx.default_currency, req.locale)?;
            vec![("amount_minor", json!(minor)), ("currency", json!(currency))]
        }
        Field::ExpectedClose => {
            vec![("expected_close", json!(validate::date(text, today)?.to_string()))]
        }
        Field::Due => vec![("due_at", json!(validate::due(text, today, req.zone())?.to_rfc3339()))],
        Field::Body => vec![("body", json!(validate::body(text, fields::MAX_NOTE_BODY)?))],
        Field::Stage => return Err("Please pick a stage with the buttons above, or /cancel.".into()),
        Field::Custom => return custom_answer(req, d, text),
        Field::Company | Field::Contact => return lookup(req, d, field, text).await,
    })
}

/// Finds the company or contact the user typed; offers buttons when it is ambiguous.
async fn lookup(
    req: &Req<'_>,
    d: &mut Dialogue,
    field: Field,
    text: &str,
) -> Result<Vec<(&'static str, Value)>, String> {
    let q = validate::name(text, "search text", 200)?;
    let query = [("q", q.clone()), ("limit", LOOKUP_CHOICES.to_string())];
    let found: Result<Vec<(Id, String)>, EngineError> = if field == Field::Company {
        req.ctx
            .engine
            .get::<Page<Company>>(req.acting(), "/api/companies", &query)
            .await
            .map(|p| p.items.into_iter().map(|c| (c.id, c.name)).collect())
    } else {
        req.ctx
            .engine
            .get::<Page<Contact>>(req.acting(), "/api/contacts", &query)
            .await
            .map(|p| p.items.into_iter().map(|c| (c.id, c.name)).collect())
    };
    let found = found.map_err(|e| {
        super::log_engine_error(&e);
        e.for_chat()
    })?;
    let key = field.api_keys()[0];
    let what = field.label().to_lowercase();
    let exact = found.iter().find(|(_, name)| name.eq_ignore_ascii_case(&q));
    match (found.len(), exact) {
        (0, _) => Err(format!(
            "No {what} matches “{}”. Type another name, or send - to skip.",
            crate::text::ellipsize(&q, 60)
        )),
        (_, Some(_)) | (1, None) => {
            let id = exact.map_or(found[0].0, |e| e.0);
            Ok(vec![(key, json!(id))])
        }
        _ => {
            d.choices = found
                .into_iter()
                .map(|(id, name)| Choice { label: name, action: ChoiceAction::Value(json!(id)) })
                .collect();
            req.reply_with(
                &format!("Several {what} names match. Which one? (Or type another name, or - to skip.)"),
                render::keyboard(choice_rows(d)),
            );
            Ok(Vec::new())
        }
    }
}

/// A button pressed in a dialogue; returns the notice for the press.
pub async fn choose(req: &Req<'_>, nonce: u32, choice: u16) -> Option<String> {
    let stale = Some("This button belongs to a dialogue that has ended.".to_string());
    let mut d = match req.ctx.dialogues.get(req.chat.0, req.tg_user) {
        Some(d) if d.nonce == nonce => d,
        _ => return stale,
    };
    let Some(picked) = d.choices.get(usize::from(choice)).cloned() else { return stale };
    match picked.action {
        ChoiceAction::PickCustom(i) => {
            d.custom_order = vec![i];
            d.fields = vec![Field::Custom];
            d.pos = 0;
            d.choices.clear();
            prompt(req, &mut d, None).await;
            req.ctx.dialogues.put(req.chat.0, req.tg_user, d);
        }
        ChoiceAction::PickField(field) => {
            d.custom_order.clear();
            d.fields = vec![field];
            d.pos = 0;
            d.choices.clear();
            prompt(req, &mut d, None).await;
            req.ctx.dialogues.put(req.chat.0, req.tg_user, d);
        }
        ChoiceAction::Value(v) => {
            let Some(field) = d.current() else { return stale };
            let label = d.custom().filter(|_| field == Field::Custom).map_or(field.label(), |f| f.label.as_str());
            let ack = format!("{label}: {}", picked.label);
            d.set(vec![(field.api_keys()[0], v)]);
            advance(req, d, Some(&ack)).await;
        }
    }
    None
}

/// Asks the next field, or writes the record when every field is answered.
async fn advance(req: &Req<'_>, mut d: Dialogue, ack: Option<&str>) {
    if !d.is_complete() {
        prompt(req, &mut d, ack).await;
    }
    if d.is_complete() {
        finish(req, d).await;
    } else {
        req.ctx.dialogues.put(req.chat.0, req.tg_user, d);
    }
}

fn decode<T: serde::de::DeserializeOwned>(d: &Dialogue) -> Result<T, EngineError> {
    serde_json::from_value(Value::Object(d.values.clone())).map_err(|e| EngineError::Decode(e.to_string()))
}

async fn finish(req: &Req<'_>, mut d: Dialogue) {
    let engine = &req.ctx.engine;
    let acting = req.acting();
    let saved: Result<render::View, EngineError> = async {
        match d.kind {
            FormKind::AddContact => {
                let c: Contact = engine.post(acting, "/api/contacts", &decode::<NewContact>(&d)?).await?;
                Ok(saved_card(req, "✅ Contact added.", RecordKind::Contact, c.id).await)
            }
            FormKind::AddCompany => {
                let c: Company = engine.post(acting, "/api/companies", &decode::<NewCompany>(&d)?).await?;
                Ok(saved_card(req, "✅ Company added.", RecordKind::Company, c.id).await)
            }
            FormKind::EditContact(id) => {
                let c: Contact =
                    engine.patch(acting, &format!("/api/contacts/{id}"), &decode::<ContactPatch>(&d)?).await?;
                Ok(saved_card(req, "✅ Contact updated.", RecordKind::Contact, c.id).await)
            }
            FormKind::EditCompany(id) => {
                let c: Company =
                    engine.patch(acting, &format!("/api/companies/{id}"), &decode::<CompanyPatch>(&d)?).await?;
                Ok(saved_card(req, "✅ Company updated.", RecordKind::Company, c.id).await)
            }
            FormKind::AddDeal => {
                let deal: Deal = engine.post(acting, "/api/deals", &decode::<NewDeal>(&d)?).await?;
                Ok(saved_card(req, "✅ Deal added.", RecordKind::Deal, deal.id).await)
            }
            FormKind::EditDeal(id) => {
                let deal: Deal = engine.patch(acting, &format!("/api/deals/{id}"), &decode::<DealPatch>(&d)?).await?;
                Ok(saved_card(req, "✅ Deal updated.", RecordKind::Deal, deal.id).await)
            }
            FormKind::AddTask => {
                let mut task: NewTask = decode(&d)?;
                task.assignee_id = Some(req.user.id);
                let t: Task = engine.post(acting, "/api/tasks", &task).await?;
                Ok((
                    format!("✅ Task added: {}", render::task_line(&t, req.zone())),
                    vec![vec![("✅ Done".into(), Callback::TaskDone(t.id))]],
                ))
            }
            FormKind::Note(kind, id) => {
                let body = d.values.get("body").and_then(Value::as_str).unwrap_or_default().to_string();
                let n: Note = engine.post(acting, "/api/notes", &NewNote { body, ..note_target(kind, id) }).await?;
                Ok((format!("📝 Note #{} saved on {kind} #{id}.", n.id), Vec::new()))
            }
        }
    }
    .await;
    match saved {
        Ok((text, rows)) => {
            req.ctx.dialogues.end(req.chat.0, req.tg_user);
            req.reply_with(&text, render::keyboard(rows));
        }
        Err(e) => {
            // A refused field is asked again; anything else ends the dialogue. Either way
            // the engine wrote nothing: the record is one request.
            let refused_field = match &e {
                EngineError::Api { fields, .. } => {
                    fields.iter().find_map(|f| Field::for_api_key(&f.field).map(|k| (k, f.message.clone())))
                }
                _ => None,
            };
            if let Some((field, message)) = refused_field
                && d.rewind_to(field)
            {
                let prefix = format!("The CRM refused the {}: {message}", field.label().to_lowercase());
                prompt(req, &mut d, Some(&prefix)).await;
                req.ctx.dialogues.put(req.chat.0, req.tg_user, d);
                return;
            }
            if e.code() == Some("conflict") && d.rewind_to(Field::Email) {
                let prefix = format!("{} Try another email.", e.for_chat());
                prompt(req, &mut d, Some(&prefix)).await;
                req.ctx.dialogues.put(req.chat.0, req.tg_user, d);
                return;
            }
            req.ctx.dialogues.end(req.chat.0, req.tg_user);
            super::log_engine_error(&e);
            req.reply(&format!("{}\nNothing was saved.", e.for_chat()));
        }
    }
}

/// The saved record's card under `done`. The record is written whatever happens here: a card
/// that cannot be read back says so instead of reporting the write as failed.
async fn saved_card(req: &Req<'_>, done: &str, kind: RecordKind, id: Id) -> render::View {
    match super::cards::card(req, kind, id).await {
        Ok((card, rows)) => (format!("{done}\n\n{card}"), rows),
        Err(e) => {
            super::log_engine_error(&e);
            (format!("{done} ({kind} #{id})"), Vec::new())
        }
    }
}
