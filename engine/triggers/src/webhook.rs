//! Webhook intake: `POST /hooks/{path}` with a signed JSON body starts one run of the
//! workflow whose webhook trigger has that path; the body is the run's input.
//!
//! A request is accepted when its `X-Crm-Signature` is the HMAC-SHA256 of
//! `X-Crm-Timestamp + "." + path + "." + body` under the trigger's key, its timestamp is within
//! [`REPLAY_WINDOW_SECS`] of the server clock, and the same signature has not been
//! accepted before. The signature is recorded in the transaction that starts the run, so
//! a replayed request inside the window hits the primary key and starts nothing; outside
//! the window the timestamp check refuses it.
//!
//! The key is the named webhook key the trigger gives (`key = "NAME"`, the path when absent),
//! sealed at rest in its own namespace that no step can read; set one with
//! `crm webhook key NAME` or `POST /api/webhook-keys/{name}`. A hook whose key is not set
//! refuses every request: there are no unsigned webhooks.

use chrono::{DateTime, Utc};
use crm_concepts::run::RunRequest;
use rand::RngCore;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::catalog::WebhookTrigger;
use crate::error::{TriggerError, WebhookError};
use crate::signature::{self, Signed};
use crate::starter::{RunStarter, StartRunError};
use crm_store::Db;
use crm_store::secrets::{self, Namespace};
use crm_vault::Vault;

/// How far a request's timestamp may be from the server clock, either way.
pub const REPLAY_WINDOW_SECS: i64 = 300;
/// The largest body accepted; a lead form or a payment notice is a few kilobytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Generated keys: 32 random bytes, hex.
const KEY_BYTES: usize = 32;

/// The signed parts of one request, as received.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub path: &'a str,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub body: &'a [u8],
}

/// What an accepted request started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub run_id: Uuid,
    pub workflow: String,
}

/// The webhook trigger of an enabled workflow with this path.
async fn find_trigger(pool: &PgPool, path: &str) -> Result<Option<WebhookTrigger>, WebhookError> {
    let found = crm_store::workflows::webhook_trigger(pool, path)
        .await
        .map_err(|e| WebhookError::Trigger(TriggerError::Store(e.to_string())))?;
    Ok(found.map(|(workflow, trigger)| {
        let key = trigger.get("key").or_else(|| trigger.get("secret")).and_then(Value::as_str).unwrap_or(path);
        WebhookTrigger { workflow, path: path.to_string(), key: key.to_string() }
    }))
}

/// Verifies a request and starts its run. Every refusal starts nothing.
pub async fn accept(
    pool: &PgPool,
    vault: &Vault,
    starter: &dyn RunStarter,
    request: SignedRequest<'_>,
    now: DateTime<Utc>,
) -> Result<Accepted, WebhookError> {
    let trigger =
        find_trigger(pool, request.path).await?.ok_or_else(|| WebhookError::UnknownHook(request.path.to_string()))?;
    let key = secrets::reveal_in(&mut *pool.acquire().await?, vault, Namespace::Webhook, &trigger.key)
        .await
        .map_err(|e| WebhookError::Trigger(TriggerError::Store(e.to_string())))?;
    let Some(key) = key else {
        return Err(WebhookError::NoKey { path: trigger.path, key: trigger.key });
    };
    let sig = signature::verify(
        key.as_bytes(),
        request.timestamp,
        request.signature,
        Signed { path: &trigger.path, body: request.body },
        now,
        REPLAY_WINDOW_SECS,
    )?;
    let input: Value = serde_json::from_slice(request.body).map_err(|e| WebhookError::BadBody(e.to_string()))?;
    if !input.is_object() {
        return Err(WebhookError::BadBody("expected a JSON object such as {\"name\": \"Ann\"}".into()));
    }

    let mut tx = pool.begin().await?;
    // The run id is not known yet; the delivery row is written first so that a concurrent
    // replay of the same request waits on it and then fails, instead of both starting runs.
    let fresh = sqlx::query(
        "INSERT INTO webhook_deliveries (path, signature, run_id) VALUES ($1, $2, $3)
         ON CONFLICT (path, signature) DO NOTHING",
    )
    .bind(&trigger.path)
    .bind(&sig[..])
    .bind(Uuid::nil())
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !fresh {
        return Err(WebhookError::Replayed);
    }
    let run = RunRequest {
        workflow: trigger.workflow.clone(),
        input,
        acting_user: None,
        notify: None,
        idempotency_key: Some(format!("webhook:{}", hex::encode(&sig[..16]))),
        trigger: Some("webhook".into()),
    };
    let (started, admitted) = starter.start_run(&mut tx, run).await;
    let run_id = match started {
        Ok(id) => id,
        Err(StartRunError::Unavailable(_)) => {
            return Err(WebhookError::UnknownHook(request.path.to_string()));
        }
        Err(StartRunError::Failed(message)) => {
            return Err(WebhookError::Trigger(crate::error::TriggerError::StartRun {
                workflow: trigger.workflow,
                message,
            }));
        }
    };
    sqlx::query("UPDATE webhook_deliveries SET run_id = $3 WHERE path = $1 AND signature = $2")
        .bind(&trigger.path)
        .bind(&sig[..])
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO triggered_runs (run_id, workflow, source) VALUES ($1, $2, 'webhook')")
        .bind(run_id)
        .bind(&trigger.workflow)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    starter.committed(admitted).await;
    Ok(Accepted { run_id, workflow: trigger.workflow })
}

/// Sets the webhook key `name` (generating one when `value` is `None`) and returns it: the
/// only time it is shown.
pub async fn set_key(db: &Db, vault: &Vault, name: &str, value: Option<&str>) -> Result<String, WebhookError> {
    let key = match value {
        Some(v) => v.to_string(),
        None => {
            let mut bytes = [0u8; KEY_BYTES];
            rand::rng().fill_bytes(&mut bytes);
            format!("whsec_{}", hex::encode(bytes))
        }
    };
    if key.len() < 16 {
        return Err(WebhookError::BadKey("a webhook key must be at least 16 characters".into()));
    }
    secrets::put(db, vault, Namespace::Webhook, name, &key).await.map_err(|e| match e {
        crm_store::StoreError::Validation { message, .. } => WebhookError::BadKey(message),
        other => WebhookError::Trigger(TriggerError::Store(other.to_string())),
    })?;
    Ok(key)
}
