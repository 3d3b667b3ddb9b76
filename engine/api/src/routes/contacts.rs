//! `/api/contacts`

use axum::extract::State;
use axum::http::StatusCode;
use crm_concepts::records::{Contact, ContactFilter, ContactPatch, Id, NewContact, Page, PageRequest};
use crm_store::contacts;
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
    company_id: Option<Id>,
    tag: Option<String>,
    /// fuzzy text over name, email and phone
    q: Option<String>,
}

/// List contacts
///
/// `field.KEY=VALUE` (any number) keeps the records whose custom field `KEY` matches:
/// a defined field's value is read by its type, a free-form key's compared as text.
#[utoipa::path(
    get, path = "/api/contacts", tag = "contacts", operation_id = "list_contacts",
    params(ListQuery),
    responses((status = 200, description = "one page of contacts", body = Page<Contact>), CallerErrors),
    security(("bearer" = [])),
)]
async fn list(
    State(s): State<AppState>,
    _: Caller,
    Listing(q, fields): Listing<ListQuery>,
) -> Result<Json<Page<Contact>>, ApiError> {
    let filter = ContactFilter { owner_id: q.owner_id, company_id: q.company_id, tag: q.tag, q: q.q, fields };
    let page = PageRequest { limit: q.limit, cursor: q.cursor, sort: q.sort };
    Ok(Json(contacts::list(&s.db, &filter, &page).await?))
}

/// Create a contact
#[utoipa::path(
    post, path = "/api/contacts", tag = "contacts", operation_id = "create_contact",
    request_body = NewContact,
    responses((status = 201, description = "the new contact", body = Contact), CallerErrors, WriteErrors),
    security(("bearer" = [])),
)]
async fn create(
    State(s): State<AppState>,
    Writer(c): Writer,
    Json(new): Json<NewContact>,
) -> Result<(StatusCode, Json<Contact>), ApiError> {
    Ok((StatusCode::CREATED, Json(contacts::create(&s.db, &c.actor(), new).await?)))
}

/// Read a contact
#[utoipa::path(
    get, path = "/api/contacts/{id}", tag = "contacts", operation_id = "read_contact",
    params(("id" = Id, Path)),
    responses((status = 200, description = "the contact", body = Contact), CallerErrors, NotFound),
    security(("bearer" = [])),
)]
async fn read(State(s): State<AppState>, _: Caller, Path(id): Path<Id>) -> Result<Json<Contact>, ApiError> {
    Ok(Json(contacts::get(&s.db, id).await?))
}

/// Change a contact
///
/// Absent fields stay as they are; `null` clears one.
#[utoipa::path(
    patch, path = "/api/contacts/{id}", tag = "contacts", operation_id = "update_contact",
    params(("id" = Id, Path)), request_body = ContactPatch,
    responses((status = 200, description = "the changed contact", body = Contact), CallerErrors, NotFound, WriteErrors),
    security(("bearer" = [])),
)]
async fn update(
    State(s): State<AppState>,
    Writer(c): Writer,
    Path(id): Path<Id>,
    Json(patch): Json<ContactPatch>,
) -> Result<Json<Contact>, ApiError> {
    Ok(Json(contacts::update(&s.db, &c.actor(), id, patch).await?))
}

/// Delete a contact
#[utoipa::path(
    delete, path = "/api/contacts/{id}", tag = "contacts", operation_id = "delete_contact",
    params(("id" = Id, Path)),
    responses((status = 204, description = "deleted"), CallerErrors, NotFound),
    security(("bearer" = [])),
)]
async fn remove(State(s): State<AppState>, Writer(c): Writer, Path(id): Path<Id>) -> Result<StatusCode, ApiError> {
    contacts::delete(&s.db, &c.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
