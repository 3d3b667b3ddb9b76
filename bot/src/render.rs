//! How records look in a chat. Plain text only: no parse mode, so names with `*`, `<` or
//! right-to-left marks are shown as typed and can never break a message.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use crm_concepts::custom_fields::{self, FieldDefinition};
use crm_concepts::records::{Company, Contact, CustomFields, Deal, Pipeline, Task};
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};

use crate::callback::Callback;
use crate::text::ellipsize;

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

pub fn contact_card(c: &Contact, company: Option<&Company>, fields: &[FieldDefinition]) -> String {
    let mut lines = vec![format!("👤 {} (contact #{})", c.name, c.id)];
    if let Some(e) = &c.email {
        lines.push(format!("✉️ {e}"));
    }
    if let Some(p) = &c.phone {
        lines.push(format!("📞 {p}"));
    }
    match (company, c.company_id) {
        (Some(co), _) => lines.push(format!("🏢 {}", co.name)),
        (None, Some(id)) => lines.push(format!("🏢 company #{id}")),
        _ => {}
    }
    if !c.tags.is_empty() {
        lines.push(format!("🏷 {}", c.tags.join(", ")));
    }
    lines.extend(custom_lines(fields, &c.custom));
    lines.join("\n")
}

pub fn company_card(c: &Company, fields: &[FieldDefinition]) -> String {
    let mut lines = vec![format!("🏢 {} (company #{})", c.name, c.id)];
    if let Some(d) = &c.domain {
        lines.push(format!("🌐 {d}"));
    }
    if let Some(p) = &c.phone {
        lines.push(format!("📞 {p}"));
    }
    lines.extend(custom_lines(fields, &c.custom));
    lines.join("\n")
}

pub fn stage_name(pipelines: &[Pipeline], stage_id: i64) -> String {
    pipelines
        .iter()
        .flat_map(|p| p.stages.iter())
        .find(|s| s.id == stage_id)
        .map_or_else(|| format!("stage #{stage_id}"), |s| s.name.clone())
}

pub fn deal_card(
    d: &Deal,
    pipelines: &[Pipeline],
    contact: Option<&Contact>,
    company: Option<&Company>,
    fields: &[FieldDefinition],
) -> String {
    let mut lines = vec![
        format!("💼 {} (deal #{})", d.title, d.id),
        format!("💰 {}", money(d.amount_minor, &d.currency)),
        format!("📍 {} · {}", stage_name(pipelines, d.stage_id), d.status.as_str()),
    ];
    if let Some(c) = contact {
        lines.push(format!("👤 {}", c.name));
    }
    if let Some(c) = company {
        lines.push(format!("🏢 {}", c.name));
    }
    if let Some(date) = d.expected_close {
        lines.push(format!("📅 expected close {date}"));
    }
    lines.extend(custom_lines(fields, &d.custom));
    lines.join("\n")
}

pub fn task_line(t: &Task, zone: Tz) -> String {
    let mark = if t.done { "✅" } else { "⬜" };
    match t.due_at {
        Some(due) => format!("{mark} {} — due {}", t.title, when(due, zone)),
        None => format!("{mark} {}", t.title),
    }
}

/// A record's custom fields, one line each: the defined ones under their labels in the
/// order they were defined, then free-form keys as they are (an automation's `lead_score`).
pub fn custom_lines(fields: &[FieldDefinition], custom: &CustomFields) -> Vec<String> {
    let defined = fields.iter().filter_map(|f| {
        custom.get(&f.key).filter(|v| !v.is_null()).map(|v| format!("▫️ {}: {}", f.label, f.display(v)))
    });
    let free = custom
        .iter()
        .filter(|(k, v)| !v.is_null() && !fields.iter().any(|f| &f.key == *k))
        .map(|(k, v)| format!("▫️ {k}: {}", ellipsize(&custom_fields::display(v), 200)));
    defined.chain(free).collect()
}
