//! Request extractors whose rejections speak the API's error shape, and the caller
//! identity every handler starts from.

use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use crm_concepts::records::{Actor, Id};
use crm_concepts::user::User;
use crm_store::{tokens, users};
use serde::Serialize;

use crate::AppState;
use crate::error::ApiError;
use crate::limits::client_ip;

/// JSON body in and out; a malformed or mistyped body is a 400 naming the problem.
#[derive(Debug, Clone, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[derive(Debug, Clone, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

#[derive(Debug, Clone, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

pub const ACTING_USER_HEADER: &str = "x-crm-acting-user";

/// Whoever the request acts as: the token's user, or for an admin token with
/// `X-Crm-Acting-User`, that user (whose role then applies).
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    /// the user the token belongs to (differs from `user` when acting for someone)
    pub token_user_id: Id,
    /// the token that made the request
    pub token_id: Id,
}

impl Caller {
    pub fn actor(&self) -> Actor {
        Actor::user(self.user.id)
    }
    pub fn require_write(&self) -> Result<(), ApiError> {
        if self.user.role.can_write() {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("role {} cannot change records", self.user.role)))
        }
    }
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.user.role.is_admin() { Ok(()) } else { Err(ApiError::forbidden("this needs an admin")) }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let (token_user, token_id) = authenticate(parts, state).await?;
        let Some(acting) = parts.headers.get(ACTING_USER_HEADER) else {
            return Ok(Caller { token_user_id: token_user.id, token_id, user: token_user });
        };
        if !token_user.role.is_admin() {
            return Err(ApiError::forbidden("only admin tokens may act for another user"));
        }
        let acting_id: Id = acting
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| ApiError::bad_request("X-Crm-Acting-User must be a CRM user id"))?;
        let user = match users::get(&state.db, acting_id).await {
            Ok(u) if u.disabled_at.is_none() => u,
            Ok(_) | Err(crm_store::StoreError::NotFound { .. }) => {
                return Err(ApiError::forbidden(format!("acting user {acting_id} does not exist or is disabled")));
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Caller { user, token_user_id: token_user.id, token_id })
    }
}

/// The bearer token's user and the token's id. A client address that has failed too often
/// lately is answered 429 before its token is even looked up.
async fn authenticate(parts: &Parts, state: &AppState) -> Result<(User, Id), ApiError> {
    let ip = client_ip(&parts.extensions);
    if !state.limits.auth_failures.allows(&ip) {
        return Err(too_many_failures());
    }
    let secret = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <token> header"))
        .and_then(|h| {
            h.to_str()
                .ok()
                .and_then(|h| h.strip_prefix("Bearer "))
                .map(str::trim)
                .ok_or_else(|| ApiError::unauthorized("Authorization must be `Bearer <token>`"))
        });
    let found = match secret {
        Ok(secret) => tokens::authenticate(&state.db, secret)
            .await?
            .ok_or_else(|| ApiError::unauthorized("invalid or revoked token")),
        Err(e) => Err(e),
    };
    found.map_err(|e| failed(state, ip, e))
}

/// Counts a failed authentication against its address.
pub(crate) fn failed(state: &AppState, ip: std::net::IpAddr, e: ApiError) -> ApiError {
    tracing::info!(%ip, reason = %e.message, "authentication failed");
    if state.limits.auth_failures.take(&ip) { e } else { too_many_failures() }
}

pub(crate) fn too_many_failures() -> ApiError {
    ApiError::too_many("too many failed authentications from this address; wait a minute and retry")
}

/// A caller allowed to change records (admin or manager); extracted before the body so a
/// viewer gets 403 whatever it sent.
#[derive(Debug, Clone)]
pub struct Writer(pub Caller);

impl FromRequestParts<AppState> for Writer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require_write()?;
        Ok(Writer(caller))
    }
}

/// A caller with the admin role.
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require_admin()?;
        Ok(Admin(caller))
    }
}
