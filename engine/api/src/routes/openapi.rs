//! `/api/openapi.json`: the document [`crate::openapi`] derives from the routes.

use axum::Extension;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::openapi::Document;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(document))
}

/// This document
#[utoipa::path(
    get, path = "/api/openapi.json", tag = "docs", operation_id = "openapi_document",
    responses((status = 200, description = "the OpenAPI 3.1 document of every route", body = Object)),
)]
async fn document(Extension(doc): Extension<Document>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], doc.0)
}
