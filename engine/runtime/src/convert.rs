//! The one place where WIT types (what a guest passes and receives) meet the `concepts`
//! types every other crate speaks. Guest input arrives unchecked: times, dates and custom
//! fields that do not parse become `invalid` host errors, never a panic.

use chrono::{DateTime, NaiveDate, Utc};
use crm_concepts::host_call::{HostCallError, list_limit};
use crm_concepts::records as rec;
use serde_json::{Map, Value};

use crate::bindings as wit;

type Checked<T> = Result<T, wit::HostError>;

pub fn host_error(e: HostCallError) -> wit::HostError {
    match e {
        HostCallError::NotFound(m) => wit::HostError::NotFound(m),
        HostCallError::Invalid(m) => wit::HostError::Invalid(m),
        HostCallError::Conflict(m) => wit::HostError::Conflict(m),
        HostCallError::Unavailable(m) => wit::HostError::Unavailable(m),
        // `serve` turns a divergence into a trap before it could reach the guest.
        HostCallError::Diverged(m) => wit::HostError::Invalid(m),
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn time(ms: i64) -> Checked<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| wit::HostError::Invalid(format!("{ms} is not a valid time")))
}

fn opt_time(ms: Option<i64>) -> Checked<Option<DateTime<Utc>>> {
    ms.map(time).transpose()
}

fn date(text: &str) -> Checked<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| wit::HostError::Invalid(format!("{text:?} is not a date (YYYY-MM-DD)")))
}

/// Custom fields cross the boundary as JSON text; only a JSON object is valid.
fn custom(text: &str) -> Checked<Map<String, Value>> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(wit::HostError::Invalid("custom: must be a JSON object".into())),
        Err(e) => Err(wit::HostError::Invalid(format!("custom: not valid JSON: {e}"))),
    }
}

/// An empty custom text means "no custom fields", as the SDK's defaults send it.
fn new_custom(text: &str) -> Checked<Map<String, Value>> {
    if text.trim().is_empty() { Ok(Map::new()) } else { custom(text) }
}

fn custom_text(c: Map<String, Value>) -> String {
    Value::Object(c).to_string()
}

// --- replies: concepts → WIT ---------------------------------------------------------

pub fn contact(c: rec::Contact) -> wit::Contact {
    wit::Contact {
        id: c.id,
        name: c.name,
        email: c.email,
        phone: c.phone,
        company_id: c.company_id,
        owner_id: c.owner_id,
        tags: c.tags,
        custom: custom_text(c.custom),
        created_at: ms(c.created_at),
        updated_at: ms(c.updated_at),
    }
}

pub fn company(c: rec::Company) -> wit::Company {
    wit::Company {
        id: c.id,
        name: c.name,
        domain: c.domain,
        phone: c.phone,
        owner_id: c.owner_id,
        tags: c.tags,
        custom: custom_text(c.custom),
        created_at: ms(c.created_at),
        updated_at: ms(c.updated_at),
    }
}

pub fn deal(d: rec::Deal) -> wit::Deal {
    wit::Deal {
        id: d.id,
        title: d.title,
        amount_minor: d.amount_minor,
        currency: d.currency,
        pipeline_id: d.pipeline_id,
        stage_id: d.stage_id,
        contact_id: d.contact_id,
        company_id: d.company_id,
        owner_id: d.owner_id,
        expected_close: d.expected_close.map(|x| x.format("%Y-%m-%d").to_string()),
        status: deal_status(d.status),
        closed_at: d.closed_at.map(ms),
        tags: d.tags,
        custom: custom_text(d.custom),
        created_at: ms(d.created_at),
        updated_at: ms(d.updated_at),
        stage_changed_at: ms(d.stage_changed_at),
    }
}

pub fn task(t: rec::Task) -> wit::Task {
    wit::Task {
        id: t.id,
        title: t.title,
        due_at: t.due_at.map(ms),
        done: t.done,
        done_at: t.done_at.map(ms),
        assignee_id: t.assignee_id,
        contact_id: t.contact_id,
        company_id: t.company_id,
        deal_id: t.deal_id,
        created_at: ms(t.created_at),
        updated_at: ms(t.updated_at),
    }
}

pub fn note(n: rec::Note) -> wit::Note {
    wit::Note {
        id: n.id,
        body: n.body,
        author_id: n.author_id,
        contact_id: n.contact_id,
        company_id: n.company_id,
        deal_id: n.deal_id,
        task_id: n.task_id,
        created_at: ms(n.created_at),
        updated_at: ms(n.updated_at),
    }
}

/// `None` for kinds a step cannot name (pipelines, users): such entries are left out.
pub fn user(u: crm_concepts::user::UserProfile) -> wit::User {
    wit::User { id: u.id, name: u.name, time_zone: u.time_zone, remind_before_minutes: u.remind_before_minutes }
}

/// Buttons as a guest gives them; a `start-run` input that is not JSON is refused here, the
/// rest by [`crm_concepts::message_button::check`] wherever the call is served.
pub fn buttons(
    buttons: Vec<crate::bindings::crm::automation::notify::Button>,
) -> Checked<Vec<crm_concepts::message_button::Button>> {
    use crate::bindings::crm::automation::notify::Action;
    use crm_concepts::message_button::{Button, ButtonAction};
    buttons
        .into_iter()
        .map(|b| {
            let action = match b.action {
                Action::CompleteTask(task_id) => ButtonAction::CompleteTask { task_id },
                Action::StartRun(r) => ButtonAction::StartRun {
                    input: serde_json::from_str(&r.input).map_err(|e| {
                        wit::HostError::Invalid(format!("the input of a start-run button is not JSON: {e}"))
                    })?,
                    workflow: r.workflow,
                },
            };
            Ok(Button { label: b.label, action })
        })
        .collect()
}

pub fn activity(a: rec::Activity) -> Option<wit::Activity> {
    Some(wit::Activity {
        at: ms(a.at),
        actor_id: a.actor_id,
        record_kind: match a.record_kind {
            rec::RecordKind::Contact => wit::RecordKind::Contact,
            rec::RecordKind::Company => wit::RecordKind::Company,
            rec::RecordKind::Deal => wit::RecordKind::Deal,
            rec::RecordKind::Task => wit::RecordKind::Task,
            rec::RecordKind::Note => wit::RecordKind::Note,
            rec::RecordKind::Pipeline | rec::RecordKind::User => return None,
        },
        record_id: a.record_id,
        action: a.action,
    })
}

fn deal_status(s: rec::DealStatus) -> wit::DealStatus {
    match s {
        rec::DealStatus::Open => wit::DealStatus::Open,
        rec::DealStatus::Won => wit::DealStatus::Won,
        rec::DealStatus::Lost => wit::DealStatus::Lost,
    }
}

// --- arguments: WIT → concepts -------------------------------------------------------

pub fn record_kind(k: wit::RecordKind) -> rec::RecordKind {
    match k {
        wit::RecordKind::Contact => rec::RecordKind::Contact,
        wit::RecordKind::Company => rec::RecordKind::Company,
        wit::RecordKind::Deal => rec::RecordKind::Deal,
        wit::RecordKind::Task => rec::RecordKind::Task,
        wit::RecordKind::Note => rec::RecordKind::Note,
    }
}

fn status(s: wit::DealStatus) -> rec::DealStatus {
    match s {
        wit::DealStatus::Open => rec::DealStatus::Open,
        wit::DealStatus::Won => rec::DealStatus::Won,
        wit::DealStatus::Lost => rec::DealStatus::Lost,
    }
}

pub fn contact_filter(f: wit::ContactFilter) -> (rec::ContactFilter, u32) {
    let filter = rec::ContactFilter {
        owner_id: f.owner_id,
        company_id: f.company_id,
        tag: f.tag,
        q: f.query,
        fields: Vec::new(),
    };
    (filter, list_limit(f.limit))
}

pub fn new_contact(n: wit::NewContact) -> Checked<rec::NewContact> {
    Ok(rec::NewContact {
        name: n.name,
        email: n.email,
        phone: n.phone,
        company_id: n.company_id,
        owner_id: n.owner_id,
        tags: n.tags,
        custom: new_custom(&n.custom)?,
    })
}

pub fn contact_patch(p: wit::ContactPatch) -> Checked<rec::ContactPatch> {
    Ok(rec::ContactPatch {
        name: p.name,
        email: p.email,
        phone: p.phone,
        company_id: p.company_id,
        owner_id: p.owner_id,
        tags: p.tags,
        custom: p.custom.as_deref().map(custom).transpose()?,
    })
}

pub fn company_filter(f: wit::CompanyFilter) -> (rec::CompanyFilter, u32) {
    (rec::CompanyFilter { owner_id: f.owner_id, tag: f.tag, q: f.query, fields: Vec::new() }, list_limit(f.limit))
}

pub fn new_company(n: wit::NewCompany) -> Checked<rec::NewCompany> {
    Ok(rec::NewCompany {
        name: n.name,
        domain: n.domain,
        phone: n.phone,
        owner_id: n.owner_id,
        tags: n.tags,
        custom: new_custom(&n.custom)?,
    })
}

pub fn company_patch(p: wit::CompanyPatch) -> Checked<rec::CompanyPatch> {
    Ok(rec::CompanyPatch {
        name: p.name,
        domain: p.domain,
        phone: p.phone,
        owner_id: p.owner_id,
        tags: p.tags,
        custom: p.custom.as_deref().map(custom).transpose()?,
    })
}

pub fn deal_filter(f: wit::DealFilter) -> Checked<(rec::DealFilter, u32)> {
    let filter = rec::DealFilter {
        pipeline_id: f.pipeline_id,
        stage_id: f.stage_id,
        status: f.status.map(status),
        owner_id: f.owner_id,
        contact_id: f.contact_id,
        company_id: f.company_id,
        q: f.query,
        stage_changed_before: opt_time(f.stage_changed_before)?,
        fields: Vec::new(),
    };
    Ok((filter, list_limit(f.limit)))
}

pub fn new_deal(n: wit::NewDeal) -> Checked<rec::NewDeal> {
    Ok(rec::NewDeal {
        title: n.title,
        amount_minor: n.amount_minor,
        currency: Some(n.currency),
        pipeline_id: Some(n.pipeline_id),
        stage_id: Some(n.stage_id),
        contact_id: n.contact_id,
        company_id: n.company_id,
        owner_id: n.owner_id,
        expected_close: n.expected_close.as_deref().map(date).transpose()?,
        tags: n.tags,
        custom: new_custom(&n.custom)?,
    })
}

pub fn deal_patch(p: wit::DealPatch) -> Checked<rec::DealPatch> {
    let expected_close = match p.expected_close {
        None => None,
        Some(None) => Some(None),
        Some(Some(text)) => Some(Some(date(&text)?)),
    };
    Ok(rec::DealPatch {
        title: p.title,
        amount_minor: p.amount_minor,
        currency: p.currency,
        pipeline_id: None,
        stage_id: p.stage_id,
        contact_id: p.contact_id,
        company_id: p.company_id,
        owner_id: p.owner_id,
        expected_close,
        tags: p.tags,
        custom: p.custom.as_deref().map(custom).transpose()?,
    })
}

pub fn task_filter(f: wit::TaskFilter) -> Checked<(rec::TaskFilter, u32)> {
    let filter = rec::TaskFilter {
        assignee_id: f.assignee_id,
        done: f.done,
        due_before: opt_time(f.due_before)?,
        deal_id: f.deal_id,
        contact_id: f.contact_id,
        company_id: f.company_id,
        fields: Vec::new(),
    };
    Ok((filter, list_limit(f.limit)))
}

pub fn new_task(n: wit::NewTask) -> Checked<rec::NewTask> {
    Ok(rec::NewTask {
        title: n.title,
        due_at: opt_time(n.due_at)?,
        assignee_id: n.assignee_id,
        contact_id: n.contact_id,
        company_id: n.company_id,
        deal_id: n.deal_id,
        custom: Map::new(),
    })
}

pub fn task_patch(p: wit::TaskPatch) -> Checked<rec::TaskPatch> {
    let due_at = match p.due_at {
        None => None,
        Some(None) => Some(None),
        Some(Some(t)) => Some(Some(time(t)?)),
    };
    Ok(rec::TaskPatch { title: p.title, due_at, done: p.done, assignee_id: p.assignee_id, ..Default::default() })
}

pub fn note_filter(f: wit::NoteFilter) -> (rec::NoteFilter, u32) {
    let filter =
        rec::NoteFilter { contact_id: f.contact_id, company_id: f.company_id, deal_id: f.deal_id, task_id: f.task_id };
    (filter, list_limit(f.limit))
}

pub fn new_note(n: wit::NewNote) -> rec::NewNote {
    rec::NewNote {
        body: n.body,
        contact_id: n.contact_id,
        company_id: n.company_id,
        deal_id: n.deal_id,
        task_id: n.task_id,
    }
}

pub fn note_patch(p: wit::NotePatch) -> rec::NotePatch {
    rec::NotePatch { body: p.body }
}
