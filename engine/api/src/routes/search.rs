//! `/api/search` (fuzzy, across record kinds) and `/api/activity` (one record's history).

use axum::extract::State;
use crm_concepts::records::{Activity, Id, Page, PageRequest, RecordKind, SearchHit};
use crm_store::{activity, search};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, CallerErrors};
use crate::extract::{Caller, Json, Query};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(find)).routes(routes!(history))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct SearchQuery {
    q: String,
    /// comma-separated: contacts,companies,deals
    kinds: Option<String>,
    limit: Option<u32>,
}

/// The best matches, closest first.
#[derive(Debug, Serialize, ToSchema)]
struct SearchHits {
    items: Vec<SearchHit>,
}

/// Fuzzy search across contacts, companies and deals
#[utoipa::path(
    get, path = "/api/search", tag = "search", operation_id = "search",
    params(SearchQuery),
    responses((status = 200, description = "the matches", body = SearchHits), CallerErrors),
    security(("bearer" = [])),
)]
async fn find(
    State(s): State<AppState>,
    _: Caller,
    Query(q): Query<SearchQuery>,
) -> Result<Json<SearchHits>, ApiError> {
    let kinds = q
        .kinds
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| k.parse::<RecordKind>().map_err(|e| ApiError::bad_request(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let items = search::search(&s.db, &q.q, &kinds, q.limit.unwrap_or(10)).await?;
    Ok(Json(SearchHits { items }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ActivityQuery {
    record_kind: RecordKind,
    record_id: Id,
    limit: Option<u32>,
    /// the `next_cursor` of the previous page
    cursor: Option<String>,
}

/// The change history of one record
#[utoipa::path(
    get, path = "/api/activity", tag = "search", operation_id = "list_activity",
    params(ActivityQuery),
    responses((status = 200, description = "one page of changes, newest first", body = Page<Activity>), CallerErrors),
    security(("bearer" = [])),
)]
async fn history(
    State(s): State<AppState>,
    _: Caller,
    Query(q): Query<ActivityQuery>,
) -> Result<Json<Page<Activity>>, ApiError> {
    let page = PageRequest { limit: q.limit, cursor: q.cursor, sort: None };
    Ok(Json(activity::list(&s.db, q.record_kind, q.record_id, &page).await?))
}
