//! Lead scoring: how promising is a contact, judged from their deals and recent activity.
//!
//! **Input** (run input or config): `contact_id` (integer, required).
//!
//! **Config** (all optional):
//! - `recent_days` (default 30): activity, notes and tasks newer than this count as recent;
//! - `hot_at` (default 70) and `warm_at` (default 40): grade thresholds on the 0–100 score;
//! - `branches`: `{"hot": ["step-id", ...], "warm": [...], "cold": [...]}` — successor
//!   steps to run for each grade (absent: run all successors);
//! - `write_back` (default false): store `lead_score` and `lead_grade` in the contact's
//!   custom fields (needs `records:write`).
//!
//! **Capabilities:** `records:read`, `log` (and `records:write` with `write_back`).
//!
//! **Output:** `{"contact_id", "name", "score", "grade": "hot"|"warm"|"cold", "reasons": [..]}`
//! where each reason is `{"points", "why"}` so a person can see how the score came about.

use crm_sdk::records::{self, ContactPatch, DealFilter, DealStatus, NoteFilter, RecordKind, TaskFilter};
use crm_sdk::{DAY_MS, Input, Output, StepError};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    contact_id: Option<i64>,
    recent_days: i64,
    hot_at: i64,
    warm_at: i64,
    branches: Option<Branches>,
    write_back: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config { contact_id: None, recent_days: 30, hot_at: 70, warm_at: 40, branches: None, write_back: false }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Branches {
    #[serde(default)]
    hot: Vec<String>,
    #[serde(default)]
    warm: Vec<String>,
    #[serde(default)]
    cold: Vec<String>,
}

#[derive(Serialize)]
struct Reason {
    points: i64,
    why: String,
}

#[derive(Default)]
struct Score {
    reasons: Vec<Reason>,
}

impl Score {
    fn add(&mut self, points: i64, why: String) {
        if points != 0 {
            self.reasons.push(Reason { points, why });
        }
    }

    fn total(&self) -> i64 {
        self.reasons.iter().map(|r| r.points).sum::<i64>().clamp(0, 100)
    }
}

fn run(input: Input) -> Result<Output, StepError> {
    let config: Config = input.config()?;
    let contact_id = match config.contact_id {
        Some(id) => id,
        None => input.run_input_field("contact_id")?,
    };
    if config.warm_at > config.hot_at {
        return Err(StepError::invalid_input("`warm_at` must not be above `hot_at`"));
    }
    let contact = records::get_contact(contact_id)?;
    let now = crm_sdk::now_ms();
    let recent_since = now - config.recent_days.max(0) * DAY_MS;
    let mut score = Score::default();

    // Reachability: a lead nobody can contact is worth little, whatever else is true.
    if contact.email.is_some() {
        score.add(10, "has an email address".into());
    }
    if contact.phone.is_some() {
        score.add(5, "has a phone number".into());
    }
    if contact.company_id.is_some() {
        score.add(10, "works at a known company".into());
    }

    let deals =
        records::find_deals(&DealFilter { contact_id: Some(contact_id), limit: Some(200), ..Default::default() })?;
    let open: Vec<_> = deals.iter().filter(|d| d.status == DealStatus::Open).collect();
    let won = deals.iter().filter(|d| d.status == DealStatus::Won).count() as i64;
    let lost = deals.iter().filter(|d| d.status == DealStatus::Lost).count() as i64;
    score.add(15 * (open.len() as i64).min(3), format!("{} open deal(s)", open.len()));
    // One point per 1,000.00 of open pipeline, capped so one huge deal cannot make a lead
    // hot on its own.
    let open_value: i64 = open.iter().map(|d| d.amount_minor).sum();
    let currency = open.first().map_or("USD", |d| d.currency.as_str());
    score.add(
        (open_value / 100_000).min(25),
        format!("open pipeline worth {}", crm_sdk::format_money(open_value, currency)),
    );
    score.add(20 * won.min(2), format!("{won} won deal(s): an existing customer"));
    score.add(-10 * lost.min(3), format!("{lost} lost deal(s)"));
    let moving = open.iter().filter(|d| d.stage_changed_at >= recent_since).count() as i64;
    score.add(5 * moving.min(3), format!("{moving} deal(s) moved stage in the last {} days", config.recent_days));

    let activity = records::record_activity(RecordKind::Contact, contact_id, 200)?;
    let recent_activity = activity.iter().filter(|a| a.at >= recent_since).count() as i64;
    score.add(
        (2 * recent_activity).min(20),
        format!("{recent_activity} change(s) in the last {} days", config.recent_days),
    );

    let notes =
        records::find_notes(NoteFilter { contact_id: Some(contact_id), limit: Some(200), ..Default::default() })?;
    let recent_notes = notes.iter().filter(|n| n.created_at >= recent_since).count() as i64;
    score.add((3 * recent_notes).min(15), format!("{recent_notes} recent note(s)"));

    let tasks = records::find_tasks(TaskFilter {
        contact_id: Some(contact_id),
        done: Some(false),
        limit: Some(200),
        ..Default::default()
    })?;
    let overdue = tasks.iter().filter(|t| t.due_at.is_some_and(|due| due < now)).count() as i64;
    score.add(-5 * overdue.min(4), format!("{overdue} overdue task(s)"));

    let total = score.total();
    let grade = if total >= config.hot_at {
        "hot"
    } else if total >= config.warm_at {
        "warm"
    } else {
        "cold"
    };
    crm_sdk::info("lead scored", json!({ "contact_id": contact_id, "score": total, "grade": grade }));

    if config.write_back {
        let custom = json!({ "lead_score": total, "lead_grade": grade }).to_string();
        records::update_contact(contact_id, &ContactPatch { custom: Some(custom), ..Default::default() })?;
    }

    let output = Output::json(json!({
        "contact_id": contact_id,
        "name": contact.name,
        "score": total,
        "grade": grade,
        "reasons": score.reasons,
    }));
    Ok(match config.branches {
        None => output,
        Some(b) => output.with_next(match grade {
            "hot" => b.hot,
            "warm" => b.warm,
            _ => b.cold,
        }),
    })
}

crm_sdk::step!(run);
