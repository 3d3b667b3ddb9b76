//! `GET /api/{kind}/export.csv`: every record the kind's list filters select, as CSV that
//! `POST /api/import/{kind}` reads back (`crm_store::export`).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use crm_concepts::records::{CompanyFilter, ContactFilter, DealFilter, DealStatus, Id, TaskFilter};
use crm_store::export::{self, Selection};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, CallerErrors};
use crate::extract::{Caller, Listing};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(export_contacts))
        .routes(routes!(export_companies))
        .routes(routes!(export_deals))
        .routes(routes!(export_tasks))
}

async fn csv(s: &AppState, selection: Selection) -> Result<Response, ApiError> {
    let kind = selection.kind();
    let text = export::export(&s.db, &selection).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{kind}.csv\"")),
        ],
        text,
    )
        .into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ContactsQuery {
    owner_id: Option<Id>,
    company_id: Option<Id>,
    tag: Option<String>,
    /// fuzzy text over name, email and phone
    q: Option<String>,
}

/// Export contacts as CSV
///
/// `field.KEY=VALUE` (any number) keeps the records whose custom field `KEY` matches:
/// a defined field's value is read by its type, a free-form key's compared as text.
#[utoipa::path(
    get, path = "/api/contacts/export.csv", tag = "contacts", operation_id = "export_contacts",
    params(ContactsQuery),
    responses((status = 200, description = "the selected contacts", content_type = "text/csv", body = String), CallerErrors),
    security(("bearer" = [])),
)]
async fn export_contacts(
    State(s): State<AppState>,
    _: Caller,
    Listing(q, fields): Listing<ContactsQuery>,
) -> Result<Response, ApiError> {
    csv(
        &s,
        Selection::Contacts(ContactFilter {
            owner_id: q.owner_id,
            company_id: q.company_id,
            tag: q.tag,
            q: q.q,
            fields,
        }),
    )
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct CompaniesQuery {
    owner_id: Option<Id>,
    tag: Option<String>,
    /// fuzzy text over the name
    q: Option<String>,
}

/// Export companies as CSV
///
/// `field.KEY=VALUE` (any number) keeps the records whose custom field `KEY` matches:
/// a defined field's value is read by its type, a free-form key's compared as text.
#[utoipa::path(
    get, path = "/api/companies/export.csv", tag = "companies", operation_id = "export_companies",
    params(CompaniesQuery),
    responses((status = 200, description = "the selected companies", content_type = "text/csv", body = String), CallerErrors),
    security(("bearer" = [])),
)]
async fn export_companies(
    State(s): State<AppState>,
    _: Caller,
    Listing(q, fields): Listing<CompaniesQuery>,
) -> Result<Response, ApiError> {
    csv(&s, Selection::Companies(CompanyFilter { owner_id: q.owner_id, tag: q.tag, q: q.q, fields })).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DealsQuery {
    pipeline_id: Option<Id>,
    stage_id: Option<Id>,
    status: Option<DealStatus>,
    owner_id: Option<Id>,
    contact_id: Option<Id>,
    company_id: Option<Id>,
    /// fuzzy text over the title
    q: Option<String>,
}

/// Export deals as CSV
///
/// Amounts are written in the currency's own unit (`1500.00` EUR, `1500` JPY).
///
/// `field.KEY=VALUE` (any number) keeps the records whose custom field `KEY` matches:
/// a defined field's value is read by its type, a free-form key's compared as text.
#[utoipa::path(
    get, path = "/api/deals/export.csv", tag = "deals", operation_id = "export_deals",
    params(DealsQuery),
    responses((status = 200, description = "the selected deals", content_type = "text/csv", body = String), CallerErrors),
    security(("bearer" = [])),
)]
async fn export_deals(
    State(s): State<AppState>,
    _: Caller,
    Listing(q, fields): Listing<DealsQuery>,
) -> Result<Response, ApiError> {
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
    csv(&s, Selection::Deals(filter)).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct TasksQuery {
    assignee_id: Option<Id>,
    done: Option<bool>,
    due_before: Option<DateTime<Utc>>,
    deal_id: Option<Id>,
    contact_id: Option<Id>,
    company_id: Option<Id>,
}

/// Export tasks as CSV
///
/// `field.KEY=VALUE` (any number) keeps the records whose custom field `KEY` matches:
/// a defined field's value is read by its type, a free-form key's compared as text.
#[utoipa::path(
    get, path = "/api/tasks/export.csv", tag = "tasks", operation_id = "export_tasks",
    params(TasksQuery),
    responses((status = 200, description = "the selected tasks", content_type = "text/csv", body = String), CallerErrors),
    security(("bearer" = [])),
)]
async fn export_tasks(
    State(s): State<AppState>,
    _: Caller,
    Listing(q, fields): Listing<TasksQuery>,
) -> Result<Response, ApiError> {
    let filter = TaskFilter {
        assignee_id: q.assignee_id,
        done: q.done,
        due_before: q.due_before,
        deal_id: q.deal_id,
        contact_id: q.contact_id,
        company_id: q.company_id,
        fields,
    };
    csv(&s, Selection::Tasks(filter)).await
}
