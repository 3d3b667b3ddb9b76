//! Compose the message that celebrates a won deal, and optionally send it.
//!
//! **Input** (config first, then run input): `deal_id` (required).
//!
//! **Config** (all optional):
//! - `template`: the message, with placeholders `{title}`, `{amount}`, `{company}`,
//!   `{contact}`, `{days}` (days from creation to close). Default:
//!   `"🎉 Deal won: {title} — {amount}{with}. Closed in {days} day(s)."` where `{with}`
//!   names the company or contact when there is one;
//! - `notify_owner` (default false): send the message to the deal's owner (`notify`);
//! - `notify_user_ids`: further CRM users to send it to (`notify`).
//!
//! A deal that is not won is a permanent error (`deal_not_won`): the trigger was wrong,
//! and retrying will not make it won.
//!
//! **Capabilities:** `records:read` (and `notify` when sending).
//!
//! **Output:** `{"deal_id", "text", "notified": [user ids]}`.

use crm_sdk::records::{self, DealStatus};
use crm_sdk::{DAY_MS, Input, Output, StepError, format_money};
use serde_json::json;

const DEFAULT_TEMPLATE: &str = "🎉 Deal won: {title} — {amount}{with}. Closed in {days} day(s).";

fn run(input: Input) -> Result<Output, StepError> {
    let deal_id: i64 =
        input.setting("deal_id")?.ok_or_else(|| StepError::invalid_input("the run input has no `deal_id`"))?;
    let template: String = input.setting("template")?.unwrap_or_else(|| DEFAULT_TEMPLATE.to_string());
    let notify_owner: bool = input.setting("notify_owner")?.unwrap_or(false);
    let mut recipients: Vec<i64> = input.setting("notify_user_ids")?.unwrap_or_default();

    let deal = records::get_deal(deal_id)?;
    if deal.status != DealStatus::Won {
        return Err(StepError::permanent(
            "deal_not_won",
            format!("deal {deal_id} ({}) is {:?}, not won", deal.title, deal.status),
        ));
    }
    let company = match deal.company_id {
        Some(id) => Some(records::get_company(id)?.name),
        None => None,
    };
    let contact = match deal.contact_id {
        Some(id) => Some(records::get_contact(id)?.name),
        None => None,
    };
    let with = match (&company, &contact) {
        (Some(c), _) => format!(" with {c}"),
        (None, Some(p)) => format!(" with {p}"),
        (None, None) => String::new(),
    };
    let closed_at = deal.closed_at.unwrap_or(deal.updated_at);
    let days = ((closed_at - deal.created_at).max(0) + DAY_MS - 1) / DAY_MS;
    let text = template
        .replace("{title}", &deal.title)
        .replace("{amount}", &format_money(deal.amount_minor, &deal.currency))
        .replace("{with}", &with)
        .replace("{company}", company.as_deref().unwrap_or("-"))
        .replace("{contact}", contact.as_deref().unwrap_or("-"))
        .replace("{days}", &days.to_string());

    if notify_owner && let Some(owner) = deal.owner_id {
        recipients.insert(0, owner);
    }
    recipients.dedup();
    for user in &recipients {
        crm_sdk::notify::send(*user, &text)?;
    }
    Ok(Output::json(json!({ "deal_id": deal_id, "text": text, "notified": recipients })))
}

crm_sdk::step!(run);
