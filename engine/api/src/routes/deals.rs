//! `/api/deals`, including moving a deal between stages.

use axum::extract::State;
use axum::http::StatusCode;
use crm_concepts::records::{Deal, DealFilter, DealPatch, DealStatus, Id, MoveDeal, NewDeal, Page, PageRequest};
use crm_store::deals;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, CallerErrors, NotFound, WriteErrors};
use crate::extract::{Caller, Json, Listing, Path, Writer};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(read, update, remove)).routes(routes!(move_stage))
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
    pipeline_id: Option<Id>,
    stage_id: Option<Id>,
    status: Option<DealStatus>,
    owner_id: Option<Id>,
    contact_id: Option<Id>,
    company_id: Option<Id>,
    /// fuzzy text over the title
    q: Option<String>,
}

/// List deals
///
/// `field.KEY=VALUE` (any number) keeps the records whose custom field `KEY` matches:
/// a defined field's value is read by its type, a free-form key's compared as text.
#[utoipa::path(
    get, path = "/api/deals", tag = "deals", operation_id = "list_deals",
    params(ListQuery),
    responses((status = 200, description = "one page of deals", body = Page<Deal>), CallerErrors),
    security(("bearer" = [])),
)]
async fn list(
    State(s): State<AppState>,
    _: Caller,
    Listing(q, fields): Listing<ListQuery>,
) -> Result<Json<Page<Deal>>, ApiError> {
    let filter = DealFilter {
        pipeline_id: q.pipeline_id,
        stage_id: q.stage_id,
        status: q.status,
        owner_id: q.owner_id,
        contact_id: q.contact_id,
        company_id: q.company_id,
        q: q.q,
        fields,
        ..DealFilter::default()
    };
    let page = PageRequest { limit: q.limit, cursor: q.cursor, sort: q.sort };
    Ok(Json(deals::list(&s.db, &filter, &page).await?))
}

/// Create a deal
#[utoipa::path(
    post, path = "/api/deals", tag = "deals", operation_id = "create_deal",
    request_body = NewDeal,
    responses((status = 201, description = "the new deal", body = Deal), CallerErrors, WriteErrors),
    security(("bearer" = [])),
)]
async fn create(
    State(s): State<AppState>,
    Writer(c): Writer,
    Json(mut new): Json<NewDeal>,
) -> Result<(StatusCode, Json<Deal>), ApiError> {
    if new.currency.is_none() {
        new.currency = Some(s.default_currency.clone());
    }
    Ok((StatusCode::CREATED, Json(deals::create(&s.db, &c.actor(), new).await?)))
}

/// Read a deal
#[utoipa::path(
    get, path = "/api/deals/{id}", tag = "deals", operation_id = "read_deal",
    params(("id" = Id, Path)),
    responses((status = 200, description = "the deal", body = Deal), CallerErrors, NotFound),
    security(("bearer" = [])),
)]
async fn read(State(s): State<AppState>, _: Caller, Path(id): Path<Id>) -> Result<Json<Deal>, ApiError> {
    Ok(Json(deals::get(&s.db, id).await?))
}

/// Change a deal
///
/// Absent fields stay as they are; `null` clears one.
#[utoipa::path(
    patch, path = "/api/deals/{id}", tag = "deals", operation_id = "update_deal",
    params(("id" = Id, Path)), request_body = DealPatch,
    responses((status = 200, description = "the changed deal", body = Deal), CallerErrors, NotFound, WriteErrors),
    security(("bearer" = [])),
)]
async fn update(
    State(s): State<AppState>,
    Writer(c): Writer,
    Path(id): Path<Id>,
    Json(patch): Json<DealPatch>,
) -> Result<Json<Deal>, ApiError> {
    Ok(Json(deals::update(&s.db, &c.actor(), id, patch).await?))
}

/// Move a deal to another stage of its pipeline
#[utoipa::path(
    post, path = "/api/deals/{id}/move", tag = "deals", operation_id = "move_deal",
    params(("id" = Id, Path)), request_body = MoveDeal,
    responses((status = 200, description = "the moved deal", body = Deal), CallerErrors, NotFound, WriteErrors),
    security(("bearer" = [])),
)]
async fn move_stage(
    State(s): State<AppState>,
    Writer(c): Writer,
    Path(id): Path<Id>,
    Json(m): Json<MoveDeal>,
) -> Result<Json<Deal>, ApiError> {
    Ok(Json(deals::move_stage(&s.db, &c.actor(), id, m.stage_id).await?))
}

/// Delete a deal
#[utoipa::path(
    delete, path = "/api/deals/{id}", tag = "deals", operation_id = "delete_deal",
    params(("id" = Id, Path)),
    responses((status = 204, description = "deleted"), CallerErrors, NotFound),
    security(("bearer" = [])),
)]
async fn remove(State(s): State<AppState>, Writer(c): Writer, Path(id): Path<Id>) -> Result<StatusCode, ApiError> {
    deals::delete(&s.db, &c.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
