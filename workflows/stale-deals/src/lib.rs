//! Find open deals that have sat in the same stage for too long.
//!
//! **Config / run input** (all optional; config wins):
//! - `days` (default 14, 1–3650): a deal is stale when its stage last changed longer ago;
//! - `pipeline_id`, `owner_id`: narrow the search;
//! - `limit` (default 50, at most 200): how many deals to report, stalest first;
//! - `notify_owners` (default false): send each owner one message listing their stale
//!   deals (`notify`);
//! - `if_found`, `if_none`: successor steps to run when stale deals were / were not found
//!   (branching; absent: run all successors).
//!
//! **Capabilities:** `records:read` (and `notify` with `notify_owners`).
//!
//! **Output:** `{"days", "count", "deals": [{"id", "title", "owner_id", "stage_id",
//! "days_in_stage", "amount": "$1,200.00"}]}`.

use std::collections::BTreeMap;

use crm_sdk::records::{self, DealFilter, DealStatus};
use crm_sdk::{DAY_MS, Input, Output, StepError, format_money};
use serde_json::json;

fn run(input: Input) -> Result<Output, StepError> {
    let days: i64 = input.setting("days")?.unwrap_or(14);
    if !(1..=3650).contains(&days) {
        return Err(StepError::invalid_input("`days` must be between 1 and 3650"));
    }
    let limit: u32 = input.setting("limit")?.unwrap_or(50);
    let notify_owners: bool = input.setting("notify_owners")?.unwrap_or(false);
    let if_found: Option<Vec<String>> = input.setting("if_found")?;
    let if_none: Option<Vec<String>> = input.setting("if_none")?;
    let now = crm_sdk::now_ms();

    let mut deals = records::find_deals(&DealFilter {
        status: Some(DealStatus::Open),
        pipeline_id: input.setting("pipeline_id")?,
        owner_id: input.setting("owner_id")?,
        stage_changed_before: Some(now - days * DAY_MS),
        limit: Some(limit.clamp(1, 200)),
        ..Default::default()
    })?;
    deals.sort_by_key(|d| (d.stage_changed_at, d.id));

    let report: Vec<_> = deals
        .iter()
        .map(|d| {
            json!({
                "id": d.id,
                "title": d.title,
                "owner_id": d.owner_id,
                "stage_id": d.stage_id,
                "days_in_stage": (now - d.stage_changed_at) / DAY_MS,
                "amount": format_money(d.amount_minor, &d.currency),
            })
        })
        .collect();

    if notify_owners {
        let mut by_owner: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for d in &deals {
            if let Some(owner) = d.owner_id {
                let days_in_stage = (now - d.stage_changed_at) / DAY_MS;
                by_owner.entry(owner).or_default().push(format!("• {} ({days_in_stage} days)", d.title));
            }
        }
        for (owner, lines) in by_owner {
            let text = format!("{} of your deals have not moved in {days}+ days:\n{}", lines.len(), lines.join("\n"));
            crm_sdk::notify::send(owner, &text)?;
        }
    }

    let output = Output::json(json!({ "days": days, "count": report.len(), "deals": report }));
    let next = if deals.is_empty() { if_none } else { if_found };
    Ok(match next {
        Some(steps) => output.with_next(steps),
        None => output,
    })
}

crm_sdk::step!(run);
