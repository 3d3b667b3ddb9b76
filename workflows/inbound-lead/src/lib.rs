//! Turn an inbound lead (a web form posted to a webhook) into a contact and a deal.
//!
//! **Run input** (the webhook's JSON body): `name` (required), `email`, `phone`, `company`
//! (a name, kept in the contact's custom fields), `message`, `deal_title`, `amount_minor`
//! (default 0), `currency` (default `USD`).
//!
//! **Config:** `pipeline_id` and `stage_id` (required: where the new deal starts),
//! `owner_id` (optional: who gets the lead), `tags` (default `["inbound"]`),
//! `source` (default `"web-form"`, stored as the contact's `custom.source`).
//!
//! Steps run at least once, so the step looks before it creates: a contact with the same
//! email is reused, and a deal with the same title on that contact is not created twice.
//!
//! **Capabilities:** `records:read`, `records:write`, `log`.
//!
//! **Output:** `{"contact_id", "deal_id", "contact_created": bool, "deal_created": bool}`.

use crm_sdk::records::{self, ContactFilter, DealFilter, NewContact, NewDeal};
use crm_sdk::{Input, Output, StepError};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct Lead {
    name: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    company: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    deal_title: Option<String>,
    #[serde(default)]
    amount_minor: i64,
    #[serde(default)]
    currency: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    pipeline_id: i64,
    stage_id: i64,
    #[serde(default)]
    owner_id: Option<i64>,
    #[serde(default = "default_tags")]
    tags: Vec<String>,
    #[serde(default = "default_source")]
    source: String,
}

fn default_tags() -> Vec<String> {
    vec!["inbound".into()]
}

fn default_source() -> String {
    "web-form".into()
}

fn run(input: Input) -> Result<Output, StepError> {
    let config: Config = input.config()?;
    let lead: Lead = input.run_input()?;
    let name = lead.name.trim();
    if name.is_empty() {
        return Err(StepError::invalid_input("the lead has an empty `name`"));
    }
    if lead.amount_minor < 0 {
        return Err(StepError::invalid_input("`amount_minor` must not be negative"));
    }
    let email = lead.email.as_deref().map(str::trim).filter(|e| !e.is_empty());

    let existing = match email {
        Some(email) => records::find_contacts(&ContactFilter {
            query: Some(email.to_string()),
            limit: Some(20),
            ..Default::default()
        })?
        .into_iter()
        .find(|c| c.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(email))),
        None => None,
    };
    let (contact, contact_created) = match existing {
        Some(c) => (c, false),
        None => {
            let mut custom = json!({ "source": config.source });
            if let Some(company) = &lead.company {
                custom["company_name"] = json!(company);
            }
            if let Some(message) = &lead.message {
                custom["message"] = json!(message);
            }
            let created = records::create_contact(&NewContact {
                name: name.to_string(),
                email: email.map(str::to_string),
                phone: lead.phone.clone().filter(|p| !p.trim().is_empty()),
                company_id: None,
                owner_id: config.owner_id,
                tags: config.tags.clone(),
                custom: custom.to_string(),
            })?;
            (created, true)
        }
    };

    let title: String = lead
        .deal_title
        .clone()
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| match &lead.company {
            Some(company) => format!("Inbound: {name} ({company})"),
            None => format!("Inbound: {name}"),
        })
        .chars()
        .take(300)
        .collect();
    let deals =
        records::find_deals(&DealFilter { contact_id: Some(contact.id), limit: Some(200), ..Default::default() })?;
    let (deal_id, deal_created) = match deals.into_iter().find(|d| d.title == title) {
        Some(d) => (d.id, false),
        None => {
            let deal = records::create_deal(&NewDeal {
                title,
                amount_minor: lead.amount_minor,
                currency: lead.currency.clone().unwrap_or_else(|| "USD".into()),
                pipeline_id: config.pipeline_id,
                stage_id: config.stage_id,
                contact_id: Some(contact.id),
                company_id: None,
                owner_id: config.owner_id.or(contact.owner_id),
                expected_close: None,
                tags: config.tags.clone(),
                custom: json!({ "source": config.source }).to_string(),
            })?;
            (deal.id, true)
        }
    };
    crm_sdk::info(
        "inbound lead recorded",
        json!({ "contact_id": contact.id, "deal_id": deal_id, "contact_created": contact_created, "deal_created": deal_created }),
    );
    Ok(Output::json(json!({
        "contact_id": contact.id,
        "deal_id": deal_id,
        "contact_created": contact_created,
        "deal_created": deal_created,
    })))
}

crm_sdk::step!(run);
