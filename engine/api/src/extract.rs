//! Request extractors whose rejections speak the API's error shape, and the caller
//! identity every handler starts from.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use crm_concepts::custom_fields::{self, FieldMatch};
use crm_concepts::records::{Actor, Id};
use crm_concepts::user::{TokenScope, User};
use crm_store::{tokens, users};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;
use crate::limits::client_ip;

/// JSON body in and out; a malformed or mistyped body is a 400 naming the problem.
#[derive(Debug, Clone)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    /// As `axum::Json`, which tracks the path of every field it reads (`serde_path_to_error`)
    /// so that a bad body's error can name where it went wrong. That doubles the cost of
    /// reading a worker's results (3.1–3.3 µs a result against 1.6), for bodies that are
    /// almost always good: a body sent as plain `application/json` is read without it, and
    /// read again with it only when it fails, so the error is word for word what it was.
    /// Any other content type goes to `axum::Json` as it comes, which accepts the other
    /// JSON types and refuses the rest.
    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let plain_json =
            req.headers().get(axum::http::header::CONTENT_TYPE).is_some_and(|v| v.as_bytes() == b"application/json");
        if !plain_json {
            return axum::Json::<T>::from_request(req, state)
                .await
                .map(|axum::Json(v)| Json(v))
                .map_err(ApiError::from);
        }
        let body = bytes::Bytes::from_request(req, state).await.map_err(|e| ApiError::from(JsonRejection::from(e)))?;
        match serde_json::from_slice(&body) {
            Ok(v) => Ok(Json(v)),
            Err(_) => axum::Json::<T>::from_bytes(&body).map(|axum::Json(v)| Json(v)).map_err(ApiError::from),
        }
    }
}

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

/// Whoever the request acts as: the token's user, or, for an admin token or the bot's
/// delegate token with `X-Crm-Acting-User`, that user (whose role then applies).
///
/// A delegate token must name the user it acts for: on its own it passes only the
/// [`Service`] extractor of the bot's own routes.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    /// the user the token belongs to
    pub token_user_id: Id,
    /// the token that made the request
    pub token_id: Id,
    pub scope: TokenScope,
    /// the request named a user in `X-Crm-Acting-User`
    pub acting: bool,
}

impl Caller {
    /// Whom a change is attributed to, and the token that really made it.
    pub fn actor(&self) -> Actor {
        Actor { user_id: Some(self.user.id), origin_run: None, token_id: Some(self.token_id) }
    }
    pub fn is_delegate(&self) -> bool {
        self.scope == TokenScope::Delegate
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
    /// The operator's powers (deploying code, secrets and keys, users and roles) need an
    /// admin's own token: never the bot's delegate, even acting for an admin.
    pub fn require_operator(&self) -> Result<(), ApiError> {
        if self.is_delegate() {
            return Err(ApiError::forbidden(
                "a delegate token (the bot's) cannot do this: use an admin's own API token",
            ));
        }
        self.require_admin()
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = identify(parts, state).await?;
        if caller.is_delegate() && !caller.acting {
            return Err(ApiError::forbidden("a delegate token acts only for the user it names in X-Crm-Acting-User"));
        }
        Ok(caller)
    }
}

/// The token's identity and, when named, the user it acts for.
async fn identify(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    let (token_user, token) = authenticate(parts, state).await?;
    let mut caller = Caller {
        token_user_id: token_user.id,
        token_id: token.id,
        scope: token.scope,
        user: token_user,
        acting: false,
    };
    let Some(acting) = parts.headers.get(ACTING_USER_HEADER) else {
        return Ok(caller);
    };
    if !caller.user.role.is_admin() && !caller.is_delegate() {
        return Err(ApiError::forbidden("only admin tokens and delegate tokens may act for another user"));
    }
    let acting_id: Id = acting
        .to_str()
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| ApiError::bad_request("X-Crm-Acting-User must be a CRM user id"))?;
    caller.user = acting_user(state, acting_id).await?;
    caller.acting = true;
    Ok(caller)
}

/// Any valid token, delegate or not, acting or not: for questions about the token itself.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Caller);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Authenticated(identify(parts, state).await?))
    }
}

/// The bot's own routes (identity look-ups, invite redemption, the completion and
/// notification streams and delivery reports): an admin's token, or a delegate token with or
/// without a user to act for.
#[derive(Debug, Clone)]
pub struct Service(pub Caller);

impl FromRequestParts<AppState> for Service {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = identify(parts, state).await?;
        if !caller.is_delegate() {
            caller.require_admin()?;
        }
        Ok(Service(caller))
    }
}

/// The bearer token's user and the token's id. A client address that has failed too often
/// lately is answered 429 before its token is even looked up.
async fn authenticate(parts: &Parts, state: &AppState) -> Result<(User, tokens::Presented), ApiError> {
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
        Ok(secret) => {
            let hash: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
            if let Some(hit) = state.tokens.token(&hash) {
                metrics::counter!("crm_api_token_lookups_total", "source" => "cache").increment(1);
                return Ok(hit);
            }
            let stamp = state.tokens.stamp();
            metrics::counter!("crm_api_token_lookups_total", "source" => "database").increment(1);
            // Boxed: a query's future is kilobytes, and kept inline it would be part of
            // every handler's future, which the router moves into a box of its own at each
            // layer on every request, though a cached token never reaches it.
            let found = Box::pin(tokens::authenticate(&state.db, secret)).await?;
            if let Some((user, token)) = &found {
                state.tokens.keep_token(stamp, hash, user, token);
            }
            found.ok_or_else(|| ApiError::unauthorized("invalid or revoked token"))
        }
        Err(e) => Err(e),
    };
    found.map_err(|e| failed(state, ip, e))
}

/// The active user a token acts for.
async fn acting_user(state: &AppState, id: Id) -> Result<User, ApiError> {
    if let Some(user) = state.tokens.user(id) {
        return Ok(user);
    }
    let stamp = state.tokens.stamp();
    // Boxed for the same reason as the token's look-up in `authenticate`.
    match Box::pin(users::get(&state.db, id)).await {
        Ok(u) if u.disabled_at.is_none() => {
            state.tokens.keep_user(stamp, &u);
            Ok(u)
        }
        Ok(_) | Err(crm_store::StoreError::NotFound { .. }) => {
            Err(ApiError::forbidden(format!("acting user {id} does not exist or is disabled")))
        }
        Err(e) => Err(e.into()),
    }
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

/// A caller with the admin role (the bot acting for an admin included).
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

/// An admin with their own token: deploying workflows, secrets and webhook keys, users and
/// roles. Extracted before the body, so anyone else is refused whatever they send.
#[derive(Debug, Clone)]
pub struct Operator(pub Caller);

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require_operator()?;
        Ok(Operator(caller))
    }
}

/// The caller of a read-only event stream: an API token as for [`Caller`], or else the web
/// app's session cookie, since a browser's `EventSource` cannot send an Authorization
/// header. Only for GET routes that change nothing; the cookie is SameSite=Lax, so another
/// site's page cannot make a browser send it along. `budget` keys the per-credential stream
/// cap: the token's id, or for a session the negated session id (ids are positive).
#[derive(Debug, Clone)]
pub struct StreamCaller {
    pub caller: Caller,
    pub budget: i64,
}

impl FromRequestParts<AppState> for StreamCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if parts.headers.contains_key(axum::http::header::AUTHORIZATION) {
            let caller = Caller::from_request_parts(parts, state).await?;
            return Ok(StreamCaller { budget: caller.token_id, caller });
        }
        let secret = parts
            .headers
            .get_all(axum::http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(crm_store::web_sessions::secret_in_cookie_header)
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <token> header or web session"))?;
        let session = crm_store::web_sessions::authenticate(&state.db, secret)
            .await?
            .ok_or_else(|| ApiError::unauthorized("the web session has ended; sign in again"))?;
        let caller = Caller {
            token_user_id: session.user.id,
            token_id: 0,
            scope: TokenScope::Full,
            acting: false,
            user: session.user,
        };
        Ok(StreamCaller { caller, budget: -session.id })
    }
}

/// A list's query string: the parameters `T` names, and the custom-field filters
/// `field.KEY=VALUE` (any number of them), which no struct can name ahead. Anything else
/// unknown to `T` is still refused.
#[derive(Debug, Clone)]
pub struct Listing<T>(pub T, pub Vec<FieldMatch>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Listing<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(parts.uri.query().unwrap_or_default())
            .map_err(|e| ApiError::bad_request(format!("Failed to deserialize query string: {e}")))?;
        let (custom, rest): (Vec<_>, Vec<_>) =
            pairs.into_iter().partition(|(k, _)| k.starts_with(custom_fields::FILTER_PREFIX));
        let fields = custom
            .into_iter()
            .map(|(k, value)| FieldMatch { key: k[custom_fields::FILTER_PREFIX.len()..].to_string(), value })
            .collect();
        let rest = serde_urlencoded::to_string(&rest).map_err(ApiError::internal)?;
        let uri: axum::http::Uri = format!("/?{rest}").parse().map_err(ApiError::internal)?;
        let axum::extract::Query(typed) = axum::extract::Query::<T>::try_from_uri(&uri)?;
        Ok(Listing(typed, fields))
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Order {
        name: String,
        lines: Vec<Line>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Line {
        qty: u32,
    }

    fn request(content_type: Option<&str>, body: &'static str) -> Request<Body> {
        let mut r = Request::builder().method("POST").uri("/");
        if let Some(ct) = content_type {
            r = r.header("content-type", ct);
        }
        r.body(Body::from(body)).expect("a request")
    }

    /// What a client sees: the value, or the error's status and body.
    async fn seen(result: Result<Order, ApiError>) -> Result<Order, (StatusCode, String)> {
        match result {
            Ok(order) => Ok(order),
            Err(e) => {
                let resp = e.into_response();
                let status = resp.status();
                let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("a body");
                Err((status, String::from_utf8_lossy(&body).into_owned()))
            }
        }
    }

    #[tokio::test]
    async fn every_body_reads_as_axum_json_reads_it_word_for_word() {
        let bodies = [
            r#"{"name": "Ann", "lines": [{"qty": 2}]}"#,
            r#"{"name": "Ann", "lines": [{"qty": 2}]}   "#,
            r#"{"name": "Ann", "lines": [{"qty": 2}]} trailing"#,
            r#"{"name": "Ann", "lines": [{"qty": "two"}]}"#,
            r#"{"name": "Ann", "lines": [{"qty": 2, "price": 1}]}"#,
            r#"{"name": "Ann""#,
            r#"{"name": 42, "lines": []}"#,
            r#"[]"#,
            "",
        ];
        let types = [
            Some("application/json"),
            Some("application/json; charset=utf-8"),
            Some("application/vnd.x+json"),
            Some("text/plain"),
            None,
        ];
        for body in bodies {
            for content_type in types {
                let ours =
                    seen(Json::<Order>::from_request(request(content_type, body), &()).await.map(|Json(o)| o)).await;
                let axum = seen(
                    axum::Json::<Order>::from_request(request(content_type, body), &())
                        .await
                        .map(|axum::Json(o)| o)
                        .map_err(ApiError::from),
                )
                .await;
                assert_eq!(ours, axum, "body {body:?} sent as {content_type:?}");
            }
        }
    }

    #[tokio::test]
    async fn a_bad_body_is_refused_naming_where_it_went_wrong() {
        let body = r#"{"name": "Ann", "lines": [{"qty": 1}, {"qty": "two"}]}"#;
        let refused = Json::<Order>::from_request(request(Some("application/json"), body), &()).await;
        let (status, message) = seen(refused.map(|Json(o)| o)).await.expect_err("refused");
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(message.contains("lines[1].qty: invalid type"), "{message}");
    }
}
