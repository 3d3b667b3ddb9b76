//! A discount on a deal, in the three steps of `workflows/discount-approval`: `check` it
//! (and choose whether a manager must approve it), `apply` it, or tell the requester it was
//! `decline`d. One crate, one `mode` per step, so the three agree on what a discount is.
//!
//! **Input** (config first, then run input): `deal_id` and `percent` (a whole number,
//! 1–100), both required.
//!
//! **Config:**
//! - `mode` (required): `check`, `apply` or `decline`;
//! - `check`: `approval_above` (default 20): a larger percent needs an approval;
//!   `branches = { needs_approval = [...], within_limit = [...] }`: the successors to run
//!   in each case (absent: all run);
//! - `apply`, `decline`: `approval` (default `"ask"`): the `approval` step whose decision
//!   they report, when it ran.
//!
//! `check` refuses (permanently) a percent out of range, a missing deal and a deal that is
//! no longer open: the requester's message says why, and nothing is asked or written.
//! `apply` records the discount in the deal's custom fields (`discount_percent`, and
//! `discount_approved_by` when someone approved it); both `apply` and `decline` send the
//! requester (the run's acting user) a chat message when an approval was asked, since by
//! then the chat has moved on and an edited message would go unseen.
//!
//! **Capabilities:** `records:read`; `apply` also `records:write`; `apply` and `decline`
//! also `notify`.
//!
//! **Output:** `check`: `{"deal_id", "title", "percent", "amount", "discounted",
//! "needs_approval"}` (amounts formatted with their currency); `apply` and `decline`:
//! `{"deal_id", "percent", "decision", "text", "notified"}`.

use crm_sdk::records::{self, Deal, DealPatch, DealStatus};
use crm_sdk::{Input, Output, StepError, format_money};
use serde::Deserialize;
use serde_json::{Map, Value, json};

#[derive(Deserialize, Default)]
struct Branches {
    #[serde(default)]
    needs_approval: Vec<String>,
    #[serde(default)]
    within_limit: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Mode {
    Check,
    Apply,
    Decline,
}

/// The decision of the approval step, when it ran.
#[derive(Deserialize)]
struct Decided {
    decision: String,
    #[serde(default)]
    decided_by: Option<i64>,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    timed_out: bool,
}

fn run(input: Input) -> Result<Output, StepError> {
    let mode: Mode = input.setting("mode")?.ok_or_else(|| StepError::invalid_input("set `mode` in the config"))?;
    let deal_id: i64 = input.setting("deal_id")?.ok_or_else(|| StepError::invalid_input("give `deal_id`"))?;
    let percent: i64 = input.setting("percent")?.ok_or_else(|| StepError::invalid_input("give `percent`"))?;
    if !(1..=100).contains(&percent) {
        return Err(StepError::invalid_input(format!("a discount is 1–100 percent, not {percent}")));
    }
    match mode {
        Mode::Check => check(&input, deal_id, percent),
        Mode::Apply => apply(&input, deal_id, percent),
        Mode::Decline => decline(&input, deal_id, percent),
    }
}

fn check(input: &Input, deal_id: i64, percent: i64) -> Result<Output, StepError> {
    let above: i64 = input.setting("approval_above")?.unwrap_or(20);
    let branches: Option<Branches> = input.setting("branches")?;
    let deal = records::get_deal(deal_id)?;
    if deal.status != DealStatus::Open {
        let status = if deal.status == DealStatus::Won { "won" } else { "lost" };
        return Err(StepError::permanent(
            "deal_closed",
            format!("deal {deal_id} ({}) is {status}; a discount applies to open deals", deal.title),
        ));
    }
    let needs_approval = percent > above;
    let output = Output::json(json!({
        "deal_id": deal_id, "title": deal.title, "percent": percent,
        "amount": format_money(deal.amount_minor, &deal.currency),
        "discounted": format_money(discounted(&deal, percent), &deal.currency),
        "needs_approval": needs_approval,
    }));
    Ok(match branches {
        None => output,
        Some(b) => output.with_next(if needs_approval { b.needs_approval } else { b.within_limit }),
    })
}

fn apply(input: &Input, deal_id: i64, percent: i64) -> Result<Output, StepError> {
    let decided = decision(input)?;
    let deal = records::get_deal(deal_id)?;
    let mut custom = match serde_json::from_str::<Value>(&deal.custom) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    custom.insert("discount_percent".into(), json!(percent));
    if let Some(by) = decided.as_ref().and_then(|d| d.decided_by) {
        custom.insert("discount_approved_by".into(), json!(by));
    }
    records::update_deal(
        deal_id,
        &DealPatch { custom: Some(Value::Object(custom).to_string()), ..Default::default() },
    )?;
    let mut text = format!(
        "✅ {percent}% off “{}”: {} → {}.",
        deal.title,
        format_money(deal.amount_minor, &deal.currency),
        format_money(discounted(&deal, percent), &deal.currency)
    );
    match &decided {
        Some(d) if d.timed_out => text.push_str(" Nobody decided in time; approved by default."),
        Some(_) => text.push_str(" Approved."),
        None => text.push_str(" Within your limit, no approval needed."),
    }
    finish(input, deal_id, percent, "approved", text, decided.as_ref())
}

fn decline(input: &Input, deal_id: i64, percent: i64) -> Result<Output, StepError> {
    let decided = decision(input)?;
    let deal = records::get_deal(deal_id)?;
    let text = match &decided {
        Some(d) if d.timed_out => {
            format!("⌛ {percent}% off “{}”: nobody decided in time, so it is not given.", deal.title)
        }
        _ => format!("❌ {percent}% off “{}” was not approved.", deal.title),
    };
    finish(input, deal_id, percent, "rejected", text, decided.as_ref())
}

/// Adds the approver's comment, tells the requester when they were kept waiting, and
/// returns the output.
fn finish(
    input: &Input,
    deal_id: i64,
    percent: i64,
    outcome: &str,
    mut text: String,
    decided: Option<&Decided>,
) -> Result<Output, StepError> {
    if let Some(c) = decided.and_then(|d| d.comment.as_deref()).map(str::trim).filter(|c| !c.is_empty()) {
        text.push_str(&format!("\n💬 {c}"));
    }
    let mut notified = Vec::new();
    if decided.is_some()
        && let Some(requester) = input.context.acting_user
    {
        crm_sdk::notify::send(requester, &text)?;
        notified.push(requester);
    }
    let decision = decided.map_or(outcome, |d| d.decision.as_str());
    Ok(Output::json(json!({
        "deal_id": deal_id, "percent": percent, "decision": decision, "text": text, "notified": notified,
    })))
}

/// The approval step's output, or `None` when no approval was needed (the step was skipped).
fn decision(input: &Input) -> Result<Option<Decided>, StepError> {
    let step: String = input.setting("approval")?.unwrap_or_else(|| "ask".to_string());
    match input.deps.get(&step) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => crm_sdk::from_value(v.clone(), &format!("the output of step `{step}`")).map(Some),
    }
}

fn discounted(deal: &Deal, percent: i64) -> i64 {
    deal.amount_minor - deal.amount_minor * percent / 100
}

crm_sdk::step!(run);
