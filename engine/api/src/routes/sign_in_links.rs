//! `/api/sign-in-links`: a one-time link that signs the caller in to the web app. The bot
//! asks for one when a chat user sends `/web` (admin token + `X-Crm-Acting-User`, so the
//! link is for that user); anyone with a token may ask for their own.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use crm_store::sign_in_links;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, CallerErrors};
use crate::extract::{Caller, Json};

/// Where a link's code is redeemed, under the web app's address.
pub const PATH: &str = "/sign-in/link/";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create))
}

#[derive(Debug, Serialize, ToSchema)]
struct SignInLink {
    /// opens the web app's sign-in page for this link
    url: String,
    /// the link stops working then, or once used
    expires_at: DateTime<Utc>,
}

/// A one-time sign-in link to the web app for the calling (or acting) user
///
/// The link works once and for ten minutes.
#[utoipa::path(
    post, path = "/api/sign-in-links", tag = "users", operation_id = "create_sign_in_link",
    responses((status = 201, description = "the link", body = SignInLink), CallerErrors),
    security(("bearer" = [])),
)]
async fn create(State(s): State<AppState>, c: Caller) -> Result<(StatusCode, Json<SignInLink>), ApiError> {
    let code = sign_in_links::create(&s.db, c.user.id).await?;
    let base = s.public_url.as_deref().unwrap_or_default().trim_end_matches('/');
    let url = format!("{base}{PATH}{}", code.code);
    Ok((StatusCode::CREATED, Json(SignInLink { url, expires_at: code.expires_at })))
}
