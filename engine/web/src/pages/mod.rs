//! One module per area of the app; each exposes `routes()`, merged in [`routes`].

mod admin;
mod approvals;
mod board;
mod companies;
mod contacts;
mod deals;
mod home;
mod notes;
mod notifications;
mod parts;
mod runs;
mod schedules;
mod search;
mod sign_in;
mod tasks;
mod workflows;

use std::collections::HashMap;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use crm_concepts::records::Id;
use crm_store::Db;

use crate::WebState;
use crate::error::WebError;

pub fn routes() -> Router<WebState> {
    Router::new()
        .merge(home::routes())
        .merge(sign_in::routes())
        .merge(search::routes())
        .merge(contacts::routes())
        .merge(companies::routes())
        .merge(deals::routes())
        .merge(board::routes())
        .merge(tasks::routes())
        .merge(notes::routes())
        .merge(workflows::routes())
        .merge(runs::routes())
        .merge(approvals::routes())
        .merge(schedules::routes())
        .merge(notifications::routes())
        .merge(admin::routes())
}

/// A form shown again with its problems: 422, as the API answers invalid input.
fn invalid(page: Response) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
}

/// Every stage's name by id ("Lead", "Won").
async fn stage_names(db: &Db) -> Result<HashMap<Id, String>, WebError> {
    Ok(crm_store::pipelines::list(db).await?.into_iter().flat_map(|p| p.stages).map(|s| (s.id, s.name)).collect())
}
