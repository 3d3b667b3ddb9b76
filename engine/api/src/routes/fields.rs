//! `/api/fields`: the custom field definitions. Anyone may read them (the bot and the web
//! app show them); only admins define, change and remove them.

use axum::extract::State;
use axum::http::StatusCode;
use crm_concepts::custom_fields::{FieldDefinition, FieldDefinitionChange, NewFieldDefinition};
use crm_concepts::records::RecordKind;
use crm_store::custom_fields;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, CallerErrors, NotFound, WriteErrors};
use crate::extract::{Admin, Caller, Json, Path, Query};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(change, remove))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// only this kind's fields: contact, company, deal or task
    kind: Option<RecordKind>,
}

#[derive(Debug, Serialize, ToSchema)]
struct Definitions {
    items: Vec<FieldDefinition>,
}

/// List custom field definitions
#[utoipa::path(
    get, path = "/api/fields", tag = "fields", operation_id = "list_fields",
    params(ListQuery),
    responses((status = 200, description = "the definitions, by kind and age", body = Definitions), CallerErrors),
    security(("bearer" = [])),
)]
async fn list(State(s): State<AppState>, _: Caller, Query(q): Query<ListQuery>) -> Result<Json<Definitions>, ApiError> {
    Ok(Json(Definitions { items: custom_fields::list(&s.db, q.kind).await? }))
}

/// Define a custom field (admins)
///
/// From now on every write of a record of `kind` that sets `custom` is checked: the value
/// under `key` must be of `type` (and one of `choices`), and a `required` field must be
/// there. Values already stored are not rewritten; a required field is refused (409) while
/// live records of `kind` lack it.
#[utoipa::path(
    post, path = "/api/fields", tag = "fields", operation_id = "create_field",
    request_body = NewFieldDefinition,
    responses((status = 201, description = "the new definition", body = FieldDefinition), CallerErrors, WriteErrors),
    security(("bearer" = [])),
)]
async fn create(
    State(s): State<AppState>,
    _: Admin,
    Json(new): Json<NewFieldDefinition>,
) -> Result<(StatusCode, Json<FieldDefinition>), ApiError> {
    Ok((StatusCode::CREATED, Json(custom_fields::create(&s.db, &new).await?)))
}

/// Change a custom field definition (admins)
///
/// Changes its `label`, whether it is `required` and a choice field's `choices` (the whole
/// new list); what the body leaves out stays. The type cannot change (422 on `type`):
/// remove the field and add it again. The records of the kind are re-checked first:
/// making the field required while records lack it, or dropping a choice that records
/// still hold, is refused with 409, naming how many records are in the way and the first
/// ids, and nothing changes.
#[utoipa::path(
    patch, path = "/api/fields/{kind}/{key}", tag = "fields", operation_id = "change_field",
    params(("kind" = RecordKind, Path), ("key" = String, Path)),
    request_body = FieldDefinitionChange,
    responses((status = 200, description = "the changed definition", body = FieldDefinition), CallerErrors, NotFound, WriteErrors),
    security(("bearer" = [])),
)]
async fn change(
    State(s): State<AppState>,
    _: Admin,
    Path((kind, key)): Path<(RecordKind, String)>,
    Json(change): Json<FieldDefinitionChange>,
) -> Result<Json<FieldDefinition>, ApiError> {
    Ok(Json(custom_fields::change(&s.db, kind, &key, &change).await?))
}

/// Remove a custom field definition (admins)
///
/// Records keep their values under the key, which is free-form again.
#[utoipa::path(
    delete, path = "/api/fields/{kind}/{key}", tag = "fields", operation_id = "remove_field",
    params(("kind" = RecordKind, Path), ("key" = String, Path)),
    responses((status = 200, description = "the removed definition", body = FieldDefinition), CallerErrors, NotFound),
    security(("bearer" = [])),
)]
async fn remove(
    State(s): State<AppState>,
    _: Admin,
    Path((kind, key)): Path<(RecordKind, String)>,
) -> Result<Json<FieldDefinition>, ApiError> {
    Ok(Json(custom_fields::remove(&s.db, kind, &key).await?))
}
