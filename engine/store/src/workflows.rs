//! Deployed workflows and their versions. A deploy appends a version and makes it current;
//! disabling stops new runs; a rollback makes an earlier version current again. Versions
//! are never changed or deleted, because runs point at the version they started with.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use crm_concepts::manifest::{Manifest, Trigger};
use crm_concepts::step::Digest;
use serde::Serialize;
use sqlx::{PgPool, Row};
use utoipa::ToSchema;

use crate::workflow_error::WorkflowError;

/// One immutable version of a workflow: what a run executes.
#[derive(Debug, Clone, Serialize)]
pub struct WorkflowVersion {
    pub workflow: String,
    pub version: i32,
    pub label: String,
    pub manifest: Manifest,
    /// component reference in the manifest -> content digest
    pub components: BTreeMap<String, Digest>,
    pub deployed_by: Option<i64>,
    pub deployed_at: DateTime<Utc>,
}

impl WorkflowVersion {
    /// The digest of a step's component (deploys check every reference resolves).
    pub fn component_of(&self, step: &str) -> Option<&Digest> {
        let spec = self.manifest.step(step)?;
        self.components.get(&spec.component)
    }
}

/// A workflow as lists show it: its current version's description and triggers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkflowSummary {
    pub name: String,
    pub enabled: bool,
    pub current_version: i32,
    pub label: String,
    pub description: String,
    pub triggers: Vec<Trigger>,
    pub steps: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

// Sent with every field, `null` when unset: `#[schema(required)]` keeps the `Option`s
// required in the OpenAPI document, which would otherwise make them optional.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VersionInfo {
    pub version: i32,
    pub label: String,
    #[schema(required)]
    pub deployed_by: Option<i64>,
    pub deployed_at: DateTime<Utc>,
    pub components: BTreeMap<String, Digest>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkflowDetail {
    #[serde(flatten)]
    pub summary: WorkflowSummary,
    pub manifest: Manifest,
    pub source: String,
    pub versions: Vec<VersionInfo>,
}

/// What a deploy did: a new version, or nothing because the current one is identical.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Deployed {
    pub name: String,
    pub version: i32,
    pub label: String,
    pub created: bool,
}

/// Stores `manifest` as the next version of its workflow and makes it current (and
/// enabled). Deploying exactly what is current changes nothing, so repeating a deploy is
/// harmless. The caller has validated the manifest and stored every component.
pub async fn deploy(
    pool: &PgPool,
    manifest: &Manifest,
    source: &str,
    components: &BTreeMap<String, Digest>,
    deployed_by: Option<i64>,
) -> Result<Deployed, WorkflowError> {
    let manifest_json =
        serde_json::to_value(manifest).map_err(|e| WorkflowError::validation("manifest", e.to_string()))?;
    let components_json =
        serde_json::to_value(components).map_err(|e| WorkflowError::validation("components", e.to_string()))?;
    let mut tx = pool.begin().await?;
    // Serialises concurrent deploys of one workflow (the row may not exist yet, so a row
    // lock is not enough).
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('crm.workflow:' || $1))")
        .bind(&manifest.name)
        .execute(&mut *tx)
        .await?;
    let current = sqlx::query(
        "SELECT v.version, v.source, v.components, w.enabled FROM workflows w
         JOIN workflow_versions v ON v.workflow = w.name AND v.version = w.current_version
         WHERE w.name = $1",
    )
    .bind(&manifest.name)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(row) = &current {
        let same = row.get::<String, _>("source") == source
            && row.get::<serde_json::Value, _>("components") == components_json;
        if same {
            let version: i32 = row.get("version");
            if !row.get::<bool, _>("enabled") {
                sqlx::query("UPDATE workflows SET enabled = true, updated_at = now() WHERE name = $1")
                    .bind(&manifest.name)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            return Ok(Deployed {
                name: manifest.name.clone(),
                version,
                label: manifest.version.clone(),
                created: false,
            });
        }
    }
    let version: i32 =
        sqlx::query_scalar("SELECT COALESCE(max(version), 0) + 1 FROM workflow_versions WHERE workflow = $1")
            .bind(&manifest.name)
            .fetch_one(&mut *tx)
            .await?;
    sqlx::query(
        "INSERT INTO workflows (name, current_version) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET current_version = $2, enabled = true, updated_at = now()",
    )
    .bind(&manifest.name)
    .bind(version)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO workflow_versions (workflow, version, label, manifest, source, components, deployed_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&manifest.name)
    .bind(version)
    .bind(&manifest.version)
    .bind(&manifest_json)
    .bind(source)
    .bind(&components_json)
    .bind(deployed_by)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Deployed { name: manifest.name.clone(), version, label: manifest.version.clone(), created: true })
}

const SUMMARY_SQL: &str = "SELECT w.name, w.enabled, w.current_version, w.created_at, w.updated_at, v.label, v.manifest
     FROM workflows w JOIN workflow_versions v ON v.workflow = w.name AND v.version = w.current_version";

fn summary_from(row: &sqlx::postgres::PgRow) -> Result<(WorkflowSummary, Manifest), WorkflowError> {
    let name: String = row.try_get("name")?;
    let manifest = manifest_from(&name, row.try_get("manifest")?)?;
    Ok((
        WorkflowSummary {
            enabled: row.try_get("enabled")?,
            current_version: row.try_get("current_version")?,
            label: row.try_get("label")?,
            description: manifest.description.clone(),
            triggers: manifest.triggers.clone(),
            steps: manifest.steps.iter().map(|s| s.id.clone()).collect(),
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            name,
        },
        manifest,
    ))
}

fn manifest_from(name: &str, json: serde_json::Value) -> Result<Manifest, WorkflowError> {
    // Stored manifests were validated at deploy; failing here means the schema of a
    // manifest changed incompatibly, which must surface rather than be skipped.
    serde_json::from_value(json).map_err(|e| {
        WorkflowError::Db(sqlx::Error::Decode(
            format!("stored manifest of workflow {name:?} no longer parses: {e}").into(),
        ))
    })
}

/// The digests of the components every enabled workflow's current version runs, sorted:
/// what workers keep compiled.
pub async fn current_components(pool: &PgPool) -> Result<Vec<String>, WorkflowError> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT c.digest FROM workflows w
         JOIN workflow_versions v ON v.workflow = w.name AND v.version = w.current_version
         CROSS JOIN LATERAL jsonb_each_text(v.components) AS c(reference, digest)
         WHERE w.enabled ORDER BY c.digest",
    )
    .fetch_all(pool)
    .await?)
}

/// Every workflow, by name.
pub async fn list(pool: &PgPool) -> Result<Vec<WorkflowSummary>, WorkflowError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!("{SUMMARY_SQL} ORDER BY w.name"))).fetch_all(pool).await?;
    rows.iter().map(|r| summary_from(r).map(|(s, _)| s)).collect()
}

/// Enabled workflows with their current manifests, for the trigger engine.
pub async fn enabled_manifests(pool: &PgPool) -> Result<Vec<(WorkflowSummary, Manifest)>, WorkflowError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!("{SUMMARY_SQL} WHERE w.enabled ORDER BY w.name")))
        .fetch_all(pool)
        .await?;
    rows.iter().map(summary_from).collect()
}

pub async fn get(pool: &PgPool, name: &str) -> Result<WorkflowDetail, WorkflowError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("{SUMMARY_SQL} WHERE w.name = $1")))
        .bind(name)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| WorkflowError::WorkflowNotFound(name.to_string()))?;
    let (summary, manifest) = summary_from(&row)?;
    let source: String =
        sqlx::query_scalar("SELECT source FROM workflow_versions WHERE workflow = $1 AND version = $2")
            .bind(name)
            .bind(summary.current_version)
            .fetch_one(pool)
            .await?;
    let versions = sqlx::query(
        "SELECT version, label, deployed_by, deployed_at, components FROM workflow_versions
         WHERE workflow = $1 ORDER BY version DESC",
    )
    .bind(name)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(VersionInfo {
            version: r.try_get("version")?,
            label: r.try_get("label")?,
            deployed_by: r.try_get("deployed_by")?,
            deployed_at: r.try_get("deployed_at")?,
            components: serde_json::from_value(r.try_get("components")?).unwrap_or_default(),
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(WorkflowDetail { summary, manifest, source, versions })
}

/// One version, as a run executes it.
pub async fn version(pool: &PgPool, name: &str, version: i32) -> Result<WorkflowVersion, WorkflowError> {
    let row = sqlx::query(
        "SELECT label, manifest, components, deployed_by, deployed_at FROM workflow_versions
         WHERE workflow = $1 AND version = $2",
    )
    .bind(name)
    .bind(version)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| WorkflowError::VersionNotFound { workflow: name.to_string(), version })?;
    Ok(WorkflowVersion {
        workflow: name.to_string(),
        version,
        label: row.try_get("label")?,
        manifest: manifest_from(name, row.try_get("manifest")?)?,
        components: serde_json::from_value(row.try_get("components")?)
            .map_err(|e| WorkflowError::Db(sqlx::Error::Decode(e.into())))?,
        deployed_by: row.try_get("deployed_by")?,
        deployed_at: row.try_get("deployed_at")?,
    })
}

pub async fn set_enabled(pool: &PgPool, name: &str, enabled: bool) -> Result<WorkflowSummary, WorkflowError> {
    let n = sqlx::query("UPDATE workflows SET enabled = $2, updated_at = now() WHERE name = $1")
        .bind(name)
        .bind(enabled)
        .execute(pool)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(WorkflowError::WorkflowNotFound(name.to_string()));
    }
    Ok(get(pool, name).await?.summary)
}

/// Makes `to` (default: the version before the current one) current again.
pub async fn rollback(pool: &PgPool, name: &str, to: Option<i32>) -> Result<WorkflowSummary, WorkflowError> {
    let mut tx = pool.begin().await?;
    let current: i32 = sqlx::query_scalar("SELECT current_version FROM workflows WHERE name = $1 FOR UPDATE")
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| WorkflowError::WorkflowNotFound(name.to_string()))?;
    let target: Option<i32> = match to {
        Some(v) => {
            sqlx::query_scalar("SELECT version FROM workflow_versions WHERE workflow = $1 AND version = $2")
                .bind(name)
                .bind(v)
                .fetch_optional(&mut *tx)
                .await?
        }
        None => {
            sqlx::query_scalar("SELECT max(version) FROM workflow_versions WHERE workflow = $1 AND version < $2")
                .bind(name)
                .bind(current)
                .fetch_one(&mut *tx)
                .await?
        }
    };
    let Some(target) = target else {
        return Err(match to {
            Some(v) => WorkflowError::VersionNotFound { workflow: name.to_string(), version: v },
            None => {
                WorkflowError::Conflict(format!("workflow {name:?} has no version before {current} to roll back to"))
            }
        });
    };
    sqlx::query("UPDATE workflows SET current_version = $2, updated_at = now() WHERE name = $1")
        .bind(name)
        .bind(target)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(get(pool, name).await?.summary)
}

/// What a batch of new runs needs to know before it is admitted: the current version and
/// whether it is enabled, per workflow named, and which of the named acting users exist
/// and are active. One round trip, in the caller's transaction.
pub async fn admission_facts(
    conn: &mut sqlx::PgConnection,
    workflows: &[&str],
    users: &[i64],
) -> Result<(HashMap<String, (i32, bool)>, HashSet<i64>), WorkflowError> {
    // The users ride along on every row (one round trip); with no row, every run of the
    // batch fails on its workflow anyway.
    let rows: Vec<(String, i32, bool, Vec<i64>)> = sqlx::query_as(
        "SELECT w.name, w.current_version, w.enabled,
                ARRAY(SELECT id FROM users WHERE id = ANY($2) AND disabled_at IS NULL)
         FROM workflows w WHERE w.name = ANY($1)",
    )
    .bind(workflows)
    .bind(users)
    .fetch_all(&mut *conn)
    .await?;
    let active: HashSet<i64> = rows.first().map(|r| r.3.iter().copied().collect()).unwrap_or_default();
    Ok((rows.into_iter().map(|(n, v, e, _)| (n, (v, e))).collect(), active))
}

/// The current manifest of every enabled workflow, by name. A manifest that no longer
/// parses (an older schema) comes back as its error, for the caller to skip and report.
pub async fn current_manifests(
    conn: &mut sqlx::PgConnection,
) -> Result<Vec<(String, Result<Manifest, String>)>, WorkflowError> {
    let rows: Vec<(String, serde_json::Value)> = sqlx::query_as(
        "SELECT w.name, v.manifest FROM workflows w
         JOIN workflow_versions v ON v.workflow = w.name AND v.version = w.current_version
         WHERE w.enabled
         ORDER BY w.name",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(name, m)| (name, serde_json::from_value(m).map_err(|e| e.to_string()))).collect())
}

/// The enabled workflow (first by name) whose current manifest has a webhook trigger on
/// `path`, with that trigger as JSON.
pub async fn webhook_trigger(pool: &PgPool, path: &str) -> Result<Option<(String, serde_json::Value)>, WorkflowError> {
    Ok(sqlx::query_as(
        "SELECT w.name, t.trigger
         FROM workflows w
         JOIN workflow_versions v ON v.workflow = w.name AND v.version = w.current_version
         CROSS JOIN LATERAL jsonb_array_elements(v.manifest -> 'triggers') AS t (trigger)
         WHERE w.enabled AND t.trigger ->> 'kind' = 'webhook' AND t.trigger ->> 'path' = $1
         ORDER BY w.name LIMIT 1",
    )
    .bind(path)
    .fetch_optional(pool)
    .await?)
}
