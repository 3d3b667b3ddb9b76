//! The chat answer of `/qualify`: one message from the lead score and, when the lead was
//! worth it, the follow-up task created for it.
//!
//! **Deps:** `score` (the `lead-score` output: `name`, `score`, `grade`, `reasons`);
//! `follow_up` (the `follow-up-task` output: `task_id`, `title`, `created`), absent when
//! the score step chose not to run it.
//!
//! **Config** (optional): `reasons` (default 3): how many reasons to list.
//!
//! **Capabilities:** none.
//!
//! **Output:** `{"text", "contact_id", "score", "grade", "task_id"}`.

use crm_sdk::{Input, Output, StepError};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct Score {
    contact_id: i64,
    name: String,
    score: i64,
    grade: String,
    #[serde(default)]
    reasons: Vec<Reason>,
}

#[derive(Deserialize)]
struct Reason {
    points: i64,
    why: String,
}

#[derive(Deserialize)]
struct FollowUp {
    task_id: i64,
    title: String,
    created: bool,
}

fn run(input: Input) -> Result<Output, StepError> {
    let score: Score = crm_sdk::from_value(input.dep("score")?.clone(), "output of step `score`")?;
    let follow_up: Option<FollowUp> = match input.deps.get("follow_up") {
        Some(v) => Some(crm_sdk::from_value(v.clone(), "output of step `follow_up`")?),
        None => None,
    };
    let shown: usize = input.setting("reasons")?.unwrap_or(3);

    let mut text = format!("{} scores {}/100 ({}).", score.name, score.score, score.grade);
    let mut reasons: Vec<&Reason> = score.reasons.iter().filter(|r| r.points != 0).collect();
    reasons.sort_by_key(|r| -r.points.abs());
    for r in reasons.into_iter().take(shown) {
        text.push_str(&format!("\n{} {:+} {}", if r.points > 0 { "▲" } else { "▼" }, r.points, r.why));
    }
    match &follow_up {
        Some(f) if f.created => text.push_str(&format!("\nFollow-up task #{}: {}", f.task_id, f.title)),
        Some(f) => text.push_str(&format!("\nAn open follow-up task already exists (#{}: {}).", f.task_id, f.title)),
        None => text.push_str("\nNo follow-up for now."),
    }
    Ok(Output::json(json!({
        "text": text,
        "contact_id": score.contact_id,
        "score": score.score,
        "grade": score.grade,
        "task_id": follow_up.map(|f| f.task_id),
    })))
}

crm_sdk::step!(run);
