//! `/api/workflows`: deploy (manifest + components), list, show, disable, enable, roll back.

use std::collections::BTreeMap;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use base64::Engine as _;
use crm_concepts::records::Page;
use crm_scheduler::deploy::{self, DeployError};
use crm_store::workflows::{self, Deployed, WorkflowDetail, WorkflowSummary};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, CallerErrors, ErrorBody, FieldError, NotFound, WriteErrors};
use crate::extract::{Authenticated, Caller, Json, Operator, Path};

/// A deploy carries its components base64-encoded: room for a few large (Python or
/// JavaScript) components.
pub const DEPLOY_BODY_LIMIT: usize = 96 << 20;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, deploy_workflow).layer(DefaultBodyLimit::max(DEPLOY_BODY_LIMIT)))
        .routes(routes!(show))
        .routes(routes!(disable))
        .routes(routes!(enable))
        .routes(routes!(rollback))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DeployBody {
    /// workflow.toml as text
    manifest: String,
    /// component reference in the manifest -> base64 of the component
    #[serde(default)]
    components: BTreeMap<String, String>,
}

/// Deploy a workflow (admin)
///
/// Deploying exactly what is current changes nothing and answers 200.
#[utoipa::path(
    post, path = "/api/workflows", tag = "workflows", operation_id = "deploy_workflow",
    request_body = DeployBody,
    responses(
        (status = 201, description = "a new version is current", body = Deployed),
        (status = 200, description = "the current version is identical", body = Deployed),
        CallerErrors,
        WriteErrors,
    ),
    security(("bearer" = [])),
)]
async fn deploy_workflow(
    State(s): State<AppState>,
    Operator(c): Operator,
    Json(body): Json<DeployBody>,
) -> Result<(StatusCode, Json<Deployed>), ApiError> {
    let mut uploads = BTreeMap::new();
    for (reference, b64) in body.components {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| ApiError::validation(format!("components.{reference}"), format!("not base64: {e}")))?;
        uploads.insert(reference, bytes);
    }
    match deploy::deploy(&s.db, &body.manifest, &uploads, Some(c.user.id)).await {
        Ok(d) => Ok((if d.created { StatusCode::CREATED } else { StatusCode::OK }, Json(d))),
        Err(DeployError::Manifest(m)) => {
            let mut e = ApiError::validation("manifest", m.to_string());
            e.message = m.to_string();
            e.fields = m.errors.into_iter().map(|f| FieldError { field: f.field, message: f.message }).collect();
            Err(e)
        }
        Err(DeployError::Store(e)) => Err(e.into()),
        Err(DeployError::Component(e)) => Err(e.into()),
    }
}

/// Deployed workflows with their triggers and bot commands
///
/// Any token may read it, the bot's delegate token on its own included (it registers the
/// workflows' commands).
#[utoipa::path(
    get, path = "/api/workflows", tag = "workflows", operation_id = "list_workflows",
    responses((status = 200, description = "every workflow, in one page", body = Page<WorkflowSummary>), CallerErrors),
    security(("bearer" = [])),
)]
async fn list(State(s): State<AppState>, _: Authenticated) -> Result<Json<Page<WorkflowSummary>>, ApiError> {
    let items = workflows::list(&s.db.pool).await?;
    Ok(Json(Page { items, next_cursor: None }))
}

/// One workflow, with its manifest and versions
#[utoipa::path(
    get, path = "/api/workflows/{name}", tag = "workflows", operation_id = "read_workflow",
    params(("name" = String, Path)),
    responses((status = 200, description = "the workflow", body = WorkflowDetail), CallerErrors, NotFound),
    security(("bearer" = [])),
)]
async fn show(
    State(s): State<AppState>,
    _: Caller,
    Path(name): Path<String>,
) -> Result<Json<WorkflowDetail>, ApiError> {
    Ok(Json(workflows::get(&s.db.pool, &name).await?))
}

/// Stop starting new runs of a workflow (admin)
#[utoipa::path(
    post, path = "/api/workflows/{name}/disable", tag = "workflows", operation_id = "disable_workflow",
    params(("name" = String, Path)),
    responses((status = 200, description = "the disabled workflow", body = WorkflowSummary), CallerErrors, NotFound),
    security(("bearer" = [])),
)]
async fn disable(
    State(s): State<AppState>,
    _: Operator,
    Path(name): Path<String>,
) -> Result<Json<WorkflowSummary>, ApiError> {
    Ok(Json(workflows::set_enabled(&s.db.pool, &name, false).await?))
}

/// Start runs of a workflow again (admin)
#[utoipa::path(
    post, path = "/api/workflows/{name}/enable", tag = "workflows", operation_id = "enable_workflow",
    params(("name" = String, Path)),
    responses((status = 200, description = "the enabled workflow", body = WorkflowSummary), CallerErrors, NotFound),
    security(("bearer" = [])),
)]
async fn enable(
    State(s): State<AppState>,
    _: Operator,
    Path(name): Path<String>,
) -> Result<Json<WorkflowSummary>, ApiError> {
    Ok(Json(workflows::set_enabled(&s.db.pool, &name, true).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    /// the version to make current; default the one before the current
    version: Option<i32>,
}

/// Make an earlier version current (admin)
///
/// Without a body, the version before the current one.
#[utoipa::path(
    post, path = "/api/workflows/{name}/rollback", tag = "workflows", operation_id = "rollback_workflow",
    params(("name" = String, Path)), request_body = Option<RollbackBody>,
    responses(
        (status = 200, description = "the workflow at its new current version", body = WorkflowSummary),
        CallerErrors,
        (status = 404, description = "no such workflow or version", body = ErrorBody),
        (status = 409, description = "there is no version before the current one", body = ErrorBody),
    ),
    security(("bearer" = [])),
)]
async fn rollback(
    State(s): State<AppState>,
    _: Operator,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<WorkflowSummary>, ApiError> {
    // The body is optional: empty means "the version before the current one".
    let to = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<RollbackBody>(&body).map_err(|e| ApiError::bad_request(e.to_string()))?.version
    };
    Ok(Json(workflows::rollback(&s.db.pool, &name, to).await?))
}
