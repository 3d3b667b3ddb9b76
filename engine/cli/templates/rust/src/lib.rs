//! The `greet` step of {{name}}: one function from input to output (`crm-sdk` is the Rust
//! SDK, vendored in `.crm/sdk-rust` by `crm`).

use crm_sdk::records::{self, ContactFilter};
use crm_sdk::{Input, Output, StepError};
use serde_json::json;

fn run(input: Input) -> Result<Output, StepError> {
    let record_name = input.setting::<serde_json::Value>("record")?.and_then(|r| r["name"].as_str().map(String::from));
    let name = input.setting::<String>("name")?.or(record_name).unwrap_or_else(|| "there".into());
    let contacts = records::find_contacts(&ContactFilter { limit: Some(200), ..Default::default() })?; // records:read
    crm_sdk::info("greeting", json!({ "name": name, "contacts": contacts.len() })); // log
    Ok(Output::json(json!({ "text": format!("Hello, {name}! The CRM has {} contact(s).", contacts.len()) })))
}

crm_sdk::step!(run);
