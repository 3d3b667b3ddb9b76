//! One module per group of routes; each exposes `router()`, merged in [`all`].

pub mod approvals;
pub mod clock;
pub mod companies;
pub mod contacts;
pub mod deals;
pub mod docs;
pub mod export;
pub mod fields;
pub mod health;
pub mod hooks;
pub mod import;
pub mod invites;
pub mod notes;
pub mod notifications;
pub mod openapi;
pub mod pipelines;
pub mod runs;
pub mod schedules;
pub mod search;
pub mod secrets;
pub mod sign_in_links;
pub mod tasks;
pub mod users;
pub mod workers;
pub mod workflows;

use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

/// Every route with its OpenAPI operation. Route groups mount their handlers with
/// `routes!`, which takes method and path from the handler's `#[utoipa::path]`: the router
/// and the document cannot disagree.
pub fn all() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(crate::openapi::base())
        .merge(health::router())
        .merge(openapi::router())
        .merge(docs::router())
        .merge(contacts::router())
        .merge(export::router())
        .merge(fields::router())
        .merge(import::router())
        .merge(companies::router())
        .merge(pipelines::router())
        .merge(deals::router())
        .merge(tasks::router())
        .merge(notes::router())
        .merge(search::router())
        .merge(users::router())
        .merge(invites::router())
        .merge(hooks::router())
        .merge(secrets::router())
        .merge(schedules::router())
        .merge(workflows::router())
        .merge(runs::router())
        .merge(clock::router())
        .merge(approvals::router())
        .merge(notifications::router())
        .merge(workers::router())
        .merge(sign_in_links::router())
}
