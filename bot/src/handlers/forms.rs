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
use crate::texts::Language;
use crate::{render, t, validate};

const LOOKUP_CHOICES: usize = 5;

fn may_write(req: &Req<'_>) -> bool {
    if req.user.role.can_write() {
        return true;
    }
    req.reply(&t!(req.lang, "role-read-only", role = super::access::role_name(req.user.role, req.lang)));
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
                .map(|f| Choice { label: f.label(req.lang), action: ChoiceAction::PickField(*f) })
                .chain(
                    d.custom_fields
                        .iter()
                        .enumerate()
                        .map(|(i, f)| Choice { label: f.label.clone(), action: ChoiceAction::PickCustom(i) }),
                )
                .collect();
            let rows = choice_rows(&d);
            req.reply_with(&t!(req.lang, "form-edit-which-field", title = title), render::keyboard(rows));
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
    match validate::name(args, &t!(req.lang, "field-task"), fields::MAX_NAME, req.lang) {
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
                let intro = t!(req.lang, "task-needs-fields", title = title.as_str());
                prompt(req, &mut d, Some(&intro)).await;
                req.ctx.dialogues.put(req.chat.0, req.tg_user, d);
                return;
            }
            let task = NewTask { title, assignee_id: Some(req.user.id), ..Default::default() };
            match req.ctx.engine.post::<_, Task>(req.acting(), "/api/tasks", &task).await {
                Ok(t) => req.reply(&t!(req.lang, "task-added", task = render::task_line(&t, req.zone(), req.lang))),
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
    match validate::body(text, fields::MAX_NOTE_BODY, req.lang) {
        Ok(body) => save_note(req, kind, id, body).await,
        Err(msg) => req.reply(&msg),
    }
}

async fn save_note(req: &Req<'_>, kind: RecordKind, id: Id, body: String) {
    let note = NewNote { body, ..note_target(kind, id) };
    match req.ctx.engine.post::<_, Note>(req.acting(), "/api/notes", &note).await {
        Ok(n) => req.reply(&note_saved(req, n.id, kind, id)),
        Err(e) => req.fail(&e),
    }
}

fn question(lang: Language, kind: FormKind, field: Field) -> String {
    match (field, kind) {
        (Field::Name, FormKind::AddCompany | FormKind::EditCompany(_)) => t!(lang, "ask-company-name"),
        (Field::Name, _) => t!(lang, "ask-contact-name"),
        (Field::Domain, _) => t!(lang, "ask-domain"),
        (Field::Email, _) => t!(lang, "ask-email"),
        (Field::Phone, _) => t!(lang, "ask-phone"),
        (Field::Company, _) => t!(lang, "ask-company"),
        (Field::Title, FormKind::AddTask) => t!(lang, "ask-task-title"),
        (Field::Title, _) => t!(lang, "ask-deal-title"),
        (Field::Amount, _) => t!(lang, "ask-amount"),
        (Field::Contact, _) => t!(lang, "ask-contact"),
        (Field::Stage, _) => t!(lang, "ask-stage"),
        (Field::ExpectedClose, _) => t!(lang, "ask-expected-close"),
        (Field::Due, _) => t!(lang, "ask-due"),
        (Field::Body, _) => t!(lang, "ask-note"),
        (Field::Custom, _) => t!(lang, "ask-custom"),
    }
}

/// "📝 Note #3 saved on contact #7."
fn note_saved(req: &Req<'_>, note: Id, kind: RecordKind, id: Id) -> String {
    t!(req.lang, "note-saved", note = note, record = render::record_ref(kind, id, req.lang))
}

fn custom_question(lang: Language, f: &FieldDefinition) -> String {
    let label = f.label.as_str();
    match f.field_type {
        FieldType::Text => t!(lang, "ask-custom-text", label = label),
        FieldType::Number => t!(lang, "ask-custom-number", label = label),
        FieldType::Money => t!(lang, "ask-custom-money", label = label),
        FieldType::Date => t!(lang, "ask-custom-date", label = label),
        FieldType::Choice | FieldType::YesNo => t!(lang, "ask-custom-pick", label = label),
    }
}

/// A choice field's choices (yes/no's two) as buttons, each carrying the whole `custom`
/// object the patch will send.
fn custom_choices(lang: Language, d: &Dialogue) -> Vec<Choice> {
    let Some(f) = d.custom() else { return Vec::new() };
    let offered: Vec<(String, Value)> = match f.field_type {
        FieldType::Choice => f.choices.iter().map(|c| (c.clone(), json!(c))).collect(),
        FieldType::YesNo => vec![(t!(lang, "yes"), json!(true)), (t!(lang, "no"), json!(false))],
        _ => Vec::new(),
    };
    offered
        .into_iter()
        .map(|(label, v)| Choice { label, action: ChoiceAction::Value(d.custom_with(Some(v))) })
        .collect()
}

/// A typed answer for a custom field, read by the field's type; `-` clears an optional one.
/// A refusal is said in the user's language; the field's label stays as the admin wrote it.
fn custom_answer(req: &Req<'_>, d: &Dialogue, text: &str) -> Result<Vec<(&'static str, Value)>, String> {
    let Some(f) = d.custom() else { return Err(t!(req.lang, "form-pick-field")) };
    if validate::is_skip(text) {
        if f.required {
            return Err(t!(req.lang, "form-custom-required", label = f.label.as_str()));
        }
        return Ok(vec![("custom", d.custom_with(None))]);
    }
    let label = f.label.as_str();
    let value = match f.field_type {
        FieldType::Date => {
            let today = crm_concepts::local_time::today(req.zone(), chrono::Utc::now());
            f.check_value(&json!(validate::date(text, today, req.lang)?.to_string()))
        }
        FieldType::Money => {
            // The amount's own refusal (a currency, its decimals) says more than the field's.
            validate::money(text, &req.ctx.default_currency, req.locale, req.lang)
                .map_err(|why| t!(req.lang, "form-custom-money", label = label, error = why))?;
            f.parse_text(text, req.locale, &req.ctx.default_currency)
        }
        _ => f.parse_text(text, req.locale, &req.ctx.default_currency),
    };
    value.map(|v| vec![("custom", d.custom_with(Some(v)))]).map_err(|_| match f.field_type {
        FieldType::Number => t!(req.lang, "form-custom-number", label = label),
        FieldType::YesNo => t!(req.lang, "form-custom-yes-no", label = label),
        FieldType::Choice => t!(req.lang, "form-custom-choice", label = label, choices = f.choices.join(", ")),
        FieldType::Text => t!(req.lang, "form-custom-text", label = label, max = crm_concepts::custom_fields::MAX_TEXT),
        FieldType::Date => t!(req.lang, "invalid-date"),
        FieldType::Money => t!(req.lang, "invalid-money"),
    })
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
            text.push_str(&custom_question(req.lang, custom));
            d.choices = custom_choices(req.lang, d);
        }
        _ => text.push_str(&question(req.lang, d.kind, field)),
    }
    if field.optional() && !required {
        text.push(' ');
        text.push_str(&t!(req.lang, "form-skip-hint"));
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
        text.push('\n');
        text.push_str(&t!(req.lang, "form-cancel-hint"));
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
        req.reply(&t!(req.lang, "form-pick-field"));
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
        Field::Name => vec![(
            "name",
            json!(validate::name(text, &field.label(req.lang).to_lowercase(), fields::MAX_NAME, req.lang)?),
        )],
        Field::Title => vec![(
            "title",
            json!(validate::name(text, &field.label(req.lang).to_lowercase(), fields::MAX_NAME, req.lang)?),
        )],
        Field::Email => vec![("email", json!(validate::email(text, req.lang)?))],
        Field::Phone => vec![("phone", json!(validate::phone(text, req.lang)?))],
        Field::Domain => vec![("domain", json!(validate::domain(text, req.lang)?))],
        Field::Amount => {
            let (minor, currency) = validate::money(text, &req.ctx.default_currency, req.locale, req.lang)?;
            vec![("amount_minor", json!(minor)), ("currency", json!(currency))]
        }
        Field::ExpectedClose => {
            vec![("expected_close", json!(validate::date(text, today, req.lang)?.to_string()))]
        }
        Field::Due => vec![("due_at", json!(validate::due(text, today, req.zone(), req.lang)?.to_rfc3339()))],
        Field::Body => vec![("body", json!(validate::body(text, fields::MAX_NOTE_BODY, req.lang)?))],
        Field::Stage => return Err(t!(req.lang, "form-pick-stage")),
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
    let q = validate::name(text, &t!(req.lang, "field-search-text"), 200, req.lang)?;
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
        e.for_chat(req.lang)
    })?;
    let key = field.api_keys()[0];
    let what = field.label(req.lang).to_lowercase();
    let exact = found.iter().find(|(_, name)| name.eq_ignore_ascii_case(&q));
    match (found.len(), exact) {
        (0, _) => Err(t!(req.lang, "form-lookup-none", what = what, text = crate::text::ellipsize(&q, 60))),
        (_, Some(_)) | (1, None) => {
            let id = exact.map_or(found[0].0, |e| e.0);
            Ok(vec![(key, json!(id))])
        }
        _ => {
            d.choices = found
                .into_iter()
                .map(|(id, name)| Choice { label: name, action: ChoiceAction::Value(json!(id)) })
                .collect();
            req.reply_with(&t!(req.lang, "form-lookup-several", what = what), render::keyboard(choice_rows(d)));
            Ok(Vec::new())
        }
    }
}

/// A button pressed in a dialogue; returns the notice for the press.
pub async fn choose(req: &Req<'_>, nonce: u32, choice: u16) -> Option<String> {
    let stale = Some(t!(req.lang, "form-stale-button"));
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
            let label = d
                .custom()
                .filter(|_| field == Field::Custom)
                .map_or_else(|| field.label(req.lang), |f| f.label.clone());
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
                Ok(saved_card(req, &t!(req.lang, "contact-added"), RecordKind::Contact, c.id).await)
            }
            FormKind::AddCompany => {
                let c: Company = engine.post(acting, "/api/companies", &decode::<NewCompany>(&d)?).await?;
                Ok(saved_card(req, &t!(req.lang, "company-added"), RecordKind::Company, c.id).await)
            }
            FormKind::EditContact(id) => {
                let c: Contact =
                    engine.patch(acting, &format!("/api/contacts/{id}"), &decode::<ContactPatch>(&d)?).await?;
                Ok(saved_card(req, &t!(req.lang, "contact-updated"), RecordKind::Contact, c.id).await)
            }
            FormKind::EditCompany(id) => {
                let c: Company =
                    engine.patch(acting, &format!("/api/companies/{id}"), &decode::<CompanyPatch>(&d)?).await?;
                Ok(saved_card(req, &t!(req.lang, "company-updated"), RecordKind::Company, c.id).await)
            }
            FormKind::AddDeal => {
                let deal: Deal = engine.post(acting, "/api/deals", &decode::<NewDeal>(&d)?).await?;
                Ok(saved_card(req, &t!(req.lang, "deal-added"), RecordKind::Deal, deal.id).await)
            }
            FormKind::EditDeal(id) => {
                let deal: Deal = engine.patch(acting, &format!("/api/deals/{id}"), &decode::<DealPatch>(&d)?).await?;
                Ok(saved_card(req, &t!(req.lang, "deal-updated"), RecordKind::Deal, deal.id).await)
            }
            FormKind::AddTask => {
                let mut task: NewTask = decode(&d)?;
                task.assignee_id = Some(req.user.id);
                let t: Task = engine.post(acting, "/api/tasks", &task).await?;
                Ok((
                    t!(req.lang, "task-added", task = render::task_line(&t, req.zone(), req.lang)),
                    vec![vec![(t!(req.lang, "button-done"), Callback::TaskDone(t.id))]],
                ))
            }
            FormKind::Note(kind, id) => {
                let body = d.values.get("body").and_then(Value::as_str).unwrap_or_default().to_string();
                let n: Note = engine.post(acting, "/api/notes", &NewNote { body, ..note_target(kind, id) }).await?;
                Ok((note_saved(req, n.id, kind, id), Vec::new()))
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
                let prefix =
                    t!(req.lang, "form-refused", field = field.label(req.lang).to_lowercase(), message = message);
                prompt(req, &mut d, Some(&prefix)).await;
                req.ctx.dialogues.put(req.chat.0, req.tg_user, d);
                return;
            }
            if e.code() == Some("conflict") && d.rewind_to(Field::Email) {
                let prefix = t!(req.lang, "form-conflict-email", error = e.for_chat(req.lang));
                prompt(req, &mut d, Some(&prefix)).await;
                req.ctx.dialogues.put(req.chat.0, req.tg_user, d);
                return;
            }
            req.ctx.dialogues.end(req.chat.0, req.tg_user);
            super::log_engine_error(&e);
            req.reply(&t!(req.lang, "form-not-saved", error = e.for_chat(req.lang)));
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
            (format!("{done} ({})", render::record_ref(kind, id, req.lang)), Vec::new())
        }
    }
}
