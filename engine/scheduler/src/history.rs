//! A run as people read it afterwards: the run, and each step in manifest order with the
//! input it received, its output, every attempt (worker, error, logs, resource use) and
//! its timing.

use std::collections::BTreeMap;

use crm_store::runs::{self, RunRecord, StepRecord};
use crm_store::workflow_error::WorkflowError;
use crm_store::workflows;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: RunRecord,
    pub steps: Vec<StepDetail>,
}

// Sent with every field, `null` when unset: `#[schema(required)]` keeps the `Option`s
// required in the OpenAPI document, which would otherwise make them optional.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StepDetail {
    pub component: String,
    pub needs: Vec<String>,
    /// what the step received: the run input, its dependencies' outputs, its config
    /// (absent until it ran)
    #[schema(required)]
    pub input: Option<Value>,
    #[serde(flatten)]
    pub record: StepRecord,
}

pub async fn run_detail(pool: &PgPool, id: Uuid) -> Result<RunDetail, WorkflowError> {
    let run = runs::get(pool, id).await?;
    let version = workflows::version(pool, &run.summary.workflow, run.summary.version).await?;
    let mut records: BTreeMap<String, StepRecord> =
        runs::steps(pool, id).await?.into_iter().map(|s| (s.step.clone(), s)).collect();
    let outputs: BTreeMap<String, Value> = records
        .values()
        .filter(|s| s.status == crm_concepts::run::StepStatus::Succeeded)
        .map(|s| (s.step.clone(), s.output.clone().unwrap_or(Value::Null)))
        .collect();
    let mut steps = Vec::with_capacity(records.len());
    for spec in &version.manifest.steps {
        let Some(record) = records.remove(&spec.id) else {
            continue;
        };
        let started = record.attempt > 0;
        let deps: BTreeMap<&String, &Value> =
            spec.needs.iter().filter_map(|n| outputs.get(n).map(|o| (n, o))).collect();
        steps.push(StepDetail {
            component: version.components.get(&spec.component).cloned().unwrap_or_else(|| spec.component.clone()),
            needs: spec.needs.clone(),
            input: started.then(|| json!({"run_input": run.input, "deps": deps, "config": spec.config})),
            record,
        });
    }
    Ok(RunDetail { run, steps })
}
