//! `/api/import/{kind}`: a CSV file in, the import's report out (`crm_store::import`).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use crm_concepts::import::{ImportKind, ImportOptions, ImportReport, OnDuplicate};
use crm_store::import::{self, ImportError};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, CallerErrors, WriteErrors};
use crate::extract::{Path, Query, Writer};

/// A CSV upload: some 50,000 typical contacts.
pub const IMPORT_BODY_LIMIT: usize = 8 << 20;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(import_csv).layer(DefaultBodyLimit::max(IMPORT_BODY_LIMIT)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ImportQuery {
    /// check and report, write nothing
    #[serde(default)]
    dry_run: bool,
    /// what to do with a row whose record exists (contacts by email, companies by domain
    /// or name): `skip` (the default) or `update`
    #[param(value_type = Option<String>)]
    on_duplicate: Option<OnDuplicate>,
    /// `column=field` pairs separated by `;`, for columns not named like the field
    map: Option<String>,
}

/// Import records from CSV (admin or manager)
///
/// The body is the CSV file (UTF-8, a header row first). Rows are written in batches of
/// 5,000, each in one transaction: rows that break a rule are reported by line and left
/// out; a file that cannot be read writes nothing, and a failure part way keeps the
/// batches before it and says where to resume.
#[utoipa::path(
    post, path = "/api/import/{kind}", tag = "import", operation_id = "import_csv",
    params(("kind" = String, Path, description = "contacts, companies, deals or tasks"), ImportQuery),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, description = "what was imported, skipped and rejected", body = ImportReport), CallerErrors, WriteErrors),
    security(("bearer" = [])),
)]
async fn import_csv(
    State(s): State<AppState>,
    Writer(c): Writer,
    Path(kind): Path<String>,
    Query(q): Query<ImportQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<ImportReport>, ApiError> {
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(format!(
            "the CSV file is over {} MiB: split it and import the parts",
            IMPORT_BODY_LIMIT >> 20
        )),
        _ => ApiError::bad_request(format!("reading the CSV file: {e}")),
    })?;
    let kind: ImportKind = kind.parse().map_err(ApiError::not_found)?;
    let map = match &q.map {
        Some(pairs) => ImportOptions::parse_map(pairs.split(';').filter(|p| !p.trim().is_empty()))
            .map_err(|e| ApiError::validation("map", e))?,
        None => Default::default(),
    };
    let options = ImportOptions {
        map,
        dry_run: q.dry_run,
        on_duplicate: q.on_duplicate.unwrap_or_default(),
        default_currency: s.default_currency.clone(),
    };
    match import::import(&s.db, &c.actor(), kind, &body, &options, &|_| {}).await {
        Ok(report) => Ok(axum::Json(report)),
        Err(ImportError::File(message)) => Err(ApiError::validation("file", message)),
        Err(ImportError::Store(e)) => Err(e.into()),
        Err(ImportError::Interrupted { line, done, source }) => {
            tracing::warn!(error = %source, line, "an import stopped part way");
            Err(ApiError::unavailable(format!(
                "the import stopped at line {line} ({source}); the rows before it were imported ({}): \
                 send the rest of the file from line {line} on",
                done.summary()
            )))
        }
    }
}
