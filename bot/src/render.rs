//! How records look in a chat. Plain text only: no parse mode, so names with `*`, `<` or
//! right-to-left marks are shown as typed and can never break a message.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use crm_concepts::custom_fields::{self, FieldDefinition, FieldType};
use crm_concepts::records::{Company, Contact, CustomFields, Deal, DealStatus, Id, Pipeline, RecordKind, Task};
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};

use crate::callback::Callback;
use crate::t;
use crate::text::ellipsize;
use crate::texts::Language;

/// Button labels longer than this are cut; Telegram shows little more on a phone.
pub const LABEL_CHARS: usize = 40;

/// Buttons row by row, each a label and what it does.
pub type Rows = Vec<Vec<(String, Callback)>>;

/// A message: its text and its buttons.
pub type View = (String, Rows);

pub fn keyboard(rows: Rows) -> Option<InlineKeyboardMarkup> {
    let rows: Vec<Vec<InlineKeyboardButton>> = rows
        .into_iter()
        .filter(|r| !r.is_empty())
        .map(|r| {
            r.into_iter()
                .map(|(label, cb)| InlineKeyboardButton::callback(ellipsize(&label, LABEL_CHARS), cb.encode()))
                .collect()
        })
        .collect();
    if rows.is_empty() { None } else { Some(InlineKeyboardMarkup::new(rows)) }
}

/// `1,500.00 USD`
pub use crm_concepts::money::format as money;

/// A time in the reader's zone: they set it with /settings, so it goes unnamed.
pub fn when(t: DateTime<Utc>, zone: Tz) -> String {
    crm_concepts::local_time::format(t, zone, zone)
}

/// A deal's status as the reader says it.
pub fn deal_status(status: DealStatus, lang: Language) -> String {
    match status {
        DealStatus::Open => t!(lang, "deal-status-open"),
        DealStatus::Won => t!(lang, "deal-status-won"),
        DealStatus::Lost => t!(lang, "deal-status-lost"),
    }
}

/// "contact #7", for notices about a record.
pub fn record_ref(kind: RecordKind, id: Id, lang: Language) -> String {
    match kind {
        RecordKind::Contact => t!(lang, "ref-contact", id = id),
        RecordKind::Company => t!(lang, "ref-company", id = id),
        RecordKind::Deal => t!(lang, "ref-deal", id = id),
        RecordKind::Task => t!(lang, "ref-task", id = id),
        other => format!("{other} #{id}"),
    }
}

pub fn contact_card(c: &Contact, company: Option<&Company>, fields: &[FieldDefinition], lang: Language) -> String {
    let mut lines = vec![format!("👤 {} ({})", c.name, record_ref(RecordKind::Contact, c.id, lang))];
    if let Some(e) = &c.email {
        lines.push(format!("✉️ {e}"));
    }
    if let Some(p) = &c.phone {
        lines.push(format!("📞 {p}"));
    }
    match (company, c.company_id) {
        (Some(co), _) => lines.push(format!("🏢 {}", co.name)),
        (None, Some(id)) => lines.push(format!("🏢 {}", record_ref(RecordKind::Company, id, lang))),
        _ => {}
    }
    if !c.tags.is_empty() {
        lines.push(format!("🏷 {}", c.tags.join(", ")));
    }
    lines.extend(custom_lines(fields, &c.custom, lang));
    lines.join("\n")
}

pub fn company_card(c: &Company, fields: &[FieldDefinition], lang: Language) -> String {
    let mut lines = vec![format!("🏢 {} ({})", c.name, record_ref(RecordKind::Company, c.id, lang))];
    if let Some(d) = &c.domain {
        lines.push(format!("🌐 {d}"));
    }
    if let Some(p) = &c.phone {
        lines.push(format!("📞 {p}"));
    }
    lines.extend(custom_lines(fields, &c.custom, lang));
    lines.join("\n")
}

pub fn stage_name(pipelines: &[Pipeline], stage_id: i64, lang: Language) -> String {
    pipelines
        .iter()
        .flat_map(|p| p.stages.iter())
        .find(|s| s.id == stage_id)
        .map_or_else(|| t!(lang, "ref-stage", id = stage_id), |s| s.name.clone())
}

pub fn deal_card(
    d: &Deal,
    pipelines: &[Pipeline],
    contact: Option<&Contact>,
    company: Option<&Company>,
    fields: &[FieldDefinition],
    lang: Language,
) -> String {
    let status = deal_status(d.status, lang);
    let mut lines = vec![
        format!("💼 {} ({})", d.title, record_ref(RecordKind::Deal, d.id, lang)),
        format!("💰 {}", money(d.amount_minor, &d.currency)),
        format!("📍 {} · {status}", stage_name(pipelines, d.stage_id, lang)),
    ];
    if let Some(c) = contact {
        lines.push(format!("👤 {}", c.name));
    }
    if let Some(c) = company {
        lines.push(format!("🏢 {}", c.name));
    }
    if let Some(date) = d.expected_close {
        lines.push(t!(lang, "card-expected-close", date = date.to_string()));
    }
    lines.extend(custom_lines(fields, &d.custom, lang));
    lines.join("\n")
}

pub fn task_line(task: &Task, zone: Tz, lang: Language) -> String {
    let mark = if task.done { "✅" } else { "⬜" };
    match task.due_at {
        Some(due) => t!(lang, "task-line-due", mark = mark, title = task.title.as_str(), due = when(due, zone)),
        None => format!("{mark} {}", task.title),
    }
}

/// A record's custom fields, one line each: the defined ones under their labels in the
/// order they were defined, then free-form keys as they are (an automation's `lead_score`).
/// A yes/no field reads in `lang`; labels and values stay as they were written.
pub fn custom_lines(fields: &[FieldDefinition], custom: &CustomFields, lang: Language) -> Vec<String> {
    let shown = |f: &FieldDefinition, v: &serde_json::Value| match (f.field_type, v) {
        (FieldType::YesNo, serde_json::Value::Bool(true)) => t!(lang, "yes"),
        (FieldType::YesNo, serde_json::Value::Bool(false)) => t!(lang, "no"),
        _ => f.display(v),
    };
    let defined = fields.iter().filter_map(|f| {
        custom.get(&f.key).filter(|v| !v.is_null()).map(|v| format!("▫️ {}: {}", f.label, shown(f, v)))
    });
    let free = custom
        .iter()
        .filter(|(k, v)| !v.is_null() && !fields.iter().any(|f| &f.key == *k))
        .map(|(k, v)| format!("▫️ {k}: {}", ellipsize(&custom_fields::display(v), 200)));
    defined.chain(free).collect()
}
