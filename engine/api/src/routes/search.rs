//! `/api/search` (fuzzy, across record kinds) and `/api/activity` (one record's history).

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use crm_concepts::records::{Activity, Id, Page, PageRequest, RecordKind, SearchHit};
use crm_store::{activity, search};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Caller, Json, Query};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/search", get(find)).route("/api/activity", get(history))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchQuery {
    q: String,
    /// comma-separated: contacts,companies,deals
    kinds: Option<String>,
    limit: Option<u32>,
}

#[derive(Debug, Serialize)]
struct Hits {
    items: Vec<SearchHit>,
}

async fn find(State(s): State<AppState>, _: Caller, Query(q): Query<SearchQuery>) -> Result<Json<Hits>, ApiError> {
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
    Ok(Json(Hits { items }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivityQuery {
    record_kind: RecordKind,
    record_id: Id,
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn history(
    State(s): State<AppState>,
    _: Caller,
    Query(q): Query<ActivityQuery>,
) -> Result<Json<Page<Activity>>, ApiError> {
    let page = PageRequest { limit: q.limit, cursor: q.cursor, sort: None };
    Ok(Json(activity::list(&s.db, q.record_kind, q.record_id, &page).await?))
}
