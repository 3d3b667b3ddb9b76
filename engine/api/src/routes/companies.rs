//! `/api/companies`

use axum::extract::State;
use axum::http::StatusCode;
use crm_concepts::records::{Company, CompanyFilter, CompanyPatch, Id, NewCompany, Page, PageRequest};
use crm_store::companies;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, CallerErrors, NotFound, WriteErrors};
use crate::extract::{Caller, Json, Listing, Path, Writer};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(read, update, remove))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    limit: Option<u32>,
    /// the `next_cursor` of the previous page
    cursor: Option<String>,
    /// a field name, `-field` for descending
    sort: Option<String>,
    owner_id: Option<Id>,
    tag: Option<String>,
    /// fuzzy text over the name
    q: Option<String>,
}

/// List companies
///
/// `field.KEY=VALUE` (any number) keeps the records whose custom field `KEY` matches:
/// a defined field's value is read by its type, a free-form key's compared as text.
#[utoipa::path(
    get, path = "/api/companies", tag = "companies", operation_id = "list_companies",
    params(ListQuery),
    responses((status = 200, description = "one page of companies", body = Page<Company>), CallerErrors),
    security(("bearer" = [])),
)]
async fn list(
    State(s): State<AppState>,
    _: Caller,
    Listing(q, fields): Listing<ListQuery>,
) -> Result<Json<Page<Company>>, ApiError> {
    let filter = CompanyFilter { owner_id: q.owner_id, tag: q.tag, q: q.q, fields };
    let page = PageRequest { limit: q.limit, cursor: q.cursor, sort: q.sort };
    Ok(Json(companies::list(&s.db, &filter, &page).await?))
}

/// Create a company
#[utoipa::path(
    post, path = "/api/companies", tag = "companies", operation_id = "create_company",
    request_body = NewCompany,
    responses((status = 201, description = "the new company", body = Company), CallerErrors, WriteErrors),
    security(("bearer" = [])),
)]
async fn create(
    State(s): State<AppState>,
    Writer(c): Writer,
    Json(new): Json<NewCompany>,
) -> Result<(StatusCode, Json<Company>), ApiError> {
    Ok((StatusCode::CREATED, Json(companies::create(&s.db, &c.actor(), new).await?)))
}

/// Read a company
#[utoipa::path(
    get, path = "/api/companies/{id}", tag = "companies", operation_id = "read_company",
    params(("id" = Id, Path)),
    responses((status = 200, description = "the company", body = Company), CallerErrors, NotFound),
    security(("bearer" = [])),
)]
async fn read(State(s): State<AppState>, _: Caller, Path(id): Path<Id>) -> Result<Json<Company>, ApiError> {
    Ok(Json(companies::get(&s.db, id).await?))
}

/// Change a company
///
/// Absent fields stay as they are; `null` clears one.
#[utoipa::path(
    patch, path = "/api/companies/{id}", tag = "companies", operation_id = "update_company",
    params(("id" = Id, Path)), request_body = CompanyPatch,
    responses((status = 200, description = "the changed company", body = Company), CallerErrors, NotFound, WriteErrors),
    security(("bearer" = [])),
)]
async fn update(
    State(s): State<AppState>,
    Writer(c): Writer,
    Path(id): Path<Id>,
    Json(patch): Json<CompanyPatch>,
) -> Result<Json<Company>, ApiError> {
    Ok(Json(companies::update(&s.db, &c.actor(), id, patch).await?))
}

/// Delete a company
#[utoipa::path(
    delete, path = "/api/companies/{id}", tag = "companies", operation_id = "delete_company",
    params(("id" = Id, Path)),
    responses((status = 204, description = "deleted"), CallerErrors, NotFound),
    security(("bearer" = [])),
)]
async fn remove(State(s): State<AppState>, Writer(c): Writer, Path(id): Path<Id>) -> Result<StatusCode, ApiError> {
    companies::delete(&s.db, &c.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
