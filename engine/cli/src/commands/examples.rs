//! The example automations of `workflows/`, which `crm up` deploys on a fresh install so the
//! CRM automates from the first start: lead qualification from the chat (`/qualify`), a
//! daily stale-deals digest (cron), lead scoring of new contacts and a won-deal celebration
//! (record events), an inbound lead form (webhook), a nudge for a new deal that has not
//! moved in three days (`wait_event`), a discount that needs an admin's approval above 20%
//! (`/discount`, `approval`), an onboarding drip after a deal is won (`wait`) and task
//! reminders in each assignee's chat (`wait`, buttons under the message). Manifests and
//! components are both compiled into the
//! binary, so an installed `crm` needs no source tree to deploy them. Each is deployed only
//! while no workflow of its name exists, so disabling, replacing or rolling back an example
//! is never undone by the next `crm up`.

use std::collections::BTreeMap;

use anyhow::Context;
use crm_concepts::manifest::{Manifest, Trigger};
use crm_store::workflow_error::WorkflowError;

/// (workflow name, manifest), compiled in so the binary carries its examples.
pub const AUTOMATIONS: &[(&str, &str)] = &[
    ("qualify-lead", include_str!("../../../../workflows/qualify-lead/workflow.toml")),
    ("stale-deals-digest", include_str!("../../../../workflows/stale-deals-digest/workflow.toml")),
    ("score-new-leads", include_str!("../../../../workflows/score-new-leads/workflow.toml")),
    ("celebrate-won-deal", include_str!("../../../../workflows/celebrate-won-deal/workflow.toml")),
    ("inbound-lead", include_str!("../../../../workflows/inbound-lead/workflow.toml")),
    ("nudge-unmoved-deal", include_str!("../../../../workflows/nudge-unmoved-deal/workflow.toml")),
    ("task-reminder", include_str!("../../../../workflows/task-reminder/workflow.toml")),
    ("discount-approval", include_str!("../../../../workflows/discount-approval/workflow.toml")),
    ("onboarding-drip", include_str!("../../../../workflows/onboarding-drip/workflow.toml")),
];

/// Deploys the examples not yet present; returns a line to print for each one deployed.
pub async fn deploy_missing(db: &crm_store::Db) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    for (name, source) in AUTOMATIONS {
        match crm_store::workflows::get(&db.pool, name).await {
            Ok(_) => continue,
            Err(WorkflowError::WorkflowNotFound(_)) => {}
            Err(e) => return Err(e).with_context(|| format!("looking up workflow {name}")),
        }
        let manifest = Manifest::from_toml(source).with_context(|| format!("example workflow {name}"))?;
        let mut uploads = BTreeMap::new();
        for step in manifest.steps.iter().filter(|s| !s.kind().holds()) {
            let bytes = crm_guests::embedded(&step.component)
                .with_context(|| format!("example workflow {name}: component {} is not compiled in", step.component))?;
            uploads.insert(step.component.clone(), bytes.to_vec());
        }
        let deployed = crm_scheduler::deploy::deploy(db, source, &uploads, None)
            .await
            .with_context(|| format!("deploying example workflow {name}"))?;
        lines.push(format!("deployed example {} version {}: {}", deployed.name, deployed.version, describe(&manifest)));
    }
    Ok(lines)
}

/// "daily at 0 0 9 * * * (UTC)", "on contact created", "POST /hooks/inbound-lead (secret X)".
fn describe(manifest: &Manifest) -> String {
    let parts: Vec<String> = manifest
        .triggers
        .iter()
        .map(|t| match t {
            Trigger::Cron { schedule, timezone, .. } => format!("cron {schedule} ({timezone})"),
            Trigger::RecordEvent { record, actions, .. } => {
                let actions = if actions.is_empty() { "changed".to_string() } else { actions.join("/") };
                format!("on {record} {actions}")
            }
            Trigger::Webhook { path, key } => {
                let key = key.clone().unwrap_or_else(|| path.clone());
                format!("POST /hooks/{path} (set its key: crm webhook key {key})")
            }
            Trigger::BotCommand { command, .. } => format!("/{command}"),
        })
        .collect();
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_parses_and_names_built_components() {
        for (name, source) in AUTOMATIONS {
            let m = Manifest::from_toml(source).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&m.name, name);
            for step in m.steps.iter().filter(|s| !s.kind().holds()) {
                assert!(crm_guests::embedded(&step.component).is_some(), "{name}: {}", step.component);
            }
        }
    }
}
