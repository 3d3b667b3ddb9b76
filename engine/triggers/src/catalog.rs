//! The triggers of every enabled workflow, read from the current version of its manifest.
//! Read fresh by each consumer pass, inside its transaction, so a deploy, disable or
//! rollback takes effect at the next tick or event without any notification.

use crm_concepts::manifest::{EventFilter, Trigger};
use serde_json::Value;
use sqlx::PgConnection;

use crate::error::TriggerError;

#[derive(Debug, Clone, PartialEq)]
pub struct CronTrigger {
    pub workflow: String,
    pub schedule: String,
    pub timezone: String,
    pub input: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventTrigger {
    pub workflow: String,
    pub record: String,
    pub actions: Vec<String>,
    pub filter: EventFilter,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WebhookTrigger {
    pub workflow: String,
    pub path: String,
    /// the name of the webhook key that signs requests; the path when the manifest names none
    pub key: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    pub cron: Vec<CronTrigger>,
    pub events: Vec<EventTrigger>,
    pub webhooks: Vec<WebhookTrigger>,
}

impl Catalog {
    pub async fn load(conn: &mut PgConnection) -> Result<Catalog, TriggerError> {
        let mut catalog = Catalog::default();
        for (name, manifest) in crm_store::workflows::current_manifests(conn).await? {
            // A stored manifest passed validation at deploy; one that no longer parses (an
            // older schema) is skipped rather than stopping every other workflow's triggers.
            match manifest {
                Ok(m) => catalog.add(&name, m.triggers),
                Err(e) => {
                    tracing::warn!(workflow = %name, error = %e, "stored manifest does not parse; its triggers are ignored")
                }
            }
        }
        Ok(catalog)
    }

    fn add(&mut self, workflow: &str, triggers: Vec<Trigger>) {
        for t in triggers {
            match t {
                Trigger::Cron { schedule, timezone, input } => {
                    self.cron.push(CronTrigger { workflow: workflow.to_string(), schedule, timezone, input })
                }
                Trigger::RecordEvent { record, actions, filter } => {
                    self.events.push(EventTrigger { workflow: workflow.to_string(), record, actions, filter })
                }
                Trigger::Webhook { path, key } => self.webhooks.push(WebhookTrigger {
                    workflow: workflow.to_string(),
                    key: key.unwrap_or_else(|| path.clone()),
                    path,
                }),
                Trigger::BotCommand { .. } => {}
            }
        }
    }

    pub fn webhook(&self, path: &str) -> Option<&WebhookTrigger> {
        self.webhooks.iter().find(|w| w.path == path)
    }
}
