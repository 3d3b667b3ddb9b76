//! `/api/secrets`: the secrets steps read once granted `secret:NAME`. Setting, listing and
//! removing them needs an admin's own token (never the bot's delegate); values go in and
//! never come out: the list shows names, when they changed, and how often steps read them.

use axum::extract::State;
use axum::http::StatusCode;
use crm_concepts::records::Page;
use crm_store::secrets::{self, Namespace, SecretInfo};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, CallerErrors, NotFound, WriteErrors};
use crate::extract::{Json, Operator, Path};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(put, remove))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SecretValue {
    /// 1 byte to 64 KiB; sealed before it is stored
    value: String,
}

/// Secrets by name, with how often steps read them (an admin's own token)
#[utoipa::path(
    get, path = "/api/secrets", tag = "secrets", operation_id = "list_secrets",
    responses((status = 200, description = "every step secret (never a value)", body = Page<SecretInfo>), CallerErrors),
    security(("bearer" = [])),
)]
async fn list(State(s): State<AppState>, _: Operator) -> Result<Json<Page<SecretInfo>>, ApiError> {
    Ok(Json(Page { items: secrets::list(&s.db, Namespace::Step).await?, next_cursor: None }))
}

/// Set or replace a secret (an admin's own token)
#[utoipa::path(
    put, path = "/api/secrets/{name}", tag = "secrets", operation_id = "put_secret",
    params(("name" = String, Path, description = "letters, digits, '-', '.' or '_'")),
    request_body = SecretValue,
    responses((status = 204, description = "stored, sealed"), CallerErrors, WriteErrors),
    security(("bearer" = [])),
)]
async fn put(
    State(s): State<AppState>,
    _: Operator,
    Path(name): Path<String>,
    Json(body): Json<SecretValue>,
) -> Result<StatusCode, ApiError> {
    secrets::put(&s.db, &s.vault, Namespace::Step, &name, &body.value).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a secret (an admin's own token)
#[utoipa::path(
    delete, path = "/api/secrets/{name}", tag = "secrets", operation_id = "delete_secret",
    params(("name" = String, Path)),
    responses((status = 204, description = "removed"), CallerErrors, NotFound),
    security(("bearer" = [])),
)]
async fn remove(State(s): State<AppState>, _: Operator, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    if secrets::remove(&s.db, Namespace::Step, &name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no secret named {name}")))
    }
}
